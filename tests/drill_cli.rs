//! `firedrill drill` and `firedrill recover` as a user runs them: a signal
//! mid-wait reverts (exit 4); SIGKILL leaves a journal that blocks the next
//! drill until `recover` reverts it; a second `recover` does nothing.

use crate::common;

use common::run::report_json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn firedrill(reports: &Path, fault_file: &Path) -> Command {
    firedrill_with(reports, fault_file, "exec-file")
}

/// firedrill with the drills of `tests/fixtures/drills/<drill>`.
fn firedrill_with(reports: &Path, fault_file: &Path, drill: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.env("CI", "true")
        .env("FIREDRILL_TEST_FAULT", fault_file)
        .arg("--reports-dir")
        .arg(reports)
        .arg("--drills-dir")
        .arg(format!(
            "{}/tests/fixtures/drills/{drill}",
            env!("CARGO_MANIFEST_DIR")
        ));
    c
}

/// `firedrill drill <drill> --target local` with the drill of
/// `tests/fixtures/drills/<drill>`, in the background.
fn spawn_drill(reports: &Path, fault_file: &Path, drill: &str) -> Child {
    firedrill_with(reports, fault_file, drill)
        .args(["drill", drill, "--target", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The exec-file drill, once its fault is injected.
fn start_drill(reports: &Path, fault_file: &Path) -> Child {
    let child = spawn_drill(reports, fault_file, "exec-file");
    wait_for_file(fault_file);
    child
}

fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn wait(child: &mut Child) -> Option<i32> {
    common::run::wait(child, Duration::from_secs(60))
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
    let json = report_json(reports.path());
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

#[test]
fn sigint_during_an_inject_kills_its_grandchildren_before_reverting() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let started = reports.path().join("fault.started");
    let mut child = spawn_drill(reports.path(), &fault, "exec-grandchild");
    wait_for_file(&started);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(wait(&mut child), Some(4));
    // The grandchild would have applied the fault 4 s after the inject began.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !fault.exists(),
        "the fault went live after firedrill said it was reverted"
    );
}

#[test]
fn recover_leaves_a_live_drill_alone() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = start_drill(reports.path(), &fault);

    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("still live"), "{stdout}");

    // Even with its lock file deleted, the live owner (a running firedrill
    // on this host) keeps its journal.
    for e in std::fs::read_dir(reports.path()).unwrap().flatten() {
        let _ = std::fs::remove_file(e.path().join("journal.lock"));
    }
    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("still live"), "{stdout}");
    assert!(stdout.contains(&format!("pid {}", child.id())), "{stdout}");
    assert!(fault.exists(), "recover reverted a live drill's fault");

    // The drill itself still reverts, and says it was interrupted, not
    // "did not fire".
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(wait(&mut child), Some(4));
    assert!(!fault.exists());
}

#[test]
fn recover_goes_past_an_unreadable_journal() {
    let (reports, fault) = live_fault();
    // A dead run's journal with one injected exec fault, beside garbage.
    dead_journal(
        reports.path(),
        "20261201T000000Z-good",
        serde_json::json!(["rm", "-f", fault.display().to_string()]),
        serde_json::json!([]),
        None,
    );
    // Sorted first, so a recover that stops at it never reaches the good one.
    let bad = reports.path().join("00000000-bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("journal.json"), b"{not json").unwrap();

    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !fault.exists(),
        "the valid journal's fault stayed live: {stdout}"
    );
    assert!(
        stdout.contains("reverted: drill exec-file trial 1"),
        "{stdout}"
    );
    assert!(stdout.contains("00000000-bad"), "{stdout}");
    // A journal that could not be read may describe a live fault.
    assert_eq!(out.status.code(), Some(5), "{stdout}");
}

/// Pids of `parent`'s children whose command name is `comm`.
fn children_named(parent: u32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if name == comm && ppid == Some(parent.to_string().as_str()) {
            out.push(stat[..open].trim().parse().unwrap());
        }
    }
    out
}

#[test]
fn nats_dying_mid_drill_ends_in_an_error_verdict_and_a_report() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let mut child = spawn_drill(reports.path(), &fault, "exec-short");
    wait_for_file(&fault);
    let nats = children_named(child.id(), "nats-server");
    assert_eq!(nats.len(), 1, "the local stack's nats-server: {nats:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(nats[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The deadline (6 s) runs out, the fault is reverted, the stack stops:
    // none of it may wait on the dead NATS.
    let code = wait(&mut child);
    assert!(!fault.exists(), "the fault is still live");
    let json = report_json(reports.path());
    let errors = json["errors"].to_string();
    assert!(errors.contains("nats-server"), "{errors}");
    assert_eq!(json["drills"][0]["verdict"], "error", "{json}");
    assert_eq!(code, Some(3));
}

