//! Runs drills: preflight -> per trial: quiet wait, journal, inject,
//! trigger, watch, revert, resolve wait.
//!
//! Each trial's inject phase (quiet wait, silence, read original, journal,
//! inject, trigger) runs in a spawned task that reports what it journaled
//! over a channel; the firing watch runs in another, owning the state
//! machine and stopping on a signal. Whichever way they end (decision,
//! error, panic, signal), the runner then reverts every journaled change of
//! the trial from the journal, in one code path (`revert.rs`). Verdicts are
//! decided in `trial.rs` (pure); this file only sequences I/O.

use super::env::{DrillEnv, DrillError, DrillRun, RunOutcome};
use super::fault::{self, FaultRecord};
use super::footprint::{footprint, plan_groups};
use super::group::{baseline, watch_crosstalk, Gate, Member, Ticket};
use super::journal::{scan, EntryStatus, Journal, JournalEntry};
use super::machine::{Decision, Machine, MachineConfig, Notification};
use super::preflight::preflight;
use super::progress::{Progress, ProgressSink};
use super::revert::{create_silence, revert_entries, BodyEvent, BodyLog};
use super::timeline::EventKind;
use super::trial::{self, Ended, TrialFacts};
use super::watch::{lock, wait_until_quiet, watch, Quiet};
use crate::report::model::{DrillGroup, DrillResult, DrillTrial, Link, Verdict};
use crate::spec::drill::DrillSpec;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The checks that need no remote: refuses on a target without
/// `drills_allowed` or with a dead run's unrecovered journal under
/// `reports_dir`. Returns one note per live run's journal (left to its
/// owner). Cheap, so commands call it before starting a local stack.
pub fn check_can_drill(
    reports_dir: &Path,
    target: &str,
    drills_allowed: bool,
) -> Result<Vec<String>, DrillError> {
    if !drills_allowed {
        return Err(DrillError::NotAllowed {
            target: target.to_string(),
        });
    }
    let found = scan(reports_dir);
    if !found.unrecovered.is_empty() {
        return Err(DrillError::UnrecoveredJournal {
            journals: found.unrecovered,
        });
    }
    Ok(found
        .live
        .into_iter()
        .map(|l| format!("left alone: {l}; it reverts its own faults"))
        .collect())
}

/// Runs `plans` in order: refuses on a target without `drills_allowed` or
/// with an unrecovered journal, then runs every drill's trials, stopping
/// early only on a signal or a failed revert.
pub async fn run_drills(plans: &[DrillSpec], env: &DrillEnv) -> Result<DrillRun, DrillError> {
    let live = check_can_drill(&env.reports_dir, &env.target, env.drills_allowed)?;
    let mut progress = Progress::new(env.progress.clone(), "journals");
    for l in &live {
        progress.line(l);
    }
    progress.finish();
    if env.alertmanager.is_none() {
        if let Some(p) = plans.iter().find(|p| p.silence) {
            return Err(DrillError::SilenceWithoutAlertmanager {
                drill: p.name.clone(),
                target: env.target.clone(),
            });
        }
    }
    let journal = Arc::new(Mutex::new(Journal::create(
        &env.reports_dir,
        &env.run_id,
        &env.target,
    )?));
    if env.options.parallel {
        return Ok(run_parallel(plans, env, &journal).await);
    }
    let mut results = Vec::new();
    let mut outcome = RunOutcome::Completed;
    for plan in plans {
        if env.signals.count() > 0 {
            outcome = RunOutcome::Interrupted {
                signal: env.signals.last_name(),
            };
            break;
        }
        let (result, end, _) = run_drill(plan, env, &journal, None).await;
        results.push(result);
        if let Some(o) = end.outcome() {
            outcome = o;
            break;
        }
    }
    Ok(DrillRun {
        results,
        groups: Vec::new(),
        outcome,
        journal: env.journal_path(),
    })
}

