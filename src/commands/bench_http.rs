//! `firedrill probe --bench-http [URL]`: what the HTTP probe costs over a
//! bare `reqwest` loop, measured in one run on the same service with the
//! same client, request count and concurrency.
//!
//! (a) bare: `GET URL` with a fresh `traceparent`, the status checked and
//!     the body read, nothing else;
//! (b) the HTTP probe: the same request through [`run_http_probe`] (request
//!     ids, per-request judging, HDR recording, the outcome's lists).
//!
//! Without a URL the service is built in: an in-process loopback endpoint
//! answering 200 with the `traceparent` echoed, and (b) also checks that
//! the trace id came back. Both sides warm the connection pool first.

use super::*;
use crate::cli::ProbeArgs;
use crate::exit::ExitCode;
use crate::model::probe::LatencySummary;
use crate::probe::http::{run_http_probe, HttpExpect, HttpProbeConfig, TraceIdFrom};
use crate::probe::latency::Latencies;
use crate::probe::traceparent::TraceParent;
use futures::StreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};
use tabled::{settings::Style, Table, Tabled};

/// `--bench-http` without a URL.
pub const BUILTIN: &str = "builtin";
const WARM_UP: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Tabled)]
struct Row {
    measurement: String,
    requests: usize,
    #[tabled(rename = "in flight")]
    in_flight: usize,
    #[tabled(rename = "rate", display = "per_s")]
    per_second: f64,
    #[tabled(rename = "p50", display = "ms")]
    p50_ms: f64,
    #[tabled(rename = "p99", display = "ms")]
    p99_ms: f64,
}

fn per_s(v: &f64) -> String {
    format!("{v:.0}/s")
}
fn ms(v: &f64) -> String {
    format!("{v:.3} ms")
}

#[derive(Debug, Serialize)]
struct BenchHttpReport {
    url: String,
    /// `debug` or `release`: a debug build's figures are not the product's.
    build: &'static str,
    rows: Vec<Row>,
    /// Probe p50 minus bare p50.
    added_p50_ms: f64,
    added_p99_ms: f64,
    /// Probe rate over bare rate.
    throughput_ratio: f64,
    load_average_before: Option<[f64; 3]>,
    load_average_after: Option<[f64; 3]>,
}

