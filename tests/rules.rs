//! The local structural rules, checked by the real `promtool`: they parse,
//! every alert carries what routing and on-call need, and (with
//! `promtool test rules`) each alert fires on the fault it describes, within
//! its scaled-down `for:`, and not on the healthy or out-of-scope series.

use std::path::Path;
use std::process::{Command, Output};

use firedrill::spec::template::Vars;
use firedrill::stack::binaries::{self, Tool};
use firedrill::stack::render_local_rules;
use firedrill::stack::rules::STRUCTURAL_ALERTS;

/// (alert, severity, runbook anchor) as the platform spec's table says.
const EXPECTED: [(&str, &str, &str); 7] = [
    (
        "WorkerImagePullBackOff",
        "page",
        "worker-image-pull-backoff",
    ),
    ("WorkerCrashLoopBackOff", "page", "worker-crashloop"),
    ("NATSConsumerLagUnbounded", "page", "nats-consumer-lag"),
    ("KEDAScalerError", "page", "keda-scaler-error"),
    ("OTelCollectorDown", "page", "otel-collector-down"),
    ("OrchestratorDown", "page", "orchestrator-down"),
    ("NATSStreamUnhealthy", "warn", "nats-stream-unhealthy"),
];

fn rendered() -> String {
    let vars = Vars::from([
        ("namespace".to_string(), "daedalus".to_string()),
        ("stream".to_string(), "DAEDALUS_TASKS".to_string()),
        (
            "worker_pod_prefix".to_string(),
            "daedalus-worker-".to_string(),
        ),
        (
            "orchestrator_deployment".to_string(),
            "daedalus-orchestrator".to_string(),
        ),
        (
            "collector_deployment".to_string(),
            "otel-collector".to_string(),
        ),
    ]);
    render_local_rules(&vars).expect("rules render")
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    let bin = binaries::find(Tool::Promtool).unwrap_or_else(|e| panic!("{e}"));
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn promtool_accepts_the_rendered_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rendered()).unwrap();
    let out = promtool(&["check", "rules", "rules.yml"], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "promtool check rules failed:\n{said}");
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
}

#[test]
fn promtool_rejects_a_broken_copy() {
    // Proves the check above can fail: one unbalanced parenthesis.
    let broken = rendered().replacen("[20s]) > 0", "[20s] > 0", 1);
    assert_ne!(broken, rendered(), "the breakage must apply");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), broken).unwrap();
    let out = promtool(&["check", "rules", "rules.yml"], dir.path());
    let said = text(&out);
    assert!(
        !out.status.success(),
        "promtool accepted broken rules:\n{said}"
    );
    assert!(said.contains("WorkerCrashLoopBackOff"), "{said}");
}

/// The rendered file split into one chunk per alert, keyed by name.
fn alert_blocks(rules: &str) -> Vec<(String, String)> {
    rules
        .split("\n      - alert: ")
        .skip(1)
        .map(|block| {
            let (name, body) = block.split_once('\n').unwrap_or((block, ""));
            (name.trim().to_string(), body.to_string())
        })
        .collect()
}

#[test]
fn every_alert_has_static_namespace_severity_and_runbook() {
    let rules = rendered();
    let blocks = alert_blocks(&rules);
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, STRUCTURAL_ALERTS.to_vec());
    for ((name, body), (want_name, severity, anchor)) in blocks.iter().zip(EXPECTED) {
        assert_eq!(name, want_name);
        let labels = body
            .split_once("        labels:\n")
            .and_then(|(_, rest)| rest.split_once("        annotations:\n"))
            .unwrap_or_else(|| panic!("{name}: no labels/annotations sections"));
        let (labels, annotations) = labels;
        assert!(
            labels.contains("          namespace: \"daedalus\"\n"),
            "{name}: no static namespace label:\n{labels}"
        );
        assert!(
            labels.contains(&format!("          severity: {severity}\n")),
            "{name}: severity is not {severity}:\n{labels}"
        );
        for key in ["summary", "description"] {
            assert!(
                annotations.contains(&format!("          {key}: \"")),
                "{name}: no {key} annotation"
            );
        }
        assert!(
            annotations.contains(&format!(
                "          runbook_url: \"docs/runbook.md#{anchor}\""
            )),
            "{name}: runbook_url is not docs/runbook.md#{anchor}"
        );
    }
}

