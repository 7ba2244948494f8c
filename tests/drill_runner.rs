//! The drill runner's guarantees, driven fast against a Prometheus double
//! (captured rules/series bodies; `/api/v1/alerts` follows a fault flag file
//! like real rule evaluation would) and real `exec` faults. The same
//! guarantees against real Prometheus + Alertmanager: `drill_watch.rs`.

use chrono::{DateTime, SecondsFormat, Utc};
use firedrill::clients::prometheus::Prometheus;
use firedrill::drill::fault::kube::KubeAccess;
use firedrill::drill::fault::FaultContext;
use firedrill::drill::journal::{read_doc, EntryStatus, JournalDoc};
use firedrill::drill::progress::ProgressSink;
use firedrill::drill::{
    recover, run_drills, DrillEnv, DrillError, RunOutcome, SignalSource, TriggerSender,
};
use firedrill::report::model::Verdict;
use firedrill::spec::drill::{DrillSpec, ExecFault, Fault, Trigger};
use firedrill::spec::SourceLoc;
use futures::FutureExt;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ALERT: &str = "WorkerImagePullBackOff";
/// The double's `for:`.
const FOR: Duration = Duration::from_millis(800);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `/api/v1/alerts`: pending from the flag file's mtime, firing after `FOR`.
async fn prometheus_double(flag: PathBuf) -> MockServer {
    prometheus_double_of(vec![(ALERT, flag)]).await
}

/// The same for several alerts, each following its own flag file (both
/// alerts are in the captured rules body).
async fn prometheus_double_of(flags: Vec<(&'static str, PathBuf)>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/rules"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("rules-firing.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/series"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("series.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/alerts"))
        .respond_with(move |_: &Request| {
            let mut alerts = Vec::new();
            for (alert, flag) in &flags {
                if let Ok(mtime) = std::fs::metadata(flag).and_then(|m| m.modified()) {
                    let active: DateTime<Utc> = mtime.into();
                    let firing = Utc::now() - active > chrono::TimeDelta::from_std(FOR).unwrap();
                    alerts.push(json!({
                        "labels": {"alertname": alert, "namespace": "daedalus", "pod": "daedalus-worker-copilot-1", "severity": "page"},
                        "annotations": {},
                        "state": if firing { "firing" } else { "pending" },
                        "activeAt": ts(active),
                        "value": "1e+00"
                    }));
                }
            }
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "data": {"alerts": alerts}}))
        })
        .mount(&server)
        .await;
    server
}

fn sh(s: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), s.into()]
}

struct World {
    dir: tempfile::TempDir,
    flag: PathBuf,
    server: MockServer,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("fault");
        let server = prometheus_double(flag.clone()).await;
        World { dir, flag, server }
    }

    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    fn env(&self, run_id: &str) -> DrillEnv {
        let mut env = DrillEnv::new(
            run_id,
            &self.reports(),
            "local",
            true,
            Prometheus::new(&self.server.uri()),
            FaultContext::new(None, KubeAccess::default()),
        );
        env.options.poll_interval = Duration::from_millis(50);
        env
    }

    /// An exec drill that touches the flag file (after running `before`).
    fn plan(&self, before: &str, revert_extra: &str, deadline: Duration) -> DrillSpec {
        let f = self.flag.display();
        DrillSpec {
            name: "worker-image-tag".into(),
            alert: ALERT.into(),
            expect_labels: [("namespace".to_string(), "daedalus".to_string())].into(),
            deadline,
            resolve_timeout: Duration::from_secs(5),
            trials: 1,
            silence: false,
            expect_receiver: None,
            regression: None,
            fault: Fault::Exec(ExecFault {
                inject: sh(&format!("{before} touch {f}")),
                revert: sh(&format!("{revert_extra} rm -f {f}")),
                check: Some(sh(&format!("test -e {f} && echo on || echo off"))),
                timeout: Duration::from_secs(30),
                touches: Vec::new(),
            }),
            trigger: None,
            source: SourceLoc {
                file: "test.toml".into(),
                line: 1,
            },
            fault_line: 1,
        }
    }
}

/// The journal as written (read without taking the lock a live run holds).
fn journal(path: &Path) -> JournalDoc {
    read_doc(path).unwrap()
}

fn all_reverted(path: &Path) -> bool {
    journal(path)
        .entries
        .iter()
        .all(|e| e.status == EntryStatus::Reverted)
}

