//! `firedrill drill` and `firedrill recover` as a user runs them: a signal
//! mid-wait reverts (exit 4); SIGKILL leaves a journal that blocks the next
//! drill until `recover` reverts it; a second `recover` does nothing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn firedrill(reports: &Path, fault_file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.env("CI", "true")
        .env("FIREDRILL_TEST_FAULT", fault_file)
        .arg("--reports-dir")
        .arg(reports)
        .arg("--drills-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/drills/exec-file"
        ));
    c
}

fn start_drill(reports: &Path, fault_file: &Path) -> Child {
    let child = firedrill(reports, fault_file)
        .args(["drill", "exec-file", "--target", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !fault_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the fault was never injected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn wait(child: &mut Child) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "firedrill did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_mid_wait_reverts_and_exits_4() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = start_drill(reports.path(), &fault);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait(&mut child), Some(4));
    assert!(!fault.exists(), "the fault is still live after SIGTERM");
    let run = std::fs::read_dir(reports.path())
        .unwrap()
        .flatten()
        .find(|e| e.path().join("report.json").exists())
        .expect("a report was written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    assert_eq!(json["drills"][0]["trials"][0]["reverted"], true);
}

#[test]
fn sigkill_then_recover_reverts_once_and_blocks_new_drills_until_then() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = start_drill(reports.path(), &fault);
    child.kill().unwrap(); // SIGKILL: nothing in firedrill runs
    child.wait().unwrap();
    assert!(fault.exists(), "SIGKILL should leave the fault for recover");

    // A new drill refuses while a journal is unrecovered, naming the command.
    let out = firedrill(reports.path(), &fault)
        .args(["drill", "exec-file", "--target", "local"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("firedrill recover --journal"), "{stderr}");

    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !fault.exists(),
        "recover did not revert the fault: {stdout}"
    );

    // Idempotent: a second recover finds nothing to do and changes nothing.
    std::fs::write(&fault, b"someone else's file now").unwrap();
    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        fault.exists(),
        "a second recover must not revert again: {stdout}"
    );
    assert!(stdout.to_lowercase().contains("nothing"), "{stdout}");
}
