//! The trace audit with Jaeger as the trace backend: the reference fleet
//! exports its hop spans to firedrill's OTLP receiver, and a Jaeger
//! stand-in (`tests/common/jaeger.rs`) serves them as Jaeger's query
//! service does; the audit reads them only through `/api/traces/{id}`.

use crate::common::jaeger;
use firedrill::clients::jaeger::JaegerClient;
use firedrill::commands::probe_config;
use firedrill::fleet::faults::FleetSwitch;
use firedrill::model::trace::Finding;
use firedrill::model::Verdict;
use firedrill::probe::run_probe;
use firedrill::spec::builtin_trace_tree;
use firedrill::trace::collect::{audit_tasks, SpanSource};
use firedrill::trace::summarize;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traces_read_from_jaeger_pass_and_a_dropped_context_is_named() {
    let (spec, receiver, env, client) = crate::common::fleet::traced_fleet().await;
    let store = receiver.store();
    let jaeger_url = jaeger::start(move |id| store.trace(id)).await;
    let source = SpanSource::Jaeger(JaegerClient::new(&jaeger_url));
    let tree = builtin_trace_tree();

    let out = run_probe(&client, &probe_config(&spec, Some(40), Some(20)), None)
        .await
        .unwrap();
    let (audits, errors) = audit_tasks(&tree, &out.tasks, &source, Duration::from_secs(10)).await;
    assert!(errors.is_empty(), "{errors:?}");
    let s = summarize("Jaeger", &tree, &audits, 0);
    assert_eq!(
        (s.tasks, s.passed, s.failed),
        (40, 40, 0),
        "{:?}",
        s.failures.first()
    );
    assert_eq!(s.verdict(), Verdict::Pass);

    // Context dropped at session/prompt: those hops' spans start another
    // trace, so Jaeger's trace for the task lacks them.
    let out = crate::common::fleet::with_switch(
        &env,
        FleetSwitch::DropTraceContext,
        run_probe(&client, &probe_config(&spec, Some(10), Some(10)), None),
    )
    .await
    .unwrap();
    let (audits, errors) = audit_tasks(&tree, &out.tasks, &source, Duration::from_secs(3)).await;
    assert!(errors.is_empty(), "{errors:?}");
    let s = summarize("Jaeger", &tree, &audits, 0);
    assert_eq!((s.passed, s.failed), (0, 10));
    assert_eq!(s.missing_by_hop.get("session/prompt"), Some(&10));
    assert_eq!(s.missing_by_hop.get("session/update"), Some(&10));
    assert_eq!(s.verdict(), Verdict::Fail);
    for a in &audits {
        assert!(a
            .findings
            .iter()
            .any(|f| matches!(f, Finding::MissingHop { .. })));
    }

    env.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_jaeger_is_an_error_not_a_failed_trace() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let tree = builtin_trace_tree();
    let tasks: Vec<firedrill::probe::SentTask> = (0..3)
        .map(|i| firedrill::probe::SentTask {
            task_id: format!("t-{i}"),
            trace_id: format!("4bf92f3577b34da6a3ce929d0e0e473{i}"),
            span_id: "00f067aa0ba902b7".into(),
            envelope_trace_id: None,
        })
        .collect();
    let source = SpanSource::Jaeger(JaegerClient::new(&format!("http://{closed}")));
    let (audits, errors) = audit_tasks(&tree, &tasks, &source, Duration::from_secs(1)).await;
    assert_eq!(audits.len(), 3);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains(&format!("jaeger http://{closed} is unreachable")),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("jaeger_url"), "{}", errors[0]);
    let mut s = summarize("Jaeger", &tree, &audits, 0);
    s.errors = errors;
    assert_eq!(s.verdict(), Verdict::Error);
}
