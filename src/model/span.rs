//! The span model the audit works on, decoded from Tempo's trace-by-id
//! answers (v1 `batches`, v2 `{"trace":{"resourceSpans":..}}`; `scopeSpans`
//! or the pre-2.0 `instrumentationLibrarySpans`) and from OTLP/JSON export
//! requests (`resourceSpans`). Tempo writes ids in base64 (protobuf JSON),
//! OTLP/JSON in hex; both become lowercase hex here.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Span attribute the reference fleet sets to the task id, so spans that
/// escaped into another trace can still be tied to their task.
pub const TASK_ID_ATTR: &str = "firedrill.task_id";

/// One span, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lowercase hex chars.
    pub trace_id: String,
    /// 16 lowercase hex chars.
    pub span_id: String,
    /// `None` for a root span (absent, empty or all-zero in the source).
    pub parent_span_id: Option<String>,
    pub name: String,
    /// The resource's `service.name`; empty if it has none.
    pub service: String,
    /// The `firedrill.task_id` attribute, if the span has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// How ids are written in the JSON being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdEncoding {
    /// Tempo's HTTP API (protobuf JSON mapping of `bytes`).
    Base64,
    /// OTLP/JSON (OTLP/HTTP with `Content-Type: application/json`).
    Hex,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanDecodeError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("no `batches` or `resourceSpans` (nor `trace.resourceSpans`) array in the trace")]
    NoResourceSpans,
    #[error("span {index} of resource {resource}: {reason}")]
    BadSpan {
        resource: usize,
        index: usize,
        reason: String,
    },
}

/// Decodes a trace-by-id answer or an OTLP/JSON export request body.
/// Unknown keys (`metrics`, `status`, `message`, ...) are ignored.
pub fn decode_trace(body: &[u8], ids: IdEncoding) -> Result<Vec<Span>, SpanDecodeError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| SpanDecodeError::Json(e.to_string()))?;
    let resources = ["batches", "resourceSpans"]
        .iter()
        .find_map(|k| v.get(k).or_else(|| v.get("trace").and_then(|t| t.get(k))))
        .and_then(Value::as_array)
        .ok_or(SpanDecodeError::NoResourceSpans)?;
    let mut out = Vec::new();
    for (r, rs) in resources.iter().enumerate() {
        let service =
            attr_string(rs.pointer("/resource/attributes"), "service.name").unwrap_or_default();
        let scopes = ["scopeSpans", "instrumentationLibrarySpans"]
            .iter()
            .find_map(|k| rs.get(k).and_then(Value::as_array));
        let Some(scopes) = scopes else { continue };
        let mut index = 0;
        for scope in scopes {
            let Some(spans) = scope.get("spans").and_then(Value::as_array) else {
                continue;
            };
            for s in spans {
                let bad = |reason: String| SpanDecodeError::BadSpan {
                    resource: r,
                    index,
                    reason,
                };
                let trace_id = id(s, "traceId", 16, ids).map_err(bad)?;
                let span_id = id(s, "spanId", 8, ids).map_err(bad)?;
                let parent = id(s, "parentSpanId", 8, ids).map_err(bad)?;
                let (Some(trace_id), Some(span_id)) = (trace_id, span_id) else {
                    return Err(bad("missing traceId or spanId".into()));
                };
                out.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id: parent,
                    name: s
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    service: service.clone(),
                    task_id: attr_string(s.get("attributes"), TASK_ID_ATTR),
                });
                index += 1;
            }
        }
    }
    Ok(out)
}

/// An id field as lowercase hex; `Ok(None)` when absent, empty or all zero.
fn id(span: &Value, key: &str, len: usize, enc: IdEncoding) -> Result<Option<String>, String> {
    let Some(raw) = span.get(key).and_then(Value::as_str) else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    let bytes = match enc {
        IdEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| format!("`{key}` {raw:?} is not base64: {e}"))?,
        IdEncoding::Hex => {
            if raw.len() % 2 != 0 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("`{key}` {raw:?} is not hex"));
            }
            (0..raw.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).expect("checked hex"))
                .collect()
        }
    };
    if bytes.len() != len {
        return Err(format!(
            "`{key}` {raw:?} is {} bytes, expected {len}",
            bytes.len()
        ));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    Ok(Some(bytes.iter().map(|b| format!("{b:02x}")).collect()))
}

/// The string value of attribute `key` in an OTLP `attributes` array.
fn attr_string(attrs: Option<&Value>, key: &str) -> Option<String> {
    attrs?
        .as_array()?
        .iter()
        .find(|a| a.get("key").and_then(Value::as_str) == Some(key))?
        .pointer("/value/stringValue")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_agree() {
        let b64 = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"W47/95gDgQPSabYzgT/HAA==","spanId":"7uGbfsPBsQA=","parentSpanId":"","name":"a"}]}]}]}"#;
        let hex = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"5b8eFFF798038103D269B633813FC700","spanId":"eee19b7ec3c1b100","name":"a"}]}]}]}"#;
        let a = decode_trace(b64, IdEncoding::Base64).unwrap();
        let b = decode_trace(hex, IdEncoding::Hex).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].trace_id, "5b8efff798038103d269b633813fc700");
        assert_eq!(a[0].parent_span_id, None);
    }

    #[test]
    fn rejects_bad_ids_and_shapes() {
        let short = br#"{"batches":[{"scopeSpans":[{"spans":[{"traceId":"AAAA","spanId":"7uGbfsPBsQA="}]}]}]}"#;
        assert!(matches!(
            decode_trace(short, IdEncoding::Base64),
            Err(SpanDecodeError::BadSpan { .. })
        ));
        assert_eq!(
            decode_trace(b"{}", IdEncoding::Base64),
            Err(SpanDecodeError::NoResourceSpans)
        );
        assert!(matches!(
            decode_trace(b"nope", IdEncoding::Hex),
            Err(SpanDecodeError::Json(_))
        ));
    }
}
