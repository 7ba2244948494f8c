//! `firedrill accept`: criteria against a live Prometheus over a window.

use super::pipeline::accept;
use super::*;
use crate::cli::AcceptArgs;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;
use crate::probe::SentinelRef;
use chrono::Utc;

pub async fn run(global: &Global, args: &AcceptArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            criteria: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    if plan.target.is_local() {
        return Err(Error::Usage(format!(
            "target `{}` is the local stack, which only lives during a run: use `firedrill smoke` (or `firedrill run --target {}`), which evaluate the criteria over their own window",
            plan.target.name, plan.target.name
        )));
    }
    if plan.criteria.is_empty() {
        return Err(Error::Usage(format!(
            "no criteria loaded for target `{}`; add a *.toml with [[criterion]] tables to its acceptance directory (--acceptance-dir, or acceptance_dir in {})",
            plan.target.name,
            plan.target.table()
        )));
    }
    let now = Utc::now();
    let window = match (args.window_start, args.window_end) {
        (Some(start), Some(end)) if start < end => RunWindow { start, end },
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--window-start must be before --window-end".into(),
            ))
        }
        _ => {
            let since = args
                .since
                .unwrap_or(std::time::Duration::from_secs(30 * 60));
            RunWindow {
                start: crate::timemath::before(now, since),
                end: now,
            }
        }
    };
    let sentinel = args.sentinel_task_id.as_ref().map(|task_id| SentinelRef {
        task_id: task_id.clone(),
        trace_id: args.sentinel_trace_id.clone().unwrap_or_default(),
    });
    let live = Live::of(&plan.target, None);
    let prom = Prometheus::new(&live.prometheus);
    let info = live.target_info(&plan.target);
    let mut report = new_report("accept", &crate::runinfo::new_run_id(now), info, window);
    report.criteria = accept(&plan, &prom, window, sentinel.as_ref()).await;
    // `accept` takes no snapshot: say so, rather than leave AC5 pending in
    // a final report.
    crate::accept::snapshot::decide_snapshot_criteria(
        &mut report.criteria,
        &plan.criteria,
        &crate::accept::snapshot::SnapshotOutcome::NotConfigured(
            "`firedrill accept` takes no Grafana snapshot; `firedrill run` does".into(),
        ),
        false,
    );
    report.redact_secrets();
    if let Some(t) = crate::report::console::criteria_table(&report) {
        println!("{t}");
    }
    finish(&mut report, &global.reports_dir)
}
