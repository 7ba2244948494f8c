//! Grafana HTTP API: dashboards and snapshots. A snapshot of the target's
//! dashboard, scoped to the run window and carrying the run's data, is the
//! run's proof (AC5); [`GrafanaClient::snapshot_run`] makes and verifies it.
//!
//! Pure parts live in the submodules: [`variables`] (dashboard variables
//! resolved as Grafana does), [`interpolate`] (template syntax,
//! `$__interval` & co.) and [`snapshot_body`] (dashboard -> request body).

pub mod interpolate;
pub mod snapshot_body;
pub mod variables;

pub use snapshot_body::SnapshotSettings;

use super::http::{client, max_response_bytes, read_body, send_with_retry, BodyError, TooLarge};
use super::prometheus::{self, Prometheus};
use crate::model::snapshot::{PanelData, VariableChoice};
use crate::model::RunWindow;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use snapshot_body::{QueryOutcome, SnapshotPlan};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;
use tracing::{debug, info, warn};

/// Panel queries run at once against Prometheus.
const QUERY_CONCURRENCY: usize = 4;

/// How long one Grafana request may take.
const GRAFANA_TIMEOUT: Duration = Duration::from_secs(30);

/// Every error names what was asked, of which Grafana, and what to do next.
/// None carries the token itself.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GrafanaError {
    #[error(
        "the Grafana token env var `{var}` is not set or is empty (Grafana at {url}). Set it to a \
         service-account token with the Editor role (snapshots need it); in GitHub Actions map \
         the secret with `env: {var}: ${{{{ secrets.{var} }}}}`"
    )]
    TokenUnset { var: String, url: String },

    #[error(
        "Grafana at {url} rejected {credential} on {request}: 401 {detail}. Check that it is a \
         valid, unexpired service-account token (Administration > Users and access > Service \
         accounts) whose account has the Editor role or snapshot rights"
    )]
    Unauthorized {
        url: String,
        credential: String,
        request: String,
        detail: String,
    },

    #[error(
        "Grafana at {url} refused {request} for {credential}: 403 {detail}. Give that service \
         account the Editor role (or dashboards:read on the dashboard's folder and \
         snapshots:create)"
    )]
    Forbidden {
        url: String,
        credential: String,
        request: String,
        detail: String,
    },

    #[error(
        "dashboard uid `{uid}` was not found on Grafana at {url} (404 {detail}). Set \
         `dashboard_uid` for this target in firedrill.toml to the uid in the dashboard's URL \
         (/d/<uid>/...), and check the service account can see its folder"
    )]
    DashboardNotFound {
        uid: String,
        url: String,
        detail: String,
    },

    #[error(
        "snapshot `{key}` was not found on Grafana at {url} when read back (404 {detail}): it was \
         created but cannot be opened. Check Grafana's [snapshots] settings (external snapshot \
         storage, or replicas that do not share a database)"
    )]
    SnapshotNotFound {
        key: String,
        url: String,
        detail: String,
    },

    #[error(
        "Grafana at {url} did not answer {request} within {timeout}: it timed out. Check that \
         Grafana is up and not overloaded, and that the target's grafana_url reaches it from here"
    )]
    Timeout {
        url: String,
        request: String,
        timeout: String,
    },

    #[error(
        "Grafana at {url} refused the connection ({request}): nothing listens there. Check the \
         target's grafana_url (host and port) and that Grafana is running"
    )]
    Refused { url: String, request: String },

    #[error(
        "Grafana at {url} is unreachable ({request}): {reason}. Check the target's grafana_url \
         and that Grafana is up and reachable from here"
    )]
    Unreachable {
        url: String,
        request: String,
        reason: String,
    },

    #[error("Grafana at {url} answered HTTP {status} to {request}: {detail}")]
    Http {
        url: String,
        request: String,
        status: u16,
        detail: String,
    },

    #[error("Grafana at {url} answered {request} with {detail}")]
    TooLarge {
        url: String,
        request: String,
        detail: TooLarge,
    },

    #[error(
        "Grafana at {url} answered {request} with an HTML page, not JSON ({snippet}). \
         grafana_url must be Grafana's API root (the address you open Grafana at, e.g. \
         https://grafana.example.com, with its sub-path if it is served under one), not a \
         login page or proxy in front of it; check the target's grafana_url in firedrill.toml"
    )]
    Html {
        url: String,
        request: String,
        snippet: String,
    },

    #[error(
        "Grafana at {url} answered {request} with a body firedrill cannot read ({reason}). Is \
         {url} a Grafana 10 or later?"
    )]
    Decode {
        url: String,
        request: String,
        reason: String,
    },
}

