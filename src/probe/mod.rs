//! Sentinel probes: publish tasks with fresh trace context, await results.

pub mod envelope;
pub mod http;
pub mod latency;
pub mod run;
pub mod traceparent;

pub use crate::model::probe::{ProbeOutcome, SentTask, SentinelRef};
pub use run::{publish_only, run_probe, ProbeConfig, ProbeError};
