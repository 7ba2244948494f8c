//! Snapshot criteria (a criterion without a query; AC5 of an acceptance
//! spec: "the snapshot is the proof"). What became of the run's Grafana
//! snapshot, and the one pure function that decides such a criterion from
//! it: [`snapshot_verdict`]. Commands take the snapshot (I/O) and pass its
//! outcome in; nothing else decides a snapshot criterion.

use crate::clients::grafana::{GrafanaError, SnapshotInfo};
use crate::model::snapshot::{panel_counts, PanelStatus};
use crate::model::Verdict;
use crate::report::model::CriterionResult;
use crate::report::model::Link;
use crate::spec::criteria::{Criterion, CriterionKind};
use serde::{Deserialize, Serialize};

/// A snapshot criterion until the Grafana snapshot step decides it.
pub const SNAPSHOT_PENDING: &str = "the Grafana snapshot step has not run yet";

/// What became of the run's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum SnapshotOutcome {
    /// Created; `verified` says whether reading it back worked.
    Created(SnapshotInfo),
    /// The target has no Grafana (e.g. the local stack): the reason.
    NotConfigured(String),
    /// Creating it failed before a snapshot existed (the error's text:
    /// bad token, dashboard missing, Grafana unreachable).
    Failed(String),
}

impl SnapshotOutcome {
    /// The snapshot's URL, when one was created (for `snapshot_url` outputs).
    pub fn url(&self) -> Option<&str> {
        match self {
            SnapshotOutcome::Created(info) => Some(&info.url),
            _ => None,
        }
    }
}

impl From<Result<SnapshotInfo, GrafanaError>> for SnapshotOutcome {
    /// `snapshot_run`'s result as the report records it: an error before
    /// anything was created becomes `Failed` with the error's text.
    fn from(r: Result<SnapshotInfo, GrafanaError>) -> Self {
        match r {
            Ok(info) => SnapshotOutcome::Created(info),
            Err(e) => SnapshotOutcome::Failed(e.to_string()),
        }
    }
}

/// A snapshot criterion's verdict and its reason. `None`: the snapshot step
/// has not run (yet), so `pending`. A snapshot passes only when it was
/// created, read back **and** holds data: at least one panel with series
/// and no panel whose queries all failed. A snapshot without data, with
/// broken panels or not readable fails (the proof is not there, whatever
/// the reason); no Grafana on the target skips, or fails when `require`
/// (`--require-snapshot`); a Grafana error before anything was created is
/// a dependency `error`.
pub fn snapshot_verdict(outcome: Option<&SnapshotOutcome>, require: bool) -> (Verdict, String) {
    let Some(outcome) = outcome else {
        return (Verdict::Pending, SNAPSHOT_PENDING.to_string());
    };
    match outcome {
        SnapshotOutcome::Created(info) if info.verified => {
            let (data, no_data, errors) = panel_counts(&info.panel_data);
            let counts = format!(
                "{} panel(s): {data} with data, {no_data} without data, {errors} with errors; {} series",
                info.panels, info.series
            );
            let what = format!(
                "snapshot {} of dashboard `{}`",
                info.url, info.dashboard_uid
            );
            if data == 0 || info.series == 0 {
                return (
                    Verdict::Fail,
                    format!(
                        "{what} was created and read back but holds no data, so it proves nothing: {counts}. \
                         Check that the dashboard's queries match this target's metrics over the run \
                         window (variables and notes in the snapshot section)"
                    ),
                );
            }
            if errors > 0 {
                let broken: Vec<String> = info
                    .panel_data
                    .iter()
                    .filter(|p| p.status() == PanelStatus::Errors)
                    .map(|p| p.title.clone())
                    .take(5)
                    .collect();
                return (
                    Verdict::Fail,
                    format!(
                        "{what} was created and read back, but every query of {errors} panel(s) failed ({}): {counts}; see the snapshot section's notes",
                        broken.join(", ")
                    ),
                );
            }
            let mut reason = format!("{what} created and read back: {counts}");
            if !info.notes.is_empty() {
                reason.push_str(&format!(
                    "; {} note(s), see the snapshot section",
                    info.notes.len()
                ));
            }
            (Verdict::Pass, reason)
        }
        SnapshotOutcome::Created(info) => {
            let why = info
                .notes
                .last()
                .cloned()
                .unwrap_or_else(|| "Grafana did not serve it back".to_string());
            (
                Verdict::Fail,
                format!(
                    "snapshot {} was created but reading it back failed, so it proves nothing yet: {why}",
                    info.url
                ),
            )
        }
        SnapshotOutcome::NotConfigured(reason) if require => (
            Verdict::Fail,
            format!("a snapshot is required (--require-snapshot) but none can be taken: {reason}"),
        ),
        SnapshotOutcome::NotConfigured(reason) => {
            (Verdict::Skipped, format!("no snapshot taken: {reason}"))
        }
        SnapshotOutcome::Failed(error) => (
            Verdict::Error,
            format!("creating the Grafana snapshot failed: {error}"),
        ),
    }
}

