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
use crate::report::model::{Finding, RunWindow};
use crate::spec::template::QueryRenderError;
use crate::spec::{CriterionKind, Plan};
use chrono::{DateTime, Utc};
use classify::{answer_of, AlertRule, Answers, Policy};
use futures::stream::{self, StreamExt, TryStreamExt};
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
    Policy {
        lookback: v.lookback,
        required_labels: v.required_labels.clone(),
    }
}

/// Everything: criteria queries, drill alerts, then every loaded alerting rule.
pub async fn audit(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    Ok(audit_loaded(prom, plan, now).await?.0)
}

/// [`audit`], also returning the loaded alerting rules (for the routing audit).
pub async fn audit_loaded(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<(Vec<Finding>, Vec<AlertRule>), PromError> {
    let mut out = audit_criteria(prom, plan, now).await?;
    let rules = alerting_rules(prom).await?;
    let loaded: Vec<String> = rules.iter().map(|r| r.rule.name.clone()).collect();
    out.extend(classify::missing_drill_alerts(
        plan.drills
            .iter()
            .map(|d| (d.name.as_str(), d.alert.as_str())),
        &loaded,
    ));
    out.extend(audit_rules(prom, &rules, &policy(plan), now).await?);
    Ok((out, rules))
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
    for round in 0..classify::MAX_ROUNDS {
        let mut qs: Vec<String> = analyses
            .values()
            .flat_map(|a| classify::questions(a, &answers, policy))
            .collect();
        qs.sort();
        qs.dedup();
        if qs.is_empty() {
            break;
        }
        let got: Vec<(String, classify::Answer)> = stream::iter(qs)
            .map(|q| async move {
                let a = answer_of(prom.query_bounded(&q, now, QUERY_TIMEOUT).await)?;
                Ok::<_, PromError>((q, a))
            })
            .buffer_unordered(CONCURRENT_QUERIES)
            .try_collect()
            .await?;
        tracing::debug!(
            "rule audit round {round}: {} queries answered, {:?} since start",
            got.len(),
            started.elapsed()
        );
        answers.extend(got);
    }
    Ok(rules
        .iter()
        .flat_map(|r| {
            classify::classify_rule(r, &analyses[r.rule.query.as_str()], &answers, policy)
        })
        .collect())
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
    match routing::parse_config(&yaml) {
        Ok(root) => Ok(routing::audit_routes(
            &root,
            rules,
            &plan.target.validate.expected_receivers,
        )),
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
