//! The audit's decisions, without I/O: which series questions a rule
//! raises, and what the answers mean.

use crate::clients::prometheus::{PromError, QueryResult, Rule};
use crate::promql::{selectors, SelectorRef};
use crate::report::model::{Check, Finding, Severity};
use std::collections::BTreeMap;

/// What `/api/v1/series` said about one `match[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesAnswer {
    /// This many series over the lookback.
    Count(usize),
    /// Prometheus refused the selector (e.g. `bad_data`).
    Refused(String),
}

/// Answers keyed by the `match[]` asked.
pub type SeriesAnswers = BTreeMap<String, SeriesAnswer>;

/// `match[]` for "the metric name exists at all".
pub fn name_selector(metric: &str) -> String {
    format!("{{__name__=\"{metric}\"}}")
}

/// The `match[]` selectors [`classify_rule`] needs answers for. Empty if
/// the expression does not parse (that is a finding of its own).
pub fn series_questions(rule: &Rule) -> Vec<String> {
    let Ok(refs) = selectors(&rule.query) else {
        return Vec::new();
    };
    let mut qs: Vec<String> = refs
        .iter()
        .filter_map(|r| match (r.in_absent || guarded(r, &refs), &r.metric) {
            (false, _) => Some(r.selector.clone()),
            (true, Some(m)) => Some(name_selector(m)),
            (true, None) => None,
        })
        .collect();
    qs.sort();
    qs.dedup();
    qs
}

/// A plain selector also read inside `absent()` in the same rule
/// (`absent(x{..}) or x{..} == 0`): the rule covers its emptiness.
fn guarded(r: &SelectorRef, all: &[SelectorRef]) -> bool {
    !r.in_absent && all.iter().any(|o| o.in_absent && o.selector == r.selector)
}

/// Every finding about one loaded alerting rule, given the series answers.
pub fn classify_rule(rule: &Rule, answers: &SeriesAnswers) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, check, detail: String, selector: Option<String>| {
        out.push(Finding {
            subject: rule.name.clone(),
            severity,
            check,
            detail,
            selector,
        })
    };
    if rule.health == "err" {
        push(
            Severity::Error,
            Check::RuleHealth,
            format!(
                "Prometheus fails to evaluate the rule: {}",
                rule.last_error.as_deref().unwrap_or("no lastError given")
            ),
            None,
        );
    }
    match selectors(&rule.query) {
        Err(reason) => push(
            Severity::Error,
            Check::RuleHealth,
            format!("the expression cannot be parsed ({reason})"),
            None,
        ),
        Ok(refs) => {
            let mut seen = std::collections::BTreeSet::new();
            for r in &refs {
                if !seen.insert((r.selector.clone(), r.in_absent || guarded(r, &refs))) {
                    continue;
                }
                if let Some((sev, detail)) = selector_finding(r, &refs, answers) {
                    push(sev, Check::SelectorSeries, detail, Some(r.selector.clone()));
                }
            }
            if refs.iter().any(|r| r.in_absent) {
                if let Some(detail) = absent_namespace_problem(rule) {
                    push(Severity::Error, Check::AbsentNamespace, detail, None);
                }
            }
        }
    }
    if let Some((sev, detail)) = runbook_problem(rule.annotations.get("runbook_url")) {
        push(sev, Check::RunbookUrl, detail, None);
    }
    out
}

fn selector_finding(
    r: &SelectorRef,
    all: &[SelectorRef],
    answers: &SeriesAnswers,
) -> Option<(Severity, String)> {
    let absent_leg = r.in_absent || guarded(r, all);
    let asked = match (absent_leg, &r.metric) {
        (false, _) => r.selector.clone(),
        (true, Some(m)) => name_selector(m),
        // `absent({job="x"})`: no name to look for; its emptiness is the point.
        (true, None) => return None,
    };
    match answers.get(&asked) {
        Some(SeriesAnswer::Count(n)) if *n > 0 => None,
        Some(SeriesAnswer::Refused(e)) => Some((
            Severity::Error,
            format!("Prometheus refused the series query {asked}: {e}"),
        )),
        None => Some((
            Severity::Error,
            format!("no series answer for {asked} (audit bug)"),
        )),
        Some(SeriesAnswer::Count(_)) if absent_leg => Some((
            Severity::Warning,
            format!(
                "metric {} has no series at all (guarded by absent(), so the rule fires on its absence; check the name is spelled as the exporter exposes it)",
                r.metric.as_deref().unwrap_or_default()
            ),
        )),
        Some(SeriesAnswer::Count(_)) => Some((
            Severity::Error,
            "references a metric that does not exist, so it silently never fires: this selector matched no series in the lookback. Check the metric name and labels against the exporter's /metrics and that its scrape target is up".to_string(),
        )),
    }
}

