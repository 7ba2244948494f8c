//! The pure verdict: one task's spans against the expected tree.

use crate::model::span::Span;
use crate::model::trace::{Finding, TaskAudit, TraceAuditSummary, TraceTree};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Failing tasks kept in the report (counts always cover all of them).
pub const MAX_FAILURES_KEPT: usize = 50;

/// What the probe knows about one sentinel task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTrace {
    pub task_id: String,
    /// The trace id sent in the task's `traceparent`.
    pub trace_id: String,
    /// The span id sent in the `traceparent`: the probe's publish span.
    pub root_span_id: String,
    /// The result envelope's `trace_id`; `None` if no result came back.
    pub envelope_trace_id: Option<String>,
}

/// Audits one task: `spans` are the spans of its trace (others are
/// ignored), `escaped` are spans tagged with its task id found in other
/// traces.
pub fn audit_task(
    tree: &TraceTree,
    task: &TaskTrace,
    spans: &[Span],
    escaped: &[Span],
) -> TaskAudit {
    let spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == task.trace_id)
        .collect();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let mut findings = Vec::new();

    let roots: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    if roots.len() != 1 {
        findings.push(Finding::RootCount {
            count: roots.len(),
            names: roots.iter().map(|s| s.name.clone()).collect(),
        });
    }
    for hop in &tree.hops {
        let found: Vec<&Span> = spans
            .iter()
            .copied()
            .filter(|s| s.name == hop.name)
            .collect();
        if found.is_empty() {
            findings.push(Finding::MissingHop {
                hop: hop.name.clone(),
            });
            continue;
        }
        let Some(expected) = &hop.parent else {
            continue;
        };
        for s in found {
            // A missing parent is reported as an orphan below.
            let parent = s.parent_span_id.as_deref().and_then(|p| by_id.get(p));
            if let Some(parent) = parent {
                if &parent.name != expected {
                    findings.push(Finding::WrongParent {
                        hop: hop.name.clone(),
                        expected: expected.clone(),
                        actual: parent.name.clone(),
                    });
                }
            }
        }
    }
    for s in &spans {
        if let Some(p) = &s.parent_span_id {
            if !by_id.contains_key(p.as_str()) {
                findings.push(Finding::Orphan {
                    name: s.name.clone(),
                    span_id: s.span_id.clone(),
                    parent_span_id: p.clone(),
                });
            }
        }
    }
    let mut foreign: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in escaped.iter().filter(|s| s.trace_id != task.trace_id) {
        foreign.entry(&s.trace_id).or_default().push(s.name.clone());
    }
    for (trace_id, names) in foreign {
        findings.push(Finding::EscapedTrace {
            trace_id: trace_id.to_string(),
            names,
        });
    }
    match &task.envelope_trace_id {
        None => findings.push(Finding::NoEnvelope),
        Some(got) if *got != task.trace_id => findings.push(Finding::EnvelopeMismatch {
            sent: task.trace_id.clone(),
            received: got.clone(),
        }),
        Some(_) => {}
    }
    TaskAudit {
        task_id: task.task_id.clone(),
        trace_id: task.trace_id.clone(),
        findings,
    }
}