/// Decides the snapshot criteria among `results` (evaluated from
/// `criteria`, so `pending` until now) by [`snapshot_verdict`]; the other
/// criteria are left as they are.
pub fn decide_snapshot_criteria(
    results: &mut [CriterionResult],
    criteria: &[Criterion],
    outcome: &SnapshotOutcome,
    require: bool,
) {
    let (verdict, reason) = snapshot_verdict(Some(outcome), require);
    let is_snapshot = |id: &str| {
        criteria
            .iter()
            .any(|c| c.id == id && matches!(c.kind, CriterionKind::Snapshot))
    };
    for r in results.iter_mut().filter(|r| is_snapshot(&r.id)) {
        r.verdict = verdict;
        r.reason = reason.clone();
        if let SnapshotOutcome::Created(info) = outcome {
            // The proof is the snapshot of the dashboard it was taken of,
            // not whatever dashboard the criterion's evidence names.
            r.evidence
                .retain(|l| !l.label.starts_with("Grafana dashboard"));
            r.evidence.insert(
                0,
                Link {
                    label: format!("Grafana snapshot of dashboard {}", info.dashboard_uid),
                    url: Some(info.url.clone()),
                },
            );
        }
    }
}

/// The snapshot's name: says which target and which run it proves.
pub fn snapshot_name(dashboard_title: &str, target: &str, run_id: &str) -> String {
    format!("firedrill {target} {run_id}: {dashboard_title}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::PanelData;

    fn info(verified: bool, notes: &[&str]) -> SnapshotInfo {
        SnapshotInfo {
            url: "https://grafana.example/dashboard/snapshot/abc".into(),
            key: "abc".into(),
            delete_url: "https://grafana.example/api/snapshots-delete/SECRET".into(),
            dashboard_uid: "fleet-overview".into(),
            name: "firedrill aks-test r1: Fleet".into(),
            expires_at: None,
            panels: 4,
            series: 9,
            verified,
            notes: notes.iter().map(|s| s.to_string()).collect(),
            panel_data: vec![
                PanelData {
                    title: "\"Tasks\"".into(),
                    queries: 2,
                    failed: 0,
                    series: 9,
                },
                PanelData {
                    title: "\"Logs\"".into(),
                    queries: 0,
                    failed: 0,
                    series: 0,
                },
            ],
            variables: Vec::new(),
        }
    }

    /// Created and read back, but nothing in it (all real dashboards did
    /// this before variables were resolved).
    fn empty_info() -> SnapshotInfo {
        let mut i = info(true, &[]);
        i.series = 0;
        for p in &mut i.panel_data {
            p.series = 0;
        }
        i.panel_data.push(PanelData {
            title: "\"Broken\"".into(),
            queries: 1,
            failed: 1,
            series: 0,
        });
        i
    }

    /// Data in some panels, but one panel's queries all failed.
    fn broken_info() -> SnapshotInfo {
        let mut i = info(true, &[]);
        i.panel_data.push(PanelData {
            title: "\"Broken\"".into(),
            queries: 2,
            failed: 2,
            series: 0,
        });
        i
    }

    #[test]
    fn snapshot_verdict_table() {
        let cases: Vec<(SnapshotOutcome, bool, Verdict, &str)> = vec![
            (
                SnapshotOutcome::Created(info(true, &[])),
                false,
                Verdict::Pass,
                "created and read back: 4 panel(s): 1 with data, 1 without data, 0 with errors; 9 series",
            ),
            (
                SnapshotOutcome::Created(empty_info()),
                false,
                Verdict::Fail,
                "holds no data, so it proves nothing: 4 panel(s): 0 with data, 2 without data, 1 with errors; 0 series",
            ),
            (
                SnapshotOutcome::Created(broken_info()),
                true,
                Verdict::Fail,
                "every query of 1 panel(s) failed (\"Broken\")",
            ),
            (
                SnapshotOutcome::Created(info(true, &["panel \"x\" has no data"])),
                true,
                Verdict::Pass,
                "1 note(s)",
            ),
            (
                SnapshotOutcome::Created(info(false, &["Snapshot not found"])),
                false,
                Verdict::Fail,
                "reading it back failed, so it proves nothing yet: Snapshot not found",
            ),
            (
                SnapshotOutcome::Created(info(false, &[])),
                true,
                Verdict::Fail,
                "did not serve it back",
            ),
            (
                SnapshotOutcome::NotConfigured("target local has no grafana_url".into()),
                false,
                Verdict::Skipped,
                "no snapshot taken: target local has no grafana_url",
            ),
            (
                SnapshotOutcome::NotConfigured("target local has no grafana_url".into()),
                true,
                Verdict::Fail,
                "required (--require-snapshot)",
            ),
            (
                SnapshotOutcome::Failed("Grafana at http://g rejected the token".into()),
                false,
                Verdict::Error,
                "rejected the token",
            ),
            (
                SnapshotOutcome::Failed("unreachable".into()),
                true,
                Verdict::Error,
                "snapshot failed: unreachable",
            ),
        ];
        for (outcome, require, want, reason_part) in cases {
            let (got, reason) = snapshot_verdict(Some(&outcome), require);
            assert_eq!(got, want, "{outcome:?} require={require}");
            assert!(reason.contains(reason_part), "{reason}");
            assert!(!reason.contains("SECRET"), "delete URL leaked: {reason}");
        }
    }

    #[test]
    fn pending_until_the_snapshot_step_runs() {
        for require in [false, true] {
            assert_eq!(
                snapshot_verdict(None, require),
                (Verdict::Pending, SNAPSHOT_PENDING.to_string())
            );
        }
    }

    #[test]
    fn decides_only_the_snapshot_criteria() {
        use crate::spec::criteria::{CmpOp, Condition, Evidence, OnEmpty};
        let criterion = |id: &str, kind: CriterionKind| Criterion {
            id: id.into(),
            title: id.into(),
            kind,
            evidence: Evidence::default(),
            regression: None,
            source: crate::spec::SourceLoc {
                file: "acceptance/phase5.toml".into(),
                line: 1,
            },
        };
        let promql = CriterionKind::Promql {
            query_template: "up".into(),
            pass_if: Condition {
                op: CmpOp::Gt,
                threshold: 0.0,
            },
            on_empty: OnEmpty::Fail,
        };
        let criteria = [
            criterion("AC1", promql),
            criterion("AC5", CriterionKind::Snapshot),
        ];
        let mut results: Vec<CriterionResult> = criteria
            .iter()
            .map(crate::accept::verdict::snapshot_pending)
            .collect();
        results[0].verdict = Verdict::Fail;
        results[0].reason = "decided by its query".into();
        let outcome = SnapshotOutcome::Created(info(true, &[]));
        decide_snapshot_criteria(&mut results, &criteria, &outcome, true);
        assert_eq!(results[0].verdict, Verdict::Fail);
        assert_eq!(results[0].reason, "decided by its query");
        assert_eq!(
            (results[1].verdict, results[1].reason.clone()),
            snapshot_verdict(Some(&outcome), true)
        );
        // The evidence is the snapshot of the dashboard it was taken of.
        let mut other = info(true, &[]);
        other.dashboard_uid = "targets-own-uid".into();
        results[1].evidence = vec![Link {
            label: "Grafana dashboard fleet-overview".into(),
            url: Some("https://grafana.example/d/fleet-overview".into()),
        }];
        decide_snapshot_criteria(
            &mut results,
            &criteria,
            &SnapshotOutcome::Created(other),
            true,
        );
        assert_eq!(results[1].evidence.len(), 1, "{:?}", results[1].evidence);
        assert_eq!(
            results[1].evidence[0].label,
            "Grafana snapshot of dashboard targets-own-uid"
        );
        assert_eq!(
            results[1].evidence[0].url.as_deref(),
            Some("https://grafana.example/dashboard/snapshot/abc")
        );
    }

    #[test]
    fn debug_redacts_the_delete_url_but_json_keeps_it() {
        let i = info(true, &[]);
        let dbg = format!("{i:?} {:?}", SnapshotOutcome::Created(i.clone()));
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        let json = serde_json::to_value(SnapshotOutcome::Created(i)).unwrap();
        assert_eq!(json["status"], "created");
        assert_eq!(
            json["detail"]["delete_url"],
            "https://grafana.example/api/snapshots-delete/SECRET"
        );
        let back: SnapshotOutcome = serde_json::from_value(json).unwrap();
        assert!(matches!(back, SnapshotOutcome::Created(ref i) if i.verified));
        let nc = serde_json::to_value(SnapshotOutcome::NotConfigured("why".into())).unwrap();
        assert_eq!(
            nc,
            serde_json::json!({"status": "not_configured", "detail": "why"})
        );
    }

    #[test]
    fn name_carries_target_and_run() {
        assert_eq!(
            snapshot_name("Fleet overview", "aks-test", "20261123-100000-ab12"),
            "firedrill aks-test 20261123-100000-ab12: Fleet overview"
        );
    }
}
