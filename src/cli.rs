//! Command-line interface (clap derive). Every flag has a `FIREDRILL_*` env fallback.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = concat!(
    "Examples:
  firedrill smoke                              # whole pipeline on a local real stack
  firedrill drill --all --target local         # time every drill's alert on the local stack
  firedrill smoke --target my-compose --var api_addr=127.0.0.1:8080
  firedrill run --target aks-test              # the acceptance job against a cluster
  firedrill stack                              # keep a local stack up for exploring

",
    crate::exit_codes_help!()
);

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
    /// Largest answer read from a remote HTTP API (Prometheus, Alertmanager,
    /// Grafana, Tempo): bytes or e.g. `64MiB`. A larger answer is verdict
    /// `error` naming the request; narrow the query rather than raise this.
    #[arg(
        long,
        global = true,
        env = crate::clients::http::MAX_RESPONSE_BYTES_ENV,
        default_value = "32MiB",
        value_parser = crate::clients::http::parse_size
    )]
    pub max_response_bytes: u64,
    /// Set a target variable for this run, over the target's
    /// `[variables]` (repeatable): `--var port=8080`.
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Log filter, e.g. `debug` or `firedrill=trace`.
    #[arg(long, global = true, env = "FIREDRILL_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on a local real stack (prometheus and
    /// alertmanager; nats-server and the reference fleet when the target has
    /// a [fleet] table), then tear it all down.
    ///
    /// Example: firedrill smoke --count 200
    Smoke(SmokeArgs),
    /// Publish sentinel tasks and measure their round trip and trace integrity.
    ///
    /// On the `local` target the local stack is started for the run.
    /// Example: firedrill probe --target aks-test --probe sentinel --count 50
    Probe(ProbeArgs),
    /// Start a local-stack target's stack (and its reference fleet, if it
    /// has one) and keep it up, printing the URLs, until Ctrl-C.
    ///
    /// Example: firedrill stack
    Stack(StackArgs),
    /// Evaluate every acceptance criterion (the target's acceptance folder) against the
    /// target's live Prometheus over a window, and print a verdict table.
    ///
    /// Example: firedrill accept --target aks-test --since 30m --sentinel-task-id sentinel-...
    Accept(AcceptArgs),
    /// The acceptance job: probe, then criteria over the run window, then the
    /// Grafana snapshot, then every report format (and GitHub summary,
    /// outputs, check run). This is what the workflow_dispatch job calls.
    ///
    /// Example: firedrill run --target aks-test --require-snapshot --github-check
    Run(RunArgs),
    /// Create a Grafana snapshot of a dashboard over a time range, with the
    /// panels' data from the target's Prometheus embedded.
    ///
    /// Example: firedrill snapshot --target aks-test --dashboard fleet-overview --from 2026-11-23T09:00:00Z --to 2026-11-23T09:30:00Z
    Snapshot(SnapshotArgs),
    /// Induce named failures and time their alerts: journal the original
    /// state, inject, watch the alert go pending, fire, reach Alertmanager
    /// and the webhook, then always revert and wait for it to resolve.
    ///
    /// Examples: `firedrill drill worker-image-tag --target local --trials 3`,
    /// `firedrill drill --all --target local --parallel`. After a killed run:
    /// `firedrill recover`.
    Drill(DrillArgs),
    /// Re-revert whatever a killed run left behind (journals not marked
    /// reverted). Running it twice is harmless. A live run's journal, and
    /// one written on another host, are left alone and named; each revert
    /// is bounded by --revert-deadline.
    ///
    /// Example: firedrill recover --journal reports/20261123T103700Z-3f9a/journal.json
    Recover(RecoverArgs),
    /// Audit the alert rules Prometheus has loaded, without injecting
    /// anything: every selector whose emptiness would stop a rule has
    /// series (else it silently never fires), every alert carries the
    /// labels and annotations the target's [validate] policy requires (by
    /// default a runbook_url, and a static namespace on absent() rules),
    /// every drill's alert is loaded, every criterion's query parses and,
    /// with an Alertmanager, each alert reaches the receiver expected for
    /// it. On the `local` target the local stack is started for the audit.
    /// SIGINT/SIGTERM writes the report of what was audited so far (exit 4).
    ///
    /// Example: firedrill validate --target aks-test
    Validate(ValidateArgs),
    /// Alert coverage: every alerting rule loaded in the target's Prometheus
    /// against the drills that exercise it (drill or not drilled), by
    /// severity, page-severity alerts without a drill first. `drill` and
    /// `run` add the same section, with what this run's drills proved.
    ///
    /// Example: firedrill coverage --target local --min-coverage 80%
    Coverage(CoverageArgs),
    /// Run only the reference fleet against a given NATS server.
    ///
    /// Example: firedrill fleet --nats-url nats://127.0.0.1:4222 --listen 127.0.0.1:9400
    Fleet(FleetArgs),
    /// Audit trace context end to end: publish sentinels concurrently, collect
    /// their spans (local: firedrill's own OTLP receiver the fleet exports to;
    /// remote: the target's tempo_url) and check each task has one root, every
    /// expected hop (`<probes-dir>/trace-tree.toml`, or the built-in tree),
    /// no orphan spans and its own trace id in the result envelope.
    ///
    /// Example: firedrill trace-audit --target local --tasks 100
    TraceAudit(TraceAuditArgs),
    /// Merge reports (e.g. a matrix job's legs) into one: percentiles over
    /// all samples (exact HDR histogram merge), the worst verdict, each
    /// input's run id, target and agent types kept in its tables. Refuses
    /// reports of different schema versions and run ids given twice.
    ///
    /// Example: firedrill merge legs/*/report.json --out reports/merged --baseline previous-merged/report.json
    Merge(MergeArgs),
}

