//! What the reference fleet connects to and what it pretends to be.
//!
//! Every name the fleet exposes (stream, consumer, namespace, pods, ...)
//! comes from here, so the same code can stand in for any platform whose
//! rules use the same metric families.

use std::time::Duration;

use super::FleetError;

/// Consumers are created with at least this `max_ack_pending`, so 10 000
/// tasks can be in flight with room to spare.
pub const MIN_MAX_ACK_PENDING: i64 = 20_000;

/// Configuration of a [`super::Fleet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// NATS server URL, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// JetStream stream holding the tasks, e.g. `DAEDALUS_TASKS`.
    pub stream: String,
    /// Subjects of that stream, e.g. `["daedalus.tasks.>"]` (used only when
    /// the fleet has to create the stream).
    pub subjects: Vec<String>,
    /// Durable pull consumer the workers share, e.g. `daedalus-workers`.
    pub consumer: String,
    /// Kubernetes namespace the fleet pretends to run in, e.g. `daedalus`.
    pub namespace: String,
    /// Agent types served, e.g. `["copilot"]`. Tasks for any other agent
    /// type are rejected as invalid (keeps the `agent_type` label bounded).
    pub agent_types: Vec<String>,
    /// Prefix of worker pod and job names: pods are
    /// `<worker_pod_prefix><agent_type>-<n>`.
    pub worker_pod_prefix: String,
    /// Name of the orchestrator Deployment, e.g. `daedalus-orchestrator`.
    pub orchestrator_deployment: String,
    /// `scaledObject` label of `keda_scaler_errors_total`, and the name of
    /// the worker ScaledJob the local Kubernetes API serves.
    pub scaled_object: String,
    /// The worker image the release runs; any other image in the
    /// ScaledJob is one the fleet cannot pull (ImagePullBackOff).
    pub worker_image: String,
    /// The OTel collector Deployment (in `namespace`); scaled to 0, its
    /// metrics endpoint stops answering.
    pub collector_deployment: String,
    /// Bearer token of the local Kubernetes API: may get and patch everything.
    pub kube_token: String,
    /// A second token that may only `get` (tests of RBAC refusals).
    pub kube_read_only_token: Option<String>,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Simulated per-task cold start (a ScaledJob starts one worker per message).
    pub cold_start: Duration,
    /// Simulated work per task.
    pub work: Duration,
    /// Label sentinel task durations with their `task_id` (at most
    /// [`super::metrics::MAX_TASK_ID_SERIES`] series are kept).
    pub record_task_ids: bool,
    /// OTLP/HTTP traces endpoint (`http://host:port/v1/traces`, JSON
    /// encoding) the workers export a span per hop to; `None` = no spans.
    pub otlp_endpoint: Option<String>,
}

impl FleetConfig {
    /// Small, quick defaults shaped like the Daedalus platform; tests
    /// override what they need.
    pub fn for_tests(nats_url: impl Into<String>) -> Self {
        FleetConfig {
            nats_url: nats_url.into(),
            stream: "DAEDALUS_TASKS".to_string(),
            subjects: vec!["daedalus.tasks.>".to_string()],
            consumer: "daedalus-workers".to_string(),
            namespace: "daedalus".to_string(),
            agent_types: vec!["copilot".to_string()],
            worker_pod_prefix: "daedalus-worker-".to_string(),
            orchestrator_deployment: "daedalus-orchestrator".to_string(),
            scaled_object: "daedalus-worker-copilot".to_string(),
            worker_image: "ghcr.io/daedalus/worker:1.0.0".to_string(),
            collector_deployment: "otel-collector".to_string(),
            kube_token: random_token(),
            kube_read_only_token: None,
            concurrency: 64,
            cold_start: Duration::from_millis(10),
            work: Duration::from_millis(10),
            record_task_ids: true,
            otlp_endpoint: None,
        }
    }

    /// The consumer's `max_ack_pending`: room for every running task twice over.
    pub fn max_ack_pending(&self) -> i64 {
        let twice = i64::try_from(self.concurrency.saturating_mul(2)).unwrap_or(i64::MAX);
        twice.max(MIN_MAX_ACK_PENDING)
    }

    /// Rejects configurations the fleet cannot run with.
    pub fn validate(&self) -> Result<(), FleetError> {
        let bad = |field: &'static str, reason: &str| {
            Err(FleetError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        for (field, value) in [
            ("nats_url", &self.nats_url),
            ("stream", &self.stream),
            ("consumer", &self.consumer),
            ("namespace", &self.namespace),
            ("worker_pod_prefix", &self.worker_pod_prefix),
            ("orchestrator_deployment", &self.orchestrator_deployment),
            ("scaled_object", &self.scaled_object),
            ("worker_image", &self.worker_image),
            ("collector_deployment", &self.collector_deployment),
            ("kube_token", &self.kube_token),
        ] {
            if value.trim().is_empty() {
                return bad(field, "must not be empty");
            }
        }
        // JetStream names may not contain these (they become subject tokens).
        for (field, value) in [("stream", &self.stream), ("consumer", &self.consumer)] {
            if value.contains(['.', '*', '>', ' ', '\t']) {
                return bad(field, "must not contain '.', '*', '>' or whitespace");
            }
        }
        if self.subjects.is_empty() || self.subjects.iter().any(|s| s.trim().is_empty()) {
            return bad("subjects", "needs at least one non-empty subject");
        }
        if self.agent_types.is_empty() || self.agent_types.iter().any(|a| a.trim().is_empty()) {
            return bad("agent_types", "needs at least one non-empty agent type");
        }
        if self.concurrency == 0 || self.concurrency > tokio::sync::Semaphore::MAX_PERMITS {
            return bad(
                "concurrency",
                "must be at least 1 and at most tokio's semaphore limit",
            );
        }
        Ok(())
    }
}

/// A fresh bearer token for the local Kubernetes API (128 random bits, hex).
pub fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_tests_is_valid() {
        FleetConfig::for_tests("nats://127.0.0.1:4222")
            .validate()
            .unwrap();
    }

    #[test]
    fn max_ack_pending_has_a_floor_and_scales() {
        let mut cfg = FleetConfig::for_tests("x");
        assert_eq!(cfg.max_ack_pending(), 20_000);
        cfg.concurrency = 50_000;
        assert_eq!(cfg.max_ack_pending(), 100_000);
    }

    #[test]
    fn rejects_bad_fields() {
        type Edit = fn(&mut FleetConfig);
        let cases: [(&str, Edit); 6] = [
            ("stream", |c| c.stream = String::new()),
            ("stream", |c| c.stream = "A.B".into()),
            ("consumer", |c| c.consumer = "a b".into()),
            ("subjects", |c| c.subjects.clear()),
            ("agent_types", |c| c.agent_types = vec![" ".into()]),
            ("concurrency", |c| c.concurrency = 0),
        ];
        for (field, edit) in cases {
            let mut cfg = FleetConfig::for_tests("nats://127.0.0.1:4222");
            edit(&mut cfg);
            match cfg.validate() {
                Err(FleetError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected a config error, got {other:?}"),
            }
        }
    }
}
