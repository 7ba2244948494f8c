//! `--baseline`: read the earlier report and attach the comparison. A
//! baseline that is missing or unreadable becomes a note in the report.
//! `--baseline previous` finds it on GitHub (`clients::github::previous_report`).

use crate::cli::BaselineArgs;
use crate::clients::github::{previous::Wanted, previous_report, GitHubContext, NoGitHubContext};
use crate::report::baseline::{compare, BaselineComparison, Thresholds};
use crate::report::Report;
use std::path::{Path, PathBuf};

/// The `--baseline` value that asks GitHub for the latest successful run's report.
pub const PREVIOUS: &str = "previous";

/// Compares `report` with the baseline `args` names, if any.
pub async fn attach(report: &mut Report, args: &BaselineArgs, thresholds: &Thresholds) {
    let Some(source) = &args.baseline else {
        return;
    };
    let comparison = if source == PREVIOUS {
        previous(report, thresholds, |k| std::env::var(k).ok()).await
    } else {
        match load(source) {
            Ok((path, baseline)) => {
                compare(report, &baseline, &path.display().to_string(), thresholds)
            }
            Err(note) => BaselineComparison::unavailable(source, note),
        }
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
    let out = crate::exit::with_regressions(code, report, args.fail_on_regression);
    if let Some(b) = &report.baseline {
        let regressed: Vec<String> = b
            .regressions()
            .map(|c| format!("{} {}", c.subject, c.metric))
            .collect();
        if !regressed.is_empty() {
            eprintln!(
                "regressed since the baseline ({}): {}{}",
                b.source,
                regressed.join(", "),
                if out != code {
                    "; --fail-on-regression: exit 1 (the verdict above is the run's own)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

/// `--baseline previous`: the report artifact of the latest successful run
/// of this job's workflow for the same target (or, for a merged report, the
/// merged one), compared with `report`. Anything that stops it is a note.
/// `env` reads the job's variables (GitHub Actions sets them).
pub async fn previous(
    report: &Report,
    thresholds: &Thresholds,
    env: impl Fn(&str) -> Option<String>,
) -> BaselineComparison {
    let wanted = if report.inputs.is_empty() {
        Wanted::Leg {
            target: report.target.name.clone(),
        }
    } else {
        Wanted::Merged
    };
    let note = |why: String| {
        BaselineComparison::unavailable(
            PREVIOUS,
            format!(
                "no comparison: `--baseline previous` looked for the latest successful run's \
                 artifact {} and found none to compare with: {why}",
                wanted.pattern()
            ),
        )
    };
    let ctx =
        match GitHubContext::detect(env) {
            Ok(ctx) => ctx,
            Err(NoGitHubContext::NotInActions) => return BaselineComparison::unavailable(
                PREVIOUS,
                "no comparison: `--baseline previous` finds the latest successful run's report \
                 artifact on GitHub and works only inside GitHub Actions (GITHUB_ACTIONS is not \
                 \"true\"); elsewhere download that report and pass its report.json (or its \
                 directory) with --baseline PATH"
                    .into(),
            ),
            Err(NoGitHubContext::NoToken) => {
                return note(
                    "GITHUB_TOKEN is not set; add `env: GITHUB_TOKEN: ${{ github.token }}` to the \
                 step and grant the job `permissions: actions: read`"
                        .into(),
                )
            }
            Err(e) => return note(e.to_string()),
        };
    let found = match previous_report(&ctx, &wanted).await {
        Ok(found) => found,
        Err(e) => return note(e.to_string()),
    };
    let origin = format!(
        "{} in artifact {} of run {}",
        found.entry, found.artifact_name, found.run_url
    );
    match parse_report(&found.json, &origin) {
        Ok(baseline) => compare(report, &baseline, &origin, thresholds),
        Err(e) => BaselineComparison::unavailable(PREVIOUS, format!("no comparison: baseline {e}")),
    }
}

fn load(source: &str) -> Result<(PathBuf, Report), String> {
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
    // Only a regular file, and no more than a report can be: a device
    // (`/dev/zero`) or a pipe would otherwise be read without end.
    let limit = crate::clients::github::previous::MAX_REPORT_BYTES;
    let meta =
        std::fs::metadata(&path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file; give the path of a report.json or of its folder",
            path.display()
        ));
    }
    if meta.len() > limit {
        return Err(format!(
            "{} is {} bytes, over the {limit}-byte limit of a report.json; is it the right file?",
            path.display(),
            meta.len()
        ));
    }
    let text =
        std::fs::read(&path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let report = parse_report(&text, &path.display().to_string())?;
    Ok((path, report))
}

/// A report.json's bytes as a report; the error names `origin` and what is
/// wrong where.
pub fn parse_report(bytes: &[u8], origin: &str) -> Result<Report, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        format!(
            "{origin} is not a firedrill report.json (at {}: {})",
            e.path(),
            e.inner()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_read() {
        let err = read_report(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err,
            "/dev/zero is not a regular file; give the path of a report.json or of its folder"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_report(dir.path()).unwrap_err();
        assert!(err.contains("report.json cannot be read"), "{err}");
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(crate::clients::github::previous::MAX_REPORT_BYTES + 1)
            .unwrap();
        let err = read_report(&big).unwrap_err();
        assert!(err.contains("over the 67108864-byte limit"), "{err}");
    }
}
