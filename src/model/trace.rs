//! What a trace audit expects and finds: the expected span tree of one
//! sentinel task, each task's findings, and the run's summary as the report
//! carries it. The tree is read from a spec ([`crate::spec::trace_tree`]);
//! the verdicts are decided in [`crate::trace::audit`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    pub name: String,
    /// Name of the parent hop; `None` only for the root (first) hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A validated tree: the first hop is the only root; every other hop's
/// parent is an earlier hop; names are unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceTree {
    pub hops: Vec<Hop>,
}

impl TraceTree {
    pub fn root(&self) -> &Hop {
        &self.hops[0]
    }
}

/// One thing wrong with a task's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// Not one root span (a span without a parent) in the task's trace.
    RootCount { count: usize, names: Vec<String> },
    /// No span of this expected hop in the task's trace.
    MissingHop { hop: String },
    /// The hop's span hangs under a span of another name.
    WrongParent {
        hop: String,
        expected: String,
        actual: String,
    },
    /// A span whose parent span is not in the trace.
    Orphan {
        name: String,
        span_id: String,
        parent_span_id: String,
    },
    /// Spans of this task that ended up in another trace (context dropped).
    EscapedTrace {
        trace_id: String,
        names: Vec<String>,
    },
    /// The result envelope carried another trace id than was sent.
    EnvelopeMismatch { sent: String, received: String },
    /// No result envelope came back, so its trace id is unknown.
    NoEnvelope,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::RootCount { count, names } => {
                write!(f, "{count} root spans, expected 1 ({})", names.join(", "))
            }
            Finding::MissingHop { hop } => write!(f, "missing hop `{hop}`"),
            Finding::WrongParent {
                hop,
                expected,
                actual,
            } => write!(f, "`{hop}` is a child of `{actual}`, expected `{expected}`"),
            Finding::Orphan {
                name,
                span_id,
                parent_span_id,
            } => write!(
                f,
                "orphan span `{name}` ({span_id}): parent {parent_span_id} is not in the trace"
            ),
            Finding::EscapedTrace { trace_id, names } => write!(
                f,
                "context dropped: {} started trace {trace_id}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Finding::EnvelopeMismatch { sent, received } => {
                write!(f, "result envelope trace_id {received:?}, sent {sent}")
            }
            Finding::NoEnvelope => f.write_str("no result envelope came back"),
        }
    }
}

/// One task's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAudit {
    pub task_id: String,
    pub trace_id: String,
    pub findings: Vec<Finding>,
}

impl TaskAudit {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The audit of a whole run, as the report carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAuditSummary {
    /// Where spans came from, e.g. `otlp receiver 127.0.0.1:4318` or a Tempo URL.
    pub source: String,
    pub tree: TraceTree,
    pub tasks: u64,
    pub passed: u64,
    pub failed: u64,
    /// Tasks missing each hop, by hop name (hops no task missed are absent).
    pub missing_by_hop: BTreeMap<String, u64>,
    pub orphan_spans: u64,
    /// Tasks whose trace did not have exactly one root.
    pub root_count_failures: u64,
    /// Tasks with spans in another trace.
    pub escaped_traces: u64,
    pub envelope_mismatches: u64,
    /// Wall time from first publish to the last verdict.
    pub wall_ms: u64,
    /// The first failing tasks (`trace::audit::MAX_FAILURES_KEPT`).
    pub failures: Vec<TaskAudit>,
    /// Problems fetching spans (e.g. a Tempo error), not verdicts.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl TraceAuditSummary {
    pub fn is_pass(&self) -> bool {
        self.tasks > 0 && self.failed == 0 && self.errors.is_empty()
    }

    /// Pass, fail, or `error` when the trace backend (Tempo, Jaeger) could
    /// not be read: spans it never gave are no evidence of a broken trace.
    pub fn verdict(&self) -> super::Verdict {
        if self.is_pass() {
            super::Verdict::Pass
        } else if !self.errors.is_empty() {
            super::Verdict::Error
        } else {
            super::Verdict::Fail
        }
    }
}
