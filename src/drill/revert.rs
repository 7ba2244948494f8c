//! Undo: what a trial journaled is reverted from the journal alone (newest
//! first), bounded by a hard deadline during which signals are ignored; the
//! drill's silence is created (journaled first) and expired the same way.

use super::env::DrillEnv;
use super::fault::{self, FaultRecord, Reverted};
use super::journal::{EntryStatus, Journal, JournalEntry};
use super::progress::Progress;
use super::watch::lock;
use crate::clients::alertmanager::{Matcher, NewSilence};
use crate::model::format_labels;
use crate::spec::drill::DrillSpec;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What a trial's inject phase tells the runner as it goes, so the runner
/// knows what to revert even after aborting it (no state is shared).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyEvent {
    /// A journal entry was written: revert it, whatever happens next.
    Journaled(u32),
    InjectStarted(DateTime<Utc>),
    Note(String),
}

pub(crate) type BodyLog = mpsc::UnboundedSender<BodyEvent>;

/// Creates the drill's Alertmanager silence, journaled first like a fault.
pub(crate) async fn create_silence(
    plan: &DrillSpec,
    n: u32,
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    log: &BodyLog,
) -> Result<(), String> {
    let am = env.alertmanager.as_ref().ok_or("no Alertmanager")?;
    let now = env.clock.now();
    let length = plan.deadline + plan.resolve_timeout + env.options.silence_margin;
    let ends_at = crate::timemath::after(now, length);
    let mut matchers = vec![Matcher {
        name: "alertname".into(),
        value: plan.alert.clone(),
        is_regex: false,
        is_equal: true,
    }];
    matchers.extend(plan.expect_labels.iter().map(|(k, v)| Matcher {
        name: k.clone(),
        value: v.clone(),
        is_regex: false,
        is_equal: true,
    }));
    let record = FaultRecord::Silence {
        alertmanager_url: am.base_url().to_string(),
        silence_id: None,
        ends_at,
    };
    let desc = format!(
        "Alertmanager silence for {}{} until {}",
        plan.alert,
        format_labels(&plan.expect_labels),
        super::machine::fmt_time(ends_at)
    );
    let e = JournalEntry::injecting(plan, n, now, record, desc, Value::Null, json!(matchers));
    let id = lock(journal).add(e).map_err(|e| e.to_string())?;
    let _ = log.send(BodyEvent::Journaled(id));
    let silence = NewSilence {
        matchers,
        starts_at: now,
        ends_at,
        created_by: "firedrill".into(),
        comment: format!("firedrill drill {} run {}", plan.name, env.run_id),
    };
    let sid = am
        .create_silence(&silence)
        .await
        .map_err(|e| e.to_string())?;
    lock(journal)
        .update(id, |e| {
            if let FaultRecord::Silence { silence_id, .. } = &mut e.record {
                *silence_id = Some(sid.clone());
            }
            e.manual_recovery = fault::manual_fix(&e.record, &e.original);
            e.injected_at = Some(now);
            e.status = EntryStatus::Injected;
        })
        .map_err(|e| e.to_string())
}

/// What reverting a trial's entries found.
#[derive(Debug, Default)]
pub(crate) struct RevertOutcome {
    /// One message per failed revert.
    pub errors: Vec<String>,
    /// Faults that were injected but found already reverted: something
    /// outside this run undid them while the drill was measuring.
    pub outside: Vec<String>,
}

/// Reverts journal entries `ids` (in reverse order of injection), updating
/// the journal for each. Bounded by `revert_deadline`; signals during it are
/// logged and ignored.
pub(crate) async fn revert_entries(
    ids: &[u32],
    env: &DrillEnv,
    journal: &Arc<Mutex<Journal>>,
    progress: &mut Progress,
) -> RevertOutcome {
    let todo: Vec<JournalEntry> = {
        let j = lock(journal);
        ids.iter()
            .rev()
            .filter_map(|id| j.entry(*id).cloned())
            .filter(|e| e.status != EntryStatus::Reverted)
            .collect()
    };
    if todo.is_empty() {
        return RevertOutcome::default();
    }
    let task = tokio::spawn({
        let journal = journal.clone();
        let ctx = env.faults.clone();
        let clock = env.clock.clone();
        let todo = todo.clone();
        async move {
            let mut out = RevertOutcome::default();
            for e in todo {
                let r = fault::revert(&e.record, &e.original, &e.injected, &ctx).await;
                let at = clock.now();
                let update = lock(&journal).update(e.id, |x| x.record_revert(&r, at, None));
                match &r {
                    Err(err) => out.errors.push(format!("{}: {err}", e.fault)),
                    // Only a fault known to be live counts: one still
                    // `injecting` may never have reached its target.
                    Ok(Reverted::AlreadyReverted(n)) if e.status == EntryStatus::Injected => {
                        out.outside.push(n.clone())
                    }
                    Ok(_) => {}
                }
                if let Err(j) = update {
                    out.errors.push(format!(
                        "{}: reverted, but the journal could not record it: {j}",
                        e.fault
                    ));
                }
            }
            out
        }
    });
    tokio::pin!(task);
    let deadline = tokio::time::sleep(env.options.revert_deadline);
    tokio::pin!(deadline);
    let mut signals = env.signals.clone();
    let mut seen = signals.count();
    let out = loop {
        tokio::select! {
            biased;
            r = &mut task => break match r {
                Ok(out) => out,
                Err(e) => RevertOutcome {
                    errors: vec![format!("the revert task failed: {e}")],
                    outside: Vec::new(),
                },
            },
            () = &mut deadline => {
                task.abort();
                // An aborted task ends at its next poll; wait for it, so it
                // drops its hold on the journal (and its lock) before the
                // run reports, and its command's process group is killed.
                let _ = (&mut task).await;
                let msg = format!(
                    "the revert did not finish within {}",
                    humantime::format_duration(env.options.revert_deadline)
                );
                let mut j = lock(journal);
                let mut errors = Vec::new();
                for e in &todo {
                    if j.entry(e.id).is_some_and(|x| x.status != EntryStatus::Reverted) {
                        let _ = j.update(e.id, |x| {
                            x.status = EntryStatus::RevertFailed;
                            x.error = Some(msg.clone());
                        });
                        errors.push(format!("{}: {msg}", e.fault));
                    }
                }
                break RevertOutcome { errors, outside: Vec::new() };
            }
            () = signals.after(seen) => {
                seen = signals.count();
                progress.line(&format!(
                    "{} received while reverting: ignored; the revert goes on (giving up after {})",
                    signals.last_name(),
                    humantime::format_duration(env.options.revert_deadline)
                ));
            }
        }
    };
    let j = lock(journal);
    for e in &todo {
        match j.entry(e.id) {
            Some(x) if x.status == EntryStatus::Reverted => match &x.note {
                Some(n) => progress.line(&format!("reverted: {} ({n})", e.record.revert_action())),
                None => progress.line(&format!("reverted: {}", e.record.revert_action())),
            },
            Some(x) => progress.line(&format!(
                "REVERT FAILED: {}: {}",
                e.fault,
                x.error.as_deref().unwrap_or("unknown error")
            )),
            None => {}
        }
    }
    out
}
