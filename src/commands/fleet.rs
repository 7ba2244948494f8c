//! `firedrill fleet`: only the reference fleet, against a given NATS.

use super::*;
use crate::cli::FleetArgs;
use crate::exit::ExitCode;
use crate::signals::shutdown_signal;

pub async fn run(global: &Global, args: &FleetArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(global, &args.target, crate::spec::Parts::NONE)?;
    let spec = plan.target.fleet().ok_or_else(|| {
        Error::Usage(format!(
            "target `{}` has no [targets.{}.fleet] table naming the stream, consumer and pods; pick a target that has one (e.g. --target local)",
            plan.target.name, plan.target.name
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {}: {e}; pass a free address with --listen",
                args.listen
            ))
        })?;
    let cfg = crate::local::fleet_config(
        spec,
        plan.target.namespace.as_deref().unwrap_or_default(),
        &args.nats_url,
    );
    let fleet = crate::fleet::Fleet::start(cfg, listener).await?;
    let url = format!("http://{}", fleet.http_addr());
    println!(
        "reference fleet consuming `{}` on {}",
        spec.stream, args.nats_url
    );
    println!("  metrics {url}/metrics   collector stand-in {url}/collector/metrics   faults {url}/faults");
    println!("press Ctrl-C to stop");
    let sig = shutdown_signal().await;
    eprintln!("{sig}: stopping the fleet…");
    fleet.shutdown().await;
    Ok(ExitCode::Success)
}
