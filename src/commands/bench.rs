//! `firedrill probe --bench`: how close the sentinel round trip gets to the
//! transport's own limits, measured in one run on the local stack with the
//! same client and the same number of messages in flight.
//!
//! (a) raw JetStream publish+ack throughput;
//! (b) the minimal round trip: publish acked, a bare durable pull consumer
//!     acks and replies, the reply is matched;
//! (b') the same bare round trip carrying a sentinel's bytes: its header
//!     and a body as long as its task JSON, echoed back. b'/b is what NATS
//!     pays to carry a real task rather than a counter; c/b' is what
//!     firedrill's probe and fleet add on top;
//! (c) firedrill's sentinel round trip through the reference fleet, with
//!     trace context and HDR recording on;
//! (d) the latency (b) and (c) have with one message in flight, and what
//!     the probe and fleet add to the minimal round trip.
//!
//! (b)'s requester and responder share one NATS connection; so do (c)'s
//! probe and the fleet, which runs in this process.

use super::*;
use crate::cli::ProbeArgs;
use crate::clients::nats;
use crate::exit::ExitCode;
use crate::local::LocalEnv;
use crate::model::probe::LatencySummary;
use crate::probe::latency::Latencies;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tabled::{settings::Style, Table, Tabled};
use tokio::sync::oneshot;

const BENCH_STREAM: &str = "FIREDRILL_BENCH";
const RAW_SUBJECT: &str = "firedrill.bench.raw";
const RT_SUBJECT: &str = "firedrill.bench.rt";
const RT_REPLY: &str = "firedrill.bench.reply";
const RSS_IN_FLIGHT: usize = 10_000;
/// Most messages per measurement: the probe keeps a record of every
/// sentinel it sends (for the report), so memory grows with the count.
const MAX_COUNT: usize = 1_000_000;
/// The build these figures come from, recorded in every bench.json.
pub(super) const BUILD: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};
/// What a debug build's figures are told on the console.
pub(super) const RELEASE_HINT: &str = "build with --release for figures worth quoting";
/// Round trips per side of (d): enough for a stable p99.
const ONE_IN_FLIGHT_COUNT: usize = 2_000;

#[derive(Debug, Serialize, Tabled)]
struct Row {
    measurement: String,
    messages: usize,
    #[tabled(rename = "in flight")]
    in_flight: usize,
    #[tabled(rename = "rate", display = "per_s")]
    per_second: f64,
    #[tabled(rename = "vs (a)", display = "ratio")]
    vs_raw: f64,
    #[tabled(rename = "vs (b)", display = "ratio")]
    vs_minimal: f64,
}

fn per_s(v: &f64) -> String {
    format!("{v:.0}/s")
}
fn ratio(v: &f64) -> String {
    format!("{v:.2}")
}

#[derive(Debug, Serialize)]
struct BenchReport {
    /// `debug` or `release`: a debug build's figures are not the product's.
    build: &'static str,
    rows: Vec<Row>,
    c_over_a: f64,
    /// The goal figure (>= 0.8).
    c_over_b: f64,
    /// Firedrill's own share: (c) against the bare loop carrying the same bytes.
    c_over_b_sentinel_sized: f64,
    /// NATS' share: the bare loop with a sentinel's bytes against (b).
    b_sentinel_sized_over_b: f64,
    peak_rss_mib_10k_in_flight: Option<f64>,
    /// (c)'s round-trip latency at full concurrency: a run whose rate is an
    /// outlier shows here whether a few sentinels stalled or all were slow.
    sentinel_latency_ms: Spread,
    one_in_flight: OneInFlight,
    /// `/proc/loadavg` (1, 5, 15 min) when the bench started and ended: the
    /// figures of a busy machine say so.
    load_average_before: Option<[f64; 3]>,
    load_average_after: Option<[f64; 3]>,
}

/// p50, p99 and max of a latency summary, in milliseconds.
#[derive(Debug, Serialize)]
struct Spread {
    p50: f64,
    p99: f64,
    max: f64,
}

impl From<&LatencySummary> for Spread {
    fn from(l: &LatencySummary) -> Self {
        Spread {
            p50: l.p50_ms,
            p99: l.p99_ms,
            max: l.max_ms,
        }
    }
}

