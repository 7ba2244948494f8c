//! What one drill needs, already rendered from its spec and the target.
//!
//! Mirrors `spec::drill::DrillSpec` field by field (`From<&DrillSpec>`
//! below); nothing here re-validates.

use crate::spec::drill::{DrillSpec, Fault};
use std::collections::BTreeMap;
use std::time::Duration;

/// One induced-failure drill, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillPlan {
    pub name: String,
    /// The Prometheus alert name (`alertname`) that must fire.
    pub alert: String,
    /// Labels the firing alert must carry, templates already filled.
    pub expect_labels: BTreeMap<String, String>,
    /// The alert must be FIRING within this time of the fault being injected.
    pub deadline: Duration,
    /// How long to wait, after revert, for the alert to resolve.
    pub resolve_timeout: Duration,
    pub trials: u32,
    /// Silence the alert in Alertmanager for the drill window.
    pub silence: bool,
    pub fault: FaultPlan,
    pub trigger: Option<TriggerPlan>,
}

/// The fault to induce; one variant per `kind` in the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultPlan {
    /// The reference fleet's HTTP fault switch (`PUT/DELETE <fleet_url>/faults/<fault>`).
    Fleet { fault: String },
    /// Set the value at an RFC 6901 pointer of any namespaced object.
    KubernetesPatch {
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
        pointer: String,
        value: serde_json::Value,
    },
    /// Set `spec.replicas` of a Deployment or StatefulSet.
    KubernetesScale {
        kind: String,
        namespace: String,
        name: String,
        replicas: u32,
    },
    /// Run commands: `inject`, later `revert`; `check` output is journaled as the original state.
    Exec {
        inject: Vec<String>,
        revert: Vec<String>,
        check: Option<Vec<String>>,
        timeout: Duration,
    },
}

impl FaultPlan {
    /// The spec's `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultPlan::Fleet { .. } => "fleet",
            FaultPlan::KubernetesPatch { .. } => "kubernetes-patch",
            FaultPlan::KubernetesScale { .. } => "kubernetes-scale",
            FaultPlan::Exec { .. } => "exec",
        }
    }

    /// One line for reports: what this fault does.
    pub fn describe(&self) -> String {
        match self {
            FaultPlan::Fleet { fault } => format!("fleet fault {fault}"),
            FaultPlan::KubernetesPatch {
                kind,
                namespace,
                name,
                pointer,
                value,
                ..
            } => format!("kubernetes-patch {kind} {namespace}/{name} {pointer} = {value}"),
            FaultPlan::KubernetesScale {
                kind,
                namespace,
                name,
                replicas,
            } => format!("kubernetes-scale {kind} {namespace}/{name} to {replicas} replicas"),
            FaultPlan::Exec { inject, .. } => format!("exec {}", shell_words(inject)),
        }
    }
}

/// Publish sentinels after injecting so the platform starts a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerPlan {
    pub probe: String,
    pub count: Option<u32>,
}

impl From<&DrillSpec> for DrillPlan {
    fn from(s: &DrillSpec) -> Self {
        DrillPlan {
            name: s.name.clone(),
            alert: s.alert.clone(),
            expect_labels: s.expect_labels.clone(),
            deadline: s.deadline,
            resolve_timeout: s.resolve_timeout,
            trials: s.trials,
            silence: s.silence,
            fault: FaultPlan::from(&s.fault),
            trigger: s.trigger.as_ref().map(|t| TriggerPlan {
                probe: t.probe.clone(),
                count: t.count,
            }),
        }
    }
}

impl From<&Fault> for FaultPlan {
    fn from(f: &Fault) -> Self {
        match f {
            Fault::Fleet { fault } => FaultPlan::Fleet {
                fault: fault.as_str().to_string(),
            },
            Fault::KubernetesPatch(p) => FaultPlan::KubernetesPatch {
                api_version: p.api_version.clone(),
                kind: p.object_kind.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                pointer: p.pointer.clone(),
                value: p.value.clone(),
            },
            Fault::KubernetesScale(s) => FaultPlan::KubernetesScale {
                kind: s.object_kind.as_str().to_string(),
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                replicas: s.replicas,
            },
            Fault::Exec(e) => FaultPlan::Exec {
                inject: e.inject.clone(),
                revert: e.revert.clone(),
                check: e.check.clone(),
                timeout: e.timeout,
            },
        }
    }
}

/// `argv` as one shell-quoted line, for humans and manual-recovery text.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let argv = vec!["sh".into(), "-c".into(), "rm -f 'x'".into()];
        assert_eq!(shell_words(&argv), r"sh -c 'rm -f '\''x'\'''");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a/b.c"), "a/b.c");
    }

    #[test]
    fn describes_each_kind() {
        let f = FaultPlan::KubernetesScale {
            kind: "Deployment".into(),
            namespace: "daedalus".into(),
            name: "daedalus-orchestrator".into(),
            replicas: 0,
        };
        assert_eq!(f.kind(), "kubernetes-scale");
        assert_eq!(
            f.describe(),
            "kubernetes-scale Deployment daedalus/daedalus-orchestrator to 0 replicas"
        );
    }

    #[test]
    fn converts_every_repo_drill_spec() {
        let mut opts = crate::spec::LoadOptions::new("local");
        opts.root = env!("CARGO_MANIFEST_DIR").into();
        let plan = crate::spec::load_plan(&opts).unwrap();
        assert_eq!(plan.drills.len(), 7);
        for spec in &plan.drills {
            let p = DrillPlan::from(spec);
            assert_eq!(p.name, spec.name);
            assert_eq!(p.expect_labels["namespace"], "daedalus", "{}", p.name);
            assert!(matches!(p.fault, FaultPlan::Fleet { ref fault } if *fault == p.name));
        }
        let w = DrillPlan::from(plan.drill("worker-image-tag").unwrap());
        assert_eq!(w.alert, "WorkerImagePullBackOff");
        assert_eq!(w.deadline, Duration::from_secs(60));
        assert_eq!(w.trigger.unwrap().probe, "sentinel");
    }
}
