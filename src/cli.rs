//! Command-line interface (clap derive). Every flag has a `FIREDRILL_*` env fallback.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "Examples:
  firedrill smoke                              # whole pipeline on a local real stack
  firedrill probe --target aks-test            # sentinels against a real cluster
  firedrill stack                              # keep a local stack up for exploring

Exit codes:
  0  all passed
  1  a criterion, probe or drill failed
  2  usage or spec error
  3  a dependency was unreachable or answered an error
  4  interrupted, faults reverted
  5  a revert failed (a fault may be live: the report says what and how to recover)";

/// Proves an observability stack really works: sentinel probes, induced-failure
/// drills timed against real alerts, PromQL acceptance criteria, and a report.
#[derive(Debug, Parser)]
#[command(name = "firedrill", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Targets file (`[targets.<name>]`); a built-in `local` target is used if it is absent.
    #[arg(
        long,
        global = true,
        env = "FIREDRILL_CONFIG",
        default_value = "firedrill.toml"
    )]
    pub config: PathBuf,
    /// Directory of probe specs (`*.toml`); built-in sentinel probe if absent.
    #[arg(
        long,
        global = true,
        env = "FIREDRILL_PROBES_DIR",
        default_value = "probes"
    )]
    pub probes_dir: PathBuf,
    /// Directory of acceptance criteria specs (`*.toml`).
    #[arg(
        long,
        global = true,
        env = "FIREDRILL_ACCEPTANCE_DIR",
        default_value = "acceptance"
    )]
    pub acceptance_dir: PathBuf,
    /// Directory of drill specs (`*.toml`, one per fault).
    #[arg(
        long,
        global = true,
        env = "FIREDRILL_DRILLS_DIR",
        default_value = "induced-failures"
    )]
    pub drills_dir: PathBuf,
    /// Where runs write `reports/<run-id>/`.
    #[arg(
        long,
        global = true,
        env = "FIREDRILL_REPORTS_DIR",
        default_value = "reports"
    )]
    pub reports_dir: PathBuf,
    /// Plain log lines instead of progress bars (set automatically when CI is set).
    #[arg(long, global = true, env = "CI", value_parser = clap::builder::FalseyValueParser::new())]
    pub ci: bool,
    /// Log filter, e.g. `debug` or `firedrill=trace`.
    #[arg(long, global = true, env = "FIREDRILL_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on a local real stack (nats-server, prometheus,
    /// alertmanager + the reference fleet), then tear it all down.
    ///
    /// Example: firedrill smoke --count 200
    Smoke(SmokeArgs),
    /// Publish sentinel tasks and measure their round trip and trace integrity.
    ///
    /// On the `local` target the local stack is started for the run.
    /// Example: firedrill probe --target aks-test --probe sentinel --count 50
    Probe(ProbeArgs),
    /// Start the local stack and reference fleet and keep them up, printing
    /// their URLs, until Ctrl-C.
    ///
    /// Example: firedrill stack
    Stack(StackArgs),
    /// Run only the reference fleet against a given NATS server.
    ///
    /// Example: firedrill fleet --nats-url nats://127.0.0.1:4222 --listen 127.0.0.1:9400
    Fleet(FleetArgs),
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// Sentinels to send (overrides the probe spec's `count`).
    #[arg(long, env = "FIREDRILL_COUNT")]
    pub count: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Target name from the targets file.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Probe spec name (file stem under the probes dir); all probes if omitted.
    #[arg(long, env = "FIREDRILL_PROBE")]
    pub probe: Option<String>,
    /// Sentinels to send (overrides the spec).
    #[arg(long, env = "FIREDRILL_COUNT")]
    pub count: Option<usize>,
    /// Sentinels in flight at once (overrides the spec).
    #[arg(long, env = "FIREDRILL_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Benchmark mode (local target): raw publish throughput, minimal round
    /// trip and sentinel round trip with the same client and in-flight count,
    /// plus peak RSS with 10 000 sentinels in flight.
    #[arg(long)]
    pub bench: bool,
}

#[derive(Debug, Args)]
pub struct StackArgs {
    /// Target whose fleet naming to use (must be a local-stack target).
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// NATS server the fleet consumes from.
    #[arg(long, env = "FIREDRILL_NATS_URL")]
    pub nats_url: String,
    /// Address for /metrics, /collector/metrics and /faults.
    #[arg(long, env = "FIREDRILL_FLEET_LISTEN", default_value = "127.0.0.1:9400")]
    pub listen: String,
    /// Target whose `[targets.<name>.fleet]` naming to use.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
}
