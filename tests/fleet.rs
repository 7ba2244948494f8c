//! The reference fleet against a real nats-server: task round trips, the
//! `/metrics` exposition, every fault switch, and throughput.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::HeaderMap;
use firedrill::fleet::{Fleet, FleetConfig, FleetSwitch, TamperKind};
use firedrill::probe::envelope::{ResultEnvelope, TaskMessage, TRACEPARENT_HEADER};
use firedrill::probe::traceparent::TraceParent;
use futures::StreamExt;

use common::nats::NatsServer;
use common::prom_text::{self, named, value, Sample};

const TASK_SUBJECT: &str = "daedalus.tasks.copilot";

/// A fleet on its own nats-server. Fields drop in order: fleet, then server.
struct Harness {
    fleet: Option<Fleet>,
    client: async_nats::Client,
    js: jetstream::Context,
    http: reqwest::Client,
    base: String,
    cfg: FleetConfig,
    _nats: NatsServer,
}

async fn harness(edit: impl FnOnce(&mut FleetConfig)) -> Harness {
    let nats = NatsServer::start();
    let mut cfg = FleetConfig::for_tests(&nats.url);
    edit(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fleet = Fleet::start(cfg.clone(), listener)
        .await
        .expect("fleet starts");
    let base = format!("http://{}", fleet.http_addr());
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client.clone());
    Harness {
        fleet: Some(fleet),
        client,
        js,
        http: reqwest::Client::new(),
        base,
        cfg,
        _nats: nats,
    }
}

struct Sent {
    task_id: String,
    trace_id: String,
}

impl Harness {
    fn fleet(&self) -> &Fleet {
        self.fleet.as_ref().unwrap()
    }

    async fn finish(mut self) {
        self.fleet.take().unwrap().shutdown().await;
    }

    /// Publishes `n` tasks answering on `reply`, each with a fresh
    /// `traceparent`, and waits for JetStream to store them all.
    async fn publish(&self, n: usize, reply: &str, kind: &str) -> Vec<Sent> {
        let mut sent = Vec::with_capacity(n);
        let mut acks = Vec::with_capacity(n);
        for _ in 0..n {
            let tp = TraceParent::random();
            let task = TaskMessage {
                task_id: format!("task-{}", TraceParent::random().span_id_hex()),
                agent_type: "copilot".into(),
                kind: kind.into(),
                reply_subject: reply.into(),
                payload: serde_json::json!({}),
            };
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT_HEADER, tp.to_string().as_str());
            // As a platform's publisher may: the fleet must not mind it.
            headers.insert("Nats-Msg-Id", task.task_id.as_str());
            let body = serde_json::to_vec(&task).unwrap();
            acks.push(
                self.js
                    .publish_with_headers(TASK_SUBJECT, headers, body.into())
                    .await
                    .expect("publish task")
                    .into_future(),
            );
            // The context allows a bounded number of unanswered publishes;
            // await acks in chunks so publishing never waits on itself.
            if acks.len() == 1000 {
                for ack in futures::future::join_all(acks.drain(..)).await {
                    ack.expect("JetStream stored the task");
                }
            }
            sent.push(Sent {
                task_id: task.task_id,
                trace_id: tp.trace_id_hex(),
            });
        }
        for ack in
            futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future))
                .await
        {
            ack.expect("JetStream stored the task");
        }
        sent
    }

    async fn publish_raw(&self, body: &[u8], headers: HeaderMap) {
        self.js
            .publish_with_headers(TASK_SUBJECT, headers, body.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn scrape(&self) -> Vec<Sample> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        prom_text::parse(&resp.text().await.unwrap())
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        value(&self.scrape().await, name, labels)
    }

    fn stream_labels(&self) -> [(&'static str, String); 1] {
        [("stream", self.cfg.stream.clone())]
    }
}

fn l<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Waits for `n` results; fails the test if they do not arrive in time.
async fn collect(
    sub: &mut async_nats::Subscriber,
    n: usize,
    within: Duration,
) -> Vec<ResultEnvelope> {
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(msg)) => {
                out.push(serde_json::from_slice(&msg.payload).expect("a ResultEnvelope"))
            }
            Ok(None) => panic!("result subscription closed after {} of {n}", out.len()),
            Err(_) => panic!("only {} of {n} results within {within:?}", out.len()),
        }
    }
    out
}

