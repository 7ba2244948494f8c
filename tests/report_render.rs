//! report.md rendered the way GitHub renders it (comrak: cmark-gfm's
//! parser with GitHub's table, strikethrough, autolink and tasklist
//! extensions), with assertions on the rendered document rather than on
//! the markdown text:
//!
//! - every table row has as many cells in the source as its header has
//!   columns (cmark-gfm silently drops extra cells and pads missing ones),
//!   and no header row is empty;
//! - rendered text shows no backslash or backtick artefacts, no link that
//!   failed to parse (`](`), and no number split from its unit;
//! - a table cell holds at most a bounded amount of text, no long unbroken
//!   word, and no URL shown as text (long URLs are short links);
//! - the only HTML is firedrill's own anchors and `<details>` sections,
//!   and every in-document link points at an anchor that exists;
//! - every Mermaid block passes a structural check of its gantt or
//!   xychart syntax, with a readable time axis (no repeated tick labels,
//!   at most 12 ticks), every phase drawn at a minimum width and labelled
//!   with its duration (no Mermaid parser runs here: it needs a browser
//!   DOM and network to install);
//! - recovery commands are byte-identical in the rendered code blocks;
//! - the verdict table has a row, with a link to its section, for every
//!   failing or erroring check, and a failing report never shows an empty
//!   verdict table; nothing is left `pending`;
//! - report.md stays under 1 MiB, saying so when it was cut.
//!
//! Inputs: reports the binary wrote (smoke with drills, validate against
//! a real public rule set, accept against a Prometheus without the
//! platform; `tests/fixtures/reports/`, re-rendered by today's renderer),
//! the committed example, constructed worst cases, and every report.json
//! under `$FIREDRILL_RENDER_CHECK_DIR` when it is set.

use comrak::nodes::{AstNode, NodeValue};
use comrak::{parse_document, Arena, Options};
use firedrill::report::markdown;
use firedrill::report::model::{
    Check, Finding, ManualRecovery, RecoveryStep, Report, Severity, TimelineEvent, Verdict,
};

const UNITS: &[&str] = &["ms", "s", "m", "h", "min", "KiB", "MiB", "MB", "%"];

fn gfm() -> Options<'static> {
    let mut o = Options::default();
    o.extension.table = true;
    o.extension.strikethrough = true;
    o.extension.autolink = true;
    o.extension.tasklist = true;
    o
}

/// What a check found, for assertions on top of the panics.
#[derive(Debug, Default)]
struct Seen {
    tables: usize,
    rows: usize,
    gantts: usize,
    xycharts: usize,
    code_blocks: Vec<String>,
    anchors: Vec<String>,
    internal_links: Vec<String>,
    verdict_rows: Vec<String>,
}

/// Cells of a GFM table row in the source: split on pipes not escaped by a
/// backslash (even inside code spans, as GitHub does), less the outer ones.
fn source_cells(line: &str) -> usize {
    let t = line.trim();
    let mut n = 0;
    let mut escaped = false;
    for c in t.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '|' => n += 1,
            _ => {}
        }
    }
    // `| a | b |`: 3 pipes, 2 cells.
    let lead = usize::from(t.starts_with('|'));
    let trail = usize::from(t.ends_with('|') && !t.ends_with("\\|"));
    n + 1 - lead - trail
}

/// `<a name="id">` (inline) or `<a name="id"></a>` (a block): the id.
fn anchor_id(h: &str) -> Option<&str> {
    let rest = h.trim().strip_prefix("<a name=\"")?;
    rest.strip_suffix("\"></a>")
        .or_else(|| rest.strip_suffix("\">"))
}

fn text_of<'a>(node: &'a AstNode<'a>) -> String {
    let mut s = String::new();
    for d in node.descendants() {
        match &d.data.borrow().value {
            NodeValue::Text(t) => s.push_str(t),
            NodeValue::Code(c) => s.push_str(&c.literal),
            NodeValue::SoftBreak | NodeValue::LineBreak => s.push(' '),
            _ => {}
        }
    }
    s
}

