//! The sentinel probe against the real local stack and reference fleet.

use firedrill::commands::probe_config;
use firedrill::fleet::faults::{FleetSwitch, TamperKind};
use firedrill::local::LocalEnv;
use firedrill::probe::run_probe;
use firedrill::spec::{builtin_local_target, builtin_probes, Vars};
use std::collections::BTreeSet;
use std::time::Duration;

async fn env() -> (LocalEnv, firedrill::spec::ProbeSpec) {
    let target = builtin_local_target(&Vars::new()).expect("built-in target loads");
    let probe = builtin_probes(&target)
        .expect("built-in probe loads")
        .remove(0);
    let env = LocalEnv::start_with(&target, |cfg| {
        cfg.cold_start = Duration::from_millis(2);
        cfg.work = Duration::from_millis(1);
    })
    .await
    .expect("local stack starts");
    (env, probe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sentinels_complete_with_their_trace_ids_and_tampering_is_reported_exactly() {
    let (env, spec) = env().await;
    let client = firedrill::clients::nats::connect(env.stack.nats_url.as_deref().unwrap(), None)
        .await
        .unwrap();

    // Clean run: every sentinel comes back with its own trace id.
    let cfg = probe_config(&spec, Some(200), Some(32));
    let out = run_probe(&client, &cfg, None).await.unwrap();
    assert_eq!(out.sent, 200);
    assert_eq!(out.completed, 200, "{:?}", out.failure_reasons());
    assert!(out.timed_out.is_empty() && out.trace_mismatches.is_empty());
    assert!(out.passed());
    assert_eq!(out.latency.count, 200);
    assert!(out.latency.p50_ms > 0.0 && out.latency.p50_ms <= out.latency.p99_ms);

    // Tampered run: the fleet drops every 7th result and corrupts every 5th
    // trace id; the probe must name exactly those tasks, nothing more.
    env.fleet
        .as_ref()
        .unwrap()
        .set_fault(FleetSwitch::DropResults { every: 7 }, true)
        .await
        .unwrap();
    env.fleet
        .as_ref()
        .unwrap()
        .set_fault(FleetSwitch::CorruptTraceIds { every: 5 }, true)
        .await
        .unwrap();
    let mut cfg = probe_config(&spec, Some(100), Some(16));
    cfg.timeout = Duration::from_secs(3);
    let out = run_probe(&client, &cfg, None).await.unwrap();
    env.fleet
        .as_ref()
        .unwrap()
        .set_fault(FleetSwitch::DropResults { every: 7 }, false)
        .await
        .unwrap();
    env.fleet
        .as_ref()
        .unwrap()
        .set_fault(FleetSwitch::CorruptTraceIds { every: 5 }, false)
        .await
        .unwrap();

    let tampered = env.fleet.as_ref().unwrap().tampered();
    let dropped: BTreeSet<String> = tampered
        .iter()
        .filter(|t| t.what == TamperKind::Dropped)
        .map(|t| t.task_id.clone())
        .collect();
    let corrupted: BTreeSet<String> = tampered
        .iter()
        .filter(|t| t.what == TamperKind::CorruptedTraceId)
        .map(|t| t.task_id.clone())
        .collect();
    assert!(
        !dropped.is_empty() && !corrupted.is_empty(),
        "fleet tampered with nothing: {tampered:?}"
    );
    let timed_out: BTreeSet<String> = out.timed_out.iter().cloned().collect();
    let mismatched: BTreeSet<String> = out
        .trace_mismatches
        .iter()
        .map(|m| m.task_id.clone())
        .collect();
    assert_eq!(
        timed_out, dropped,
        "timed-out tasks must be exactly the dropped ones"
    );
    // A task both dropped and corrupted never answers, so it only times out.
    let corrupted_only: BTreeSet<String> = corrupted.difference(&dropped).cloned().collect();
    assert_eq!(
        mismatched, corrupted_only,
        "mismatches must be exactly the corrupted ones"
    );
    assert!(!out.passed());
    let reasons = out.failure_reasons().join("\n");
    for id in dropped.iter().chain(corrupted.iter()).take(5) {
        assert!(
            reasons.contains(id.as_str()),
            "reason does not name {id}: {reasons}"
        );
    }
    env.shutdown().await;
}
