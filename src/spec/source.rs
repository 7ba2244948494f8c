//! One spec file's text, and turning TOML/serde failures into [`SpecError`]s
//! with file, line and dotted key.
//!
//! Deserialisation goes through `serde_path_to_error`, which records the key
//! path while `toml` records the byte span; together they give
//! `file:line: key: message` for every serde failure, including the ones
//! raised by the value newtypes in `value.rs` and `duration.rs`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::{SourceLoc, SpecError, SpecErrorKind};

/// The text of one spec file and the path it is reported under.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// Reads `path`; `missing_help` says what to do when it does not exist.
    pub fn read(path: &Path, missing_help: &str) -> Result<Self, SpecError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SpecError::file(
                SpecErrorKind::MissingFile,
                path,
                format!("file not found ({missing_help})"),
            )),
            Err(e) => Err(SpecError::file(
                SpecErrorKind::Unreadable,
                path,
                format!(
                    "cannot read: {e} (check the file's permissions and encoding; specs are UTF-8)"
                ),
            )),
        }
    }

    /// A spec compiled into the binary, reported as `<built-in>/name`.
    pub fn builtin(name: &str, text: &str) -> Self {
        SourceFile {
            path: PathBuf::from(format!("<built-in>/{name}")),
            text: text.to_string(),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn loc(&self, span: &Range<usize>) -> SourceLoc {
        SourceLoc {
            file: self.path.clone(),
            line: self.line_at(span.start),
        }
    }

    /// An error on the line holding `span`.
    pub fn error(
        &self,
        kind: SpecErrorKind,
        span: &Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> SpecError {
        SpecError::new(
            kind,
            &self.path,
            Some(self.line_at(span.start)),
            Some(key.into()),
            message,
        )
    }

    /// An error about an unknown `{{name}}`, on the line where the template
    /// text holds it: searched inside `span` when given (a string value,
    /// possibly multi-line), else in the whole file outside comments.
    pub fn unknown_var_error(
        &self,
        span: Option<&Range<usize>>,
        key: impl Into<String>,
        name: &str,
        message: String,
    ) -> SpecError {
        let needle = format!("{{{{{name}}}}}");
        let offset = match span {
            Some(span) => self
                .text
                .get(span.clone())
                .and_then(|s| s.find(&needle))
                .map(|i| span.start + i)
                .unwrap_or(span.start),
            None => self.find_outside_comments(&needle).unwrap_or(0),
        };
        SpecError::new(
            SpecErrorKind::UnknownVariable,
            &self.path,
            Some(self.line_at(offset)),
            Some(key.into()),
            message,
        )
    }

    fn find_outside_comments(&self, needle: &str) -> Option<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            if !line.trim_start().starts_with('#') {
                if let Some(i) = line.find(needle) {
                    return Some(offset + i);
                }
            }
            offset += line.len();
        }
        None
    }

    /// 1-based line of the `[a.b]` (or `[[a.b]]`) header for `path`, if the
    /// table has one of its own (tables made only by dotted keys do not).
    pub fn header_line(&self, path: &[&str]) -> Option<usize> {
        let want: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.text
            .lines()
            .position(|line| {
                let t = strip_comment(line).trim();
                let inner = t
                    .strip_prefix("[[")
                    .and_then(|s| s.strip_suffix("]]"))
                    .or_else(|| t.strip_prefix('[').and_then(|s| s.strip_suffix(']')));
                inner.is_some_and(|inner| split_key(inner) == want)
            })
            .map(|i| i + 1)
    }

    /// Deserialises the whole file, mapping any failure to a [`SpecError`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, SpecError> {
        // A syntax error has no key path; report it as such rather than as
        // whatever the typed deserialiser happened to be looking for.
        if let Err(e) = self.text.parse::<toml::Table>() {
            let line = e.span().map(|s| self.line_at(s.start));
            let key = line.and_then(|l| key_near(&self.text, l));
            return Err(SpecError::new(
                SpecErrorKind::Syntax,
                &self.path,
                line,
                key,
                format!(
                    "invalid TOML: {} (fix the syntax on this line; see https://toml.io)",
                    one_line(e.message())
                ),
            ));
        }
        serde_path_to_error::deserialize(toml::Deserializer::new(&self.text)).map_err(|e| {
            let path = key_path(e.path());
            let inner = e.into_inner();
            self.serde_error(path, inner.message(), inner.span())
        })
    }

    fn serde_error(
        &self,
        path: Vec<String>,
        message: &str,
        span: Option<Range<usize>>,
    ) -> SpecError {
        let line = span.map(|s| self.line_at(s.start));
        let (kind, path, message) = classify(path, message);
        let key = if path.is_empty() {
            None
        } else {
            Some(join_path(&path))
        };
        SpecError::new(kind, &self.path, line, key, message)
    }
}

