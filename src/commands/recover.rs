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
    let report = crate::drill::recover(args.journal.clone(), &global.reports_dir, &ctx).await;
    println!("{}", report.summary());
    Ok(report.exit_code())
}
