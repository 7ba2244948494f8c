//! Prometheus HTTP API: queries, rules, alerts, series.

use super::http::{client, max_response_bytes, read_body, send_with_retry, BodyError, TooLarge};
use crate::model::parse_value;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum PromError {
    #[error("Prometheus at {url} is unreachable: {reason}. Check the target's prometheus_url and that Prometheus is up")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} answered {error_type}: {error}")]
    Api {
        url: String,
        error_type: String,
        error: String,
    },
    #[error(
        "Prometheus at {url} answered HTTP {status} with a body firedrill cannot read: {body}"
    )]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Prometheus at {url} answered {endpoint} with {detail}")]
    TooLarge {
        url: String,
        endpoint: String,
        detail: TooLarge,
    },
}

/// A sample value as Prometheus wrote it (a string, so `NaN`/`+Inf` survive).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sample(pub f64, pub String);

impl Sample {
    pub fn value(&self) -> f64 {
        parse_value(&self.1)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VectorSample {
    pub metric: Labels,
    pub value: Sample,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MatrixSeries {
    pub metric: Labels,
    pub values: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryResult {
    Vector(Vec<VectorSample>),
    Matrix(Vec<MatrixSeries>),
    Scalar(Sample),
    String(Sample),
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RulesData {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    pub name: String,
    pub query: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    #[serde(default)]
    pub alerts: Vec<PromAlert>,
    #[serde(default)]
    pub health: String,
    #[serde(rename = "lastError", default)]
    pub last_error: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PromAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    /// `pending` or `firing`.
    pub state: String,
    #[serde(rename = "activeAt")]
    pub active_at: Option<DateTime<Utc>>,
    pub value: String,
}

#[derive(Debug, Deserialize)]
struct AlertsData {
    alerts: Vec<PromAlert>,
}

/// A thin client for one Prometheus.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    http: reqwest::Client,
    max_body: u64,
}

impl Prometheus {
    pub fn new(base_url: &str) -> Self {
        Prometheus {
            base: base_url.trim_end_matches('/').to_string(),
            http: client(Duration::from_secs(30)),
            max_body: max_response_bytes(),
        }
    }

    /// Reads at most `limit` bytes of any answer (default: the process-wide
    /// [`max_response_bytes`]).
    pub fn with_max_response_bytes(mut self, limit: u64) -> Self {
        self.max_body = limit;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Instant query evaluated at `time`.
    pub async fn query(&self, promql: &str, time: DateTime<Utc>) -> Result<QueryResult, PromError> {
        let t = format_time(time);
        self.get("/api/v1/query", &[("query", promql), ("time", &t)])
            .await
    }

    /// Instant query that Prometheus itself abandons after `timeout`: a
    /// slow query is then an API error (`timeout`) about that query, not a
    /// dead connection.
    pub async fn query_bounded(
        &self,
        promql: &str,
        time: DateTime<Utc>,
        timeout: Duration,
    ) -> Result<QueryResult, PromError> {
        let t = format_time(time);
        let limit = format!("{}s", timeout.as_secs().max(1));
        self.get(
            "/api/v1/query",
            &[("query", promql), ("time", &t), ("timeout", &limit)],
        )
        .await
    }

    /// Range query over `[start, end]` at `step`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<QueryResult, PromError> {
        let (s, e) = (format_time(start), format_time(end));
        let step = format!("{}", step.as_secs_f64().max(0.001));
        self.get(
            "/api/v1/query_range",
            &[
                ("query", promql),
                ("start", &s),
                ("end", &e),
                ("step", &step),
            ],
        )
        .await
    }

    pub async fn rules(&self) -> Result<Vec<RuleGroup>, PromError> {
        let d: RulesData = self.get("/api/v1/rules", &[("type", "alert")]).await?;
        Ok(d.groups)
    }

    pub async fn alerts(&self) -> Result<Vec<PromAlert>, PromError> {
        let d: AlertsData = self.get("/api/v1/alerts", &[]).await?;
        Ok(d.alerts)
    }

    /// Series matching `selector` in `[start, end]`.
    pub async fn series(
        &self,
        selector: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Labels>, PromError> {
        let (s, e) = (format_time(start), format_time(end));
        self.get(
            "/api/v1/series",
            &[("match[]", selector), ("start", &s), ("end", &e)],
        )
        .await
    }

    /// Values of label `label` over `[start, end]`, of the series matching
    /// `matcher` when given (`/api/v1/label/<label>/values`).
    pub async fn label_values(
        &self,
        label: &str,
        matcher: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<String>, PromError> {
        let (s, e) = (format_time(start), format_time(end));
        let path = format!(
            "/api/v1/label/{}/values",
            url::form_urlencoded::byte_serialize(label.as_bytes()).collect::<String>()
        );
        let mut params = vec![("start", s.as_str()), ("end", e.as_str())];
        if let Some(m) = matcher {
            params.push(("match[]", m));
        }
        self.get(&path, &params).await
    }

    /// Label names over `[start, end]`, of the series matching `matcher` when given.
    pub async fn label_names(
        &self,
        matcher: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<String>, PromError> {
        let (s, e) = (format_time(start), format_time(end));
        let mut params = vec![("start", s.as_str()), ("end", e.as_str())];
        if let Some(m) = matcher {
            params.push(("match[]", m));
        }
        self.get("/api/v1/labels", &params).await
    }

    /// Prometheus' own graph UI for `promql`, showing the window's end.
    pub fn graph_url(&self, promql: &str, end: DateTime<Utc>, range: Duration) -> String {
        graph_url(&self.base, promql, end, range)
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<T, PromError> {
        let url = format!("{}{}", self.base, path);
        let resp = send_with_retry(|| self.http.get(&url).query(params), 3)
            .await
            .map_err(|e| PromError::Unreachable {
                url: self.base.clone(),
                reason: super::http::describe(&e),
            })?;
        let status = resp.status().as_u16();
        let body = read_body(resp, self.max_body).await.map_err(|e| match e {
            BodyError::TooLarge(detail) => PromError::TooLarge {
                url: self.base.clone(),
                endpoint: format!("GET {path}"),
                detail,
            },
            BodyError::Read(e) => PromError::Unreachable {
                url: self.base.clone(),
                reason: super::http::describe(&e),
            },
        })?;
        decode(&self.base, status, &body)
    }
}

/// Decodes any API envelope; `status: error` becomes `PromError::Api`.
pub fn decode<T: for<'de> Deserialize<'de>>(
    base: &str,
    status: u16,
    body: &[u8],
) -> Result<T, PromError> {
    let env: Envelope<T> = serde_json::from_slice(body).map_err(|_| PromError::Http {
        url: base.to_string(),
        status,
        body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    })?;
    match (env.status.as_str(), env.data) {
        ("success", Some(data)) => Ok(data),
        _ => Err(PromError::Api {
            url: base.to_string(),
            error_type: env.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            error: env.error.unwrap_or_else(|| "no error message".into()),
        }),
    }
}

fn format_time(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// `<base>/graph?g0.expr=...&g0.tab=0&g0.range_input=...&g0.end_input=...`
pub fn graph_url(base: &str, promql: &str, end: DateTime<Utc>, range: Duration) -> String {
    let mut u = url::Url::parse(&format!("{}/graph", base.trim_end_matches('/')))
        .unwrap_or_else(|_| url::Url::parse("http://invalid/graph").expect("static url"));
    u.query_pairs_mut()
        .append_pair("g0.expr", promql)
        .append_pair("g0.tab", "0")
        .append_pair("g0.range_input", &format!("{}s", range.as_secs().max(1)))
        .append_pair("g0.end_input", &end.format("%Y-%m-%d %H:%M:%S").to_string());
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_fixtures::bytes(&format!("prometheus/{name}"))
    }

    #[test]
    fn decodes_vector_scalar_matrix_and_nan() {
        let v: QueryResult = decode("p", 200, &fixture("query-vector.json")).unwrap();
        let QueryResult::Vector(v) = v else {
            panic!("not a vector")
        };
        assert_eq!(v[0].metric["reason"], "ImagePullBackOff");
        assert_eq!(v[0].value.value(), 0.0);

        let s: QueryResult = decode("p", 200, &fixture("query-scalar.json")).unwrap();
        assert!(matches!(s, QueryResult::Scalar(ref x) if x.value() == 9.0));

        let m: QueryResult = decode("p", 200, &fixture("query-range-matrix.json")).unwrap();
        let QueryResult::Matrix(m) = m else {
            panic!("not a matrix")
        };
        assert_eq!(m[0].values.len(), 3);

        let n: QueryResult =
            decode("p", 200, &fixture("query-histogram-quantile-nan.json")).unwrap();
        let QueryResult::Vector(n) = n else {
            panic!("not a vector")
        };
        assert!(n[0].value.value().is_nan());

        let e: QueryResult = decode("p", 200, &fixture("query-empty.json")).unwrap();
        assert_eq!(e, QueryResult::Vector(vec![]));
    }

    #[test]
    fn error_envelope_becomes_api_error() {
        let err =
            decode::<QueryResult>("p", 400, &fixture("query-error-bad-data.json")).unwrap_err();
        match err {
            PromError::Api {
                error_type, error, ..
            } => {
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("unclosed left parenthesis"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_rules_alerts_series() {
        let r: RulesData = decode("p", 200, &fixture("rules-firing.json")).unwrap();
        let rule = &r.groups[0].rules[0];
        assert_eq!(rule.name, "WorkerImagePullBackOff");
        assert_eq!(rule.duration, 5.0);
        assert_eq!(rule.alerts[0].state, "firing");
        assert_eq!(
            rule.alerts[0].active_at.unwrap().to_rfc3339(),
            "2026-11-23T09:54:49.851404264+00:00"
        );
        let a: AlertsData = decode("p", 200, &fixture("alerts-pending.json")).unwrap();
        assert_eq!(a.alerts[0].state, "pending");
        let s: Vec<Labels> = decode("p", 200, &fixture("series.json")).unwrap();
        assert_eq!(s.len(), 1);
        let s: Vec<Labels> = decode("p", 200, &fixture("series-empty.json")).unwrap();
        assert!(s.is_empty());
    }

    /// A Prometheus double whose `/api/v1/query` answers a vector of
    /// `total` bytes, generated as it is sent (so a test never holds it),
    /// with a `Content-Length` when `declare`, else chunked as Prometheus
    /// sends large answers. Counts the bytes handed to the connection.
    async fn big_answer(total: u64, declare: bool) -> (String, Arc<AtomicU64>) {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let app = axum::Router::new().route(
            "/api/v1/query",
            axum::routing::get(move || {
                let sent = counter.clone();
                async move {
                    let head = br#"{"status":"success","data":{"resultType":"vector","result":["#;
                    let series = br#"{"metric":{"pod":"p"},"value":[1,"1"]},"#;
                    let chunk: Vec<u8> = head
                        .iter()
                        .chain(series.iter().cycle().take(64 * 1024 - head.len()))
                        .copied()
                        .collect();
                    let chunk = bytes::Bytes::from(chunk);
                    let n = total.div_ceil(chunk.len() as u64);
                    let stream = futures::stream::iter(0..n).map(move |_| {
                        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        Ok::<_, std::convert::Infallible>(chunk.clone())
                    });
                    let mut resp =
                        axum::response::Response::new(axum::body::Body::from_stream(stream));
                    let h = resp.headers_mut();
                    h.insert("content-type", "application/json".parse().unwrap());
                    if declare {
                        h.insert("content-length", total.into());
                    }
                    resp
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, sent)
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[tokio::test]
    async fn an_answer_declared_over_the_default_limit_is_refused_unread() {
        let total = 40 << 20;
        let (url, sent) = big_answer(total, true).await;
        let err = Prometheus::new(&url).query("up", now()).await.unwrap_err();
        assert_eq!(
            err,
            PromError::TooLarge {
                url: url.clone(),
                endpoint: "GET /api/v1/query".into(),
                detail: TooLarge {
                    limit: crate::clients::http::DEFAULT_MAX_RESPONSE_BYTES,
                    declared: Some(total),
                },
            }
        );
        let text = err.to_string();
        for part in [
            url.as_str(),
            "answered GET /api/v1/query with 41943040 bytes (Content-Length), over firedrill's limit of 32 MiB",
            "sum by (...)",
            "--max-response-bytes or FIREDRILL_MAX_RESPONSE_BYTES",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        // Refused on the header: at most what the socket buffers took.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 16 << 20, "the double sent {sent} bytes");
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_only_up_to_the_limit() {
        let total = 256 << 20;
        let (url, sent) = big_answer(total, false).await;
        let prom = Prometheus::new(&url).with_max_response_bytes(1 << 20);
        let err = prom.query("up", now()).await.unwrap_err();
        let PromError::TooLarge {
            endpoint, detail, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(endpoint, "GET /api/v1/query");
        assert_eq!(
            detail,
            &TooLarge {
                limit: 1 << 20,
                declared: None
            }
        );
        assert!(
            err.to_string()
                .contains("with more than 1048576 bytes, over firedrill's limit of 1 MiB"),
            "{err}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 64 << 20, "the double sent {sent} of {total} bytes");
    }

    #[tokio::test]
    async fn a_chunked_answer_within_the_limit_is_read_whole() {
        // 1 MiB of a vector with no closing bracket: read whole, then not JSON.
        let (url, _) = big_answer(1 << 20, false).await;
        let prom = Prometheus::new(&url).with_max_response_bytes(1 << 20);
        let err = prom.query("up", now()).await.unwrap_err();
        assert!(
            matches!(err, PromError::Http { status: 200, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn graph_url_encodes_the_query() {
        let end = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let u = graph_url(
            "http://127.0.0.1:9090/",
            "up{job=\"x\"} > 0",
            end,
            Duration::from_secs(90),
        );
        assert!(
            u.starts_with("http://127.0.0.1:9090/graph?g0.expr=up%7Bjob%3D%22x%22%7D+%3E+0"),
            "{u}"
        );
        assert!(u.contains("g0.range_input=90s"));
    }
}
