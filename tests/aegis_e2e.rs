//! The AEGIS example (`examples/aegis/`, the real files) end to end on its
//! `aegis-rehearsal` target: firedrill's local Prometheus and Alertmanager
//! with AEGIS' own rules, scraping a small simulation this test starts —
//! the runtime API (answers the HTTP probe, returns the trace context,
//! exports its spans), its metrics with AEGIS' names, and the runtime's
//! scrape endpoint the `runtime-down` drill stops. Jaeger and Loki do not
//! run here: stand-ins answer as their HTTP APIs do (`tests/common/jaeger.rs`,
//! and a Loki holding the lines the simulation logged, answering with the
//! shapes of `tests/fixtures/loki/`). Every address is passed with `--var`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::model::span::Span;

use crate::common::run::report_json;

/// Spans the simulated services exported, by trace id (what Jaeger stores).
type SpanStore = Arc<Mutex<HashMap<String, Vec<Span>>>>;

/// One log line the simulation shipped: its stream's `job` label, when
/// (Unix ns) and the line (JSON, as AEGIS' backend logs).
#[derive(Clone)]
struct LogLine {
    job: String,
    at_ns: i64,
    line: String,
}

type LogStore = Arc<Mutex<Vec<LogLine>>>;

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The simulation's counters, scraped as AEGIS' metric names.
#[derive(Default)]
struct Counters {
    requests_ok: AtomicU64,
    /// Sum of request durations in ms, and how many fell in each bucket.
    duration_ms_sum: AtomicU64,
    executor_completed: AtomicU64,
    executor_failed: AtomicU64,
}

impl Counters {
    /// One request handled in `ms` milliseconds (all under 100 ms here).
    fn request(&self, ms: u64) {
        self.requests_ok.fetch_add(1, Ordering::Relaxed);
        self.duration_ms_sum.fetch_add(ms, Ordering::Relaxed);
    }

    /// `/metrics` of the backend (job `aegis-backend`).
    fn exposition(&self) -> String {
        let ok = self.requests_ok.load(Ordering::Relaxed);
        let sum = self.duration_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0;
        let mut t = String::new();
        t.push_str("# TYPE http_requests_total counter\n");
        t.push_str(&format!(
            "http_requests_total{{method=\"POST\",status=\"202\"}} {ok}\n"
        ));
        t.push_str("http_requests_total{method=\"POST\",status=\"500\"} 0\n");
        t.push_str("# TYPE http_request_duration_seconds histogram\n");
        for le in ["0.1", "0.5", "1", "5", "+Inf"] {
            t.push_str(&format!(
                "http_request_duration_seconds_bucket{{le=\"{le}\"}} {ok}\n"
            ));
        }
        t.push_str(&format!("http_request_duration_seconds_sum {sum}\n"));
        t.push_str(&format!("http_request_duration_seconds_count {ok}\n"));
        t.push_str("# TYPE executor_actions_total counter\n");
        t.push_str(&format!(
            "executor_actions_total{{status=\"completed\"}} {}\n",
            self.executor_completed.load(Ordering::Relaxed)
        ));
        t.push_str(&format!(
            "executor_actions_total{{status=\"failed\"}} {}\n",
            self.executor_failed.load(Ordering::Relaxed)
        ));
        t
    }
}

struct Simulation {
    /// The runtime API (probe requests, backend metrics).
    api: String,
    /// The runtime's own scrape endpoint (job `aegis-orchestrator`).
    runtime_metrics: String,
    spans: SpanStore,
    logs: LogStore,
    /// Probe requests the API answered.
    executions: Arc<AtomicU64>,
}

