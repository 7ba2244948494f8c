//! Acceptance criteria: PromQL over the run window -> verdicts.
//!
//! [`verdict`] decides from a query result (pure, table-tested); [`run`]
//! renders the queries, asks Prometheus and attaches links.

pub mod run;
pub mod verdict;

pub use run::{run_criteria, runtime_vars, window_seconds};
pub use verdict::{evaluate, NO_DATA, SNAPSHOT_PENDING};
