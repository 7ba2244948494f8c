//! The trace audit against the real local stack: the reference fleet
//! exports its hop spans to firedrill's OTLP receiver.

use firedrill::commands::probe_config;
use firedrill::fleet::faults::FleetSwitch;
use firedrill::model::trace::Finding;
use firedrill::probe::run_probe;
use firedrill::spec::builtin_trace_tree;
use firedrill::trace::collect::{audit_tasks, SpanSource};
use firedrill::trace::receiver::OtlpReceiver;
use firedrill::trace::summarize;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_tasks_pass_and_dropped_context_is_named() {
    let (spec, receiver, env, client) = crate::common::fleet::traced_fleet().await;
    let tree = builtin_trace_tree();
    let source = SpanSource::Local(receiver.store());

    // 100 tasks at once: every one a single, complete trace.
    let out = run_probe(&client, &probe_config(&spec, Some(100), Some(100)), None)
        .await
        .unwrap();
    assert_eq!(out.tasks.len(), 100);
    let (audits, errors) = audit_tasks(&tree, &out.tasks, &source, Duration::from_secs(10)).await;
    assert!(errors.is_empty());
    let s = summarize("test", &tree, &audits, 0);
    assert_eq!(
        (s.tasks, s.passed, s.failed),
        (100, 100, 0),
        "{:?}",
        s.failures.first()
    );
    assert!(s.is_pass());

    // Context dropped at session/prompt: every task names that hop (and its
    // child) missing, and the trace its spans escaped to.
    let out = crate::common::fleet::with_switch(
        &env,
        FleetSwitch::DropTraceContext,
        run_probe(&client, &probe_config(&spec, Some(30), Some(30)), None),
    )
    .await
    .unwrap();
    let (audits, _) = audit_tasks(&tree, &out.tasks, &source, Duration::from_secs(10)).await;
    let s = summarize("test", &tree, &audits, 0);
    assert_eq!((s.passed, s.failed), (0, 30));
    assert_eq!(s.missing_by_hop.get("session/prompt"), Some(&30));
    assert_eq!(s.missing_by_hop.get("session/update"), Some(&30));
    assert_eq!(s.missing_by_hop.len(), 2);
    assert_eq!(s.escaped_traces, 30);
    assert_eq!(s.orphan_spans, 0);
    let sent: Vec<&str> = out.tasks.iter().map(|t| t.task_id.as_str()).collect();
    for a in &audits {
        assert!(sent.contains(&a.task_id.as_str()));
        assert!(a.findings.iter().any(|f| matches!(f,
            Finding::EscapedTrace { names, trace_id } if names == &["session/prompt", "session/update"] && trace_id != &a.trace_id)));
    }

    env.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test]
async fn receiver_accepts_otlp_json_only() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let http = reqwest::Client::new();
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
        "scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"a"}]}]}]}"#;
    let ok = http
        .post(receiver.endpoint())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let proto = http
        .post(receiver.endpoint())
        .header("content-type", "application/x-protobuf")
        .body(vec![0u8; 4])
        .send()
        .await
        .unwrap();
    assert_eq!(proto.status(), 415);
    let bad = http
        .post(receiver.endpoint())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let spans = receiver.store().trace("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].service, "svc");
    receiver.shutdown().await;
}
