//! Steps shared by `smoke` and `run`: probes, settle, criteria, snapshot,
//! and publishing the report to GitHub.

use super::*;
use crate::accept::{
    decide_snapshot_criteria, run_criteria, runtime_vars, snapshot_name, SnapshotOutcome,
};
use crate::clients::grafana::GrafanaClient;
use crate::clients::prometheus::Prometheus;
use crate::probe::SentinelRef;
use crate::report::model::{CriterionResult, SnapshotSummary};
use std::time::Duration;

/// Runs every probe of the plan in turn, with a progress bar on a TTY.
pub async fn run_probes(
    global: &Global,
    client: &async_nats::Client,
    specs: &[&ProbeSpec],
    count: Option<usize>,
    concurrency: Option<usize>,
) -> Result<Vec<ProbeOutcome>, Error> {
    let mut outcomes = Vec::new();
    for spec in specs {
        let cfg = probe_config(spec, count, concurrency);
        let (progress, bar) = progress_bar(global, cfg.count, &cfg.name);
        let out = crate::probe::run_probe(client, &cfg, progress).await?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        outcomes.push(out);
    }
    Ok(outcomes)
}

/// Runs every `kind = "http"` probe in turn (they need no NATS).
pub async fn run_http_probes(
    specs: &[&crate::spec::http_probe::HttpProbeSpec],
    count: Option<usize>,
    concurrency: Option<usize>,
) -> Result<Vec<ProbeOutcome>, Error> {
    let http = http_probe_client()?;
    let mut outcomes = Vec::new();
    for spec in specs {
        let cfg = http_probe_config(spec, count, concurrency);
        outcomes.push(crate::probe::http::run_http_probe(&cfg, &http).await);
    }
    Ok(outcomes)
}

/// An HTTP probe's run settings: the spec, with CLI overrides.
pub fn http_probe_config(
    spec: &crate::spec::http_probe::HttpProbeSpec,
    count: Option<usize>,
    concurrency: Option<usize>,
) -> crate::probe::http::HttpProbeConfig {
    let mut cfg = spec.config.clone();
    if let Some(n) = count {
        cfg.count = n;
    }
    if let Some(c) = concurrency {
        cfg.concurrency = c;
    }
    cfg
}

/// The client HTTP probes send with (no proxy: probes go straight to the service).
pub fn http_probe_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!("firedrill/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
        .map_err(|e| Error::Local(format!("cannot build the HTTP probe client: {e}")))
}

/// The target's own trace backend (`jaeger_url`, else a deployed target's
/// `tempo_url`) and its name for the report; `None` without one.
pub fn trace_backend(
    target: &crate::spec::Target,
) -> Option<(crate::trace::collect::SpanSource, String)> {
    use crate::trace::collect::SpanSource;
    if let Some(jaeger) = &target.jaeger_url {
        return Some((
            SpanSource::Jaeger(crate::clients::jaeger::JaegerClient::new(jaeger.as_str())),
            format!("Jaeger {jaeger}"),
        ));
    }
    let tempo = target.remote().and_then(|r| r.tempo_url.as_ref())?;
    Some((
        SpanSource::Tempo(crate::clients::tempo::TempoClient::new(tempo.as_str())),
        format!("Tempo {tempo}"),
    ))
}

/// The first sentinel of the run, for `{{sentinel.*}}` templates.
pub fn first_sentinel(outcomes: &[ProbeOutcome]) -> Option<&SentinelRef> {
    outcomes.iter().find_map(|o| o.sentinel.as_ref())
}

/// Evaluates the plan's criteria over `window` at its end.
pub async fn accept(
    plan: &Plan,
    prom: &Prometheus,
    window: RunWindow,
    sentinel: Option<&SentinelRef>,
) -> Vec<CriterionResult> {
    let vars = runtime_vars(window, sentinel);
    run_criteria(prom, &plan.criteria, &plan.target, &vars, window).await
}

/// Creates the Grafana snapshot of the target's dashboard over the window,
/// when the target has a Grafana and a dashboard uid.
pub async fn snapshot(
    plan: &Plan,
    prom: &Prometheus,
    window: RunWindow,
    run_id: &str,
    uid: Option<&str>,
) -> SnapshotOutcome {
    let t = &plan.target;
    let remote = t.remote();
    let Some(grafana_url) = remote.and_then(|r| r.grafana_url.as_ref()) else {
        let why = if t.is_local() {
            " (the local stack runs no Grafana)"
        } else {
            ""
        };
        return SnapshotOutcome::NotConfigured(format!(
            "target `{}` has no grafana_url{why}; set grafana_url, grafana_token_env and dashboard_uid in its [targets.{}] table to get the snapshot",
            t.name, t.name
        ));
    };
    let Some(uid) = uid.or(t.dashboard_uid.as_deref()) else {
        return SnapshotOutcome::NotConfigured(format!(
            "target `{}` names no dashboard: set dashboard_uid in [targets.{}] to the fleet overview dashboard's uid",
            t.name, t.name
        ));
    };
    let client = match GrafanaClient::new(
        grafana_url.as_str(),
        remote.and_then(|r| r.grafana_token_env.as_deref()),
    ) {
        Ok(c) => c,
        Err(e) => return SnapshotOutcome::Failed(e.to_string()),
    };
    let vars = t.vars();
    let name = snapshot_name(uid, &t.name, run_id);
    // 0 = never expires: the snapshot is the run's proof.
    SnapshotOutcome::from(
        client
            .snapshot_run(prom, uid, window, &name, Duration::ZERO, &vars)
            .await,
    )
}

