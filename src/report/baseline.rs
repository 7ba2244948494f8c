//! "Change since baseline": a report compared with an earlier one. Pure:
//! the command reads the baseline file (or finds it on GitHub) and stores
//! the comparison in the report, which every renderer then shows.

use super::model::Report;
use crate::model::{parse_value, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A change past this (in the worse direction) is a regression, unless the
/// criterion's or drill's spec sets its own `regression`.
pub const DEFAULT_THRESHOLD_PCT: f64 = 25.0;

/// The comparison the report carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// Where the baseline came from (a path, or the GitHub run it was downloaded from).
    pub source: String,
    /// The baseline's run id, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Why nothing was compared (missing or unreadable baseline): a note, not a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub changes: Vec<Change>,
}

impl BaselineComparison {
    /// No baseline to compare with, and why.
    pub fn unavailable(source: &str, note: String) -> Self {
        BaselineComparison {
            source: source.to_string(),
            run_id: None,
            note: Some(note),
            changes: Vec::new(),
        }
    }

    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.regression)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Improved,
    Unchanged,
    /// Worse, but within the threshold.
    Worse,
    Regressed,
    /// Not in the baseline.
    New,
    /// In the baseline, not in this run.
    Dropped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Improved => "improved",
            Status::Unchanged => "unchanged",
            Status::Worse => "worse",
            Status::Regressed => "regressed",
            Status::New => "new",
            Status::Dropped => "dropped",
        }
    }
}

/// One figure, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// e.g. `drill worker-image-tag`, `criterion AC1`, `probe sentinel (default)`, `trace audit`.
    pub subject: String,
    /// e.g. `time to fire (median)`, `value`, `p99`, `pass rate`.
    pub metric: String,
    /// `ms`, `%` or empty.
    pub unit: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// `current - baseline`.
    pub delta: Option<f64>,
    /// The delta relative to the baseline, in percent (none when the baseline is 0).
    pub delta_pct: Option<f64>,
    /// The regression threshold that applied, in percent.
    pub threshold_pct: f64,
    pub status: Status,
    pub regression: bool,
}

/// Per-subject thresholds (`criterion AC1`, `drill worker-image-tag`), in
/// percent; the rest use [`DEFAULT_THRESHOLD_PCT`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub by_subject: BTreeMap<String, f64>,
}

impl Thresholds {
    fn of(&self, subject: &str) -> f64 {
        self.by_subject
            .get(subject)
            .copied()
            .unwrap_or(DEFAULT_THRESHOLD_PCT)
    }
}

/// Parses a threshold as a spec writes it: `"+25%"`, `"25%"` or `"+25"`.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "invalid regression threshold {s:?} (expected a non-negative percentage, e.g. \"+25%\")"
        )),
    }
}

/// Which way is worse for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worse {
    Higher,
    Lower,
    /// No direction (a criterion `== x` or `!= x`): only a verdict turning bad is a regression.
    Either,
}

struct Figure {
    subject: String,
    metric: &'static str,
    unit: &'static str,
    value: Option<f64>,
    verdict: Option<Verdict>,
    worse: Worse,
}

/// Compares `current` with `baseline`, figure by figure.
pub fn compare(
    current: &Report,
    baseline: &Report,
    source: &str,
    thresholds: &Thresholds,
) -> BaselineComparison {
    let now = figures(current);
    let then = figures(baseline);
    let mut changes = Vec::new();
    for f in &now {
        let before = then
            .iter()
            .find(|b| b.subject == f.subject && b.metric == f.metric);
        changes.push(change(f, before, thresholds.of(&f.subject)));
    }
    for b in then.iter().filter(|b| {
        !now.iter()
            .any(|f| f.subject == b.subject && f.metric == b.metric)
    }) {
        changes.push(Change {
            subject: b.subject.clone(),
            metric: b.metric.to_string(),
            unit: b.unit.to_string(),
            baseline: b.value,
            current: None,
            delta: None,
            delta_pct: None,
            threshold_pct: thresholds.of(&b.subject),
            status: Status::Dropped,
            regression: false,
        });
    }
    BaselineComparison {
        source: source.to_string(),
        run_id: Some(baseline.run_id.clone()),
        note: None,
        changes,
    }
}

fn change(f: &Figure, before: Option<&Figure>, threshold_pct: f64) -> Change {
    let mut c = Change {
        subject: f.subject.clone(),
        metric: f.metric.to_string(),
        unit: f.unit.to_string(),
        baseline: before.and_then(|b| b.value),
        current: f.value,
        delta: None,
        delta_pct: None,
        threshold_pct,
        status: Status::New,
        regression: false,
    };
    let Some(before) = before else {
        return c;
    };
    // A verdict that went bad is a regression whatever the numbers say.
    let turned_bad = matches!(before.verdict, Some(Verdict::Pass))
        && matches!(f.verdict, Some(Verdict::Fail | Verdict::Error));
    let (Some(b), Some(n)) = (c.baseline, c.current) else {
        c.status = if turned_bad {
            Status::Regressed
        } else {
            Status::Unchanged
        };
        c.regression = turned_bad;
        return c;
    };
    let delta = n - b;
    c.delta = Some(delta);
    c.delta_pct = (b != 0.0).then(|| delta / b.abs() * 100.0);
    let worse_by = match f.worse {
        Worse::Higher => delta,
        Worse::Lower => -delta,
        Worse::Either => 0.0,
    };
    let past = match c.delta_pct {
        Some(pct) => worse_by > 0.0 && pct.abs() > threshold_pct,
        // From zero, any worsening is past a relative threshold.
        None => worse_by > 0.0,
    };
    c.regression = past || turned_bad;
    c.status = if c.regression {
        Status::Regressed
    } else if worse_by > 0.0 {
        Status::Worse
    } else if worse_by < 0.0 {
        Status::Improved
    } else {
        Status::Unchanged
    };
    c
}

