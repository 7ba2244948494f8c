//! `report.md`: what a reviewer reads, rendered for GitHub.

use super::model::{ProbeResult, Report, Verdict};
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r);
    probes(&mut s, r);
    errors(&mut s, r);
    s
}

/// The head and verdict table alone (GitHub step summary uses this).
pub fn render_summary(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    verdict_table(&mut s, r);
    s
}

fn head(s: &mut String, r: &Report) {
    let _ = writeln!(s, "# firedrill acceptance report: {}\n", r.verdict.badge());
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| Run | `{}` (`firedrill {}`) |", r.run_id, r.command);
    let _ = writeln!(
        s,
        "| Target | **{}** ({}): {} |",
        r.target.name,
        r.target.kind,
        md_escape(&r.target.description)
    );
    let _ = writeln!(s, "| Namespace | `{}` |", r.target.namespace);
    let _ = writeln!(
        s,
        "| Window | {} → {} ({}) |",
        r.window.start.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        r.window.end.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        human_ms((r.window.end - r.window.start).num_milliseconds())
    );
    let _ = writeln!(
        s,
        "| Commit | {} {} |",
        r.tool
            .git_commit
            .as_deref()
            .map(|c| format!("`{c}`"))
            .unwrap_or_else(|| "unknown".into()),
        r.tool
            .git_ref
            .as_deref()
            .map(|c| format!("(`{c}`)"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "| Tool | {} {} |", r.tool.name, r.tool.version);
    if r.interrupted {
        let _ = writeln!(s, "| Interrupted | yes: the run was stopped by a signal |");
    }
    s.push('\n');
}

fn verdict_table(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## Verdicts\n");
    let _ = writeln!(s, "| Check | Kind | Verdict | Detail |\n|---|---|---|---|");
    for p in &r.probes {
        let _ = writeln!(
            s,
            "| {} | probe | {} | {} |",
            p.outcome.name,
            p.verdict.badge(),
            md_escape(&probe_detail(p))
        );
    }
    for c in &r.criteria {
        let _ = writeln!(
            s,
            "| {} {} | criterion | {} | {} |",
            c.id,
            md_escape(&c.title),
            c.verdict.badge(),
            md_escape(&c.reason)
        );
    }
    for d in &r.drills {
        let _ = writeln!(
            s,
            "| {} → `{}` | drill | {} | {} |",
            d.name,
            d.alert,
            d.verdict.badge(),
            md_escape(&d.reason)
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
            "### {} on `{}` (agent type `{}`): {}\n",
            o.name,
            o.subject,
            o.agent_type,
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
                "First sentinel: task `{}`, trace `{}`.\n",
                sent.task_id, sent.trace_id
            );
        }
        for reason in &p.reasons {
            let _ = writeln!(s, "- ❌ {}", md_escape(reason));
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

fn errors(s: &mut String, r: &Report) {
    if r.errors.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Errors\n");
    for e in &r.errors {
        let _ = writeln!(s, "- {}", md_escape(e));
    }
    s.push('\n');
}

/// Keeps table cells intact: pipes and newlines would break the row.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `1234` -> `1.234 s`, `61000` -> `1m 1s`.
pub fn human_ms(ms: i64) -> String {
    if ms.abs() < 60_000 {
        format!("{:.3} s", ms as f64 / 1000.0)
    } else {
        humantime::format_duration(std::time::Duration::from_secs((ms / 1000).unsigned_abs()))
            .to_string()
    }
}
