//! `firedrill drill --all --parallel` as a user runs it, on the local stack:
//! a signal during a group reverts every fault of the group (exit 4);
//! SIGKILL during a group leaves them all to `recover`, which restores them
//! all; an alert no drill of the group expects is reported as crosstalk.

use super::common::run::report_json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// firedrill with the drills of `tests/fixtures/drills/<dir>`.
fn firedrill(reports: &Path, fault: &Path, dir: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.env("CI", "true")
        .env("FIREDRILL_TEST_FAULT", fault)
        .arg("--reports-dir")
        .arg(reports)
        .arg("--drills-dir")
        .arg(format!(
            "{}/tests/fixtures/drills/{dir}",
            env!("CARGO_MANIFEST_DIR")
        ));
    c
}

/// The two faults of the parallel-exec group: `<fault>.a`, `<fault>.b`.
fn faults(fault: &Path) -> [PathBuf; 2] {
    ["a", "b"].map(|s| PathBuf::from(format!("{}.{s}", fault.display())))
}

/// `drill --all --parallel` over the parallel-exec group, once both of its
/// faults are live.
fn start_group(reports: &Path, fault: &Path) -> Child {
    let child = firedrill(reports, fault, "parallel-exec")
        .args(["drill", "--all", "--parallel", "--target", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !faults(fault).iter().all(|f| f.exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the group's faults never both went live"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn journal(reports: &Path) -> serde_json::Value {
    let run = std::fs::read_dir(reports)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("journal.json").exists())
        .expect("a journal was written");
    serde_json::from_slice(&std::fs::read(run.path().join("journal.json")).unwrap()).unwrap()
}

#[test]
fn sigterm_during_a_parallel_group_reverts_every_fault_and_exits_4() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = start_group(reports.path(), &fault);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(
        super::common::run::wait(&mut child, Duration::from_secs(60)),
        Some(4)
    );
    for f in faults(&fault) {
        assert!(!f.exists(), "{} is still live after SIGTERM", f.display());
    }
    let json = report_json(reports.path());
    assert_eq!(json["interrupted"], true);
    assert_eq!(
        json["drill_groups"][0]["drills"],
        serde_json::json!(["exec-a", "exec-b"])
    );
    for d in json["drills"].as_array().unwrap() {
        assert_eq!(d["trials"][0]["reverted"], true, "{d:#}");
    }
    let j = journal(reports.path());
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{j:#}");
    assert!(entries.iter().all(|e| e["status"] == "reverted"), "{j:#}");
}

#[test]
fn sigkill_during_a_parallel_group_then_recover_restores_all() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = start_group(reports.path(), &fault);
    child.kill().unwrap(); // SIGKILL: nothing in firedrill runs
    child.wait().unwrap();
    for f in faults(&fault) {
        assert!(
            f.exists(),
            "SIGKILL should leave {} for recover",
            f.display()
        );
    }
    let out = firedrill(reports.path(), &fault, "parallel-exec")
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for f in faults(&fault) {
        assert!(!f.exists(), "recover left {}: {stdout}", f.display());
    }
    assert!(stdout.contains("drill exec-a trial 1"), "{stdout}");
    assert!(stdout.contains("drill exec-b trial 1"), "{stdout}");
    let j = journal(reports.path());
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{j:#}");
    assert!(entries.iter().all(|e| e["status"] == "reverted"), "{j:#}");
}

#[test]
fn an_alert_no_drill_expects_is_reported_as_crosstalk() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("unused");
    let out = firedrill(reports.path(), &fault, "crosstalk")
        .args([
            "drill",
            "--all",
            "--parallel",
            "--retry-serial",
            "--target",
            "local",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The drill expects OrchestratorDown, which its fault never raises.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("CROSSTALK: OTelCollectorDown{"),
        "{stdout}\n{stderr}"
    );
    let json = report_json(reports.path());
    let group = &json["drill_groups"][0];
    assert_eq!(group["drills"], serde_json::json!(["collector-crosstalk"]));
    assert_eq!(
        group["footprints"],
        serde_json::json!(["kubernetes Deployment daedalus/otel-collector"])
    );
    let crosstalk = group["crosstalk"].as_array().unwrap();
    let c = crosstalk
        .iter()
        .find(|c| c["alert"] == "OTelCollectorDown")
        .unwrap_or_else(|| panic!("{group:#}"));
    assert_eq!(c["labels"]["namespace"], "daedalus", "{c:#}");
    assert!(c["state"] == "pending" || c["state"] == "firing", "{c:#}");
    // --retry-serial re-ran it alone, saying why and what it was before.
    let notes = json["drills"][0]["notes"].as_array().unwrap();
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("re-run alone (--retry-serial) after crosstalk in parallel group 1"),
        "{notes:#?}"
    );
    let md = std::fs::read_to_string(
        std::fs::read_dir(reports.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().join("report.md").exists())
            .unwrap()
            .path()
            .join("report.md"),
    )
    .unwrap();
    assert!(md.contains("### Parallel groups"), "{md}");
    assert!(md.contains("⚠️ OTelCollectorDown{"), "{md}");
}
