//! One function per subcommand: load the plan, run the runners, build the
//! report, write it. Returns the exit code.

pub mod accept;
pub mod baseline;
pub mod bench;
pub mod bench_http;
pub mod coverage;
pub mod drill;
pub mod fleet;
pub mod merge;
pub mod pipeline;
pub mod probe;
pub mod recover;
pub mod run;
pub mod smoke;
pub mod snapshot;
pub mod stack;
pub mod trace_audit;
pub mod validate;

use crate::cli::Global;
use crate::error::Error;
use crate::probe::{ProbeConfig, ProbeOutcome};
use crate::report::model::{ProbeResult, Report, RunWindow, TargetInfo};
use crate::report::Verdict;
use crate::spec::{load_plan, LoadOptions, Plan, ProbeSpec, Target};
use std::path::{Path, PathBuf};

/// Loads and validates every spec for `target` before any network I/O.
pub fn load(global: &Global, target: &str) -> Result<Plan, Error> {
    load_parts(global, target, crate::spec::Parts::ALL)
}

/// [`load`], reading only the spec folders in `parts` (a command that uses
/// no drills does not fail on a drill another platform wrote).
pub fn load_parts(global: &Global, target: &str, parts: crate::spec::Parts) -> Result<Plan, Error> {
    let mut opts = LoadOptions::new(target);
    opts.parts = parts;
    opts.vars = global.vars.iter().cloned().collect();
    // Only paths the user named explicitly must exist; defaults may be absent
    // (then the built-in local target and sentinel probe are used).
    opts.config = explicit(&global.config, "firedrill.toml");
    opts.probes_dir = explicit(&global.probes_dir, "probes");
    opts.acceptance_dir = explicit(&global.acceptance_dir, "acceptance");
    opts.drills_dir = explicit(&global.drills_dir, "induced-failures");
    Ok(load_plan(&opts)?)
}

fn explicit(given: &Path, default: &str) -> Option<PathBuf> {
    (given != Path::new(default)).then(|| given.to_path_buf())
}

/// The probe's run settings: the spec, with CLI overrides.
pub fn probe_config(
    spec: &ProbeSpec,
    count: Option<usize>,
    concurrency: Option<usize>,
) -> ProbeConfig {
    ProbeConfig {
        name: spec.name.clone(),
        stream: spec.stream.clone(),
        subject: spec.subject.clone(),
        result_subject: spec.result_subject.clone(),
        agent_type: spec.agent_type.clone(),
        count: count.unwrap_or(spec.count as usize),
        concurrency: concurrency.unwrap_or(spec.concurrency as usize),
        timeout: spec.timeout,
        payload: spec.payload.clone(),
    }
}

/// The report's view of a target; URLs of a local stack are the live ones.
pub fn target_info(
    target: &Target,
    nats_url: &str,
    prometheus: Option<&str>,
    alertmanager: Option<&str>,
) -> TargetInfo {
    let remote = target.remote();
    TargetInfo {
        name: target.name.clone(),
        description: target.description.clone(),
        kind: if target.is_local() {
            "local".into()
        } else {
            "remote".into()
        },
        namespace: target.namespace.clone().unwrap_or_default(),
        nats_url: nats_url.to_string(),
        prometheus_url: prometheus.map(str::to_string),
        alertmanager_url: alertmanager.map(str::to_string),
        grafana_url: remote
            .and_then(|r| r.grafana_url.as_ref())
            .map(|u| u.to_string()),
    }
}

/// A fresh report with nothing run yet.
pub fn new_report(command: &str, run_id: &str, target: TargetInfo, window: RunWindow) -> Report {
    Report {
        schema_version: crate::report::model::SCHEMA_VERSION,
        run_id: run_id.to_string(),
        command: command.to_string(),
        tool: crate::runinfo::tool_info(),
        target,
        window,
        verdict: Verdict::Pass,
        probes: Vec::new(),
        criteria: Vec::new(),
        drills: Vec::new(),
        errors: Vec::new(),
        interrupted: false,
        snapshot: None,
        criteria_window: None,
        validation: Vec::new(),
        routes: Vec::new(),
        trace_audit: None,
        coverage: None,
        inputs: Vec::new(),
        baseline: None,
        drill_groups: Vec::new(),
    }
}

pub fn probe_results(outcomes: Vec<ProbeOutcome>) -> Vec<ProbeResult> {
    outcomes
        .into_iter()
        .map(ProbeResult::from_outcome)
        .collect()
}

/// Writes every format into `<reports_dir>/<run-id>/` and prints where.
pub fn write_report(report: &mut Report, reports_dir: &Path) -> Result<PathBuf, Error> {
    report.redact_secrets();
    report.close_pending();
    report.verdict = report.compute_verdict();
    let dir = reports_dir.join(&report.run_id);
    let written =
        crate::report::write::write_all(report, &dir).map_err(|source| Error::ReportWrite {
            path: dir.clone(),
            source,
        })?;
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    Ok(dir)
}

/// Writes the report, prints the verdict line, returns the exit code: the
/// tail every report-writing command shares.
pub fn finish(report: &mut Report, reports_dir: &Path) -> Result<crate::exit::ExitCode, Error> {
    let dir = write_report(report, reports_dir)?;
    print_verdict(report, &dir);
    Ok(exit_code_for(report))
}