/// Configuration the snapshot step needs, checked before any network I/O:
/// a target naming a Grafana token env var that is unset or empty is a
/// usage error (exit 2), not a dependency failure found at the run's end.
pub fn check_grafana_token(target: &crate::spec::target::Target) -> Result<(), Error> {
    let Some(remote) = target.remote() else {
        return Ok(());
    };
    let (Some(url), Some(var)) = (&remote.grafana_url, &remote.grafana_token_env) else {
        return Ok(());
    };
    match GrafanaClient::new(url.as_str(), Some(var)) {
        Err(e @ crate::clients::grafana::GrafanaError::TokenUnset { .. }) => {
            Err(Error::Usage(format!("target `{}`: {e}", target.name)))
        }
        _ => Ok(()),
    }
}

/// Passes the snapshot's outcome to the criteria it decides (see
/// [`crate::accept::snapshot`]) and records the snapshot in the report.
pub fn apply_snapshot(report: &mut Report, plan: &Plan, outcome: &SnapshotOutcome, require: bool) {
    decide_snapshot_criteria(&mut report.criteria, &plan.criteria, outcome, require);
    if let SnapshotOutcome::Created(info) = outcome {
        report.snapshot = Some(SnapshotSummary {
            url: info.url.clone(),
            dashboard_uid: info.dashboard_uid.clone(),
            verified: info.verified,
            panels: info.panels,
            series: info.series,
            notes: info.notes.clone(),
            panel_data: info.panel_data.clone(),
            variables: info.variables.clone(),
            delete_url: Some(info.delete_url.clone()),
        });
    }
}

/// After the report is written: GitHub step summary and outputs (when the
/// env vars are set), the check run and the failure issue (when asked).
pub async fn publish_to_github(report: &Report, dir: &Path, check: bool, issue_on_failure: bool) {
    let report_md = dir.join("report.md");
    let files = crate::report::github::GithubFiles::from_env();
    if let Err(e) = crate::report::github::publish(report, &report_md, &files) {
        eprintln!("warning: cannot write the GitHub step summary/outputs: {e}");
    }
    if !check && !issue_on_failure {
        return;
    }
    let ctx = match crate::clients::github::GitHubContext::detect(|k| std::env::var(k).ok()) {
        Ok(ctx) => ctx,
        Err(why) => {
            eprintln!("notice: {why}");
            return;
        }
    };
    // The head and verdict table (every failing check's reason), cut at a
    // row under the check run's limit with a pointer to the artifact.
    let summary = crate::report::github::step_summary(
        report,
        &report_md.display().to_string(),
        crate::clients::github::SUMMARY_LIMIT,
    );
    if check {
        let title = format!("firedrill {}: {}", report.target.name, report.verdict);
        match crate::clients::github::create_check_run(
            &ctx,
            "firedrill acceptance",
            report.verdict,
            &title,
            &summary,
        )
        .await
        {
            Ok(info) => eprintln!(
                "check run {} created ({})",
                info.id,
                info.html_url.as_deref().unwrap_or("no URL")
            ),
            Err(e) => eprintln!(
                "warning: cannot create the check run: {}",
                crate::secrets::redact(&e.to_string())
            ),
        }
    }
    let failed_drill = report.drills.iter().any(|d| d.verdict == Verdict::Fail);
    if issue_on_failure && failed_drill {
        let title = format!("firedrill: drill failed on {}", report.target.name);
        let mut body = summary;
        if let Some(url) = ctx.run_url() {
            body.push_str(&format!("\nRun and report artifact: {url}\n"));
        }
        body.push_str(&format!("\nReport: `{}`\n", report_md.display()));
        match crate::clients::github::open_or_comment_issue(&ctx, &title, &body).await {
            Ok(o) => eprintln!("issue: {} ({:?})", o.url, o.action),
            Err(e) => eprintln!(
                "warning: cannot open or comment on the failure issue: {}",
                crate::secrets::redact(&e.to_string())
            ),
        }
    }
}

/// Everything a drill run needs from the live target.
pub struct DrillLive<'a> {
    pub prometheus: &'a str,
    pub alertmanager: Option<&'a str>,
    pub fleet_url: Option<String>,
    /// How `kubernetes-*` faults reach the API server.
    pub kube: crate::drill::fault::kube::KubeAccess,
    pub webhook: Option<&'a crate::stack::WebhookReceiver>,
    /// NATS, when a drill of the run triggers a probe.
    pub client: Option<async_nats::Client>,
}

