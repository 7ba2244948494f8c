//! Real public dashboards, written by others (provenance in
//! tests/fixtures/grafana/README.md), through `firedrill snapshot` against a
//! real Prometheus (scraping itself every second) and the Grafana double.
//! A recording proxy in front of Prometheus sees every query firedrill
//! sends, so the test can check what Grafana would have sent: no variable
//! left uninterpolated, nothing Prometheus rejects, data wherever the local
//! Prometheus has the metric.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;
use common::grafana::{fixture, imported};
use common::prometheus::{start_prometheus, wait_for_scrapes, Prom};

const TOKEN_VAR: &str = "FIREDRILL_TEST_DASHBOARDS_TOKEN";
const TOKEN: &str = "glsa_dashboards_0123456789abcdef";

// ------------------------------------------------------------ recording proxy

/// One request firedrill sent to Prometheus and what Prometheus said.
#[derive(Debug, Clone)]
struct Sent {
    path: String,
    params: Vec<(String, String)>,
    /// `status: success`.
    ok: bool,
    /// `errorType: error` when not.
    error: String,
    /// Series (or values) in the answer.
    results: usize,
}

impl Sent {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    fn is_panel_query(&self) -> bool {
        self.path.ends_with("/api/v1/query_range") || self.path.ends_with("/api/v1/query")
    }

