//! `firedrill stack`: keep the local stack and fleet up for exploring.

use super::*;
use crate::cli::StackArgs;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::signals::shutdown_signal;

pub async fn run(global: &Global, args: &StackArgs) -> Result<ExitCode, Error> {
    let plan = load(global, &args.target)?;
    let env = tokio::select! {
        env = LocalEnv::start(&plan.target) => env?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let fleet = env.fleet_url();
    println!("local stack for target `{}` is up:", plan.target.name);
    println!("  NATS          {}", env.stack.nats_url);
    println!("  Prometheus    {}", env.stack.prometheus_url);
    println!("  Alertmanager  {}", env.stack.alertmanager_url);
    println!("  webhook       {}", env.stack.webhook.url);
    println!("  fleet         {fleet}/metrics  {fleet}/collector/metrics  {fleet}/faults");
    println!("  configs/logs  {}", env.stack.dir().display());
    println!(
        "try: curl -X PUT {fleet}/faults/worker-image-tag   (then watch {}/alerts)",
        env.stack.prometheus_url
    );
    println!("press Ctrl-C to stop");
    let sig = shutdown_signal().await;
    eprintln!("{sig}: stopping the stack…");
    env.shutdown().await;
    Ok(ExitCode::Success)
}
