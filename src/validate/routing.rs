//! The Alertmanager routing audit, without I/O: the route tree of a
//! configuration (`/api/v2/status` `config.original`), walked the way
//! Alertmanager walks it (matchers, `continue`, the receiver inherited from
//! the parent), for the static labels of each alerting rule.
//! `tests/routing.rs` checks it against `amtool config routes test`.

use super::classify::AlertRule;
use crate::report::model::{AlertRoute, Check, Finding, Severity};
use crate::spec::target::ExpectedReceiver;
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Why a configuration cannot be audited.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoutingError {
    #[error("Alertmanager's configuration is not YAML firedrill can read: {0}")]
    Yaml(String),
    #[error("Alertmanager's configuration has no `route` (it always has one once loaded; is this Alertmanager's /api/v2/status?)")]
    NoRoute,
    #[error("the root route names no receiver")]
    NoRootReceiver,
    #[error("route {path} has a matcher firedrill cannot read: {matcher:?} ({reason})")]
    Matcher {
        path: String,
        matcher: String,
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawConfig {
    route: Option<RawRoute>,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
}

#[derive(Deserialize)]
struct RawReceiver {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawRoute {
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default, rename = "match")]
    match_eq: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default, rename = "continue")]
    continue_: bool,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

/// One label matcher of a route.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    op: Op,
    value: String,
    re: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Matcher {
    fn new(name: &str, op: Op, value: &str) -> Result<Matcher, String> {
        let re = match op {
            // Alertmanager anchors its regexes, like Prometheus.
            Op::Re | Op::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?}: {e}"))?,
            ),
            Op::Eq | Op::Ne => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// A missing label matches as the empty string, as in Alertmanager.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }
}

/// A route with its receiver already inherited.
#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub routes: Vec<Route>,
    /// `route`, `route.routes[0]`, ...: where it is in the configuration.
    pub path: String,
}

/// The route tree of an Alertmanager configuration.
pub fn parse_config(yaml: &str) -> Result<Route, RoutingError> {
    Ok(parse_config_receivers(yaml)?.0)
}

/// The route tree and the names of the receivers the configuration
/// defines (`receivers[].name`).
pub fn parse_config_receivers(yaml: &str) -> Result<(Route, Vec<String>), RoutingError> {
    let raw: RawConfig =
        serde_saphyr::from_str(yaml).map_err(|e| RoutingError::Yaml(e.to_string()))?;
    let names = raw.receivers.into_iter().map(|r| r.name).collect();
    Ok((parse_route(raw.route)?, names))
}

fn parse_route(route: Option<RawRoute>) -> Result<Route, RoutingError> {
    let root = route.ok_or(RoutingError::NoRoute)?;
    let receiver = root
        .receiver
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or(RoutingError::NoRootReceiver)?;
    build(root, &receiver, "route".into())
}

fn build(raw: RawRoute, parent_receiver: &str, path: String) -> Result<Route, RoutingError> {
    let bad = |matcher: String, reason: String| RoutingError::Matcher {
        path: path.clone(),
        matcher,
        reason,
    };
    let mut matchers = Vec::new();
    for (k, v) in &raw.match_eq {
        matchers.push(Matcher::new(k, Op::Eq, v).map_err(|e| bad(format!("{k}: {v}"), e))?);
    }
    for (k, v) in &raw.match_re {
        matchers.push(Matcher::new(k, Op::Re, v).map_err(|e| bad(format!("{k}: {v}"), e))?);
    }
    for m in &raw.matchers {
        matchers.extend(parse_matchers(m).map_err(|e| bad(m.clone(), e))?);
    }
    let receiver = raw
        .receiver
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| parent_receiver.to_string());
    let routes = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, r)| build(r, &receiver, format!("{path}.routes[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(Route {
        receiver,
        matchers,
        continue_: raw.continue_,
        routes,
        path,
    })
}

/// One `matchers:` entry: `name="value"`, `name=~"re"`, `name!=v`, and
/// comma-separated lists, optionally in braces (Alertmanager's syntax).
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let mut out = Vec::new();
    let mut rest = t.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(format!("expected a label name at {rest:?}"));
        }
        let after = rest[name_end..].trim_start();
        let (op, after) = [
            ("=~", Op::Re),
            ("!~", Op::NotRe),
            ("!=", Op::Ne),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(s, op)| after.strip_prefix(s).map(|a| (*op, a)))
        .ok_or_else(|| format!("expected =, !=, =~ or !~ after {name:?}"))?;
        let after = after.trim_start();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| "unterminated quoted value".to_string())?;
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push(Matcher::new(name, op, &value)?);
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("expected ',' before {rest:?}"));
        }
    }
    Ok(out)
}

