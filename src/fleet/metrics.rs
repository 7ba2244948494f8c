//! The fleet's `/metrics`: the families the platform's rules and
//! dashboards use, with the real exporters' names and labels.
//!
//! - `daedalus_*` — what the workers record themselves (always `agent_type`).
//! - `kube_*` — shaped like kube-state-metrics.
//! - `nats_*` — shaped like nats-surveyor, from live JetStream state read
//!   at scrape time ([`NatsView`]).
//! - `keda_scaler_errors_total` — shaped like KEDA's operator metrics.
//!
//! Rendering ([`render`]) is pure: it takes the recorded families plus a
//! view of the simulated cluster and of JetStream and returns the text.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::config::FleetConfig;

/// Exposition names, exactly as the platform's rules and dashboards spell them.
pub const COLD_START_SECONDS: &str = "daedalus_cold_start_seconds";
pub const TASK_DURATION_SECONDS: &str = "daedalus_task_duration_seconds";
pub const TASKS_TOTAL: &str = "daedalus_tasks_total";
pub const POD_WAITING_REASON: &str = "kube_pod_container_status_waiting_reason";
pub const POD_RESTARTS_TOTAL: &str = "kube_pod_container_status_restarts_total";
pub const DEPLOYMENT_REPLICAS_AVAILABLE: &str = "kube_deployment_status_replicas_available";
pub const JOB_STATUS_ACTIVE: &str = "kube_job_status_active";
pub const CONSUMER_NUM_PENDING: &str = "nats_consumer_num_pending";
pub const STREAM_CONSUMER_COUNT: &str = "nats_stream_consumer_count";
pub const STREAM_TOTAL_MESSAGES: &str = "nats_stream_total_messages";
pub const KEDA_SCALER_ERRORS_TOTAL: &str = "keda_scaler_errors_total";

/// What `/metrics` answers with (prometheus-client writes OpenMetrics).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram buckets for cold start and task duration, in seconds: fine
/// below a second for local runs, and up to 1800 s so a p99 around the
/// 1500 s acceptance threshold is resolvable.
pub const SECONDS_BUCKETS: [f64; 20] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    900.0, 1200.0, 1500.0, 1800.0,
];

/// At most this many sentinel `task_id` series are kept; older ones are removed.
pub const MAX_TASK_ID_SERIES: usize = 1000;

/// Label value used when a message is too broken to name its agent type,
/// or names one the fleet does not serve (keeps `agent_type` bounded).
pub const UNKNOWN_AGENT_TYPE: &str = "unknown";

/// Container name of the simulated worker pods.
pub const WORKER_CONTAINER: &str = "worker";

/// KEDA scaler type of the simulated ScaledObject.
pub const KEDA_SCALER: &str = "nats-jetstream";

/// Label pairs in exposition order.
pub type Labels = Vec<(&'static str, String)>;

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Prometheus-client registers counters without `_total` and appends it.
fn counter_base(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// `<prefix><agent_type>-<n>`, the ScaledJob pod and job naming.
pub fn worker_name(prefix: &str, agent_type: &str, n: usize) -> String {
    format!("{prefix}{agent_type}-{n}")
}

/// Task outcome, the `status` label of `daedalus_tasks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Succeeded,
    Failed,
    Invalid,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Invalid => "invalid",
        }
    }
}

/// Keeps the `cap` most recently inserted keys; inserting a new key past
/// the cap evicts (and returns) the oldest.
#[derive(Debug)]
pub(crate) struct BoundedSet<K> {
    cap: usize,
    order: VecDeque<K>,
    members: HashSet<K>,
}

impl<K: Clone + Eq + Hash> BoundedSet<K> {
    pub(crate) fn new(cap: usize) -> Self {
        BoundedSet {
            cap,
            order: VecDeque::new(),
            members: HashSet::new(),
        }
    }

    pub(crate) fn insert(&mut self, key: K) -> Option<K> {
        if self.cap == 0 || !self.members.insert(key.clone()) {
            return None;
        }
        self.order.push_back(key);
        if self.order.len() > self.cap {
            let evicted = self.order.pop_front()?;
            self.members.remove(&evicted);
            return Some(evicted);
        }
        None
    }
}

