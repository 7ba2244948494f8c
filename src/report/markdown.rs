//! `report.md`: what a reviewer reads, rendered for GitHub.
//!
//! Everything a reviewer needs is on the page: the run's head, the verdict
//! table, and per check the evidence (the exact PromQL, its values with
//! labels, links to Prometheus, Grafana and traces; drill timelines as
//! tables and Mermaid charts). Plain GitHub-flavoured markdown, no raw HTML.

use super::model::{
    CriterionResult, DrillResult, DrillTrial, Link, ProbeResult, Report, SeriesValue, Severity,
    TimingStats, Verdict,
};
use crate::model::human_ms;
use chrono::{DateTime, Utc};
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r);
    probes(&mut s, r);
    criteria(&mut s, r);
    drills(&mut s, r);
    rule_audit(&mut s, r);
    trace_audit(&mut s, r);
    super::compare_md::sections(&mut s, r);
    errors(&mut s, r);
    s
}

/// The head and verdict table alone (GitHub step summary uses this).
pub fn render_summary(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r);
    super::compare_md::sections(&mut s, r);
    s
}

fn head(s: &mut String, r: &Report) {
    let _ = writeln!(s, "# firedrill acceptance report: {}\n", r.verdict.badge());
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(
        s,
        "| Run | {} (`firedrill {}`) |",
        cell_code(&r.run_id),
        md_escape(&r.command)
    );
    let _ = writeln!(
        s,
        "| Target | **{}** ({}): {} |",
        text(&r.target.name),
        text(&r.target.kind),
        text(&r.target.description)
    );
    let _ = writeln!(s, "| Namespace | {} |", cell_code(&r.target.namespace));
    let _ = writeln!(
        s,
        "| Window | {} → {} ({}) |",
        utc(r.window.start),
        utc(r.window.end),
        human_ms((r.window.end - r.window.start).num_milliseconds())
    );
    let _ = writeln!(
        s,
        "| Commit | {} {} |",
        r.tool
            .git_commit
            .as_deref()
            .map(cell_code)
            .unwrap_or_else(|| "unknown".into()),
        r.tool
            .git_ref
            .as_deref()
            .map(|c| format!("({})", cell_code(c)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "| Tool | {} {} |",
        text(&r.tool.name),
        text(&r.tool.version)
    );
    if let Some(url) = &r.target.prometheus_url {
        let _ = writeln!(s, "| Prometheus | {} |", cell_code(url));
    }
    if let Some(snap) = &r.snapshot {
        let _ = writeln!(
            s,
            "| Grafana snapshot | {} of dashboard {} ({}) |",
            link("snapshot of the run window", &snap.url),
            cell_code(&snap.dashboard_uid),
            if snap.verified {
                "read back from Grafana"
            } else {
                "not read back: open it to check"
            }
        );
    }
    if r.interrupted {
        let _ = writeln!(s, "| Interrupted | yes: the run was stopped by a signal |");
    }
    s.push('\n');
    for d in r.drills.iter().filter(|d| d.manual_recovery.is_some()) {
        manual_recovery(s, d);
    }
}

/// A GitHub "caution" alert; elsewhere it is a plain, still loud, quote.
/// Each command is a fenced code block inside the quote, so GitHub shows it
/// exactly as it must be run (no reflow, no backslash escapes).
fn manual_recovery(s: &mut String, d: &DrillResult) {
    let Some(m) = &d.manual_recovery else {
        return;
    };
    let _ = writeln!(s, "> [!CAUTION]");
    let _ = writeln!(
        s,
        "> **MANUAL RECOVERY NEEDED: drill {} could not revert its fault ({}). The fault may still be live.**",
        code(&d.name),
        code(&d.fault)
    );
    let _ = writeln!(s, ">");
    for line in m.summary.lines() {
        quoted(s, &text(line));
    }
    for st in &m.steps {
        let _ = writeln!(s, ">");
        quoted(s, &format!("{}:", text(&st.label)));
        let _ = writeln!(s, ">");
        let fence = fence_for(&st.command);
        let _ = writeln!(s, "> {fence}sh");
        for line in st.command.lines() {
            quoted(s, line);
        }
        let _ = writeln!(s, "> {fence}");
    }
    s.push('\n');
}

/// One line inside a blockquote (`>` alone for an empty line).
fn quoted(s: &mut String, line: &str) {
    if line.trim().is_empty() {
        let _ = writeln!(s, ">");
    } else {
        let _ = writeln!(s, "> {line}");
    }
}

fn verdict_table(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## Verdicts\n");
    let _ = writeln!(s, "| Check | Kind | Verdict | Detail |\n|---|---|---|---|");
    for p in &r.probes {
        let _ = writeln!(
            s,
            "| {} | probe | {} | {} |",
            text(&p.outcome.name),
            p.verdict.badge(),
            text(&probe_detail(p))
        );
    }
    for c in &r.criteria {
        let _ = writeln!(
            s,
            "| {} {} | criterion | {} | {} |",
            text(&c.id),
            text(&c.title),
            c.verdict.badge(),
            text(&c.reason)
        );
    }
    for d in &r.drills {
        let _ = writeln!(
            s,
            "| {} → {} | drill | {} | {} |",
            text(&d.name),
            cell_code(&d.alert),
            d.verdict.badge(),
            text(&d.reason)
        );
    }
    s.push('\n');
}

fn probe_detail(p: &ProbeResult) -> String {
    if p.verdict == Verdict::Pass {
        format!(
            "{}/{} round trips, p99 {:.1} ms",
            p.outcome.completed, p.outcome.sent, p.outcome.latency.p99_ms
        )
    } else {
        p.reasons.join("; ")
    }
}

fn probes(s: &mut String, r: &Report) {
    if r.probes.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Sentinel probes\n");
    for p in &r.probes {
        let o = &p.outcome;
        let _ = writeln!(
            s,
            "### {} on {} (agent type {}): {}\n",
            text(&o.name),
            code(&o.subject),
            code(&o.agent_type),
            p.verdict.badge()
        );
        let _ = writeln!(
            s,
            "| sent | acked | completed | timed out | duplicated | trace mismatches | p50 | p90 | p99 | max | throughput |"
        );
        let _ = writeln!(
            s,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let l = &o.latency;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0}/s |\n",
            o.sent,
            o.acked,
            o.completed,
            o.timed_out.len(),
            o.duplicated.len(),
            o.trace_mismatches.len(),
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.max_ms,
            o.throughput_per_s
        );
        if let Some(sent) = &o.sentinel {
            let _ = writeln!(
                s,
                "First sentinel: task {}, trace {}.\n",
                code(&sent.task_id),
                code(&sent.trace_id)
            );
        }
        for reason in &p.reasons {
            let _ = writeln!(s, "- ❌ {}", text(reason));
        }
        if !p.reasons.is_empty() {
            s.push('\n');
        }
        latency_chart(s, p);
    }
}

/// A Mermaid bar chart of the round-trip distribution.
fn latency_chart(s: &mut String, p: &ProbeResult) {
    let b = &p.outcome.latency.buckets;
    if b.is_empty() {
        return;
    }
    let labels: Vec<String> = b.iter().map(|b| format!("\"≤{}ms\"", b.le_ms)).collect();
    let counts: Vec<String> = b.iter().map(|b| b.count.to_string()).collect();
    let _ = writeln!(
        s,
        "```mermaid\nxychart-beta\n    title \"Round-trip latency ({} sentinels)\"",
        p.outcome.completed
    );
    let _ = writeln!(s, "    x-axis [{}]", labels.join(", "));
    let _ = writeln!(s, "    y-axis \"sentinels\"");
    let _ = writeln!(s, "    bar [{}]\n```\n", counts.join(", "));
}

fn criteria(s: &mut String, r: &Report) {
    if r.criteria.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Acceptance criteria\n");
    let _ = writeln!(
        s,
        "Each query ran as an instant query at {} (the end of the criteria window, which starts {}); every returned series must satisfy the condition. No data, NaN, ±Inf and query errors never pass.\n",
        utc(r.criteria_window.unwrap_or(r.window).end),
        utc(r.criteria_window.unwrap_or(r.window).start)
    );
    for c in &r.criteria {
        criterion(s, c);
    }
}

fn criterion(s: &mut String, c: &CriterionResult) {
    let _ = writeln!(
        s,
        "### {}: {} — {}\n",
        text(&c.id),
        text(&c.title),
        c.verdict.badge()
    );
    let _ = writeln!(s, "**{}**: {}\n", c.verdict.as_str(), text(&c.reason));
    if let Some(query) = &c.query {
        let fence = fence_for(query);
        let _ = writeln!(s, "{fence}promql\n{query}\n{fence}\n");
    }
    if let Some(cond) = &c.condition {
        let _ = writeln!(
            s,
            "Condition: every returned series {}.\n",
            code(&format!("value {cond}"))
        );
    }
    if !c.series.is_empty() {
        let cond = c.condition.as_deref().unwrap_or("");
        let _ = writeln!(
            s,
            "| Series | Value | Passes {} |\n|---|---:|:---:|",
            cell_code(cond)
        );
        for v in &c.series {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                cell_code(&series_labels(v)),
                cell_code(&v.value),
                series_mark(v)
            );
        }
        if c.series_unlisted() > 0 {
            let _ = writeln!(s, "| {} | | |", text(&unlisted(c)));
        }
        s.push('\n');
    }
    let mut links: Vec<String> = Vec::new();
    if let Some(url) = &c.query_url {
        links.push(format!(
            "{} (graph over the run window)",
            link("This query in Prometheus", url)
        ));
    }
    for e in &c.evidence {
        links.push(format!("Evidence: {}", evidence(e)));
    }
    for l in &links {
        let _ = writeln!(s, "- {l}");
    }
    if !links.is_empty() {
        s.push('\n');
    }
}

