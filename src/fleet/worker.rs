//! Workers: pull tasks from the durable consumer, run them, answer.
//!
//! One puller task issues pull requests (batches with a short expiry) and
//! runs each message as a future of its own inside that task (no spawn per
//! message), holding a semaphore permit, so at most `concurrency` tasks run
//! at once. Pausing (ConsumerStop,
//! StreamUnhealthy, shutdown) lets the current batch finish and then stops
//! issuing requests — no pull request is left open at the server, so new
//! tasks stay in `num_pending` and none are stranded in a dead inbox.
//!
//! Fleet convention: a task whose `payload` has `"fail": true` finishes
//! with status `failed` (so error-rate panels can be exercised).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::faults::TamperKind;
use super::metrics::TaskStatus;
use super::Shared;
use crate::probe::envelope::{ResultEnvelopeRef, TaskMessage, TRACEPARENT_HEADER};
use crate::probe::traceparent::TraceParent;
use std::borrow::Cow;

/// Most messages asked for in one pull request.
pub(crate) const MAX_BATCH: usize = 1000;
/// Expiry of a pull request: bounds how long a pause takes to take effect.
pub(crate) const BATCH_EXPIRES: Duration = Duration::from_millis(250);
/// How long past its expiry a pull request may stay open on this side.
/// The server ends an expired request with a 408 status, but it expires
/// requests lazily, when a new message or request next touches the
/// consumer's waiting queue (nats-io/nats-server#3099), and under load the
/// 408 was seen not to come at all. async-nats then waits expiry + 5 s
/// before giving up, with every task published meanwhile waiting too
/// (`probe --bench`: (c) p99 5.02 s, max 5.03 s, in 2 of 27 runs). A new
/// pull request is also what prompts the server to expire the old one. It
/// does not
/// deliver on a request past its expiry, so ending it here loses nothing,
/// unless a message the server sent just before expiry is still in
/// transit a whole second later; that one would be redelivered after the
/// consumer's ack wait.
pub(crate) const BATCH_GRACE: Duration = Duration::from_secs(1);
/// Wait after a failed pull before trying again.
const PULL_BACKOFF: Duration = Duration::from_millis(500);

/// What the puller should do. `epoch` grows with every change, so a
/// waiter can tell the puller has seen *this* request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PullCtl {
    pub(crate) run: bool,
    pub(crate) exit: bool,
    pub(crate) epoch: u64,
}

/// What the puller is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullerState {
    Pulling,
    /// Paused, with no pull request open, having seen control `epoch`.
    Idle {
        epoch: u64,
    },
    Exited,
}

/// Pulls until told to exit. Tasks run inside this one task (a set of
/// futures polled alongside each pull), not as a spawned task each: every
/// wait below goes through [`drive`], so running tasks progress meanwhile.
/// On exit the tasks still running are finished before it returns.
pub(crate) async fn run_puller(
    shared: Arc<Shared>,
    mut ctl: watch::Receiver<PullCtl>,
    state: watch::Sender<PullerState>,
) {
    let mut running = FuturesUnordered::new();
    'pull: loop {
        let c = *ctl.borrow_and_update();
        if c.exit {
            break;
        }
        if !c.run {
            state.send_replace(PullerState::Idle { epoch: c.epoch });
            if drive(&mut running, ctl.changed()).await.is_err() {
                break;
            }
            continue;
        }
        state.send_replace(PullerState::Pulling);

        let consumer = shared.consumer();
        let Some(consumer) = consumer else {
            // Only while the consumer is being recreated; wait for news.
            drive(&mut running, backoff(&mut ctl)).await;
            continue;
        };
        let first = drive(&mut running, async {
            tokio::select! {
                permit = shared.permits.clone().acquire_owned() => Some(permit),
                _ = ctl.changed() => None,
            }
        })
        .await;
        let first = match first {
            Some(Ok(p)) => p,
            Some(Err(_)) => break,
            None => continue,
        };
        // Ask for at least half the concurrency even when every permit is
        // taken: sizing the batch by free permits alone degrades to
        // one-message pulls (a server round trip per task) under load.
        let floor = (shared.cfg.concurrency / 2).max(1);
        let want = (1 + shared.permits.available_permits())
            .max(floor)
            .min(MAX_BATCH);
        let batch = drive(
            &mut running,
            consumer
                .batch()
                .max_messages(want)
                .expires(BATCH_EXPIRES)
                .messages(),
        )
        .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(
                    consumer = %shared.cfg.consumer,
                    stream = %shared.cfg.stream,
                    "pull request failed: {err}; retrying"
                );
                drop(first);
                drive(&mut running, backoff(&mut ctl)).await;
                continue;
            }
        };
        let mut first = Some(first);
        let ends = tokio::time::Instant::now() + BATCH_EXPIRES + BATCH_GRACE;
        loop {
            let next = tokio::time::timeout_at(ends, batch.next());
            let item = match drive(&mut running, next).await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => {
                    tracing::debug!(
                        consumer = %shared.cfg.consumer,
                        "pull request past its expiry without the server's 408; pulling again"
                    );
                    break;
                }
            };
            match item {
                Ok(msg) => {
                    let permit = match first.take() {
                        Some(p) => p,
                        None => {
                            match drive(&mut running, shared.permits.clone().acquire_owned()).await
                            {
                                Ok(p) => p,
                                Err(_) => break 'pull,
                            }
                        }
                    };
                    running.push(handle(shared.clone(), msg, permit));
                }
                Err(err) => {
                    tracing::warn!(
                        consumer = %shared.cfg.consumer,
                        stream = %shared.cfg.stream,
                        "pull failed: {err}; retrying"
                    );
                    drive(&mut running, backoff(&mut ctl)).await;
                    break;
                }
            }
        }
    }
    // No pull request is open any more; finish what is running.
    let epoch = ctl.borrow().epoch;
    state.send_replace(PullerState::Idle { epoch });
    while running.next().await.is_some() {}
    state.send_replace(PullerState::Exited);
}

