//! Pure: a dashboard's JSON plus Prometheus results -> the `POST /api/snapshots`
//! body, in the form Grafana 11 (Scenes) sends and, on the same panels, the
//! legacy `snapshotData` form Grafana <= 10 reads. See
//! `tests/fixtures/grafana/snapshot-create-request-grafana11.json` and
//! `snapshot-create-request-grafana10-legacy.json` for what Grafana itself sends.
//!
//! Two steps around the I/O: [`plan`] lists the queries every panel needs;
//! the caller runs them; [`build_body`] embeds the results.

use super::interpolate::{self, VarValue};
use crate::clients::prometheus::QueryResult;
use crate::model::snapshot::PanelData;
use crate::model::RunWindow;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The data source a snapshot panel reads its embedded frames from. Grafana
/// matches on `uid == "grafana"` (saved dashboards write `type: "datasource"`).
pub fn grafana_datasource_ref() -> Value {
    json!({"type": "datasource", "uid": "grafana"})
}

/// How panel queries are sized, as Grafana would for a Prometheus data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// The data source's scrape interval: the floor of `$__interval` and the
    /// base of `$__rate_interval` (Grafana's default is 15 s).
    pub scrape_interval: Duration,
    /// Points per series when the panel sets no `maxDataPoints`.
    pub max_data_points: u32,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            scrape_interval: Duration::from_secs(15),
            max_data_points: 1000,
        }
    }
}

/// One Prometheus query a panel needs, variables already filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    pub ref_id: String,
    pub expr: String,
    pub legend_format: Option<String>,
    /// An instant query (at the window's end) rather than a range query.
    pub instant: bool,
    /// `format: "table"`: embedded as one table frame (a row per sample).
    pub table: bool,
    pub step: Duration,
}

/// A panel that shows query data, and what firedrill will run for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelPlan {
    /// Index path: `[i]` for `panels[i]`, `[i, j]` for `panels[i].panels[j]` (rows).
    pub path: Vec<usize>,
    pub title: String,
    pub queries: Vec<PlannedQuery>,
    /// Why some of its targets will show no data.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SnapshotPlan {
    pub panels: Vec<PanelPlan>,
    /// Dashboard-level remarks (library panels, ...).
    pub notes: Vec<String>,
}

impl SnapshotPlan {
    pub fn query_count(&self) -> usize {
        self.panels.iter().map(|p| p.queries.len()).sum()
    }
}

/// What one planned query gave: Prometheus' answer or the error text.
pub type QueryOutcome = Result<QueryResult, String>;

/// The request body and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltSnapshot {
    pub body: Value,
    /// Panels whose data is embedded (including ones left empty, with a note).
    pub panels: usize,
    /// Series (non-empty frames) embedded across all panels.
    pub series: usize,
    /// Per planned panel: queries, failures, series.
    pub panel_data: Vec<PanelData>,
    pub notes: Vec<String>,
}

/// The dashboard's variables at their saved values, with `overrides`
/// (the target's variables, e.g. `namespace`) taking precedence: what the
/// snapshot uses when no variable query can run (tests, a dead Prometheus).
/// [`super::variables`] resolves them as Grafana does.
pub fn saved_vars(
    dashboard: &Value,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, VarValue> {
    let mut vars = BTreeMap::new();
    for d in super::variables::parse(dashboard) {
        let regex_ctx = d.multi || d.include_all;
        let value = if d.include_all && d.current.iter().any(|c| c == "$__all") {
            Some(VarValue::All {
                all_value: d.all_value.clone(),
                options: Vec::new(),
            })
        } else if let super::variables::VarKind::Constant(q) = &d.kind {
            Some(VarValue::single(q.clone()))
        } else if d.current.is_empty() {
            None
        } else if regex_ctx {
            Some(VarValue::Multi(d.current.clone()))
        } else {
            Some(VarValue::Values(d.current.clone()))
        };
        if let Some(value) = value {
            vars.insert(d.name.clone(), value);
        }
    }
    for (k, v) in overrides {
        vars.insert(k.clone(), VarValue::single(v.clone()));
    }
    vars
}

fn templating(dashboard: &Value) -> &[Value] {
    dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Lists the Prometheus queries of every data panel, rows included.
/// `dashboard` must be migrated ([`migrate_rows`]) first; `vars` are its
/// variables as resolved (see [`super::variables`]) or [`saved_vars`].
pub fn plan(
    dashboard: &Value,
    vars: &BTreeMap<String, VarValue>,
    window: RunWindow,
    settings: SnapshotSettings,
) -> SnapshotPlan {
    plan_with_sources(dashboard, vars, window, settings, &DsCatalog::default())
}

/// [`plan`], with data source names and uids (and the default one) typed
/// from `sources`, as Grafana resolves them.
pub fn plan_with_sources(
    dashboard: &Value,
    vars: &BTreeMap<String, VarValue>,
    window: RunWindow,
    settings: SnapshotSettings,
    sources: &DsCatalog,
) -> SnapshotPlan {
    let mut out = SnapshotPlan::default();
    if let Some(panels) = dashboard.get("panels").and_then(Value::as_array) {
        let ctx = PlanCtx {
            dashboard,
            vars,
            window,
            settings,
            sources,
        };
        plan_panels(panels, &[], &ctx, &mut out);
    }
    // Ad-hoc filters go into every selector of every Prometheus query.
    let adhoc: Vec<(String, String, String)> = super::variables::parse(dashboard)
        .into_iter()
        .flat_map(|d| match d.kind {
            super::variables::VarKind::Adhoc(f) => f,
            _ => Vec::new(),
        })
        .filter(|(k, _, _)| !k.is_empty())
        .collect();
    if !adhoc.is_empty() {
        for p in &mut out.panels {
            for q in &mut p.queries {
                match crate::promql::add_matchers(&q.expr, &adhoc) {
                    Ok(e) => q.expr = e,
                    Err(e) => p.notes.push(format!(
                        "panel {} query {}: the dashboard's ad-hoc filters could not be added ({e}); it runs without them",
                        p.title, q.ref_id
                    )),
                }
            }
        }
    }
    out
}

/// Grafana's migration of a schema < 16 dashboard: `rows[]`, each with its
/// `panels` and a `span` (of 12) per panel, become a flat `panels` list with
/// `gridPos`; a row with a title or collapsed becomes a `row` panel, a
/// collapsed one holding its panels. A dashboard with `panels` is returned
/// as is. Panel ids are kept; a panel without one gets the next free id.
pub fn migrate_rows(dashboard: &Value) -> std::borrow::Cow<'_, Value> {
    let Some(rows) = dashboard.get("rows").and_then(Value::as_array) else {
        return std::borrow::Cow::Borrowed(dashboard);
    };
    let has_panels = dashboard
        .get("panels")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    if has_panels {
        return std::borrow::Cow::Borrowed(dashboard);
    }
    let mut next_id = 1 + max_panel_id(rows);
    let mut panels: Vec<Value> = Vec::new();
    let mut y = 0i64;
    let show_rows = rows.len() > 1
        || rows.iter().any(|r| {
            r.get("showTitle").and_then(Value::as_bool) == Some(true)
                || r.get("collapse").and_then(Value::as_bool) == Some(true)
        });
    for row in rows {
        let collapsed = row.get("collapse").and_then(Value::as_bool) == Some(true);
        let height = row_height(row.get("height"));
        let mut row_panel = show_rows.then(|| {
            let id = next_id;
            next_id += 1;
            json!({
                "type": "row",
                "id": id,
                "title": row.get("title").cloned().unwrap_or(json!("")),
                "collapsed": collapsed,
                "repeat": row.get("repeat").cloned().unwrap_or(Value::Null),
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            })
        });
        if show_rows {
            y += 1;
        }
        let mut x = 0i64;
        let mut row_h = 0i64;
        for p in row
            .get("panels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut p = p.clone();
            let w = (p.get("span").and_then(Value::as_f64).unwrap_or(4.0) * 2.0).round() as i64;
            let w = w.clamp(1, 24);
            let h = p
                .get("height")
                .map(|h| row_height(Some(h)))
                .unwrap_or(height);
            if x + w > 24 {
                x = 0;
                y += row_h;
                row_h = 0;
            }
            if let Some(o) = p.as_object_mut() {
                o.remove("span");
                if o.get("id").and_then(Value::as_i64).is_none() {
                    o.insert("id".into(), json!(next_id));
                    next_id += 1;
                }
                o.insert("gridPos".into(), json!({"x": x, "y": y, "w": w, "h": h}));
            }
            x += w;
            row_h = row_h.max(h);
            match (&mut row_panel, collapsed) {
                (Some(r), true) => r["panels"].as_array_mut().expect("array").push(p),
                _ => panels.push(p),
            }
        }
        y += row_h;
        if let Some(r) = row_panel {
            // The row panel goes before the panels it heads.
            let at = panels.len()
                - if collapsed {
                    0
                } else {
                    row.get("panels")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                };
            panels.insert(at, r);
        }
    }
    let mut out = dashboard.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("rows");
        o.insert("panels".into(), Value::Array(panels));
        o.insert("schemaVersion".into(), json!(16));
    }
    std::borrow::Cow::Owned(out)
}

