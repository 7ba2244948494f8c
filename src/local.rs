//! The local environment: the real stack plus, for a target with a
//! `[fleet]` table, the reference fleet, wired together from the target's
//! spec. A target without a fleet gets Prometheus and Alertmanager only,
//! with its own rule files and scrape jobs.

use crate::error::Error;
use crate::fleet::{Fleet, FleetConfig};
use crate::spec::{FleetSpec, LocalSpec, Target};
use crate::stack::{render_local_rules, rules::render_rules, LocalStack, ScrapeJob, StackOptions};

/// Prometheus job name of the fleet's own metrics.
pub const FLEET_JOB: &str = "fleet";

pub struct LocalEnv {
    pub stack: LocalStack,
    /// `None` for a local-stack target without a `[fleet]` table.
    pub fleet: Option<Fleet>,
}

impl LocalEnv {
    /// Starts the stack (and the fleet, when the target has one).
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
        let local = target.local().ok_or_else(|| {
            Error::Usage(format!(
                "target `{}` is not a local-stack target (it has no `stack = \"local\"`); use --target local, or a target with stack = \"local\"",
                target.name
            ))
        })?;
        let vars = target.vars();
        let mut rules = Vec::new();
        for file in &local.rules {
            let name = file.path.display().to_string();
            let text = render_rules(&name, &file.text, &vars)?;
            rules.push((name, text));
        }
        let mut scrape_jobs = target_scrape_jobs(local, &vars)?;
        let Some(fleet_spec) = &local.fleet else {
            let opts = StackOptions {
                scrape_jobs,
                rules,
                nats: false,
                ..StackOptions::default()
            };
            let stack = LocalStack::start(opts).await?;
            return Ok(LocalEnv { stack, fleet: None });
        };
        // Bound first: Prometheus needs the fleet's address before the fleet
        // can start (the fleet needs the NATS URL the stack hands out).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Local(format!("cannot bind a loopback port for the fleet: {e}; check that 127.0.0.1 is up and ports are free")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Local(format!("cannot read the fleet's port: {e}")))?
            .to_string();
        if rules.is_empty() {
            rules.push((
                "rules/local-structural.yml".to_string(),
                render_local_rules(&vars)?,
            ));
        }
        let fleet_jobs = scrape_jobs_for_fleet(fleet_spec, &addr);
        let healthy_jobs = fleet_jobs.iter().map(|j| j.job_name.clone()).collect();
        scrape_jobs.extend(fleet_jobs);
        let opts = StackOptions {
            scrape_jobs,
            rules,
            healthy_jobs,
            ..StackOptions::default()
        };
        // The fleet starts while Prometheus waits for its first discovery
        // tick, so that first scrape finds it serving; the stack opens
        // only once it has been scraped successfully.
        let starting = LocalStack::launch(opts).await?;
        let nats_url = starting.nats_url().unwrap_or_default().to_string();
        let mut cfg = fleet_config(
            fleet_spec,
            target.namespace.as_deref().unwrap_or_default(),
            &nats_url,
        );
        adjust(&mut cfg);
        // A failure drops `starting`, which kills the children.
        let fleet = Fleet::start(cfg, listener).await?;
        let stack = match starting.ready().await {
            Ok(stack) => stack,
            Err(e) => {
                fleet.shutdown().await;
                return Err(e.into());
            }
        };
        Ok(LocalEnv {
            stack,
            fleet: Some(fleet),
        })
    }

    /// The fleet's address, when there is a fleet.
    pub fn fleet_url(&self) -> Option<String> {
        self.fleet
            .as_ref()
            .map(|f| format!("http://{}", f.http_addr()))
    }

    /// Access to the fleet's rehearsal of the Kubernetes API (same address
    /// as the fleet) with the token it issued; without a fleet, kubeconfig.
    pub fn kube_access(&self) -> crate::drill::fault::kube::KubeAccess {
        match (&self.fleet, self.fleet_url()) {
            (Some(fleet), Some(url)) => {
                crate::drill::fault::kube::KubeAccess::local_stack(&url, fleet.kube_token())
            }
            _ => crate::drill::fault::kube::KubeAccess::from_env(),
        }
    }

    /// Stops the fleet, then the stack (children and temp dir). Returns one
    /// line per stack process that had already exited: a dependency the run
    /// lost, which makes its verdict `error`.
    pub async fn shutdown(mut self) -> Vec<String> {
        let lost = self.stack.exited_children();
        if let Some(fleet) = self.fleet.take() {
            fleet.shutdown().await;
        }
        if let Err(e) = self.stack.shutdown().await {
            tracing::warn!("local stack shutdown: {e}");
        }
        lost
    }
}

/// The target's own `[[scrape]]` jobs, `{{variables}}` rendered.
fn target_scrape_jobs(
    local: &LocalSpec,
    vars: &crate::spec::Vars,
) -> Result<Vec<ScrapeJob>, Error> {
    local
        .scrape
        .iter()
        .map(|s| {
            let targets = s
                .targets
                .iter()
                .map(|t| {
                    crate::spec::template::render(t, vars).map_err(|missing| {
                        Error::Usage(format!(
                            "scrape job `{}`: target {t:?} uses `{missing}`, which has no value; set it in the target's [variables] or with --var {missing}=...",
                            s.job
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ScrapeJob {
                job_name: s.job.clone(),
                targets,
                metrics_path: s.metrics_path.clone(),
            })
        })
        .collect()
}

/// Prometheus' jobs for a fleet at `addr`: its own metrics, and its OTel
/// collector stand-in, scraped as job `<collector_deployment>` (which the
/// shipped rules' collector-down alert watches).
pub fn scrape_jobs_for_fleet(spec: &FleetSpec, addr: &str) -> Vec<ScrapeJob> {
    vec![
        ScrapeJob {
            job_name: FLEET_JOB.into(),
            targets: vec![addr.to_string()],
            metrics_path: "/metrics".into(),
        },
        ScrapeJob {
            job_name: spec.collector_deployment.clone(),
            targets: vec![addr.to_string()],
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