/// The Kubernetes API a run's drills use: the local stack's rehearsal,
/// a target's `kube_api_url` (+ `kube_token_env`), or kubeconfig.
pub fn kube_access(
    target: &crate::spec::Target,
    env: Option<&crate::local::LocalEnv>,
) -> Result<crate::drill::fault::kube::KubeAccess, Error> {
    use crate::drill::fault::kube::KubeAccess;
    if let Some(env) = env {
        return Ok(env.kube_access());
    }
    match target.remote().and_then(|r| r.kube_api_url.as_ref()) {
        Some(url) => KubeAccess::from_target(
            url.as_str(),
            target.remote().and_then(|r| r.kube_token_env.as_deref()),
        )
        .map_err(|e| Error::Usage(format!("target `{}`: {e}", target.name))),
        None => Ok(KubeAccess::from_env()),
    }
}

/// How the drills of a run are run (`--trials`, `--parallel`, `--retry-serial`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DrillMode {
    pub trials: Option<u32>,
    pub parallel: bool,
    pub retry_serial: bool,
}

/// Runs the named drills (already checked by `plan_drills`) and returns
/// their results and exit code. Signals are the process' shared source, so
/// an interrupt reverts instead of killing.
pub async fn run_drills(
    global: &Global,
    plan: &Plan,
    specs: &[&crate::spec::DrillSpec],
    live: DrillLive<'_>,
    run_id: &str,
    mode: DrillMode,
) -> Result<crate::drill::DrillRun, crate::drill::DrillError> {
    use crate::drill::{fault::FaultContext, progress::ProgressSink, DrillEnv, TriggerSender};
    use futures::FutureExt;
    let faults = FaultContext::new(live.fleet_url.clone(), live.kube.clone());
    let mut env = DrillEnv::new(
        run_id,
        &global.reports_dir,
        &plan.target.name,
        plan.target.drills_allowed,
        Prometheus::new(live.prometheus),
        faults,
    );
    env.alertmanager = live
        .alertmanager
        .map(crate::clients::alertmanager::Alertmanager::new);
    env.notifications = live
        .webhook
        .map(|w| crate::drill::watch::forward(w.subscribe()));
    env.signals = crate::signals::source();
    env.progress = if global.ci {
        ProgressSink::Lines(std::sync::Arc::new(
            std::sync::Mutex::new(std::io::stderr()),
        ))
    } else {
        ProgressSink::detect()
    };
    env.options.trials = mode.trials;
    env.options.parallel = mode.parallel;
    env.options.retry_serial = mode.retry_serial;
    use crate::spec::AnyProbe;
    let plan_for_trigger = plan.clone();
    let client = live.client.clone();
    let trigger: TriggerSender = std::sync::Arc::new(move |t: &crate::spec::drill::Trigger| {
        let count = t.count.map(|c| c as usize);
        // What the trigger does, decided now from the probe's kind.
        enum Send {
            Nats(ProbeConfig),
            Http(crate::probe::http::HttpProbeConfig),
            Unknown,
        }
        let send = match plan_for_trigger.any_probe(&t.probe) {
            Some(AnyProbe::Nats(spec)) => Send::Nats(probe_config(spec, count, None)),
            Some(AnyProbe::Http(spec)) => Send::Http(http_probe_config(spec, count, None)),
            None => Send::Unknown,
        };
        let client = client.clone();
        async move {
            match send {
                // An HTTP probe's requests are the trigger: sent in the
                // background, not judged (the fault may well make them fail
                // or hang until their timeout), as a NATS trigger only
                // publishes.
                Send::Http(cfg) => {
                    let http = http_probe_client().map_err(|e| e.to_string())?;
                    tokio::spawn(async move {
                        crate::probe::http::run_http_probe(&cfg, &http).await;
                    });
                    Ok(())
                }
                Send::Nats(cfg) => {
                    let client = client.ok_or_else(|| {
                        format!(
                            "the trigger's probe \"{}\" needs NATS, and this run has no NATS connection",
                            cfg.name
                        )
                    })?;
                    crate::probe::publish_only(&client, &cfg).await.map(|_| ())
                }
                Send::Unknown => Err("the trigger's probe is not loaded".to_string()),
            }
        }
        .boxed()
    });
    env.trigger = Some(trigger);
    let specs: Vec<crate::spec::DrillSpec> = specs.iter().map(|s| (*s).clone()).collect();
    crate::drill::run_drills(&specs, &env).await
}

/// Alert coverage of the rules loaded in `prometheus` by `drills`, given
/// this run's `results`. A Prometheus that cannot list its rules gives
/// none, and says why.
pub async fn alert_coverage(
    prometheus: &str,
    drills: &[crate::spec::DrillSpec],
    results: &[crate::report::model::DrillResult],
    min_percent: Option<f64>,
) -> Result<crate::report::model::Coverage, String> {
    let groups = Prometheus::new(prometheus)
        .rules()
        .await
        .map_err(|e| format!("alert coverage: cannot list the alerting rules: {e}"))?;
    Ok(crate::drill::coverage::coverage(
        &groups,
        drills,
        results,
        min_percent,
    ))
}
