//! firedrill's own Alertmanager webhook receiver: the end of the drill
//! timeline ("notified"), proving a route really reaches a receiver.
//!
//! The payload types decode Alertmanager's webhook body (version "4") as
//! Alertmanager 0.25 sends it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use super::StackError;
use crate::drill::{Notification, NotifiedAlert};

/// How many notifications a slow subscriber may fall behind before it
/// sees `RecvError::Lagged` (`received()` still has them all).
const CHANNEL_CAPACITY: usize = 1024;
/// How long `stop()` lets open connections finish.
const STOP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Alertmanager's webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub receiver: String,
    pub status: AlertStatus,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Go's zero time (`0001-01-01T00:00:00Z`) while firing; see [`Self::ended_at`].
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

impl WebhookAlert {
    /// The `alertname` label, if any.
    pub fn alertname(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }

    /// `ends_at`, or `None` when Alertmanager sent Go's zero time (not ended).
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        (self.ends_at.year() > 1).then_some(self.ends_at)
    }
}

/// One POST that reached the receiver, stamped on arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookNotification {
    pub received_at: DateTime<Utc>,
    pub payload: WebhookPayload,
}

/// What the drill's watcher reads of a notification (see
/// `drill::watch::forward(receiver.subscribe())`): the stack knows the
/// drill's plain notification type, the drill knows nothing of the stack.
impl From<WebhookNotification> for Notification {
    fn from(n: WebhookNotification) -> Self {
        let status = |s: AlertStatus| match s {
            AlertStatus::Firing => "firing".to_string(),
            AlertStatus::Resolved => "resolved".to_string(),
        };
        Notification {
            received_at: n.received_at,
            status: status(n.payload.status),
            alerts: n
                .payload
                .alerts
                .iter()
                .map(|a| NotifiedAlert {
                    status: status(a.status),
                    labels: a.labels.clone(),
                    starts_at: a.starts_at,
                    ends_at: a.ended_at(),
                })
                .collect(),
        }
    }
}

struct Shared {
    received: Mutex<Vec<WebhookNotification>>,
    tx: broadcast::Sender<WebhookNotification>,
}

