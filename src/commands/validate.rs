//! `firedrill validate`: the live rule audit (see [`crate::validate`]) and,
//! when the target has an Alertmanager, the routing audit.

use super::*;
use crate::cli::ValidateArgs;
use crate::clients::alertmanager::Alertmanager;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::local::{wait_for_first_scrape, LocalEnv};
use crate::report::model::{AlertRoute, Check, Finding, Severity};
use crate::signals::shutdown_signal;
use chrono::Utc;
use std::time::Duration;

/// How long the local stack may take to scrape the fleet once.
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(global: &Global, args: &ValidateArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            criteria: true,
            drills: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    let start = Utc::now();
    let mut rule_files = Vec::new();
    let (info, audited) = if plan.target.is_local() {
        let env = tokio::select! {
            env = LocalEnv::start(&plan.target) => env?,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        };
        let live = Live::of(&plan.target, Some(&env));
        let info = live.target_info(&plan.target);
        let audited = tokio::select! {
            a = audit_live(&live, &plan, true) => a,
            sig = shutdown_signal() => {
                env.shutdown().await;
                return Err(Error::Interrupted(sig));
            }
        };
        rule_files = env.stack.rule_files.clone();
        env.shutdown().await;
        (info, audited)
    } else {
        let live = Live::of(&plan.target, None);
        let info = live.target_info(&plan.target);
        (info, audit_live(&live, &plan, false).await)
    };
    let (findings, routes) = audited?;
    let window = RunWindow {
        start,
        end: Utc::now(),
    };
    let mut report = new_report("validate", &crate::runinfo::new_run_id(start), info, window);
    report.validation = findings;
    report.routes = routes;
    report.rename_rule_files(&rule_files);
    match crate::report::console::validation_table(&report) {
        Some(t) => println!("{t}"),
        None => println!("rule audit: no findings"),
    }
    let dir = write_report(&mut report, &global.reports_dir)?;
    let errors = report
        .validation
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!(
        "verdict: {}  ({errors} error finding(s))  report: {}",
        report.verdict,
        dir.join("report.md").display()
    );
    Ok(exit_code_for(&report))
}

/// The rule audit, then the routing audit when there is an Alertmanager.
/// Locally, waits for the fleet's first scrape first, so its metrics have
/// series.
async fn audit_live(
    live: &Live,
    plan: &crate::spec::Plan,
    local: bool,
) -> Result<(Vec<Finding>, Vec<AlertRoute>), Error> {
    let prom = Prometheus::new(&live.prometheus);
    let fleet = local && plan.target.fleet().is_some();
    if fleet && !wait_for_first_scrape(&prom, FIRST_SCRAPE_TIMEOUT).await {
        tracing::warn!(
            "Prometheus did not scrape the fleet within {FIRST_SCRAPE_TIMEOUT:?}; auditing anyway"
        );
    }
    let started = std::time::Instant::now();
    let (mut findings, rules) = crate::validate::audit_loaded(&prom, plan, Utc::now()).await?;
    tracing::debug!(
        "rule audit: {} rules in {:?}",
        rules.len(),
        started.elapsed()
    );
    let mut routes = Vec::new();
    match &live.alertmanager {
        Some(url) => {
            let am = Alertmanager::new(url);
            match crate::validate::audit_routing(&am, &rules, plan).await {
                Ok((r, f)) => {
                    routes = r;
                    findings.extend(f);
                }
                // The rule audit stands on its own; say why routing is missing.
                Err(e) => findings.push(Finding {
                    subject: "alertmanager".into(),
                    severity: Severity::Error,
                    check: Check::Routing,
                    detail: format!("the routing audit could not read the configuration: {e}"),
                    selector: None,
                    file: None,
                    group: None,
                }),
            }
        }
        None if !plan.target.validate.expected_receivers.is_empty() => findings.push(Finding {
            subject: "alertmanager".into(),
            severity: Severity::Error,
            check: Check::Routing,
            detail: "the target sets validate.expected_receivers but no alertmanager_url, so routing was not checked; add alertmanager_url".into(),
            selector: None,
            file: None,
            group: None,
        }),
        None => {}
    }
    tracing::debug!("rule and routing audit done in {:?}", started.elapsed());
    Ok((findings, routes))
}
