//! Runs criteria against a live Prometheus, LogQL ones against the
//! target's Loki (thin I/O around [`super::verdict`]).

use super::verdict::{
    evaluate, evaluate_answer, evidence_links, missing_variable, render_query, snapshot_pending,
    unsafe_variable,
};
use crate::clients::loki::{explore_url, Loki};
use crate::clients::prometheus::Prometheus;
use crate::probe::SentinelRef;
use crate::report::model::{CriterionResult, RunWindow};
use crate::spec::criteria::{Criterion, QueryLanguage};
use crate::spec::target::Target;
use crate::spec::template::{QueryRenderError, Vars};
use crate::spec::vars;
use chrono::SecondsFormat;
use std::time::Duration;

/// The run length rounded up to whole seconds, at least 1 (a `[0s]` range
/// is a PromQL error).
pub fn window_seconds(window: RunWindow) -> u64 {
    let ms = (window.end - window.start).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// The run-time template variables (see [`crate::spec::vars`]): `window`
/// (`"37s"`), `start` and `end` (RFC 3339, UTC, milliseconds), and, when the
/// run published one, `sentinel.task_id` and `sentinel.trace_id`.
///
/// Without a sentinel those two are left out rather than set empty: a
/// query such as `x{task_id=""}` would match every series *without* the
/// label and could pass on someone else's data. A criterion that needs
/// them is then verdict `error` ("has no value"). `trace_url` is not set
/// here: [`Target::run_vars`] derives it from the target's
/// `trace_url_template` and `sentinel.trace_id`.
pub fn runtime_vars(window: RunWindow, sentinel: Option<&SentinelRef>) -> Vars {
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut v = Vars::new();
    v.insert(
        vars::WINDOW.to_string(),
        format!("{}s", window_seconds(window)),
    );
    v.insert(vars::START.to_string(), rfc3339(window.start));
    v.insert(vars::END.to_string(), rfc3339(window.end));
    if let Some(s) = sentinel {
        v.insert(vars::SENTINEL_TASK_ID.to_string(), s.task_id.clone());
        v.insert(vars::SENTINEL_TRACE_ID.to_string(), s.trace_id.clone());
    }
    v
}

/// Evaluates every criterion, in order, as an instant query at the window's
/// end. One criterion's error never stops the others; each result carries
/// the rendered query, a Prometheus graph link for it over the window and
/// the evidence links.
pub async fn run_criteria(
    prom: &Prometheus,
    criteria: &[Criterion],
    target: &Target,
    runtime_vars: &Vars,
    window: RunWindow,
) -> Vec<CriterionResult> {
    let run_vars = target.run_vars(runtime_vars);
    let range = Duration::from_secs(window_seconds(window));
    let grafana = target
        .remote()
        .and_then(|r| r.grafana_url.as_ref())
        .map(|u| {
            (
                u.as_str(),
                window.start.timestamp_millis(),
                window.end.timestamp_millis(),
            )
        });
    let loki = target.loki_url.as_ref().map(|u| Loki::new(u.as_str()));
    let mut results = Vec::with_capacity(criteria.len());
    for criterion in criteria {
        let mut result = match render_query(criterion, &run_vars) {
            Ok(None) => snapshot_pending(criterion),
            Err(QueryRenderError::Missing(name)) => missing_variable(criterion, &name),
            Err(QueryRenderError::Unsafe { name, reason }) => {
                unsafe_variable(criterion, &name, &reason)
            }
            Ok(Some(query)) => match (criterion.kind.query(), &loki) {
                (Some((QueryLanguage::Logql, ..)), Some(loki)) => {
                    let answer = loki.query(&query, window.end).await;
                    let mut r = evaluate_answer(criterion, &query, answer.map_err(|e| e.to_string()));
                    r.query_url = grafana.map(|(base, _, _)| {
                        explore_url(
                            base,
                            target.loki_datasource_uid.as_deref(),
                            &query,
                            window.start,
                            window.end,
                        )
                    });
                    r
                }
                // Load refuses a logql criterion on a target without
                // loki_url; a plan built otherwise still never passes.
                (Some((QueryLanguage::Logql, ..)), None) => evaluate_answer(
                    criterion,
                    &query,
                    Err(format!(
                        "target `{}` has no loki_url to ask this LogQL query; add loki_url to [targets.{}]",
                        target.name, target.name
                    )),
                ),
                _ => {
                    let answer = prom.query(&query, window.end).await;
                    let mut r = evaluate(criterion, &query, answer);
                    r.query_url = Some(prom.graph_url(&query, window.end, range));
                    r
                }
            },
        };
        // A snapshot criterion's proof is the target's dashboard (the one
        // the snapshot is taken of), whatever dashboard its evidence names.
        let snapshot_evidence;
        let evidence = match (&criterion.kind, target.dashboard_uid.as_deref()) {
            (crate::spec::criteria::CriterionKind::Snapshot, Some(uid)) => {
                let mut e = criterion.evidence.clone();
                e.dashboard = Some(uid.to_string());
                snapshot_evidence = e;
                &snapshot_evidence
            }
            _ => &criterion.evidence,
        };
        result.evidence = evidence_links(
            evidence,
            &run_vars,
            target.dashboard_uid.as_deref(),
            grafana,
        );
        tracing::info!(
            criterion = %criterion.id,
            verdict = %result.verdict,
            reason = %result.reason,
            "criterion evaluated"
        );
        results.push(result);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window(start: &str, end: &str) -> RunWindow {
        RunWindow {
            start: t(start),
            end: t(end),
        }
    }

    #[test]
    fn window_rounds_up_to_whole_seconds() {
        let cases = [
            ("2026-11-23T10:00:00Z", "2026-11-23T10:00:37Z", 37),
            ("2026-11-23T10:00:00Z", "2026-11-23T10:00:36.001Z", 37),
            ("2026-11-23T10:00:00.900Z", "2026-11-23T10:00:01.000Z", 1),
            ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z", 1),
            ("2026-11-23T10:00:05Z", "2026-11-23T10:00:00Z", 1),
        ];
        for (s, e, want) in cases {
            assert_eq!(window_seconds(window(s, e)), want, "{s} .. {e}");
        }
    }

    #[test]
    fn runtime_vars_fill_every_runtime_name() {
        let w = window("2026-11-23T09:54:49.156Z", "2026-11-23T09:55:25.5Z");
        let sentinel = SentinelRef {
            task_id: "sentinel-1".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        };
        let v = runtime_vars(w, Some(&sentinel));
        assert_eq!(v["window"], "37s");
        assert_eq!(v["start"], "2026-11-23T09:54:49.156Z");
        assert_eq!(v["end"], "2026-11-23T09:55:25.500Z");
        assert_eq!(v["sentinel.task_id"], "sentinel-1");
        assert_eq!(v["sentinel.trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        for name in vars::RUNTIME_VARS {
            assert!(v.contains_key(name), "{name}");
        }
        let v = runtime_vars(w, None);
        assert!(!v.contains_key("sentinel.task_id") && !v.contains_key("sentinel.trace_id"));
    }
}
