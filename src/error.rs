//! The top-level error, and the one place that maps errors to exit codes.

use crate::exit::ExitCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Stack(#[from] crate::stack::StackError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    #[error(transparent)]
    Nats(#[from] crate::clients::nats::NatsError),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error(transparent)]
    Prometheus(#[from] crate::clients::prometheus::PromError),
    #[error("cannot write the report into {path}: {source}. Check that the directory is writable, or pass --reports-dir")]
    ReportWrite {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Drill(#[from] crate::drill::DrillError),
    #[error(transparent)]
    Journal(#[from] crate::drill::journal::JournalError),
    #[error("{0}")]
    Usage(String),
    /// The machine refused something firedrill needs locally (a loopback
    /// port, a listener): not the user's input, so exit 3, not 2.
    #[error("{0}")]
    Local(String),
    #[error("interrupted by {0}; everything firedrill started was stopped")]
    Interrupted(&'static str),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        crate::exit::for_error(self)
    }
}
