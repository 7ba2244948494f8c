//! The rule audit on public rule sets written by others
//! (tests/fixtures/rules-public, provenance in its README), loaded into a
//! real Prometheus that scrapes only itself: selectors whose emptiness
//! cannot stop a rule (right side of `unless`, `or vector(0)` fallbacks,
//! state series) are never reported as "never fires"; the ones that can,
//! are, with what is really wrong.

use firedrill::clients::prometheus::Prometheus;
use firedrill::report::model::{Check, Finding, Severity};
use firedrill::stack::binaries::{self, Tool};
use firedrill::validate::classify::Policy;
use firedrill::validate::{alerting_rules, audit_rules};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The child, and its data directory (removed when dropped).
struct Prom(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus loading every public rule file and scraping itself.
async fn start_prometheus() -> (Prom, String) {
    let bin = binaries::find(Tool::Prometheus).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules-public");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}/*.yml']\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let prom = Prom(child, dir);
    let url = format!("http://127.0.0.1:{port}");
    let p = Prometheus::new(&url);
    // Ready, and `up` scraped once (so the one exporter here has series).
    for _ in 0..300 {
        if let Ok(firedrill::clients::prometheus::QueryResult::Vector(v)) =
            p.query("up", chrono::Utc::now()).await
        {
            if !v.is_empty() {
                return (prom, url);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus at {url} did not scrape itself");
}

fn alerting_rule_count() -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules-public");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| l.trim_start().starts_with("- alert:"))
                .count()
        })
        .sum()
}

fn selector_findings<'a>(all: &'a [Finding], alert: &str) -> Vec<&'a Finding> {
    all.iter()
        .filter(|f| f.subject == alert && f.check == Check::SelectorSeries)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn public_rule_sets_have_no_false_never_fires() {
    let (_prom, url) = start_prometheus().await;
    let prom = Prometheus::new(&url);
    let rules = alerting_rules(&prom).await.unwrap();
    assert_eq!(rules.len(), alerting_rule_count());
    let findings = audit_rules(&prom, &rules, &Policy::default(), chrono::Utc::now())
        .await
        .unwrap();

    let mut per_check = std::collections::BTreeMap::new();
    for f in &findings {
        *per_check.entry((f.check, f.severity)).or_insert(0) += 1;
        assert!(f.file.is_some() && f.group.is_some(), "{f:?}");
    }
    eprintln!("{} rules, findings per check: {per_check:?}", rules.len());

    // Selectors whose emptiness cannot block the rule, from the issue's
    // audit: (alert, a metric only read where emptiness is harmless).
    let harmless = [
        ("KubeletDown", "up{"),
        (
            "KubePersistentVolumeFillingUp",
            "kube_persistentvolumeclaim_access_mode",
        ),
        (
            "KubePersistentVolumeFillingUp",
            "kube_persistentvolumeclaim_labels",
        ),
        ("KubeNodeUnreachable", "key=~"),
        ("RedisMissingMaster", "redis_instance_info"),
        ("InfoInhibitor", "alertstate"),
        ("PrometheusTargetMissing", "up"),
    ];
    for (alert, needle) in harmless {
        assert!(
            rules.iter().any(|r| r.rule.name == alert),
            "{alert} not loaded"
        );
        let bad: Vec<_> = selector_findings(&findings, alert)
            .into_iter()
            .filter(|f| f.severity >= Severity::Warning)
            .filter(|f| f.selector.as_deref().is_some_and(|s| s.contains(needle)))
            .collect();
        assert!(bad.is_empty(), "{alert}: {bad:#?}");
    }
    // `or 0 * absent(...)`-style legs and absent() arguments are never
    // "never fires" errors.
    for f in &findings {
        if f.check == Check::SelectorSeries && f.severity == Severity::Error {
            assert!(
                f.detail.contains("never fires") || f.detail.contains("did not answer"),
                "{f:?}"
            );
        }
    }

    // Blocking selectors with no series are still found, and say why.
    let kubelet = selector_findings(&findings, "KubeletDown");
    assert_eq!(kubelet.len(), 1, "{kubelet:#?}");
    assert_eq!(kubelet[0].severity, Severity::Error);
    assert!(
        kubelet[0]
            .detail
            .contains("metric kube_node_info was never present"),
        "{}",
        kubelet[0].detail
    );
    // The metric exists (Prometheus scrapes itself) but the job does not.
    let mismatch = findings.iter().find(|f| {
        f.detail
            .contains("metric up exists but these label matchers")
            && f.detail.contains(r#"(values seen: "prometheus")"#)
    });
    assert!(mismatch.is_some(), "no label-mismatch finding on up");
    // State series are judged leniently: no error or warning on ALERTS.
    assert!(!findings.iter().any(|f| f.severity >= Severity::Warning
        && f.selector
            .as_deref()
            .is_some_and(|s| s.starts_with("ALERTS"))));
}

/// A front for a real Prometheus that passes every request through but
/// holds each instant query after the first `pass` for good: a Prometheus
/// that hangs mid-audit. `held` turns true once one is held.
async fn hanging_front(
    upstream: String,
    pass: usize,
) -> (String, tokio::sync::watch::Receiver<bool>) {
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Front {
        upstream: String,
        pass: usize,
        seen: AtomicUsize,
        held: tokio::sync::watch::Sender<bool>,
        http: reqwest::Client,
    }
    async fn pass_or_hold(State(f): State<Arc<Front>>, req: Request) -> axum::response::Response {
        if req.uri().path() == "/api/v1/query" && f.seen.fetch_add(1, Ordering::SeqCst) >= f.pass {
            f.held.send_replace(true);
            std::future::pending::<()>().await;
        }
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let resp = f
            .http
            .get(format!("{}{pq}", f.upstream))
            .send()
            .await
            .unwrap();
        let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let body = resp.bytes().await.unwrap();
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let front = Arc::new(Front {
        upstream,
        pass,
        seen: AtomicUsize::new(0),
        held: tx,
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(pass_or_hold).with_state(front);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_audit_writes_what_was_audited_and_exits_4() {
    let (_prom, url) = start_prometheus().await;
    let (front, mut held) = hanging_front(url, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        format!("[targets.t]\nnamespace = \"d\"\nnats_url = \"nats://127.0.0.1:9\"\nprometheus_url = \"{front}\"\n[targets.t.variables]\nstream = \"S\"\n"),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["validate", "--target", "t", "--reports-dir"])
        .arg(&reports)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let reached = tokio::time::timeout(Duration::from_secs(120), held.wait_for(|h| *h)).await;
    assert!(
        reached.is_ok(),
        "the audit never reached a held query; exit {:?}, stderr: {}",
        child.try_wait().unwrap(),
        std::fs::read_to_string(&stderr).unwrap()
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let code = crate::common::run::wait(&mut child, Duration::from_secs(60));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, Some(4), "{err}");
    let report = crate::common::run::report_json(&reports);
    assert_eq!(report["interrupted"], true);
    let total = alerting_rule_count();
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("rule audit interrupted by SIGTERM")
            && errors.contains(&format!("of {total} alerting rules fully audited")),
        "{errors}"
    );
    let findings = report["validation"].as_array().unwrap();
    let not_checked = findings
        .iter()
        .filter(|f| f["detail"].as_str().unwrap().starts_with("not checked"))
        .count();
    // Selectors still waiting are named as such; the rest was decided.
    assert!(not_checked > 0, "{findings:#?}");
    assert!(findings.len() > not_checked, "{findings:#?}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
}
