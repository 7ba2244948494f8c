//! Trace-context audit: does every sentinel task produce one trace with
//! every expected hop, and no orphan spans?
//!
//! The span model and its decoder (Tempo, OTLP/JSON) are plain values in
//! [`crate::model::span`]; the expected span tree is a spec
//! ([`crate::spec::trace_tree`]) read into [`crate::model::trace`].
//! [`audit`] is the pure verdict per task; [`collect`] gathers spans from
//! a source; [`receiver`] is the OTLP/HTTP endpoint firedrill runs for a
//! local stack.

pub mod audit;
pub mod collect;
pub mod receiver;

pub use audit::{audit_task, summarize, TaskTrace};