/// `… and 4980 more series, not listed (17 of all 5000 fail; the worst are above)`.
fn unlisted(c: &CriterionResult) -> String {
    format!(
        "… and {} more series, not listed ({} of all {} fail; the worst are above)",
        c.series_unlisted(),
        c.series_failing,
        c.series_total
    )
}

fn series_labels(v: &SeriesValue) -> String {
    crate::model::format_labels(&v.labels)
}

fn series_mark(v: &SeriesValue) -> &'static str {
    let value = crate::model::parse_value(&v.value);
    if !value.is_finite() {
        "⚠️ not a finite number"
    } else if v.passed {
        "✅"
    } else {
        "❌"
    }
}

fn evidence(l: &Link) -> String {
    match &l.url {
        Some(url) => link(&l.label, url),
        None => text(&l.label),
    }
}

fn drills(s: &mut String, r: &Report) {
    if r.drills.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Drills\n");
    let _ = writeln!(
        s,
        "Times are from `inject_done` (the fault is in place), except time to resolve, which is from `revert_done`. Time to fire uses Alertmanager's `startsAt` when known.\n"
    );
    for d in &r.drills {
        drill(s, d);
    }
}

fn drill(s: &mut String, d: &DrillResult) {
    let _ = writeln!(
        s,
        "### {} → {}: {}\n",
        text(&d.name),
        code(&d.alert),
        d.verdict.badge()
    );
    manual_recovery(s, d);
    let _ = writeln!(s, "**{}**: {}\n", d.verdict.as_str(), text(&d.reason));
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| Fault | {} |", cell_code(&d.fault));
    let _ = writeln!(
        s,
        "| Deadline | alert firing within {} of inject |",
        human_ms(d.deadline_ms as i64)
    );
    let _ = writeln!(s, "| Trials | {} |", d.trials.len());
    let fire: Vec<i64> = d.trials.iter().filter_map(|t| t.time_to_fire_ms).collect();
    if d.trials.len() > 1 {
        let stats = match TimingStats::from_values(&fire) {
            Some(TimingStats {
                min_ms: min,
                median_ms: median,
                max_ms: max,
                ..
            }) => format!(
                "{} / {} / {} ({} of {} trials fired)",
                human_ms(min),
                human_ms(median),
                human_ms(max),
                fire.len(),
                d.trials.len()
            ),
            None => "no trial fired".to_string(),
        };
        let _ = writeln!(s, "| Time to fire, min / median / max | {stats} |");
    }
    s.push('\n');

    if !d.trials.is_empty() {
        let _ = writeln!(
            s,
            "| Trial | Verdict | To pending | To fire | To notify | To resolve | Reverted | Detail |\n|---:|---|---:|---:|---:|---:|---|---|"
        );
        for t in &d.trials {
            let ms = |v: Option<i64>| v.map(human_ms).unwrap_or_else(|| "—".into());
            let reverted = match (&t.revert_error, t.reverted) {
                (Some(e), _) => format!("❌ {}", text(e)),
                (None, true) => "yes".into(),
                (None, false) => "no".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                t.trial,
                t.verdict.badge(),
                ms(t.time_to_pending_ms),
                ms(t.time_to_fire_ms),
                ms(t.time_to_notify_ms),
                ms(t.time_to_resolve_ms),
                reverted,
                text(&t.reason)
            );
        }
        s.push('\n');
        for t in &d.trials {
            trial_events(s, t);
        }
        gantt(s, d);
    }

    if !d.alert_urls.is_empty() {
        let _ = writeln!(s, "Alert links:\n");
        for l in &d.alert_urls {
            let _ = writeln!(s, "- {}", evidence(l));
        }
        s.push('\n');
    }
}

