//! Markdown building blocks for `report.md` and the GitHub summaries:
//! escaping, code spans, short links, bounded table cells, collapsible
//! tables, anchors and the size bound of a whole document.
//!
//! Everything here is pure and GitHub-flavoured (cmark-gfm): a value from a
//! remote can neither break a table row nor format, link or inject HTML, and
//! no single value can make a report unreadable or unbounded.

use std::fmt::Write;

/// Characters of free text a table cell shows at most; the rest is cut
/// with a note (report.json keeps the whole value).
pub const CELL_MAX: usize = 300;

/// Characters of a code span (a selector, a label set) a table cell shows
/// at most: longer ones squeeze every other column.
pub const CELL_CODE_MAX: usize = 200;

/// Words longer than this in a table cell are cut (they would widen the
/// table past the page); code spans and URLs have their own bounds.
const WORD_MAX: usize = 80;

/// Characters searched for the closing backticks of a code span in text.
const CODE_PAIR_MAX: usize = 500;

/// URLs longer than this in free text become a short link.
const SHORT_URL: usize = 40;

/// report.md stays under this many bytes, whatever the run (GitHub shows at
/// most 512 KiB of a file's rendering, the step summary takes 1 MiB).
pub const REPORT_LIMIT: usize = 1024 * 1024;

/// Rows a table shows before the rest go into a collapsed section.
pub const ROWS_OPEN: usize = 50;

/// Rows a table holds at most (open and collapsed); the rest are counted.
pub const ROWS_MAX: usize = 1000;

/// Units a number keeps on its line (joined by a non-breaking space).
const UNITS: &[&str] = &[
    "ms", "s", "m", "h", "min", "µs", "ns", "B", "KiB", "MiB", "GiB", "kB", "MB", "GB", "%",
];

/// Keeps table cells intact: pipes and newlines would break the row.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Free text, safe in a paragraph, a heading or a table cell:
/// - markdown punctuation that could format, link or start HTML is escaped
///   (`<` only where it could open a tag, so `< 1500` stays readable);
/// - text between a pair of backticks (`` `local` ``) becomes a code span,
///   as its writer meant, instead of showing escaped backticks;
/// - a long URL becomes a short link (`[graph](…)`, `[query](…)`);
/// - a number keeps its unit on its line (`5.695 s`, `120 ms`).
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            if let Some((content, next)) = code_pair(&chars, i) {
                out.push_str(&code(&content));
                i = next;
                continue;
            }
        }
        if (c == 'h' || c == 'H') && url_starts(&chars, i) {
            let (url, next) = url_at(&chars, i);
            if url.chars().count() > SHORT_URL {
                out.push_str(&link(&url_label(&url), &url));
            } else {
                escape_into(&mut out, &url, None);
            }
            i = next;
            continue;
        }
        if c == ' ' && i > 0 && chars[i - 1].is_ascii_digit() && unit_follows(&chars, i + 1) {
            out.push('\u{a0}');
            i += 1;
            continue;
        }
        escape_into(&mut out, &c.to_string(), chars.get(i + 1).copied());
        i += 1;
    }
    out
}