/// Handles to one agent type's series, resolved once so the hot path does
/// not hash label sets.
#[derive(Debug, Clone)]
pub(crate) struct AgentMetrics {
    pub(crate) cold_start: Histogram,
    /// `task_id=""`: every task not labelled with its own id.
    pub(crate) duration: Histogram,
    pub(crate) succeeded: Counter,
    pub(crate) failed: Counter,
    pub(crate) invalid: Counter,
    pub(crate) in_flight: Gauge,
    pub(crate) restarts: Counter,
}

impl AgentMetrics {
    pub(crate) fn count(&self, status: TaskStatus) {
        match status {
            TaskStatus::Succeeded => self.succeeded.inc(),
            TaskStatus::Failed => self.failed.inc(),
            TaskStatus::Invalid => self.invalid.inc(),
        };
    }
}

/// Simulated Kubernetes state that is not a recorded counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KubeView {
    pub image_pull_backoff: bool,
    pub orchestrator_down: bool,
}

/// Live JetStream state, as nats-surveyor would report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatsView {
    /// `state.messages` of the stream.
    pub stream_messages: u64,
    /// `state.consumer_count` of the stream.
    pub consumer_count: u64,
    /// The durable consumer's backlog: `num_pending + num_ack_pending`
    /// (not yet delivered plus delivered but not acknowledged). `None`
    /// when the consumer does not exist, so no series is exported for it.
    pub consumer_backlog: Option<u64>,
}

/// Every series the fleet records, plus the names it reports under.
#[derive(Debug)]
pub(crate) struct FleetMetrics {
    namespace: String,
    stream: String,
    consumer: String,
    orchestrator: String,
    /// (agent type, pod name), in config order.
    pods: Vec<(String, String)>,
    cold_start: HistogramFamily,
    duration: HistogramFamily,
    tasks: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    jobs_active: Family<Labels, Gauge>,
    keda_errors: Family<Labels, Counter>,
    keda: Counter,
    agents: HashMap<String, AgentMetrics>,
    task_id_series: Mutex<BoundedSet<Labels>>,
}

impl FleetMetrics {
    pub(crate) fn new(cfg: &FleetConfig) -> Self {
        let cold_start = HistogramFamily::new_with_constructor(seconds_histogram);
        let duration = HistogramFamily::new_with_constructor(seconds_histogram);
        let tasks = Family::<Labels, Counter>::default();
        let restarts = Family::<Labels, Counter>::default();
        let jobs_active = Family::<Labels, Gauge>::default();
        let keda_errors = Family::<Labels, Counter>::default();

        let mut agents = HashMap::new();
        let mut pods = Vec::new();
        for agent_type in &cfg.agent_types {
            let pod = worker_name(&cfg.worker_pod_prefix, agent_type, 0);
            let agent = || ("agent_type", agent_type.clone());
            let status = |s: TaskStatus| {
                tasks
                    .get_or_create(&vec![agent(), ("status", s.as_str().to_string())])
                    .clone()
            };
            let handles = AgentMetrics {
                cold_start: cold_start.get_or_create(&vec![agent()]).clone(),
                duration: duration
                    .get_or_create(&vec![agent(), ("task_id", String::new())])
                    .clone(),
                succeeded: status(TaskStatus::Succeeded),
                failed: status(TaskStatus::Failed),
                invalid: status(TaskStatus::Invalid),
                in_flight: jobs_active
                    .get_or_create(&vec![
                        ("namespace", cfg.namespace.clone()),
                        // One job per agent type whose active count is the
                        // number of tasks in flight.
                        ("job_name", pod.clone()),
                    ])
                    .clone(),
                restarts: restarts
                    .get_or_create(&vec![
                        ("namespace", cfg.namespace.clone()),
                        ("pod", pod.clone()),
                        ("container", WORKER_CONTAINER.to_string()),
                    ])
                    .clone(),
            };
            agents.insert(agent_type.clone(), handles);
            pods.push((agent_type.clone(), pod));
        }
        let keda = keda_errors
            .get_or_create(&vec![
                ("namespace", cfg.namespace.clone()),
                ("scaledObject", cfg.scaled_object.clone()),
                ("scaler", KEDA_SCALER.to_string()),
            ])
            .clone();

        FleetMetrics {
            namespace: cfg.namespace.clone(),
            stream: cfg.stream.clone(),
            consumer: cfg.consumer.clone(),
            orchestrator: cfg.orchestrator_deployment.clone(),
            pods,
            cold_start,
            duration,
            tasks,
            restarts,
            jobs_active,
            keda_errors,
            keda,
            agents,
            task_id_series: Mutex::new(BoundedSet::new(MAX_TASK_ID_SERIES)),
        }
    }

