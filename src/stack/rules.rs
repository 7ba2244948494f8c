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

/// Renders the shipped local rules with `vars` (the fleet's names).
pub fn render_local_rules(vars: &Vars) -> Result<String, StackError> {
    render_rules("rules/local-structural.yml", LOCAL_RULES_TEMPLATE, vars)
}

/// Renders one rule file's `{{var}}` templates with `vars`; `file` names it
/// in errors.
///
/// Values land inside PromQL string matchers and YAML double-quoted
/// strings, so only name characters are accepted: a namespace, stream or
/// object name never needs more, and nothing can then change the rules'
/// meaning. Prometheus' own `{{ $labels.x }}` templates are kept.
pub fn render_rules(file: &str, text: &str, vars: &Vars) -> Result<String, StackError> {
    let err = |detail: String| StackError::RulesTemplate {
        file: file.to_string(),
        detail,
    };
    for name in template::variables(text) {
        if let Some(value) = vars.get(name) {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(err(format!(
                    "variable `{name}` is {value:?}; it must be a non-empty name of letters, digits, '_', '-' or '.'"
                )));
            }
        }
    }
    template::render(text, vars).map_err(|missing| {
        err(format!(
            "variable `{missing}` has no value; set it in the target's [variables] (or with --var {missing}=...)"
        ))
    })
}

/// Rule files written under `check_dir`, each under the name Prometheus
/// will read it by; [`Staged::check`] runs promtool on them.
pub struct Staged {
    /// (the caller's name, the staged file name, the text, the staged path).
    files: Vec<(String, String, String, std::path::PathBuf)>,
}

/// Writes each rendered rule file under `check_dir` with a file name of
/// its own (the user's stem where unique, for readable findings).
pub fn stage(
    files: &[(String, String)],
    check_dir: &std::path::Path,
) -> Result<Staged, StackError> {
    let mut staged = Staged { files: Vec::new() };
    if files.is_empty() {
        return Ok(staged);
    }
    std::fs::create_dir_all(check_dir).map_err(|source| StackError::WriteFile {
        path: check_dir.to_path_buf(),
        source,
    })?;
    for (i, (name, text)) in files.iter().enumerate() {
        let stem: String = std::path::Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let plain = format!("{stem}.yml");
        let taken = staged.files.iter().any(|(_, n, _, _)| *n == plain);
        let staged_name = if taken {
            format!("{i:02}-{stem}.yml")
        } else {
            plain
        };
        let path = check_dir.join(&staged_name);
        std::fs::write(&path, text).map_err(|source| StackError::WriteFile {
            path: path.clone(),
            source,
        })?;
        staged
            .files
            .push((name.clone(), staged_name, text.clone(), path));
    }
    Ok(staged)
}

impl Staged {
    /// (staged file name, text) of each file.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .map(|(_, staged, text, _)| (staged.as_str(), text.as_str()))
    }

    /// `promtool check rules` on each file (blocking); a rejection quotes
    /// promtool with the caller's name for the file.
    pub fn check(&self, promtool: &std::path::Path) -> Result<(), StackError> {
        for (name, _, _, path) in &self.files {
            let out = std::process::Command::new(promtool)
                .arg("check")
                .arg("rules")
                .arg(path)
                .output()
                .map_err(|e| StackError::RulesInvalid {
                    file: name.clone(),
                    output: format!("could not run {}: {e}", promtool.display()),
                })?;
            if !out.status.success() {
                let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
                output.push_str(&String::from_utf8_lossy(&out.stderr));
                // promtool names the staged copy; the user knows the original.
                let output = output.replace(&path.display().to_string(), name);
                return Err(StackError::RulesInvalid {
                    file: name.clone(),
                    output: output.trim().to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(ns: &str, stream: &str) -> Vars {
        Vars::from([
            ("namespace".to_string(), ns.to_string()),
            ("stream".to_string(), stream.to_string()),
            (
                "worker_pod_prefix".to_string(),
                "daedalus-worker-".to_string(),
            ),
            (
                "orchestrator_deployment".to_string(),
                "daedalus-orchestrator".to_string(),
            ),
            (
                "collector_deployment".to_string(),
                "otel-collector".to_string(),
            ),
        ])
    }

    #[test]
    fn template_uses_exactly_the_fleet_names() {
        let mut used = template::variables(LOCAL_RULES_TEMPLATE);
        used.sort_unstable();
        used.dedup();
        assert_eq!(
            used,
            vec![
                "collector_deployment",
                "namespace",
                "orchestrator_deployment",
                "stream",
                "worker_pod_prefix"
            ]
        );
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
        let mut no_stream = vars("daedalus", "x");
        no_stream.remove("stream");
        let msg = render_local_rules(&no_stream).unwrap_err().to_string();
        assert!(msg.contains("`stream` has no value"), "{msg}");
        assert!(msg.contains("rules/local-structural.yml"), "{msg}");
        assert!(msg.contains("--var stream="), "{msg}");
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
