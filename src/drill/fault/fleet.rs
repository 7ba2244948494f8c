//! `fleet` faults: the reference fleet's HTTP fault switch.
//!
//! `GET /faults` lists active faults, `PUT /faults/<name>` turns one on,
//! `DELETE /faults/<name>` turns it off (idempotent).

use super::contract::{tail, FaultDriver, FaultError, FaultRecord, Prepared, Reverted};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

/// Flips one of the reference fleet's fault switches.
pub struct FleetDriver {
    base: String,
    fault: String,
    http: reqwest::Client,
}

impl FleetDriver {
    pub fn new(base: &str, fault: &str, http: reqwest::Client) -> Self {
        FleetDriver {
            base: base.trim_end_matches('/').to_string(),
            fault: fault.to_string(),
            http,
        }
    }
}

impl FaultDriver for FleetDriver {
    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, FaultError>> {
        async move {
            let was_on = active(&self.http, &self.base).await?.contains(&self.fault);
            Ok(Prepared {
                record: FaultRecord::Fleet {
                    fleet_url: self.base.clone(),
                    fault: self.fault.clone(),
                    instance: instance(&self.http, &self.base).await,
                },
                description: format!("fleet fault {} at {}", self.fault, self.base),
                original: Value::Bool(was_on),
                injected: Value::Bool(true),
            })
        }
        .boxed()
    }

    fn inject<'a>(&'a self, _prepared: &'a Prepared) -> BoxFuture<'a, Result<(), FaultError>> {
        async move { switch(&self.http, &self.base, &self.fault, true).await }.boxed()
    }
}

/// Turns the fault off unless it was on before the drill, then checks it is off.
pub async fn revert(
    http: &reqwest::Client,
    base: &str,
    fault: &str,
    injected_into: Option<&str>,
    original: &Value,
) -> Result<Reverted, FaultError> {
    if original == &Value::Bool(true) {
        return Ok(Reverted::NothingToDo(format!(
            "fleet fault {fault} was already on before the drill, so it was left on"
        )));
    }
    // A fleet's faults live in its process: one that refuses connections
    // was stopped (e.g. with the firedrill run that owned it) and took its
    // faults with it, so there is nothing left to turn off.
    match http.get(format!("{base}/healthz")).send().await {
        Err(e) if e.is_connect() => {
            return Ok(Reverted::NothingToDo(format!(
                "the fleet at {base} is gone (connection refused); its fault {fault} went with it"
            )));
        }
        // Another fleet now listens on the port: the one the fault was
        // injected into is gone, and this one's switches are not ours.
        Ok(resp) => {
            let now = instance_header(&resp);
            if let (Some(was), Some(now)) = (injected_into, now.as_deref()) {
                if was != now {
                    return Ok(Reverted::NothingToDo(format!(
                        "the fleet at {base} is another instance now ({now}; the fault was injected into {was}), \
                         so fault {fault} went with the old one and this fleet was left untouched"
                    )));
                }
            }
        }
        Err(_) => {}
    }
    if !active(http, base).await?.iter().any(|f| f == fault) {
        return Ok(Reverted::AlreadyReverted(format!(
            "fleet fault {fault} at {base} was already off"
        )));
    }
    switch(http, base, fault, false).await?;
    if active(http, base).await?.iter().any(|f| f == fault) {
        return Err(FaultError::Http {
            what: format!("turn off fleet fault {fault}"),
            target: base.to_string(),
            status: 200,
            body: format!("DELETE succeeded but GET /faults still lists {fault}"),
        });
    }
    Ok(Reverted::Restored)
}

