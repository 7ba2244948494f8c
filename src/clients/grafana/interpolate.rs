//! Grafana template syntax for panel queries: `$var`, `${var}`, `${var:fmt}`,
//! `[[var]]`, and the built-in `$__interval`, `$__rate_interval`, `$__range`
//! family, computed the way Grafana does for a Prometheus data source.
//! Pure: no I/O, table-tested.

use crate::model::RunWindow;
use std::collections::BTreeMap;
use std::time::Duration;

/// A variable's value as Grafana's Prometheus data source writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// A variable that is neither multi-value nor has "All": its value as is
    /// (only `\\` and `'` escaped, as Grafana does).
    Values(Vec<String>),
    /// A multi-value or include-All variable: written into PromQL as a regex,
    /// so every value is regex-escaped, one value as well as several.
    Multi(Vec<String>),
    /// `$__all`: the variable's `allValue` when it has one (as is), else
    /// every option as a regex alternation.
    All {
        all_value: Option<String>,
        options: Vec<String>,
    },
}

impl VarValue {
    pub fn single(v: impl Into<String>) -> Self {
        VarValue::Values(vec![v.into()])
    }

    /// The value for a report: `All`, `a`, `a, b`.
    pub fn display(&self) -> String {
        match self {
            VarValue::All { .. } => "All".to_string(),
            VarValue::Values(v) | VarValue::Multi(v) => v.join(", "),
        }
    }

