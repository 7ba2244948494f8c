//! Induced-failure drills: inject a named fault, time the matching alert
//! through Prometheus, Alertmanager and a webhook receiver, then always revert.
//!
//! Entry points:
//! - [`run_drills`]`(&[DrillSpec], &DrillEnv) -> Result<DrillRun, DrillError>`;
//!   [`DrillRun::exit_code`] and [`DrillError::exit_code`] map outcomes to
//!   exit codes (4 interrupted and reverted, 5 a revert failed or an earlier
//!   run left an unrecovered journal).
//! - [`recover`]`(Option<PathBuf>, reports_dir, &FaultContext)` re-reverts
//!   what a killed run left (`firedrill recover [--journal]`).
//! - [`install_signal_handlers`] turns SIGINT/SIGTERM into the
//!   [`SignalSource`] the runner watches.
//!
//! Layout: `machine` (pure state machine), `timeline` (pure numbers and
//! stats), `journal` (fsynced record of every change), `fault/` (the
//! contract, one driver per fault kind, reverts driven by the journal),
//! `preflight`, `watch` (the event loop), `progress`, `signal`, `recover`,
//! `runner`.

pub mod coverage;
mod env;
pub mod fault;
pub mod footprint;
pub mod group;
pub mod journal;
pub mod machine;
pub mod preflight;
pub mod progress;
pub mod recover;
mod revert;
pub mod runner;
pub mod timeline;
pub mod trial;
pub mod watch;

pub use crate::signals::{install_signal_handlers, SignalSource, SignalTrigger};
pub use env::{DrillEnv, DrillError, DrillOptions, DrillRun, RunOutcome, TriggerSender};
pub use machine::{Notification, NotifiedAlert};
pub use recover::{recover, RecoverReport};
pub use runner::{check_can_drill, run_drills};