fn max_panel_id(rows: &[Value]) -> i64 {
    rows.iter()
        .flat_map(|r| {
            r.get("panels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|p| p.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(0)
}

/// A row height (`250`, `"250px"`) in grid units, as Grafana converts it.
fn row_height(h: Option<&Value>) -> i64 {
    let px = match h {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(250.0),
        Some(Value::String(s)) => s.trim_end_matches("px").trim().parse().unwrap_or(250.0),
        _ => 250.0,
    };
    ((px / 38.0).ceil() as i64).max(1)
}

/// What every panel is planned against.
struct PlanCtx<'a> {
    dashboard: &'a Value,
    vars: &'a BTreeMap<String, VarValue>,
    window: RunWindow,
    settings: SnapshotSettings,
    sources: &'a DsCatalog,
}

fn plan_panels(panels: &[Value], prefix: &[usize], ctx: &PlanCtx<'_>, out: &mut SnapshotPlan) {
    for (i, panel) in panels.iter().enumerate() {
        let mut path = prefix.to_vec();
        path.push(i);
        let title = panel_title(panel);
        if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
            plan_panels(nested, &path, ctx, out);
        }
        if panel.get("type").and_then(Value::as_str) == Some("row") {
            continue;
        }
        let Some(targets) = panel.get("targets").and_then(Value::as_array) else {
            if panel.get("libraryPanel").is_some() {
                out.notes.push(format!(
                    "panel {title} is a library panel; firedrill does not expand library panels, so it shows no data in the snapshot"
                ));
            }
            continue;
        };
        out.panels
            .push(plan_panel(panel, targets, path, title, ctx));
    }
}

fn plan_panel(
    panel: &Value,
    targets: &[Value],
    path: Vec<usize>,
    title: String,
    ctx: &PlanCtx<'_>,
) -> PanelPlan {
    let PlanCtx {
        dashboard,
        vars,
        window,
        settings,
        sources,
    } = *ctx;
    let mut plan = PanelPlan {
        path,
        title,
        queries: Vec::new(),
        notes: Vec::new(),
    };
    let panel_ds = ds_kind(panel.get("datasource"), dashboard, sources);
    let max_points = panel
        .get("maxDataPoints")
        .and_then(Value::as_u64)
        .map(|n| n.clamp(1, 11_000) as u32)
        .unwrap_or(settings.max_data_points);
    for (n, target) in targets.iter().enumerate() {
        if target.get("hide").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let ref_id = target
            .get("refId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ref_id_for(n));
        // A target without a data source uses its panel's.
        let kind = match target.get("datasource") {
            None | Some(Value::Null) => panel_ds.clone(),
            ds => match ds_kind(ds, dashboard, sources) {
                DsKind::Unknown | DsKind::Mixed => panel_ds.clone(),
                k => k,
            },
        };
        let expr = target.get("expr").and_then(Value::as_str).unwrap_or("");
        let has_expr = target.get("expr").is_some();
        match kind {
            DsKind::Prometheus => {}
            DsKind::Unknown | DsKind::Mixed if has_expr => {}
            DsKind::Other(t) => {
                plan.notes.push(format!(
                    "panel {} query {ref_id} uses a {t} data source; firedrill snapshots Prometheus queries only, so it shows no data",
                    plan.title
                ));
                continue;
            }
            DsKind::Missing(name) => {
                plan.notes.push(format!(
                    "panel {} query {ref_id} names data source \"{name}\", which this Grafana does not have (Grafana shows the panel as an error); it is not queried and shows no data. Fix the dashboard's data source, or import it with the right one",
                    plan.title
                ));
                continue;
            }
            DsKind::Unknown | DsKind::Mixed => {
                plan.notes.push(format!(
                    "panel {} query {ref_id} names no data source type and has no `expr`, so it is not a Prometheus query; it shows no data",
                    plan.title
                ));
                continue;
            }
        }
        // Grafana runs nothing for an empty query, and says nothing.
        if expr.trim().is_empty() {
            continue;
        }
        let mut all_vars = vars.clone();
        let interval_of = |v: Option<&Value>, all: &BTreeMap<String, VarValue>| {
            v.and_then(Value::as_str)
                .map(|s| interpolate::interpolate(s, all).0)
                .and_then(|s| interpolate::parse_min_interval(&s))
        };
        let min_interval = interval_of(target.get("interval"), vars)
            .or_else(|| interval_of(panel.get("interval"), vars));
        let timing =
            interpolate::timing(window, settings.scrape_interval, min_interval, max_points);
        all_vars.extend(interpolate::builtins(window, timing));
        let (expr, unknown) = interpolate::interpolate(expr, &all_vars);
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|u| format!("${u}")).collect();
            plan.notes.push(format!(
                "panel {} query {ref_id} uses {} that neither the dashboard nor the target defines; add them to the target's variables in firedrill.toml",
                plan.title,
                names.join(", ")
            ));
        }
        let legend_format = target
            .get("legendFormat")
            .and_then(Value::as_str)
            .map(|l| interpolate::interpolate(l, &all_vars).0);
        let range = target.get("range").and_then(Value::as_bool) == Some(true);
        let instant = target.get("instant").and_then(Value::as_bool) == Some(true) && !range;
        let table = target.get("format").and_then(Value::as_str) == Some("table");
        plan.queries.push(PlannedQuery {
            ref_id,
            expr,
            legend_format,
            instant,
            table,
            step: timing.interval,
        });
    }
    plan
}

fn ref_id_for(n: usize) -> String {
    let letter = (b'A' + (n % 26) as u8) as char;
    if n < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", n / 26)
    }
}