fn figures(r: &Report) -> Vec<Figure> {
    let mut out = Vec::new();
    for d in &r.drills {
        out.push(Figure {
            subject: format!("drill {}", d.name),
            metric: "time to fire (median)",
            unit: "ms",
            value: d.time_to_fire.map(|t| t.median_ms as f64),
            verdict: Some(d.verdict),
            worse: Worse::Higher,
        });
    }
    // A merged report lists a criterion once per input: compare its worst value.
    let mut criteria: Vec<Figure> = Vec::new();
    for c in &r.criteria {
        let worse = match c.condition.as_deref().map(str::trim) {
            Some(op) if op.starts_with('<') => Worse::Higher,
            Some(op) if op.starts_with('>') => Worse::Lower,
            _ => Worse::Either,
        };
        let value = c
            .series
            .first()
            .map(|s| parse_value(&s.value))
            .filter(|v| v.is_finite());
        let subject = format!("criterion {}", c.id);
        match criteria.iter_mut().find(|f| f.subject == subject) {
            Some(f) => {
                f.verdict = f.verdict.max(Some(c.verdict));
                f.value = match (f.value, value) {
                    (Some(a), Some(b)) if worse == Worse::Lower => Some(a.min(b)),
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            None => criteria.push(Figure {
                subject,
                metric: "value",
                unit: "",
                value,
                verdict: Some(c.verdict),
                worse,
            }),
        }
    }
    out.extend(criteria);
    for p in &r.probes {
        let subject = format!("probe {} ({})", p.outcome.name, p.outcome.agent_type);
        let l = &p.outcome.latency;
        for (metric, v) in [("p50", l.p50_ms), ("p99", l.p99_ms)] {
            out.push(Figure {
                subject: subject.clone(),
                metric,
                unit: "ms",
                value: (l.count > 0).then_some(v),
                verdict: Some(p.verdict),
                worse: Worse::Higher,
            });
        }
    }
    if let Some(t) = &r.trace_audit {
        out.push(Figure {
            subject: "trace audit".into(),
            metric: "pass rate",
            unit: "%",
            value: (t.tasks > 0).then(|| t.passed as f64 / t.tasks as f64 * 100.0),
            verdict: Some(t.verdict()),
            worse: Worse::Lower,
        });
    }
    if let Some(c) = r.coverage.as_ref().filter(|c| !c.rules.is_empty()) {
        let percent = c.percent();
        out.push(Figure {
            subject: "coverage".into(),
            metric: "rules proven",
            unit: "%",
            value: Some(percent),
            // A verdict only where the run sets a floor (`--min-coverage`).
            verdict: c.min_percent.map(|min| {
                if percent < min {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                }
            }),
            worse: Worse::Lower,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_coverage(statuses: &[crate::report::model::CoverageStatus]) -> Report {
        let mut r: Report =
            serde_json::from_str(include_str!("../../reports/example/report.json")).unwrap();
        r.coverage = Some(crate::report::model::Coverage {
            rules: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| crate::report::model::CoverageRow {
                    alert: format!("Alert{i}"),
                    severity: "page".into(),
                    file: "rules.yml".into(),
                    group: "g".into(),
                    status: *s,
                    drills: vec![],
                })
                .collect(),
            min_percent: None,
        });
        r
    }

    #[test]
    fn coverage_is_compared_and_a_drop_is_a_regression() {
        use crate::report::model::CoverageStatus::{NotDrilled, Proven};
        let before = with_coverage(&[Proven, Proven, Proven, NotDrilled]);
        let now = with_coverage(&[Proven, NotDrilled, NotDrilled, NotDrilled]);
        let cmp = compare(&now, &before, "before.json", &Thresholds::default());
        let row = cmp
            .changes
            .iter()
            .find(|c| c.subject == "coverage")
            .expect("a coverage row");
        assert_eq!((row.baseline, row.current), (Some(75.0), Some(25.0)));
        assert_eq!(row.delta, Some(-50.0));
        assert!(row.regression, "{row:?}");
        let same = compare(&before, &before, "before.json", &Thresholds::default());
        assert!(
            !same
                .changes
                .iter()
                .find(|c| c.subject == "coverage")
                .unwrap()
                .regression
        );
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("+25%"), Ok(25.0));
        assert_eq!(parse_threshold("10"), Ok(10.0));
        assert_eq!(parse_threshold(" 0% "), Ok(0.0));
        assert!(parse_threshold("-5%").is_err());
        assert!(parse_threshold("NaN%").is_err());
        assert!(parse_threshold("fast").is_err());
    }
}
