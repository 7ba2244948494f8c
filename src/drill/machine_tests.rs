//! Table tests for the drill state machine: no network, synthetic clock.

use super::*;
use crate::clients::alertmanager::{AmAlertStatus, AmReceiver};
use chrono::TimeDelta;

/// Inject starts at T0 and is done 100 ms later; offsets are seconds from T0.
pub(crate) fn t(secs: f64) -> DateTime<Utc> {
    let t0 = DateTime::parse_from_rfc3339("2026-11-23T09:54:49.000Z")
        .unwrap()
        .with_timezone(&Utc);
    t0 + TimeDelta::milliseconds((secs * 1000.0).round() as i64)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn good() -> Labels {
    labels(&[
        ("alertname", "WorkerImagePullBackOff"),
        ("namespace", "daedalus"),
        ("pod", "daedalus-worker-copilot-1"),
    ])
}

pub(crate) fn wrong() -> Labels {
    labels(&[
        ("alertname", "WorkerImagePullBackOff"),
        ("namespace", "other"),
    ])
}

pub(crate) fn prom(at: f64, alerts: Vec<PromAlert>) -> Observation {
    Observation::Prometheus { at: t(at), alerts }
}

pub(crate) fn pa(l: Labels, state: &str, active: f64) -> PromAlert {
    PromAlert {
        labels: l,
        annotations: Labels::new(),
        state: state.into(),
        active_at: Some(t(active)),
        value: "1e+00".into(),
    }
}

pub(crate) fn am(at: f64, alerts: Vec<AmAlert>) -> Observation {
    Observation::Alertmanager { at: t(at), alerts }
}

pub(crate) fn aa(l: Labels, starts: f64) -> AmAlert {
    AmAlert {
        labels: l,
        annotations: BTreeMap::new(),
        starts_at: t(starts),
        ends_at: t(starts + 300.0),
        updated_at: None,
        fingerprint: "f".into(),
        receivers: vec![AmReceiver {
            name: "hook".into(),
        }],
        status: AmAlertStatus {
            state: "active".into(),
            silenced_by: vec![],
            inhibited_by: vec![],
        },
        generator_url: String::new(),
    }
}

fn hook(at: f64, status: &str, l: Labels, starts: f64, ends: Option<f64>) -> Observation {
    Observation::Webhook(Notification {
        received_at: t(at),
        status: status.into(),
        alerts: vec![NotifiedAlert {
            status: status.into(),
            labels: l,
            starts_at: t(starts),
            ends_at: ends.map(t),
        }],
    })
}

pub(crate) fn tick(at: f64) -> Observation {
    Observation::Tick(t(at))
}

pub(crate) fn machine() -> Machine {
    let cfg = MachineConfig::new(
        "WorkerImagePullBackOff",
        labels(&[("namespace", "daedalus")]),
        Duration::from_secs(60),
        Duration::from_secs(120),
    );
    Machine::new(cfg, t(0.0), t(0.1))
}

/// Feeds observations; returns the last decision and the machine.
pub(crate) fn run(m: &mut Machine, obs: Vec<Observation>) -> Decision {
    let mut last = Decision::Wait;
    for o in obs {
        last = m.observe(o);
        if last.is_final() {
            break;
        }
    }
    last
}

#[derive(Debug)]
enum Want {
    Pass,
    Fail(&'static [&'static str]),
    Error,
    Cancelled,
    Wait,
}

