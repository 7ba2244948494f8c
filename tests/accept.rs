//! Acceptance criteria against a REAL Prometheus (the local stack:
//! `stack::LocalStack`) scraping a tiny exporter in this test every second,
//! on loopback only.
//!
//! Proves: AC1 from `acceptance/phase5.toml` passes on real cold-start
//! histogram data; AC2 finds the sentinel's task duration; a criterion on a
//! metric that does not exist fails with "no data"; a syntax error is
//! `error` carrying Prometheus' own message; a violated `pass_if` fails
//! listing the offending series; the snapshot criterion is skipped (accept takes no snapshot).

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use firedrill::accept::{run_criteria, runtime_vars, NO_DATA};
use firedrill::clients::prometheus::{Prometheus, QueryResult};
use firedrill::probe::SentinelRef;
use firedrill::report::model::{CriterionResult, RunWindow};
use firedrill::report::Verdict;
use firedrill::spec::{builtin_local_target, load_criteria, load_target, Vars};
use firedrill::stack::{LocalStack, ScrapeJob, StackOptions};

const SENTINEL_TASK: &str = "sentinel-it-0001";
const SENTINEL_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Serves `/metrics`; every scrape adds observations, so counters grow.
async fn start_exporter() -> std::net::SocketAddr {
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            async move { exposition(n) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// After `n` scrapes: copilot has 2n cold starts of ~8 s (bucket le=10),
/// claude n of ~40 s (bucket le=60). So p99 over any window is just under
/// 10 s for copilot and just under 60 s for claude.
fn exposition(n: u64) -> String {
    let les = ["1", "5", "10", "30", "60", "300", "1500", "+Inf"];
    let mut s = String::from(
        "# HELP daedalus_cold_start_seconds Worker cold start.\n# TYPE daedalus_cold_start_seconds histogram\n",
    );
    for (agent, count, first_bucket, each) in [("copilot", 2 * n, 2, 8.0), ("claude", n, 4, 40.0)] {
        for (i, le) in les.iter().enumerate() {
            let c = if i >= first_bucket { count } else { 0 };
            s.push_str(&format!(
                "daedalus_cold_start_seconds_bucket{{agent_type=\"{agent}\",le=\"{le}\"}} {c}\n"
            ));
        }
        s.push_str(&format!(
            "daedalus_cold_start_seconds_sum{{agent_type=\"{agent}\"}} {}\n",
            count as f64 * each
        ));
        s.push_str(&format!(
            "daedalus_cold_start_seconds_count{{agent_type=\"{agent}\"}} {count}\n"
        ));
    }
    s.push_str("# HELP daedalus_task_duration_seconds Task to artifact.\n# TYPE daedalus_task_duration_seconds summary\n");
    s.push_str(&format!(
        "daedalus_task_duration_seconds_sum{{agent_type=\"copilot\",task_id=\"{SENTINEL_TASK}\"}} 2.5\n"
    ));
    s.push_str(&format!(
        "daedalus_task_duration_seconds_count{{agent_type=\"copilot\",task_id=\"{SENTINEL_TASK}\"}} 1\n"
    ));
    s
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The project's local stack (real nats-server, alertmanager, prometheus;
/// killed on drop) scraping the test exporter every second.
async fn start_stack(exporter: std::net::SocketAddr) -> LocalStack {
    LocalStack::start(StackOptions {
        scrape_jobs: vec![ScrapeJob {
            job_name: "fleet".into(),
            targets: vec![exporter.to_string()],
            metrics_path: "/metrics".into(),
        }],
        ..StackOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until Prometheus holds at least `samples` scrapes of every series.
async fn wait_for_samples(prom: &Prometheus, samples: u32) {
    let query = "min(count_over_time(daedalus_cold_start_seconds_count[1m]))";
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok(QueryResult::Vector(v)) = prom.query(query, Utc::now()).await {
            if v.first().is_some_and(|s| s.value.value() >= samples as f64) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape {samples} samples in 40 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn by_id<'a>(results: &'a [CriterionResult], id: &str) -> &'a CriterionResult {
    results.iter().find(|r| r.id == id).unwrap()
}

const EXTRA: &str = r#"
[[criterion]]
id = "NODATA"
title = "A metric that does not exist"
query = 'max(increase(daedalus_metric_that_does_not_exist_total[{{window}}]))'
pass_if = "< 1"

[[criterion]]
id = "SYNTAX"
title = "A query Prometheus cannot parse"
query = 'sum by by (agent_type) (rate(daedalus_cold_start_seconds_count[{{window}}]))'
pass_if = "< 1"

[[criterion]]
id = "STRICT"
title = "Cold-start p99 under 30 s per agent type"
query = 'histogram_quantile(0.99, sum by (le, agent_type) (increase(daedalus_cold_start_seconds_bucket[{{window}}])))'
pass_if = "< 30"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criteria_against_real_prometheus() {
    let started = Utc::now();
    let exporter = start_exporter().await;
    let stack = start_stack(exporter).await;
    let prom = Prometheus::new(&stack.prometheus_url);
    wait_for_samples(&prom, 4).await;
    let window = RunWindow {
        start: started,
        end: Utc::now(),
    };
    let sentinel = SentinelRef {
        task_id: SENTINEL_TASK.into(),
        trace_id: SENTINEL_TRACE.into(),
    };
    let runtime = runtime_vars(window, Some(&sentinel));

    // The repo's own Phase 5 criteria on the local target.
    let local = builtin_local_target(&Vars::new()).unwrap();
    let phase5 = load_criteria(&repo().join("acceptance"), &local).unwrap();
    let results = run_criteria(&prom, &phase5, &local, &runtime, window).await;
    assert_eq!(
        results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["AC1", "AC2", "AC5"]
    );

    let ac1 = by_id(&results, "AC1");
    assert_eq!(ac1.verdict, Verdict::Pass, "{ac1:#?}");
    let series: Vec<(&str, f64)> = ac1
        .series
        .iter()
        .map(|s| (s.labels["agent_type"].as_str(), s.value.parse().unwrap()))
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(series[0].0, "claude");
    assert!(series[0].1 > 30.0 && series[0].1 <= 60.0, "{series:?}");
    assert_eq!(series[1].0, "copilot");
    assert!(series[1].1 > 5.0 && series[1].1 <= 10.0, "{series:?}");
    let secs = firedrill::accept::window_seconds(window);
    assert_eq!(
        ac1.query.as_deref(),
        Some(
            format!("histogram_quantile(0.99, sum by (le, agent_type) (increase(daedalus_cold_start_seconds_bucket[{secs}s])))")
                .as_str()
        )
    );
    let url = ac1.query_url.as_deref().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/graph?g0.expr=histogram_quantile",
            stack.prometheus_url
        )),
        "{url}"
    );
    assert!(url.contains(&format!("g0.range_input={secs}s")), "{url}");
    assert_eq!(
        ac1.evidence[0].label,
        "Grafana dashboard fleet-overview, panel \"Cold-start latency\""
    );

    let ac2 = by_id(&results, "AC2");
    assert_eq!(ac2.verdict, Verdict::Pass, "{ac2:#?}");
    assert_eq!(ac2.series[0].value, "2.5");
    assert!(ac2.query.as_deref().unwrap().contains(SENTINEL_TASK));

    let ac5 = by_id(&results, "AC5");
    assert_eq!(ac5.verdict, Verdict::Pending);

    // Failure modes, from a criteria file loaded the normal way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("extra.toml"), EXTRA).unwrap();
    let extra = load_criteria(dir.path(), &local).unwrap();
    let results = run_criteria(&prom, &extra, &local, &runtime, window).await;

    let nodata = by_id(&results, "NODATA");
    assert_eq!(nodata.verdict, Verdict::Fail, "{nodata:#?}");
    assert_eq!(nodata.reason, NO_DATA);
    assert!(nodata.series.is_empty());

    let syntax = by_id(&results, "SYNTAX");
    assert_eq!(syntax.verdict, Verdict::Error, "{syntax:#?}");
    assert!(
        syntax.reason.contains("bad_data") && syntax.reason.contains("parse error"),
        "{}",
        syntax.reason
    );

    let strict = by_id(&results, "STRICT");
    assert_eq!(strict.verdict, Verdict::Fail, "{strict:#?}");
    assert!(
        strict
            .reason
            .starts_with("1 of 2 series violate < 30: {agent_type=\"claude\"} = "),
        "{}",
        strict.reason
    );
    assert!(!strict.reason.contains("copilot"));
    let passed: Vec<(&str, bool)> = strict
        .series
        .iter()
        .map(|s| (s.labels["agent_type"].as_str(), s.passed))
        .collect();
    assert_eq!(passed, [("claude", false), ("copilot", true)]);

    // Without a sentinel, AC2 is not run against `task_id=""` (which would
    // match series lacking the label) but reported as an error.
    let no_sentinel = runtime_vars(window, None);
    let results = run_criteria(&prom, &phase5, &local, &no_sentinel, window).await;
    let ac2 = by_id(&results, "AC2");
    assert_eq!(ac2.verdict, Verdict::Error);
    assert!(ac2.reason.contains("{{sentinel.task_id}} has no value"));
    assert_eq!(ac2.query, None);
    assert_eq!(by_id(&results, "AC1").verdict, Verdict::Pass);

    // A remote target's templates: AC2 links the sentinel's trace and the
    // dashboard over the window (its endpoints are not contacted here).
    let remote = load_target(&repo().join("firedrill.toml"), "aks-test", &Vars::new()).unwrap();
    let results = run_criteria(&prom, &phase5, &remote, &runtime, window).await;
    let ac2 = by_id(&results, "AC2");
    assert_eq!(ac2.verdict, Verdict::Pass);
    let links: Vec<(&str, &str)> = ac2
        .evidence
        .iter()
        .map(|l| (l.label.as_str(), l.url.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(
        links[0].1,
        format!(
            "http://127.0.0.1:3000/d/fleet-overview?from={}&to={}",
            window.start.timestamp_millis(),
            window.end.timestamp_millis()
        )
    );
    assert_eq!(links[1].0, "Trace of the sentinel task");
    assert!(links[1].1.contains(SENTINEL_TRACE), "{}", links[1].1);

    stack.shutdown().await.unwrap();
}

/// `firedrill accept` as a user runs it, against a real Prometheus with no
/// sentinel data: a task id crafted to close the label matcher and append
/// `or vector(1)` stays one label value, so AC2 finds nothing and fails
/// (exit 1) instead of passing on the injected constant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_sentinel_task_id_cannot_make_a_criterion_pass() {
    let stack = LocalStack::start(StackOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            "[targets.remote]\nnamespace = \"daedalus\"\nnats_url = \"nats://127.0.0.1:1\"\nprometheus_url = \"{}\"\n\n[targets.remote.variables]\nstream = \"DAEDALUS_TASKS\"\n",
            stack.prometheus_url
        ),
    )
    .unwrap();
    // AC2 exactly as the repo's Phase 5 file writes it.
    let phase5 = std::fs::read_to_string(repo().join("acceptance/phase5.toml")).unwrap();
    let ac2 = phase5
        .split("[[criterion]]")
        .find(|c| c.contains("id = \"AC2\""))
        .unwrap();
    std::fs::create_dir(dir.path().join("acceptance")).unwrap();
    std::fs::write(
        dir.path().join("acceptance/ac2.toml"),
        format!("[[criterion]]{ac2}"),
    )
    .unwrap();

    let injection = r#"x"}) or vector(1) #"#;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(dir.path())
        .env("CI", "true")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .args(["accept", "--target", "remote", "--since", "5m"])
        .args(["--sentinel-task-id", injection])
        .args(["--sentinel-trace-id", SENTINEL_TRACE])
        .output()
        .await
        .unwrap();
    stack.shutdown().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let run = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let ac2 = &json["criteria"][0];
    assert_eq!(ac2["id"], "AC2");
    assert_eq!(ac2["verdict"], "fail", "{ac2:#}");
    assert_eq!(ac2["reason"], NO_DATA);
    assert_eq!(
        ac2["query"],
        r#"max(daedalus_task_duration_seconds_sum{task_id="x\"}) or vector(1) #"})"#
    );
}

#[tokio::test]
async fn unreachable_prometheus_is_an_error_for_every_criterion() {
    let port = free_port();
    let prom = Prometheus::new(&format!("http://127.0.0.1:{port}"));
    let local = builtin_local_target(&Vars::new()).unwrap();
    let phase5 = load_criteria(&repo().join("acceptance"), &local).unwrap();
    let now = Utc::now();
    let window = RunWindow {
        start: now - chrono::Duration::seconds(30),
        end: now,
    };
    let sentinel = SentinelRef {
        task_id: SENTINEL_TASK.into(),
        trace_id: SENTINEL_TRACE.into(),
    };
    let results = run_criteria(
        &prom,
        &phase5,
        &local,
        &runtime_vars(window, Some(&sentinel)),
        window,
    )
    .await;
    let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Error, Verdict::Error, Verdict::Pending],
        "{results:#?}"
    );
    assert!(results[0].reason.contains("is unreachable"));
}
