//! What a drill run needs (the environment, its options) and how a run as a
//! whole ends (its outcome, or why no drill ran at all).

use super::fault::FaultContext;
use super::journal::{JournalError, Unrecovered};
use super::preflight::MissingMetrics;
use super::progress::ProgressSink;
use super::watch::{Clock, NotificationFeed, Sources, SystemClock};
use crate::clients::alertmanager::Alertmanager;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::report::model::DrillResult;
use crate::signals::SignalSource;
use crate::spec::drill::Trigger;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Publishes the sentinels a drill asks for (its `[trigger]`: the probe name
/// and count come with each call); wired by the caller.
pub type TriggerSender =
    Arc<dyn Fn(&Trigger) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

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
    /// Run drills whose faults cannot interfere at the same time, in the
    /// groups [`super::footprint::plan_groups`] forms (`--parallel`).
    pub parallel: bool,
    /// With `parallel`: re-run alone, after the groups, every drill whose
    /// verdict may have been disturbed (crosstalk in its group, or its
    /// alert already active before its inject) (`--retry-serial`).
    pub retry_serial: bool,
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
            parallel: false,
            retry_serial: false,
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
    pub trigger: Option<TriggerSender>,
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

    /// What the watch loop polls.
    pub fn sources(&self) -> Sources {
        Sources {
            prometheus: self.prometheus.clone(),
            alertmanager: self.alertmanager.clone(),
            poll_interval: self.options.poll_interval,
            clock: self.clock.clone(),
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
        crate::exit::for_drill_error(self)
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
    /// With `--parallel`: the groups as they ran.
    pub groups: Vec<crate::report::model::DrillGroup>,
    pub outcome: RunOutcome,
    pub journal: PathBuf,
}

impl DrillRun {
    /// 5 revert failed > 4 interrupted > 1 a drill failed > 3 error > 0.
    pub fn exit_code(&self) -> ExitCode {
        crate::exit::for_drill_run(&self.outcome, &self.results)
    }
}
