//! `firedrill validate`: a live audit of the alert rules Prometheus has
//! loaded, the drills' alerts and the criteria's queries, injecting nothing.
//!
//! [`classify`] decides (pure, table-tested); this file asks Prometheus.
//! Only an unreachable or unreadable Prometheus stops the audit; an API
//! error on one question becomes a finding and the audit goes on.

pub mod classify;
#[cfg(test)]
mod classify_tests;
pub mod routing;

use crate::accept::runtime_vars;
use crate::accept::verdict::render_query;
use crate::clients::prometheus::{PromError, Prometheus};
use crate::report::model::{Finding, RunWindow, Severity};
use crate::spec::target::PolicyLevel;
use crate::spec::template::QueryRenderError;
use crate::spec::{CriterionKind, Plan};
use chrono::{DateTime, Utc};
use classify::{answer_of, AlertRule, Answers, Policy};
use futures::stream::{self, StreamExt};
use std::time::Duration;

/// The `{{window}}` criteria queries are rendered with.
pub const CRITERION_WINDOW: Duration = Duration::from_secs(300);
/// Queries in flight at once: each answers with one number, so this
/// bounds the load on Prometheus, not the memory.
const CONCURRENT_QUERIES: usize = 8;
/// How long Prometheus may spend on one audit question before it gives up
/// on it (that question becomes a finding; the audit goes on).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The rule-audit policy a plan's target asks for.
pub fn policy(plan: &Plan) -> Policy {
    let v = &plan.target.validate;
    let levels = |m: &std::collections::BTreeMap<String, PolicyLevel>| {
        m.iter()
            .filter_map(|(k, l)| {
                let sev = match l {
                    PolicyLevel::Error => Severity::Error,
                    PolicyLevel::Warning => Severity::Warning,
                    PolicyLevel::Off => return None,
                };
                Some((k.clone(), sev))
            })
            .collect()
    };
    Policy {
        lookback: v.lookback,
        required_labels: levels(&v.required_labels),
        required_annotations: levels(&v.required_annotations),
        absent_labels: levels(&v.absent_labels),
    }
}

/// Everything: criteria queries, drill alerts, then every loaded alerting rule.
pub async fn audit(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    let a = audit_until(prom, plan, now, std::future::pending()).await?;
    match a.stopped {
        Some(Stopped::Prometheus(e)) => Err(e),
        _ => Ok(a.findings),
    }
}