/// The routes an alert with `labels` ends at, in order, as Alertmanager's
/// `Route.Match` computes them.
pub fn matching_routes<'a>(route: &'a Route, labels: &BTreeMap<String, String>) -> Vec<&'a Route> {
    if !route.matchers.iter().all(|m| m.matches(labels)) {
        return Vec::new();
    }
    let mut all = Vec::new();
    for child in &route.routes {
        let m = matching_routes(child, labels);
        let matched = !m.is_empty();
        all.extend(m);
        if matched && !child.continue_ {
            break;
        }
    }
    if all.is_empty() {
        all.push(route);
    }
    all
}

/// The receivers `labels` reach, in Alertmanager's order (as `amtool
/// config routes test` prints them).
pub fn receivers(root: &Route, labels: &BTreeMap<String, String>) -> Vec<String> {
    matching_routes(root, labels)
        .into_iter()
        .map(|r| r.receiver.clone())
        .collect()
}

/// The labels Alertmanager will see on the rule's alerts for certain: its
/// static labels and `alertname`. Templated ones depend on the series.
pub fn static_labels(rule: &AlertRule) -> (BTreeMap<String, String>, Vec<String>) {
    let mut labels = BTreeMap::new();
    let mut templated = Vec::new();
    for (k, v) in &rule.rule.labels {
        if v.contains("{{") {
            templated.push(k.clone());
        } else {
            labels.insert(k.clone(), v.clone());
        }
    }
    labels.insert("alertname".into(), rule.rule.name.clone());
    (labels, templated)
}

/// `expected_receivers` entries naming a receiver the configuration does
/// not define: no alert can ever reach it.
pub fn undefined_receivers(expected: &[ExpectedReceiver], defined: &[String]) -> Vec<Finding> {
    let mut named: Vec<&str> = defined.iter().map(String::as_str).collect();
    named.sort_unstable();
    named.dedup();
    let mut shown = named
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if named.len() > 10 {
        shown.push_str(&format!(", … ({} in all)", named.len()));
    }
    expected
        .iter()
        .filter(|e| !named.contains(&e.receiver.as_str()))
        .map(|e| Finding {
            subject: "expected_receivers".into(),
            severity: Severity::Error,
            check: Check::Routing,
            detail: format!(
                "the target expects alerts with {} at receiver {:?}, but Alertmanager's configuration defines no receiver of that name ({}), so no alert can reach it. Correct the name in the target's [validate] expected_receivers, or add the receiver to Alertmanager",
                crate::model::format_labels(&e.labels),
                e.receiver,
                if named.is_empty() {
                    "it defines none".to_string()
                } else {
                    format!("it defines: {shown}")
                }
            ),
            selector: None,
            file: None,
            group: None,
        })
        .collect()
}