fn is_allowed_html(h: &str) -> bool {
    let h = h.trim();
    if h == "</a>" {
        return true;
    }
    if let Some(id) = anchor_id(h) {
        return !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    }
    if let Some(rest) = h.strip_prefix("<a name=\"") {
        if let Some(id) = rest.strip_suffix("\"></a>") {
            return !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        }
    }
    if h == "</details>" {
        return true;
    }
    if let Some(rest) = h.strip_prefix("<details><summary>") {
        return rest.ends_with("</summary>") && !rest[..rest.len() - 10].contains('<');
    }
    false
}

/// Renders `md` as GitHub does and checks everything the module doc says.
fn check(name: &str, md: &str) -> Seen {
    assert!(
        md.len() < 1024 * 1024,
        "{name}: report.md is {} bytes",
        md.len()
    );
    let arena = Arena::new();
    let root = parse_document(&arena, md, &gfm());
    let lines: Vec<&str> = md.lines().collect();
    let mut seen = Seen::default();
    let mut in_verdicts = false;
    for node in root.descendants() {
        let data = node.data.borrow();
        let at = data.sourcepos.start.line;
        let ctx = || format!("{name}, line {at}: {:?}", lines.get(at.wrapping_sub(1)));
        match &data.value {
            NodeValue::Heading(_) => {
                in_verdicts = text_of(node).trim() == "Verdicts";
            }
            NodeValue::Table(t) => {
                seen.tables += 1;
                let want = t.num_columns;
                for (i, row) in node.children().enumerate() {
                    let line = row.data.borrow().sourcepos.start.line;
                    let src = lines[line - 1];
                    assert_eq!(
                        source_cells(src),
                        want,
                        "{name}, line {line}: row has the wrong cell count: {src}"
                    );
                    seen.rows += 1;
                    let cells: Vec<String> = row.children().map(|c| text_of(c)).collect();
                    if i == 0 {
                        assert!(
                            cells.iter().any(|c| !c.trim().is_empty()),
                            "{name}, line {line}: empty header row"
                        );
                    }
                    for c in &cells {
                        assert!(
                            c.chars().count() <= 700,
                            "{name}, line {line}: a cell of {} characters",
                            c.chars().count()
                        );
                        for word in c.split_whitespace() {
                            assert!(
                                word.chars().count() <= 210,
                                "{name}, line {line}: an unbroken word of {} characters: {word}",
                                word.chars().count()
                            );
                        }
                    }
                    if in_verdicts && i > 0 {
                        seen.verdict_rows.push(src.to_string());
                    }
                }
            }
            NodeValue::Text(t) => {
                assert!(!t.contains('`'), "backtick artefact in {}: {t:?}", ctx());
                assert!(!t.contains('\\'), "backslash artefact in {}: {t:?}", ctx());
                assert!(
                    !t.contains("]("),
                    "a link that did not parse in {}: {t:?}",
                    ctx()
                );
                let chars: Vec<char> = t.chars().collect();
                for (i, w) in chars.windows(2).enumerate() {
                    if w[0].is_ascii_digit() && w[1] == ' ' {
                        let unit: String = chars[i + 2..]
                            .iter()
                            .take_while(|c| c.is_alphanumeric() || **c == '%')
                            .collect();
                        assert!(
                            !UNITS.contains(&unit.as_str()),
                            "a number wraps away from its unit ({unit}) in {}: {t:?}",
                            ctx()
                        );
                    }
                }
            }
            NodeValue::HtmlBlock(h) => {
                for l in h.literal.lines().filter(|l| !l.trim().is_empty()) {
                    assert!(is_allowed_html(l), "HTML {l:?} in {}", ctx());
                    seen.anchors.extend(anchor_id(l).map(str::to_string));
                }
            }
            NodeValue::HtmlInline(h) => {
                assert!(is_allowed_html(h), "inline HTML {h:?} in {}", ctx());
                seen.anchors.extend(anchor_id(h).map(str::to_string));
            }
            NodeValue::Link(l) => {
                let shown = text_of(node);
                if let Some(anchor) = l.url.strip_prefix('#') {
                    seen.internal_links.push(anchor.to_string());
                } else {
                    assert!(
                        url::Url::parse(&l.url).is_ok(),
                        "link to {:?} in {}",
                        l.url,
                        ctx()
                    );
                }
                assert!(
                    !(shown.starts_with("http") && shown.chars().count() > 60),
                    "a long URL shown as text in {}: {shown}",
                    ctx()
                );
            }
            NodeValue::CodeBlock(c) => {
                if c.info.trim() == "mermaid" {
                    match c.literal.lines().next().map(str::trim) {
                        Some("gantt") => {
                            check_gantt(&c.literal)
                                .unwrap_or_else(|e| panic!("{}: {e}\n{}", ctx(), c.literal));
                            seen.gantts += 1;
                        }
                        Some("xychart-beta") => {
                            check_xychart(&c.literal)
                                .unwrap_or_else(|e| panic!("{}: {e}\n{}", ctx(), c.literal));
                            seen.xycharts += 1;
                        }
                        other => panic!("{}: unknown Mermaid diagram {other:?}", ctx()),
                    }
                }
                seen.code_blocks.push(c.literal.clone());
            }
            _ => {}
        }
    }
    let cut = md.contains("> This report was cut at ");
    for a in seen.internal_links.iter().filter(|_| !cut) {
        assert!(
            seen.anchors.contains(a),
            "{name}: link to #{a}, which is no anchor here ({:?})",
            seen.anchors
        );
    }
    assert!(
        !md.contains("⏳ pending"),
        "{name}: a final report lists something as pending"
    );
    seen
}

