//! `firedrill validate`: the live rule audit (see [`crate::validate`]).

use super::*;
use crate::cli::ValidateArgs;
use crate::clients::prometheus::{PromError, Prometheus};
use crate::exit::ExitCode;
use crate::local::{wait_for_first_scrape, LocalEnv};
use crate::report::model::Finding;
use crate::signals::shutdown_signal;
use chrono::Utc;
use std::time::Duration;

/// How long the local stack may take to scrape the fleet once.
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(global: &Global, args: &ValidateArgs) -> Result<ExitCode, Error> {
    let plan = load(global, &args.target)?;
    let start = Utc::now();
    let (info, findings) = if plan.target.is_local() {
        let env = tokio::select! {
            env = LocalEnv::start(&plan.target) => env?,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        };
        let live = Live::of(&plan.target, Some(&env));
        let prom = Prometheus::new(&live.prometheus);
        let info = live.target_info(&plan.target);
        let findings = tokio::select! {
            f = local_audit(&prom, &plan) => f,
            sig = shutdown_signal() => {
                env.shutdown().await;
                return Err(Error::Interrupted(sig));
            }
        };
        env.shutdown().await;
        (info, findings)
    } else {
        let live = Live::of(&plan.target, None);
        let prom = Prometheus::new(&live.prometheus);
        let info = live.target_info(&plan.target);
        (info, crate::validate::audit(&prom, &plan, Utc::now()).await)
    };
    let findings = findings?;
    let window = RunWindow {
        start,
        end: Utc::now(),
    };
    let mut report = new_report("validate", &crate::runinfo::new_run_id(start), info, window);
    report.validation = findings;
    match crate::report::console::validation_table(&report) {
        Some(t) => println!("{t}"),
        None => println!("rule audit: no findings"),
    }
    let dir = write_report(&mut report, &global.reports_dir)?;
    let errors = report
        .validation
        .iter()
        .filter(|f| f.severity == crate::report::model::Severity::Error)
        .count();
    println!(
        "verdict: {}  ({errors} error finding(s))  report: {}",
        report.verdict,
        dir.join("report.md").display()
    );
    Ok(exit_code_for(&report))
}

/// Waits for the fleet's first scrape, so its metrics have series, then audits.
async fn local_audit(
    prom: &Prometheus,
    plan: &crate::spec::Plan,
) -> Result<Vec<Finding>, PromError> {
    if !wait_for_first_scrape(prom, FIRST_SCRAPE_TIMEOUT).await {
        tracing::warn!(
            "Prometheus did not scrape the fleet within {FIRST_SCRAPE_TIMEOUT:?}; auditing anyway"
        );
    }
    crate::validate::audit(prom, plan, Utc::now()).await
}
