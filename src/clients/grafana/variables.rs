//! Dashboard variables resolved the way Grafana does before it runs a
//! panel's queries. Pure: [`parse`] reads the templating list, [`order`]
//! puts chained variables after the ones they use, [`step`] says what a
//! variable needs (a Prometheus query, or nothing), and [`choose`] applies
//! the variable's regex, sort, multi and All to the values and picks one.
//! The I/O between them lives in `grafana.rs` (`resolve_variables`).

use super::interpolate::{self, VarValue};
use crate::model::snapshot::VariableChoice;
use crate::model::RunWindow;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One variable of a dashboard's `templating.list`.
#[derive(Debug, Clone, PartialEq)]
pub struct VarDef {
    pub name: String,
    pub kind: VarKind,
    pub multi: bool,
    pub include_all: bool,
    /// `allValue`, when set and not empty.
    pub all_value: Option<String>,
    /// `regex` as saved (`/pattern/flags` or bare), empty when none.
    pub regex: String,
    /// Grafana's sort code (0 none, 1/2 alphabetical, 3/4 numerical,
    /// 5/6 case-insensitive, 7/8 natural; odd ascending).
    pub sort: i64,
    /// The saved `current` value(s); empty when none or "None".
    pub current: Vec<String>,
    /// `refresh: 0` ("never"): Grafana keeps the saved value and options
    /// and runs no query for the variable.
    pub never_refresh: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VarKind {
    /// A Prometheus variable query (`label_values(...)`, ...), as a string.
    Query(String),
    /// `a, b, c` or `text : value` pairs.
    Custom(Vec<(String, String)>),
    Constant(String),
    /// Interval options and, when `auto`, its `auto_count` and `auto_min`.
    Interval {
        options: Vec<String>,
        auto: Option<(u32, Duration)>,
    },
    Textbox(String),
    /// The data source plugin id (`prometheus`, `loki`, ...).
    Datasource(String),
    /// Ad-hoc filters saved on the dashboard: (key, operator, value).
    Adhoc(Vec<(String, String, String)>),
    /// A type firedrill does not know (`system`, `snapshot`, ...).
    Other(String),
}

/// A Prometheus query a variable needs, variables in it already filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarQuery {
    /// `label_names()` / `label_names(match)`.
    LabelNames(Option<String>),
    /// `label_values(label)` / `label_values(match, label)`.
    LabelValues {
        label: String,
        matcher: Option<String>,
    },
    /// `metrics(regex)`: metric names matching.
    Metrics(String),
    /// `query_result(expr)`: an instant query at the window's end.
    QueryResult(String),
    /// Anything else: the series matching it, as `name{labels}`.
    Series(String),
}

impl VarQuery {
    pub fn describe(&self) -> String {
        match self {
            VarQuery::LabelNames(None) => "label_names()".into(),
            VarQuery::LabelNames(Some(m)) => format!("label_names({m})"),
            VarQuery::LabelValues {
                label,
                matcher: None,
            } => format!("label_values({label})"),
            VarQuery::LabelValues {
                label,
                matcher: Some(m),
            } => format!("label_values({m}, {label})"),
            VarQuery::Metrics(r) => format!("metrics({r})"),
            VarQuery::QueryResult(e) => format!("query_result({e})"),
            VarQuery::Series(s) => s.clone(),
        }
    }
}

/// What a variable needs before it has a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Decided without I/O.
    Done(Option<VarValue>, VariableChoice),
    /// Run this against Prometheus over the window, then [`choose`].
    Query(VarQuery),
}

/// The variables of `dashboard`, in the order it lists them.
pub fn parse(dashboard: &Value) -> Vec<VarDef> {
    let list = dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    list.iter().filter_map(parse_one).collect()
}

