//! The expected span tree of one sentinel task: an ordered list of hops,
//! each naming its parent hop (`probes/trace-tree.toml`).
//!
//! ```toml
//! [[hop]]
//! name = "publish"          # the root: the probe's own publish span
//! [[hop]]
//! name = "consume"
//! parent = "publish"
//! ```

use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of the tree spec in the probes directory (not a probe spec).
pub const TREE_FILE: &str = "trace-tree.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    pub name: String,
    /// Name of the parent hop; `None` only for the root (first) hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A validated tree: the first hop is the only root; every other hop's
/// parent is an earlier hop; names are unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceTree {
    pub hops: Vec<Hop>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: hop {index} (`{name}`): {reason}; fix the [[hop]] list so the first hop is the root and each other hop's `parent` names an earlier hop")]
    Invalid {
        path: String,
        index: usize,
        name: String,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    hop: Vec<Hop>,
}

impl TraceTree {
    /// The Daedalus path: Mattermost ingress and the orchestrator are not in
    /// the sentinel's path (the probe publishes on NATS directly), so the
    /// root is the probe's `publish` span.
    pub fn daedalus() -> TraceTree {
        let hop = |name: &str, parent: Option<&str>| Hop {
            name: name.into(),
            parent: parent.map(Into::into),
        };
        TraceTree {
            hops: vec![
                hop("publish", None),
                hop("consume", Some("publish")),
                hop("session/new", Some("consume")),
                hop("session/prompt", Some("consume")),
                hop("session/update", Some("session/prompt")),
                hop("result publish", Some("consume")),
                hop("collector", Some("result publish")),
            ],
        }
    }

    pub fn root(&self) -> &Hop {
        &self.hops[0]
    }

    pub fn load(path: &Path) -> Result<TraceTree, TreeError> {
        let text = std::fs::read_to_string(path).map_err(|e| TreeError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates; errors name the file and (for syntax) the line.
    pub fn parse(path: &str, text: &str) -> Result<TraceTree, TreeError> {
        let raw: Raw = toml::from_str(text).map_err(|e| TreeError::Parse {
            path: path.to_string(),
            reason: match e.span() {
                Some(span) => format!(
                    "line {}: {}",
                    text[..span.start].matches('\n').count() + 1,
                    e.message()
                ),
                None => e.message().to_string(),
            },
        })?;
        let tree = TraceTree { hops: raw.hop };
        tree.validate(path)?;
        Ok(tree)
    }

    fn validate(&self, path: &str) -> Result<(), TreeError> {
        let bad = |index: usize, name: &str, reason: &str| TreeError::Invalid {
            path: path.to_string(),
            index: index + 1,
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if self.hops.is_empty() {
            return Err(bad(0, "", "the tree has no hops"));
        }
        for (i, hop) in self.hops.iter().enumerate() {
            if hop.name.trim().is_empty() {
                return Err(bad(i, &hop.name, "empty name"));
            }
            let earlier = &self.hops[..i];
            if earlier.iter().any(|h| h.name == hop.name) {
                return Err(bad(i, &hop.name, "duplicate hop name"));
            }
            match (&hop.parent, i) {
                (Some(_), 0) => {
                    return Err(bad(
                        i,
                        &hop.name,
                        "the first hop is the root and has no parent",
                    ))
                }
                (None, 0) => {}
                (None, _) => return Err(bad(i, &hop.name, "only the first hop may omit `parent`")),
                (Some(p), _) if !earlier.iter().any(|h| &h.name == p) => {
                    return Err(bad(
                        i,
                        &hop.name,
                        &format!("parent `{p}` is not an earlier hop"),
                    ))
                }
                (Some(_), _) => {}
            }
        }
        Ok(())
    }
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
            TraceTree::parse("t.toml", text).unwrap(),
            TraceTree::daedalus()
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
            ("[[hop]]\nname = 1", "line 2"),
        ];
        for (text, want) in cases {
            let err = TraceTree::parse("t.toml", text).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.starts_with("t.toml"),
                "{text:?}: {err}"
            );
        }
    }
}
