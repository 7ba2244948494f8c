//! An HTTP probe's settings as the spec validated them and the runner
//! ([`crate::probe::http`]) uses them: plain data.

use std::time::Duration;

/// Per-request placeholder for the request's id in url, headers and body.
pub const TASK_ID_VAR: &str = "{{request.id}}";
/// Per-request placeholder for the request's trace id (32 hex).
pub const TRACE_ID_VAR: &str = "{{request.trace_id}}";

/// A validated HTTP probe, its target variables already filled.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbeConfig {
    pub name: String,
    pub method: String,
    /// May hold [`TASK_ID_VAR`] and [`TRACE_ID_VAR`].
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub count: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub expect: HttpExpect,
}

/// What an answer must be to count as a completed round trip.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpExpect {
    /// Accepted statuses; empty: any 2xx.
    pub status: Vec<u16>,
    /// A JSON pointer that must exist in the body...
    pub json_pointer: Option<String>,
    /// ...and, when set, hold this value.
    pub json_value: Option<serde_json::Value>,
    /// Where the trace id must come back, if anywhere.
    pub trace_id: Option<TraceIdFrom>,
}

/// Where the service returns the request's trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceIdFrom {
    /// A response header: a `traceparent`, or the bare 32-hex id.
    Header(String),
    /// A JSON pointer into the body holding the 32-hex id.
    Body(String),
}
