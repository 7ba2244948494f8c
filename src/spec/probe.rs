//! Probe specs (`probes/<name>.toml`): what sentinel tasks to publish.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::PositiveDuration;
use super::error::{SourceLoc, SpecError, SpecErrorKind};
use super::load::toml_files;
use super::source::SourceFile;
use super::target::Target;
use super::value::{check_name, check_nats_name, check_subject, JsonTable, Name, NonEmpty, Ranged};
use super::vars::{render_at_load, render_json_at_load};

/// The built-in sentinel probe, used when there is no probes directory.
/// The repo's `probes/sentinel.toml` is an identical copy.
pub const BUILTIN_SENTINEL_PROBE: &str = include_str!("builtin/sentinel.toml");

/// A validated probe, with every template already rendered for the target.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// Unique among loaded probes; drills' `trigger.probe` refers to it.
    pub name: String,
    /// JetStream stream the task subject belongs to.
    pub stream: String,
    /// Subject tasks are published on (no wildcards).
    pub subject: String,
    /// Subject workers publish result envelopes on (wildcards allowed).
    pub result_subject: String,
    pub agent_type: String,
    /// Tasks per probe run, 1..=1_000_000.
    pub count: u32,
    /// Tasks in flight at once, 1..=100_000.
    pub concurrency: u32,
    /// Per task: published -> result received.
    pub timeout: Duration,
    /// Task payload (a JSON object).
    pub payload: serde_json::Value,
    pub source: SourceLoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    /// `"nats"` (the default) here; `"http"` files are [`super::http_probe`]'s.
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<Spanned<Name>>,
    stream: Spanned<String>,
    subject: Spanned<String>,
    result_subject: Spanned<String>,
    agent_type: Spanned<NonEmpty>,
    count: Ranged<1, 1_000_000>,
    #[serde(default)]
    concurrency: Option<Ranged<1, 100_000>>,
    timeout: PositiveDuration,
    #[serde(default)]
    payload: Option<JsonTable>,
}

/// Loads every `*.toml` in `dir` (which must exist), in file-name order.
pub fn load_probes(dir: &Path, target: &Target) -> Result<Vec<ProbeSpec>, SpecError> {
    let files = toml_files(dir, "probes")?
        .into_iter()
        // The trace audit's expected span tree lives here too; not a probe.
        .filter(|p| {
            p.file_name()
                .is_none_or(|n| n != super::trace_tree::TREE_FILE)
        })
        .map(|path| SourceFile::read(&path, "it disappeared while loading; retry"))
        .collect::<Result<Vec<_>, _>>()?;
    load_files(&files, target)
}

/// The built-in sentinel probe for `target`.
pub fn builtin_probes(target: &Target) -> Result<Vec<ProbeSpec>, SpecError> {
    load_files(
        &[SourceFile::builtin("sentinel.toml", BUILTIN_SENTINEL_PROBE)],
        target,
    )
    .map_err(|mut e| {
        // The user never wrote this file; say how to satisfy or replace it.
        e.message.push_str(&format!(
            " (there is no probes directory, so the built-in sentinel probe is used; \
             give target \"{}\" what it needs, or write probes/sentinel.toml)",
            target.name
        ));
        e
    })
}

fn load_files(files: &[SourceFile], target: &Target) -> Result<Vec<ProbeSpec>, SpecError> {
    let mut probes: Vec<ProbeSpec> = Vec::new();
    for file in files {
        if super::http_probe::is_http(file)? {
            continue;
        }
        let raw: RawProbe = file.parse()?;
        let (name, name_span) = probe_name(file, raw.name.as_ref())?;
        if let Some(first) = probes.iter().find(|p| p.name == name) {
            return Err(SpecError::new(
                SpecErrorKind::Duplicate,
                &file.path,
                name_span.map(|s| file.line_at(s.start)),
                Some("name".into()),
                format!(
                    "probe name \"{name}\" is already used by {} (probe names must be unique)",
                    first.source
                ),
            ));
        }
        probes.push(build(file, name, raw, target)?);
    }
    Ok(probes)
}