/// `1second`, `200millisecond`, `2minute` in milliseconds.
fn tick_ms(s: &str) -> Option<i64> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    if digits.starts_with('0') {
        return None;
    }
    let unit = &s[digits.len()..];
    let ms = match unit {
        "millisecond" => 1,
        "second" => 1000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        _ => return None,
    };
    Some(n * ms)
}

fn is_duration_label(s: &str) -> bool {
    // "120 ms", "5.000 s", "3m", "1m 1s".
    let last = s.rsplit(' ').next().unwrap_or("");
    if last == "ms" || last == "s" {
        let num = s[..s.len() - last.len()].trim_end();
        let num = num.rsplit(' ').next().unwrap_or("");
        return num.parse::<f64>().is_ok();
    }
    last.ends_with(['s', 'm', 'h']) && last[..last.len() - 1].parse::<u64>().is_ok()
}

/// The gantt syntax firedrill writes, checked line by line.
fn check_gantt(src: &str) -> Result<(), String> {
    let mut date_format = None;
    let mut axis = None;
    let mut tick = None;
    let mut sections = 0;
    let mut tasks_in_section = 0;
    let mut ids = std::collections::HashSet::new();
    let mut bars: Vec<(String, i64, i64)> = Vec::new();
    for (n, line) in src.lines().enumerate().skip(1) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let (key, rest) = l.split_once(' ').unwrap_or((l, ""));
        match key {
            "title" => {
                if rest.trim().is_empty() || rest.contains([':', '#', ';']) {
                    return Err(format!("line {n}: title {rest:?}"));
                }
            }
            "dateFormat" => date_format = Some(rest.to_string()),
            "axisFormat" => {
                let mut chars = rest.chars();
                while let Some(c) = chars.next() {
                    if c == '%' {
                        let spec = chars.next().ok_or("axisFormat ends in %")?;
                        if !"aAbBcdefHIjLmMpQsSUwWxXyYZ%".contains(spec) {
                            return Err(format!("axisFormat %{spec}"));
                        }
                    }
                }
                axis = Some(rest.to_string());
            }
            "tickInterval" => {
                tick = Some(tick_ms(rest).ok_or(format!("tickInterval {rest:?}"))?);
            }
            "todayMarker" => {
                if rest != "off" {
                    return Err(format!("todayMarker {rest}"));
                }
            }
            "section" => {
                if sections > 0 && tasks_in_section == 0 {
                    return Err(format!("line {n}: empty section before"));
                }
                if rest.trim().is_empty() || rest.contains([':', '#', ';']) {
                    return Err(format!("line {n}: section {rest:?}"));
                }
                sections += 1;
                tasks_in_section = 0;
            }
            _ => {
                let (name, spec) = l
                    .split_once(" :")
                    .ok_or(format!("line {n}: not a task: {l}"))?;
                if name.trim().is_empty() || name.contains([':', '#', ';']) {
                    return Err(format!("line {n}: task name {name:?}"));
                }
                if !is_duration_label(name) {
                    return Err(format!(
                        "line {n}: task name without its duration: {name:?}"
                    ));
                }
                let parts: Vec<&str> = spec.split(", ").collect();
                let [id, start, end] = parts[..] else {
                    return Err(format!("line {n}: task spec {spec:?}"));
                };
                let id_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !id_ok || !ids.insert(id.to_string()) {
                    return Err(format!("line {n}: task id {id:?} bad or repeated"));
                }
                let (a, b): (i64, i64) = (
                    start
                        .parse()
                        .map_err(|_| format!("line {n}: start {start:?}"))?,
                    end.parse().map_err(|_| format!("line {n}: end {end:?}"))?,
                );
                if a < 0 || b <= a {
                    return Err(format!("line {n}: bar {a}..{b}"));
                }
                if sections == 0 {
                    return Err(format!("line {n}: task outside a section"));
                }
                tasks_in_section += 1;
                bars.push((name.to_string(), a, b));
            }
        }
    }
    if date_format.as_deref() != Some("x") {
        return Err(format!("dateFormat {date_format:?}, want x (ms offsets)"));
    }
    if tasks_in_section == 0 || bars.is_empty() {
        return Err("no tasks".into());
    }
    let axis = axis.ok_or("no axisFormat: Mermaid would print dates")?;
    let tick = tick.ok_or("no tickInterval")?;
    // Offsets since the inject: plain numbers, never wall-clock fields.
    if axis != "%s" && axis != "%Q" {
        return Err(format!("axisFormat {axis}: not time since inject"));
    }
    if axis == "%s" && tick % 1000 != 0 {
        return Err(format!("%s ticks every {tick} ms repeat their labels"));
    }
    let span = bars.iter().map(|b| b.2).max().unwrap();
    if span / tick > 12 {
        return Err(format!("{} ticks over {span} ms", span / tick));
    }
    for (name, a, b) in &bars {
        if (b - a) * 100 < span {
            return Err(format!(
                "{name}: {} ms bar is invisible over {span} ms",
                b - a
            ));
        }
    }
    Ok(())
}

