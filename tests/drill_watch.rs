//! Drills against REAL prometheus and alertmanager (the local stack), with
//! rule evaluation and scrapes every 1 s:
//!
//! - an exec fault that flips a tiny exporter's
//!   `kube_pod_container_status_waiting_reason` from 0 to 1 (as in
//!   `shared/fixtures/capture/`, rule `for: 5s`);
//! - the reference fleet's real `worker-image-tag` switch with the repo's
//!   drill spec and the local structural rules.
//!
//! Timing checks are bounds derived from the intervals, never "faster than".
//! Run with `--nocapture` to see the measured figures (`FIGURES ...`).

use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use firedrill::clients::alertmanager::Alertmanager;
use firedrill::clients::prometheus::Prometheus;
use firedrill::drill::fault::kube::KubeAccess;
use firedrill::drill::fault::{FaultContext, FaultRecord};
use firedrill::drill::journal::{EntryStatus, Journal};
use firedrill::drill::preflight::MissingMetrics;
use firedrill::drill::watch::forward;
use firedrill::drill::{run_drills, DrillEnv, DrillRun, RunOutcome, SignalSource, TriggerSender};
use firedrill::report::model::{DrillTrial, Verdict};
use firedrill::spec::drill::{DrillSpec, ExecFault, Fault, Trigger};
use firedrill::spec::SourceLoc;
use firedrill::stack::{AlertStatus, LocalStack, ScrapeJob, StackOptions};
use futures::FutureExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const ALERT: &str = "WorkerImagePullBackOff";
const RULE_FOR: Duration = Duration::from_secs(5);
const INTERVAL: Duration = Duration::from_secs(1);

/// Two stacks at a time at most: the machine has two cores.
static STACKS: Semaphore = Semaphore::const_new(2);

const RULES: &str = r#"groups:
- name: drill-test
  rules:
  - alert: WorkerImagePullBackOff
    expr: kube_pod_container_status_waiting_reason{reason="ImagePullBackOff", pod=~"daedalus-worker-.*"} > 0
    for: 5s
    labels: {severity: page, namespace: daedalus}
    annotations: {summary: "Worker {{ $labels.pod }} cannot pull its image"}
"#;