fn parse_one(v: &Value) -> Option<VarDef> {
    let name = v.get("name").and_then(Value::as_str)?.to_string();
    let str_of = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let query_text = match v.get("query") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => structured_query(o),
        _ => String::new(),
    };
    let kind = match v.get("type").and_then(Value::as_str).unwrap_or("query") {
        "query" => VarKind::Query(query_text),
        "custom" => VarKind::Custom(custom_options(&query_text)),
        "constant" => VarKind::Constant(query_text),
        "textbox" => VarKind::Textbox(query_text),
        "datasource" => VarKind::Datasource(query_text),
        "interval" => VarKind::Interval {
            options: split_options(&query_text),
            auto: (v.get("auto").and_then(Value::as_bool) == Some(true)).then(|| {
                let count = v
                    .get("auto_count")
                    .and_then(Value::as_u64)
                    .unwrap_or(30)
                    .clamp(1, 10_000) as u32;
                let min = v
                    .get("auto_min")
                    .and_then(Value::as_str)
                    .and_then(interpolate::parse_min_interval)
                    .unwrap_or(Duration::from_secs(10));
                (count, min)
            }),
        },
        "adhoc" => VarKind::Adhoc(
            v.get("filters")
                .and_then(Value::as_array)
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            let s = |k: &str| {
                                f.get(k).and_then(Value::as_str).unwrap_or("").to_string()
                            };
                            (s("key"), s("operator"), s("value"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        other => VarKind::Other(other.to_string()),
    };
    let all_value = v
        .get("allValue")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Some(VarDef {
        name,
        kind,
        multi: v.get("multi").and_then(Value::as_bool) == Some(true),
        include_all: v.get("includeAll").and_then(Value::as_bool) == Some(true),
        all_value,
        regex: str_of("regex"),
        sort: v.get("sort").and_then(Value::as_i64).unwrap_or(0),
        current: saved_current(v.get("current")),
        never_refresh: v.get("refresh").and_then(Value::as_i64) == Some(0),
    })
}

/// The structured form newer Grafana saves (`{qryType, query, label,
/// metric, refId}`): its `query` string when it has one, else one built
/// from the parts as Grafana's migration does.
fn structured_query(o: &serde_json::Map<String, Value>) -> String {
    if let Some(q) = o
        .get("query")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty())
    {
        return q.to_string();
    }
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
    match o.get("qryType").and_then(Value::as_i64) {
        Some(0) => format!("label_names({})", s("metric")),
        Some(1) if s("metric").is_empty() => format!("label_values({})", s("label")),
        Some(1) => format!("label_values({}, {})", s("metric"), s("label")),
        Some(2) => format!("metrics({})", s("metric")),
        _ => String::new(),
    }
}

fn saved_current(current: Option<&Value>) -> Vec<String> {
    let Some(c) = current else { return Vec::new() };
    if c.get("isNone").and_then(Value::as_bool) == Some(true) {
        return Vec::new();
    }
    let values: Vec<String> = match c.get("value") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    values
        .into_iter()
        .filter(|v| !v.is_empty() && !is_import_placeholder(v))
        .collect()
}

/// `${VAR_X}` / `${DS_X}`: a placeholder of a dashboard exported for
/// sharing that nobody filled in on import. Never a value.
fn is_import_placeholder(v: &str) -> bool {
    v.starts_with("${") && v.ends_with('}')
}

/// Grafana splits custom and interval options on commas not escaped by `\`.
fn split_options(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Custom options: `a, b` or `text : value` pairs.
fn custom_options(q: &str) -> Vec<(String, String)> {
    split_options(q)
        .into_iter()
        .map(|o| match o.split_once(" : ") {
            Some((t, v)) => (t.trim().to_string(), v.trim().to_string()),
            None => (o.clone(), o),
        })
        .collect()
}

/// The variables each variable's query (or data source) names.
fn uses(def: &VarDef, names: &[&str]) -> Vec<usize> {
    let text = match &def.kind {
        VarKind::Query(q) => q.as_str(),
        _ => return Vec::new(),
    };
    let (_, unknown) = interpolate::interpolate(text, &BTreeMap::new());
    unknown
        .iter()
        .filter_map(|u| names.iter().position(|n| n == u))
        .collect()
}

/// Indexes of `defs` in an order where every variable comes after the
/// ones its query uses (Grafana's dependency order), otherwise as listed.
/// A cycle is broken at the variable listed first.
pub fn order(defs: &[VarDef]) -> Vec<usize> {
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    let deps: Vec<Vec<usize>> = defs.iter().map(|d| uses(d, &names)).collect();
    let mut done = vec![false; defs.len()];
    let mut out = Vec::with_capacity(defs.len());
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        done: &mut [bool],
        visiting: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) {
        if done[i] || visiting.contains(&i) {
            return;
        }
        visiting.push(i);
        for &d in &deps[i] {
            visit(d, deps, done, visiting, out);
        }
        visiting.pop();
        done[i] = true;
        out.push(i);
    }
    for i in 0..defs.len() {
        visit(i, &deps, &mut done, &mut Vec::new(), &mut out);
    }
    out
}

fn choice(name: &str, value: &str, source: &str, note: Option<String>) -> VariableChoice {
    VariableChoice {
        name: name.to_string(),
        value: value.to_string(),
        source: source.to_string(),
        note,
    }
}

/// What variable `def` needs, given the values decided so far (`known`,
/// built-ins included) and the window (for `auto` intervals).
pub fn step(def: &VarDef, known: &BTreeMap<String, VarValue>, window: RunWindow) -> Step {
    let n = def.name.as_str();
    match &def.kind {
        // ("All" without an allValue needs the options: the query runs.)
        VarKind::Query(_)
            if def.never_refresh && !def.current.is_empty() && !needs_options(def) =>
        {
            let all = def.include_all && def.current.iter().any(|c| c == "$__all");
            let v = if all {
                VarValue::All {
                    all_value: def.all_value.clone(),
                    options: Vec::new(),
                }
            } else if def.multi || def.include_all {
                VarValue::Multi(def.current.clone())
            } else {
                VarValue::Values(def.current.clone())
            };
            Step::Done(
                Some(v.clone()),
                choice(
                    n,
                    &v.display(),
                    "saved",
                    Some("refresh is \"never\": Grafana keeps the saved value".into()),
                ),
            )
        }
        VarKind::Query(q) => {
            let (text, unknown) = interpolate::interpolate(q, known);
            if text.trim().is_empty() {
                return Step::Done(
                    None,
                    choice(n, "", "none", Some("the variable has no query".into())),
                );
            }
            if !unknown.is_empty() {
                let names: Vec<String> = unknown.iter().map(|u| format!("${u}")).collect();
                return Step::Done(
                    None,
                    choice(
                        n,
                        "",
                        "none",
                        Some(format!(
                            "its query `{q}` uses {} that no variable or target defines",
                            names.join(", ")
                        )),
                    ),
                );
            }
            Step::Query(parse_var_query(&text))
        }
        VarKind::Custom(options) => {
            let values: Vec<(String, String)> = options.clone();
            let (v, c) = choose(def, values, "saved", None);
            Step::Done(v, c)
        }
        VarKind::Constant(q) => {
            if is_import_placeholder(q) {
                return Step::Done(
                    None,
                    choice(
                        n,
                        q,
                        "none",
                        Some(format!(
                            "the constant is the unfilled import placeholder `{q}`; set `{n}` in the target's variables"
                        )),
                    ),
                );
            }
            Step::Done(
                Some(VarValue::single(q.clone())),
                choice(n, q, "constant", None),
            )
        }
        VarKind::Textbox(q) => {
            let (value, source) = match def.current.first() {
                Some(c) => (c.clone(), "saved"),
                None => (q.clone(), "default"),
            };
            Step::Done(
                Some(VarValue::single(value.clone())),
                choice(n, &value, source, None),
            )
        }
        VarKind::Interval { options, auto } => {
            let current = def.current.first().map(String::as_str);
            let is_auto = current.is_some_and(|c| c.starts_with("$__auto_interval"));
            match (auto, current) {
                (Some((count, min)), _) if is_auto || current.is_none() => {
                    let d = auto_interval(window, *count, *min);
                    let v = interpolate::format_duration(d);
                    Step::Done(
                        Some(VarValue::single(v.clone())),
                        choice(
                            n,
                            &v,
                            "auto",
                            Some(format!(
                                "window / {count}, at least {}",
                                interpolate::format_duration(*min)
                            )),
                        ),
                    )
                }
                (_, Some(c)) if !is_auto && options.iter().any(|o| o == c) => Step::Done(
                    Some(VarValue::single(c.to_string())),
                    choice(n, c, "saved", None),
                ),
                _ => match options.first() {
                    Some(first) => Step::Done(
                        Some(VarValue::single(first.clone())),
                        choice(n, first, "default", None),
                    ),
                    None => Step::Done(
                        None,
                        choice(
                            n,
                            "",
                            "none",
                            Some("the interval variable lists no options".into()),
                        ),
                    ),
                },
            }
        }
        VarKind::Datasource(plugin) => {
            let v = def
                .current
                .first()
                .cloned()
                .unwrap_or_else(|| "default".to_string());
            let note = (plugin == "prometheus")
                .then(|| "firedrill queries the target's Prometheus".to_string());
            Step::Done(
                Some(VarValue::single(v.clone())),
                choice(n, &v, "saved", note),
            )
        }
        VarKind::Adhoc(filters) if filters.is_empty() => Step::Done(
            None,
            choice(n, "", "none", Some("no ad-hoc filters saved".into())),
        ),
        VarKind::Adhoc(filters) => {
            let text: Vec<String> = filters
                .iter()
                .map(|(k, op, v)| format!("{k}{op}\"{v}\""))
                .collect();
            Step::Done(
                None,
                choice(
                    n,
                    &text.join(", "),
                    "saved",
                    Some("added to every selector of every panel query, as Grafana does".into()),
                ),
            )
        }
        VarKind::Other(t) => Step::Done(
            None,
            choice(
                n,
                "",
                "none",
                Some(format!("variable type `{t}` is not resolved by firedrill")),
            ),
        ),
    }
}

/// Saved as "All" with no `allValue`: its value is every option.
fn needs_options(def: &VarDef) -> bool {
    def.all_value.is_none() && def.current.iter().any(|c| c == "$__all")
}

/// Grafana's auto interval: the window over `count`, rounded as Grafana
/// rounds intervals, never below `min`.
pub fn auto_interval(window: RunWindow, count: u32, min: Duration) -> Duration {
    let range_ms = (window.end - window.start).num_milliseconds().max(1) as u64;
    let raw = range_ms / u64::from(count.max(1));
    Duration::from_millis(interpolate::round_interval_ms(raw)).max(min)
}

/// A variable query string as Grafana's Prometheus data source reads it.
pub fn parse_var_query(q: &str) -> VarQuery {
    let q = q.trim();
    let call = |name: &str| -> Option<&str> {
        let rest = q.strip_prefix(name)?.trim_start();
        rest.strip_prefix('(')?.strip_suffix(')').map(str::trim)
    };
    if let Some(args) = call("label_names") {
        return VarQuery::LabelNames((!args.is_empty()).then(|| args.to_string()));
    }
    if let Some(args) = call("label_values") {
        // The label is after the last top-level comma.
        return match split_last_arg(args) {
            Some((m, label)) => VarQuery::LabelValues {
                label: label.to_string(),
                matcher: Some(m.to_string()),
            },
            None => VarQuery::LabelValues {
                label: args.to_string(),
                matcher: None,
            },
        };
    }
    if let Some(args) = call("metrics") {
        return VarQuery::Metrics(args.to_string());
    }
    if let Some(args) = call("query_result") {
        return VarQuery::QueryResult(args.to_string());
    }
    VarQuery::Series(q.to_string())
}

/// `metric{a="x,y"}, label` -> (`metric{a="x,y"}`, `label`): the last comma
/// outside braces, parentheses and quotes.
fn split_last_arg(args: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut last = None;
    let mut prev = '\0';
    for (i, c) in args.char_indices() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => last = Some(i),
                _ => {}
            },
        }
        prev = c;
    }
    let i = last?;
    Some((args[..i].trim(), args[i + 1..].trim()))
}