/// Compare with an earlier report (`run`, `drill`, `smoke`, `merge`).
#[derive(Debug, Args, Clone, Default)]
pub struct BaselineArgs {
    /// An earlier report.json (or its directory) to compare with: the report
    /// gets a "Change since baseline" section. `previous`, in GitHub
    /// Actions, takes the report artifact of the latest successful run of
    /// the same workflow and target (needs GITHUB_TOKEN with `actions:
    /// read`). A missing or unreadable baseline is a note in the report, not
    /// a failure.
    #[arg(long, env = "FIREDRILL_BASELINE")]
    pub baseline: Option<String>,
    /// A regression past its threshold (the criterion's or drill's
    /// `regression`, else +25%) fails the run: exit 1.
    #[arg(long, env = "FIREDRILL_FAIL_ON_REGRESSION", requires = "baseline")]
    pub fail_on_regression: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The reports to merge (`report.json` files, or directories holding one).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Directory to write the merged report.json, report.md and junit.xml into.
    #[arg(long, env = "FIREDRILL_MERGE_OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub baseline: BaselineArgs,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// A local-stack target (`stack = "local"`): the built-in `local`, or
    /// one of yours with its own rules, scrape jobs and specs.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Sentinels to send (overrides the probe spec's `count`).
    #[arg(long, env = "FIREDRILL_COUNT")]
    pub count: Option<usize>,
    /// Drills to run on the local stack after the probe (default: the
    /// target's `smoke_drills`; none: `--drills ""`; every one: `all`).
    #[arg(long, env = "FIREDRILL_SMOKE_DRILLS", value_delimiter = ' ')]
    pub drills: Option<Vec<String>>,
    #[command(flatten)]
    pub baseline: BaselineArgs,
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
    /// Benchmark mode (local target; build with --release): (a) raw
    /// JetStream publish+ack, (b) a bare consumer's round trip, (b') the
    /// same carrying a sentinel's header and body bytes, (c) the sentinel
    /// round trip through the fleet, each with --count messages (default
    /// 20000, at most 1000000) and --concurrency in flight (default 512).
    /// Prints c/b (goal >= 0.8), c/b' (what firedrill adds: 1.0 is nothing),
    /// b'/b (what NATS pays for a real task's bytes), (c)'s p50/p99/max,
    /// firedrill's own peak RSS with 10 000 sentinels in flight, and (d)
    /// the latency of (b) and (c) with one message in flight. Writes
    /// bench.json (with the build type and load averages) to a new run
    /// folder under --reports-dir. FIREDRILL_COUNT/FIREDRILL_CONCURRENCY
    /// apply here too.
    #[arg(long)]
    pub bench: bool,
    /// Benchmark the HTTP probe against a bare reqwest loop on the same
    /// service (GET URL; without URL, a built-in loopback service echoing
    /// the traceparent): throughput and p50/p99 of both, into bench.json.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "builtin", conflicts_with = "bench")]
    pub bench_http: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceAuditArgs {
    /// Target name from the targets file.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Sentinel tasks to publish, all at once.
    #[arg(long, env = "FIREDRILL_TRACE_TASKS", default_value_t = 100)]
    pub tasks: usize,
    /// Probe spec whose subjects to use; the first probe if omitted.
    #[arg(long, env = "FIREDRILL_PROBE")]
    pub probe: Option<String>,
    /// Expected span tree; default `<probes-dir>/trace-tree.toml`, else built in.
    #[arg(long, env = "FIREDRILL_TRACE_TREE")]
    pub tree: Option<std::path::PathBuf>,
    /// Longest wait for spans after the last result (Tempo ingests with a delay).
    #[arg(long, env = "FIREDRILL_SPAN_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub span_wait: std::time::Duration,
    /// Local target only: fleet faults to turn on first (e.g. drop-trace-context).
    #[arg(long, env = "FIREDRILL_FLEET_FAULTS", value_delimiter = ',')]
    pub fleet_fault: Vec<String>,
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

/// `NAME=VALUE` of `--var`.
fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE (e.g. --var port=8080)")),
    }
}

