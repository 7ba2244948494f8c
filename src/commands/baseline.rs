//! `--baseline`: read the earlier report and attach the comparison. A
//! baseline that is missing or unreadable becomes a note in the report.

use crate::cli::BaselineArgs;
use crate::report::baseline::{compare, BaselineComparison, Thresholds};
use crate::report::Report;
use std::path::{Path, PathBuf};

/// Compares `report` with the baseline `args` names, if any.
pub fn attach(report: &mut Report, args: &BaselineArgs, thresholds: &Thresholds) {
    let Some(source) = &args.baseline else {
        return;
    };
    let comparison = match load(source) {
        Ok((path, baseline)) => compare(report, &baseline, &path.display().to_string(), thresholds),
        Err(note) => BaselineComparison::unavailable(source, note),
    };
    if let Some(note) = &comparison.note {
        eprintln!("note: {note}");
    }
    report.baseline = Some(comparison);
}

/// The regression thresholds the plan's criteria and drills set.
pub fn thresholds(plan: &crate::spec::Plan) -> Thresholds {
    let criteria = plan
        .criteria
        .iter()
        .filter_map(|c| Some((format!("criterion {}", c.id), c.regression?)));
    let drills = plan
        .drills
        .iter()
        .filter_map(|d| Some((format!("drill {}", d.name), d.regression?)));
    Thresholds {
        by_subject: criteria.chain(drills).collect(),
    }
}

/// The exit code once regressions are counted (`--fail-on-regression`).
pub fn exit_code(
    code: crate::exit::ExitCode,
    report: &Report,
    args: &BaselineArgs,
) -> crate::exit::ExitCode {
    crate::exit::with_regressions(code, report, args.fail_on_regression)
}

fn load(source: &str) -> Result<(PathBuf, Report), String> {
    if source == "previous" {
        return Err(
            "`--baseline previous` (the latest successful run's report on GitHub) is not built yet; \
             download that run's report artifact and pass its report.json to --baseline"
                .into(),
        );
    }
    read_report(Path::new(source)).map_err(|e| format!("no comparison: baseline {e}"))
}

/// Reads a report.json (or `<dir>/report.json`); the error names the file
/// and what is wrong with it.
pub fn read_report(path: &Path) -> Result<(PathBuf, Report), String> {
    let path = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let report: Report = serde_path_to_error::deserialize(de).map_err(|e| {
        format!(
            "{} is not a firedrill report.json (at {}: {})",
            path.display(),
            e.path(),
            e.inner()
        )
    })?;
    Ok((path, report))
}
