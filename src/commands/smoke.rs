//! `firedrill smoke`: the whole pipeline on a local real stack.

use super::run::{execute, RunOptions};
use super::*;
use crate::cli::SmokeArgs;
use crate::exit::ExitCode;

pub async fn run(global: &Global, args: &SmokeArgs) -> Result<ExitCode, Error> {
    execute(
        global,
        RunOptions {
            command: "smoke",
            target: crate::spec::target::LOCAL_TARGET.to_string(),
            count: args.count,
            drills: args
                .drills
                .iter()
                .filter(|d| !d.is_empty())
                .cloned()
                .collect(),
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