fn check_xychart(src: &str) -> Result<(), String> {
    let mut labels = None;
    let mut bars = None;
    for line in src.lines().skip(1) {
        let l = line.trim();
        if let Some(t) = l.strip_prefix("title ") {
            if !(t.starts_with('"') && t.ends_with('"') && t.matches('"').count() == 2) {
                return Err(format!("title {t}"));
            }
        } else if let Some(x) = l.strip_prefix("x-axis [") {
            let x = x.strip_suffix(']').ok_or("x-axis not closed")?;
            let items: Vec<&str> = x.split(", ").collect();
            if items
                .iter()
                .any(|i| !(i.starts_with('"') && i.ends_with('"') && i.len() > 2))
            {
                return Err(format!("x-axis {x}"));
            }
            labels = Some(items.len());
        } else if let Some(y) = l.strip_prefix("y-axis ") {
            if !(y.starts_with('"') && y.ends_with('"')) {
                return Err(format!("y-axis {y}"));
            }
        } else if let Some(b) = l.strip_prefix("bar [") {
            let b = b.strip_suffix(']').ok_or("bar not closed")?;
            for v in b.split(", ") {
                v.parse::<f64>().map_err(|_| format!("bar value {v:?}"))?;
            }
            bars = Some(b.split(", ").count());
        } else if !l.is_empty() {
            return Err(format!("unknown line {l:?}"));
        }
    }
    match (labels, bars) {
        (Some(a), Some(b)) if a == b && a > 0 => Ok(()),
        other => Err(format!("labels and bars: {other:?}")),
    }
}