/// A point in time: RFC 3339 (`2026-11-23T09:00:00Z`) or unix seconds.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    s.parse::<f64>()
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64))
        .ok_or_else(|| {
            format!("`{s}` is not a time: use RFC 3339 (2026-11-23T09:00:00Z) or unix seconds")
        })
}

/// A duration flag: humantime, at most [`crate::spec::MAX_DURATION`] (30
/// days), like every duration in the specs. clap names the flag and exits 2.
/// `80%`, `80` or `87.5%`: a percentage from 0 to 100.
fn parse_percent(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches('%').trim();
    match n.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a percentage from 0 to 100 (e.g. 80%)"
        )),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); use e.g. 90s, 30m"))?;
    if d > crate::spec::MAX_DURATION {
        return Err(format!(
            "`{s}` is longer than the maximum of {} (720h) that firedrill allows for any duration",
            crate::spec::MAX_DURATION_TEXT
        ));
    }
    Ok(d)
}

/// `--sentinel-trace-id`: a W3C trace id, as the probe's traceparent and
/// the platform's spans carry it.
fn parse_trace_id(s: &str) -> Result<String, String> {
    let hex = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex || s.bytes().all(|b| b == b'0') {
        return Err(
            "expected a W3C trace id: exactly 32 lowercase hex digits, not all zero \
             (e.g. 4bf92f3577b34da6a3ce929d0e0e4736)"
                .into(),
        );
    }
    Ok(s.to_string())
}

/// Longest `--sentinel-task-id` accepted; firedrill's own are ~40 characters.
const MAX_TASK_ID_CHARS: usize = 256;