fn trial_events(s: &mut String, t: &DrillTrial) {
    if t.timeline.is_empty() {
        return;
    }
    let origin = event_at(t, "inject_done");
    let _ = writeln!(s, "Trial {} timeline:\n", t.trial);
    let labels = trial_labels(t);
    if !labels.is_empty() {
        let _ = writeln!(s, "Alert labels: {}\n", code(&labels));
    }
    if !t.receivers.is_empty() {
        let names: Vec<String> = t.receivers.iter().map(|r| code(r)).collect();
        let _ = writeln!(s, "Routed by Alertmanager to: {}\n", names.join(", "));
    }
    let _ = writeln!(
        s,
        "| Event | At (UTC) | Since inject | Source |\n|---|---|---:|---|"
    );
    for e in &t.timeline {
        let since = origin
            .map(|o| signed_ms((e.at - o).num_milliseconds()))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell_code(&e.event),
            e.at.format("%H:%M:%S%.3f"),
            since,
            text(&e.source)
        );
    }
    s.push('\n');
}

fn trial_labels(t: &DrillTrial) -> String {
    if t.alert_labels.is_empty() {
        return String::new();
    }
    crate::model::format_labels(&t.alert_labels)
}

/// Gantt phases: (task name, start event candidates in order, end event).
const PHASES: &[(&str, &[&str], &str)] = &[
    ("inject", &["inject_started"], "inject_done"),
    ("until pending", &["inject_done"], "pending"),
    (
        "pending until firing",
        &["pending", "inject_done"],
        "firing",
    ),
    (
        "firing until in Alertmanager",
        &["firing"],
        "in_alertmanager",
    ),
    ("until notified", &["in_alertmanager", "firing"], "notified"),
    (
        "fault live until reverted",
        &["inject_done", "inject_started"],
        "revert_done",
    ),
    ("revert until resolved", &["revert_done"], "resolved"),
];