pub async fn run(global: &Global, args: &ProbeArgs, url: &str) -> Result<ExitCode, Error> {
    let count = args.count.unwrap_or(5_000);
    let in_flight = args.concurrency.unwrap_or(16);
    if count == 0 || in_flight == 0 {
        return Err(Error::Usage(
            "--bench-http needs --count and --concurrency of at least 1".into(),
        ));
    }
    let load_average_before = super::bench::load_average();
    let (url, builtin) = if url == BUILTIN {
        (builtin_service().await?, true)
    } else {
        crate::spec::parse_url(url, &["http", "https"])
            .map_err(|e| Error::Usage(format!("--bench-http {url:?}: {e}")))?;
        (url.to_string(), false)
    };
    let http = super::pipeline::http_probe_client()?;
    let cfg = HttpProbeConfig {
        name: "bench-http".into(),
        method: "GET".into(),
        url: url.clone(),
        headers: Vec::new(),
        body: None,
        count,
        concurrency: in_flight,
        timeout: TIMEOUT,
        expect: HttpExpect {
            trace_id: builtin.then(|| TraceIdFrom::Header("traceparent".into())),
            ..HttpExpect::default()
        },
    };
    eprintln!("bench-http: {count} requests, {in_flight} in flight, to {url}…");
    let work = async {
        // Warm both: connections, the service's first answers.
        bare(&http, &url, WARM_UP.min(count), in_flight).await?;
        let bare_out = bare(&http, &url, count, in_flight).await?;
        let mut warm = cfg.clone();
        warm.count = WARM_UP.min(count);
        run_http_probe(&warm, &http).await;
        let probe = run_http_probe(&cfg, &http).await;
        Ok::<_, Error>((bare_out, probe))
    };
    let ((bare_rate, bare_lat), probe) = tokio::select! {
        r = work => r?,
        sig = crate::signals::shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    if !probe.passed() {
        eprintln!(
            "warning: the probe side was not clean ({} of {} completed): {}",
            probe.completed,
            probe.sent,
            probe.failure_reasons().join("; ")
        );
    }
    let probe_secs = (probe.finished_at - probe.started_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    let probe_rate = if probe_secs > 0.0 {
        probe.completed as f64 / probe_secs
    } else {
        0.0
    };
    let report = BenchHttpReport {
        url: url.clone(),
        build: super::bench::BUILD,
        added_p50_ms: probe.latency.p50_ms - bare_lat.p50_ms,
        added_p99_ms: probe.latency.p99_ms - bare_lat.p99_ms,
        throughput_ratio: if bare_rate > 0.0 {
            probe_rate / bare_rate
        } else {
            0.0
        },
        rows: vec![
            Row {
                measurement: "(a) bare reqwest loop".into(),
                requests: count,
                in_flight,
                per_second: bare_rate,
                p50_ms: bare_lat.p50_ms,
                p99_ms: bare_lat.p99_ms,
            },
            Row {
                measurement: "(b) HTTP probe".into(),
                requests: count,
                in_flight,
                per_second: probe_rate,
                p50_ms: probe.latency.p50_ms,
                p99_ms: probe.latency.p99_ms,
            },
        ],
        load_average_before,
        load_average_after: super::bench::load_average(),
    };
    println!("{}", Table::new(&report.rows).with(Style::rounded()));
    println!(
        "probe over bare: p50 {:+.3} ms, p99 {:+.3} ms, throughput x{:.2} ({} build{})",
        report.added_p50_ms,
        report.added_p99_ms,
        report.throughput_ratio,
        report.build,
        if cfg!(debug_assertions) {
            format!("; {}", super::bench::RELEASE_HINT)
        } else {
            String::new()
        }
    );
    super::bench::finish(
        global,
        &report,
        report.load_average_before,
        report.load_average_after,
    )
}

/// (a): `count` GETs, `in_flight` at once; the rate of 2xx answers per
/// second of wall time and their latencies. Any failure stops the bench:
/// a bare loop that does not complete measures nothing.
async fn bare(
    http: &reqwest::Client,
    url: &str,
    count: usize,
    in_flight: usize,
) -> Result<(f64, LatencySummary), Error> {
    let wall = Instant::now();
    let results: Vec<Result<Duration, String>> = futures::stream::iter(0..count)
        .map(|_| async move {
            let start = Instant::now();
            let resp = http
                .get(url)
                .timeout(TIMEOUT)
                .header("traceparent", TraceParent::random().to_string())
                .send()
                .await
                .map_err(|e| crate::clients::http::describe(&e))?;
            let status = resp.status();
            resp.bytes()
                .await
                .map_err(|e| crate::clients::http::describe(&e))?;
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            Ok(start.elapsed())
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let secs = wall.elapsed().as_secs_f64();
    let mut latencies = Latencies::default();
    for r in results {
        match r {
            Ok(d) => latencies.record(d),
            Err(e) => {
                return Err(Error::Local(format!(
                    "bench-http: a bare request to {url} failed ({e}); point --bench-http at a service answering GET with a 2xx, or leave the URL out for the built-in one"
                )))
            }
        }
    }
    Ok((
        count as f64 / secs.max(f64::MIN_POSITIVE),
        latencies.summary(),
    ))
}

/// The built-in service: `GET /` answers 200 with the `traceparent` echoed.
async fn builtin_service() -> Result<String, Error> {
    use axum::http::HeaderMap;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|headers: HeaderMap| async move {
            let tp = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            ([("traceparent", tp)], "ok")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| {
            Error::Local(format!(
                "bench-http: cannot listen on 127.0.0.1 for the built-in service: {e}; check that loopback ports are free"
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Local(e.to_string()))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/"))
}
