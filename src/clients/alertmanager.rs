//! Alertmanager API v2: alerts, silences, status.

use super::http::{
    client, max_response_bytes, read_body, send_with_retry, snippet, BodyError, TooLarge,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// How much of an error body an error message quotes.
const ERROR_BODY_CHARS: usize = 2000;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum AmError {
    #[error("Alertmanager at {url} is unreachable: {reason}. Check the target's alertmanager_url and that Alertmanager is up")]
    Unreachable { url: String, reason: String },
    #[error("Alertmanager at {url} answered HTTP {status} to {what}: {body}")]
    Http {
        url: String,
        what: String,
        status: u16,
        body: String,
    },
    #[error("Alertmanager at {url} answered {what} with {detail}")]
    TooLarge {
        url: String,
        what: String,
        detail: TooLarge,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AmAlertStatus {
    pub state: String,
    #[serde(rename = "silencedBy", default)]
    pub silenced_by: Vec<String>,
    #[serde(rename = "inhibitedBy", default)]
    pub inhibited_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AmReceiver {
    pub name: String,
}

/// One alert as `GET /api/v2/alerts` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt")]
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<DateTime<Utc>>,
    pub fingerprint: String,
    #[serde(default)]
    pub receivers: Vec<AmReceiver>,
    pub status: AmAlertStatus,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual")]
    pub is_equal: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt")]
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SilenceState {
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Silence {
    pub id: String,
    pub status: SilenceState,
    pub comment: String,
    #[serde(rename = "endsAt")]
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct SilenceCreated {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

#[derive(Debug, Clone)]
pub struct Alertmanager {
    base: String,
    http: reqwest::Client,
}

impl Alertmanager {
    pub fn new(base_url: &str) -> Self {
        Alertmanager {
            base: base_url.trim_end_matches('/').to_string(),
            http: client(Duration::from_secs(15)),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Active (and, with `all`, silenced/inhibited) alerts.
    pub async fn alerts(&self, filter: &[(&str, &str)]) -> Result<Vec<AmAlert>, AmError> {
        let url = format!("{}/api/v2/alerts", self.base);
        let mut q: Vec<(String, String)> = filter
            .iter()
            .map(|(k, v)| ("filter".to_string(), format!("{k}=\"{v}\"")))
            .collect();
        q.push(("silenced".into(), "true".into()));
        q.push(("inhibited".into(), "true".into()));
        let resp = send_with_retry(|| self.http.get(&url).query(&q), 3)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.json(resp, "GET /api/v2/alerts").await
    }

    /// The configuration Alertmanager runs with, as YAML
    /// (`/api/v2/status`, `config.original`).
    pub async fn config_original(&self) -> Result<String, AmError> {
        #[derive(Deserialize)]
        struct Status {
            config: Config,
        }
        #[derive(Deserialize)]
        struct Config {
            original: String,
        }
        let url = format!("{}/api/v2/status", self.base);
        let resp = send_with_retry(|| self.http.get(&url), 3)
            .await
            .map_err(|e| self.unreachable(e))?;
        let s: Status = self.json(resp, "GET /api/v2/status").await?;
        Ok(s.config.original)
    }

    pub async fn create_silence(&self, s: &NewSilence) -> Result<String, AmError> {
        let url = format!("{}/api/v2/silences", self.base);
        let resp = send_with_retry(|| self.http.post(&url).json(s), 3)
            .await
            .map_err(|e| self.unreachable(e))?;
        let created: SilenceCreated = self.json(resp, "POST /api/v2/silences").await?;
        Ok(created.silence_id)
    }

    pub async fn get_silence(&self, id: &str) -> Result<Silence, AmError> {
        let url = format!("{}/api/v2/silence/{id}", self.base);
        let resp = send_with_retry(|| self.http.get(&url), 3)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.json(resp, "GET /api/v2/silence").await
    }

    /// Expires a silence; an already expired one is not an error.
    pub async fn expire_silence(&self, id: &str) -> Result<(), AmError> {
        let url = format!("{}/api/v2/silence/{id}", self.base);
        let resp = send_with_retry(|| self.http.delete(&url), 3)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // 500 "already expired" on 0.25: check the silence's state instead.
        if let Ok(s) = self.get_silence(id).await {
            if s.status.state == "expired" {
                return Ok(());
            }
        }
        let body = self.body(resp, "DELETE /api/v2/silence").await?;
        Err(AmError::Http {
            url: self.base.clone(),
            what: "DELETE /api/v2/silence".into(),
            status: status.as_u16(),
            body: snippet(&body, ERROR_BODY_CHARS),
        })
    }

    /// Alertmanager's UI listing alerts with this alert name.
    pub fn alerts_ui_url(&self, alertname: &str) -> String {
        let mut u = url::Url::parse(&format!("{}/", self.base))
            .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("static"));
        u.set_fragment(Some(&format!(
            "/alerts?filter=%7Balertname%3D%22{alertname}%22%7D"
        )));
        u.to_string()
    }

    fn unreachable(&self, e: reqwest::Error) -> AmError {
        AmError::Unreachable {
            url: self.base.clone(),
            reason: super::http::describe(&e),
        }
    }

    /// The body, at most [`max_response_bytes`].
    async fn body(&self, resp: reqwest::Response, what: &str) -> Result<Vec<u8>, AmError> {
        read_body(resp, max_response_bytes())
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(detail) => AmError::TooLarge {
                    url: self.base.clone(),
                    what: what.into(),
                    detail,
                },
                BodyError::Read(e) => self.unreachable(e),
            })
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        resp: reqwest::Response,
        what: &str,
    ) -> Result<T, AmError> {
        let status = resp.status().as_u16();
        let body = self.body(resp, what).await?;
        if !(200..300).contains(&status) {
            return Err(AmError::Http {
                url: self.base.clone(),
                what: what.into(),
                status,
                body: snippet(&body, ERROR_BODY_CHARS),
            });
        }
        serde_json::from_slice(&body).map_err(|e| AmError::Http {
            url: self.base.clone(),
            what: format!("{what} (undecodable: {e})"),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_fixtures::bytes(&format!("alertmanager/{name}"))
    }

    #[test]
    fn decodes_alerts_and_silences() {
        let a: Vec<AmAlert> = serde_json::from_slice(&fixture("alerts.json")).unwrap();
        assert_eq!(a[0].labels["alertname"], "WorkerImagePullBackOff");
        assert_eq!(a[0].starts_at.to_rfc3339(), "2026-11-23T09:54:54.851+00:00");
        assert_eq!(a[0].status.state, "active");
        let s: Silence = serde_json::from_slice(&fixture("silence-expired.json")).unwrap();
        assert_eq!(s.status.state, "expired");
        let c: SilenceCreated = serde_json::from_slice(&fixture("silence-create.json")).unwrap();
        assert_eq!(c.silence_id, "9b64150d-e391-45ae-ab12-b0d7e2f9b8ef");
    }
}