/// `--sentinel-task-id`: any printable text up to 256 characters. Queries
/// get it escaped (`spec::template::render_promql`), so quotes cannot
/// break out; control characters are refused because no task id holds
/// them and they would garble the report.
fn parse_task_id(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a task id must not be empty".into());
    }
    if s.chars().count() > MAX_TASK_ID_CHARS {
        return Err(format!(
            "a task id is at most {MAX_TASK_ID_CHARS} characters"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err("a task id must not contain control characters (newline, tab, ...)".into());
    }
    Ok(s.to_string())
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// Target name from the targets file (a remote target: the local stack lives only during smoke/run).
    #[arg(long, short, env = "FIREDRILL_TARGET")]
    pub target: String,
    /// Window start (RFC 3339 or unix seconds); with --window-end.
    #[arg(long, value_parser = parse_time, requires = "window_end", conflicts_with = "since")]
    pub window_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Window end (RFC 3339 or unix seconds).
    #[arg(long, value_parser = parse_time, requires = "window_start")]
    pub window_end: Option<chrono::DateTime<chrono::Utc>>,
    /// Window = the last D up to now (default 30m when no window is given; at most 30 days).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Task id of a sentinel an earlier run published, for `{{sentinel.task_id}}` in criteria.
    #[arg(
        long,
        env = "FIREDRILL_SENTINEL_TASK_ID",
        requires = "sentinel_trace_id",
        value_parser = parse_task_id
    )]
    pub sentinel_task_id: Option<String>,
    /// Its trace id (32 lowercase hex, not all zero), for `{{sentinel.trace_id}}` and the trace link.
    #[arg(long, env = "FIREDRILL_SENTINEL_TRACE_ID", value_parser = parse_trace_id)]
    pub sentinel_trace_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Target name from the targets file.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Drills to run after the probe: space-separated names, or `all` (the
    /// target's `drills` list, else every drill loaded). None by default.
    #[arg(long, env = "FIREDRILL_DRILLS", default_value = "")]
    pub drills: String,
    /// Fail (exit 1) when fewer alerting rules than this were proven by a
    /// drill in this run, e.g. `80%`. Without it coverage is only reported.
    #[arg(long, env = "FIREDRILL_MIN_COVERAGE", value_parser = parse_percent)]
    pub min_coverage: Option<f64>,
    /// Repeat each drill N times (overrides the spec's `trials`).
    #[arg(long, env = "FIREDRILL_TRIALS")]
    pub trials: Option<u32>,
    /// Run drills that cannot interfere at the same time: their faults
    /// touch disjoint objects (Kubernetes objects, fleet switches, an exec
    /// fault's declared `touches`) and they expect different alerts. The
    /// groups are shown before anything is injected.
    #[arg(long, env = "FIREDRILL_PARALLEL")]
    pub parallel: bool,
    /// With --parallel: afterwards, re-run alone every drill whose verdict
    /// may have been disturbed (crosstalk in its group, or its alert
    /// already active before its inject).
    #[arg(long, env = "FIREDRILL_RETRY_SERIAL", requires = "parallel")]
    pub retry_serial: bool,
    /// Widen the evaluation window to start this long before the run (e.g. to
    /// cover a deploy that happened just before it).
    #[arg(long, env = "FIREDRILL_EXTRA_WINDOW", value_parser = parse_duration, default_value = "0s")]
    pub extra_window: std::time::Duration,
    /// Wait this long after the probes before evaluating criteria, so
    /// Prometheus has scraped the last samples (use >= 2 scrape intervals;
    /// default 1s on the local stack, which scrapes every 500ms, else 30s).
    #[arg(long, env = "FIREDRILL_SETTLE", value_parser = parse_duration)]
    pub settle: Option<std::time::Duration>,
    /// Sentinels to send (overrides the probe spec).
    #[arg(long, env = "FIREDRILL_COUNT")]
    pub count: Option<usize>,
    /// Fail (instead of skip) snapshot criteria (`kind = "snapshot"`) when no
    /// snapshot can be made.
    #[arg(long, env = "FIREDRILL_REQUIRE_SNAPSHOT")]
    pub require_snapshot: bool,
    /// Create a GitHub check run with the verdict (needs GITHUB_TOKEN in Actions).
    #[arg(long, env = "FIREDRILL_GITHUB_CHECK")]
    pub github_check: bool,
    /// Open (or comment on) a GitHub issue when a drill fails.
    #[arg(long, env = "FIREDRILL_OPEN_ISSUE_ON_FAILURE")]
    pub open_issue_on_failure: bool,
    #[command(flatten)]
    pub baseline: BaselineArgs,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Target name from the targets file (needs grafana_url and grafana_token_env).
    #[arg(long, short, env = "FIREDRILL_TARGET")]
    pub target: String,
    /// Dashboard uid (default: the target's dashboard_uid).
    #[arg(long, env = "FIREDRILL_DASHBOARD")]
    pub dashboard: Option<String>,
    /// Start of the range (RFC 3339 or unix seconds).
    #[arg(long, value_parser = parse_time)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// End of the range (RFC 3339 or unix seconds).
    #[arg(long, value_parser = parse_time)]
    pub to: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Drill names (file stems under the drills dir), e.g. worker-image-tag.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Run the target's drills: its `drills` list, else every drill in the drills dir.
    #[arg(long)]
    pub all: bool,
    /// Target name from the targets file (must say drills_allowed = true).
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Repeat each drill N times and report min/median/max time-to-fire.
    #[arg(long, env = "FIREDRILL_TRIALS")]
    pub trials: Option<u32>,
    /// Run drills that cannot interfere at the same time: their faults
    /// touch disjoint objects (Kubernetes objects, fleet switches, an exec
    /// fault's declared `touches`) and they expect different alerts. The
    /// groups are shown before anything is injected.
    #[arg(long, env = "FIREDRILL_PARALLEL")]
    pub parallel: bool,
    /// With --parallel: afterwards, re-run alone every drill whose verdict
    /// may have been disturbed (crosstalk in its group, or its alert
    /// already active before its inject).
    #[arg(long, env = "FIREDRILL_RETRY_SERIAL", requires = "parallel")]
    pub retry_serial: bool,
    /// Fail (exit 1) when fewer alerting rules than this were proven by a
    /// drill in this run, e.g. `80%`. Without it coverage is only reported.
    #[arg(long, env = "FIREDRILL_MIN_COVERAGE", value_parser = parse_percent)]
    pub min_coverage: Option<f64>,
    #[command(flatten)]
    pub baseline: BaselineArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Target name from the targets file.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Target name from the targets file.
    #[arg(long, short, env = "FIREDRILL_TARGET", default_value = "local")]
    pub target: String,
    /// Fail (exit 1) when fewer alerting rules than this have a drill, e.g. `80%`.
    #[arg(long, env = "FIREDRILL_MIN_COVERAGE", value_parser = parse_percent)]
    pub min_coverage: Option<f64>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// A journal to recover; default: every journal under the reports dir
    /// written on this host (name another host's journal here to run its
    /// reverts deliberately).
    #[arg(long, env = "FIREDRILL_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Longest one revert may take; past it the revert fails (exit 5) and
    /// an `exec` revert's whole process group is killed.
    #[arg(long, env = "FIREDRILL_REVERT_DEADLINE", default_value = "60s", value_parser = parse_duration)]
    pub revert_deadline: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_ids_are_checked() {
        let good = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(parse_trace_id(good).as_deref(), Ok(good));
        for bad in [
            "",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47360",
            "00000000000000000000000000000000",
            "4bf92f3577b34da6a3ce929d0e0e473g",
            "\"}) or vector(1) #aaaaaaaaaaaaaa",
        ] {
            let e = parse_trace_id(bad).unwrap_err();
            assert!(e.contains("32 lowercase hex digits"), "{bad}: {e}");
        }
        for ok in [
            "sentinel-1732355689156-00c0ffee1234",
            "x\"}) or vector(1) #",
        ] {
            assert_eq!(parse_task_id(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "a\nb", "a\tb", "a\u{7f}", "a\u{85}", &"x".repeat(257)] {
            assert!(parse_task_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duration_flags_are_capped() {
        assert_eq!(
            parse_duration("720h"),
            Ok(std::time::Duration::from_secs(30 * 24 * 3600))
        );
        for bad in ["721h", "99999999h", "1000000years"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("maximum of 30 days"), "{bad}: {e}");
        }
    }
}
