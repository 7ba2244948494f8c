//! The one `Report` value that runners fill and renderers read.

use crate::model::probe::ProbeOutcome;
use crate::model::snapshot::{PanelData, VariableChoice};
use crate::model::trace::TraceAuditSummary;
pub use crate::model::{RunWindow, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any breaking change to the JSON shape or a value's meaning.
/// 2: a criterion's `series` lists at most [`SERIES_LISTED`] series, worst
/// first, with `series_total` and `series_failing` counting all of them.
/// 3: the raw HDR histograms behind the percentiles (`latency.histogram`,
/// `time_to_fire_histogram`), merged reports (`inputs`) and the change
/// since a baseline (`baseline`). Version 2 reports still load.
pub const SCHEMA_VERSION: u32 = 3;

/// Series a criterion lists in the report (the worst ones). Every series is
/// still evaluated and counted; the rest are left out so that an answer of
/// thousands of series does not make reports of tens of megabytes.
pub const SERIES_LISTED: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub git_commit: Option<String>,
    pub git_ref: Option<String>,
    /// Why `git_commit` is unknown (e.g. not run from a git checkout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_unknown_because: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub description: String,
    /// `local` (a stack firedrill started) or `remote`.
    pub kind: String,
    pub namespace: String,
    pub nats_url: String,
    pub prometheus_url: Option<String>,
    pub alertmanager_url: Option<String>,
    pub grafana_url: Option<String>,
}

/// One probe's result as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    #[serde(flatten)]
    pub outcome: ProbeOutcome,
}

impl ProbeResult {
    pub fn from_outcome(outcome: ProbeOutcome) -> Self {
        ProbeResult {
            verdict: if outcome.passed() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            reasons: outcome.failure_reasons(),
            outcome,
        }
    }
}

/// One returned series of a criterion's query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesValue {
    pub labels: BTreeMap<String, String>,
    /// As Prometheus wrote it (`"NaN"`, `"+Inf"` stay strings).
    pub value: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    pub id: String,
    pub title: String,
    pub verdict: Verdict,
    pub reason: String,
    /// The PromQL that ran, templates filled.
    pub query: Option<String>,
    /// e.g. `< 1500`.
    pub condition: Option<String>,
    /// How many series the query returned; the verdict is over all of them.
    #[serde(default)]
    pub series_total: usize,
    /// How many of them did not pass (violated the condition or were NaN/±Inf).
    #[serde(default)]
    pub series_failing: usize,
    /// The worst [`SERIES_LISTED`] series at most, worst first: NaN/±Inf,
    /// then the furthest past the condition, then the closest to failing.
    pub series: Vec<SeriesValue>,
    /// Prometheus graph UI link for the same query over the window (for
    /// LogQL: Grafana Explore on Loki, when the target has a Grafana).
    pub query_url: Option<String>,
    /// `"logql"` for a LogQL criterion; `None` is PromQL (as in reports
    /// written before LogQL criteria existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub evidence: Vec<Link>,
}

