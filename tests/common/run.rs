//! Reading what a `firedrill` process left behind.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The report.json of the (one) run under `reports`.
pub fn report_json(reports: &Path) -> serde_json::Value {
    let run = std::fs::read_dir(reports)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("report.json").exists())
        .expect("a report was written");
    serde_json::from_slice(&std::fs::read(run.path().join("report.json")).unwrap()).unwrap()
}

/// Waits up to `limit` for `child` to exit; its exit code.
pub fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            start.elapsed() < limit,
            "firedrill did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
