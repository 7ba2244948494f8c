//! Tables printed to the terminal (tabled).

use super::model::{CriterionResult, Report};
use tabled::settings::object::Columns;
use tabled::settings::{Style, Width};
use tabled::{Table, Tabled};

/// Series shown per criterion in the terminal (worst first); the report lists more.
const CONSOLE_SERIES_CAP: usize = 3;

#[derive(Tabled)]
struct ProbeRow {
    probe: String,
    verdict: String,
    sent: u64,
    completed: u64,
    #[tabled(rename = "timed out")]
    timed_out: usize,
    #[tabled(rename = "dup")]
    duplicated: usize,
    #[tabled(rename = "trace mismatch")]
    mismatches: usize,
    p50: String,
    p90: String,
    p99: String,
    max: String,
    #[tabled(rename = "rt/s")]
    throughput: String,
}

/// The probe table, or `None` if the report has no probes.
pub fn probe_table(r: &Report) -> Option<String> {
    if r.probes.is_empty() {
        return None;
    }
    let rows = r.probes.iter().map(|p| {
        let o = &p.outcome;
        let ms = |v: f64| format!("{v:.1} ms");
        ProbeRow {
            probe: o.name.clone(),
            verdict: p.verdict.to_string(),
            sent: o.sent,
            completed: o.completed,
            timed_out: o.timed_out.len(),
            duplicated: o.duplicated.len(),
            mismatches: o.trace_mismatches.len(),
            p50: ms(o.latency.p50_ms),
            p90: ms(o.latency.p90_ms),
            p99: ms(o.latency.p99_ms),
            max: ms(o.latency.max_ms),
            throughput: format!("{:.0}", o.throughput_per_s),
        }
    });
    Some(Table::new(rows).with(Style::rounded()).to_string())
}

#[derive(Tabled)]
struct CriterionRow {
    id: String,
    title: String,
    #[tabled(rename = "value(s)")]
    values: String,
    condition: String,
    verdict: String,
    reason: String,
}

/// The criteria table for `firedrill accept`, or `None` without criteria.
pub fn criteria_table(r: &Report) -> Option<String> {
    if r.criteria.is_empty() {
        return None;
    }
    let rows = r.criteria.iter().map(|c| CriterionRow {
        id: c.id.clone(),
        title: c.title.clone(),
        values: criterion_values(c),
        condition: c.condition.clone().unwrap_or_else(|| "—".into()),
        verdict: c.verdict.to_string(),
        reason: c.reason.clone(),
    });
    let mut table = Table::new(rows);
    table
        .with(Style::rounded())
        .modify(Columns::new(1..2), Width::wrap(36).keep_words(true))
        .modify(Columns::new(2..3), Width::wrap(48))
        .modify(Columns::new(5..6), Width::wrap(60).keep_words(true));
    Some(table.to_string())
}

/// One line per series (`{agent_type="copilot"} = 10`), capped.
fn criterion_values(c: &CriterionResult) -> String {
    if c.series.is_empty() {
        return "—".into();
    }
    let mut lines: Vec<String> = c
        .series
        .iter()
        .take(CONSOLE_SERIES_CAP)
        .map(|v| {
            if v.labels.is_empty() {
                v.value.clone()
            } else {
                format!("{} = {}", crate::model::format_labels(&v.labels), v.value)
            }
        })
        .collect();
    let shown = c.series.len().min(CONSOLE_SERIES_CAP);
    if c.series_total > shown {
        lines.push(format!("… {} more", c.series_total - shown));
    }
    lines.join("\n")
}

#[derive(Tabled)]
struct FindingRow {
    alert: String,
    severity: String,
    check: String,
    detail: String,
    selector: String,
}

/// Findings the console shows; the report holds all of them.
pub const CONSOLE_FINDINGS: usize = 25;
/// Rule groups the console's summary names.
const CONSOLE_GROUPS: usize = 8;

/// The rule audit for a terminal: counts per check and severity, the
/// groups with most findings, then the most important findings (errors
/// first, at most [`CONSOLE_FINDINGS`]). `None` without findings.
pub fn validation_table(r: &Report) -> Option<String> {
    use super::findings::{by_importance, identify, short_file, summarise, worst_groups};
    if r.validation.is_empty() {
        return None;
    }
    let summary = summarise(&r.validation);
    let mut out = format!(
        "rule audit: {} finding(s): {}\n",
        summary.all.total(),
        summary.all
    );
    for (check, c) in &summary.by_check {
        out.push_str(&format!("  {check:<17} {c}\n"));
    }
    let groups = worst_groups(&summary);
    let named: Vec<_> = groups.iter().filter(|((f, _), _)| !f.is_empty()).collect();
    if !named.is_empty() {
        out.push_str("by rule file › group (most findings first):\n");
        for ((file, group), c) in named.iter().take(CONSOLE_GROUPS) {
            out.push_str(&format!("  {} › {group}: {c}\n", short_file(file)));
        }
        if named.len() > CONSOLE_GROUPS {
            out.push_str(&format!(
                "  … {} more group(s)\n",
                named.len() - CONSOLE_GROUPS
            ));
        }
    }
    let ordered = by_importance(&r.validation);
    let rows = ordered.iter().take(CONSOLE_FINDINGS).map(|f| FindingRow {
        alert: identify(f),
        severity: f.severity.to_string(),
        check: f.check.to_string(),
        detail: f.detail.clone(),
        selector: f.selector.clone().unwrap_or_else(|| "—".into()),
    });
    let mut table = Table::new(rows);
    table
        .with(Style::rounded())
        .modify(Columns::new(0..1), Width::wrap(40))
        .modify(Columns::new(3..4), Width::wrap(60).keep_words(true))
        .modify(Columns::new(4..5), Width::wrap(48));
    out.push_str(&table.to_string());
    if ordered.len() > CONSOLE_FINDINGS {
        out.push_str(&format!(
            "\n… {} more finding(s) in the report (report.md, report.json)",
            ordered.len() - CONSOLE_FINDINGS
        ));
    }
    Some(out)
}
