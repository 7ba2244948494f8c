//! Jaeger's query service: one trace by id (`GET /api/traces/{id}`, the
//! JSON the Jaeger UI reads), decoded into [`Span`]s.
//!
//! The answer is `{"data":[trace],"total":0,"limit":0,"offset":0,"errors":null}`;
//! a trace has `spans` (hex `traceID`/`spanID`, `operationName`,
//! `references` of `CHILD_OF`/`FOLLOWS_FROM`, `processID`, `tags`) and
//! `processes` (`serviceName` per process id). A missing trace is HTTP 404
//! with `{"data":null,...,"errors":[{"code":404,"msg":"trace not found"}]}`.

use crate::model::span::{Span, TASK_ID_ATTR};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JaegerError {
    #[error("jaeger {url}: trace {trace_id} not found (404); spans may not be flushed yet, or the trace was never received")]
    NotFound { url: String, trace_id: String },
    #[error("jaeger {url} is unreachable: {reason}; check jaeger_url in the target and that Jaeger's query service (port 16686) is reachable")]
    Unreachable { url: String, reason: String },
    #[error("jaeger {url} answered GET /api/traces/{trace_id} with HTTP {status}: {message}")]
    Http {
        url: String,
        trace_id: String,
        status: u16,
        message: String,
    },
    #[error("jaeger {url} answered GET /api/traces/{trace_id} with {detail}")]
    TooLarge {
        url: String,
        trace_id: String,
        detail: super::http::TooLarge,
    },
    #[error("jaeger {url}: trace {trace_id}: {reason}")]
    Decode {
        url: String,
        trace_id: String,
        reason: String,
    },
}

impl JaegerError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, JaegerError::NotFound { .. })
    }
}

pub struct JaegerClient {
    base: String,
    http: reqwest::Client,
}

impl JaegerClient {
    pub fn new(base: &str) -> Self {
        JaegerClient {
            base: base.trim_end_matches('/').to_string(),
            http: super::http::client(Duration::from_secs(30)),
        }
    }

