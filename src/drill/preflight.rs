//! Checks before any fault is injected, so a drill that cannot pass fails at
//! once instead of waiting out its deadline: the alert rule is loaded, and
//! every metric its expression reads has data.

use crate::clients::prometheus::{PromError, Prometheus, Rule};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum PreflightError {
    #[error("alert {alert} is not loaded in Prometheus at {url}; loaded alerts: {}. Check the drill's alert name, that the rule file is in Prometheus' rule_files and that `promtool check rules` accepts it", list_or_none(.loaded))]
    AlertNotLoaded {
        alert: String,
        url: String,
        loaded: Vec<String>,
    },
    #[error("alert {alert} reads {} with no series in Prometheus at {url} over the last {lookback}: rules that reference non-existent metrics silently never fire, so this drill cannot pass. Check the metric names against the exporters' /metrics and that their scrape targets are up", metrics.join(", "))]
    MetricMissing {
        alert: String,
        metrics: Vec<String>,
        url: String,
        lookback: String,
    },
    #[error("alert {alert}'s rule fails to evaluate in Prometheus at {url}: {error}")]
    RuleUnhealthy {
        alert: String,
        url: String,
        error: String,
    },
    #[error("alert {alert}'s expression cannot be parsed ({reason}): {expr}")]
    Unparsable {
        alert: String,
        expr: String,
        reason: String,
    },
    #[error(transparent)]
    Prometheus(#[from] PromError),
}

impl PreflightError {
    /// Prometheus itself failed (verdict `error`), rather than the stack
    /// being wrong (verdict `fail`).
    pub fn is_dependency(&self) -> bool {
        matches!(self, PreflightError::Prometheus(_))
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// What to do about a required metric with no series in the lookback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingMetrics {
    /// Fail the drill at once, before injecting (the default).
    #[default]
    Fail,
    /// Run the drill anyway and name the metrics if the alert does not fire.
    /// For metrics that exist only while something is broken, as
    /// kube-state-metrics' `kube_pod_container_status_waiting_reason` does
    /// (it has series only for containers that are waiting).
    Warn,
}

/// What preflight learned about the alert.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightInfo {
    pub rules: Vec<Rule>,
    /// Metric names whose series were checked.
    pub metrics: Vec<String>,
    /// Metric names read inside `absent()`: their absence is what the rule
    /// is for, so they are not required to have series.
    pub absent_guarded: Vec<String>,
    /// The longest `for` among the alert's rules.
    pub rule_for: Duration,
    /// Required metrics with no series in the lookback (only with
    /// [`MissingMetrics::Warn`]; with `Fail` they are an error).
    pub missing: Vec<String>,
}

/// Metric names an expression reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricRefs {
    /// Must have data for the rule to ever fire.
    pub required: BTreeSet<String>,
    /// Read inside `absent()`/`absent_over_time()`.
    pub absent_guarded: BTreeSet<String>,
}

/// Metric names an expression reads (see [`crate::promql::selectors`]).
pub fn metric_refs(expr: &str) -> Result<MetricRefs, String> {
    let mut plain = BTreeSet::new();
    let mut guarded = BTreeSet::new();
    for s in crate::promql::selectors(expr)? {
        if let Some(m) = s.metric {
            if s.in_absent {
                guarded.insert(m);
            } else {
                plain.insert(m);
            }
        }
    }
    let required = plain.difference(&guarded).cloned().collect();
    Ok(MetricRefs {
        required,
        absent_guarded: guarded,
    })
}