/// Awaits `fut` while polling the running tasks.
async fn drive<T, H: Future<Output = ()>>(
    running: &mut FuturesUnordered<H>,
    fut: impl Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            // Tasks first: finishing work already taken comes before taking more.
            Some(()) = running.next(), if !running.is_empty() => {}
            out = &mut fut => return out,
        }
    }
}

async fn backoff(ctl: &mut watch::Receiver<PullCtl>) {
    tokio::select! {
        _ = tokio::time::sleep(PULL_BACKOFF) => {}
        _ = ctl.changed() => {}
    }
}

/// Why a message is not a task this fleet runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The agent type, when the message decoded far enough to name one.
    pub(crate) agent_type: Option<String>,
    pub(crate) reason: String,
}

/// Decodes a task and checks the fleet can run it.
pub(crate) fn decode_task(
    payload: &[u8],
    served: impl Fn(&str) -> bool,
) -> Result<TaskMessage, Invalid> {
    let task: TaskMessage = serde_json::from_slice(payload).map_err(|e| Invalid {
        agent_type: None,
        reason: format!("not a task message: {e}"),
    })?;
    let invalid = |reason: &str| Invalid {
        agent_type: Some(task.agent_type.clone()),
        reason: reason.to_string(),
    };
    if !served(&task.agent_type) {
        return Err(invalid("agent type not served by this fleet"));
    }
    if task.task_id.is_empty() {
        return Err(invalid("empty task_id"));
    }
    if task.reply_subject.is_empty() || task.reply_subject.contains([' ', '\t', '\r', '\n']) {
        return Err(invalid("reply_subject is empty or not a valid subject"));
    }
    Ok(task)
}

/// The `traceparent` header; `None` if absent or malformed.
pub(crate) fn parent_from(headers: Option<&HeaderMap>) -> Option<TraceParent> {
    headers
        .and_then(|h| h.get(TRACEPARENT_HEADER))
        .and_then(|v| TraceParent::parse(v.as_str()))
}

/// The trace id from a `traceparent` header; empty if absent or malformed.
pub(crate) fn trace_id_from(parent: Option<&TraceParent>) -> String {
    parent.map(TraceParent::trace_id_hex).unwrap_or_default()
}

/// A random trace id that differs from `original`.
pub(crate) fn corrupt_trace_id(original: &str) -> String {
    loop {
        let id = TraceParent::random().trace_id_hex();
        if id != original {
            return id;
        }
    }
}

/// The outcome the task asks for (`payload.fail == true` means failed).
pub(crate) fn task_status(task: &TaskMessage) -> TaskStatus {
    match task.payload.get("fail").and_then(|v| v.as_bool()) {
        Some(true) => TaskStatus::Failed,
        _ => TaskStatus::Succeeded,
    }
}

