//! An OTLP/HTTP traces receiver (`POST /v1/traces`, JSON encoding) that
//! keeps spans in memory: the span source of a local stack, where no
//! collector or Tempo runs.

use crate::model::span::{decode_trace, IdEncoding, Span};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Spans received, indexed by trace id and by `firedrill.task_id`.
#[derive(Debug, Default)]
pub struct SpanStore {
    inner: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    by_trace: HashMap<String, Vec<Span>>,
    by_task: HashMap<String, Vec<Span>>,
    count: usize,
}

impl SpanStore {
    pub fn add(&self, spans: Vec<Span>) {
        let mut idx = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        idx.count += spans.len();
        for s in spans {
            if let Some(task) = &s.task_id {
                idx.by_task.entry(task.clone()).or_default().push(s.clone());
            }
            idx.by_trace.entry(s.trace_id.clone()).or_default().push(s);
        }
    }

    /// Spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        let idx = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        idx.by_trace.get(trace_id).cloned().unwrap_or_default()
    }

    /// Spans tagged with a task id, in any trace.
    pub fn task(&self, task_id: &str) -> Vec<Span> {
        let idx = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        idx.by_task.get(task_id).cloned().unwrap_or_default()
    }

    /// Spans received so far that are tagged with one of `task_ids`.
    pub fn count_for_tasks<'a>(&self, task_ids: impl IntoIterator<Item = &'a str>) -> usize {
        let idx = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        task_ids
            .into_iter()
            .map(|t| idx.by_task.get(t).map_or(0, Vec::len))
            .sum()
    }

    /// Spans received so far.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A running receiver on 127.0.0.1.
pub struct OtlpReceiver {
    addr: SocketAddr,
    store: Arc<SpanStore>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> std::io::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(SpanStore::default());
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(store.clone());
        let (stop, mut stop_rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!("OTLP receiver failed: {e}");
            }
        });
        Ok(OtlpReceiver {
            addr,
            store,
            stop,
            server,
        })
    }

    /// The URL exporters post to: `http://127.0.0.1:<port>/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn store(&self) -> Arc<SpanStore> {
        self.store.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

async fn export(
    State(store): State<Arc<SpanStore>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> (StatusCode, String) {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("only OTLP/JSON (Content-Type: application/json) is accepted, got {ct:?}"),
        );
    }
    match decode_trace(&body, IdEncoding::Hex) {
        Ok(spans) => {
            store.add(spans);
            // ExportTraceServiceResponse with no partial success.
            (StatusCode::OK, "{}".to_string())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, task: Option<&str>) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: None,
            name: "hop".into(),
            service: "svc".into(),
            task_id: task.map(str::to_string),
        }
    }

    #[test]
    fn counts_only_the_spans_of_the_given_tasks() {
        let store = SpanStore::default();
        // An earlier audit's spans, one untagged span, and this audit's.
        store.add(vec![span("a", Some("old-1")), span("a", Some("old-1"))]);
        store.add(vec![span("b", None)]);
        store.add(vec![span("c", Some("new-1")), span("d", Some("new-2"))]);
        assert_eq!(store.len(), 5);
        assert_eq!(store.count_for_tasks(["new-1", "new-2"]), 2);
        assert_eq!(store.count_for_tasks(["new-1", "absent"]), 1);
        assert_eq!(store.count_for_tasks(["old-1"]), 2);
        assert_eq!(store.count_for_tasks([]), 0);
    }
}