pub fn print_verdict(report: &Report, dir: &Path) {
    println!(
        "verdict: {}  report: {}",
        report.verdict,
        dir.join("report.md").display()
    );
}

/// The exit code a finished report calls for.
/// Records stack processes that died during the run. A drill that failed
/// while its stack was losing a process measured a broken stack, not the
/// alerting: its verdict becomes `error` (exit 3) with the reason kept.
pub fn record_lost_dependencies(report: &mut Report, lost: Vec<String>) {
    if lost.is_empty() {
        return;
    }
    let why = lost.join("; ");
    for d in &mut report.drills {
        for t in d.trials.iter_mut().filter(|t| t.verdict == Verdict::Fail) {
            t.verdict = Verdict::Error;
            t.reason = format!(
                "a dependency was lost during the run; without that: {}",
                t.reason
            );
        }
        if d.verdict == Verdict::Fail {
            d.verdict = Verdict::Error;
            d.reason = format!(
                "a dependency was lost during the run ({why}), so this cannot count as a fail; without that: {}",
                d.reason
            );
        }
    }
    report
        .errors
        .extend(lost.into_iter().map(|l| format!("lost a dependency: {l}")));
}

pub fn exit_code_for(report: &Report) -> crate::exit::ExitCode {
    crate::exit::for_report(report)
}

/// A progress callback drawing an indicatif bar, or `None` in CI / off a TTY.
pub fn progress_bar(
    global: &Global,
    total: usize,
    what: &str,
) -> (
    Option<crate::probe::run::SettledFn>,
    Option<indicatif::ProgressBar>,
) {
    use std::io::IsTerminal;
    if global.ci || !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, {elapsed})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    let b = bar.clone();
    (
        Some(std::sync::Arc::new(move |n| b.set_position(n))),
        Some(bar),
    )
}

/// The live endpoints of a run: the local stack's, or the remote target's.
pub struct Live {
    /// `None`: the target has no NATS.
    pub nats_url: Option<String>,
    pub nats_creds_env: Option<String>,
    pub prometheus: String,
    pub alertmanager: Option<String>,
}

impl Live {
    pub fn of(target: &Target, env: Option<&crate::local::LocalEnv>) -> Live {
        match (env, target.remote()) {
            (Some(env), _) => Live {
                nats_url: env.stack.nats_url.clone(),
                nats_creds_env: None,
                prometheus: env.stack.prometheus_url.clone(),
                alertmanager: Some(env.stack.alertmanager_url.clone()),
            },
            (None, Some(r)) => Live {
                nats_url: r.nats_url.as_ref().map(|u| u.to_string()),
                nats_creds_env: r.nats_creds_env.clone(),
                prometheus: r.prometheus_url.to_string(),
                alertmanager: r.alertmanager_url.as_ref().map(|u| u.to_string()),
            },
            (None, None) => unreachable!("a local target always runs with its LocalEnv"),
        }
    }

    /// Connects to NATS for `why` (e.g. `probe "sentinel"`); a target
    /// without NATS is a usage error naming `why` and the fix.
    pub async fn nats(&self, target: &Target, why: &str) -> Result<async_nats::Client, Error> {
        let Some(url) = &self.nats_url else {
            let fix = if target.is_local() {
                "a [fleet] table (the local stack starts nats-server only for the reference fleet)"
            } else {
                "nats_url"
            };
            return Err(Error::Usage(format!(
                "{why} needs NATS, but target `{}` has none; add {fix} to {}",
                target.name,
                target.table()
            )));
        };
        Ok(crate::clients::nats::connect(url, self.nats_creds_env.as_deref()).await?)
    }

    pub fn target_info(&self, target: &Target) -> TargetInfo {
        target_info(
            target,
            self.nats_url.as_deref().unwrap_or_default(),
            Some(&self.prometheus),
            self.alertmanager.as_deref(),
        )
    }
}

/// Starts the local stack and fleet when the target is local (a signal
/// while starting stops everything started so far).
pub async fn start_local(target: &Target) -> Result<Option<crate::local::LocalEnv>, Error> {
    start_local_with(target, None).await
}

/// [`start_local`], with the fleet exporting spans to `otlp_endpoint`.
pub async fn start_local_with(
    target: &Target,
    otlp_endpoint: Option<String>,
) -> Result<Option<crate::local::LocalEnv>, Error> {
    if !target.is_local() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    if target.fleet().is_some() {
        eprintln!(
            "starting the local stack (nats-server, alertmanager, prometheus) and the reference fleet…"
        );
    } else {
        eprintln!("starting the local stack (alertmanager, prometheus)…");
    }
    let env = tokio::select! {
        env = crate::local::LocalEnv::start_with(target, |c| c.otlp_endpoint = otlp_endpoint) => env?,
        sig = crate::signals::shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let mut line = format!("stack up in {:.1} s:", started.elapsed().as_secs_f64());
    if let Some(nats) = &env.stack.nats_url {
        line.push_str(&format!(" NATS {nats} "));
    }
    line.push_str(&format!(
        " Prometheus {}  Alertmanager {}",
        env.stack.prometheus_url, env.stack.alertmanager_url
    ));
    if let Some(fleet) = env.fleet_url() {
        line.push_str(&format!("  fleet {fleet}"));
    }
    eprintln!("{line}");
    Ok(Some(env))
}
