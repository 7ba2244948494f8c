//! `--parallel`: the gate that holds every inject of a group until every
//! fault of the group is journaled, and the crosstalk watch (alerts no drill
//! of the group expects that go active while it runs).
//!
//! The crosstalk bookkeeping ([`note_crosstalk`]) is pure; the watch around
//! it only polls.

use super::machine::Labels;
use super::watch::Sources;
use crate::clients::prometheus::PromAlert;
use crate::report::model::CrosstalkAlert;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// Holds each trial's injects until every member of the group has
/// journaled its fault for that trial, or dropped out (stopped before
/// journaling, or left the group). So one journal holds every fault of the
/// group, fsynced, before the first of them is injected.
pub(crate) struct Gate {
    members: usize,
    state: Mutex<GateState>,
    changed: watch::Sender<u64>,
}

struct GateState {
    /// Per trial: members still to come.
    expected: BTreeMap<u32, usize>,
    /// Per trial: members that journaled or dropped out.
    arrived: BTreeMap<u32, usize>,
}

impl Gate {
    /// A gate for members that run `trials[i]` trials each.
    pub(crate) fn new(trials: &[u32]) -> Arc<Gate> {
        let mut expected = BTreeMap::new();
        for &t in trials {
            for n in 1..=t {
                *expected.entry(n).or_insert(0) += 1;
            }
        }
        Arc::new(Gate {
            members: trials.len(),
            state: Mutex::new(GateState {
                expected,
                arrived: BTreeMap::new(),
            }),
            changed: watch::channel(0).0,
        })
    }

    /// A member that runs `trials` trials.
    pub(crate) fn member(self: &Arc<Self>, trials: u32) -> Member {
        Member {
            gate: self.clone(),
            next: 1,
            last: trials,
        }
    }

    fn change(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut super::watch::lock(&self.state));
        self.changed.send_modify(|v| *v += 1);
    }

    fn is_open(&self, n: u32) -> bool {
        let s = super::watch::lock(&self.state);
        s.arrived.get(&n).copied().unwrap_or(0) >= s.expected.get(&n).copied().unwrap_or(0)
    }
}

/// One drill's place in the gate; dropping it (the drill ended, however)
/// lets the others go on without its remaining trials.
pub(crate) struct Member {
    gate: Arc<Gate>,
    /// The first trial it has not taken a ticket for.
    next: u32,
    last: u32,
}

impl Member {
    /// The ticket for trial `n`.
    pub(crate) fn ticket(&mut self, n: u32) -> Ticket {
        self.next = self.next.max(n + 1);
        Ticket {
            gate: self.gate.clone(),
            n,
            arrived: false,
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let (next, last) = (self.next, self.last);
        if next <= last {
            self.gate.change(|s| {
                for n in next..=last {
                    if let Some(e) = s.expected.get_mut(&n) {
                        *e = e.saturating_sub(1);
                    }
                }
            });
        }
    }
}

/// One trial's pass through the gate. Dropped unused (the trial stopped
/// before journaling), it counts as arrived, so nobody waits for it.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    n: u32,
    arrived: bool,
}

impl Ticket {
    /// Whether other drills share the gate.
    pub(crate) fn has_peers(&self) -> bool {
        self.gate.members > 1
    }

    /// Says this member's fault is journaled, then waits for the rest.
    pub(crate) async fn arrive(mut self) {
        let mut rx = self.gate.changed.subscribe();
        self.arrived = true;
        let n = self.n;
        self.gate.change(|s| *s.arrived.entry(n).or_insert(0) += 1);
        while !self.gate.is_open(n) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.arrived {
            let n = self.n;
            self.gate.change(|s| *s.arrived.entry(n).or_insert(0) += 1);
        }
    }
}

/// An alert's identity: its whole label set (alertname included).
pub type AlertKey = Labels;

/// The alerts active as a group begins, with their `activeAt`: not
/// crosstalk while they stay active.
pub type Baseline = BTreeMap<AlertKey, Option<DateTime<Utc>>>;

/// The baseline taken as a group begins.
pub fn baseline(alerts: &[PromAlert]) -> Baseline {
    alerts
        .iter()
        .map(|a| (a.labels.clone(), a.active_at))
        .collect()
}

/// Adds to `seen` every alert in `alerts` that no drill of the group
/// expects (by alertname) and that was not already active when the group
/// began: an alert of the baseline that went inactive (missing from a poll,
/// or active again since a later `activeAt`) counts when it comes back
/// (e.g. an `absent()` rule pending from a stack's start, cleared by the
/// first scrape, raised again by a fault). An alert already seen keeps its
/// first sighting and moves to `firing` when it does.
pub fn note_crosstalk(
    seen: &mut BTreeMap<AlertKey, CrosstalkAlert>,
    baseline: &mut Baseline,
    expected: &BTreeSet<String>,
    alerts: &[PromAlert],
    at: DateTime<Utc>,
) {
    baseline.retain(|k, since| {
        alerts
            .iter()
            .any(|a| &a.labels == k && a.active_at == *since)
    });
    for a in alerts {
        let name = a.labels.get("alertname").cloned().unwrap_or_default();
        if expected.contains(&name) || baseline.contains_key(&a.labels) {
            continue;
        }
        let entry = seen.entry(a.labels.clone()).or_insert_with(|| {
            let mut labels = a.labels.clone();
            labels.remove("alertname");
            CrosstalkAlert {
                alert: name,
                labels,
                state: a.state.clone(),
                active_at: a.active_at,
                first_seen: at,
            }
        });
        if a.state == "firing" {
            entry.state = a.state.clone();
        }
    }
}