/// Synthetic series at the local stack's 1 s resolution. Each alert must
/// be silent before its fault (or before its `for:` has elapsed), fire with
/// exactly the expected labels and annotations after, and ignore series
/// outside its scope (other pods, streams, namespaces).
const RULE_TESTS: &str = r#"
rule_files: [rules.yml]
evaluation_interval: 1s
tests:
  - name: faults
    interval: 1s
    input_series:
      # ImagePullBackOff from t=10s; an unrelated pod is always in backoff.
      - series: 'kube_pod_container_status_waiting_reason{namespace="daedalus",pod="daedalus-worker-copilot-1",container="worker",reason="ImagePullBackOff"}'
        values: '0x9 1x40'
      - series: 'kube_pod_container_status_waiting_reason{namespace="daedalus",pod="other-app-1",container="app",reason="ImagePullBackOff"}'
        values: '1x50'
      # Restarts once a second from t=31s.
      - series: 'kube_pod_container_status_restarts_total{namespace="daedalus",pod="daedalus-worker-copilot-1",container="worker"}'
        values: '0x30 1+1x30'
      # Pending grows 10/s: above 100 from t=11s. Other stream grows too;
      # "idle" is high but flat.
      - series: 'nats_consumer_num_pending{stream="DAEDALUS_TASKS",consumer_name="workers"}'
        values: '0+10x60'
      - series: 'nats_consumer_num_pending{stream="OTHER",consumer_name="workers"}'
        values: '0+10x60'
      - series: 'nats_consumer_num_pending{stream="DAEDALUS_TASKS",consumer_name="idle"}'
        values: '500x60'
      # Scaler errors from t=21s; another namespace's scaler always errors.
      - series: 'keda_scaler_errors_total{namespace="daedalus",scaledObject="daedalus-worker-copilot",scaler="natsJetStreamScaler"}'
        values: '0x20 1+1x40'
      - series: 'keda_scaler_errors_total{namespace="other",scaledObject="theirs",scaler="natsJetStreamScaler"}'
        values: '0+1x60'
      # Collector scrape fails from t=11s.
      - series: 'up{job="otel-collector",instance="127.0.0.1:4001"}'
        values: '1x10 0x40'
      # Orchestrator loses its replicas from t=11s.
      - series: 'kube_deployment_status_replicas_available{namespace="daedalus",deployment="daedalus-orchestrator"}'
        values: '1x10 0x40'
      # Last consumer goes away at t=11s while messages remain.
      - series: 'nats_stream_consumer_count{stream="DAEDALUS_TASKS"}'
        values: '1x10 0x40'
      - series: 'nats_stream_total_messages{stream="DAEDALUS_TASKS"}'
        values: '5x50'
    alert_rule_test:
      - eval_time: 12s   # pending, for: 4s not yet elapsed
        alertname: WorkerImagePullBackOff
        exp_alerts: []
      - eval_time: 15s
        alertname: WorkerImagePullBackOff
        exp_alerts:
          - exp_labels: {alertname: WorkerImagePullBackOff, severity: page, namespace: daedalus, pod: daedalus-worker-copilot-1, container: worker, reason: ImagePullBackOff}
            exp_annotations:
              summary: "Worker daedalus-worker-copilot-1 cannot pull its image"
              description: "Container worker of worker pod daedalus-worker-copilot-1 is in ImagePullBackOff: the worker image or tag cannot be pulled, so no task of this agent type can start."
              runbook_url: "docs/runbook.md#worker-image-pull-backoff"

      - eval_time: 30s
        alertname: WorkerCrashLoopBackOff
        exp_alerts: []
      - eval_time: 34s   # pending, for: 6s not yet elapsed
        alertname: WorkerCrashLoopBackOff
        exp_alerts: []
      - eval_time: 40s
        alertname: WorkerCrashLoopBackOff
        exp_alerts:
          - exp_labels: {alertname: WorkerCrashLoopBackOff, severity: page, namespace: daedalus, pod: daedalus-worker-copilot-1, container: worker}
            exp_annotations:
              summary: "Worker daedalus-worker-copilot-1 keeps restarting"
              description: "Container worker of worker pod daedalus-worker-copilot-1 keeps restarting (CrashLoopBackOff): its restart counter is still rising."
              runbook_url: "docs/runbook.md#worker-crashloop"

      - eval_time: 5s   # growing but below the 100 floor
        alertname: NATSConsumerLagUnbounded
        exp_alerts: []
      - eval_time: 20s
        alertname: NATSConsumerLagUnbounded
        exp_alerts:
          - exp_labels: {alertname: NATSConsumerLagUnbounded, severity: page, namespace: daedalus, stream: DAEDALUS_TASKS, consumer_name: workers}
            exp_annotations:
              summary: "Consumer workers on stream DAEDALUS_TASKS is falling behind"
              description: "Pending messages for consumer workers on stream DAEDALUS_TASKS keep growing and exceed 100: workers are not draining the task queue."
              runbook_url: "docs/runbook.md#nats-consumer-lag"

      - eval_time: 15s
        alertname: KEDAScalerError
        exp_alerts: []
      - eval_time: 30s
        alertname: KEDAScalerError
        exp_alerts:
          - exp_labels: {alertname: KEDAScalerError, severity: page, namespace: daedalus, scaledObject: daedalus-worker-copilot, scaler: natsJetStreamScaler}
            exp_annotations:
              summary: "KEDA scaler natsJetStreamScaler of daedalus-worker-copilot is failing"
              description: "KEDA reports errors from scaler natsJetStreamScaler of ScaledObject daedalus-worker-copilot in namespace daedalus: workers will not scale with the queue."
              runbook_url: "docs/runbook.md#keda-scaler-error"

      - eval_time: 14s   # pending, for: 5s not yet elapsed
        alertname: OTelCollectorDown
        exp_alerts: []
      - eval_time: 20s
        alertname: OTelCollectorDown
        exp_alerts:
          - exp_labels: {alertname: OTelCollectorDown, severity: page, namespace: daedalus, job: otel-collector, instance: "127.0.0.1:4001"}
            exp_annotations:
              summary: "The OpenTelemetry collector is down or not scraped"
              description: "up{job=\"otel-collector\"} is 0 or absent: traces and metrics from the platform are not being collected."
              runbook_url: "docs/runbook.md#otel-collector-down"

      - eval_time: 13s   # pending, for: 4s not yet elapsed
        alertname: OrchestratorDown
        exp_alerts: []
      - eval_time: 20s
        alertname: OrchestratorDown
        exp_alerts:
          - exp_labels: {alertname: OrchestratorDown, severity: page, namespace: daedalus, deployment: daedalus-orchestrator}
            exp_annotations:
              summary: "The orchestrator has no available replicas in daedalus"
              description: "Deployment daedalus-orchestrator in namespace daedalus has 0 available replicas or does not exist: no task is dispatched."
              runbook_url: "docs/runbook.md#orchestrator-down"

      - eval_time: 15s   # pending, for: 6s not yet elapsed
        alertname: NATSStreamUnhealthy
        exp_alerts: []
      - eval_time: 20s
        alertname: NATSStreamUnhealthy
        exp_alerts:
          - exp_labels: {alertname: NATSStreamUnhealthy, severity: warn, namespace: daedalus, stream: DAEDALUS_TASKS}
            exp_annotations:
              summary: "Stream DAEDALUS_TASKS holds messages but has no consumer"
              description: "Stream DAEDALUS_TASKS has messages and zero consumers: nothing will drain it."
              runbook_url: "docs/runbook.md#nats-stream-unhealthy"

  - name: absent-legs
    interval: 1s
    input_series:
      - series: 'unrelated_metric'
        values: '1x20'
    alert_rule_test:
      # The synthesised series carries only the selector's labels plus the
      # static ones, which is why the static namespace label matters.
      - eval_time: 10s
        alertname: OTelCollectorDown
        exp_alerts:
          - exp_labels: {alertname: OTelCollectorDown, severity: page, namespace: daedalus, job: otel-collector}
            exp_annotations:
              summary: "The OpenTelemetry collector is down or not scraped"
              description: "up{job=\"otel-collector\"} is 0 or absent: traces and metrics from the platform are not being collected."
              runbook_url: "docs/runbook.md#otel-collector-down"
      - eval_time: 10s
        alertname: OrchestratorDown
        exp_alerts:
          - exp_labels: {alertname: OrchestratorDown, severity: page, namespace: daedalus, deployment: daedalus-orchestrator}
            exp_annotations:
              summary: "The orchestrator has no available replicas in daedalus"
              description: "Deployment daedalus-orchestrator in namespace daedalus has 0 available replicas or does not exist: no task is dispatched."
              runbook_url: "docs/runbook.md#orchestrator-down"
      - eval_time: 10s
        alertname: NATSStreamUnhealthy
        exp_alerts: []
"#;

#[test]
fn each_alert_fires_on_its_fault_within_the_scaled_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rendered()).unwrap();
    std::fs::write(dir.path().join("rules_test.yml"), RULE_TESTS).unwrap();
    let out = promtool(&["test", "rules", "rules_test.yml"], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "promtool test rules failed:\n{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn rule_tests_can_fail() {
    // Same tests against rules whose OrchestratorDown lost its absent() leg
    // (the spec's Finding 4): the absent-legs group must catch it.
    let broken = rendered().replacen(
        "absent(kube_deployment_status_replicas_available{namespace=\"daedalus\", deployment=\"daedalus-orchestrator\"})\n            or\n",
        "",
        1,
    );
    assert_ne!(broken, rendered(), "the breakage must apply");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), broken).unwrap();
    std::fs::write(dir.path().join("rules_test.yml"), RULE_TESTS).unwrap();
    let out = promtool(&["test", "rules", "rules_test.yml"], dir.path());
    let said = text(&out);
    assert!(!out.status.success(), "broken rules passed:\n{said}");
    assert!(said.contains("OrchestratorDown"), "{said}");
}