/// The verdict table names every check that did not pass, links it to its
/// section, and is never empty under a failing verdict.
fn check_verdicts(name: &str, r: &Report, seen: &Seen) {
    let failing: Vec<String> = r
        .probes
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Fail | Verdict::Error))
        .map(|p| p.outcome.name.clone())
        .chain(
            r.criteria
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
                .map(|c| c.id.clone()),
        )
        .chain(
            r.drills
                .iter()
                .filter(|d| matches!(d.verdict, Verdict::Fail | Verdict::Error))
                .map(|d| d.name.clone()),
        )
        .collect();
    for id in failing.iter().take(150) {
        assert!(
            seen.verdict_rows
                .iter()
                .any(|row| row.starts_with(&format!("| [{id}")) && row.contains("](#")),
            "{name}: no linked verdict row for {id}"
        );
    }
    if r.validation.iter().any(|f| f.severity == Severity::Error) {
        assert!(
            seen.verdict_rows
                .iter()
                .any(|row| row.contains("| rule audit | ❌ fail |")),
            "{name}: rule-audit errors have no verdict row"
        );
    }
    if r.trace_audit.as_ref().is_some_and(|t| !t.is_pass()) {
        assert!(seen
            .verdict_rows
            .iter()
            .any(|row| row.contains("| trace audit | ❌ fail |")));
    }
    if !r.errors.is_empty() {
        assert!(seen
            .verdict_rows
            .iter()
            .any(|row| row.contains("| error | ⚠️ error |")));
    }
    if r.verdict != Verdict::Pass {
        assert!(
            seen.verdict_rows.iter().any(|row| !row.contains("✅ pass")),
            "{name}: verdict {} over a verdict table with no failing row",
            r.verdict
        );
    }
}

fn load(path: &str) -> Report {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut r: Report = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    r.close_pending();
    r
}

/// Every report the binary wrote, re-rendered by today's renderer.
fn real_reports() -> Vec<(String, Report)> {
    let mut out = vec![(
        "reports/example".to_string(),
        load("reports/example/report.json"),
    )];
    let dir = format!("{}/tests/fixtures/reports", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for n in names {
        out.push((n.clone(), load(&format!("tests/fixtures/reports/{n}"))));
    }
    // More of them on request: every report.json under this directory
    // (e.g. a reports/ folder after a day of runs).
    if let Some(extra) = std::env::var_os("FIREDRILL_RENDER_CHECK_DIR") {
        let mut stack = vec![std::path::PathBuf::from(extra)];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == "report.json") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let mut r: Report = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    r.close_pending();
                    out.push((p.display().to_string(), r));
                }
            }
        }
    }
    out
}

#[test]
fn real_reports_render_cleanly_on_github() {
    let mut gantts = 0;
    for (name, r) in real_reports() {
        let md = markdown::render(&r);
        let seen = check(&name, &md);
        check_verdicts(&name, &r, &seen);
        check(&format!("{name} summary"), &markdown::render_summary(&r));
        gantts += seen.gantts;
        assert!(seen.tables >= 2, "{name}: {seen:?}");
    }
    assert!(gantts >= 2, "the drills' charts were checked");
}

