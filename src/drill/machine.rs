//! The drill's state machine: observations in, timeline and decisions out.
//!
//! Synchronous and clock-free: every input carries its own timestamp, so
//! tests drive it with a table of observations and no network.

use super::timeline::{EventKind, Timeline};
use crate::clients::alertmanager::AmAlert;
use crate::clients::prometheus::PromAlert;
use crate::model::{format_labels, secs};
use crate::timemath::{after, before, delta};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

pub type Labels = BTreeMap<String, String>;

/// One webhook notification as the receiver got it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub received_at: DateTime<Utc>,
    /// `firing` or `resolved` (the group's status).
    pub status: String,
    pub alerts: Vec<NotifiedAlert>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NotifiedAlert {
    pub status: String,
    pub labels: Labels,
    pub starts_at: DateTime<Utc>,
    /// Zero-time `endsAt` (`0001-01-01`) is passed as `None`.
    pub ends_at: Option<DateTime<Utc>>,
}

/// Which remote a failed poll was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PollSource {
    Prometheus,
    Alertmanager,
}

impl PollSource {
    fn name(self) -> &'static str {
        match self {
            PollSource::Prometheus => "Prometheus",
            PollSource::Alertmanager => "Alertmanager",
        }
    }
}

/// An input to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A `GET /api/v1/alerts` answer, received at `at`.
    Prometheus {
        at: DateTime<Utc>,
        alerts: Vec<PromAlert>,
    },
    /// A `GET /api/v2/alerts` answer, received at `at`.
    Alertmanager {
        at: DateTime<Utc>,
        alerts: Vec<AmAlert>,
    },
    Webhook(Notification),
    PollFailed {
        at: DateTime<Utc>,
        source: PollSource,
        error: String,
    },
    Tick(DateTime<Utc>),
    Cancel(DateTime<Utc>),
}

/// What the watcher should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Wait,
    /// The alert fired with the expected labels within the deadline.
    Pass,
    Fail(String),
    /// A dependency kept failing; the drill measured nothing.
    Error(String),
    Cancelled,
    /// After revert: the alert is gone.
    Resolved,
    /// After revert: still active when `resolve_timeout` ran out.
    NotResolved(String),
}

impl Decision {
    pub fn is_final(&self) -> bool {
        !matches!(self, Decision::Wait)
    }
}

/// Tunables; `new` gives the defaults used by the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    pub alert: String,
    pub expect_labels: Labels,
    pub deadline: Duration,
    pub resolve_timeout: Duration,
    /// Whether Alertmanager is polled; without it Prometheus' state decides.
    pub watch_alertmanager: bool,
    /// After Prometheus shows `firing`, how long to wait for Alertmanager's
    /// exact `startsAt` before settling for the poll time.
    pub am_grace: Duration,
    /// Extra time after the deadline for polls to catch up with an alert
    /// that fired just before it (the pass test uses the alert's own time).
    pub settle: Duration,
    /// An `activeAt` this much before the inject still counts as caused by it
    /// (clock skew between firedrill and Prometheus).
    pub clock_skew: Duration,
    /// How long a remote may fail every poll before the drill is an error.
    pub error_budget: Duration,
    /// When webhook notifications are routed to firedrill: after the alert
    /// fired in time, keep the fault live up to this long for the firing
    /// notification, so `notified` is measured (Alertmanager's `group_wait`
    /// would otherwise often see the alert already resolved and send
    /// nothing). `None`: decide as soon as it fired.
    pub await_notification: Option<Duration>,
    /// Metrics the rule reads that had no series before the inject
    /// (preflight in warn mode): named if the alert does not fire.
    pub missing_metrics: Vec<String>,
    /// The Alertmanager receiver the alert must be routed to (`None`: any).
    pub expect_receiver: Option<String>,
}