/// Runs the checks against Prometheus at `now`, looking back `lookback` for series.
pub async fn preflight(
    prom: &Prometheus,
    alert: &str,
    now: DateTime<Utc>,
    lookback: Duration,
    missing_metrics: MissingMetrics,
) -> Result<PreflightInfo, PreflightError> {
    let groups = prom.rules().await?;
    let all: Vec<&Rule> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter(|r| r.kind == "alerting")
        .collect();
    let rules: Vec<Rule> = all
        .iter()
        .filter(|r| r.name == alert)
        .map(|r| (*r).clone())
        .collect();
    if rules.is_empty() {
        let loaded: BTreeSet<String> = all.iter().map(|r| r.name.clone()).collect();
        return Err(PreflightError::AlertNotLoaded {
            alert: alert.to_string(),
            url: prom.base_url().to_string(),
            loaded: loaded.into_iter().collect(),
        });
    }
    if let Some(bad) = rules.iter().find(|r| r.health == "err") {
        return Err(PreflightError::RuleUnhealthy {
            alert: alert.to_string(),
            url: prom.base_url().to_string(),
            error: bad
                .last_error
                .clone()
                .unwrap_or_else(|| "no lastError given".into()),
        });
    }
    let mut refs = MetricRefs::default();
    for r in &rules {
        let m = metric_refs(&r.query).map_err(|reason| PreflightError::Unparsable {
            alert: alert.to_string(),
            expr: r.query.clone(),
            reason,
        })?;
        refs.required.extend(m.required);
        refs.absent_guarded.extend(m.absent_guarded);
    }
    let required: Vec<String> = refs
        .required
        .difference(&refs.absent_guarded)
        .cloned()
        .collect();
    let start = crate::timemath::before(now, lookback);
    let mut missing = Vec::new();
    for m in &required {
        let series = prom
            .series(&format!("{{__name__=\"{m}\"}}"), start, now)
            .await?;
        if series.is_empty() {
            missing.push(m.clone());
        }
    }
    if !missing.is_empty() && missing_metrics == MissingMetrics::Fail {
        return Err(PreflightError::MetricMissing {
            alert: alert.to_string(),
            metrics: missing,
            url: prom.base_url().to_string(),
            lookback: humantime::format_duration(lookback).to_string(),
        });
    }
    let rule_for = rules
        .iter()
        .map(|r| Duration::from_secs_f64(r.duration.max(0.0)))
        .max()
        .unwrap_or_default();
    Ok(PreflightInfo {
        rules,
        metrics: required,
        absent_guarded: refs.absent_guarded.into_iter().collect(),
        rule_for,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metric_names_from_the_seven_structural_alerts() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                r#"kube_pod_container_status_waiting_reason{reason="ImagePullBackOff", pod=~"daedalus-worker-.*"} > 0"#,
                &["kube_pod_container_status_waiting_reason"],
                &[],
            ),
            (
                r#"rate(kube_pod_container_status_restarts_total{pod=~"daedalus-worker-.*"}[10m]) > 0"#,
                &["kube_pod_container_status_restarts_total"],
                &[],
            ),
            (
                r#"delta(nats_consumer_num_pending{stream="tasks"}[10m]) > 0 and nats_consumer_num_pending{stream="tasks"} > 100"#,
                &["nats_consumer_num_pending"],
                &[],
            ),
            (
                r#"rate(keda_scaler_errors_total{namespace="daedalus"}[5m]) > 0"#,
                &["keda_scaler_errors_total"],
                &[],
            ),
            (
                r#"absent(up{job="otel-collector"}) or up{job="otel-collector"} == 0"#,
                &[],
                &["up"],
            ),
            (
                r#"absent(kube_deployment_status_replicas_available{namespace="daedalus", deployment="daedalus-orchestrator"}) or kube_deployment_status_replicas_available{namespace="daedalus", deployment="daedalus-orchestrator"} == 0"#,
                &[],
                &["kube_deployment_status_replicas_available"],
            ),
            (
                r#"nats_stream_consumer_count{stream="tasks"} == 0 and nats_stream_total_messages{stream="tasks"} > 0"#,
                &["nats_stream_consumer_count", "nats_stream_total_messages"],
                &[],
            ),
            (
                r#"sum by (le) (increase({__name__="daedalus_cold_start_seconds_bucket"}[5m])) / ignoring(le) group_left count_values("x", vector(1))"#,
                &["daedalus_cold_start_seconds_bucket"],
                &[],
            ),
        ];
        for (expr, required, guarded) in cases {
            let r = metric_refs(expr).unwrap();
            assert_eq!(r.required, set(required), "{expr}");
            assert_eq!(r.absent_guarded, set(guarded), "{expr}");
        }
        assert!(metric_refs("sum(").is_err());
    }

    fn fixture(name: &str) -> String {
        String::from_utf8(crate::test_fixtures::bytes(&format!("prometheus/{name}"))).unwrap()
    }

    /// A Prometheus double answering with captured bodies.
    async fn prom_double(series_body: &str) -> wiremock::MockServer {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/rules"))
            .respond_with(ResponseTemplate::new(200).set_body_string(fixture("rules-firing.json")))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/series"))
            .respond_with(ResponseTemplate::new(200).set_body_string(fixture(series_body)))
            .mount(&server)
            .await;
        server
    }

    /// [`preflight`] now, over the last hour.
    async fn check(
        prom: &Prometheus,
        alert: &str,
        missing: MissingMetrics,
    ) -> Result<PreflightInfo, PreflightError> {
        preflight(prom, alert, Utc::now(), Duration::from_secs(3600), missing).await
    }

    #[tokio::test]
    async fn passes_when_the_rule_is_loaded_and_its_metric_has_series() {
        let server = prom_double("series.json").await;
        let prom = Prometheus::new(&server.uri());
        let info = check(&prom, "WorkerImagePullBackOff", MissingMetrics::Fail)
            .await
            .unwrap();
        assert_eq!(info.metrics, ["kube_pod_container_status_waiting_reason"]);
        assert_eq!(info.rule_for, Duration::from_secs(5));
        let reqs = server.received_requests().await.unwrap();
        let series = reqs
            .iter()
            .find(|r| r.url.path() == "/api/v1/series")
            .unwrap();
        let q: Vec<(String, String)> = series.url.query_pairs().into_owned().collect();
        assert!(q.contains(&(
            "match[]".into(),
            "{__name__=\"kube_pod_container_status_waiting_reason\"}".into()
        )));
    }

    #[tokio::test]
    async fn unknown_alert_fails_naming_what_is_loaded() {
        let server = prom_double("series.json").await;
        let prom = Prometheus::new(&server.uri());
        let err = check(&prom, "WorkerImagePullBackof", MissingMetrics::Fail)
            .await
            .unwrap_err();
        assert!(!err.is_dependency());
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "alert WorkerImagePullBackof is not loaded in Prometheus at http://127.0.0.1:"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("loaded alerts: OrchestratorDown, WorkerImagePullBackOff"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn metric_without_series_fails_with_the_lesson() {
        let server = prom_double("series-empty.json").await;
        let prom = Prometheus::new(&server.uri());
        let msg = check(&prom, "WorkerImagePullBackOff", MissingMetrics::Fail)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("reads kube_pod_container_status_waiting_reason with no series"),
            "{msg}"
        );
        assert!(msg.contains("over the last 1h"), "{msg}");
        assert!(msg.contains("silently never fire"), "{msg}");
    }

    #[tokio::test]
    async fn missing_metric_can_be_a_warning() {
        let server = prom_double("series-empty.json").await;
        let prom = Prometheus::new(&server.uri());
        let info = check(&prom, "WorkerImagePullBackOff", MissingMetrics::Warn)
            .await
            .unwrap();
        assert_eq!(info.missing, ["kube_pod_container_status_waiting_reason"]);
    }

    #[tokio::test]
    async fn unreachable_prometheus_is_a_dependency_error() {
        let prom = Prometheus::new("http://127.0.0.1:9");
        let err = check(&prom, "X", MissingMetrics::Fail).await.unwrap_err();
        assert!(err.is_dependency(), "{err}");
    }
}