/// Asserts nothing arrives on `sub` for `quiet`.
async fn assert_quiet(sub: &mut async_nats::Subscriber, quiet: Duration) {
    if let Ok(Some(msg)) = tokio::time::timeout(quiet, sub.next()).await {
        panic!(
            "unexpected result: {:?}",
            String::from_utf8_lossy(&msg.payload)
        );
    }
}

/// Polls `check` until it returns true or `within` passes (then fails).
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// (1) ------------------------------------------------------------------

#[tokio::test]
async fn results_carry_task_id_and_trace_id() {
    let h = harness(|_| {}).await;
    let mut sub = h.client.subscribe("firedrill.results.t1").await.unwrap();

    let sent = h.publish(50, "firedrill.results.t1", "sentinel").await;
    let results = collect(&mut sub, 50, Duration::from_secs(20)).await;

    let want: HashMap<_, _> = sent
        .iter()
        .map(|s| (s.task_id.clone(), s.trace_id.clone()))
        .collect();
    let mut seen = HashSet::new();
    for r in &results {
        assert_eq!(want.get(&r.task_id), Some(&r.trace_id), "result {r:?}");
        assert!(seen.insert(r.task_id.clone()), "duplicate result {r:?}");
        assert_eq!(r.status, "succeeded");
        assert_eq!(r.agent_type, "copilot");
        assert_eq!(r.worker, "daedalus-worker-copilot-0");
        assert!(r.duration_seconds >= 0.009, "work of 10 ms measured: {r:?}");
    }
    assert_eq!(seen.len(), 50);

    // No traceparent: empty trace id. A failing task reports `failed`.
    let task = TaskMessage {
        task_id: "no-trace".into(),
        agent_type: "copilot".into(),
        kind: "sentinel".into(),
        reply_subject: "firedrill.results.t1".into(),
        payload: serde_json::json!({"fail": true}),
    };
    h.publish_raw(&serde_json::to_vec(&task).unwrap(), HeaderMap::new())
        .await;
    let r = &collect(&mut sub, 1, Duration::from_secs(10)).await[0];
    assert_eq!(
        (r.task_id.as_str(), r.trace_id.as_str(), r.status.as_str()),
        ("no-trace", "", "failed")
    );

    // Garbage is counted as invalid, never answered, and the fleet carries on.
    h.publish_raw(b"not a task", HeaderMap::new()).await;
    h.publish(1, "firedrill.results.t1", "sentinel").await;
    collect(&mut sub, 1, Duration::from_secs(10)).await;
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    eventually("invalid counted", Duration::from_secs(5), || async {
        h.metric(
            "daedalus_tasks_total",
            &[("agent_type", "unknown"), ("status", "invalid")],
        )
        .await
            == Some(1.0)
    })
    .await;
    assert_eq!(h.fleet().completed(), 52);
    let s = h.scrape().await;
    assert_eq!(
        value(
            &s,
            "daedalus_tasks_total",
            &[("agent_type", "copilot"), ("status", "succeeded")]
        ),
        Some(51.0)
    );
    assert_eq!(
        value(
            &s,
            "daedalus_tasks_total",
            &[("agent_type", "copilot"), ("status", "failed")]
        ),
        Some(1.0)
    );
    h.finish().await;
}

// (2) ------------------------------------------------------------------