/// A Mermaid gantt of each trial's phases, at millisecond resolution.
fn gantt(s: &mut String, d: &DrillResult) {
    let mut body = String::new();
    for t in &d.trials {
        let mut bars = String::new();
        for (i, (name, from, to)) in PHASES.iter().enumerate() {
            let start = from.iter().find_map(|f| event_at(t, f));
            let (Some(start), Some(end)) = (start, event_at(t, to)) else {
                continue;
            };
            if end < start {
                continue;
            }
            let _ = writeln!(
                bars,
                "    {} :t{}p{i}, {}, {}",
                mermaid_text(name),
                t.trial,
                start.timestamp_millis(),
                end.timestamp_millis()
            );
        }
        if !bars.is_empty() {
            let _ = writeln!(body, "    section Trial {}", t.trial);
            body.push_str(&bars);
        }
    }
    if body.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "```mermaid\ngantt\n    title {} phases\n    dateFormat x\n    axisFormat %H:%M:%S\n{body}```\n",
        mermaid_text(&format!("{} {}", d.name, d.alert))
    );
}

fn event_at(t: &DrillTrial, name: &str) -> Option<DateTime<Utc>> {
    t.timeline.iter().find(|e| e.event == name).map(|e| e.at)
}

fn rule_audit(s: &mut String, r: &Report) {
    if r.validation.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Rule audit\n");
    let _ = writeln!(
        s,
        "Live checks of the loaded alert rules, the drills' alerts and the criteria's queries; nothing was injected. Any error fails the run.\n"
    );
    let _ = writeln!(
        s,
        "| Rule | Severity | Check | Detail | Selector |\n|---|---|---|---|---|"
    );
    for f in &r.validation {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            text(&f.subject),
            severity_badge(f.severity),
            f.check,
            text(&f.detail),
            f.selector.as_deref().map(cell_code).unwrap_or_default()
        );
    }
    s.push('\n');
}

fn severity_badge(s: Severity) -> &'static str {
    match s {
        Severity::Error => "❌ error",
        Severity::Warning => "⚠️ warning",
        Severity::Info => "ℹ️ info",
    }
}

/// Failing tasks shown in the markdown (report.json keeps more).
const TRACE_FAILURES_SHOWN: usize = 20;

