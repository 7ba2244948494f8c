//! The reference worker fleet: stands in for the cluster in the local stack.
//!
//! Real JetStream consumers run tasks and publish [`ResultEnvelope`]s with
//! the task's `trace_id`; `/metrics` exposes the families the platform's
//! rules use (daedalus_*, kube-state-metrics, nats-surveyor and KEDA
//! shaped); a switch per [`FleetSwitch`] makes every structural alert drillable
//! against a real Prometheus and Alertmanager.
//!
//! [`ResultEnvelope`]: crate::probe::envelope::ResultEnvelope

pub mod cluster;
pub mod config;
pub mod faults;
mod http;
pub mod kube_api;
pub mod metrics;
mod spans;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::{self, ConsumerErrorKind, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

pub use config::FleetConfig;
pub use faults::{FleetSwitch, ParseFaultError, TamperKind, Tampered};

use faults::{FaultSwitches, TamperLog, MAX_TAMPERED};
use metrics::{FleetMetrics, NatsView};
use worker::{PullCtl, PullerState};

/// How long the fleet waits for in-flight tasks on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pause (ConsumerStop, StreamUnhealthy) may take to take effect.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a shutdown waits to flush NATS.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on reading JetStream state for one scrape.
const SCRAPE_NATS_TIMEOUT: Duration = Duration::from_secs(3);

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the reference fleet; each says what failed, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet config: `{field}` {reason}; fix the fleet settings and start again")]
    Config { field: &'static str, reason: String },

    #[error(
        "fleet: cannot connect to NATS at {url}: {source}; check that nats-server is running \
         with JetStream enabled (-js) and reachable from here"
    )]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },

    #[error(
        "fleet: cannot get or create JetStream stream `{stream}` (subjects {subjects:?}): \
         {source}; check JetStream is enabled and no other stream already claims those subjects"
    )]
    Stream {
        stream: String,
        subjects: Vec<String>,
        #[source]
        source: BoxError,
    },

    #[error(
        "fleet: cannot {action} durable consumer `{consumer}` on stream `{stream}`: {source}; \
         check NATS is reachable and the stream exists (`nats consumer info {stream} {consumer}`)"
    )]
    Consumer {
        action: &'static str,
        stream: String,
        consumer: String,
        #[source]
        source: BoxError,
    },

    #[error("fleet: HTTP listener: {source}; bind a fresh TcpListener and start again")]
    Http {
        #[source]
        source: std::io::Error,
    },
}

/// State shared by the puller, the tasks, the ticker and the HTTP handlers.
/// The response header of `GET /healthz` naming this fleet process, so a
/// journaled fault is reverted only on the instance it was injected into.
pub const INSTANCE_HEADER: &str = "x-firedrill-fleet-instance";

pub(crate) struct Shared {
    /// Unique per fleet start (pid, start time, a counter): see [`INSTANCE_HEADER`].
    instance: String,
    cfg: FleetConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    metrics: FleetMetrics,
    faults: FaultSwitches,
    tampered: TamperLog,
    completed: AtomicU64,
    started: Instant,
    permits: Arc<Semaphore>,
    /// `None` only while StreamUnhealthy has deleted it.
    consumer: Mutex<Option<PullConsumer>>,
    pull_ctl: watch::Sender<PullCtl>,
    puller_state: watch::Receiver<PullerState>,
    /// Serialises fault changes (StreamUnhealthy does NATS I/O).
    fault_lock: tokio::sync::Mutex<()>,
    /// Client for span export, when `cfg.otlp_endpoint` is set.
    otlp: Option<reqwest::Client>,
    /// Stream sequence the durable consumer resumes at after stream-unhealthy.
    resume_seq: Mutex<Option<u64>>,
    /// The rehearsed cluster's Kubernetes API (see [`cluster`]).
    kube: Arc<kube_api::KubeApi>,
    /// The last [`kube_api::KubeApi::changes`] version the fleet has acted on.
    reconciled: watch::Sender<u64>,
}

