//! `firedrill run` (the acceptance job) and the body `smoke` shares with it:
//! probes, criteria over the run window, drills, snapshot, reports.

use super::pipeline::{
    accept, apply_snapshot, first_sentinel, publish_to_github, run_drills, run_http_probes,
    run_probes, snapshot, DrillLive,
};
use super::*;
use crate::cli::RunArgs;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::signals::shutdown_signal;
use chrono::Utc;
use std::time::Duration;

/// What one acceptance run does; `smoke` and `run` fill it differently.
pub struct RunOptions {
    pub command: &'static str,
    pub target: String,
    pub count: Option<usize>,
    /// `None`: the target's `smoke_drills`.
    pub drills: Option<Vec<String>>,
    pub trials: Option<u32>,
    /// `--parallel` and `--retry-serial`.
    pub parallel: bool,
    pub retry_serial: bool,
    pub extra_window: Duration,
    pub settle: Option<Duration>,
    pub require_snapshot: bool,
    pub github_check: bool,
    pub open_issue_on_failure: bool,
    /// `--min-coverage` in percent.
    pub min_coverage: Option<f64>,
    pub baseline: crate::cli::BaselineArgs,
}

pub async fn run(global: &Global, args: &RunArgs) -> Result<ExitCode, Error> {
    let drills = args.drills.split_whitespace().map(str::to_string).collect();
    execute(
        global,
        RunOptions {
            command: "run",
            target: args.target.clone(),
            count: args.count,
            drills: Some(drills),
            trials: args.trials,
            parallel: args.parallel,
            retry_serial: args.retry_serial,
            extra_window: args.extra_window,
            settle: args.settle,
            require_snapshot: args.require_snapshot,
            github_check: args.github_check,
            open_issue_on_failure: args.open_issue_on_failure,
            min_coverage: args.min_coverage,
            baseline: args.baseline.clone(),
        },
    )
    .await
}

pub async fn execute(global: &Global, opts: RunOptions) -> Result<ExitCode, Error> {
    let plan = load(global, &opts.target)?;
    let drills = opts
        .drills
        .clone()
        .unwrap_or_else(|| plan.target.smoke_drills.clone());
    // Drill names are checked (and drills_allowed enforced) before any I/O.
    let drill_names: Vec<String> = if drills.iter().any(|d| d == "all") {
        Vec::new()
    } else {
        drills.clone()
    };
    let drill_specs = if drills.is_empty() {
        Vec::new()
    } else {
        crate::spec::plan_drills(&plan.target, &plan.drills, &drill_names)?
    };
    super::pipeline::check_grafana_token(&plan.target)?;
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);
    eprintln!(
        "firedrill {} {run_id} on target `{}`",
        opts.command, plan.target.name
    );

    // On the local stack the fleet exports a span per hop to firedrill's own
    // OTLP receiver, so the run includes a small trace audit of its sentinels.
    let receiver = if plan.target.fleet().is_some() {
        Some(
            crate::trace::receiver::OtlpReceiver::start()
                .await
                .map_err(|e| {
                    Error::Local(format!("cannot start the OTLP receiver on 127.0.0.1: {e}; check that loopback ports are free"))
                })?,
        )
    } else {
        None
    };
    let env = start_local_with(&plan.target, receiver.as_ref().map(|r| r.endpoint())).await?;
    let live = Live::of(&plan.target, env.as_ref());
    let info = live.target_info(&plan.target);
    let mut report = new_report(
        opts.command,
        &run_id,
        info,
        RunWindow {
            start: started,
            end: started,
        },
    );

    let outcome = body(
        global,
        &opts,
        &plan,
        &drill_specs,
        &live,
        env.as_ref(),
        receiver.as_ref(),
        &run_id,
        started,
        &mut report,
    )
    .await;
    let mut lost_deps = Vec::new();
    if let Some(env) = env {
        report.rename_rule_files(&env.stack.rule_files);
        lost_deps = env.shutdown().await;
    }
    if let Some(rx) = receiver {
        rx.shutdown().await;
    }
    // A refused drill step (an earlier run's unrecovered journal) still
    // writes the report: the probes and criteria that ran are kept.
    let mut refused = None;
    match outcome {
        Ok(()) => {}
        Err(Error::Drill(e)) => {
            refused = Some(e.exit_code());
            report.errors.push(format!("drills refused: {e}"));
        }
        Err(Error::Interrupted(sig)) => {
            report.interrupted = true;
            report.errors.push(format!(
                "interrupted by {sig}; the report holds what finished before"
            ));
        }
        // A dependency failure still gets a report: the reviewer sees what ran.
        Err(e) if e.exit_code() == ExitCode::Dependency => report.errors.push(e.to_string()),
        Err(e) => return Err(e),
    }
    record_lost_dependencies(&mut report, lost_deps);
    report.redact_secrets();
    if report.window.end == report.window.start {
        report.window.end = Utc::now();
    }
    // An error finding fails the run: show the audit, or the verdict
    // would come with no visible reason.
    if report
        .validation
        .iter()
        .any(|f| f.severity == crate::report::model::Severity::Error)
    {
        if let Some(t) = crate::report::console::validation_table(&report) {
            println!("{t}");
        }
    }
    if let Some(t) = crate::report::console::probe_table(&report) {
        println!("{t}");
    }
    if let Some(t) = crate::report::console::criteria_table(&report) {
        println!("{t}");
    }
    if let Some(t) = &report.trace_audit {
        println!("{}", super::trace_audit::summary_table(t));
    }
    super::drill::print_drills(&report);
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    report.verdict = report.compute_verdict();
    super::baseline::attach(
        &mut report,
        &opts.baseline,
        &super::baseline::thresholds(&plan),
    )
    .await;
    let dir = write_report(&mut report, &global.reports_dir)?;
    publish_to_github(&report, &dir, opts.github_check, opts.open_issue_on_failure).await;
    print_verdict(&report, &dir);
    let code = exit_code_for(&report).max(refused.unwrap_or(ExitCode::Success));
    Ok(super::baseline::exit_code(code, &report, &opts.baseline))
}

