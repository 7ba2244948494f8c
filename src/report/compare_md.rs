//! The markdown sections of merged and compared reports: "Merged runs"
//! (each input's identity and figures) and "Change since baseline". Kept
//! apart from `markdown.rs` so the two evolve without touching each other.

use super::baseline::{Change, Status};
use super::markdown::{cell_code, text};
use super::model::Report;
use crate::model::human_ms;
use std::fmt::Write as _;

/// Both sections, as `markdown::render` and the step summary append them.
pub fn sections(s: &mut String, r: &Report) {
    merged_runs(s, r);
    change_since_baseline(s, r);
}

/// "Merged runs": one row per input, then each input's own probe and drill
/// figures next to the merged ones (which the tables above show).
pub fn merged_runs(s: &mut String, r: &Report) {
    if r.inputs.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Merged runs\n");
    let _ = writeln!(
        s,
        "{} runs merged; percentiles above are over all their samples (exact HDR histogram merge); the verdict is the worst input's.\n",
        r.inputs.len()
    );
    let _ = writeln!(s, "| Run | Target | Agent types | Command | Verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for i in &r.inputs {
        let agents = if i.agent_types.is_empty() {
            "—".to_string()
        } else {
            i.agent_types
                .iter()
                .map(|a| cell_code(a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {agents} | {} | {} |",
            cell_code(&i.run_id),
            text(&i.target),
            text(&i.command),
            i.verdict.badge()
        );
    }
    s.push('\n');
    if r.inputs.iter().any(|i| !i.probes.is_empty()) {
        let _ = writeln!(
            s,
            "| Probe | Agent type | Run | Target | Round trips | p50 | p99 | Verdict |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for p in &r.probes {
            for i in &r.inputs {
                for ip in i
                    .probes
                    .iter()
                    .filter(|ip| ip.name == p.outcome.name && ip.agent_type == p.outcome.agent_type)
                {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {} |",
                        text(&ip.name),
                        cell_code(&ip.agent_type),
                        cell_code(&i.run_id),
                        text(&i.target),
                        ip.count,
                        ip.p50_ms,
                        ip.p99_ms,
                        ip.verdict.badge()
                    );
                }
            }
            let l = &p.outcome.latency;
            let _ = writeln!(
                s,
                "| **{}** | {} | **all** | | **{}** | **{:.1} ms** | **{:.1} ms** | {} |",
                text(&p.outcome.name),
                cell_code(&p.outcome.agent_type),
                l.count,
                l.p50_ms,
                l.p99_ms,
                p.verdict.badge()
            );
        }
        s.push('\n');
    }
    if r.inputs.iter().any(|i| !i.drills.is_empty()) {
        let _ = writeln!(
            s,
            "| Drill | Run | Target | Trials | Time to fire (median) | Verdict |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for d in &r.drills {
            for i in &r.inputs {
                for id in i.drills.iter().filter(|id| id.name == d.name) {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} |",
                        text(&id.name),
                        cell_code(&i.run_id),
                        text(&i.target),
                        id.trials,
                        id.time_to_fire
                            .map(|t| human_ms(t.median_ms))
                            .unwrap_or_else(|| "never".into()),
                        id.verdict.badge()
                    );
                }
            }
            let _ = writeln!(
                s,
                "| **{}** | **all** | | **{}** | **{}** | {} |",
                text(&d.name),
                d.trials.len(),
                d.time_to_fire
                    .map(|t| human_ms(t.median_ms))
                    .unwrap_or_else(|| "never".into()),
                d.verdict.badge()
            );
        }
        s.push('\n');
    }
    if r.inputs.iter().any(|i| !i.criteria.is_empty()) {
        let _ = writeln!(s, "| Criterion | Run | Target | Value | Verdict |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for i in &r.inputs {
            for c in &i.criteria {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    text(&c.id),
                    cell_code(&i.run_id),
                    text(&i.target),
                    c.value
                        .as_deref()
                        .map(cell_code)
                        .unwrap_or_else(|| "—".into()),
                    c.verdict.badge()
                );
            }
        }
        s.push('\n');
    }
}

/// "Change since baseline": each figure then and now, the delta and
/// whether it is a regression past its threshold.
pub fn change_since_baseline(s: &mut String, r: &Report) {
    let Some(b) = &r.baseline else {
        return;
    };
    let _ = writeln!(s, "## Change since baseline\n");
    if let Some(note) = &b.note {
        let _ = writeln!(s, "> **Note:** {}\n", text(note));
        return;
    }
    let regressions = b.regressions().count();
    let _ = writeln!(
        s,
        "Baseline {} from {}. {}\n",
        b.run_id.as_deref().map(cell_code).unwrap_or_default(),
        cell_code(&b.source),
        match regressions {
            0 => "No regression past its threshold.".to_string(),
            1 => "**1 regression** past its threshold.".to_string(),
            n => format!("**{n} regressions** past their thresholds."),
        }
    );
    if b.changes.is_empty() {
        let _ = writeln!(
            s,
            "Nothing to compare: neither report has drills, criteria, probes or a trace audit.\n"
        );
        return;
    }
    let _ = writeln!(
        s,
        "| Subject | Figure | Baseline | Now | Change | Threshold | |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for c in &b.changes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | +{}% | {} |",
            text(&c.subject),
            text(&c.metric),
            figure(c.baseline, &c.unit),
            figure(c.current, &c.unit),
            delta(c),
            trim(c.threshold_pct),
            badge(c.status)
        );
    }
    s.push('\n');
}

fn badge(st: Status) -> &'static str {
    match st {
        Status::Improved => "✅ improved",
        Status::Unchanged => "unchanged",
        Status::Worse => "worse (within threshold)",
        Status::Regressed => "❌ **regressed**",
        Status::New => "🆕 new",
        Status::Dropped => "➖ dropped",
    }
}

fn figure(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "—".into(),
        (Some(v), "ms") => ms(v),
        (Some(v), "%") => format!("{}%", trim(v)),
        (Some(v), _) => trim(v),
    }
}

fn delta(c: &Change) -> String {
    let Some(d) = c.delta else {
        return "—".into();
    };
    let sign = if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "−"
    } else {
        "±"
    };
    let abs = match c.unit.as_str() {
        "ms" => ms(d.abs()),
        "%" => format!("{} pt", trim(d.abs())),
        _ => trim(d.abs()),
    };
    match c.delta_pct {
        Some(p) if c.unit != "%" => format!("{sign}{abs} ({sign}{:.1}%)", p.abs()),
        _ => format!("{sign}{abs}"),
    }
}

/// Milliseconds as people read them: `57.4 ms` under a second, else `4.826 s`.
fn ms(v: f64) -> String {
    if v.abs() < 1000.0 {
        format!("{v:.1} ms")
    } else {
        human_ms(v.round() as i64)
    }
}

/// At most 3 decimals (6 under 1), no trailing zeros.
fn trim(v: f64) -> String {
    let s = if v.abs() < 1.0 {
        format!("{v:.6}")
    } else {
        format!("{v:.3}")
    };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}
