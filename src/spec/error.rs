//! The one spec error: which file, line and key, what is wrong, what to do.

use std::fmt;
use std::path::PathBuf;

/// What kind of mistake a [`SpecError`] reports (for callers and tests;
/// the message already says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The file is not valid TOML.
    Syntax,
    /// A key no table of that kind accepts.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A key is present but its value is wrong (type, range, format, or it
    /// does not apply next to another key).
    InvalidValue,
    /// A file or directory that was asked for does not exist.
    MissingFile,
    /// A file exists but could not be read.
    Unreadable,
    /// `--target` names a target that no config defines.
    UnknownTarget,
    /// A `{{name}}` template uses a variable that is not available there.
    UnknownVariable,
    /// Two specs share an id or name that must be unique.
    Duplicate,
    /// A drill's `name` differs from its file stem.
    NameMismatch,
    /// A reference to a probe, drill or other spec that does not exist.
    UnknownReference,
    /// The spec is valid but the target forbids what was asked (drills).
    NotAllowed,
}

/// A spec error. Displays as `file:line: key: message`; `line` and `key`
/// are left out when they do not apply (e.g. a missing file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct SpecError {
    pub kind: SpecErrorKind,
    /// The file as the user named it (relative paths stay relative).
    /// Built-in specs show as `<built-in>/...`; command-line input as
    /// `<command line>`.
    pub file: PathBuf,
    /// 1-based line, when the problem sits on one.
    pub line: Option<usize>,
    /// Dotted key path inside the file, e.g. `targets.local.fleet.cold_start`
    /// or `criterion[1].pass_if` (array indices are 0-based).
    pub key: Option<String>,
    /// What is wrong and what to do next.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(
        kind: SpecErrorKind,
        file: impl Into<PathBuf>,
        line: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            kind,
            file: file.into(),
            line,
            key,
            message: message.into(),
        }
    }

    /// An error about a whole file or directory (no line, no key).
    pub(crate) fn file(
        kind: SpecErrorKind,
        file: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(kind, file, None, None, message)
    }
}

fn render(e: &SpecError) -> String {
    let mut out = e.file.display().to_string();
    if let Some(line) = e.line {
        out.push_str(&format!(":{line}"));
    }
    if let Some(key) = &e.key {
        out.push_str(": ");
        out.push_str(key);
    }
    out.push_str(": ");
    out.push_str(&e.message);
    out
}

/// Where a spec item was defined, kept on validated items so later errors
/// (at run time) can still point at the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLoc {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_and_key() {
        let e = SpecError::new(
            SpecErrorKind::InvalidValue,
            "firedrill.toml",
            Some(14),
            Some("targets.local.fleet.cold_start".into()),
            "invalid duration \"5 parsecs\" (expected a humantime duration such as \"90s\" or \"3m\")",
        );
        assert_eq!(
            e.to_string(),
            "firedrill.toml:14: targets.local.fleet.cold_start: invalid duration \"5 parsecs\" (expected a humantime duration such as \"90s\" or \"3m\")"
        );
        let e = SpecError::file(SpecErrorKind::MissingFile, "probes", "directory not found");
        assert_eq!(e.to_string(), "probes: directory not found");
    }
}
