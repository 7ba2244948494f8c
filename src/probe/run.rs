//! The sentinel probe: publish tasks with fresh trace context, await results.

use super::envelope::{ResultEnvelope, TaskMessage, MSG_ID_HEADER, TRACEPARENT_HEADER};
use super::latency::Latencies;
use super::traceparent::TraceParent;
use crate::model::probe::{
    LatencySummary, ProbeOutcome, PublishFailure, SentTask, SentinelRef, TraceMismatch,
};
use chrono::Utc;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{oneshot, Semaphore};

/// What one probe run needs, already rendered from the spec and target.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub name: String,
    pub stream: String,
    pub subject: String,
    pub result_subject: String,
    pub agent_type: String,
    pub count: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub payload: serde_json::Value,
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("probe {probe}: cannot subscribe to result subject {subject}: {reason}")]
    Subscribe {
        probe: String,
        subject: String,
        reason: String,
    },
    #[error("probe {probe}: JetStream stream {stream} is not reachable: {reason}. Check that the stream exists on this NATS and the probe spec names it")]
    Stream {
        probe: String,
        stream: String,
        reason: String,
    },
}

/// Progress callback (for a bar): called with the number of tasks settled so far.
pub type SettledFn = Arc<dyn Fn(u64) + Send + Sync>;

enum Settled {
    Completed { latency: Duration, trace_id: String },
    TimedOut,
    PublishFailed(String),
}

struct Pending {
    tx: Option<oneshot::Sender<(Instant, ResultEnvelope)>>,
}

/// Publishes `cfg.count` sentinels with at most `cfg.concurrency` awaiting
/// their results at once, and collects what came back.
pub async fn run_probe(
    client: &async_nats::Client,
    cfg: &ProbeConfig,
    progress: Option<SettledFn>,
) -> Result<ProbeOutcome, ProbeError> {
    let js = async_nats::jetstream::new(client.clone());
    js.get_stream(&cfg.stream)
        .await
        .map_err(|e| ProbeError::Stream {
            probe: cfg.name.clone(),
            stream: cfg.stream.clone(),
            reason: e.to_string(),
        })?;

    let pending: Arc<Mutex<HashMap<String, Pending>>> = Arc::default();
    let duplicated: Arc<Mutex<Vec<String>>> = Arc::default();

    // Subscribe before the first publish so no result can be missed.
    let mut results = client
        .subscribe(cfg.result_subject.clone())
        .await
        .map_err(|e| ProbeError::Subscribe {
            probe: cfg.name.clone(),
            subject: cfg.result_subject.clone(),
            reason: e.to_string(),
        })?;
    client.flush().await.ok();
    let collector = {
        let pending = pending.clone();
        let duplicated = duplicated.clone();
        tokio::spawn(async move {
            while let Some(msg) = results.next().await {
                let received = Instant::now();
                let Ok(env) = serde_json::from_slice::<ResultEnvelope>(&msg.payload) else {
                    continue;
                };
                let mut map = pending.lock().expect("probe map poisoned");
                // Results of other runs sharing the subject are not ours.
                let Some(p) = map.get_mut(&env.task_id) else {
                    continue;
                };
                match p.tx.take() {
                    Some(tx) => {
                        let _ = tx.send((received, env));
                    }
                    None => duplicated
                        .lock()
                        .expect("poisoned")
                        .push(env.task_id.clone()),
                }
            }
        })
    };

    let started_at = Utc::now();
    let wall = Instant::now();
    let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut handles = Vec::with_capacity(cfg.count);
    let mut sentinel = None;
    let settled_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let base_headers = {
        let mut h = async_nats::HeaderMap::new();
        h.insert("firedrill-probe", cfg.name.as_str());
        h
    };

    for _ in 0..cfg.count {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let task_id = new_task_id();
        let tp = TraceParent::random();
        if sentinel.is_none() {
            sentinel = Some(SentinelRef {
                task_id: task_id.clone(),
                trace_id: tp.trace_id_hex(),
            });
        }
        let (headers, body) = build_task(cfg, &task_id, &tp, &base_headers);
        let (tx, rx) = oneshot::channel();
        pending
            .lock()
            .expect("probe map poisoned")
            .insert(task_id.clone(), Pending { tx: Some(tx) });

        let js = js.clone();
        let subject = cfg.subject.clone();
        let timeout = cfg.timeout;
        let progress = progress.clone();
        let settled_count = settled_count.clone();
        handles.push(tokio::spawn(async move {
            let sent_at = Instant::now();
            let settled = match js.publish_with_headers(subject, headers, body.into()).await {
                Err(e) => Settled::PublishFailed(e.to_string()),
                Ok(ack) => match tokio::time::timeout(timeout, async {
                    match ack.await {
                        Err(e) => Err(e.to_string()),
                        Ok(_) => Ok(rx.await),
                    }
                })
                .await
                {
                    Err(_) => Settled::TimedOut,
                    Ok(Err(e)) => Settled::PublishFailed(e),
                    Ok(Ok(Err(_))) => Settled::TimedOut,
                    Ok(Ok(Ok((received, env)))) => Settled::Completed {
                        latency: received.saturating_duration_since(sent_at),
                        trace_id: env.trace_id,
                    },
                },
            };
            drop(permit);
            let n = settled_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n);
            }
            (task_id, tp, settled)
        }));
    }

    let mut latencies = Latencies::default();
    let mut out = ProbeOutcome {
        name: cfg.name.clone(),
        subject: cfg.subject.clone(),
        agent_type: cfg.agent_type.clone(),
        started_at,
        finished_at: started_at,
        sent: cfg.count as u64,
        acked: 0,
        completed: 0,
        timed_out: Vec::new(),
        duplicated: Vec::new(),
        trace_mismatches: Vec::new(),
        publish_failures: Vec::new(),
        latency: LatencySummary::default(),
        throughput_per_s: 0.0,
        sentinel,
        tasks: Vec::with_capacity(cfg.count),
    };
    for h in handles {
        let (task_id, tp, settled) = h.await.expect("probe task panicked");
        let sent_trace = tp.trace_id_hex();
        out.tasks.push(SentTask {
            task_id: task_id.clone(),
            trace_id: sent_trace.clone(),
            span_id: tp.span_id_hex(),
            envelope_trace_id: match &settled {
                Settled::Completed { trace_id, .. } => Some(trace_id.clone()),
                _ => None,
            },
        });
        match settled {
            Settled::Completed { latency, trace_id } => {
                out.acked += 1;
                out.completed += 1;
                latencies.record(latency);
                if trace_id != sent_trace {
                    out.trace_mismatches.push(TraceMismatch {
                        task_id,
                        sent: sent_trace,
                        received: trace_id,
                    });
                }
            }
            Settled::TimedOut => {
                out.acked += 1;
                out.timed_out.push(task_id);
            }
            Settled::PublishFailed(reason) => out
                .publish_failures
                .push(PublishFailure { task_id, reason }),
        }
    }
    let elapsed = wall.elapsed();
    collector.abort();
    out.finished_at = Utc::now();
    out.latency = latencies.summary();
    out.duplicated = std::mem::take(&mut *duplicated.lock().expect("poisoned"));
    out.throughput_per_s = if elapsed.as_secs_f64() > 0.0 {
        out.completed as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    Ok(out)
}

