use super::classify::*;
use crate::clients::prometheus::{PromError, QueryResult, Rule};
use crate::report::model::{Check, Severity};

fn rule(name: &str, expr: &str, labels: &[(&str, &str)], runbook: Option<&str>) -> Rule {
    Rule {
        name: name.into(),
        query: expr.into(),
        kind: "alerting".into(),
        duration: 0.0,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: runbook
            .map(|u| [("runbook_url".to_string(), u.to_string())].into())
            .unwrap_or_default(),
        alerts: vec![],
        health: "ok".into(),
        last_error: None,
        state: None,
    }
}

const NS: &[(&str, &str)] = &[("namespace", "daedalus")];
const RB: Option<&str> = Some("docs/runbook.md#x");

/// (severity, check, selector) triples, for compact expectations.
type Got = Vec<(Severity, Check, Option<String>)>;

fn run(r: &Rule, present: &[&str]) -> Got {
    let answers: SeriesAnswers = series_questions(r)
        .into_iter()
        .map(|q| {
            let n = usize::from(present.contains(&q.as_str()));
            (q, SeriesAnswer::Count(n))
        })
        .collect();
    classify_rule(r, &answers)
        .into_iter()
        .map(|f| (f.severity, f.check, f.selector))
        .collect()
}

fn sel(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn rules_and_series_answers_become_findings() {
    use Check::*;
    use Severity::*;
    let cases: Vec<(&str, Rule, &[&str], Got)> = vec![
        (
            "healthy plain rule",
            rule("A", r#"rate(x_total{ns="d"}[5m]) > 0"#, NS, RB),
            &[r#"x_total{ns="d"}"#],
            vec![],
        ),
        (
            "selector with no series names the exact selector",
            rule(
                "A",
                r#"rate(x_total{ns="d"}[5m]) > 0 and y{a="b"} > 1"#,
                NS,
                RB,
            ),
            &[r#"x_total{ns="d"}"#],
            vec![(Error, SelectorSeries, sel(r#"y{a="b"}"#))],
        ),
        (
            "absent leg: emptiness is the point, only the name is checked",
            rule("A", r#"absent(up{job="c"}) or up{job="c"} == 0"#, NS, RB),
            &[r#"{__name__="up"}"#],
            vec![],
        ),
        (
            "absent leg on a name that exists nowhere is a warning",
            rule("A", r#"absent(nope{job="c"})"#, NS, RB),
            &[],
            vec![(Warning, SelectorSeries, sel(r#"nope{job="c"}"#))],
        ),
        (
            "absent without a static namespace label",
            rule("A", r#"absent(up{job="c"})"#, &[("severity", "page")], RB),
            &[r#"{__name__="up"}"#],
            vec![(Error, AbsentNamespace, None)],
        ),
        (
            "absent with a templated namespace label",
            rule(
                "A",
                r#"absent(up{job="c"})"#,
                &[("namespace", "{{ $labels.namespace }}")],
                RB,
            ),
            &[r#"{__name__="up"}"#],
            vec![(Error, AbsentNamespace, None)],
        ),
        (
            "no absent leg needs no namespace label",
            rule("A", "up == 0", &[], RB),
            &["up"],
            vec![],
        ),
        (
            "missing runbook",
            rule("A", "up == 0", NS, None),
            &["up"],
            vec![(Error, RunbookUrl, None)],
        ),
        (
            "runbook without anchor",
            rule("A", "up == 0", NS, Some("docs/runbook.md")),
            &["up"],
            vec![(Warning, RunbookUrl, None)],
        ),
        (
            "runbook URL",
            rule("A", "up == 0", NS, Some("https://wiki.example/runbook")),
            &["up"],
            vec![],
        ),
        (
            "unparsable expression",
            rule("A", "sum(", NS, RB),
            &[],
            vec![(Error, RuleHealth, None)],
        ),
    ];
    for (what, r, present, want) in cases {
        assert_eq!(run(&r, present), want, "{what}");
    }
}

#[test]
fn unhealthy_rule_and_refused_selector_are_errors() {
    let mut r = rule("A", r#"x{a="b"} > 0"#, NS, RB);
    r.health = "err".into();
    r.last_error = Some("boom".into());
    let answers: SeriesAnswers = [(
        r#"x{a="b"}"#.to_string(),
        SeriesAnswer::Refused("bad_data: nope".into()),
    )]
    .into();
    let f = classify_rule(&r, &answers);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].check, Check::RuleHealth);
    assert!(f[0].detail.contains("boom"));
    assert_eq!(f[1].check, Check::SelectorSeries);
    assert!(f[1].detail.contains("bad_data"), "{}", f[1].detail);
}

#[test]
fn missing_metric_detail_says_it_silently_never_fires() {
    let r = rule("A", "ghost_metric > 0", NS, RB);
    let answers: SeriesAnswers = [("ghost_metric".into(), SeriesAnswer::Count(0))].into();
    let f = classify_rule(&r, &answers);
    assert_eq!(f[0].selector.as_deref(), Some("ghost_metric"));
    assert!(f[0]
        .detail
        .starts_with("references a metric that does not exist, so it silently never fires"));
}

#[test]
fn runbook_forms() {
    let cases: &[(Option<&str>, Option<Severity>)] = &[
        (None, Some(Severity::Error)),
        (Some("  "), Some(Severity::Error)),
        (Some("docs/runbook.md#worker-crashloop"), None),
        (
            Some("https://github.com/o/r/blob/main/docs/runbook.md#x"),
            None,
        ),
        (Some("http://wiki"), None),
        (Some("docs/runbook.md"), Some(Severity::Warning)),
        (Some("#x"), Some(Severity::Warning)),
        (Some("docs/runbook.md#"), Some(Severity::Warning)),
        (Some("ftp://host/x#y"), Some(Severity::Warning)),
        (Some("see the wiki#x"), Some(Severity::Warning)),
    ];
    for (url, want) in cases {
        let u = url.map(str::to_string);
        assert_eq!(
            runbook_problem(u.as_ref()).map(|(s, _)| s),
            *want,
            "{url:?}"
        );
    }
}

#[test]
fn drills_whose_alert_is_not_loaded() {
    let loaded = vec!["A".to_string(), "B".to_string()];
    let f = missing_drill_alerts([("d1", "A"), ("d2", "Typo")], &loaded);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].subject, "drill d2");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(
        f[0].detail.contains("alert Typo is not loaded"),
        "{}",
        f[0].detail
    );
    assert!(f[0].detail.contains("loaded: A, B"), "{}", f[0].detail);
}

#[test]
fn criterion_answers() {
    let q = "up";
    let api = |t: &str| PromError::Api {
        url: "u".into(),
        error_type: t.into(),
        error: "parse error".into(),
    };
    let sev = |a: Result<QueryResult, PromError>| {
        classify_criterion("AC1", q, &a).map(|f| (f.severity, f.check))
    };
    assert_eq!(
        sev(Ok(QueryResult::Vector(vec![]))).unwrap().0,
        Severity::Warning
    );
    assert_eq!(
        sev(Ok(QueryResult::Matrix(vec![]))).unwrap().0,
        Severity::Warning
    );
    assert_eq!(sev(Err(api("bad_data"))).unwrap().0, Severity::Error);
    let f = classify_criterion("AC1", q, &Err(api("bad_data"))).unwrap();
    assert!(f.detail.contains("bad_data"), "{}", f.detail);
    let scalar: QueryResult =
        serde_json::from_str(r#"{"resultType":"scalar","result":[1700000000,"1"]}"#).unwrap();
    assert_eq!(sev(Ok(scalar)), None);
    let f = criterion_not_checked("AC2", "sentinel.task_id");
    assert_eq!(f.severity, Severity::Info);
    assert!(f.detail.contains("{{sentinel.task_id}}"), "{}", f.detail);
}