/// The series `absent()` synthesises carries only its inner selector's
/// labels, so without a static `namespace` label on the rule an
/// Alertmanager route that matches on namespace never sees it (CC2-1).
fn absent_namespace_problem(rule: &Rule) -> Option<String> {
    match rule.labels.get("namespace").map(String::as_str) {
        None | Some("") => Some(
            "the expression has an absent() leg but the rule has no static `namespace` label: the synthesised series escapes namespace-matched Alertmanager routes (CC2-1). Add `namespace: <release-ns>` under the rule's labels".into(),
        ),
        Some(v) if v.contains("{{") => Some(format!(
            "the rule's `namespace` label is templated ({v:?}); on the absent() leg there is no source series to fill it from (CC2-1). Make it a literal namespace"
        )),
        Some(_) => None,
    }
}

/// Missing or empty: error. Neither an http(s) URL nor a path with an
/// `#anchor` into a runbook section: warning.
pub fn runbook_problem(url: Option<&String>) -> Option<(Severity, String)> {
    let Some(u) = url.map(|u| u.trim()).filter(|u| !u.is_empty()) else {
        return Some((
            Severity::Error,
            "the alert has no runbook_url annotation: on-call gets a page with nowhere to look. Add one pointing at its runbook section".into(),
        ));
    };
    let is_url = url::Url::parse(u)
        .map(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
        .unwrap_or(false);
    let anchored_path = !u.contains("://")
        && !u.contains(char::is_whitespace)
        && u.split_once('#')
            .is_some_and(|(path, anchor)| !path.is_empty() && !anchor.is_empty());
    if is_url || anchored_path {
        None
    } else {
        Some((
            Severity::Warning,
            format!("runbook_url {u:?} is neither an http(s) URL nor a path with an #anchor to the alert's section"),
        ))
    }
}

/// Drills whose alert no loaded alerting rule defines.
pub fn missing_drill_alerts<'a>(
    drills: impl IntoIterator<Item = (&'a str, &'a str)>,
    loaded: &[String],
) -> Vec<Finding> {
    drills
        .into_iter()
        .filter(|(_, alert)| !loaded.iter().any(|l| l == alert))
        .map(|(drill, alert)| Finding {
            subject: format!("drill {drill}"),
            severity: Severity::Error,
            check: Check::DrillAlert,
            detail: format!(
                "alert {alert} is not loaded in Prometheus (loaded: {}): the drill can never pass. Check the name and that the rule file is in rule_files",
                if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") }
            ),
            selector: None,
        })
        .collect()
}

/// A criterion whose query needs a run-time value (`sentinel.*`) that only
/// a run provides.
pub fn criterion_not_checked(id: &str, missing: &str) -> Finding {
    Finding {
        subject: id.to_string(),
        severity: Severity::Info,
        check: Check::CriterionQuery,
        detail: format!(
            "not checked: the query needs {{{{{missing}}}}}, which only a run provides"
        ),
        selector: None,
    }
}

/// A criterion whose query cannot take the value of `name` without
/// changing its structure (see `spec::template::render_promql`).
pub fn criterion_unsafe_value(id: &str, name: &str, reason: &str) -> Finding {
    Finding {
        subject: id.to_string(),
        severity: Severity::Error,
        check: Check::CriterionQuery,
        detail: format!(
            "not checked: the value of {{{{{name}}}}} cannot be placed in the query safely ({reason})"
        ),
        selector: None,
    }
}

/// What Prometheus' answer to a criterion's query says about the query.
pub fn classify_criterion(
    id: &str,
    query: &str,
    answer: &Result<QueryResult, PromError>,
) -> Option<Finding> {
    let finding = |severity, detail: String| Finding {
        subject: id.to_string(),
        severity,
        check: Check::CriterionQuery,
        detail,
        selector: Some(query.to_string()),
    };
    let empty = match answer {
        Ok(QueryResult::Vector(v)) => v.is_empty(),
        Ok(QueryResult::Matrix(m)) => m.is_empty(),
        Ok(QueryResult::Scalar(_) | QueryResult::String(_)) => false,
        Err(PromError::Api {
            error_type, error, ..
        }) => {
            return Some(finding(
                Severity::Error,
                format!("Prometheus rejects the query ({error_type}): {error}"),
            ))
        }
        Err(e) => return Some(finding(Severity::Error, e.to_string())),
    };
    empty.then(|| {
        finding(
            Severity::Warning,
            "the query returns no data now (over a 5m window); the criterion would be decided by its on_empty rule".into(),
        )
    })
}
