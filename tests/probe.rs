//! The sentinel probe against the real local stack and reference fleet.

use firedrill::commands::probe_config;
use firedrill::fleet::faults::{FleetSwitch, TamperKind};
use firedrill::local::LocalEnv;
use firedrill::probe::run_probe;
use firedrill::spec::{builtin_local_target, builtin_probes, Vars};
use futures::StreamExt;
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

    // On the wire a sentinel carries one header, its own traceparent: no
    // Nats-Msg-Id (nothing to de-duplicate, a cost to the server) and no
    // probe name (the body's kind says what it is).
    let mut tasks = client.subscribe(cfg.subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let few = probe_config(&spec, Some(3), Some(3));
    let out = run_probe(&client, &few, None).await.unwrap();
    assert_eq!(out.completed, 3, "{:?}", out.failure_reasons());
    for sent in &out.tasks {
        let msg = tokio::time::timeout(Duration::from_secs(5), tasks.next())
            .await
            .expect("the task is seen on its subject")
            .unwrap();
        let headers = msg.headers.expect("a sentinel has headers");
        let names: Vec<String> = headers.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["traceparent"], "{headers:?}");
        let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let task = out
            .tasks
            .iter()
            .find(|t| body["task_id"] == t.task_id.as_str())
            .expect("a task this run sent");
        let tp = headers.get("traceparent").unwrap().as_str();
        assert!(
            tp.starts_with(&format!("00-{}-{}-", task.trace_id, task.span_id)),
            "{tp} is not {task:?}'s"
        );
        assert_eq!(body["kind"], "sentinel", "{body} ({})", sent.task_id);
    }
    drop(tasks);

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

/// `probe --bench` end to end on a small count: every row is measured and
/// written to bench.json, with the ratios the note quotes. No figure is
/// asserted beyond being a positive rate (a busy machine).
#[tokio::test(flavor = "multi_thread")]
async fn bench_measures_every_row_and_writes_bench_json() {
    let args = ["--bench", "--count", "400", "--concurrency", "32"];
    let run = crate::common::run::probe_bench(args.map(String::from).to_vec()).await;
    let err = &run.stderr;
    assert_eq!(run.code, Some(0), "{err}");
    assert!(
        err.contains("bench (b'): 400 minimal round trips carrying a sentinel's header and "),
        "{err}"
    );
    assert!(run.stdout.contains("c/b' = "), "{}", run.stdout);
    let json = run.json.expect("bench.json written");
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(json["build"], build);
    let rows: Vec<(&str, u64, u64)> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["per_second"].as_f64().unwrap() > 0.0, "{r}");
            (
                r["measurement"].as_str().unwrap(),
                r["messages"].as_u64().unwrap(),
                r["in_flight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("(a) JetStream publish+ack", 400, 32),
            ("(b) minimal round trip", 400, 32),
            ("(b') minimal round trip, sentinel-sized", 400, 32),
            ("(c) sentinel round trip via fleet", 400, 32),
        ]
    );
    let per_s = |i: usize| json["rows"][i]["per_second"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * a.max(b);
    assert!(
        close(json["c_over_b"].as_f64().unwrap(), per_s(3) / per_s(1)),
        "{json}"
    );
    assert!(
        close(
            json["c_over_b_sentinel_sized"].as_f64().unwrap(),
            per_s(3) / per_s(2)
        ),
        "{json}"
    );
    assert!(
        close(
            json["b_sentinel_sized_over_b"].as_f64().unwrap(),
            per_s(2) / per_s(1)
        ),
        "{json}"
    );
    let c = &json["sentinel_latency_ms"];
    let (p50, max) = (c["p50"].as_f64().unwrap(), c["max"].as_f64().unwrap());
    assert!(
        p50 > 0.0 && p50 <= c["p99"].as_f64().unwrap() && p50 <= max,
        "{c}"
    );
    let d = &json["one_in_flight"];
    assert_eq!(d["messages"], 2000);
    assert!(d["minimal_p50_us"].as_f64().unwrap() > 0.0, "{d}");
    assert!(d["sentinel_p50_us"].as_f64().unwrap() > 0.0, "{d}");
    assert!(
        json["peak_rss_mib_10k_in_flight"].as_f64().unwrap() > 0.0,
        "{json}"
    );
}
