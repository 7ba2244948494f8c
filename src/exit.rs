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

// Every outcome -> exit code mapping lives below, so the precedence is
// written once: 5 a revert failed (a fault may be live) > 4 interrupted >
// 1 something failed > 3 a dependency errored > 0.

/// Any error that stopped a command before it could write a report.
pub fn for_error(e: &crate::error::Error) -> ExitCode {
    use crate::error::Error;
    match e {
        Error::Spec(_) | Error::Usage(_) => ExitCode::Usage,
        // The target's own rule files, their templates and its scrape jobs:
        // the user's input, not a dependency.
        Error::Stack(
            crate::stack::StackError::RulesInvalid { .. }
            | crate::stack::StackError::RulesTemplate { .. }
            | crate::stack::StackError::InvalidOptions(_),
        ) => ExitCode::Usage,
        Error::Interrupted(_) => ExitCode::Interrupted,
        Error::Drill(e) => for_drill_error(e),
        Error::Stack(_)
        | Error::Fleet(_)
        | Error::Nats(_)
        | Error::Probe(_)
        | Error::Prometheus(_)
        | Error::Journal(_)
        | Error::Local(_)
        | Error::ReportWrite { .. } => ExitCode::Dependency,
    }
}

/// Why no drill ran: not allowed / silence without Alertmanager -> 2; an
/// earlier run's unrecovered journal -> 5 (a fault may be live); journal
/// I/O -> 3.
pub fn for_drill_error(e: &crate::drill::DrillError) -> ExitCode {
    use crate::drill::DrillError;
    match e {
        DrillError::NotAllowed { .. } | DrillError::SilenceWithoutAlertmanager { .. } => {
            ExitCode::Usage
        }
        DrillError::UnrecoveredJournal { .. } => ExitCode::RevertFailed,
        DrillError::Journal(_) => ExitCode::Dependency,
    }
}

/// A drill run: 5 revert failed > 4 interrupted > 1 a drill failed > 3 a
/// drill errored > 0.
pub fn for_drill_run(
    outcome: &crate::drill::RunOutcome,
    results: &[crate::report::model::DrillResult],
) -> ExitCode {
    use crate::drill::RunOutcome;
    use crate::report::Verdict;
    match outcome {
        RunOutcome::RevertFailed => return ExitCode::RevertFailed,
        RunOutcome::Interrupted { .. } => return ExitCode::Interrupted,
        RunOutcome::Completed => {}
    }
    match results.iter().map(|r| r.verdict).max() {
        Some(Verdict::Fail) => ExitCode::Failed,
        Some(Verdict::Error) => ExitCode::Dependency,
        _ => ExitCode::Success,
    }
}

/// `recover`: 0 when everything is reverted (or was, or is a live run's or
/// another host's to revert); 5 when a revert failed, a journal could not be
/// read, or a signal stopped it before the end (a fault may be live).
pub fn for_recover(r: &crate::drill::RecoverReport) -> ExitCode {
    if r.failed.is_empty() && r.unreadable.is_empty() && r.stopped_by.is_none() {
        ExitCode::Success
    } else {
        ExitCode::RevertFailed
    }
}

/// A written report: a failed revert outranks everything (a fault may be
/// live), then an interruption, then the report's verdict.
pub fn for_report(report: &crate::report::model::Report) -> ExitCode {
    use crate::report::Verdict;
    if report.drills.iter().any(|d| d.manual_recovery.is_some()) {
        return ExitCode::RevertFailed;
    }
    if report.interrupted {
        return ExitCode::Interrupted;
    }
    match report.verdict {
        Verdict::Fail => ExitCode::Failed,
        Verdict::Error => ExitCode::Dependency,
        _ => ExitCode::Success,
    }
}

/// `--fail-on-regression`: a regression past its threshold makes the run
/// fail (1), unless something outranks a fail (4, 5).
pub fn with_regressions(
    code: ExitCode,
    report: &crate::report::model::Report,
    fail_on_regression: bool,
) -> ExitCode {
    let regressed = report
        .baseline
        .as_ref()
        .is_some_and(|b| b.regressions().next().is_some());
    match code {
        ExitCode::Success | ExitCode::Dependency if fail_on_regression && regressed => {
            ExitCode::Failed
        }
        other => other,
    }
}

/// `snapshot`: created and read back -> 0; created but not read back -> 1;
/// Grafana failed -> 3 (not configured is a usage error, raised earlier).
pub fn for_snapshot(created: Option<bool>) -> ExitCode {
    match created {
        Some(true) => ExitCode::Success,
        Some(false) => ExitCode::Failed,
        None => ExitCode::Dependency,
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
