//! Runs drills: journal -> inject -> trigger -> watch -> revert -> resolved.
//!
//! Each trial's body (silence, read original, journal, inject, trigger,
//! watch) runs in a spawned task. The runner awaits it against the cancel
//! signal; whichever way it ends (decision, error, panic, signal) the runner
//! then reverts every journaled change of the trial from the journal, in one
//! code path, bounded by a hard deadline during which further signals are
//! ignored.

use super::fault::{self, FaultContext, FaultRecord, Reverted};
use super::journal::{scan, EntryStatus, Journal, JournalEntry, JournalError, Unrecovered};
use super::machine::{Decision, Machine, MachineConfig};
use super::plan::{DrillPlan, TriggerPlan};
use super::preflight::{preflight, MissingMetrics, PreflightInfo};
use super::progress::{Progress, ProgressSink};
use super::signal::SignalSource;
use super::timeline::{stats, EventKind, Timeline};
use super::watch::{
    lock, wait_until_quiet, watch, Clock, NotificationFeed, Quiet, SharedMachine, Sources,
    SystemClock,
};
use crate::clients::alertmanager::{Alertmanager, Matcher, NewSilence};
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::model::{format_labels, secs};
use crate::report::model::{DrillResult, DrillTrial, Link, ManualRecovery, RecoveryStep, Verdict};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Publishes sentinels so the platform starts a worker (wired by the caller).
/// Publishes the sentinels a drill asks for (its `[trigger]`): the probe name
/// and count come with each call.
pub type Trigger =
    Arc<dyn Fn(&TriggerPlan) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Tunables with defaults that suit a real cluster and the local stack alike.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// How often Prometheus and Alertmanager are polled.
    pub poll_interval: Duration,
    /// Overrides every plan's `trials` (CLI `--trials`).
    pub trials: Option<u32>,
    /// Longest a revert may take before the run reports it failed.
    pub revert_deadline: Duration,
    /// How far back preflight looks for each metric's series.
    pub series_lookback: Duration,
    /// Added to deadline + resolve_timeout for a drill silence's length.
    pub silence_margin: Duration,
    /// See [`MachineConfig::am_grace`].
    pub am_grace: Duration,
    /// See [`MachineConfig::settle`].
    pub settle: Duration,
    /// With a webhook feed (and no silence), how long to keep the fault
    /// live after the alert fired, waiting for the firing notification
    /// (see [`MachineConfig::await_notification`]). Default 35 s: the
    /// default `group_wait` of 30 s plus delivery.
    pub notify_grace: Duration,
    /// A required metric with no series in `series_lookback`: fail at once
    /// (default) or run anyway and name it if the alert does not fire.
    pub missing_metrics: MissingMetrics,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            poll_interval: Duration::from_millis(250),
            trials: None,
            revert_deadline: Duration::from_secs(60),
            series_lookback: Duration::from_secs(3600),
            silence_margin: Duration::from_secs(60),
            am_grace: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            notify_grace: Duration::from_secs(35),
            missing_metrics: MissingMetrics::Fail,
        }
    }
}

/// Everything the runner needs besides the plans.
#[derive(Clone)]
pub struct DrillEnv {
    pub run_id: String,
    /// `reports/`: the journal goes to `<reports_dir>/<run_id>/journal.json`.
    pub reports_dir: PathBuf,
    /// Target name, for messages.
    pub target: String,
    /// The target's `drills_allowed`.
    pub drills_allowed: bool,
    pub prometheus: Prometheus,
    pub alertmanager: Option<Alertmanager>,
    pub faults: FaultContext,
    /// Webhook notifications routed to firedrill, when there are any.
    pub notifications: Option<NotificationFeed>,
    pub trigger: Option<Trigger>,
    pub signals: SignalSource,
    pub clock: Arc<dyn Clock>,
    pub progress: ProgressSink,
    pub options: DrillOptions,
}