impl Shared {
    /// Waits (bounded) until the fleet has acted on every write to its
    /// Kubernetes API so far, so a write's answer means the rehearsed
    /// cluster has reacted (a drill's trigger then meets the fault).
    pub(crate) async fn kube_settled(&self) {
        let target = *self.kube.changes().borrow();
        let mut done = self.reconciled.subscribe();
        if tokio::time::timeout(PAUSE_TIMEOUT, done.wait_for(|v| *v >= target))
            .await
            .is_err()
        {
            tracing::warn!(
                "fleet did not act on Kubernetes change {target} within {PAUSE_TIMEOUT:?}"
            );
        }
    }
}

impl Shared {
    fn consumer(&self) -> Option<PullConsumer> {
        self.consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_consumer(&self, consumer: Option<PullConsumer>) {
        *self.consumer.lock().unwrap_or_else(|e| e.into_inner()) = consumer;
    }

    /// Tells the puller whether to run, and when pausing waits until it
    /// has no pull request open.
    async fn apply_pull(&self, exit: bool) {
        let run = !exit
            && !self.faults.is_on(FleetSwitch::ConsumerStop)
            && !self.faults.is_on(FleetSwitch::StreamUnhealthy);
        let mut epoch = 0;
        self.pull_ctl.send_modify(|c| {
            c.epoch += 1;
            c.run = run;
            c.exit |= exit;
            epoch = c.epoch;
        });
        if run {
            return;
        }
        let mut state = self.puller_state.clone();
        let paused = tokio::time::timeout(
            PAUSE_TIMEOUT,
            state.wait_for(|s| match s {
                PullerState::Idle { epoch: seen } => *seen >= epoch,
                PullerState::Exited => true,
                PullerState::Pulling => false,
            }),
        )
        .await;
        if !matches!(paused, Ok(Ok(_))) {
            tracing::warn!("fleet puller did not pause within {PAUSE_TIMEOUT:?}");
        }
    }

    async fn set_fault(&self, fault: FleetSwitch, on: bool) -> Result<(), FleetError> {
        let _serial = self.fault_lock.lock().await;
        match fault {
            FleetSwitch::ConsumerStop => {
                self.faults.set(fault, on);
                self.apply_pull(false).await;
            }
            FleetSwitch::StreamUnhealthy if on => {
                if !self.faults.set(fault, true) {
                    return Ok(());
                }
                self.apply_pull(false).await;
                if let Err(e) = self.delete_consumer().await {
                    self.faults.set(fault, false);
                    self.apply_pull(false).await;
                    return Err(e);
                }
            }
            FleetSwitch::StreamUnhealthy => {
                if !self.faults.is_on(fault) {
                    return Ok(());
                }
                // The fault stays on if the consumer cannot be recreated.
                // It starts where the deleted one stopped, so every task
                // published while it was gone is still delivered.
                let resume = *self.resume_seq.lock().unwrap_or_else(|e| e.into_inner());
                let consumer = ensure_consumer_from(&self.js, &self.cfg, resume).await?;
                self.set_consumer(Some(consumer));
                self.faults.set(fault, false);
                self.apply_pull(false).await;
            }
            _ => {
                self.faults.set(fault, on);
            }
        }
        tracing::info!(fault = %fault, on, "fleet fault switched");
        Ok(())
    }

    /// Deletes the durable consumer only when it holds nothing (every task
    /// delivered has been acked and none waits), remembering where to
    /// resume; refuses otherwise.
    async fn delete_consumer(&self) -> Result<(), FleetError> {
        let consumer_err = |source: BoxError| FleetError::Consumer {
            action: "delete",
            stream: self.cfg.stream.clone(),
            consumer: self.cfg.consumer.clone(),
            source,
        };
        if let Some(mut consumer) = self.consumer() {
            // In-flight tasks finish and ack within the pause timeout.
            let deadline = Instant::now() + PAUSE_TIMEOUT;
            loop {
                let info = consumer
                    .info()
                    .await
                    .map_err(|e| consumer_err(Box::new(e)))?;
                let held = info.num_pending + info.num_ack_pending as u64;
                if held == 0 {
                    *self.resume_seq.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(info.delivered.stream_sequence + 1);
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(consumer_err(
                        format!(
                            "it still holds {held} message(s) ({} waiting, {} unacknowledged); \
                             a consumer holding messages is never deleted, so stream-unhealthy was not injected. \
                             Retry once the workers have drained it",
                            info.num_pending, info.num_ack_pending
                        )
                        .into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.set_consumer(None);
        match self
            .js
            .delete_consumer_from_stream(&self.cfg.consumer, &self.cfg.stream)
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::JetStream(ref j)
                    if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) =>
            {
                Ok(())
            }
            Err(e) => Err(FleetError::Consumer {
                action: "delete",
                stream: self.cfg.stream.clone(),
                consumer: self.cfg.consumer.clone(),
                source: Box::new(e),
            }),
        }
    }

    /// Live JetStream state for `/metrics`; `None` if it cannot be read.
    async fn nats_view(&self) -> Option<NatsView> {
        let read = async {
            let stream = match self.js.get_stream(&self.cfg.stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(stream = %self.cfg.stream, "scrape: cannot read stream: {e}");
                    return None;
                }
            };
            let backlog = match stream.consumer_info(&self.cfg.consumer).await {
                Ok(info) => Some(info.num_pending.saturating_add(info.num_ack_pending as u64)),
                Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => None,
                Err(e) => {
                    tracing::warn!(consumer = %self.cfg.consumer, "scrape: cannot read consumer: {e}");
                    return None;
                }
            };
            // Read the stream after the consumer, so a deleted consumer is
            // never reported with a stale non-zero count.
            let info = stream.get_info().await.ok()?;
            Some(NatsView {
                stream_messages: info.state.messages,
                consumer_count: info.state.consumer_count as u64,
                consumer_backlog: backlog,
            })
        };
        tokio::time::timeout(SCRAPE_NATS_TIMEOUT, read)
            .await
            .ok()
            .flatten()
    }
}

fn consumer_config(cfg: &FleetConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(cfg.consumer.clone()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        // A fleet on a shared NATS must never replay history.
        deliver_policy: DeliverPolicy::New,
        max_ack_pending: cfg.max_ack_pending(),
        ..Default::default()
    }
}

async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &FleetConfig,
) -> Result<stream::Stream, FleetError> {
    let stream_err = |source: BoxError| FleetError::Stream {
        stream: cfg.stream.clone(),
        subjects: cfg.subjects.clone(),
        source,
    };
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: cfg.stream.clone(),
            subjects: cfg.subjects.clone(),
            // Limits, not WorkQueue: acked tasks stay, so total_messages > 0.
            retention: RetentionPolicy::Limits,
            max_age: Duration::from_secs(3600),
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| stream_err(Box::new(e)))?;
    let info = stream.info().await.map_err(|e| stream_err(Box::new(e)))?;
    if info.config.retention != RetentionPolicy::Limits {
        tracing::warn!(
            stream = %cfg.stream,
            "existing stream does not use Limits retention; nats_stream_total_messages may read 0 after acks"
        );
    }
    Ok(stream)
}

async fn ensure_consumer(
    js: &jetstream::Context,
    cfg: &FleetConfig,
) -> Result<PullConsumer, FleetError> {
    ensure_consumer_from(js, cfg, None).await
}

/// Gets or creates the durable consumer; a new one starts at stream
/// sequence `start` when given (else only new messages).
async fn ensure_consumer_from(
    js: &jetstream::Context,
    cfg: &FleetConfig,
    start: Option<u64>,
) -> Result<PullConsumer, FleetError> {
    let consumer_err = |source: BoxError| FleetError::Consumer {
        action: "get or create",
        stream: cfg.stream.clone(),
        consumer: cfg.consumer.clone(),
        source,
    };
    let stream = js
        .get_stream(&cfg.stream)
        .await
        .map_err(|e| consumer_err(Box::new(e)))?;
    stream
        .get_or_create_consumer::<pull::Config>(&cfg.consumer, {
            let mut c = consumer_config(cfg);
            if let Some(start_sequence) = start {
                c.deliver_policy = DeliverPolicy::ByStartSequence { start_sequence };
            }
            c
        })
        .await
        .map_err(|e| consumer_err(Box::new(e)))
}

/// Makes the fleet behave as the cluster's objects say, after every write
/// to the local Kubernetes API (and once at start).
async fn run_reconcile(shared: Arc<Shared>) {
    let mut changes = shared.kube.changes();
    loop {
        let version = *changes.borrow_and_update();
        let wanted = shared
            .kube
            .with_store(|store| cluster::observe(&shared.cfg, store.objects()));
        for (switch, on) in wanted {
            if shared.faults.is_on(switch) != on {
                if let Err(e) = shared.set_fault(switch, on).await {
                    tracing::warn!(fault = %switch, on, "fleet cannot follow the cluster objects: {e}");
                }
            }
        }
        // As the Deployment controller would: status follows spec.replicas.
        for name in [
            &shared.cfg.orchestrator_deployment,
            &shared.cfg.collector_deployment,
        ] {
            let replicas = shared.kube.with_store(|s| {
                s.get("apps/v1", "deployments", &shared.cfg.namespace, name)
                    .and_then(|d| {
                        d.pointer("/spec/replicas")
                            .and_then(serde_json::Value::as_i64)
                    })
            });
            if let Some(n) = replicas {
                let status =
                    serde_json::json!({"replicas": n, "readyReplicas": n, "availableReplicas": n});
                let _ = shared.kube.set_status(
                    "apps/v1",
                    "deployments",
                    &shared.cfg.namespace,
                    name,
                    status,
                );
            }
        }
        shared.reconciled.send_replace(version);
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// The 1 s clock behind the counters that grow while a fault is on.
async fn run_ticker(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        if shared.faults.is_on(FleetSwitch::WorkerCrash) {
            shared.metrics.restart_workers();
        }
        if shared.faults.is_on(FleetSwitch::KedaError) {
            shared.metrics.keda_error();
        }
    }
}

/// A running reference fleet. Call [`Fleet::shutdown`] to stop it cleanly;
/// dropping it aborts its tasks.
pub struct Fleet {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    http_stop: watch::Sender<bool>,
    puller: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    reconcile: Option<JoinHandle<()>>,
    http: Option<JoinHandle<()>>,
}

impl Fleet {
    /// Connects to NATS, gets or creates the stream and the durable pull
    /// consumer, and starts the workers and the HTTP server on `listener`
    /// (bound by the caller, who needs the address before starting
    /// Prometheus).
    pub async fn start(
        cfg: FleetConfig,
        listener: tokio::net::TcpListener,
    ) -> Result<Fleet, FleetError> {
        cfg.validate()?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| FleetError::Http { source })?;
        let client = crate::clients::nats::options("firedrill-fleet")
            .connect(cfg.nats_url.as_str())
            .await
            .map_err(|source| FleetError::Connect {
                url: cfg.nats_url.clone(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        ensure_stream(&js, &cfg).await?;
        let consumer = ensure_consumer(&js, &cfg).await?;

        let (pull_ctl, ctl_rx) = watch::channel(PullCtl {
            run: true,
            exit: false,
            epoch: 0,
        });
        let (state_tx, puller_state) = watch::channel(PullerState::Pulling);
        let otlp = cfg
            .otlp_endpoint
            .as_ref()
            .map(|_| crate::clients::http::client(Duration::from_secs(10)));
        static STARTS: AtomicU64 = AtomicU64::new(0);
        let instance = format!(
            "{}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros(),
            STARTS.fetch_add(1, Ordering::Relaxed)
        );
        let mut store = kube_api::KubeStore::new();
        for object in cluster::seed(&cfg) {
            store.insert(object).map_err(|e| FleetError::Config {
                field: "kube objects",
                reason: e.to_string(),
            })?;
        }
        let mut tokens = vec![(
            cfg.kube_token.clone(),
            vec![kube_api::Grant {
                verbs: vec!["*".into()],
                resources: vec!["*".into()],
            }],
        )];
        if let Some(t) = &cfg.kube_read_only_token {
            tokens.push((
                t.clone(),
                vec![kube_api::Grant {
                    verbs: vec!["get".into()],
                    resources: vec!["*".into()],
                }],
            ));
        }
        let kube = kube_api::KubeApi::new(store, tokens);
        let shared = Arc::new(Shared {
            kube,
            reconciled: watch::channel(0).0,
            instance,
            metrics: FleetMetrics::new(&cfg),
            permits: Arc::new(Semaphore::new(cfg.concurrency)),
            cfg,
            client,
            js,
            faults: FaultSwitches::default(),
            tampered: TamperLog::new(MAX_TAMPERED),
            completed: AtomicU64::new(0),
            started: Instant::now(),
            consumer: Mutex::new(Some(consumer)),
            pull_ctl,
            puller_state,
            fault_lock: tokio::sync::Mutex::new(()),
            otlp,
            resume_seq: Mutex::new(None),
        });

        let puller = tokio::spawn(worker::run_puller(shared.clone(), ctl_rx, state_tx));
        let ticker = tokio::spawn(run_ticker(shared.clone()));
        let reconcile = tokio::spawn(run_reconcile(shared.clone()));
        let (http_stop, mut stop_rx) = watch::channel(false);
        let app = http::router(shared.clone());
        let http = tokio::spawn(async move {
            let stop = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!("fleet HTTP server failed: {e}");
            }
        });
        tracing::info!(%http_addr, stream = %shared.cfg.stream, consumer = %shared.cfg.consumer, "fleet started");
        Ok(Fleet {
            shared,
            http_addr,
            http_stop,
            puller: Some(puller),
            ticker: Some(ticker),
            reconcile: Some(reconcile),
            http: Some(http),
        })
    }

    /// Where `/metrics`, `/collector/metrics`, `/faults` and the local
    /// Kubernetes API are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The fleet's NATS connection: a probe in the same process may share
    /// it (one connection for tasks and results, as a bare consumer has).
    pub fn nats_client(&self) -> async_nats::Client {
        self.shared.client.clone()
    }

    /// The bearer token of the local Kubernetes API (all verbs).
    pub fn kube_token(&self) -> &str {
        &self.shared.cfg.kube_token
    }

    /// Requests the local Kubernetes API has served so far.
    pub fn kube_calls(&self) -> u64 {
        self.shared.kube.calls()
    }

    /// A copy of one object of the local Kubernetes API, as a GET would return it.
    pub fn kube_object(
        &self,
        group_version: &str,
        plural: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        self.shared.kube.with_store(|s| {
            s.get(group_version, plural, &self.shared.cfg.namespace, name)
                .cloned()
        })
    }

    /// Turns a fault on or off. Idempotent. Returns once the fault is in
    /// effect (e.g. the workers have stopped pulling, the consumer is gone).
    pub async fn set_fault(&self, fault: FleetSwitch, on: bool) -> Result<(), FleetError> {
        self.shared.set_fault(fault, on).await
    }

    /// Faults currently on, in [`faults::FAULT_NAMES`] order.
    pub fn active_faults(&self) -> Vec<FleetSwitch> {
        self.shared.faults.active()
    }

    /// Tasks whose results were dropped or corrupted on purpose (the most
    /// recent [`faults::MAX_TAMPERED`]).
    pub fn tampered(&self) -> Vec<Tampered> {
        self.shared.tampered.snapshot()
    }

    /// Tasks run to completion and acked (invalid messages excluded).
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }

    /// Stops pulling, lets in-flight tasks finish (up to 5 s), flushes
    /// NATS and closes the HTTP server.
    pub async fn shutdown(mut self) {
        self.shared.apply_pull(true).await;
        if let Some(puller) = self.puller.take() {
            let _ = tokio::time::timeout(PAUSE_TIMEOUT, puller).await;
        }
        let all = u32::try_from(self.shared.cfg.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(DRAIN_TIMEOUT, self.shared.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("fleet shutdown: tasks still running after {DRAIN_TIMEOUT:?}");
        }
        // Bounded: with NATS gone, flush waits for a reconnect forever.
        match tokio::time::timeout(FLUSH_TIMEOUT, self.shared.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("fleet shutdown: cannot flush NATS: {e}"),
            Err(_) => tracing::warn!(
                "fleet shutdown: NATS flush did not finish within {FLUSH_TIMEOUT:?} (is nats-server gone?)"
            ),
        }
        for task in [self.ticker.take(), self.reconcile.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        let _ = self.http_stop.send(true);
        if let Some(mut http) = self.http.take() {
            if tokio::time::timeout(Duration::from_secs(2), &mut http)
                .await
                .is_err()
            {
                http.abort();
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for handle in [
            self.puller.take(),
            self.ticker.take(),
            self.reconcile.take(),
            self.http.take(),
        ]
        .into_iter()
        .flatten()
        {
            handle.abort();
        }
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("http_addr", &self.http_addr)
            .field("stream", &self.shared.cfg.stream)
            .field("consumer", &self.shared.cfg.consumer)
            .field("active_faults", &self.active_faults())
            .finish()
    }
}
