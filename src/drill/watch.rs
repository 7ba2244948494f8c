//! The event loop: polls Prometheus and Alertmanager, receives webhook
//! notifications, ticks, watches the cancel signal, and feeds the machine.

use super::machine::{
    alert_matches, Decision, Labels, Machine, Notification, Observation, PollSource,
};
use super::progress::Progress;
use crate::clients::alertmanager::Alertmanager;
use crate::clients::prometheus::{PromAlert, Prometheus};
use crate::signals::SignalSource;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Wall-clock time, injected so tests can pin it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Locks, ignoring poisoning (a panic elsewhere must not hide the journal).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the loop polls.
#[derive(Clone)]
pub struct Sources {
    pub prometheus: Prometheus,
    pub alertmanager: Option<Alertmanager>,
    pub poll_interval: Duration,
    pub clock: Arc<dyn Clock>,
}

/// Feeds the machine until it decides. On a signal from `cancel` the
/// machine decides `Cancelled` (its timeline so far is kept).
pub async fn watch(
    machine: &mut Machine,
    sources: &Sources,
    notifications: &mut Option<broadcast::Receiver<Notification>>,
    mut cancel: Option<&mut SignalSource>,
    progress: &mut Progress,
) -> Decision {
    let alert = machine.config().alert.clone();
    let mut interval = tokio::time::interval(sources.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch: Vec<Observation> = tokio::select! {
            biased;
            () = cancelled(&mut cancel) => vec![Observation::Cancel(sources.clock.now())],
            n = next_notification(notifications) => match n {
                Some(n) => vec![Observation::Webhook(n)],
                None => Vec::new(),
            },
            _ = interval.tick() => poll(sources, &alert).await,
        };
        for obs in batch {
            let decision = machine.observe(obs);
            progress.update(&machine.status(sources.clock.now()));
            if decision.is_final() {
                return decision;
            }
        }
    }
}

/// How waiting for the alert to be quiet before an inject ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Quiet {
    /// Inactive at the first look.
    AtOnce,
    /// Pending or firing at first, inactive after this long.
    After(Duration),
    /// Still pending or firing when `limit` ran out: the reason.
    StillActive(String),
}

/// Before an inject: waits until no instance of `alert` with `expect`
/// labels is pending or firing in Prometheus, up to `limit`. A drill cannot
/// time an alert that is already active: right after a stack starts,
/// `absent()` rules are pending until the first scrape; after a trial, its
/// alert is active until it resolves. Poll errors count as "not quiet yet";
/// their last one is named if the wait runs out.
pub async fn wait_until_quiet(
    sources: &Sources,
    alert: &str,
    expect: &Labels,
    limit: Duration,
    progress: &mut Progress,
) -> Quiet {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let last = match sources.prometheus_alerts().await {
            Ok(alerts) => {
                let active: Vec<String> = alerts
                    .iter()
                    .filter(|a| alert_matches(&a.labels, alert, expect))
                    .map(|a| match a.active_at {
                        Some(t) => format!("{} since {}", a.state, super::machine::fmt_time(t)),
                        None => a.state.clone(),
                    })
                    .collect();
                if active.is_empty() {
                    return if said {
                        Quiet::After(started.elapsed())
                    } else {
                        Quiet::AtOnce
                    };
                }
                active.join(", ")
            }
            Err(e) => e,
        };
        if started.elapsed() >= limit {
            return Quiet::StillActive(format!(
                "alert {alert}{} was already active before the inject and had not cleared {} later ({last}); \
                 a drill cannot time an alert that is already active, so nothing was injected. \
                 Find what keeps it active or wait until it resolves, then run the drill again",
                crate::model::format_labels(expect),
                humantime::format_duration(Duration::from_secs(limit.as_secs()))
            ));
        }
        if !said {
            progress.line(&format!(
                "waiting for {alert} to clear before injecting ({last}; up to {})",
                humantime::format_duration(limit)
            ));
            said = true;
        }
        tokio::time::sleep(sources.poll_interval.max(Duration::from_millis(100))).await;
    }
}