fn panel_title(panel: &Value) -> String {
    let title = panel.get("title").and_then(Value::as_str).unwrap_or("");
    match (title.is_empty(), panel.get("id").and_then(Value::as_i64)) {
        (false, _) => format!("\"{title}\""),
        (true, Some(id)) => format!("id {id}"),
        (true, None) => "(untitled)".to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum DsKind {
    Prometheus,
    Other(String),
    Mixed,
    /// No data source named (the default one) or one firedrill cannot place.
    Unknown,
    /// A name or uid Grafana's own data source list does not have: Grafana
    /// shows the panel as an error, so it is never queried as Prometheus.
    Missing(String),
}

/// The data sources a Grafana has, by name and by uid, and which is the
/// default: from `GET /api/frontend/settings` (`datasources`,
/// `defaultDatasource`), the map Grafana's own UI resolves references with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DsCatalog {
    /// Name or uid -> plugin type.
    types: BTreeMap<String, String>,
    default_type: Option<String>,
    /// The Prometheus data source's `jsonData.timeInterval` (its scrape
    /// interval, the floor of `$__interval`): the default one's, else the
    /// first Prometheus listed.
    pub prometheus_time_interval: Option<Duration>,
}

impl DsCatalog {
    pub fn from_frontend_settings(settings: &Value) -> Self {
        let mut types = BTreeMap::new();
        if let Some(map) = settings.get("datasources").and_then(Value::as_object) {
            for (name, ds) in map {
                let Some(ty) = ds.get("type").and_then(Value::as_str) else {
                    continue;
                };
                types.insert(name.clone(), ty.to_string());
                for k in ["name", "uid"] {
                    if let Some(v) = ds.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                        types.insert(v.to_string(), ty.to_string());
                    }
                }
            }
        }
        let default_name = settings.get("defaultDatasource").and_then(Value::as_str);
        let default_type = default_name.and_then(|d| types.get(d).cloned());
        let interval_of = |ds: &Value| {
            ds.pointer("/jsonData/timeInterval")
                .and_then(Value::as_str)
                .and_then(interpolate::parse_min_interval)
        };
        let proms: Vec<(&String, &Value)> = settings
            .get("datasources")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(_, ds)| ds.get("type").and_then(Value::as_str) == Some("prometheus"))
                    .collect()
            })
            .unwrap_or_default();
        let prometheus_time_interval = proms
            .iter()
            .find(|(name, _)| Some(name.as_str()) == default_name)
            .or(proms.first())
            .and_then(|(_, ds)| interval_of(ds));
        DsCatalog {
            types,
            default_type,
            prometheus_time_interval,
        }
    }

    /// Grafana's list was read (else every name is unknown, not missing).
    fn is_known(&self) -> bool {
        !self.types.is_empty()
    }

    fn kind_of(&self, name_or_uid: &str) -> Option<DsKind> {
        self.types.get(name_or_uid).map(|t| kind_for_type(t))
    }
}

fn kind_for_type(t: &str) -> DsKind {
    match t {
        "prometheus" => DsKind::Prometheus,
        other => DsKind::Other(other.to_string()),
    }
}

/// What a data source reference points at. References may be null (the
/// default), a name string (old dashboards), `{type, uid}`, or a variable
/// (`{"uid":"$ds"}`) whose `datasource`-type variable names the plugin.
/// Names and uids are looked up in `sources` (Grafana's own list) when it
/// has them.
fn ds_kind(ds: Option<&Value>, dashboard: &Value, sources: &DsCatalog) -> DsKind {
    let (ty, uid) = match ds {
        None | Some(Value::Null) => {
            return sources
                .default_type
                .as_deref()
                .map(kind_for_type)
                .unwrap_or(DsKind::Unknown)
        }
        Some(Value::String(s)) => (None, s.as_str()),
        Some(Value::Object(o)) => (
            o.get("type").and_then(Value::as_str),
            o.get("uid").and_then(Value::as_str).unwrap_or(""),
        ),
        Some(_) => return DsKind::Unknown,
    };
    match uid {
        "-- Mixed --" => return DsKind::Mixed,
        "-- Grafana --" | "grafana" => return DsKind::Other("grafana".into()),
        "-- Dashboard --" => return DsKind::Other("dashboard".into()),
        _ => {}
    }
    match ty {
        Some("prometheus") => return DsKind::Prometheus,
        Some("datasource") | None | Some("") => {}
        Some(other) => return DsKind::Other(other.to_string()),
    }
    let var = uid
        .strip_prefix("${")
        .and_then(|s| s.strip_suffix('}'))
        .or_else(|| uid.strip_prefix('$'));
    if let Some(var) = var {
        let def = templating(dashboard).iter().find(|v| {
            v.get("name").and_then(Value::as_str) == Some(var)
                && v.get("type").and_then(Value::as_str) == Some("datasource")
        });
        // The variable's current data source, when Grafana knows it ...
        let current = def
            .and_then(|v| v.pointer("/current/value"))
            .and_then(Value::as_str)
            .and_then(|c| sources.kind_of(c));
        if let Some(k) = current {
            return k;
        }
        // ... else the plugin the variable lists.
        let plugin = def.and_then(|v| v.get("query").and_then(Value::as_str));
        return match plugin {
            Some("prometheus") => DsKind::Prometheus,
            Some(p) if !p.is_empty() => DsKind::Other(p.to_string()),
            _ => DsKind::Unknown,
        };
    }
    match sources.kind_of(uid) {
        Some(k) => k,
        None if !uid.is_empty() && sources.is_known() => DsKind::Missing(uid.to_string()),
        None => DsKind::Unknown,
    }
}

/// One series as a Grafana data frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub ref_id: String,
    /// Legend text (`displayNameFromDS` and the frame name), when Grafana would set one.
    pub display_name: Option<String>,
    /// The value field's name: the series' `__name__`, else `Value`.
    pub value_name: String,
    pub labels: BTreeMap<String, String>,
    pub times_ms: Vec<i64>,
    pub values: Vec<f64>,
    pub interval_ms: u64,
    pub result_type: &'static str,
    /// `Expr: ...\nStep: ...` on the first frame of a query, as Grafana writes it.
    pub executed_query: Option<String>,
}

/// Frames for one query's result, one per series, as Grafana's Prometheus
/// data source builds them.
pub fn frames_for(query: &PlannedQuery, result: &QueryResult) -> Vec<Frame> {
    let interval_ms = query.step.as_millis() as u64;
    let frame = |labels: &BTreeMap<String, String>,
                 times_ms: Vec<i64>,
                 values: Vec<f64>,
                 result_type: &'static str| Frame {
        ref_id: query.ref_id.clone(),
        display_name: display_name(query.legend_format.as_deref(), labels, &query.expr),
        value_name: labels
            .get("__name__")
            .cloned()
            .unwrap_or_else(|| "Value".to_string()),
        labels: labels.clone(),
        times_ms,
        values,
        interval_ms,
        result_type,
        executed_query: None,
    };
    let to_ms = |t: f64| (t * 1000.0).round() as i64;
    let mut frames: Vec<Frame> = match result {
        QueryResult::Matrix(series) => series
            .iter()
            .map(|s| {
                frame(
                    &s.metric,
                    s.values.iter().map(|p| to_ms(p.0)).collect(),
                    s.values.iter().map(|p| p.value()).collect(),
                    "matrix",
                )
            })
            .collect(),
        QueryResult::Vector(samples) => samples
            .iter()
            .map(|s| {
                frame(
                    &s.metric,
                    vec![to_ms(s.value.0)],
                    vec![s.value.value()],
                    "vector",
                )
            })
            .collect(),
        QueryResult::Scalar(s) => vec![frame(
            &BTreeMap::new(),
            vec![to_ms(s.0)],
            vec![s.value()],
            "scalar",
        )],
        QueryResult::String(_) => Vec::new(),
    };
    if let Some(first) = frames.first_mut() {
        first.executed_query = Some(format!(
            "Expr: {}\nStep: {}",
            query.expr,
            interpolate::format_duration(query.step)
        ));
    }
    frames
}

/// Grafana's legend rule (`getName` in its Prometheus data source): an empty
/// legend gives `name{labels}`; `__auto` leaves naming to the panel when the
/// series has labels; `{{label}}` templates are filled; `{}` becomes the expr.
pub fn display_name(
    legend: Option<&str>,
    labels: &BTreeMap<String, String>,
    expr: &str,
) -> Option<String> {
    let name = match legend {
        Some("__auto") if !labels.is_empty() => String::new(),
        Some(l) if !l.is_empty() && l != "__auto" => fill_legend(l, labels),
        _ => metric_name_from_labels(labels),
    };
    match name.as_str() {
        "" => None,
        "{}" => Some(expr.to_string()),
        _ => Some(name),
    }
}

