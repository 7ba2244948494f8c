//! `firedrill trace-audit`: sentinels, their spans, a verdict per task.

use super::*;
use crate::cli::TraceAuditArgs;
use crate::clients::jaeger::JaegerClient;
use crate::clients::nats;
use crate::clients::tempo::TempoClient;
use crate::exit::ExitCode;
use crate::fleet::FleetSwitch;
use crate::local::LocalEnv;
use crate::model::trace::{TraceAuditSummary, TraceTree};
use crate::signals::shutdown_signal;
use crate::spec::{builtin_trace_tree, load_trace_tree, AnyProbe, TREE_FILE};
use crate::trace::collect::{audit_tasks, SpanSource};
use crate::trace::receiver::OtlpReceiver;
use crate::trace::summarize;
use chrono::Utc;
use std::time::Instant;

pub async fn run(global: &Global, args: &TraceAuditArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            probes: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    let tree = load_tree(&plan, global, args)?;
    // The probe named, else the first NATS probe, else the first HTTP one.
    let chosen = match &args.probe {
        Some(name) => Some(plan.any_probe(name).ok_or_else(|| {
            Error::Usage(format!(
                "no probe named `{name}` for target `{}`; known probes: {}",
                plan.target.name,
                plan.probe_names().join(", ")
            ))
        })?),
        None => plan
            .probes
            .first()
            .map(AnyProbe::Nats)
            .or_else(|| plan.http_probes.first().map(AnyProbe::Http)),
    };
    let spec = match chosen {
        // An HTTP probe's requests, audited through the target's own
        // trace backend.
        Some(AnyProbe::Http(spec)) => return run_http(global, args, &plan, &tree, spec).await,
        Some(AnyProbe::Nats(spec)) => spec,
        None => {
            return Err(Error::Usage(format!(
                "trace-audit sends a probe's requests or sentinels, and no probe is loaded for target `{}`; add a probe (*.toml) to the probes directory (--probes-dir, or probes_dir in {})",
                plan.target.name,
                plan.target.table()
            )))
        }
    };
    if args.tasks == 0 {
        return Err(Error::Usage("--tasks must be at least 1".into()));
    }
    let faults = args
        .fleet_fault
        .iter()
        .map(|f| f.parse::<FleetSwitch>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Usage(e.to_string()))?;
    if !faults.is_empty() && !plan.target.is_local() {
        return Err(Error::Usage(
            "--fleet-fault only applies to a local target (the reference fleet)".into(),
        ));
    }
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);
    let mut cfg = probe_config(spec, Some(args.tasks), Some(args.tasks));
    cfg.name = format!("{}-trace-audit", spec.name);

    let (env, receiver) = if plan.target.is_local() {
        eprintln!(
            "starting the local stack, fleet and OTLP receiver for target `{}`…",
            plan.target.name
        );
        let receiver = OtlpReceiver::start().await.map_err(|e| {
            Error::Local(format!("cannot start the OTLP receiver on 127.0.0.1: {e}; check that loopback ports are free"))
        })?;
        let endpoint = receiver.endpoint();
        let env = tokio::select! {
            env = LocalEnv::start_with(&plan.target, |c| c.otlp_endpoint = Some(endpoint)) => env?,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        };
        let Some(fleet) = env.fleet.as_ref() else {
            return Err(Error::Usage(format!(
                "trace-audit publishes sentinels over NATS to the reference fleet, and target `{}` has no [fleet] table; add one to {}",
                plan.target.name,
                plan.target.table()
            )));
        };
        for f in &faults {
            fleet.set_fault(*f, true).await?;
        }
        (Some(env), Some(receiver))
    } else {
        (None, None)
    };
    let (nats_url, creds, source, source_name) = match (&env, &receiver, plan.target.remote()) {
        (Some(env), Some(rx), _) => (
            env.stack.nats_url.clone().unwrap_or_default(),
            None,
            SpanSource::Local(rx.store()),
            format!("firedrill's OTLP receiver ({})", rx.endpoint()),
        ),
        (None, _, Some(r)) => {
            let (source, name) = match (&plan.target.jaeger_url, &r.tempo_url) {
                (Some(jaeger), _) => (
                    SpanSource::Jaeger(JaegerClient::new(jaeger.as_str())),
                    format!("Jaeger {jaeger}"),
                ),
                (None, Some(tempo)) => (
                    SpanSource::Tempo(TempoClient::new(tempo.as_str())),
                    format!("Tempo {tempo}"),
                ),
                (None, None) => {
                    return Err(Error::Usage(format!(
                        "target `{}` has no trace backend; add tempo_url or jaeger_url to [targets.{}] to audit traces",
                        plan.target.name, plan.target.name
                    )))
                }
            };
            (
                r.nats_url.as_ref().map(|u| u.to_string()).ok_or_else(|| {
                    Error::Usage(format!(
                        "trace-audit publishes sentinels over NATS, and target `{}` has no nats_url; add it to {}",
                        plan.target.name,
                        plan.target.table()
                    ))
                })?,
                r.nats_creds_env.clone(),
                source,
                name,
            )
        }
        _ => unreachable!("a target is either local or remote"),
    };

    let work = async {
        let wall = Instant::now();
        let client = nats::connect(&nats_url, creds.as_deref()).await?;
        let (progress, bar) = progress_bar(global, cfg.count, &cfg.name);
        let outcome = crate::probe::run_probe(&client, &cfg, progress).await?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let (audits, errors) = audit_tasks(&tree, &outcome.tasks, &source, args.span_wait).await;
        let mut summary = summarize(
            &source_name,
            &tree,
            &audits,
            wall.elapsed().as_millis() as u64,
        );
        summary.errors = errors;
        Ok::<_, Error>(summary)
    };
    let summary = tokio::select! {
        r = work => r,
        sig = shutdown_signal() => Err(Error::Interrupted(sig)),
    };
    let prom = env.as_ref().map(|e| e.stack.prometheus_url.clone());
    if let Some(env) = env {
        env.shutdown().await;
    }
    if let Some(rx) = receiver {
        rx.shutdown().await;
    }
    let summary = summary?;
    let window = RunWindow {
        start: started,
        end: Utc::now(),
    };
    let info = target_info(&plan.target, &nats_url, prom.as_deref(), None);
    let mut report = new_report("trace-audit", &run_id, info, window);
    println!("{}", summary_table(&summary));
    report.trace_audit = Some(summary);
    finish(&mut report, &global.reports_dir)
}