/// Counts the verdicts and keeps the first failures.
pub fn summarize(
    source: &str,
    tree: &TraceTree,
    audits: &[TaskAudit],
    wall_ms: u64,
) -> TraceAuditSummary {
    let mut s = TraceAuditSummary {
        source: source.to_string(),
        tree: tree.clone(),
        tasks: audits.len() as u64,
        passed: 0,
        failed: 0,
        missing_by_hop: BTreeMap::new(),
        orphan_spans: 0,
        root_count_failures: 0,
        escaped_traces: 0,
        envelope_mismatches: 0,
        wall_ms,
        failures: Vec::new(),
        errors: Vec::new(),
    };
    for a in audits {
        if a.passed() {
            s.passed += 1;
            continue;
        }
        s.failed += 1;
        let mut escaped = false;
        for f in &a.findings {
            match f {
                Finding::MissingHop { hop } => {
                    *s.missing_by_hop.entry(hop.clone()).or_default() += 1
                }
                Finding::Orphan { .. } => s.orphan_spans += 1,
                Finding::RootCount { .. } => s.root_count_failures += 1,
                Finding::EscapedTrace { .. } => escaped = true,
                Finding::EnvelopeMismatch { .. } | Finding::NoEnvelope => {
                    s.envelope_mismatches += 1
                }
                Finding::WrongParent { .. } => {}
            }
        }
        s.escaped_traces += u64::from(escaped);
        if s.failures.len() < MAX_FAILURES_KEPT {
            s.failures.push(a.clone());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const OTHER: &str = "00000000000000000000000000000abc";

    fn span(trace: &str, id: &str, parent: Option<&str>, name: &str) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: name.into(),
            service: "s".into(),
            task_id: Some("t1".into()),
        }
    }

    /// A complete trace of the built-in tree.
    fn good() -> Vec<Span> {
        vec![
            span(T, "01", None, "publish"),
            span(T, "02", Some("01"), "consume"),
            span(T, "03", Some("02"), "session/new"),
            span(T, "04", Some("02"), "session/prompt"),
            span(T, "05", Some("04"), "session/update"),
            span(T, "06", Some("02"), "result publish"),
            span(T, "07", Some("06"), "collector"),
        ]
    }

    fn task(envelope: Option<&str>) -> TaskTrace {
        TaskTrace {
            task_id: "t1".into(),
            trace_id: T.into(),
            root_span_id: "01".into(),
            envelope_trace_id: envelope.map(Into::into),
        }
    }

    type Edit = fn(&mut Vec<Span>, &mut Vec<Span>);

    #[test]
    fn verdict_table() {
        let cases: Vec<(&str, Option<&str>, Edit, Vec<Finding>)> = vec![
            ("complete", Some(T), |_, _| {}, vec![]),
            (
                "spans of other traces are ignored",
                Some(T),
                |s, _| s.push(span(OTHER, "99", None, "x")),
                vec![],
            ),
            (
                "missing hop",
                Some(T),
                |s, _| s.retain(|x| x.name != "collector"),
                vec![Finding::MissingHop {
                    hop: "collector".into(),
                }],
            ),
            (
                "orphan span",
                Some(T),
                |s, _| s.push(span(T, "08", Some("ff"), "late")),
                vec![Finding::Orphan {
                    name: "late".into(),
                    span_id: "08".into(),
                    parent_span_id: "ff".into(),
                }],
            ),
            (
                "second root",
                Some(T),
                |s, _| s.push(span(T, "08", None, "stray")),
                vec![Finding::RootCount {
                    count: 2,
                    names: vec!["publish".into(), "stray".into()],
                }],
            ),
            ("no spans at all", Some(T), |s, _| s.clear(), {
                let mut f = vec![Finding::RootCount {
                    count: 0,
                    names: vec![],
                }];
                f.extend(
                    crate::spec::builtin_trace_tree()
                        .hops
                        .into_iter()
                        .map(|h| Finding::MissingHop { hop: h.name }),
                );
                f
            }),
            (
                "wrong parent",
                Some(T),
                |s, _| s[4].parent_span_id = Some("03".into()),
                vec![Finding::WrongParent {
                    hop: "session/update".into(),
                    expected: "session/prompt".into(),
                    actual: "session/new".into(),
                }],
            ),
            (
                "context dropped at session/prompt",
                Some(T),
                |s, e| {
                    s.retain(|x| x.name != "session/prompt" && x.name != "session/update");
                    e.push(span(OTHER, "14", None, "session/prompt"));
                    e.push(span(OTHER, "15", Some("14"), "session/update"));
                },
                vec![
                    Finding::MissingHop {
                        hop: "session/prompt".into(),
                    },
                    Finding::MissingHop {
                        hop: "session/update".into(),
                    },
                    Finding::EscapedTrace {
                        trace_id: OTHER.into(),
                        names: vec!["session/prompt".into(), "session/update".into()],
                    },
                ],
            ),
            (
                "envelope regenerated",
                Some(OTHER),
                |_, _| {},
                vec![Finding::EnvelopeMismatch {
                    sent: T.into(),
                    received: OTHER.into(),
                }],
            ),
            ("no envelope", None, |_, _| {}, vec![Finding::NoEnvelope]),
        ];
        let tree = crate::spec::builtin_trace_tree();
        for (what, envelope, edit, want) in cases {
            let (mut spans, mut escaped) = (good(), Vec::new());
            edit(&mut spans, &mut escaped);
            let got = audit_task(&tree, &task(envelope), &spans, &escaped);
            assert_eq!(got.findings, want, "{what}");
            assert_eq!(got.passed(), want.is_empty(), "{what}");
        }
    }

    #[test]
    fn summary_counts_and_caps() {
        let tree = crate::spec::builtin_trace_tree();
        let mut audits = Vec::new();
        for i in 0..(MAX_FAILURES_KEPT + 10) {
            let mut spans = good();
            spans.retain(|s| s.name != "collector");
            spans.push(span(T, "08", Some("ff"), "late"));
            let mut a = audit_task(&tree, &task(Some(T)), &spans, &[]);
            a.task_id = format!("t{i}");
            audits.push(a);
        }
        audits.push(audit_task(&tree, &task(Some(T)), &good(), &[]));
        let s = summarize("test", &tree, &audits, 5);
        assert_eq!((s.tasks, s.passed, s.failed), (61, 1, 60));
        assert_eq!(s.missing_by_hop.get("collector"), Some(&60));
        assert_eq!(s.orphan_spans, 60);
        assert_eq!(s.failures.len(), MAX_FAILURES_KEPT);
        assert!(!s.is_pass());
        let display: Vec<String> = s.failures[0]
            .findings
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            display,
            [
                "missing hop `collector`",
                "orphan span `late` (08): parent ff is not in the trace"
            ]
        );
    }
}
