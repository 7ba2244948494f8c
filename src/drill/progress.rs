//! What a person watching a drill sees: a spinner on a terminal, one line per
//! state change otherwise (CI logs stay short and readable).

use super::machine::{Phase, WaitStatus};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where progress goes; cloned into each drill trial.
#[derive(Clone, Default)]
pub enum ProgressSink {
    /// An indicatif spinner on stderr.
    Spinner,
    /// One line per state change, to this writer.
    Lines(Arc<Mutex<dyn Write + Send>>),
    #[default]
    Off,
}

impl ProgressSink {
    /// Spinner on an interactive terminal; lines on stderr when `CI` is set
    /// or stderr is not a terminal.
    pub fn detect() -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if ci || !std::io::stderr().is_terminal() {
            ProgressSink::Lines(Arc::new(Mutex::new(std::io::stderr())))
        } else {
            ProgressSink::Spinner
        }
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProgressSink::Spinner => "Spinner",
            ProgressSink::Lines(_) => "Lines",
            ProgressSink::Off => "Off",
        })
    }
}

/// Progress of one drill trial.
pub struct Progress {
    sink: ProgressSink,
    label: String,
    bar: Option<ProgressBar>,
    last: Option<(Phase, String)>,
}

impl Progress {
    pub fn new(sink: ProgressSink, label: &str) -> Self {
        let bar = matches!(sink, ProgressSink::Spinner).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(label.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            sink,
            label: label.to_string(),
            bar,
            last: None,
        }
    }

    /// The wait's state; lines mode prints only when phase or state changed.
    pub fn update(&mut self, s: &WaitStatus) {
        let what = match s.phase {
            Phase::Firing => "deadline",
            Phase::Resolving => "resolve timeout",
        };
        let msg = format!(
            "{} +{:.1}s / {what} {}",
            s.state,
            s.elapsed.as_secs_f64(),
            humantime::format_duration(s.limit)
        );
        if let Some(b) = &self.bar {
            b.set_message(msg);
            return;
        }
        let key = (s.phase, s.state.clone());
        if self.last.as_ref() == Some(&key) {
            return;
        }
        self.last = Some(key);
        let phase = match s.phase {
            Phase::Firing => "waiting to fire",
            Phase::Resolving => "waiting to resolve",
        };
        self.line(&format!("{phase}: {msg}"));
    }

    /// A step worth one line in every mode (injected, reverted, ...).
    pub fn line(&mut self, msg: &str) {
        match &self.sink {
            ProgressSink::Spinner => {
                if let Some(b) = &self.bar {
                    b.println(format!("{} {msg}", self.label));
                }
            }
            ProgressSink::Lines(w) => {
                let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(w, "{} {msg}", self.label);
                let _ = w.flush();
            }
            ProgressSink::Off => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn status(phase: Phase, state: &str, secs: u64) -> WaitStatus {
        WaitStatus {
            phase,
            state: state.into(),
            elapsed: Duration::from_secs(secs),
            limit: Duration::from_secs(60),
        }
    }

    #[test]
    fn lines_mode_prints_only_state_changes() {
        let buf = Buf::default();
        let sink = ProgressSink::Lines(Arc::new(Mutex::new(buf.clone())));
        let mut p = Progress::new(sink, "worker-image-tag#1");
        p.line("injected: fleet fault worker-image-tag");
        p.update(&status(Phase::Firing, "inactive", 0));
        p.update(&status(Phase::Firing, "inactive", 1));
        p.update(&status(Phase::Firing, "pending since 09:54:49.851Z", 1));
        p.update(&status(Phase::Firing, "pending since 09:54:49.851Z", 2));
        p.update(&status(Phase::Firing, "firing (alertmanager startsAt)", 6));
        p.update(&status(Phase::Resolving, "firing", 0));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "worker-image-tag#1 injected: fleet fault worker-image-tag",
                "worker-image-tag#1 waiting to fire: inactive +0.0s / deadline 1m",
                "worker-image-tag#1 waiting to fire: pending since 09:54:49.851Z +1.0s / deadline 1m",
                "worker-image-tag#1 waiting to fire: firing (alertmanager startsAt) +6.0s / deadline 1m",
                "worker-image-tag#1 waiting to resolve: firing +0.0s / resolve timeout 1m",
            ]
        );
    }
}
