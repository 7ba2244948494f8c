//! The live rule audit against a real Prometheus: the seven structural
//! rules on the real fleet produce no findings, and each defect class the
//! seed's cross-checks found produces its finding.

use assert_cmd::Command;
use firedrill::clients::prometheus::Prometheus;
use firedrill::fleet::Fleet;
use firedrill::local::fleet_config;
use firedrill::report::model::{Check, Finding, Severity};
use firedrill::spec::{builtin_local_target, Vars};
use firedrill::stack::rules::STRUCTURAL_ALERTS;
use firedrill::stack::{render_local_rules, LocalStack, StackOptions};
use firedrill::validate::classify::Policy;
use firedrill::validate::{alerting_rules, audit_rules};
use std::time::Duration;

/// The seed's defective drafts (its "Spec corrections" findings), one rule
/// per class, plus rules whose empty selectors cannot stop them firing,
/// appended to the real seven.
const DEFECTS: &str = r#"
  - name: seed-drafts
    rules:
      # Finding 2 / CC2-3: a counter nats-surveyor does not expose.
      - alert: GhostMetric
        expr: rate(nats_jetstream_consumer_acks_total{stream="DAEDALUS_TASKS"}[20s]) == 0 and nats_consumer_num_pending{stream="DAEDALUS_TASKS"} >= 0
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#ghost"
      # CC2-2: the real metric with the wrong label name (consumer, not consumer_name).
      - alert: WrongConsumerLabel
        expr: nats_consumer_num_pending{consumer="daedalus-workers"} > 100
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#nats-consumer-lag"
      # Finding 4: an object-state gauge compared to zero with no absent() leg.
      - alert: OrchestratorDownDraft
        expr: kube_deployment_status_replicas_available{deployment="daedalus-orchestrator"} == 0
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#orchestrator-down"
      # CC2-1: the absent() leg's series carries no namespace.
      - alert: AbsentWithoutNamespace
        expr: absent(kube_deployment_status_replicas_available{deployment="daedalus-orchestrator"})
        labels:
          severity: page
        annotations:
          runbook_url: "docs/runbook.md#orchestrator-down"
      # CC2 follow-up: an alert on surveyor metrics without a static namespace.
      - alert: NoStaticNamespace
        expr: nats_stream_consumer_count == 0 and nats_stream_total_messages > 0
        labels:
          namespace: "{{ $labels.namespace }}"
        annotations:
          runbook_url: "docs/runbook.md#nats-stream-unhealthy"
      - alert: NoRunbook
        expr: up{job="fleet"} > 1
        labels:
          namespace: daedalus
  - name: cannot-be-blocked
    rules:
      - alert: UnlessRightSide
        expr: nats_consumer_num_pending > 100 unless on(stream) kube_node_spec_taint{effect="NoSchedule"}
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
      - alert: OrVectorZero
        expr: (count(redis_instance_info{role="master"}) or vector(0)) < 1
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
      - alert: OrZeroTimesAbsent
        expr: sum(nats_stream_total_messages) > 1e9 or 0 * absent(no_such_metric_total)
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
      - alert: GoRegexQuoting
        expr: up{job=~"\\Qfleet\\E"} > 1
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
      # scalar() of nothing is NaN, and NaN != 0 holds: this fires.
      - alert: ScalarOfNothing
        expr: nats_consumer_num_pending - scalar(no_such_metric_total) != 0
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
  - name: truly-blocked
    rules:
      - alert: EveryAlternativeEmpty
        expr: rate(ghost_a_total[1m]) > 0 or rate(ghost_b_total[1m]) > 0
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
      - alert: WeekAgo
        expr: nats_consumer_num_pending offset 1w > 100
        labels:
          namespace: daedalus
        annotations:
          runbook_url: "docs/runbook.md#x"
"#;

fn findings_for<'a>(all: &'a [Finding], subject: &str) -> Vec<&'a Finding> {
    all.iter().filter(|f| f.subject == subject).collect()
}

