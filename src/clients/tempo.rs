//! Tempo's trace-by-id API (v1 `/api/traces/<id>`), decoded into [`Span`]s.

use crate::model::span::{decode_trace, IdEncoding, Span};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TempoError {
    #[error("tempo {url}: trace {trace_id} not found (404); spans may not be flushed yet, or the trace was never received")]
    NotFound { url: String, trace_id: String },
    #[error("tempo {url}: {reason}; check tempo_url in the target and that Tempo's query frontend is reachable")]
    Http { url: String, reason: String },
    #[error("tempo {url} answered GET /api/traces/{trace_id} with {detail}")]
    TooLarge {
        url: String,
        trace_id: String,
        detail: super::http::TooLarge,
    },
    #[error("tempo {url}: trace {trace_id}: {reason}")]
    Decode {
        url: String,
        trace_id: String,
        reason: String,
    },
}

impl TempoError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, TempoError::NotFound { .. })
    }
}

pub struct TempoClient {
    base: String,
    http: reqwest::Client,
}

impl TempoClient {
    pub fn new(base: &str) -> Self {
        TempoClient {
            base: base.trim_end_matches('/').to_string(),
            http: super::http::client(Duration::from_secs(30)),
        }
    }

    /// Spans of trace `trace_id` (32 hex chars).
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, TempoError> {
        let url = format!("{}/api/traces/{trace_id}", self.base);
        let http_err = |reason: String| TempoError::Http {
            url: url.clone(),
            reason,
        };
        let resp = super::http::send_with_retry(|| self.http.get(&url), 3)
            .await
            .map_err(|e| http_err(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(TempoError::NotFound {
                url: self.base.clone(),
                trace_id: trace_id.to_string(),
            });
        }
        let body = super::http::read_body(resp, super::http::max_response_bytes())
            .await
            .map_err(|e| match e {
                super::http::BodyError::TooLarge(detail) => TempoError::TooLarge {
                    url: self.base.clone(),
                    trace_id: trace_id.to_string(),
                    detail,
                },
                super::http::BodyError::Read(e) => http_err(e.to_string()),
            })?;
        if !status.is_success() {
            let text = super::http::snippet(&body, 2000);
            return Err(http_err(format!("HTTP {status}: {}", text.trim())));
        }
        decode_trace(&body, IdEncoding::Base64).map_err(|e| TempoError::Decode {
            url: self.base.clone(),
            trace_id: trace_id.to_string(),
            reason: e.to_string(),
        })
    }
}