#[test]
fn firing_phase_table() {
    // (case, observations, decision, [(event, offset seconds, source contains)])
    type Case = (
        &'static str,
        Vec<Observation>,
        Want,
        Vec<(EventKind, f64, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "pending then firing: Alertmanager startsAt is the firing time",
            vec![
                prom(0.6, vec![]),
                prom(1.5, vec![pa(good(), "pending", 0.85)]),
                tick(1.5),
                prom(6.1, vec![pa(good(), "firing", 0.85)]),
                am(6.2, vec![aa(good(), 5.85)]),
            ],
            Want::Pass,
            vec![
                (EventKind::Pending, 0.85, "prometheus activeAt"),
                (EventKind::FiringFirstPoll, 6.1, "first poll"),
                (EventKind::Firing, 5.85, "alertmanager startsAt"),
                (EventKind::InAlertmanager, 6.2, "Alertmanager poll"),
            ],
        ),
        (
            "firing seen only in Prometheus: poll time after the grace, and it says so",
            vec![
                prom(6.1, vec![pa(good(), "firing", 0.85)]),
                am(6.2, vec![]),
                tick(9.0),
                am(11.0, vec![]),
                tick(11.2),
            ],
            Want::Pass,
            vec![(EventKind::Firing, 6.1, "Alertmanager had not listed it")],
        ),
        (
            "right name, wrong labels: no match, and the reason names what was seen",
            vec![
                prom(6.1, vec![pa(wrong(), "firing", 0.85)]),
                am(6.2, vec![aa(wrong(), 5.85)]),
                tick(61.0),
                tick(61.2),
            ],
            Want::Fail(&[
                "did not fire within 1m",
                "never pending",
                "other labels",
                "namespace=\"other\"",
                "expected {namespace=\"daedalus\"}",
            ]),
            vec![],
        ),
        (
            "deadline while pending",
            vec![prom(1.5, vec![pa(good(), "pending", 0.85)]), tick(61.2)],
            Want::Fail(&[
                "did not fire within 1m",
                "last state: pending since 2026-11-23T09:54:49.850Z",
            ]),
            vec![(EventKind::Pending, 0.85, "activeAt")],
        ),
        (
            "deadline, never pending",
            vec![prom(1.0, vec![]), tick(30.0), tick(61.2)],
            Want::Fail(&["did not fire within 1m; last state: never pending"]),
            vec![],
        ),
        (
            "no decision before deadline + settle",
            vec![prom(1.0, vec![]), tick(61.0)],
            Want::Wait,
            vec![],
        ),
        (
            "fired just before the deadline, seen just after: pass on its own time",
            vec![am(60.5, vec![aa(good(), 59.9)])],
            Want::Pass,
            vec![(EventKind::Firing, 59.9, "alertmanager startsAt")],
        ),
        (
            "fired after the deadline",
            vec![am(61.0, vec![aa(good(), 60.5)])],
            Want::Fail(&["fired 60.400s after", "later than the 1m deadline"]),
            vec![],
        ),
        (
            "cancel",
            vec![
                prom(1.5, vec![pa(good(), "pending", 0.85)]),
                Observation::Cancel(t(2.0)),
            ],
            Want::Cancelled,
            vec![(EventKind::Pending, 0.85, "activeAt")],
        ),
        (
            "webhook before any poll saw it",
            vec![prom(1.0, vec![]), hook(6.9, "firing", good(), 5.85, None)],
            Want::Pass,
            vec![
                (EventKind::Firing, 5.85, "webhook notification"),
                (EventKind::Notified, 6.9, "webhook receipt"),
                (EventKind::InAlertmanager, 6.9, "no poll had listed it"),
            ],
        ),
        (
            "already firing before the inject: reported, never a pass",
            vec![prom(0.5, vec![pa(good(), "firing", -300.0)])],
            Want::Fail(&[
                "already firing",
                "before the fault was injected",
                "not a pass",
            ]),
            vec![],
        ),
        (
            "activeAt within clock skew of the inject still counts",
            vec![
                prom(0.5, vec![pa(good(), "pending", -0.5)]),
                am(6.0, vec![aa(good(), 4.5)]),
            ],
            Want::Pass,
            vec![(EventKind::Pending, -0.5, "activeAt")],
        ),
        (
            "stale Alertmanager alert from an earlier trial is ignored",
            vec![am(0.5, vec![aa(good(), -100.0)]), tick(61.2)],
            Want::Fail(&["never pending", "started before the inject (ignored)"]),
            vec![],
        ),
        (
            "Prometheus failing every poll for the error budget",
            vec![
                Observation::PollFailed {
                    at: t(1.0),
                    source: PollSource::Prometheus,
                    error: "connection refused".into(),
                },
                Observation::PollFailed {
                    at: t(10.0),
                    source: PollSource::Prometheus,
                    error: "connection refused".into(),
                },
                Observation::PollFailed {
                    at: t(16.0),
                    source: PollSource::Prometheus,
                    error: "connection refused".into(),
                },
            ],
            Want::Error,
            vec![],
        ),
        (
            "a good poll resets the error budget",
            vec![
                Observation::PollFailed {
                    at: t(1.0),
                    source: PollSource::Prometheus,
                    error: "x".into(),
                },
                prom(10.0, vec![]),
                Observation::PollFailed {
                    at: t(16.0),
                    source: PollSource::Prometheus,
                    error: "x".into(),
                },
            ],
            Want::Wait,
            vec![],
        ),
    ];

    for (name, obs, want, events) in cases {
        let mut m = machine();
        let got = run(&mut m, obs);
        match (&want, &got) {
            (Want::Pass, Decision::Pass)
            | (Want::Error, Decision::Error(_))
            | (Want::Cancelled, Decision::Cancelled)
            | (Want::Wait, Decision::Wait) => {}
            (Want::Fail(needles), Decision::Fail(reason)) => {
                for n in *needles {
                    assert!(reason.contains(n), "{name}: {reason:?} lacks {n:?}");
                }
            }
            _ => panic!("{name}: want {want:?}, got {got:?}"),
        }
        for (kind, at, source) in events {
            assert_eq!(m.timeline().at(kind), Some(t(at)), "{name}: {kind:?}");
            let s = m.timeline().source(kind).unwrap();
            assert!(s.contains(source), "{name}: {kind:?} source {s:?}");
        }
    }
}

