//! `firedrill merge`: read reports, merge them (pure, `report::merge`),
//! compare with a baseline, write every format into `--out`.

use super::*;
use crate::cli::MergeArgs;
use crate::exit::ExitCode;
use chrono::Utc;

pub async fn run(_global: &Global, args: &MergeArgs) -> Result<ExitCode, Error> {
    let mut inputs = Vec::new();
    for p in &args.reports {
        let (path, report) =
            baseline::read_report(p).map_err(|e| Error::Usage(format!("cannot merge: {e}")))?;
        inputs.push((path.display().to_string(), report));
    }
    let run_id = format!("merge-{}", crate::runinfo::new_run_id(Utc::now()));
    let mut report = crate::report::merge::merge(&inputs, &run_id, crate::runinfo::tool_info())
        .map_err(|e| Error::Usage(format!("cannot merge: {e}")))?;
    baseline::attach(&mut report, &args.baseline, &Default::default()).await;
    report.redact_secrets();
    let dir = &args.out;
    let written =
        crate::report::write::write_all(&report, dir).map_err(|source| Error::ReportWrite {
            path: dir.clone(),
            source,
        })?;
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    if let Some(t) = crate::report::console::probe_table(&report) {
        println!("{t}");
    }
    print_verdict(&report, dir);
    let files = crate::report::github::GithubFiles::from_env();
    if let Err(e) = crate::report::github::publish(&report, &dir.join("report.md"), &files) {
        eprintln!("warning: cannot write the GitHub step summary/outputs: {e}");
    }
    Ok(baseline::exit_code(
        exit_code_for(&report),
        &report,
        &args.baseline,
    ))
}
