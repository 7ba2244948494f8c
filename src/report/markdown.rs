//! `report.md`: what a reviewer reads, rendered for GitHub.
//!
//! Everything a reviewer needs is on the page: the run's head, the verdict
//! table (every check with its reason and a link to its section), and per
//! check the evidence (the exact PromQL, its values with labels, links to
//! Prometheus, Grafana and traces; drill phases as a table and a Mermaid
//! chart). GitHub-flavoured markdown; the only HTML is firedrill's own
//! anchors and collapsed `<details>` sections. Bounded: long values are
//! cut, long tables collapse, and the whole stays under
//! [`md::REPORT_LIMIT`] (report.json keeps everything).

use super::md::{self, anchor, anchor_link, bounded_table, cell, fence_for};
pub use super::md::{cell_code, code, link, md_escape, text};
use super::model::{
    CoverageStatus, CriterionResult, DrillResult, DrillTrial, Finding, Link, ProbeResult, Report,
    SeriesValue, Severity, TimingStats, Verdict,
};
use super::timeline_chart::{self, event_at};
use crate::model::human_ms;
use crate::model::snapshot::{panel_counts, PanelStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r, true);
    probes(&mut s, r);
    criteria(&mut s, r);
    drills(&mut s, r);
    snapshot(&mut s, r);
    rule_audit(&mut s, r);
    trace_audit(&mut s, r);
    coverage(&mut s, r);
    super::compare_md::sections(&mut s, r);
    errors(&mut s, r);
    md::bound(s, md::REPORT_LIMIT)
}

/// The head and verdict table alone, with every failing check's reason
/// (the GitHub step summary, check run and failure issue use this; the
/// sections it would link to are not there, so it has no links).
pub fn render_summary(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r, false);
    super::compare_md::sections(&mut s, r);
    s
}