/// An HTTP server on `127.0.0.1:<ephemeral>` that records every
/// Alertmanager notification POSTed to `/hook`.
pub struct WebhookReceiver {
    /// The full URL to configure in Alertmanager: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    shared: Arc<Shared>,
    stop_tx: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    pub async fn start() -> Result<WebhookReceiver, StackError> {
        // Bound here and handed to axum, so unlike the children's ports
        // there is no race.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| StackError::Webhook {
                what: "bind 127.0.0.1:0",
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StackError::Webhook {
                what: "read its bound address",
                source,
            })?;
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            tx,
        });
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "webhook receiver stopped with an error");
            }
        });
        Ok(WebhookReceiver {
            url: format!("http://{addr}/hook"),
            shared,
            stop_tx: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }

    /// Notifications that arrive after this call.
    pub fn subscribe(&self) -> broadcast::Receiver<WebhookNotification> {
        self.shared.tx.subscribe()
    }

    /// Every notification so far, in arrival order.
    pub fn received(&self) -> Vec<WebhookNotification> {
        lock(&self.shared.received).clone()
    }

    /// Stops accepting notifications; open connections get a moment to
    /// finish. Idempotent. Dropping the receiver stops it at once.
    pub async fn stop(&self) {
        if let Some(stop) = lock(&self.stop_tx).take() {
            let _ = stop.send(());
        }
        let task = lock(&self.task).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                // Alertmanager holds keep-alive connections open; do not wait on them.
                task.abort();
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

async fn hook(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let received_at = Utc::now();
    match serde_json::from_slice::<WebhookPayload>(&body) {
        Ok(payload) => {
            let notification = WebhookNotification {
                received_at,
                payload,
            };
            lock(&shared.received).push(notification.clone());
            // No subscribers is fine: `received()` keeps everything.
            let _ = shared.tx.send(notification);
            StatusCode::OK
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                body = %String::from_utf8_lossy(&body),
                "webhook receiver got a body that is not an Alertmanager notification"
            );
            StatusCode::BAD_REQUEST
        }
    }
}

/// A panic elsewhere must not make the recorded notifications unreadable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../../tests/fixtures/alertmanager/webhook-firing.json");
    const RESOLVED: &str = include_str!("../../tests/fixtures/alertmanager/webhook-resolved.json");

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn decodes_the_real_firing_notification() {
        let p: WebhookPayload = serde_json::from_str(FIRING).unwrap();
        assert_eq!(p.receiver, "hook");
        assert_eq!(p.status, AlertStatus::Firing);
        assert_eq!(p.version, "4");
        assert_eq!(p.group_key, "{}:{}");
        assert_eq!(p.truncated_alerts, 0);
        assert_eq!(p.external_url, "http://localhost:19093");
        assert!(p.group_labels.is_empty());
        assert_eq!(p.common_labels["namespace"], "daedalus");
        assert_eq!(
            p.common_annotations["runbook_url"],
            "docs/runbook.md#worker-image-pull-backoff"
        );
        let a = &p.alerts[0];
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.alertname(), Some("WorkerImagePullBackOff"));
        assert_eq!(a.labels["pod"], "daedalus-worker-copilot-1");
        assert_eq!(a.starts_at, ts("2026-11-23T09:54:54.851Z"));
        assert_eq!(a.ended_at(), None);
        assert_eq!(a.fingerprint, "0e03bd3efc3449b2");
        assert!(a
            .generator_url
            .starts_with("http://localhost:19090/graph?g0.expr="));
    }

    #[test]
    fn decodes_the_real_resolved_notification() {
        let p: WebhookPayload = serde_json::from_str(RESOLVED).unwrap();
        assert_eq!(p.status, AlertStatus::Resolved);
        let a = &p.alerts[0];
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.ended_at(), Some(ts("2026-11-23T09:54:58.851Z")));
    }

    #[test]
    fn round_trips_to_the_same_json() {
        for text in [FIRING, RESOLVED] {
            let original: serde_json::Value = serde_json::from_str(text).unwrap();
            let p: WebhookPayload = serde_json::from_value(original.clone()).unwrap();
            assert_eq!(serde_json::to_value(&p).unwrap(), original);
        }
    }

    fn notification(text: &str, at: DateTime<Utc>) -> Notification {
        Notification::from(WebhookNotification {
            received_at: at,
            payload: serde_json::from_str(text).unwrap(),
        })
    }

    #[test]
    fn decodes_firing_and_resolved_webhooks() {
        let at = Utc::now();
        let f = notification(FIRING, at);
        assert_eq!(f.status, "firing");
        assert_eq!(f.alerts[0].labels["alertname"], "WorkerImagePullBackOff");
        assert_eq!(
            f.alerts[0].starts_at.to_rfc3339(),
            "2026-11-23T09:54:54.851+00:00"
        );
        assert_eq!(f.alerts[0].ends_at, None);
        let r = notification(RESOLVED, at);
        assert_eq!(r.status, "resolved");
        assert_eq!(
            r.alerts[0].ends_at.unwrap().to_rfc3339(),
            "2026-11-23T09:54:58.851+00:00"
        );
    }

    #[test]
    fn maps_the_stack_receivers_notifications() {
        let payload: WebhookPayload = serde_json::from_str(RESOLVED).unwrap();
        let at = Utc::now();
        let n = Notification::from(WebhookNotification {
            received_at: at,
            payload,
        });
        assert_eq!(n.received_at, at);
        assert_eq!(n.status, "resolved");
        assert_eq!(n.alerts[0].labels["alertname"], "WorkerImagePullBackOff");
        assert!(n.alerts[0].ends_at.is_some());
    }

    #[tokio::test]
    async fn records_and_broadcasts_posted_notifications() {
        let rx_hook = WebhookReceiver::start().await.unwrap();
        assert!(rx_hook.url.starts_with("http://127.0.0.1:") && rx_hook.url.ends_with("/hook"));
        let mut sub = rx_hook.subscribe();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let before = Utc::now();

        let ok = http
            .post(&rx_hook.url)
            .header("content-type", "application/json")
            .body(FIRING)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let bad = http.post(&rx_hook.url).body("{}").send().await.unwrap();
        assert_eq!(bad.status(), 400);

        let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(got.received_at >= before);
        assert_eq!(got.payload.status, AlertStatus::Firing);
        assert_eq!(rx_hook.received(), vec![got]);

        rx_hook.stop().await;
        rx_hook.stop().await;
        assert!(http.post(&rx_hook.url).body(FIRING).send().await.is_err());
    }
}
