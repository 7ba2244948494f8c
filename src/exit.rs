//! The one place that defines process exit codes (see DESIGN.md).

/// Process exit codes, documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Everything passed.
    Success = 0,
    /// A criterion, probe or drill failed.
    Failed = 1,
    /// Usage or spec error.
    Usage = 2,
    /// A dependency was unreachable or answered an error.
    Dependency = 3,
    /// Interrupted; every fault was reverted.
    Interrupted = 4,
    /// A revert failed: a fault may still be live.
    RevertFailed = 5,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The exit-code table as a literal, so `--help` can `concat!` it.
#[macro_export]
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0  all passed
  1  a criterion, probe or drill failed
  2  usage or spec error
  3  a dependency was unreachable or answered an error
  4  interrupted, faults reverted
  5  a revert failed (a fault may be live: the report says what and how to recover)"
    };
}

/// Text for `--help`.
pub const EXIT_CODES_HELP: &str = exit_codes_help!();
