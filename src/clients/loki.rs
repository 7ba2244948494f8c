//! Loki's query API: instant LogQL metric queries (`/loki/api/v1/query`),
//! decoded into the same [`QueryResult`] as Prometheus' (Loki's metric
//! answers are Prometheus-shaped), and Grafana Explore links on Loki.
//!
//! Loki answers a bad query with HTTP 400 and its message as plain text
//! (`parse error at line 1, col 1: syntax error: unexpected IDENTIFIER`,
//! `pkg/util/server/error.go` `WriteError`); that message is kept whole in
//! [`LokiError::Rejected`]. A log query (`{app="x"} |= "error"`) is not a
//! number and never a criterion's answer: [`LokiError::NotMetric`].

use super::http::{client, max_response_bytes, read_body, send_with_retry, BodyError, TooLarge};
use super::prometheus::QueryResult;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum LokiError {
    #[error("Loki at {url} is unreachable: {reason}. Check the target's loki_url and that Loki's query frontend (or querier) is up")]
    Unreachable { url: String, reason: String },
    /// Loki refused the query; `message` is Loki's own words.
    #[error("Loki at {url} rejected the query (HTTP {status}): {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("Loki at {url} answered HTTP {status} with a body firedrill cannot read: {body}")]
    Unreadable {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Loki at {url} answered a log query (log lines, resultType \"streams\"), not a number; a logql criterion needs a metric query such as sum(count_over_time({{app=\"x\"}} |= \"error\" [5m]))")]
    NotMetric { url: String },
    #[error("Loki at {url} answered GET /loki/api/v1/query with {detail}")]
    TooLarge { url: String, detail: TooLarge },
}

/// A thin client for one Loki.
#[derive(Debug, Clone)]
pub struct Loki {
    base: String,
    http: reqwest::Client,
    max_body: u64,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

/// Loki's `data`: `resultType` and `result` as Prometheus writes them,
/// plus `stats` (ignored). `streams` is Loki's own.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(serde_json::Value),
    Matrix(serde_json::Value),
    Scalar(serde_json::Value),
    String(serde_json::Value),
    Streams(serde::de::IgnoredAny),
}

impl Loki {
    pub fn new(base_url: &str) -> Self {
        Loki {
            base: base_url.trim_end_matches('/').to_string(),
            http: client(Duration::from_secs(30)),
            max_body: max_response_bytes(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Instant metric query evaluated at `time`.
    pub async fn query(&self, logql: &str, time: DateTime<Utc>) -> Result<QueryResult, LokiError> {
        let url = format!("{}/loki/api/v1/query", self.base);
        // RFC 3339: an integer would be read as nanoseconds, a float as seconds.
        let t = time.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let params = [("query", logql), ("time", t.as_str())];
        let unreachable = |e: &reqwest::Error| LokiError::Unreachable {
            url: self.base.clone(),
            reason: super::http::describe(e),
        };
        let resp = send_with_retry(|| self.http.get(&url).query(&params), 3)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, self.max_body).await.map_err(|e| match e {
            BodyError::TooLarge(detail) => LokiError::TooLarge {
                url: self.base.clone(),
                detail,
            },
            BodyError::Read(e) => unreachable(&e),
        })?;
        decode(&self.base, status, &body)
    }
}

/// Decodes an answer of `/loki/api/v1/query`.
pub fn decode(base: &str, status: u16, body: &[u8]) -> Result<QueryResult, LokiError> {
    let unreadable = || LokiError::Unreadable {
        url: base.to_string(),
        status,
        body: super::http::snippet(body, 300),
    };
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        if (400..500).contains(&status) {
            // Loki's errors are plain text: the message itself.
            let message = super::http::snippet(body, 2000).trim().to_string();
            if !message.is_empty() {
                return Err(LokiError::Rejected {
                    url: base.to_string(),
                    status,
                    message,
                });
            }
        }
        return Err(unreadable());
    };
    if env.status != "success" || !(200..300).contains(&status) {
        return Err(LokiError::Rejected {
            url: base.to_string(),
            status,
            message: env.error.unwrap_or_else(|| "no error message".into()),
        });
    }
    let typed = |kind: &str, result: serde_json::Value| {
        serde_json::from_value::<QueryResult>(serde_json::json!({
            "resultType": kind,
            "result": result,
        }))
        .map_err(|_| unreadable())
    };
    match env.data.ok_or_else(unreadable)? {
        Data::Streams(_) => Err(LokiError::NotMetric {
            url: base.to_string(),
        }),
        Data::Vector(r) => typed("vector", r),
        Data::Matrix(r) => typed("matrix", r),
        Data::Scalar(r) => typed("scalar", r),
        Data::String(r) => typed("string", r),
    }
}

/// Grafana Explore on a Loki data source, the query as an instant query
/// over `[from, to]`. `datasource` is the Loki data source's uid; without
/// one, Explore opens the default data source with the query.
pub fn explore_url(
    grafana: &str,
    datasource: Option<&str>,
    logql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let mut query = serde_json::json!({ "refId": "A", "expr": logql, "queryType": "instant" });
    let mut pane = serde_json::json!({
        "queries": [],
        "range": {
            "from": from.timestamp_millis().to_string(),
            "to": to.timestamp_millis().to_string(),
        },
    });
    if let Some(uid) = datasource {
        query["datasource"] = serde_json::json!({ "type": "loki", "uid": uid });
        pane["datasource"] = serde_json::json!(uid);
    }
    pane["queries"] = serde_json::json!([query]);
    let panes = serde_json::json!({ "a": pane }).to_string();
    let mut u = url::Url::parse(&format!("{}/explore", grafana.trim_end_matches('/')))
        .unwrap_or_else(|_| url::Url::parse("http://invalid/explore").expect("static url"));
    u.query_pairs_mut()
        .append_pair("schemaVersion", "1")
        .append_pair("panes", &panes)
        .append_pair("orgId", "1");
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_fixtures::bytes(&format!("loki/{name}"))
    }

