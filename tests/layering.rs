//! One-way layering, kept true by a test: reads every `crate::` path (in
//! `use` lines, grouped `use crate::{..}` trees and inline paths) of every
//! file under `src/`, comments and string literals left out, and fails on
//! an edge the table below forbids. Cross-module paths must be spelled
//! `crate::`: a `super::` that would climb out of a top-level module fails
//! too, so nothing slips past the table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (module, modules it must not use, why). `*` forbids every other module.
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "report",
        &[
            "accept", "clients", "drill", "probe", "trace", "validate", "stack", "fleet", "local",
            "commands",
        ],
        "renderers read one Report value; runners and clients fill it, never the other way",
    ),
    (
        "clients",
        &[
            "report", "drill", "accept", "trace", "probe", "validate", "stack", "fleet", "local",
            "commands",
        ],
        "a client speaks to one remote and knows nothing of what its answers are used for",
    ),
    (
        "drill",
        &["stack", "commands"],
        "the drill core runs the same against a cluster and the local stack",
    ),
    (
        "model",
        &["*"],
        "plain values shared by every layer sit below all of them",
    ),
];

/// One reference from a file under `src/` to a top-level module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    line: usize,
    target: String,
}

/// Replaces comments and the contents of string and char literals with
/// spaces (newlines kept), so only code is scanned and lines still count.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let rest = |k: usize| c.get(i + k).copied();
        if c[i] == '/' && rest(1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && rest(1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (rest(1) == Some('"') || rest(1) == Some('#'))
            && (i == 0
                || !is_ident(c[i - 1])
                || (c[i - 1] == 'b' && (i == 1 || !is_ident(c[i - 2]))))
        {
            // Raw string: r"..", r#".."#, ...
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            for _ in i..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && rest(1) == Some('\\') {
            // '\n', '\'', '\u{..}'
            let mut j = i + 3;
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(c.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else if c[i] == '\'' && rest(2) == Some('\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

fn ident_at(code: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    while i < code.len() && is_ident(code[i]) {
        s.push(code[i]);
        i += 1;
    }
    (s, i)
}

fn skip_ws(code: &[char], mut i: usize) -> usize {
    while i < code.len() && code[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Every top-level module `code` names through `crate::`, with its line;
/// `crate::{a, b::c}` names `a` and `b`.
fn crate_edges(code: &str) -> Vec<Edge> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= c.len() {
        let at_word = i == 0 || !(is_ident(c[i - 1]) || c[i - 1] == ':');
        if !(at_word && c[i..].starts_with(&['c', 'r', 'a', 't', 'e'])) {
            i += 1;
            continue;
        }
        let mut j = skip_ws(&c, i + 5);
        if !(c.get(j) == Some(&':') && c.get(j + 1) == Some(&':')) {
            i += 5;
            continue;
        }
        j = skip_ws(&c, j + 2);
        if c.get(j) == Some(&'{') {
            // A use tree: the first segment of every item at depth 1.
            let mut depth = 0;
            let mut expect_item = true;
            while j < c.len() {
                match c[j] {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            expect_item = true;
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_item = true,
                    ch if expect_item && depth == 1 && is_ident(ch) => {
                        let (name, end) = ident_at(&c, j);
                        out.push(Edge {
                            line: line_of(j),
                            target: name,
                        });
                        expect_item = false;
                        j = end;
                        continue;
                    }
                    _ => {}
                }
                j += 1;
            }
        } else {
            let (name, _) = ident_at(&c, j);
            if !name.is_empty() {
                out.push(Edge {
                    line: line_of(i),
                    target: name,
                });
            }
        }
        i = j.max(i + 5);
    }
    out
}

/// Lines where a `super::` path may leave its top-level module: any
/// `super::super`, and in a module's root file (`src/x.rs`, `src/x/mod.rs`)
/// a `super::` outside an inline `mod name { .. }`.
fn escaping_super(code: &str, is_root_file: bool) -> Vec<usize> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let mut out = Vec::new();
    // Per open brace: whether it opened an inline `mod name {`.
    let mut braces: Vec<bool> = Vec::new();
    let mut last_two: [String; 2] = Default::default();
    let mut i = 0;
    while i < c.len() {
        if is_ident(c[i]) && (i == 0 || !is_ident(c[i - 1])) {
            let (word, end) = ident_at(&c, i);
            let mut j = skip_ws(&c, end);
            if word == "super" && c.get(j) == Some(&':') && c.get(j + 1) == Some(&':') {
                j = skip_ws(&c, j + 2);
                let (next, _) = ident_at(&c, j);
                let in_mod = braces.iter().any(|m| *m);
                if next == "super" || (is_root_file && !in_mod) {
                    out.push(line_of(i));
                }
            }
            last_two = [std::mem::take(&mut last_two[1]), word];
            i = end;
            continue;
        }
        match c[i] {
            '{' => braces.push(last_two[0] == "mod"),
            '}' => {
                braces.pop();
            }
            ch if !ch.is_whitespace() => last_two = Default::default(),
            _ => {}
        }
        i += 1;
    }
    out.dedup();
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/report/junit.rs` -> `report`; `src/lib.rs`, `src/main.rs` -> `None`.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first),
    }
}

fn top_modules(src: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.iter().filter_map(|f| top_module(src, f)).collect()
}

/// Every forbidden edge and escaping `super::` under `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let modules = top_modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in &files {
        let Some(from) = top_module(src, file) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        let rel = file.strip_prefix(src).unwrap();
        let depth = rel.components().count();
        let is_root_file = depth == 1 || (depth == 2 && rel.ends_with("mod.rs"));
        for line in escaping_super(&code, is_root_file) {
            out.push(format!(
                "src/{}:{line}: a `super::` path leaves module `{from}`; write cross-module paths as `crate::`",
                rel.display()
            ));
        }
        let Some((_, forbidden, why)) = RULES.iter().find(|(m, _, _)| *m == from) else {
            continue;
        };
        for edge in crate_edges(&code) {
            if edge.target == from || !modules.contains(&edge.target) {
                continue;
            }
            if forbidden.contains(&"*") || forbidden.contains(&edge.target.as_str()) {
                out.push(format!(
                    "src/{}:{}: {from} -> {} is forbidden ({why})",
                    rel.display(),
                    edge.line,
                    edge.target
                ));
            }
        }
    }
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_forbidden_edges() {
    let v = violations(&src_dir());
    assert!(v.is_empty(), "layering broken:\n{}", v.join("\n"));
}

#[test]
fn every_module_in_the_rules_exists() {
    // A renamed module must not silently switch its rule off.
    let modules = top_modules(&src_dir());
    for (from, forbidden, _) in RULES {
        assert!(modules.contains(*from), "rule for unknown module `{from}`");
        for to in forbidden.iter().filter(|t| **t != "*") {
            assert!(modules.contains(*to), "rule names unknown module `{to}`");
        }
    }
}

#[test]
fn the_scanner_sees_every_spelling_and_nothing_else() {
    let src = r##"
use crate::accept::format_labels;
use crate::{
    clients::prometheus::parse_value,
    model::{Verdict, RunWindow},
    trace,
};
pub(crate) fn f() -> String {
    // crate::drill::in_a_comment
    /* crate::drill::in_a_block /* nested crate::drill */ */
    let _ = "crate::drill::in_a_string";
    let _ = r#"crate::drill::in_a_raw "string""#;
    let _ = '"'; let _ = '\'';
    crate :: probe::run();
    x.crate_thing::y;
    $crate::stack::z;
    String::new()
}
"##;
    let got: Vec<(usize, String)> = crate_edges(&code_only(src))
        .into_iter()
        .map(|e| (e.line, e.target))
        .collect();
    let want: Vec<(usize, String)> = [
        (2, "accept"),
        (4, "clients"),
        (5, "model"),
        (6, "trace"),
        (14, "probe"),
        (16, "stack"),
    ]
    .into_iter()
    .map(|(l, t)| (l, t.to_string()))
    .collect();
    assert_eq!(got, want);
    let root = "use super::x;\nfn f() { super::y(); }\nmod tests {\n    use super::*;\n    fn g() { super::z(); }\n}\n";
    assert_eq!(escaping_super(root, true), [1, 2]);
    assert_eq!(escaping_super(root, false), Vec::<usize>::new());
    assert_eq!(
        escaping_super("use super::x;\nfn f() { super :: super::y(); }\n", false),
        [2]
    );
}
