//! `firedrill validate`: a live audit of the alert rules Prometheus has
//! loaded, the drills' alerts and the criteria's queries, injecting nothing.
//!
//! [`classify`] decides (pure, table-tested); this file asks Prometheus.
//! Only an unreachable or unreadable Prometheus stops the audit; an API
//! error on one question becomes a finding and the audit goes on.

pub mod classify;
#[cfg(test)]
mod classify_tests;

use crate::accept::runtime_vars;
use crate::accept::verdict::render_query;
use crate::clients::prometheus::{PromError, Prometheus, Rule};
use crate::report::model::{Finding, RunWindow};
use crate::spec::template::QueryRenderError;
use crate::spec::{CriterionKind, Plan};
use chrono::{DateTime, Utc};
use classify::{SeriesAnswer, SeriesAnswers};
use std::time::Duration;

/// How far back a selector may have had series and still count.
pub const SERIES_LOOKBACK: Duration = Duration::from_secs(3600);
/// The `{{window}}` criteria queries are rendered with.
pub const CRITERION_WINDOW: Duration = Duration::from_secs(300);

/// Everything: criteria queries, drill alerts, then every loaded alerting rule.
pub async fn audit(
    prom: &Prometheus,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    let mut out = audit_criteria(prom, plan, now).await?;
    let rules = alerting_rules(prom).await?;
    let loaded: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    out.extend(classify::missing_drill_alerts(
        plan.drills
            .iter()
            .map(|d| (d.name.as_str(), d.alert.as_str())),
        &loaded,
    ));
    out.extend(audit_rules(prom, &rules, now).await?);
    Ok(out)
}

/// Every alerting rule Prometheus has loaded, in group order.
pub async fn alerting_rules(prom: &Prometheus) -> Result<Vec<Rule>, PromError> {
    Ok(prom
        .rules()
        .await?
        .into_iter()
        .flat_map(|g| g.rules)
        .filter(|r| r.kind == "alerting")
        .collect())
}

/// Findings for `rules`, asking `/api/v1/series` over the last hour.
pub async fn audit_rules(
    prom: &Prometheus,
    rules: &[Rule],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, PromError> {
    let start = crate::timemath::before(now, SERIES_LOOKBACK);
    let mut answers = SeriesAnswers::new();
    let mut out = Vec::new();
    for rule in rules {
        for q in classify::series_questions(rule) {
            if answers.contains_key(&q) {
                continue;
            }
            let a = match prom.series(&q, start, now).await {
                Ok(s) => SeriesAnswer::Count(s.len()),
                Err(PromError::Api {
                    error_type, error, ..
                }) => SeriesAnswer::Refused(format!("{error_type}: {error}")),
                Err(e) => return Err(e),
            };
            answers.insert(q, a);
        }
        out.extend(classify::classify_rule(rule, &answers));
    }
    Ok(out)
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
        if matches!(c.kind, CriterionKind::Snapshot) {
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
