//! Acceptance criteria: PromQL over the run window, and the run's Grafana
//! snapshot -> verdicts.
//!
//! [`verdict`] decides a PromQL criterion from a query result and
//! [`snapshot`] a snapshot criterion from the snapshot's outcome (both
//! pure, table-tested); [`run`] renders the queries, asks Prometheus and
//! attaches links.

pub mod run;
pub mod snapshot;
pub mod verdict;

pub use run::{run_criteria, runtime_vars, window_seconds};
pub use snapshot::{
    decide_snapshot_criteria, snapshot_name, snapshot_verdict, SnapshotOutcome, SNAPSHOT_PENDING,
};
pub use verdict::{evaluate, NO_DATA};
