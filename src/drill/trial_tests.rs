//! Table tests for the pure trial core: every verdict branch from plain
//! values, no network, no clock.

use super::*;
use crate::clients::prometheus::PromError;
use crate::drill::fault::FaultRecord;
use crate::drill::journal::EntryStatus;
use crate::drill::machine::{Observation, PollSource};
use crate::spec::drill::{ExecFault, Fault};
use crate::spec::SourceLoc;
use std::collections::BTreeMap;

// The machine's own table-test builders (T0-relative seconds, the drill's
// expected labels `good()` and another namespace's `wrong()`).
use crate::drill::machine::tests::{aa, good, machine, pa, prom, run, t, tick, wrong};

/// A machine (60 s deadline) fed `obs`; returns it and its decision.
fn watched(obs: Vec<Observation>) -> (Machine, Decision) {
    let mut m = machine();
    let d = run(&mut m, obs);
    (m, d)
}

fn facts(ended: Ended, machine: Option<Machine>) -> TrialFacts {
    TrialFacts {
        n: 1,
        ended,
        machine,
        inject_started: Some(t(0.0)),
        revert_done: t(70.0),
        revert_errors: Vec::new(),
        reverted_outside: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn every_trial_verdict_branch() {
    type Case = (&'static str, TrialFacts, Verdict, &'static [&'static str]);
    let fired = || {
        watched(vec![
            prom(1.0, vec![pa(good(), "pending", 0.9)]),
            prom(6.0, vec![pa(good(), "firing", 0.9)]),
            Observation::Alertmanager {
                at: t(6.1),
                alerts: vec![aa(good(), 5.9)],
            },
        ])
    };
    let (pass_m, pass_d) = fired();
    let (late_m, late_d) = watched(vec![
        prom(1.0, vec![pa(good(), "pending", 0.9)]),
        Observation::Alertmanager {
            at: t(70.2),
            alerts: vec![aa(good(), 70.0)],
        },
    ]);
    let (never_m, never_d) = watched(vec![prom(1.0, vec![]), tick(61.5)]);
    let (wrong_m, wrong_d) = watched(vec![
        prom(1.0, vec![pa(wrong(), "firing", 0.9)]),
        tick(61.5),
    ]);
    let (void_m, void_d) = watched(vec![prom(0.5, vec![pa(good(), "firing", -30.0)])]);
    let (dep_m, dep_d) = watched(vec![
        prom(0.5, vec![]),
        Observation::PollFailed {
            at: t(58.0),
            source: PollSource::Prometheus,
            error: "HTTP 503".into(),
        },
        tick(61.5),
    ]);
    let (revert_m, revert_d) = fired();
    let mut revert_failed = facts(Ended::Decided(revert_d), Some(revert_m));
    revert_failed.revert_errors = vec!["exec rm -f x: command failed".into()];
    let (out_m, out_d) = watched(vec![prom(1.0, vec![]), tick(61.5)]);
    let mut outside = facts(Ended::Decided(out_d), Some(out_m));
    outside.reverted_outside = vec!["fleet fault worker-image-tag at x was already off".into()];
    let mut cancelled_unreverted = facts(Ended::Cancelled("SIGTERM".into()), None);
    cancelled_unreverted.revert_errors = vec!["did not finish within 1m".into()];

    let cases: Vec<Case> = vec![
        (
            "pass",
            facts(Ended::Decided(pass_d), Some(pass_m)),
            Verdict::Pass,
            &["fired 5.800s after inject", "alertmanager startsAt"],
        ),
        (
            "fired late",
            facts(Ended::Decided(late_d), Some(late_m)),
            Verdict::Fail,
            &["later than the 1m deadline"],
        ),
        (
            "never fired",
            facts(Ended::Decided(never_d), Some(never_m)),
            Verdict::Fail,
            &["did not fire within 1m", "never pending"],
        ),
        (
            "fired with wrong labels",
            facts(Ended::Decided(wrong_d), Some(wrong_m)),
            Verdict::Fail,
            &["other labels", "namespace=\"other\""],
        ),
        (
            "fired before inject (void)",
            facts(Ended::Decided(void_d), Some(void_m)),
            Verdict::Fail,
            &["before the fault was injected", "not a pass"],
        ),
        (
            "alert never cleared before the inject",
            facts(Ended::NotQuiet("alert X was already active".into()), None),
            Verdict::Fail,
            &["already active"],
        ),
        (
            "dependency error",
            facts(Ended::Decided(dep_d), Some(dep_m)),
            Verdict::Error,
            &["Prometheus failed 1 poll", "HTTP 503"],
        ),
        (
            "could not inject",
            facts(
                Ended::Failed {
                    stage: "inject the fault".into(),
                    error: "HTTP 500".into(),
                },
                None,
            ),
            Verdict::Error,
            &["could not inject the fault: HTTP 500"],
        ),
        (
            "panicked",
            facts(Ended::Panicked("boom".into()), None),
            Verdict::Error,
            &["panicked (boom)", "reverted"],
        ),
        (
            "interrupted",
            facts(Ended::Cancelled("SIGINT".into()), None),
            Verdict::Error,
            &["interrupted by SIGINT; the fault was reverted"],
        ),
        (
            "revert failed",
            revert_failed,
            Verdict::Error,
            &["REVERT FAILED: exec rm -f x"],
        ),
        (
            "interrupted and the revert failed",
            cancelled_unreverted,
            Verdict::Error,
            &["interrupted by SIGTERM; REVERT FAILED"],
        ),
        (
            "reverted outside the run",
            outside,
            Verdict::Error,
            &[
                "reverted outside this run",
                "measured nothing",
                "did not fire",
            ],
        ),
    ];
    for (name, f, want, needles) in cases {
        let trial = judge(f);
        assert_eq!(trial.verdict, want, "{name}: {}", trial.reason);
        let text = format!("{} | {}", trial.reason, trial.notes.join(" | "));
        for n in needles {
            assert!(text.contains(n), "{name}: {text:?} lacks {n:?}");
        }
        assert_eq!(
            trial.reverted,
            trial.revert_error.is_none(),
            "{name}: reverted flag and error disagree"
        );
    }
}

#[test]
fn a_trial_without_a_machine_keeps_its_inject_and_revert_times() {
    let trial = judge(facts(Ended::Cancelled("SIGINT".into()), None));
    let kinds: Vec<_> = trial.timeline.iter().map(|e| e.event.clone()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(trial.time_to_fire_ms.is_none());
}

#[test]
fn preflight_failures_split_into_fail_and_error() {
    let (v, r) = preflight_failed(&PreflightError::AlertNotLoaded {
        alert: "WorkerImagePullBackOff".into(),
        url: "http://127.0.0.1:9090".into(),
        loaded: vec!["OrchestratorDown".into()],
    });
    assert_eq!(v, Verdict::Fail);
    assert!(
        r.starts_with("preflight: alert WorkerImagePullBackOff is not loaded"),
        "{r}"
    );
    let (v, r) = preflight_failed(&PreflightError::Prometheus(PromError::Unreachable {
        url: "http://127.0.0.1:9".into(),
        reason: "connection refused".into(),
    }));
    assert_eq!(v, Verdict::Error);
    assert!(r.contains("connection refused"), "{r}");
}

fn spec(deadline: Duration) -> DrillSpec {
    DrillSpec {
        name: "worker-image-tag".into(),
        alert: "WorkerImagePullBackOff".into(),
        expect_labels: BTreeMap::new(),
        deadline,
        resolve_timeout: Duration::from_secs(30),
        trials: 1,
        silence: false,
        expect_receiver: None,
        regression: None,
        fault: Fault::Exec(ExecFault {
            inject: vec!["true".into()],
            revert: vec!["true".into()],
            check: None,
            timeout: Duration::from_secs(5),
            touches: Vec::new(),
        }),
        trigger: None,
        source: SourceLoc {
            file: "worker-image-tag.toml".into(),
            line: 1,
        },
        fault_line: 1,
    }
}

#[test]
fn a_deadline_shorter_than_the_rules_for_is_named() {
    let info = PreflightInfo {
        rules: Vec::new(),
        metrics: Vec::new(),
        absent_guarded: Vec::new(),
        rule_for: Duration::from_secs(300),
        missing: Vec::new(),
    };
    let notes = preflight_notes(&spec(Duration::from_secs(60)), &info);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("shorter than the rule's `for` (5m)"),
        "{notes:?}"
    );
    assert!(preflight_notes(&spec(Duration::from_secs(600)), &info).is_empty());
}

fn trial_of(n: u32, verdict: Verdict, ttf: Option<i64>, reason: &str) -> DrillTrial {
    DrillTrial {
        trial: n,
        verdict,
        reason: reason.into(),
        timeline: Vec::new(),
        time_to_pending_ms: None,
        time_to_fire_ms: ttf,
        time_to_notify_ms: None,
        time_to_resolve_ms: None,
        alert_labels: BTreeMap::new(),
        receivers: Vec::new(),
        reverted: true,
        revert_error: None,
        notes: Vec::new(),
    }
}

fn result(trials: Vec<DrillTrial>) -> DrillResult {
    DrillResult {
        name: "worker-image-tag".into(),
        alert: "WorkerImagePullBackOff".into(),
        fault: "exec true".into(),
        deadline_ms: 60_000,
        verdict: Verdict::Error,
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
fn the_drill_takes_its_worst_trial_and_times_the_passing_ones() {
    let mut r = result(vec![
        trial_of(1, Verdict::Pass, Some(4000), "ok"),
        trial_of(2, Verdict::Pass, Some(6000), "ok"),
        trial_of(3, Verdict::Pass, Some(5000), "ok"),
    ]);
    conclude(&mut r);
    assert_eq!(r.verdict, Verdict::Pass);
    let s = r.time_to_fire.unwrap();
    assert_eq!((s.min_ms, s.median_ms, s.max_ms), (4000, 5000, 6000));
    assert!(
        r.reason.contains("fired in every trial (3)"),
        "{}",
        r.reason
    );

    let mut r = result(vec![
        trial_of(1, Verdict::Pass, Some(4000), "ok"),
        trial_of(2, Verdict::Fail, None, "did not fire within 1m"),
    ]);
    conclude(&mut r);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.reason, "trial 2/2: did not fire within 1m");

    let mut r = result(Vec::new());
    conclude(&mut r);
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn manual_recovery_lists_retry_then_each_unreverted_entry_of_the_drill() {
    let entry = |drill: &str, cmd: &str| JournalEntry {
        id: 1,
        drill: drill.into(),
        trial: 2,
        fault: "exec touch x".into(),
        record: FaultRecord::Exec {
            revert: vec!["rm".into(), "-f".into(), "x".into()],
            timeout_ms: 1000,
            cwd: "/".into(),
            check: None,
            env: Vec::new(),
        },
        original: serde_json::Value::Null,
        injected: serde_json::Value::Null,
        status: EntryStatus::RevertFailed,
        journaled_at: t(0.0),
        injected_at: None,
        reverted_at: None,
        error: Some("timed out".into()),
        note: None,
        manual_recovery: cmd.into(),
    };
    let m = manual_recovery(
        &[
            entry("worker-image-tag", "cd / && rm -f 'x y'"),
            entry("other-drill", "not mine"),
        ],
        "worker-image-tag",
        Path::new("/tmp/reports dir/run-1/journal.json"),
    );
    let commands: Vec<&str> = m.steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "firedrill recover --journal '/tmp/reports dir/run-1/journal.json'",
            "cd / && rm -f 'x y'"
        ]
    );
    assert!(m.steps[1].label.contains("trial 2"), "{:?}", m.steps[1]);
    assert!(
        m.steps[1].label.contains("revert_failed: timed out"),
        "{:?}",
        m.steps[1]
    );
}