fn only(all: &[Finding], subject: &str) -> (Severity, Check, String) {
    let f = findings_for(all, subject);
    assert_eq!(f.len(), 1, "{subject}: {f:#?}");
    (f[0].severity, f[0].check, f[0].detail.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_rules_are_clean_and_each_seed_defect_is_found() {
    let target = builtin_local_target(&Vars::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let rules_yaml = render_local_rules(&target.vars()).unwrap() + DEFECTS;
    let fleet_jobs = firedrill::local::scrape_jobs_for_fleet(target.fleet().unwrap(), &addr);
    let starting = LocalStack::launch(StackOptions {
        healthy_jobs: fleet_jobs.iter().map(|j| j.job_name.clone()).collect(),
        scrape_jobs: fleet_jobs,
        rules: vec![("rules.yml".into(), rules_yaml)],
        ..StackOptions::default()
    })
    .await
    .expect("local stack starts");
    let cfg = fleet_config(
        target.fleet().unwrap(),
        target.namespace.as_deref().unwrap(),
        starting.nats_url().unwrap(),
    );
    let fleet = Fleet::start(cfg, listener).await.expect("fleet starts");
    // Opens once the fleet has been scraped successfully.
    let stack = starting.ready().await.expect("local stack opens");
    let prom = Prometheus::new(&stack.prometheus_url);

    let rules = alerting_rules(&prom).await.unwrap();
    assert_eq!(rules.len(), STRUCTURAL_ALERTS.len() + 13);
    let policy = Policy {
        required_labels: vec![("namespace".into(), Severity::Error)],
        ..Policy::default()
    };
    let findings = audit_rules(&prom, &rules, &policy, chrono::Utc::now())
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
    for f in &findings {
        assert!(
            f.file.as_deref().is_some_and(|p| p.ends_with(".yml")),
            "{f:?}"
        );
        assert!(f.group.is_some(), "{f:?}");
    }

    let ghost = findings_for(&findings, "GhostMetric");
    assert_eq!(ghost.len(), 1, "{ghost:#?}");
    assert_eq!(ghost[0].severity, Severity::Error);
    assert_eq!(ghost[0].check, Check::SelectorSeries);
    assert_eq!(
        ghost[0].selector.as_deref(),
        Some(r#"nats_jetstream_consumer_acks_total{stream="DAEDALUS_TASKS"}"#)
    );
    assert!(
        ghost[0].detail.contains("was never present"),
        "{}",
        ghost[0].detail
    );

    let (sev, check, detail) = only(&findings, "WrongConsumerLabel");
    assert_eq!((sev, check), (Severity::Warning, Check::SelectorSeries));
    assert!(
        detail.contains(r#"metric nats_consumer_num_pending exists but these label matchers match none of its series"#)
            && detail.contains(r#"consumer="daedalus-workers" (values seen: (label absent))"#),
        "{detail}"
    );

    let (sev, check, detail) = only(&findings, "OrchestratorDownDraft");
    assert_eq!((sev, check), (Severity::Warning, Check::AbsentGuard));
    assert!(
        detail.contains("to zero with no absent() leg") && detail.contains("or absent("),
        "{detail}"
    );

    // The required-label check reports the missing namespace once; the
    // absent() check does not repeat it.
    let (sev, check, _) = only(&findings, "AbsentWithoutNamespace");
    assert_eq!((sev, check), (Severity::Error, Check::RequiredLabel));
    let (sev, check, detail) = only(&findings, "NoStaticNamespace");
    assert_eq!((sev, check), (Severity::Error, Check::RequiredLabel));
    assert!(detail.contains("templated"), "{detail}");

    let (sev, check, _) = only(&findings, "NoRunbook");
    assert_eq!((sev, check), (Severity::Error, Check::RunbookUrl));

    // Go's \Q...\E quoting is analysed (as the text it quotes), and
    // nothing here can block its rule.
    for alert in [
        "UnlessRightSide",
        "OrVectorZero",
        "OrZeroTimesAbsent",
        "GoRegexQuoting",
        "ScalarOfNothing",
    ] {
        assert_eq!(
            findings_for(&findings, alert),
            Vec::<&Finding>::new(),
            "{alert}"
        );
    }
    let all_empty = findings_for(&findings, "EveryAlternativeEmpty");
    assert_eq!(all_empty.len(), 1, "{all_empty:#?}");
    assert_eq!(
        (all_empty[0].severity, all_empty[0].check),
        (Severity::Error, Check::SelectorSeries)
    );
    assert_eq!(
        all_empty[0].selector.as_deref(),
        Some("ghost_a_total or ghost_b_total")
    );
    assert!(
        all_empty[0].detail.contains("every alternative"),
        "{}",
        all_empty[0].detail
    );
    // Checked as written: the metric has series now, but none a week ago.
    let week = findings_for(&findings, "WeekAgo");
    assert_eq!(week.len(), 1, "{week:#?}");
    assert_eq!(week[0].severity, Severity::Error);
    assert_eq!(
        week[0].selector.as_deref(),
        Some("nats_consumer_num_pending offset 1w")
    );
    // ...and says so, rather than that the metric does not exist.
    assert!(
        week[0].detail.contains("at the time `offset 1w` asks for")
            && !week[0].detail.contains("never present"),
        "{}",
        week[0].detail
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

/// A firedrill.toml with one remote target `t` whose validate table is
/// `validate`; the exit code and stderr of `firedrill validate --target t`.
fn validate_with(validate: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        format!("[targets.t]\nnamespace = \"d\"\nnats_url = \"nats://127.0.0.1:9\"\nprometheus_url = \"http://127.0.0.1:9\"\n\n[targets.t.validate]\n{validate}\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("firedrill")
        .unwrap()
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["validate", "--target", "t", "--reports-dir"])
        .arg(dir.path().join("reports"))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_validate_policies_name_file_line_key_and_fix() {
    let cases: &[(&str, &str, &str)] = &[
        // A label-less entry would match every alert.
        (
            r#"expected_receivers = [{ receiver = "pager" }]"#,
            "targets.t.validate.expected_receivers[0]",
            "names no label, so it would apply to every alert",
        ),
        // Malformed entries: not serde's "did not match any variant".
        (
            r#"expected_receivers = [{ namespace = 1, receiver = "pager" }]"#,
            "targets.t.validate.expected_receivers[0]",
            "{ namespace = \"team-a\", receiver = \"team-a-pager\" }",
        ),
        (
            r#"expected_receivers = "pager""#,
            "targets.t.validate.expected_receivers",
            "a list of tables such as",
        ),
        (
            r#"required_annotations = { summary = "sometimes" }"#,
            "targets.t.validate.required_annotations.summary",
            "expected one of: error, warning, off",
        ),
        (
            r#"absent_labels = ["alertname"]"#,
            "targets.t.validate.absent_labels[0]",
            "requiring it checks nothing",
        ),
    ];
    for (toml, key, fix) in cases {
        let (code, stderr) = validate_with(toml);
        assert_eq!(code, Some(2), "{toml}: {stderr}");
        assert!(
            stderr.contains(&format!("firedrill.toml:7: {key}")),
            "{toml}: {stderr}"
        );
        assert!(stderr.contains(fix), "{toml}: {stderr}");
        assert!(!stderr.contains("untagged"), "{toml}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{toml}: {stderr}");
    }
}

#[test]
fn the_report_counts_the_findings_it_leaves_out_and_says_where_they_are() {
    use firedrill::report::model::Report;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports/validate-awesome-prometheus-alerts.json");
    let mut r: Report = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // 1,500 distinct details (1,500 rows), two rules each: 3,000 findings.
    r.validation = (0..3000)
        .map(|i| Finding {
            subject: format!("Alert{i}"),
            severity: Severity::Warning,
            check: Check::SelectorSeries,
            detail: format!("detail {}", i / 2),
            selector: None,
            file: Some("/rules/a.yml".into()),
            group: Some("g".into()),
        })
        .collect();
    let md = firedrill::report::markdown::render(&r);
    assert!(
        md.contains("… and 1000 more selector-series findings (500 rows) not shown here: report.json holds all 3000 of them"),
        "{}",
        &md[md.len().saturating_sub(3000)..]
    );
}
