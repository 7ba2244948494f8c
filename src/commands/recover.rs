//! `firedrill recover`: re-revert what a killed run left behind.

use super::*;
use crate::cli::RecoverArgs;
use crate::drill::fault::{kube::KubeAccess, FaultContext};
use crate::exit::ExitCode;

pub async fn run(global: &Global, args: &RecoverArgs) -> Result<ExitCode, Error> {
    if let Some(j) = &args.journal {
        if !j.is_file() {
            return Err(Error::Usage(format!(
                "no journal at {}; journals are written to <reports dir>/<run-id>/journal.json (omit --journal to recover every journal under {})",
                j.display(),
                global.reports_dir.display()
            )));
        }
    }
    // Fleet URLs and kube objects come from each journal entry itself.
    let ctx = FaultContext::new(None, KubeAccess::from_env());
    // Signals are recorded, not fatal: the revert in progress finishes (or
    // hits its bound and has its process group killed), then recover stops.
    let opts = crate::drill::recover::RecoverOptions {
        signals: crate::signals::source(),
        revert_deadline: args.revert_deadline,
    };
    let report =
        crate::drill::recover::recover_with(args.journal.clone(), &global.reports_dir, &ctx, &opts)
            .await;
    println!("{}", report.summary());
    Ok(report.exit_code())
}