#[test]
fn a_run_refused_by_an_unrecovered_journal_still_writes_its_report() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    // A dead run left its fault live.
    let mut child = start_drill(reports.path(), &fault);
    child.kill().unwrap();
    child.wait().unwrap();

    let out = firedrill(reports.path(), &fault)
        .args(["run", "--target", "local", "--drills", "exec-file"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let json = report_json(reports.path());
    // The probe ran and is kept; the refusal is the report's error.
    assert!(!json["probes"].as_array().unwrap().is_empty(), "{json}");
    let errors = json["errors"].to_string();
    assert!(errors.contains("firedrill recover --journal"), "{errors}");
    assert!(fault.exists(), "the refused run must not touch the fault");
}

/// Writes a dead run's journal `<reports>/<run>/journal.json` with one
/// injected exec fault whose revert is `revert` (reading env vars `env`),
/// owned by `host` (this host when `None`).
fn dead_journal(
    reports: &Path,
    run: &str,
    revert: serde_json::Value,
    env: serde_json::Value,
    host: Option<&str>,
) -> std::path::PathBuf {
    let dir = reports.join(run);
    std::fs::create_dir_all(&dir).unwrap();
    let here = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let journal = serde_json::json!({
        "schema": 1,
        "run_id": run,
        "target": "local",
        "created_at": "2026-12-01T00:00:00Z",
        "owner": {"pid": 1, "host": host.unwrap_or(&here), "started_at": "2026-12-01T00:00:00Z"},
        "entries": [{
            "id": 1, "drill": "exec-file", "trial": 1,
            "fault": "exec touch fault",
            "record": {"type": "exec", "revert": revert, "timeout_ms": 600_000, "cwd": "/", "env": env},
            "original": null, "injected": "touch",
            "status": "injected",
            "journaled_at": "2026-12-01T00:00:00Z",
            "injected_at": "2026-12-01T00:00:01Z",
            "reverted_at": null, "error": null, "note": null,
            "manual_recovery": "rm -f fault"
        }]
    });
    let path = dir.join("journal.json");
    std::fs::write(&path, journal.to_string()).unwrap();
    path
}

#[test]
fn recover_refuses_a_revert_whose_variables_are_unset() {
    let (reports, fault) = live_fault();
    dead_journal(
        reports.path(),
        "run-env",
        serde_json::json!(["sh", "-c", "rm -f \"$FIREDRILL_TEST_FAULT\""]),
        serde_json::json!(["FIREDRILL_TEST_FAULT"]),
        None,
    );
    let out = firedrill(reports.path(), &fault)
        .env_remove("FIREDRILL_TEST_FAULT")
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(
        stdout.contains("$FIREDRILL_TEST_FAULT, which is not set here"),
        "{stdout}"
    );
    assert!(fault.exists());
    // With the variable as the drill had it, the same journal recovers.
    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!fault.exists());
}

#[test]
fn recover_bounds_a_hung_revert_and_kills_its_group() {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    let marker = reports.path().join("still-running");
    dead_journal(
        reports.path(),
        "run-hang",
        serde_json::json!([
            "sh",
            "-c",
            format!("trap '' TERM INT; sleep 3; touch {}", marker.display())
        ]),
        serde_json::json!([]),
        None,
    );
    let started = Instant::now();
    let mut child = firedrill(reports.path(), &fault)
        .args(["recover", "--revert-deadline", "1s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A Ctrl-C during the revert does not kill recover (nor orphan the revert).
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(wait(&mut child), Some(5));
    assert!(started.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    assert!(!marker.exists(), "the hung revert outlived recover");
}

#[test]
fn recover_leaves_another_hosts_journal_unless_named() {
    let (reports, fault) = live_fault();
    let path = dead_journal(
        reports.path(),
        "run-elsewhere",
        serde_json::json!(["rm", "-f", fault.display().to_string()]),
        serde_json::json!([]),
        Some("ci-runner-that-is-not-this-host"),
    );
    let out = firedrill(reports.path(), &fault)
        .arg("recover")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("written on host ci-runner-that-is-not-this-host"),
        "{stdout}"
    );
    assert!(fault.exists(), "recover ran another host's journal");
    let out = firedrill(reports.path(), &fault)
        .args(["recover", "--journal"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("ran rm -f"),
        "recover names what it runs: {stdout}"
    );
    assert!(!fault.exists());
}

/// A reports dir and a fault file that is live (as a killed drill left it).
fn live_fault() -> (tempfile::TempDir, std::path::PathBuf) {
    let reports = tempfile::tempdir().unwrap();
    let fault = reports.path().join("fault");
    std::fs::write(&fault, b"live").unwrap();
    (reports, fault)
}
