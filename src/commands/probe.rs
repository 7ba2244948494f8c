//! `firedrill probe`: sentinels against a target (local: a stack of its own).

use super::*;
use crate::cli::ProbeArgs;
use crate::exit::ExitCode;
use crate::signals::shutdown_signal;
use crate::spec::http_probe::HttpProbeSpec;
use chrono::Utc;

pub async fn run(global: &Global, args: &ProbeArgs) -> Result<ExitCode, Error> {
    // The HTTP bench needs no spec: a URL (or its built-in service).
    if let Some(url) = &args.bench_http {
        return super::bench_http::run(global, args, url).await;
    }
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            probes: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    let http_specs: Vec<&HttpProbeSpec> = match &args.probe {
        Some(name) => plan
            .http_probes
            .iter()
            .filter(|p| &p.config.name == name)
            .collect(),
        None => plan.http_probes.iter().collect(),
    };
    let specs: Vec<&ProbeSpec> = match &args.probe {
        Some(_) if !http_specs.is_empty() => Vec::new(),
        Some(name) => vec![plan.probe(name).ok_or_else(|| {
            Error::Usage(format!(
                "no probe named `{name}` in {}; known probes: {}",
                plan.probes_dir
                    .as_deref()
                    .unwrap_or(&global.probes_dir)
                    .display(),
                plan.probe_names().join(", ")
            ))
        })?],
        None => plan.probes.iter().collect(),
    };
    if specs.is_empty() && http_specs.is_empty() {
        return Err(Error::Usage(format!(
            "no probes loaded for target `{}`; add a probe spec (*.toml) to its probes directory (--probes-dir, or probes_dir in {})",
            plan.target.name,
            plan.target.table()
        )));
    }
    if args.bench {
        let Some(first) = specs.first() else {
            return Err(Error::Usage(
                "probe --bench measures the NATS round trip and needs a NATS probe spec".into(),
            ));
        };
        return super::bench::run(global, args, &plan, first).await;
    }
    let started = Utc::now();
    let run_id = crate::runinfo::new_run_id(started);

    let env = start_local(&plan.target).await?;
    let live = Live::of(&plan.target, env.as_ref());
    let work = async {
        let mut outcomes = Vec::new();
        // HTTP probes need no NATS: connect only for NATS probes.
        let client = if specs.is_empty() {
            None
        } else {
            Some(live.nats(&plan.target, "a NATS probe").await?)
        };
        outcomes.extend(
            super::pipeline::run_http_probes(&http_specs, args.count, args.concurrency).await?,
        );
        for spec in specs.iter().filter(|_| client.is_some()) {
            let client = client.as_ref().expect("connected for NATS probes");
            let cfg = probe_config(spec, args.count, args.concurrency);
            let (progress, bar) = progress_bar(global, cfg.count, &cfg.name);
            let out = crate::probe::run_probe(client, &cfg, progress).await?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            outcomes.push(out);
        }
        Ok::<_, Error>(outcomes)
    };
    let outcome = tokio::select! {
        r = work => r,
        sig = shutdown_signal() => Err(Error::Interrupted(sig)),
    };
    if let Some(env) = env {
        env.shutdown().await;
    }
    let window = RunWindow {
        start: started,
        end: Utc::now(),
    };
    let info = live.target_info(&plan.target);
    let mut report = new_report("probe", &run_id, info, window);
    report.probes = probe_results(outcome?);
    report.redact_secrets();
    if let Some(t) = crate::report::console::probe_table(&report) {
        println!("{t}");
    }
    finish(&mut report, &global.reports_dir)
}
