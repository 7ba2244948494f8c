//! The local stack against the real nats-server, prometheus and
//! alertmanager: it comes up, the pieces are wired to each other, and every
//! way of ending it (shutdown, drop, panic, failed start) leaves no process
//! and no temp dir behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firedrill::spec::template::Vars;
use firedrill::stack::rules::STRUCTURAL_ALERTS;
use firedrill::stack::{
    self, render_local_rules, AlertStatus, LocalStack, StackError, StackOptions,
};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// These tests change process-wide env vars (binary overrides, TMPDIR) and
/// count processes, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rules() -> String {
    let vars = firedrill::spec::builtin_local_target(&Vars::new())
        .unwrap()
        .vars();
    render_local_rules(&vars).unwrap()
}

fn options() -> StackOptions {
    StackOptions {
        rules: vec![("rules.yml".into(), rules())],
        ..StackOptions::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Gone means reaped, not just dead: `kill(pid, 0)` fails with ESRCH.
fn assert_gone(pids: &[u32]) {
    for &pid in pids {
        assert_eq!(
            kill(Pid::from_raw(pid as i32), None),
            Err(Errno::ESRCH),
            "child {pid} is still there"
        );
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "/proc/{pid} exists"
        );
    }
}

/// Pids of live processes whose command line mentions `needle` (every child
/// gets its temp dir on the command line).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

fn assert_no_leftovers(pids: &[u32], dir: &Path) {
    assert_gone(pids);
    assert!(!dir.exists(), "temp dir {} was left behind", dir.display());
    let stragglers = processes_mentioning(&dir.to_string_lossy());
    assert!(
        stragglers.is_empty(),
        "processes still use {}: {stragglers:?}",
        dir.display()
    );
}

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn stack_starts_wires_up_and_shuts_down_clean() {
    let _serial = SERIAL.lock().await;
    let t0 = Instant::now();
    let stack = LocalStack::start(options())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started_in = t0.elapsed();
    let t_started = Instant::now();

    let pids = stack.child_pids();
    let dir = stack.dir().to_path_buf();
    assert_eq!(pids.len(), 3);
    for name in [
        "prometheus.yml",
        "alertmanager.yml",
        "rules/rules.yml",
        "nats-server.log",
    ] {
        assert!(
            dir.join(name).is_file(),
            "{name} missing in {}",
            dir.display()
        );
    }
    assert!(stack
        .nats_url
        .as_deref()
        .unwrap()
        .starts_with("nats://127.0.0.1:"));
    assert!(stack.prometheus_url.starts_with("http://127.0.0.1:"));
    assert!(stack.alertmanager_url.starts_with("http://127.0.0.1:"));

    // Prometheus loaded all seven alerting rules.
    let http = http();
    let rules = get_json(&http, &format!("{}/api/v1/rules", stack.prometheus_url)).await;
    assert_eq!(rules["status"], "success");
    let names: BTreeSet<&str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r["type"] == "alerting")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, STRUCTURAL_ALERTS.into_iter().collect());

    // Alertmanager answers, runs without gossip, and routes to our webhook.
    let status = get_json(&http, &format!("{}/api/v2/status", stack.alertmanager_url)).await;
    assert_eq!(status["cluster"]["status"], "disabled");
    let am_config = status["config"]["original"].as_str().unwrap();
    assert!(am_config.contains(&stack.webhook.url), "{am_config}");

    // Prometheus already sends alerts to this Alertmanager when start()
    // returns: it learns of it only at its first discovery tick, 5 s after
    // it starts, and an alert firing before that is dropped, so start()
    // must wait for it. No polling here: that would hide exactly that gap.
    let ams = get_json(
        &http,
        &format!("{}/api/v1/alertmanagers", stack.prometheus_url),
    )
    .await;
    let active = ams["data"]["activeAlertmanagers"][0]["url"]
        .as_str()
        .unwrap_or("");
    assert!(
        active.starts_with(&stack.alertmanager_url),
        "start() returned before Prometheus had the Alertmanager again: {ams}"
    );

    // NATS with JetStream: create a stream and get a publish ack.
    let t_nats = Instant::now();
    let client = async_nats::connect(stack.nats_url.as_deref().unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "FIREDRILL_STACK_TEST".to_string(),
        subjects: vec!["firedrill.stack-test.>".to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
    let ack = js
        .publish("firedrill.stack-test.1", "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, "FIREDRILL_STACK_TEST");
    assert_eq!(ack.sequence, 1);
    drop(js);
    drop(client);
    let nats_took = t_nats.elapsed();

    // The whole alert path, end to end: with no fleet scraped, the
    // orchestrator metric is absent, so OrchestratorDown fires after its
    // 4 s `for:` (before the stack opens) and Alertmanager notifies the
    // webhook once it does.
    // It is already firing when the stack opens, so the notification can
    // arrive at once: look in everything the webhook received.
    let notified = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let hit = stack.webhook.received().into_iter().find_map(|n| {
                n.payload
                    .alerts
                    .iter()
                    .find(|a| {
                        a.alertname() == Some("OrchestratorDown") && a.status == AlertStatus::Firing
                    })
                    .cloned()
                    .map(|a| (n.received_at, a))
            });
            if let Some(hit) = hit {
                return hit;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let Ok(notified) = notified else {
        let prom_alerts = get_json(&http, &format!("{}/api/v1/alerts", stack.prometheus_url)).await;
        let am_alerts = get_json(&http, &format!("{}/api/v2/alerts", stack.alertmanager_url)).await;
        let am_log = std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default();
        let prom_log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        panic!(
            "OrchestratorDown never reached the webhook.\nreceived: {:?}\nprometheus alerts: {prom_alerts}\n\
             alertmanager alerts: {am_alerts}\nalertmanager.log:\n{am_log}\nprometheus.log:\n{prom_log}",
            stack.webhook.received()
        );
    };
    let (_, alert) = notified;
    assert_eq!(alert.labels["namespace"], "daedalus");
    assert_eq!(alert.labels["severity"], "page");
    assert_eq!(
        alert.annotations["runbook_url"],
        "docs/runbook.md#orchestrator-down"
    );
    let alert_wait = t_started.elapsed();

    let t1 = Instant::now();
    stack.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let stopped_in = t1.elapsed();
    assert_no_leftovers(&pids, &dir);

    eprintln!(
        "local stack: start {started_in:?} (all three ready, rules loaded), NATS connect + \
         stream + publish {nats_took:?}, OrchestratorDown (for: 4s) at the webhook \
         {alert_wait:?} after start returned, shutdown {stopped_in:?}"
    );
    assert!(
        stopped_in < Duration::from_secs(6),
        "shutdown took {stopped_in:?}"
    );
}

/// A scrape target that answers 503 until `ready_at`, then serves
/// `late_metric 1`.
async fn late_target(ready_at: Instant) -> String {
    let metrics = move || async move {
        if Instant::now() < ready_at {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new())
        } else {
            (axum::http::StatusCode::OK, "late_metric 1\n".to_string())
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An `absent()` leg is true until its data is first scraped. The stack
/// opens only once every healthy job has been scraped and every rule
/// group has evaluated after that, and until then Alertmanager's route
/// reaches nobody: what fired on missing data never reaches the webhook,
/// what fires at rest for real does.
#[tokio::test]
async fn alerts_on_data_not_yet_scraped_reach_nobody() {
    let _serial = SERIAL.lock().await;
    let rules = r#"groups:
  - name: opening
    rules:
      - alert: NotScrapedYet
        expr: absent(late_metric)
      - alert: FiringAtRest
        expr: vector(1)
"#;
    // Serving only well after Prometheus' first discovery tick (5 s), so
    // NotScrapedYet is firing while Alertmanager is already known.
    let late = late_target(Instant::now() + Duration::from_secs(8)).await;
    let stack = LocalStack::start(StackOptions {
        rules: vec![("opening.yml".into(), rules.into())],
        scrape_jobs: vec![stack::ScrapeJob {
            job_name: "late".into(),
            targets: vec![late],
            metrics_path: "/metrics".into(),
        }],
        healthy_jobs: vec!["late".into()],
        ..StackOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let http = http();
    let prom = &stack.prometheus_url;

    // It did fire, for seconds, with the Alertmanager known.
    let history = get_json(
        &http,
        &format!("{prom}/api/v1/query?query=count_over_time(ALERTS%7Balertname%3D%22NotScrapedYet%22%2Calertstate%3D%22firing%22%7D%5B1m%5D)"),
    )
    .await;
    let firing_samples: f64 = history["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        firing_samples >= 4.0,
        "NotScrapedYet fired in {firing_samples} evaluations, so this test proves nothing: {history}"
    );
    // And it is over when start() returns.
    let active = get_json(&http, &format!("{prom}/api/v1/alerts")).await;
    let names: Vec<&str> = active["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    assert_eq!(names, vec!["FiringAtRest"], "{active}");

    // The webhook hears FiringAtRest (group_wait 1 s) and nothing of
    // NotScrapedYet, firing or resolved.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = stack.webhook.received();
    let heard = |name: &str| {
        received
            .iter()
            .flat_map(|n| &n.payload.alerts)
            .filter(|a| a.alertname() == Some(name))
            .count()
    };
    assert!(heard("FiringAtRest") > 0, "{received:?}");
    assert_eq!(heard("NotScrapedYet"), 0, "{received:?}");
    stack.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn dropping_the_stack_without_shutdown_leaves_nothing() {
    let _serial = SERIAL.lock().await;
    let stack = LocalStack::start(options())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pids = stack.child_pids();
    let dir = stack.dir().to_path_buf();
    assert!(dir.is_dir());
    let t = Instant::now();
    drop(stack);
    let dropped_in = t.elapsed();
    assert_no_leftovers(&pids, &dir);
    eprintln!("local stack: drop {dropped_in:?}");
}

#[tokio::test]
async fn a_panic_while_the_stack_runs_leaves_nothing() {
    let _serial = SERIAL.lock().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<(Vec<u32>, PathBuf)>();
    let task = tokio::spawn(async move {
        let stack = LocalStack::start(options())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tx.send((stack.child_pids(), stack.dir().to_path_buf()))
            .unwrap();
        panic!("simulated failure while the stack runs");
    });
    let (pids, dir) = rx.await.expect("the stack started");
    assert!(task.await.unwrap_err().is_panic());
    assert_no_leftovers(&pids, &dir);
}

/// Restores an env var (or its absence) when dropped, even on panic.
struct EnvGuard(&'static str, Option<std::ffi::OsString>);

impl EnvGuard {
    fn set(name: &'static str, value: impl AsRef<std::ffi::OsStr>) -> EnvGuard {
        let old = std::env::var_os(name);
        std::env::set_var(name, value);
        EnvGuard(name, old)
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        match &self.1 {
            Some(v) => std::env::set_var(self.0, v),
            None => std::env::remove_var(self.0),
        }
    }
}

#[tokio::test]
async fn missing_binary_names_the_package_to_install() {
    let _serial = SERIAL.lock().await;
    let _env = EnvGuard::set("FIREDRILL_PROMETHEUS_BIN", "/nonexistent/prometheus");
    let err = LocalStack::start(options()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            StackError::MissingBinary {
                tool: "prometheus",
                package: "prometheus",
                env_var: "FIREDRILL_PROMETHEUS_BIN",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("sudo apt-get install prometheus"), "{msg}");
    assert!(
        msg.contains("FIREDRILL_PROMETHEUS_BIN=/nonexistent/prometheus"),
        "{msg}"
    );
}

#[tokio::test]
async fn rules_promtool_rejects_start_nothing_and_leave_no_dir() {
    let _serial = SERIAL.lock().await;
    // A private TMPDIR, so whatever this start leaves behind is visible.
    let tmp = tempfile::tempdir().unwrap();
    let _env = EnvGuard::set("TMPDIR", tmp.path());
    // promtool refuses these rules before anything starts; the message
    // names the file and quotes promtool.
    let opts = StackOptions {
        rules: vec![(
            "rules.yml".into(),
            rules().replacen("[20s]) > 0", "[20s] > 0", 1),
        )],
        ..StackOptions::default()
    };
    let err = LocalStack::start(opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StackError::RulesInvalid { .. }), "{err:?}");
    assert!(
        msg.starts_with("rules.yml: `promtool check rules` rejects it"),
        "{msg}"
    );
    assert!(msg.contains("WorkerCrashLoopBackOff"), "{msg}");

    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let stragglers = processes_mentioning(&tmp.path().to_string_lossy());
    assert!(
        stragglers.is_empty(),
        "processes still running: {stragglers:?}"
    );
}

#[tokio::test]
async fn a_startup_timeout_names_the_child_and_url() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let _env = EnvGuard::set("TMPDIR", tmp.path());
    // Too short for any real nats-server to answer.
    let opts = StackOptions {
        startup_timeout: Duration::from_nanos(1),
        ..options()
    };
    let err = LocalStack::start(opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StackError::StartupTimeout { .. }), "{err:?}");
    assert!(msg.contains("http://127.0.0.1:"), "{msg}");
    assert!(msg.contains("startup_timeout"), "{msg}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(processes_mentioning(&tmp.path().to_string_lossy()).is_empty());
}

/// Env var that turns `sigkill_helper` into the process under test.
const HELPER_ENV: &str = "FIREDRILL_STACK_SIGKILL_HELPER";

/// Not a test on its own: `children_die_when_firedrill_is_sigkilled` runs
/// this test binary again with only this test, as a stand-in firedrill.
#[tokio::test]
#[ignore = "helper process for children_die_when_firedrill_is_sigkilled"]
async fn sigkill_helper() {
    let Some(report) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let stack = LocalStack::start(options())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<String> = stack.child_pids().iter().map(u32::to_string).collect();
    std::fs::write(&report, pids.join(" ")).unwrap();
    // Wait to be killed; nothing of ours runs after SIGKILL.
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(stack);
}

/// SIGKILL skips every destructor, so only PR_SET_PDEATHSIG stands between
/// a killed firedrill and three orphaned servers.
#[tokio::test]
async fn children_die_when_firedrill_is_sigkilled() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("pids");
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigkill_helper", "--ignored", "--nocapture"])
        .env(HELPER_ENV, &report)
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let pids: Vec<u32> = loop {
        if let Ok(text) = std::fs::read_to_string(&report) {
            if !text.is_empty() {
                break text.split(' ').map(|p| p.parse().unwrap()).collect();
            }
        }
        assert!(
            helper.try_wait().unwrap().is_none(),
            "helper exited before starting the stack"
        );
        assert!(Instant::now() < deadline, "helper never started the stack");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pids.len(), 3);

    helper.kill().unwrap(); // SIGKILL
    helper.wait().unwrap();

    // The children are reparented to init (or a subreaper), which may be
    // slow to reap or not reap at all in a container: dead or zombie is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive_and_not_zombie(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let survivors: Vec<u32> = pids
        .into_iter()
        .filter(|&p| alive_and_not_zombie(p))
        .collect();
    for &pid in &survivors {
        // Do not leave them running just because the test failed.
        let _ =
            nix::sys::signal::killpg(Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "children {survivors:?} survived their parent's SIGKILL"
    );
    // SIGKILL also skips removing the temp dir; the next stack start
    // sweeps it, since its owner pid is gone.
    let stale: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(stack::stale::DIR_PREFIX))
        })
        .collect();
    assert_eq!(stale.len(), 1, "expected the killed stack's dir: {stale:?}");
    assert_eq!(
        std::fs::read_to_string(stale[0].join(stack::stale::OWNER_FILE)).unwrap(),
        helper.id().to_string()
    );
    assert_eq!(stack::stale::sweep(tmp.path()), stale);
    assert!(!stale[0].exists());
}

fn alive_and_not_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
