//! SIGINT/SIGTERM, installed once per process and shared: short waits
//! `select!` on [`shutdown_signal`]; drills watch the same [`source`] so a
//! signal during a drill reverts the fault instead of killing firedrill.

use crate::drill::{install_signal_handlers, SignalSource};
use std::sync::OnceLock;

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