/// `--parallel`: the groups [`plan_groups`] forms, one after another; the
/// drills of a group at the same time, each with its own trials, their
/// injects held until every fault of the group is journaled ([`Gate`]).
/// Stops after the group in which a signal came or a revert failed (the
/// group's other drills still revert: each reverts its own faults).
async fn run_parallel(
    plans: &[DrillSpec],
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
) -> DrillRun {
    let mut env = env.clone();
    // Spinners of drills running at once would overwrite each other.
    if matches!(env.progress, ProgressSink::Spinner) {
        env.progress = ProgressSink::Lines(Arc::new(Mutex::new(std::io::stderr())));
    }
    let env = &env;
    let groups = plan_groups(plans);
    let mut progress = Progress::new(env.progress.clone(), "parallel:");
    progress.line(&format!(
        "{} drill(s) in {} group(s), one group after another:",
        plans.len(),
        groups.len()
    ));
    for (g, members) in groups.iter().enumerate() {
        let list: Vec<String> = members
            .iter()
            .map(|&i| {
                format!(
                    "{} ({})",
                    plans[i].name,
                    footprint(&plans[i].fault).describe()
                )
            })
            .collect();
        progress.line(&format!("group {}: {}", g + 1, list.join("; ")));
    }
    progress.finish();

    let mut slots: Vec<Option<DrillResult>> = vec![None; plans.len()];
    let mut disturbed: Vec<(usize, String)> = Vec::new();
    let mut done_groups = Vec::new();
    let mut outcome = RunOutcome::Completed;
    for (g, members) in groups.iter().enumerate() {
        if env.signals.count() > 0 {
            outcome = RunOutcome::Interrupted {
                signal: env.signals.last_name(),
            };
            break;
        }
        let group = (g + 1) as u32;
        let (group_result, results) = run_group(group, members, plans, env, journal).await;
        for (&i, (mut result, end, voided)) in members.iter().zip(results) {
            if !group_result.crosstalk.is_empty() {
                let seen: Vec<String> = group_result
                    .crosstalk
                    .iter()
                    .map(|c| {
                        format!(
                            "{}{} ({})",
                            c.alert,
                            crate::model::format_labels(&c.labels),
                            c.state
                        )
                    })
                    .collect();
                result.notes.push(format!(
                    "crosstalk in parallel group {group}: {} went active while it ran and no drill of the group expects it; this verdict may be disturbed (--retry-serial re-runs it alone)",
                    seen.join(", ")
                ));
                disturbed.push((i, format!("crosstalk in parallel group {group}")));
            } else if voided {
                disturbed.push((
                    i,
                    format!(
                        "its alert was already active before its inject in parallel group {group}"
                    ),
                ));
            }
            slots[i] = Some(result);
            if outcome == RunOutcome::Completed {
                if let Some(o) = end.outcome() {
                    outcome = o;
                }
            } else if matches!(end, TrialEnd::RevertFailed) {
                outcome = RunOutcome::RevertFailed;
            }
        }
        done_groups.push(group_result);
        if outcome != RunOutcome::Completed {
            break;
        }
    }

    if env.options.retry_serial && outcome == RunOutcome::Completed {
        for (i, why) in disturbed {
            if env.signals.count() > 0 {
                outcome = RunOutcome::Interrupted {
                    signal: env.signals.last_name(),
                };
                break;
            }
            let mut p = Progress::new(env.progress.clone(), &plans[i].name);
            p.line(&format!("re-running alone (--retry-serial): {why}"));
            p.finish();
            let (mut result, end, _) = run_drill(&plans[i], env, journal, None).await;
            if let Some(before) = &slots[i] {
                result.notes.insert(
                    0,
                    format!(
                        "re-run alone (--retry-serial) after {why}; in its group it was {}: {}",
                        before.verdict, before.reason
                    ),
                );
            }
            slots[i] = Some(result);
            if let Some(o) = end.outcome() {
                outcome = o;
                break;
            }
        }
    }
    DrillRun {
        // In the plans' order; drills of groups that never ran are left out.
        results: slots.into_iter().flatten().collect(),
        groups: done_groups,
        outcome,
        journal: env.journal_path(),
    }
}

