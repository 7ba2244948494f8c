//! A Loki stand-in (Loki does not run here): `GET /loki/api/v1/query`
//! answering with Loki's own recorded answers (`tests/fixtures/loki/`, see
//! its README for where each comes from), chosen per query by the test.
//! Every request's `query` and `time` are kept for the test to check.

use std::sync::{Arc, Mutex};

/// What the stand-in answers one query with.
#[derive(Clone, Debug)]
pub enum LokiAnswer {
    /// HTTP 200 with `tests/fixtures/loki/<file>` (JSON).
    Fixture(&'static str),
    /// HTTP 200, a vector of one series per `(labels, value)`, in the
    /// shape of `query-vector.json`.
    Vector(Vec<(Vec<(&'static str, &'static str)>, String)>),
    /// HTTP 400, `text/plain`, the body of `query-parse-error.txt`.
    ParseError,
}

/// One request as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct LokiRequest {
    pub query: String,
    pub time: String,
}

pub struct LokiStandIn {
    pub url: String,
    pub requests: Arc<Mutex<Vec<LokiRequest>>>,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/loki/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Starts the stand-in; `answer` picks the answer for each query text.
pub async fn start<F>(answer: F) -> LokiStandIn
where
    F: Fn(&str) -> LokiAnswer + Send + Sync + 'static,
{
    use axum::extract::Query;
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use std::collections::HashMap;

    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let answer = Arc::new(answer);
    let app = axum::Router::new().route(
        "/loki/api/v1/query",
        axum::routing::get(move |Query(p): Query<HashMap<String, String>>| {
            let seen = seen.clone();
            let answer = answer.clone();
            async move {
                let query = p.get("query").cloned().unwrap_or_default();
                let time = p.get("time").cloned().unwrap_or_default();
                seen.lock().unwrap().push(LokiRequest {
                    query: query.clone(),
                    time,
                });
                let json = |body: Vec<u8>| {
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                        body,
                    )
                        .into_response()
                };
                match answer(&query) {
                    LokiAnswer::Fixture(name) => json(fixture(name)),
                    LokiAnswer::Vector(series) => {
                        let mut v: serde_json::Value =
                            serde_json::from_slice(&fixture("query-vector.json")).unwrap();
                        let ts = v["data"]["result"][0]["value"][0].clone();
                        v["data"]["result"] = series
                            .into_iter()
                            .map(|(labels, value)| {
                                let metric: serde_json::Map<String, serde_json::Value> = labels
                                    .into_iter()
                                    .map(|(k, v)| (k.to_string(), v.into()))
                                    .collect();
                                serde_json::json!({ "metric": metric, "value": [ts, value] })
                            })
                            .collect();
                        json(serde_json::to_vec(&v).unwrap())
                    }
                    LokiAnswer::ParseError => (
                        StatusCode::BAD_REQUEST,
                        [
                            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                        ],
                        fixture("query-parse-error.txt"),
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    LokiStandIn { url, requests }
}
