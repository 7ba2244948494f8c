//! The fleet's HTTP face: `/metrics` for Prometheus, a stand-in for the
//! OTel collector's own metrics endpoint, and the fault switches.
//!
//! | Route                   | Answer                                                |
//! |-------------------------|-------------------------------------------------------|
//! | `GET /metrics`          | OpenMetrics text (see [`super::metrics`])             |
//! | `GET /collector/metrics`| 200 tiny exposition; 503 while `collector-down` is on |
//! | `GET /faults`           | JSON list of active faults                            |
//! | `PUT /faults/{name}`    | turn on; optional body `{"every": N}`                 |
//! | `DELETE /faults/{name}` | turn off                                              |
//! | `GET /healthz`          | 200, with this process' instance id in a header       |
//! | `/api/v1/…`, `/apis/…`  | the rehearsed cluster's Kubernetes API (see [`super::kube_api`]) |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::{FleetSwitch, ParseFaultError, FAULT_NAMES};
use super::metrics::{self, KubeView};
use super::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/collector/metrics", get(collector_metrics))
        .route("/faults", get(list_faults))
        .route(
            "/faults/{name}",
            axum::routing::put(put_fault).delete(delete_fault),
        )
        .route("/healthz", get(healthz))
        .with_state(shared.clone())
        .merge(super::kube_api::router(shared.kube.clone()).layer(
            axum::middleware::from_fn_with_state(shared, settle_after_write),
        ))
}

/// A write to the Kubernetes API answers once the fleet has reacted to it.
async fn settle_after_write(
    State(shared): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let write = req.method() != axum::http::Method::GET;
    let response = next.run(req).await;
    if write && response.status().is_success() {
        shared.kube_settled().await;
    }
    response
}

/// Tells fleets apart across restarts on the same port: a journaled fault
/// is reverted only on the instance it was injected into.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    ([(super::INSTANCE_HEADER, shared.instance.clone())], "ok\n").into_response()
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> Response {
    let kube = KubeView {
        image_pull_backoff: shared.faults.is_on(FleetSwitch::WorkerImageTag),
        orchestrator_down: shared.faults.is_on(FleetSwitch::OrchestratorDown),
    };
    let nats = shared.nats_view().await;
    let body = metrics::render(&shared.metrics, kube, nats);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn collector_metrics(State(shared): State<Arc<Shared>>) -> Response {
    if shared.faults.is_on(FleetSwitch::CollectorDown) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "collector down (fleet fault collector-down)\n",
        )
            .into_response();
    }
    let body = format!(
        "# HELP otelcol_process_uptime Uptime of the process\n\
         # TYPE otelcol_process_uptime gauge\n\
         otelcol_process_uptime {:.3}\n",
        shared.started.elapsed().as_secs_f64()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Vec<FleetSwitch>> {
    Json(shared.faults.active())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    every: Option<u32>,
}

async fn put_fault(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let every = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<FaultBody>(&body) {
            Ok(b) => b.every,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("body must be JSON like {{\"every\": 5}}: {e}"),
                )
            }
        }
    };
    switch(&shared, &name, every, true).await
}

async fn delete_fault(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    switch(&shared, &name, None, false).await
}

async fn switch(shared: &Shared, name: &str, every: Option<u32>, on: bool) -> Response {
    let fault = match FleetSwitch::from_name(name, every) {
        Ok(f) => f,
        Err(e @ ParseFaultError::Unknown { .. }) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": e.to_string(), "valid": FAULT_NAMES })),
            )
                .into_response()
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match shared.set_fault(fault, on).await {
        Ok(()) => Json(shared.faults.active()).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
