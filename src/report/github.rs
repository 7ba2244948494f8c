//! GitHub Actions: the job's step summary and step outputs.
//!
//! [`step_summary`] and [`outputs`] build the text (pure); [`publish`]
//! appends it to the files GitHub names in `GITHUB_STEP_SUMMARY` and
//! `GITHUB_OUTPUT`, taken as parameters ([`GithubFiles::from_env`] reads
//! them) so tests never touch the process environment.

use super::markdown;
use super::model::Report;
use std::io::Write;
use std::path::{Path, PathBuf};

/// GitHub rejects a step summary over 1 MiB.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// What firedrill writes at most, well under the limit (other steps of the
/// job may write to the same summary).
pub const SUMMARY_BUDGET: usize = 512 * 1024;

/// Room kept for the truncation note.
const NOTE_ROOM: usize = 512;

/// Where GitHub wants the summary and outputs; `None` outside Actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubFiles {
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
}

impl GithubFiles {
    /// From `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT` (empty counts as unset).
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        GithubFiles {
            step_summary: var("GITHUB_STEP_SUMMARY"),
            output: var("GITHUB_OUTPUT"),
        }
    }
}

/// The report head and verdict table (with the snapshot link, which the
/// head carries), then where the full report is. At most `budget` bytes:
/// longer text is cut at a line boundary and a note points at the artifact.
pub fn step_summary(report: &Report, report_path: &str, budget: usize) -> String {
    let mut s = markdown::render_summary(report);
    let pointer = format!(
        "Full report with the evidence: {} in this run's workflow artifact.\n",
        markdown::code(report_path)
    );
    if s.len() + pointer.len() <= budget {
        s.push_str(&pointer);
        return s;
    }
    let keep = budget.saturating_sub(NOTE_ROOM);
    // A row or line boundary outside code blocks (a recovery command is
    // never cut in half).
    let (cut, _) = super::md::cut_point(&s, keep);
    s.truncate(cut);
    s.push_str(&format!(
        "\n> [!NOTE]\n> Truncated to stay under GitHub's step-summary limit: the full report is {} in this run's workflow artifact.\n",
        markdown::code(report_path)
    ));
    s
}

/// `verdict=...`, `report_path=...` and, with a snapshot, `snapshot_url=...`
/// in `$GITHUB_OUTPUT` syntax.
pub fn outputs(report: &Report, report_path: &str) -> String {
    let mut s = output_line("verdict", report.verdict.as_str());
    s.push_str(&output_line("report_path", report_path));
    if let Some(snap) = &report.snapshot {
        s.push_str(&output_line("snapshot_url", &snap.url));
    }
    s
}

/// `name=value`, or the `name<<DELIM` form when the value has a line break
/// (a plain line would let the value inject further outputs).
pub fn output_line(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let mut delimiter = "FIREDRILL_EOF".to_string();
    while value.contains(&delimiter) {
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// What [`publish`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub step_summary: bool,
    pub outputs: bool,
}

/// Appends the summary and outputs to the files in `files` (each only when
/// set). `report_path` is where `report.md` was written, as shown to users.
pub fn publish(
    report: &Report,
    report_path: &Path,
    files: &GithubFiles,
) -> std::io::Result<Published> {
    let shown = report_path.display().to_string();
    let mut done = Published::default();
    if let Some(path) = &files.step_summary {
        // Stay under the limit even after earlier steps wrote theirs.
        let used = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let room = STEP_SUMMARY_LIMIT.saturating_sub(used + 4 * 1024);
        append(
            path,
            &step_summary(report, &shown, SUMMARY_BUDGET.min(room)),
        )?;
        done.step_summary = true;
    }
    if let Some(path) = &files.output {
        append(path, &outputs(report, &shown))?;
        done.outputs = true;
    }
    Ok(done)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines() {
        assert_eq!(output_line("verdict", "pass"), "verdict=pass\n");
        assert_eq!(
            output_line("report_path", "a\nb"),
            "report_path<<FIREDRILL_EOF\na\nb\nFIREDRILL_EOF\n"
        );
        assert_eq!(
            output_line("x", "FIREDRILL_EOF\nverdict=pass"),
            "x<<FIREDRILL_EOF_\nFIREDRILL_EOF\nverdict=pass\nFIREDRILL_EOF_\n"
        );
    }
}