/// Each alert's receivers, and the findings: an alert that reaches only
/// the root route when the tree has sub-routes, or not the receiver the
/// target expects for its labels.
pub fn audit_routes(
    root: &Route,
    rules: &[AlertRule],
    expected: &[ExpectedReceiver],
) -> (Vec<AlertRoute>, Vec<Finding>) {
    let mut routes = Vec::new();
    let mut findings = Vec::new();
    for r in rules {
        let (labels, templated) = static_labels(r);
        let ends = matching_routes(root, &labels);
        let reached: Vec<String> = ends.iter().map(|e| e.receiver.clone()).collect();
        let root_only = ends.len() == 1 && std::ptr::eq(ends[0], root);
        let note = if templated.is_empty() {
            String::new()
        } else {
            format!(
                " (labels filled from the series at evaluation time were not known: {}; a route matching on them may still catch it)",
                templated.join(", ")
            )
        };
        let finding = |severity, detail: String| Finding {
            subject: r.rule.name.clone(),
            severity,
            check: Check::Routing,
            detail,
            selector: None,
            file: Some(r.file.clone()),
            group: Some(r.group.clone()),
        };
        let wanted: Vec<&ExpectedReceiver> = expected
            .iter()
            .filter(|e| e.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .collect();
        for e in &wanted {
            if !reached.contains(&e.receiver) {
                findings.push(finding(
                    Severity::Error,
                    format!(
                        "reaches {} via {}, but the target expects alerts with {} at receiver {:?}{note}. Fix the rule's static labels or the Alertmanager route",
                        reached.join(", "),
                        ends.iter().map(|e| e.path.as_str()).collect::<Vec<_>>().join(", "),
                        crate::model::format_labels(&e.labels),
                        e.receiver
                    ),
                ));
            }
        }
        if wanted.is_empty() && root_only && !root.routes.is_empty() {
            findings.push(finding(
                Severity::Warning,
                format!(
                    "matches no sub-route and reaches only the root (default) receiver {:?}{note}: check it carries the labels its team's route matches on",
                    root.receiver
                ),
            ));
        }
        routes.push(AlertRoute {
            alert: r.rule.name.clone(),
            file: r.file.clone(),
            group: r.group.clone(),
            receivers: reached,
            routes: ends.iter().map(|e| e.path.clone()).collect(),
        });
    }
    (routes, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::prometheus::Rule;

    const CONFIG: &str = r#"
route:
  receiver: default
  routes:
  - receiver: daedalus-null
    matchers: ['namespace="daedalus"']
    continue: true
    routes:
    - receiver: daedalus-pagerduty
      matchers: ['severity="page"']
  - receiver: ops
    match_re: {severity: "crit.*"}
"#;

    fn alert(name: &str, labels: &[(&str, &str)]) -> AlertRule {
        AlertRule {
            file: "/r/a.yml".into(),
            group: "g".into(),
            rule: Rule {
                name: name.into(),
                query: "up == 0".into(),
                kind: "alerting".into(),
                duration: 0.0,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                annotations: Default::default(),
                alerts: vec![],
                health: "ok".into(),
                last_error: None,
                state: None,
            },
        }
    }

    #[test]
    fn receivers_per_alert_and_what_is_flagged() {
        let root = parse_config(CONFIG).unwrap();
        let expected = vec![ExpectedReceiver {
            labels: [("namespace".to_string(), "daedalus".to_string())].into(),
            receiver: "daedalus-pagerduty".into(),
        }];
        let rules = vec![
            alert("Paged", &[("namespace", "daedalus"), ("severity", "page")]),
            alert(
                "WrongSeverity",
                &[("namespace", "daedalus"), ("severity", "warn")],
            ),
            alert("Templated", &[("namespace", "{{ $labels.namespace }}")]),
            alert("Ops", &[("severity", "critical")]),
        ];
        let (routes, findings) = audit_routes(&root, &rules, &expected);
        let got: Vec<(&str, Vec<&str>)> = routes
            .iter()
            .map(|r| {
                (
                    r.alert.as_str(),
                    r.receivers.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Paged", vec!["daedalus-pagerduty"]),
                ("WrongSeverity", vec!["daedalus-null"]),
                ("Templated", vec!["default"]),
                ("Ops", vec!["ops"]),
            ]
        );
        let flagged: Vec<(&str, Severity)> = findings
            .iter()
            .map(|f| (f.subject.as_str(), f.severity))
            .collect();
        assert_eq!(
            flagged,
            [
                ("WrongSeverity", Severity::Error),
                ("Templated", Severity::Warning)
            ]
        );
        assert!(
            findings[0].detail.contains("daedalus-pagerduty"),
            "{}",
            findings[0].detail
        );
        assert!(
            findings[1].detail.contains("were not known: namespace"),
            "{}",
            findings[1].detail
        );
    }

    #[test]
    fn an_expected_receiver_the_configuration_lacks_is_named() {
        let (_, defined) = parse_config_receivers(
            "route:\n  receiver: default\nreceivers:\n- name: default\n- name: team-a-pager\n",
        )
        .unwrap();
        assert_eq!(defined, ["default", "team-a-pager"]);
        let expect = |r: &str| ExpectedReceiver {
            labels: [("namespace".to_string(), "a".to_string())].into(),
            receiver: r.into(),
        };
        assert!(undefined_receivers(&[expect("team-a-pager")], &defined).is_empty());
        let f = undefined_receivers(&[expect("team-a-pagr")], &defined);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].detail.contains(r#"receiver "team-a-pagr""#)
                && f[0].detail.contains("it defines: default, team-a-pager"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn matcher_syntax() {
        let m = parse_matchers(r#"{a="x,y", b=~"c|d" , e!=f}"#).unwrap();
        let labels: BTreeMap<String, String> = [("a", "x,y"), ("b", "d"), ("e", "g")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|m| m.matches(&labels)));
        assert!(parse_matchers("severity =~ warning|info").unwrap()[0]
            .matches(&[("severity".to_string(), "info".to_string())].into()));
        // Anchored, and a missing label is the empty string.
        assert!(!parse_matchers("a=~b").unwrap()[0]
            .matches(&[("a".to_string(), "abc".to_string())].into()));
        assert!(parse_matchers("a!=b").unwrap()[0].matches(&BTreeMap::new()));
        assert!(parse_matchers("=x").is_err());
        assert!(parse_matchers(r#"a="x"#).is_err());
    }
}
