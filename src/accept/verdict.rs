//! Criterion verdicts from query results (pure: no I/O, no clock).
//!
//! The rules, in order: a Prometheus error is `error`; an empty result is
//! decided by `on_empty` (fail by default); a NaN or ±Inf in any series is
//! `error`; otherwise every series must satisfy `pass_if`. Nothing but a
//! finite value that satisfies the condition, or an explicit
//! `on_empty = "pass"`, is ever a pass.
//!
//! Every series is judged and counted; the result lists only the worst
//! [`SERIES_LISTED`] of them, worst first (see [`rank_worst_first`]).

use super::snapshot::snapshot_verdict;
use crate::clients::prometheus::{Labels, PromError, QueryResult, Sample};
use crate::model::format_labels;
use crate::report::model::{CriterionResult, Link, SeriesValue, Verdict, SERIES_LISTED};
use crate::spec::criteria::{CmpOp, Condition, Criterion, Evidence, OnEmpty, QueryLanguage};
use crate::spec::template::{self, QueryRenderError, Vars};
use crate::spec::vars;

/// Why an empty result is not a pass.
pub const NO_DATA: &str = "no data: the query returned no series — the metric may not exist (rules and criteria on non-existent metrics silently never fire)";

/// How many offending series a reason names before "and N more" (the
/// report's series table lists up to [`SERIES_LISTED`]).
const REASON_SERIES_CAP: usize = 10;

/// Decides one criterion from its query result (PromQL from Prometheus or
/// LogQL from Loki: one policy). `rendered_query` is the query that ran
/// (templates filled). The result carries no `query_url` and
/// evidence without rendered links; [`super::run`] adds those.
pub fn evaluate(
    criterion: &Criterion,
    rendered_query: &str,
    result: Result<QueryResult, PromError>,
) -> CriterionResult {
    evaluate_answer(criterion, rendered_query, result.map_err(|e| e.to_string()))
}

/// [`evaluate`] for an answer from any query backend (Loki's too): an
/// error is its text.
pub fn evaluate_answer(
    criterion: &Criterion,
    rendered_query: &str,
    result: Result<QueryResult, String>,
) -> CriterionResult {
    let Some((_, _, pass_if, on_empty)) = criterion.kind.query() else {
        return snapshot_pending(criterion);
    };
    let (pass_if, on_empty) = (&pass_if, &on_empty);
    let mut out = base(criterion, Some(rendered_query), Some(*pass_if));
    let mut series = match result {
        Err(e) => return decided(out, Verdict::Error, e),
        Ok(QueryResult::String(s)) => {
            return decided(
                out,
                Verdict::Error,
                format!(
                    "the query returned a string ({:?}), not a number; a criterion needs a vector or scalar",
                    s.1
                ),
            )
        }
        Ok(result) => series_of(result),
    };
    if series.is_empty() {
        let (verdict, reason) = empty_verdict(*on_empty);
        return decided(out, verdict, reason);
    }
    rank_worst_first(&mut series, pass_if);
    let (verdict, reason) = judge(&series, pass_if);
    let passes = |s: &Sample| s.value().is_finite() && pass_if.holds(s.value());
    out.series_total = series.len();
    out.series_failing = series.iter().filter(|(_, s)| !passes(s)).count();
    out.series = series
        .into_iter()
        .take(SERIES_LISTED)
        .map(|(labels, sample)| SeriesValue {
            passed: passes(&sample),
            labels,
            value: sample.1,
        })
        .collect();
    decided(out, verdict, reason)
}

/// A snapshot criterion before the snapshot step: `pending`, by
/// [`snapshot_verdict`] (which later decides it from the snapshot).
pub fn snapshot_pending(criterion: &Criterion) -> CriterionResult {
    let (verdict, reason) = snapshot_verdict(None, false);
    decided(base(criterion, None, None), verdict, reason)
}