#[tokio::test]
async fn refuses_unless_the_target_allows_drills() {
    let w = World::new().await;
    let mut env = w.env("r0");
    env.drills_allowed = false;
    let err = run_drills(&[w.plan("", "", Duration::from_secs(5))], &env)
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::NotAllowed { .. }));
    assert_eq!(err.exit_code().code(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("target local") && msg.contains("drills_allowed = true"),
        "{msg}"
    );
    assert!(!w.reports().exists(), "nothing written");
}

#[tokio::test]
async fn journal_is_written_before_inject_and_the_fault_reverted_on_pass() {
    let w = World::new().await;
    let env = w.env("run-pass");
    let journal_path = env.journal_path();
    let snapshot = w.dir.path().join("journal-at-inject.json");
    let plan = w.plan(
        &format!("cp {} {} &&", journal_path.display(), snapshot.display()),
        "",
        Duration::from_secs(10),
    );
    let run = run_drills(&[plan], &env).await.unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(run.exit_code().code(), 0);
    assert_eq!(run.outcome, RunOutcome::Completed);

    // The inject command saw the journal entry, with the original state.
    let at_inject: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let e = &at_inject["entries"][0];
    assert_eq!(e["status"], "injecting");
    assert_eq!(e["original"], "off");
    assert_eq!(e["drill"], "worker-image-tag");
    assert_eq!(e["record"]["type"], "exec");

    assert!(!w.flag.exists(), "reverted");
    assert!(all_reverted(&journal_path));
    let t = &r.trials[0];
    let names: Vec<&str> = t.timeline.iter().map(|e| e.event.as_str()).collect();
    for want in [
        "inject_started",
        "inject_done",
        "pending",
        "firing",
        "revert_done",
        "resolved",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let ttf = t.time_to_fire_ms.unwrap();
    assert!(ttf >= FOR.as_millis() as i64 - 100, "{ttf}");
    assert!(t.reverted);
    assert_eq!(t.alert_labels["pod"], "daedalus-worker-copilot-1");
    assert!(r.time_to_fire.is_some());
}

#[tokio::test]
async fn deadline_fails_and_still_reverts() {
    let w = World::new().await;
    let mut env = w.env("run-deadline");
    env.options.settle = Duration::from_millis(100);
    // Deadline shorter than the double's `for`.
    let plan = w.plan("", "", Duration::from_millis(300));
    let started = Instant::now();
    let run = run_drills(&[plan], &env).await.unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reason
            .contains("did not fire within 300ms; last state: pending since"),
        "{}",
        r.reason
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("shorter than the rule's `for`")),
        "{:?}",
        r.notes
    );
    assert_eq!(run.exit_code().code(), 1);
    assert!(!w.flag.exists());
    assert!(all_reverted(&env.journal_path()));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn cancel_mid_wait_reverts_and_maps_to_exit_4() {
    let w = World::new().await;
    let mut env = w.env("run-cancel");
    let (trigger, signals) = SignalSource::manual();
    env.signals = signals;
    let plan = w.plan("", "", Duration::from_secs(60));
    let flag = w.flag.clone();
    tokio::spawn(async move {
        while !flag.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.fire("SIGINT");
    });
    let started = Instant::now();
    let run = run_drills(&[plan.clone(), plan], &env).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        run.outcome,
        RunOutcome::Interrupted {
            signal: "SIGINT".into()
        }
    );
    assert_eq!(run.exit_code().code(), 4);
    assert_eq!(run.results.len(), 1, "the second drill never started");
    let t = &run.results[0].trials[0];
    assert!(t.reason.contains("interrupted by SIGINT"), "{}", t.reason);
    assert!(t.reverted);
    assert!(t.timeline.iter().any(|e| e.event == "revert_done"));
    assert!(!w.flag.exists());
    assert!(all_reverted(&env.journal_path()));
}

#[tokio::test]
async fn panic_in_the_drill_body_still_reverts() {
    let w = World::new().await;
    let mut env = w.env("run-panic");
    let trigger: TriggerSender =
        Arc::new(|_: &Trigger| async { panic!("trigger exploded") }.boxed());
    env.trigger = Some(trigger);
    let mut plan = w.plan("", "", Duration::from_secs(60));
    plan.trigger = Some(Trigger {
        probe: "sentinel".into(),
        count: None,
    });
    let run = run_drills(&[plan], &env).await.unwrap();
    let t = &run.results[0].trials[0];
    assert_eq!(t.verdict, Verdict::Error);
    assert!(
        t.reason.contains("panicked (trigger exploded)"),
        "{}",
        t.reason
    );
    assert!(t.reverted);
    assert!(!w.flag.exists());
    assert!(all_reverted(&env.journal_path()));
    assert_eq!(run.exit_code().code(), 3);
}

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