    /// How Grafana's Prometheus data source writes the value into PromQL
    /// (`interpolateQueryExpr`) with no explicit format, and Grafana's
    /// formatters with one.
    fn render(&self, format: Option<&str>) -> String {
        let (values, regex_ctx) = match self {
            VarValue::All {
                all_value: Some(all),
                ..
            } => return all.clone(),
            VarValue::All {
                all_value: None,
                options,
            } => (options, true),
            VarValue::Multi(v) => (v, true),
            VarValue::Values(v) => (v, false),
        };
        match format {
            Some("csv") => values.join(","),
            Some("pipe") => values.join("|"),
            Some("json") => serde_json::to_string(values).unwrap_or_default(),
            Some("doublequote") => join_quoted(values, '"'),
            Some("singlequote") => join_quoted(values, '\''),
            Some("regex") => regex_alternation(values),
            Some("raw") | Some("text") | Some("glob") if values.len() == 1 => values[0].clone(),
            Some("glob") => format!("{{{}}}", values.join(",")),
            Some("raw") | Some("text") => values.join(","),
            _ if regex_ctx => regex_alternation(values),
            _ => values
                .iter()
                .map(|v| regular_escape(v))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

fn join_quoted(values: &[String], q: char) -> String {
    values
        .iter()
        .map(|v| format!("{q}{v}{q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `(a|b)` of escaped values; one value alone, escaped.
fn regex_alternation(values: &[String]) -> String {
    if values.len() == 1 {
        return regex_escape(&values[0]);
    }
    let parts: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    format!("({})", parts.join("|"))
}

/// Grafana's `prometheusRegularEscape`: a plain variable's value in a
/// PromQL string (`\` doubled, `'` escaped).
fn regular_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\'', "\\\\'")
}

/// Escapes regex metacharacters as Grafana's `prometheusSpecialRegexEscape`
/// does for values written into a `=~` matcher (backslashes doubled for PromQL).
fn regex_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            c if "^$*+?.()|{}[]'".contains(c) => {
                out.push_str("\\\\");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The interval variables Grafana computes for one panel over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `$__interval`, also the range query's step.
    pub interval: Duration,
    /// `$__rate_interval` = max(`$__interval` + scrape interval, 4 × scrape interval).
    pub rate_interval: Duration,
    /// `$__range`: the whole window.
    pub range: Duration,
}

/// Grafana's interval for a window: the window split into `max_data_points`,
/// rounded to a "nice" value, and never below `min_interval` (the query's or
/// panel's `interval`, else the data source's scrape interval).
pub fn timing(
    window: RunWindow,
    scrape_interval: Duration,
    min_interval: Option<Duration>,
    max_data_points: u32,
) -> Timing {
    let range_ms = (window.end - window.start).num_milliseconds().max(1) as u64;
    let raw = range_ms / u64::from(max_data_points.max(1));
    let floor = min_interval
        .unwrap_or(scrape_interval)
        .max(Duration::from_millis(1));
    let interval = Duration::from_millis(round_interval_ms(raw)).max(floor);
    let rate_interval = (interval + scrape_interval).max(scrape_interval * 4);
    Timing {
        interval,
        rate_interval,
        range: Duration::from_millis(range_ms),
    }
}

/// Grafana's `rangeutil.roundInterval` table, in milliseconds.
pub fn round_interval_ms(ms: u64) -> u64 {
    const TABLE: &[(u64, u64)] = &[
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
        (604_800_000, 86_400_000),
        (1_814_400_000, 604_800_000),
    ];
    TABLE
        .iter()
        .find(|(limit, _)| ms <= *limit)
        .map(|(_, v)| *v)
        .unwrap_or(2_592_000_000)
}

/// `90s`, `1m`, `250ms`: a duration as Grafana writes `$__interval`
/// (any form PromQL accepts).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parses a Grafana interval setting (`"30s"`, `">1m"`, `""`). Variables and
/// anything unparsable give `None` (the caller falls back to the default).
pub fn parse_min_interval(s: &str) -> Option<Duration> {
    let s = s.trim().trim_start_matches('>').trim();
    if s.is_empty() || s.contains('$') {
        return None;
    }
    humantime::parse_duration(s).ok().filter(|d| !d.is_zero())
}

/// The built-in variables for one panel, as [`VarValue`]s.
pub fn builtins(window: RunWindow, t: Timing) -> BTreeMap<String, VarValue> {
    let ms = |d: Duration| d.as_millis().to_string();
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), VarValue::single(v));
    };
    put("__interval", format_duration(t.interval));
    put("__interval_ms", ms(t.interval));
    put("__rate_interval", format_duration(t.rate_interval));
    put("__rate_interval_ms", ms(t.rate_interval));
    put("__range", format!("{}s", t.range.as_secs().max(1)));
    put("__range_s", t.range.as_secs().max(1).to_string());
    put("__range_ms", ms(t.range));
    put("__from", window.start.timestamp_millis().to_string());
    put("__to", window.end.timestamp_millis().to_string());
    m
}

/// Replaces every variable reference in `text` with its value. Unknown
/// variables are left as written and returned, so the caller can say which
/// ones a query still needs.
pub fn interpolate(text: &str, vars: &BTreeMap<String, VarValue>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        match parse_reference(tail) {
            Some((consumed, name, format)) => {
                match vars.get(name) {
                    Some(v) => out.push_str(&v.render(format)),
                    None => {
                        out.push_str(&tail[..consumed]);
                        // `$1` is a regex back-reference (label_replace), never a variable.
                        let numeric = name.starts_with(|c: char| c.is_ascii_digit());
                        if !numeric && !unknown.iter().any(|u| u == name) {
                            unknown.push(name.to_string());
                        }
                    }
                }
                rest = &tail[consumed..];
            }
            None => {
                let c = tail.chars().next().expect("non-empty tail");
                out.push(c);
                rest = &tail[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    (out, unknown)
}

/// At the start of `s`: `$name`, `${name}`, `${name:fmt}`, `${name.field}`
/// or `[[name]]`/`[[name:fmt]]`. Returns (bytes consumed, name, format).
fn parse_reference(s: &str) -> Option<(usize, &str, Option<&str>)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if let Some(inner) = s.strip_prefix("${") {
        let end = inner.find('}')?;
        let body = &inner[..end];
        let (name_part, format) = match body.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (body, None),
        };
        // `${var.field}` (object variables): the field is not supported; use the name.
        let name = name_part.split('.').next().unwrap_or("");
        if name.is_empty() || !name.chars().all(is_word) {
            return None;
        }
        return Some((2 + end + 1, name, format));
    }
    if let Some(inner) = s.strip_prefix("[[") {
        let end = inner.find("]]")?;
        let body = &inner[..end];
        let (name, format) = match body.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(is_word) {
            return None;
        }
        return Some((2 + end + 2, name, format));
    }
    if let Some(inner) = s.strip_prefix('$') {
        let len = inner.find(|c: char| !is_word(c)).unwrap_or(inner.len());
        if len == 0 {
            return None;
        }
        return Some((1 + len, &inner[..len], None));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn window(secs: i64) -> RunWindow {
        let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        RunWindow {
            start,
            end: start + chrono::Duration::seconds(secs),
        }
    }

    fn vars(pairs: &[(&str, VarValue)]) -> BTreeMap<String, VarValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn interpolates_every_syntax() {
        let v = vars(&[
            ("namespace", VarValue::single("daedalus")),
            ("agent_type", VarValue::single("coder")),
            ("pods", VarValue::Multi(vec!["a-1".into(), "b.2".into()])),
            (
                "cluster",
                VarValue::All {
                    all_value: None,
                    options: vec!["eu-1".into(), "us.2".into()],
                },
            ),
            (
                "env",
                VarValue::All {
                    all_value: Some("prod|stage".into()),
                    options: vec![],
                },
            ),
            ("le", VarValue::Multi(vec!["+Inf".into()])),
            ("plain", VarValue::single("a'b\\c")),
            ("__rate_interval", VarValue::single("1m")),
        ]);
        let cases: &[(&str, &str, &[&str])] = &[
            ("up", "up", &[]),
            (
                r#"x{namespace="$namespace"}"#,
                r#"x{namespace="daedalus"}"#,
                &[],
            ),
            (
                r#"x{a="${agent_type}"}[$__rate_interval]"#,
                r#"x{a="coder"}[1m]"#,
                &[],
            ),
            (r#"x{a="[[agent_type]]"}"#, r#"x{a="coder"}"#, &[]),
            (r#"x{p=~"$pods"}"#, r#"x{p=~"(a-1|b\\.2)"}"#, &[]),
            (r#"x{p=~"${pods:pipe}"}"#, r#"x{p=~"a-1|b.2"}"#, &[]),
            (r#"x{p="${pods:csv}"}"#, r#"x{p="a-1,b.2"}"#, &[]),
            // All without an allValue: every option, escaped (Grafana).
            (r#"x{c=~"$cluster"}"#, r#"x{c=~"(eu-1|us\\.2)"}"#, &[]),
            // One value of a multi variable is regex-escaped too.
            (r#"x{le=~"$le"}"#, r#"x{le=~"\\+Inf"}"#, &[]),
            // A plain variable: only backslash and quote escaped.
            (r#"x{a="$plain"}"#, r#"x{a="a\\'b\\c"}"#, &[]),
            (r#"x{e=~"$env"}"#, r#"x{e=~"prod|stage"}"#, &[]),
            // Unknown variables stay as written and are reported once.
            (
                r#"x{a="$missing", b="$missing"}"#,
                r#"x{a="$missing", b="$missing"}"#,
                &["missing"],
            ),
            // A `$` that starts no reference is literal (regex anchors).
            (r#"x{a=~"^foo$"}"#, r#"x{a=~"^foo$"}"#, &[]),
            (r#"x{a=~"[a-z]+"}"#, r#"x{a=~"[a-z]+"}"#, &[]),
            // Longest name wins: `$namespaces` is not `$namespace` + "s".
            ("$namespaces", "$namespaces", &["namespaces"]),
            ("é$namespace", "édaedalus", &[]),
            // label_replace's `$1` stays and is no unknown variable.
            (
                r#"label_replace(up, "a", "$1", "b", "(.*)")"#,
                r#"label_replace(up, "a", "$1", "b", "(.*)")"#,
                &[],
            ),
        ];
        for (input, want, want_unknown) in cases {
            let (got, unknown) = interpolate(input, &v);
            assert_eq!(&got, want, "input {input}");
            assert_eq!(&unknown, want_unknown, "input {input}");
        }
    }

    #[test]
    fn timing_follows_grafana() {
        let s15 = Duration::from_secs(15);
        // 1 h / 1000 points = 3.6 s -> 5 s, floored at the 15 s scrape interval.
        let t = timing(window(3600), s15, None, 1000);
        assert_eq!(t.interval, s15);
        assert_eq!(t.rate_interval, Duration::from_secs(60));
        assert_eq!(t.range, Duration::from_secs(3600));
        // 24 h / 1000 = 86.4 s -> 1 m; rate = max(1m + 15s, 1m) = 75 s.
        let t = timing(window(86_400), s15, None, 1000);
        assert_eq!(t.interval, Duration::from_secs(60));
        assert_eq!(t.rate_interval, Duration::from_secs(75));
        // A query's min interval beats the scrape interval.
        let t = timing(window(600), s15, Some(Duration::from_secs(30)), 1000);
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.rate_interval, Duration::from_secs(60));
        // 1 s scrape (the local stack): 20 s window -> 1 s step, 4 s rate window.
        let t = timing(window(20), Duration::from_secs(1), None, 1000);
        assert_eq!(t.interval, Duration::from_secs(1));
        assert_eq!(t.rate_interval, Duration::from_secs(4));
    }

    #[test]
    fn round_interval_table() {
        for (raw, want) in [
            (0, 10),
            (1_000, 1_000),
            (3_600, 5_000),
            (16_000, 15_000),
            (86_400, 60_000),
            (400_000, 300_000),
            (10_000_000_000, 2_592_000_000),
        ] {
            assert_eq!(round_interval_ms(raw), want, "raw {raw}");
        }
    }

    #[test]
    fn formats_and_parses_intervals() {
        for (ms, want) in [
            (250, "250ms"),
            (1_000, "1s"),
            (90_000, "90s"),
            (120_000, "2m"),
            (7_200_000, "2h"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), want);
        }
        assert_eq!(parse_min_interval("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_min_interval(">1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_min_interval(""), None);
        assert_eq!(parse_min_interval("$interval"), None);
        assert_eq!(parse_min_interval("soon"), None);
    }

    #[test]
    fn builtins_cover_the_window() {
        let w = window(90);
        let t = timing(w, Duration::from_secs(15), None, 1000);
        let b = builtins(w, t);
        let get = |k: &str| match &b[k] {
            VarValue::Values(v) => v[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(get("__range"), "90s");
        assert_eq!(get("__range_s"), "90");
        assert_eq!(get("__range_ms"), "90000");
        assert_eq!(get("__interval"), "15s");
        assert_eq!(get("__interval_ms"), "15000");
        assert_eq!(get("__rate_interval"), "1m");
        assert_eq!(get("__from"), w.start.timestamp_millis().to_string());
        assert_eq!(get("__to"), w.end.timestamp_millis().to_string());
    }
}