/// Why an audit ended before every question was answered.
#[derive(Debug)]
pub enum Stopped {
    /// A signal (its name): the run is interrupted.
    Signal(&'static str),
    /// Prometheus stopped answering (unreachable, timed out) mid-audit.
    Prometheus(PromError),
}

/// What an audit found, possibly before it was done.
#[derive(Debug)]
pub struct Audited {
    /// The findings, for every rule: those whose questions were not all
    /// answered say "not checked".
    pub findings: Vec<Finding>,
    /// The loaded alerting rules (for the routing audit).
    pub rules: Vec<AlertRule>,
    /// Set when the audit ended early.
    pub stopped: Option<Stopped>,
}

/// [`audit`], ending early (with what was audited so far) when `stop`
/// completes or Prometheus stops answering after the rules were read.
/// An unreachable Prometheus before that is the error.
pub async fn audit_until(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
    stop: impl std::future::Future<Output = &'static str>,
) -> Result<Audited, PromError> {
    let mut stop = std::pin::pin!(stop);
    let before = async {
        let out = audit_criteria(prom, plan, now).await?;
        let rules = alerting_rules(prom).await?;
        Ok::<_, PromError>((out, rules))
    };
    let (mut out, rules) = tokio::select! {
        r = before => r?,
        sig = &mut stop => {
            return Ok(Audited {
                findings: Vec::new(),
                rules: Vec::new(),
                stopped: Some(Stopped::Signal(sig)),
            })
        }
    };
    out.extend(classify::no_alerting_rules(rules.len()));
    let loaded: Vec<String> = rules.iter().map(|r| r.rule.name.clone()).collect();
    out.extend(classify::missing_drill_alerts(
        plan.drills
            .iter()
            .map(|d| (d.name.as_str(), d.alert.as_str())),
        &loaded,
    ));
    let (findings, stopped) = audit_rules_until(prom, &rules, &policy(plan), now, stop).await;
    out.extend(findings);
    Ok(Audited {
        findings: out,
        rules,
        stopped,
    })
}

/// Every alerting rule Prometheus has loaded, in group order, with its
/// file and group.
pub async fn alerting_rules(prom: &Prometheus) -> Result<Vec<AlertRule>, PromError> {
    Ok(prom
        .rules()
        .await?
        .into_iter()
        .flat_map(|g| {
            let (file, group) = (g.file, g.name);
            g.rules.into_iter().map(move |rule| AlertRule {
                file: file.clone(),
                group: group.clone(),
                rule,
            })
        })
        .filter(|r| r.rule.kind == "alerting")
        .collect())
}

/// Findings for `rules`: each question is an instant query answering with
/// one number (or a few label values), asked once however many rules
/// share it, a few at a time.
pub async fn audit_rules(
    prom: &Prometheus,
    rules: &[AlertRule],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    match audit_rules_until(prom, rules, policy, now, std::future::pending()).await {
        (_, Some(Stopped::Prometheus(e))) => Err(e),
        (findings, _) => Ok(findings),
    }
}

/// [`audit_rules`], ending early when `stop` completes or Prometheus
/// stops answering: every answer received so far counts, and a selector
/// still waiting for one is reported as not checked.
pub async fn audit_rules_until(
    prom: &Prometheus,
    rules: &[AlertRule],
    policy: &Policy,
    now: DateTime<Utc>,
    stop: impl std::future::Future<Output = &'static str>,
) -> (Vec<Finding>, Option<Stopped>) {
    let mut stop = std::pin::pin!(stop);
    // Parsed once per distinct expression: rule sets repeat expressions
    // across files and groups.
    let mut analyses: std::collections::HashMap<&str, classify::Analysis> =
        std::collections::HashMap::new();
    for r in rules {
        analyses
            .entry(r.rule.query.as_str())
            .or_insert_with(|| classify::analyse(&r.rule.query));
    }
    let started = std::time::Instant::now();
    let mut answers = Answers::new();
    let mut stopped = None;
    // Which metrics have series at all, a few hundred names per query:
    // selectors of a metric that is not there need no question of their own.
    let names = classify::metric_names(analyses.values());
    let ask_names = |names: Vec<String>, w| {
        let qs = classify::names_queries(&names, w);
        async move {
            let mut present = Vec::new();
            for q in qs {
                let a = answer_of(prom.query_bounded(&q, now, QUERY_TIMEOUT).await)?;
                match classify::names_present(&a) {
                    Some(p) => present.extend(p),
                    None => return Ok(None),
                }
            }
            Ok::<_, PromError>(Some(present))
        }
    };
    let lb = classify::Window::Lookback(policy.lookback);
    let prefill = async {
        let Some(now_present) = ask_names(names.clone(), classify::Window::Now).await? else {
            return Ok(None);
        };
        // Over the lookback (reads every sample in it) only for the names
        // with no series now.
        let gone: Vec<String> = names
            .iter()
            .filter(|n| !now_present.contains(n))
            .cloned()
            .collect();
        let lookback = ask_names(gone, lb).await?;
        Ok::<_, PromError>(Some((now_present, lookback)))
    };
    tokio::select! {
        r = prefill => match r {
            Ok(Some((now_present, lookback))) => answers.extend(classify::prefilled(
                analyses.values(),
                &names,
                &now_present,
                lookback.as_deref(),
                policy,
            )),
            // Unreadable or refused (a proxy's URL limit, say): every
            // selector is asked about on its own.
            Ok(None) => {}
            Err(e) => tracing::debug!("metric names lookup failed, asking per selector: {e}"),
        },
        sig = &mut stop => stopped = Some(Stopped::Signal(sig)),
    }
    tracing::debug!(
        "rule audit: {} metric names looked up, {:?} since start",
        names.len(),
        started.elapsed()
    );
    let rounds = if stopped.is_some() {
        0
    } else {
        classify::MAX_ROUNDS
    };
    'rounds: for round in 0..rounds {
        let mut qs: Vec<String> = analyses
            .values()
            .flat_map(|a| classify::questions(a, &answers, policy))
            .collect();
        qs.sort();
        qs.dedup();
        if qs.is_empty() {
            break;
        }
        let asked = qs.len();
        let mut got = stream::iter(qs)
            .map(|q| async move {
                let a = answer_of(prom.query_bounded(&q, now, QUERY_TIMEOUT).await)?;
                Ok::<_, PromError>((q, a))
            })
            .buffer_unordered(CONCURRENT_QUERIES);
        loop {
            tokio::select! {
                next = got.next() => match next {
                    None => break,
                    Some(Ok((q, a))) => {
                        answers.insert(q, a);
                    }
                    Some(Err(e)) => {
                        stopped = Some(Stopped::Prometheus(e));
                        break 'rounds;
                    }
                },
                sig = &mut stop => {
                    stopped = Some(Stopped::Signal(sig));
                    break 'rounds;
                }
            }
        }
        tracing::debug!(
            "rule audit round {round}: {asked} queries answered, {:?} since start",
            started.elapsed()
        );
    }
    let complete = stopped.is_none();
    let findings = rules
        .iter()
        .flat_map(|r| {
            classify::classify_rule_with(
                r,
                &analyses[r.rule.query.as_str()],
                &answers,
                policy,
                complete,
            )
        })
        .collect();
    (findings, stopped)
}