/// toml's multi-line messages on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Turns a serde message into (kind, key path, user-facing message).
fn classify(mut path: Vec<String>, message: &str) -> (SpecErrorKind, Vec<String>, String) {
    if let Some(rest) = message.strip_prefix(TABLE_ERROR_MARK) {
        let mut parts = rest.splitn(3, TABLE_ERROR_MARK);
        let (kind, key, msg) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let table = table_phrase(&path);
        path.push(key.to_string());
        let kind = if kind == "missing" {
            SpecErrorKind::MissingKey
        } else {
            SpecErrorKind::InvalidValue
        };
        return (kind, path, msg.replace("{table}", &table));
    }
    if let Some(field) = between(message, "missing field `", "`") {
        let table = table_phrase(&path);
        path.push(field.to_string());
        return (
            SpecErrorKind::MissingKey,
            path,
            format!("missing required key \"{field}\" (add it to {table})"),
        );
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        let valid = expected_list(message);
        let hint = if valid.is_empty() {
            "this table takes no keys; remove it".to_string()
        } else {
            format!("valid keys here: {valid}; remove it or fix its spelling")
        };
        return (
            SpecErrorKind::UnknownKey,
            path,
            format!("unknown key \"{field}\" ({hint})"),
        );
    }
    if let Some(value) = between(message, "unknown variant `", "`") {
        let valid = expected_list(message);
        return (
            SpecErrorKind::InvalidValue,
            path,
            format!("unknown value \"{value}\" (expected one of: {valid})"),
        );
    }
    (SpecErrorKind::InvalidValue, path, message.to_string())
}

fn between<'a>(s: &'a str, prefix: &str, end: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    rest.find(end).map(|i| &rest[..i])
}

/// serde's "expected one of `a`, `b`" / "expected `a` or `b`" as "a, b".
fn expected_list(message: &str) -> String {
    let Some(i) = message.find("expected ") else {
        return String::new();
    };
    let list = &message[i + "expected ".len()..];
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(['`', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "or")
        .collect::<Vec<_>>()
        .join(", ")
}

/// "[targets.local]", "this [[criterion]] entry" or "the top level".
fn table_phrase(path: &[String]) -> String {
    match path.last() {
        None => "the top level of the file".to_string(),
        Some(last) if last.starts_with('[') => {
            let name = join_path(&path[..path.len() - 1]);
            format!("this [[{name}]] entry")
        }
        Some(_) => format!("[{}]", join_path(path)),
    }
}

/// Key segments from serde_path_to_error, minus `toml::Spanned` internals.
fn key_path(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => None,
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// Joins key segments with dots; indices attach to the previous segment and
/// keys that are not bare TOML keys are quoted.
pub(crate) fn join_path<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for seg in path {
        let seg = seg.as_ref();
        if seg.starts_with('[') {
            out.push_str(seg);
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        if !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push_str(seg);
        } else {
            out.push_str(&format!("{seg:?}"));
        }
    }
    out
}

/// The line up to a `#` that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `a."b.c".d` -> ["a", "b.c", "d"].
fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in key.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => out.push(std::mem::take(&mut cur)),
            (None, c) if c.is_whitespace() => {}
            (None, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Best-effort key for a syntax error on `line`: the enclosing table header
/// plus the key written on that line, if the line looks like `key = ...`.
fn key_near(text: &str, line: usize) -> Option<String> {
    let mut table: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for l in lines.iter().take(line.saturating_sub(1)) {
        let t = strip_comment(l).trim();
        if let Some(inner) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            table = split_key(inner);
        } else if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            table = split_key(inner);
        }
    }
    let here = lines.get(line.checked_sub(1)?)?.trim();
    if here.starts_with('[') {
        let inner = here.trim_start_matches('[');
        let inner = &inner[..inner.find(']').unwrap_or(inner.len())];
        let key = split_key(inner);
        return key.iter().all(|k| !k.is_empty()).then(|| join_path(&key));
    }
    let (lhs, _) = here.split_once('=')?;
    let key = split_key(lhs.trim());
    if key
        .iter()
        .any(|k| k.is_empty() || k.contains(char::is_whitespace))
    {
        return None;
    }
    table.extend(key);
    Some(join_path(&table))
}