/// A probe's name: its `name` key (and where it is), else its file stem.
pub(crate) fn probe_name(
    file: &SourceFile,
    name: Option<&Spanned<Name>>,
) -> Result<(String, Option<Range<usize>>), SpecError> {
    if let Some(name) = name {
        return Ok((name.get_ref().0.clone(), Some(name.span())));
    }
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_name(&stem).map_err(|e| {
        SpecError::file(
            SpecErrorKind::InvalidValue,
            &file.path,
            format!("the file name is not a usable probe name: {e} (rename the file or set name = \"...\")"),
        )
    })?;
    Ok((stem, None))
}

fn build(
    file: &SourceFile,
    name: String,
    raw: RawProbe,
    target: &Target,
) -> Result<ProbeSpec, SpecError> {
    let render =
        |field: &Spanned<String>, key: &str, check: &dyn Fn(&str) -> Result<(), String>| {
            let value = render_at_load(file, Some(&field.span()), key, field.get_ref(), target)?;
            check(&value)
                .map_err(|e| file.error(SpecErrorKind::InvalidValue, &field.span(), key, e))?;
            Ok::<_, SpecError>(value)
        };
    let stream = render(&raw.stream, "stream", &check_nats_name)?;
    let subject = render(&raw.subject, "subject", &|s| check_subject(s, false))?;
    let result_subject = render(&raw.result_subject, "result_subject", &|s| {
        check_subject(s, true)
    })?;
    let agent_type = raw.agent_type.get_ref().0.clone();

    if let Some(fleet) = target.fleet() {
        // The local fleet only consumes what its own stream captures; a
        // mismatch would make every sentinel time out for no visible reason.
        let at = |span: Range<usize>, key: &str, message: String| {
            file.error(SpecErrorKind::InvalidValue, &span, key, message)
        };
        if stream != fleet.stream {
            return Err(at(
                raw.stream.span(),
                "stream",
                format!(
                    "stream \"{stream}\" is not the local fleet's stream \"{}\" (target \"{}\": [fleet] stream)",
                    fleet.stream, target.name
                ),
            ));
        }
        if !fleet.subjects.iter().any(|f| subject_matches(f, &subject)) {
            return Err(at(
                raw.subject.span(),
                "subject",
                format!(
                    "subject \"{subject}\" is not captured by the local fleet's stream (subjects: {})",
                    fleet.subjects.join(", ")
                ),
            ));
        }
        if !fleet.agent_types.contains(&agent_type) {
            return Err(at(
                raw.agent_type.span(),
                "agent_type",
                format!(
                    "agent_type \"{agent_type}\" is not served by the local fleet (agent_types: {})",
                    fleet.agent_types.join(", ")
                ),
            ));
        }
    }

    let mut payload = raw
        .payload
        .map(|p| p.0)
        .unwrap_or_else(|| serde_json::json!({}));
    render_json_at_load(file, "payload", &mut payload, target)?;

    let line = raw
        .name
        .as_ref()
        .map(|n| file.line_at(n.span().start))
        .unwrap_or(1);
    Ok(ProbeSpec {
        name,
        stream,
        subject,
        result_subject,
        agent_type,
        count: raw.count.0,
        concurrency: raw.concurrency.map(|c| c.0).unwrap_or(1),
        timeout: raw.timeout.0,
        payload,
        source: SourceLoc {
            file: file.path.clone(),
            line,
        },
    })
}

/// NATS subject matching: `*` matches one token, a final `>` one or more.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let subject: Vec<&str> = subject.split('.').collect();
    for (i, token) in filter.split('.').enumerate() {
        if token == ">" {
            return subject.len() > i;
        }
        match subject.get(i) {
            Some(s) if token == "*" || token == *s => {}
            _ => return false,
        }
    }
    filter.split('.').count() == subject.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_matching() {
        assert!(subject_matches(
            "daedalus.tasks.>",
            "daedalus.tasks.copilot"
        ));
        assert!(subject_matches(
            "daedalus.tasks.>",
            "daedalus.tasks.copilot.x"
        ));
        assert!(!subject_matches("daedalus.tasks.>", "daedalus.tasks"));
        assert!(subject_matches(
            "daedalus.*.copilot",
            "daedalus.tasks.copilot"
        ));
        assert!(!subject_matches("daedalus.*", "daedalus.tasks.copilot"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }
}