impl CriterionResult {
    /// Series counted but not listed.
    pub fn series_unlisted(&self) -> usize {
        self.series_total.saturating_sub(self.series.len())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: Option<String>,
}

/// One timestamped event of a drill's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub event: String,
    pub at: DateTime<Utc>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillTrial {
    pub trial: u32,
    pub verdict: Verdict,
    pub reason: String,
    pub timeline: Vec<TimelineEvent>,
    pub time_to_pending_ms: Option<i64>,
    pub time_to_fire_ms: Option<i64>,
    pub time_to_notify_ms: Option<i64>,
    pub time_to_resolve_ms: Option<i64>,
    pub alert_labels: BTreeMap<String, String>,
    /// Receivers Alertmanager routed the alert to (`/api/v2/alerts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
    pub reverted: bool,
    pub revert_error: Option<String>,
    /// Worth saying but not the verdict (e.g. "did not resolve within 2m").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Min, median and max of a duration over trials (median of an even count
/// is the mean of the two middle values, rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimingStats {
    pub count: usize,
    pub min_ms: i64,
    pub median_ms: i64,
    pub max_ms: i64,
}

impl TimingStats {
    /// Min, median and max of `values`; `None` when there are none.
    pub fn from_values(values: &[i64]) -> Option<TimingStats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]).div_euclid(2)
        };
        Some(TimingStats {
            count: n,
            min_ms: v[0],
            median_ms: median,
            max_ms: v[n - 1],
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillResult {
    pub name: String,
    pub alert: String,
    pub fault: String,
    pub deadline_ms: u64,
    pub verdict: Verdict,
    pub reason: String,
    pub trials: Vec<DrillTrial>,
    pub alert_urls: Vec<Link>,
    /// Exactly what to do by hand if a revert failed.
    pub manual_recovery: Option<ManualRecovery>,
    /// Time-to-fire over the trials that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_fire: Option<TimingStats>,
    /// The HDR histogram (ms) of the same times to fire, V2 deflate, base64
    /// ([`crate::model::hdr`]); absent before schema 3 and when none fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_fire_histogram: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The run's journal (`reports/<run-id>/journal.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

/// What to do when a revert failed: a sentence, then commands to run in
/// order, each kept exactly as it must be run (renderers never reflow it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualRecovery {
    pub summary: String,
    pub steps: Vec<RecoveryStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryStep {
    /// What the command does, e.g. "trial 1: exec … [revert_failed: …]".
    pub label: String,
    /// The command, verbatim (may hold quotes, backslashes, newlines).
    pub command: String,
}

impl ManualRecovery {
    /// Plain text for terminals and JUnit: the summary, then each step's
    /// label and its command on a line of its own.
    pub fn plain(&self) -> String {
        let mut s = self.summary.clone();
        for st in &self.steps {
            s.push_str(&format!("\n{}:\n{}", st.label, st.command));
        }
        s
    }
}

/// The Grafana snapshot of the run window. Only what a reviewer may see:
/// the delete URL and key are never kept in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub url: String,
    pub dashboard_uid: String,
    /// Whether the snapshot was read back from Grafana after creation.
    pub verified: bool,
    /// Panels and series embedded; panels with no data and why.
    #[serde(default)]
    pub panels: usize,
    #[serde(default)]
    pub series: usize,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Every planned panel: queries, failures, series.
    #[serde(default)]
    pub panel_data: Vec<PanelData>,
    /// Every dashboard variable: the value used and where it came from.
    #[serde(default)]
    pub variables: Vec<VariableChoice>,
    /// Deletes the snapshot without login. Kept in report.json only (the
    /// artifact its owner keeps to clean up); no renderer but JSON shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_url: Option<String>,
}

/// How bad a rule-audit finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule-audit check produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// An acceptance criterion's query parses and returns data.
    CriterionQuery,
    /// A drill's alert is loaded in Prometheus.
    DrillAlert,
    /// The rule's expression parses and Prometheus evaluates it.
    RuleHealth,
    /// Every selector the rule reads has series.
    SelectorSeries,
    /// A rule with an `absent()` leg carries, as static literals, the
    /// labels the target asks of such rules (by default `namespace`).
    #[serde(alias = "absent-namespace")]
    AbsentLabel,
    /// The alert has a usable `runbook_url` annotation.
    RunbookUrl,
    /// The alert carries, as static literals, the labels the target requires.
    RequiredLabel,
    /// The alert carries the annotations the target requires (other than
    /// `runbook_url`, which has its own check).
    RequiredAnnotation,
    /// An object-state gauge compared to zero has an `absent()` leg.
    AbsentGuard,
    /// The alert reaches the receiver the target expects in Alertmanager.
    Routing,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::CriterionQuery => "criterion-query",
            Check::DrillAlert => "drill-alert",
            Check::RuleHealth => "rule-health",
            Check::SelectorSeries => "selector-series",
            Check::AbsentLabel => "absent-label",
            Check::RunbookUrl => "runbook-url",
            Check::RequiredLabel => "required-label",
            Check::RequiredAnnotation => "required-annotation",
            Check::AbsentGuard => "absent-guard",
            Check::Routing => "routing",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of the live rule audit (`firedrill validate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The alert rule, criterion (`AC1`) or drill the finding is about.
    pub subject: String,
    pub severity: Severity,
    pub check: Check,
    pub detail: String,
    /// The exact selector concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The rule file Prometheus loaded the rule from (rule findings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The rule group (rule findings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Report {
    /// Replaces rule file paths as Prometheus reported them (`(loaded,
    /// shown)` pairs) in findings, routes and coverage rows: the local stack
    /// loads copies from its temp dir, and the user knows the originals.
    pub fn rename_rule_files(&mut self, names: &[(String, String)]) {
        let rename = |f: &mut String| rename_rule_file(names, f);
        for f in &mut self.validation {
            if let Some(file) = f.file.as_mut() {
                rename(file);
            }
        }
        for r in &mut self.routes {
            rename(&mut r.file);
        }
        if let Some(c) = self.coverage.as_mut() {
            c.rename_rule_files(names);
        }
    }
}

impl Coverage {
    /// See [`Report::rename_rule_files`].
    pub fn rename_rule_files(&mut self, names: &[(String, String)]) {
        for row in &mut self.rules {
            rename_rule_file(names, &mut row.file);
        }
    }
}

fn rename_rule_file(names: &[(String, String)], f: &mut String) {
    if let Some((_, shown)) = names.iter().find(|(loaded, _)| loaded == f) {
        *f = shown.clone();
    }
}

/// Where Alertmanager routes one alerting rule's alerts, from its static
/// labels (`firedrill validate`'s routing audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRoute {
    pub alert: String,
    pub file: String,
    pub group: String,
    /// Receivers reached, in Alertmanager's order.
    pub receivers: Vec<String>,
    /// The matching routes (`route.routes[0]`, ...).
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    pub command: String,
    pub tool: ToolInfo,
    pub target: TargetInfo,
    pub window: RunWindow,
    pub verdict: Verdict,
    pub probes: Vec<ProbeResult>,
    pub criteria: Vec<CriterionResult>,
    pub drills: Vec<DrillResult>,
    /// Problems not tied to one probe/criterion/drill (e.g. a dependency down).
    pub errors: Vec<String>,
    /// Set when the run was interrupted by a signal.
    pub interrupted: bool,
    /// The window the criteria were evaluated over (at its end), when it
    /// differs from the run's (e.g. drills ran after the criteria).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria_window: Option<RunWindow>,
    /// Set by the snapshot step; absent (null) when it did not run or failed.
    #[serde(default)]
    pub snapshot: Option<SnapshotSummary>,
    /// Live rule audit findings (`firedrill validate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<Finding>,
    /// The routing audit's receivers per alert (`firedrill validate` with an
    /// Alertmanager).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<AlertRoute>,
    /// Set by `trace-audit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_audit: Option<TraceAuditSummary>,
    /// Alerting rules against the drills that prove them (`drill`, `run`,
    /// `coverage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// The runs a merged report (`firedrill merge`) was made of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<super::merge::InputRun>,
    /// The change since a baseline report (`--baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<super::baseline::BaselineComparison>,
    /// With `--parallel`: the groups of drills that ran at the same time,
    /// in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_groups: Vec<DrillGroup>,
}

/// Drills that ran at the same time (`--parallel`), what their faults
/// touched, and the alerts no drill of the group expected that went
/// active while it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillGroup {
    /// 1-based, in the order the groups ran.
    pub group: u32,
    pub drills: Vec<String>,
    /// What each drill's fault touches (same order as `drills`).
    pub footprints: Vec<String>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// Alerts expected by no drill of the group that went pending or firing
    /// while it ran (not active when it began).
    pub crosstalk: Vec<CrosstalkAlert>,
    /// Why the crosstalk watch could not see everything, if it could not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An alert no drill of its group expected, first seen during the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrosstalkAlert {
    pub alert: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// `pending` or `firing`, the most advanced state seen.
    pub state: String,
    /// Prometheus' `activeAt`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
}

/// Every alerting rule loaded in Prometheus against the drills that
/// exercise it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub rules: Vec<CoverageRow>,
    /// `--min-coverage`, in percent: below it the run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub alert: String,
    /// The rule's `severity` label (empty when it has none).
    pub severity: String,
    pub file: String,
    pub group: String,
    pub status: CoverageStatus,
    /// Drills whose `alert` is this rule's.
    pub drills: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoverageStatus {
    /// No drill names this alert.
    NotDrilled,
    /// A drill for it failed or errored in this run.
    Failing,
    /// It has a drill, which did not run (this run, or `firedrill coverage`).
    NotRun,
    /// A drill for it passed in this run.
    Proven,
}

impl CoverageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::NotDrilled => "not drilled",
            CoverageStatus::Failing => "failing",
            CoverageStatus::NotRun => "drill not run",
            CoverageStatus::Proven => "proven",
        }
    }
}