#[tokio::test]
async fn a_second_signal_during_revert_is_ignored() {
    let w = World::new().await;
    let mut env = w.env("run-2sig");
    let out = Buf::default();
    env.progress = ProgressSink::Lines(Arc::new(Mutex::new(out.clone())));
    let (trigger, signals) = SignalSource::manual();
    env.signals = signals;
    let marker = w.dir.path().join("reverting");
    let plan = w.plan(
        "",
        &format!("touch {}; sleep 1;", marker.display()),
        Duration::from_secs(60),
    );
    let flag = w.flag.clone();
    tokio::spawn(async move {
        while !flag.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.fire("SIGINT");
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.fire("SIGTERM");
    });
    let run = run_drills(&[plan], &env).await.unwrap();
    assert_eq!(run.exit_code().code(), 4, "{:?}", run.outcome);
    assert!(
        !w.flag.exists(),
        "the revert finished despite the second signal"
    );
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("SIGTERM received while reverting: ignored"),
        "{text}"
    );
    // The revert line names what undid the fault, not the inject command.
    assert!(text.contains("reverted: ran sh -c"), "{text}");
}

#[tokio::test]
async fn a_revert_past_the_hard_deadline_is_a_revert_failure() {
    let w = World::new().await;
    let mut env = w.env("run-slow-revert");
    env.options.revert_deadline = Duration::from_millis(500);
    let (trigger, signals) = SignalSource::manual();
    env.signals = signals;
    let plan = w.plan("", "sleep 5;", Duration::from_secs(60));
    let flag = w.flag.clone();
    tokio::spawn(async move {
        while !flag.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.fire("SIGTERM");
    });
    let started = Instant::now();
    let run = run_drills(&[plan], &env).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at the hard deadline"
    );
    assert_eq!(run.outcome, RunOutcome::RevertFailed);
    assert_eq!(run.exit_code().code(), 5);
    let r = &run.results[0];
    let manual = r.manual_recovery.as_ref().unwrap().plain();
    let jp = env.journal_path();
    assert!(
        manual.contains(&format!("firedrill recover --journal {}", jp.display())),
        "{manual}"
    );
    assert!(manual.contains("rm -f"), "{manual}");
    assert!(!r.trials[0].reverted);
    assert!(r.trials[0]
        .revert_error
        .as_deref()
        .unwrap()
        .contains("did not finish within 500ms"));
    let j = journal(&jp);
    assert_eq!(j.entries[0].status, EntryStatus::RevertFailed);

    // The next run refuses, naming the recover command; recover fixes it.
    assert!(w.flag.exists(), "still live");
    let err = run_drills(
        &[w.plan("", "", Duration::from_secs(5))],
        &w.env("run-next"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code().code(), 5);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("firedrill recover --journal {}", jp.display())),
        "{msg}"
    );
    assert!(msg.contains("revert_failed"), "{msg}");

    let ctx = FaultContext::new(None, KubeAccess::default());
    let rep = recover(None, &w.reports(), &ctx).await;
    assert_eq!(rep.reverted.len(), 1, "{rep:?}");
    assert_eq!(rep.exit_code().code(), 0);
    assert!(!w.flag.exists());
    let again = recover(None, &w.reports(), &ctx).await;
    assert!(again.nothing_to_do());
    assert!(
        again.summary().starts_with("nothing to recover"),
        "{}",
        again.summary()
    );

    let run = run_drills(
        &[w.plan("", "", Duration::from_secs(10))],
        &w.env("run-after"),
    )
    .await
    .unwrap();
    assert_eq!(
        run.results[0].verdict,
        Verdict::Pass,
        "{}",
        run.results[0].reason
    );
}

#[tokio::test]
async fn trials_repeat_and_report_min_median_max() {
    let w = World::new().await;
    let mut env = w.env("run-trials");
    env.options.trials = Some(3);
    let run = run_drills(&[w.plan("", "", Duration::from_secs(10))], &env)
        .await
        .unwrap();
    let r = &run.results[0];
    assert_eq!(r.trials.len(), 3);
    assert!(
        r.trials.iter().all(|t| t.verdict == Verdict::Pass),
        "{}",
        r.reason
    );
    let s = r.time_to_fire.unwrap();
    assert_eq!(s.count, 3);
    assert!(s.min_ms <= s.median_ms && s.median_ms <= s.max_ms);
    assert!(
        r.reason.contains("fired in every trial (3)"),
        "{}",
        r.reason
    );
    let j = journal(&env.journal_path());
    assert_eq!(j.entries.len(), 3);
    assert!(j.entries.iter().map(|e| e.trial).eq(1..=3));
    assert!(all_reverted(&env.journal_path()));
}

