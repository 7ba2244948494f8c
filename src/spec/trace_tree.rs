//! The expected span tree of one sentinel task (`probes/trace-tree.toml`,
//! else the built-in `src/spec/builtin/trace-tree.toml`): an ordered list
//! of hops, each naming its parent hop.
//!
//! ```toml
//! [[hop]]
//! name = "publish"          # the root: the probe's own publish span
//! [[hop]]
//! name = "consume"
//! parent = "publish"
//! ```

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{SpecError, SpecErrorKind};
use super::source::SourceFile;
use crate::model::trace::{Hop, TraceTree};

/// File name of the tree spec in the probes directory (not a probe spec).
pub const TREE_FILE: &str = "trace-tree.toml";

/// The built-in tree, used when the probes directory has no [`TREE_FILE`].
pub const BUILTIN_TRACE_TREE: &str = include_str!("builtin/trace-tree.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTree {
    hop: Spanned<Vec<RawHop>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHop {
    name: Spanned<String>,
    #[serde(default)]
    parent: Option<Spanned<String>>,
}

/// Reads and validates the tree at `path`.
pub fn load_trace_tree(path: &Path) -> Result<TraceTree, SpecError> {
    let file = SourceFile::read(
        path,
        "name an existing file, or leave it out to use the built-in tree",
    )?;
    build(&file)
}

/// Parses and validates `text`, reporting errors under `path`.
pub fn parse_trace_tree(path: &str, text: &str) -> Result<TraceTree, SpecError> {
    build(&SourceFile {
        path: path.into(),
        text: text.to_string(),
    })
}

/// The built-in tree (`src/spec/builtin/trace-tree.toml`).
pub fn builtin_trace_tree() -> TraceTree {
    build(&SourceFile::builtin(TREE_FILE, BUILTIN_TRACE_TREE))
        .expect("the built-in trace tree is valid (a unit test loads it)")
}

/// A valid tree: the first hop is the only root; every other hop's parent
/// is an earlier hop; names are unique and not empty.
fn build(file: &SourceFile) -> Result<TraceTree, SpecError> {
    let raw: RawTree = file.parse()?;
    let bad = |index: usize, name: &str, key: &str, span: &Range<usize>, reason: &str| {
        file.error(
            SpecErrorKind::InvalidValue,
            span,
            format!("hop[{index}].{key}"),
            format!(
                "hop {} (`{name}`): {reason}; fix the [[hop]] list so the first hop is the root \
                 and each other hop's `parent` names an earlier hop",
                index + 1
            ),
        )
    };
    let hops_span = raw.hop.span();
    let raw_hops = raw.hop.into_inner();
    if raw_hops.is_empty() {
        return Err(file.error(
            SpecErrorKind::InvalidValue,
            &hops_span,
            "hop",
            "the tree has no hops; list at least the root hop as [[hop]] with a `name`",
        ));
    }
    let mut hops: Vec<Hop> = Vec::with_capacity(raw_hops.len());
    for (i, h) in raw_hops.into_iter().enumerate() {
        let name_span = h.name.span();
        let name = h.name.into_inner();
        if name.trim().is_empty() {
            return Err(bad(i, &name, "name", &name_span, "empty name"));
        }
        if hops.iter().any(|e| e.name == name) {
            return Err(bad(i, &name, "name", &name_span, "duplicate hop name"));
        }
        let parent = match (h.parent, i) {
            (Some(p), 0) => {
                return Err(bad(
                    i,
                    &name,
                    "parent",
                    &p.span(),
                    "the first hop is the root and has no parent",
                ))
            }
            (None, 0) => None,
            (None, _) => {
                return Err(bad(
                    i,
                    &name,
                    "name",
                    &name_span,
                    "only the first hop may omit `parent`",
                ))
            }
            (Some(p), _) => {
                let span = p.span();
                let p = p.into_inner();
                if !hops.iter().any(|e| e.name == p) {
                    return Err(bad(
                        i,
                        &name,
                        "parent",
                        &span,
                        &format!("parent `{p}` is not an earlier hop"),
                    ));
                }
                Some(p)
            }
        };
        hops.push(Hop { name, parent });
    }
    Ok(TraceTree { hops })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_builtin() {
        let text = r#"
[[hop]]
name = "publish"
[[hop]]
name = "consume"
parent = "publish"
[[hop]]
name = "session/new"
parent = "consume"
[[hop]]
name = "session/prompt"
parent = "consume"
[[hop]]
name = "session/update"
parent = "session/prompt"
[[hop]]
name = "result publish"
parent = "consume"
[[hop]]
name = "collector"
parent = "result publish"
"#;
        assert_eq!(
            parse_trace_tree("t.toml", text).unwrap(),
            builtin_trace_tree()
        );
    }

    #[test]
    fn invalid_trees_say_which_hop() {
        let cases = [
            ("hop = []", "no hops"),
            ("[[hop]]\nname = \"a\"\nparent = \"b\"", "has no parent"),
            (
                "[[hop]]\nname = \"a\"\n[[hop]]\nname = \"b\"",
                "only the first",
            ),
            (
                "[[hop]]\nname = \"a\"\n[[hop]]\nname = \"b\"\nparent = \"c\"",
                "not an earlier hop",
            ),
            (
                "[[hop]]\nname = \"a\"\n[[hop]]\nname = \"a\"\nparent = \"a\"",
                "duplicate",
            ),
            // Spec errors name file and line as `file:line`.
            ("[[hop]]\nname = 1", "t.toml:2"),
        ];
        for (text, want) in cases {
            let err = parse_trace_tree("t.toml", text).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.starts_with("t.toml"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn errors_name_the_line_and_key_of_the_hop() {
        let text = "[[hop]]\nname = \"a\"\n[[hop]]\nname = \"b\"\nparent = \"c\"";
        let err = parse_trace_tree("t.toml", text).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(5), Some("hop[1].parent"))
        );
        let err = parse_trace_tree("t.toml", "[[hop]]\nname = \"a\"\nextra = 1").unwrap_err();
        assert_eq!(err.kind, SpecErrorKind::UnknownKey);
        assert_eq!(err.line, Some(3));
    }
}