fn head(s: &mut String, r: &Report) {
    let _ = writeln!(s, "# firedrill acceptance report: {}\n", r.verdict.badge());
    // The first pair is the header row: GitHub draws an empty header as a
    // blank bar above the table.
    let _ = writeln!(
        s,
        "| Run | {} ({}) |\n|---|---|",
        cell_code(&r.run_id),
        cell_code(&format!("firedrill {}", r.command))
    );
    let description = if r.target.description.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", cell(&r.target.description))
    };
    let _ = writeln!(
        s,
        "| Target | **{}** ({}){description} |",
        text(&r.target.name),
        text(&r.target.kind),
    );
    if !r.target.namespace.is_empty() {
        let _ = writeln!(s, "| Namespace | {} |", cell_code(&r.target.namespace));
    }
    let _ = writeln!(
        s,
        "| Window | {} → {} ({}) |",
        utc(r.window.start),
        utc(r.window.end),
        dur((r.window.end - r.window.start).num_milliseconds())
    );
    let _ = writeln!(
        s,
        "| Commit | {}{} |",
        r.tool
            .git_commit
            .as_deref()
            .map(cell_code)
            .unwrap_or_else(|| match &r.tool.commit_unknown_because {
                Some(why) => format!("unknown: {}", cell(why)),
                None => "unknown".into(),
            }),
        r.tool
            .git_ref
            .as_deref()
            .map(|c| format!(" ({})", cell_code(c)))
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

/// Rows the verdict table shows at most (not passing ones first in line for
/// the room; every check still has its section).
const VERDICT_ROWS: usize = 200;

/// One row of the verdict table; `check` and `detail` are markdown already.
struct VerdictRow {
    check: String,
    kind: &'static str,
    verdict: Verdict,
    detail: String,
    anchor: String,
}

/// Every check of the run with its verdict and reason: probes, criteria,
/// drills, the rule audit (one row per failing check kind, rules with the
/// same detail grouped), the trace audit and run errors.
fn verdict_rows(r: &Report) -> Vec<VerdictRow> {
    let mut rows = Vec::new();
    for (i, p) in r.probes.iter().enumerate() {
        rows.push(VerdictRow {
            check: text(&p.outcome.name),
            kind: "probe",
            verdict: p.verdict,
            detail: cell(&probe_detail(p)),
            anchor: format!("probe-{}", i + 1),
        });
    }
    for (i, c) in r.criteria.iter().enumerate() {
        rows.push(VerdictRow {
            check: format!("{} {}", text(&c.id), cell(&c.title)),
            kind: "criterion",
            verdict: c.verdict,
            detail: cell(&c.reason),
            anchor: format!("criterion-{}", i + 1),
        });
    }
    for (i, d) in r.drills.iter().enumerate() {
        rows.push(VerdictRow {
            check: format!("{} → {}", text(&d.name), cell_code(&d.alert)),
            kind: "drill",
            verdict: d.verdict,
            detail: cell(&d.reason),
            anchor: format!("drill-{}", i + 1),
        });
    }
    rows.extend(rule_audit_rows(r));
    if let Some(t) = &r.trace_audit {
        let mut detail = format!(
            "{} of {} task(s) passed, {} failed",
            t.passed, t.tasks, t.failed
        );
        let mut problems: Vec<String> = t
            .missing_by_hop
            .iter()
            .map(|(hop, n)| format!("{n} missing hop {hop}"))
            .collect();
        for (what, n) in [
            ("orphan spans", t.orphan_spans),
            ("not exactly one root", t.root_count_failures),
            ("escaped to another trace", t.escaped_traces),
            ("envelope trace_id wrong", t.envelope_mismatches),
        ] {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        }
        problems.extend(t.errors.iter().cloned());
        if !problems.is_empty() {
            detail.push_str(": ");
            detail.push_str(&problems.join("; "));
        }
        rows.push(VerdictRow {
            check: "trace audit".into(),
            kind: "trace audit",
            verdict: t.verdict(),
            detail: cell(&detail),
            anchor: "trace-audit".into(),
        });
    }
    if let Some(c) = &r.coverage {
        rows.push(VerdictRow {
            check: "alert coverage".into(),
            kind: "coverage",
            // Informational unless --min-coverage was given.
            verdict: match (c.min_percent, c.below_minimum()) {
                (None, _) => Verdict::Skipped,
                (Some(_), true) => Verdict::Fail,
                (Some(_), false) => Verdict::Pass,
            },
            detail: cell(&c.line()),
            anchor: "alert-coverage".into(),
        });
    }
    for (subjects, detail) in md::group_by_detail(r.errors.iter().map(|e| ("", e.as_str()))) {
        let detail = if subjects.len() > 1 {
            format!("{} times: {detail}", subjects.len())
        } else {
            detail.to_string()
        };
        rows.push(VerdictRow {
            check: "run".into(),
            kind: "error",
            verdict: Verdict::Error,
            detail: cell(&detail),
            anchor: "errors".into(),
        });
    }
    rows
}

/// The rule audit in the verdict table: a failing row per check that has
/// error findings, else one passing row counting warnings and infos.
fn rule_audit_rows(r: &Report) -> Vec<VerdictRow> {
    if r.validation.is_empty() {
        return Vec::new();
    }
    let mut checks: Vec<_> = r
        .validation
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.check)
        .collect();
    checks.sort();
    checks.dedup();
    let mut rows = Vec::new();
    for check in checks {
        let errors = r
            .validation
            .iter()
            .filter(|f| f.severity == Severity::Error && f.check == check);
        let groups = md::group_by_detail(errors.map(|f| (f.subject.as_str(), f.detail.as_str())));
        let parts: Vec<String> = groups
            .iter()
            .take(3)
            .map(|(names, detail)| match names.as_slice() {
                [one] => format!("{one}: {detail}"),
                _ => format!(
                    "{} rules: {detail} ({})",
                    names.len(),
                    md::subjects(names, "rules", 3)
                        .split_once(": ")
                        .map(|(_, list)| list.to_string())
                        .unwrap_or_default()
                ),
            })
            .collect();
        let mut detail = parts.join("; ");
        if groups.len() > 3 {
            detail.push_str(&format!("; and {} other details", groups.len() - 3));
        }
        rows.push(VerdictRow {
            check: format!("rule audit: {check}"),
            kind: "rule audit",
            verdict: Verdict::Fail,
            detail: cell(&detail),
            anchor: "rule-audit".into(),
        });
    }
    if rows.is_empty() {
        let count = |sev| r.validation.iter().filter(|f| f.severity == sev).count();
        rows.push(VerdictRow {
            check: "rule audit".into(),
            kind: "rule audit",
            verdict: Verdict::Pass,
            detail: format!(
                "no errors; {} warning(s), {} info finding(s)",
                count(Severity::Warning),
                count(Severity::Info)
            ),
            anchor: "rule-audit".into(),
        });
    }
    rows
}