/// One escaped character (or string) of free text; `next` is the character
/// after it, which decides whether `<` could open a tag.
fn escape_into(out: &mut String, s: &str, next: Option<char>) {
    let chars: Vec<char> = s.chars().collect();
    for (j, &c) in chars.iter().enumerate() {
        let after = chars.get(j + 1).copied().or(next);
        match c {
            '\\' | '`' | '*' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' if after
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                out.push_str("\\<");
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
}

/// A backtick run at `i` closed by a run of the same length on the same
/// line, with no `|` inside (GitHub would need `\|` there, which shows in
/// code outside tables): the content and the index after the closing run.
fn code_pair(chars: &[char], i: usize) -> Option<(String, usize)> {
    if i > 0 && chars[i - 1] == '`' {
        return None;
    }
    let open = chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut j = i + open;
    // A code span in prose is short; looking further would make text full
    // of lone backticks quadratic.
    let end = chars.len().min(i + open + CODE_PAIR_MAX);
    while j < end {
        match chars[j] {
            '\n' | '\r' | '|' => return None,
            '`' => {
                let run = chars[j..].iter().take_while(|&&c| c == '`').count();
                if run == open {
                    let content: String = chars[i + open..j].iter().collect();
                    if content.trim().is_empty() {
                        return None;
                    }
                    return Some((content, j + run));
                }
                j += run;
            }
            _ => j += 1,
        }
    }
    None
}

fn url_starts(chars: &[char], i: usize) -> bool {
    let head: String = chars[i..chars.len().min(i + 8)].iter().collect();
    let head = head.to_ascii_lowercase();
    (head.starts_with("http://") || head.starts_with("https://"))
        && (i == 0 || !chars[i - 1].is_alphanumeric())
}

/// The URL at `i` up to whitespace, less trailing punctuation (and a
/// closing parenthesis it did not open).
fn url_at(chars: &[char], i: usize) -> (String, usize) {
    let mut end = i;
    while end < chars.len() && !chars[end].is_whitespace() && !matches!(chars[end], '`' | '|') {
        end += 1;
    }
    while let Some(&last) = chars[i..end].last() {
        let opens = chars[i..end].iter().filter(|&&c| c == '(').count();
        let closes = chars[i..end].iter().filter(|&&c| c == ')').count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | ']')
            || (last == ')' && closes > opens)
        {
            end -= 1;
        } else {
            break;
        }
    }
    (chars[i..end].iter().collect(), end)
}

/// A short label for a long URL: what it shows, else its host.
pub fn url_label(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "link".into();
    };
    let path = u.path();
    let kind = if path.ends_with("/graph") {
        "graph"
    } else if path.contains("/api/v1/query") {
        "query"
    } else if path.contains("/snapshot") {
        "snapshot"
    } else if path.contains("/trace") {
        "trace"
    } else if u.fragment().is_some_and(|f| f.starts_with("/alerts")) || path.ends_with("/alerts") {
        "alerts"
    } else if path.starts_with("/d/") {
        "dashboard"
    } else {
        ""
    };
    if !kind.is_empty() {
        return kind.into();
    }
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "link".into(),
    }
}

fn unit_follows(chars: &[char], i: usize) -> bool {
    let word: String = chars[i..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '%' || **c == 'µ')
        .collect();
    !word.is_empty() && UNITS.contains(&word.as_str())
}