/// Separates the fields of a [`TableError`] smuggled through serde's
/// string-only custom errors.
const TABLE_ERROR_MARK: char = '\u{1f}';

/// A check that involves several keys of one table (e.g. "`prometheus_url`
/// is required unless `stack = \"local\"`"). Raised from inside the table's
/// own deserialisation so `toml` attaches the table's span: the error is
/// reported at the table's header line, under `table.key`.
#[derive(Debug)]
pub(crate) enum TableError {
    /// A key required by the other keys is absent. `{table}` in the reason
    /// is replaced by how to name the table (e.g. `[targets.aks-test]`).
    Missing { key: &'static str, reason: String },
    /// A key is present but not allowed next to the others.
    Invalid { key: &'static str, message: String },
}

impl TableError {
    pub fn missing(key: &'static str, reason: impl Into<String>) -> Self {
        TableError::Missing {
            key,
            reason: reason.into(),
        }
    }
    pub fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        TableError::Invalid {
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = TABLE_ERROR_MARK;
        match self {
            TableError::Missing { key, reason } => {
                write!(
                    f,
                    "{m}missing{m}{key}{m}missing required key \"{key}\" ({reason})"
                )
            }
            TableError::Invalid { key, message } => write!(f, "{m}invalid{m}{key}{m}{message}"),
        }
    }
}

/// Deserialises a table as `F`, then runs `check` while still inside the
/// table's deserialiser (so the error carries the table's span; serde's
/// `try_from` would run too late and get the parent's span).
pub(crate) fn deserialize_checked<'de, D, F, T>(
    d: D,
    check: fn(F) -> Result<T, TableError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: Deserialize<'de>,
{
    struct CheckedVisitor<F, T> {
        check: fn(F) -> Result<T, TableError>,
        marker: PhantomData<F>,
    }
    impl<'de, F: Deserialize<'de>, T> Visitor<'de> for CheckedVisitor<F, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let fields = F::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            (self.check)(fields).map_err(serde::de::Error::custom)
        }
    }
    d.deserialize_map(CheckedVisitor {
        check,
        marker: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_at_counts_from_one() {
        let f = SourceFile::builtin("x.toml", "a = 1\nb = 2\n");
        assert_eq!(f.line_at(0), 1);
        assert_eq!(f.line_at(6), 2);
        assert_eq!(f.line_at(999), 3);
    }

    #[test]
    fn key_near_uses_header_and_line_key() {
        let text = "[targets.local]\nnamespace = \"a\"\n[targets.local.fleet]\ncold_start = \"9s\n";
        assert_eq!(
            key_near(text, 4).as_deref(),
            Some("targets.local.fleet.cold_start")
        );
        assert_eq!(key_near(text, 3).as_deref(), Some("targets.local.fleet"));
        assert_eq!(key_near("x y z\n", 1), None);
    }

    #[test]
    fn header_line_matches_quoted_and_spaced_headers() {
        let f = SourceFile::builtin("x.toml", "# c\n[ targets.\"aks-test\" ]  # here\nx = 1\n");
        assert_eq!(f.header_line(&["targets", "aks-test"]), Some(2));
        assert_eq!(f.header_line(&["targets", "local"]), None);
    }

    #[test]
    fn join_path_quotes_odd_keys() {
        assert_eq!(
            join_path(&["criterion", "[1]", "pass_if"]),
            "criterion[1].pass_if"
        );
        assert_eq!(join_path(&["variables", "a b"]), "variables.\"a b\"");
    }

    #[test]
    fn expected_list_reads_serde_phrasings() {
        assert_eq!(
            expected_list("unknown field `x`, expected `a` or `b`"),
            "a, b"
        );
        assert_eq!(
            expected_list("unknown field `x`, expected one of `a`, `b`, `c`"),
            "a, b, c"
        );
        assert_eq!(expected_list("unknown field `x`, there are no fields"), "");
    }
}