impl DrillEnv {
    /// An env with no Alertmanager, webhook, trigger or signals, system
    /// clock, no progress output and default options; set the rest by field.
    pub fn new(
        run_id: &str,
        reports_dir: &Path,
        target: &str,
        drills_allowed: bool,
        prometheus: Prometheus,
        faults: FaultContext,
    ) -> Self {
        DrillEnv {
            run_id: run_id.to_string(),
            reports_dir: reports_dir.to_path_buf(),
            target: target.to_string(),
            drills_allowed,
            prometheus,
            alertmanager: None,
            faults,
            notifications: None,
            trigger: None,
            signals: SignalSource::never(),
            clock: Arc::new(SystemClock),
            progress: ProgressSink::Off,
            options: DrillOptions::default(),
        }
    }

    pub fn journal_path(&self) -> PathBuf {
        self.reports_dir
            .join(&self.run_id)
            .join(super::journal::JOURNAL_FILE)
    }
}

/// Why no drill ran at all.
#[derive(Debug, Error)]
pub enum DrillError {
    #[error("drills are not allowed on target {target}: its `drills_allowed` is not true. Set `drills_allowed = true` for target {target} in firedrill.toml only if inducing failures there is acceptable")]
    NotAllowed { target: String },
    #[error("{}", unrecovered_message(.journals))]
    UnrecoveredJournal { journals: Vec<Unrecovered> },
    #[error("drill {drill} has `silence = true` but target {target} has no Alertmanager URL to create the silence in")]
    SilenceWithoutAlertmanager { drill: String, target: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl DrillError {
    /// NotAllowed / silence config -> 2; unrecovered journal -> 5 (a fault
    /// may be live); journal I/O -> 3.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DrillError::NotAllowed { .. } | DrillError::SilenceWithoutAlertmanager { .. } => {
                ExitCode::Usage
            }
            DrillError::UnrecoveredJournal { .. } => ExitCode::RevertFailed,
            DrillError::Journal(_) => ExitCode::Dependency,
        }
    }
}

fn unrecovered_message(journals: &[Unrecovered]) -> String {
    let mut s = String::from(
        "an earlier drill run left changes that were never reverted, so no drill will run until they are:\n",
    );
    for u in journals {
        if let Some(why) = &u.unreadable {
            s.push_str(&format!(
                "  {}: unreadable journal ({why})\n",
                u.path.display()
            ));
        }
        for e in &u.entries {
            s.push_str(&format!(
                "  {}: drill {} trial {}: {} ({})\n",
                u.path.display(),
                e.drill,
                e.trial,
                e.fault,
                e.status_detail()
            ));
        }
    }
    for u in journals {
        s.push_str(&format!(
            "Run: firedrill recover --journal {}\n",
            u.path.display()
        ));
    }
    s.pop();
    s
}

/// How the run as a whole ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// A signal stopped the run; every fault was reverted.
    Interrupted {
        signal: String,
    },
    /// A revert failed: a fault may be live (see `manual_recovery`).
    RevertFailed,
}

#[derive(Debug, Clone)]
pub struct DrillRun {
    pub results: Vec<DrillResult>,
    pub outcome: RunOutcome,
    pub journal: PathBuf,
}

impl DrillRun {
    /// 5 revert failed > 4 interrupted > 1 a drill failed > 3 error > 0.
    pub fn exit_code(&self) -> ExitCode {
        match self.outcome {
            RunOutcome::RevertFailed => return ExitCode::RevertFailed,
            RunOutcome::Interrupted { .. } => return ExitCode::Interrupted,
            RunOutcome::Completed => {}
        }
        let worst = self.results.iter().map(|r| r.verdict).max();
        match worst {
            Some(Verdict::Fail) => ExitCode::Failed,
            Some(Verdict::Error) => ExitCode::Dependency,
            _ => ExitCode::Success,
        }
    }
}

/// The checks that need no remote: refuses on a target without
/// `drills_allowed` or with a dead run's unrecovered journal under
/// `reports_dir`. Returns one note per live run's journal (left to its
/// owner). Cheap, so commands call it before starting a local stack.
pub fn check_can_drill(
    reports_dir: &Path,
    target: &str,
    drills_allowed: bool,
) -> Result<Vec<String>, DrillError> {
    if !drills_allowed {
        return Err(DrillError::NotAllowed {
            target: target.to_string(),
        });
    }
    let found = scan(reports_dir);
    if !found.unrecovered.is_empty() {
        return Err(DrillError::UnrecoveredJournal {
            journals: found.unrecovered,
        });
    }
    Ok(found
        .live
        .into_iter()
        .map(|l| format!("left alone: {l}; it reverts its own faults"))
        .collect())
}

