//! `firedrill snapshot`: a Grafana snapshot of a dashboard over a range.

use super::*;
use crate::accept::SnapshotOutcome;
use crate::cli::SnapshotArgs;
use crate::clients::prometheus::Prometheus;
use crate::exit::ExitCode;

pub async fn run(global: &Global, args: &SnapshotArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(global, &args.target, crate::spec::Parts::NONE)?;
    if args.from >= args.to {
        return Err(Error::Usage("--from must be before --to".into()));
    }
    let Some(remote) = plan.target.remote() else {
        return Err(Error::Usage(format!(
            "target `{}` has no Grafana (the local stack runs none); pick a target with grafana_url",
            plan.target.name
        )));
    };
    super::pipeline::check_grafana_token(&plan.target)?;
    let prom = Prometheus::new(remote.prometheus_url.as_str());
    let window = RunWindow {
        start: args.from,
        end: args.to,
    };
    let run_id = crate::runinfo::new_run_id(chrono::Utc::now());
    match super::pipeline::snapshot(&plan, &prom, window, &run_id, args.dashboard.as_deref()).await
    {
        SnapshotOutcome::Created(info) => {
            let (data, no_data, errors) = crate::model::snapshot::panel_counts(&info.panel_data);
            println!("snapshot: {}", info.url);
            println!(
                "  {} panels ({data} with data, {no_data} without data, {errors} with errors), {} series embedded; read back: {}",
                info.panels,
                info.series,
                if info.verified { "ok" } else { "FAILED" }
            );
            for v in &info.variables {
                println!(
                    "  variable {} = {} ({}{})",
                    v.name,
                    if v.value.is_empty() {
                        "(empty)"
                    } else {
                        &v.value
                    },
                    v.source,
                    v.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
            for n in &info.notes {
                println!("  note: {n}");
            }
            let (verdict, reason) = crate::accept::snapshot_verdict(
                Some(&SnapshotOutcome::Created(info.clone())),
                true,
            );
            println!("  as a snapshot criterion: {verdict}: {reason}");
            // The delete URL is a bearer secret: written to a file, never printed.
            let dir = global.reports_dir.join(&run_id);
            std::fs::create_dir_all(&dir)
                .and_then(|_| {
                    std::fs::write(
                        dir.join("snapshot.json"),
                        serde_json::to_vec_pretty(&info).expect("serialises"),
                    )
                })
                .map_err(|source| Error::ReportWrite {
                    path: dir.clone(),
                    source,
                })?;
            println!(
                "  key and delete URL saved in {}",
                dir.join("snapshot.json").display()
            );
            Ok(crate::exit::for_snapshot(Some(
                verdict == crate::model::Verdict::Pass,
            )))
        }
        SnapshotOutcome::NotConfigured(why) => Err(Error::Usage(why)),
        SnapshotOutcome::Failed(why) => {
            eprintln!("error: {}", crate::secrets::redact(&why));
            Ok(crate::exit::for_snapshot(None))
        }
    }
}
