//! `firedrill smoke`: the whole pipeline on a local real stack.

use super::run::{execute, RunOptions};
use super::*;
use crate::cli::SmokeArgs;
use crate::exit::ExitCode;

pub async fn run(global: &Global, args: &SmokeArgs) -> Result<ExitCode, Error> {
    // Refused before anything loads: smoke starts its own stack.
    let plan = load_parts(global, &args.target, crate::spec::Parts::NONE)?;
    if !plan.target.is_local() {
        return Err(Error::Usage(format!(
            "smoke runs on a local stack it starts itself, and target `{}` is a deployed platform; use `firedrill run --target {}` for it, or pick a target with stack = \"local\"",
            plan.target.name, plan.target.name
        )));
    }
    execute(
        global,
        RunOptions {
            command: "smoke",
            target: args.target.clone(),
            count: args.count,
            drills: args
                .drills
                .as_ref()
                .map(|d| d.iter().filter(|d| !d.is_empty()).cloned().collect()),
            trials: None,
            parallel: false,
            retry_serial: false,
            extra_window: std::time::Duration::ZERO,
            settle: None,
            require_snapshot: false,
            github_check: false,
            open_issue_on_failure: false,
            min_coverage: None,
            baseline: args.baseline.clone(),
        },
    )
    .await
}
