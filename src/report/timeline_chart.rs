//! A drill's phases, trial by trial: the compact table (the record) and the
//! Mermaid gantt chart (the picture), both relative to the inject.
//!
//! The chart's time axis is time since the inject started, in seconds (or
//! milliseconds for runs shorter than a few seconds), with ticks chosen for
//! the span: Mermaid's `dateFormat x` reads the offsets as milliseconds
//! since 1970 and `axisFormat %s`/`%Q` prints them back as plain numbers,
//! whatever the reader's time zone. Every trial is its own section starting
//! at 0, so trials line up; a phase shorter than a visible bar is drawn at a
//! minimum width and its task name carries its true duration.

use super::md::text;
use super::model::{DrillResult, DrillTrial};
use crate::model::human_ms;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Trials the chart draws at most (the table lists every trial).
pub const CHART_TRIALS: usize = 10;

/// A phase: (name, start event candidates in order, end event).
pub const PHASES: &[(&str, &[&str], &str)] = &[
    ("inject", &["inject_started"], "inject_done"),
    ("to pending", &["inject_done"], "pending"),
    ("pending to firing", &["pending", "inject_done"], "firing"),
    ("firing to Alertmanager", &["firing"], "in_alertmanager"),
    ("to notified", &["in_alertmanager", "firing"], "notified"),
    (
        "fault live",
        &["inject_done", "inject_started"],
        "revert_done",
    ),
    ("revert to resolved", &["revert_done"], "resolved"),
];

/// Tick spacings the axis may use, in milliseconds.
const TICKS_MS: &[i64] = &[
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
];

/// Ticks wanted on the axis at most.
const MAX_TICKS: i64 = 10;

/// The smallest bar drawn, as a share of the chart's span.
const MIN_BAR_SHARE: i64 = 80;

pub fn event_at(t: &DrillTrial, name: &str) -> Option<DateTime<Utc>> {
    t.timeline.iter().find(|e| e.event == name).map(|e| e.at)
}

/// One phase of one trial, in milliseconds since the trial's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub index: usize,
    pub name: &'static str,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Phase {
    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

/// Where a trial's axis starts: the inject starting (else it being done).
fn origin(t: &DrillTrial) -> Option<DateTime<Utc>> {
    event_at(t, "inject_started").or_else(|| event_at(t, "inject_done"))
}

/// The phases a trial has both ends of, relative to its origin. A phase
/// whose events are out of order (a clock step, an alert already pending)
/// is left out rather than drawn backwards.
pub fn phases(t: &DrillTrial) -> Vec<Phase> {
    let Some(o) = origin(t) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, (name, from, to)) in PHASES.iter().enumerate() {
        let start = from.iter().find_map(|f| event_at(t, f));
        let (Some(start), Some(end)) = (start, event_at(t, to)) else {
            continue;
        };
        if end < start {
            continue;
        }
        out.push(Phase {
            index,
            name,
            start_ms: (start - o).num_milliseconds(),
            end_ms: (end - o).num_milliseconds(),
        });
    }
    out
}

