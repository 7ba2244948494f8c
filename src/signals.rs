//! Signals: SIGINT/SIGTERM become cancel requests ([`SignalSource`]),
//! injected so tests can fire them deterministically. Installed once per
//! process and shared: short waits `select!` on [`shutdown_signal`]; drills
//! and `recover` watch the same [`source`], so a signal during a drill
//! reverts the fault instead of killing firedrill.

use std::sync::OnceLock;
use tokio::sync::watch;

/// How many signals have arrived, and the last one's name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalState {
    pub count: u32,
    pub last: Option<String>,
}

/// A cloneable view of the process' cancel requests (SIGINT/SIGTERM in
/// `main`, a [`SignalTrigger`] in tests).
#[derive(Debug, Clone)]
pub struct SignalSource {
    rx: watch::Receiver<SignalState>,
}

/// Fires a [`SignalSource`] (tests, or anything that wants to cancel a run).
#[derive(Debug, Clone)]
pub struct SignalTrigger {
    tx: watch::Sender<SignalState>,
}

impl SignalTrigger {
    pub fn fire(&self, name: &str) {
        self.tx.send_modify(|s| {
            s.count += 1;
            s.last = Some(name.to_string());
        });
    }
}

impl SignalSource {
    /// A source fired only through the returned trigger.
    pub fn manual() -> (SignalTrigger, SignalSource) {
        let (tx, rx) = watch::channel(SignalState::default());
        (SignalTrigger { tx }, SignalSource { rx })
    }

    /// A source that never fires.
    pub fn never() -> SignalSource {
        let (tx, rx) = watch::channel(SignalState::default());
        // Keep the sender alive so `changed()` pends forever instead of erroring.
        std::mem::forget(tx);
        SignalSource { rx }
    }

    pub fn state(&self) -> SignalState {
        self.rx.borrow().clone()
    }

    pub fn count(&self) -> u32 {
        self.rx.borrow().count
    }

    /// Name of the last signal, e.g. `SIGINT`.
    pub fn last_name(&self) -> String {
        self.rx
            .borrow()
            .last
            .clone()
            .unwrap_or_else(|| "a signal".into())
    }

    /// Resolves once more than `seen` signals have arrived (`seen = 0`: the first).
    pub async fn after(&mut self, seen: u32) {
        if self.rx.wait_for(|s| s.count > seen).await.is_err() {
            // Sender gone: no signal can ever come.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves on the first signal (at once if one already came).
    pub async fn cancelled(&mut self) {
        self.after(0).await
    }
}

/// Turns SIGINT and SIGTERM into cancel requests (must run inside a tokio
/// runtime). Once installed the default "die at once" action is gone, so a
/// second Ctrl-C cannot kill firedrill in the middle of a revert.
pub fn install_signal_handlers() -> std::io::Result<SignalSource> {
    use tokio::signal::unix::{signal, SignalKind};
    let (trigger, source) = SignalSource::manual();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = int.recv() => "SIGINT",
                Some(()) = term.recv() => "SIGTERM",
                else => break,
            };
            tracing::warn!("{name} received: stopping (a drill reverts its faults first)");
            trigger.fire(name);
        }
    });
    Ok(source)
}

static SOURCE: OnceLock<SignalSource> = OnceLock::new();

/// The process' signal source (installed on first use, inside the runtime).
pub fn source() -> SignalSource {
    SOURCE
        .get_or_init(|| install_signal_handlers().expect("SIGINT/SIGTERM handlers install"))
        .clone()
}

/// Resolves with the signal's name on the first SIGINT or SIGTERM (at once
/// if one already arrived).
pub async fn shutdown_signal() -> &'static str {
    let mut s = source();
    s.cancelled().await;
    match s.last_name().as_str() {
        "SIGINT" => "SIGINT",
        "SIGTERM" => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn manual_trigger_counts_and_names() {
        let (t, mut s) = SignalSource::manual();
        assert_eq!(s.count(), 0);
        let waiter = tokio::spawn({
            let mut s = s.clone();
            async move { s.cancelled().await }
        });
        t.fire("SIGTERM");
        waiter.await.unwrap();
        assert_eq!(s.last_name(), "SIGTERM");
        // Already fired: resolves at once.
        s.cancelled().await;
        let second = tokio::time::timeout(Duration::from_millis(50), s.after(1)).await;
        assert!(second.is_err(), "no second signal yet");
        t.fire("SIGINT");
        s.after(1).await;
        assert_eq!(s.count(), 2);
    }

    #[tokio::test]
    async fn never_never_fires() {
        let mut s = SignalSource::never();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), s.cancelled())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn real_sigterm_reaches_the_source() {
        let mut s = install_signal_handlers().unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(5), s.cancelled())
            .await
            .unwrap();
        assert_eq!(s.last_name(), "SIGTERM");
    }
}