/// What the crosstalk watch saw.
pub(crate) struct Crosstalk {
    pub alerts: Vec<CrosstalkAlert>,
    pub notes: Vec<String>,
}

/// Polls Prometheus' alerts until told to stop, noting crosstalk. Stop it
/// with the returned sender; the task then returns what it saw.
pub(crate) fn watch_crosstalk(
    sources: Sources,
    expected: BTreeSet<String>,
    mut baseline: Baseline,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Crosstalk>) {
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut seen = BTreeMap::new();
        let (mut failed, mut last_error) = (0u32, String::new());
        let mut interval = tokio::time::interval(sources.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = interval.tick() => match sources.prometheus_alerts().await {
                    Ok(alerts) => note_crosstalk(&mut seen, &mut baseline, &expected, &alerts, sources.clock.now()),
                    Err(e) => {
                        failed += 1;
                        last_error = e;
                    }
                },
            }
        }
        let mut notes = Vec::new();
        if failed > 0 {
            notes.push(format!(
                "the crosstalk watch could not read Prometheus' alerts {failed} time(s) (last: {last_error}); an alert active only then was not seen"
            ));
        }
        Crosstalk {
            alerts: seen.into_values().collect(),
            notes,
        }
    });
    (stop_tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert(name: &str, extra: &[(&str, &str)], state: &str) -> PromAlert {
        let mut labels: Labels = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.insert("alertname".into(), name.into());
        PromAlert {
            labels,
            annotations: Labels::new(),
            state: state.into(),
            active_at: None,
            value: "1".into(),
        }
    }

    #[test]
    fn crosstalk_is_what_no_drill_expects_and_was_not_active_before() {
        let t0 = Utc::now();
        let t1 = t0 + chrono::TimeDelta::seconds(1);
        let expected: BTreeSet<String> = ["A".to_string(), "B".to_string()].into();
        let before = [
            alert("Old", &[("namespace", "x")], "firing"),
            alert("Back", &[], "pending"),
        ];
        let mut baseline = baseline(&before);
        let mut seen = BTreeMap::new();
        note_crosstalk(
            &mut seen,
            &mut baseline,
            &expected,
            &[
                alert("A", &[], "firing"),
                alert("Old", &[("namespace", "x")], "firing"),
                alert("Old", &[("namespace", "y")], "pending"),
                alert("C", &[("pod", "p1")], "pending"),
            ],
            t0,
        );
        // "Back" was active when the group began, cleared, and is back.
        note_crosstalk(
            &mut seen,
            &mut baseline,
            &expected,
            &[
                alert("C", &[("pod", "p1")], "firing"),
                alert("B", &[], "pending"),
                alert("Back", &[], "pending"),
            ],
            t1,
        );
        let got: Vec<(String, String, String, DateTime<Utc>)> = seen
            .values()
            .map(|c| {
                (
                    c.alert.clone(),
                    crate::model::format_labels(&c.labels),
                    c.state.clone(),
                    c.first_seen,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("Back".into(), "{}".into(), "pending".into(), t1),
                ("C".into(), "{pod=\"p1\"}".into(), "firing".into(), t0),
                (
                    "Old".into(),
                    "{namespace=\"y\"}".into(),
                    "pending".into(),
                    t0
                ),
            ]
        );
    }

    #[tokio::test]
    async fn the_gate_opens_when_every_member_journaled_or_dropped_out() {
        // Three members: a and b run 2 trials, c one.
        let gate = Gate::new(&[2, 2, 1]);
        let (mut a, mut b, mut c) = (gate.member(2), gate.member(2), gate.member(1));
        let ta = a.ticket(1);
        let wait_a = tokio::spawn(ta.arrive());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!wait_a.is_finished(), "a went on before b and c journaled");
        // b stops before journaling: its unused ticket counts.
        drop(b.ticket(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!wait_a.is_finished(), "a went on before c journaled");
        let wait_c = tokio::spawn(c.ticket(1).arrive());
        tokio::time::timeout(Duration::from_secs(2), wait_a)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), wait_c)
            .await
            .unwrap()
            .unwrap();
        // Trial 2: b left the group (dropped), so a waits for nobody.
        drop(b);
        drop(c);
        tokio::time::timeout(Duration::from_secs(2), a.ticket(2).arrive())
            .await
            .unwrap();
    }
}
