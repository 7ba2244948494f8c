//! HTTP probes against real HTTP services this test starts (axum on
//! loopback): one that returns the trace id, one that drops it, one that
//! answers 500, one that never answers; and a closed port.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use firedrill::model::probe::HTTP_PROBE_KIND;
use firedrill::probe::http::{run_http_probe, HttpExpect, HttpProbeConfig, TraceIdFrom};
use firedrill::probe::traceparent::TraceParent;
use std::time::Duration;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A task API: 202 with the task's trace id in the body and the
/// `traceparent` echoed, as an instrumented gateway answers.
fn gateway() -> axum::Router {
    axum::Router::new().route(
        "/v1/tasks",
        post(
            |headers: HeaderMap, Json(body): Json<serde_json::Value>| async move {
                let tp = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let trace_id = TraceParent::parse(&tp)
                    .map(|t| t.trace_id_hex())
                    .unwrap_or_default();
                (
                    StatusCode::ACCEPTED,
                    [("traceparent", tp)],
                    Json(serde_json::json!({
                        "status": "accepted",
                        "task_id": body["task_id"],
                        "trace_id": trace_id,
                    })),
                )
            },
        ),
    )
}

fn probe(url: &str) -> HttpProbeConfig {
    HttpProbeConfig {
        name: "gateway".into(),
        method: "POST".into(),
        url: format!("{url}/v1/tasks"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(r#"{"task_id":"{{request.id}}","kind":"sentinel"}"#.into()),
        count: 60,
        concurrency: 12,
        timeout: Duration::from_secs(5),
        expect: HttpExpect {
            status: vec![202],
            json_pointer: Some("/status".into()),
            json_value: Some(serde_json::json!("accepted")),
            trace_id: Some(TraceIdFrom::Body("/trace_id".into())),
        },
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn every_request_passes_with_its_trace_id_back() {
    let url = serve(gateway()).await;
    let out = run_http_probe(&probe(&url), &client()).await;
    assert_eq!(out.agent_type, HTTP_PROBE_KIND);
    assert_eq!((out.sent, out.acked, out.completed), (60, 60, 60));
    assert!(out.passed(), "{:?}", out.failure_reasons());
    assert_eq!(out.latency.count, 60);
    assert!(out.latency.histogram.is_some());
    // Fresh trace per request.
    let mut ids: Vec<&str> = out.tasks.iter().map(|t| t.trace_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
    assert_eq!(out.sentinel.as_ref().unwrap().task_id, out.tasks[0].task_id);

    // The same service judged on the echoed header.
    let mut by_header = probe(&url);
    by_header.expect.trace_id = Some(TraceIdFrom::Header("traceparent".into()));
    let out = run_http_probe(&by_header, &client()).await;
    assert!(out.passed(), "{:?}", out.failure_reasons());
}

#[tokio::test]
async fn a_service_dropping_the_trace_header_fails_every_request_by_id() {
    let url = serve(axum::Router::new().route(
        "/v1/tasks",
        post(|| async {
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"status": "accepted"})),
            )
        }),
    ))
    .await;
    let mut cfg = probe(&url);
    cfg.count = 7;
    cfg.expect.trace_id = Some(TraceIdFrom::Header("traceparent".into()));
    let out = run_http_probe(&cfg, &client()).await;
    assert!(!out.passed());
    assert_eq!((out.acked, out.completed), (7, 0));
    assert_eq!(out.trace_mismatches.len(), 7);
    let sent: Vec<&str> = out.tasks.iter().map(|t| t.task_id.as_str()).collect();
    for m in &out.trace_mismatches {
        assert!(sent.contains(&m.task_id.as_str()));
        assert_eq!(m.received, "");
    }
    let reasons = out.failure_reasons().join("\n");
    assert!(
        reasons.contains("7 answer(s) did not carry their request's trace id back"),
        "{reasons}"
    );
    assert!(reasons.contains(&out.tasks[0].task_id), "{reasons}");
}

#[tokio::test]
async fn a_service_answering_500_fails_every_request_with_the_status() {
    let url = serve(axum::Router::new().route(
        "/v1/tasks",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
    ))
    .await;
    let mut cfg = probe(&url);
    cfg.count = 5;
    let out = run_http_probe(&cfg, &client()).await;
    assert!(!out.passed());
    assert_eq!((out.acked, out.completed), (5, 0));
    assert_eq!(out.publish_failures.len(), 5);
    assert_eq!(out.publish_failures[0].reason, "HTTP 500, expected 202");
    let reasons = out.failure_reasons().join("\n");
    assert!(
        reasons.contains(
            "5 request(s) failed or were answered unexpectedly (first: HTTP 500, expected 202)"
        ),
        "{reasons}"
    );
}

/// An answer that never ends: the probe stops reading at its limit and
/// fails the request, well before the timeout, and its memory stays bounded.
#[tokio::test]
async fn an_endless_answer_fails_the_request_at_the_size_limit() {
    let url = serve(axum::Router::new().route(
        "/v1/tasks",
        post(|| async {
            let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            let endless =
                futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            (StatusCode::ACCEPTED, axum::body::Body::from_stream(endless))
        }),
    ))
    .await;
    let mut cfg = probe(&url);
    cfg.count = 3;
    cfg.concurrency = 3;
    cfg.timeout = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let out = run_http_probe(&cfg, &client()).await;
    assert!(!out.passed());
    assert_eq!(out.publish_failures.len(), 3, "{:?}", out.failure_reasons());
    assert_eq!(
        out.publish_failures[0].reason,
        "the answer is larger than 1 MiB; a probe reads at most that much"
    );
    // Ended by the limit, not by the 60 s timeout.
    assert!(started.elapsed() < Duration::from_secs(55));
}

#[tokio::test]
async fn a_service_that_never_answers_times_every_request_out() {
    let url = serve(axum::Router::new().route(
        "/v1/tasks",
        post(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    ))
    .await;
    let mut cfg = probe(&url);
    cfg.count = 6;
    cfg.concurrency = 6;
    cfg.timeout = Duration::from_millis(300);
    let out = run_http_probe(&cfg, &client()).await;
    assert!(!out.passed());
    assert_eq!(out.timed_out.len(), 6);
    assert_eq!((out.acked, out.completed), (0, 0));
    let mut want: Vec<String> = out.tasks.iter().map(|t| t.task_id.clone()).collect();
    want.sort();
    assert_eq!(out.timed_out, want);
}

#[tokio::test]
async fn a_closed_port_lists_every_request_as_failed() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = probe(&format!("http://{closed}"));
    cfg.count = 9;
    let out = run_http_probe(&cfg, &client()).await;
    assert!(!out.passed());
    assert_eq!((out.sent, out.acked, out.completed), (9, 0, 0));
    assert_eq!(out.publish_failures.len(), 9);
    for f in &out.publish_failures {
        assert!(f.reason.starts_with("request failed:"), "{}", f.reason);
        assert!(f.reason.to_lowercase().contains("connect"), "{}", f.reason);
    }
}

/// The HTTP probe's cost over a bare reqwest loop on the same service, in
/// one run (run with `--ignored --nocapture`; prints, asserts nothing timed).
/// `probe --bench-http`: the built-in service, and a given URL; both sides
/// measured and written to bench.json. A service that fails the bare loop
/// stops the bench (exit 3). Figures are not asserted (a busy machine).
#[tokio::test(flavor = "multi_thread")]
async fn bench_http_measures_the_probe_against_a_bare_loop() {
    let bench = |args: Vec<String>| async move {
        let count = ["--count".to_string(), "300".to_string()];
        let run = crate::common::run::probe_bench(count.into_iter().chain(args).collect()).await;
        (run.code, run.stderr, run.json)
    };
    let (code, err, json) = bench(vec!["--bench-http".into()]).await;
    assert_eq!(code, Some(0), "{err}");
    let json = json.expect("bench.json");
    let rows: Vec<(&str, u64)> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["measurement"].as_str().unwrap(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("(a) bare reqwest loop", 300), ("(b) HTTP probe", 300)]
    );
    assert!(json["throughput_ratio"].as_f64().unwrap() > 0.0, "{json}");
    assert_eq!(
        json["build"],
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let url = serve(axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }))).await;
    let (code, err, json) = bench(vec!["--bench-http".into(), format!("{url}/ok")]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json.unwrap()["url"], format!("{url}/ok"));

    let (code, err, json) = bench(vec!["--bench-http".into(), format!("{url}/missing")]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(json.is_none());
}

