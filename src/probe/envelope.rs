//! The wire format of sentinel tasks and their result envelopes.
//!
//! The probe publishes a [`TaskMessage`] on the task subject with a
//! `traceparent` header and `Nats-Msg-Id` = task id; a worker (the platform,
//! or the reference fleet) answers with a [`ResultEnvelope`] on the result
//! subject, carrying the same `task_id` and the `trace_id` it took from the
//! incoming `traceparent`.

use serde::{Deserialize, Serialize};

/// Header that carries W3C trace context across NATS.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// JetStream de-duplication header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// A task as published on the task subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task_id: String,
    pub agent_type: String,
    /// `"sentinel"` for firedrill's probes.
    pub kind: String,
    /// Subject the worker publishes the result envelope on.
    pub reply_subject: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// A worker's answer to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultEnvelope {
    pub task_id: String,
    /// 32 hex chars, taken from the task's `traceparent`; empty if none came.
    pub trace_id: String,
    /// `"succeeded"` or `"failed"`.
    pub status: String,
    pub agent_type: String,
    /// Worker-measured task duration (cold start excluded).
    pub duration_seconds: f64,
    /// Which worker ran it (pod name on the platform).
    pub worker: String,
}
