//! What a drill's fault touches, and which drills may run at the same time
//! (`--parallel`). Pure: specs in, groups out; table-tested below.
//!
//! A drill's footprint comes from its fault alone: a Kubernetes object
//! (kind, namespace, name), a fleet switch, or what an `exec` spec declares
//! in `touches` (an `exec` fault without it is opaque and runs alone). Two
//! drills may share a group only when their footprints are disjoint, they
//! expect different alerts, and neither is opaque.

use crate::spec::drill::{DrillSpec, Fault};
use std::collections::BTreeSet;

/// What one drill's fault touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// Canonical names of what the fault changes, e.g.
    /// `kubernetes ScaledJob daedalus/daedalus-worker`, `fleet stream-unhealthy`.
    pub touches: BTreeSet<String>,
    /// Nothing is known about what it changes: it runs alone.
    pub opaque: bool,
}

/// The canonical name of a Kubernetes object, as `exec` specs may declare
/// it too (`touches = ["kubernetes Deployment ns/name"]`). The kind keeps
/// its case; the API group is left out (one kind names one resource).
pub fn kube_object(kind: &str, namespace: &str, name: &str) -> String {
    format!("kubernetes {kind} {namespace}/{name}")
}

/// The footprint of `fault`.
pub fn footprint(fault: &Fault) -> Footprint {
    let one = |s: String| Footprint {
        touches: BTreeSet::from([s]),
        opaque: false,
    };
    match fault {
        Fault::Fleet { fault } => one(format!("fleet {fault}")),
        Fault::KubernetesPatch(p) => one(kube_object(&p.object_kind, &p.namespace, &p.name)),
        Fault::KubernetesScale(s) => {
            one(kube_object(s.object_kind.as_str(), &s.namespace, &s.name))
        }
        Fault::Exec(e) => Footprint {
            touches: e.touches.iter().cloned().collect(),
            opaque: e.touches.is_empty(),
        },
    }
}