#[test]
fn without_alertmanager_prometheus_firing_decides_at_once() {
    let mut cfg = machine().config().clone();
    cfg.watch_alertmanager = false;
    let mut m = Machine::new(cfg, t(0.0), t(0.1));
    let d = m.observe(prom(6.1, vec![pa(good(), "firing", 0.85)]));
    assert_eq!(d, Decision::Pass);
    assert!(m
        .timeline()
        .source(EventKind::Firing)
        .unwrap()
        .contains("not watched"));
    assert_eq!(m.timeline().numbers().time_to_fire_ms, Some(6000));
}

#[test]
fn resolving_by_prometheus_poll() {
    let mut m = machine();
    assert_eq!(
        run(
            &mut m,
            vec![
                prom(6.1, vec![pa(good(), "firing", 0.85)]),
                am(6.2, vec![aa(good(), 5.85)])
            ]
        ),
        Decision::Pass
    );
    m.reverted(t(7.0));
    assert_eq!(m.phase(), Phase::Resolving);
    assert_eq!(m.outcome(), Some(&Decision::Pass));
    // Notified after the decision is still recorded.
    assert_eq!(
        m.observe(hook(7.1, "firing", good(), 5.85, None)),
        Decision::Wait
    );
    assert_eq!(
        m.observe(prom(7.5, vec![pa(good(), "firing", 0.85)])),
        Decision::Wait
    );
    assert_eq!(m.observe(prom(8.5, vec![])), Decision::Resolved);
    let tl = m.timeline();
    assert_eq!(tl.at(EventKind::Notified), Some(t(7.1)));
    assert_eq!(tl.at(EventKind::Resolved), Some(t(8.5)));
    assert!(tl
        .source(EventKind::Resolved)
        .unwrap()
        .contains("Prometheus poll"));
    // Firing stays Alertmanager's startsAt, not the later webhook.
    assert_eq!(tl.at(EventKind::Firing), Some(t(5.85)));
    let n = tl.numbers();
    assert_eq!(n.time_to_fire_ms, Some(5750));
    assert_eq!(n.time_to_notify_ms, Some(7000));
    assert_eq!(n.time_to_resolve_ms, Some(1500));
}

