//! `firedrill smoke`: the whole pipeline on a local real stack.

use super::*;
use crate::cli::SmokeArgs;
use crate::clients::nats;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::signals::shutdown_signal;
use chrono::Utc;

pub async fn run(global: &Global, args: &SmokeArgs) -> Result<ExitCode, Error> {
    let plan = load(global, crate::spec::target::LOCAL_TARGET)?;
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);
    eprintln!("firedrill smoke {run_id}: starting the local stack (nats-server, alertmanager, prometheus) and fleet…");

    let env = tokio::select! {
        env = LocalEnv::start(&plan.target) => env?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    eprintln!(
        "stack up in {:.1} s: NATS {}  Prometheus {}  Alertmanager {}  fleet {}",
        (Utc::now() - started).num_milliseconds() as f64 / 1000.0,
        env.stack.nats_url,
        env.stack.prometheus_url,
        env.stack.alertmanager_url,
        env.fleet_url()
    );
    let outcome = tokio::select! {
        r = pipeline(global, args, &plan, &env, &run_id, started) => r,
        sig = shutdown_signal() => Err(Error::Interrupted(sig)),
    };
    env.shutdown().await;
    let mut report = outcome?;
    if let Some(t) = crate::report::console::probe_table(&report) {
        println!("{t}");
    }
    let dir = write_report(&mut report, &global.reports_dir)?;
    println!(
        "verdict: {}  report: {}",
        report.verdict,
        dir.join("report.md").display()
    );
    Ok(exit_code_for(&report))
}

async fn pipeline(
    global: &Global,
    args: &SmokeArgs,
    plan: &Plan,
    env: &LocalEnv,
    run_id: &str,
    started: chrono::DateTime<Utc>,
) -> Result<Report, Error> {
    let client = nats::connect(&env.stack.nats_url, None).await?;
    let mut outcomes = Vec::new();
    for spec in &plan.probes {
        let cfg = probe_config(spec, args.count, None);
        let (progress, bar) = progress_bar(global, cfg.count, &cfg.name);
        let out = crate::probe::run_probe(&client, &cfg, progress).await?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        outcomes.push(out);
    }
    let window = RunWindow {
        start: started,
        end: Utc::now(),
    };
    let info = target_info(
        &plan.target,
        &env.stack.nats_url,
        Some(&env.stack.prometheus_url),
        Some(&env.stack.alertmanager_url),
    );
    let mut report = new_report("smoke", run_id, info, window);
    report.probes = probe_results(outcomes);
    Ok(report)
}
