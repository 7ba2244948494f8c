//! The Grafana snapshot that proves a run (AC5 in the Daedalus spec: "the
//! snapshot is the proof"), and the pure verdict over it.

use super::model::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A snapshot firedrill created of a dashboard, scoped to the run window.
///
/// `delete_url` lets whoever holds it delete the snapshot without logging in,
/// so it belongs only in the JSON report (the artifact a run's owner keeps
/// to clean up). Never log it and never render it into the markdown report,
/// the console or the GitHub step summary. For that reason `Debug` prints it
/// redacted: a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Where a reviewer opens the snapshot.
    pub url: String,
    pub key: String,
    /// Deletes the snapshot, no login needed: JSON report only.
    pub delete_url: String,
    pub dashboard_uid: String,
    pub name: String,
    /// `None` when the snapshot never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Panels whose data is embedded.
    pub panels: usize,
    /// Series embedded across all panels.
    pub series: usize,
    /// True once Grafana served the snapshot back with the embedded panels.
    pub verified: bool,
    /// Panels that show no data and why; read-back problems.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for SnapshotInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotInfo")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("delete_url", &"<redacted>")
            .field("dashboard_uid", &self.dashboard_uid)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .field("panels", &self.panels)
            .field("series", &self.series)
            .field("verified", &self.verified)
            .field("notes", &self.notes)
            .finish()
    }
}

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

/// AC5's verdict and its reason. A created and read-back snapshot passes;
/// one created but not readable fails (the proof is not there); no Grafana
/// on the target skips, or fails when `require` (`--require-snapshot`);
/// a Grafana error before anything was created is a dependency `error`.
pub fn ac5_verdict(outcome: &SnapshotOutcome, require: bool) -> (Verdict, String) {
    match outcome {
        SnapshotOutcome::Created(info) if info.verified => {
            let mut reason = format!(
                "snapshot {} of dashboard `{}` created and read back: {} panel(s), {} series",
                info.url, info.dashboard_uid, info.panels, info.series
            );
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

/// The snapshot's name: says which target and which run it proves.
pub fn snapshot_name(dashboard_title: &str, target: &str, run_id: &str) -> String {
    format!("firedrill {target} {run_id}: {dashboard_title}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn ac5_verdict_table() {
        let cases: Vec<(SnapshotOutcome, bool, Verdict, &str)> = vec![
            (
                SnapshotOutcome::Created(info(true, &[])),
                false,
                Verdict::Pass,
                "created and read back: 4 panel(s), 9 series",
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
            let (got, reason) = ac5_verdict(&outcome, require);
            assert_eq!(got, want, "{outcome:?} require={require}");
            assert!(reason.contains(reason_part), "{reason}");
            assert!(!reason.contains("SECRET"), "delete URL leaked: {reason}");
        }
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