/// Handles one execution as AEGIS would: a backend server span under the
/// caller's span, then AI engine and executor spans, each exported; a log
/// line; the trace context back in `traceparent`.
fn execute(
    headers: &axum::http::HeaderMap,
    counters: &Counters,
    spans: &SpanStore,
    logs: &LogStore,
) -> Result<String, String> {
    let tp = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .ok_or("no traceparent")?;
    let parts: Vec<&str> = tp.split('-').collect();
    let [_, trace_id, parent, _] = parts[..] else {
        return Err(format!("bad traceparent {tp}"));
    };
    let (backend, engine, executor) = (random_hex(8), random_hex(8), random_hex(8));
    let span = |id: &str, parent: &str, name: &str, service: &str| Span {
        trace_id: trace_id.to_string(),
        span_id: id.to_string(),
        parent_span_id: Some(parent.to_string()),
        name: name.to_string(),
        service: service.to_string(),
        task_id: None,
    };
    spans
        .lock()
        .unwrap()
        .entry(trace_id.to_string())
        .or_default()
        .extend([
            span(&backend, parent, "POST /v1/executions", "aegis-backend"),
            span(&engine, &backend, "ai-engine generate", "aegis-ai-engine"),
            span(&executor, &engine, "executor run", "aegis-executor"),
        ]);
    counters.request(12);
    counters.executor_completed.fetch_add(1, Ordering::Relaxed);
    logs.lock().unwrap().push(LogLine {
        job: "aegis-backend".into(),
        at_ns: now_ns(),
        line: format!(
            r#"{{"level":"info","msg":"execution accepted","trace_id":"{trace_id}","duration_ms":12}}"#
        ),
    });
    Ok(format!("00-{trace_id}-{backend}-01"))
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Starts the simulation. `<faults>/runtime-down` makes the runtime's
/// scrape answer 503 (the `runtime-down` drill's inject creates it).
async fn simulation(faults: PathBuf) -> Simulation {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let counters = Arc::new(Counters::default());
    let spans: SpanStore = Arc::default();
    let logs: LogStore = Arc::default();
    let executions = Arc::new(AtomicU64::new(0));
    // Background traffic: users' requests and executor actions (one in
    // twenty fails, under HighExecutorFailureRate's 20%), a log line each,
    // and now and then an error logged by another service (the criteria
    // select only the backend's).
    {
        let (counters, logs) = (counters.clone(), logs.clone());
        tokio::spawn(async move {
            for n in 0u64.. {
                counters.request(40);
                if n % 20 == 0 {
                    counters.executor_failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.executor_completed.fetch_add(1, Ordering::Relaxed);
                }
                {
                    let mut logs = logs.lock().unwrap();
                    logs.push(LogLine {
                        job: "aegis-backend".into(),
                        at_ns: now_ns(),
                        line: format!(
                            r#"{{"level":"info","msg":"GET /v1/agents","duration_ms":{}}}"#,
                            40 + n % 7
                        ),
                    });
                    if n % 10 == 0 {
                        logs.push(LogLine {
                        job: "aegis-ai-engine".into(),
                        at_ns: now_ns(),
                        line: r#"{"level":"error","msg":"model error, retrying","duration_ms":2500}"#
                            .into(),
                    });
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let api = {
        let (counters, spans, logs, executions) = (
            counters.clone(),
            spans.clone(),
            logs.clone(),
            executions.clone(),
        );
        let metrics_counters = counters.clone();
        axum::Router::new()
            .route(
                "/v1/executions",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let (counters, spans, logs, executions) = (
                        counters.clone(),
                        spans.clone(),
                        logs.clone(),
                        executions.clone(),
                    );
                    async move {
                        let request_id = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|b| b["request_id"].as_str().map(str::to_string));
                        let Some(request_id) = request_id else {
                            return (StatusCode::BAD_REQUEST, "no request_id").into_response();
                        };
                        match execute(&headers, &counters, &spans, &logs) {
                            Ok(tp) => {
                                executions.fetch_add(1, Ordering::Relaxed);
                                (
                                    StatusCode::ACCEPTED,
                                    [("traceparent", tp)],
                                    axum::Json(serde_json::json!({
                                        "execution_id": request_id,
                                        "status": "accepted",
                                    })),
                                )
                                    .into_response()
                            }
                            Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
                        }
                    }
                }),
            )
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let c = metrics_counters.clone();
                    async move { c.exposition() }
                }),
            )
    };
    let runtime = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let down = faults.join("runtime-down").exists();
            async move {
                if down {
                    (StatusCode::SERVICE_UNAVAILABLE, String::new())
                } else {
                    (
                        StatusCode::OK,
                        "# TYPE aegis_runtime_up gauge\naegis_runtime_up 1\n".to_string(),
                    )
                }
            }
        }),
    );
    Simulation {
        api: serve(api).await,
        runtime_metrics: serve(runtime).await,
        spans,
        logs,
        executions,
    }
}

