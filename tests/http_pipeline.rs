//! HTTP probes outside `firedrill probe`: `run` (its probe table, its trace
//! audit through the target's Jaeger, a failing HTTP probe failing the run),
//! a drill whose trigger names an HTTP probe, and `trace-audit` with one.
//! The services are axum on loopback; Prometheus and Alertmanager are the
//! real local stack (`stack = "local"`, no fleet, no NATS); Jaeger is the
//! stand-in of `tests/common/jaeger.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use firedrill::model::span::Span;

use crate::common::run::report_json;

type Spans = Arc<Mutex<HashMap<String, Vec<Span>>>>;

/// How the web service behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 202 with the traceparent back; exports a `handle` span under the caller's.
    Healthy,
    /// 500 to every request.
    Failing,
    /// 202 and the traceparent back, but exports no span.
    Untraced,
}

struct Web {
    addr: String,
    spans: Spans,
    /// Requests to `/v1/tasks` received.
    requests: Arc<AtomicU64>,
}

/// `POST /v1/tasks` and `/metrics` (503 while `<faults>/down` exists).
async fn web(mode: Mode, faults: PathBuf) -> Web {
    let spans: Spans = Arc::default();
    let requests = Arc::new(AtomicU64::new(0));
    let (s, r) = (spans.clone(), requests.clone());
    let app = axum::Router::new()
        .route(
            "/v1/tasks",
            axum::routing::post(move |headers: HeaderMap| {
                let (spans, requests) = (s.clone(), r.clone());
                async move {
                    requests.fetch_add(1, Ordering::Relaxed);
                    if mode == Mode::Failing {
                        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
                    }
                    let tp = headers
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let parts: Vec<&str> = tp.split('-').collect();
                    if let (Mode::Healthy, [_, trace, parent, _]) = (mode, &parts[..]) {
                        let id: String = (0..8)
                            .map(|_| format!("{:02x}", rand::random::<u8>()))
                            .collect();
                        spans
                            .lock()
                            .unwrap()
                            .entry(trace.to_string())
                            .or_default()
                            .push(Span {
                                trace_id: trace.to_string(),
                                span_id: id,
                                parent_span_id: Some(parent.to_string()),
                                name: "handle".into(),
                                service: "web".into(),
                                task_id: None,
                            });
                    }
                    (StatusCode::ACCEPTED, [("traceparent", tp)], "{}").into_response()
                }
            }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let down = faults.join("down").exists();
                async move {
                    if down {
                        (StatusCode::SERVICE_UNAVAILABLE, String::new())
                    } else {
                        (StatusCode::OK, "web_up 1\n".to_string())
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Web {
        addr,
        spans,
        requests,
    }
}

/// A spec set in `dir`: a local-stack target scraping the web service, an
/// alert on its scrape, an HTTP probe, a trace tree, an exec drill whose
/// trigger is the HTTP probe.
fn write_specs(dir: &Path) {
    let files = [
        (
            "firedrill.toml",
            r#"[targets.web]
stack = "local"
rules = ["rules/web.yml"]
jaeger_url = "http://{{jaeger}}/"
probes_dir = "probes"
drills_dir = "drills"
drills_allowed = true

[[targets.web.scrape]]
job = "web"
targets = ["{{web}}"]

[targets.web.variables]
web = "127.0.0.1:8080"
jaeger = "127.0.0.1:16686"
fault_dir = "/tmp/web-faults"
"#,
        ),
        (
            "rules/web.yml",
            r#"groups:
  - name: web
    rules:
      - alert: WebDown
        expr: up{job="web"} == 0
        for: 1s
        labels:
          severity: critical
        annotations:
          summary: web is down
          runbook_url: https://runbooks.example/web-down
"#,
        ),
        (
            "probes/gateway.toml",
            r#"kind = "http"
method = "POST"
url = "http://{{web}}/v1/tasks"
count = 8
concurrency = 4
timeout = "5s"

[expect]
status = [202]
trace_id_header = "traceparent"
"#,
        ),
        (
            "probes/trace-tree.toml",
            r#"[[hop]]
name = "request"

[[hop]]
name = "handle"
parent = "request"
"#,
        ),
        (
            "drills/web-down.toml",
            r#"name = "web-down"
alert = "WebDown"
deadline = "30s"
resolve_timeout = "30s"

[fault]
kind = "exec"
inject = ["touch", "{{fault_dir}}/down"]
revert = ["rm", "-f", "{{fault_dir}}/down"]
timeout = "5s"

[trigger]
probe = "gateway"
count = 5
"#,
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    faults: tempfile::TempDir,
    web: Web,
    jaeger: String,
}

async fn setup(mode: Mode) -> Setup {
    let faults = tempfile::tempdir().unwrap();
    let web = web(mode, faults.path().to_path_buf()).await;
    let spans = web.spans.clone();
    let jaeger = crate::common::jaeger::start(move |id| {
        spans.lock().unwrap().get(id).cloned().unwrap_or_default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path());
    Setup {
        dir,
        faults,
        web,
        jaeger,
    }
}

impl Setup {
    /// `firedrill <args>` in the spec dir: exit code, stdout+stderr, the report.
    async fn run(&self, args: &[&str]) -> (Option<i32>, String, serde_json::Value) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        c.current_dir(self.dir.path())
            .env("CI", "true")
            .env_remove("FIREDRILL_TARGET")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .args(["--reports-dir", "reports"])
            .args(["--var", &format!("web={}", self.web.addr)])
            .args([
                "--var",
                &format!("jaeger={}", self.jaeger.trim_start_matches("http://")),
            ])
            .args([
                "--var",
                &format!("fault_dir={}", self.faults.path().display()),
            ])
            .args(args);
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = report_json(&self.dir.path().join("reports"));
        (out.status.code(), text, report)
    }

    fn report_md(&self) -> String {
        let run = std::fs::read_dir(self.dir.path().join("reports"))
            .unwrap()
            .flatten()
            .find(|e| e.path().join("report.md").exists())
            .unwrap();
        std::fs::read_to_string(run.path().join("report.md")).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_shows_an_http_probe_its_trace_audit_and_a_drill_it_triggers() {
    let s = setup(Mode::Healthy).await;
    let (code, out, report) = s
        .run(&["run", "--target", "web", "--drills", "web-down"])
        .await;
    assert_eq!(code, Some(0), "{out}");
    let p = &report["probes"][0];
    assert_eq!(
        (&p["name"], &p["agent_type"], &p["verdict"], &p["completed"]),
        (
            &"gateway".into(),
            &"http".into(),
            &"pass".into(),
            &serde_json::json!(8)
        ),
        "{out}"
    );
    // The console's probe table and the report's probe section.
    assert!(out.contains("│ gateway"), "{out}");
    let md = s.report_md();
    assert!(
        md.contains("## Sentinel probes") && md.contains("### gateway on `POST http://"),
        "{md}"
    );
    // Each request's trace, read back from Jaeger.
    let audit = &report["trace_audit"];
    assert_eq!(
        (&audit["tasks"], &audit["passed"]),
        (&serde_json::json!(8), &serde_json::json!(8)),
        "{out}"
    );
    assert!(audit["source"].as_str().unwrap().starts_with("Jaeger "));
    // The drill's trigger sent the HTTP probe's requests after its inject.
    assert_eq!(report["drills"][0]["verdict"], "pass", "{out}");
    assert_eq!(s.web.requests.load(Ordering::Relaxed), 8 + 5, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_http_probe_fails_the_run() {
    let s = setup(Mode::Failing).await;
    let (code, out, report) = s.run(&["run", "--target", "web"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(report["verdict"], "fail", "{out}");
    let p = &report["probes"][0];
    assert_eq!(p["verdict"], "fail", "{out}");
    assert_eq!(p["completed"], 0, "{out}");
    let reasons = p["reasons"].to_string();
    assert!(reasons.contains("HTTP 500"), "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_audit_runs_an_http_probe_through_jaeger() {
    let s = setup(Mode::Healthy).await;
    let (code, out, report) = s
        .run(&["trace-audit", "--target", "web", "--tasks", "6"])
        .await;
    assert_eq!(code, Some(0), "{out}");
    let audit = &report["trace_audit"];
    assert_eq!(
        (&audit["tasks"], &audit["passed"]),
        (&serde_json::json!(6), &serde_json::json!(6)),
        "{out}"
    );
    assert_eq!(s.web.requests.load(Ordering::Relaxed), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_audit_of_an_untraced_service_names_the_missing_hop() {
    let s = setup(Mode::Untraced).await;
    let (code, out, report) = s
        .run(&[
            "trace-audit",
            "--target",
            "web",
            "--tasks",
            "3",
            "--span-wait",
            "1s",
        ])
        .await;
    assert_eq!(code, Some(1), "{out}");
    let audit = &report["trace_audit"];
    assert_eq!(audit["failed"], 3, "{out}");
    assert_eq!(audit["missing_by_hop"]["handle"], 3, "{out}");
}

/// `jaeger_url` and `loki_url` take the target's variables and `--var`;
/// an unknown variable or a rendering that is no URL names the line.
#[test]
fn trace_and_log_urls_are_templated_with_the_target_variables() {
    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str, vars: &[(&str, &str)]| {
        std::fs::write(dir.path().join("firedrill.toml"), toml).unwrap();
        let mut opts = firedrill::spec::LoadOptions::new("t");
        opts.root = dir.path().to_path_buf();
        opts.config = Some(dir.path().join("firedrill.toml"));
        opts.parts = firedrill::spec::Parts::NONE;
        opts.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        firedrill::spec::load_plan(&opts)
    };
    let toml = "[targets.t]\nprometheus_url = \"http://127.0.0.1:9090/\"\njaeger_url = \"http://{{jaeger}}/\"\nloki_url = \"http://{{loki}}/loki/\"\n[targets.t.variables]\njaeger = \"127.0.0.1:16686\"\nloki = \"127.0.0.1:3100\"\n";
    let plan = load(toml, &[("loki", "127.0.0.1:41000")]).unwrap();
    assert_eq!(
        plan.target.jaeger_url.unwrap().as_str(),
        "http://127.0.0.1:16686/"
    );
    assert_eq!(
        plan.target.loki_url.unwrap().as_str(),
        "http://127.0.0.1:41000/loki/"
    );
    let err = load(&toml.replace("{{jaeger}}", "{{jaegr}}"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("firedrill.toml:3: targets.t.jaeger_url: unknown template variable {{jaegr}}"),
        "{err}"
    );
    let err = load(toml, &[("loki", "loki host")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("firedrill.toml:4: targets.t.loki_url: invalid URL")
            && err.contains("rendered from \"http://{{loki}}/loki/\""),
        "{err}"
    );
}

/// A Jaeger that cannot be read makes the run's trace audit an error
/// (exit 3), not a pass and not a fail; the probe itself still passes.
#[tokio::test(flavor = "multi_thread")]
async fn run_with_an_unreachable_jaeger_is_a_dependency_error() {
    let mut s = setup(Mode::Healthy).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    s.jaeger = format!("http://{closed}");
    let (code, out, report) = s.run(&["run", "--target", "web"]).await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(report["verdict"], "error", "{out}");
    assert_eq!(report["probes"][0]["verdict"], "pass", "{out}");
    let errors = report["trace_audit"]["errors"].to_string();
    assert!(errors.contains("unreachable"), "{errors}");
}
