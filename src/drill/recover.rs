//! `firedrill recover`: re-reverts whatever a killed or failed run left.

use super::fault::{self, FaultContext, FaultRecord};
use super::journal::{journal_paths, Journal, JournalError};
use crate::exit::ExitCode;
use crate::signals::SignalSource;
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `recover` did, one line per entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoverReport {
    pub journals: Vec<PathBuf>,
    pub reverted: Vec<String>,
    pub failed: Vec<String>,
    /// Journals that could not be read or recorded (their faults may be live).
    pub unreadable: Vec<String>,
    /// Journals of runs that are still live: left to their owners.
    pub live: Vec<String>,
    /// Journals written on another host, left alone unless named with
    /// `--journal` (a downloaded artifact must not run its commands here).
    pub other_host: Vec<String>,
    /// Set when a signal stopped `recover` between two reverts.
    pub stopped_by: Option<String>,
}

/// How `recover` runs: each revert bounded, signals honoured between
/// reverts only.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// Longest one revert may take (the drill's own hard deadline).
    pub revert_deadline: Duration,
    pub signals: SignalSource,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            revert_deadline: super::env::DrillOptions::default().revert_deadline,
            signals: SignalSource::never(),
        }
    }
}

impl RecoverReport {
    pub fn nothing_to_do(&self) -> bool {
        self.reverted.is_empty()
            && self.failed.is_empty()
            && self.unreadable.is_empty()
            && self.live.is_empty()
            && self.other_host.is_empty()
    }

    /// 0 when everything is reverted (or was already, or is a live run's
    /// to revert), 5 when a revert failed or a journal could not be read
    /// (either way a fault may be live).
    pub fn exit_code(&self) -> ExitCode {
        crate::exit::for_recover(self)
    }

    /// Human summary for the terminal.
    pub fn summary(&self) -> String {
        if self.nothing_to_do() {
            let which: Vec<String> = self
                .journals
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return if which.is_empty() {
                "nothing to recover: no drill journal found".into()
            } else {
                format!(
                    "nothing to recover: every entry is already reverted in {}",
                    which.join(", ")
                )
            };
        }
        let mut s = String::new();
        for r in &self.reverted {
            s.push_str(&format!("reverted: {r}\n"));
        }
        for f in &self.failed {
            s.push_str(&format!("REVERT FAILED: {f}\n"));
        }
        for u in &self.unreadable {
            s.push_str(&format!("UNREADABLE JOURNAL: {u}\n"));
        }
        for l in &self.live {
            s.push_str(&format!("left alone: {l}\n"));
        }
        for o in &self.other_host {
            s.push_str(&format!("left alone: {o}\n"));
        }
        if let Some(sig) = &self.stopped_by {
            s.push_str(&format!(
                "stopped by {sig} after the revert in progress; run firedrill recover again for the rest\n"
            ));
        }
        s.pop();
        s
    }
}

/// Reverts every entry not yet `reverted` in `journal`, or in every
/// `<reports_dir>/*/journal.json` when `journal` is `None`; marks each
/// reverted (or revert_failed with the error). Idempotent: a second run finds
/// nothing to do. Faults are reverted before silences, newest first. A
/// journal that cannot be read, or whose run is still live, is named in the
/// report and the others are still recovered.
pub async fn recover(
    journal: Option<PathBuf>,
    reports_dir: &Path,
    ctx: &FaultContext,
) -> RecoverReport {
    recover_with(journal, reports_dir, ctx, &RecoverOptions::default()).await
}

/// [`recover`] with its bounds and signal source.
pub async fn recover_with(
    journal: Option<PathBuf>,
    reports_dir: &Path,
    ctx: &FaultContext,
    opts: &RecoverOptions,
) -> RecoverReport {
    let named = journal.is_some();
    let paths = match journal {
        Some(p) => vec![p],
        None => journal_paths(reports_dir),
    };
    let mut report = RecoverReport {
        journals: paths.clone(),
        ..RecoverReport::default()
    };
    for path in paths {
        if opts.signals.count() > 0 {
            report.stopped_by = Some(opts.signals.last_name());
            break;
        }
        let mut j = match Journal::open(&path) {
            Ok(j) => j,
            Err(e @ JournalError::Live { .. }) => {
                report.live.push(e.to_string());
                continue;
            }
            Err(e) => {
                report.unreadable.push(e.to_string());
                continue;
            }
        };
        if let Some(owner) = j
            .doc()
            .owner
            .as_ref()
            .filter(|o| !named && !o.is_this_host())
        {
            report.other_host.push(format!(
                "{} was written on host {} (this is not it): recover it there, or pass --journal {} to run its reverts here deliberately",
                path.display(),
                owner.host,
                path.display()
            ));
            continue;
        }
        if let Err(e) = recover_journal(&mut j, &path, ctx, opts, &mut report).await {
            report.unreadable.push(format!(
                "{e} (the revert itself may have happened; run firedrill recover again)"
            ));
        }
    }
    report
}

async fn recover_journal(
    j: &mut Journal,
    path: &Path,
    ctx: &FaultContext,
    opts: &RecoverOptions,
    report: &mut RecoverReport,
) -> Result<(), JournalError> {
    let mut todo: Vec<_> = j.unreverted().into_iter().cloned().collect();
    todo.reverse();
    todo.sort_by_key(|e| matches!(e.record, FaultRecord::Silence { .. }));
    for e in todo {
        if opts.signals.count() > 0 {
            report.stopped_by = Some(opts.signals.last_name());
            return Ok(());
        }
        let what = format!(
            "drill {} trial {}: {} ({}; {})",
            e.drill,
            e.trial,
            e.fault,
            e.record.revert_action(),
            path.display()
        );
        // Bounded like the drill's own revert; dropping an exec revert
        // kills its whole process group.
        let r = match tokio::time::timeout(
            opts.revert_deadline,
            fault::revert(&e.record, &e.original, &e.injected, ctx),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(fault::FaultError::Config(format!(
                "the revert did not finish within {}; its process group was killed",
                humantime::format_duration(opts.revert_deadline)
            ))),
        };
        let now = Utc::now();
        j.update(e.id, |x| {
            x.record_revert(&r, now, Some("firedrill recover"))
        })?;
        match r {
            Ok(done) => match done.note() {
                None => report.reverted.push(what),
                Some(n) => report.reverted.push(format!("{what}: {n}")),
            },
            Err(err) => report
                .failed
                .push(format!("{what}: {err}. By hand: {}", e.manual_recovery)),
        }
    }
    Ok(())
}
