//! A Jaeger query-service stand-in (Jaeger does not run here): `GET
//! /api/traces/{id}` answering in the JSON the real one writes (the
//! envelope and trace shape of `tests/fixtures/jaeger/`, see its README),
//! built from the spans `spans_of` returns for the id; Jaeger's 404 body
//! when there are none.

use firedrill::model::span::{Span, TASK_ID_ATTR};
use std::collections::BTreeMap;
use std::sync::Arc;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/jaeger/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Jaeger writes a trace id without its high half when that is zero
/// (`TraceID.String()`: `%016x` of the low half).
fn jaeger_trace_id(hex32: &str) -> String {
    match hex32.strip_prefix("0000000000000000") {
        Some(low) => low.to_string(),
        None => hex32.to_string(),
    }
}

/// One trace as Jaeger's `/api/traces/{id}` writes it.
pub fn trace_json(spans: &[Span]) -> serde_json::Value {
    let mut processes: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for s in spans {
        let n = processes.len() + 1;
        let pid = processes
            .entry(s.service.clone())
            .or_insert_with(|| format!("p{n}"))
            .clone();
        let references: Vec<serde_json::Value> = s
            .parent_span_id
            .iter()
            .map(|p| {
                serde_json::json!({
                    "refType": "CHILD_OF",
                    "traceID": jaeger_trace_id(&s.trace_id),
                    "spanID": p,
                })
            })
            .collect();
        let tags: Vec<serde_json::Value> = s
            .task_id
            .iter()
            .map(|t| serde_json::json!({ "key": TASK_ID_ATTR, "type": "string", "value": t }))
            .collect();
        out.push(serde_json::json!({
            "traceID": jaeger_trace_id(&s.trace_id),
            "spanID": s.span_id,
            "operationName": s.name,
            "references": references,
            "startTime": 1485467191639875u64,
            "duration": 5,
            "tags": tags,
            "logs": [],
            "processID": pid,
            "warnings": null,
        }));
    }
    let processes: serde_json::Map<String, serde_json::Value> = processes
        .into_iter()
        .map(|(service, pid)| {
            (
                pid,
                serde_json::json!({ "serviceName": service, "tags": [] }),
            )
        })
        .collect();
    let trace_id = spans
        .first()
        .map(|s| jaeger_trace_id(&s.trace_id))
        .unwrap_or_default();
    serde_json::json!({
        "data": [{ "traceID": trace_id, "spans": out, "processes": processes, "warnings": null }],
        "total": 0, "limit": 0, "offset": 0, "errors": null,
    })
}

/// Starts the stand-in on loopback; its base URL.
pub async fn start<F>(spans_of: F) -> String
where
    F: Fn(&str) -> Vec<Span> + Send + Sync + 'static,
{
    use axum::extract::Path;
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;

    let spans_of = Arc::new(spans_of);
    let app = axum::Router::new().route(
        "/api/traces/{id}",
        axum::routing::get(move |Path(id): Path<String>| {
            let spans_of = spans_of.clone();
            async move {
                let spans = spans_of(&id);
                if spans.is_empty() {
                    return (
                        StatusCode::NOT_FOUND,
                        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        fixture("trace-not-found.json"),
                    )
                        .into_response();
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::to_vec(&trace_json(&spans)).unwrap(),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