/// One group: the crosstalk watch around its drills, run at the same time.
async fn run_group(
    group: u32,
    members: &[usize],
    plans: &[DrillSpec],
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
) -> (DrillGroup, Vec<(DrillResult, TrialEnd, bool)>) {
    let started = env.clock.now();
    let sources = env.sources();
    let mut notes = Vec::new();
    let before = match sources.prometheus_alerts().await {
        Ok(alerts) => baseline(&alerts),
        Err(e) => {
            notes.push(format!(
                "could not read the alerts active before parallel group {group} ({e}); any of them seen later is reported as crosstalk"
            ));
            Default::default()
        }
    };
    let expected = members.iter().map(|&i| plans[i].alert.clone()).collect();
    let (stop, watcher) = watch_crosstalk(sources, expected, before);
    let trials: Vec<u32> = members
        .iter()
        .map(|&i| trial_count(&plans[i], env))
        .collect();
    let gate = Gate::new(&trials);
    let runs = members
        .iter()
        .zip(&trials)
        .map(|(&i, &t)| run_drill(&plans[i], env, journal, Some(gate.member(t))));
    let results = futures::future::join_all(runs).await;
    let _ = stop.send(());
    let seen = match watcher.await {
        Ok(c) => c,
        Err(e) => super::group::Crosstalk {
            alerts: Vec::new(),
            notes: vec![format!("the crosstalk watch failed: {e}")],
        },
    };
    notes.extend(seen.notes);
    let group = DrillGroup {
        group,
        drills: members.iter().map(|&i| plans[i].name.clone()).collect(),
        footprints: members
            .iter()
            .map(|&i| footprint(&plans[i].fault).describe())
            .collect(),
        started,
        ended: env.clock.now(),
        crosstalk: seen.alerts,
        notes,
    };
    (group, results)
}

fn trial_count(plan: &DrillSpec, env: &DrillEnv) -> u32 {
    env.options.trials.unwrap_or(plan.trials).max(1)
}

#[derive(Debug, Clone, PartialEq)]
enum TrialEnd {
    Completed,
    Interrupted(String),
    RevertFailed,
}

impl TrialEnd {
    /// How the run ends after this, if it stops here.
    fn outcome(&self) -> Option<RunOutcome> {
        match self {
            TrialEnd::Completed => None,
            TrialEnd::Interrupted(signal) => Some(RunOutcome::Interrupted {
                signal: signal.clone(),
            }),
            TrialEnd::RevertFailed => Some(RunOutcome::RevertFailed),
        }
    }
}

/// One drill's trials; with a gate `member` (a parallel group) each
/// trial's inject waits for the group's. The flag says whether a trial was
/// void or found its alert active from before its inject.
async fn run_drill(
    plan: &DrillSpec,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    mut member: Option<Member>,
) -> (DrillResult, TrialEnd, bool) {
    let started = env.clock.now();
    let mut result = DrillResult {
        name: plan.name.clone(),
        alert: plan.alert.clone(),
        fault: plan.fault.describe(),
        deadline_ms: plan.deadline.as_millis() as u64,
        verdict: Verdict::Error,
        reason: String::new(),
        trials: Vec::new(),
        alert_urls: Vec::new(),
        manual_recovery: None,
        time_to_fire: None,
        time_to_fire_histogram: None,
        notes: Vec::new(),
        journal: Some(env.journal_path().display().to_string()),
    };
    let mut signals = env.signals.clone();
    let pre = tokio::select! {
        biased;
        () = signals.cancelled() => {
            result.reason = format!("interrupted by {} before the fault was injected", signals.last_name());
            return (result, TrialEnd::Interrupted(signals.last_name()), false);
        }
        r = preflight(
            &env.prometheus,
            &plan.alert,
            env.clock.now(),
            env.options.series_lookback,
            env.options.missing_metrics,
        ) => r,
    };
    let info = match pre {
        Ok(info) => info,
        Err(e) => {
            (result.verdict, result.reason) = trial::preflight_failed(&e);
            result.alert_urls = alert_links(plan, env, started);
            return (result, TrialEnd::Completed, false);
        }
    };
    result.notes.extend(trial::preflight_notes(plan, &info));

    let trials = trial_count(plan, env);
    let mut end = TrialEnd::Completed;
    let mut voided = false;
    for n in 1..=trials {
        let ticket = member.as_mut().map(|m| m.ticket(n));
        let (trial, e, v) = run_trial(plan, n, env, journal, &info.missing, ticket).await;
        result.trials.push(trial);
        voided |= v;
        if e != TrialEnd::Completed {
            end = e;
            break;
        }
    }
    // Out of the group's gate: the others' later trials wait for it no more.
    drop(member);

    trial::conclude(&mut result);
    if end == TrialEnd::RevertFailed {
        // Its own entries only: in a parallel group, the others' faults
        // are theirs to revert (and to name).
        let unreverted: Vec<JournalEntry> = lock(journal)
            .unreverted()
            .into_iter()
            .filter(|e| e.drill == plan.name)
            .cloned()
            .collect();
        result.manual_recovery = Some(trial::manual_recovery(
            &unreverted,
            &plan.name,
            &env.journal_path(),
        ));
    }
    result.alert_urls = alert_links(plan, env, started);
    (result, end, voided)
}

