//! The audit's decisions, without I/O: which questions a rule raises
//! (PromQL instant queries that each answer with one number or a handful
//! of samples, never a series list), and what the answers mean.

use crate::clients::prometheus::{PromError, QueryResult, Rule};
use crate::promql::{selectors_of, zero_compared_of, Effect, Role, SelectorRef, Shape};
use crate::report::model::{Check, Finding, Severity};
use std::collections::BTreeMap;
use std::time::Duration;

/// A loaded alerting rule and where it was loaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub file: String,
    pub group: String,
    pub rule: Rule,
}

/// What the target asks of every alerting rule (see
/// `spec::target::ValidateSettings`; entries set to "off" are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How far back a selector may have had series and still count.
    pub lookback: Duration,
    /// Labels every alerting rule must carry as static literals.
    pub required_labels: Vec<(String, Severity)>,
    /// Annotations every alerting rule must carry, non-empty.
    pub required_annotations: Vec<(String, Severity)>,
    /// Labels a rule with an `absent()` leg must carry as static literals.
    pub absent_labels: Vec<(String, Severity)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lookback: Duration::from_secs(3600),
            required_labels: Vec::new(),
            required_annotations: vec![("runbook_url".into(), Severity::Error)],
            absent_labels: vec![("namespace".into(), Severity::Error)],
        }
    }
}

/// One instant query's answer: its samples (labels, value), or why
/// Prometheus refused it.
pub type Answer = Result<Vec<(BTreeMap<String, String>, f64)>, String>;

/// Answers keyed by the query asked.
pub type Answers = BTreeMap<String, Answer>;

/// Metrics that exist only while something happens (an alert pending or
/// firing): empty over the lookback is their normal state.
const STATE_METRICS: [&str; 2] = ["ALERTS", "ALERTS_FOR_STATE"];

/// Values shown for a label whose matcher matches nothing.
const VALUES_SHOWN: usize = 5;

fn range(lookback: Duration) -> String {
    format!("{}s", lookback.as_secs().max(1))
}

/// Where a count is taken: at the instant (cheap: the index and one
/// sample per series) or over the lookback (reads every sample in it, so
/// only asked once the instant came back empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Now,
    Lookback(Duration),
}

/// `sel` (name and matchers) with its `@`/`offset` modifiers `mods`,
/// read in `w`.
fn over(sel: &str, mods: &str, w: Window) -> String {
    match w {
        Window::Now => format!("{sel}{mods}"),
        Window::Lookback(lb) => format!("last_over_time({sel}[{}]{mods})", range(lb)),
    }
}

/// How many series `sel` (with modifiers `mods`) has in `w`: one number
/// (empty when none).
pub fn count_query(sel: &str, mods: &str, w: Window) -> String {
    format!("count({})", over(sel, mods, w))
}

/// `{__name__="metric"}`, plus `matcher` if any.
pub fn name_selector(metric: &str, matcher: Option<&str>) -> String {
    match matcher {
        Some(m) => format!("{{__name__={},{m}}}", quote(metric)),
        None => format!("{{__name__={}}}", quote(metric)),
    }
}

/// The most common values of `label` on `metric` in `w`.
pub fn values_query(metric: &str, label: &str, mods: &str, w: Window) -> String {
    format!(
        "topk({VALUES_SHOWN}, count by ({label}) ({}))",
        over(&name_selector(metric, None), mods, w)
    )
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The samples of an instant-query answer, for [`Answer`].
pub fn answer_of(result: Result<QueryResult, PromError>) -> Result<Answer, PromError> {
    match result {
        Ok(QueryResult::Vector(v)) => Ok(Ok(v
            .into_iter()
            .map(|s| {
                let value = s.value.value();
                (s.metric, value)
            })
            .collect())),
        Ok(QueryResult::Scalar(s)) => Ok(Ok(vec![(BTreeMap::new(), s.value())])),
        Ok(QueryResult::Matrix(_) | QueryResult::String(_)) => {
            Ok(Err("unexpected result type".into()))
        }
        Err(PromError::Api {
            error_type, error, ..
        }) => Ok(Err(format!("{error_type}: {error}"))),
        Err(e) => Err(e),
    }
}

fn number(a: Option<&Answer>) -> Option<Result<Option<f64>, String>> {
    match a? {
        Ok(s) => Some(Ok(s.first().map(|(_, v)| *v))),
        Err(e) => Some(Err(e.clone())),
    }
}

/// What the audit reads from one expression, parsed once (rules that
/// share an expression can share it too).
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Every selector, or why firedrill's parser rejects the expression.
    pub refs: Result<Vec<SelectorRef>, String>,
    /// The selectors to check, once each (`Blocking` before
    /// `FiresOnAbsence` for the same selector).
    pub checked: Vec<SelectorRef>,
    /// Selectors none of which blocks alone but which, all empty at once,
    /// leave the rule nothing to fire on (every alternative of an `or`),
    /// once each.
    pub together: Vec<SelectorRef>,
    /// What decides the expression's emptiness.
    pub shape: Shape,
    /// Selectors compared to zero as the alert's whole condition.
    pub zero_compared: Vec<SelectorRef>,
}

