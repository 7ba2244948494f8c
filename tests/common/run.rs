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

/// What a `firedrill probe --bench…` run left: exit code, output, bench.json.
pub struct BenchRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<serde_json::Value>,
}

/// Runs `firedrill --reports-dir reports probe <args>` with `CI=true` in a
/// fresh folder, and reads the bench.json it wrote there, if any.
pub async fn probe_bench(args: Vec<String>) -> BenchRun {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(&d)
            .env("CI", "true")
            .args(["--reports-dir", "reports", "probe"])
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let json = std::fs::read_dir(dir.path().join("reports"))
        .ok()
        .and_then(|mut r| r.next())
        .map(|e| e.unwrap().path().join("bench.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap());
    BenchRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json,
    }
}