#[allow(clippy::too_many_arguments)]
async fn body(
    global: &Global,
    opts: &RunOptions,
    plan: &Plan,
    drill_specs: &[&crate::spec::DrillSpec],
    live: &Live,
    env: Option<&LocalEnv>,
    receiver: Option<&crate::trace::receiver::OtlpReceiver>,
    run_id: &str,
    started: chrono::DateTime<Utc>,
    report: &mut Report,
) -> Result<(), Error> {
    let prom = Prometheus::new(&live.prometheus);
    // Probes and criteria stop at once on a signal; drills watch the same
    // signal themselves so that it reverts their fault before stopping.
    // NATS only when a probe or a drill's trigger of this run uses it.
    let needs_nats = if let Some(p) = plan.probes.first() {
        Some(format!("probe \"{}\"", p.name))
    } else {
        drill_specs
            .iter()
            .find(|d| {
                d.trigger
                    .as_ref()
                    .is_some_and(|t| plan.probe(&t.probe).is_some())
            })
            .map(|d| format!("drill `{}`'s trigger", d.name))
    };
    let client = match needs_nats {
        Some(why) => Some(tokio::select! {
            r = live.nats(&plan.target, &why) => r?,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        }),
        None => None,
    };
    // The rule audit first: it injects nothing, and a rule that can never
    // fire explains a drill that then times out. Prometheus failing here is
    // recorded and the run goes on; the criteria will say more.
    let audit = tokio::select! {
        r = crate::validate::audit(&prom, plan, Utc::now()) => r,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    match audit {
        Ok(findings) => report.validation = findings,
        Err(e) => report.errors.push(format!("rule audit: {e}")),
    }
    let specs: Vec<&ProbeSpec> = plan.probes.iter().collect();
    let mut outcomes = tokio::select! {
        r = async {
            match &client {
                Some(client) => run_probes(global, client, &specs, opts.count, None).await,
                None => Ok(Vec::new()),
            }
        } => r?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let http_specs: Vec<_> = plan.http_probes.iter().collect();
    let http_outcomes = tokio::select! {
        r = run_http_probes(&http_specs, opts.count, None) => r?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let sentinel = first_sentinel(&outcomes)
        .or_else(|| first_sentinel(&http_outcomes))
        .cloned();
    // The trace audit: NATS sentinels through the local fleet's spans on
    // firedrill's own receiver; else HTTP probes' requests through the
    // target's own trace backend (jaeger_url or tempo_url).
    let audited = match (receiver, super::pipeline::trace_backend(&plan.target)) {
        (Some(rx), _) => Some((
            outcomes.clone(),
            crate::trace::collect::SpanSource::Local(rx.store()),
            format!("firedrill's OTLP receiver ({})", rx.endpoint()),
            Duration::from_secs(10),
        )),
        (None, Some((source, name))) if !http_outcomes.is_empty() => {
            Some((http_outcomes.clone(), source, name, Duration::from_secs(30)))
        }
        _ => None,
    };
    if let Some((audited, source, source_name, wait)) = audited {
        let tree = super::trace_audit::tree_for(plan, global, None)?;
        let tasks: Vec<_> = audited
            .iter()
            .flat_map(|o| o.tasks.iter().cloned())
            .collect();
        let wall = std::time::Instant::now();
        let (audits, errors) = tokio::select! {
            r = crate::trace::collect::audit_tasks(&tree, &tasks, &source, wait) => r,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        };
        let mut summary = crate::trace::summarize(
            &source_name,
            &tree,
            &audits,
            wall.elapsed().as_millis() as u64,
        );
        summary.errors = errors;
        report.trace_audit = Some(summary);
    }
    outcomes.extend(http_outcomes);
    report.probes = probe_results(outcomes);

    // Local: two scrape intervals, so every target has had one whole
    // scrape that started after the last sentinel.
    let settle = opts.settle.unwrap_or(if plan.target.is_local() {
        crate::stack::TWO_SCRAPES
    } else {
        Duration::from_secs(30)
    });
    eprintln!(
        "waiting {} for Prometheus to scrape the run's last samples…",
        humantime::format_duration(settle)
    );
    let criteria_window = tokio::select! {
        w = async {
            tokio::time::sleep(settle).await;
            RunWindow {
                start: crate::timemath::before(started, opts.extra_window),
                end: Utc::now(),
            }
        } => w,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    report.window = criteria_window;
    report.criteria_window = Some(criteria_window);
    report.criteria = tokio::select! {
        c = accept(plan, &prom, criteria_window, sentinel.as_ref()) => c,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };

    if !drill_specs.is_empty() {
        let live_drill = DrillLive {
            prometheus: &live.prometheus,
            alertmanager: live.alertmanager.as_deref(),
            fleet_url: env.and_then(LocalEnv::fleet_url),
            kube: super::pipeline::kube_access(&plan.target, env)?,
            webhook: env.map(|e| &e.stack.webhook),
            client: client.clone(),
        };
        let mode = super::pipeline::DrillMode {
            trials: opts.trials,
            parallel: opts.parallel,
            retry_serial: opts.retry_serial,
        };
        let run = run_drills(global, plan, drill_specs, live_drill, run_id, mode).await?;
        report.drills = run.results;
        report.drill_groups = run.groups;
        match super::pipeline::alert_coverage(
            &live.prometheus,
            &plan.drills,
            &report.drills,
            opts.min_coverage,
        )
        .await
        {
            Ok(c) => report.coverage = Some(c),
            Err(e) => report.errors.push(e),
        }
        if let crate::drill::RunOutcome::Interrupted { signal } = &run.outcome {
            report.interrupted = true;
            report.errors.push(format!(
                "interrupted by {signal} during the drills; their faults were reverted"
            ));
            return Ok(());
        }
    }
    // The snapshot covers the whole run, drills included.
    let window = RunWindow {
        start: criteria_window.start,
        end: Utc::now(),
    };
    report.window = window;
    let snap = tokio::select! {
        s = snapshot(plan, &prom, window, run_id, None) => s,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    apply_snapshot(report, plan, &snap, opts.require_snapshot);
    Ok(())
}