fn alert_links(plan: &DrillSpec, env: &DrillEnv, started: DateTime<Utc>) -> Vec<Link> {
    let end = env.clock.now();
    let range = (end - started).to_std().unwrap_or_default() + Duration::from_secs(60);
    let expr = format!("ALERTS{{alertname=\"{}\"}}", plan.alert);
    let mut v = vec![Link {
        label: format!("Prometheus: {expr}"),
        url: Some(env.prometheus.graph_url(&expr, end, range)),
    }];
    if let Some(am) = &env.alertmanager {
        v.push(Link {
            label: format!("Alertmanager: {}", plan.alert),
            url: Some(am.alerts_ui_url(&plan.alert)),
        });
    }
    v
}

/// The shortest wait for a drill's alert to clear before an inject (the
/// drill's `resolve_timeout` when longer).
const QUIET_FLOOR: Duration = Duration::from_secs(30);

/// How the inject phase ended.
enum Injected {
    /// The fault is live: watch it (the trigger, if any, already sent).
    Live {
        machine: Box<Machine>,
        notifications: Option<broadcast::Receiver<Notification>>,
    },
    /// It stopped before a measurement could start.
    Stopped(Ended),
}

async fn run_trial(
    plan: &DrillSpec,
    n: u32,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    missing: &[String],
    ticket: Option<Ticket>,
) -> (DrillTrial, TrialEnd, bool) {
    let label = if plan.trials > 1 || env.options.trials.is_some_and(|t| t > 1) {
        format!("{}#{n}", plan.name)
    } else {
        plan.name.clone()
    };
    // Subscribed before the inject, so the resolve wait also sees the
    // notifications that arrived while the trial was deciding.
    let mut resolve_feed = env.notifications.as_ref().map(|f| f.subscribe());
    let (log, mut events) = mpsc::unbounded_channel();
    let mut body = tokio::spawn(inject_phase(
        plan.clone(),
        ThisTrial {
            n,
            label: label.clone(),
            ticket,
        },
        missing.to_vec(),
        env.clone(),
        journal.clone(),
        log,
    ));
    let mut signals = env.signals.clone();
    let injected = tokio::select! {
        biased;
        r = &mut body => match r {
            Ok(i) => i,
            Err(e) => Injected::Stopped(Ended::Panicked(join_error(e))),
        },
        () = signals.cancelled() => {
            // Dropping the phase mid-command kills that command's whole
            // process group before anything is reverted.
            body.abort();
            let _ = body.await;
            Injected::Stopped(Ended::Cancelled(signals.last_name()))
        }
    };
    let (ended, mut machine) = match injected {
        Injected::Stopped(e) => (e, None),
        Injected::Live {
            machine,
            notifications,
        } => watch_firing(env, *machine, notifications, &label).await,
    };

    // What the inject phase journaled and noted, whether it finished or not.
    let (mut ids, mut notes, mut inject_started) = (Vec::new(), Vec::new(), None);
    while let Ok(ev) = events.try_recv() {
        match ev {
            BodyEvent::Journaled(id) => ids.push(id),
            BodyEvent::InjectStarted(at) => inject_started = Some(at),
            BodyEvent::Note(n) => notes.push(n),
        }
    }
    let mut progress = Progress::new(env.progress.clone(), &label);
    let (fault_ids, silence_ids): (Vec<u32>, Vec<u32>) = ids.into_iter().partition(|id| {
        !matches!(
            lock(journal).entry(*id).map(|e| &e.record),
            Some(FaultRecord::Silence { .. })
        )
    });
    let reverted = revert_entries(&fault_ids, env, journal, &mut progress).await;
    let mut revert_errors = reverted.errors;
    let revert_done = env.clock.now();
    if let Some(m) = machine.as_mut() {
        m.reverted(revert_done);
    }

    // Wait for the alert to resolve, unless interrupted or the revert failed.
    let mut end = match &ended {
        Ended::Cancelled(sig) => TrialEnd::Interrupted(sig.clone()),
        _ => TrialEnd::Completed,
    };
    // After a dependency error the remotes are unlikely to answer now.
    let measured = matches!(&ended, Ended::Decided(d) if !matches!(d, Decision::Error(_)));
    if let (true, true, Some(m)) = (measured, revert_errors.is_empty(), machine.as_mut()) {
        let mut sig = env.signals.clone();
        let d = watch(
            m,
            &env.sources(),
            &mut resolve_feed,
            Some(&mut sig),
            &mut progress,
        )
        .await;
        match d {
            Decision::NotResolved(r) => notes.push(format!(
                "{r} (not a failure of the drill, but worth a look)"
            )),
            Decision::Cancelled => {
                notes.push(format!(
                    "{} arrived while waiting for the alert to resolve (the fault was already reverted)",
                    sig.last_name()
                ));
                end = TrialEnd::Interrupted(sig.last_name());
            }
            _ => {}
        }
    }
    revert_errors.extend(
        revert_entries(&silence_ids, env, journal, &mut progress)
            .await
            .errors,
    );
    if !revert_errors.is_empty() {
        end = TrialEnd::RevertFailed;
    }
    progress.finish();

    let voided = matches!(ended, Ended::Void(_)) || machine.as_ref().is_some_and(Machine::predated);
    let trial = trial::judge(TrialFacts {
        n,
        ended,
        inject_started: inject_started.or(machine
            .as_ref()
            .and_then(|m| m.timeline().at(EventKind::InjectStarted))),
        machine,
        revert_done,
        revert_errors,
        reverted_outside: reverted.outside,
        notes,
    });
    (trial, end, voided)
}

