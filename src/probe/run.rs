//! The sentinel probe: publish tasks with fresh trace context, await results.

use super::envelope::{ResultEnvelopeRef, TaskMessageRef, TRACEPARENT_HEADER};
use super::latency::Latencies;
use super::traceparent::TraceParent;
use crate::model::probe::{
    LatencySummary, ProbeOutcome, PublishFailure, SentTask, SentinelRef, TraceMismatch,
};
use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

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

/// How one sentinel ended.
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    Completed { latency: Duration },
    TimedOut,
    PublishFailed(String),
}

/// One published sentinel, in publish order.
struct Slot {
    task_id: String,
    tp: TraceParent,
    sent_at: Instant,
    acked: bool,
    /// When its result was read, and the trace id the result carried.
    result: Option<(Instant, String)>,
    settled: Option<Settled>,
}

/// Every sentinel of one run, and the bookkeeping that settles them: what
/// the event loop of [`run_probe`] calls on each ack, result and deadline.
/// No I/O and no clock of its own (times are passed in), so it is tested
/// directly.
struct Tracker {
    timeout: Duration,
    slots: Vec<Slot>,
    /// Task id -> slot, keyed by the id's random part (see [`new_task_id`]).
    by_key: HashMap<u64, usize>,
    /// Slots before this one are all settled: the oldest deadline is its.
    oldest: usize,
    settled: usize,
    duplicated: Vec<String>,
}

impl Tracker {
    fn new(count: usize, timeout: Duration) -> Self {
        // An absurd count grows the tables as it goes rather than failing here.
        let capacity = count.min(1 << 16);
        Tracker {
            timeout,
            slots: Vec::with_capacity(capacity),
            by_key: HashMap::with_capacity(capacity),
            oldest: 0,
            settled: 0,
            duplicated: Vec::new(),
        }
    }

    /// A fresh task id unique within this run, and its key.
    fn new_id(&self) -> (String, u64) {
        loop {
            let (id, key) = new_task_id();
            if !self.by_key.contains_key(&key) {
                return (id, key);
            }
        }
    }

    fn publish(&mut self, task_id: String, key: u64, tp: TraceParent, sent_at: Instant) -> usize {
        let idx = self.slots.len();
        self.by_key.insert(key, idx);
        self.slots.push(Slot {
            task_id,
            tp,
            sent_at,
            acked: false,
            result: None,
            settled: None,
        });
        idx
    }

    /// Settles `idx` unless it already is; true if this settled it.
    fn settle(&mut self, idx: usize, how: Settled) -> bool {
        let slot = &mut self.slots[idx];
        if slot.settled.is_some() {
            return false;
        }
        slot.settled = Some(how);
        self.settled += 1;
        true
    }

    /// JetStream's answer to the publish of `idx`.
    fn ack(&mut self, idx: usize, result: Result<(), String>) -> bool {
        match result {
            Err(reason) => self.settle(idx, Settled::PublishFailed(reason)),
            Ok(()) => {
                let slot = &mut self.slots[idx];
                slot.acked = true;
                match &slot.result {
                    Some((received, _)) => {
                        let latency = received.saturating_duration_since(slot.sent_at);
                        self.settle(idx, Settled::Completed { latency })
                    }
                    None => false,
                }
            }
        }
    }

    /// A result envelope read at `received`. Results of other runs sharing
    /// the subject are not ours and are ignored, as is a result that comes
    /// after its task timed out; a second result for a task is a duplicate.
    fn result(&mut self, env: &ResultEnvelopeRef<'_>, received: Instant) -> bool {
        let Some(idx) = task_key(&env.task_id).and_then(|k| self.by_key.get(&k).copied()) else {
            return false;
        };
        let slot = &mut self.slots[idx];
        if slot.task_id != env.task_id {
            return false;
        }
        if slot.result.is_some() {
            self.duplicated.push(slot.task_id.clone());
            return false;
        }
        if slot.settled.is_some() {
            return false;
        }
        slot.result = Some((received, env.trace_id.clone().into_owned()));
        if slot.acked {
            let latency = received.saturating_duration_since(slot.sent_at);
            return self.settle(idx, Settled::Completed { latency });
        }
        false
    }

    /// When the oldest unsettled sentinel times out (all share one timeout,
    /// so publish order is deadline order: the queue is the slots). `None`
    /// when none is out, or the timeout is too long to be an instant.
    fn next_deadline(&mut self) -> Option<Instant> {
        while self.oldest < self.slots.len() && self.slots[self.oldest].settled.is_some() {
            self.oldest += 1;
        }
        self.slots
            .get(self.oldest)
            .and_then(|s| s.sent_at.checked_add(self.timeout))
    }

