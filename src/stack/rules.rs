//! The local copy of the platform's structural alert rules.

use crate::spec::template::{self, Vars};

use super::StackError;

/// `rules/local-structural.yml`, embedded so the binary needs no data files.
pub const LOCAL_RULES_TEMPLATE: &str = include_str!("../../rules/local-structural.yml");

/// The alert names the local rules define, in file order.
pub const STRUCTURAL_ALERTS: [&str; 7] = [
    "WorkerImagePullBackOff",
    "WorkerCrashLoopBackOff",
    "NATSConsumerLagUnbounded",
    "KEDAScalerError",
    "OTelCollectorDown",
    "OrchestratorDown",
    "NATSStreamUnhealthy",
];

/// Renders the local rules with `vars` (needs `namespace` and `stream`).
///
/// Values land inside PromQL string matchers and YAML double-quoted
/// strings, so only name characters are accepted: a namespace or stream
/// name never needs more, and nothing can then change the rules' meaning.
pub fn render_local_rules(vars: &Vars) -> Result<String, StackError> {
    for name in template::variables(LOCAL_RULES_TEMPLATE) {
        if let Some(value) = vars.get(name) {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(StackError::RulesTemplate(format!(
                    "variable `{name}` is {value:?}; it must be a non-empty name of letters, digits, '_', '-' or '.'"
                )));
            }
        }
    }
    template::render(LOCAL_RULES_TEMPLATE, vars)
        .map_err(|missing| StackError::RulesTemplate(format!("variable `{missing}` has no value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(ns: &str, stream: &str) -> Vars {
        Vars::from([
            ("namespace".to_string(), ns.to_string()),
            ("stream".to_string(), stream.to_string()),
        ])
    }

    #[test]
    fn template_uses_exactly_namespace_and_stream() {
        let mut used = template::variables(LOCAL_RULES_TEMPLATE);
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, vec!["namespace", "stream"]);
    }

    #[test]
    fn renders_every_alert_with_values_filled_and_prometheus_templates_kept() {
        let out = render_local_rules(&vars("daedalus", "DAEDALUS_TASKS")).unwrap();
        for alert in STRUCTURAL_ALERTS {
            assert!(
                out.contains(&format!("- alert: {alert}\n")),
                "{alert} missing"
            );
        }
        assert_eq!(out.matches("- alert: ").count(), STRUCTURAL_ALERTS.len());
        assert_eq!(out.matches("namespace: \"daedalus\"").count(), 7);
        assert!(out.contains(r#"nats_consumer_num_pending{stream="DAEDALUS_TASKS"} > 100"#));
        assert!(out.contains(r#"keda_scaler_errors_total{namespace="daedalus"}[10s]"#));
        assert!(out.contains("{{ $labels.consumer_name }}"));
        assert!(template::variables(&out).is_empty());
    }

    #[test]
    fn missing_variable_is_named() {
        let only_ns = Vars::from([("namespace".to_string(), "daedalus".to_string())]);
        let msg = render_local_rules(&only_ns).unwrap_err().to_string();
        assert!(msg.contains("`stream` has no value"), "{msg}");
        assert!(msg.contains("rules/local-structural.yml"), "{msg}");
    }

    #[test]
    fn values_that_could_change_the_rules_are_refused() {
        for bad in ["", "a\"b", "x\"} or vector(1) #", "two words", "a\nb"] {
            let msg = render_local_rules(&vars("daedalus", bad))
                .unwrap_err()
                .to_string();
            assert!(msg.contains("`stream`"), "{bad:?}: {msg}");
        }
    }
}
