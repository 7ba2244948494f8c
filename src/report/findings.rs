//! The rule audit's findings summarised (counts per check and severity,
//! per rule file and group) and ordered most important first. Pure; the
//! console and markdown renderers share it.

use super::model::{Check, Finding, Severity};
use std::collections::BTreeMap;

/// Counts of findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
}

impl Counts {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Error => self.error += 1,
            Severity::Warning => self.warning += 1,
            Severity::Info => self.info += 1,
        }
    }
    pub fn total(&self) -> usize {
        self.error + self.warning + self.info
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} error, {} warning, {} info",
            self.error, self.warning, self.info
        )
    }
}

/// Every count a reader needs before the findings themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub all: Counts,
    pub by_check: BTreeMap<Check, Counts>,
    /// Keyed by (file, group); findings that are not about a rule (drills,
    /// criteria, routing without a file) are under ("", "").
    pub by_group: BTreeMap<(String, String), Counts>,
}

pub fn summarise(findings: &[Finding]) -> Summary {
    let mut s = Summary::default();
    for f in findings {
        s.all.add(f.severity);
        s.by_check.entry(f.check).or_default().add(f.severity);
        s.by_group
            .entry((
                f.file.clone().unwrap_or_default(),
                f.group.clone().unwrap_or_default(),
            ))
            .or_default()
            .add(f.severity);
    }
    s
}

/// The groups with the most findings first (errors weigh most).
pub fn worst_groups(s: &Summary) -> Vec<(&(String, String), &Counts)> {
    let mut v: Vec<_> = s.by_group.iter().collect();
    v.sort_by(|a, b| {
        (b.1.error, b.1.warning, b.1.info)
            .cmp(&(a.1.error, a.1.warning, a.1.info))
            .then_with(|| a.0.cmp(b.0))
    });
    v
}

/// Findings most important first: errors, then warnings, then info; within
/// a severity in their original order.
pub fn by_importance(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// `file › group › alert`, or just the subject for findings not about a
/// loaded rule: alert names repeat across files.
pub fn identify(f: &Finding) -> String {
    match (&f.file, &f.group) {
        (Some(file), Some(group)) => format!("{} › {} › {}", short_file(file), group, f.subject),
        _ => f.subject.clone(),
    }
}

/// The file name without its directories (they are the same for every
/// rule in a typical setup; the report's JSON keeps the full path).
pub fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
