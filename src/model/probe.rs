//! What a probe run observed, as runners pass it on and the report shows
//! it. Filled by [`crate::probe`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `agent_type` of an HTTP probe's outcome (its `subject` is `METHOD URL`).
pub const HTTP_PROBE_KIND: &str = "http";

/// A task the worker answered with a different trace id than it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceMismatch {
    pub task_id: String,
    pub sent: String,
    pub received: String,
}

/// One sentinel as sent and answered, for audits that follow its trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTask {
    pub task_id: String,
    pub trace_id: String,
    /// The `traceparent`'s span id: the probe's publish span.
    pub span_id: String,
    /// The result envelope's `trace_id`; `None` if no result came.
    pub envelope_trace_id: Option<String>,
}

/// A task whose publish was not acknowledged by JetStream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishFailure {
    pub task_id: String,
    pub reason: String,
}

/// The first sentinel of a run, for templates (`{{sentinel.task_id}}`) and links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelRef {
    pub task_id: String,
    pub trace_id: String,
}

/// Everything a probe run observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub name: String,
    pub subject: String,
    pub agent_type: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub sent: u64,
    pub acked: u64,
    pub completed: u64,
    pub timed_out: Vec<String>,
    pub duplicated: Vec<String>,
    pub trace_mismatches: Vec<TraceMismatch>,
    pub publish_failures: Vec<PublishFailure>,
    pub latency: LatencySummary,
    /// Completed round trips per second of wall time.
    pub throughput_per_s: f64,
    pub sentinel: Option<SentinelRef>,
    /// Every task sent, in publish order (not in the report: it can be
    /// 10 000 long; the trace audit reads it).
    #[serde(skip)]
    pub tasks: Vec<SentTask>,
}

impl ProbeOutcome {
    /// A probe passes when every task came back in time with its own trace id.
    pub fn passed(&self) -> bool {
        self.sent > 0
            && self.timed_out.is_empty()
            && self.trace_mismatches.is_empty()
            && self.publish_failures.is_empty()
            && self.completed == self.sent
    }

    /// One line per failure class, naming the task ids (capped).
    pub fn failure_reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.sent == 0 {
            out.push("no sentinel was sent".to_string());
        }
        let http = self.agent_type == HTTP_PROBE_KIND;
        if !self.publish_failures.is_empty() {
            let ids: Vec<&str> = self
                .publish_failures
                .iter()
                .map(|f| f.task_id.as_str())
                .collect();
            let what = if http {
                "request(s) failed or were answered unexpectedly (first"
            } else {
                "publish(es) not acknowledged by JetStream ("
            };
            out.push(format!(
                "{} {what}{}): {}",
                ids.len(),
                if http {
                    format!(": {}", self.publish_failures[0].reason)
                } else {
                    self.publish_failures[0].reason.clone()
                },
                list_ids(&ids)
            ));
        }
        if !self.timed_out.is_empty() {
            let ids: Vec<&str> = self.timed_out.iter().map(String::as_str).collect();
            out.push(format!(
                "{} task(s) timed out: {}",
                ids.len(),
                list_ids(&ids)
            ));
        }
        if !self.trace_mismatches.is_empty() {
            let ids: Vec<&str> = self
                .trace_mismatches
                .iter()
                .map(|m| m.task_id.as_str())
                .collect();
            let what = if http {
                "answer(s) did not carry their request's trace id back"
            } else {
                "result(s) carried a different trace_id"
            };
            out.push(format!("{} {what}: {}", ids.len(), list_ids(&ids)));
        }
        out
    }
}

fn list_ids(ids: &[&str]) -> String {
    const SHOWN: usize = 20;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(
            " … and {} more (see report.json)",
            ids.len() - SHOWN
        ));
    }
    s
}

/// Percentiles of one probe's round trips, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Non-cumulative counts per bucket `(previous le, le_ms]`.
    pub buckets: Vec<LatencyBucket>,
    /// The HDR histogram (µs) these figures come from, V2 deflate, base64
    /// ([`crate::model::hdr`]); absent in reports before schema 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

impl LatencySummary {
    /// The figures of a histogram of round trips in microseconds, with the
    /// histogram itself kept so that reports can be merged exactly.
    pub fn from_histogram(hist: &hdrhistogram::Histogram<u64>) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: hist.len(),
            min_ms: ms(hist.min()),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
            buckets: buckets(hist),
            histogram: Some(crate::model::hdr::encode(hist)),
        }
    }
}

/// A coarse distribution for charts: counts per power-of-two ms bucket.
fn buckets(hist: &hdrhistogram::Histogram<u64>) -> Vec<LatencyBucket> {
    let mut out: Vec<LatencyBucket> = Vec::new();
    let mut upper_ms = 1.0f64;
    let max_ms = hist.max() as f64 / 1000.0;
    let mut below = 0u64;
    loop {
        let upper_us = (upper_ms * 1000.0) as u64;
        let cum = hist.count_between(0, upper_us);
        out.push(LatencyBucket {
            le_ms: upper_ms,
            count: cum - below,
        });
        below = cum;
        if upper_ms >= max_ms || out.len() >= 24 {
            break;
        }
        upper_ms *= 2.0;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyBucket {
    pub le_ms: f64,
    pub count: u64,
}