#[test]
fn resolving_by_webhook_ends_at() {
    let mut m = machine();
    run(&mut m, vec![am(6.2, vec![aa(good(), 5.85)])]);
    m.observe(prom(6.3, vec![pa(good(), "firing", 0.85)]));
    m.reverted(t(7.0));
    let d = m.observe(hook(9.0, "resolved", good(), 5.85, Some(7.85)));
    assert_eq!(d, Decision::Resolved);
    assert_eq!(m.timeline().at(EventKind::Resolved), Some(t(7.85)));
    assert!(m
        .timeline()
        .source(EventKind::Resolved)
        .unwrap()
        .contains("endsAt"));
}

#[test]
fn an_earlier_trials_resolved_notification_does_not_resolve_this_trial() {
    // Trial 1's instance (started at -10 s, before this trial's inject)
    // resolves at -0.013 s; its notification reaches this trial's feed.
    let mut m = machine();
    run(&mut m, vec![am(6.2, vec![aa(good(), 5.85)])]);
    m.observe(prom(6.3, vec![pa(good(), "firing", 0.85)]));
    m.reverted(t(7.0));
    let d = m.observe(hook(7.5, "resolved", good(), -10.0, Some(-0.013)));
    assert_eq!(d, Decision::Wait, "trial 1's resolution ended trial 2");
    assert_eq!(m.timeline().at(EventKind::Resolved), None);
    // This trial's own resolution still counts.
    let d = m.observe(hook(9.0, "resolved", good(), 5.85, Some(7.85)));
    assert_eq!(d, Decision::Resolved);
    let n = m.timeline().numbers();
    assert_eq!(n.time_to_resolve_ms, Some(850));
}

#[test]
fn a_prometheus_outage_over_the_deadline_is_an_error_not_a_fail() {
    let mut m = machine();
    let failed = |at: f64| Observation::PollFailed {
        at: t(at),
        source: PollSource::Prometheus,
        error: "Prometheus at http://127.0.0.1:9 answered HTTP 503".into(),
    };
    let d = run(
        &mut m,
        vec![
            prom(0.5, vec![]),
            failed(55.0),
            failed(58.0),
            failed(61.0),
            tick(61.2),
        ],
    );
    let Decision::Error(reason) = d else {
        panic!("want an error, got {d:?}");
    };
    assert!(reason.contains("Prometheus failed 3 polls"), "{reason}");
    assert!(reason.contains("HTTP 503"), "{reason}");
    let notes = m.poll_failure_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("Prometheus: 3 polls failed"),
        "{notes:?}"
    );

    // Alertmanager failing alone does not make "never fired" unknowable.
    let mut m = machine();
    let d = run(
        &mut m,
        vec![
            prom(0.5, vec![]),
            Observation::PollFailed {
                at: t(60.0),
                source: PollSource::Alertmanager,
                error: "503".into(),
            },
            prom(61.0, vec![]),
            tick(61.2),
        ],
    );
    assert!(matches!(d, Decision::Fail(_)), "{d:?}");
}

#[test]
fn an_alert_only_the_webhook_saw_is_still_waited_for_to_resolve() {
    // The firing notification beat every poll (a fast alert): the resolve
    // wait must not end at once without a `resolved` time.
    let mut m = machine();
    run(&mut m, vec![hook(1.0, "firing", good(), 0.85, None)]);
    m.reverted(t(2.0));
    assert_eq!(m.observe(tick(2.1)), Decision::Wait);
    let d = m.observe(prom(2.5, vec![]));
    assert_eq!(d, Decision::Resolved);
    assert_eq!(m.timeline().at(EventKind::Resolved), Some(t(2.5)));
}

