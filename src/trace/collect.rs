//! Gathers each sentinel's spans from a span source (the local receiver,
//! Tempo or Jaeger), bounded in time, and audits them.

use super::audit::{audit_task, TaskTrace};
use super::receiver::SpanStore;
use crate::clients::jaeger::JaegerClient;
use crate::clients::tempo::TempoClient;
use crate::model::span::Span;
use crate::model::trace::{TaskAudit, TraceTree};
use crate::probe::SentTask;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Trace lookups (Tempo, Jaeger) in flight at once.
const TEMPO_PARALLEL: usize = 16;
/// Between retries of a trace not found yet.
const TEMPO_RETRY: Duration = Duration::from_secs(1);

pub enum SpanSource {
    /// Spans the fleet exported to firedrill's own OTLP receiver.
    Local(Arc<SpanStore>),
    Tempo(TempoClient),
    /// Jaeger's query service (`jaeger_url`).
    Jaeger(JaegerClient),
}

/// A trace lookup's failure: not found (yet), or anything else in words.
enum Lookup {
    NotFound,
    Failed(String),
}

impl SpanSource {
    /// One trace from a remote backend; `None` for the local receiver.
    async fn fetch(&self, trace_id: &str) -> Option<Result<Vec<Span>, Lookup>> {
        Some(match self {
            SpanSource::Local(_) => return None,
            SpanSource::Tempo(tempo) => tempo.trace(trace_id).await.map_err(|e| {
                if e.is_not_found() {
                    Lookup::NotFound
                } else {
                    Lookup::Failed(e.to_string())
                }
            }),
            SpanSource::Jaeger(jaeger) => jaeger.trace(trace_id).await.map_err(|e| {
                if e.is_not_found() {
                    Lookup::NotFound
                } else {
                    Lookup::Failed(e.to_string())
                }
            }),
        })
    }
}

/// The probe's own publish span: the root, whose id is the traceparent's.
pub fn publish_span(tree: &TraceTree, task: &SentTask) -> Span {
    Span {
        trace_id: task.trace_id.clone(),
        span_id: task.span_id.clone(),
        parent_span_id: None,
        name: tree.root().name.clone(),
        service: "firedrill".into(),
        task_id: Some(task.task_id.clone()),
    }
}

fn task_trace(t: &SentTask) -> TaskTrace {
    TaskTrace {
        task_id: t.task_id.clone(),
        trace_id: t.trace_id.clone(),
        root_span_id: t.span_id.clone(),
        envelope_trace_id: t.envelope_trace_id.clone(),
    }
}

/// Audits every task, waiting at most `wait` for spans to arrive. Returns
/// the verdicts and any errors reading the source.
pub async fn audit_tasks(
    tree: &TraceTree,
    tasks: &[SentTask],
    source: &SpanSource,
    wait: Duration,
) -> (Vec<TaskAudit>, Vec<String>) {
    let deadline = Instant::now() + wait;
    match source {
        SpanSource::Local(store) => {
            // Every task exports one span per hop but the probe's own, each
            // tagged with its task id. Count only these tasks' spans: the
            // store also holds those of earlier audits on the same receiver.
            let expected = tasks.len() * (tree.hops.len().saturating_sub(1));
            let received = || store.count_for_tasks(tasks.iter().map(|t| t.task_id.as_str()));
            while received() < expected && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let audits = tasks
                .iter()
                .map(|t| {
                    let mut spans = store.trace(&t.trace_id);
                    spans.push(publish_span(tree, t));
                    audit_task(tree, &task_trace(t), &spans, &store.task(&t.task_id))
                })
                .collect();
            (audits, Vec::new())
        }
        SpanSource::Tempo(_) | SpanSource::Jaeger(_) => {
            let results: Vec<(TaskAudit, Option<String>)> = futures::stream::iter(tasks)
                .map(|t| async move {
                    let (mut spans, error) = loop {
                        match source.fetch(&t.trace_id).await {
                            Some(Ok(spans)) => break (spans, None),
                            Some(Err(Lookup::NotFound)) if Instant::now() < deadline => {
                                tokio::time::sleep(TEMPO_RETRY).await;
                            }
                            // Still not found: the audit names every hop missing.
                            Some(Err(Lookup::NotFound)) | None => break (Vec::new(), None),
                            Some(Err(Lookup::Failed(e))) => break (Vec::new(), Some(e)),
                        }
                    };
                    spans.push(publish_span(tree, t));
                    (audit_task(tree, &task_trace(t), &spans, &[]), error)
                })
                .buffered(TEMPO_PARALLEL)
                .collect()
                .await;
            let mut errors: Vec<String> = Vec::new();
            let mut audits = Vec::with_capacity(results.len());
            for (a, e) in results {
                audits.push(a);
                if let Some(e) = e {
                    if errors.len() < 10 {
                        errors.push(e);
                    }
                }
            }
            (audits, errors)
        }
    }
}