async fn cancelled(cancel: &mut Option<&mut SignalSource>) {
    match cancel {
        Some(c) => c.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The next notification; `None` after a lag (logged) or once the feed closed
/// (then the receiver is dropped so the branch stops firing).
async fn next_notification(
    rx: &mut Option<broadcast::Receiver<Notification>>,
) -> Option<Notification> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(n) => Some(n),
        Err(broadcast::error::RecvError::Lagged(k)) => {
            tracing::warn!("webhook feed lagged; {k} notifications were dropped");
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            None
        }
    }
}

/// The longest one poll may take: a stalled remote must not hold the
/// deadline (the loop decides only between polls). Long enough for a large
/// real Prometheus, short next to any deadline worth drilling.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// `call`, bounded by [`POLL_TIMEOUT`]; a timeout is said as such, naming
/// `what` was asked.
async fn bounded<T, E: std::fmt::Display>(
    what: impl FnOnce() -> String,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(POLL_TIMEOUT, call).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{} did not answer within {} (timed out; it may be stalled or overloaded)",
            what(),
            humantime::format_duration(POLL_TIMEOUT)
        )),
    }
}

impl Sources {
    /// Prometheus' active alerts, bounded by [`POLL_TIMEOUT`].
    pub(crate) async fn prometheus_alerts(&self) -> Result<Vec<PromAlert>, String> {
        bounded(
            || {
                format!(
                    "Prometheus at {} (GET /api/v1/alerts)",
                    self.prometheus.base_url()
                )
            },
            self.prometheus.alerts(),
        )
        .await
    }
}

/// One poll of both remotes, concurrently; each answer stamped on arrival,
/// each bounded by [`POLL_TIMEOUT`].
async fn poll(s: &Sources, alert: &str) -> Vec<Observation> {
    let prom = async {
        let r = s.prometheus_alerts().await;
        let at = s.clock.now();
        match r {
            Ok(alerts) => Observation::Prometheus { at, alerts },
            Err(error) => Observation::PollFailed {
                at,
                source: PollSource::Prometheus,
                error,
            },
        }
    };
    let am = async {
        let am = s.alertmanager.as_ref()?;
        let r = bounded(
            || format!("Alertmanager at {} (GET /api/v2/alerts)", am.base_url()),
            am.alerts(&[("alertname", alert)]),
        )
        .await;
        let at = s.clock.now();
        Some(match r {
            Ok(alerts) => Observation::Alertmanager { at, alerts },
            Err(error) => Observation::PollFailed {
                at,
                source: PollSource::Alertmanager,
                error,
            },
        })
    };
    let (p, a) = tokio::join!(prom, am);
    let now = s.clock.now();
    let mut v = vec![p];
    v.extend(a);
    v.push(Observation::Tick(now));
    v
}

/// A feed of webhook notifications; each trial subscribes before injecting.
pub type NotificationFeed = broadcast::Sender<Notification>;

/// Forwards another receiver's notifications (e.g. the local stack's webhook
/// receiver, whose conversion lives in `stack::webhook`) into a feed the
/// drill runner can subscribe to.
pub fn forward<T>(mut rx: broadcast::Receiver<T>) -> NotificationFeed
where
    T: Clone + Send + 'static,
    Notification: From<T>,
{
    let (tx, _) = broadcast::channel(256);
    let out = tx.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(n) => {
                    let _ = out.send(Notification::from(n));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Other(DateTime<Utc>);
    impl From<Other> for Notification {
        fn from(o: Other) -> Self {
            Notification {
                received_at: o.0,
                status: "firing".into(),
                alerts: vec![],
            }
        }
    }

    #[tokio::test]
    async fn forward_maps_another_feed() {
        let (tx, rx) = broadcast::channel(4);
        let feed = forward(rx);
        let mut sub = feed.subscribe();
        let at = Utc::now();
        tx.send(Other(at)).unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), sub.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.received_at, at);
    }
}
