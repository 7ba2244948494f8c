//! What a Grafana snapshot holds, per panel and per variable: shared by the
//! Grafana client (which fills it) and the report (which shows it).

use serde::{Deserialize, Serialize};

/// One data panel of a snapshot and what its queries gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelData {
    pub title: String,
    /// Prometheus queries run for it.
    pub queries: usize,
    /// Queries Prometheus rejected or that could not be sent.
    pub failed: usize,
    /// Series (or table rows' series) embedded.
    pub series: usize,
}

impl PanelData {
    pub fn status(&self) -> PanelStatus {
        if self.series > 0 {
            PanelStatus::Data
        } else if self.queries > 0 && self.failed == self.queries {
            PanelStatus::Errors
        } else {
            PanelStatus::NoData
        }
    }
}

/// How a panel came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelStatus {
    /// At least one series embedded.
    Data,
    /// No series, and not every query failed (no data in the window, or
    /// nothing firedrill can query).
    NoData,
    /// Every query it ran failed.
    Errors,
}

/// Panels by status: (with data, without data, with errors).
pub fn panel_counts(panels: &[PanelData]) -> (usize, usize, usize) {
    panels
        .iter()
        .fold((0, 0, 0), |(d, n, e), p| match p.status() {
            PanelStatus::Data => (d + 1, n, e),
            PanelStatus::NoData => (d, n + 1, e),
            PanelStatus::Errors => (d, n, e + 1),
        })
}

/// A dashboard variable as the snapshot used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableChoice {
    pub name: String,
    /// The value as it was written into queries' context (`All`, `a, b`, `5m`).
    pub value: String,
    /// Where it came from: `saved` (the dashboard's current value, still
    /// valid), `resolved` (the variable's query ran), `default` (Grafana's
    /// default: first value or All), `target` (the target's variables),
    /// `constant`, `auto` (interval computed from the window), `none`.
    pub source: String,
    /// Why it is what it is, when that is not obvious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
