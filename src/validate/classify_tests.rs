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

fn ar(rule: Rule) -> AlertRule {
    AlertRule {
        file: "/rules/a.yml".into(),
        group: "g".into(),
        rule,
    }
}

/// A fake Prometheus: `present` lists the selectors (and bare metric
/// names) that have series now; every query is answered as the real one
/// would for that state, round after round.
fn answer_all(r: &Rule, present: &[&str], policy: &Policy) -> Answers {
    let mut answers = Answers::new();
    for _ in 0..MAX_ROUNDS {
        for q in questions(&analyse(&r.query), &answers, policy) {
            let hit = present.iter().any(|p| {
                q == count_query(p, "", Window::Now)
                    || q == count_query(&name_selector(p, None), "", Window::Now)
            });
            let a = if hit {
                vec![(Default::default(), 1.0)]
            } else {
                vec![]
            };
            answers.insert(q, Ok(a));
        }
    }
    answers
}

fn run(r: &Rule, present: &[&str]) -> Got {
    let policy = Policy::default();
    let answers = answer_all(r, present, &policy);
    classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, &policy)
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
            &["up"],
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
            &["up"],
            vec![(Error, AbsentLabel, None)],
        ),
        (
            "absent with a templated namespace label",
            rule(
                "A",
                r#"absent(up{job="c"})"#,
                &[("namespace", "{{ $labels.namespace }}")],
                RB,
            ),
            &["up"],
            vec![(Error, AbsentLabel, None)],
        ),
        (
            "no absent leg needs no namespace label",
            rule("A", "up > 1", &[], RB),
            &["up"],
            vec![],
        ),
        (
            "missing runbook",
            rule("A", "up > 1", NS, None),
            &["up"],
            vec![(Error, RunbookUrl, None)],
        ),
        (
            "runbook without anchor",
            rule("A", "up > 1", NS, Some("docs/runbook.md")),
            &["up"],
            vec![(Warning, RunbookUrl, None)],
        ),
        (
            "runbook URL",
            rule("A", "up > 1", NS, Some("https://wiki.example/runbook")),
            &["up"],
            vec![],
        ),
        (
            "an expression our parser rejects but Prometheus loaded is not analysed",
            rule("A", "sum(", NS, RB),
            &[],
            vec![(Info, RuleHealth, None)],
        ),
        (
            "right side of unless is not a never-fires finding",
            rule(
                "KubeletDown",
                r#"rate(kubelet_errors_total{job="kubelet"}[5m]) > 0 unless on(node) kube_node_spec_taint{effect="NoSchedule"}"#,
                NS,
                RB,
            ),
            &[r#"kubelet_errors_total{job="kubelet"}"#],
            vec![],
        ),
        (
            "or vector(0) fallback",
            rule(
                "A",
                r#"(count(redis_instance_info{role="master"}) or vector(0)) < 1"#,
                NS,
                RB,
            ),
            &[],
            vec![],
        ),
        (
            "or 0 * absent() fallback is neither never-fires nor fires-on-absence",
            rule(
                "A",
                "sum(rate(x_total[5m])) > 1 or 0 * absent(nope)",
                NS,
                RB,
            ),
            &[],
            vec![],
        ),
        (
            "state series empty over the lookback is info",
            rule("A", r#"ALERTS{severity="info"} > 0"#, NS, RB),
            &[],
            vec![(Info, SelectorSeries, sel(r#"ALERTS{severity="info"}"#))],
        ),
        (
            "object-state gauge compared to zero without absent()",
            rule(
                "OrchestratorDown",
                r#"kube_deployment_status_replicas_available{deployment="o"} == 0"#,
                NS,
                RB,
            ),
            &[r#"kube_deployment_status_replicas_available{deployment="o"}"#],
            vec![(
                Warning,
                AbsentGuard,
                sel(r#"kube_deployment_status_replicas_available{deployment="o"}"#),
            )],
        ),
        (
            "the same with its absent() leg",
            rule(
                "OrchestratorDown",
                r#"kube_deployment_status_replicas_available{deployment="o"} == 0 or absent(kube_deployment_status_replicas_available{deployment="o"})"#,
                NS,
                RB,
            ),
            &["kube_deployment_status_replicas_available"],
            vec![],
        ),
        (
            "scalar() of an empty selector is NaN, and NaN != 0 fires",
            rule("A", "x - scalar(b) != 0", NS, RB),
            &["x"],
            vec![],
        ),
        (
            "scalar() of an empty selector compared with > never fires",
            rule("A", "x - scalar(b) > 0", NS, RB),
            &["x", "b"],
            vec![],
        ),
        (
            "every alternative of an or empty: the rule never fires",
            rule("A", "sum(a) > 0 or rate(b_total[5m]) > 0", NS, RB),
            &[],
            vec![(Error, SelectorSeries, sel("a or b_total"))],
        ),
        (
            "one alternative of an or with series is enough",
            rule("A", "sum(a) > 0 or rate(b_total[5m]) > 0", NS, RB),
            &["b_total"],
            vec![],
        ),
        (
            "an or vector(0) fallback is never all empty",
            rule("A", "(sum(a) or sum(b) or vector(0)) > 0", NS, RB),
            &[],
            vec![],
        ),
        (
            "offset is checked as written: x now says nothing of x a week ago",
            rule("A", "rate(x[5m] offset 1w) > 0", NS, RB),
            &["x"],
            vec![(Error, SelectorSeries, sel("x offset 1w"))],
        ),
        (
            "Go's \\Q...\\E quoting is analysed as the text it quotes",
            rule("A", r#"up{job=~"\\Qprometheus\\E"} > 1"#, NS, RB),
            &[r#"up{job=~"prometheus"}"#],
            vec![],
        ),
        (
            "and its selector is checked",
            rule("A", r#"up{job=~"\\Qprometheus\\E"} > 1"#, NS, RB),
            &[],
            vec![(Error, SelectorSeries, sel(r#"up{job=~"prometheus"}"#))],
        ),
    ];
    for (what, r, present, want) in cases {
        assert_eq!(run(&r, present), want, "{what}");
    }
}

#[test]
fn unhealthy_rule_and_refused_query_are_errors() {
    let mut r = rule("A", r#"x{a="b"} > 0"#, NS, RB);
    r.health = "err".into();
    r.last_error = Some("boom".into());
    let policy = Policy::default();
    let answers: Answers = [(
        count_query(r#"x{a="b"}"#, "", Window::Now),
        Err("bad_data: nope".into()),
    )]
    .into();
    let f = classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, &policy);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].check, Check::RuleHealth);
    assert!(f[0].detail.contains("boom"));
    assert_eq!(f[1].check, Check::SelectorSeries);
    assert!(f[1].detail.contains("bad_data"), "{}", f[1].detail);
    assert_eq!(f[1].file.as_deref(), Some("/rules/a.yml"));
    assert_eq!(f[1].group.as_deref(), Some("g"));
}

#[test]
fn the_detail_says_what_is_really_wrong() {
    let policy = Policy::default();
    let lb = policy.lookback;
    let detail = |expr: &str, answers: &[(String, Vec<(&str, f64)>)]| {
        let r = rule("A", expr, NS, RB);
        let answers: Answers = answers
            .iter()
            .map(|(q, samples)| {
                let s = samples
                    .iter()
                    .map(|(l, v)| {
                        let labels = if l.is_empty() {
                            Default::default()
                        } else {
                            let (k, val) = l.split_once('=').unwrap();
                            [(k.to_string(), val.to_string())].into()
                        };
                        (labels, *v)
                    })
                    .collect();
                (q.clone(), Ok(s))
            })
            .collect();
        let f = classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, &policy);
        assert_eq!(f.len(), 1, "{f:?} {answers:#?}");
        (f[0].severity, f[0].detail.clone())
    };
    let now = Window::Now;
    let lbw = Window::Lookback(lb);
    let name = |m: &str, matcher: Option<&str>, w| count_query(&name_selector(m, matcher), "", w);
    let count_query = |s: &str, w| count_query(s, "", w);
    // Metric never present: neither now nor over the lookback.
    let (sev, d) = detail(
        "ghost_metric > 0",
        &[
            (count_query("ghost_metric", now), vec![]),
            (count_query("ghost_metric", lbw), vec![]),
            (name("ghost_metric", None, now), vec![]),
            (name("ghost_metric", None, lbw), vec![]),
        ],
    );
    assert_eq!(sev, Severity::Error);
    assert!(d.contains("metric ghost_metric was never present"), "{d}");
    assert!(d.contains("silently never fires"), "{d}");
    // Metric present, one label matcher matches nothing: name it and show values.
    let sel = r#"http_requests_total{code="503",job="api"}"#;
    let m = "http_requests_total";
    let (sev, d) = detail(
        r#"http_requests_total{code="503",job="api"} > 0"#,
        &[
            (count_query(sel, now), vec![]),
            (count_query(sel, lbw), vec![]),
            (name(m, None, now), vec![("", 9.0)]),
            (name(m, Some(r#"job="api""#), now), vec![("", 4.0)]),
            (name(m, Some(r#"code="503""#), now), vec![]),
            (
                values_query(m, "code", "", now),
                vec![("code=200", 3.0), ("code=404", 1.0)],
            ),
        ],
    );
    assert_eq!(sev, Severity::Warning, "{d}");
    assert!(d.contains("metric http_requests_total exists"), "{d}");
    assert!(
        d.contains(r#"code="503" (values seen: "200", "404")"#),
        "{d}"
    );
    assert!(!d.contains("job="), "{d}");
    // Had series in the lookback, none now.
    let (sev, d) = detail(
        "flappy > 0",
        &[
            (count_query("flappy", now), vec![]),
            (count_query("flappy", lbw), vec![("", 3.0)]),
        ],
    );
    assert_eq!(sev, Severity::Info);
    assert!(d.contains("has none now"), "{d}");
}

#[test]
fn required_labels_apply_to_every_alerting_rule() {
    let policy = Policy {
        required_labels: vec![
            ("namespace".into(), Severity::Error),
            ("team".into(), Severity::Error),
        ],
        ..Policy::default()
    };
    let r = rule(
        "A",
        "up == 1",
        &[("namespace", "{{ $labels.namespace }}"), ("team", "core")],
        RB,
    );
    let answers = answer_all(&r, &["up"], &policy);
    let f = classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, &policy);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].check, Check::RequiredLabel);
    assert!(
        f[0].detail.contains("`namespace` label is templated"),
        "{}",
        f[0].detail
    );
}

#[test]
fn questions_stop_once_answered() {
    let r = rule("A", r#"x{a="b"} > 0"#, NS, RB);
    let policy = Policy::default();
    let answers = answer_all(&r, &["x"], &policy);
    assert!(questions(&analyse(&r.query), &answers, &policy).is_empty());
    // Now, the lookback, the name now, the one matcher, its values: five
    // small answers, no series list.
    assert_eq!(answers.len(), 5, "{answers:#?}");
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
    assert!(
        f[0].detail
            .contains("2 alerting rules loaded; nearest names: A, B"),
        "{}",
        f[0].detail
    );
    let many: Vec<String> = (0..500).map(|i| format!("Alert{i}")).collect();
    let mut loaded = many.clone();
    loaded.push("KubeDeploymentReplicasMismatch".into());
    let f = missing_drill_alerts([("d", "KubeDeploymentReplicaMismatch")], &loaded);
    assert!(
        f[0].detail
            .contains("nearest names: KubeDeploymentReplicasMismatch,"),
        "{}",
        f[0].detail
    );
    assert!(f[0].detail.len() < 400, "{}", f[0].detail);
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

#[test]
fn the_policy_says_what_is_required_and_how_badly() {
    let r = rule("A", r#"absent(up{job="c"})"#, &[("severity", "page")], None);
    let run_with = |policy: &Policy| -> Got {
        let answers = answer_all(&r, &["up"], policy);
        classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, policy)
            .into_iter()
            .map(|f| (f.severity, f.check, f.selector))
            .collect()
    };
    use Check::*;
    use Severity::*;
    // The defaults: runbook_url on every alert, namespace on absent() rules.
    assert_eq!(
        run_with(&Policy::default()),
        vec![(Error, AbsentLabel, None), (Error, RunbookUrl, None)]
    );
    // Another team's: summary required as a warning, runbook off, team on
    // absent() rules as a warning, namespace off.
    let policy = Policy {
        required_annotations: vec![("summary".into(), Warning)],
        absent_labels: vec![("team".into(), Warning)],
        ..Policy::default()
    };
    let got = run_with(&policy);
    assert_eq!(
        got,
        vec![
            (Warning, AbsentLabel, None),
            (Warning, RequiredAnnotation, None)
        ]
    );
    // A runbook_url that is there but odd stays a warning; when the
    // target makes it a warning, a missing one is a warning too.
    let policy = Policy {
        required_annotations: vec![("runbook_url".into(), Warning)],
        absent_labels: vec![],
        ..Policy::default()
    };
    assert_eq!(run_with(&policy), vec![(Warning, RunbookUrl, None)]);
    // Messages speak plainly: no internal ids.
    let policy = Policy::default();
    let answers = answer_all(&r, &["up"], &policy);
    for f in classify_rule(&ar(r.clone()), &analyse(&r.query), &answers, &policy) {
        assert!(!f.detail.contains("CC2"), "{}", f.detail);
        assert!(!f.detail.to_lowercase().contains("seed"), "{}", f.detail);
    }
}

#[test]
fn a_metric_with_no_series_needs_no_question_per_selector() {
    let policy = Policy::default();
    let ghost = analyse(r#"rate(ghost_total{a="b"}[5m]) > 0 or ghost_total offset 1d > 0"#);
    let up = analyse(r#"up{job="x"} > 0"#);
    let names = metric_names([&ghost, &up]);
    assert_eq!(names, ["ghost_total", "up"]);
    let qs = names_queries(&names, Window::Now);
    assert_eq!(
        qs,
        [r#"count by (__name__) ({__name__=~"ghost_total|up"})"#]
    );
    // Prometheus says: up has series now; ghost_total had none all along.
    let now: Answer = Ok(vec![(
        [("__name__".to_string(), "up".to_string())].into(),
        3.0,
    )]);
    let now = names_present(&now).unwrap();
    let answers = prefilled([&ghost, &up], &names, &now, Some(&[]), &policy);
    // Only the selector with an offset is still asked about itself; the
    // plain one is decided: its metric was never there.
    let left = questions(&ghost, &answers, &policy);
    assert!(left.iter().all(|q| q.contains("offset 1d")), "{left:?}");
    assert!(!left.is_empty());
    assert_eq!(
        questions(&up, &answers, &policy),
        [r#"count(up{job="x"})"#],
        "up has series: its selector is asked as before"
    );
    // An answer without names (a Prometheus that drops them) is not read.
    assert_eq!(names_present(&Ok(vec![(Default::default(), 1.0)])), None);
}

#[test]
fn no_alerting_rule_loaded_is_an_error_naming_the_fix() {
    assert_eq!(no_alerting_rules(3), None);
    let f = no_alerting_rules(0).expect("an empty Prometheus is a finding");
    assert_eq!((f.severity, f.check), (Severity::Error, Check::RuleHealth));
    assert!(f.detail.contains("rule_files"), "{}", f.detail);
    assert!(f.detail.contains("prometheus_url"), "{}", f.detail);
}
