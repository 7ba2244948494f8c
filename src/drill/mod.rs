//! Induced-failure drills: inject a named fault, time the matching alert
//! through Prometheus, Alertmanager and a webhook receiver, then always revert.

pub mod fault;
pub mod fault_exec;
pub mod fault_fleet;
pub mod fault_kube;
pub mod journal;
pub mod machine;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod recover;
pub mod runner;
pub mod signal;
pub mod timeline;
pub mod watch;

pub use machine::{Notification, NotifiedAlert};
pub use plan::{DrillPlan, FaultPlan, TriggerPlan};
pub use recover::{recover, RecoverReport};
pub use runner::{run_drills, DrillEnv, DrillError, DrillOptions, DrillRun, RunOutcome, Trigger};
pub use signal::{install_signal_handlers, SignalSource, SignalTrigger};
