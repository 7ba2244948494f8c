//! The live rule audit against a real Prometheus: the seven structural
//! rules on the real fleet produce no findings, and each defect class the
//! seed's cross-checks found produces its finding.

use assert_cmd::Command;
use firedrill::clients::prometheus::Prometheus;
use firedrill::fleet::Fleet;
use firedrill::local::{fleet_config, wait_for_first_scrape};
use firedrill::report::model::{Check, Finding, Severity};
use firedrill::spec::{builtin_local_target, Vars};
use firedrill::stack::rules::STRUCTURAL_ALERTS;
use firedrill::stack::{render_local_rules, LocalStack, StackOptions};
use firedrill::validate::{alerting_rules, audit_rules};
use std::time::Duration;

/// One rule per defect class, appended to the real seven.
const DEFECTS: &str = r#"
  - name: defects
    rules:
      - alert: GhostMetric
        expr: rate(nats_jetstream_consumer_acks_total{stream="DAEDALUS_TASKS"}[20s]) == 0
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#ghost"
      - alert: AbsentWithoutNamespace
        expr: absent(kube_deployment_status_replicas_available{deployment="daedalus-orchestrator"})
        labels:
          severity: page
        annotations:
          runbook_url: "docs/runbook.md#orchestrator-down"
      - alert: NoRunbook
        expr: up{job="fleet"} == 0
        labels:
          namespace: daedalus
"#;

fn findings_for<'a>(all: &'a [Finding], subject: &str) -> Vec<&'a Finding> {
    all.iter().filter(|f| f.subject == subject).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_rules_are_clean_and_each_defect_is_found() {
    let target = builtin_local_target(&Vars::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let rules_yaml = render_local_rules(&target.vars()).unwrap() + DEFECTS;
    let stack = LocalStack::start(StackOptions {
        scrape_jobs: firedrill::local::scrape_jobs(&addr),
        rules_yaml,
        ..StackOptions::default()
    })
    .await
    .expect("local stack starts");
    let cfg = fleet_config(target.fleet().unwrap(), &target.namespace, &stack.nats_url);
    let fleet = Fleet::start(cfg, listener).await.expect("fleet starts");
    let prom = Prometheus::new(&stack.prometheus_url);
    assert!(wait_for_first_scrape(&prom, Duration::from_secs(30)).await);

    let rules = alerting_rules(&prom).await.unwrap();
    assert_eq!(rules.len(), STRUCTURAL_ALERTS.len() + 3);
    let findings = audit_rules(&prom, &rules, chrono::Utc::now())
        .await
        .unwrap();
    fleet.shutdown().await;
    stack.shutdown().await.unwrap();

    for alert in STRUCTURAL_ALERTS {
        assert_eq!(
            findings_for(&findings, alert),
            Vec::<&Finding>::new(),
            "{alert}"
        );
    }

    let ghost = findings_for(&findings, "GhostMetric");
    assert_eq!(ghost.len(), 1, "{ghost:#?}");
    assert_eq!(ghost[0].severity, Severity::Error);
    assert_eq!(ghost[0].check, Check::SelectorSeries);
    assert_eq!(
        ghost[0].selector.as_deref(),
        Some(r#"nats_jetstream_consumer_acks_total{stream="DAEDALUS_TASKS"}"#)
    );
    assert!(ghost[0].detail.contains("silently never fires"));

    let absent = findings_for(&findings, "AbsentWithoutNamespace");
    assert_eq!(absent.len(), 1, "{absent:#?}");
    assert_eq!(
        (absent[0].severity, absent[0].check),
        (Severity::Error, Check::AbsentNamespace)
    );

    let runbook = findings_for(&findings, "NoRunbook");
    assert_eq!(runbook.len(), 1, "{runbook:#?}");
    assert_eq!(
        (runbook[0].severity, runbook[0].check),
        (Severity::Error, Check::RunbookUrl)
    );
}

#[test]
fn validate_local_exits_zero() {
    let reports = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("firedrill")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--target", "local", "--reports-dir"])
        .arg(reports.path())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: pass"), "{stdout}");
    assert!(stdout.contains("(0 error finding(s))"), "{stdout}");
}

#[test]
fn unreachable_prometheus_exits_three() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        "[targets.gone]\nnamespace = \"daedalus\"\nnats_url = \"nats://127.0.0.1:9\"\nprometheus_url = \"http://127.0.0.1:9\"\n[targets.gone.variables]\nstream = \"DAEDALUS_TASKS\"\n",
    )
    .unwrap();
    let out = Command::cargo_bin("firedrill")
        .unwrap()
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["validate", "--target", "gone", "--reports-dir"])
        .arg(dir.path().join("reports"))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
}