/// A PromQL criterion whose query could not be rendered because the run has
/// no value for `missing` (e.g. `sentinel.task_id` when no sentinel was
/// published). Verdict `error`: the criterion was not checked.
pub fn missing_variable(criterion: &Criterion, missing: &str) -> CriterionResult {
    let condition = criterion.kind.query().map(|(_, _, pass_if, _)| pass_if);
    let hint = if missing.starts_with("sentinel.") {
        " because this run published no sentinel task (run a probe in the same run, e.g. `firedrill run` or `firedrill smoke`, or give `firedrill accept` an earlier probe's ids with --sentinel-task-id and --sentinel-trace-id)"
    } else {
        ""
    };
    decided(
        base(criterion, None, condition),
        Verdict::Error,
        format!("the query was not run: {{{{{missing}}}}} has no value{hint}"),
    )
}

/// A PromQL criterion whose query was not run because the value of `name`
/// cannot be placed in it without changing the query (see
/// [`template::render_promql`]). Verdict `error`: never a pass on a query
/// other than the one written.
pub fn unsafe_variable(criterion: &Criterion, name: &str, reason: &str) -> CriterionResult {
    let condition = criterion.kind.query().map(|(_, _, pass_if, _)| pass_if);
    decided(
        base(criterion, None, condition),
        Verdict::Error,
        format!("the query was not run: the value of {{{{{name}}}}} cannot be placed in it safely ({reason})"),
    )
}

/// Renders a PromQL criterion's query with the run's variables, escaping
/// or refusing values as [`template::render_promql`] says; `Ok(None)` for
/// a snapshot criterion.
pub fn render_query(
    criterion: &Criterion,
    run_vars: &Vars,
) -> Result<Option<String>, QueryRenderError> {
    // LogQL writes its string literals as PromQL does (Go's quoting), so
    // the same escaping and refusals keep a value from changing the query.
    match criterion.kind.query() {
        Some((_, query_template, ..)) => {
            template::render_promql(query_template, run_vars).map(Some)
        }
        None => Ok(None),
    }
}

/// Evidence links for the report: the dashboard (falling back to
/// `default_dashboard`, the target's `dashboard_uid`) and panel as a label,
/// linked when `grafana_url` is known (scoped to `[from_ms, to_ms]`), then
/// the criterion's own link when it renders non-empty.
pub fn evidence_links(
    evidence: &Evidence,
    run_vars: &Vars,
    default_dashboard: Option<&str>,
    grafana: Option<(&str, i64, i64)>,
) -> Vec<Link> {
    let mut links = Vec::new();
    let dashboard = evidence.dashboard.as_deref().or(default_dashboard);
    if let Some(uid) = dashboard {
        let label = match &evidence.panel {
            Some(panel) => format!("Grafana dashboard {uid}, panel \"{panel}\""),
            None => format!("Grafana dashboard {uid}"),
        };
        let url = grafana.map(|(base, from_ms, to_ms)| {
            let uid: String = url::form_urlencoded::byte_serialize(uid.as_bytes()).collect();
            format!(
                "{}/d/{uid}?from={from_ms}&to={to_ms}",
                base.trim_end_matches('/')
            )
        });
        links.push(Link { label, url });
    } else if let Some(panel) = &evidence.panel {
        links.push(Link {
            label: format!("Grafana panel \"{panel}\""),
            url: None,
        });
    }
    if let Some(url) = evidence.link(run_vars) {
        let label = match &evidence.link_template {
            Some(t) if t.contains(&format!("{{{{{}}}}}", vars::TRACE_URL)) => {
                "Trace of the sentinel task".to_string()
            }
            _ => "Evidence link".to_string(),
        };
        links.push(Link {
            label,
            url: Some(url),
        });
    }
    links
}

fn base(
    criterion: &Criterion,
    query: Option<&str>,
    condition: Option<Condition>,
) -> CriterionResult {
    CriterionResult {
        id: criterion.id.clone(),
        title: criterion.title.clone(),
        verdict: Verdict::Error,
        reason: String::new(),
        query: query.map(str::to_string),
        condition: condition.map(|c| c.to_string()),
        series_total: 0,
        series_failing: 0,
        series: Vec::new(),
        query_url: None,
        language: match criterion.kind.query() {
            Some((QueryLanguage::Logql, ..)) => Some(QueryLanguage::Logql.as_str().to_string()),
            _ => None,
        },
        evidence: evidence_links(&criterion.evidence, &Vars::new(), None, None),
    }
}

fn decided(mut out: CriterionResult, verdict: Verdict, reason: String) -> CriterionResult {
    out.verdict = verdict;
    out.reason = reason;
    out
}

