//! HTTP probes: requests with a fresh W3C `traceparent` each, judged on
//! status, a JSON pointer in the body and the trace id coming back; the
//! same [`ProbeOutcome`] (HDR latencies, ids of what timed out, failed or
//! mismatched) as a NATS probe, so reports show both alike.
//!
//! [`judge`] is pure: one answer against the expectations. [`run_http_probe`]
//! sends, bounded by `concurrency`, each request under `timeout`.

use super::latency::Latencies;
use super::traceparent::TraceParent;
use crate::model::probe::{
    ProbeOutcome, PublishFailure, SentTask, SentinelRef, TraceMismatch, HTTP_PROBE_KIND,
};
use chrono::Utc;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of one answer an HTTP probe reads.
pub const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

pub use crate::model::http_probe::{
    HttpExpect, HttpProbeConfig, TraceIdFrom, TASK_ID_VAR, TRACE_ID_VAR,
};

/// What one answer says, as far as the probe cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    Ok,
    /// Status or body not as expected (the reason says how).
    Unexpected(String),
    /// The trace id came back different, or not at all (`received` empty).
    TraceMismatch {
        received: String,
    },
}

/// Judges one answer (pure). `header` looks a response header up.
pub fn judge(
    expect: &HttpExpect,
    sent_trace_id: &str,
    status: u16,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Judged {
    let status_ok = if expect.status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.status.contains(&status)
    };
    if !status_ok {
        let want = if expect.status.is_empty() {
            "a 2xx".to_string()
        } else {
            expect
                .status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Judged::Unexpected(format!("HTTP {status}, expected {want}"));
    }
    let needs_json =
        expect.json_pointer.is_some() || matches!(expect.trace_id, Some(TraceIdFrom::Body(_)));
    let json: Option<serde_json::Value> = if needs_json {
        match serde_json::from_slice(body) {
            Ok(v) => Some(v),
            Err(e) => return Judged::Unexpected(format!("the body is not JSON: {e}")),
        }
    } else {
        None
    };
    if let (Some(pointer), Some(json)) = (&expect.json_pointer, &json) {
        match json.pointer(pointer) {
            None => return Judged::Unexpected(format!("no {pointer} in the body")),
            Some(v) => {
                if let Some(want) = &expect.json_value {
                    if v != want {
                        return Judged::Unexpected(format!("{pointer} is {v}, expected {want}"));
                    }
                }
            }
        }
    }
    let received = match &expect.trace_id {
        None => return Judged::Ok,
        Some(TraceIdFrom::Header(name)) => header(name)
            .map(|v| match TraceParent::parse(&v) {
                Some(tp) => tp.trace_id_hex(),
                None => v.trim().to_ascii_lowercase(),
            })
            .unwrap_or_default(),
        Some(TraceIdFrom::Body(pointer)) => json
            .as_ref()
            .and_then(|j| j.pointer(pointer))
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default(),
    };
    if received == sent_trace_id {
        Judged::Ok
    } else {
        Judged::TraceMismatch { received }
    }
}

/// `text` with the request's placeholders filled.
pub fn fill(text: &str, task_id: &str, trace_id: &str) -> String {
    text.replace(TASK_ID_VAR, task_id)
        .replace(TRACE_ID_VAR, trace_id)
}

/// One request's fate.
enum Fate {
    Answered { latency: Duration, judged: Judged },
    TimedOut,
    Failed(String),
}

/// Sends `cfg.count` requests, at most `cfg.concurrency` at once, and
/// returns what they observed. Never fails as a whole: a dead service is
/// every request failed.
pub async fn run_http_probe(cfg: &HttpProbeConfig, http: &reqwest::Client) -> ProbeOutcome {
    let started_at = Utc::now();
    let wall = Instant::now();
    let cfg = Arc::new(cfg.clone());
    let run = started_at.timestamp_millis();
    let results: Vec<(SentTask, Fate)> = futures::stream::iter(0..cfg.count)
        .map(|i| {
            let cfg = cfg.clone();
            let http = http.clone();
            async move {
                let tp = TraceParent::random();
                let task_id = format!("{}-{run}-{i:06}", cfg.name);
                let trace_id = tp.trace_id_hex();
                let fate = send_one(&cfg, &http, &tp, &task_id, &trace_id).await;
                let sent = SentTask {
                    task_id,
                    trace_id,
                    span_id: tp.span_id_hex(),
                    envelope_trace_id: None,
                };
                (sent, fate)
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;

    let mut latencies = Latencies::default();
    let mut out = ProbeOutcome {
        name: cfg.name.clone(),
        subject: format!("{} {}", cfg.method, cfg.url),
        agent_type: HTTP_PROBE_KIND.to_string(),
        started_at,
        finished_at: started_at,
        sent: results.len() as u64,
        acked: 0,
        completed: 0,
        timed_out: Vec::new(),
        duplicated: Vec::new(),
        trace_mismatches: Vec::new(),
        publish_failures: Vec::new(),
        latency: Default::default(),
        throughput_per_s: 0.0,
        sentinel: None,
        tasks: Vec::with_capacity(results.len()),
    };
    for (mut task, fate) in results {
        match fate {
            Fate::Answered { latency, judged } => {
                out.acked += 1;
                latencies.record(latency);
                match judged {
                    Judged::Ok => {
                        out.completed += 1;
                        task.envelope_trace_id = Some(task.trace_id.clone());
                    }
                    Judged::Unexpected(reason) => out.publish_failures.push(PublishFailure {
                        task_id: task.task_id.clone(),
                        reason,
                    }),
                    Judged::TraceMismatch { received } => {
                        task.envelope_trace_id = Some(received.clone());
                        out.trace_mismatches.push(TraceMismatch {
                            task_id: task.task_id.clone(),
                            sent: task.trace_id.clone(),
                            received,
                        })
                    }
                }
            }
            Fate::TimedOut => out.timed_out.push(task.task_id.clone()),
            Fate::Failed(reason) => out.publish_failures.push(PublishFailure {
                task_id: task.task_id.clone(),
                reason,
            }),
        }
        out.tasks.push(task);
    }
    // Reports list ids in request order whatever order answers came in.
    out.tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    out.timed_out.sort();
    out.publish_failures
        .sort_by(|a, b| a.task_id.cmp(&b.task_id));
    out.trace_mismatches
        .sort_by(|a, b| a.task_id.cmp(&b.task_id));
    out.sentinel = out.tasks.first().map(|t| SentinelRef {
        task_id: t.task_id.clone(),
        trace_id: t.trace_id.clone(),
    });
    out.finished_at = Utc::now();
    out.latency = latencies.summary();
    let secs = wall.elapsed().as_secs_f64();
    out.throughput_per_s = if secs > 0.0 {
        out.completed as f64 / secs
    } else {
        0.0
    };
    out
}

async fn send_one(
    cfg: &HttpProbeConfig,
    http: &reqwest::Client,
    tp: &TraceParent,
    task_id: &str,
    trace_id: &str,
) -> Fate {
    let method = match reqwest::Method::from_bytes(cfg.method.as_bytes()) {
        Ok(m) => m,
        Err(e) => return Fate::Failed(format!("method {:?}: {e}", cfg.method)),
    };
    let mut req = http
        .request(method, fill(&cfg.url, task_id, trace_id))
        .timeout(cfg.timeout)
        .header("traceparent", tp.to_string());
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), fill(v, task_id, trace_id));
    }
    if let Some(body) = &cfg.body {
        req = req.body(fill(body, task_id, trace_id));
    }
    let start = Instant::now();
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Fate::TimedOut,
        Err(e) => {
            return Fate::Failed(format!(
                "request failed: {}",
                crate::clients::http::describe(&e)
            ))
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    // The whole answer (head and body) is the round trip, bounded by the
    // timeout, and by MAX_ANSWER_BYTES: a service that streams without end
    // must not take the probe's memory with it.
    let body = match crate::clients::http::read_body(resp, MAX_ANSWER_BYTES).await {
        Ok(b) => b,
        Err(crate::clients::http::BodyError::Read(e)) if e.is_timeout() => return Fate::TimedOut,
        Err(crate::clients::http::BodyError::Read(e)) => {
            return Fate::Failed(format!(
                "reading the answer failed: {}",
                crate::clients::http::describe(&e)
            ))
        }
        Err(crate::clients::http::BodyError::TooLarge(_)) => {
            return Fate::Failed(format!(
                "the answer is larger than {}; a probe reads at most that much",
                crate::clients::http::human_bytes(MAX_ANSWER_BYTES)
            ))
        }
    };
    let latency = start.elapsed();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Fate::Answered {
        latency,
        judged: judge(&cfg.expect, trace_id, status, &header, &body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn no_header(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn status_expectations() {
        let any2xx = HttpExpect::default();
        assert_eq!(judge(&any2xx, SENT, 204, &no_header, b""), Judged::Ok);
        assert_eq!(
            judge(&any2xx, SENT, 500, &no_header, b""),
            Judged::Unexpected("HTTP 500, expected a 2xx".into())
        );
        let exact = HttpExpect {
            status: vec![202, 200],
            ..Default::default()
        };
        assert_eq!(judge(&exact, SENT, 202, &no_header, b""), Judged::Ok);
        assert_eq!(
            judge(&exact, SENT, 201, &no_header, b""),
            Judged::Unexpected("HTTP 201, expected 202 or 200".into())
        );
    }

    #[test]
    fn json_pointer_expectations() {
        let e = HttpExpect {
            json_pointer: Some("/status".into()),
            json_value: Some(serde_json::json!("accepted")),
            ..Default::default()
        };
        assert_eq!(
            judge(&e, SENT, 200, &no_header, br#"{"status":"accepted"}"#),
            Judged::Ok
        );
        assert_eq!(
            judge(&e, SENT, 200, &no_header, br#"{"status":"queued"}"#),
            Judged::Unexpected(r#"/status is "queued", expected "accepted""#.into())
        );
        assert_eq!(
            judge(&e, SENT, 200, &no_header, br#"{}"#),
            Judged::Unexpected("no /status in the body".into())
        );
        assert!(matches!(
            judge(&e, SENT, 200, &no_header, b"<html>"),
            Judged::Unexpected(r) if r.starts_with("the body is not JSON")
        ));
    }

    #[test]
    fn trace_id_from_a_header_or_the_body() {
        let from_header = HttpExpect {
            trace_id: Some(TraceIdFrom::Header("traceparent".into())),
            ..Default::default()
        };
        let tp = format!("00-{SENT}-00f067aa0ba902b7-01");
        let echo = |name: &str| (name == "traceparent").then(|| tp.clone());
        assert_eq!(judge(&from_header, SENT, 200, &echo, b""), Judged::Ok);
        assert_eq!(
            judge(&from_header, SENT, 200, &no_header, b""),
            Judged::TraceMismatch {
                received: String::new()
            }
        );
        let other =
            |_: &str| Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        assert_eq!(
            judge(&from_header, SENT, 200, &other, b""),
            Judged::TraceMismatch {
                received: "0af7651916cd43dd8448eb211c80319c".into()
            }
        );
        let bare = |_: &str| Some(SENT.to_ascii_uppercase());
        let x_trace = HttpExpect {
            trace_id: Some(TraceIdFrom::Header("x-trace-id".into())),
            ..Default::default()
        };
        assert_eq!(judge(&x_trace, SENT, 200, &bare, b""), Judged::Ok);
        let from_body = HttpExpect {
            trace_id: Some(TraceIdFrom::Body("/trace_id".into())),
            ..Default::default()
        };
        let body = format!(r#"{{"trace_id":"{SENT}"}}"#);
        assert_eq!(
            judge(&from_body, SENT, 200, &no_header, body.as_bytes()),
            Judged::Ok
        );
        assert_eq!(
            judge(&from_body, SENT, 200, &no_header, b"{}"),
            Judged::TraceMismatch {
                received: String::new()
            }
        );
    }

    #[test]
    fn placeholders_are_filled_per_request() {
        assert_eq!(
            fill("/t/{{request.id}}?tr={{request.trace_id}}", "r-1", SENT),
            format!("/t/r-1?tr={SENT}")
        );
    }
}
