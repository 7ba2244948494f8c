//! `junit.xml`: one testsuite per kind (probes, criteria, drills), one
//! testcase per probe, criterion and drill trial, for CI test reporters.
//!
//! fail -> `<failure>`, error -> `<error>`, skipped and pending -> `<skipped>`;
//! the reason is the message, the evidence goes to `system-out`.

use super::model::{
    CriterionResult, DrillResult, DrillTrial, Finding, ProbeResult, Report, Severity, Verdict,
};
use chrono::{DateTime, Utc};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;
use std::time::Duration;

pub fn render(r: &Report) -> String {
    let mut report = quick_junit::Report::new("firedrill");
    report
        .set_timestamp(r.window.start)
        .set_time(span(r.window.start, r.window.end));

    let mut probes = TestSuite::new("probes");
    probes.add_test_cases(r.probes.iter().map(probe));
    let mut criteria = TestSuite::new("criteria");
    criteria.add_test_cases(r.criteria.iter().map(criterion));
    let mut drills = TestSuite::new("drills");
    for d in &r.drills {
        drills.add_test_cases(drill(d));
    }
    for suite in [&mut probes, &mut criteria, &mut drills] {
        suite.set_timestamp(r.window.start);
    }
    report.add_test_suites([probes, criteria, drills]);
    if !r.validation.is_empty() {
        let mut audit = TestSuite::new("rule-audit");
        audit.add_test_cases(rule_audit(&r.validation));
        audit.set_timestamp(r.window.start);
        report.add_test_suite(audit);
    }
    report
        .to_string()
        .expect("a JUnit report serialises to memory")
}

fn status(verdict: Verdict, message: &str, kind: &str) -> TestCaseStatus {
    let mut status = match verdict {
        Verdict::Pass => return TestCaseStatus::success(),
        Verdict::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Verdict::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
        Verdict::Skipped | Verdict::Pending => TestCaseStatus::skipped(),
    };
    status
        .set_message(format!("{verdict}: {message}"))
        .set_type(format!("firedrill.{kind}.{verdict}"));
    status
}

fn probe(p: &ProbeResult) -> TestCase {
    let o = &p.outcome;
    let reason = if p.reasons.is_empty() {
        format!("{}/{} round trips", o.completed, o.sent)
    } else {
        p.reasons.join("; ")
    };
    let mut case = TestCase::new(o.name.clone(), status(p.verdict, &reason, "probe"));
    let l = &o.latency;
    let mut out = format!(
        "subject {} (agent type {})\nsent {} acked {} completed {} timed out {} duplicated {} trace mismatches {}\nlatency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} round trips/s\n",
        o.subject,
        o.agent_type,
        o.sent,
        o.acked,
        o.completed,
        o.timed_out.len(),
        o.duplicated.len(),
        o.trace_mismatches.len(),
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.max_ms,
        o.throughput_per_s
    );
    if let Some(s) = &o.sentinel {
        let _ = writeln!(
            out,
            "first sentinel: task {} trace {}",
            s.task_id, s.trace_id
        );
    }
    case.set_classname("firedrill.probes")
        .set_timestamp(o.started_at)
        .set_time(span(o.started_at, o.finished_at))
        .set_system_out(out);
    case
}

fn criterion(c: &CriterionResult) -> TestCase {
    let mut case = TestCase::new(
        format!("{} {}", c.id, c.title),
        status(c.verdict, &c.reason, "criterion"),
    );
    let mut out = String::new();
    if let Some(q) = &c.query {
        let _ = writeln!(out, "query: {q}");
    }
    if let Some(cond) = &c.condition {
        let _ = writeln!(out, "condition: every series {cond}");
    }
    for v in &c.series {
        let _ = writeln!(
            out,
            "{} = {} ({})",
            crate::model::format_labels(&v.labels),
            v.value,
            if v.passed {
                "pass"
            } else if crate::model::parse_value(&v.value).is_finite() {
                "fail"
            } else {
                "not a finite number"
            }
        );
    }
    if c.series_unlisted() > 0 {
        let _ = writeln!(
            out,
            "... and {} more series, not listed ({} of all {} fail)",
            c.series_unlisted(),
            c.series_failing,
            c.series_total
        );
    }
    if let Some(u) = &c.query_url {
        let via = match c.language.as_deref() {
            Some("logql") => "grafana explore",
            _ => "prometheus",
        };
        let _ = writeln!(out, "{via}: {u}");
    }
    for e in &c.evidence {
        match &e.url {
            Some(u) => writeln!(out, "evidence: {}: {u}", e.label),
            None => writeln!(out, "evidence: {}", e.label),
        }
        .expect("writing to a String");
    }
    case.set_classname("firedrill.criteria");
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}

