//! `firedrill validate`: the live rule audit (see [`crate::validate`]) and,
//! when the target has an Alertmanager, the routing audit.

use super::*;
use crate::cli::ValidateArgs;
use crate::clients::alertmanager::Alertmanager;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::report::model::{AlertRoute, Check, Finding, Severity};
use crate::signals::shutdown_signal;
use crate::validate::Stopped;
use chrono::Utc;

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
        let audited = audit_live(&live, &plan, true).await;
        rule_files = env.stack.rule_files.clone();
        env.shutdown().await;
        (info, audited)
    } else {
        let live = Live::of(&plan.target, None);
        let info = live.target_info(&plan.target);
        (info, audit_live(&live, &plan, false).await)
    };
    let audited = audited?;
    let window = RunWindow {
        start,
        end: Utc::now(),
    };
    let mut report = new_report("validate", &crate::runinfo::new_run_id(start), info, window);
    report.validation = audited.findings;
    report.routes = audited.routes;
    match &audited.stopped {
        None => {}
        Some(Stopped::Signal(sig)) => {
            report.interrupted = true;
            report.errors.push(format!(
                "rule audit interrupted by {sig}: {} of {} alerting rules fully audited; the findings below are what was audited until then",
                audited.done, audited.total
            ));
        }
        Some(Stopped::Prometheus(e)) => report.errors.push(format!(
            "rule audit stopped, Prometheus stopped answering: {e}; {} of {} alerting rules fully audited; the findings below are what was audited until then",
            audited.done, audited.total
        )),
    }
    report.rename_rule_files(&rule_files);
    match crate::report::console::validation_table(&report) {
        Some(t) => println!("{t}"),
        None => println!("rule audit: no findings"),
    }
    for e in &report.errors {
        eprintln!("{e}");
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

/// What `validate` audited, possibly cut short.
struct AuditedLive {
    findings: Vec<Finding>,
    routes: Vec<AlertRoute>,
    stopped: Option<Stopped>,
    /// Alerting rules whose every question was answered, and all of them.
    done: usize,
    total: usize,
}

/// The rule audit, then the routing audit when there is an Alertmanager.
/// Locally, waits two scrape intervals first, so every series has the two
/// samples rate() needs. A signal ends the rule audit with what was audited so far (the
/// routing audit, which needs no query per rule, still runs).
async fn audit_live(
    live: &Live,
    plan: &crate::spec::Plan,
    local: bool,
) -> Result<AuditedLive, Error> {
    let prom = Prometheus::new(&live.prometheus);
    if local {
        // The local stack opens right after its first scrapes (the fleet's
        // successful): two more scrape intervals give every series the
        // second sample rate() and increase() need.
        let wait = crate::stack::TWO_SCRAPES;
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        }
    }
    let started = std::time::Instant::now();
    let audited = crate::validate::audit_until(&prom, plan, Utc::now(), shutdown_signal()).await?;
    let (mut findings, rules, stopped) = (audited.findings, audited.rules, audited.stopped);
    tracing::debug!(
        "rule audit: {} rules in {:?}",
        rules.len(),
        started.elapsed()
    );
    let total = rules.len();
    let not_done = crate::validate::not_fully_audited(&findings);
    let done = total.saturating_sub(not_done);
    let mut routes = Vec::new();
    match &live.alertmanager {
        Some(url) if !matches!(stopped, Some(Stopped::Signal(_))) => {
            let am = Alertmanager::new(url);
            let routing = tokio::select! {
                r = crate::validate::audit_routing(&am, &rules, plan) => Some(r),
                _ = shutdown_signal() => None,
            };
            match routing {
                Some(Ok((r, f))) => {
                    routes = r;
                    findings.extend(f);
                }
                // The rule audit stands on its own; say why routing is missing.
                Some(Err(e)) => findings.push(routing_finding(format!(
                    "the routing audit could not read the configuration: {e}"
                ))),
                None => {
                    return Ok(AuditedLive {
                        findings,
                        routes,
                        stopped: Some(Stopped::Signal("a signal")),
                        done,
                        total,
                    })
                }
            }
        }
        Some(_) => {}
        None if !plan.target.validate.expected_receivers.is_empty() => findings.push(routing_finding(
            "the target sets validate.expected_receivers but no alertmanager_url, so routing was not checked; add alertmanager_url".into(),
        )),
        None => {}
    }
    tracing::debug!("rule and routing audit done in {:?}", started.elapsed());
    Ok(AuditedLive {
        findings,
        routes,
        stopped,
        done,
        total,
    })
}

fn routing_finding(detail: String) -> Finding {
    Finding {
        subject: "alertmanager".into(),
        severity: Severity::Error,
        check: Check::Routing,
        detail,
        selector: None,
        file: None,
        group: None,
    }
}