/// What the Loki stand-in understands of LogQL: the example's two
/// criteria's shape, `sum(count_over_time({job="J"} [|= "x"] | json |
/// <label filter> [N s]))`, evaluated over the stored lines. Anything else
/// is answered as Loki answers a query it cannot parse.
fn loki_count(query: &str, lines: &[LogLine], at_ns: i64) -> Option<u64> {
    let rest = query.strip_prefix("sum(count_over_time({job=\"")?;
    let (job, rest) = rest.split_once("\"}")?;
    let (pipeline, range) = rest.rsplit_once('[')?;
    let secs: i64 = range.strip_suffix("s]))")?.parse().ok()?;
    let pipeline = pipeline.trim();
    let (contains, filter) = match pipeline.strip_prefix("|= \"") {
        Some(p) => {
            let (needle, rest) = p.split_once('"')?;
            (Some(needle.to_string()), rest.trim())
        }
        None => (None, pipeline),
    };
    let filter = filter.strip_prefix("| json |")?.trim();
    let keep: Box<dyn Fn(&serde_json::Value) -> bool> = if filter == "level=\"error\"" {
        Box::new(|v| v["level"] == "error")
    } else if filter == "duration_ms > 1000" {
        Box::new(|v| v["duration_ms"].as_f64().is_some_and(|d| d > 1000.0))
    } else {
        return None;
    };
    let from = at_ns - secs * 1_000_000_000;
    Some(
        lines
            .iter()
            .filter(|l| l.job == job && l.at_ns > from && l.at_ns <= at_ns)
            .filter(|l| {
                contains
                    .as_ref()
                    .is_none_or(|c| l.line.contains(c.as_str()))
            })
            .filter(|l| serde_json::from_str(&l.line).is_ok_and(|v| keep(&v)))
            .count() as u64,
    )
}

fn loki_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/loki/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Loki stand-in over the simulation's lines: `GET /loki/api/v1/query`
/// with Loki's vector answer (`query-vector.json`'s shape; no series when
/// nothing matched, as `query-empty.json`) or its 400 parse error.
async fn loki(logs: LogStore, seen: Arc<Mutex<Vec<String>>>) -> String {
    use axum::extract::Query;
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/loki/api/v1/query",
        axum::routing::get(move |Query(p): Query<HashMap<String, String>>| {
            let (logs, seen) = (logs.clone(), seen.clone());
            async move {
                let query = p.get("query").cloned().unwrap_or_default();
                seen.lock().unwrap().push(query.clone());
                let at_ns = p
                    .get("time")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .and_then(|t| t.timestamp_nanos_opt())
                    .unwrap_or_else(now_ns);
                let lines = logs.lock().unwrap().clone();
                let json = |v: serde_json::Value| {
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                        serde_json::to_vec(&v).unwrap(),
                    )
                        .into_response()
                };
                match loki_count(&query, &lines, at_ns) {
                    Some(0) => {
                        json(serde_json::from_slice(&loki_fixture("query-empty.json")).unwrap())
                    }
                    Some(n) => {
                        let mut v: serde_json::Value =
                            serde_json::from_slice(&loki_fixture("query-vector.json")).unwrap();
                        let ts = at_ns as f64 / 1e9;
                        v["data"]["result"] = serde_json::json!([
                            { "metric": {}, "value": [ts, n.to_string()] }
                        ]);
                        json(v)
                    }
                    None => (
                        StatusCode::BAD_REQUEST,
                        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        loki_fixture("query-parse-error.txt"),
                    )
                        .into_response(),
                }
            }
        }),
    );
    format!("http://{}", serve(app).await)
}

