//! `firedrill drill`: induce named failures, time their alerts, always revert.

use super::pipeline::{run_drills, DrillLive, DrillMode};
use super::*;
use crate::cli::DrillArgs;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use chrono::Utc;

pub async fn run(global: &Global, args: &DrillArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            drills: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    let names = if args.all {
        Vec::new()
    } else {
        args.names.clone()
    };
    let specs = crate::spec::plan_drills(&plan.target, &plan.drills, &names)?;
    if specs.is_empty() {
        return Err(Error::Usage(format!(
            "no drills loaded for target `{}`; add one *.toml per fault to its drills directory (--drills-dir, or drills_dir in {})",
            plan.target.name,
            plan.target.table()
        )));
    }
    // Refuse on a dead run's unrecovered journal before starting anything
    // (a local stack takes seconds to start).
    crate::drill::runner::check_can_drill(
        &global.reports_dir,
        &plan.target.name,
        plan.target.drills_allowed,
    )?;
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);
    let env = start_local(&plan.target).await?;
    let result = drill_on(global, &plan, &specs, env.as_ref(), &run_id, args).await;
    let rule_files = env
        .as_ref()
        .map(|e| e.stack.rule_files.clone())
        .unwrap_or_default();
    let lost = match env {
        Some(env) => env.shutdown().await,
        None => Vec::new(),
    };
    let (info, run, coverage) = result?;
    let mut report = new_report(
        "drill",
        &run_id,
        info,
        RunWindow {
            start: started,
            end: Utc::now(),
        },
    );
    report.interrupted = matches!(run.outcome, crate::drill::RunOutcome::Interrupted { .. });
    if let crate::drill::RunOutcome::Interrupted { signal } = &run.outcome {
        // Never a pass: what did not run proved nothing.
        report.errors.push(format!(
            "interrupted by {signal}: {} of {} drill(s) ran; any fault injected was reverted",
            run.results.len(),
            specs.len()
        ));
    }
    report.drills = run.results;
    report.drill_groups = run.groups;
    match coverage {
        Ok(c) => report.coverage = Some(c),
        Err(e) => report.errors.push(e),
    }
    record_lost_dependencies(&mut report, lost);
    report.rename_rule_files(&rule_files);
    report.redact_secrets();
    print_drills(&report);
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    report.verdict = report.compute_verdict();
    super::baseline::attach(
        &mut report,
        &args.baseline,
        &super::baseline::thresholds(&plan),
    )
    .await;
    let code = finish(&mut report, &global.reports_dir)?;
    Ok(super::baseline::exit_code(code, &report, &args.baseline))
}

async fn drill_on(
    global: &Global,
    plan: &Plan,
    specs: &[&crate::spec::DrillSpec],
    env: Option<&LocalEnv>,
    run_id: &str,
    args: &DrillArgs,
) -> Result<
    (
        TargetInfo,
        crate::drill::DrillRun,
        Result<crate::report::model::Coverage, String>,
    ),
    Error,
> {
    let live = Live::of(&plan.target, env);
    // NATS only when a drill's trigger publishes to it (an HTTP probe's
    // trigger needs none).
    let client = match specs.iter().find(|s| {
        s.trigger
            .as_ref()
            .is_some_and(|t| plan.probe(&t.probe).is_some())
    }) {
        Some(s) => Some(
            live.nats(&plan.target, &format!("drill `{}`'s trigger", s.name))
                .await?,
        ),
        None => None,
    };
    let drill_live = DrillLive {
        prometheus: &live.prometheus,
        alertmanager: live.alertmanager.as_deref(),
        fleet_url: env.and_then(LocalEnv::fleet_url),
        kube: super::pipeline::kube_access(&plan.target, env)?,
        webhook: env.map(|e| &e.stack.webhook),
        client,
    };
    let mode = DrillMode {
        trials: args.trials,
        parallel: args.parallel,
        retry_serial: args.retry_serial,
    };
    let run = run_drills(global, plan, specs, drill_live, run_id, mode).await?;
    let coverage = super::pipeline::alert_coverage(
        &live.prometheus,
        &plan.drills,
        &run.results,
        args.min_coverage,
    )
    .await;
    Ok((live.target_info(&plan.target), run, coverage))
}

/// One line per drill and trial on stdout (with `--parallel`, the groups
/// and their crosstalk first).
pub fn print_drills(report: &Report) {
    for g in &report.drill_groups {
        println!(
            "group {}: {} ({:.1} s)",
            g.group,
            g.drills.join(", "),
            (g.ended - g.started).num_milliseconds() as f64 / 1000.0
        );
        for c in &g.crosstalk {
            println!(
                "  CROSSTALK: {}{} went {} and no drill of the group expects it",
                c.alert,
                crate::model::format_labels(&c.labels),
                c.state
            );
        }
    }
    for d in &report.drills {
        println!("{} → {}: {} ({})", d.name, d.alert, d.verdict, d.reason);
        for t in &d.trials {
            let fire = t
                .time_to_fire_ms
                .map(crate::model::human_ms)
                .unwrap_or_else(|| "never".into());
            println!("  trial {}: {} time to fire {fire}", t.trial, t.verdict);
        }
        if let Some(m) = &d.manual_recovery {
            println!("  MANUAL RECOVERY NEEDED: {}", m.plain());
        }
    }
}