impl Coverage {
    pub fn proven(&self) -> usize {
        self.count(|r| r.status == CoverageStatus::Proven)
    }

    /// Rules with at least one drill (run or not).
    pub fn drilled(&self) -> usize {
        self.count(|r| r.status != CoverageStatus::NotDrilled)
    }

    fn count(&self, f: impl Fn(&CoverageRow) -> bool) -> usize {
        self.rules.iter().filter(|r| f(r)).count()
    }

    /// Proven rules in percent of all (100 with no rules at all).
    pub fn percent(&self) -> f64 {
        percent(self.proven(), self.rules.len())
    }

    /// Rules with a drill, in percent of all (`firedrill coverage`, which
    /// runs no drill).
    pub fn drilled_percent(&self) -> f64 {
        percent(self.drilled(), self.rules.len())
    }

    /// (proven, total) per severity label, `""` for rules without one.
    pub fn by_severity(&self) -> BTreeMap<String, (usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in &self.rules {
            let e = out.entry(r.severity.clone()).or_default();
            e.1 += 1;
            if r.status == CoverageStatus::Proven {
                e.0 += 1;
            }
        }
        out
    }

    /// Below `--min-coverage`: the run fails.
    pub fn below_minimum(&self) -> bool {
        self.min_percent.is_some_and(|min| self.percent() < min)
    }

