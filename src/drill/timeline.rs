//! A drill trial's timeline and the numbers derived from it (pure).

use crate::report::model::{TimelineEvent, TimingStats};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The events of one trial, in their canonical order (ties in time sort by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    InjectStarted,
    InjectDone,
    TriggerSent,
    Pending,
    FiringFirstPoll,
    Firing,
    InAlertmanager,
    /// The receivers Alertmanager routed it to (named in the source).
    Routed,
    Notified,
    RevertDone,
    Resolved,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InjectStarted => "inject_started",
            EventKind::InjectDone => "inject_done",
            EventKind::TriggerSent => "trigger_sent",
            EventKind::Pending => "pending",
            EventKind::FiringFirstPoll => "firing_first_poll",
            EventKind::Firing => "firing",
            EventKind::InAlertmanager => "in_alertmanager",
            EventKind::Routed => "routed",
            EventKind::Notified => "notified",
            EventKind::RevertDone => "revert_done",
            EventKind::Resolved => "resolved",
        }
    }
}

/// At most one timestamp per event kind, each with where it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    events: BTreeMap<EventKind, (DateTime<Utc>, String)>,
}

impl Timeline {
    /// Records `kind` unless it is already known; returns whether it was new.
    pub fn set_first(&mut self, kind: EventKind, at: DateTime<Utc>, source: &str) -> bool {
        if self.events.contains_key(&kind) {
            return false;
        }
        self.events.insert(kind, (at, source.to_string()));
        true
    }

    /// Records `kind`, replacing an earlier, less exact value.
    pub fn set(&mut self, kind: EventKind, at: DateTime<Utc>, source: &str) {
        self.events.insert(kind, (at, source.to_string()));
    }

    pub fn at(&self, kind: EventKind) -> Option<DateTime<Utc>> {
        self.events.get(&kind).map(|(at, _)| *at)
    }

    pub fn source(&self, kind: EventKind) -> Option<&str> {
        self.events.get(&kind).map(|(_, s)| s.as_str())
    }

    /// Report events, by time (ties in canonical order).
    pub fn events(&self) -> Vec<TimelineEvent> {
        let mut v: Vec<(EventKind, DateTime<Utc>, String)> = self
            .events
            .iter()
            .map(|(k, (at, s))| (*k, *at, s.clone()))
            .collect();
        v.sort_by_key(|(k, at, _)| (*at, *k));
        v.into_iter()
            .map(|(k, at, source)| TimelineEvent {
                event: k.as_str().to_string(),
                at,
                source,
            })
            .collect()
    }

    /// Milliseconds from `from` to `to`, when both are known.
    pub fn between_ms(&self, from: EventKind, to: EventKind) -> Option<i64> {
        Some((self.at(to)? - self.at(from)?).num_milliseconds())
    }

    /// The numbers a trial reports: all from `inject_done`, except resolve
    /// which is from `revert_done`.
    pub fn numbers(&self) -> TrialNumbers {
        TrialNumbers {
            time_to_pending_ms: self.between_ms(EventKind::InjectDone, EventKind::Pending),
            time_to_fire_ms: self.between_ms(EventKind::InjectDone, EventKind::Firing),
            time_to_notify_ms: self.between_ms(EventKind::InjectDone, EventKind::Notified),
            time_to_resolve_ms: self.between_ms(EventKind::RevertDone, EventKind::Resolved),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrialNumbers {
    pub time_to_pending_ms: Option<i64>,
    pub time_to_fire_ms: Option<i64>,
    pub time_to_notify_ms: Option<i64>,
    pub time_to_resolve_ms: Option<i64>,
}

/// Min, median and max over trials (see [`TimingStats`]).
pub fn stats(values: &[i64]) -> Option<TimingStats> {
    TimingStats::from_values(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn numbers_from_the_captured_drill() {
        // capture/README.md: inject 09:54:49.156, activeAt 49.851, startsAt 54.851.
        let mut tl = Timeline::default();
        tl.set_first(
            EventKind::InjectDone,
            t("2026-11-23T09:54:49.156Z"),
            "clock",
        );
        tl.set_first(EventKind::Pending, t("2026-11-23T09:54:49.851Z"), "prom");
        tl.set_first(EventKind::Firing, t("2026-11-23T09:54:54.851Z"), "am");
        tl.set_first(
            EventKind::RevertDone,
            t("2026-11-23T09:54:58.000Z"),
            "clock",
        );
        tl.set_first(EventKind::Resolved, t("2026-11-23T09:54:58.851Z"), "am");
        let n = tl.numbers();
        assert_eq!(n.time_to_pending_ms, Some(695));
        assert_eq!(n.time_to_fire_ms, Some(5695));
        assert_eq!(n.time_to_notify_ms, None);
        assert_eq!(n.time_to_resolve_ms, Some(851));
    }

    #[test]
    fn set_first_keeps_the_first_and_set_replaces() {
        let mut tl = Timeline::default();
        assert!(tl.set_first(EventKind::Firing, t("2026-01-01T00:00:02Z"), "poll"));
        assert!(!tl.set_first(EventKind::Firing, t("2026-01-01T00:00:03Z"), "poll"));
        assert_eq!(tl.source(EventKind::Firing), Some("poll"));
        tl.set(EventKind::Firing, t("2026-01-01T00:00:01Z"), "am");
        assert_eq!(tl.at(EventKind::Firing), Some(t("2026-01-01T00:00:01Z")));
    }

    #[test]
    fn events_sort_by_time_then_canonical_order() {
        let mut tl = Timeline::default();
        let a = t("2026-01-01T00:00:01Z");
        tl.set_first(EventKind::Firing, t("2026-01-01T00:00:05Z"), "am");
        tl.set_first(EventKind::Pending, a, "prom");
        tl.set_first(EventKind::InjectDone, a, "clock");
        let names: Vec<String> = tl.events().into_iter().map(|e| e.event).collect();
        assert_eq!(names, ["inject_done", "pending", "firing"]);
    }

    #[test]
    fn stats_table() {
        type Case<'a> = (&'a [i64], Option<(i64, i64, i64)>);
        let cases: &[Case] = &[
            (&[], None),
            (&[5], Some((5, 5, 5))),
            (&[9, 1], Some((1, 5, 9))),
            (&[3, 1, 2], Some((1, 2, 3))),
            (&[4, 1, 3, 2], Some((1, 2, 4))),
            (&[-3, -1], Some((-3, -2, -1))),
        ];
        for (input, want) in cases {
            let got = stats(input).map(|s| (s.min_ms, s.median_ms, s.max_ms));
            assert_eq!(got, *want, "{input:?}");
        }
        assert_eq!(stats(&[1, 2, 3]).unwrap().count, 3);
    }
}