#[tokio::test]
async fn preflight_failure_injects_nothing() {
    let w = World::new().await;
    let env = w.env("run-preflight");
    let mut plan = w.plan("", "", Duration::from_secs(60));
    plan.alert = "NoSuchAlert".into();
    let started = Instant::now();
    let run = run_drills(&[plan], &env).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reason
            .contains("alert NoSuchAlert is not loaded in Prometheus at"),
        "{}",
        r.reason
    );
    assert!(r.trials.is_empty());
    assert!(journal(&env.journal_path()).entries.is_empty());
    assert_eq!(run.exit_code().code(), 1);
}

/// Two exec drills for `--parallel` against a double following one flag
/// file per alert: `a` raises WorkerImagePullBackOff, `b` OrchestratorDown.
struct Pair {
    dir: tempfile::TempDir,
    server: MockServer,
}

impl Pair {
    async fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let server = prometheus_double_of(vec![
            (ALERT, dir.path().join("a")),
            ("OrchestratorDown", dir.path().join("b")),
        ])
        .await;
        Pair { dir, server }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env(&self, run_id: &str) -> DrillEnv {
        let mut env = DrillEnv::new(
            run_id,
            &self.dir.path().join("reports"),
            "local",
            true,
            Prometheus::new(&self.server.uri()),
            FaultContext::new(None, KubeAccess::default()),
        );
        env.options.poll_interval = Duration::from_millis(50);
        env.options.parallel = true;
        env
    }

    /// Drill `which` ("a" or "b"): its inject copies the journal aside, then
    /// touches its flag; `check` runs `before_check` first.
    fn plan(&self, which: &str, touches: &[&str], before_check: &str) -> DrillSpec {
        let (name, alert) = match which {
            "a" => ("drill-a", ALERT),
            _ => ("drill-b", "OrchestratorDown"),
        };
        let flag = self.file(which).display().to_string();
        let seen = self.file(&format!("journal-at-inject-{which}.json"));
        let journal = self.dir.path().join("reports/par/journal.json");
        DrillSpec {
            name: name.into(),
            alert: alert.into(),
            expect_labels: [("namespace".to_string(), "daedalus".to_string())].into(),
            deadline: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(5),
            trials: 1,
            silence: false,
            expect_receiver: None,
            regression: None,
            fault: Fault::Exec(ExecFault {
                inject: sh(&format!(
                    "cp {} {} && touch {flag}",
                    journal.display(),
                    seen.display()
                )),
                revert: sh(&format!("rm -f {flag}")),
                check: Some(sh(&format!(
                    "{before_check} test -e {flag} && echo on || echo off"
                ))),
                timeout: Duration::from_secs(30),
                touches: touches.iter().map(|t| t.to_string()).collect(),
            }),
            trigger: None,
            source: SourceLoc {
                file: format!("{name}.toml").into(),
                line: 1,
            },
            fault_line: 1,
        }
    }
}