    /// The served agent type's handles; `None` for any other agent type.
    pub(crate) fn agent(&self, agent_type: &str) -> Option<&AgentMetrics> {
        self.agents.get(agent_type)
    }

    /// Counts a message that is not a task the fleet can run.
    pub(crate) fn count_invalid(&self, agent_type: Option<&str>) {
        match agent_type.and_then(|a| self.agents.get(a)) {
            Some(agent) => agent.count(TaskStatus::Invalid),
            // Created on the first broken message, so a clean run has no
            // `agent_type="unknown"` series.
            None => {
                let labels = vec![
                    ("agent_type", UNKNOWN_AGENT_TYPE.to_string()),
                    ("status", TaskStatus::Invalid.as_str().to_string()),
                ];
                self.tasks.get_or_create(&labels).inc();
            }
        }
    }

    /// Observes a task's duration, under its own `task_id` series when
    /// given (keeping at most [`MAX_TASK_ID_SERIES`] of those).
    pub(crate) fn observe_duration(
        &self,
        agent_type: &str,
        agent: &AgentMetrics,
        task_id: Option<&str>,
        seconds: f64,
    ) {
        let Some(task_id) = task_id else {
            agent.duration.observe(seconds);
            return;
        };
        let labels = vec![
            ("agent_type", agent_type.to_string()),
            ("task_id", task_id.to_string()),
        ];
        let evicted = self
            .task_id_series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(labels.clone());
        if let Some(old) = evicted {
            self.duration.remove(&old);
        }
        self.duration.get_or_create(&labels).observe(seconds);
    }

    /// One restart of every worker pod (the WorkerCrash fault's tick).
    pub(crate) fn restart_workers(&self) {
        for agent in self.agents.values() {
            agent.restarts.inc();
        }
    }

    /// One KEDA scaler error (the KedaError fault's tick).
    pub(crate) fn keda_error(&self) {
        self.keda.inc();
    }

    /// The worker pod of a served agent type.
    pub(crate) fn worker_pod(&self, agent_type: &str) -> Option<&str> {
        self.pods
            .iter()
            .find(|(a, _)| a == agent_type)
            .map(|(_, pod)| pod.as_str())
    }
}