/// `trace-audit` with an HTTP probe: `--tasks` requests at once, each
/// trace read back from the target's `jaeger_url` (or `tempo_url`).
async fn run_http(
    global: &Global,
    args: &TraceAuditArgs,
    plan: &Plan,
    tree: &TraceTree,
    spec: &crate::spec::http_probe::HttpProbeSpec,
) -> Result<ExitCode, Error> {
    if args.tasks == 0 {
        return Err(Error::Usage("--tasks must be at least 1".into()));
    }
    if !args.fleet_fault.is_empty() {
        return Err(Error::Usage(format!(
            "--fleet-fault switches the reference fleet's faults, and HTTP probe `{}` does not go through the fleet; drop --fleet-fault",
            spec.config.name
        )));
    }
    let Some((source, source_name)) = super::pipeline::trace_backend(&plan.target) else {
        return Err(Error::Usage(format!(
            "target `{}` has no trace backend to read HTTP probe `{}`'s traces from; add jaeger_url (or tempo_url) to [targets.{}]",
            plan.target.name, spec.config.name, plan.target.name
        )));
    };
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);
    let mut cfg = super::pipeline::http_probe_config(spec, Some(args.tasks), Some(args.tasks));
    cfg.name = format!("{}-trace-audit", spec.config.name);
    let http = super::pipeline::http_probe_client()?;
    let work = async {
        let wall = Instant::now();
        let outcome = crate::probe::http::run_http_probe(&cfg, &http).await;
        let (audits, errors) = audit_tasks(tree, &outcome.tasks, &source, args.span_wait).await;
        let mut summary = summarize(
            &source_name,
            tree,
            &audits,
            wall.elapsed().as_millis() as u64,
        );
        summary.errors = errors;
        summary
    };
    let summary = tokio::select! {
        s = work => s,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let window = RunWindow {
        start: started,
        end: Utc::now(),
    };
    let info = target_info(
        &plan.target,
        "",
        plan.target.remote().map(|r| r.prometheus_url.as_str()),
        None,
    );
    let mut report = new_report("trace-audit", &run_id, info, window);
    println!("{}", summary_table(&summary));
    report.trace_audit = Some(summary);
    finish(&mut report, &global.reports_dir)
}

/// `--tree`, else `<probes-dir>/trace-tree.toml` if present, else built in.
fn load_tree(plan: &Plan, global: &Global, args: &TraceAuditArgs) -> Result<TraceTree, Error> {
    tree_for(plan, global, args.tree.as_deref())
}

/// The expected span tree: `explicit`, else `trace-tree.toml` in the probes
/// directory the plan read (else `--probes-dir`) if present, else the
/// built-in one.
pub fn tree_for(
    plan: &Plan,
    global: &Global,
    explicit: Option<&std::path::Path>,
) -> Result<TraceTree, Error> {
    let path = match explicit.map(std::path::Path::to_path_buf) {
        Some(p) => p.clone(),
        None => {
            let dir = plan.probes_dir.as_deref().unwrap_or(&global.probes_dir);
            let p = dir.join(TREE_FILE);
            if !p.is_file() {
                return Ok(builtin_trace_tree());
            }
            p
        }
    };
    Ok(load_trace_tree(&path)?)
}

/// Console summary: counts, then missing hops.
pub fn summary_table(s: &TraceAuditSummary) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("tasks".into(), s.tasks.to_string()),
        ("passed".into(), s.passed.to_string()),
        ("failed".into(), s.failed.to_string()),
    ];
    for (hop, n) in &s.missing_by_hop {
        rows.push((format!("missing `{hop}`"), n.to_string()));
    }
    for (what, n) in [
        ("orphan spans", s.orphan_spans),
        ("not one root", s.root_count_failures),
        ("escaped to another trace", s.escaped_traces),
        ("envelope trace_id wrong/missing", s.envelope_mismatches),
    ] {
        if n > 0 {
            rows.push((what.into(), n.to_string()));
        }
    }
    rows.push(("wall time".into(), format!("{} ms", s.wall_ms)));
    let mut t = tabled::builder::Builder::default();
    t.push_record(["trace audit", ""]);
    for (k, v) in rows {
        t.push_record([k, v]);
    }
    let mut out = t
        .build()
        .with(tabled::settings::Style::rounded())
        .to_string();
    for e in &s.errors {
        out.push_str(&format!("\nerror: {e}"));
    }
    out
}