#[tokio::test]
async fn a_parallel_group_journals_every_fault_before_any_inject() {
    let p = Pair::new().await;
    let env = p.env("par");
    let plans = [p.plan("a", &["file a"], ""), p.plan("b", &["file b"], "")];
    let run = run_drills(&plans, &env).await.unwrap();
    assert_eq!(run.groups.len(), 1, "{:?}", run.groups);
    assert_eq!(run.groups[0].drills, ["drill-a", "drill-b"]);
    assert_eq!(run.groups[0].footprints, ["file a", "file b"]);
    for r in &run.results {
        assert_eq!(r.verdict, Verdict::Pass, "{}: {}", r.name, r.reason);
    }
    // Each inject saw both faults journaled (and neither injected yet by
    // the journal's word, or at most the other one).
    for which in ["a", "b"] {
        let seen: Value = serde_json::from_str(
            &std::fs::read_to_string(p.file(&format!("journal-at-inject-{which}.json"))).unwrap(),
        )
        .unwrap();
        let drills: Vec<&str> = seen["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["drill"].as_str().unwrap())
            .collect();
        assert_eq!(
            drills.len(),
            2,
            "{which} injected before both were journaled: {seen:#}"
        );
    }
    assert!(all_reverted(&env.journal_path()));
    assert!(!p.file("a").exists() && !p.file("b").exists());
    assert_eq!(run.exit_code().code(), 0);
}

#[tokio::test]
async fn drills_on_the_same_thing_are_never_grouped() {
    let p = Pair::new().await;
    let env = p.env("par");
    let plans = [
        p.plan("a", &["one file"], ""),
        p.plan("b", &["one file"], ""),
    ];
    let run = run_drills(&plans, &env).await.unwrap();
    let groups: Vec<&[String]> = run.groups.iter().map(|g| g.drills.as_slice()).collect();
    assert_eq!(groups, [["drill-a".to_string()], ["drill-b".to_string()]]);
    // An exec fault that declares nothing runs alone too.
    let env = p.env("par2");
    let plans = [p.plan("a", &[], ""), p.plan("b", &["file b"], "")];
    let run = run_drills(&plans, &env).await.unwrap();
    assert_eq!(run.groups.len(), 2);
}

#[tokio::test]
async fn an_alert_active_before_its_inject_voids_the_drill() {
    let p = Pair::new().await;
    let env = p.env("par");
    // b's alert goes active after its quiet wait, before the group injects
    // (its check command raises it: something else did, as far as the
    // drill can tell).
    let b_flag = p.file("b").display().to_string();
    let plans = [
        p.plan("a", &["file a"], ""),
        p.plan("b", &["file b"], &format!("touch {b_flag};")),
    ];
    let run = run_drills(&plans, &env).await.unwrap();
    let (a, b) = (&run.results[0], &run.results[1]);
    assert_eq!(a.verdict, Verdict::Pass, "{}", a.reason);
    assert_eq!(b.verdict, Verdict::Fail, "never a pass: {}", b.reason);
    assert!(
        b.trials[0]
            .reason
            .starts_with("void: alert OrchestratorDown"),
        "{}",
        b.trials[0].reason
    );
    assert!(
        !p.file("journal-at-inject-b.json").exists(),
        "b's fault was injected"
    );
    let j = journal(&env.journal_path());
    let e = j.entries.iter().find(|e| e.drill == "drill-b").unwrap();
    assert_eq!(e.status, EntryStatus::Reverted);
    assert_eq!(
        e.note.as_deref(),
        Some("never injected: the drill was void")
    );
    assert_eq!(run.exit_code().code(), 1);

    // --retry-serial re-runs it alone once its group is done; whatever
    // raised its alert has gone by then (here: the test clears it when the
    // void is journaled), so alone it passes.
    std::fs::remove_file(p.file("b")).unwrap();
    let mut env = p.env("par-retry");
    env.options.retry_serial = true;
    let once = format!("{b_flag}.once");
    let plans = [
        p.plan("a", &["file a"], ""),
        p.plan(
            "b",
            &["file b"],
            &format!("test -e {once} || {{ touch {once} {b_flag}; }};"),
        ),
    ];
    let (journal_path, flag) = (env.journal_path(), p.file("b"));
    tokio::spawn(async move {
        loop {
            let void = read_doc(&journal_path).is_ok_and(|j| {
                j.entries
                    .iter()
                    .any(|e| e.note.as_deref() == Some("never injected: the drill was void"))
            });
            if void {
                let _ = std::fs::remove_file(&flag);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let run = run_drills(&plans, &env).await.unwrap();
    let b = &run.results[1];
    assert_eq!(b.verdict, Verdict::Pass, "{}", b.reason);
    assert!(
        b.notes[0].starts_with("re-run alone (--retry-serial) after its alert was already active"),
        "{:?}",
        b.notes
    );
}

#[tokio::test]
async fn one_failed_revert_in_a_group_does_not_stop_the_others() {
    let p = Pair::new().await;
    let env = p.env("par");
    let mut a = p.plan("a", &["file a"], "");
    if let Fault::Exec(e) = &mut a.fault {
        e.revert = sh("echo cannot >&2; exit 3");
    }
    let b = p.plan("b", &["file b"], "");
    let run = run_drills(&[a, b], &env).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::RevertFailed);
    assert_eq!(run.exit_code().code(), 5);
    let (a, b) = (&run.results[0], &run.results[1]);
    assert!(p.file("a").exists(), "a's revert cannot have worked");
    assert!(!p.file("b").exists(), "b's fault was left live");
    assert!(b.trials[0].reverted, "{}", b.reason);
    let recovery = a.manual_recovery.as_ref().expect("a says how to recover");
    // Only a's own fault: b's was reverted and is b's to name.
    let by_hand: Vec<_> = recovery
        .steps
        .iter()
        .filter(|s| s.label.contains("by hand"))
        .collect();
    assert_eq!(by_hand.len(), 1, "{recovery:?}");
    assert!(by_hand[0].command.contains("exit 3"), "{recovery:?}");
    assert!(b.manual_recovery.is_none());
}