/// The compact record: one row per trial, one column per phase duration.
pub fn phase_table(s: &mut String, d: &DrillResult) {
    let per_trial: Vec<(u32, Vec<Phase>)> = d.trials.iter().map(|t| (t.trial, phases(t))).collect();
    if per_trial.iter().all(|(_, p)| p.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "Phase durations, trial by trial (0\u{a0}ms: within the same millisecond):\n"
    );
    let _ = write!(s, "| Trial |");
    for (name, _, _) in PHASES {
        let _ = write!(s, " {} |", text(name));
    }
    let _ = write!(s, "\n|---:|");
    for _ in PHASES {
        s.push_str("---:|");
    }
    s.push('\n');
    for (trial, ps) in &per_trial {
        let _ = write!(s, "| {trial} |");
        for i in 0..PHASES.len() {
            match ps.iter().find(|p| p.index == i) {
                Some(p) => {
                    let _ = write!(s, " {} |", duration(p.duration_ms()));
                }
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// `0.695 s`, `120 ms`, `3m`: short and exact, unit kept on the number.
pub fn duration(ms: i64) -> String {
    let s = if ms.abs() < 1000 {
        format!("{ms} ms")
    } else {
        human_ms(ms)
    };
    s.replace(' ', "\u{a0}")
}

/// The Mermaid gantt chart of the drill's phases, trial by trial.
pub fn gantt(s: &mut String, d: &DrillResult) {
    let trials: Vec<(u32, Vec<Phase>)> = d
        .trials
        .iter()
        .take(CHART_TRIALS)
        .map(|t| (t.trial, phases(t)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if trials.is_empty() {
        return;
    }
    let span = trials
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.end_ms))
        .max()
        .unwrap_or(0)
        .max(1);
    let tick = TICKS_MS
        .iter()
        .copied()
        .find(|t| span / t < MAX_TICKS)
        .unwrap_or(*TICKS_MS.last().unwrap());
    let (axis, unit, interval) = if tick < 1000 {
        ("%Q", "milliseconds", format!("{tick}millisecond"))
    } else if tick % 3_600_000 == 0 {
        ("%s", "seconds", format!("{}hour", tick / 3_600_000))
    } else if tick % 60_000 == 0 {
        ("%s", "seconds", format!("{}minute", tick / 60_000))
    } else {
        ("%s", "seconds", format!("{}second", tick / 1000))
    };
    let min_bar = (span / MIN_BAR_SHARE).max(1);
    let _ = writeln!(
        s,
        "```mermaid\ngantt\n    title {}, {unit} since inject\n    dateFormat x\n    axisFormat {axis}\n    tickInterval {interval}\n    todayMarker off",
        mermaid_text(&format!("{} {}", d.name, d.alert))
    );
    for (trial, ps) in &trials {
        let _ = writeln!(s, "    section Trial {trial}");
        for p in ps {
            let start = p.start_ms.max(0);
            let end = p.end_ms.max(start + min_bar);
            let _ = writeln!(
                s,
                "    {} {} :t{trial}p{}, {start}, {end}",
                mermaid_text(p.name),
                mermaid_text(&duration(p.duration_ms()).replace('\u{a0}', " ")),
                p.index,
            );
        }
    }
    let _ = writeln!(s, "```\n");
    if d.trials.len() > CHART_TRIALS {
        let _ = writeln!(
            s,
            "The chart shows the first {CHART_TRIALS} of {} trials; the table above lists all.\n",
            d.trials.len()
        );
    }
}

/// Text for Mermaid task names and titles: no `:` `#` `;` (syntax there),
/// no quotes, backticks or newlines.
pub fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ':' | '#' | ';' | '\r' | '\n' | '`' | '"' | ',' => ' ',
            _ => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Verdict;
    use crate::report::model::TimelineEvent;

    fn trial(events: &[(&str, i64)]) -> DrillTrial {
        let base = DateTime::parse_from_rfc3339("2026-11-23T09:54:49Z")
            .unwrap()
            .with_timezone(&Utc);
        DrillTrial {
            trial: 1,
            verdict: Verdict::Pass,
            reason: String::new(),
            timeline: events
                .iter()
                .map(|(e, ms)| TimelineEvent {
                    event: e.to_string(),
                    at: base + chrono::Duration::milliseconds(*ms),
                    source: "test".into(),
                })
                .collect(),
            time_to_pending_ms: None,
            time_to_fire_ms: None,
            time_to_notify_ms: None,
            time_to_resolve_ms: None,
            alert_labels: Default::default(),
            receivers: Vec::new(),
            reverted: true,
            revert_error: None,
            notes: Vec::new(),
        }
    }

    fn drill(trials: Vec<DrillTrial>) -> DrillResult {
        DrillResult {
            name: "worker-image-tag".into(),
            alert: "WorkerImagePullBackOff".into(),
            fault: "fleet".into(),
            deadline_ms: 60_000,
            verdict: Verdict::Pass,
            reason: String::new(),
            trials,
            alert_urls: Vec::new(),
            manual_recovery: None,
            time_to_fire: None,
            time_to_fire_histogram: None,
            notes: Vec::new(),
            journal: None,
        }
    }

    #[test]
    fn phases_are_relative_to_the_inject_and_never_backwards() {
        let t = trial(&[
            ("inject_started", 0),
            ("inject_done", 2),
            ("pending", -500),
            ("firing", 4_000),
            ("revert_done", 5_000),
        ]);
        let p = phases(&t);
        let names: Vec<&str> = p.iter().map(|p| p.name).collect();
        // "to pending" would end before it starts: left out. An alert
        // already pending before the inject starts its phase before 0.
        assert_eq!(names, ["inject", "pending to firing", "fault live"]);
        assert_eq!((p[0].start_ms, p[0].end_ms), (0, 2));
        assert_eq!((p[1].start_ms, p[1].end_ms), (-500, 4_000));
        let mut s = String::new();
        gantt(&mut s, &drill(vec![t]));
        assert!(
            s.contains("    pending to firing 4.500 s :t1p2, 0, 4000\n"),
            "{s}"
        );
    }

    #[test]
    fn chart_axis_is_seconds_since_inject_with_a_minimum_bar() {
        let t = trial(&[
            ("inject_started", 0),
            ("inject_done", 1),
            ("pending", 695),
            ("firing", 5_695),
            ("in_alertmanager", 5_695),
            ("revert_done", 8_000),
        ]);
        let mut s = String::new();
        gantt(&mut s, &drill(vec![t]));
        assert!(s.contains("    dateFormat x\n    axisFormat %s\n    tickInterval 1second\n    todayMarker off\n"), "{s}");
        // 1 ms inject drawn 100 ms wide (8 s / 80), its label says 1 ms.
        assert!(s.contains("    inject 1 ms :t1p0, 0, 100\n"), "{s}");
        assert!(
            s.contains("    firing to Alertmanager 0 ms :t1p3, 5695, 5795\n"),
            "{s}"
        );
        assert!(
            s.contains("    pending to firing 5.000 s :t1p2, 695, 5695\n"),
            "{s}"
        );
    }

    #[test]
    fn short_runs_use_milliseconds_and_long_ones_minutes() {
        let short = trial(&[("inject_started", 0), ("inject_done", 800)]);
        let mut s = String::new();
        gantt(&mut s, &drill(vec![short]));
        assert!(
            s.contains("axisFormat %Q\n    tickInterval 100millisecond\n"),
            "{s}"
        );
        let long = trial(&[("inject_started", 0), ("inject_done", 600_000)]);
        let mut s = String::new();
        gantt(&mut s, &drill(vec![long]));
        assert!(
            s.contains("axisFormat %s\n    tickInterval 2minute\n"),
            "{s}"
        );
        let days = trial(&[("inject_started", 0), ("inject_done", 30 * 3_600_000)]);
        let mut s = String::new();
        gantt(&mut s, &drill(vec![days]));
        assert!(s.contains("tickInterval 6hour\n"), "{s}");
    }

    #[test]
    fn table_has_a_row_per_trial() {
        let t = trial(&[
            ("inject_started", 0),
            ("inject_done", 120),
            ("firing", 5_000),
        ]);
        let mut s = String::new();
        phase_table(&mut s, &drill(vec![t]));
        assert!(
            s.contains("| 1 | 120\u{a0}ms | — | 4.880\u{a0}s | — | — | — | — |\n"),
            "{s}"
        );
    }

    #[test]
    fn mermaid_text_drops_syntax_characters() {
        assert_eq!(
            mermaid_text("worker-image-tag: #1; ok"),
            "worker-image-tag 1 ok"
        );
    }
}