fn metric_name_from_labels(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        return name.to_string();
    }
    format!("{name}{{{}}}", rest.join(", "))
}

fn fill_legend(legend: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                out.push_str(labels.get(key).map(String::as_str).unwrap_or(""));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Frame {
    fn meta(&self) -> Value {
        let mut meta = json!({
            "type": "timeseries-multi",
            "typeVersion": [0, 1],
            "custom": {"resultType": self.result_type},
        });
        if let Some(q) = &self.executed_query {
            meta["executedQueryString"] = json!(q);
        }
        meta
    }

    fn value_config(&self) -> Value {
        match &self.display_name {
            Some(n) => json!({"displayNameFromDS": n}),
            None => json!({}),
        }
    }

    /// `null` for NaN/±Inf (JSON has no such numbers), with their indexes,
    /// as Grafana's data frame JSON `entities` carries them.
    fn encoded_values(&self) -> (Vec<Value>, Option<Value>) {
        let mut nan = Vec::new();
        let mut inf = Vec::new();
        let mut neg_inf = Vec::new();
        let values = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if v.is_nan() {
                    nan.push(i);
                    Value::Null
                } else if *v == f64::INFINITY {
                    inf.push(i);
                    Value::Null
                } else if *v == f64::NEG_INFINITY {
                    neg_inf.push(i);
                    Value::Null
                } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
                    // Whole numbers as integers, as Grafana writes them.
                    json!(*v as i64)
                } else {
                    json!(v)
                }
            })
            .collect();
        let mut entities = Map::new();
        for (k, idx) in [("NaN", nan), ("Inf", inf), ("NegInf", neg_inf)] {
            if !idx.is_empty() {
                entities.insert(k.to_string(), json!(idx));
            }
        }
        let entities = (!entities.is_empty()).then(|| json!([null, entities]));
        (values, entities)
    }

    /// Grafana >= 11: a `DataFrameJSON` (schema + columnar data).
    pub fn to_frame_json(&self) -> Value {
        let mut schema = json!({
            "refId": self.ref_id,
            "meta": self.meta(),
            "fields": [
                {
                    "name": "Time",
                    "type": "time",
                    "typeInfo": {"frame": "time.Time"},
                    "config": {"interval": self.interval_ms},
                },
                {
                    "name": self.value_name,
                    "type": "number",
                    "typeInfo": {"frame": "float64", "nullable": true},
                    "labels": self.labels,
                    "config": self.value_config(),
                },
            ],
        });
        if let Some(n) = &self.display_name {
            schema["name"] = json!(n);
        }
        let (values, entities) = self.encoded_values();
        let mut data = json!({"values": [self.times_ms, values]});
        if let Some(e) = entities {
            data["entities"] = e;
        }
        json!({"schema": schema, "data": data})
    }

    /// Grafana <= 10: a `DataFrameDTO` (fields carry their own values).
    pub fn to_frame_dto(&self) -> Value {
        let (values, _) = self.encoded_values();
        let mut dto = json!({
            "fields": [
                {
                    "name": "Time",
                    "type": "time",
                    "config": {"interval": self.interval_ms},
                    "values": self.times_ms,
                },
                {
                    "name": self.value_name,
                    "type": "number",
                    "config": self.value_config(),
                    "values": values,
                    "labels": self.labels,
                },
            ],
            "refId": self.ref_id,
            "meta": self.meta(),
        });
        if let Some(n) = &self.display_name {
            dto["name"] = json!(n);
        }
        dto
    }
}

/// The frame a panel gets when it has nothing to show.
fn empty_frame_json(ref_id: &str) -> Value {
    json!({"schema": {"refId": ref_id, "fields": []}, "data": {"values": []}})
}

fn empty_frame_dto(ref_id: &str) -> Value {
    json!({"fields": [], "refId": ref_id})
}

