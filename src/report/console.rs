//! Tables printed to the terminal (tabled).

use super::model::Report;
use tabled::settings::Style;
use tabled::{Table, Tabled};

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
