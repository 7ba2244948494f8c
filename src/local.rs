//! The local environment: the real stack plus the reference fleet, wired
//! together from the `local` target's spec.

use crate::error::Error;
use crate::fleet::{Fleet, FleetConfig};
use crate::spec::{FleetSpec, Target};
use crate::stack::{render_local_rules, LocalStack, ScrapeJob, StackOptions};
use std::time::Duration;

/// Prometheus job name of the OTel collector stand-in; the local rules'
/// `OTelCollectorDown` selects `up{job="otel-collector"}`.
pub const COLLECTOR_JOB: &str = "otel-collector";
/// Prometheus job name of the fleet's own metrics.
pub const FLEET_JOB: &str = "fleet";

pub struct LocalEnv {
    pub stack: LocalStack,
    pub fleet: Fleet,
}

impl LocalEnv {
    /// Starts nats-server, alertmanager and prometheus, then the fleet.
    /// Children started before a failure are stopped before returning.
    pub async fn start(target: &Target) -> Result<LocalEnv, Error> {
        Self::start_with(target, |_| {}).await
    }

    /// Like [`LocalEnv::start`], with a hook to adjust the fleet (benchmarks
    /// turn simulated cold start and work off).
    pub async fn start_with(
        target: &Target,
        adjust: impl FnOnce(&mut FleetConfig),
    ) -> Result<LocalEnv, Error> {
        let fleet_spec = target.fleet().ok_or_else(|| {
            Error::Usage(format!(
                "target `{}` is not a local-stack target (it has no `stack = \"local\"`); use --target local, or a target with a [targets.<name>.fleet] table",
                target.name
            ))
        })?;
        // Bound first: Prometheus needs the fleet's address before the fleet
        // can start (the fleet needs the NATS URL the stack hands out).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Local(format!("cannot bind a loopback port for the fleet: {e}; check that 127.0.0.1 is up and ports are free")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Local(format!("cannot read the fleet's port: {e}")))?
            .to_string();
        let rules_yaml = render_local_rules(&target.vars())?;
        let opts = StackOptions {
            scrape_jobs: scrape_jobs(&addr),
            rules_yaml,
            ..StackOptions::default()
        };
        let stack = LocalStack::start(opts).await?;
        let mut cfg = fleet_config(fleet_spec, &target.namespace, &stack.nats_url);
        adjust(&mut cfg);
        let fleet = match Fleet::start(cfg, listener).await {
            Ok(fleet) => fleet,
            Err(e) => {
                let _ = stack.shutdown().await;
                return Err(e.into());
            }
        };
        // The stack only waited for Prometheus to *try* the fleet (it was not
        // up yet); drills' preflight and criteria need its series in the TSDB.
        let prom = crate::clients::prometheus::Prometheus::new(&stack.prometheus_url);
        if !wait_for_first_scrape(&prom, Duration::from_secs(15)).await {
            tracing::warn!("Prometheus has not scraped the fleet successfully within 15 s");
        }
        Ok(LocalEnv { stack, fleet })
    }

    pub fn fleet_url(&self) -> String {
        format!("http://{}", self.fleet.http_addr())
    }

    /// The fleet's rehearsal of the Kubernetes API (same address as the fleet).
    pub fn kube_api_url(&self) -> String {
        self.fleet_url()
    }

    /// Access to [`LocalEnv::kube_api_url`] with the token the fleet issued.
    pub fn kube_access(&self) -> crate::drill::fault::kube::KubeAccess {
        crate::drill::fault::kube::KubeAccess::local_stack(
            &self.kube_api_url(),
            self.fleet.kube_token(),
        )
    }

    /// Stops the fleet, then the stack (children and temp dir). Returns one
    /// line per stack process that had already exited: a dependency the run
    /// lost, which makes its verdict `error`.
    pub async fn shutdown(mut self) -> Vec<String> {
        let lost = self.stack.exited_children();
        self.fleet.shutdown().await;
        if let Err(e) = self.stack.shutdown().await {
            tracing::warn!("local stack shutdown: {e}");
        }
        lost
    }
}

/// Prometheus' jobs for a fleet at `addr`: its own metrics, and its OTel
/// collector stand-in (which the local rules' `OTelCollectorDown` watches).
pub fn scrape_jobs(addr: &str) -> Vec<ScrapeJob> {
    vec![
        ScrapeJob {
            job_name: FLEET_JOB.into(),
            target: addr.to_string(),
            metrics_path: "/metrics".into(),
        },
        ScrapeJob {
            job_name: COLLECTOR_JOB.into(),
            target: addr.to_string(),
            metrics_path: "/collector/metrics".into(),
        },
    ]
}

/// The fleet's naming comes from the target's `[fleet]` table.
pub fn fleet_config(spec: &FleetSpec, namespace: &str, nats_url: &str) -> FleetConfig {
    FleetConfig {
        nats_url: nats_url.to_string(),
        stream: spec.stream.clone(),
        subjects: spec.subjects.clone(),
        consumer: spec.consumer.clone(),
        namespace: namespace.to_string(),
        agent_types: spec.agent_types.clone(),
        worker_pod_prefix: spec.worker_pod_prefix.clone(),
        orchestrator_deployment: spec.orchestrator_deployment.clone(),
        scaled_object: spec.scaled_object.clone(),
        worker_image: spec.worker_image.clone(),
        collector_deployment: spec.collector_deployment.clone(),
        kube_token: crate::fleet::config::random_token(),
        kube_read_only_token: None,
        concurrency: spec.concurrency as usize,
        cold_start: spec.cold_start,
        work: spec.work,
        record_task_ids: true,
        otlp_endpoint: None,
    }
}

/// Waits until Prometheus has scraped the fleet successfully at least once,
/// so criteria over the run window have a sample before the first sentinel.
pub async fn wait_for_first_scrape(
    prom: &crate::clients::prometheus::Prometheus,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let q = format!("up{{job=\"{FLEET_JOB}\"}} == 1");
    while tokio::time::Instant::now() < deadline {
        if let Ok(crate::clients::prometheus::QueryResult::Vector(v)) =
            prom.query(&q, chrono::Utc::now()).await
        {
            if !v.is_empty() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
