//! The wire format of sentinel tasks and their result envelopes.
//!
//! The probe publishes a [`TaskMessage`] on the task subject with a
//! `traceparent` header (its only header); a worker (the platform,
//! or the reference fleet) answers with a [`ResultEnvelope`] on the result
//! subject, carrying the same `task_id` and the `trace_id` it took from the
//! incoming `traceparent`.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Header that carries W3C trace context across NATS.
pub const TRACEPARENT_HEADER: &str = "traceparent";

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

/// [`TaskMessage`] borrowing its fields: what the probe serialises per
/// sentinel without cloning the spec's strings. Same JSON as [`TaskMessage`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TaskMessageRef<'a> {
    pub task_id: &'a str,
    pub agent_type: &'a str,
    pub kind: &'a str,
    pub reply_subject: &'a str,
    pub payload: &'a serde_json::Value,
}

/// [`ResultEnvelope`] borrowing its strings from the message payload (a
/// string with JSON escapes in it is the only one copied). The same fields
/// are required, so a payload one decodes the other does too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultEnvelopeRef<'a> {
    #[serde(borrow)]
    pub task_id: Cow<'a, str>,
    #[serde(borrow)]
    pub trace_id: Cow<'a, str>,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(borrow)]
    pub agent_type: Cow<'a, str>,
    pub duration_seconds: f64,
    #[serde(borrow)]
    pub worker: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_task_serialises_like_the_owned_one() {
        let owned = TaskMessage {
            task_id: "sentinel-1-abc".into(),
            agent_type: "copilot".into(),
            kind: "sentinel".into(),
            reply_subject: "r.\"quoted\"".into(),
            payload: serde_json::json!({"fail": true, "n": [1, 2]}),
        };
        let borrowed = TaskMessageRef {
            task_id: &owned.task_id,
            agent_type: &owned.agent_type,
            kind: &owned.kind,
            reply_subject: &owned.reply_subject,
            payload: &owned.payload,
        };
        assert_eq!(
            serde_json::to_vec(&borrowed).unwrap(),
            serde_json::to_vec(&owned).unwrap()
        );
    }

    #[test]
    fn borrowed_result_reads_what_the_owned_one_reads() {
        let owned = ResultEnvelope {
            task_id: "t-1".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            status: "succeeded".into(),
            agent_type: "copilot".into(),
            duration_seconds: 0.25,
            worker: "w-\u{e9}\"0\"".into(),
        };
        let json = serde_json::to_vec(&owned).unwrap();
        let borrowed: ResultEnvelopeRef<'_> = serde_json::from_slice(&json).unwrap();
        assert!(matches!(borrowed.task_id, Cow::Borrowed("t-1")));
        assert_eq!(borrowed.worker, owned.worker);
        assert_eq!(serde_json::to_vec(&borrowed).unwrap(), json);
        // A payload missing a field is no result for either.
        let partial =
            br#"{"task_id":"t","trace_id":"x","status":"succeeded","agent_type":"a","worker":"w"}"#;
        assert!(serde_json::from_slice::<ResultEnvelope>(partial).is_err());
        assert!(serde_json::from_slice::<ResultEnvelopeRef<'_>>(partial).is_err());
    }
}