#[test]
fn the_loki_stand_in_counts_what_the_example_criteria_select() {
    let line = |job: &str, at_ns: i64, line: &str| LogLine {
        job: job.into(),
        at_ns,
        line: line.into(),
    };
    let s = 1_000_000_000;
    let lines = [
        line(
            "aegis-backend",
            10 * s,
            r#"{"level":"error","msg":"db error","duration_ms":5}"#,
        ),
        line(
            "aegis-backend",
            11 * s,
            r#"{"level":"info","msg":"an error word","duration_ms":1500}"#,
        ),
        line(
            "aegis-ai-engine",
            12 * s,
            r#"{"level":"error","msg":"error","duration_ms":2500}"#,
        ),
        line(
            "aegis-backend",
            2 * s,
            r#"{"level":"error","msg":"old error","duration_ms":5}"#,
        ),
    ];
    let errors =
        r#"sum(count_over_time({job="aegis-backend"} |= "error" | json | level="error" [5s]))"#;
    let slow = r#"sum(count_over_time({job="aegis-backend"} | json | duration_ms > 1000 [5s]))"#;
    assert_eq!(loki_count(errors, &lines, 12 * s), Some(1));
    assert_eq!(loki_count(slow, &lines, 12 * s), Some(1));
    assert_eq!(loki_count(slow, &lines, 20 * s), Some(0));
    assert_eq!(
        loki_count("sum(rate({job=\"x\"}[1m]))", &lines, 12 * s),
        None
    );
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aegis")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aegis_example_runs_end_to_end_on_a_simulation() {
    let faults = tempfile::tempdir().unwrap();
    let sim = simulation(faults.path().to_path_buf()).await;
    let spans = sim.spans.clone();
    let jaeger = crate::common::jaeger::start(move |id| {
        spans.lock().unwrap().get(id).cloned().unwrap_or_default()
    })
    .await;
    let loki_queries = Arc::new(Mutex::new(Vec::new()));
    let loki_url = loki(sim.logs.clone(), loki_queries.clone()).await;
    let work = tempfile::tempdir().unwrap();
    let reports = work.path().join("reports");
    let fault = faults.path().join("runtime-down");
    let vars = [
        format!("runtime={}", sim.api),
        format!("backend_metrics={}", sim.api),
        format!("runtime_metrics={}", sim.runtime_metrics),
        format!("jaeger={}", jaeger.trim_start_matches("http://")),
        format!("loki={}", loki_url.trim_start_matches("http://")),
        format!("runtime_stop=touch {}", fault.display()),
        format!("runtime_start=rm -f {}", fault.display()),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    cmd.current_dir(work.path())
        .env("CI", "true")
        .env_remove("FIREDRILL_TARGET")
        .arg("--config")
        .arg(example().join("firedrill.toml"))
        .arg("--reports-dir")
        .arg(&reports);
    for v in &vars {
        cmd.args(["--var", v]);
    }
    // smoke: the HTTP probe (and its traces through Jaeger), the criteria
    // over the run window, then the target's smoke drill (runtime-down).
    let out = cmd
        .args(["smoke", "--target", "aegis-rehearsal"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report_json(&reports);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(report["verdict"], "pass", "{text}");

    // The HTTP probe: every request answered with its own trace context.
    let probes = report["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 1, "{text}");
    let probe = &probes[0];
    assert_eq!(probe["name"], "runtime", "{text}");
    assert_eq!(probe["verdict"], "pass", "{text}");
    assert_eq!(
        (probe["sent"].as_u64(), probe["completed"].as_u64()),
        (Some(20), Some(20)),
        "{text}"
    );
    assert_eq!(sim.executions.load(Ordering::Relaxed), 20);

    // Their traces, read back from Jaeger, audited against the example's tree.
    let audit = &report["trace_audit"];
    assert_eq!(
        (
            audit["tasks"].as_u64(),
            audit["passed"].as_u64(),
            audit["failed"].as_u64()
        ),
        (Some(20), Some(20), Some(0)),
        "{text}"
    );
    assert!(
        audit["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{text}"
    );
    assert!(
        audit["source"]
            .as_str()
            .unwrap()
            .starts_with("Jaeger http://127.0.0.1:"),
        "{text}"
    );

    // Three PromQL and two LogQL criteria, evaluated on Prometheus and Loki.
    let criteria: Vec<String> = report["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["id"].as_str().unwrap(),
                c["language"].as_str().unwrap_or("promql"),
                c["verdict"]
            )
        })
        .collect();
    assert_eq!(
        criteria,
        [
            "AEGIS-HTTP-5XX promql \"pass\"",
            "AEGIS-HTTP-P95 promql \"pass\"",
            "AEGIS-EXECUTOR-SUCCESS promql \"pass\"",
            "AEGIS-LOG-ERRORS logql \"pass\"",
            "AEGIS-LOG-SLOW logql \"pass\"",
        ],
        "{text}"
    );
    // Loki was asked the example's queries, the window rendered.
    let asked = loki_queries.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked[0].starts_with(
            r#"sum(count_over_time({job="aegis-backend"} |= "error" | json | level="error" ["#
        ),
        "{asked:?}"
    );

    // The exec drill stopped the runtime's scrape, timed AEGISRuntimeDown
    // and reverted.
    let drills = report["drills"].as_array().unwrap();
    assert_eq!(drills.len(), 1, "{text}");
    assert_eq!(drills[0]["alert"], "AEGISRuntimeDown", "{text}");
    assert_eq!(drills[0]["verdict"], "pass", "{text}");
    assert!(!fault.exists(), "the drill reverted its fault");
}