/// A constructed worst case: a rule audit of thousands of findings with
/// one detail repeated, 58,000-character details, long selectors and
/// URLs, run errors repeated, a drill whose phases took 0-2 ms next to
/// minutes, recovery commands full of markdown, and a failing report.
fn worst_case() -> Report {
    let mut r = load("reports/example/report.json");
    let loaded: Vec<String> = (0..2000).map(|i| format!("LoadedAlert{i:04}")).collect();
    let mut findings = vec![Finding {
        subject: "drill worker-image-tag".into(),
        severity: Severity::Error,
        check: Check::DrillAlert,
        detail: format!(
            "alert WorkerImagePullBackOff is not loaded in Prometheus (loaded: {})",
            loaded.join(", ")
        ),
        selector: None,
        file: None,
        group: None,
    }];
    for i in 0..4000 {
        findings.push(Finding {
            subject: format!("Rule{i}"),
            severity: if i % 2 == 1 && i % 3 == 0 {
                Severity::Warning
            } else {
                Severity::Error
            },
            check: if i % 2 == 0 { Check::RunbookUrl } else { Check::SelectorSeries },
            detail: if i % 2 == 0 {
                "the alert has no runbook_url annotation: on-call gets a page with nowhere to look. Add one pointing at its runbook section, e.g. `runbook_url: https://runbooks.example.org/alerts#rule` (see https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/)".into()
            } else {
                format!("references a metric that does not exist, so it silently never fires | `metric_{i}` <b>not</b> *found*")
            },
            selector: (i % 2 == 1).then(|| {
                format!(
                    "kube_pod_container_status_waiting_reason{{namespace=~\"{}\",reason=~\"ImagePullBackOff|ErrImagePull\",container!=\"\"}}",
                    "ns-a|ns-b|".repeat(30)
                )
            }),
            file: Some(format!("rules/set-{}.yml", i % 7)),
            group: Some("group".into()),
        });
    }
    r.validation = findings;
    r.errors = vec![
        "Prometheus at http://127.0.0.1:9090 answered 503: `service unavailable` *again*".into();
        40
    ];
    let graph = format!(
        "http://127.0.0.1:39090/graph?g0.expr={}&g0.tab=0&g0.range_input=151s",
        "histogram_quantile%280.99%2C+sum+by+%28le%29%29".repeat(20)
    );
    if let Some(c) = r.criteria.first_mut() {
        c.verdict = Verdict::Error;
        c.reason = format!(
            "query failed: see {graph} for the graph; 1500 s is the limit; `le` label missing"
        );
        c.query_url = Some(graph.clone());
    }
    if let Some(d) = r.drills.first_mut() {
        d.verdict = Verdict::Error;
        let t0 = d.trials[0].timeline[0].at;
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        let ev = |e: &str, ms: i64| TimelineEvent {
            event: e.into(),
            at: at(ms),
            source: "firedrill clock".into(),
        };
        let mut t = d.trials[0].clone();
        t.trial = 2;
        t.timeline = vec![
            ev("inject_started", 0),
            ev("inject_done", 1),
            ev("pending", 2),
            ev("firing", 170_000),
            ev("in_alertmanager", 170_001),
            ev("notified", 170_003),
            ev("revert_done", 171_000),
            ev("resolved", 240_000),
        ];
        t.revert_error = Some(format!("patch refused: {}", "x".repeat(5000)));
        d.trials.push(t);
        d.manual_recovery = Some(ManualRecovery {
            summary: "The fault may still be live: `kubectl` could not revert it.".into(),
            steps: recovery_commands()
                .into_iter()
                .enumerate()
                .map(|(i, c)| RecoveryStep {
                    label: format!("step {i} | with `code` and *stars*"),
                    command: c,
                })
                .collect(),
        });
    }
    r.verdict = r.compute_verdict();
    r
}

fn recovery_commands() -> Vec<String> {
    vec![
        r#"sh -c 'rm -f "$FIREDRILL_TEST_FAULT"; echo it'\''s off'"#.to_string(),
        "kubectl -n daedalus patch scaledjob daedalus-worker --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/jobTargetRef/template/spec/containers/0/image\",\"value\":\"reg\\\\io/worker:1.2\"}]'".to_string(),
        "echo ```fenced``` | tr '|' '\\n' \\\n  && printf '%s\\n' *done* [x](y) <b>".to_string(),
    ]
}

#[test]
fn worst_case_stays_bounded_and_renders_cleanly() {
    let r = worst_case();
    let md = markdown::render(&r);
    let seen = check("worst case", &md);
    check_verdicts("worst case", &r, &seen);
    // Recovery commands byte-identical, at the top and in the drill.
    for c in recovery_commands() {
        let n = seen
            .code_blocks
            .iter()
            .filter(|b| b.strip_suffix('\n').unwrap_or(b) == c)
            .count();
        assert_eq!(n, 2, "{c:?} not rendered verbatim");
    }
    // Repeated details are one row ("2000 rules: …"); the rest collapse.
    assert!(
        md.contains(
            "| 2000 rules: rules/set-0.yml › group › Rule0, rules/set-2.yml › group › Rule2, "
        ),
        "grouped"
    );
    assert!(md.contains("<details><summary>"));
    assert!(
        md.contains("findings (") && md.contains("rows) not shown here: report.json holds all")
    );
    assert!(md.contains("40 times: Prometheus at http://127.0.0.1:9090 answered 503"));
    // The long graph URL is a short link, in the verdict table too.
    assert!(md.contains("see [graph](http://127.0.0.1:39090/graph?g0.expr="));
    assert!(seen.gantts >= 1);
    eprintln!("worst case report.md: {} bytes", md.len());

    // The summary (step summary, check run) carries the failing reasons.
    let summary = markdown::render_summary(&r);
    let s = check("worst case summary", &summary);
    assert!(s
        .verdict_rows
        .iter()
        .any(|row| row.contains("rule audit: selector-series")));
    assert!(
        s.internal_links.is_empty(),
        "the summary has no sections to link to"
    );
}