fn instance_header(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(crate::fleet::INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The fleet's instance id, when it reports one (a fleet double may not).
async fn instance(http: &reqwest::Client, base: &str) -> Option<String> {
    let resp = http.get(format!("{base}/healthz")).send().await.ok()?;
    instance_header(&resp)
}

/// Names of the active faults. Accepts `["name", ...]` or `[{"name": ...}, ...]`.
pub async fn active(http: &reqwest::Client, base: &str) -> Result<Vec<String>, FaultError> {
    let what = "list fleet faults (GET /faults)";
    let resp = http
        .get(format!("{base}/faults"))
        .send()
        .await
        .map_err(|e| unreachable(what, base, e))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| unreachable(what, base, e))?;
    if !(200..300).contains(&status) {
        return Err(http_error(what, base, status, &body));
    }
    let items: Vec<Value> =
        serde_json::from_str(&body).map_err(|_| http_error(what, base, status, &body))?;
    Ok(items
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect())
}

async fn switch(
    http: &reqwest::Client,
    base: &str,
    fault: &str,
    on: bool,
) -> Result<(), FaultError> {
    let url = format!("{base}/faults/{fault}");
    let (what, req) = if on {
        (format!("turn on fleet fault {fault} (PUT)"), http.put(&url))
    } else {
        (
            format!("turn off fleet fault {fault} (DELETE)"),
            http.delete(&url),
        )
    };
    let resp = req.send().await.map_err(|e| unreachable(&what, base, e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(http_error(&what, base, status, &body))
}

fn unreachable(what: &str, base: &str, e: reqwest::Error) -> FaultError {
    FaultError::Unreachable {
        what: what.to_string(),
        target: base.to_string(),
        reason: e.to_string(),
    }
}

fn http_error(what: &str, base: &str, status: u16, body: &str) -> FaultError {
    FaultError::Http {
        what: what.to_string(),
        target: base.to_string(),
        status,
        body: tail(body, 500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::fault::{self, kube::KubeAccess, FaultContext};
    use crate::spec::drill::{Fault, FleetFault};
    use axum::extract::{Path, State};
    use axum::routing::{get, put};
    use axum::{Json, Router};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    type Switches = Arc<Mutex<BTreeSet<String>>>;

    /// A double of the fleet's fault switch with the same routes and answers.
    async fn fleet_double(initial: &[&str]) -> (String, Switches) {
        let state: Switches = Arc::new(Mutex::new(initial.iter().map(|s| s.to_string()).collect()));
        async fn list(State(s): State<Switches>) -> Json<Vec<String>> {
            Json(s.lock().unwrap().iter().cloned().collect())
        }
        async fn on(State(s): State<Switches>, Path(n): Path<String>) -> Json<Vec<String>> {
            s.lock().unwrap().insert(n);
            Json(s.lock().unwrap().iter().cloned().collect())
        }
        async fn off(State(s): State<Switches>, Path(n): Path<String>) -> Json<Vec<String>> {
            s.lock().unwrap().remove(&n);
            Json(s.lock().unwrap().iter().cloned().collect())
        }
        let app = Router::new()
            .route("/faults", get(list))
            .route("/faults/{name}", put(on).delete(off))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), state)
    }

    fn plan() -> Fault {
        Fault::Fleet {
            fault: FleetFault::WorkerImageTag,
        }
    }

    #[tokio::test]
    async fn inject_and_revert_through_the_switch() {
        let (url, state) = fleet_double(&[]).await;
        let ctx = FaultContext::new(Some(url.clone()), KubeAccess::from_env());
        let driver = fault::driver(&plan(), &ctx).unwrap();
        let p = driver.prepare().await.unwrap();
        assert_eq!(p.original, Value::Bool(false));
        driver.inject(&p).await.unwrap();
        assert!(state.lock().unwrap().contains("worker-image-tag"));
        let r = fault::revert(&p.record, &p.original, &p.injected, &ctx)
            .await
            .unwrap();
        assert_eq!(r, Reverted::Restored);
        assert!(state.lock().unwrap().is_empty());
        // Idempotent: a second revert (as `recover` may do) is fine.
        fault::revert(&p.record, &p.original, &p.injected, &ctx)
            .await
            .unwrap();
        assert_eq!(
            fault::manual_fix(&p.record, &p.original),
            format!("curl -fsS -X DELETE {url}/faults/worker-image-tag")
        );
    }

    #[tokio::test]
    async fn a_fault_already_on_is_left_on() {
        let (url, state) = fleet_double(&["worker-image-tag"]).await;
        let ctx = FaultContext::new(Some(url), KubeAccess::from_env());
        let driver = fault::driver(&plan(), &ctx).unwrap();
        let p = driver.prepare().await.unwrap();
        assert_eq!(p.original, Value::Bool(true));
        driver.inject(&p).await.unwrap();
        let r = fault::revert(&p.record, &p.original, &p.injected, &ctx)
            .await
            .unwrap();
        assert!(matches!(r, Reverted::NothingToDo(ref s) if s.contains("left on")));
        assert!(state.lock().unwrap().contains("worker-image-tag"));
    }

    #[tokio::test]
    async fn accepts_object_lists_and_reports_http_errors() {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/faults"))
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!([{"name": "keda-error"}])),
            )
            .mount(&server)
            .await;
        wiremock::Mock::given(wiremock::matchers::method("PUT"))
            .respond_with(
                wiremock::ResponseTemplate::new(404)
                    .set_body_json(serde_json::json!({"error": "unknown fleet fault `nope`"})),
            )
            .mount(&server)
            .await;
        let http = reqwest::Client::new();
        assert_eq!(active(&http, &server.uri()).await.unwrap(), ["keda-error"]);
        let f = FleetDriver::new(&server.uri(), "nope", http);
        let p = f.prepare().await.unwrap();
        let err = f.inject(&p).await.unwrap_err().to_string();
        assert!(
            err.contains("HTTP 404") && err.contains("unknown fleet fault"),
            "{err}"
        );
    }

    #[test]
    fn fleet_fault_without_fleet_url_is_a_config_error() {
        let ctx = FaultContext::new(None, KubeAccess::from_env());
        let err = fault::driver(&plan(), &ctx).err().unwrap().to_string();
        assert!(err.contains("fleet_url"), "{err}");
    }
}