    /// Spans of trace `trace_id` (32 hex chars).
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, JaegerError> {
        let url = format!("{}/api/traces/{trace_id}", self.base);
        let unreachable = |e: &reqwest::Error| JaegerError::Unreachable {
            url: self.base.clone(),
            reason: super::http::describe(e),
        };
        let resp = super::http::send_with_retry(|| self.http.get(&url), 3)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = super::http::read_body(resp, super::http::max_response_bytes())
            .await
            .map_err(|e| match e {
                super::http::BodyError::TooLarge(detail) => JaegerError::TooLarge {
                    url: self.base.clone(),
                    trace_id: trace_id.to_string(),
                    detail,
                },
                super::http::BodyError::Read(e) => unreachable(&e),
            })?;
        decode_answer(&self.base, trace_id, status, &body)
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Vec<Trace>>,
    #[serde(default)]
    errors: Option<Vec<StructuredError>>,
}

#[derive(Deserialize)]
struct StructuredError {
    #[serde(default)]
    msg: String,
}

#[derive(Deserialize)]
struct Trace {
    #[serde(default)]
    spans: Vec<JSpan>,
    #[serde(default)]
    processes: BTreeMap<String, Process>,
}

#[derive(Deserialize)]
struct JSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(rename = "operationName", default)]
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
    /// Embedded instead of `processID` in some storage exports.
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "refType")]
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize, Clone)]
struct Process {
    #[serde(rename = "serviceName", default)]
    service_name: String,
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

/// Decodes an answer of `/api/traces/{id}` with its HTTP status.
pub fn decode_answer(
    base: &str,
    trace_id: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<Span>, JaegerError> {
    let env = serde_json::from_slice::<Envelope>(body);
    if status == 404 {
        return Err(JaegerError::NotFound {
            url: base.to_string(),
            trace_id: trace_id.to_string(),
        });
    }
    if !(200..300).contains(&status) {
        let message = match &env {
            Ok(Envelope {
                errors: Some(errors),
                ..
            }) if !errors.is_empty() => errors
                .iter()
                .map(|e| e.msg.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            _ => super::http::snippet(body, 500).trim().to_string(),
        };
        return Err(JaegerError::Http {
            url: base.to_string(),
            trace_id: trace_id.to_string(),
            status,
            message,
        });
    }
    let decode_err = |reason: String| JaegerError::Decode {
        url: base.to_string(),
        trace_id: trace_id.to_string(),
        reason,
    };
    let env = env.map_err(|e| decode_err(format!("not Jaeger's trace JSON: {e}")))?;
    let traces = env.data.unwrap_or_default();
    if traces.is_empty() {
        // Jaeger answers 404 for a missing trace; an empty `data` means the same.
        return Err(JaegerError::NotFound {
            url: base.to_string(),
            trace_id: trace_id.to_string(),
        });
    }
    let mut out = Vec::new();
    for trace in &traces {
        out.extend(spans_of(trace).map_err(decode_err)?);
    }
    Ok(out)
}

/// One trace's spans in the audit's model: ids as 32/16 lowercase hex
/// (Jaeger drops leading zeros of a 64-bit trace id's high half), the
/// parent from the references, the service from the span's process.
fn spans_of(trace: &Trace) -> Result<Vec<Span>, String> {
    let mut out = Vec::with_capacity(trace.spans.len());
    for (index, s) in trace.spans.iter().enumerate() {
        let bad = |what: &str, raw: &str| format!("span {index}: {what} {raw:?} is not a hex id");
        let trace_id = hex_id(&s.trace_id, 32).ok_or_else(|| bad("traceID", &s.trace_id))?;
        let span_id = hex_id(&s.span_id, 16).ok_or_else(|| bad("spanID", &s.span_id))?;
        let service = s
            .process_id
            .as_ref()
            .and_then(|p| trace.processes.get(p))
            .or(s.process.as_ref())
            .map(|p| p.service_name.clone())
            .unwrap_or_default();
        out.push(Span {
            parent_span_id: parent(s, &trace_id),
            trace_id,
            span_id,
            name: s.operation_name.clone(),
            service,
            task_id: s.tags.iter().find(|t| t.key == TASK_ID_ATTR).map(|t| {
                t.value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| t.value.to_string())
            }),
        });
    }
    Ok(out)
}

/// The parent as Jaeger reads it: the first `CHILD_OF` reference within
/// the same trace, else the first `FOLLOWS_FROM` one; a reference into
/// another trace is a link, not a parent (jaeger
/// `internal/storage/v2/elasticsearch/tracestore/ids.go` `getParentSpanId`).
fn parent(s: &JSpan, trace_id: &str) -> Option<String> {
    let same_trace = |r: &&Reference| hex_id(&r.trace_id, 32).as_deref() == Some(trace_id);
    let by_type = |t: &str| {
        s.references
            .iter()
            .filter(same_trace)
            .find(|r| r.ref_type == t)
            .and_then(|r| hex_id(&r.span_id, 16))
    };
    by_type("CHILD_OF").or_else(|| by_type("FOLLOWS_FROM"))
}

/// `raw` as `width` lowercase hex chars, zero-padded on the left; `None`
/// when it is not hex, too long, or all zero.
fn hex_id(raw: &str, width: usize) -> Option<String> {
    if raw.is_empty() || raw.len() > width || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if raw.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(format!("{:0>width$}", raw.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_fixtures::bytes(&format!("jaeger/{name}"))
    }

    #[test]
    fn decodes_jaegers_own_ui_fixture() {
        let spans = decode_answer("j", "1", 200, &fixture("trace-ui-01.json")).unwrap();
        assert_eq!(spans.len(), 5);
        assert!(spans
            .iter()
            .all(|s| s.trace_id == "00000000000000000000000000000001"));
        assert_eq!(spans[0].span_id, "0000000000000002");
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(spans[0].service, "service-x");
        assert_eq!(spans[0].name, "test-general-conversion");
        // CHILD_OF within the trace is the parent.
        assert_eq!(spans[2].parent_span_id.as_deref(), Some("0000000000000002"));
        assert_eq!(spans[2].service, "service-y");
        // A CHILD_OF into another trace is skipped for the one in this trace.
        assert_eq!(spans[3].name, "reference-test");
        assert_eq!(spans[3].parent_span_id.as_deref(), Some("0000000000000002"));
        assert_eq!(spans[4].parent_span_id.as_deref(), Some("0000000000000004"));
    }

    #[test]
    fn follows_from_is_the_parent_only_without_child_of() {
        let body = br#"{"data":[{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spans":[
          {"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"00f067aa0ba902b7","operationName":"consume",
           "references":[{"refType":"FOLLOWS_FROM","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"a2fb4a1d1a96d312"}],
           "processID":"p1","tags":[{"key":"firedrill.task_id","type":"string","value":"t-1"}]},
          {"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"10f067aa0ba902b7","operationName":"linked",
           "references":[{"refType":"FOLLOWS_FROM","traceID":"0000000000000000000000000000000f","spanID":"a2fb4a1d1a96d312"}],
           "processID":"p1","tags":[]}],
          "processes":{"p1":{"serviceName":"aegis-worker","tags":[]}}}],"total":0,"limit":0,"offset":0,"errors":null}"#;
        let spans = decode_answer("j", "x", 200, body).unwrap();
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("a2fb4a1d1a96d312"));
        assert_eq!(spans[0].task_id.as_deref(), Some("t-1"));
        assert_eq!(spans[0].service, "aegis-worker");
        assert_eq!(spans[1].parent_span_id, None, "a link into another trace");
    }

    #[test]
    fn not_found_and_errors_are_jaegers_words() {
        let err = decode_answer("j", "abc", 404, &fixture("trace-not-found.json")).unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let body = br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":500,"msg":"storage unavailable"}]}"#;
        let err = decode_answer("j", "abc", 500, body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "jaeger j answered GET /api/traces/abc with HTTP 500: storage unavailable"
        );
        let err = decode_answer("j", "abc", 200, b"<html>").unwrap_err();
        assert!(matches!(err, JaegerError::Decode { .. }), "{err:?}");
        let bad = br#"{"data":[{"spans":[{"traceID":"xyz","spanID":"1"}],"processes":{}}]}"#;
        let err = decode_answer("j", "abc", 200, bad).unwrap_err();
        assert!(
            err.to_string().contains("traceID \"xyz\" is not a hex id"),
            "{err}"
        );
    }

    #[test]
    fn ids_are_padded_and_lowercased() {
        assert_eq!(hex_id("1", 16).as_deref(), Some("0000000000000001"));
        assert_eq!(
            hex_id("4BF92F3577B34DA6A3CE929D0E0E4736", 32).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(hex_id("0000", 16), None);
        assert_eq!(hex_id("", 16), None);
        assert_eq!(hex_id("12345678901234567", 16), None);
        assert_eq!(hex_id("zz", 16), None);
    }
}