impl Footprint {
    /// One line for the plan: what it touches, or why it runs alone.
    pub fn describe(&self) -> String {
        if self.opaque {
            "exec, declares no `touches`: runs alone".into()
        } else {
            self.touches.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

/// Why `a` and `b` may not run at the same time, if they may not.
pub fn conflict(a: &DrillSpec, b: &DrillSpec) -> Option<String> {
    if a.alert == b.alert {
        return Some(format!("both expect {}", a.alert));
    }
    let (fa, fb) = (footprint(&a.fault), footprint(&b.fault));
    if fa.opaque {
        return Some(format!("{}'s exec fault declares no `touches`", a.name));
    }
    if fb.opaque {
        return Some(format!("{}'s exec fault declares no `touches`", b.name));
    }
    // Case-blind: a declared "kubernetes deployment ns/o" is that Deployment
    // (a false conflict only costs time; a missed one, a wrong verdict).
    let theirs: BTreeSet<String> = fb.touches.iter().map(|t| t.to_lowercase()).collect();
    let shared: Vec<&str> = fa
        .touches
        .iter()
        .filter(|t| theirs.contains(&t.to_lowercase()))
        .map(String::as_str)
        .collect();
    if !shared.is_empty() {
        return Some(format!("both touch {}", shared.join(", ")));
    }
    None
}

/// Drills (indices into `plans`) that run together, in the order the groups
/// run. First fit, longest deadline first: a group lasts as long as its
/// longest drill, so long drills are put together where they can be. No two
/// drills of a group conflict ([`conflict`]). Within a group, and between
/// groups of equal weight, the plans' order is kept.
pub fn plan_groups(plans: &[DrillSpec]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    // Stable: equal deadlines keep the plans' order.
    order.sort_by_key(|&i| std::cmp::Reverse(plans[i].deadline));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let fits = |g: &Vec<usize>| g.iter().all(|&j| conflict(&plans[i], &plans[j]).is_none());
        match groups.iter_mut().find(|g| fits(g)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::drill::{ExecFault, FleetFault, KubernetesPatch, KubernetesScale, ScaleKind};
    use std::time::Duration;

    fn drill(name: &str, alert: &str, deadline_s: u64, fault: Fault) -> DrillSpec {
        DrillSpec {
            name: name.into(),
            alert: alert.into(),
            expect_labels: Default::default(),
            deadline: Duration::from_secs(deadline_s),
            resolve_timeout: Duration::from_secs(10),
            trials: 1,
            silence: false,
            expect_receiver: None,
            regression: None,
            fault,
            trigger: None,
            source: crate::spec::error::SourceLoc {
                file: format!("{name}.toml").into(),
                line: 1,
            },
            fault_line: 1,
        }
    }

    fn patch(kind: &str, ns: &str, name: &str, pointer: &str) -> Fault {
        Fault::KubernetesPatch(KubernetesPatch {
            api_version: "keda.sh/v1alpha1".into(),
            object_kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            pointer: pointer.into(),
            value: serde_json::json!("x"),
        })
    }

    fn scale(ns: &str, name: &str) -> Fault {
        Fault::KubernetesScale(KubernetesScale {
            object_kind: ScaleKind::Deployment,
            namespace: ns.into(),
            name: name.into(),
            replicas: 0,
        })
    }

    fn exec(touches: &[&str]) -> Fault {
        Fault::Exec(ExecFault {
            inject: vec!["true".into()],
            revert: vec!["true".into()],
            check: None,
            timeout: Duration::from_secs(1),
            touches: touches.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn names(plans: &[DrillSpec], groups: &[Vec<usize>]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|&i| plans[i].name.clone()).collect())
            .collect()
    }

    #[test]
    fn footprints_come_from_the_fault() {
        let cases = [
            (
                patch("ScaledJob", "ns", "w", "/spec/a"),
                vec!["kubernetes ScaledJob ns/w"],
                false,
            ),
            (scale("ns", "o"), vec!["kubernetes Deployment ns/o"], false),
            (
                Fault::Fleet {
                    fault: FleetFault::StreamUnhealthy,
                },
                vec!["fleet stream-unhealthy"],
                false,
            ),
            (exec(&[]), vec![], true),
            (exec(&["db", "cache"]), vec!["cache", "db"], false),
        ];
        for (fault, touches, opaque) in cases {
            let f = footprint(&fault);
            let got: Vec<&str> = f.touches.iter().map(String::as_str).collect();
            assert_eq!(got, touches, "{fault:?}");
            assert_eq!(f.opaque, opaque, "{fault:?}");
        }
    }

    #[test]
    fn groups_are_formed_from_footprints_and_alerts() {
        // (drills as (name, alert, deadline, fault); expected groups)
        type Case = (Vec<DrillSpec>, Vec<Vec<&'static str>>);
        let cases: Vec<Case> = vec![
            // Two drills on the same object are never grouped, even on
            // different fields.
            (
                vec![
                    drill("a", "A", 10, patch("ScaledJob", "ns", "w", "/spec/image")),
                    drill("b", "B", 10, patch("ScaledJob", "ns", "w", "/spec/command")),
                ],
                vec![vec!["a"], vec!["b"]],
            ),
            // A patch and a scale of the same Deployment are the same object.
            (
                vec![
                    drill("a", "A", 10, patch("Deployment", "ns", "o", "/spec/x")),
                    drill("b", "B", 10, scale("ns", "o")),
                ],
                vec![vec!["a"], vec!["b"]],
            ),
            // Same name in another namespace, or another kind: disjoint.
            (
                vec![
                    drill("a", "A", 10, scale("ns", "o")),
                    drill("b", "B", 10, scale("other", "o")),
                    drill("c", "C", 10, patch("ScaledJob", "ns", "o", "/x")),
                ],
                vec![vec!["a", "b", "c"]],
            ),
            // Disjoint objects but the same alert: never together.
            (
                vec![
                    drill("a", "A", 10, scale("ns", "o")),
                    drill("b", "A", 10, scale("ns", "p")),
                ],
                vec![vec!["a"], vec!["b"]],
            ),
            // An exec fault without `touches` runs alone.
            (
                vec![
                    drill("a", "A", 10, exec(&[])),
                    drill("b", "B", 10, scale("ns", "o")),
                    drill("c", "C", 10, scale("ns", "p")),
                ],
                vec![vec!["a"], vec!["b", "c"]],
            ),
            // Declared touches group like objects, and may name one (in
            // any case).
            (
                vec![
                    drill("a", "A", 10, exec(&["kubernetes deployment ns/o"])),
                    drill("b", "B", 10, scale("ns", "o")),
                    drill("c", "C", 10, exec(&["db"])),
                ],
                vec![vec!["a", "c"], vec!["b"]],
            ),
            // Longest deadline first: the two long drills share a group.
            (
                vec![
                    drill("short1", "A", 10, scale("ns", "w")),
                    drill("long1", "B", 60, scale("ns", "w")),
                    drill("long2", "C", 60, scale("ns", "x")),
                    drill("short2", "D", 10, scale("ns", "x")),
                ],
                vec![vec!["long1", "long2"], vec!["short1", "short2"]],
            ),
            // The seven shipped drills: four patch the one ScaledJob.
            (
                vec![
                    drill(
                        "collector-down",
                        "OTelCollectorDown",
                        84,
                        scale("ns", "collector"),
                    ),
                    drill(
                        "consumer-stop",
                        "NATSConsumerLagUnbounded",
                        36,
                        patch("ScaledJob", "ns", "w", "/p"),
                    ),
                    drill(
                        "keda-error",
                        "KEDAScalerError",
                        36,
                        patch("ScaledJob", "ns", "w", "/s"),
                    ),
                    drill(
                        "orchestrator-down",
                        "OrchestratorDown",
                        48,
                        scale("ns", "orchestrator"),
                    ),
                    drill(
                        "stream-unhealthy",
                        "NATSStreamUnhealthy",
                        144,
                        Fault::Fleet {
                            fault: FleetFault::StreamUnhealthy,
                        },
                    ),
                    drill(
                        "worker-crash",
                        "WorkerCrashLoopBackOff",
                        144,
                        patch("ScaledJob", "ns", "w", "/c"),
                    ),
                    drill(
                        "worker-image-tag",
                        "WorkerImagePullBackOff",
                        36,
                        patch("ScaledJob", "ns", "w", "/i"),
                    ),
                ],
                vec![
                    vec![
                        "collector-down",
                        "orchestrator-down",
                        "stream-unhealthy",
                        "worker-crash",
                    ],
                    vec!["consumer-stop"],
                    vec!["keda-error"],
                    vec!["worker-image-tag"],
                ],
            ),
            (vec![], vec![]),
        ];
        for (plans, want) in cases {
            let groups = plan_groups(&plans);
            assert_eq!(names(&plans, &groups), want);
            for g in &groups {
                for (x, &i) in g.iter().enumerate() {
                    for &j in &g[x + 1..] {
                        assert_eq!(conflict(&plans[i], &plans[j]), None);
                    }
                }
            }
        }
    }

    #[test]
    fn a_conflict_says_why() {
        let a = drill("a", "A", 10, patch("ScaledJob", "ns", "w", "/x"));
        let b = drill("b", "B", 10, patch("ScaledJob", "ns", "w", "/y"));
        assert_eq!(
            conflict(&a, &b).as_deref(),
            Some("both touch kubernetes ScaledJob ns/w")
        );
        let c = drill("c", "A", 10, scale("ns", "z"));
        assert_eq!(conflict(&a, &c).as_deref(), Some("both expect A"));
        let d = drill("d", "D", 10, exec(&[]));
        assert_eq!(
            conflict(&a, &d).as_deref(),
            Some("d's exec fault declares no `touches`")
        );
    }
}
