//! Sentinel probes: publish tasks with fresh trace context, await results.

pub mod envelope;
pub mod latency;
pub mod run;
pub mod traceparent;

pub use run::{
    publish_only, run_probe, ProbeConfig, ProbeError, ProbeOutcome, SentTask, SentinelRef,
};