fn write_plan(dir: &std::path::Path, probe_toml: &str) {
    std::fs::write(
        dir.join("firedrill.toml"),
        r#"[targets.aegis-test]
namespace = "aegis"
nats_url = "nats://127.0.0.1:4222"
prometheus_url = "http://127.0.0.1:9"

[targets.aegis-test.variables]
tenant = "acme"
"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("probes")).unwrap();
    std::fs::write(dir.join("probes/gateway.toml"), probe_toml).unwrap();
}

fn probe_toml(base: &str) -> String {
    format!(
        r#"kind = "http"
method = "post"
url = "{base}/v1/tasks?tenant={{{{tenant}}}}"
headers = {{ content-type = "application/json" }}
body = '{{"task_id":"{{{{request.id}}}}","kind":"sentinel"}}'
count = 12
concurrency = 4
timeout = "5s"

[expect]
status = [202]
json_pointer = "/status"
json_value = "accepted"
trace_id_pointer = "/trace_id"
"#
    )
}

/// `firedrill probe` in `dir`; (exit code, stderr).
async fn firedrill_probe(dir: &std::path::Path) -> (i32, String) {
    let dir = dir.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(&dir)
            .env("CI", "true")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .args(["--config", "firedrill.toml", "--probes-dir", "probes"])
            .args([
                "--reports-dir",
                "reports",
                "probe",
                "--target",
                "aegis-test",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn firedrill_probe_runs_an_http_probe_spec_without_nats() {
    let url = serve(gateway()).await;
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path(), &probe_toml(&url));
    let (code, stderr) = firedrill_probe(dir.path()).await;
    assert_eq!(code, 0, "{stderr}");
    let report = crate::common::run::report_json(&dir.path().join("reports"));
    let p = &report["probes"][0];
    assert_eq!(p["verdict"], "pass", "{p}");
    assert_eq!(p["agent_type"], "http");
    assert_eq!(p["completed"], 12);
    let subject = p["subject"].as_str().unwrap();
    assert!(subject.starts_with("POST http://"), "{subject}");
    assert!(subject.ends_with("/v1/tasks?tenant=acme"), "{subject}");
}

#[tokio::test]
async fn firedrill_probe_to_a_closed_port_fails_every_request() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path(), &probe_toml(&format!("http://{closed}")));
    let (code, stderr) = firedrill_probe(dir.path()).await;
    assert_eq!(code, 1, "{stderr}");
    let report = crate::common::run::report_json(&dir.path().join("reports"));
    let p = &report["probes"][0];
    assert_eq!(p["verdict"], "fail");
    assert_eq!(p["completed"], 0);
    assert_eq!(p["publish_failures"].as_array().unwrap().len(), 12);
    let reasons = p["reasons"].to_string();
    assert!(reasons.contains("12 request(s) failed"), "{reasons}");
}

#[tokio::test]
async fn http_probe_spec_errors_name_the_line_and_key() {
    // (line 5, the [expect] lines from line 7, what stderr must say)
    for (line5, expect, says) in [
        (
            "",
            "json_pointer = \"status\"",
            "gateway.toml:7: expect.json_pointer: \"status\" is not a JSON pointer",
        ),
        (
            "",
            "trace_id_header = \"traceparent\"\ntrace_id_pointer = \"/t\"",
            "gateway.toml:8: expect.trace_id_pointer: the trace id comes back in one place",
        ),
        (
            "",
            "json_value = 1",
            "gateway.toml:7: expect.json_pointer: json_value is compared",
        ),
        (
            "",
            "trace_id_header = \"trace id\"",
            "gateway.toml:7: expect.trace_id_header: \"trace id\" is not a valid header name",
        ),
        ("", "status = [99]", "gateway.toml:7"),
        (
            "headers = { \"bad header\" = \"x\" }",
            "",
            "gateway.toml:5: headers.bad header: \"bad header\" is not a valid header name",
        ),
        (
            "headers = { traceparent = \"x\" }",
            "",
            "gateway.toml:5: headers.traceparent: the probe sends a fresh traceparent",
        ),
        (
            "headers = { x-id = \"{{nope}}\" }",
            "",
            "gateway.toml:5: headers.x-id: unknown template variable {{nope}}",
        ),
        (
            "headers = { x-id = \"a\\nb\" }",
            "",
            "gateway.toml:5: headers.x-id: \"a\\nb\" is not a valid header value",
        ),
        (
            "body = \"{{nope}}\"",
            "",
            "gateway.toml:5: body: unknown template variable {{nope}}",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "kind = \"http\"\nurl = \"http://127.0.0.1:1/x\"\ncount = 1\ntimeout = \"1s\"\n{line5}\n[expect]\n{expect}\n"
        );
        write_plan(dir.path(), &text);
        let (code, stderr) = firedrill_probe(dir.path()).await;
        assert_eq!(code, 2, "{text}: {stderr}");
        assert!(stderr.contains(says), "{says}\n{stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    write_plan(
        dir.path(),
        "url = \"http://x\"\nkind = \"grpc\"\ncount = 1\ntimeout = \"1s\"\n",
    );
    let (code, stderr) = firedrill_probe(dir.path()).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("gateway.toml:2: kind: unknown probe kind \"grpc\""),
        "{stderr}"
    );
}

#[test]
fn the_aegis_example_loads_with_its_http_probe_and_logql_criteria() {
    use firedrill::spec::criteria::CriterionKind;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aegis");
    let mut opts = firedrill::spec::LoadOptions::new("aegis");
    opts.root = root.clone();
    opts.config = Some(root.join("firedrill.toml"));
    opts.probes_dir = Some(root.join("probes"));
    opts.acceptance_dir = Some(root.join("acceptance"));
    let plan = firedrill::spec::load_plan(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.probes.is_empty(), "AEGIS takes no NATS sentinels");
    assert_eq!(plan.http_probes.len(), 1);
    assert_eq!(
        plan.http_probes[0].config.url,
        "http://127.0.0.1:8080/v1/executions"
    );
    assert!(plan.target.jaeger_url.is_some() && plan.target.loki_url.is_some());
    let logql = plan
        .criteria
        .iter()
        .filter(|c| matches!(c.kind, CriterionKind::Logql { .. }))
        .count();
    assert_eq!((plan.criteria.len(), logql), (5, 2));
}

#[test]
fn the_agent_os_example_loads_without_any_probe() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agent-os");
    let mut opts = firedrill::spec::LoadOptions::new("agent-os");
    opts.root = root.clone();
    opts.config = Some(root.join("firedrill.toml"));
    opts.acceptance_dir = Some(root.join("acceptance"));
    let plan = firedrill::spec::load_plan(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.probes.is_empty() && plan.http_probes.is_empty());
    assert_eq!(plan.criteria.len(), 5);
}