/// [`text`] for a table cell, cut at [`CELL_MAX`] characters with a note;
/// a word longer than [`WORD_MAX`] (not a URL or code) is cut with `…`.
pub fn cell(s: &str) -> String {
    let shortened;
    let s = if s.split_whitespace().any(|w| w.chars().count() > WORD_MAX) {
        shortened = shorten_words(s);
        shortened.as_str()
    } else {
        s
    };
    let n = s.chars().count();
    if n <= CELL_MAX {
        return text(s);
    }
    // Never cut inside a backtick pair: the half left would show a stray
    // backtick instead of a code span.
    let chars: Vec<char> = s.chars().collect();
    let mut cut = CELL_MAX;
    let mut i = 0;
    while i < cut {
        if chars[i] == '`' {
            match code_pair(&chars, i) {
                Some((_, next)) if next > cut => {
                    cut = i;
                    break;
                }
                Some((_, next)) => i = next,
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    let head: String = chars[..cut].iter().collect();
    format!(
        "{} … ({} more characters in report.json)",
        text(head.trim_end()),
        n - cut
    )
}

fn shorten_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4096));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let n = word.chars().count();
        let keep =
            n <= WORD_MAX || word.contains('`') || word.to_ascii_lowercase().starts_with("http");
        if keep {
            out.push_str(word);
        } else {
            out.extend(word.chars().take(WORD_MAX));
            out.push('…');
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// An inline code span that survives backticks in `s`.
pub fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let longest = longest_run(&s, '`');
    let ticks = "`".repeat(longest + 1);
    if longest > 0 || s.starts_with(' ') || s.ends_with(' ') {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// [`code`] inside a table cell: GitHub needs `\|` even in code spans, and
/// a span longer than [`CELL_CODE_MAX`] is cut (report.json keeps it).
pub fn cell_code(s: &str) -> String {
    let n = s.chars().count();
    if n <= CELL_CODE_MAX {
        return code(s).replace('|', "\\|");
    }
    let head: String = s.chars().take(CELL_CODE_MAX).collect();
    format!(
        "{} … ({} more characters in report.json)",
        code(&format!("{head}…")).replace('|', "\\|"),
        n - CELL_CODE_MAX
    )
}

/// `[label](url)`; the URL is made safe for markdown and table cells.
pub fn link(label: &str, url: &str) -> String {
    let mut safe = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' => safe.push_str("%20"),
            '(' => safe.push_str("%28"),
            ')' => safe.push_str("%29"),
            '<' => safe.push_str("%3C"),
            '>' => safe.push_str("%3E"),
            '|' => safe.push_str("%7C"),
            '`' => safe.push_str("%60"),
            '\\' => safe.push_str("%5C"),
            '\r' | '\n' => {}
            _ => safe.push(c),
        }
    }
    format!("[{}]({safe})", label_text(label))
}

/// A link's label: escaped, never itself holding a link or code span
/// (a link inside a link's text does not render).
fn label_text(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    escape_into(&mut out, label, None);
    out
}

/// A link target inside this document (`#criterion-2`).
pub fn anchor_link(label: &str, anchor: &str) -> String {
    format!("[{}](#{anchor})", label_text(label))
}

/// An anchor a link can jump to, on a line of its own before a heading.
/// GitHub keeps `<a name>` (prefixing it as it does heading ids), so the
/// link works without knowing how GitHub slugs a heading with emoji.
pub fn anchor(id: &str) -> String {
    format!("<a name=\"{id}\"></a>\n\n")
}

/// A code fence longer than any backtick run in `body`.
pub fn fence_for(body: &str) -> String {
    "`".repeat(longest_run(body, '`').max(2) + 1)
}

pub fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c == ch {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// A table whose rows beyond `open` go into a collapsed `<details>` section
/// (with the header repeated) and whose rows beyond `max` are only counted.
/// `rows` are complete `| … |` lines; `noun` names them ("findings").
pub fn bounded_table(
    s: &mut String,
    header: &str,
    rows: &[String],
    open: usize,
    max: usize,
    noun: &str,
) {
    let shown = rows.len().min(max);
    let open = open.min(shown);
    let _ = writeln!(s, "{header}");
    for r in &rows[..open] {
        let _ = writeln!(s, "{r}");
    }
    s.push('\n');
    if shown > open {
        let _ = writeln!(
            s,
            "<details><summary>{} more {noun}</summary>\n\n{header}",
            shown - open
        );
        for r in &rows[open..shown] {
            let _ = writeln!(s, "{r}");
        }
        let _ = writeln!(s, "\n</details>\n");
    }
    if rows.len() > shown {
        let _ = writeln!(
            s,
            "… and {} more {noun}, not shown here: report.json holds all {}.\n",
            rows.len() - shown,
            rows.len()
        );
    }
}

/// Items with the same detail, in first-seen order: (subjects, detail).
pub fn group_by_detail<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(Vec<&'a str>, &'a str)> {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (subject, detail) in items {
        match index.get(detail) {
            Some(&g) => groups[g].0.push(subject),
            None => {
                index.insert(detail, groups.len());
                groups.push((vec![subject], detail));
            }
        }
    }
    groups
}

/// `GhostMetric` or `228 rules: A, B, C, … (225 more)`.
pub fn subjects(names: &[&str], noun: &str, listed: usize) -> String {
    if names.len() == 1 {
        return names[0].to_string();
    }
    let mut s = format!("{} {noun}: ", names.len());
    s.push_str(&names[..names.len().min(listed)].join(", "));
    if names.len() > listed {
        s.push_str(&format!(", … ({} more)", names.len() - listed));
    }
    s
}

/// Where to cut `md` to keep at most `room` bytes without breaking a code
/// block or a collapsed section: a heading (the byte offset and its text)
/// if one lies in the second half, else the last line boundary.
pub fn cut_point(md: &str, room: usize) -> (usize, Option<String>) {
    if md.len() <= room {
        return (md.len(), None);
    }
    let mut heading: Option<(usize, String)> = None;
    let mut line_cut = 0usize;
    let mut fence: Option<String> = None;
    let mut details = 0usize;
    let mut at = 0usize;
    for line in md.split_inclusive('\n') {
        if at + line.len() > room {
            // This line does not fit; a cut before it may still be valid.
            if fence.is_none() && details == 0 {
                line_cut = at;
            }
            break;
        }
        let body = line.trim_end_matches(['\n', '\r']);
        let stripped = body.trim_start_matches(['>', ' ']);
        match &fence {
            Some(f) => {
                if stripped.starts_with(f.as_str())
                    && stripped.trim_start_matches('`').trim().is_empty()
                {
                    fence = None;
                }
            }
            None => {
                let ticks = stripped.chars().take_while(|&c| c == '`').count();
                if details == 0 && ticks < 3 && !body.starts_with("<details") {
                    line_cut = at;
                }
                if ticks >= 3 {
                    fence = Some("`".repeat(ticks));
                } else if body.starts_with("<details") {
                    details += 1;
                } else if body.starts_with("</details>") {
                    details = details.saturating_sub(1);
                } else if body.starts_with('#') && details == 0 {
                    heading = Some((at, body.to_string()));
                }
            }
        }
        at += line.len();
    }
    match heading {
        Some((h, text)) if h >= room / 2 => (h, Some(text)),
        _ => (line_cut, None),
    }
}

/// Cuts `md` to at most `limit` bytes at a heading (else a line) outside
/// any code block or collapsed section, ending with a note saying what was
/// left out. Returns `md` unchanged when it fits.
pub fn bound(md: String, limit: usize) -> String {
    if md.len() <= limit {
        return md;
    }
    let (cut, heading) = cut_point(&md, limit.saturating_sub(1024));
    let mut out = md[..cut].to_string();
    let what = heading
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('#')
        .trim()
        .replace(['\\', '`', '"'], "");
    let from = if what.is_empty() {
        "everything from here on".to_string()
    } else {
        format!("everything from the section \"{what}\" on")
    };
    let _ = write!(
        out,
        "\n> [!NOTE]\n> This report was cut at {}\u{a0}KiB to stay under {}\u{a0}KiB: {from} is left out here. `report.json` holds the whole run.\n",
        cut / 1024,
        limit / 1024,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_what_would_format_or_break_a_row() {
        assert_eq!(
            text("a|b <html> *x* [l](u) \\ next < 1500 </p>"),
            "a\\|b \\<html> \\*x\\* \\[l\\](u) \\\\ next < 1500 \\</p>"
        );
        assert_eq!(text("histogram_quantile"), "histogram_quantile");
    }

    #[test]
    fn backtick_pairs_become_code_spans() {
        assert_eq!(text("target `local` has"), "target `local` has");
        assert_eq!(text("a `b|c` d"), "a \\`b\\|c\\` d");
        assert_eq!(text("one ` alone"), "one \\` alone");
        assert_eq!(text("``a`b``"), "`` a`b ``");
    }

    #[test]
    fn code_spans_in_text_are_short() {
        let far = format!("a `{}` b", "x".repeat(CODE_PAIR_MAX));
        assert!(text(&far).starts_with("a \\`xxx"));
        assert_eq!(text("a `near` b"), "a `near` b");
    }

    #[test]
    fn long_urls_become_short_links() {
        let url = "http://127.0.0.1:39090/graph?g0.expr=histogram_quantile%280.99%29&g0.tab=0";
        assert_eq!(text(&format!("see {url}.")), format!("see [graph]({url})."));
        assert_eq!(
            text("at http://127.0.0.1:9090 ok"),
            "at http://127.0.0.1:9090 ok"
        );
        assert_eq!(
            url_label("https://grafana.example/dashboard/snapshot/AbC123xyz"),
            "snapshot"
        );
        assert_eq!(
            url_label("https://example.org/a/very/long/path/without/meaning"),
            "example.org"
        );
        assert_eq!(
            text("(http://x.example/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)"),
            "([x.example](http://x.example/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa))"
        );
    }

    #[test]
    fn numbers_keep_their_units() {
        assert_eq!(text("fired 5.695 s after"), "fired 5.695\u{a0}s after");
        assert_eq!(
            text("p99 61.9 ms, 3 series, 12 %"),
            "p99 61.9\u{a0}ms, 3 series, 12\u{a0}%"
        );
    }

    #[test]
    fn cells_are_bounded() {
        let long = "x ".repeat(500);
        let c = cell(&long);
        assert!(c.len() < 400, "{}", c.len());
        assert!(c.ends_with("(700 more characters in report.json)"), "{c}");
        assert_eq!(cell(&"y".repeat(100)), format!("{}…", "y".repeat(80)));
        let sel = format!("{{a=\"{}\"}}", "v|".repeat(100));
        let cc = cell_code(&sel);
        assert!(cc.contains("\\|") && cc.contains("more characters"), "{cc}");
    }

    #[test]
    fn cells_are_not_cut_inside_a_code_span() {
        let s = format!(
            "{} `a_long_code_span_here`",
            "x ".repeat((CELL_MAX - 5) / 2)
        );
        let c = cell(&s);
        assert!(!c.contains('`'), "{c}");
        assert!(c.ends_with(" … (23 more characters in report.json)"), "{c}");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("up"), "`up`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell_code("{a=\"x|y\"}"), "`{a=\"x\\|y\"}`");
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("has ```` four"), "`````");
    }

    #[test]
    fn links_are_safe_in_cells() {
        assert_eq!(
            link("a [b]", "http://x/y (z)|w"),
            "[a \\[b\\]](http://x/y%20%28z%29%7Cw)"
        );
    }

    #[test]
    fn link_labels_never_hold_links() {
        let url = format!("https://example.org/{}", "a".repeat(60));
        assert_eq!(
            link(&format!("see {url} `x`"), "http://y"),
            format!("[see {url} \\`x\\`](http://y)")
        );
    }

    #[test]
    fn groups_and_subjects() {
        let g = group_by_detail([("A", "d1"), ("B", "d2"), ("C", "d1")]);
        assert_eq!(g, vec![(vec!["A", "C"], "d1"), (vec!["B"], "d2")]);
        assert_eq!(subjects(&["A"], "rules", 3), "A");
        assert_eq!(
            subjects(&["A", "B", "C", "D"], "rules", 2),
            "4 rules: A, B, … (2 more)"
        );
    }

    #[test]
    fn bounded_tables_collapse_and_count() {
        let rows: Vec<String> = (0..10).map(|i| format!("| {i} |")).collect();
        let mut s = String::new();
        bounded_table(&mut s, "| n |\n|---|", &rows, 3, 6, "rows");
        assert!(s.starts_with("| n |\n|---|\n| 0 |\n| 1 |\n| 2 |\n\n<details><summary>3 more rows</summary>\n\n| n |\n|---|\n| 3 |\n"), "{s}");
        assert!(s.contains("| 5 |\n\n</details>\n"));
        assert!(!s.contains("| 6 |"));
        assert!(s.contains("… and 4 more rows, not shown here: report.json holds all 10."));
    }

    #[test]
    fn bound_cuts_at_a_heading_outside_code() {
        let mut md = String::from("# head\n\n## A\n\n");
        md.push_str("```\n## not a heading\n```\n\n");
        md.push_str(&"x\n".repeat(3000));
        md.push_str("## B\n\n");
        md.push_str(&"y\n".repeat(3000));
        let out = bound(md.clone(), 8 * 1024);
        assert!(out.len() <= 8 * 1024, "{}", out.len());
        assert!(out.contains("## A") && !out.contains("## B"));
        assert!(
            out.contains("from the section \"B\" on is left out"),
            "{out}"
        );
        assert_eq!(bound(md.clone(), md.len()), md);
    }
}
