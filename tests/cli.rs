//! The binary as a user runs it: exit codes, reports, and no process or
//! temp dir left behind on any exit path.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn firedrill() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.env("CI", "true")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT");
    c
}

/// Pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Field 4 (ppid) follows the parenthesised command name.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("firedrill did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn smoke_passes_and_writes_reports() {
    let reports = tempfile::tempdir().unwrap();
    let out = firedrill()
        .args(["smoke", "--reports-dir"])
        .arg(reports.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("sentinel") && stdout.contains("verdict: pass"),
        "{stdout}"
    );
    let run_dir = std::fs::read_dir(reports.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 3);
    // The raw histograms behind the percentiles (merge reads them).
    assert!(json["probes"][0]["latency"]["histogram"].is_string());
    assert!(json["drills"][0]["time_to_fire_histogram"].is_string());
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["probes"][0]["verdict"], "pass");
    assert_eq!(json["probes"][0]["completed"], json["probes"][0]["sent"]);
    // Phase 5 criteria, the worker-image-tag drill and a small trace audit.
    let criteria: Vec<(&str, &str)> = json["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        criteria,
        [("AC1", "pass"), ("AC2", "pass"), ("AC5", "skipped")]
    );
    assert_eq!(json["drills"][0]["name"], "worker-image-tag");
    assert_eq!(json["drills"][0]["verdict"], "pass");
    assert_eq!(json["trace_audit"]["failed"], 0);
    assert_eq!(json["trace_audit"]["passed"], json["probes"][0]["sent"]);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Sentinel probes") && md.contains("```mermaid"),
        "{md}"
    );
}

/// A loopback port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `nats_creds_env` may hold the .creds contents (as a CI secret does);
/// whether they parse or not, no byte of them reaches stdout, stderr or
/// any file of the report.
#[test]
fn nats_creds_contents_never_reach_output_or_reports() {
    const MARKER: &str = "FIREDRILLSECRETMARKER7f3a";
    let creds = |seed: &str| {
        format!(
            "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.{MARKER}.c2ln\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            r#"[targets.remote]
namespace = "daedalus"
nats_url = "nats://127.0.0.1:{port}"
nats_creds_env = "FIREDRILL_TEST_NATS_CREDS"
prometheus_url = "http://127.0.0.1:{port}/"

[targets.remote.variables]
stream = "DAEDALUS_TASKS"
"#
        ),
    )
    .unwrap();
    let cases = [
        // Not an NKEY seed: the contents cannot be parsed.
        (creds(&format!("SU{MARKER}")), "FIREDRILL_TEST_NATS_CREDS"),
        // A well-formed seed (async-nats' documentation example): parsed,
        // then the dead server refuses the connection.
        (
            creds("SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM"),
            "cannot connect to NATS",
        ),
    ];
    for (value, says) in cases {
        let reports = dir.path().join("reports");
        let _ = std::fs::remove_dir_all(&reports);
        let out = firedrill()
            .current_dir(dir.path())
            .env("FIREDRILL_TEST_NATS_CREDS", &value)
            .args(["run", "--target", "remote"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !stdout.contains(MARKER),
            "stdout leaked the creds:\n{stdout}"
        );
        assert!(
            !stderr.contains(MARKER),
            "stderr leaked the creds:\n{stderr}"
        );
        let files = files_under(&reports);
        assert!(
            files.iter().any(|f| f.ends_with("report.json")),
            "a report was written: {files:?}"
        );
        for f in files {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            assert!(
                !text.contains(MARKER),
                "{} leaked the creds:\n{text}",
                f.display()
            );
        }
    }
}

/// Every duration is capped at 30 days, in flags and spec files alike: a
/// huge one is a usage error (exit 2) naming where it came from, not a
/// panic (exit 101) or an 11 000-year wait.
#[test]
fn durations_over_30_days_are_usage_errors() {
    for args in [
        &["accept", "--target", "aks-test", "--since", "1000000years"][..],
        &["run", "--target", "local", "--extra-window", "99999999h"],
        &["run", "--target", "local", "--settle", "31days"],
        &["trace-audit", "--span-wait", "1000000years"],
    ] {
        let out = firedrill().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args[args.len() - 2];
        assert!(
            stderr.contains(flag) && stderr.contains("maximum of 30 days"),
            "{args:?}: {stderr}"
        );
    }

    let reports = tempfile::tempdir().unwrap();
    let out = firedrill()
        .arg("--drills-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/spec/invalid/duration-over-cap/induced-failures"
        ))
        .arg("--reports-dir")
        .arg(reports.path())
        .args(["drill", "worker-crash", "--target", "local"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("worker-crash.toml:3: deadline: duration \"1000000years\" is longer than the maximum of 30 days"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(reports.path()).unwrap().count(),
        0,
        "nothing ran"
    );
}

/// Sentinel ids from the command line are checked before anything runs.
#[test]
fn malformed_sentinel_ids_are_usage_errors() {
    let good_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (task, trace, flag) in [
        ("sentinel-1", "x\"}) or vector(1) #", "--sentinel-trace-id"),
        (
            "sentinel-1",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "--sentinel-trace-id",
        ),
        (
            "sentinel-1",
            "00000000000000000000000000000000",
            "--sentinel-trace-id",
        ),
        ("x\"})\nor vector(1)", good_trace, "--sentinel-task-id"),
    ] {
        let out = firedrill()
            .args(["accept", "--target", "aks-test", "--sentinel-task-id", task])
            .args(["--sentinel-trace-id", trace])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{task:?} {trace:?}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn unknown_target_is_a_usage_error() {
    let out = firedrill()
        .args(["probe", "--target", "no-such-target"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-target"), "{stderr}");
    assert!(
        stderr.contains("local"),
        "should list known targets: {stderr}"
    );
}

#[test]
fn help_documents_exit_codes_and_commands() {
    let out = firedrill().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "smoke",
        "probe",
        "stack",
        "fleet",
        "Exit codes",
        "4  interrupted",
        "5  a revert failed",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// Starts `firedrill stack`, waits for it to print its temp dir, returns it.
fn start_stack() -> (Child, PathBuf) {
    let mut child = firedrill()
        .arg("stack")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut dir = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(d) = line.trim().strip_prefix("configs/logs") {
            dir = Some(PathBuf::from(d.trim()));
        }
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    (child, dir.expect("stack printed its config dir"))
}

#[test]
fn sigterm_to_stack_leaves_no_child_and_no_temp_dir() {
    let (mut child, dir) = start_stack();
    let kids = children_of(child.id());
    assert!(
        kids.len() >= 3,
        "expected nats-server, alertmanager, prometheus: {kids:?}"
    );
    assert!(dir.exists());
    sigterm(&child);
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    for k in kids {
        assert!(!alive(k), "child {k} survived SIGTERM of firedrill");
    }
    assert!(!Path::new(&dir).exists(), "temp dir {dir:?} left behind");
}

#[test]
fn sigterm_during_smoke_exits_4_and_leaves_no_child() {
    let reports = tempfile::tempdir().unwrap();
    let mut child = firedrill()
        .args(["smoke", "--reports-dir"])
        .arg(reports.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the stack's children exist, then interrupt mid-start.
    let start = Instant::now();
    let mut kids = Vec::new();
    while start.elapsed() < Duration::from_secs(20) {
        kids = children_of(child.id());
        if kids.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kids.len() >= 3, "stack children never appeared: {kids:?}");
    sigterm(&child);
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(4));
    for k in kids {
        assert!(!alive(k), "child {k} survived SIGTERM of firedrill");
    }
}

#[test]
fn sigint_during_bench_exits_4_stops_the_stack_and_says_so() {
    use std::io::BufRead;
    let reports = tempfile::tempdir().unwrap();
    let mut child = firedrill()
        .args(["--reports-dir"])
        .arg(reports.path())
        .args([
            "probe",
            "--bench",
            "--count",
            "1000000",
            "--concurrency",
            "64",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt in phase (a), with the stack and fleet up.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("bench (a)")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("bench never reached (a): {seen:?}"),
        }
    }
    let kids = children_of(child.id());
    assert!(kids.len() >= 3, "stack children: {kids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    seen.extend(rx.try_iter());
    assert_eq!(status.code(), Some(4), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("interrupted by SIGINT")),
        "{seen:?}"
    );
    for k in kids {
        assert!(!alive(k), "child {k} survived SIGINT of the bench");
    }
}

/// A loopback HTTP server that answers every request with a 500 whose body
/// echoes the request's Authorization header, as some proxies and
/// misconfigured services do. Serves `n` requests, then stops.
fn echoing_server(n: usize) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth = line.trim().to_string();
                }
            }
            let body = format!("{{\"message\":\"denied: {auth}\"}}");
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn a_token_echoed_back_by_a_remote_never_reaches_output_or_reports() {
    const TOKEN: &str = "glsa_FIREDRILLsecretTOKEN_0123456789";
    let port = echoing_server(20);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            r#"[targets.remote]
namespace = "daedalus"
nats_url = "nats://127.0.0.1:{port}"
prometheus_url = "http://127.0.0.1:{port}/"
grafana_url = "http://127.0.0.1:{port}/"
grafana_token_env = "FIREDRILL_TEST_GRAFANA_TOKEN"
dashboard_uid = "fleet-overview"

[targets.remote.variables]
stream = "DAEDALUS_TASKS"
"#
        ),
    )
    .unwrap();
    let out = firedrill()
        .current_dir(dir.path())
        .env("FIREDRILL_TEST_GRAFANA_TOKEN", TOKEN)
        .args([
            "snapshot",
            "--target",
            "remote",
            "--from",
            "2026-12-01T10:00:00Z",
            "--to",
            "2026-12-01T10:05:00Z",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    // The remote's answer is still shown, with the token cut out of it.
    assert!(stderr.contains("Bearer [redacted]"), "{stderr}");
    assert!(
        !stdout.contains(TOKEN),
        "stdout leaked the token:\n{stdout}"
    );
    assert!(
        !stderr.contains(TOKEN),
        "stderr leaked the token:\n{stderr}"
    );
    let reports = dir.path().join("reports");
    if reports.exists() {
        for f in files_under(&reports) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(!text.contains(TOKEN), "{} leaked the token", f.display());
        }
    }
}
