//! Which `{{name}}` template variables exist where, and checking templates
//! against them at load time.
//!
//! - Load time (probe and drill specs, rendered while loading): the
//!   target's `variables` plus `namespace`.
//! - Queries (rendered per run): those plus [`RUNTIME_VARS`].
//! - Evidence links and `trace_url_template`: queries' set, and links may
//!   also use [`TRACE_URL`] (the target's `trace_url_template`, rendered).

use std::collections::BTreeSet;
use std::ops::Range;

use super::error::SpecError;
use super::source::{join_path, SourceFile};
use super::target::Target;
use super::template::{self, Vars};

/// The run window, rounded up to whole seconds, as a PromQL range (`"37s"`).
pub const WINDOW: &str = "window";
/// Run start, RFC 3339.
pub const START: &str = "start";
/// Run end, RFC 3339.
pub const END: &str = "end";
/// Task id of the sentinel the acceptance run published.
pub const SENTINEL_TASK_ID: &str = "sentinel.task_id";
/// Trace id (32 hex) of that sentinel.
pub const SENTINEL_TRACE_ID: &str = "sentinel.trace_id";
/// The target's `namespace`.
pub const NAMESPACE: &str = "namespace";
/// The target's `trace_url_template` rendered for the sentinel; empty when
/// the target has none (and an evidence link that renders empty is dropped).
pub const TRACE_URL: &str = "trace_url";

/// Filled in by the runners at run time; never defined by a target.
pub const RUNTIME_VARS: [&str; 5] = [WINDOW, START, END, SENTINEL_TASK_ID, SENTINEL_TRACE_ID];

/// Whether a target (or `--var`) may define a variable with this name.
pub fn is_reserved(name: &str) -> bool {
    RUNTIME_VARS.contains(&name)
        || name == NAMESPACE
        || name == TRACE_URL
        || name.starts_with("sentinel.")
}

/// Where a template is used, which decides the variables it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Rendered while loading (probe and drill fields).
    Load,
    /// A PromQL query, rendered per run.
    Query,
    /// `trace_url_template`.
    TraceTemplate,
    /// An evidence link.
    Link,
}

/// The names available in `scope` for a target with `target_vars`.
pub(crate) fn available(scope: Scope, target_vars: &Vars) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = target_vars.keys().cloned().collect();
    names.insert(NAMESPACE.to_string());
    if scope != Scope::Load {
        names.extend(RUNTIME_VARS.iter().map(|s| s.to_string()));
    }
    if scope == Scope::Link {
        names.insert(TRACE_URL.to_string());
    }
    names
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateProblem {
    /// `{{name}}` is not available here.
    Unknown { name: String, message: String },
    /// `{{ name }}` with spaces: not a firedrill variable, but almost
    /// certainly meant as one (queries and links never hold Go templates).
    Spaced { name: String, message: String },
}

/// Checks every `{{name}}` in `text` against `available`. With `strict`,
/// `{{ name }}` (spaces) is also an error, since it would reach Prometheus
/// or a link unrendered.
pub(crate) fn check(
    text: &str,
    available: &BTreeSet<String>,
    strict: bool,
    target: &str,
) -> Result<(), TemplateProblem> {
    for name in template::variables(text) {
        if !available.contains(name) {
            return Err(TemplateProblem::Unknown {
                name: name.to_string(),
                message: unknown_message(name, available, target),
            });
        }
    }
    if strict {
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(end) = after.find("}}") else { break };
            let inner = after[..end].trim();
            if inner != &after[..end] && template::is_var_name(inner) {
                return Err(TemplateProblem::Spaced {
                    name: inner.to_string(),
                    message: format!("\"{{{{{}}}}}\" is not a template variable: write {{{{{inner}}}}} without spaces", &after[..end]),
                });
            }
            rest = &after[end + 2..];
        }
    }
    Ok(())
}

fn unknown_message(name: &str, available: &BTreeSet<String>, target: &str) -> String {
    format!(
        "unknown template variable {{{{{name}}}}} (available here: {}; define more under [targets.{}.variables])",
        list(available),
        join_path(&[target])
    )
}

/// Renders a template that is filled in while loading (probe and drill
/// fields) with `target.vars()`; an unknown name is a spec error on
/// the line that holds it (inside `span` when given).
pub(crate) fn render_at_load(
    file: &SourceFile,
    span: Option<&Range<usize>>,
    key: &str,
    text: &str,
    target: &Target,
) -> Result<String, SpecError> {
    let vars = target.vars();
    template::render(text, &vars).map_err(|name| {
        let available: BTreeSet<String> = vars.keys().cloned().collect();
        let message = unknown_message(&name, &available, &target.name);
        file.unknown_var_error(span, key, &name, message)
    })
}

/// Renders every string inside a JSON value (object keys stay as written).
pub(crate) fn render_json_at_load(
    file: &SourceFile,
    key: &str,
    value: &mut serde_json::Value,
    target: &Target,
) -> Result<(), SpecError> {
    match value {
        serde_json::Value::String(s) => *s = render_at_load(file, None, key, s, target)?,
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                render_json_at_load(file, &format!("{key}[{i}]"), item, target)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                render_json_at_load(file, &format!("{key}.{}", join_path(&[k])), item, target)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn list(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_vars() -> Vars {
        [("stream".to_string(), "S".to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn scopes_grow_in_order() {
        let v = target_vars();
        let load = available(Scope::Load, &v);
        assert_eq!(
            load.iter().map(String::as_str).collect::<Vec<_>>(),
            ["namespace", "stream"]
        );
        let query = available(Scope::Query, &v);
        assert!(
            query.contains("window")
                && query.contains("sentinel.trace_id")
                && !query.contains("trace_url")
        );
        assert!(available(Scope::Link, &v).contains("trace_url"));
        assert_eq!(available(Scope::TraceTemplate, &v), query);
    }

    #[test]
    fn unknown_variable_lists_the_available_ones() {
        let avail = available(Scope::Query, &target_vars());
        match check("rate(x[{{windw}}])", &avail, true, "local") {
            Err(TemplateProblem::Unknown { name, message }) => {
                assert_eq!(name, "windw");
                assert!(message.contains("available here: end, namespace, sentinel.task_id, sentinel.trace_id, start, stream, window"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spaced_braces_are_caught_only_when_strict() {
        let avail = available(Scope::Query, &target_vars());
        assert!(matches!(
            check("x[{{ window }}]", &avail, true, "t"),
            Err(TemplateProblem::Spaced { .. })
        ));
        assert_eq!(check("x[{{ window }}]", &avail, false, "t"), Ok(()));
        // Go templates Prometheus expands itself are not firedrill's business.
        assert_eq!(
            check("{{ $labels.pod }} {{ .Value }}", &avail, true, "t"),
            Ok(())
        );
    }

    #[test]
    fn reserved_names() {
        for name in [
            "window",
            "start",
            "end",
            "namespace",
            "trace_url",
            "sentinel.task_id",
            "sentinel.other",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        assert!(!is_reserved("stream"));
    }
}