/// A snapshot firedrill created of a dashboard, scoped to the run window.
///
/// `delete_url` lets whoever holds it delete the snapshot without logging in,
/// so it belongs only in the JSON report (the artifact a run's owner keeps
/// to clean up). Never log it and never render it into the markdown report,
/// the console or the GitHub step summary. For that reason `Debug` prints it
/// redacted: a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Where a reviewer opens the snapshot.
    pub url: String,
    pub key: String,
    /// Deletes the snapshot, no login needed: JSON report only.
    pub delete_url: String,
    pub dashboard_uid: String,
    pub name: String,
    /// `None` when the snapshot never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Panels whose data is embedded.
    pub panels: usize,
    /// Series embedded across all panels.
    pub series: usize,
    /// True once Grafana served the snapshot back with the embedded panels.
    pub verified: bool,
    /// Panels that show no data and why; read-back problems.
    pub notes: Vec<String>,
    /// Every planned panel: queries, failures, series.
    #[serde(default)]
    pub panel_data: Vec<PanelData>,
    /// Every dashboard variable: the value used and where it came from.
    #[serde(default)]
    pub variables: Vec<VariableChoice>,
}

impl std::fmt::Debug for SnapshotInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotInfo")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("delete_url", &"<redacted>")
            .field("dashboard_uid", &self.dashboard_uid)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .field("panels", &self.panels)
            .field("series", &self.series)
            .field("verified", &self.verified)
            .field("notes", &self.notes)
            .field("panel_data", &self.panel_data)
            .field("variables", &self.variables)
            .finish()
    }
}

/// A token that never prints.
#[derive(Clone)]
struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// `GET /api/dashboards/uid/:uid` and `GET /api/snapshots/:key` both answer this.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DashboardResponse {
    pub dashboard: Value,
    #[serde(default)]
    pub meta: Value,
}

/// `POST /api/snapshots` → 200. `id` is absent on newer Grafana.
#[derive(Clone, PartialEq, Deserialize)]
pub struct SnapshotCreated {
    pub key: String,
    #[serde(rename = "deleteKey")]
    pub delete_key: String,
    pub url: String,
    #[serde(rename = "deleteUrl")]
    pub delete_url: String,
    #[serde(default)]
    pub id: Option<i64>,
}

impl std::fmt::Debug for SnapshotCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCreated")
            .field("key", &self.key)
            .field("url", &self.url)
            .field("delete_key", &"<redacted>")
            .field("delete_url", &"<redacted>")
            .field("id", &self.id)
            .finish()
    }
}

/// Grafana's error body (`message`, and on newer paths `messageId`).
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    message: Option<String>,
    #[serde(rename = "messageId")]
    message_id: Option<String>,
}

/// What a request was for, so an error can say so.
#[derive(Debug, Clone)]
enum Request<'a> {
    Dashboard(&'a str),
    FrontendSettings,
    CreateSnapshot,
    Snapshot(&'a str),
}

impl Request<'_> {
    fn describe(&self) -> String {
        match self {
            Request::Dashboard(uid) => format!("GET /api/dashboards/uid/{uid}"),
            Request::FrontendSettings => "GET /api/frontend/settings".to_string(),
            Request::CreateSnapshot => "POST /api/snapshots".to_string(),
            Request::Snapshot(key) => format!("GET /api/snapshots/{key}"),
        }
    }
}

