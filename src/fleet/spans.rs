//! The spans a worker exports per task, as an OTLP/JSON export request
//! (ids in hex): the hop chain under the sentinel's `traceparent`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::model::span::TASK_ID_ATTR;
use crate::probe::traceparent::TraceParent;

/// The hops after the probe's `publish`, each with its parent hop.
/// Must match the built-in trace tree (`src/spec/builtin/trace-tree.toml`).
const HOPS: [(&str, &str); 6] = [
    ("consume", "publish"),
    ("session/new", "consume"),
    ("session/prompt", "consume"),
    ("session/update", "session/prompt"),
    ("result publish", "consume"),
    ("collector", "result publish"),
];

/// Where [`crate::fleet::FleetSwitch::DropTraceContext`] loses the context.
pub(crate) const DROP_AT: &str = "session/prompt";

/// The export request body for one task. With `drop_context`, the
/// [`DROP_AT`] hop starts a fresh trace and its children follow it.
pub(crate) fn task_spans(
    parent: &TraceParent,
    task_id: &str,
    started: SystemTime,
    drop_context: bool,
) -> Vec<u8> {
    let start = started
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .max(start);
    // (name, trace id, span id) of spans made so far; "publish" is the probe's.
    let mut made: Vec<(&str, String, String)> =
        vec![("publish", parent.trace_id_hex(), parent.span_id_hex())];
    let mut spans: Vec<Value> = Vec::with_capacity(HOPS.len());
    for (name, parent_name) in HOPS {
        let own = TraceParent::random();
        let (trace_id, parent_id) = if drop_context && name == DROP_AT {
            (own.trace_id_hex(), String::new())
        } else {
            let p = made
                .iter()
                .find(|(n, _, _)| *n == parent_name)
                .expect("parents come first");
            (p.1.clone(), p.2.clone())
        };
        let span_id = own.span_id_hex();
        spans.push(json!({
            "traceId": trace_id,
            "spanId": span_id,
            "parentSpanId": parent_id,
            "name": name,
            "kind": 1,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [{"key": TASK_ID_ATTR, "value": {"stringValue": task_id}}],
        }));
        made.push((name, trace_id, span_id));
    }
    let body = json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "reference-fleet"}}
            ]},
            "scopeSpans": [{"scope": {"name": "firedrill-fleet"}, "spans": spans}],
        }]
    });
    serde_json::to_vec(&body).expect("span JSON serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::span::{decode_trace, IdEncoding, Span};
    use crate::trace::{audit_task, TaskTrace};

    fn audit(drop_context: bool) -> Vec<String> {
        let tp = TraceParent::random();
        let body = task_spans(&tp, "t1", SystemTime::now(), drop_context);
        let mut spans = decode_trace(&body, IdEncoding::Hex).unwrap();
        let escaped: Vec<Span> = spans
            .iter()
            .filter(|s| s.trace_id != tp.trace_id_hex())
            .cloned()
            .collect();
        spans.push(Span {
            trace_id: tp.trace_id_hex(),
            span_id: tp.span_id_hex(),
            parent_span_id: None,
            name: "publish".into(),
            service: "firedrill".into(),
            task_id: Some("t1".into()),
        });
        let task = TaskTrace {
            task_id: "t1".into(),
            trace_id: tp.trace_id_hex(),
            root_span_id: tp.span_id_hex(),
            envelope_trace_id: Some(tp.trace_id_hex()),
        };
        audit_task(&crate::spec::builtin_trace_tree(), &task, &spans, &escaped)
            .findings
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn exported_chain_matches_the_expected_tree() {
        assert_eq!(audit(false), Vec::<String>::new());
    }

    #[test]
    fn dropped_context_misses_the_hop_and_escapes() {
        let findings = audit(true);
        assert_eq!(findings[0], "missing hop `session/prompt`");
        assert_eq!(findings[1], "missing hop `session/update`");
        assert!(findings[2]
            .starts_with("context dropped: `session/prompt`, `session/update` started trace"));
        assert_eq!(findings.len(), 3);
    }
}