#[tokio::test]
async fn metrics_expose_every_family_with_the_seed_labels() {
    let h = harness(|_| {}).await;
    let mut sub = h.client.subscribe("firedrill.results.t2").await.unwrap();
    let sentinels = h.publish(3, "firedrill.results.t2", "sentinel").await;
    h.publish(2, "firedrill.results.t2", "load").await;
    collect(&mut sub, 5, Duration::from_secs(10)).await;
    eventually("all acked", Duration::from_secs(5), || async {
        h.fleet().completed() == 5
    })
    .await;

    let resp = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().await.unwrap();
    let s = prom_text::parse(&text);

    // Every sample of each family has exactly the seed's label names.
    let families: [(&str, &[&str]); 12] = [
        ("daedalus_cold_start_seconds_bucket", &["agent_type", "le"]),
        ("daedalus_cold_start_seconds_count", &["agent_type"]),
        (
            "daedalus_task_duration_seconds_bucket",
            &["agent_type", "le", "task_id"],
        ),
        (
            "daedalus_task_duration_seconds_count",
            &["agent_type", "task_id"],
        ),
        ("daedalus_tasks_total", &["agent_type", "status"]),
        (
            "kube_pod_container_status_restarts_total",
            &["container", "namespace", "pod"],
        ),
        (
            "kube_deployment_status_replicas_available",
            &["deployment", "namespace"],
        ),
        ("kube_job_status_active", &["job_name", "namespace"]),
        ("nats_consumer_num_pending", &["consumer_name", "stream"]),
        ("nats_stream_consumer_count", &["stream"]),
        ("nats_stream_total_messages", &["stream"]),
        (
            "keda_scaler_errors_total",
            &["namespace", "scaledObject", "scaler"],
        ),
    ];
    for (name, labels) in families {
        let found = named(&s, name);
        assert!(!found.is_empty(), "{name} missing from\n{text}");
        for sample in found {
            assert_eq!(sample.label_names(), labels, "{name}");
            if let Some(agent) = sample.label("agent_type") {
                assert_eq!(agent, "copilot");
            }
        }
    }
    let waiting = named(&s, "kube_pod_container_status_waiting_reason");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].value, 0.0, "healthy pods are not waiting");

    let cold = value(
        &s,
        "daedalus_cold_start_seconds_count",
        &[("agent_type", "copilot")],
    );
    assert_eq!(cold, Some(5.0));
    // Cold start of 10 ms lands in the 0.025 bucket, not the 0.005 one.
    assert_eq!(
        value(&s, "daedalus_cold_start_seconds_bucket", &[("le", "0.005")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "daedalus_cold_start_seconds_bucket",
            &[("le", "1500.0")]
        ),
        Some(5.0)
    );
    for sent in &sentinels {
        let count = value(
            &s,
            "daedalus_task_duration_seconds_count",
            &[("task_id", sent.task_id.as_str())],
        );
        assert_eq!(
            count,
            Some(1.0),
            "sentinel {} has its own series",
            sent.task_id
        );
    }
    assert_eq!(
        value(
            &s,
            "daedalus_task_duration_seconds_count",
            &[("task_id", "")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "daedalus_tasks_total", &[("status", "succeeded")]),
        Some(5.0)
    );
    assert_eq!(
        value(&s, "daedalus_tasks_total", &[("status", "failed")]),
        Some(0.0)
    );

    let ns = ("namespace", "daedalus");
    let pod = ("pod", "daedalus-worker-copilot-0");
    assert_eq!(
        value(
            &s,
            "kube_pod_container_status_restarts_total",
            &[ns, pod, ("container", "worker")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "kube_deployment_status_replicas_available",
            &[ns, ("deployment", "daedalus-orchestrator")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "kube_job_status_active",
            &[ns, ("job_name", "daedalus-worker-copilot-0")]
        ),
        Some(0.0)
    );
    let stream = ("stream", "DAEDALUS_TASKS");
    assert_eq!(
        value(
            &s,
            "nats_consumer_num_pending",
            &[stream, ("consumer_name", "daedalus-workers")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "nats_stream_consumer_count", &[stream]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "nats_stream_total_messages", &[stream]),
        Some(5.0),
        "Limits retention keeps acked tasks"
    );
    assert_eq!(
        value(
            &s,
            "keda_scaler_errors_total",
            &[
                ns,
                ("scaledObject", "daedalus-worker-copilot"),
                ("scaler", "nats-jetstream")
            ]
        ),
        Some(0.0)
    );
    h.finish().await;
}

#[tokio::test]
async fn names_come_from_config() {
    let h = harness(|c| {
        c.stream = "OTHER_TASKS".into();
        c.subjects = vec!["daedalus.tasks.>".into()];
        c.consumer = "other-workers".into();
        c.namespace = "other-ns".into();
        c.agent_types = vec!["copilot".into(), "claude".into()];
        c.worker_pod_prefix = "w-".into();
        c.orchestrator_deployment = "orch".into();
        c.scaled_object = "so".into();
        c.record_task_ids = false;
    })
    .await;
    let mut sub = h.client.subscribe("firedrill.results.cfg").await.unwrap();
    let sent = h.publish(1, "firedrill.results.cfg", "sentinel").await;
    collect(&mut sub, 1, Duration::from_secs(10)).await;
    eventually("acked", Duration::from_secs(5), || async {
        h.fleet().completed() == 1
    })
    .await;
    let s = h.scrape().await;
    let ns = ("namespace", "other-ns");
    for agent in ["copilot", "claude"] {
        let pod = format!("w-{agent}-0");
        assert_eq!(
            value(
                &s,
                "kube_pod_container_status_restarts_total",
                &[ns, ("pod", &pod)]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&s, "kube_job_status_active", &[ns, ("job_name", &pod)]),
            Some(0.0)
        );
    }
    assert_eq!(
        value(
            &s,
            "kube_deployment_status_replicas_available",
            &[ns, ("deployment", "orch")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "nats_consumer_num_pending",
            &[
                ("stream", "OTHER_TASKS"),
                ("consumer_name", "other-workers")
            ]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "keda_scaler_errors_total", &[("scaledObject", "so")]),
        Some(0.0)
    );
    // record_task_ids = false: no per-task series even for sentinels.
    assert_eq!(
        value(
            &s,
            "daedalus_task_duration_seconds_count",
            &[("task_id", &sent[0].task_id)]
        ),
        None
    );
    assert_eq!(
        value(
            &s,
            "daedalus_task_duration_seconds_count",
            &[("agent_type", "copilot"), ("task_id", "")]
        ),
        Some(1.0)
    );
    h.finish().await;
}

// (3) ------------------------------------------------------------------

#[tokio::test]
async fn fault_worker_image_tag() {
    let h = harness(|_| {}).await;
    let name = "kube_pod_container_status_waiting_reason";
    let healthy = h.scrape().await;
    assert_eq!(
        named(&healthy, name)
            .iter()
            .map(|w| w.value)
            .collect::<Vec<_>>(),
        vec![0.0]
    );

    h.fleet()
        .set_fault(FleetSwitch::WorkerImageTag, true)
        .await
        .unwrap();
    h.fleet()
        .set_fault(FleetSwitch::WorkerImageTag, true)
        .await
        .unwrap(); // idempotent
    let s = h.scrape().await;
    let waiting = named(&s, name);
    assert_eq!(waiting.len(), 1);
    let w = waiting[0];
    assert_eq!(w.label_names(), ["container", "namespace", "pod", "reason"]);
    assert_eq!(
        (
            w.label("namespace"),
            w.label("pod"),
            w.label("container"),
            w.label("reason")
        ),
        (
            Some("daedalus"),
            Some("daedalus-worker-copilot-0"),
            Some("worker"),
            Some("ImagePullBackOff")
        )
    );
    assert_eq!(w.value, 1.0);
    assert_eq!(h.fleet().active_faults(), vec![FleetSwitch::WorkerImageTag]);

    h.fleet()
        .set_fault(FleetSwitch::WorkerImageTag, false)
        .await
        .unwrap();
    let after = h.scrape().await;
    assert_eq!(
        named(&after, name)
            .iter()
            .map(|w| w.value)
            .collect::<Vec<_>>(),
        vec![0.0]
    );
    assert!(h.fleet().active_faults().is_empty());
    h.finish().await;
}

/// A counter that must climb about once a second while `fault` is on and
/// stand still once it is off.
async fn assert_ticks(h: &Harness, fault: FleetSwitch, name: &str, labels: &[(&str, &str)]) {
    assert_eq!(h.metric(name, labels).await, Some(0.0));
    h.fleet().set_fault(fault, true).await.unwrap();
    let on = Instant::now();
    eventually(&format!("{name} >= 2"), Duration::from_secs(5), || async {
        h.metric(name, labels).await.unwrap() >= 2.0
    })
    .await;
    assert!(
        on.elapsed() >= Duration::from_millis(1900),
        "driven by a 1 s clock, not by scrapes"
    );

    h.fleet().set_fault(fault, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = h.metric(name, labels).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        h.metric(name, labels).await.unwrap(),
        stopped,
        "{name} still climbing after off"
    );
}

#[tokio::test]
async fn fault_worker_crash() {
    let h = harness(|_| {}).await;
    let labels = [
        ("namespace", "daedalus"),
        ("pod", "daedalus-worker-copilot-0"),
        ("container", "worker"),
    ];
    assert_ticks(
        &h,
        FleetSwitch::WorkerCrash,
        "kube_pod_container_status_restarts_total",
        &labels,
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn fault_keda_error() {
    let h = harness(|_| {}).await;
    let labels = [
        ("namespace", "daedalus"),
        ("scaledObject", "daedalus-worker-copilot"),
        ("scaler", "nats-jetstream"),
    ];
    assert_ticks(
        &h,
        FleetSwitch::KedaError,
        "keda_scaler_errors_total",
        &labels,
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn fault_consumer_stop() {
    let h = harness(|_| {}).await;
    let mut sub = h.client.subscribe("firedrill.results.stop").await.unwrap();
    let pending = [
        ("stream", "DAEDALUS_TASKS"),
        ("consumer_name", "daedalus-workers"),
    ];

    for round in 0..2 {
        h.fleet()
            .set_fault(FleetSwitch::ConsumerStop, true)
            .await
            .unwrap();
        h.publish(150, "firedrill.results.stop", "sentinel").await;
        assert_quiet(&mut sub, Duration::from_millis(700)).await;
        let backlog = h
            .metric("nats_consumer_num_pending", &pending)
            .await
            .unwrap();
        assert!(backlog >= 150.0, "round {round}: backlog {backlog}");

        h.fleet()
            .set_fault(FleetSwitch::ConsumerStop, false)
            .await
            .unwrap();
        collect(&mut sub, 150, Duration::from_secs(20)).await;
        eventually("backlog drained", Duration::from_secs(10), || async {
            h.metric("nats_consumer_num_pending", &pending).await == Some(0.0)
        })
        .await;
    }
    assert_eq!(h.fleet().completed(), 300);
    h.finish().await;
}

#[tokio::test]
async fn fault_collector_down() {
    let h = harness(|_| {}).await;
    let url = format!("{}/collector/metrics", h.base);
    let status = |url: String| {
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let ok = h.http.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(!prom_text::parse(&ok.text().await.unwrap()).is_empty());

    h.fleet()
        .set_fault(FleetSwitch::CollectorDown, true)
        .await
        .unwrap();
    assert_eq!(status(url.clone()).await, 503);
    h.fleet()
        .set_fault(FleetSwitch::CollectorDown, false)
        .await
        .unwrap();
    assert_eq!(status(url.clone()).await, 200);
    h.finish().await;
}

#[tokio::test]
async fn fault_orchestrator_down() {
    let h = harness(|_| {}).await;
    let name = "kube_deployment_status_replicas_available";
    let labels = [
        ("namespace", "daedalus"),
        ("deployment", "daedalus-orchestrator"),
    ];
    assert_eq!(h.metric(name, &labels).await, Some(1.0));
    h.fleet()
        .set_fault(FleetSwitch::OrchestratorDown, true)
        .await
        .unwrap();
    assert_eq!(
        h.metric(name, &labels).await,
        Some(0.0),
        "scaled to 0: kube-state-metrics reports 0 available"
    );
    h.fleet()
        .set_fault(FleetSwitch::OrchestratorDown, false)
        .await
        .unwrap();
    assert_eq!(h.metric(name, &labels).await, Some(1.0));
    h.finish().await;
}

#[tokio::test]
async fn fault_stream_unhealthy() {
    let h = harness(|_| {}).await;
    let mut sub = h
        .client
        .subscribe("firedrill.results.unhealthy")
        .await
        .unwrap();
    let stream = h.stream_labels();
    let stream = l(&stream);

    h.publish(3, "firedrill.results.unhealthy", "sentinel")
        .await;
    collect(&mut sub, 3, Duration::from_secs(10)).await;

    for round in 0..2 {
        h.fleet()
            .set_fault(FleetSwitch::StreamUnhealthy, true)
            .await
            .unwrap();
        h.fleet()
            .set_fault(FleetSwitch::StreamUnhealthy, true)
            .await
            .unwrap(); // idempotent
                       // The consumer is really gone from the server.
        let mut js_stream = h.js.get_stream("DAEDALUS_TASKS").await.unwrap();
        assert!(
            js_stream.consumer_info("daedalus-workers").await.is_err(),
            "round {round}"
        );
        assert_eq!(js_stream.info().await.unwrap().state.consumer_count, 0);

        // Tasks published meanwhile stay in the stream, unanswered.
        h.publish(2, "firedrill.results.unhealthy", "sentinel")
            .await;
        let s = h.scrape().await;
        assert_eq!(value(&s, "nats_stream_consumer_count", &stream), Some(0.0));
        assert!(value(&s, "nats_stream_total_messages", &stream).unwrap() > 0.0);
        assert!(
            named(&s, "nats_consumer_num_pending").is_empty(),
            "no consumer, no series"
        );
        assert_quiet(&mut sub, Duration::from_millis(500)).await;

        h.fleet()
            .set_fault(FleetSwitch::StreamUnhealthy, false)
            .await
            .unwrap();
        assert_eq!(
            h.metric("nats_stream_consumer_count", &stream).await,
            Some(1.0)
        );
        // Recreated where the deleted one stopped: the two tasks held in
        // the stream meanwhile are delivered (none lost), then new ones.
        collect(&mut sub, 2, Duration::from_secs(10)).await;
        h.publish(3, "firedrill.results.unhealthy", "sentinel")
            .await;
        collect(&mut sub, 3, Duration::from_secs(10)).await;
        assert_quiet(&mut sub, Duration::from_millis(300)).await;
    }
    assert!(h.fleet().active_faults().is_empty());
    h.finish().await;
}

/// A consumer that holds messages is never deleted: stream-unhealthy is
/// refused (the fault stays off) and every task is still answered.
#[tokio::test]
async fn stream_unhealthy_never_deletes_a_consumer_holding_messages() {
    let h = harness(|_| {}).await;
    let mut sub = h.client.subscribe("firedrill.results.held").await.unwrap();
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, true)
        .await
        .unwrap();
    h.publish(5, "firedrill.results.held", "sentinel").await;
    let err = h
        .fleet()
        .set_fault(FleetSwitch::StreamUnhealthy, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds 5 message(s)"), "{err}");
    assert!(err.contains("never deleted"), "{err}");
    let mut js_stream = h.js.get_stream("DAEDALUS_TASKS").await.unwrap();
    assert_eq!(js_stream.info().await.unwrap().state.consumer_count, 1);
    assert!(!h
        .fleet()
        .active_faults()
        .contains(&FleetSwitch::StreamUnhealthy));
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, false)
        .await
        .unwrap();
    collect(&mut sub, 5, Duration::from_secs(10)).await;
    h.finish().await;
}

// (4) ------------------------------------------------------------------

#[tokio::test]
async fn drop_results_every_5th() {
    let h = harness(|c| c.concurrency = 8).await;
    let mut sub = h.client.subscribe("firedrill.results.drop").await.unwrap();
    h.fleet()
        .set_fault(FleetSwitch::DropResults { every: 5 }, true)
        .await
        .unwrap();

    let sent = h.publish(20, "firedrill.results.drop", "sentinel").await;
    let results = collect(&mut sub, 16, Duration::from_secs(10)).await;
    eventually("20 tasks done", Duration::from_secs(10), || async {
        h.fleet().completed() == 20
    })
    .await;
    assert_quiet(&mut sub, Duration::from_millis(500)).await;

    let tampered = h.fleet().tampered();
    assert_eq!(tampered.len(), 4, "{tampered:?}");
    assert!(tampered.iter().all(|t| t.what == TamperKind::Dropped));
    let dropped: HashSet<_> = tampered.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(dropped.len(), 4);
    let answered: HashSet<_> = results.iter().map(|r| r.task_id.clone()).collect();
    assert!(dropped.is_disjoint(&answered));
    let all: HashSet<_> = sent.iter().map(|s| s.task_id.clone()).collect();
    assert_eq!(
        dropped.union(&answered).cloned().collect::<HashSet<_>>(),
        all
    );
    // Dropped tasks were still acked.
    assert_eq!(
        h.metric("nats_consumer_num_pending", &[("stream", "DAEDALUS_TASKS")])
            .await,
        Some(0.0)
    );
    h.finish().await;
}

#[tokio::test]
async fn corrupt_trace_ids_every_4th() {
    let h = harness(|_| {}).await;
    let mut sub = h
        .client
        .subscribe("firedrill.results.corrupt")
        .await
        .unwrap();
    h.fleet()
        .set_fault(FleetSwitch::CorruptTraceIds { every: 4 }, true)
        .await
        .unwrap();
    assert_eq!(
        h.fleet().active_faults(),
        vec![FleetSwitch::CorruptTraceIds { every: 4 }]
    );

    let sent = h.publish(20, "firedrill.results.corrupt", "sentinel").await;
    let results = collect(&mut sub, 20, Duration::from_secs(10)).await;
    let want: HashMap<_, _> = sent
        .iter()
        .map(|s| (s.task_id.clone(), s.trace_id.clone()))
        .collect();
    let wrong: HashSet<_> = results
        .iter()
        .filter(|r| want[&r.task_id] != r.trace_id)
        .map(|r| r.task_id.clone())
        .collect();
    assert_eq!(wrong.len(), 5);
    eventually("20 tasks done", Duration::from_secs(5), || async {
        h.fleet().completed() == 20
    })
    .await;
    let tampered = h.fleet().tampered();
    assert!(tampered
        .iter()
        .all(|t| t.what == TamperKind::CorruptedTraceId));
    assert_eq!(
        tampered
            .iter()
            .map(|t| t.task_id.clone())
            .collect::<HashSet<_>>(),
        wrong
    );
    h.finish().await;
}

// (5) ------------------------------------------------------------------

#[tokio::test]
async fn http_fault_switch_round_trip() {
    let h = harness(|_| {}).await;
    let get = || async {
        let r = h
            .http
            .get(format!("{}/faults", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()
    };
    assert_eq!(
        h.http
            .get(format!("{}/healthz", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(get().await, serde_json::json!([]));

    let put = h
        .http
        .put(format!("{}/faults/worker-crash", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let put = h
        .http
        .put(format!("{}/faults/drop-results", h.base))
        .json(&serde_json::json!({"every": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let expected =
        serde_json::json!([{"name": "worker-crash"}, {"name": "drop-results", "every": 3}]);
    assert_eq!(put.json::<serde_json::Value>().await.unwrap(), expected);
    assert_eq!(get().await, expected);
    assert_eq!(
        h.fleet().active_faults(),
        vec![
            FleetSwitch::WorkerCrash,
            FleetSwitch::DropResults { every: 3 }
        ]
    );

    // Every structural fault switches over HTTP, including the NATS ones.
    for fault in FleetSwitch::structural() {
        let url = format!("{}/faults/{fault}", h.base);
        assert_eq!(
            h.http.put(&url).send().await.unwrap().status(),
            200,
            "{fault}"
        );
        assert!(h.fleet().active_faults().contains(&fault));
        assert_eq!(
            h.http.delete(&url).send().await.unwrap().status(),
            200,
            "{fault}"
        );
        assert!(!h.fleet().active_faults().contains(&fault));
    }

    let del = h
        .http
        .delete(format!("{}/faults/drop-results", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(get().await, serde_json::json!([]));

    let unknown = h
        .http
        .put(format!("{}/faults/no-such-fault", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    let valid: Vec<&str> = body["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(valid.len(), 10);
    assert!(valid.contains(&"worker-image-tag") && valid.contains(&"corrupt-trace-ids"));
    assert!(body["error"].as_str().unwrap().contains("no-such-fault"));
    let del = h
        .http
        .delete(format!("{}/faults/no-such-fault", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);

    let bad = h
        .http
        .put(format!("{}/faults/drop-results", h.base))
        .json(&serde_json::json!({"every": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = h
        .http
        .put(format!("{}/faults/worker-crash", h.base))
        .json(&serde_json::json!({"every": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(get().await, serde_json::json!([]));
    h.finish().await;
}

// Capacity and lifecycle ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_in_flight() {
    let h = harness(|c| {
        c.concurrency = 10_000;
        c.cold_start = Duration::from_secs(3);
        c.work = Duration::ZERO;
    })
    .await;
    let mut sub = h
        .client
        .subscribe("firedrill.results.inflight")
        .await
        .unwrap();
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, true)
        .await
        .unwrap();
    h.publish(10_000, "firedrill.results.inflight", "load")
        .await;
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, false)
        .await
        .unwrap();

    let job = [("job_name", "daedalus-worker-copilot-0")];
    eventually("10 000 in flight", Duration::from_secs(3), || async {
        h.metric("kube_job_status_active", &job).await == Some(10_000.0)
    })
    .await;
    collect(&mut sub, 10_000, Duration::from_secs(30)).await;
    eventually("all acked", Duration::from_secs(10), || async {
        h.fleet().completed() == 10_000
    })
    .await;
    assert_eq!(h.metric("kube_job_status_active", &job).await, Some(0.0));
    h.finish().await;
}

/// Throughput with cold_start = work = 0: 10 000 tasks queued while the
/// workers are stopped, then timed from release to the last result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_10k_tasks() {
    let h = harness(|c| {
        c.concurrency = 1_000;
        c.cold_start = Duration::ZERO;
        c.work = Duration::ZERO;
    })
    .await;
    let n = 10_000;
    let mut sub = h.client.subscribe("firedrill.results.tput").await.unwrap();
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, true)
        .await
        .unwrap();
    h.publish(n, "firedrill.results.tput", "load").await;

    let start = Instant::now();
    h.fleet()
        .set_fault(FleetSwitch::ConsumerStop, false)
        .await
        .unwrap();
    collect(&mut sub, n, Duration::from_secs(60)).await;
    let elapsed = start.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();
    eprintln!("fleet throughput: {n} tasks in {elapsed:?} = {rate:.0} tasks/s");
    // A floor that holds in debug builds on a busy machine; the release
    // figure is what the report quotes.
    assert!(rate > 1_000.0, "{rate:.0} tasks/s");
    h.finish().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_tasks_finish() {
    let h = harness(|c| {
        c.cold_start = Duration::ZERO;
        c.work = Duration::from_millis(800);
    })
    .await;
    let mut sub = h
        .client
        .subscribe("firedrill.results.shutdown")
        .await
        .unwrap();
    h.publish(10, "firedrill.results.shutdown", "sentinel")
        .await;
    let job = [("job_name", "daedalus-worker-copilot-0")];
    eventually("10 running", Duration::from_secs(5), || async {
        h.metric("kube_job_status_active", &job).await == Some(10.0)
    })
    .await;
    let base = h.base.clone();
    let http = h.http.clone();
    // Shut the fleet down but keep nats-server (owned by the harness) up
    // until the results have reached the subscriber.
    let mut h = h;
    h.fleet.take().unwrap().shutdown().await;
    collect(&mut sub, 10, Duration::from_secs(2)).await;
    drop(h);
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "HTTP server closed"
    );
}

#[tokio::test]
async fn start_fails_clearly_without_nats() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = FleetConfig::for_tests(format!("nats://127.0.0.1:{port}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = Fleet::start(cfg, listener).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("nats-server"),
        "{msg}"
    );
}
