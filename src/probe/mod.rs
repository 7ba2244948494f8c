//! Sentinel probes: publish tasks with fresh trace context, await results.

pub mod envelope;
pub mod traceparent;