async fn handle(shared: Arc<Shared>, msg: jetstream::Message, _permit: OwnedSemaphorePermit) {
    let metrics = &shared.metrics;
    let mut task = match decode_task(&msg.payload, |a| metrics.agent(a).is_some()) {
        Ok(task) => task,
        Err(invalid) => {
            tracing::debug!(subject = %msg.subject, "rejecting message: {}", invalid.reason);
            metrics.count_invalid(invalid.agent_type.as_deref());
            // Term, so the server never redelivers it.
            if let Err(err) = msg.ack_with(AckKind::Term).await {
                tracing::warn!("cannot terminate invalid message: {err}");
            }
            return;
        }
    };
    let Some(agent) = metrics.agent(&task.agent_type) else {
        return; // decode_task checked this
    };
    let parent = parent_from(msg.headers.as_ref());
    let trace_id = trace_id_from(parent.as_ref());
    let task_started = std::time::SystemTime::now();

    agent.in_flight.inc();
    let cold = Instant::now();
    if !shared.cfg.cold_start.is_zero() {
        tokio::time::sleep(shared.cfg.cold_start).await;
    }
    agent.cold_start.observe(cold.elapsed().as_secs_f64());
    let work = Instant::now();
    if !shared.cfg.work.is_zero() {
        tokio::time::sleep(shared.cfg.work).await;
    }
    let status = task_status(&task);
    let duration = work.elapsed().as_secs_f64();

    if let (Some(endpoint), Some(http), Some(parent)) =
        (&shared.cfg.otlp_endpoint, &shared.otlp, parent)
    {
        let body = super::spans::task_spans(
            &parent,
            &task.task_id,
            task_started,
            shared.faults.is_on(super::FleetSwitch::DropTraceContext),
        );
        let (endpoint, http) = (endpoint.clone(), http.clone());
        // Off the task's path, as an SDK's batch exporter would be.
        tokio::spawn(async move {
            let sent = http
                .post(&endpoint)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            if let Err(err) = sent.and_then(|r| r.error_for_status()) {
                tracing::warn!(%endpoint, "cannot export spans: {err}");
            }
        });
    }
    let tamper = shared.faults.next_tamper();
    if tamper != Some(TamperKind::Dropped) {
        let corrupted;
        let envelope = ResultEnvelopeRef {
            task_id: Cow::Borrowed(&task.task_id),
            trace_id: Cow::Borrowed(match tamper {
                Some(TamperKind::CorruptedTraceId) => {
                    corrupted = corrupt_trace_id(&trace_id);
                    &corrupted
                }
                _ => &trace_id,
            }),
            status: Cow::Borrowed(status.as_str()),
            agent_type: Cow::Borrowed(&task.agent_type),
            duration_seconds: duration,
            worker: Cow::Borrowed(metrics.worker_pod(&task.agent_type).unwrap_or_default()),
        };
        match serde_json::to_vec(&envelope) {
            Ok(body) => {
                let reply = std::mem::take(&mut task.reply_subject);
                if let Err(err) = shared.client.publish(reply, body.into()).await {
                    tracing::warn!(task_id = %task.task_id, "cannot publish result: {err}");
                }
            }
            Err(err) => tracing::warn!(task_id = %task.task_id, "cannot encode result: {err}"),
        }
    }
    if let Some(what) = tamper {
        shared.tampered.record(&task.task_id, what);
    }

    agent.count(status);
    let label_id = (shared.cfg.record_task_ids && task.kind == "sentinel").then_some(&task.task_id);
    metrics.observe_duration(
        &task.agent_type,
        agent,
        label_id.map(String::as_str),
        duration,
    );
    agent.in_flight.dec();

    if let Err(err) = msg.ack().await {
        tracing::warn!(task_id = %task.task_id, "cannot ack task: {err}");
    }
    shared.completed.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_json(agent: &str, reply: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "task_id": "t-1", "agent_type": agent, "kind": "sentinel",
            "reply_subject": reply,
        }))
        .unwrap()
    }

    #[test]
    fn decodes_served_tasks() {
        let task = decode_task(&task_json("copilot", "r.1"), |a| a == "copilot").unwrap();
        assert_eq!(task.task_id, "t-1");
        assert_eq!(task.payload, serde_json::Value::Null);
        assert_eq!(task_status(&task), TaskStatus::Succeeded);
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        let served = |a: &str| a == "copilot";
        let e = decode_task(b"{not json", served).unwrap_err();
        assert_eq!(e.agent_type, None);
        let e = decode_task(&task_json("claude", "r.1"), served).unwrap_err();
        assert_eq!(e.agent_type.as_deref(), Some("claude"));
        assert!(decode_task(&task_json("copilot", ""), served).is_err());
        assert!(decode_task(&task_json("copilot", "a b"), served).is_err());
    }

    #[test]
    fn failing_tasks() {
        let mut task = decode_task(&task_json("copilot", "r"), |_| true).unwrap();
        task.payload = serde_json::json!({"fail": true});
        assert_eq!(task_status(&task), TaskStatus::Failed);
    }

    #[test]
    fn trace_ids_from_headers() {
        assert_eq!(trace_id_from(parent_from(None).as_ref()), "");
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT_HEADER,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(
            trace_id_from(parent_from(Some(&h)).as_ref()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut bad = HeaderMap::new();
        bad.insert(TRACEPARENT_HEADER, "garbage");
        assert_eq!(trace_id_from(parent_from(Some(&bad)).as_ref()), "");
    }

    #[test]
    fn corrupted_ids_differ_and_are_well_formed() {
        let original = "4bf92f3577b34da6a3ce929d0e0e4736";
        for _ in 0..100 {
            let c = corrupt_trace_id(original);
            assert_ne!(c, original);
            assert_eq!(c.len(), 32);
            assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(corrupt_trace_id("").len(), 32);
    }
}