fn trace_audit(s: &mut String, r: &Report) {
    let Some(t) = &r.trace_audit else { return };
    let _ = writeln!(s, "## Trace audit\n");
    let _ = writeln!(
        s,
        "Spans from {}. {} task(s): {} passed, {} failed ({} ms).\n",
        text(&t.source),
        t.tasks,
        t.passed,
        t.failed,
        t.wall_ms
    );
    let _ = writeln!(s, "Expected span tree:\n\n```");
    for hop in &t.tree.hops {
        match &hop.parent {
            None => {
                let _ = writeln!(s, "{}", hop.name);
            }
            Some(p) => {
                let _ = writeln!(s, "{}  <- {}", hop.name, p);
            }
        }
    }
    let _ = writeln!(s, "```\n");
    if !t.missing_by_hop.is_empty()
        || t.orphan_spans > 0
        || t.root_count_failures > 0
        || t.escaped_traces > 0
        || t.envelope_mismatches > 0
    {
        let _ = writeln!(s, "| Problem | Tasks |\n|---|---|");
        for (hop, n) in &t.missing_by_hop {
            let _ = writeln!(s, "| missing hop {} | {n} |", cell_code(hop));
        }
        for (what, n) in [
            ("orphan spans", t.orphan_spans),
            ("not exactly one root", t.root_count_failures),
            ("spans escaped to another trace", t.escaped_traces),
            (
                "result envelope trace_id wrong or missing",
                t.envelope_mismatches,
            ),
        ] {
            if n > 0 {
                let _ = writeln!(s, "| {what} | {n} |");
            }
        }
        s.push('\n');
    }
    for f in t.failures.iter().take(TRACE_FAILURES_SHOWN) {
        let findings: Vec<String> = f.findings.iter().map(|x| text(&x.to_string())).collect();
        let _ = writeln!(
            s,
            "- task {} (trace {}): {}",
            code(&f.task_id),
            code(&f.trace_id),
            findings.join("; ")
        );
    }
    if t.failed as usize > TRACE_FAILURES_SHOWN.min(t.failures.len()) {
        let _ = writeln!(
            s,
            "- … and {} more failing task(s) (first {} in report.json)",
            t.failed as usize - TRACE_FAILURES_SHOWN.min(t.failures.len()),
            t.failures.len()
        );
    }
    for e in &t.errors {
        let _ = writeln!(s, "- error: {}", text(e));
    }
    s.push('\n');
}

fn errors(s: &mut String, r: &Report) {
    if r.errors.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Errors\n");
    for e in &r.errors {
        let _ = writeln!(s, "- {}", text(e));
    }
    s.push('\n');
}

/// Keeps table cells intact: pipes and newlines would break the row.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Free text, safe in a paragraph, a heading or a table cell: markdown
/// punctuation that could format, link or start HTML is escaped (`<` only
/// where it could open a tag, so `< 1500` stays readable in the raw file).
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                out.push_str("\\<");
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
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

/// [`code`] inside a table cell (GitHub needs `\|` even in code spans).
pub fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
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
            '\r' | '\n' => {}
            _ => safe.push(c),
        }
    }
    format!("[{}]({safe})", text(label))
}

/// A code fence longer than any backtick run in `body`.
fn fence_for(body: &str) -> String {
    "`".repeat(longest_run(body, '`').max(2) + 1)
}

fn longest_run(s: &str, ch: char) -> usize {
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

/// Text for Mermaid task names and titles: no `:` `#` `;` (syntax there),
/// no newlines.
fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ':' | '#' | ';' | '\r' | '\n' | '`' | '"' => ' ',
            _ => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// [`human_ms`] with an explicit sign for offsets (`+0.695 s`, `-0.120 s`).
fn signed_ms(ms: i64) -> String {
    if ms < 0 {
        format!("-{}", human_ms(-ms))
    } else {
        format!("+{}", human_ms(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_what_would_format_or_break_a_row() {
        assert_eq!(
            text("a|b <html> *x* [l](u) `c`\nnext < 1500 </p>"),
            "a\\|b \\<html> \\*x\\* \\[l\\](u) \\`c\\` next < 1500 \\</p>"
        );
        assert_eq!(text("histogram_quantile"), "histogram_quantile");
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
    fn mermaid_text_drops_syntax_characters() {
        assert_eq!(
            mermaid_text("worker-image-tag: #1; ok"),
            "worker-image-tag 1 ok"
        );
    }

    #[test]
    fn stats_over_trials() {
        let t = |v: &[i64]| TimingStats::from_values(v).map(|s| (s.min_ms, s.median_ms, s.max_ms));
        assert_eq!(t(&[]), None);
        assert_eq!(t(&[7]), Some((7, 7, 7)));
        assert_eq!(t(&[9, 1, 4, 3]), Some((1, 3, 9)));
        assert_eq!(t(&[9, 1, 4]), Some((1, 4, 9)));
    }

    #[test]
    fn durations() {
        assert_eq!(human_ms(5695), "5.695 s");
        assert_eq!(human_ms(180_000), "3m");
        assert_eq!(signed_ms(-120), "-0.120 s");
        assert_eq!(signed_ms(695), "+0.695 s");
    }
}