#[test]
fn a_report_too_big_for_github_is_cut_with_a_note() {
    let mut r = worst_case();
    // Thousands of criteria, each with a long query and series table.
    let one = r.criteria[0].clone();
    r.criteria = (0..6000)
        .map(|i| {
            let mut c = one.clone();
            c.id = format!("AC{i}");
            c.query = Some(format!("sum(rate(metric_{i}[5m])) # {}", "q".repeat(300)));
            c
        })
        .collect();
    r.verdict = r.compute_verdict();
    let md = markdown::render(&r);
    let seen = check("huge", &md);
    assert!(md.len() < 1024 * 1024);
    assert!(
        md.contains("> This report was cut at ")
            && md.contains("`report.json` holds the whole run."),
        "no note saying what was cut"
    );
    // The verdict table survives the cut.
    assert!(seen.verdict_rows.len() > 100);
}

/// Each check fails on the defect it is there for (what the renderer
/// wrote before, or could write after a careless change).
#[test]
fn the_checks_catch_what_they_claim_to() {
    let gantt = |body: &str| format!("# r\n\n```mermaid\ngantt\n{body}```\n");
    let bad = [
        ("extra cell", "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n".to_string()),
        ("pipe in a cell", "| a | b |\n|---|---|\n| x|y | 2 |\n".to_string()),
        ("empty header", "| | |\n|---|---|\n| Run | x |\n".to_string()),
        ("escaped backticks", "target \\`local\\` has\n".to_string()),
        ("unit wraps", "fired 5.695 s after\n".to_string()),
        ("raw HTML", "an error body <script>x</script>\n".to_string()),
        ("dangling anchor", "[AC1](#criterion-1)\n".to_string()),
        ("long URL as text", format!("see https://example.org/{}\n", "a".repeat(80))),
        ("pending", "| Check | Verdict |\n|---|---|\n| AC5 | ⏳ pending |\n".to_string()),
        ("wide cell", format!("| a |\n|---|\n| {} |\n", "w".repeat(300))),
        (
            "wall-clock axis",
            gantt("    dateFormat x\n    axisFormat %H:%M:%S\n    tickInterval 1second\n    section T\n    inject 1 ms :a, 0, 100\n    to pending 9 s :b, 0, 9000\n"),
        ),
        (
            "sub-second ticks with %s",
            gantt("    dateFormat x\n    axisFormat %s\n    tickInterval 200millisecond\n    section T\n    inject 1 ms :a, 0, 100\n    to pending 1 s :b, 0, 1000\n"),
        ),
        (
            "invisible bar",
            gantt("    dateFormat x\n    axisFormat %s\n    tickInterval 10second\n    section T\n    inject 2 ms :a, 0, 2\n    to pending 90 s :b, 0, 90000\n"),
        ),
        (
            "no duration in the label",
            gantt("    dateFormat x\n    axisFormat %s\n    tickInterval 1second\n    section T\n    inject :a, 0, 100\n"),
        ),
        (
            "colon in a task name",
            gantt("    dateFormat x\n    axisFormat %s\n    tickInterval 1second\n    section T\n    a: b 1 ms :a, 0, 100\n"),
        ),
        (
            "xychart bars and labels differ",
            "```mermaid\nxychart-beta\n    x-axis [\"a\", \"b\"]\n    bar [1]\n```\n".to_string(),
        ),
    ];
    for (what, md) in bad {
        let caught = std::panic::catch_unwind(|| {
            check(what, &md);
        });
        assert!(caught.is_err(), "the check let {what:?} through:\n{md}");
    }
    // And the good forms pass.
    check(
        "good",
        &format!(
            "| Run | x |\n|---|---|\n| a\\|b | `c\\|d` |\n\nfired 5.695\u{a0}s, target `local`, [graph](https://example.org/{})\n",
            "a".repeat(80)
        ),
    );
}
