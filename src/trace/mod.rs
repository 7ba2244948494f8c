//! Trace-context audit: does every sentinel task produce one trace with
//! every expected hop, and no orphan spans?
//!
//! [`spans`] decodes Tempo and OTLP/JSON into one span model; [`tree`] is
//! the expected span tree spec; [`audit`] is the pure verdict per task;
//! [`receiver`] is the OTLP/HTTP endpoint firedrill runs for a local stack.

pub mod audit;
pub mod collect;
pub mod receiver;
pub mod spans;
pub mod tree;

pub use audit::{audit_task, summarize, Finding, TaskAudit, TaskTrace, TraceAuditSummary};
pub use spans::{decode_trace, IdEncoding, Span, SpanDecodeError};
pub use tree::{Hop, TraceTree, TreeError};
