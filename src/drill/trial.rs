//! The pure trial core: from what happened in a trial (plain values) to its
//! verdict, reason and notes; from the trials to the drill's verdict and
//! summary; the preflight notes and the manual-recovery text. No I/O, no
//! clock: table-tested without a network (see `trial_tests.rs`).

use super::journal::JournalEntry;
use super::machine::{Decision, Machine};
use super::preflight::{PreflightError, PreflightInfo};
use super::timeline::{stats, EventKind, Timeline};
use crate::model::duration::secs;
use crate::model::format_labels;
use crate::report::model::{DrillResult, DrillTrial, ManualRecovery, RecoveryStep, Verdict};
use crate::spec::drill::DrillSpec;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// How the part of a trial with the fault live ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// The watch decided: pass, fail or a dependency error.
    Decided(Decision),
    /// The alert never cleared before the inject: nothing was injected.
    NotQuiet(String),
    /// `--parallel`: the alert was already active when the drill's group
    /// was about to inject it (its fault was journaled, never injected).
    Void(String),
    /// Could not get as far as watching (no measurement).
    Failed { stage: String, error: String },
    /// Something in the trial panicked; its journaled changes were reverted.
    Panicked(String),
    /// A signal stopped it (its name).
    Cancelled(String),
}

/// Everything the runner learned in one trial, as plain values.
#[derive(Debug, Clone)]
pub struct TrialFacts {
    pub n: u32,
    pub ended: Ended,
    /// The state machine, when the trial got as far as injecting.
    pub machine: Option<Machine>,
    /// When the inject began, if it did (for a timeline without a machine).
    pub inject_started: Option<DateTime<Utc>>,
    pub revert_done: DateTime<Utc>,
    /// One message per failed revert.
    pub revert_errors: Vec<String>,
    /// Faults found already undone by someone else when the revert came.
    pub reverted_outside: Vec<String>,
    pub notes: Vec<String>,
}

/// A trial's verdict, reason, timeline and notes.
pub fn judge(f: TrialFacts) -> DrillTrial {
    let m = f.machine.as_ref();
    let mut notes = f.notes;
    let (mut verdict, mut reason) = match &f.ended {
        Ended::Decided(Decision::Pass) => {
            let tl = m.map(Machine::timeline);
            let src = tl.and_then(|t| t.source(EventKind::Firing)).unwrap_or("?");
            let ttf = tl
                .and_then(|t| t.numbers().time_to_fire_ms)
                .unwrap_or_default();
            (
                Verdict::Pass,
                format!("fired {} after inject (firing from {src})", secs(ttf)),
            )
        }
        Ended::Decided(Decision::Fail(r)) => (Verdict::Fail, r.clone()),
        Ended::Decided(Decision::Error(r)) => (Verdict::Error, r.clone()),
        Ended::Decided(other) => (
            Verdict::Error,
            format!("watch ended unexpectedly: {other:?}"),
        ),
        Ended::NotQuiet(reason) => (Verdict::Fail, reason.clone()),
        // Never a pass: nothing this drill did was measured.
        Ended::Void(reason) => (Verdict::Fail, format!("void: {reason}")),
        Ended::Failed { stage, error } => (Verdict::Error, format!("could not {stage}: {error}")),
        Ended::Panicked(msg) => (
            Verdict::Error,
            format!("the drill panicked ({msg}); its journaled changes were reverted"),
        ),
        Ended::Cancelled(sig) => (
            Verdict::Error,
            format!("interrupted by {sig}; the fault was reverted"),
        ),
    };
    if !f.reverted_outside.is_empty() {
        let what = format!(
            "the fault was reverted outside this run while the drill measured ({})",
            f.reverted_outside.join("; ")
        );
        if verdict == Verdict::Pass {
            notes.push(format!("{what}, after the alert had fired"));
        } else {
            // Not "the alert did not fire": the fault was not there to fire it.
            verdict = Verdict::Error;
            reason = format!("{what}, so the drill measured nothing; without that: {reason}");
        }
    }
    if !f.revert_errors.is_empty() {
        verdict = Verdict::Error;
        reason = format!("{reason}; REVERT FAILED: {}", f.revert_errors.join("; "));
        if matches!(f.ended, Ended::Cancelled(_)) {
            reason = reason.replace("; the fault was reverted", "");
        }
    }
    let timeline = match m {
        Some(m) => m.timeline().clone(),
        None => {
            let mut t = Timeline::default();
            if let Some(s) = f.inject_started {
                t.set(EventKind::InjectStarted, s, "firedrill clock");
                t.set(EventKind::RevertDone, f.revert_done, "firedrill clock");
            }
            t
        }
    };
    if let Some(m) = m {
        notes.extend(m.notes().iter().cloned());
        notes.extend(m.poll_failure_notes());
        if verdict != Verdict::Pass
            && !m.other_labels().is_empty()
            && !reason.contains("other labels")
        {
            let seen: Vec<String> = m.other_labels().iter().map(format_labels).collect();
            notes.push(format!(
                "alerts with the right name but other labels: {}",
                seen.join(", ")
            ));
        }
    }
    let nums = timeline.numbers();
    DrillTrial {
        trial: f.n,
        verdict,
        reason,
        timeline: timeline.events(),
        time_to_pending_ms: nums.time_to_pending_ms,
        time_to_fire_ms: nums.time_to_fire_ms,
        time_to_notify_ms: nums.time_to_notify_ms,
        time_to_resolve_ms: nums.time_to_resolve_ms,
        alert_labels: m
            .and_then(Machine::matched_labels)
            .cloned()
            .unwrap_or_default(),
        receivers: m.map(Machine::receivers).unwrap_or_default(),
        reverted: f.revert_errors.is_empty(),
        revert_error: (!f.revert_errors.is_empty()).then(|| f.revert_errors.join("; ")),
        notes,
    }
}