pub fn analyse(expr: &str) -> Analysis {
    let ast = match crate::promql::parse(expr) {
        Ok(ast) => ast,
        Err(e) => {
            return Analysis {
                refs: Err(e),
                checked: Vec::new(),
                together: Vec::new(),
                shape: Shape::Fine,
                zero_compared: Vec::new(),
            }
        }
    };
    let shape = Shape::of(&ast);
    let refs = selectors_of(&ast, &shape);
    let mut checked: Vec<SelectorRef> = refs.clone();
    checked.retain(|r| r.role != Role::NotBlocking);
    checked.sort_by(|a, b| (a.role, &a.selector).cmp(&(b.role, &b.selector)));
    checked.dedup_by(|a, b| a.selector == b.selector && a.role == b.role);
    let mut together: Vec<SelectorRef> = refs
        .iter()
        .filter(|r| r.role == Role::NotBlocking && !r.in_absent)
        .cloned()
        .collect();
    together.sort_by(|a, b| a.selector.cmp(&b.selector));
    together.dedup_by(|a, b| a.selector == b.selector);
    // Only worth asking about if all of them empty can empty the rule
    // (never for `unless` right sides or `or vector(0)` fallbacks).
    let names: Vec<&str> = together.iter().map(|r| r.selector.as_str()).collect();
    if shape.effect(&|s| names.contains(&s)) != Effect::Empty {
        together.clear();
    }
    Analysis {
        zero_compared: zero_compared_of(&ast),
        refs: Ok(refs),
        checked,
        together,
        shape,
    }
}

/// The queries [`classify_rule`] needs next, given what is known so far.
/// Ask them, add the answers, and call again until it returns nothing
/// (at most [`MAX_ROUNDS`] rounds).
pub fn questions(a: &Analysis, answers: &Answers, policy: &Policy) -> Vec<String> {
    let lb = Window::Lookback(policy.lookback);
    let mut qs: Vec<String> = a
        .checked
        .iter()
        .filter_map(|r| resolve(r, answers, policy).err())
        .flatten()
        .chain(
            a.together
                .iter()
                .filter_map(|r| empty_over(r, answers, lb).err()),
        )
        .filter(|q| !answers.contains_key(q))
        .collect();
    qs.sort();
    qs.dedup();
    qs
}

/// Metric names asked about in one query by [`names_queries`]: about 4 KB
/// of URL, within what proxies in front of Prometheus accept (nginx: 8 KB).
const NAMES_PER_QUERY: usize = 100;