/// One (labels, sample) per series, sorted by labels so reports are stable:
/// a vector as is, a matrix by each series' last sample, a scalar as one
/// unlabelled series.
fn series_of(result: QueryResult) -> Vec<(Labels, Sample)> {
    let mut series: Vec<(Labels, Sample)> = match result {
        QueryResult::Vector(v) => v.into_iter().map(|s| (s.metric, s.value)).collect(),
        QueryResult::Matrix(m) => m
            .into_iter()
            .filter_map(|s| Some((s.metric, s.values.into_iter().last()?)))
            .collect(),
        QueryResult::Scalar(s) => vec![(Labels::new(), s)],
        QueryResult::String(_) => Vec::new(),
    };
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// Orders series worst first: NaN/±Inf, then those failing `pass_if` by how
/// far past it, then those passing by how close to failing; ties keep their
/// order (label order, from [`series_of`]).
fn rank_worst_first(series: &mut [(Labels, Sample)], pass_if: &Condition) {
    let key = |s: &Sample| {
        let v = s.value();
        if !v.is_finite() {
            (0, 0.0)
        } else if !pass_if.holds(v) {
            (1, margin(pass_if, v))
        } else {
            (2, margin(pass_if, v))
        }
    };
    series.sort_by(|(_, a), (_, b)| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
}

/// How far `v` is on the passing side of `pass_if` (negative past it): for
/// `< 1500`, 1500 - v; for `> 0`, v; for `== x`, -|v - x|; for `!= x`, |v - x|.
fn margin(pass_if: &Condition, v: f64) -> f64 {
    let t = pass_if.threshold;
    match pass_if.op {
        CmpOp::Lt | CmpOp::Le => t - v,
        CmpOp::Gt | CmpOp::Ge => v - t,
        CmpOp::Eq => -(v - t).abs(),
        CmpOp::Ne => (v - t).abs(),
    }
}

fn empty_verdict(on_empty: OnEmpty) -> (Verdict, String) {
    match on_empty {
        OnEmpty::Fail => (Verdict::Fail, NO_DATA.to_string()),
        OnEmpty::Error => (Verdict::Error, NO_DATA.to_string()),
        OnEmpty::Skip => (
            Verdict::Skipped,
            "no data: the query returned no series; skipped because on_empty = \"skip\"".into(),
        ),
        OnEmpty::Pass => (
            Verdict::Pass,
            "no data: the query returned no series, which passes because on_empty = \"pass\""
                .into(),
        ),
    }
}

fn judge(series: &[(Labels, Sample)], pass_if: &Condition) -> (Verdict, String) {
    let non_finite: Vec<&(Labels, Sample)> = series
        .iter()
        .filter(|(_, s)| !s.value().is_finite())
        .collect();
    if !non_finite.is_empty() {
        return (
            Verdict::Error,
            format!(
                "{} of {} series returned a non-finite value, which is never a pass (NaN: e.g. histogram_quantile over a window with no observations; ±Inf: e.g. a division by zero or a quantile in the +Inf bucket): {}",
                non_finite.len(),
                series.len(),
                list_series(&non_finite)
            ),
        );
    }
    let failing: Vec<&(Labels, Sample)> = series
        .iter()
        .filter(|(_, s)| !pass_if.holds(s.value()))
        .collect();
    if failing.is_empty() {
        let reason = match series {
            [(labels, s)] if labels.is_empty() => format!("{} {pass_if}", s.1),
            [(labels, s)] => format!("{} = {} {pass_if}", format_labels(labels), s.1),
            _ => format!("all {} series {pass_if}", series.len()),
        };
        return (Verdict::Pass, reason);
    }
    (
        Verdict::Fail,
        format!(
            "{} of {} series violate {pass_if}: {}",
            failing.len(),
            series.len(),
            list_series(&failing)
        ),
    )
}

fn list_series(series: &[&(Labels, Sample)]) -> String {
    let mut parts: Vec<String> = series
        .iter()
        .take(REASON_SERIES_CAP)
        .map(|(labels, s)| format!("{} = {}", format_labels(labels), s.1))
        .collect();
    if series.len() > REASON_SERIES_CAP {
        parts.push(format!("and {} more", series.len() - REASON_SERIES_CAP));
    }
    parts.join("; ")
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