#[test]
fn not_resolved_in_time() {
    let mut m = machine();
    run(&mut m, vec![prom(6.1, vec![pa(good(), "firing", 0.85)])]);
    m.reverted(t(7.0));
    assert_eq!(
        m.observe(prom(8.0, vec![pa(good(), "firing", 0.85)])),
        Decision::Wait
    );
    assert_eq!(m.observe(tick(126.0)), Decision::Wait);
    match m.observe(tick(127.5)) {
        Decision::NotResolved(r) => {
            assert!(r.contains("still active 2m after the revert"), "{r}");
            assert!(r.contains("firing"), "{r}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn never_active_resolves_without_an_event() {
    let mut m = machine();
    m.observe(tick(1.0));
    m.reverted(t(2.0));
    assert_eq!(m.outcome(), Some(&Decision::Cancelled));
    assert_eq!(m.observe(prom(2.5, vec![])), Decision::Resolved);
    assert_eq!(m.timeline().at(EventKind::Resolved), None);
}

#[test]
fn status_for_progress() {
    let mut m = machine();
    assert_eq!(m.status(t(1.1)).state, "inactive");
    m.observe(prom(1.5, vec![pa(good(), "pending", 0.85)]));
    let s = m.status(t(2.1));
    assert_eq!(s.state, "pending since 2026-11-23T09:54:49.850Z");
    assert_eq!(s.elapsed, Duration::from_secs(2));
    assert_eq!(s.limit, Duration::from_secs(60));
    m.observe(am(6.2, vec![aa(good(), 5.85)]));
    assert_eq!(m.status(t(6.3)).state, "firing (alertmanager startsAt)");
    m.reverted(t(7.0));
    assert_eq!(m.status(t(8.0)).phase, Phase::Resolving);
    assert_eq!(m.status(t(8.0)).limit, Duration::from_secs(120));
}

#[test]
fn waits_for_the_webhook_after_firing_when_one_is_routed() {
    let mut cfg = machine().config().clone();
    cfg.await_notification = Some(Duration::from_secs(10));
    let mut m = Machine::new(cfg.clone(), t(0.0), t(0.1));
    assert_eq!(m.observe(am(6.2, vec![aa(good(), 5.85)])), Decision::Wait);
    assert!(m
        .status(t(6.3))
        .state
        .ends_with("waiting for the webhook notification"));
    assert_eq!(m.observe(tick(7.0)), Decision::Wait);
    assert_eq!(
        m.observe(hook(7.1, "firing", good(), 5.85, None)),
        Decision::Pass
    );
    assert_eq!(m.timeline().at(EventKind::Notified), Some(t(7.1)));
    assert!(m.notes().is_empty());

    // No notification: pass after the grace, and say so. Past the deadline
    // too: the pass rests on when it fired.
    let mut m = Machine::new(cfg, t(0.0), t(0.1));
    assert_eq!(m.observe(am(59.0, vec![aa(good(), 58.0)])), Decision::Wait);
    assert_eq!(m.observe(tick(68.9)), Decision::Wait);
    assert_eq!(m.observe(tick(69.0)), Decision::Pass);
    assert!(
        m.notes()[0].contains("no firing webhook notification"),
        "{:?}",
        m.notes()
    );
}

#[test]
fn absurd_durations_mean_never_not_a_panic() {
    // Specs cap durations at 30 days; the machine must still not panic on
    // a deadline past the end of the calendar ("DateTime + TimeDelta
    // overflowed") while a fault is live.
    let year = Duration::from_secs(365 * 24 * 3600);
    for huge in [year * 1_000_000, Duration::MAX] {
        let mut cfg = MachineConfig::new(
            "WorkerImagePullBackOff",
            labels(&[("namespace", "daedalus")]),
            huge,
            huge,
        );
        cfg.settle = huge;
        cfg.clock_skew = huge;
        let mut m = Machine::new(cfg, t(0.0), t(0.1));
        assert_eq!(m.observe(tick(3600.0)), Decision::Wait);
        assert_eq!(
            m.observe(prom(3601.0, vec![pa(good(), "firing", 0.85)])),
            Decision::Wait,
            "{huge:?}"
        );
        assert_eq!(m.observe(tick(3700.0)), Decision::Pass, "{huge:?}");
    }
}

fn expecting(receiver: &str) -> Machine {
    let mut cfg = machine().config().clone();
    cfg.expect_receiver = Some(receiver.to_string());
    Machine::new(cfg, t(0.0), t(0.1))
}

fn routed_to(l: Labels, starts: f64, receivers: &[&str]) -> AmAlert {
    let mut a = aa(l, starts);
    a.receivers = receivers
        .iter()
        .map(|r| AmReceiver {
            name: r.to_string(),
        })
        .collect();
    a
}

#[test]
fn receivers_are_recorded_in_the_timeline() {
    let mut m = machine();
    let d = run(
        &mut m,
        vec![
            prom(5.0, vec![pa(good(), "firing", 1.0)]),
            am(5.2, vec![routed_to(good(), 5.0, &["team-b", "team-a"])]),
        ],
    );
    assert_eq!(d, Decision::Pass);
    assert_eq!(m.receivers(), vec!["team-a", "team-b"]);
    assert_eq!(
        m.timeline().source(EventKind::Routed),
        Some("Alertmanager receivers: team-a, team-b")
    );
    assert_eq!(m.timeline().at(EventKind::Routed), Some(t(5.2)));
}

#[test]
fn expect_receiver_passes_only_on_that_receiver() {
    // Routed where expected (among others): pass.
    let mut m = expecting("daedalus/daedalus/pagerduty");
    let d = run(
        &mut m,
        vec![
            prom(5.0, vec![pa(good(), "firing", 1.0)]),
            am(
                5.2,
                vec![routed_to(
                    good(),
                    5.0,
                    &["daedalus/daedalus/pagerduty", "audit"],
                )],
            ),
        ],
    );
    assert_eq!(d, Decision::Pass);

    // Fell through to the default receiver: fail, naming what it reached.
    let mut m = expecting("daedalus/daedalus/pagerduty");
    let d = run(
        &mut m,
        vec![
            prom(5.0, vec![pa(good(), "firing", 1.0)]),
            am(5.2, vec![routed_to(good(), 5.0, &["null"])]),
        ],
    );
    let Decision::Fail(reason) = d else {
        panic!("{d:?}")
    };
    assert!(reason.contains("routed it to \"null\""), "{reason}");
    assert!(
        reason.contains("\"daedalus/daedalus/pagerduty\""),
        "{reason}"
    );

    // Never listed by Alertmanager: no receiver observed, fail.
    let mut m = expecting("x");
    let d = run(
        &mut m,
        vec![
            prom(5.0, vec![pa(good(), "firing", 1.0)]),
            am(5.5, vec![]),
            tick(11.0),
        ],
    );
    let Decision::Fail(reason) = d else {
        panic!("{d:?}")
    };
    assert!(reason.contains("never listed it"), "{reason}");
}

#[test]
fn expect_receiver_waits_for_alertmanager_when_the_webhook_came_first() {
    // From the second trial on, the webhook often beats every poll.
    let mut m = expecting("firedrill");
    let d = run(
        &mut m,
        vec![
            hook(5.0, "firing", good(), 4.0, None),
            prom(5.1, vec![pa(good(), "firing", 1.0)]),
            tick(5.5),
        ],
    );
    assert_eq!(d, Decision::Wait, "routing not known yet");
    let d = run(
        &mut m,
        vec![am(6.0, vec![routed_to(good(), 4.0, &["firedrill"])])],
    );
    assert_eq!(d, Decision::Pass);
}