/// A thin client for one Grafana.
#[derive(Debug, Clone)]
pub struct GrafanaClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
    token: Option<Token>,
    token_env: Option<String>,
    settings: SnapshotSettings,
    /// Set by [`GrafanaClient::with_settings`]: they win over the data
    /// source's `timeInterval`.
    explicit_settings: bool,
}

impl GrafanaClient {
    /// `token_env_name` names the env var holding the service-account token
    /// (sent as `Authorization: Bearer`); `None` sends no credentials.
    pub fn new(base_url: &str, token_env_name: Option<&str>) -> Result<Self, GrafanaError> {
        Self::with_env_lookup(base_url, token_env_name, |k| std::env::var(k).ok())
    }

    /// As [`new`](Self::new), reading the environment through `lookup`.
    pub fn with_env_lookup(
        base_url: &str,
        token_env_name: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, GrafanaError> {
        let base = base_url.trim_end_matches('/').to_string();
        let token = match token_env_name {
            None => None,
            Some(var) => match lookup(var).map(|t| t.trim().to_string()) {
                Some(t) if !t.is_empty() => {
                    crate::secrets::register(&t);
                    Some(Token(t))
                }
                _ => {
                    return Err(GrafanaError::TokenUnset {
                        var: var.to_string(),
                        url: base,
                    })
                }
            },
        };
        Ok(GrafanaClient {
            base,
            http: client(GRAFANA_TIMEOUT),
            timeout: GRAFANA_TIMEOUT,
            token,
            token_env: token_env_name.map(str::to_string),
            settings: SnapshotSettings::default(),
            explicit_settings: false,
        })
    }

    /// How panel queries are sized (the data source's scrape interval, points per series).
    pub fn with_settings(mut self, settings: SnapshotSettings) -> Self {
        self.settings = settings;
        self.explicit_settings = true;
        self
    }

    /// How long one request may take (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = client(timeout);
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /api/dashboards/uid/<uid>`.
    pub async fn get_dashboard(&self, uid: &str) -> Result<DashboardResponse, GrafanaError> {
        let path = format!("/api/dashboards/uid/{}", path_segment(uid));
        self.send(Request::Dashboard(uid), || self.http.get(self.url(&path)))
            .await
    }

    /// `GET /api/frontend/settings`: the data sources (name, uid, type) and
    /// the default one, which any signed-in user may read.
    pub async fn frontend_settings(&self) -> Result<Value, GrafanaError> {
        self.send(Request::FrontendSettings, || {
            self.http.get(self.url("/api/frontend/settings"))
        })
        .await
    }

    /// `POST /api/snapshots` with a body from [`snapshot_body::build_body`].
    pub async fn create_snapshot(&self, body: &Value) -> Result<SnapshotCreated, GrafanaError> {
        self.send(Request::CreateSnapshot, || {
            self.http.post(self.url("/api/snapshots")).json(body)
        })
        .await
    }

    /// `GET /api/snapshots/<key>`.
    pub async fn get_snapshot(&self, key: &str) -> Result<DashboardResponse, GrafanaError> {
        let path = format!("/api/snapshots/{}", path_segment(key));
        self.send(Request::Snapshot(key), || self.http.get(self.url(&path)))
            .await
    }

    /// Snapshots dashboard `uid` over `window`: runs every panel's Prometheus
    /// queries against `prom` (variables from the dashboard, overridden by
    /// `vars`), embeds the results, creates the snapshot and reads it back.
    /// A panel that cannot be filled gets an empty frame and a note; only
    /// Grafana errors (fetching the dashboard, creating) abort. A failed
    /// read-back gives `verified: false` and a note, not an error.
    pub async fn snapshot_run(
        &self,
        prom: &Prometheus,
        uid: &str,
        window: RunWindow,
        name: &str,
        expires: Duration,
        vars: &BTreeMap<String, String>,
    ) -> Result<SnapshotInfo, GrafanaError> {
        let dash = self.get_dashboard(uid).await?;
        let mut source_notes = Vec::new();
        let sources = match self.frontend_settings().await {
            Ok(s) => snapshot_body::DsCatalog::from_frontend_settings(&s),
            Err(e) => {
                warn!("cannot read Grafana's data sources: {e}");
                source_notes.push(format!(
                    "firedrill could not read Grafana's data source list ({e}); panels that name a data source by name or use the default one are taken as Prometheus when they have an `expr`"
                ));
                snapshot_body::DsCatalog::default()
            }
        };
        let dashboard = snapshot_body::migrate_rows(&dash.dashboard);
        let (resolved, variables) = resolve_variables(prom, &dashboard, vars, window).await;
        // Grafana floors `$__interval` at the data source's scrape interval.
        let mut settings = self.settings;
        if let (Some(t), false) = (sources.prometheus_time_interval, self.explicit_settings) {
            settings.scrape_interval = t;
        }
        let plan =
            snapshot_body::plan_with_sources(&dashboard, &resolved, window, settings, &sources);
        debug!(
            dashboard = uid,
            panels = plan.panels.len(),
            queries = plan.query_count(),
            "running panel queries for the snapshot"
        );
        let results = run_queries(prom, &plan, window).await;
        let built = snapshot_body::build_body(
            &dashboard, &plan, &results, window, name, expires, &resolved,
        );
        let created = self.create_snapshot(&built.body).await?;
        let mut notes = source_notes;
        notes.extend(built.notes);
        let (url, rewritten) = public_url(
            &self.base,
            &created.url,
            &format!("dashboard/snapshot/{}", created.key),
        );
        if rewritten {
            notes.push(format!(
                "Grafana returned the snapshot URL `{}`, which does not look reachable (is its \
                 root_url set?); the report uses {url}",
                created.url
            ));
        }
        let (delete_url, _) = public_url(
            &self.base,
            &created.delete_url,
            &format!("api/snapshots-delete/{}", created.delete_key),
        );
        info!(%url, panels = built.panels, series = built.series, "created Grafana snapshot");

        let mut expires_at =
            (!expires.is_zero()).then(|| crate::timemath::after(Utc::now(), expires));
        let verified = match self.get_snapshot(&created.key).await {
            Ok(back) => {
                if !expires.is_zero() {
                    if let Some(at) = back
                        .meta
                        .get("expires")
                        .and_then(Value::as_str)
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    {
                        expires_at = Some(at.with_timezone(&Utc));
                    }
                }
                match check_read_back(&back, built.panels) {
                    Ok(()) => true,
                    Err(why) => {
                        notes.push(why);
                        false
                    }
                }
            }
            Err(e) => {
                warn!("reading the snapshot back failed: {e}");
                notes.push(e.to_string());
                false
            }
        };
        Ok(SnapshotInfo {
            url,
            key: created.key,
            delete_url,
            dashboard_uid: uid.to_string(),
            name: name.to_string(),
            expires_at,
            panels: built.panels,
            series: built.series,
            verified,
            notes,
            panel_data: built.panel_data,
            variables,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send<T, F>(&self, req: Request<'_>, build: F) -> Result<T, GrafanaError>
    where
        T: for<'de> Deserialize<'de>,
        F: Fn() -> reqwest::RequestBuilder,
    {
        let resp = send_with_retry(
            || {
                let b = build().header(reqwest::header::ACCEPT, "application/json");
                match &self.token {
                    Some(t) => b.bearer_auth(&t.0),
                    None => b,
                }
            },
            3,
        )
        .await
        .map_err(|e| self.transport_error(&req, e))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, max_response_bytes())
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(detail) => GrafanaError::TooLarge {
                    url: self.base.clone(),
                    request: req.describe(),
                    detail,
                },
                BodyError::Read(e) => self.transport_error(&req, e),
            })?;
        if !(200..300).contains(&status) {
            return Err(error_for(
                status,
                &body,
                &req,
                &self.base,
                self.token_env.as_deref(),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| decode_error(&self.base, &req, &body, e))
    }

    /// A transport failure in words: timed out (after how long), refused,
    /// or whatever else reqwest saw.
    fn transport_error(&self, req: &Request<'_>, e: reqwest::Error) -> GrafanaError {
        let (url, request) = (self.base.clone(), req.describe());
        if e.is_timeout() {
            return GrafanaError::Timeout {
                url,
                request,
                timeout: humantime::format_duration(self.timeout).to_string(),
            };
        }
        let reason = super::http::describe(&e.without_url());
        if reason.to_ascii_lowercase().contains("connection refused") {
            return GrafanaError::Refused { url, request };
        }
        GrafanaError::Unreachable {
            url,
            request,
            reason,
        }
    }
}

/// A 2xx body that is not the JSON expected: an HTML page (a login page, a
/// proxy, the UI at a wrong path) says so; anything else is a decode error.
fn decode_error(base: &str, req: &Request<'_>, body: &[u8], e: serde_json::Error) -> GrafanaError {
    if looks_like_html(body) {
        let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
        return GrafanaError::Html {
            url: base.to_string(),
            request: req.describe(),
            snippet: text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
    }
    GrafanaError::Decode {
        url: base.to_string(),
        request: req.describe(),
        reason: e.to_string(),
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<head")
}

/// Resolves the dashboard's variables as Grafana does before it runs the
/// panels (see [`variables`]): in dependency order, query variables run
/// against `prom` over `window`; the target's `overrides` win over the
/// dashboard's own. Returns the values for interpolation (built-ins not
/// included) and one [`VariableChoice`] per variable, for the report.
pub async fn resolve_variables(
    prom: &Prometheus,
    dashboard: &Value,
    overrides: &BTreeMap<String, String>,
    window: RunWindow,
) -> (BTreeMap<String, interpolate::VarValue>, Vec<VariableChoice>) {
    use variables::{Step, VarQuery};
    let defs = variables::parse(dashboard);
    let mut known: BTreeMap<String, interpolate::VarValue> = BTreeMap::new();
    for (k, v) in overrides {
        known.insert(k.clone(), interpolate::VarValue::single(v.clone()));
    }
    // Variable queries may use the range built-ins.
    let timing = interpolate::timing(window, Duration::from_secs(15), None, 1000);
    let builtins = interpolate::builtins(window, timing);
    let mut choices: Vec<Option<VariableChoice>> = vec![None; defs.len()];
    for i in variables::order(&defs) {
        let def = &defs[i];
        if let Some(v) = overrides.get(&def.name) {
            choices[i] = Some(VariableChoice {
                name: def.name.clone(),
                value: v.clone(),
                source: "target".into(),
                note: None,
            });
            continue;
        }
        let mut ctx = builtins.clone();
        ctx.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (value, choice) = match variables::step(def, &ctx, window) {
            Step::Done(v, c) => (v, c),
            Step::Query(q) => {
                let answer = match &q {
                    VarQuery::LabelValues { label, matcher } => prom
                        .label_values(label, matcher.as_deref(), window.start, window.end)
                        .await
                        .map_err(|e| e.to_string()),
                    VarQuery::LabelNames(m) => prom
                        .label_names(m.as_deref(), window.start, window.end)
                        .await
                        .map_err(|e| e.to_string()),
                    VarQuery::Metrics(re) => {
                        let names = prom
                            .label_values("__name__", None, window.start, window.end)
                            .await
                            .map_err(|e| e.to_string());
                        names.and_then(|n| {
                            let re = regex::Regex::new(re)
                                .map_err(|e| format!("metrics({re}): not a regex: {e}"))?;
                            Ok(n.into_iter().filter(|m| re.is_match(m)).collect())
                        })
                    }
                    VarQuery::QueryResult(expr) => prom
                        .query(expr, window.end)
                        .await
                        .map_err(|e| e.to_string())
                        .map(|r| match r {
                            prometheus::QueryResult::Vector(v) => v
                                .iter()
                                .map(|s| {
                                    variables::query_result_text(&s.metric, &s.value.1, s.value.0)
                                })
                                .collect(),
                            prometheus::QueryResult::Scalar(s) => {
                                vec![format!("{{}} {} {}", s.1, (s.0 * 1000.0) as i64)]
                            }
                            _ => Vec::new(),
                        }),
                    VarQuery::Series(sel) => prom
                        .series(sel, window.start, window.end)
                        .await
                        .map_err(|e| e.to_string())
                        .map(|ls| ls.iter().map(variables::series_text).collect()),
                };
                match answer.and_then(|texts| variables::apply_regex(def, texts)) {
                    Ok(options) => variables::choose(
                        def,
                        options,
                        "resolved",
                        Some(format!("ran {}", q.describe())),
                    ),
                    Err(e) => {
                        let (v, mut c) = variables::choose(def, Vec::new(), "resolved", None);
                        c.note = Some(format!("its query {} failed: {e}", q.describe()));
                        (v, c)
                    }
                }
            }
        };
        if let Some(v) = value {
            known.insert(def.name.clone(), v);
        }
        choices[i] = Some(choice);
    }
    (known, choices.into_iter().flatten().collect())
}

/// Runs the plan's queries, a few at a time; results line up with the plan.
async fn run_queries(
    prom: &Prometheus,
    plan: &SnapshotPlan,
    window: RunWindow,
) -> Vec<Vec<QueryOutcome>> {
    let jobs: Vec<(usize, usize)> = plan
        .panels
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.queries.len()).map(move |j| (i, j)))
        .collect();
    let answers: Vec<((usize, usize), QueryOutcome)> = futures::stream::iter(jobs)
        .map(|(i, j)| async move {
            let q = &plan.panels[i].queries[j];
            let r = if q.instant {
                prom.query(&q.expr, window.end).await
            } else {
                prom.query_range(&q.expr, window.start, window.end, q.step)
                    .await
            };
            ((i, j), r.map_err(|e| e.to_string()))
        })
        .buffered(QUERY_CONCURRENCY)
        .collect()
        .await;
    let mut out: Vec<Vec<QueryOutcome>> = plan
        .panels
        .iter()
        .map(|p| Vec::with_capacity(p.queries.len()))
        .collect();
    for ((i, _), r) in answers {
        out[i].push(r);
    }
    out
}

/// A read-back passes when Grafana serves it as a snapshot with (at least)
/// the panels firedrill embedded data in.
fn check_read_back(back: &DashboardResponse, expected_panels: usize) -> Result<(), String> {
    let is_snapshot = back.meta.get("isSnapshot").and_then(Value::as_bool) == Some(true)
        || back.meta.get("type").and_then(Value::as_str) == Some("snapshot");
    if !is_snapshot {
        return Err(
            "Grafana served the snapshot back without `meta.isSnapshot`; it may not be a snapshot"
                .to_string(),
        );
    }
    let found = snapshot_body::count_snapshot_panels(&back.dashboard);
    if found < expected_panels {
        return Err(format!(
            "the snapshot read back has {found} panel(s) with embedded data, expected {expected_panels}"
        ));
    }
    Ok(())
}

/// The URL a reviewer can open. Grafana builds it from its `root_url`; when
/// that is unset (relative, or `localhost` while firedrill talks to another
/// host) the URL is rebuilt on the base firedrill used. Returns (url, rewritten).
pub fn public_url(base: &str, returned: &str, path: &str) -> (String, bool) {
    let rebuilt = format!("{}/{}", base.trim_end_matches('/'), path);
    let Ok(ret) = url::Url::parse(returned) else {
        return (rebuilt, true);
    };
    let is_loopback = |u: &url::Url| {
        matches!(
            u.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(_))
                | Some(url::Host::Ipv6(_))
        ) && match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => true,
        }
    };
    match url::Url::parse(base) {
        Ok(b) if is_loopback(&ret) && !is_loopback(&b) => (rebuilt, true),
        _ => (returned.to_string(), false),
    }
}

fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn credential(token_env: Option<&str>) -> String {
    match token_env {
        Some(var) => format!("the service-account token in env var `{var}`"),
        None => "an anonymous request (the target names no token env var)".to_string(),
    }
}

/// Maps a non-2xx answer to the error that says what to do.
fn error_for(
    status: u16,
    body: &[u8],
    req: &Request<'_>,
    base: &str,
    token_env: Option<&str>,
) -> GrafanaError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail = match (&parsed.message, &parsed.message_id) {
        (Some(m), Some(id)) => format!("{m} [{id}]"),
        (Some(m), None) => m.clone(),
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            if text.trim().is_empty() {
                "(empty body)".to_string()
            } else {
                text
            }
        }
    };
    let url = base.to_string();
    match (status, req) {
        (401, _) => GrafanaError::Unauthorized {
            url,
            credential: credential(token_env),
            request: req.describe(),
            detail,
        },
        (403, _) => GrafanaError::Forbidden {
            url,
            credential: credential(token_env),
            request: req.describe(),
            detail,
        },
        (404, Request::Dashboard(uid)) => GrafanaError::DashboardNotFound {
            uid: uid.to_string(),
            url,
            detail,
        },
        (404, Request::Snapshot(key)) => GrafanaError::SnapshotNotFound {
            key: key.to_string(),
            url,
            detail,
        },
        _ => GrafanaError::Http {
            url,
            request: req.describe(),
            status,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_fixtures::bytes(&format!("grafana/{name}"))
    }

    #[test]
    fn decodes_grafana_error_bodies() {
        let e = error_for(
            401,
            &fixture("error-401-invalid-api-key.json"),
            &Request::Dashboard("fleet"),
            "https://g.example",
            Some("GRAFANA_TOKEN"),
        );
        let msg = e.to_string();
        assert!(matches!(e, GrafanaError::Unauthorized { .. }));
        assert!(msg.contains("Invalid API key [api-key.invalid]"), "{msg}");
        assert!(msg.contains("`GRAFANA_TOKEN`"), "{msg}");
        assert!(msg.contains("https://g.example"), "{msg}");
        assert!(msg.contains("Editor"), "{msg}");

        let e = error_for(
            401,
            &fixture("error-401-unauthorized.json"),
            &Request::CreateSnapshot,
            "https://g.example",
            None,
        );
        assert!(e.to_string().contains("Unauthorized [auth.unauthorized]"));
        assert!(e.to_string().contains("anonymous"));

        let e = error_for(
            404,
            &fixture("error-404-dashboard.json"),
            &Request::Dashboard("fleet-overview"),
            "https://g.example",
            Some("GRAFANA_TOKEN"),
        );
        let msg = e.to_string();
        assert!(matches!(e, GrafanaError::DashboardNotFound { .. }));
        assert!(msg.contains("`fleet-overview`") && msg.contains("Dashboard not found"));
        assert!(msg.contains("dashboard_uid") && msg.contains("firedrill.toml"));

        let e = error_for(
            404,
            &fixture("error-404-snapshot.json"),
            &Request::Snapshot("k1"),
            "https://g.example",
            None,
        );
        assert!(matches!(e, GrafanaError::SnapshotNotFound { .. }));
        assert!(e
            .to_string()
            .contains("Snapshot not found [dashboardsnapshots.not-found]"));

        let e = error_for(
            403,
            br#"{"message":"Access denied"}"#,
            &Request::CreateSnapshot,
            "https://g.example",
            Some("GRAFANA_TOKEN"),
        );
        assert!(matches!(e, GrafanaError::Forbidden { .. }));
        let e = error_for(
            502,
            b"",
            &Request::CreateSnapshot,
            "https://g.example",
            None,
        );
        assert!(e.to_string().contains("HTTP 502") && e.to_string().contains("(empty body)"));
    }

    #[test]
    fn token_env_var_must_be_set() {
        let e =
            GrafanaClient::with_env_lookup("https://g.example/", Some("GRAFANA_TOKEN"), |_| None)
                .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`GRAFANA_TOKEN` is not set"), "{msg}");
        assert!(msg.contains("${{ secrets.GRAFANA_TOKEN }}"), "{msg}");
        assert!(
            GrafanaClient::with_env_lookup("https://g", Some("T"), |_| Some(" ".into())).is_err()
        );
        let c =
            GrafanaClient::with_env_lookup("https://g/", Some("T"), |_| Some("glsa_secret".into()))
                .unwrap();
        assert_eq!(c.base_url(), "https://g");
        assert!(!format!("{c:?}").contains("glsa_secret"));
        assert!(GrafanaClient::with_env_lookup("https://g", None, |_| None).is_ok());
    }

    #[test]
    fn snapshot_create_response_decodes_without_id() {
        let r: SnapshotCreated =
            serde_json::from_slice(&fixture("snapshot-create-response-docs.json")).unwrap();
        assert_eq!(r.key, "YYYYYYY");
        assert_eq!(r.id, Some(1));
        assert!(!format!("{r:?}").contains("XXXXXXX"));
        let r: SnapshotCreated =
            serde_json::from_str(r#"{"key":"k","deleteKey":"d","url":"u","deleteUrl":"du"}"#)
                .unwrap();
        assert_eq!(r.id, None);
    }

    #[test]
    fn public_url_rebuilds_unusable_urls() {
        let cases = [
            // The docs example: no root_url at all.
            (
                "https://g.example",
                "myurl/dashboard/snapshot/Y",
                ("https://g.example/dashboard/snapshot/Y", true),
            ),
            // Default root_url while firedrill talks to the real host.
            (
                "https://g.example/",
                "http://localhost:3000/dashboard/snapshot/Y",
                ("https://g.example/dashboard/snapshot/Y", true),
            ),
            // Port-forwarded API, proper root_url: keep Grafana's.
            (
                "http://127.0.0.1:3000",
                "https://grafana.corp/dashboard/snapshot/Y",
                ("https://grafana.corp/dashboard/snapshot/Y", false),
            ),
            // Both local (the test double, a local Grafana): keep.
            (
                "http://127.0.0.1:3000",
                "http://127.0.0.1:3000/dashboard/snapshot/Y",
                ("http://127.0.0.1:3000/dashboard/snapshot/Y", false),
            ),
        ];
        for (base, returned, (want, rewritten)) in cases {
            let got = public_url(base, returned, "dashboard/snapshot/Y");
            assert_eq!(got, (want.to_string(), rewritten), "{base} {returned}");
        }
    }

    #[test]
    fn read_back_check() {
        let back: DashboardResponse =
            serde_json::from_slice(&fixture("snapshot-get.json")).unwrap();
        assert_eq!(check_read_back(&back, 1), Ok(()));
        assert!(check_read_back(&back, 2)
            .unwrap_err()
            .contains("expected 2"));
        let not_snapshot = DashboardResponse {
            dashboard: back.dashboard.clone(),
            meta: serde_json::json!({"type": "db"}),
        };
        assert!(check_read_back(&not_snapshot, 1).is_err());
    }
}