fn verdict_table(s: &mut String, r: &Report, links: bool) {
    let _ = writeln!(s, "## Verdicts\n");
    let rows = verdict_rows(r);
    if rows.is_empty() {
        let _ = writeln!(s, "No checks ran.\n");
        return;
    }
    let line = |row: &VerdictRow| {
        let check = if !links {
            row.check.clone()
        } else if row.check.contains("](") {
            // A link cannot hold a link: point at the section beside it.
            format!("{} ({})", row.check, anchor_link("section", &row.anchor))
        } else {
            format!("[{}](#{})", row.check, row.anchor)
        };
        format!(
            "| {check} | {} | {} | {} |",
            row.kind,
            row.verdict.badge(),
            row.detail
        )
    };
    // Passing rows fill at most half the inline table.
    let (mut inline, mut rest) = (Vec::new(), Vec::new());
    let mut passing_shown = 0;
    for row in &rows {
        let pass = row.verdict == Verdict::Pass;
        if inline.len() >= VERDICT_ROWS || (pass && passing_shown >= VERDICT_ROWS / 2) {
            rest.push(row);
            continue;
        }
        passing_shown += usize::from(pass);
        inline.push(line(row));
    }
    let header = "| Check | Kind | Verdict | Detail |\n|---|---|---|---|";
    let _ = writeln!(s, "{header}");
    for l in &inline {
        let _ = writeln!(s, "{l}");
    }
    s.push('\n');
    if rest.is_empty() {
        return;
    }
    let failing = rest.iter().filter(|r| r.verdict != Verdict::Pass).count();
    if links {
        // report.md lists every check: the rest collapsed (bounded as any table).
        let more: Vec<String> = rest.iter().map(|r| line(r)).collect();
        let _ = writeln!(
            s,
            "{} more check(s) ({failing} not passing) below.\n",
            rest.len()
        );
        bounded_table(s, header, &more, 0, md::ROWS_MAX, "checks");
    } else {
        let _ = writeln!(
            s,
            "… {} more check(s) ({failing} not passing, {} passing): report.md lists them all.\n",
            rest.len(),
            rest.len() - failing
        );
    }
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
    for (i, p) in r.probes.iter().enumerate() {
        let o = &p.outcome;
        s.push_str(&anchor(&format!("probe-{}", i + 1)));
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
            "| {} | {} | {} | {} | {} | {} | {:.1}\u{a0}ms | {:.1}\u{a0}ms | {:.1}\u{a0}ms | {:.1}\u{a0}ms | {:.0}/s |\n",
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
    for (i, c) in r.criteria.iter().enumerate() {
        s.push_str(&anchor(&format!("criterion-{}", i + 1)));
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
        let lang = c.language.as_deref().unwrap_or("promql");
        let _ = writeln!(s, "{fence}{lang}\n{query}\n{fence}\n");
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
        links.push(match c.language.as_deref() {
            Some("logql") => format!(
                "{} (over the run window)",
                link("This query in Grafana Explore on Loki", url)
            ),
            _ => format!(
                "{} (graph over the run window)",
                link("This query in Prometheus", url)
            ),
        });
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
    drill_groups(s, r);
    for (i, d) in r.drills.iter().enumerate() {
        s.push_str(&anchor(&format!("drill-{}", i + 1)));
        drill(s, d);
    }
}

/// `--parallel`: the groups, what each drill touched, and the crosstalk.
fn drill_groups(s: &mut String, r: &Report) {
    if r.drill_groups.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Parallel groups\n\nDrills of a group ran at the same time: their faults touch disjoint objects and they expect different alerts. Crosstalk is an alert no drill of the group expected that went pending or firing while it ran.\n"
    );
    let _ = writeln!(
        s,
        "| Group | Drills (what each fault touches) | Ran for | Crosstalk |\n|---:|---|---:|---|"
    );
    for g in &r.drill_groups {
        let drills: Vec<String> = g
            .drills
            .iter()
            .zip(&g.footprints)
            .map(|(d, f)| format!("{d} ({f})"))
            .collect();
        let crosstalk = if g.crosstalk.is_empty() {
            "none".to_string()
        } else {
            let seen: Vec<String> = g
                .crosstalk
                .iter()
                .map(|c| {
                    format!(
                        "{}{} {}",
                        c.alert,
                        crate::model::format_labels(&c.labels),
                        c.state
                    )
                })
                .collect();
            format!("⚠️ {}", seen.join("; "))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            g.group,
            cell(&drills.join("; ")),
            dur((g.ended - g.started).num_milliseconds()),
            cell(&crosstalk)
        );
    }
    s.push('\n');
    for n in r.drill_groups.iter().flat_map(|g| &g.notes) {
        let _ = writeln!(s, "- {}", text(n));
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
    let _ = writeln!(s, "| Fault | {} |\n|---|---|", cell_code(&d.fault));
    let _ = writeln!(
        s,
        "| Deadline | alert firing within {} of inject |",
        dur(d.deadline_ms as i64)
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
                dur(min),
                dur(median),
                dur(max),
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
            let ms = |v: Option<i64>| v.map(dur).unwrap_or_else(|| "—".into());
            let reverted = match (&t.revert_error, t.reverted) {
                (Some(e), _) => format!("❌ {}", cell(e)),
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
                cell(&t.reason)
            );
        }
        s.push('\n');
        timeline_chart::phase_table(s, d);
        timeline_chart::gantt(s, d);
        if d.trials.iter().any(|t| !t.timeline.is_empty()) {
            let _ = writeln!(
                s,
                "<details><summary>Every event with its time and source, trial by trial</summary>\n"
            );
            for t in &d.trials {
                trial_events(s, t);
            }
            let _ = writeln!(s, "</details>\n");
        }
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
            cell(&e.source)
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

/// Panels most reports need to list before the rest are summed up.
const SNAPSHOT_PANELS_LISTED: usize = 60;

fn snapshot(s: &mut String, r: &Report) {
    let Some(snap) = &r.snapshot else { return };
    s.push_str(&anchor("grafana-snapshot"));
    let _ = writeln!(s, "## Grafana snapshot\n");
    let (data, no_data, errors) = panel_counts(&snap.panel_data);
    let _ = writeln!(
        s,
        "{} of dashboard {}: {} panel(s), {data} with data, {no_data} without data, {errors} with errors; {} series; {}.\n",
        link("Snapshot", &snap.url),
        code(&snap.dashboard_uid),
        snap.panels,
        snap.series,
        if snap.verified {
            "read back from Grafana"
        } else {
            "not read back"
        }
    );
    if !snap.variables.is_empty() {
        let _ = writeln!(s, "| Variable | Value | Source | Note |\n|---|---|---|---|");
        for v in &snap.variables {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell_code(&v.name),
                if v.value.is_empty() {
                    "(empty)".to_string()
                } else {
                    cell_code(&v.value)
                },
                text(&v.source),
                text(v.note.as_deref().unwrap_or(""))
            );
        }
        s.push('\n');
    }
    if !snap.panel_data.is_empty() {
        // Problems first: errors, then no data, then panels with data.
        let mut panels: Vec<_> = snap.panel_data.iter().collect();
        panels.sort_by_key(|p| match p.status() {
            PanelStatus::Errors => 0,
            PanelStatus::NoData => 1,
            PanelStatus::Data => 2,
        });
        let _ = writeln!(
            s,
            "| Panel | Status | Queries | Failed | Series |\n|---|---|---|---|---|"
        );
        for p in panels.iter().take(SNAPSHOT_PANELS_LISTED) {
            let status = match p.status() {
                PanelStatus::Data => "✅ data",
                PanelStatus::NoData => "⚪ no data",
                PanelStatus::Errors => "❌ errors",
            };
            let _ = writeln!(
                s,
                "| {} | {status} | {} | {} | {} |",
                text(&p.title),
                p.queries,
                p.failed,
                p.series
            );
        }
        if panels.len() > SNAPSHOT_PANELS_LISTED {
            let _ = writeln!(
                s,
                "\n{} more panel(s) with data are not listed (report.json has them all).",
                panels.len() - SNAPSHOT_PANELS_LISTED
            );
        }
        s.push('\n');
    }
    if !snap.notes.is_empty() {
        let _ = writeln!(s, "Notes:\n");
        for n in &snap.notes {
            let _ = writeln!(s, "- {}", text(n));
        }
        s.push('\n');
    }
}

fn rule_audit(s: &mut String, r: &Report) {
    use super::findings::{by_importance, summarise, worst_groups};
    if r.validation.is_empty() {
        return;
    }
    s.push_str(&anchor("rule-audit"));
    let summary = summarise(&r.validation);
    let _ = writeln!(s, "## Rule audit\n");
    let _ = writeln!(
        s,
        "Live checks of the loaded alert rules, their routing, the drills' alerts and the criteria's queries; nothing was injected. Any error fails the run. {} finding(s): {}.\n",
        summary.all.total(),
        summary.all
    );
    let _ = writeln!(s, "| Check | Errors | Warnings | Info |\n|---|---|---|---|");
    for (check, c) in &summary.by_check {
        let _ = writeln!(s, "| {check} | {} | {} | {} |", c.error, c.warning, c.info);
    }
    s.push('\n');
    let groups: Vec<_> = worst_groups(&summary)
        .into_iter()
        .filter(|((f, _), _)| !f.is_empty())
        .collect();
    if !groups.is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>Findings per rule file and group ({})</summary>\n",
            groups.len()
        );
        let _ = writeln!(
            s,
            "| File | Group | Errors | Warnings | Info |\n|---|---|---|---|---|"
        );
        for ((file, group), c) in groups {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                cell_code(file),
                text(group),
                c.error,
                c.warning,
                c.info
            );
        }
        s.push_str("\n</details>\n\n");
    }
    let ordered = by_importance(&r.validation);
    for (check, c) in &summary.by_check {
        let _ = writeln!(s, "<details><summary>{check}: {c}</summary>\n");
        // Findings alike but for the rule are one row ("228 rules: …").
        let mut groups: Vec<(&Finding, Vec<String>)> = Vec::new();
        let mut index: BTreeMap<(Severity, &str, Option<&str>), usize> = BTreeMap::new();
        for f in ordered.iter().filter(|f| f.check == *check) {
            let key = (f.severity, f.detail.as_str(), f.selector.as_deref());
            let name = match (&f.file, &f.group) {
                (Some(file), Some(group)) => format!("{file} › {group} › {}", f.subject),
                _ => f.subject.clone(),
            };
            match index.get(&key) {
                Some(&g) => groups[g].1.push(name),
                None => {
                    index.insert(key, groups.len());
                    groups.push((f, vec![name]));
                }
            }
        }
        let rows: Vec<String> = groups
            .iter()
            .map(|(f, names)| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                format!(
                    "| {} | {} | {} | {} |",
                    cell(&md::subjects(&names, "rules", 5)),
                    severity_badge(f.severity),
                    cell(&f.detail),
                    f.selector.as_deref().map(cell_code).unwrap_or_default()
                )
            })
            .collect();
        // Rows are groups of findings: say how many findings are left out,
        // not rows, and where they all are.
        let shown = rows.len().min(md::ROWS_MAX);
        bounded_table(
            s,
            "| Rule (file › group › alert) | Severity | Detail | Selector |\n|---|---|---|---|",
            &rows[..shown],
            md::ROWS_OPEN,
            md::ROWS_MAX,
            "rows",
        );
        if rows.len() > shown {
            let left: usize = groups[shown..].iter().map(|(_, names)| names.len()).sum();
            let _ = writeln!(
                s,
                "… and {left} more {check} findings ({} rows) not shown here: report.json holds all {} of them (`validation`, `\"check\": \"{check}\"`).\n",
                rows.len() - shown,
                c.total()
            );
        }
        s.push_str("</details>\n\n");
    }
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

