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

/// Commit and ref: from GitHub Actions' env when present, else from git.
pub fn git_info() -> (Option<String>, Option<String>) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let commit = env("GITHUB_SHA").or_else(|| git(&["rev-parse", "HEAD"]));
    let gref = env("GITHUB_REF_NAME").or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]));
    (commit, gref)
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

pub fn tool_info() -> crate::report::model::ToolInfo {
    let (git_commit, git_ref) = git_info();
    crate::report::model::ToolInfo {
        name: "firedrill".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_commit,
        git_ref,
    }
}