fn drill(d: &DrillResult) -> Vec<TestCase> {
    let classname = format!("firedrill.drills.{}", d.name);
    let recovery = d
        .manual_recovery
        .as_ref()
        .map(|m| format!("MANUAL RECOVERY NEEDED: {}", m.plain()));
    if d.trials.is_empty() {
        let mut case = TestCase::new(d.name.clone(), status(d.verdict, &d.reason, "drill"));
        case.set_classname(classname);
        if let Some(m) = recovery {
            case.set_system_err(m);
        }
        return vec![case];
    }
    d.trials
        .iter()
        .map(|t| {
            let mut case = TestCase::new(
                format!("{} trial {}", d.name, t.trial),
                status(t.verdict, &t.reason, "drill"),
            );
            case.set_classname(classname.clone())
                .set_system_out(trial_out(d, t));
            if let (Some(first), Some(last)) = (t.timeline.first(), t.timeline.last()) {
                case.set_timestamp(first.at)
                    .set_time(span(first.at, last.at));
            }
            if let Some(m) = &recovery {
                case.set_system_err(m.clone());
            } else if let Some(e) = &t.revert_error {
                case.set_system_err(format!("revert failed: {e}"));
            }
            case
        })
        .collect()
}

fn trial_out(d: &DrillResult, t: &DrillTrial) -> String {
    let mut out = format!(
        "alert {} fault {} deadline {} ms\n",
        d.alert, d.fault, d.deadline_ms
    );
    for (name, v) in [
        ("time_to_pending_ms", t.time_to_pending_ms),
        ("time_to_fire_ms", t.time_to_fire_ms),
        ("time_to_notify_ms", t.time_to_notify_ms),
        ("time_to_resolve_ms", t.time_to_resolve_ms),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "{name} {v}");
        }
    }
    for e in &t.timeline {
        let _ = writeln!(
            out,
            "{} {} ({})",
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            e.event,
            e.source
        );
    }
    let _ = writeln!(out, "reverted {}", t.reverted);
    out
}

/// One testcase per audited subject (a rule by file, group and alert; a
/// criterion or drill) with findings, in first-seen order: any error fails
/// it; warnings and info go to `system-out`.
fn rule_audit(findings: &[Finding]) -> Vec<TestCase> {
    let mut order: Vec<String> = Vec::new();
    let mut by_subject: std::collections::HashMap<String, Vec<&Finding>> =
        std::collections::HashMap::new();
    for f in findings {
        let id = super::findings::identify(f);
        by_subject
            .entry(id.clone())
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(f);
    }
    order
        .into_iter()
        .map(|subject| {
            let mine = by_subject.remove(&subject).unwrap_or_default();
            let errors: Vec<String> = mine
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| match &f.selector {
                    Some(sel) => format!("{}: {} ({sel})", f.check, f.detail),
                    None => format!("{}: {}", f.check, f.detail),
                })
                .collect();
            let verdict = if errors.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let mut case = TestCase::new(
                subject.to_string(),
                status(verdict, &errors.join("; "), "audit"),
            );
            let mut out = String::new();
            for f in &mine {
                let _ = write!(out, "{} {}: {}", f.severity, f.check, f.detail);
                if let Some(sel) = &f.selector {
                    let _ = write!(out, " [{sel}]");
                }
                out.push('\n');
            }
            case.set_classname("firedrill.rule-audit")
                .set_system_out(out);
            case
        })
        .collect()
}

fn span(start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    (end - start).to_std().unwrap_or_default()
}