impl MachineConfig {
    pub fn new(
        alert: &str,
        expect_labels: Labels,
        deadline: Duration,
        resolve_timeout: Duration,
    ) -> Self {
        MachineConfig {
            alert: alert.to_string(),
            expect_labels,
            deadline,
            resolve_timeout,
            watch_alertmanager: true,
            am_grace: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            clock_skew: Duration::from_secs(1),
            error_budget: Duration::from_secs(15),
            await_notification: None,
            missing_metrics: Vec::new(),
            expect_receiver: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fault live: waiting for the alert to fire.
    Firing,
    /// Fault reverted: waiting for the alert to resolve.
    Resolving,
}

/// A short view of where the wait stands, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitStatus {
    pub phase: Phase,
    /// e.g. `inactive`, `pending since 09:54:49.851Z`, `firing`.
    pub state: String,
    pub elapsed: Duration,
    pub limit: Duration,
}

#[derive(Debug, Clone)]
pub struct Machine {
    cfg: MachineConfig,
    timeline: Timeline,
    phase: Phase,
    outcome: Option<Decision>,
    /// Prometheus' view of the matching alert at the last poll: (state, activeAt).
    prom_now: Option<(String, Option<DateTime<Utc>>)>,
    /// Latest `activeAt` seen, for "pending since" in reasons.
    last_active_at: Option<DateTime<Utc>>,
    ever_active: bool,
    matched: Option<Labels>,
    /// Receivers Alertmanager routed the matching alert to (`receivers` of
    /// `/api/v2/alerts`), over every poll that listed it.
    receivers: std::collections::BTreeSet<String>,
    /// When the alert was known to have fired in time (waiting for the webhook).
    passed_at: Option<DateTime<Utc>>,
    other_labels: Vec<Labels>,
    /// Decided `Fail` because the alert was active before the inject.
    predated: bool,
    stale_ignored: bool,
    first_error: BTreeMap<PollSource, DateTime<Utc>>,
    /// Every failed poll per remote, for the verdict and the report.
    failures: BTreeMap<PollSource, PollFailures>,
    notes: Vec<String>,
}

/// The failed polls of one remote over the whole trial.
#[derive(Debug, Clone, PartialEq)]
pub struct PollFailures {
    pub count: u32,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub last_error: String,
    /// Failed polls while the fault was live (the firing phase).
    pub while_firing: u32,
}

const MAX_OTHER_LABEL_SETS: usize = 5;

impl Machine {
    /// Starts the watch for a fault injected between the two instants.
    pub fn new(
        cfg: MachineConfig,
        inject_started: DateTime<Utc>,
        inject_done: DateTime<Utc>,
    ) -> Self {
        let mut timeline = Timeline::default();
        timeline.set(EventKind::InjectStarted, inject_started, "firedrill clock");
        timeline.set(EventKind::InjectDone, inject_done, "firedrill clock");
        Machine {
            cfg,
            timeline,
            phase: Phase::Firing,
            outcome: None,
            prom_now: None,
            last_active_at: None,
            ever_active: false,
            matched: None,
            receivers: Default::default(),
            passed_at: None,
            other_labels: Vec::new(),
            predated: false,
            stale_ignored: false,
            first_error: BTreeMap::new(),
            failures: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Failed polls per remote, for the report.
    pub fn poll_failures(&self) -> &BTreeMap<PollSource, PollFailures> {
        &self.failures
    }

    /// One line per remote that failed polls, e.g. "Prometheus: 12 polls
    /// failed between … and … (last error: …)".
    pub fn poll_failure_notes(&self) -> Vec<String> {
        self.failures
            .iter()
            .map(|(src, f)| {
                format!(
                    "{}: {} poll{} failed between {} and {} (last error: {})",
                    src.name(),
                    f.count,
                    if f.count == 1 { "" } else { "s" },
                    fmt_time(f.first_at),
                    fmt_time(f.last_at),
                    f.last_error
                )
            })
            .collect()
    }

    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Records an event the runner itself observed (trigger, revert).
    pub fn record(&mut self, kind: EventKind, at: DateTime<Utc>, source: &str) {
        self.timeline.set_first(kind, at, source);
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The firing-phase decision, once made.
    pub fn outcome(&self) -> Option<&Decision> {
        self.outcome.as_ref()
    }

    /// Things worth saying in the report that are not the verdict.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The labels of the alert instance that matched, once one did.
    pub fn matched_labels(&self) -> Option<&Labels> {
        self.matched.as_ref()
    }

    /// Receivers Alertmanager routed the alert to, sorted.
    pub fn receivers(&self) -> Vec<String> {
        self.receivers.iter().cloned().collect()
    }

    /// Label sets seen on alerts with the right name but not the expected labels.
    /// Whether it failed because the alert was already active before the
    /// inject (in a parallel group: possibly another drill's doing).
    pub fn predated(&self) -> bool {
        self.predated
    }

    pub fn other_labels(&self) -> &[Labels] {
        &self.other_labels
    }

    /// The fault is reverted: from now on, watch for the alert to resolve.
    /// A firing phase still undecided is closed as cancelled.
    pub fn reverted(&mut self, at: DateTime<Utc>) {
        self.timeline
            .set_first(EventKind::RevertDone, at, "firedrill clock");
        if self.outcome.is_none() {
            self.outcome = Some(Decision::Cancelled);
        }
        self.phase = Phase::Resolving;
    }

    pub fn observe(&mut self, obs: Observation) -> Decision {
        match obs {
            Observation::Prometheus { at, alerts } => {
                self.first_error.remove(&PollSource::Prometheus);
                self.on_prometheus(at, &alerts)
                    .unwrap_or_else(|| self.evaluate(at))
            }
            Observation::Alertmanager { at, alerts } => {
                self.first_error.remove(&PollSource::Alertmanager);
                self.on_alertmanager(at, &alerts);
                self.evaluate(at)
            }
            Observation::Webhook(n) => {
                let at = n.received_at;
                self.on_webhook(&n);
                self.evaluate(at)
            }
            Observation::PollFailed { at, source, error } => {
                let firing = self.phase == Phase::Firing && self.outcome.is_none();
                let f = self.failures.entry(source).or_insert(PollFailures {
                    count: 0,
                    first_at: at,
                    last_at: at,
                    last_error: String::new(),
                    while_firing: 0,
                });
                f.count += 1;
                f.last_at = at;
                f.last_error = error.clone();
                if firing {
                    f.while_firing += 1;
                }
                let since = *self.first_error.entry(source).or_insert(at);
                if at - since >= delta(self.cfg.error_budget) {
                    let reason = format!(
                        "{} failed every poll for {}s (last error: {error}); the drill could not watch alert {}",
                        source.name(),
                        (at - since).num_seconds(),
                        self.cfg.alert
                    );
                    return self.decide(Decision::Error(reason));
                }
                self.evaluate(at)
            }
            Observation::Tick(at) => self.evaluate(at),
            Observation::Cancel(_) => self.decide(Decision::Cancelled),
        }
    }

    /// Where the wait stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> WaitStatus {
        let (from, limit) = match self.phase {
            Phase::Firing => (EventKind::InjectDone, self.cfg.deadline),
            Phase::Resolving => (EventKind::RevertDone, self.cfg.resolve_timeout),
        };
        let elapsed = self
            .timeline
            .at(from)
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default();
        let state =
            if self.phase == Phase::Resolving && self.timeline.at(EventKind::Resolved).is_some() {
                "resolved".to_string()
            } else if let Some(src) = self
                .timeline
                .source(EventKind::Firing)
                .filter(|_| self.phase == Phase::Firing)
            {
                if self.passed_at.is_some() {
                    format!("firing ({src}); waiting for the webhook notification")
                } else {
                    format!("firing ({src})")
                }
            } else {
                match &self.prom_now {
                    None => "inactive".to_string(),
                    Some((state, Some(since))) if state == "pending" => {
                        format!("pending since {}", fmt_time(*since))
                    }
                    Some((state, _)) => state.clone(),
                }
            };
        WaitStatus {
            phase: self.phase,
            state,
            elapsed,
            limit,
        }
    }

    fn decide(&mut self, d: Decision) -> Decision {
        if self.phase == Phase::Firing && self.outcome.is_none() {
            self.outcome = Some(d.clone());
        }
        d
    }

    fn matches(&self, labels: &Labels) -> bool {
        alert_matches(labels, &self.cfg.alert, &self.cfg.expect_labels)
    }

    fn named(&self, labels: &Labels) -> bool {
        labels.get("alertname") == Some(&self.cfg.alert)
    }

    fn note_other(&mut self, labels: &Labels) {
        if self.other_labels.len() < MAX_OTHER_LABEL_SETS && !self.other_labels.contains(labels) {
            self.other_labels.push(labels.clone());
        }
    }

    /// Caused by this fault, or already there before it (beyond clock skew)?
    fn predates_inject(&self, t: DateTime<Utc>) -> bool {
        let started = self
            .timeline
            .at(EventKind::InjectStarted)
            .expect("set in new");
        t < before(started, self.cfg.clock_skew)
    }

    /// Notes every alert of our name whose labels do not match ours.
    fn note_others<'a>(&mut self, labels: impl Iterator<Item = &'a Labels>) {
        let others: Vec<&Labels> = labels
            .filter(|l| self.named(l) && !self.matches(l))
            .collect();
        for l in others {
            self.note_other(l);
        }
    }

    fn on_prometheus(&mut self, at: DateTime<Utc>, alerts: &[PromAlert]) -> Option<Decision> {
        self.note_others(alerts.iter().map(|a| &a.labels));
        // Prefer a firing instance, then the earliest activeAt.
        let found = alerts
            .iter()
            .filter(|a| self.matches(&a.labels))
            .min_by_key(|a| (a.state != "firing", a.active_at));
        let Some(a) = found else {
            self.prom_now = None;
            if self.phase == Phase::Resolving && self.ever_active {
                self.timeline.set_first(
                    EventKind::Resolved,
                    at,
                    "first Prometheus poll without the alert",
                );
            }
            return None;
        };
        self.prom_now = Some((a.state.clone(), a.active_at));
        if self.matched.is_none() {
            self.matched = Some(a.labels.clone());
        }
        self.last_active_at = a.active_at.or(self.last_active_at);
        self.ever_active = true;
        if self.phase == Phase::Firing && self.outcome.is_none() {
            if let Some(active_at) = a.active_at.filter(|t| self.predates_inject(*t)) {
                let started = self.timeline.at(EventKind::InjectStarted).expect("set");
                self.predated = true;
                return Some(self.decide(Decision::Fail(format!(
                    "alert {} was already {} (active since {}) before the fault was injected at {}; \
                     a drill cannot time an alert that is already active, so this is not a pass. \
                     Find what keeps it active or wait until it resolves, then run the drill again",
                    self.cfg.alert,
                    a.state,
                    fmt_time(active_at),
                    fmt_time(started)
                ))));
            }
        }
        if self.phase == Phase::Firing {
            if let Some(active_at) = a.active_at {
                self.timeline
                    .set_first(EventKind::Pending, active_at, "prometheus activeAt");
            }
            if a.state == "firing" {
                self.timeline.set_first(
                    EventKind::FiringFirstPoll,
                    at,
                    "first poll that saw Prometheus state firing",
                );
            }
        }
        None
    }

    fn on_alertmanager(&mut self, at: DateTime<Utc>, alerts: &[AmAlert]) {
        self.note_others(alerts.iter().map(|a| &a.labels));
        let found = alerts
            .iter()
            .filter(|a| self.matches(&a.labels))
            .min_by_key(|a| a.starts_at);
        let Some(a) = found else { return };
        if self.predates_inject(a.starts_at) {
            // An earlier trial's alert Alertmanager has not dropped yet:
            // Prometheus is the judge of "already active", so only note it.
            self.stale_ignored = true;
            return;
        }
        // Seen active (Alertmanager may list it before any Prometheus poll
        // does): its resolution is then worth waiting for.
        self.ever_active = true;
        let source = if a.status.state == "suppressed" {
            "first Alertmanager poll that listed it (suppressed)"
        } else {
            "first Alertmanager poll that listed it"
        };
        self.timeline
            .set_first(EventKind::InAlertmanager, at, source);
        let before = self.receivers.len();
        self.receivers
            .extend(a.receivers.iter().map(|r| r.name.clone()));
        if self.receivers.len() != before {
            let names: Vec<&str> = self.receivers.iter().map(String::as_str).collect();
            self.timeline.set(
                EventKind::Routed,
                self.timeline.at(EventKind::InAlertmanager).unwrap_or(at),
                &format!("Alertmanager receivers: {}", names.join(", ")),
            );
        }
        if self.matched.is_none() {
            self.matched = Some(a.labels.clone());
        }
        if self.phase == Phase::Firing && self.outcome.is_none() {
            self.timeline
                .set(EventKind::Firing, a.starts_at, "alertmanager startsAt");
        }
    }

    fn on_webhook(&mut self, n: &Notification) {
        let matching: Vec<&NotifiedAlert> = n
            .alerts
            .iter()
            .filter(|a| self.matches(&a.labels))
            .collect();
        for a in matching {
            if a.status == "firing" && !self.predates_inject(a.starts_at) {
                self.ever_active = true;
                self.timeline
                    .set_first(EventKind::Notified, n.received_at, "webhook receipt");
                self.timeline.set_first(
                    EventKind::InAlertmanager,
                    n.received_at,
                    "webhook receipt (no poll had listed it yet)",
                );
                if self.phase == Phase::Firing
                    && self.outcome.is_none()
                    && self.timeline.source(EventKind::Firing) != Some("alertmanager startsAt")
                {
                    self.timeline.set(
                        EventKind::Firing,
                        a.starts_at,
                        "alertmanager startsAt (webhook notification)",
                    );
                }
            } else if a.status == "resolved"
                && self.phase == Phase::Resolving
                && self.ever_active
                && !self.predates_inject(a.starts_at)
            {
                // Only this trial's instance (started after the inject): an
                // earlier trial's resolution must not end this one. Never
                // before the revert, whatever the clocks say.
                let reverted = self.timeline.at(EventKind::RevertDone);
                let at = a.ends_at.unwrap_or(n.received_at);
                let at = reverted.map_or(at, |r| at.max(r));
                self.timeline.set_first(
                    EventKind::Resolved,
                    at,
                    "alertmanager endsAt (resolved notification)",
                );
            }
        }
    }

    /// With `expect_receiver`: why the routing observed is not the one
    /// expected (`None` when it is, or when no receiver is expected).
    fn receiver_mismatch(&self) -> Option<String> {
        let want = self.cfg.expect_receiver.as_ref()?;
        if self.receivers.contains(want) {
            return None;
        }
        if self.receivers.is_empty() {
            return Some(if self.cfg.watch_alertmanager {
                format!(
                    "alert {} fired, but Alertmanager never listed it, so it reached no receiver (expected receiver \"{want}\"); check Prometheus' alerting config",
                    self.cfg.alert
                )
            } else {
                format!(
                    "alert {} fired, but the target has no Alertmanager to tell which receiver it reached (expected receiver \"{want}\"); add alertmanager_url or remove expect_receiver",
                    self.cfg.alert
                )
            });
        }
        let got: Vec<&str> = self.receivers.iter().map(String::as_str).collect();
        Some(format!(
            "alert {} fired but Alertmanager routed it to {}, not the expected receiver \"{want}\": \
             no route for its labels leads there (an alert without the label a sub-route matches on falls through to the default receiver)",
            self.cfg.alert,
            got.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
        ))
    }

    fn evaluate(&mut self, now: DateTime<Utc>) -> Decision {
        match self.phase {
            Phase::Firing => self.evaluate_firing(now),
            Phase::Resolving => self.evaluate_resolving(now),
        }
    }

    fn evaluate_firing(&mut self, now: DateTime<Utc>) -> Decision {
        if let Some(d) = &self.outcome {
            return d.clone();
        }
        let inject_done = self.timeline.at(EventKind::InjectDone).expect("set");
        let deadline_at = after(inject_done, self.cfg.deadline);
        let past_deadline = now > after(deadline_at, self.cfg.settle);

        let firing = self.timeline.at(EventKind::Firing);
        let firing = match (firing, self.timeline.at(EventKind::FiringFirstPoll)) {
            (Some(f), _) => Some(f),
            (None, Some(polled)) => {
                let grace_over = now - polled >= delta(self.cfg.am_grace);
                if !self.cfg.watch_alertmanager || grace_over || past_deadline {
                    let source = if self.cfg.watch_alertmanager {
                        "first poll that saw Prometheus state firing (Alertmanager had not listed it)"
                    } else {
                        "first poll that saw Prometheus state firing (Alertmanager not watched)"
                    };
                    self.timeline.set(EventKind::Firing, polled, source);
                    if self.cfg.watch_alertmanager {
                        self.notes.push(format!(
                            "Alertmanager did not list {} within {}s of Prometheus firing it; \
                             check Prometheus' alerting config and Alertmanager's inhibit rules",
                            self.cfg.alert,
                            self.cfg.am_grace.as_secs()
                        ));
                    }
                    Some(polled)
                } else {
                    None
                }
            }
            (None, None) => None,
        };

        if let Some(f) = firing {
            let ttf = f - inject_done;
            let d = if f <= deadline_at {
                if let (Some(grace), None) = (
                    self.cfg.await_notification,
                    self.timeline.at(EventKind::Notified),
                ) {
                    let since = *self.passed_at.get_or_insert(now);
                    if now - since < delta(grace) {
                        return Decision::Wait;
                    }
                    self.notes.push(format!(
                        "no firing webhook notification reached firedrill within {} of the alert firing; \
                         check that Alertmanager routes it to firedrill's receiver",
                        humantime::format_duration(grace)
                    ));
                }
                if self.cfg.expect_receiver.is_some()
                    && self.receivers.is_empty()
                    && self.cfg.watch_alertmanager
                {
                    // Routing is known only once Alertmanager lists it (a
                    // webhook can arrive before any poll did).
                    let since = self
                        .timeline
                        .at(EventKind::InAlertmanager)
                        .or(self.timeline.at(EventKind::FiringFirstPoll))
                        .unwrap_or(now);
                    if now - since < delta(self.cfg.am_grace) && !past_deadline {
                        return Decision::Wait;
                    }
                }
                match self.receiver_mismatch() {
                    Some(reason) => Decision::Fail(reason),
                    None => Decision::Pass,
                }
            } else {
                Decision::Fail(format!(
                    "alert {} fired {} after the fault was injected, later than the {} deadline",
                    self.cfg.alert,
                    secs(ttf.num_milliseconds()),
                    humantime::format_duration(self.cfg.deadline)
                ))
            };
            return self.decide(d);
        }
        if past_deadline {
            let reason = self.deadline_reason();
            // Prometheus is the only witness of "never fired": if it could
            // not be polled while the fault was live (or was down and so
            // evaluated nothing), the drill measured nothing.
            if let Some(f) = self
                .failures
                .get(&PollSource::Prometheus)
                .filter(|f| f.while_firing > 0)
            {
                return self.decide(Decision::Error(format!(
                    "Prometheus failed {} poll{} while the fault was live (between {} and {}; last error: {}), \
                     so whether alert {} fired within {} cannot be told; without the outage: {reason}",
                    f.while_firing,
                    if f.while_firing == 1 { "" } else { "s" },
                    fmt_time(f.first_at),
                    fmt_time(f.last_at),
                    f.last_error,
                    self.cfg.alert,
                    humantime::format_duration(self.cfg.deadline),
                )));
            }
            return self.decide(Decision::Fail(reason));
        }
        Decision::Wait
    }

    fn deadline_reason(&self) -> String {
        let last = match (&self.prom_now, self.last_active_at) {
            (Some((state, Some(since))), _) => format!("{state} since {}", fmt_time(*since)),
            (Some((state, None)), _) => state.clone(),
            (None, Some(since)) => format!("inactive (was pending since {})", fmt_time(since)),
            (None, None) => "never pending".to_string(),
        };
        let mut r = format!(
            "alert {} did not fire within {}; last state: {last}",
            self.cfg.alert,
            humantime::format_duration(self.cfg.deadline)
        );
        if !self.other_labels.is_empty() {
            let seen: Vec<String> = self.other_labels.iter().map(format_labels).collect();
            r.push_str(&format!(
                "; an alert named {} was active with other labels, which is not a match: {} (expected {})",
                self.cfg.alert,
                seen.join(", "),
                format_labels(&self.cfg.expect_labels)
            ));
        }
        if !self.cfg.missing_metrics.is_empty() {
            r.push_str(&format!(
                "; {} had no series before the inject: rules that reference non-existent metrics silently never fire",
                self.cfg.missing_metrics.join(", ")
            ));
        }
        if self.stale_ignored {
            r.push_str(
                "; Alertmanager still listed an instance that started before the inject (ignored)",
            );
        }
        r
    }

    fn evaluate_resolving(&mut self, now: DateTime<Utc>) -> Decision {
        if !self.ever_active || self.timeline.at(EventKind::Resolved).is_some() {
            return Decision::Resolved;
        }
        let reverted = self
            .timeline
            .at(EventKind::RevertDone)
            .expect("set in reverted");
        if now - reverted > delta(self.cfg.resolve_timeout) {
            let last = self
                .prom_now
                .as_ref()
                .map(|(s, _)| s.clone())
                .unwrap_or_else(|| "unknown".into());
            return Decision::NotResolved(format!(
                "alert {} was still active {} after the revert (last Prometheus state: {last})",
                self.cfg.alert,
                humantime::format_duration(self.cfg.resolve_timeout)
            ));
        }
        Decision::Wait
    }
}

/// Whether an alert instance's labels are the drill's alert: its name and
/// every expected label.
pub fn alert_matches(labels: &Labels, alert: &str, expect: &Labels) -> bool {
    labels.get("alertname").map(String::as_str) == Some(alert)
        && expect.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "machine_tests.rs"]
pub(crate) mod tests;