/// Applies the variable's regex (`/pattern/flags`; a capture group, or the
/// named groups `text` and `value`) to `texts`, deduplicates, sorts as
/// the variable says, then picks the value as Grafana does: the saved one
/// when every saved value is still an option, else the default (All when
/// the variable has it, else the first option).
pub fn apply_regex(def: &VarDef, texts: Vec<String>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let re = compile_regex(&def.regex)?;
    for t in texts {
        let pair = match &re {
            None => Some((t.clone(), t)),
            Some(re) => re.captures(&t).map(|c| {
                let named = |n: &str| c.name(n).map(|m| m.as_str().to_string());
                match (named("text"), named("value")) {
                    (Some(tx), Some(v)) => (tx, v),
                    (Some(tx), None) => (tx.clone(), tx),
                    (None, Some(v)) => (v.clone(), v),
                    (None, None) => {
                        let v = c
                            .get(1)
                            .or_else(|| c.get(0))
                            .map(|m| m.as_str().to_string())
                            .unwrap_or_default();
                        (v.clone(), v)
                    }
                }
            }),
        };
        if let Some((text, value)) = pair {
            if !out.iter().any(|(_, v)| *v == value) {
                out.push((text, value));
            }
        }
    }
    sort_options(&mut out, def.sort);
    Ok(out)
}