/// Watches the live fault until the machine decides or a signal comes, in a
/// task of its own so a panic there still reaches the revert.
async fn watch_firing(
    env: &DrillEnv,
    mut machine: Machine,
    mut notifications: Option<broadcast::Receiver<Notification>>,
    label: &str,
) -> (Ended, Option<Machine>) {
    let sources = env.sources();
    let mut signals = env.signals.clone();
    let mut progress = Progress::new(env.progress.clone(), label);
    let task = tokio::spawn(async move {
        let d = watch(
            &mut machine,
            &sources,
            &mut notifications,
            Some(&mut signals),
            &mut progress,
        )
        .await;
        progress.finish();
        let ended = match d {
            Decision::Cancelled => Ended::Cancelled(signals.last_name()),
            d => Ended::Decided(d),
        };
        (ended, machine)
    });
    match task.await {
        Ok((ended, machine)) => (ended, Some(machine)),
        Err(e) => (Ended::Panicked(join_error(e)), None),
    }
}

fn join_error(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

/// quiet wait -> silence -> read original -> journal -> inject -> trigger.
/// Reports every journal entry over `log` as soon as it is written.
/// Which trial an inject phase is: its number, progress label, and in a
/// parallel group its ticket through the group's gate.
struct ThisTrial {
    n: u32,
    label: String,
    ticket: Option<Ticket>,
}

async fn inject_phase(
    plan: DrillSpec,
    this: ThisTrial,
    missing: Vec<String>,
    env: DrillEnv,
    journal: Arc<Mutex<Journal>>,
    log: BodyLog,
) -> Injected {
    let ThisTrial { n, label, ticket } = this;
    let failed = |stage: &str, error: String| {
        Injected::Stopped(Ended::Failed {
            stage: stage.to_string(),
            error,
        })
    };
    let note = |n: String| {
        let _ = log.send(BodyEvent::Note(n));
    };
    let mut progress = Progress::new(env.progress.clone(), &label);

    // Never inject while the alert is already active (just after a stack
    // start, or an earlier trial's alert not yet resolved).
    let quiet_limit = plan.resolve_timeout.max(QUIET_FLOOR);
    let sources = env.sources();
    match wait_until_quiet(
        &sources,
        &plan.alert,
        &plan.expect_labels,
        quiet_limit,
        &mut progress,
    )
    .await
    {
        Quiet::AtOnce => {}
        Quiet::After(d) => note(format!(
            "waited {:.1}s for {} to clear before injecting",
            d.as_secs_f64(),
            plan.alert
        )),
        Quiet::StillActive(reason) => return Injected::Stopped(Ended::NotQuiet(reason)),
    }

    if plan.silence {
        if let Err(e) = create_silence(&plan, n, &env, &journal, &log).await {
            return failed("create the Alertmanager silence", e);
        }
    }

    let driver = match fault::driver(&plan.fault, &env.faults) {
        Ok(d) => d,
        Err(e) => return failed("set up the fault", e.to_string()),
    };
    let prepared = match driver.prepare().await {
        Ok(p) => p,
        Err(e) => return failed("read the original state", e.to_string()),
    };
    let entry = JournalEntry::injecting(
        &plan,
        n,
        env.clock.now(),
        prepared.record.clone(),
        prepared.description.clone(),
        prepared.original.clone(),
        prepared.injected.clone(),
    );
    let id = match lock(&journal).add(entry) {
        Ok(id) => id,
        // Not journaled, so not injected.
        Err(e) => {
            return failed(
                "journal the original state (nothing was injected)",
                e.to_string(),
            )
        }
    };
    let _ = log.send(BodyEvent::Journaled(id));

    if let Some(ticket) = ticket {
        // A parallel group: no inject before every fault of the group is
        // journaled; then the alert must still be quiet, or another drill
        // of the group (or something else) raised it: this drill is void.
        if ticket.has_peers() {
            progress.line("journaled; waiting for the rest of the group to journal theirs");
        }
        ticket.arrive().await;
        if let Ok(alerts) = sources.prometheus_alerts().await {
            let active: Vec<String> = alerts
                .iter()
                .filter(|a| {
                    super::machine::alert_matches(&a.labels, &plan.alert, &plan.expect_labels)
                })
                .map(|a| match a.active_at {
                    Some(t) => format!("{} since {}", a.state, super::machine::fmt_time(t)),
                    None => a.state.clone(),
                })
                .collect();
            if !active.is_empty() {
                // Known never injected: nothing to revert.
                let _ = lock(&journal).update(id, |e| {
                    e.status = EntryStatus::Reverted;
                    e.note = Some("never injected: the drill was void".into());
                });
                return Injected::Stopped(Ended::Void(format!(
                    "alert {}{} was already active ({}) when its parallel group was about to inject; \
                     something else raised it (another drill's fault, or the platform), so this drill \
                     measured nothing and its fault was not injected. Re-run it alone (--retry-serial)",
                    plan.alert,
                    crate::model::format_labels(&plan.expect_labels),
                    active.join(", ")
                )));
            }
        }
    }

    // Subscribe before injecting so no notification is missed.
    let notifications = env.notifications.as_ref().map(|f| f.subscribe());
    let inject_started = env.clock.now();
    let _ = log.send(BodyEvent::InjectStarted(inject_started));
    progress.line(&format!("injecting: {}", prepared.description));
    if let Err(e) = driver.inject(&prepared).await {
        return failed("inject the fault", e.to_string());
    }
    let inject_done = env.clock.now();
    if let Err(e) = lock(&journal).update(id, |e| {
        e.status = EntryStatus::Injected;
        e.injected_at = Some(inject_done);
    }) {
        return failed("journal the injection", e.to_string());
    }

    let mut cfg = MachineConfig::new(
        &plan.alert,
        plan.expect_labels.clone(),
        plan.deadline,
        plan.resolve_timeout,
    );
    cfg.watch_alertmanager = env.alertmanager.is_some();
    cfg.am_grace = env.options.am_grace;
    cfg.settle = env.options.settle;
    cfg.missing_metrics = missing;
    cfg.expect_receiver = plan.expect_receiver.clone();
    if env.notifications.is_some() && !plan.silence {
        cfg.await_notification = Some(env.options.notify_grace);
    }
    let mut machine = Machine::new(cfg, inject_started, inject_done);

    if let Some(t) = &plan.trigger {
        match &env.trigger {
            Some(trigger) => match trigger(t).await {
                Ok(()) => machine.record(
                    EventKind::TriggerSent,
                    env.clock.now(),
                    &format!("trigger: probe {}", t.probe),
                ),
                Err(e) => note(format!(
                    "trigger (probe {}) failed: {e}; the alert may never fire",
                    t.probe
                )),
            },
            None => note(format!(
                "the drill asks for a trigger (probe {}) but none was wired; ran without it",
                t.probe
            )),
        }
    }
    progress.finish();
    Injected::Live {
        machine: Box::new(machine),
        notifications,
    }
}