    #[test]
    fn decodes_loki_vector_and_matrix() {
        let QueryResult::Vector(v) = decode("l", 200, &fixture("query-vector.json")).unwrap()
        else {
            panic!("not a vector")
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].metric["filename"], "/var/hostlog/syslog");
        assert_eq!(v[1].value.value(), 3.45);
        let QueryResult::Matrix(m) = decode("l", 200, &fixture("query-matrix.json")).unwrap()
        else {
            panic!("not a matrix")
        };
        assert_eq!(m[1].values.len(), 2);
        let empty = decode("l", 200, &fixture("query-empty.json")).unwrap();
        assert_eq!(empty, QueryResult::Vector(vec![]));
    }

    #[test]
    fn a_log_query_answer_is_not_a_number() {
        let err = decode("http://loki", 200, &fixture("query-streams.json")).unwrap_err();
        assert_eq!(
            err,
            LokiError::NotMetric {
                url: "http://loki".into()
            }
        );
        assert!(err.to_string().contains("needs a metric query"), "{err}");
    }

    #[test]
    fn a_syntax_error_carries_lokis_message() {
        let body = fixture("query-parse-error.txt");
        let err = decode("http://loki", 400, &body).unwrap_err();
        let LokiError::Rejected {
            status, message, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*status, 400);
        assert_eq!(
            message,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"
        );
        assert!(err
            .to_string()
            .contains("rejected the query (HTTP 400): parse error at line 1, col 1"));
    }

    #[test]
    fn a_server_error_without_body_is_unreadable() {
        let err = decode("l", 502, b"").unwrap_err();
        assert!(
            matches!(err, LokiError::Unreadable { status: 502, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn explore_url_carries_the_query_and_range() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let u = explore_url(
            "https://grafana.example/",
            Some("loki-uid"),
            r#"sum(count_over_time({app="x"} |= "error" [5m]))"#,
            t("2026-11-23T10:00:00Z"),
            t("2026-11-23T10:05:00Z"),
        );
        let parsed = url::Url::parse(&u).unwrap();
        assert_eq!(parsed.path(), "/explore");
        let panes = parsed
            .query_pairs()
            .find(|(k, _)| k == "panes")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let panes: serde_json::Value = serde_json::from_str(&panes).unwrap();
        assert_eq!(panes["a"]["datasource"], "loki-uid");
        assert_eq!(
            panes["a"]["queries"][0]["expr"],
            r#"sum(count_over_time({app="x"} |= "error" [5m]))"#
        );
        assert_eq!(panes["a"]["queries"][0]["datasource"]["type"], "loki");
        assert_eq!(panes["a"]["range"]["from"], "1795428000000");
        assert_eq!(panes["a"]["range"]["to"], "1795428300000");
    }
}