    /// "7/8 alerting rules proven (87.5%); page 7/7, warn 0/1".
    pub fn line(&self) -> String {
        let sev: Vec<String> = self
            .by_severity()
            .iter()
            .map(|(s, (p, t))| {
                let s = if s.is_empty() {
                    "no severity"
                } else {
                    s.as_str()
                };
                format!("{s} {p}/{t}")
            })
            .collect();
        let mut line = format!(
            "{}/{} alerting rules proven by a drill in this run ({:.1}%)",
            self.proven(),
            self.rules.len(),
            self.percent()
        );
        if !sev.is_empty() {
            line.push_str(&format!("; by severity: {}", sev.join(", ")));
        }
        if let Some(min) = self.min_percent {
            line.push_str(&format!(
                "; minimum {min}%: {}",
                if self.below_minimum() {
                    "not met"
                } else {
                    "met"
                }
            ));
        }
        line
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        100.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

impl Report {
    /// The overall verdict: any fail wins, then any error; skipped and
    /// pending items never make a run pass on their own.
    /// Replaces every secret this process has read (see [`crate::secrets`])
    /// wherever it appears in the report: remotes can echo them back in
    /// error bodies, and reports become CI artifacts.
    pub fn redact_secrets(&mut self) {
        let Ok(mut v) = serde_json::to_value(&*self) else {
            return;
        };
        let before = v.clone();
        crate::secrets::redact_json(&mut v);
        if v != before {
            if let Ok(r) = serde_json::from_value(v) {
                *self = r;
            }
        }
    }

    /// A written report is final: a check still `pending` (its step never
    /// ran in this command) becomes `skipped`, saying so, so no report on
    /// disk promises a result that will never come.
    pub fn close_pending(&mut self) {
        let closed = |reason: &str, command: &str| {
            format!("not decided by `firedrill {command}`, so skipped: {reason}")
        };
        let command = self.command.clone();
        for c in &mut self.criteria {
            if c.verdict == Verdict::Pending {
                c.verdict = Verdict::Skipped;
                c.reason = closed(&c.reason, &command);
            }
        }
        for d in &mut self.drills {
            if d.verdict == Verdict::Pending {
                d.verdict = Verdict::Skipped;
                d.reason = closed(&d.reason, &command);
            }
            for t in &mut d.trials {
                if t.verdict == Verdict::Pending {
                    t.verdict = Verdict::Skipped;
                    t.reason = closed(&t.reason, &command);
                }
            }
        }
        for p in &mut self.probes {
            if p.verdict == Verdict::Pending {
                p.verdict = Verdict::Skipped;
            }
        }
    }

    pub fn compute_verdict(&self) -> Verdict {
        let items = self
            .probes
            .iter()
            .map(|p| p.verdict)
            .chain(self.criteria.iter().map(|c| c.verdict))
            .chain(self.drills.iter().map(|d| d.verdict))
            .chain(self.trace_audit.iter().map(|t| t.verdict()));
        // An error-level audit finding is a broken rule: the stack fails.
        let audit = self
            .validation
            .iter()
            .any(|f| f.severity == Severity::Error)
            .then_some(Verdict::Fail);
        // Coverage changes the verdict only below an explicit --min-coverage.
        let coverage = self
            .coverage
            .as_ref()
            .is_some_and(Coverage::below_minimum)
            .then_some(Verdict::Fail);
        let worst = items
            .chain(audit)
            .chain(coverage)
            .max()
            .unwrap_or(Verdict::Pass);
        let worst = if !self.errors.is_empty() {
            worst.max(Verdict::Error)
        } else {
            worst
        };
        match worst {
            Verdict::Fail => Verdict::Fail,
            Verdict::Error => Verdict::Error,
            _ => Verdict::Pass,
        }
    }
}