fn gauge_family(series: impl IntoIterator<Item = (Labels, i64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in series {
        family.get_or_create(&labels).set(value);
    }
    family
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Renders the whole exposition: recorded families, the simulated cluster
/// (`kube`), and JetStream (`nats`, `None` if it could not be read — the
/// `nats_*` families are then left out, as when surveyor is down).
pub(crate) fn render(m: &FleetMetrics, kube: KubeView, nats: Option<NatsView>) -> String {
    let mut r = Registry::default();
    r.register(
        COLD_START_SECONDS,
        "Worker cold start: from task delivery to worker ready",
        m.cold_start.clone(),
    );
    r.register(
        TASK_DURATION_SECONDS,
        "Task duration measured by the worker, cold start excluded",
        m.duration.clone(),
    );
    r.register(
        counter_base(TASKS_TOTAL),
        "Tasks finished, by status (succeeded, failed, invalid)",
        m.tasks.clone(),
    );
    // Exposed at 0 while healthy (as the capture exporter does) so the
    // metric exists before a drill: a rule over a metric with no series at
    // all is the seed's "silently never fires" class, and preflight checks it.
    let waiting_value = i64::from(kube.image_pull_backoff);
    let waiting = gauge_family(m.pods.iter().map(|(_, pod)| {
        let labels = vec![
            ("namespace", m.namespace.clone()),
            ("pod", pod.clone()),
            ("container", WORKER_CONTAINER.to_string()),
            ("reason", "ImagePullBackOff".to_string()),
        ];
        (labels, waiting_value)
    }));
    r.register(
        POD_WAITING_REASON,
        "Describes the reason the container is currently in waiting state",
        waiting,
    );
    r.register(
        counter_base(POD_RESTARTS_TOTAL),
        "The number of container restarts per container",
        m.restarts.clone(),
    );
    // Scaled to 0, kube-state-metrics reports 0 available replicas.
    let labels = vec![
        ("namespace", m.namespace.clone()),
        ("deployment", m.orchestrator.clone()),
    ];
    r.register(
        DEPLOYMENT_REPLICAS_AVAILABLE,
        "The number of available replicas per deployment",
        gauge_family([(labels, i64::from(!kube.orchestrator_down))]),
    );
    r.register(
        JOB_STATUS_ACTIVE,
        "The number of actively running pods",
        m.jobs_active.clone(),
    );
    if let Some(nats) = nats {
        if let Some(backlog) = nats.consumer_backlog {
            let labels = vec![
                ("stream", m.stream.clone()),
                ("consumer_name", m.consumer.clone()),
            ];
            r.register(
                CONSUMER_NUM_PENDING,
                "Messages not yet acknowledged by the consumer (num_pending + num_ack_pending)",
                gauge_family([(labels, clamp(backlog))]),
            );
        }
        let stream = || vec![("stream", m.stream.clone())];
        r.register(
            STREAM_CONSUMER_COUNT,
            "Number of consumers on the stream",
            gauge_family([(stream(), clamp(nats.consumer_count))]),
        );
        r.register(
            STREAM_TOTAL_MESSAGES,
            "Messages stored in the stream",
            gauge_family([(stream(), clamp(nats.stream_messages))]),
        );
    }
    r.register(
        counter_base(KEDA_SCALER_ERRORS_TOTAL),
        "Number of scaler errors",
        m.keda_errors.clone(),
    );

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sample = (String, Vec<(String, String)>, f64);

    /// Parses `name{k="v",...} value` lines (no escapes needed here).
    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let value: f64 = value.parse().unwrap();
                match series.split_once('{') {
                    None => (series.to_string(), vec![], value),
                    Some((name, rest)) => {
                        let labels = rest
                            .trim_end_matches('}')
                            .split(',')
                            .map(|kv| {
                                let (k, v) = kv.split_once('=').unwrap();
                                (k.to_string(), v.trim_matches('"').to_string())
                            })
                            .collect();
                        (name.to_string(), labels, value)
                    }
                }
            })
            .collect()
    }

    fn find<'a>(s: &'a [Sample], name: &str) -> Vec<&'a Sample> {
        s.iter().filter(|(n, _, _)| n == name).collect()
    }

    /// Label names, sorted (the encoder puts `le` first; order is irrelevant).
    fn keys(labels: &[(String, String)]) -> Vec<&str> {
        let mut keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys
    }

    fn metrics() -> FleetMetrics {
        FleetMetrics::new(&FleetConfig::for_tests("nats://x"))
    }

    #[test]
    fn worker_names() {
        assert_eq!(
            worker_name("daedalus-worker-", "copilot", 0),
            "daedalus-worker-copilot-0"
        );
    }

    #[test]
    fn bounded_set_evicts_oldest_once() {
        let mut set = BoundedSet::new(2);
        assert_eq!(set.insert("a"), None);
        assert_eq!(set.insert("b"), None);
        assert_eq!(set.insert("a"), None, "re-inserting is not new");
        assert_eq!(set.insert("c"), Some("a"));
        assert_eq!(set.insert("d"), Some("b"));
        assert_eq!(set.insert("a"), Some("c"));
    }

    #[test]
    fn healthy_exposition_has_every_family_with_its_labels() {
        let m = metrics();
        let text = render(
            &m,
            KubeView::default(),
            Some(NatsView {
                stream_messages: 7,
                consumer_count: 1,
                consumer_backlog: Some(3),
            }),
        );
        assert!(text.ends_with("# EOF\n"));
        let s = samples(&text);
        let expect: [(&str, &[&str]); 10] = [
            ("daedalus_cold_start_seconds_bucket", &["agent_type", "le"]),
            (
                "daedalus_task_duration_seconds_bucket",
                &["agent_type", "le", "task_id"],
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
        for (name, label_keys) in expect {
            let found = find(&s, name);
            assert!(!found.is_empty(), "{name} missing in\n{text}");
            for (_, labels, _) in found {
                assert_eq!(keys(labels), label_keys, "{name}");
            }
        }
        let waiting = find(&s, POD_WAITING_REASON);
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].2, 0.0, "healthy pods are not waiting");
        assert_eq!(find(&s, CONSUMER_NUM_PENDING)[0].2, 3.0);
        assert_eq!(find(&s, STREAM_TOTAL_MESSAGES)[0].2, 7.0);
        // Three statuses exist from the start, at zero.
        assert_eq!(find(&s, TASKS_TOTAL).len(), 3);
        // The `unknown` agent type appears only once a broken message came.
        assert!(!text.contains("unknown"));
    }

    #[test]
    fn kube_view_toggles_series() {
        let m = metrics();
        let s = samples(&render(
            &m,
            KubeView {
                image_pull_backoff: true,
                orchestrator_down: true,
            },
            None,
        ));
        let waiting = find(&s, POD_WAITING_REASON);
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            waiting[0].1,
            vec![
                ("namespace".to_string(), "daedalus".to_string()),
                ("pod".to_string(), "daedalus-worker-copilot-0".to_string()),
                ("container".to_string(), "worker".to_string()),
                ("reason".to_string(), "ImagePullBackOff".to_string()),
            ]
        );
        assert_eq!(waiting[0].2, 1.0);
        let available = find(&s, DEPLOYMENT_REPLICAS_AVAILABLE);
        assert_eq!(available.len(), 1);
        assert_eq!(available[0].2, 0.0, "scaled to zero reads 0, not absent");
        assert!(find(&s, STREAM_CONSUMER_COUNT).is_empty(), "no NATS view");
    }

    #[test]
    fn missing_consumer_exports_no_backlog() {
        let m = metrics();
        let s = samples(&render(
            &m,
            KubeView::default(),
            Some(NatsView {
                stream_messages: 5,
                consumer_count: 0,
                consumer_backlog: None,
            }),
        ));
        assert!(find(&s, CONSUMER_NUM_PENDING).is_empty());
        assert_eq!(find(&s, STREAM_CONSUMER_COUNT)[0].2, 0.0);
    }

    #[test]
    fn sentinel_task_id_series_are_bounded() {
        let m = metrics();
        let agent = m.agent("copilot").unwrap().clone();
        for i in 0..(MAX_TASK_ID_SERIES + 5) {
            m.observe_duration("copilot", &agent, Some(&format!("t{i}")), 0.1);
        }
        m.observe_duration("copilot", &agent, None, 0.1);
        let s = samples(&render(&m, KubeView::default(), None));
        let counts = find(&s, "daedalus_task_duration_seconds_count");
        // The kept ids plus the untagged series.
        assert_eq!(counts.len(), MAX_TASK_ID_SERIES + 1);
        let has = |id: &str| {
            counts
                .iter()
                .any(|(_, l, _)| l.iter().any(|(k, v)| k == "task_id" && v == id))
        };
        assert!(!has("t0") && !has("t4"));
        assert!(has("t5") && has(&format!("t{}", MAX_TASK_ID_SERIES + 4)));
    }

    #[test]
    fn counters_and_invalid_for_unknown_agents() {
        let m = metrics();
        let agent = m.agent("copilot").unwrap();
        agent.count(TaskStatus::Succeeded);
        agent.count(TaskStatus::Succeeded);
        m.count_invalid(None);
        m.count_invalid(Some("not-served"));
        m.restart_workers();
        m.keda_error();
        let s = samples(&render(&m, KubeView::default(), None));
        let value = |name: &str, pairs: &[(&str, &str)]| {
            find(&s, name)
                .into_iter()
                .find(|(_, l, _)| {
                    pairs
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(
            value(
                TASKS_TOTAL,
                &[("agent_type", "copilot"), ("status", "succeeded")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                TASKS_TOTAL,
                &[("agent_type", "unknown"), ("status", "invalid")]
            ),
            Some(2.0)
        );
        assert_eq!(value(POD_RESTARTS_TOTAL, &[]), Some(1.0));
        assert_eq!(
            value(KEDA_SCALER_ERRORS_TOTAL, &[("scaler", "nats-jetstream")]),
            Some(1.0)
        );
    }
}