/// Serves the waiting-reason gauge: 1 while `flag` exists, else 0.
async fn exporter(flag: PathBuf) -> String {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let v = u8::from(flag.exists());
            async move {
                format!(
                    "# TYPE kube_pod_container_status_waiting_reason gauge\n\
                     kube_pod_container_status_waiting_reason{{namespace=\"daedalus\",pod=\"daedalus-worker-copilot-1\",container=\"worker\",reason=\"ImagePullBackOff\"}} {v}\n"
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct World {
    stack: LocalStack,
    dir: tempfile::TempDir,
    flag: PathBuf,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl World {
    async fn start() -> World {
        let permit = STACKS.acquire().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("fault");
        let addr = exporter(flag.clone()).await;
        let stack = LocalStack::start(StackOptions {
            scrape_jobs: vec![ScrapeJob {
                job_name: "fleet".into(),
                targets: vec![addr],
                metrics_path: "/metrics".into(),
            }],
            rules: vec![("rules.yml".into(), RULES.into())],
            scrape_interval: INTERVAL,
            evaluation_interval: INTERVAL,
            ..StackOptions::default()
        })
        .await
        .expect("local stack starts (prometheus, prometheus-alertmanager, nats-server)");
        World {
            stack,
            dir,
            flag,
            _permit: permit,
        }
    }

    fn env(&self, run_id: &str) -> DrillEnv {
        let mut env = DrillEnv::new(
            run_id,
            &self.dir.path().join("reports"),
            "local",
            true,
            Prometheus::new(&self.stack.prometheus_url),
            FaultContext::new(None, KubeAccess::default()),
        );
        env.alertmanager = Some(Alertmanager::new(&self.stack.alertmanager_url));
        env.notifications = Some(forward(self.stack.webhook.subscribe()));
        env
    }

    fn plan(&self, deadline: Duration) -> DrillSpec {
        let f = self.flag.display();
        DrillSpec {
            name: "worker-image-tag".into(),
            alert: ALERT.into(),
            expect_labels: [("namespace".to_string(), "daedalus".to_string())].into(),
            deadline,
            resolve_timeout: Duration::from_secs(30),
            trials: 1,
            silence: false,
            expect_receiver: None,
            regression: None,
            fault: Fault::Exec(ExecFault {
                inject: vec!["touch".into(), f.to_string()],
                revert: vec!["rm".into(), "-f".into(), f.to_string()],
                check: None,
                timeout: Duration::from_secs(10),
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

    async fn finish(self) {
        self.stack.shutdown().await.unwrap();
    }
}

fn at(t: &DrillTrial, event: &str) -> Option<DateTime<Utc>> {
    t.timeline.iter().find(|e| e.event == event).map(|e| e.at)
}

fn source<'a>(t: &'a DrillTrial, event: &str) -> &'a str {
    t.timeline
        .iter()
        .find(|e| e.event == event)
        .map(|e| e.source.as_str())
        .unwrap_or("")
}

fn ms(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (a - b).num_milliseconds()
}

fn all_reverted(path: &Path) -> bool {
    Journal::open(path)
        .unwrap()
        .doc()
        .entries
        .iter()
        .all(|e| e.status == EntryStatus::Reverted)
}

fn assert_reverted(w: &World, env: &DrillEnv, run: &DrillRun) {
    assert!(!w.flag.exists(), "the fault is still live");
    assert!(all_reverted(&env.journal_path()));
    for r in &run.results {
        for t in &r.trials {
            assert!(t.reverted, "{:?}", t.revert_error);
        }
    }
}

#[tokio::test]
async fn drill_passes_and_firing_is_alertmanagers_starts_at() {
    let w = World::start().await;
    let env = w.env("watch-pass");
    let run = run_drills(&[w.plan(Duration::from_secs(30))], &env)
        .await
        .unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(run.exit_code().code(), 0);
    assert_reverted(&w, &env, &run);
    let t = &r.trials[0];

    // Ground truth: the startsAt Alertmanager sent in its firing webhook.
    let notes = w.stack.webhook.received();
    let firing_hook = notes
        .iter()
        .find(|n| n.payload.status == AlertStatus::Firing)
        .expect("a firing notification reached the receiver");
    let am_starts_at = firing_hook.payload.alerts[0].starts_at;
    let firing = at(t, "firing").unwrap();
    assert_eq!(firing, am_starts_at, "firing is Alertmanager's startsAt");
    assert_eq!(source(t, "firing"), "alertmanager startsAt");

    let inject_done = at(t, "inject_done").unwrap();
    let pending = at(t, "pending").unwrap();
    let first_poll = at(t, "firing_first_poll").unwrap();
    let ttf = t.time_to_fire_ms.unwrap();
    assert_eq!(ttf, ms(firing, inject_done));
    // startsAt = activeAt + for (to Alertmanager's millisecond precision).
    assert!(
        (ms(firing, pending) - RULE_FOR.as_millis() as i64).abs() <= 1,
        "firing - pending = {} ms",
        ms(firing, pending)
    );
    // The fault shows at the next scrape, the alert at the next evaluation.
    let pending_lag = ms(pending, inject_done);
    assert!(
        (-100..=(2 * INTERVAL.as_millis() as i64 + 500)).contains(&pending_lag),
        "{pending_lag}"
    );
    // Polling sees Prometheus' firing within about one evaluation interval.
    let poll_lag = ms(first_poll, firing);
    assert!(
        (0..=INTERVAL.as_millis() as i64 + 500).contains(&poll_lag),
        "{poll_lag}"
    );
    assert!(at(t, "in_alertmanager").is_some());
    let notified = at(t, "notified").expect("notified");
    assert_eq!(notified, firing_hook.received_at);
    assert!(at(t, "resolved").is_some(), "{:?}", t.notes);
    assert_eq!(t.alert_labels["pod"], "daedalus-worker-copilot-1");
    eprintln!(
        "FIGURES pass: time_to_fire={ttf}ms (rule for {}ms) pending_after_inject={pending_lag}ms \
         first_poll_after_startsAt={poll_lag}ms notified_after_startsAt={}ms resolve_after_revert={:?}ms \
         firing_vs_am_startsAt_error=0ms",
        RULE_FOR.as_millis(),
        ms(notified, firing),
        t.time_to_resolve_ms
    );
    w.finish().await;
}

#[tokio::test]
async fn wrong_alert_name_fails_at_once_in_preflight() {
    let w = World::start().await;
    let env = w.env("watch-name");
    let mut plan = w.plan(Duration::from_secs(60));
    plan.alert = "WorkerImagePullBackof".into();
    let started = Instant::now();
    let run = run_drills(&[plan], &env).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reason
            .contains("alert WorkerImagePullBackof is not loaded in Prometheus at")
            && r.reason.contains("loaded alerts: WorkerImagePullBackOff"),
        "{}",
        r.reason
    );
    assert!(r.trials.is_empty());
    assert!(Journal::open(&env.journal_path())
        .unwrap()
        .doc()
        .entries
        .is_empty());
    assert!(!w.flag.exists());
    eprintln!("FIGURES preflight-fail: {} ms", took.as_millis());
    w.finish().await;
}

#[tokio::test]
async fn deadline_shorter_than_for_fails_at_the_deadline_and_reverts() {
    let w = World::start().await;
    let env = w.env("watch-deadline");
    let started = Instant::now();
    let run = run_drills(&[w.plan(Duration::from_secs(3))], &env)
        .await
        .unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(
        r.reason
            .contains("did not fire within 3s; last state: pending since"),
        "{}",
        r.reason
    );
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("shorter than the rule's `for`")));
    assert_eq!(run.exit_code().code(), 1);
    assert_reverted(&w, &env, &run);
    assert!(started.elapsed() < Duration::from_secs(45));
    w.finish().await;
}

#[tokio::test]
async fn cancel_while_pending_reverts_and_is_interrupted() {
    let w = World::start().await;
    let mut env = w.env("watch-cancel");
    let (trigger, signals) = SignalSource::manual();
    env.signals = signals;
    let prom = Prometheus::new(&w.stack.prometheus_url);
    tokio::spawn(async move {
        // Fire once Prometheus shows the alert pending.
        for _ in 0..200 {
            if let Ok(a) = prom.alerts().await {
                if a.iter().any(|a| a.state == "pending") {
                    // Let the drill's own poll (every 250 ms) see it too.
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trigger.fire("SIGINT");
    });
    let run = run_drills(&[w.plan(Duration::from_secs(60))], &env)
        .await
        .unwrap();
    assert_eq!(
        run.outcome,
        RunOutcome::Interrupted {
            signal: "SIGINT".into()
        }
    );
    assert_eq!(run.exit_code().code(), 4);
    let t = &run.results[0].trials[0];
    assert!(t.reason.contains("interrupted by SIGINT"), "{}", t.reason);
    assert!(at(t, "pending").is_some());
    assert!(at(t, "revert_done").is_some());
    assert_reverted(&w, &env, &run);
    w.finish().await;
}

#[tokio::test]
async fn panic_inside_the_drill_body_reverts() {
    let w = World::start().await;
    let mut env = w.env("watch-panic");
    let trigger: TriggerSender = Arc::new(|_: &Trigger| async { panic!("probe blew up") }.boxed());
    env.trigger = Some(trigger);
    let mut plan = w.plan(Duration::from_secs(60));
    plan.trigger = Some(Trigger {
        probe: "sentinel".into(),
        count: Some(1),
    });
    let run = run_drills(&[plan], &env).await.unwrap();
    let t = &run.results[0].trials[0];
    assert_eq!(t.verdict, Verdict::Error);
    assert!(
        t.reason.contains("panicked (probe blew up)"),
        "{}",
        t.reason
    );
    assert_reverted(&w, &env, &run);
    w.finish().await;
}

#[tokio::test]
async fn silence_keeps_the_receiver_quiet_and_is_expired_afterwards() {
    let w = World::start().await;
    let env = w.env("watch-silence");
    let mut plan = w.plan(Duration::from_secs(30));
    plan.silence = true;
    let run = run_drills(&[plan], &env).await.unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_reverted(&w, &env, &run);
    let t = &r.trials[0];
    assert!(at(t, "notified").is_none());
    assert!(
        source(t, "in_alertmanager").contains("suppressed"),
        "{:?}",
        t.timeline
    );
    assert_eq!(source(t, "firing"), "alertmanager startsAt");
    assert!(
        w.stack
            .webhook
            .received()
            .iter()
            .all(|n| n.payload.status != AlertStatus::Firing),
        "the silenced alert reached the receiver"
    );

    let j = Journal::open(&env.journal_path()).unwrap();
    let silence = j
        .doc()
        .entries
        .iter()
        .find_map(|e| match &e.record {
            FaultRecord::Silence { silence_id, .. } => silence_id.clone(),
            _ => None,
        })
        .expect("the silence is journaled");
    let am = Alertmanager::new(&w.stack.alertmanager_url);
    let s = am.get_silence(&silence).await.unwrap();
    assert_eq!(s.status.state, "expired");
    assert_eq!(
        s.comment,
        "firedrill drill worker-image-tag run watch-silence"
    );
    w.finish().await;
}

/// The repo's drill spec through the local stack's Kubernetes API, with the
/// strict default preflight: the fleet exposes the waiting-reason series at
/// 0 while healthy, so every metric the rule references exists before the
/// fault.
#[tokio::test]
async fn repo_worker_image_tag_drill_against_the_reference_fleet() {
    let _permit = STACKS.acquire().await.unwrap();
    let target = firedrill::spec::builtin_local_target(&Default::default()).unwrap();
    let local = firedrill::local::LocalEnv::start(&target).await.unwrap();
    let mut opts = firedrill::spec::LoadOptions::new("local");
    opts.root = env!("CARGO_MANIFEST_DIR").into();
    let spec_plan = firedrill::spec::load_plan(&opts).unwrap();
    let plan = spec_plan.drill("worker-image-tag").unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let mut env = DrillEnv::new(
        "fleet-run",
        &dir.path().join("reports"),
        "local",
        true,
        Prometheus::new(&local.stack.prometheus_url),
        FaultContext::new(local.fleet_url(), local.kube_access()),
    );
    env.alertmanager = Some(Alertmanager::new(&local.stack.alertmanager_url));
    env.notifications = Some(forward(local.stack.webhook.subscribe()));
    assert_eq!(env.options.missing_metrics, MissingMetrics::Fail);

    let run = run_drills(&[plan], &env).await.unwrap();
    let r = &run.results[0];
    assert_eq!(r.verdict, Verdict::Pass, "{} {:?}", r.reason, r.trials);
    assert!(
        local.fleet.as_ref().unwrap().active_faults().is_empty(),
        "fleet fault left on"
    );
    assert!(all_reverted(&env.journal_path()));
    let t = &r.trials[0];
    assert_eq!(source(t, "firing"), "alertmanager startsAt");
    assert!(
        !r.notes
            .iter()
            .any(|n| n.contains("kube_pod_container_status_waiting_reason")),
        "preflight should find the metric: {:?}",
        r.notes
    );
    assert!(
        t.notes.iter().any(|n| n.contains("trigger")),
        "{:?}",
        t.notes
    );
    eprintln!(
        "FIGURES fleet: time_to_fire={:?}ms pending={:?}ms notify={:?}ms resolve={:?}ms kube_api_calls={}",
        t.time_to_fire_ms,
        t.time_to_pending_ms,
        t.time_to_notify_ms,
        t.time_to_resolve_ms,
        local.fleet.as_ref().unwrap().kube_calls()
    );
    // Two access reviews and a GET to prepare, the PATCH, a GET and a
    // PATCH to revert: nothing more reaches the API server.
    assert_eq!(local.fleet.as_ref().unwrap().kube_calls(), 6);
    local.shutdown().await;
}