/// Alerting rules against the drills that prove them: uncovered
/// page-severity alerts first, then the table.
fn coverage(s: &mut String, r: &Report) {
    let Some(c) = &r.coverage else { return };
    s.push_str(&anchor("alert-coverage"));
    let _ = writeln!(
        s,
        "## Alert coverage
"
    );
    let _ = writeln!(
        s,
        "{}.
",
        text(&c.line())
    );
    let uncovered_pages: Vec<String> = c
        .rules
        .iter()
        .filter(|row| row.severity == "page" && row.status != CoverageStatus::Proven)
        .map(|row| format!("{} ({})", code(&row.alert), row.status.as_str()))
        .collect();
    if !uncovered_pages.is_empty() {
        let _ = writeln!(
            s,
            "Page-severity alerts no drill proved in this run: {}.\n",
            uncovered_pages.join(", ")
        );
    }
    let rows: Vec<String> = c
        .rules
        .iter()
        .map(|row| {
            format!(
                "| {} | {} | {} | {} | {} |",
                code(&row.alert),
                cell(&row.severity),
                row.status.as_str(),
                if row.drills.is_empty() {
                    "—".to_string()
                } else {
                    row.drills
                        .iter()
                        .map(|d| code(d))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                cell(&format!("{} / {}", row.file, row.group))
            )
        })
        .collect();
    md::bounded_table(
        s,
        "| Alert | Severity | Status | Drills | Rule file / group |\n|---|---|---|---|---|",
        &rows,
        50,
        1000,
        "rules",
    );
}

fn trace_audit(s: &mut String, r: &Report) {
    let Some(t) = &r.trace_audit else { return };
    s.push_str(&anchor("trace-audit"));
    let _ = writeln!(s, "## Trace audit\n");
    let _ = writeln!(
        s,
        "Spans from {}. {} task(s): {} passed, {} failed ({}\u{a0}ms).\n",
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
    s.push_str(&anchor("errors"));
    let _ = writeln!(s, "## Errors\n");
    for (subjects, e) in md::group_by_detail(r.errors.iter().map(|e| ("", e.as_str()))) {
        if subjects.len() > 1 {
            let _ = writeln!(s, "- {} times: {}", subjects.len(), cell(e));
        } else {
            let _ = writeln!(s, "- {}", cell(e));
        }
    }
    s.push('\n');
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// [`human_ms`] with an explicit sign for offsets (`+0.695 s`, `-0.120 s`).
fn signed_ms(ms: i64) -> String {
    if ms < 0 {
        format!("-{}", dur(-ms))
    } else {
        format!("+{}", dur(ms))
    }
}

/// [`human_ms`] with its unit kept on the number (a non-breaking space).
fn dur(ms: i64) -> String {
    human_ms(ms).replace(' ', "\u{a0}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(signed_ms(-120), "-0.120\u{a0}s");
        assert_eq!(signed_ms(695), "+0.695\u{a0}s");
    }
}
