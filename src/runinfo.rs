//! Facts about this run for the report head: run id, git commit and ref.

use chrono::{DateTime, Utc};
use rand::Rng;

/// `20261123T103700Z-3f9a`: sortable, unique enough for one machine.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::rng().random::<u16>()
    )
}

/// Commit and ref: from GitHub Actions' env when present, else from git
/// in the working directory. The third value says why the commit is
/// unknown, when it is.
pub fn git_info() -> (Option<String>, Option<String>, Option<String>) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (commit, why) = match env("GITHUB_SHA") {
        Some(sha) => (Some(sha), None),
        None => match git(&["rev-parse", "HEAD"]) {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(why)),
        },
    };
    let gref = env("GITHUB_REF_NAME").or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]).ok());
    (commit, gref, why)
}

/// git's answer, or why there is none (for the report head).
fn git(args: &[&str]) -> Result<String, String> {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the working directory".into());
    let out = std::process::Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("GITHUB_SHA is not set and git could not run ({e})"))?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || s.is_empty() {
        return Err(format!(
            "GITHUB_SHA is not set and {cwd} is not a git checkout with a commit"
        ));
    }
    Ok(s)
}

pub fn tool_info() -> crate::report::model::ToolInfo {
    let (git_commit, git_ref, commit_unknown_because) = git_info();
    crate::report::model::ToolInfo {
        name: "firedrill".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_commit,
        git_ref,
        commit_unknown_because,
    }
}