/// The metric names of every plain selector (no `@`/`offset`) the
/// analyses check, once each, sorted.
pub fn metric_names<'a>(analyses: impl IntoIterator<Item = &'a Analysis>) -> Vec<String> {
    let mut names: Vec<String> = analyses
        .into_iter()
        .flat_map(|a| a.checked.iter().chain(&a.together))
        .filter(|r| r.modifiers.is_empty())
        .filter_map(|r| r.metric.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One query per batch of `names` saying which have series in `w`
/// (`count by (__name__) (...)`): what would otherwise be several
/// questions per selector of a metric that is not there.
pub fn names_queries(names: &[String], w: Window) -> Vec<String> {
    names
        .chunks(NAMES_PER_QUERY)
        .map(|chunk| {
            let re: Vec<String> = chunk.iter().map(|n| regex::escape(n)).collect();
            let sel = format!("{{__name__=~{}}}", quote(&re.join("|")));
            format!("count by (__name__) ({})", over(&sel, "", w))
        })
        .collect()
}

/// The names an answer to [`names_queries`] says have series; `None` if
/// it cannot be read that way (a Prometheus that drops the name there).
pub fn names_present(answer: &Answer) -> Option<Vec<String>> {
    let samples = answer.as_ref().ok()?;
    samples
        .iter()
        .map(|(labels, _)| labels.get("__name__").cloned())
        .collect()
}

/// The answers [`resolve`] would otherwise ask for, known from which
/// metric names have series now (`now`) and, of the others, over the
/// lookback (`lookback`, `None` when unknown): a metric with no series
/// answers every count of its plain selectors with nothing.
pub fn prefilled<'a>(
    analyses: impl IntoIterator<Item = &'a Analysis>,
    names: &[String],
    now: &[String],
    lookback: Option<&[String]>,
    policy: &Policy,
) -> Answers {
    let lb = Window::Lookback(policy.lookback);
    let one = || Ok(vec![(BTreeMap::new(), 1.0)]);
    let none = || Ok(Vec::new());
    let mut out = Answers::new();
    for n in names {
        let sel = name_selector(n, None);
        let present_now = now.contains(n);
        out.insert(
            count_query(&sel, "", Window::Now),
            if present_now { one() } else { none() },
        );
        if let (false, Some(lbn)) = (present_now, lookback) {
            out.insert(
                count_query(&sel, "", lb),
                if lbn.contains(n) { one() } else { none() },
            );
        }
    }
    for r in analyses
        .into_iter()
        .flat_map(|a| a.checked.iter().chain(&a.together))
        .filter(|r| r.modifiers.is_empty())
    {
        let Some(m) = r.metric.as_ref() else { continue };
        if !names.contains(m) || now.contains(m) {
            continue;
        }
        out.insert(count_query(r.bare(), "", Window::Now), none());
        if lookback.is_some_and(|lbn| !lbn.contains(m)) {
            out.insert(count_query(r.bare(), "", lb), none());
        }
    }
    out
}

/// The longest chain [`resolve`] asks along: now, lookback, name now,
/// name over the lookback, each matcher, label values.
pub const MAX_ROUNDS: usize = 6;

/// A selector's finding (`Ok(None)`: nothing to say), or the queries still
/// needed to decide it. Each step asks the cheapest question that can
/// settle it: the instant first, the lookback only when the instant is
/// empty.
fn resolve(
    r: &SelectorRef,
    answers: &Answers,
    policy: &Policy,
) -> Result<Option<(Severity, String)>, Vec<String>> {
    let lb = Window::Lookback(policy.lookback);
    let lookback = humantime::format_duration(policy.lookback).to_string();
    // The number a query answered: Err(queries) if not asked yet.
    let ask = |q: String| -> Result<Result<Option<f64>, String>, Vec<String>> {
        number(answers.get(&q)).ok_or_else(|| vec![q.clone()])
    };
    let refused = |q: String, e: String| {
        Ok(Some((
            Severity::Error,
            format!("Prometheus did not answer the query {q}: {e}"),
        )))
    };
    let state = r
        .metric
        .as_deref()
        .is_some_and(|m| STATE_METRICS.contains(&m));
    let mods = r.modifiers.as_str();
    if r.role == Role::FiresOnAbsence {
        let Some(m) = r.metric.as_deref() else {
            return Ok(None);
        };
        for w in [Window::Now, lb] {
            let q = count_query(&name_selector(m, None), mods, w);
            match ask(q.clone())? {
                Err(e) => return refused(q, e),
                Ok(Some(_)) => return Ok(None),
                Ok(None) => {}
            }
        }
        if state {
            return Ok(None);
        }
        return Ok(Some((
            Severity::Warning,
            format!(
                "metric {m} had no series at all in the last {lookback}: read by absent(), so the rule fires on its absence; check the name is spelled as the exporter exposes it"
            ),
        )));
    }
    let q = count_query(r.bare(), mods, Window::Now);
    match ask(q.clone())? {
        Err(e) => return refused(q, e),
        Ok(Some(_)) => return Ok(None),
        Ok(None) => {}
    }
    let q = count_query(r.bare(), mods, lb);
    match ask(q.clone())? {
        Err(e) => return refused(q, e),
        Ok(Some(_)) => {
            return Ok(Some((
                Severity::Info,
                format!(
                    "had series within the last {lookback} but has none now: a series that exists only while something happens; the rule can fire when it returns"
                ),
            )))
        }
        Ok(None) => {}
    }
    if state {
        return Ok(Some((
            Severity::Info,
            format!(
                "{} is a state series (present only while alerts are pending or firing) and had none in the last {lookback}; normal when nothing fires",
                r.metric.as_deref().unwrap_or_default()
            ),
        )));
    }
    let Some(m) = r.metric.as_deref() else {
        return Ok(Some((
            Severity::Error,
            format!("matched no series in the last {lookback}, so the rule silently never fires. Check the selector against the exporters' /metrics"),
        )));
    };
    // Where the metric has series: now, else somewhere in the lookback.
    let mut window = None;
    for w in [Window::Now, lb] {
        let q = count_query(&name_selector(m, None), mods, w);
        match ask(q.clone())? {
            Err(e) => return refused(q, e),
            Ok(Some(_)) => {
                window = Some(w);
                break;
            }
            Ok(None) => {}
        }
    }
    let Some(w) = window else {
        // With `offset`/`@` the question is about another time: the metric
        // may well exist now.
        let detail = if mods.trim().is_empty() {
            format!(
                "metric {m} was never present in the last {lookback}, so the rule silently never fires. Check the metric name against the exporter's /metrics and that its scrape target is up"
            )
        } else {
            format!(
                "metric {m} had no series at the time `{}` asks for (over the {lookback} lookback moved by it), so the rule never fires until Prometheus holds data from then. Normal on a Prometheus younger than the offset; otherwise check the metric name",
                mods.trim()
            )
        };
        return Ok(Some((Severity::Error, detail)));
    };
    // Each matcher alone, all asked in one round.
    let mut pending = Vec::new();
    let mut culprits = Vec::new();
    for (label, matcher) in &r.matchers {
        let q = count_query(&name_selector(m, Some(matcher)), mods, w);
        match ask(q.clone()) {
            Err(more) => pending.extend(more),
            Ok(Err(e)) => return refused(q, e),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => culprits.push((label, matcher)),
        }
    }
    if !pending.is_empty() {
        return Err(pending);
    }
    let mut described = Vec::new();
    for (label, matcher) in culprits {
        let vq = values_query(m, label, mods, w);
        let seen = match answers.get(&vq) {
            None => {
                pending.push(vq);
                continue;
            }
            Some(Err(e)) => format!("unknown ({e})"),
            Some(Ok(samples)) if samples.is_empty() => "none".to_string(),
            Some(Ok(samples)) => samples
                .iter()
                .map(|(l, _)| {
                    l.get(label.as_str())
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_else(|| "(label absent)".into())
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        described.push(format!("{matcher} (values seen: {seen})"));
    }
    if !pending.is_empty() {
        return Err(pending);
    }
    let detail = if described.is_empty() {
        format!(
            "metric {m} exists, and each label matcher matches some of its series, but no series matched them all together in the last {lookback}: the rule never fires until one does"
        )
    } else {
        format!(
            "metric {m} exists but these label matchers match none of its series in the last {lookback}: {}. The rule never fires unless that value appears (normal for values that exist only during incidents, e.g. an error code)",
            described.join("; ")
        )
    };
    Ok(Some((Severity::Warning, detail)))
}

/// Whether `r` had no series now nor over the lookback `lb` (a refused
/// query counts as "has series": nothing is claimed on it), or the query
/// still to ask.
fn empty_over(r: &SelectorRef, answers: &Answers, lb: Window) -> Result<bool, String> {
    for w in [Window::Now, lb] {
        let q = count_query(r.bare(), &r.modifiers, w);
        match answers.get(&q) {
            None => return Err(q),
            Some(Ok(samples)) if samples.is_empty() => {}
            Some(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// The alternatives of an `or` (none blocking alone) that are all empty
/// over the lookback, when that leaves the rule nothing to fire on.
fn empty_together<'a>(a: &'a Analysis, answers: &Answers, policy: &Policy) -> Vec<&'a SelectorRef> {
    let lb = Window::Lookback(policy.lookback);
    let empty: Vec<&SelectorRef> = a
        .together
        .iter()
        .filter(|r| empty_over(r, answers, lb) == Ok(true))
        .collect();
    let names: Vec<&str> = empty.iter().map(|r| r.selector.as_str()).collect();
    if !empty.is_empty() && a.shape.effect(&|s| names.contains(&s)) == Effect::Empty {
        empty
    } else {
        Vec::new()
    }
}

/// Every finding about one loaded alerting rule, given the answers to its
/// [`questions`].
pub fn classify_rule(
    ar: &AlertRule,
    analysis: &Analysis,
    answers: &Answers,
    policy: &Policy,
) -> Vec<Finding> {
    classify_rule_with(ar, analysis, answers, policy, true)
}

/// [`classify_rule`]; with `complete` false (the audit stopped early), a
/// selector whose questions were not all answered is an info finding
/// "not checked" instead of an audit bug.
pub fn classify_rule_with(
    ar: &AlertRule,
    analysis: &Analysis,
    answers: &Answers,
    policy: &Policy,
    complete: bool,
) -> Vec<Finding> {
    let rule = &ar.rule;
    let mut out = Vec::new();
    let mut push = |severity, check, detail: String, selector: Option<String>| {
        out.push(Finding {
            subject: rule.name.clone(),
            severity,
            check,
            detail,
            selector,
            file: Some(ar.file.clone()),
            group: Some(ar.group.clone()),
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
    let mut missing_required = Vec::new();
    for (label, sev) in &policy.required_labels {
        if let Some(detail) = required_label_problem(rule, label) {
            missing_required.push(label.as_str());
            push(*sev, Check::RequiredLabel, detail, None);
        }
    }
    match &analysis.refs {
        Err(reason) if rule.health != "err" => {
            push(
                Severity::Info,
                Check::RuleHealth,
                format!(
                    "not analysed: Prometheus loaded and evaluates this rule, but firedrill's PromQL parser rejects it ({reason}); its selectors were not checked"
                ),
                None,
            );
        }
        Err(_) => {}
        Ok(refs) => {
            for r in &analysis.checked {
                if let Some((sev, detail)) = selector_finding(r, answers, policy, complete) {
                    push(sev, Check::SelectorSeries, detail, Some(r.selector.clone()));
                }
            }
            let empty = empty_together(analysis, answers, policy);
            if !empty.is_empty() {
                let lookback = humantime::format_duration(policy.lookback);
                let state = empty.iter().any(|r| {
                    r.metric
                        .as_deref()
                        .is_some_and(|m| STATE_METRICS.contains(&m))
                });
                let list: Vec<&str> = empty.iter().map(|r| r.selector.as_str()).collect();
                push(
                    if state { Severity::Info } else { Severity::Error },
                    Check::SelectorSeries,
                    format!(
                        "every alternative of the rule's `or` is empty: none of {} had series in the last {lookback}, so the rule silently never fires{}. Check these selectors against the exporters' /metrics",
                        list.join(", "),
                        if state { " (one is a state series, empty while nothing fires: normal then)" } else { "" }
                    ),
                    Some(list.join(" or ")),
                );
            }
            if refs.iter().any(|r| r.role == Role::FiresOnAbsence) {
                for (label, sev) in &policy.absent_labels {
                    if missing_required.contains(&label.as_str()) {
                        continue;
                    }
                    if let Some(detail) = absent_label_problem(rule, label) {
                        push(*sev, Check::AbsentLabel, detail, None);
                    }
                }
            }
            for z in &analysis.zero_compared {
                let guarded = refs
                    .iter()
                    .any(|r| r.in_absent && r.metric.is_some() && r.metric == z.metric);
                if !guarded {
                    push(
                        Severity::Warning,
                        Check::AbsentGuard,
                        format!(
                            "compares {} to zero with no absent() leg over it: when the object is missing there is no series, the comparison is empty and the alert never fires when it matters most. Add `or absent({})`",
                            z.selector, z.selector
                        ),
                        Some(z.selector.clone()),
                    );
                }
            }
        }
    }
    for (name, sev) in &policy.required_annotations {
        let value = rule.annotations.get(name);
        if name == "runbook_url" {
            if let Some((found, detail)) = runbook_problem(value) {
                // A runbook_url that is there but odd is at most a warning.
                push((*sev).min(found), Check::RunbookUrl, detail, None);
            }
        } else if value.is_none_or(|v| v.trim().is_empty()) {
            push(
                *sev,
                Check::RequiredAnnotation,
                format!(
                    "the alert has no `{name}` annotation, which the target requires on every alert. Add `{name}: <text>` under the rule's annotations"
                ),
                None,
            );
        }
    }
    out
}

/// How a selector's finding starts when the audit stopped before it was
/// decided.
pub const NOT_CHECKED: &str = "not checked";

fn selector_finding(
    r: &SelectorRef,
    answers: &Answers,
    policy: &Policy,
    complete: bool,
) -> Option<(Severity, String)> {
    match resolve(r, answers, policy) {
        Ok(f) => f,
        Err(_) if !complete => Some((
            Severity::Info,
            format!(
                "{NOT_CHECKED}: the audit stopped before Prometheus answered for this selector"
            ),
        )),
        Err(qs) => Some((
            Severity::Error,
            format!("no answer for {} (audit bug)", qs.join(", ")),
        )),
    }
}

/// `label` must be a literal, non-empty rule label: routing matches on it
/// and a templated value is filled from the source series, which an
/// absent() leg does not have.
fn required_label_problem(rule: &Rule, label: &str) -> Option<String> {
    match rule.labels.get(label).map(String::as_str) {
        None | Some("") => Some(format!(
            "the rule has no static `{label}` label, which the target requires on every alert (its Alertmanager routes match on it). Add `{label}: <value>` under the rule's labels"
        )),
        Some(v) if v.contains("{{") => Some(format!(
            "the rule's `{label}` label is templated ({v:?}); the target requires a literal value, since routing matches on it and the source series may not carry it"
        )),
        Some(_) => None,
    }
}

/// The series `absent()` makes up carries only the labels written in its
/// selector, so without `label` set as a literal on the rule an
/// Alertmanager route that matches on it never sees the alert.
fn absent_label_problem(rule: &Rule, label: &str) -> Option<String> {
    match rule.labels.get(label).map(String::as_str) {
        None | Some("") => Some(format!(
            "the expression has an absent() leg but the rule has no static `{label}` label: the series absent() makes up carries only the labels written in its selector, so an Alertmanager route that matches on `{label}` never sees this alert. Add `{label}: <value>` under the rule's labels"
        )),
        Some(v) if v.contains("{{") => Some(format!(
            "the rule's `{label}` label is templated ({v:?}); when absent() fires there is no source series to fill it from, so the alert carries it empty. Make it a literal value"
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

/// A Prometheus with no alerting rule loaded proves nothing: a
/// `rule_files` typo or the wrong `prometheus_url` must not pass as "no
/// findings".
pub fn no_alerting_rules(loaded: usize) -> Option<Finding> {
    (loaded == 0).then(|| Finding {
        subject: "prometheus".into(),
        severity: Severity::Error,
        check: Check::RuleHealth,
        detail: "Prometheus has no alerting rule loaded, so nothing was audited and no alert can fire. Check its rule_files (and `promtool check rules` on them) and that the target's prometheus_url is the Prometheus that evaluates your rules".into(),
        selector: None,
        file: None,
        group: None,
    })
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
                "alert {alert} is not loaded in Prometheus ({}): the drill can never pass. Check the name and that the rule file is in rule_files",
                nearest_names(alert, loaded)
            ),
            selector: None,
            file: None,
            group: None,
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
        file: None,
        group: None,
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
        file: None,
        group: None,
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
        file: None,
        group: None,
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

/// Names shown when a drill's alert is not loaded.
const NEAREST_SHOWN: usize = 5;

/// "did you mean A, B?" from the loaded names closest to `wanted`, never
/// the whole list.
fn nearest_names(wanted: &str, loaded: &[String]) -> String {
    if loaded.is_empty() {
        return "no alerting rules are loaded".into();
    }
    let w = wanted.to_lowercase();
    let mut scored: Vec<(f64, &String)> = loaded
        .iter()
        .map(|l| (strsim::jaro_winkler(&w, &l.to_lowercase()), l))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut names: Vec<&str> = scored.iter().map(|(_, l)| l.as_str()).collect();
    names.dedup();
    names.truncate(NEAREST_SHOWN);
    format!(
        "{} alerting rules loaded; nearest names: {}",
        loaded.len(),
        names.join(", ")
    )
}