/// (d): round-trip latency with one message in flight, in microseconds.
#[derive(Debug, Serialize)]
struct OneInFlight {
    messages: usize,
    minimal_p50_us: f64,
    minimal_p99_us: f64,
    sentinel_p50_us: f64,
    sentinel_p99_us: f64,
    /// sentinel - minimal (goal: p50 at most 100 µs).
    added_p50_us: f64,
    added_p99_us: f64,
}

impl OneInFlight {
    fn new(messages: usize, minimal: &LatencySummary, sentinel: &LatencySummary) -> Self {
        let us = |ms: f64| (ms * 1000.0).round();
        OneInFlight {
            messages,
            minimal_p50_us: us(minimal.p50_ms),
            minimal_p99_us: us(minimal.p99_ms),
            sentinel_p50_us: us(sentinel.p50_ms),
            sentinel_p99_us: us(sentinel.p99_ms),
            added_p50_us: us(sentinel.p50_ms) - us(minimal.p50_ms),
            added_p99_us: us(sentinel.p99_ms) - us(minimal.p99_ms),
        }
    }
}

pub async fn run(
    global: &Global,
    args: &ProbeArgs,
    plan: &Plan,
    spec: &ProbeSpec,
) -> Result<ExitCode, Error> {
    if !plan.target.is_local() {
        return Err(Error::Usage(
            "--bench runs on the local stack only (it creates scratch streams); use --target local"
                .into(),
        ));
    }
    let (count, in_flight) = sizes(args.count, args.concurrency)?;
    // SIGINT/SIGTERM stop the bench and its stack (exit 4), not kill it.
    let _ = crate::signals::source();
    let load_average_before = load_average();
    eprintln!("bench: starting the local stack (fleet with no simulated cold start or work)…");
    let start = LocalEnv::start_with(&plan.target, |cfg| {
        cfg.cold_start = Duration::ZERO;
        cfg.work = Duration::ZERO;
        // As many tasks at once as the probe keeps in flight, like the
        // bare consumer of (b), which has no cap at all.
        cfg.concurrency = cfg.concurrency.max(in_flight);
        // Per-sentinel task_id series exist for AC2 only; the bench measures
        // the round trip, not the fleet's bookkeeping of 20 000 new series.
        cfg.record_task_ids = false;
    });
    let env = tokio::select! {
        env = start => env?,
        sig = crate::signals::shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let result = tokio::select! {
        r = measure(global, &env, spec, count, in_flight) => r,
        sig = crate::signals::shutdown_signal() => Err(Error::Interrupted(sig)),
    };
    env.shutdown().await;
    let mut report = result?;
    report.load_average_before = load_average_before;
    report.load_average_after = load_average();
    println!("{}", Table::new(&report.rows).with(Style::rounded()));
    if cfg!(debug_assertions) {
        println!("debug build: {RELEASE_HINT}");
    }
    println!(
        "c/a = {:.2}   c/b = {:.2} (goal >= 0.8)   c/b' = {:.2} (firedrill's share)   b'/b = {:.2} (NATS carrying a sentinel's bytes)\n\
         peak RSS with {RSS_IN_FLIGHT} sentinels in flight: {}",
        report.c_over_a,
        report.c_over_b,
        report.c_over_b_sentinel_sized,
        report.b_sentinel_sized_over_b,
        report
            .peak_rss_mib_10k_in_flight
            .map(|m| format!("{m:.1} MiB (goal <= 64 MiB)"))
            .unwrap_or_else(|| "unknown (no /proc)".into())
    );
    let l = &report.sentinel_latency_ms;
    println!(
        "(c) round trip at {in_flight} in flight: p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        l.p50, l.p99, l.max
    );
    let d = &report.one_in_flight;
    println!(
        "(d) one in flight, {} each: minimal p50 {} µs p99 {} µs; sentinel p50 {} µs p99 {} µs; \
         added p50 {:+} µs (goal <= 100 µs) p99 {:+} µs",
        d.messages,
        d.minimal_p50_us,
        d.minimal_p99_us,
        d.sentinel_p50_us,
        d.sentinel_p99_us,
        d.added_p50_us,
        d.added_p99_us
    );
    finish(
        global,
        &report,
        report.load_average_before,
        report.load_average_after,
    )
}

/// Messages per measurement and messages in flight: `--count` (default
/// 20 000, at most [`MAX_COUNT`]) and `--concurrency` (default 512, at most
/// the count: more could never be in flight).
fn sizes(count: Option<usize>, concurrency: Option<usize>) -> Result<(usize, usize), Error> {
    let count = count.unwrap_or(20_000);
    if count == 0 || count > MAX_COUNT {
        return Err(Error::Usage(format!(
            "probe --bench: --count {count} is out of range; give 1 to {MAX_COUNT} messages per measurement (default 20000)"
        )));
    }
    let in_flight = concurrency.unwrap_or(512);
    if in_flight == 0 {
        return Err(Error::Usage(
            "probe --bench: --concurrency 0 would never send anything; give at least 1 message in flight (default 512)".into(),
        ));
    }
    Ok((count, in_flight.min(count)))
}

/// Prints the load averages around a bench and writes its `bench.json`
/// into a new run folder under the reports dir.
pub(super) fn finish(
    global: &Global,
    report: &impl serde::Serialize,
    before: Option<[f64; 3]>,
    after: Option<[f64; 3]>,
) -> Result<ExitCode, Error> {
    let load = |l: Option<[f64; 3]>| {
        l.map(|[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
            .unwrap_or_else(|| "unknown".into())
    };
    println!(
        "load average before: {}   after: {}",
        load(before),
        load(after)
    );
    let dir = global
        .reports_dir
        .join(crate::runinfo::new_run_id(chrono::Utc::now()));
    std::fs::create_dir_all(&dir)
        .and_then(|_| {
            std::fs::write(
                dir.join("bench.json"),
                serde_json::to_vec_pretty(report).expect("serialises"),
            )
        })
        .map_err(|source| Error::ReportWrite {
            path: dir.clone(),
            source,
        })?;
    eprintln!("wrote {}", dir.join("bench.json").display());
    Ok(ExitCode::Success)
}

async fn measure(
    global: &Global,
    env: &LocalEnv,
    spec: &ProbeSpec,
    count: usize,
    in_flight: usize,
) -> Result<BenchReport, Error> {
    let url = env.stack.nats_url.as_deref().ok_or_else(|| {
        Error::Usage("bench needs a local-stack target with a [fleet] table (it measures the NATS round trip)".into())
    })?;
    let client = nats::connect(url, None).await?;
    let js = jetstream::new(client.clone());
    let dep = |what: &str, e: String| Error::Usage(format!("bench: {what}: {e}"));
    let stream = js
        .get_or_create_stream(stream::Config {
            name: BENCH_STREAM.into(),
            subjects: vec![format!("{RAW_SUBJECT}.>"), format!("{RT_SUBJECT}.>")],
            max_messages: 1_000_000,
            ..Default::default()
        })
        .await
        .map_err(|e| dep("create scratch stream", e.to_string()))?;

    // The probe shares the in-process fleet's connection, as (b)'s
    // requester shares its responder's.
    let probe_client = env
        .fleet
        .as_ref()
        .map(|f| f.nats_client())
        .unwrap_or_else(|| client.clone());

    // Peak RSS first: memory the allocator keeps from the throughput runs
    // would otherwise count, and VmHWM cannot be reset below current RSS.
    eprintln!("bench: {RSS_IN_FLIGHT} sentinels in flight for peak RSS…");
    let cfg = probe_config(spec, Some(RSS_IN_FLIGHT), Some(RSS_IN_FLIGHT));
    crate::probe::run_probe(&probe_client, &cfg, None).await?;
    let rss = peak_rss_mib();

    eprintln!("bench (a): {count} raw publishes, {in_flight} in flight…");
    let a = raw_publish(&js, count, in_flight)
        .await
        .map_err(|e| dep("raw publish", e))?;
    eprintln!("bench (b): {count} minimal round trips…");
    let (b, _) = minimal_round_trip(&client, &js, &stream, count, in_flight, &Carried::Counter)
        .await
        .map_err(|e| dep("minimal round trip", e))?;
    let cfg = probe_config(spec, Some(count), Some(in_flight));
    let (headers, body) = crate::probe::run::TaskEncoder::new(&cfg).sample();
    eprintln!(
        "bench (b'): {count} minimal round trips carrying a sentinel's header and {} body bytes…",
        body.len()
    );
    let sized = Carried::SentinelSized {
        headers,
        body_len: body.len(),
    };
    let (b_sized, _) = minimal_round_trip(&client, &js, &stream, count, in_flight, &sized)
        .await
        .map_err(|e| dep("sentinel-sized minimal round trip", e))?;
    eprintln!("bench (c): {count} sentinel round trips through the fleet…");
    let (progress, bar) = progress_bar(global, count, "sentinels");
    let c_out = crate::probe::run_probe(&probe_client, &cfg, progress).await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let c = c_out.throughput_per_s;
    warn_unclean(&c_out);

    eprintln!("bench (d): {ONE_IN_FLIGHT_COUNT} minimal, then {ONE_IN_FLIGHT_COUNT} sentinel round trips, one in flight…");
    let (_, minimal) = minimal_round_trip(
        &client,
        &js,
        &stream,
        ONE_IN_FLIGHT_COUNT,
        1,
        &Carried::Counter,
    )
    .await
    .map_err(|e| dep("minimal round trip, one in flight", e))?;
    let cfg = probe_config(spec, Some(ONE_IN_FLIGHT_COUNT), Some(1));
    let d_out = crate::probe::run_probe(&probe_client, &cfg, None).await?;
    warn_unclean(&d_out);

    let _ = js.delete_stream(BENCH_STREAM).await;

    let row = |m: &str, v: f64| Row {
        measurement: m.into(),
        messages: count,
        in_flight,
        per_second: v,
        vs_raw: v / a,
        vs_minimal: v / b,
    };
    Ok(BenchReport {
        build: BUILD,
        c_over_a: c / a,
        c_over_b: c / b,
        c_over_b_sentinel_sized: c / b_sized,
        b_sentinel_sized_over_b: b_sized / b,
        rows: vec![
            row("(a) JetStream publish+ack", a),
            row("(b) minimal round trip", b),
            row("(b') minimal round trip, sentinel-sized", b_sized),
            row("(c) sentinel round trip via fleet", c),
        ],
        peak_rss_mib_10k_in_flight: rss,
        sentinel_latency_ms: Spread::from(&c_out.latency),
        one_in_flight: OneInFlight::new(ONE_IN_FLIGHT_COUNT, &minimal, &d_out.latency),
        load_average_before: None,
        load_average_after: None,
    })
}

fn warn_unclean(out: &crate::probe::ProbeOutcome) {
    if !out.passed() {
        eprintln!(
            "warning: sentinel round trips were not all clean: {}",
            out.failure_reasons().join("; ")
        );
    }
}

async fn raw_publish(
    js: &jetstream::Context,
    count: usize,
    in_flight: usize,
) -> Result<f64, String> {
    // At most `in_flight` acks awaited at once, each collected as it
    // comes: memory stays with what is in flight, not with the count.
    let subject = async_nats::Subject::from(format!("{RAW_SUBJECT}.x"));
    let start = Instant::now();
    let mut acks = FuturesUnordered::new();
    for i in 0..count {
        if acks.len() >= in_flight {
            if let Some(acked) = acks.next().await {
                acked?;
            }
        }
        let ack = js
            .publish(subject.clone(), format!("{i}").into())
            .await
            .map_err(|e| e.to_string())?;
        acks.push(async move { ack.await.map(|_| ()).map_err(|e| e.to_string()) });
    }
    while let Some(acked) = acks.next().await {
        acked?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// What a minimal round trip's message carries besides its counter.
enum Carried {
    /// The counter alone, no header: the transport's floor.
    Counter,
    /// A sentinel's headers, and the counter padded to its body's length.
    SentinelSized {
        headers: async_nats::HeaderMap,
        body_len: usize,
    },
}

impl Carried {
    fn body(&self, i: u64) -> bytes::Bytes {
        let mut body = i.to_string();
        if let Carried::SentinelSized { body_len, .. } = self {
            body.push(' ');
            let pad = body_len.saturating_sub(body.len());
            body.extend(std::iter::repeat_n('x', pad));
        }
        body.into()
    }

    /// The counter a reply carries back.
    fn counter(payload: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(payload).ok()?;
        text.split(' ').next()?.parse().ok()
    }
}

async fn minimal_round_trip(
    client: &async_nats::Client,
    js: &jetstream::Context,
    stream: &stream::Stream,
    count: usize,
    in_flight: usize,
    carried: &Carried,
) -> Result<(f64, LatencySummary), String> {
    let consumer = stream
        .get_or_create_consumer(
            "firedrill-bench-bare",
            pull::Config {
                durable_name: Some("firedrill-bench-bare".into()),
                filter_subject: format!("{RT_SUBJECT}.>"),
                max_ack_pending: (in_flight * 2).max(20_000) as i64,
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let responder_client = client.clone();
    let responder = tokio::spawn(async move {
        let Ok(mut msgs) = consumer.messages().await else {
            return;
        };
        while let Some(Ok(msg)) = msgs.next().await {
            let _ = responder_client
                .publish(RT_REPLY, msg.payload.clone())
                .await;
            let _ = msg.ack().await;
        }
    });

    // Each reply's read time goes back to the publisher, which measures
    // from just before its publish, as the probe does.
    let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Instant>>>> = Arc::default();
    let mut replies = client
        .subscribe(RT_REPLY)
        .await
        .map_err(|e| e.to_string())?;
    let matcher = {
        let pending = pending.clone();
        tokio::spawn(async move {
            while let Some(m) = replies.next().await {
                let received = Instant::now();
                let id = Carried::counter(&m.payload);
                if let Some(tx) = id.and_then(|id| pending.lock().expect("poisoned").remove(&id)) {
                    let _ = tx.send(received);
                }
            }
        })
    };
    client.flush().await.map_err(|e| e.to_string())?;

    // As in (a): at most `in_flight` round trips awaited at once, each
    // recorded as it ends.
    let subject = async_nats::Subject::from(format!("{RT_SUBJECT}.x"));
    let start = Instant::now();
    let mut latencies = Latencies::default();
    let mut round_trips = FuturesUnordered::new();
    for i in 0..count as u64 {
        if round_trips.len() >= in_flight {
            if let Some(Some(latency)) = round_trips.next().await {
                latencies.record(latency);
            }
        }
        let (tx, rx) = oneshot::channel();
        pending.lock().expect("poisoned").insert(i, tx);
        let sent_at = Instant::now();
        let subject = subject.clone();
        let published = match carried {
            Carried::Counter => js.publish(subject, carried.body(i)).await,
            Carried::SentinelSized { headers, .. } => {
                js.publish_with_headers(subject, headers.clone(), carried.body(i))
                    .await
            }
        };
        let ack = published.map_err(|e| e.to_string())?;
        round_trips.push(async move {
            match ack.await {
                Ok(_) => match tokio::time::timeout(Duration::from_secs(30), rx).await {
                    Ok(Ok(received)) => Some(received.saturating_duration_since(sent_at)),
                    _ => None,
                },
                Err(_) => None,
            }
        });
    }
    while let Some(latency) = round_trips.next().await {
        if let Some(latency) = latency {
            latencies.record(latency);
        }
    }
    let elapsed = start.elapsed();
    responder.abort();
    matcher.abort();
    let summary = latencies.summary();
    let ok = summary.count;
    if ok < count as u64 {
        return Err(format!(
            "only {ok} of {count} minimal round trips completed"
        ));
    }
    Ok((ok as f64 / elapsed.as_secs_f64(), summary))
}

/// The load averages of `/proc/loadavg`, when there is one.
pub(super) fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Peak resident set size of this process so far (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_concurrency_out_of_range_are_usage_errors() {
        assert_eq!(sizes(None, None).unwrap(), (20_000, 512));
        assert_eq!(sizes(Some(100), Some(10_000_000)).unwrap(), (100, 100));
        assert_eq!(sizes(Some(1), Some(1)).unwrap(), (1, 1));
        for (count, concurrency, says) in [
            (Some(0), None, "--count 0"),
            (Some(MAX_COUNT + 1), None, "--count 1000001"),
            (None, Some(0), "--concurrency 0"),
        ] {
            let err = sizes(count, concurrency).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn sentinel_sized_bodies_are_as_long_as_a_sentinel_and_carry_their_counter() {
        let sized = Carried::SentinelSized {
            headers: async_nats::HeaderMap::new(),
            body_len: 180,
        };
        for i in [0u64, 7, 123_456, u64::MAX] {
            let body = sized.body(i);
            assert_eq!(body.len(), 180);
            assert_eq!(Carried::counter(&body), Some(i));
            assert_eq!(Carried::counter(&Carried::Counter.body(i)), Some(i));
        }
        // A body shorter than the counter is never cut short.
        let tiny = Carried::SentinelSized {
            headers: async_nats::HeaderMap::new(),
            body_len: 2,
        };
        assert_eq!(Carried::counter(&tiny.body(123_456)), Some(123_456));
        assert_eq!(Carried::counter(b"not a counter"), None);
    }
}
