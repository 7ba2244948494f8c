//! Reports built in tests, as JSON as firedrill writes it: an empty one, a
//! probe from raw round trips, a drill from times to fire (`merge.rs`,
//! `baseline_previous.rs`).

use firedrill::model::probe::LatencySummary;
use firedrill::probe::latency::Latencies;
use firedrill::report::model::{DrillResult, Report, SCHEMA_VERSION};
use firedrill::report::Verdict;
use serde_json::json;
use std::time::Duration;

/// A report with nothing in it, from JSON as an older or newer firedrill
/// would have written it.
pub fn empty(run_id: &str, target: &str) -> Report {
    serde_json::from_value(json!({
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "command": "run",
        "tool": {"name": "firedrill", "version": "0.1.0", "git_commit": null, "git_ref": null},
        "target": {"name": target, "description": "", "kind": "remote", "namespace": "agents",
                   "nats_url": "nats://nats:4222", "prometheus_url": null, "alertmanager_url": null,
                   "grafana_url": null},
        "window": {"start": "2026-11-23T09:00:00Z", "end": "2026-11-23T09:10:00Z"},
        "verdict": "pass",
        "probes": [], "criteria": [], "drills": [], "errors": [], "interrupted": false
    }))
    .unwrap()
}

pub fn probe_json(agent: &str, latency: &LatencySummary, verdict: &str) -> serde_json::Value {
    json!({
        "verdict": verdict, "reasons": [],
        "name": "sentinel", "subject": format!("agent.tasks.{agent}"), "agent_type": agent,
        "started_at": "2026-11-23T09:00:01Z", "finished_at": "2026-11-23T09:00:05Z",
        "sent": latency.count, "acked": latency.count, "completed": latency.count,
        "timed_out": [], "duplicated": [], "trace_mismatches": [], "publish_failures": [],
        "latency": latency, "throughput_per_s": 10.0, "sentinel": null
    })
}

pub fn with_probe(mut r: Report, agent: &str, samples_us: &[u64]) -> Report {
    let mut l = Latencies::default();
    for us in samples_us {
        l.record(Duration::from_micros(*us));
    }
    r.probes = vec![serde_json::from_value(probe_json(agent, &l.summary(), "pass")).unwrap()];
    r
}

pub fn drill(name: &str, verdict: Verdict, fire_ms: &[i64]) -> DrillResult {
    let trials: Vec<serde_json::Value> = fire_ms
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            json!({"trial": i + 1, "verdict": verdict, "reason": "", "timeline": [],
                   "time_to_pending_ms": null, "time_to_fire_ms": ms, "time_to_notify_ms": null,
                   "time_to_resolve_ms": null, "alert_labels": {}, "reverted": true,
                   "revert_error": null})
        })
        .collect();
    let mut d: DrillResult = serde_json::from_value(json!({
        "name": name, "alert": "WorkerDown", "fault": "fleet", "deadline_ms": 180000,
        "verdict": verdict, "reason": "", "trials": trials, "alert_urls": [],
        "manual_recovery": null
    }))
    .unwrap();
    firedrill::drill::trial::conclude(&mut d);
    d
}