/// How many distinct rules (file, group, alert) have a selector left "not
/// checked" by an audit that stopped early.
pub fn not_fully_audited(findings: &[Finding]) -> usize {
    let mut rules: Vec<(&Option<String>, &Option<String>, &str)> = findings
        .iter()
        .filter(|f| f.check == crate::report::model::Check::SelectorSeries)
        .filter(|f| f.detail.starts_with(classify::NOT_CHECKED))
        .map(|f| (&f.file, &f.group, f.subject.as_str()))
        .collect();
    rules.sort();
    rules.dedup();
    rules.len()
}

/// Renders each PromQL criterion over the last 5 minutes and runs it now.
pub async fn audit_criteria(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    let window = RunWindow {
        start: crate::timemath::before(now, CRITERION_WINDOW),
        end: now,
    };
    let vars = plan.target.run_vars(&runtime_vars(window, None));
    let mut out = Vec::new();
    for c in &plan.criteria {
        // Only PromQL is Prometheus' to answer (LogQL asks Loki at run time).
        if !matches!(c.kind, CriterionKind::Promql { .. }) {
            continue;
        }
        match render_query(c, &vars) {
            Ok(None) => {}
            Err(QueryRenderError::Missing(name)) => {
                out.push(classify::criterion_not_checked(&c.id, &name))
            }
            Err(QueryRenderError::Unsafe { name, reason }) => {
                out.push(classify::criterion_unsafe_value(&c.id, &name, &reason))
            }
            Ok(Some(query)) => {
                let answer = prom.query(&query, now).await;
                if let Err(PromError::Unreachable { .. } | PromError::Http { .. }) = &answer {
                    return Err(answer.unwrap_err());
                }
                out.extend(classify::classify_criterion(&c.id, &query, &answer));
            }
        }
    }
    Ok(out)
}

/// The routing audit: Alertmanager's running configuration, walked for
/// each loaded alerting rule's static labels. An unreadable configuration
/// is one error finding, not a stopped audit.
pub async fn audit_routing(
    am: &crate::clients::alertmanager::Alertmanager,
    rules: &[AlertRule],
    plan: &Plan,
) -> Result<
    (Vec<crate::report::model::AlertRoute>, Vec<Finding>),
    crate::clients::alertmanager::AmError,
> {
    let yaml = am.config_original().await?;
    match routing::parse_config_receivers(&yaml) {
        Ok((root, defined)) => {
            let expected = &plan.target.validate.expected_receivers;
            let (routes, mut findings) = routing::audit_routes(&root, rules, expected);
            findings.extend(routing::undefined_receivers(expected, &defined));
            Ok((routes, findings))
        }
        Err(e) => Ok((
            Vec::new(),
            vec![Finding {
                subject: "alertmanager".into(),
                severity: crate::report::model::Severity::Error,
                check: crate::report::model::Check::Routing,
                detail: format!("{e}; the routing audit did not run"),
                selector: None,
                file: None,
                group: None,
            }],
        )),
    }
}