/// The message of one sentinel: JSON body and headers (`traceparent`,
/// `Nats-Msg-Id` = task id, and `base`).
fn build_task(
    cfg: &ProbeConfig,
    task_id: &str,
    tp: &TraceParent,
    base: &async_nats::HeaderMap,
) -> (async_nats::HeaderMap, Vec<u8>) {
    let task = TaskMessage {
        task_id: task_id.to_string(),
        agent_type: cfg.agent_type.clone(),
        kind: "sentinel".to_string(),
        reply_subject: cfg.result_subject.clone(),
        payload: cfg.payload.clone(),
    };
    let body = serde_json::to_vec(&task).expect("task serialises");
    let mut headers = base.clone();
    headers.insert(TRACEPARENT_HEADER, tp.to_string().as_str());
    headers.insert(MSG_ID_HEADER, task_id);
    (headers, body)
}

/// Publishes `cfg.count` sentinels and waits only for JetStream's acks, not
/// for results: a drill's trigger, where the fault may keep results from
/// ever coming. Returns how many were acked.
pub async fn publish_only(client: &async_nats::Client, cfg: &ProbeConfig) -> Result<usize, String> {
    let js = async_nats::jetstream::new(client.clone());
    let mut base = async_nats::HeaderMap::new();
    base.insert("firedrill-probe", cfg.name.as_str());
    let mut acks = Vec::with_capacity(cfg.count);
    for _ in 0..cfg.count {
        let task_id = new_task_id();
        let (headers, body) = build_task(cfg, &task_id, &TraceParent::random(), &base);
        let ack = js
            .publish_with_headers(cfg.subject.clone(), headers, body.into())
            .await
            .map_err(|e| format!("publish to {}: {e}", cfg.subject))?;
        acks.push(ack);
    }
    let mut acked = 0;
    for ack in acks {
        ack.await
            .map_err(|e| format!("JetStream did not ack a sentinel on {}: {e}", cfg.subject))?;
        acked += 1;
    }
    Ok(acked)
}

/// Sentinel task ids: `sentinel-<unix ms>-<random>`, unique across runs.
fn new_task_id() -> String {
    use rand::Rng;
    format!(
        "sentinel-{}-{:012x}",
        Utc::now().timestamp_millis(),
        rand::rng().random::<u64>() & 0xffff_ffff_ffff
    )
}