    /// Times out every unsettled sentinel whose deadline is at or before
    /// `now`; returns how many.
    fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(deadline) = self.next_deadline() {
            if deadline > now {
                break;
            }
            n += usize::from(self.settle(self.oldest, Settled::TimedOut));
        }
        n
    }
}

/// Publishes `cfg.count` sentinels with at most `cfg.concurrency` awaiting
/// their results at once, and collects what came back.
///
/// One event loop, no task per sentinel: it tops up the sentinels in
/// flight, then waits for whichever comes first of a result, a JetStream
/// ack, or the oldest sentinel's deadline (one timer for all of them).
pub async fn run_probe(
    client: &async_nats::Client,
    cfg: &ProbeConfig,
    progress: Option<SettledFn>,
) -> Result<ProbeOutcome, ProbeError> {
    let concurrency = cfg.concurrency.max(1);
    // Room for an ack per sentinel in flight: publishing never waits for
    // an ack permit that only this loop's own pending acks could free.
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .max_ack_inflight(concurrency.max(5_000))
        .build(client.clone());
    js.get_stream(&cfg.stream)
        .await
        .map_err(|e| ProbeError::Stream {
            probe: cfg.name.clone(),
            stream: cfg.stream.clone(),
            reason: e.to_string(),
        })?;

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

    let started_at = Utc::now();
    let wall = Instant::now();
    let mut tracker = Tracker::new(cfg.count, cfg.timeout);
    let mut encoder = TaskEncoder::new(cfg);
    let subject = async_nats::Subject::from(cfg.subject.as_str());
    let mut acks = FuturesUnordered::new();
    let mut in_flight = 0usize;
    let mut results_open = true;
    let deadline = tokio::time::sleep(cfg.timeout);
    tokio::pin!(deadline);

    let report = |tracker: &Tracker, newly: usize, in_flight: &mut usize| {
        if newly == 0 {
            return;
        }
        *in_flight -= newly;
        if let Some(p) = &progress {
            p(tracker.settled as u64);
        }
    };

    loop {
        while in_flight < concurrency && tracker.slots.len() < cfg.count {
            let (task_id, key) = tracker.new_id();
            let tp = TraceParent::random();
            let (headers, body) = encoder.encode(&task_id, &tp);
            let sent_at = Instant::now();
            let published = js
                .publish_with_headers(subject.clone(), headers, body)
                .await;
            let idx = tracker.publish(task_id, key, tp, sent_at);
            in_flight += 1;
            match published {
                Ok(ack) => acks.push(async move { (idx, ack.await.map(|_| ())) }),
                Err(e) => {
                    let newly = usize::from(tracker.ack(idx, Err(e.to_string())));
                    report(&tracker, newly, &mut in_flight);
                }
            }
        }
        if tracker.settled == cfg.count {
            break;
        }
        if let Some(at) = tracker.next_deadline() {
            let at = tokio::time::Instant::from_std(at);
            if deadline.deadline() != at {
                deadline.as_mut().reset(at);
            }
        }
        let newly = tokio::select! {
            biased;
            msg = results.next(), if results_open => match msg {
                Some(msg) => {
                    let received = Instant::now();
                    match serde_json::from_slice::<ResultEnvelopeRef<'_>>(&msg.payload) {
                        Ok(env) => usize::from(tracker.result(&env, received)),
                        Err(_) => 0,
                    }
                }
                None => {
                    // The subscription ended (connection closed): what is
                    // still out can only time out.
                    results_open = false;
                    0
                }
            },
            Some((idx, acked)) = acks.next(), if !acks.is_empty() => {
                usize::from(tracker.ack(idx, acked.map_err(|e| e.to_string())))
            }
            () = &mut deadline => tracker.expire(Instant::now()),
        };
        report(&tracker, newly, &mut in_flight);
    }
    let elapsed = wall.elapsed();
    drop(results);

    let mut latencies = Latencies::default();
    let mut out = ProbeOutcome {
        name: cfg.name.clone(),
        subject: cfg.subject.clone(),
        agent_type: cfg.agent_type.clone(),
        started_at,
        finished_at: Utc::now(),
        sent: cfg.count as u64,
        acked: 0,
        completed: 0,
        timed_out: Vec::new(),
        duplicated: std::mem::take(&mut tracker.duplicated),
        trace_mismatches: Vec::new(),
        publish_failures: Vec::new(),
        latency: LatencySummary::default(),
        throughput_per_s: 0.0,
        sentinel: tracker.slots.first().map(|s| SentinelRef {
            task_id: s.task_id.clone(),
            trace_id: s.tp.trace_id_hex(),
        }),
        tasks: Vec::with_capacity(cfg.count),
    };
    for slot in tracker.slots {
        let Slot {
            task_id,
            tp,
            result,
            settled,
            ..
        } = slot;
        let sent_trace = tp.trace_id_hex();
        let settled = settled.expect("the loop ends when every sentinel is settled");
        let received_trace = match settled {
            Settled::Completed { .. } => result.map(|(_, trace)| trace),
            _ => None,
        };
        out.tasks.push(SentTask {
            task_id: task_id.clone(),
            trace_id: sent_trace.clone(),
            span_id: tp.span_id_hex(),
            envelope_trace_id: received_trace.clone(),
        });
        match settled {
            Settled::Completed { latency } => {
                out.acked += 1;
                out.completed += 1;
                latencies.record(latency);
                let received = received_trace.unwrap_or_default();
                if received != sent_trace {
                    out.trace_mismatches.push(TraceMismatch {
                        task_id,
                        sent: sent_trace,
                        received,
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
    out.latency = latencies.summary();
    out.throughput_per_s = if elapsed.as_secs_f64() > 0.0 {
        out.completed as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    Ok(out)
}

/// Builds sentinel messages: the header name made once, the body
/// serialised from borrowed fields into a buffer sized by the previous one.
pub(crate) struct TaskEncoder<'a> {
    cfg: &'a ProbeConfig,
    last_len: usize,
}

const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);

impl<'a> TaskEncoder<'a> {
    pub(crate) fn new(cfg: &'a ProbeConfig) -> Self {
        TaskEncoder { cfg, last_len: 256 }
    }

    /// The message of one sentinel: JSON body and its one header,
    /// `traceparent`.
    ///
    /// Nothing else rides in headers: no `Nats-Msg-Id` (the probe never
    /// publishes a task twice, so JetStream's de-duplication would protect
    /// nothing while costing the platform's server a duplicate-window entry
    /// per sentinel), no probe name (the body's `kind` and the `sentinel-`
    /// task id already mark probe traffic). Every header byte is parsed and
    /// stored by the server, and measurably slows its round trip.
    pub(crate) fn encode(&mut self, task_id: &str, tp: &TraceParent) -> (HeaderMap, Bytes) {
        let task = TaskMessageRef {
            task_id,
            agent_type: &self.cfg.agent_type,
            kind: "sentinel",
            reply_subject: &self.cfg.result_subject,
            payload: &self.cfg.payload,
        };
        let mut body = Vec::with_capacity(self.last_len);
        serde_json::to_writer(&mut body, &task).expect("task serialises");
        self.last_len = body.len();
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, tp.to_string());
        (headers, body.into())
    }

    /// One sentinel's message with a fresh id and trace context (a
    /// trigger's, and the shape the bench's sentinel-sized round trip copies).
    pub(crate) fn sample(&mut self) -> (HeaderMap, Bytes) {
        let (task_id, _) = new_task_id();
        self.encode(&task_id, &TraceParent::random())
    }
}

/// Publishes `cfg.count` sentinels and waits only for JetStream's acks, not
/// for results: a drill's trigger, where the fault may keep results from
/// ever coming. Returns how many were acked.
pub async fn publish_only(client: &async_nats::Client, cfg: &ProbeConfig) -> Result<usize, String> {
    let js = async_nats::jetstream::new(client.clone());
    let mut encoder = TaskEncoder::new(cfg);
    let mut acks = Vec::with_capacity(cfg.count);
    for _ in 0..cfg.count {
        let (headers, body) = encoder.sample();
        let ack = js
            .publish_with_headers(cfg.subject.clone(), headers, body)
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

/// Sentinel task ids: `sentinel-<unix ms>-<12 hex random>`, unique across
/// runs; with the random part as a number (the key results are matched by).
fn new_task_id() -> (String, u64) {
    use rand::Rng;
    let key = rand::rng().random::<u64>() & 0xffff_ffff_ffff;
    (
        format!("sentinel-{}-{key:012x}", Utc::now().timestamp_millis()),
        key,
    )
}

/// The random part of a task id [`new_task_id`] made; `None` for any other id.
fn task_key(task_id: &str) -> Option<u64> {
    let (_, hex) = task_id.rsplit_once('-')?;
    if hex.len() != 12 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn env<'a>(task_id: &'a str, trace_id: &'a str) -> ResultEnvelopeRef<'a> {
        ResultEnvelopeRef {
            task_id: Cow::Borrowed(task_id),
            trace_id: Cow::Borrowed(trace_id),
            status: Cow::Borrowed("succeeded"),
            agent_type: Cow::Borrowed("copilot"),
            duration_seconds: 0.0,
            worker: Cow::Borrowed("w"),
        }
    }

    /// A tracker with `n` sentinels published 1 ms apart from `t0`.
    fn tracker(n: usize, t0: Instant) -> (Tracker, Vec<String>) {
        let mut t = Tracker::new(n, Duration::from_secs(1));
        let mut ids = Vec::new();
        for i in 0..n {
            let (id, key) = t.new_id();
            ids.push(id.clone());
            t.publish(
                id,
                key,
                TraceParent::random(),
                t0 + Duration::from_millis(i as u64),
            );
        }
        (t, ids)
    }

    #[test]
    fn ids_carry_their_key() {
        let (id, key) = new_task_id();
        assert!(id.starts_with("sentinel-"), "{id}");
        assert_eq!(task_key(&id), Some(key));
        assert_eq!(task_key("sentinel-1-xyz"), None);
        assert_eq!(task_key("no-key-here-0123456789abcdef"), None);
        assert_eq!(task_key(""), None);
    }

    #[test]
    fn a_sentinel_completes_once_both_ack_and_result_are_in_either_order() {
        let t0 = Instant::now();
        let (mut t, ids) = tracker(2, t0);
        // Ack first, then result.
        assert!(!t.ack(0, Ok(())));
        assert!(t.result(&env(&ids[0], "aa"), t0 + Duration::from_millis(7)));
        // Result first, then ack: latency is still publish -> result read.
        assert!(!t.result(&env(&ids[1], "bb"), t0 + Duration::from_millis(9)));
        assert_eq!(t.settled, 1);
        assert!(t.ack(1, Ok(())));
        assert_eq!(t.settled, 2);
        assert_eq!(
            t.slots[0].settled,
            Some(Settled::Completed {
                latency: Duration::from_millis(7)
            })
        );
        assert_eq!(
            t.slots[1].settled,
            Some(Settled::Completed {
                latency: Duration::from_millis(8)
            })
        );
        assert_eq!(t.slots[1].result.as_ref().unwrap().1, "bb");
    }

    #[test]
    fn duplicates_foreign_results_and_late_results() {
        let t0 = Instant::now();
        let (mut t, ids) = tracker(3, t0);
        t.ack(0, Ok(()));
        assert!(t.result(&env(&ids[0], "x"), t0));
        assert!(!t.result(&env(&ids[0], "x"), t0));
        assert_eq!(t.duplicated, vec![ids[0].clone()]);
        // Another run's ids (same shape, or none) are not ours.
        let (other, _) = new_task_id();
        assert!(!t.result(&env(&other, "x"), t0));
        assert!(!t.result(&env("free-form id", "x"), t0));
        // Same key, different id: still not ours.
        let forged = ids[1].replacen("sentinel-", "sentinel-9", 1);
        assert!(!t.result(&env(&forged, "x"), t0));
        // A publish JetStream refused is settled; a result for it later is ignored.
        assert!(t.ack(1, Err("no stream".into())));
        assert!(!t.ack(1, Ok(())));
        assert_eq!(
            t.slots[1].settled,
            Some(Settled::PublishFailed("no stream".into()))
        );
        assert_eq!(t.settled, 2);
        assert!(t.duplicated.len() == 1);
    }

    #[test]
    fn deadlines_expire_in_publish_order_skipping_settled_ones() {
        let t0 = Instant::now();
        let (mut t, ids) = tracker(4, t0);
        t.ack(0, Ok(()));
        t.result(&env(&ids[0], "x"), t0);
        // Oldest unsettled is #1, published at t0 + 1 ms.
        assert_eq!(
            t.next_deadline(),
            Some(t0 + Duration::from_millis(1) + Duration::from_secs(1))
        );
        // Just before #2's deadline: only #1 times out.
        assert_eq!(t.expire(t0 + Duration::from_millis(1001)), 1);
        assert_eq!(t.slots[1].settled, Some(Settled::TimedOut));
        assert_eq!(t.slots[2].settled, None);
        // A result after the timeout does not revive it.
        t.ack(1, Ok(()));
        assert!(!t.result(&env(&ids[1], "x"), t0 + Duration::from_secs(2)));
        assert_eq!(t.slots[1].settled, Some(Settled::TimedOut));
        assert_eq!(t.expire(t0 + Duration::from_secs(10)), 2);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.settled, 4);
    }

    #[test]
    fn a_timeout_past_any_instant_never_expires() {
        let t0 = Instant::now();
        let mut t = Tracker::new(usize::MAX, Duration::MAX);
        let (id, key) = t.new_id();
        t.publish(id, key, TraceParent::random(), t0);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.expire(t0 + Duration::from_secs(86_400)), 0);
        assert_eq!(t.settled, 0);
    }
}