/// `2026-11-23T10:00:00.000Z`, as Grafana writes absolute snapshot times.
pub fn iso_millis(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Builds the request body: the dashboard (migrated, see [`migrate_rows`])
/// trimmed for a snapshot (absolute time, refresh off, no links, variables
/// at the values `vars` gives them) with every planned panel's data
/// embedded. `results[i][j]` answers `plan.panels[i].queries[j]`.
pub fn build_body(
    dashboard: &Value,
    plan: &SnapshotPlan,
    results: &[Vec<QueryOutcome>],
    window: RunWindow,
    name: &str,
    expires: Duration,
    vars: &BTreeMap<String, VarValue>,
) -> BuiltSnapshot {
    let mut dash = dashboard.clone();
    trim_for_snapshot(&mut dash, window, vars);
    let mut notes = plan.notes.clone();
    let mut series = 0;
    let mut panel_data = Vec::with_capacity(plan.panels.len());
    for (i, panel_plan) in plan.panels.iter().enumerate() {
        notes.extend(panel_plan.notes.iter().cloned());
        let mut snapshot: Vec<Value> = Vec::new();
        let mut legacy: Vec<Value> = Vec::new();
        let mut panel_series = 0;
        let mut failed = 0;
        let several = panel_plan.queries.len() > 1;
        for (j, q) in panel_plan.queries.iter().enumerate() {
            match results.get(i).and_then(|r| r.get(j)) {
                Some(Ok(result)) => {
                    if matches!(result, QueryResult::String(_)) {
                        notes.push(format!(
                            "panel {} query {} returned a string, which a panel cannot plot",
                            panel_plan.title, q.ref_id
                        ));
                    }
                    if q.table {
                        if let Some(t) = TableFrame::from_result(q, result, several) {
                            panel_series += t.series;
                            snapshot.push(t.to_frame_json());
                            legacy.push(t.to_frame_dto());
                        }
                    } else {
                        let frames = frames_for(q, result);
                        panel_series += frames.len();
                        snapshot.extend(frames.iter().map(Frame::to_frame_json));
                        legacy.extend(frames.iter().map(Frame::to_frame_dto));
                    }
                }
                Some(Err(e)) => {
                    failed += 1;
                    notes.push(format!(
                        "panel {} query {} failed, so the panel shows no data for it: {e}",
                        panel_plan.title, q.ref_id
                    ));
                }
                None => {
                    failed += 1;
                    notes.push(format!(
                        "panel {} query {} was not run",
                        panel_plan.title, q.ref_id
                    ));
                }
            }
        }
        let had_notes = failed > 0 || !panel_plan.notes.is_empty();
        if panel_series == 0 && !had_notes {
            notes.push(format!(
                "panel {} has no data in the run window",
                panel_plan.title
            ));
        }
        series += panel_series;
        panel_data.push(PanelData {
            title: panel_plan.title.clone(),
            queries: panel_plan.queries.len(),
            failed,
            series: panel_series,
        });
        let first_ref = panel_plan
            .queries
            .first()
            .map(|q| q.ref_id.as_str())
            .unwrap_or("A");
        if snapshot.is_empty() {
            snapshot.push(empty_frame_json(first_ref));
            legacy.push(empty_frame_dto(first_ref));
        }
        if let Some(panel) = panel_at_mut(&mut dash, &panel_plan.path) {
            embed(panel, snapshot, legacy);
        }
    }
    let body = json!({
        "dashboard": dash,
        "name": name,
        "expires": expires.as_secs(),
        "external": false,
    });
    BuiltSnapshot {
        body,
        panels: plan.panels.len(),
        series,
        panel_data,
        notes,
    }
}

/// One `format: "table"` query's answer as Grafana's table transform lays
/// it out: one frame, a row per sample, columns `Time`, one per label
/// (sorted) and the value (`Value`, or `Value #<refId>` when the panel has
/// several queries, so table column overrides find it).
#[derive(Debug, Clone, PartialEq)]
pub struct TableFrame {
    pub ref_id: String,
    pub labels: Vec<String>,
    pub value_name: String,
    pub times_ms: Vec<i64>,
    /// One column per label, row-aligned with `times_ms`.
    pub label_values: Vec<Vec<String>>,
    pub values: Vec<f64>,
    /// Series the rows came from.
    pub series: usize,
    pub executed_query: String,
}

impl TableFrame {
    /// `None` for a string result (nothing a table shows).
    pub fn from_result(query: &PlannedQuery, result: &QueryResult, several: bool) -> Option<Self> {
        let to_ms = |t: f64| (t * 1000.0).round() as i64;
        let empty = BTreeMap::new();
        type Rows<'a> = Vec<(&'a BTreeMap<String, String>, Vec<(i64, f64)>)>;
        let rows: Rows = match result {
            QueryResult::Matrix(series) => series
                .iter()
                .map(|s| {
                    (
                        &s.metric,
                        s.values.iter().map(|p| (to_ms(p.0), p.value())).collect(),
                    )
                })
                .collect(),
            QueryResult::Vector(samples) => samples
                .iter()
                .map(|s| (&s.metric, vec![(to_ms(s.value.0), s.value.value())]))
                .collect(),
            QueryResult::Scalar(s) => vec![(&empty, vec![(to_ms(s.0), s.value())])],
            QueryResult::String(_) => return None,
        };
        let mut labels: Vec<String> = rows.iter().flat_map(|(l, _)| l.keys().cloned()).collect();
        labels.sort();
        labels.dedup();
        let mut t = TableFrame {
            ref_id: query.ref_id.clone(),
            value_name: if several {
                format!("Value #{}", query.ref_id)
            } else {
                "Value".to_string()
            },
            label_values: vec![Vec::new(); labels.len()],
            labels,
            times_ms: Vec::new(),
            values: Vec::new(),
            series: rows.len(),
            executed_query: format!(
                "Expr: {}\nStep: {}",
                query.expr,
                interpolate::format_duration(query.step)
            ),
        };
        for (l, points) in rows {
            for (time, v) in points {
                t.times_ms.push(time);
                t.values.push(v);
                for (k, col) in t.labels.iter().zip(t.label_values.iter_mut()) {
                    col.push(l.get(k).cloned().unwrap_or_default());
                }
            }
        }
        Some(t)
    }

    fn meta(&self) -> Value {
        json!({
            "typeVersion": [0, 0],
            "preferredVisualisationType": "table",
            "executedQueryString": self.executed_query,
        })
    }

    fn value_field(&self) -> (Value, Option<Value>) {
        let frame = Frame {
            ref_id: String::new(),
            display_name: None,
            value_name: String::new(),
            labels: BTreeMap::new(),
            times_ms: Vec::new(),
            values: self.values.clone(),
            interval_ms: 0,
            result_type: "",
            executed_query: None,
        };
        let (values, entities) = frame.encoded_values();
        (Value::Array(values), entities)
    }

    pub fn to_frame_json(&self) -> Value {
        let mut fields = vec![json!({
            "name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}, "config": {}
        })];
        for l in &self.labels {
            fields.push(json!({"name": l, "type": "string", "typeInfo": {"frame": "string"}, "config": {"filterable": true}}));
        }
        fields.push(json!({"name": self.value_name, "type": "number", "typeInfo": {"frame": "float64", "nullable": true}, "config": {}}));
        let (values, entities) = self.value_field();
        let mut columns = vec![json!(self.times_ms)];
        columns.extend(self.label_values.iter().map(|c| json!(c)));
        columns.push(values);
        let mut data = json!({"values": columns});
        if let Some(Value::Array(mut e)) = entities {
            // `entities` has one slot per field; ours only ever marks the value field.
            let mut slots = vec![Value::Null; self.labels.len() + 1];
            slots.push(e.pop().unwrap_or(Value::Null));
            data["entities"] = Value::Array(slots);
        }
        json!({
            "schema": {"refId": self.ref_id, "meta": self.meta(), "fields": fields},
            "data": data,
        })
    }

    pub fn to_frame_dto(&self) -> Value {
        let mut fields =
            vec![json!({"name": "Time", "type": "time", "config": {}, "values": self.times_ms})];
        for (l, col) in self.labels.iter().zip(&self.label_values) {
            fields.push(
                json!({"name": l, "type": "string", "config": {"filterable": true}, "values": col}),
            );
        }
        let (values, _) = self.value_field();
        fields.push(
            json!({"name": self.value_name, "type": "number", "config": {}, "values": values}),
        );
        json!({"fields": fields, "refId": self.ref_id, "meta": self.meta()})
    }
}

fn embed(panel: &mut Value, snapshot: Vec<Value>, legacy: Vec<Value>) {
    let Some(p) = panel.as_object_mut() else {
        return;
    };
    p.insert("datasource".into(), grafana_datasource_ref());
    p.insert(
        "targets".into(),
        json!([{
            "refId": "A",
            "datasource": grafana_datasource_ref(),
            "queryType": "snapshot",
            "snapshot": snapshot,
        }]),
    );
    p.insert("snapshotData".into(), Value::Array(legacy));
    p.insert("links".into(), json!([]));
}

fn panel_at_mut<'a>(dash: &'a mut Value, path: &[usize]) -> Option<&'a mut Value> {
    let mut cur = dash;
    for &i in path {
        cur = cur.get_mut("panels")?.get_mut(i)?;
    }
    Some(cur)
}

/// What Grafana's `trimDashboardForSnapshot` does: absolute time, refresh
/// off, no dashboard links, only enabled annotations (without their
/// queries), and every variable reduced to the value the snapshot used.
fn trim_for_snapshot(dash: &mut Value, window: RunWindow, vars: &BTreeMap<String, VarValue>) {
    let Some(d) = dash.as_object_mut() else {
        return;
    };
    d.insert(
        "time".into(),
        json!({"from": iso_millis(window.start), "to": iso_millis(window.end)}),
    );
    d.insert("refresh".into(), json!(""));
    d.insert("links".into(), json!([]));
    if let Some(list) = d
        .get_mut("annotations")
        .and_then(|a| a.get_mut("list"))
        .and_then(Value::as_array_mut)
    {
        let kept: Vec<Value> = list
            .iter()
            .filter(|a| a.get("enable").and_then(Value::as_bool) != Some(false))
            .map(|a| {
                let mut out = Map::new();
                for k in ["name", "enable", "iconColor", "type", "builtIn", "hide"] {
                    if let Some(v) = a.get(k) {
                        out.insert(k.to_string(), v.clone());
                    }
                }
                out.insert("snapshotData".into(), json!([]));
                Value::Object(out)
            })
            .collect();
        *list = kept;
    }
    if let Some(list) = d
        .get_mut("templating")
        .and_then(|t| t.get_mut("list"))
        .and_then(Value::as_array_mut)
    {
        for v in list.iter_mut() {
            let Some(v) = v.as_object_mut() else { continue };
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(value) = vars.get(&name) {
                let current = match value {
                    VarValue::All { .. } => json!({"text": "All", "value": "$__all"}),
                    VarValue::Multi(vs) => json!({"text": vs.join(" + "), "value": vs}),
                    VarValue::Values(vs) => {
                        let one = vs.join(",");
                        json!({"text": one, "value": one})
                    }
                };
                v.insert("current".into(), current);
            }
            let current = v.get("current").cloned().unwrap_or_else(|| json!({}));
            v.insert("options".into(), json!([current]));
            v.insert("query".into(), json!(""));
            v.insert("refresh".into(), json!(0));
        }
    }
}

