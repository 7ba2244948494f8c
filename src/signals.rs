//! SIGINT/SIGTERM as a future, so long waits can `select!` on them.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the signal's name on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() -> &'static str {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
