//! `firedrill stack`: keep the local stack and fleet up for exploring.

use super::*;
use crate::cli::StackArgs;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::signals::shutdown_signal;

pub async fn run(global: &Global, args: &StackArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(global, &args.target, crate::spec::Parts::NONE)?;
    let env = tokio::select! {
        env = LocalEnv::start(&plan.target) => env?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    println!("local stack for target `{}` is up:", plan.target.name);
    if let Some(nats) = &env.stack.nats_url {
        println!("  NATS          {nats}");
    }
    println!("  Prometheus    {}", env.stack.prometheus_url);
    println!("  Alertmanager  {}", env.stack.alertmanager_url);
    println!("  webhook       {}", env.stack.webhook.url);
    let (Some(fleet), Some(fleet_env)) = (env.fleet_url(), env.fleet.as_ref()) else {
        println!("  configs/logs  {}", env.stack.dir().display());
        return wait_then_stop(env).await;
    };
    println!("  fleet         {fleet}/metrics  {fleet}/collector/metrics  {fleet}/faults");
    let token_file = env.stack.dir().join("kube-token");
    write_private(&token_file, fleet_env.kube_token()).map_err(|e| {
        Error::Local(format!(
            "cannot write the local Kubernetes API token to {}: {e}; check the stack directory is writable",
            token_file.display()
        ))
    })?;
    println!(
        "  Kubernetes    {fleet}  (bearer token in {})",
        token_file.display()
    );
    println!("  configs/logs  {}", env.stack.dir().display());
    let orchestrator = plan
        .target
        .fleet()
        .map(|f| f.orchestrator_deployment.clone())
        .unwrap_or_default();
    println!(
        "try: curl -X PATCH -H \"Authorization: Bearer $(cat {})\" -H 'Content-Type: application/merge-patch+json' \\\n       -d '{{\"spec\":{{\"replicas\":0}}}}' {fleet}/apis/apps/v1/namespaces/{}/deployments/{orchestrator}\n     (then watch {}/alerts for OrchestratorDown; set replicas back to 1 to end it)",
        token_file.display(),
        plan.target.namespace.as_deref().unwrap_or_default(),
        env.stack.prometheus_url
    );
    wait_then_stop(env).await
}

async fn wait_then_stop(env: LocalEnv) -> Result<ExitCode, Error> {
    println!("press Ctrl-C to stop");
    let sig = shutdown_signal().await;
    eprintln!("{sig}: stopping the stack…");
    env.shutdown().await;
    Ok(ExitCode::Success)
}

/// Writes `contents` readable by this user only.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