/// Counts panels in a stored snapshot dashboard whose data is embedded as a
/// `queryType: "snapshot"` target of the `grafana` data source (any ref form).
pub fn count_snapshot_panels(dashboard: &Value) -> usize {
    fn walk(panels: &[Value]) -> usize {
        panels
            .iter()
            .map(|p| {
                let nested = p
                    .get("panels")
                    .and_then(Value::as_array)
                    .map(|n| walk(n))
                    .unwrap_or(0);
                let own = p
                    .get("targets")
                    .and_then(Value::as_array)
                    .is_some_and(|ts| {
                        ts.iter().any(|t| {
                            t.get("queryType").and_then(Value::as_str) == Some("snapshot")
                                && t.pointer("/datasource/uid").and_then(Value::as_str)
                                    == Some("grafana")
                        })
                    });
                nested + usize::from(own)
            })
            .sum()
    }
    dashboard
        .get("panels")
        .and_then(Value::as_array)
        .map(|p| walk(p))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::prometheus::{MatrixSeries, Sample, VectorSample};
    use chrono::{DateTime, Utc};

    fn fixture(name: &str) -> Value {
        serde_json::from_slice(&crate::test_fixtures::bytes(&format!("grafana/{name}"))).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The window and series behind Grafana's own golden files.
    fn golden_window() -> RunWindow {
        RunWindow {
            start: at("2022-01-11T08:25:29Z"),
            end: at("2022-01-11T08:25:33Z"),
        }
    }

    fn series(code: &str, points: &[(f64, &str)]) -> MatrixSeries {
        MatrixSeries {
            metric: [
                ("__name__", "prometheus_http_requests_total"),
                ("code", code),
                ("handler", "/api/v1/query_range"),
                ("job", "prometheus"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            values: points
                .iter()
                .map(|(t, v)| Sample(*t, v.to_string()))
                .collect(),
        }
    }

    fn golden_matrix() -> QueryResult {
        QueryResult::Matrix(vec![
            series(
                "200",
                &[
                    (1641889530.123, "21"),
                    (1641889531.123, "32"),
                    (1641889532.123, "43"),
                ],
            ),
            series("400", &[(1641889529.123, "54"), (1641889532.123, "76")]),
        ])
    }

    /// The fixture dashboard with the golden query's empty legend.
    fn golden_dashboard() -> Value {
        let mut d = fixture("dashboard-get-by-uid.json")["dashboard"].clone();
        d["panels"][0]["targets"][0]
            .as_object_mut()
            .unwrap()
            .remove("legendFormat");
        d
    }

    fn one_second() -> SnapshotSettings {
        SnapshotSettings {
            scrape_interval: Duration::from_secs(1),
            max_data_points: 1000,
        }
    }

    /// Our additions that Grafana's own request does not carry, taken out so
    /// the rest can be compared byte for byte.
    fn normalize_frame(f: &mut Value, legacy: bool) {
        let meta = if legacy {
            f.get_mut("meta")
        } else {
            f.pointer_mut("/schema/meta")
        };
        if let Some(q) = meta.and_then(|m| m.get_mut("executedQueryString")) {
            *q = json!("Expr: \nStep: 1s");
        }
        if legacy {
            f.as_object_mut().unwrap().remove("name");
        } else {
            f["schema"].as_object_mut().unwrap().remove("name");
            f["schema"]["fields"][1]["typeInfo"]
                .as_object_mut()
                .unwrap()
                .remove("nullable");
        }
    }

    fn built_golden() -> BuiltSnapshot {
        let dash = golden_dashboard();
        let none = BTreeMap::new();
        let p = plan(
            &dash,
            &saved_vars(&dash, &none),
            golden_window(),
            one_second(),
        );
        assert_eq!(p.panels.len(), 1);
        build_body(
            &dash,
            &p,
            &[vec![Ok(golden_matrix())]],
            golden_window(),
            "Tempo Operational",
            Duration::from_secs(3600),
            &saved_vars(&dash, &none),
        )
    }

    #[test]
    fn body_matches_what_grafana_11_sends() {
        let built = built_golden();
        assert_eq!((built.panels, built.series), (1, 2));
        assert!(built.notes.is_empty(), "{:?}", built.notes);
        let mut body = built.body;
        let panel = &mut body["dashboard"]["panels"][0];
        assert_eq!(panel["datasource"], grafana_datasource_ref());
        assert_eq!(panel["targets"][0]["datasource"], grafana_datasource_ref());
        // The fixture spells the same data source `{name, uid}`.
        panel["datasource"] = json!({"name": "grafana", "uid": "grafana"});
        panel["targets"][0]["datasource"] = json!({"name": "grafana", "uid": "grafana"});
        panel.as_object_mut().unwrap().remove("snapshotData");
        for f in panel["targets"][0]["snapshot"].as_array_mut().unwrap() {
            normalize_frame(f, false);
        }
        let want = fixture("snapshot-create-request-grafana11.json");
        assert_eq!(
            serde_json::to_string_pretty(&body).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }

    #[test]
    fn legacy_snapshot_data_matches_what_grafana_10_sends() {
        let built = built_golden();
        let mut legacy = built.body["dashboard"]["panels"][0]["snapshotData"].clone();
        for f in legacy.as_array_mut().unwrap() {
            normalize_frame(f, true);
        }
        let want = fixture("snapshot-create-request-grafana10-legacy.json");
        assert_eq!(legacy, want["dashboard"]["panels"][0]["snapshotData"]);
    }

    #[test]
    fn plans_the_fixture_panel_with_variables_filled() {
        let dash = fixture("dashboard-get-by-uid.json")["dashboard"].clone();
        let w = RunWindow {
            start: at("2026-11-23T10:00:00Z"),
            end: at("2026-11-23T11:00:00Z"),
        };
        let overrides: BTreeMap<String, String> =
            [("namespace".to_string(), "daedalus".to_string())].into();
        let vars = saved_vars(&dash, &overrides);
        let p = plan(&dash, &vars, w, SnapshotSettings::default());
        let q = &p.panels[0].queries[0];
        assert_eq!(p.panels[0].path, vec![0]);
        assert_eq!(p.panels[0].title, "\"Bytes Written / s\"");
        assert_eq!(
            q.expr,
            r#"sum by(level) (rate(tempodb_compaction_bytes_written_total{cluster="ops-eu-south-0", namespace="daedalus"}[1m]))"#
        );
        assert_eq!(q.step, Duration::from_secs(15));
        assert_eq!(q.legend_format.as_deref(), Some("__auto"));
        assert!(!q.instant);
        assert!(p.notes.is_empty() && p.panels[0].notes.is_empty());

        // The trimmed dashboard shows the override as the variable's value.
        let built = build_body(
            &dash,
            &p,
            &[vec![Ok(QueryResult::Matrix(vec![]))]],
            w,
            "n",
            Duration::ZERO,
            &vars,
        );
        let ns = &built.body["dashboard"]["templating"]["list"][2];
        assert_eq!(
            ns["current"],
            json!({"text": "daedalus", "value": "daedalus"})
        );
        assert_eq!(
            ns["options"],
            json!([{"text": "daedalus", "value": "daedalus"}])
        );
        assert_eq!(
            built.body["dashboard"]["time"],
            json!({"from": "2026-11-23T10:00:00.000Z", "to": "2026-11-23T11:00:00.000Z"})
        );
        assert_eq!(built.body["expires"], 0);
        // No series: an empty frame, and a note saying so.
        assert_eq!(built.series, 0);
        assert_eq!(
            built.body["dashboard"]["panels"][0]["targets"][0]["snapshot"],
            json!([{"schema": {"refId": "A", "fields": []}, "data": {"values": []}}])
        );
        assert_eq!(
            built.notes,
            vec!["panel \"Bytes Written / s\" has no data in the run window"]
        );
    }

    /// A dashboard with a collapsed row, a Loki panel, a mixed panel, a text
    /// panel, a hidden target and an instant query.
    fn mixed_dashboard() -> Value {
        json!({
            "title": "Fleet",
            "templating": {"list": [
                {"name": "ds", "type": "datasource", "query": "prometheus", "current": {"value": "P1"}},
                {"name": "logs", "type": "datasource", "query": "loki", "current": {"value": "L1"}},
                {"name": "agent_type", "type": "query", "includeAll": true, "current": {"text": "All", "value": "$__all"}, "allValue": ".+"}
            ]},
            "panels": [
                {"id": 1, "type": "text", "title": "Read me", "options": {"content": "hi"}},
                {"id": 2, "type": "row", "title": "Workers", "collapsed": true, "panels": [
                    {"id": 3, "type": "timeseries", "title": "Tasks",
                     "datasource": {"uid": "$ds"},
                     "targets": [
                        {"refId": "A", "expr": "sum by (agent_type) (rate(daedalus_tasks_total{agent_type=~\"$agent_type\"}[$__rate_interval]))", "legendFormat": "{{agent_type}}"},
                        {"refId": "B", "expr": "up", "hide": true}
                     ]},
                    {"id": 4, "type": "logs", "title": "Logs",
                     "datasource": {"uid": "$logs"},
                     "targets": [{"refId": "A", "expr": "{app=\"worker\"}"}]}
                ]},
                {"id": 5, "type": "stat", "title": "Pending",
                 "datasource": {"type": "datasource", "uid": "-- Mixed --"},
                 "targets": [
                    {"refId": "A", "datasource": {"type": "prometheus", "uid": "P1"}, "expr": "sum(nats_consumer_num_pending)", "instant": true},
                    {"refId": "B", "datasource": {"type": "tempo", "uid": "T1"}, "query": "{}"}
                 ]},
                {"id": 6, "type": "timeseries", "title": "Broken", "targets": [{"refId": "A", "expr": "rate(x[$__rate_interval]) * $missing"}]},
                {"id": 7, "libraryPanel": {"uid": "lib1", "name": "Shared"}}
            ]
        })
    }

    #[test]
    fn plans_rows_mixed_and_foreign_panels() {
        let dash = mixed_dashboard();
        let w = RunWindow {
            start: at("2026-11-23T10:00:00Z"),
            end: at("2026-11-23T10:10:00Z"),
        };
        let vars = saved_vars(&dash, &BTreeMap::new());
        let p = plan(&dash, &vars, w, SnapshotSettings::default());
        let paths: Vec<_> = p.panels.iter().map(|x| x.path.clone()).collect();
        assert_eq!(paths, vec![vec![1, 0], vec![1, 1], vec![2], vec![3]]);
        let tasks = &p.panels[0];
        assert_eq!(tasks.queries.len(), 1, "hidden target B skipped");
        assert_eq!(
            tasks.queries[0].expr,
            r#"sum by (agent_type) (rate(daedalus_tasks_total{agent_type=~".+"}[1m]))"#
        );
        assert_eq!(
            tasks.queries[0].legend_format.as_deref(),
            Some("{{agent_type}}")
        );
        let logs = &p.panels[1];
        assert!(logs.queries.is_empty());
        assert!(
            logs.notes[0].contains("uses a loki data source"),
            "{:?}",
            logs.notes
        );
        let pending = &p.panels[2];
        assert_eq!(pending.queries.len(), 1);
        assert!(pending.queries[0].instant);
        assert!(pending.notes[0].contains("query B uses a tempo data source"));
        let broken = &p.panels[3];
        assert_eq!(broken.queries[0].expr, "rate(x[1m]) * $missing");
        assert!(broken.notes[0].contains("$missing"), "{:?}", broken.notes);
        assert!(p.notes[0].contains("library panel"), "{:?}", p.notes);

        let results = vec![
            vec![Ok(QueryResult::Matrix(vec![MatrixSeries {
                metric: [("agent_type".to_string(), "coder".to_string())].into(),
                values: vec![
                    Sample(1795428000.0, "1.5".into()),
                    Sample(1795428015.0, "NaN".into()),
                ],
            }]))],
            vec![],
            vec![Ok(QueryResult::Vector(vec![VectorSample {
                metric: BTreeMap::new(),
                value: Sample(1795428600.0, "+Inf".into()),
            }]))],
            vec![Err(
                "Prometheus at http://p answered bad_data: parse error".to_string()
            )],
        ];
        let built = build_body(&dash, &p, &results, w, "n", Duration::from_secs(60), &vars);
        assert_eq!((built.panels, built.series), (4, 2));
        let d = &built.body["dashboard"];
        // The text panel is left alone; the row keeps its nested panels.
        assert_eq!(d["panels"][0], dash["panels"][0]);
        let tasks = &d["panels"][1]["panels"][0];
        let frame = &tasks["targets"][0]["snapshot"][0];
        assert_eq!(frame["schema"]["name"], "coder");
        assert_eq!(frame["schema"]["fields"][1]["name"], "Value");
        assert_eq!(
            frame["schema"]["fields"][1]["config"]["displayNameFromDS"],
            "coder"
        );
        assert_eq!(
            frame["data"]["values"],
            json!([[1795428000000i64, 1795428015000i64], [1.5, null]])
        );
        assert_eq!(frame["data"]["entities"], json!([null, {"NaN": [1]}]));
        assert_eq!(
            tasks["snapshotData"][0]["fields"][1]["values"],
            json!([1.5, null])
        );
        // Foreign panels get an empty frame; so does the failed query.
        for path in ["/panels/1/panels/1", "/panels/3"] {
            let t = &d.pointer(path).unwrap()["targets"][0];
            assert_eq!(t["queryType"], "snapshot");
            assert_eq!(t["snapshot"][0]["schema"]["fields"], json!([]), "{path}");
        }
        let stat = &d["panels"][2]["targets"][0]["snapshot"][0];
        assert_eq!(stat["data"]["entities"], json!([null, {"Inf": [0]}]));
        assert_eq!(stat["schema"]["meta"]["custom"]["resultType"], "vector");
        assert!(built
            .notes
            .iter()
            .any(|n| n.contains("\"Broken\" query A failed") && n.contains("bad_data")));
        // Everything but the text panel and library panel reads as snapshot data.
        assert_eq!(count_snapshot_panels(d), 4);
    }

    #[test]
    fn display_names_follow_grafana() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let full = labels(&[("__name__", "up"), ("job", "p"), ("instance", "i:1")]);
        type Case<'a> = (Option<&'a str>, BTreeMap<String, String>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (None, full.clone(), Some(r#"up{instance="i:1", job="p"}"#)),
            (
                Some(""),
                full.clone(),
                Some(r#"up{instance="i:1", job="p"}"#),
            ),
            (Some("__auto"), full.clone(), None),
            (
                Some("{{job}} on {{ instance }}"),
                full.clone(),
                Some("p on i:1"),
            ),
            (Some("{{nope}}x"), full.clone(), Some("x")),
            (None, labels(&[("__name__", "up")]), Some("up")),
            (None, labels(&[]), Some("sum(up)")),
            (Some("__auto"), labels(&[]), Some("sum(up)")),
        ];
        for (legend, l, want) in cases {
            assert_eq!(
                display_name(legend, &l, "sum(up)").as_deref(),
                want,
                "{legend:?} {l:?}"
            );
        }
    }

    #[test]
    fn counts_every_snapshot_ref_form() {
        // Grafana's own support-snapshot target uses `{type: "grafana"}`.
        let t = fixture("snapshot-panel-target-grafana-test.json");
        let d = json!({"panels": [{"targets": [t]}, {"type": "text"}]});
        assert_eq!(count_snapshot_panels(&d), 1);
        let stored = fixture("snapshot-get.json");
        assert_eq!(count_snapshot_panels(&stored["dashboard"]), 1);
        assert_eq!(
            count_snapshot_panels(&fixture("dashboard-get-by-uid.json")["dashboard"]),
            0
        );
    }
    #[test]
    fn migrates_rows_like_grafana() {
        let old = json!({"schemaVersion": 14, "rows": [
            {"title": "Top", "showTitle": false, "height": "250px", "panels": [
                {"id": 1, "type": "graph", "span": 6, "targets": [{"expr": "up"}]},
                {"id": 2, "type": "graph", "span": 6, "targets": [{"expr": "up"}]},
                {"id": 3, "type": "singlestat", "span": 12, "targets": [{"expr": "up"}]}
            ]},
            {"title": "Hidden", "collapse": true, "height": 200, "panels": [
                {"type": "graph", "span": 4, "targets": [{"expr": "x"}]}
            ]}
        ]});
        let d = migrate_rows(&old);
        assert!(d.get("rows").is_none());
        assert_eq!(d["schemaVersion"], 16);
        let p = d["panels"].as_array().unwrap();
        let kinds: Vec<&str> = p.iter().map(|x| x["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["row", "graph", "graph", "singlestat", "row"]);
        assert_eq!(p[1]["gridPos"], json!({"x": 0, "y": 1, "w": 12, "h": 7}));
        assert_eq!(p[2]["gridPos"], json!({"x": 12, "y": 1, "w": 12, "h": 7}));
        assert_eq!(p[3]["gridPos"], json!({"x": 0, "y": 8, "w": 24, "h": 7}));
        assert!(p[1].get("span").is_none());
        assert_eq!(p[4]["collapsed"], true);
        // The collapsed row holds its panel, which got a fresh id.
        assert_eq!(p[4]["panels"][0]["id"], 6);
        let w = RunWindow {
            start: at("2026-11-23T10:00:00Z"),
            end: at("2026-11-23T11:00:00Z"),
        };
        let plan = plan(&d, &BTreeMap::new(), w, SnapshotSettings::default());
        assert_eq!(plan.panels.len(), 4);
        assert_eq!(plan.panels[3].path, vec![4, 0]);
        // A dashboard already migrated is left alone.
        assert!(matches!(migrate_rows(&d), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn plans_variable_intervals_ad_hoc_filters_and_empty_queries() {
        let d = json!({
            "templating": {"list": [
                {"name": "resolution", "type": "custom", "query": "1s, 30s", "current": {"value": "30s"}},
                {"name": "filters", "type": "adhoc", "filters": [{"key": "cluster", "operator": "=", "value": "eu-1"}]}
            ]},
            "panels": [{"id": 1, "type": "timeseries", "title": "CPU", "targets": [
                {"refId": "A", "expr": "rate(cpu_total[$__rate_interval])", "interval": "$resolution"},
                {"refId": "B", "expr": ""},
                {"refId": "C", "expr": "up", "format": "table", "instant": true}
            ]}]
        });
        let w = RunWindow {
            start: at("2026-11-23T10:00:00Z"),
            end: at("2026-11-23T10:10:00Z"),
        };
        let vars = saved_vars(&d, &BTreeMap::new());
        let p = plan(&d, &vars, w, SnapshotSettings::default());
        let qs = &p.panels[0].queries;
        assert_eq!(qs.len(), 2, "the empty query B is not run");
        assert!(p.panels[0].notes.is_empty(), "{:?}", p.panels[0].notes);
        assert_eq!(qs[0].step, Duration::from_secs(30));
        assert_eq!(qs[0].expr, r#"rate(cpu_total{cluster="eu-1"}[1m])"#);
        assert!(qs[1].table && qs[1].instant);
        assert_eq!(qs[1].expr, r#"up{cluster="eu-1"}"#);
    }

    #[test]
    fn table_queries_embed_one_table_frame() {
        let q = PlannedQuery {
            ref_id: "B".into(),
            expr: "up".into(),
            legend_format: None,
            instant: true,
            table: true,
            step: Duration::from_secs(15),
        };
        let sample = |job: &str, v: &str| VectorSample {
            metric: [
                ("__name__".to_string(), "up".to_string()),
                ("job".to_string(), job.to_string()),
            ]
            .into(),
            value: Sample(1795428000.0, v.into()),
        };
        let r = QueryResult::Vector(vec![sample("a", "1"), sample("b", "NaN")]);
        let t = TableFrame::from_result(&q, &r, true).unwrap();
        let f = t.to_frame_json();
        let names: Vec<&str> = f["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Time", "__name__", "job", "Value #B"]);
        assert_eq!(
            f["data"]["values"],
            json!([
                [1795428000000i64, 1795428000000i64],
                ["up", "up"],
                ["a", "b"],
                [1, null]
            ])
        );
        assert_eq!(
            f["data"]["entities"],
            json!([null, null, null, {"NaN": [1]}])
        );
        assert_eq!(t.series, 2);
        let dto = t.to_frame_dto();
        assert_eq!(dto["fields"][3]["values"], json!([1, null]));
        // One query alone: the column is `Value`.
        let t = TableFrame::from_result(&q, &r, false).unwrap();
        assert_eq!(t.value_name, "Value");
        assert!(
            TableFrame::from_result(&q, &QueryResult::String(Sample(1.0, "x".into())), false)
                .is_none()
        );
    }
    #[test]
    fn data_sources_are_typed_from_grafanas_list() {
        let sources = DsCatalog::from_frontend_settings(&fixture("frontend-settings.json"));
        assert_eq!(
            sources.prometheus_time_interval,
            Some(Duration::from_secs(15))
        );
        let d = json!({"panels": [
            {"id": 1, "title": "Logs by name", "datasource": "Loki", "targets": [{"refId": "A", "expr": "{app=\"x\"} |= \"err\""}]},
            {"id": 2, "title": "Default", "targets": [{"refId": "A", "expr": "up"}]},
            {"id": 3, "title": "By uid", "datasource": {"uid": "P1809F7CD0C75ACF3"}, "targets": [{"refId": "A", "expr": "up"}]}
        ]});
        let w = RunWindow {
            start: at("2026-11-23T10:00:00Z"),
            end: at("2026-11-23T10:10:00Z"),
        };
        let vars = BTreeMap::new();
        let p = plan_with_sources(&d, &vars, w, SnapshotSettings::default(), &sources);
        let counts: Vec<usize> = p.panels.iter().map(|x| x.queries.len()).collect();
        assert_eq!(counts, [0, 1, 1]);
        assert!(
            p.panels[0].notes[0].contains("uses a loki data source"),
            "{:?}",
            p.panels[0].notes
        );
        // A name Grafana's list does not have is an error panel in Grafana:
        // never queried as Prometheus (it once made AC5 pass on up{}).
        let missing = json!({"panels": [
            {"id": 4, "title": "Gone", "datasource": "Loki-Prod", "targets": [{"refId": "A", "expr": "up"}]},
            {"id": 5, "title": "Gone too", "datasource": {"uid": "NoSuchDS"}, "targets": [{"refId": "A", "expr": "up"}]}
        ]});
        let p = plan_with_sources(&missing, &vars, w, SnapshotSettings::default(), &sources);
        for panel in &p.panels {
            assert!(panel.queries.is_empty(), "{:?}", panel.queries);
            assert!(
                panel.notes[0].contains("which this Grafana does not have"),
                "{:?}",
                panel.notes
            );
        }
        // Without Grafana's list, a named data source with an expr is taken as Prometheus.
        let p = plan(&d, &vars, w, SnapshotSettings::default());
        assert_eq!(p.panels[0].queries.len(), 1);
        // A Loki default: panels without a data source are not Prometheus.
        let mut loki_default = fixture("frontend-settings.json");
        loki_default["defaultDatasource"] = json!("Loki");
        let sources = DsCatalog::from_frontend_settings(&loki_default);
        let p = plan_with_sources(&d, &vars, w, SnapshotSettings::default(), &sources);
        assert_eq!(p.panels[1].queries.len(), 0);
    }
}