fn compile_regex(r: &str) -> Result<Option<regex::Regex>, String> {
    let r = r.trim();
    if r.is_empty() {
        return Ok(None);
    }
    let (pattern, flags) = match r.strip_prefix('/').and_then(|s| s.rsplit_once('/')) {
        Some((p, f)) => (p, f),
        None => (r, ""),
    };
    let mut b = regex::RegexBuilder::new(pattern);
    b.case_insensitive(flags.contains('i'));
    b.multi_line(flags.contains('m'));
    b.dot_matches_new_line(flags.contains('s'));
    b.size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| format!("its regex `{r}` does not compile: {e}"))
}

fn sort_options(opts: &mut [(String, String)], sort: i64) {
    let first_number = |s: &str| -> Option<f64> {
        let start = s.find(|c: char| c.is_ascii_digit())?;
        let tail = &s[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(tail.len());
        tail[..end].parse().ok()
    };
    match sort {
        1 | 2 => opts.sort_by(|a, b| a.0.cmp(&b.0)),
        3 | 4 => opts.sort_by(|a, b| {
            let (x, y) = (
                first_number(&a.0).unwrap_or(-1.0),
                first_number(&b.0).unwrap_or(-1.0),
            );
            x.total_cmp(&y)
        }),
        5..=8 => opts.sort_by_key(|a| a.0.to_lowercase()),
        _ => return,
    }
    if sort % 2 == 0 {
        opts.reverse();
    }
}

/// Picks the value among `options` ((text, value) pairs, already filtered
/// and sorted). `found` is the source name when the saved value is kept.
pub fn choose(
    def: &VarDef,
    options: Vec<(String, String)>,
    found: &str,
    note: Option<String>,
) -> (Option<VarValue>, VariableChoice) {
    let n = def.name.as_str();
    let values: Vec<String> = options.iter().map(|(_, v)| v.clone()).collect();
    let all = || VarValue::All {
        all_value: def.all_value.clone(),
        options: values.clone(),
    };
    let wrap = |vs: Vec<String>| {
        if def.multi || def.include_all {
            VarValue::Multi(vs)
        } else {
            VarValue::Values(vs)
        }
    };
    let saved_all = def.current.iter().any(|c| c == "$__all");
    let saved_valid = !def.current.is_empty()
        && def.current.iter().all(|c| values.contains(c))
        && (def.multi || def.current.len() == 1);
    let count = format!("{} option(s)", values.len());
    let note_with = |extra: Option<String>| match (note.clone(), extra) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    if saved_all && def.include_all {
        return (
            Some(all()),
            choice(n, "All", "saved", note_with(Some(count))),
        );
    }
    if saved_valid {
        let v = wrap(def.current.clone());
        return (
            Some(v.clone()),
            choice(n, &v.display(), found, note_with(Some(count))),
        );
    }
    if def.include_all {
        return (
            Some(all()),
            choice(n, "All", "default", note_with(Some(count))),
        );
    }
    match values.first() {
        Some(first) => {
            let v = wrap(vec![first.clone()]);
            let why = if def.current.is_empty() {
                format!("first of {count}")
            } else {
                format!(
                    "saved value `{}` is not among the {count}; first taken",
                    def.current.join(", ")
                )
            };
            (
                Some(v.clone()),
                choice(n, &v.display(), "default", note_with(Some(why))),
            )
        }
        None => (
            Some(wrap(vec![String::new()])),
            choice(
                n,
                "",
                "none",
                note_with(Some(
                    "no values in the window; its queries match an empty value".into(),
                )),
            ),
        ),
    }
}

/// Grafana's text for a `query_result` sample: `name{a="x", ...} value timestamp_ms`.
pub fn query_result_text(labels: &BTreeMap<String, String>, value: &str, t: f64) -> String {
    format!(
        "{} {value} {}",
        series_text(labels),
        (t * 1000.0).round() as i64
    )
}

/// `name{a="x",b="y"}`, as Grafana writes a series in variable options.
pub fn series_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn window(secs: i64) -> RunWindow {
        let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        RunWindow {
            start,
            end: start + chrono::Duration::seconds(secs),
        }
    }

    fn def(v: Value) -> VarDef {
        parse_one(&v).unwrap()
    }

    #[test]
    fn parses_every_query_form() {
        let cases = [
            (
                "label_values(job)",
                VarQuery::LabelValues {
                    label: "job".into(),
                    matcher: None,
                },
            ),
            (
                r#"label_values(node_uname_info{job="a,b"}, instance)"#,
                VarQuery::LabelValues {
                    label: "instance".into(),
                    matcher: Some(r#"node_uname_info{job="a,b"}"#.into()),
                },
            ),
            (
                "label_values(up , job )",
                VarQuery::LabelValues {
                    label: "job".into(),
                    matcher: Some("up".into()),
                },
            ),
            (
                "metrics(prometheus_.*)",
                VarQuery::Metrics("prometheus_.*".into()),
            ),
            (
                r#"query_result({__name__=~"prometheus_.*_seconds"})"#,
                VarQuery::QueryResult(r#"{__name__=~"prometheus_.*_seconds"}"#.into()),
            ),
            ("label_names()", VarQuery::LabelNames(None)),
            ("up{job=\"x\"}", VarQuery::Series("up{job=\"x\"}".into())),
        ];
        for (q, want) in cases {
            assert_eq!(parse_var_query(q), want, "{q}");
        }
        // The structured form newer Grafana saves.
        let d = def(json!({"name": "cluster", "type": "query",
            "query": {"qryType": 1, "query": "label_values(kube_node_info,cluster)", "refId": "X"}}));
        assert_eq!(
            d.kind,
            VarKind::Query("label_values(kube_node_info,cluster)".into())
        );
        let d = def(json!({"name": "l", "type": "query",
            "query": {"qryType": 1, "label": "job", "metric": "up", "refId": "X"}}));
        assert_eq!(d.kind, VarKind::Query("label_values(up, job)".into()));
    }

    #[test]
    fn chained_variables_come_after_what_they_use() {
        let defs = parse(&json!({"templating": {"list": [
            {"name": "node", "type": "query", "query": "label_values(node_uname_info{job=\"$job\"}, instance)"},
            {"name": "job", "type": "query", "query": "label_values(node_uname_info{cluster=\"$cluster\"}, job)"},
            {"name": "cluster", "type": "query", "query": "label_values(cluster)"},
            {"name": "a", "type": "query", "query": "label_values(x{b=\"$b\"}, a)"},
            {"name": "b", "type": "query", "query": "label_values(x{a=\"$a\"}, b)"}
        ]}}));
        let names: Vec<&str> = order(&defs)
            .iter()
            .map(|&i| defs[i].name.as_str())
            .collect();
        assert_eq!(names, ["cluster", "job", "node", "b", "a"]);
    }

    #[test]
    fn regex_sort_and_named_groups() {
        let d = def(json!({"name": "q", "type": "query", "query": "x",
            "regex": "/quantile=\"([^\"]+)\"/", "sort": 1}));
        let texts = vec![
            r#"a{quantile="0.99"} 1 2"#.to_string(),
            r#"a{quantile="0.5"} 1 2"#.to_string(),
            r#"b{quantile="0.99"} 1 2"#.to_string(),
            "c{} 3 4".to_string(),
        ];
        let got = apply_regex(&d, texts).unwrap();
        assert_eq!(
            got,
            vec![("0.5".into(), "0.5".into()), ("0.99".into(), "0.99".into())]
        );
        let d = def(json!({"name": "q", "type": "query", "query": "x",
            "regex": "/(?<text>[a-z]+)-(?<value>[0-9]+)/i", "sort": 4}));
        let got = apply_regex(&d, vec!["Web-2".into(), "db-10".into(), "x".into()]).unwrap();
        assert_eq!(
            got,
            vec![("db".into(), "10".into()), ("Web".into(), "2".into())]
        );
        let d = def(json!({"name": "q", "type": "query", "query": "x", "regex": "/(/"}));
        assert!(apply_regex(&d, vec![])
            .unwrap_err()
            .contains("does not compile"));
    }

    #[test]
    fn choose_follows_grafana() {
        let opts = |vs: &[&str]| -> Vec<(String, String)> {
            vs.iter().map(|v| (v.to_string(), v.to_string())).collect()
        };
        // Saved and still valid: kept.
        let d = def(json!({"name": "job", "type": "query", "current": {"value": "b"}}));
        let (v, c) = choose(&d, opts(&["a", "b"]), "resolved", None);
        assert_eq!(v, Some(VarValue::Values(vec!["b".into()])));
        assert_eq!(c.source, "resolved");
        // Saved but gone: the first value.
        let d = def(json!({"name": "job", "type": "query", "current": {"value": "zz"}}));
        let (v, c) = choose(&d, opts(&["a", "b"]), "resolved", None);
        assert_eq!(v, Some(VarValue::Values(vec!["a".into()])));
        assert_eq!(c.source, "default");
        assert!(c
            .note
            .as_deref()
            .unwrap_or("")
            .contains("`zz` is not among"));
        // Empty current on an include-All variable: All over the options.
        let d = def(
            json!({"name": "i", "type": "query", "current": {}, "includeAll": true, "multi": true}),
        );
        let (v, c) = choose(&d, opts(&["a", "b"]), "resolved", None);
        assert_eq!(
            v,
            Some(VarValue::All {
                all_value: None,
                options: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!((c.value.as_str(), c.source.as_str()), ("All", "default"));
        // Multi with one saved value: regex context.
        let d = def(
            json!({"name": "le", "type": "query", "multi": true, "current": {"value": ["+Inf"]}}),
        );
        let (v, _) = choose(&d, opts(&["+Inf", "1"]), "resolved", None);
        assert_eq!(v, Some(VarValue::Multi(vec!["+Inf".into()])));
        // Nothing at all: an empty value, said so.
        let d = def(json!({"name": "job", "type": "query"}));
        let (v, c) = choose(&d, vec![], "resolved", None);
        assert_eq!(v, Some(VarValue::Values(vec![String::new()])));
        assert_eq!(c.source, "none");
    }

    #[test]
    fn steps_without_io() {
        let known = BTreeMap::new();
        let w = window(3600);
        let d = def(
            json!({"name": "ds", "type": "datasource", "query": "prometheus", "current": {"value": "P1"}}),
        );
        assert!(matches!(step(&d, &known, w), Step::Done(Some(_), c) if c.value == "P1"));
        let d = def(json!({"name": "c", "type": "constant", "query": "job"}));
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), _) if v == ["job"])
        );
        let d = def(json!({"name": "c", "type": "constant", "query": "${VAR_X}"}));
        assert!(
            matches!(step(&d, &known, w), Step::Done(None, c) if c.note.as_deref().unwrap_or("").contains("placeholder"))
        );
        let d = def(
            json!({"name": "r", "type": "custom", "query": "1s, 15s, 30s", "current": {"value": "30s"}}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), _) if v == ["30s"])
        );
        let d = def(
            json!({"name": "r", "type": "custom", "query": "a : x, b\\,c", "current": {"value": "nope"}}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), _) if v == ["x"])
        );
        // Auto interval: 1 h / 300 = 12 s -> 10 s, at least 1 m.
        let d = def(
            json!({"name": "i", "type": "interval", "auto": true, "auto_count": 300, "auto_min": "1m",
            "query": "1m,10m", "current": {"value": "$__auto_interval_i"}}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), c) if v == ["1m"] && c.source == "auto")
        );
        let d = def(
            json!({"name": "i", "type": "interval", "query": "1m,10m", "current": {"value": "10m"}}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), _) if v == ["10m"])
        );
        // refresh: never keeps the saved value without a query.
        let d = def(
            json!({"name": "q", "type": "query", "query": "label_values(job)", "refresh": 0, "current": {"value": "p"}}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(Some(VarValue::Values(v)), c) if v == ["p"] && c.source == "saved")
        );
        // A query using a variable nobody defines is not run.
        let d = def(
            json!({"name": "q", "type": "query", "query": "label_values(up{a=\"$nope\"}, job)"}),
        );
        assert!(
            matches!(step(&d, &known, w), Step::Done(None, c) if c.note.as_deref().unwrap_or("").contains("$nope"))
        );
        let mut known = BTreeMap::new();
        known.insert("job".to_string(), VarValue::single("p"));
        let d = def(
            json!({"name": "q", "type": "query", "query": "label_values(up{job=\"$job\"}, instance)"}),
        );
        assert_eq!(
            step(&d, &known, w),
            Step::Query(VarQuery::LabelValues {
                label: "instance".into(),
                matcher: Some("up{job=\"p\"}".into())
            })
        );
    }

    #[test]
    fn texts_as_grafana_writes_them() {
        let l: BTreeMap<String, String> = [("__name__", "up"), ("job", "p"), ("a", "b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(series_text(&l), r#"up{a="b",job="p"}"#);
        assert_eq!(
            query_result_text(&l, "1", 1.5),
            r#"up{a="b",job="p"} 1 1500"#
        );
    }
}