    /// The PromQL or selector it carried.
    fn text(&self) -> String {
        self.param("query")
            .or(self.param("match[]"))
            .unwrap_or("")
            .to_string()
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<Sent>>>,
}

async fn forward(State(p): State<Proxy>, uri: Uri) -> impl IntoResponse {
    let pq = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let resp = p.http.get(format!("{}{pq}", p.upstream)).send().await;
    let Ok(resp) = resp else {
        return (StatusCode::BAD_GATEWAY, Vec::new()).into_response();
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let body = resp.bytes().await.unwrap_or_default().to_vec();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    p.log.lock().unwrap().push(Sent {
        path: uri.path().to_string(),
        params: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        ok: v["status"] == "success",
        error: format!("{} {}", v["errorType"], v["error"]),
        results: match &v["data"] {
            Value::Array(a) => a.len(),
            d => d["result"].as_array().map_or(0, Vec::len),
        },
    });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn start_proxy(upstream: &str) -> (String, Arc<Mutex<Vec<Sent>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let state = Proxy {
        upstream: upstream.to_string(),
        http: reqwest::Client::new(),
        log: log.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

// ---------------------------------------------------------------- the setup

/// A fixture dashboard as a Grafana that imported it serves it.
fn dashboard(file: &str, uid: &str) -> Value {
    imported(&fixture(&format!("dashboards/{file}")), uid, "Prometheus")
}

const DASHBOARDS: &[(&str, &str)] = &[
    ("fusakla-prometheus2-rows.json", "prom2-rows"),
    ("fusakla-prometheus2.json", "prom2"),
    ("dotdc-k8s-addons-prometheus.json", "k8s-prometheus"),
    ("rfrail3-node-exporter-full.json", "node-exporter-full"),
];

struct Stack {
    _prom: Prom,
    _grafana: wiremock::MockServer,
    store: common::grafana::Store,
    proxy_log: Arc<Mutex<Vec<Sent>>>,
    dir: tempfile::TempDir,
    start: chrono::DateTime<Utc>,
}

async fn stack() -> Stack {
    let prom = start_prometheus().await;
    let start = Utc::now();
    // Panel steps are Grafana's default 15 s: the window needs a point past its start.
    wait_for_scrapes(&prom, 20).await;
    let (proxy_url, proxy_log) = start_proxy(&prom.url).await;
    let dashboards = DASHBOARDS
        .iter()
        .map(|(f, uid)| dashboard(f, uid))
        .collect();
    let (grafana, store) = common::grafana::start(TOKEN, dashboards, true).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            r#"[targets.lab]
namespace = "daedalus"
nats_url = "nats://127.0.0.1:4222"
prometheus_url = "{proxy_url}/"
grafana_url = "{}/"
grafana_token_env = "{TOKEN_VAR}"
dashboard_uid = "prom2"

[targets.lab.variables]
stream = "DAEDALUS_TASKS"
"#,
            grafana.uri()
        ),
    )
    .unwrap();
    Stack {
        _prom: prom,
        _grafana: grafana,
        store,
        proxy_log,
        dir,
        start,
    }
}

struct Run {
    /// The `POST /api/snapshots` body Grafana received.
    body: Value,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
    /// `reports/<run-id>/snapshot.json`.
    info: Value,
    /// What the double stored.
    sent: Vec<Sent>,
}

async fn snapshot(s: &Stack, uid: &str) -> Run {
    s.proxy_log.lock().unwrap().clear();
    let reports = s.dir.path().join(format!("reports-{uid}"));
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(s.dir.path())
        .env(TOKEN_VAR, TOKEN)
        .env("FIREDRILL_REPORTS_DIR", &reports)
        .args([
            "snapshot",
            "--target",
            "lab",
            "--dashboard",
            uid,
            "--from",
            &s.start.to_rfc3339(),
            "--to",
            &Utc::now().to_rfc3339(),
        ])
        .output()
        .await
        .unwrap();
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let info = find_snapshot_json(&reports)
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .unwrap_or(Value::Null);
    let body = s
        .store
        .0
        .lock()
        .unwrap()
        .values()
        .find(|b| b["dashboard"]["uid"] == uid)
        .cloned()
        .unwrap_or(Value::Null);
    Run {
        body,
        code: out.status.code(),
        stdout,
        stderr,
        wall,
        info,
        sent: s.proxy_log.lock().unwrap().clone(),
    }
}

fn find_snapshot_json(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path().join("snapshot.json");
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// `$name`, `${name}` or `[[name]]` still in a query (not `$1`, not a `$`
/// anchor at a string's end).
fn leftover_variables(q: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$\{?[A-Za-z_]\w*|\[\[[A-Za-z_]\w*").unwrap();
    re.find_iter(q).map(|m| m.as_str().to_string()).collect()
}

fn panel<'a>(run: &'a Run, title: &str) -> &'a Value {
    let want = format!("\"{title}\"");
    run.info["panel_data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == want.as_str())
        .unwrap_or_else(|| panic!("no panel {want} in {}", run.info["panel_data"]))
}

fn series_of(run: &Run, title: &str) -> u64 {
    panel(run, title)["series"].as_u64().unwrap()
}

fn variable<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.info["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variable {name} in {}", run.info["variables"]))
}

/// The checks every dashboard must pass, and the figures the issue asks for.
fn common_checks(name: &str, run: &Run) {
    let queries: Vec<&Sent> = run.sent.iter().filter(|s| s.is_panel_query()).collect();
    let rejected: Vec<&Sent> = run.sent.iter().filter(|s| !s.ok).collect();
    let leftovers: Vec<(String, Vec<String>)> = run
        .sent
        .iter()
        .map(|s| (s.text(), leftover_variables(&s.text())))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let (data, no_data, errors) = run.info["panel_data"]
        .as_array()
        .map(|ps| {
            ps.iter().fold((0, 0, 0), |(d, n, e), p| {
                let (q, f, s) = (
                    p["queries"].as_u64(),
                    p["failed"].as_u64(),
                    p["series"].as_u64(),
                );
                if s > Some(0) {
                    (d + 1, n, e)
                } else if q > Some(0) && q == f {
                    (d, n, e + 1)
                } else {
                    (d, n + 1, e)
                }
            })
        })
        .unwrap_or_default();
    eprintln!(
        "MEASURE {name}: panels {} ({data} data, {no_data} no data, {errors} errors), queries sent {} (+{} variable requests), rejected {}, variables left {}, series embedded {}, wall {} ms",
        run.info["panels"],
        queries.len(),
        run.sent.len() - queries.len(),
        rejected.len(),
        leftovers.len(),
        run.info["series"],
        run.wall.as_millis()
    );
    if std::env::var_os("FIREDRILL_TEST_DUMP").is_some() {
        for q in &run.sent {
            eprintln!(
                "  {} {} -> {} {:?}",
                q.path,
                q.text(),
                q.results,
                q.param("step")
            );
        }
    }
    assert!(
        run.info.is_object(),
        "{name}: no snapshot.json\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.info["verified"], true, "{name}: {}", run.stdout);
    assert!(
        rejected.is_empty(),
        "{name}: Prometheus rejected {:#?}",
        rejected
            .iter()
            .map(|s| (s.text(), s.error.clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        leftovers.is_empty(),
        "{name}: variables left in queries sent: {leftovers:#?}"
    );
    assert_eq!(errors, 0, "{name}: panels whose queries all failed");
    assert!(!queries.is_empty(), "{name}: no panel query sent");
    // Every variable is accounted for in the report.
    for v in run.info["variables"].as_array().unwrap() {
        assert!(v["source"].is_string() && v["value"].is_string(), "{v}");
    }
}

// --------------------------------------------------------------------- tests

#[tokio::test]
async fn real_dashboards_resolve_like_grafana_and_prove_something() {
    let s = stack().await;

    // Old-style rows[] dashboard (schemaVersion 14): every row's panels are
    // planned; the interval variable is computed from the window (auto).
    let run = snapshot(&s, "prom2-rows").await;
    common_checks("fusakla-prometheus2-rows (rows[])", &run);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("as a snapshot criterion: pass"), "{}", run.stdout);
    assert!(run.info["panels"].as_u64().unwrap() >= 30, "{}", run.info);
    let instance = variable(&run, "instance");
    assert_eq!(instance["source"], "default", "{instance}");
    assert!(instance["value"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(variable(&run, "aggregation_interval")["source"], "auto");
    assert_eq!(variable(&run, "aggregation_interval")["value"], "2m");
    assert_eq!(variable(&run, "scrape_interval")["value"], "60");
    for title in [
        "Time series total count",
        "Loaded data blocks",
        "Head chunks count",
        "Memory",
        "CPU per second",
        "Allocations per second",
        "Query elapsed time",
    ] {
        assert!(
            series_of(&run, title) > 0,
            "{title}: {}",
            panel(&run, title)
        );
    }
    // Migrated as Grafana does: no rows[], row panels, collapsed ones
    // holding their panels.
    let d = &run.body["dashboard"];
    assert!(d.get("rows").is_none() && d["panels"].is_array(), "{d}");
    let rows: Vec<&Value> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .collect();
    assert_eq!(rows.len(), 15);
    let collapsed = rows
        .iter()
        .find(|r| r["title"] == "Heapster RAM&CPU")
        .unwrap();
    assert_eq!(collapsed["collapsed"], true);
    assert_eq!(collapsed["panels"].as_array().unwrap().len(), 2);
    // The InfluxDB (heapster) panels are named, not silently empty.
    assert!(
        run.stdout.contains("uses a influxdb data source"),
        "{}",
        run.stdout
    );
    // `[$aggregation_interval]` went out as the computed interval.
    assert!(run.sent.iter().any(|q| q
        .text()
        .contains("prometheus_tsdb_head_samples_appended_total")
        && q.text().contains("[2m]")));

    // Chained query variables (a constant feeding a label_values query), a
    // query_result variable with a capture-group regex, a table panel of
    // instant queries, collapsed rows.
    let run = snapshot(&s, "prom2").await;
    common_checks("fusakla-prometheus2 (chained, table, query_result)", &run);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(variable(&run, "custom_label_name")["value"], "job");
    let chained = variable(&run, "custom_label_value");
    assert_eq!(chained["value"], "All", "{chained}");
    assert!(
        chained["note"]
            .as_str()
            .unwrap()
            .contains("label_values(prometheus_build_info, job)"),
        "{chained}"
    );
    let quantile = variable(&run, "quantile");
    assert_eq!(quantile["source"], "default", "{quantile}");
    assert_eq!(
        quantile["value"], "0.01",
        "sort 1 (alphabetical) first: {quantile}"
    );
    // The table panel: 8 instant queries, embedded as table frames.
    let table = panel(&run, "Build, uptime and runtime instance info");
    assert_eq!(table["queries"], 8, "{table}");
    assert!(table["series"].as_u64().unwrap() >= 6, "{table}");
    let embedded = run.body["dashboard"]["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "table")
        .unwrap();
    let frames = embedded["targets"][0]["snapshot"].as_array().unwrap();
    let a = frames
        .iter()
        .find(|f| f["schema"]["refId"] == "A")
        .expect("frame of query A");
    assert_eq!(a["schema"]["meta"]["preferredVisualisationType"], "table");
    let names: Vec<&str> = a["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // What the panel's column overrides (`Value #A`, ...) look for.
    assert_eq!(names, ["Time", "instance", "job", "Value #A"], "{a}");
    assert!(a["data"]["values"][1][0]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(variable(&run, "instance")["value"], "All");
    for title in [
        "Number of time series",
        "CPU usage",
        "Memory usage",
        "Head chunks count",
        "Number of gorutines",
        "HTTP request count by handler in $aggregation_interval",
    ] {
        assert!(
            series_of(&run, title) > 0,
            "{title}: {}",
            panel(&run, title)
        );
    }
    let quantile_panel = run
        .sent
        .iter()
        .find(|q| {
            q.text()
                .starts_with("prometheus_target_interval_length_seconds{")
        })
        .expect("the quantile panel's query");
    assert!(
        quantile_panel.text().contains(r#"quantile="0.01""#),
        "{}",
        quantile_panel.text()
    );

    // Structured variable queries (newer Grafana), a chained include-All
    // variable with allValue, a target interval naming a variable.
    let run = snapshot(&s, "k8s-prometheus").await;
    common_checks(
        "dotdc-k8s-addons-prometheus (structured, $resolution)",
        &run,
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(variable(&run, "cluster")["source"], "none");
    assert_eq!(variable(&run, "pod")["value"], "All");
    assert_eq!(variable(&run, "resolution")["value"], "30s");
    for title in [
        "Prometheus version",
        "TSDB Head Series",
        "Liveness by pod",
        "TSDB Head Series & Chunks by pod",
        "Engine Query Duration by pod, slice",
    ] {
        assert!(
            series_of(&run, title) > 0,
            "{title}: {}",
            panel(&run, title)
        );
    }
    // `interval: "$resolution"` is the query's minimum step: 30 s, not 1 s.
    let cpu = run
        .sent
        .iter()
        .find(|q| q.text().contains("container_cpu_usage_seconds_total"))
        .expect("CPU panel query");
    assert_eq!(cpu.param("step"), Some("30"), "{cpu:?}");

    // The largest: node_exporter metrics this Prometheus does not have.
    // Chained variables resolve to nothing, so the snapshot holds no data
    // and AC5 fails, saying why.
    let run = snapshot(&s, "node-exporter-full").await;
    common_checks("rfrail3-node-exporter-full (no node metrics here)", &run);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.info["panels"].as_u64().unwrap() >= 100,
        "{}",
        run.info["panels"]
    );
    assert_eq!(run.info["series"], 0);
    assert!(
        run.stdout.contains("as a snapshot criterion: fail") && run.stdout.contains("holds no data"),
        "{}",
        run.stdout
    );
    assert_eq!(variable(&run, "job")["source"], "none");
    assert_eq!(variable(&run, "node")["source"], "none");
}

/// The build time the issue asks about: the largest real dashboard grown
/// to 150 data panels, every query answered with 3 series of 240 points,
/// planned, embedded and serialised without any network. Prints the time;
/// asserts only what was built (a timed assertion would flake on a busy
/// machine).
#[test]
fn snapshot_build_for_150_panels_measured() {
    use firedrill::clients::grafana::snapshot_body::{self, SnapshotSettings};
    use firedrill::clients::prometheus::{MatrixSeries, QueryResult, Sample};
    use firedrill::model::RunWindow;

    let mut d = dashboard("rfrail3-node-exporter-full.json", "big")["dashboard"].clone();
    // Flatten (expand collapsed rows) and repeat panels until 150 have queries.
    let mut flat: Vec<Value> = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        if let Some(nested) = p["panels"].as_array() {
            flat.extend(nested.iter().cloned());
        }
        if p["targets"].is_array() {
            flat.push(p.clone());
        }
    }
    let base = flat.clone();
    let mut i = 0;
    while flat.len() < 150 {
        let mut p = base[i % base.len()].clone();
        p["id"] = serde_json::json!(10_000 + i);
        flat.push(p);
        i += 1;
    }
    flat.truncate(150);
    d["panels"] = Value::Array(flat);

    let end = Utc::now();
    let window = RunWindow {
        start: end - chrono::Duration::hours(1),
        end,
    };
    let overrides = [("job".to_string(), "node".to_string())].into();
    let started = Instant::now();
    let migrated = snapshot_body::migrate_rows(&d);
    let vars = snapshot_body::saved_vars(&migrated, &overrides);
    let plan = snapshot_body::plan(&migrated, &vars, window, SnapshotSettings::default());
    let t0 = window.start.timestamp() as f64;
    let answer = QueryResult::Matrix(
        (0..3)
            .map(|s| MatrixSeries {
                metric: [("instance".to_string(), format!("host-{s}:9100"))].into(),
                values: (0..240)
                    .map(|k| Sample(t0 + 15.0 * k as f64, format!("{}.5", k * s)))
                    .collect(),
            })
            .collect(),
    );
    let results: Vec<Vec<_>> = plan
        .panels
        .iter()
        .map(|p| p.queries.iter().map(|_| Ok(answer.clone())).collect())
        .collect();
    let built = snapshot_body::build_body(
        &migrated,
        &plan,
        &results,
        window,
        "n",
        Duration::ZERO,
        &vars,
    );
    let bytes = serde_json::to_vec(&built.body).unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "MEASURE build 150 panels: {} queries, {} series, body {} bytes, plan+embed+serialise {} ms",
        plan.query_count(),
        built.series,
        bytes.len(),
        elapsed.as_millis()
    );
    assert_eq!(built.panels, 150);
    assert_eq!(built.series, 3 * plan.query_count());
}

#[test]
fn an_empty_token_variable_is_a_usage_error_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            r#"[targets.lab]
namespace = "daedalus"
nats_url = "nats://127.0.0.1:9"
prometheus_url = "http://127.0.0.1:9/"
grafana_url = "http://127.0.0.1:9/"
grafana_token_env = "{TOKEN_VAR}"
dashboard_uid = "prom2"

[targets.lab.variables]
stream = "DAEDALUS_TASKS"
"#
        ),
    )
    .unwrap();
    for args in [
        vec![
            "snapshot",
            "--target",
            "lab",
            "--from",
            "2026-12-01T10:00:00Z",
            "--to",
            "2026-12-01T10:05:00Z",
        ],
        vec!["run", "--target", "lab"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(dir.path())
            .env(TOKEN_VAR, "  ")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(TOKEN_VAR) && stderr.contains("is not set or is empty"),
            "{stderr}"
        );
        assert!(stderr.contains("target `lab`"), "{stderr}");
    }
}