/// Runs `plans` in order: refuses on a target without `drills_allowed` or
/// with an unrecovered journal, then runs every drill's trials, stopping
/// early only on a signal or a failed revert.
pub async fn run_drills(plans: &[DrillPlan], env: &DrillEnv) -> Result<DrillRun, DrillError> {
    let live = check_can_drill(&env.reports_dir, &env.target, env.drills_allowed)?;
    let mut progress = Progress::new(env.progress.clone(), "journals");
    for l in &live {
        progress.line(l);
    }
    progress.finish();
    if env.alertmanager.is_none() {
        if let Some(p) = plans.iter().find(|p| p.silence) {
            return Err(DrillError::SilenceWithoutAlertmanager {
                drill: p.name.clone(),
                target: env.target.clone(),
            });
        }
    }
    let journal = Arc::new(Mutex::new(Journal::create(
        &env.reports_dir,
        &env.run_id,
        &env.target,
    )?));
    let mut results = Vec::new();
    let mut outcome = RunOutcome::Completed;
    for plan in plans {
        if env.signals.count() > 0 {
            outcome = RunOutcome::Interrupted {
                signal: env.signals.last_name(),
            };
            break;
        }
        let (result, end) = run_drill(plan, env, &journal).await;
        results.push(result);
        match end {
            TrialEnd::Completed => {}
            TrialEnd::Interrupted(signal) => {
                outcome = RunOutcome::Interrupted { signal };
                break;
            }
            TrialEnd::RevertFailed => {
                outcome = RunOutcome::RevertFailed;
                break;
            }
        }
    }
    Ok(DrillRun {
        results,
        outcome,
        journal: env.journal_path(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum TrialEnd {
    Completed,
    Interrupted(String),
    RevertFailed,
}

async fn run_drill(
    plan: &DrillPlan,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
) -> (DrillResult, TrialEnd) {
    let started = env.clock.now();
    let mut result = DrillResult {
        name: plan.name.clone(),
        alert: plan.alert.clone(),
        fault: plan.fault.describe(),
        deadline_ms: plan.deadline.as_millis() as u64,
        verdict: Verdict::Error,
        reason: String::new(),
        trials: Vec::new(),
        alert_urls: Vec::new(),
        manual_recovery: None,
        time_to_fire: None,
        notes: Vec::new(),
        journal: Some(env.journal_path().display().to_string()),
    };
    let mut signals = env.signals.clone();
    let pre = tokio::select! {
        biased;
        () = signals.cancelled() => {
            result.reason = format!("interrupted by {} before the fault was injected", signals.last_name());
            return (result, TrialEnd::Interrupted(signals.last_name()));
        }
        r = preflight(
            &env.prometheus,
            &plan.alert,
            env.clock.now(),
            env.options.series_lookback,
            env.options.missing_metrics,
        ) => r,
    };
    let info = match pre {
        Ok(info) => info,
        Err(e) => {
            result.verdict = if e.is_dependency() {
                Verdict::Error
            } else {
                Verdict::Fail
            };
            result.reason = format!("preflight: {e}");
            result.alert_urls = alert_links(plan, env, started);
            return (result, TrialEnd::Completed);
        }
    };
    result.notes.extend(preflight_notes(plan, &info));

    let trials = env.options.trials.unwrap_or(plan.trials).max(1);
    let mut end = TrialEnd::Completed;
    for n in 1..=trials {
        let (trial, e) = run_trial(plan, n, env, journal, &info.missing).await;
        result.trials.push(trial);
        if e != TrialEnd::Completed {
            end = e;
            break;
        }
    }

    let fired: Vec<i64> = result
        .trials
        .iter()
        .filter(|t| t.verdict == Verdict::Pass)
        .filter_map(|t| t.time_to_fire_ms)
        .collect();
    result.time_to_fire = stats(&fired);
    result.verdict = result
        .trials
        .iter()
        .map(|t| t.verdict)
        .max()
        .unwrap_or(Verdict::Error);
    result.reason = summary(&result);
    if end == TrialEnd::RevertFailed {
        result.manual_recovery = Some(manual_recovery(journal, &plan.name, &env.journal_path()));
    }
    result.alert_urls = alert_links(plan, env, started);
    (result, end)
}

fn preflight_notes(plan: &DrillPlan, info: &PreflightInfo) -> Vec<String> {
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

fn alert_links(plan: &DrillPlan, env: &DrillEnv, started: DateTime<Utc>) -> Vec<Link> {
    let end = env.clock.now();
    let range = (end - started).to_std().unwrap_or_default() + Duration::from_secs(60);
    let expr = format!("ALERTS{{alertname=\"{}\"}}", plan.alert);
    let mut v = vec![Link {
        label: format!("Prometheus: {expr}"),
        url: Some(env.prometheus.graph_url(&expr, end, range)),
    }];
    if let Some(am) = &env.alertmanager {
        v.push(Link {
            label: format!("Alertmanager: {}", plan.alert),
            url: Some(am.alerts_ui_url(&plan.alert)),
        });
    }
    v
}

fn manual_recovery(journal: &Arc<Mutex<Journal>>, drill: &str, path: &Path) -> ManualRecovery {
    let j = lock(journal);
    let mut steps = vec![RecoveryStep {
        label: "Retry the revert".into(),
        command: format!(
            "firedrill recover --journal {}",
            super::plan::shell_quote(&path.display().to_string())
        ),
    }];
    for e in j.unreverted().into_iter().filter(|e| e.drill == drill) {
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

/// State the body shares with the runner, readable after a panic or abort.
#[derive(Default)]
struct Scratch {
    entry_ids: Vec<u32>,
    inject_started: Option<DateTime<Utc>>,
    notes: Vec<String>,
}

/// The shortest wait for a drill's alert to clear before an inject (the
/// drill's `resolve_timeout` when longer).
const QUIET_FLOOR: Duration = Duration::from_secs(30);

enum BodyEnd {
    Decided(Decision),
    /// The alert never cleared before the inject: nothing was injected.
    NotQuiet(String),
    /// Could not get as far as watching (no measurement).
    Failed {
        stage: String,
        error: String,
    },
}

enum Ended {
    Body(BodyEnd),
    Panicked(String),
    Cancelled(String),
}

async fn run_trial(
    plan: &DrillPlan,
    n: u32,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    missing: &[String],
) -> (DrillTrial, TrialEnd) {
    let label = if plan.trials > 1 || env.options.trials.is_some_and(|t| t > 1) {
        format!("{}#{n}", plan.name)
    } else {
        plan.name.clone()
    };
    let machine: SharedMachine = Arc::new(Mutex::new(None));
    let scratch = Arc::new(Mutex::new(Scratch::default()));
    // Subscribed before the body starts, so the resolve wait also sees the
    // notifications that arrived while the body was deciding.
    let mut resolve_feed = env.notifications.as_ref().map(|f| f.subscribe());
    let mut body = tokio::spawn(trial_body(
        plan.clone(),
        n,
        missing.to_vec(),
        env.clone(),
        journal.clone(),
        machine.clone(),
        scratch.clone(),
        label.clone(),
    ));
    let mut signals = env.signals.clone();
    let ended = tokio::select! {
        biased;
        r = &mut body => match r {
            Ok(b) => Ended::Body(b),
            Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
            Err(e) => Ended::Panicked(e.to_string()),
        },
        () = signals.cancelled() => {
            body.abort();
            let _ = body.await;
            Ended::Cancelled(signals.last_name())
        }
    };

    let mut progress = Progress::new(env.progress.clone(), &label);
    let ids = lock(&scratch).entry_ids.clone();
    let (fault_ids, silence_ids): (Vec<u32>, Vec<u32>) = ids.into_iter().partition(|id| {
        !matches!(
            lock(journal).entry(*id).map(|e| &e.record),
            Some(FaultRecord::Silence { .. })
        )
    });
    let reverted = revert_entries(&fault_ids, env, journal, &mut progress).await;
    let outside = reverted.outside;
    let mut revert_errors = reverted.errors;
    let revert_done = env.clock.now();
    if let Some(m) = lock(&machine).as_mut() {
        m.reverted(revert_done);
    }

    // Wait for the alert to resolve, unless interrupted or the revert failed.
    let mut notes = std::mem::take(&mut lock(&scratch).notes);
    let mut end = match &ended {
        Ended::Cancelled(sig) => TrialEnd::Interrupted(sig.clone()),
        _ => TrialEnd::Completed,
    };
    let has_machine = lock(&machine).is_some();
    // After a dependency error the remotes are unlikely to answer now.
    let measured =
        matches!(&ended, Ended::Body(BodyEnd::Decided(d)) if !matches!(d, Decision::Error(_)));
    if measured && revert_errors.is_empty() && has_machine {
        let sources = sources(env);
        let mut sig = env.signals.clone();
        let d = watch(
            &machine,
            &sources,
            &mut resolve_feed,
            Some(&mut sig),
            &mut progress,
        )
        .await;
        match d {
            Decision::NotResolved(r) => notes.push(format!(
                "{r} (not a failure of the drill, but worth a look)"
            )),
            Decision::Cancelled => {
                notes.push(format!(
                    "{} arrived while waiting for the alert to resolve (the fault was already reverted)",
                    sig.last_name()
                ));
                end = TrialEnd::Interrupted(sig.last_name());
            }
            _ => {}
        }
    }
    revert_errors.extend(
        revert_entries(&silence_ids, env, journal, &mut progress)
            .await
            .errors,
    );
    if !revert_errors.is_empty() {
        end = TrialEnd::RevertFailed;
    }
    progress.finish();

    let trial = build_trial(
        n,
        &ended,
        &machine,
        &scratch,
        &revert_errors,
        &outside,
        notes,
        revert_done,
    );
    (trial, end)
}

#[allow(clippy::too_many_arguments)]
fn build_trial(
    n: u32,
    ended: &Ended,
    machine: &SharedMachine,
    scratch: &Arc<Mutex<Scratch>>,
    revert_errors: &[String],
    outside: &[String],
    mut notes: Vec<String>,
    revert_done: DateTime<Utc>,
) -> DrillTrial {
    let g = lock(machine);
    let m = g.as_ref();
    let (mut verdict, mut reason) = match ended {
        Ended::Body(BodyEnd::Decided(d)) => match d {
            Decision::Pass => {
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
            Decision::Fail(r) => (Verdict::Fail, r.clone()),
            Decision::Error(r) => (Verdict::Error, r.clone()),
            other => (
                Verdict::Error,
                format!("watch ended unexpectedly: {other:?}"),
            ),
        },
        Ended::Body(BodyEnd::NotQuiet(reason)) => (Verdict::Fail, reason.clone()),
        Ended::Body(BodyEnd::Failed { stage, error }) => {
            (Verdict::Error, format!("could not {stage}: {error}"))
        }
        Ended::Panicked(msg) => (
            Verdict::Error,
            format!("the drill panicked ({msg}); its journaled changes were reverted"),
        ),
        Ended::Cancelled(sig) => (
            Verdict::Error,
            format!("interrupted by {sig}; the fault was reverted"),
        ),
    };
    if !outside.is_empty() {
        let what = format!(
            "the fault was reverted outside this run while the drill measured ({})",
            outside.join("; ")
        );
        if verdict == Verdict::Pass {
            notes.push(format!("{what}, after the alert had fired"));
        } else {
            // Not "the alert did not fire": the fault was not there to fire it.
            verdict = Verdict::Error;
            reason = format!("{what}, so the drill measured nothing; without that: {reason}");
        }
    }
    if !revert_errors.is_empty() {
        verdict = Verdict::Error;
        reason = format!("{reason}; REVERT FAILED: {}", revert_errors.join("; "));
        if matches!(ended, Ended::Cancelled(_)) {
            reason = reason.replace("; the fault was reverted", "");
        }
    }
    let timeline = match m {
        Some(m) => m.timeline().clone(),
        None => {
            let mut t = Timeline::default();
            if let Some(s) = lock(scratch).inject_started {
                t.set(EventKind::InjectStarted, s, "firedrill clock");
                t.set(EventKind::RevertDone, revert_done, "firedrill clock");
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
        trial: n,
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
        reverted: revert_errors.is_empty(),
        revert_error: (!revert_errors.is_empty()).then(|| revert_errors.join("; ")),
        notes,
    }
}

fn sources(env: &DrillEnv) -> Sources {
    Sources {
        prometheus: env.prometheus.clone(),
        alertmanager: env.alertmanager.clone(),
        poll_interval: env.options.poll_interval,
        clock: env.clock.clone(),
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

fn entry(
    plan: &DrillPlan,
    n: u32,
    at: DateTime<Utc>,
    record: FaultRecord,
    fault: String,
    original: Value,
    injected: Value,
) -> JournalEntry {
    let manual_recovery = fault::manual_fix(&record, &original);
    JournalEntry {
        id: 0,
        drill: plan.name.clone(),
        trial: n,
        fault,
        record,
        original,
        injected,
        status: EntryStatus::Injecting,
        journaled_at: at,
        injected_at: None,
        reverted_at: None,
        error: None,
        note: None,
        manual_recovery,
    }
}

/// silence -> read original -> journal -> inject -> trigger -> watch.
#[allow(clippy::too_many_arguments)]
async fn trial_body(
    plan: DrillPlan,
    n: u32,
    missing: Vec<String>,
    env: DrillEnv,
    journal: Arc<Mutex<Journal>>,
    machine: SharedMachine,
    scratch: Arc<Mutex<Scratch>>,
    label: String,
) -> BodyEnd {
    let failed = |stage: &str, error: String| BodyEnd::Failed {
        stage: stage.to_string(),
        error,
    };
    let mut progress = Progress::new(env.progress.clone(), &label);

    // Never inject while the alert is already active (just after a stack
    // start, or an earlier trial's alert not yet resolved).
    let quiet_limit = plan.resolve_timeout.max(QUIET_FLOOR);
    match wait_until_quiet(
        &sources(&env),
        &plan.alert,
        &plan.expect_labels,
        quiet_limit,
        &mut progress,
    )
    .await
    {
        Quiet::AtOnce => {}
        Quiet::After(d) => lock(&scratch).notes.push(format!(
            "waited {:.1}s for {} to clear before injecting",
            d.as_secs_f64(),
            plan.alert
        )),
        Quiet::StillActive(reason) => return BodyEnd::NotQuiet(reason),
    }

    if plan.silence {
        if let Err(e) = create_silence(&plan, n, &env, &journal, &scratch).await {
            return failed("create the Alertmanager silence", e);
        }
    }

    let driver = match fault::for_plan(&plan.fault, &env.faults) {
        Ok(d) => d,
        Err(e) => return failed("set up the fault", e.to_string()),
    };
    let prepared = match driver.prepare().await {
        Ok(p) => p,
        Err(e) => return failed("read the original state", e.to_string()),
    };
    let id = {
        let e = entry(
            &plan,
            n,
            env.clock.now(),
            prepared.record.clone(),
            prepared.description.clone(),
            prepared.original.clone(),
            prepared.injected.clone(),
        );
        match lock(&journal).add(e) {
            Ok(id) => id,
            // Not journaled, so not injected.
            Err(e) => {
                return failed(
                    "journal the original state (nothing was injected)",
                    e.to_string(),
                )
            }
        }
    };
    lock(&scratch).entry_ids.push(id);

    // Subscribe before injecting so no notification is missed.
    let mut notifications = env.notifications.as_ref().map(|f| f.subscribe());
    let inject_started = env.clock.now();
    lock(&scratch).inject_started = Some(inject_started);
    progress.line(&format!("injecting: {}", prepared.description));
    if let Err(e) = driver.inject(&prepared).await {
        return failed("inject the fault", e.to_string());
    }
    let inject_done = env.clock.now();
    if let Err(e) = lock(&journal).update(id, |e| {
        e.status = EntryStatus::Injected;
        e.injected_at = Some(inject_done);
    }) {
        return failed("journal the injection", e.to_string());
    }

    let mut cfg = MachineConfig::new(
        &plan.alert,
        plan.expect_labels.clone(),
        plan.deadline,
        plan.resolve_timeout,
    );
    cfg.watch_alertmanager = env.alertmanager.is_some();
    cfg.am_grace = env.options.am_grace;
    cfg.settle = env.options.settle;
    cfg.missing_metrics = missing;
    if env.notifications.is_some() && !plan.silence {
        cfg.await_notification = Some(env.options.notify_grace);
    }
    *lock(&machine) = Some(Machine::new(cfg, inject_started, inject_done));

    if let Some(t) = &plan.trigger {
        match &env.trigger {
            Some(trigger) => match trigger(t).await {
                Ok(()) => {
                    let at = env.clock.now();
                    if let Some(m) = lock(&machine).as_mut() {
                        m.record(
                            EventKind::TriggerSent,
                            at,
                            &format!("trigger: probe {}", t.probe),
                        );
                    }
                }
                Err(e) => lock(&scratch).notes.push(format!(
                    "trigger (probe {}) failed: {e}; the alert may never fire",
                    t.probe
                )),
            },
            None => lock(&scratch).notes.push(format!(
                "the drill asks for a trigger (probe {}) but none was wired; ran without it",
                t.probe
            )),
        }
    }

    let d = watch(
        &machine,
        &sources(&env),
        &mut notifications,
        None,
        &mut progress,
    )
    .await;
    progress.finish();
    BodyEnd::Decided(d)
}

async fn create_silence(
    plan: &DrillPlan,
    n: u32,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    scratch: &Arc<Mutex<Scratch>>,
) -> Result<(), String> {
    let am = env.alertmanager.as_ref().ok_or("no Alertmanager")?;
    let now = env.clock.now();
    let length = plan.deadline + plan.resolve_timeout + env.options.silence_margin;
    let ends_at = crate::timemath::after(now, length);
    let mut matchers = vec![Matcher {
        name: "alertname".into(),
        value: plan.alert.clone(),
        is_regex: false,
        is_equal: true,
    }];
    matchers.extend(plan.expect_labels.iter().map(|(k, v)| Matcher {
        name: k.clone(),
        value: v.clone(),
        is_regex: false,
        is_equal: true,
    }));
    let record = FaultRecord::Silence {
        alertmanager_url: am.base_url().to_string(),
        silence_id: None,
        ends_at,
    };
    let desc = format!(
        "Alertmanager silence for {}{} until {}",
        plan.alert,
        format_labels(&plan.expect_labels),
        super::machine::fmt_time(ends_at)
    );
    let e = entry(plan, n, now, record, desc, Value::Null, json!(matchers));
    let id = lock(journal).add(e).map_err(|e| e.to_string())?;
    lock(scratch).entry_ids.push(id);
    let silence = NewSilence {
        matchers,
        starts_at: now,
        ends_at,
        created_by: "firedrill".into(),
        comment: format!("firedrill drill {} run {}", plan.name, env.run_id),
    };
    let sid = am
        .create_silence(&silence)
        .await
        .map_err(|e| e.to_string())?;
    lock(journal)
        .update(id, |e| {
            if let FaultRecord::Silence { silence_id, .. } = &mut e.record {
                *silence_id = Some(sid.clone());
            }
            e.manual_recovery = fault::manual_fix(&e.record, &e.original);
            e.injected_at = Some(now);
            e.status = EntryStatus::Injected;
        })
        .map_err(|e| e.to_string())
}

/// What reverting a trial's entries found.
#[derive(Debug, Default)]
struct RevertOutcome {
    /// One message per failed revert.
    errors: Vec<String>,
    /// Faults that were injected but found already reverted: something
    /// outside this run undid them while the drill was measuring.
    outside: Vec<String>,
}

/// Reverts journal entries `ids` (in reverse order of injection), updating
/// the journal for each. Bounded by `revert_deadline`; signals during it are
/// logged and ignored.
async fn revert_entries(
    ids: &[u32],
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    progress: &mut Progress,
) -> RevertOutcome {
    let todo: Vec<JournalEntry> = {
        let j = lock(journal);
        ids.iter()
            .rev()
            .filter_map(|id| j.entry(*id).cloned())
            .filter(|e| e.status != EntryStatus::Reverted)
            .collect()
    };
    if todo.is_empty() {
        return RevertOutcome::default();
    }
    let task = tokio::spawn({
        let journal = journal.clone();
        let ctx = env.faults.clone();
        let clock = env.clock.clone();
        let todo = todo.clone();
        async move {
            let mut out = RevertOutcome::default();
            for e in todo {
                let r = fault::revert(&e.record, &e.original, &e.injected, &ctx).await;
                let at = clock.now();
                let update = lock(&journal).update(e.id, |x| match &r {
                    Ok(done) => {
                        x.status = EntryStatus::Reverted;
                        x.reverted_at = Some(at);
                        x.error = None;
                        if let Some(note) = done.note() {
                            x.note = Some(note.to_string());
                        }
                    }
                    Err(err) => {
                        x.status = EntryStatus::RevertFailed;
                        x.error = Some(err.to_string());
                    }
                });
                match &r {
                    Err(err) => out.errors.push(format!("{}: {err}", e.fault)),
                    // Only a fault known to be live counts: one still
                    // `injecting` may never have reached its target.
                    Ok(Reverted::AlreadyReverted(n)) if e.status == EntryStatus::Injected => {
                        out.outside.push(n.clone())
                    }
                    Ok(_) => {}
                }
                if let Err(j) = update {
                    out.errors.push(format!(
                        "{}: reverted, but the journal could not record it: {j}",
                        e.fault
                    ));
                }
            }
            out
        }
    });
    tokio::pin!(task);
    let deadline = tokio::time::sleep(env.options.revert_deadline);
    tokio::pin!(deadline);
    let mut signals = env.signals.clone();
    let mut seen = signals.count();
    let out = loop {
        tokio::select! {
            biased;
            r = &mut task => break match r {
                Ok(out) => out,
                Err(e) => RevertOutcome {
                    errors: vec![format!("the revert task failed: {e}")],
                    outside: Vec::new(),
                },
            },
            () = &mut deadline => {
                task.abort();
                // An aborted task ends at its next poll; wait for it, so it
                // drops its hold on the journal (and its lock) before the
                // run reports, and its command's process group is killed.
                let _ = (&mut task).await;
                let msg = format!(
                    "the revert did not finish within {}",
                    humantime::format_duration(env.options.revert_deadline)
                );
                let mut j = lock(journal);
                let mut errors = Vec::new();
                for e in &todo {
                    if j.entry(e.id).is_some_and(|x| x.status != EntryStatus::Reverted) {
                        let _ = j.update(e.id, |x| {
                            x.status = EntryStatus::RevertFailed;
                            x.error = Some(msg.clone());
                        });
                        errors.push(format!("{}: {msg}", e.fault));
                    }
                }
                break RevertOutcome { errors, outside: Vec::new() };
            }
            () = signals.after(seen) => {
                seen = signals.count();
                progress.line(&format!(
                    "{} received while reverting: ignored; the revert goes on (giving up after {})",
                    signals.last_name(),
                    humantime::format_duration(env.options.revert_deadline)
                ));
            }
        }
    };
    let j = lock(journal);
    for e in &todo {
        match j.entry(e.id) {
            Some(x) if x.status == EntryStatus::Reverted => match &x.note {
                Some(n) => progress.line(&format!("reverted: {} ({n})", e.record.revert_action())),
                None => progress.line(&format!("reverted: {}", e.record.revert_action())),
            },
            Some(x) => progress.line(&format!(
                "REVERT FAILED: {}: {}",
                e.fault,
                x.error.as_deref().unwrap_or("unknown error")
            )),
            None => {}
        }
    }
    out
}
