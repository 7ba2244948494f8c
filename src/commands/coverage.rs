//! `firedrill coverage`: which loaded alerting rules have a drill at all
//! (`drill` and `run` add what their drills proved).

use super::*;
use crate::cli::CoverageArgs;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::report::model::{Coverage, CoverageStatus};
use crate::signals::shutdown_signal;

pub async fn run(global: &Global, args: &CoverageArgs) -> Result<ExitCode, Error> {
    let plan = load_parts(
        global,
        &args.target,
        crate::spec::Parts {
            drills: true,
            ..crate::spec::Parts::NONE
        },
    )?;
    let env = if plan.target.is_local() {
        Some(tokio::select! {
            env = LocalEnv::start(&plan.target) => env?,
            sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
        })
    } else {
        None
    };
    let live = Live::of(&plan.target, env.as_ref());
    let prom = crate::clients::prometheus::Prometheus::new(&live.prometheus);
    let coverage = tokio::select! {
        g = prom.rules() => g,
        sig = shutdown_signal() => {
            if let Some(env) = env {
                env.shutdown().await;
            }
            return Err(Error::Interrupted(sig));
        }
    };
    let mut rule_files = Vec::new();
    if let Some(env) = env {
        rule_files = env.stack.rule_files.clone();
        env.shutdown().await;
    }
    let mut coverage = crate::drill::coverage::coverage(&coverage?, &plan.drills, &[], None);
    coverage.rename_rule_files(&rule_files);
    print!("{}", table(&coverage));
    let drilled = coverage.drilled_percent();
    println!(
        "{}/{} alerting rules have a drill ({drilled:.1}%); run `firedrill drill --all` to prove them",
        coverage.drilled(),
        coverage.rules.len()
    );
    Ok(match args.min_coverage {
        Some(min) if drilled < min => {
            println!("below the minimum coverage of {min}%");
            ExitCode::Failed
        }
        _ => ExitCode::Success,
    })
}

/// Uncovered page-severity alerts first (the rows are sorted that way).
fn table(c: &Coverage) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record(["Alert", "Severity", "Drill", "Rule file / group"]);
    for r in &c.rules {
        let drill = match r.status {
            CoverageStatus::NotDrilled => "— not drilled".to_string(),
            _ => r.drills.join(", "),
        };
        b.push_record([
            r.alert.clone(),
            r.severity.clone(),
            drill,
            format!("{} / {}", r.file, r.group),
        ]);
    }
    format!("{}\n", b.build().with(tabled::settings::Style::markdown()))
}
