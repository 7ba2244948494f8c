use clap::Parser;
use firedrill::cli::{Cli, Command};
use firedrill::commands;

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only for a person at a terminal: CI logs and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !cli.global.ci;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    firedrill::clients::http::set_max_response_bytes(cli.global.max_response_bytes);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let g = &cli.global;
    let result = rt.block_on(async {
        match &cli.command {
            Command::Smoke(a) => commands::smoke::run(g, a).await,
            Command::Probe(a) => commands::probe::run(g, a).await,
            Command::Stack(a) => commands::stack::run(g, a).await,
            Command::Fleet(a) => commands::fleet::run(g, a).await,
            Command::Drill(a) => commands::drill::run(g, a).await,
            Command::Recover(a) => commands::recover::run(g, a).await,
            Command::Accept(a) => commands::accept::run(g, a).await,
            Command::Run(a) => commands::run::run(g, a).await,
            Command::Snapshot(a) => commands::snapshot::run(g, a).await,
            Command::Validate(a) => commands::validate::run(g, a).await,
            Command::Coverage(a) => commands::coverage::run(g, a).await,
            Command::TraceAudit(a) => commands::trace_audit::run(g, a).await,
            Command::Merge(a) => commands::merge::run(g, a).await,
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", firedrill::secrets::redact(&e.to_string()));
            e.exit_code()
        }
    };
    // Children were stopped by the commands; do not wait for stray tasks.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code.code());
}