/// A preflight that failed: Prometheus itself failing is `error`, the
/// stack being wrong (rule not loaded, metric missing) is `fail`.
pub fn preflight_failed(e: &PreflightError) -> (Verdict, String) {
    let verdict = if e.is_dependency() {
        Verdict::Error
    } else {
        Verdict::Fail
    };
    (verdict, format!("preflight: {e}"))
}

/// The drill's verdict (the worst trial's), time-to-fire statistics over
/// the trials that passed, and its one-line reason.
pub fn conclude(result: &mut DrillResult) {
    let fired: Vec<i64> = result
        .trials
        .iter()
        .filter(|t| t.verdict == Verdict::Pass)
        .filter_map(|t| t.time_to_fire_ms)
        .collect();
    result.time_to_fire = stats(&fired);
    result.time_to_fire_histogram = (!fired.is_empty()).then(|| {
        let mut h = crate::model::hdr::time_to_fire_histogram();
        for &ms in &fired {
            crate::model::hdr::record_ms(&mut h, ms);
        }
        crate::model::hdr::encode(&h)
    });
    result.verdict = result
        .trials
        .iter()
        .map(|t| t.verdict)
        .max()
        .unwrap_or(Verdict::Error);
    result.reason = summary(result);
}

pub fn preflight_notes(plan: &DrillSpec, info: &PreflightInfo) -> Vec<String> {
    let mut notes = Vec::new();
    if plan.deadline < info.rule_for {
        notes.push(format!(
            "the deadline ({}) is shorter than the rule's `for` ({}): this drill cannot pass",
            humantime::format_duration(plan.deadline),
            humantime::format_duration(info.rule_for)
        ));
    }
    if !info.missing.is_empty() {
        notes.push(format!(
            "no series in the last hour before the inject for {}: the drill ran anyway (missing_metrics = warn); \
             if the fault does not create them, this rule can never fire",
            info.missing.join(", ")
        ));
    }
    if !info.absent_guarded.is_empty() {
        notes.push(format!(
            "not required to have series (read inside absent()): {}",
            info.absent_guarded.join(", ")
        ));
    }
    notes
}

fn summary(r: &DrillResult) -> String {
    let n = r.trials.len();
    if let Some(bad) = r.trials.iter().find(|t| t.verdict != Verdict::Pass) {
        return if n > 1 {
            format!("trial {}/{n}: {}", bad.trial, bad.reason)
        } else {
            bad.reason.clone()
        };
    }
    match r.time_to_fire {
        Some(s) if n > 1 => format!(
            "{} fired in every trial ({n}): time to fire min {} / median {} / max {}",
            r.alert,
            secs(s.min_ms),
            secs(s.median_ms),
            secs(s.max_ms)
        ),
        Some(s) => format!(
            "{} fired {} after the fault was injected (deadline {})",
            r.alert,
            secs(s.median_ms),
            humantime::format_duration(Duration::from_millis(r.deadline_ms))
        ),
        None => "no trial ran".into(),
    }
}

/// What to do by hand when a revert failed: retry with `recover`, then each
/// unreverted entry of `drill`'s own undo command, exactly as journaled.
pub fn manual_recovery(unreverted: &[JournalEntry], drill: &str, journal: &Path) -> ManualRecovery {
    let mut steps = vec![RecoveryStep {
        label: "Retry the revert".into(),
        command: format!(
            "firedrill recover --journal {}",
            crate::shell::shell_quote(&journal.display().to_string())
        ),
    }];
    for e in unreverted.iter().filter(|e| e.drill == drill) {
        steps.push(RecoveryStep {
            label: format!(
                "If that fails too, undo trial {} by hand ({} [{}])",
                e.trial,
                e.fault,
                e.status_detail()
            ),
            command: e.manual_recovery.clone(),
        });
    }
    ManualRecovery {
        summary: "A revert failed, so a fault may still be live.".into(),
        steps,
    }
}

#[cfg(test)]
#[path = "trial_tests.rs"]
mod tests;
