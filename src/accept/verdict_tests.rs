use super::*;
use crate::accept::SNAPSHOT_PENDING;
use crate::clients::prometheus::{decode, MatrixSeries, VectorSample};
use crate::spec::criteria::CmpOp;
use crate::spec::criteria::CriterionKind;
use crate::spec::SourceLoc;

fn criterion(pass_if: &str, on_empty: OnEmpty) -> Criterion {
    Criterion {
        id: "AC1".into(),
        title: "Cold-start p99 under 1500 s".into(),
        kind: CriterionKind::Promql {
            query_template: "q[{{window}}]".into(),
            pass_if: pass_if.parse().unwrap(),
            on_empty,
        },
        evidence: Evidence {
            dashboard: Some("fleet-overview".into()),
            panel: Some("Cold-start latency".into()),
            link_template: None,
        },
        regression: None,
        source: SourceLoc {
            file: "acceptance/phase5.toml".into(),
            line: 1,
        },
    }
}

fn fixture(name: &str) -> Result<QueryResult, PromError> {
    let body = crate::test_fixtures::bytes(&format!("prometheus/{name}"));
    let status = if name.contains("error") { 400 } else { 200 };
    decode("http://127.0.0.1:9090", status, &body)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn vector(samples: &[(&[(&str, &str)], &str)]) -> Result<QueryResult, PromError> {
    Ok(QueryResult::Vector(
        samples
            .iter()
            .map(|(l, v)| VectorSample {
                metric: labels(l),
                value: Sample(1795427689.1, v.to_string()),
            })
            .collect(),
    ))
}

fn one(value: &str) -> Result<QueryResult, PromError> {
    vector(&[(&[("agent_type", "copilot")], value)])
}

fn eval(pass_if: &str, result: Result<QueryResult, PromError>) -> CriterionResult {
    evaluate(&criterion(pass_if, OnEmpty::Fail), "q[60s]", result)
}

#[test]
fn every_comparator_passes_and_fails() {
    // (pass_if, value, expected)
    let cases: &[(&str, &str, Verdict)] = &[
        ("< 1500", "1499.9", Verdict::Pass),
        ("< 1500", "1500", Verdict::Fail),
        ("<= 1500", "1500", Verdict::Pass),
        ("<= 1500", "1500.001", Verdict::Fail),
        ("> 0", "0.5", Verdict::Pass),
        ("> 0", "0", Verdict::Fail),
        (">= 1", "1", Verdict::Pass),
        (">= 1", "0.999", Verdict::Fail),
        ("== 9", "9", Verdict::Pass),
        ("== 9", "9.5", Verdict::Fail),
        ("!= 0", "3", Verdict::Pass),
        ("!= 0", "0", Verdict::Fail),
        ("< 0", "-1e+00", Verdict::Pass),
    ];
    for (pass_if, value, want) in cases {
        let r = eval(pass_if, one(value));
        assert_eq!(r.verdict, *want, "{pass_if} on {value}: {}", r.reason);
        assert_eq!(r.series.len(), 1);
        assert_eq!(
            r.series[0].value, *value,
            "value kept as Prometheus wrote it"
        );
        assert_eq!(r.series[0].passed, *want == Verdict::Pass);
        assert_eq!(r.condition.as_deref(), Some(*pass_if));
        assert_eq!(r.query.as_deref(), Some("q[60s]"));
    }
    // Every operator appears above.
    for op in CmpOp::ALL {
        assert!(cases
            .iter()
            .any(|(p, ..)| p.split(' ').next() == Some(op.as_str())));
    }
}

#[test]
fn pass_and_fail_reasons_name_the_series() {
    let r = eval("< 1500", one("10"));
    assert_eq!(r.reason, "{agent_type=\"copilot\"} = 10 < 1500");
    let r = eval("< 1500", one("1700"));
    assert_eq!(
        r.reason,
        "1 of 1 series violate < 1500: {agent_type=\"copilot\"} = 1700"
    );
}

#[test]
fn empty_result_follows_on_empty_and_fails_by_default() {
    let cases = [
        (OnEmpty::Fail, Verdict::Fail),
        (OnEmpty::Error, Verdict::Error),
        (OnEmpty::Skip, Verdict::Skipped),
        (OnEmpty::Pass, Verdict::Pass),
    ];
    for (on_empty, want) in cases {
        let r = evaluate(
            &criterion("< 1500", on_empty),
            "q",
            fixture("query-empty.json"),
        );
        assert_eq!(r.verdict, want, "{on_empty}");
        assert!(r
            .reason
            .starts_with("no data: the query returned no series"));
        assert!(r.series.is_empty());
    }
    let r = evaluate(
        &criterion("< 1500", OnEmpty::default()),
        "q",
        fixture("query-empty.json"),
    );
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.reason, NO_DATA);
    assert!(r.reason.contains("the metric may not exist"));
    // Empty in every shape Prometheus can return it.
    for empty in [
        QueryResult::Vector(vec![]),
        QueryResult::Matrix(vec![]),
        QueryResult::Matrix(vec![MatrixSeries {
            metric: labels(&[("a", "b")]),
            values: vec![],
        }]),
    ] {
        assert_eq!(eval("< 1", Ok(empty)).verdict, Verdict::Fail);
    }
}

#[test]
fn non_finite_values_are_errors_naming_the_series_never_passes() {
    // Conditions that a naive comparison would let through.
    let cases: &[(&str, &str)] = &[
        ("NaN", "!= 0"),
        ("NaN", "< 1500"),
        ("+Inf", "> 0"),
        ("+Inf", "!= 0"),
        ("-Inf", "< 1500"),
        ("-Inf", "<= 0"),
    ];
    for (value, pass_if) in cases {
        let r = eval(pass_if, one(value));
        assert_eq!(r.verdict, Verdict::Error, "{value} {pass_if}");
        assert!(
            r.reason
                .contains(&format!("{{agent_type=\"copilot\"}} = {value}")),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("never a pass"));
        assert_eq!(r.series[0].value, *value);
        assert!(!r.series[0].passed);
    }
    // One NaN among passing series still makes the criterion an error.
    let r = eval(
        "< 1500",
        vector(&[
            (&[("agent_type", "a")], "1"),
            (&[("agent_type", "b")], "NaN"),
        ]),
    );
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r
        .reason
        .starts_with("1 of 2 series returned a non-finite value"));
    assert!(r.reason.contains("{agent_type=\"b\"} = NaN"));
    assert!(!r.reason.contains("agent_type=\"a\""));
}

#[test]
fn nan_fixture_from_histogram_quantile_is_an_error() {
    let r = eval("< 1500", fixture("query-histogram-quantile-nan.json"));
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r.reason.contains("{} = NaN"), "{}", r.reason);
    assert_eq!(r.series[0].value, "NaN");
    assert!(r.series[0].labels.is_empty());
}

#[test]
fn histogram_quantile_fixture_passes_ac1() {
    let r = eval("< 1500", fixture("query-histogram-quantile.json"));
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(r.series[0].labels["agent_type"], "copilot");
    assert_eq!(r.series[0].value, "10");
}

#[test]
fn scalar_is_one_unlabelled_series() {
    let r = eval("== 9", fixture("query-scalar.json"));
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(r.series.len(), 1);
    assert!(r.series[0].labels.is_empty());
    assert_eq!(r.reason, "9 == 9");
    let r = eval("< 9", fixture("query-scalar.json"));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.reason, "1 of 1 series violate < 9: {} = 9");
}

#[test]
fn matrix_uses_the_last_sample_of_each_series() {
    let r = eval("== 9", fixture("query-range-matrix.json"));
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(
        format_labels(&r.series[0].labels),
        "demo_cold_start_seconds_count{agent_type=\"copilot\", instance=\"127.0.0.1:19101\", job=\"fleet\"}"
    );
    let m = QueryResult::Matrix(vec![
        MatrixSeries {
            metric: labels(&[("s", "recovered")]),
            values: vec![Sample(1.0, "100".into()), Sample(2.0, "1".into())],
        },
        MatrixSeries {
            metric: labels(&[("s", "degraded")]),
            values: vec![Sample(1.0, "1".into()), Sample(2.0, "100".into())],
        },
    ]);
    let r = eval("< 5", Ok(m));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(
        r.reason,
        "1 of 2 series violate < 5: {s=\"degraded\"} = 100"
    );
    // Sorted by labels: "degraded" < "recovered".
    assert_eq!(
        r.series.iter().map(|s| s.passed).collect::<Vec<_>>(),
        [false, true]
    );
}

#[test]
fn multi_series_one_bad_fails_listing_only_it() {
    let r = eval(
        "< 1500",
        vector(&[
            (&[("agent_type", "copilot")], "120"),
            (&[("agent_type", "claude")], "1800.5"),
            (&[("agent_type", "codex")], "3"),
        ]),
    );
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(
        r.reason,
        "1 of 3 series violate < 1500: {agent_type=\"claude\"} = 1800.5"
    );
    // Worst first: the failing one, then the passing ones closest to 1500.
    let by_type: Vec<(&str, &str, bool)> = r
        .series
        .iter()
        .map(|s| (s.labels["agent_type"].as_str(), s.value.as_str(), s.passed))
        .collect();
    assert_eq!(
        by_type,
        [
            ("claude", "1800.5", false),
            ("copilot", "120", true),
            ("codex", "3", true)
        ]
    );
    assert_eq!((r.series_total, r.series_failing), (3, 1));
    let r = eval(
        "< 1500",
        vector(&[
            (&[("agent_type", "copilot")], "120"),
            (&[("agent_type", "codex")], "3"),
        ]),
    );
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(r.reason, "all 2 series < 1500");
}

#[test]
fn long_fail_lists_are_capped_in_the_reason_but_not_the_series() {
    let values: Vec<String> = (0..13).map(|i| format!("w{i:02}")).collect();
    let result = Ok(QueryResult::Vector(
        values
            .iter()
            .map(|w| VectorSample {
                metric: labels(&[("pod", w)]),
                value: Sample(1.0, "2".into()),
            })
            .collect(),
    ));
    let r = eval("< 1", result);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reason.starts_with("13 of 13 series violate < 1"));
    assert!(
        r.reason.ends_with("{pod=\"w09\"} = 2; and 3 more"),
        "{}",
        r.reason
    );
    assert_eq!(r.series.len(), 13);
}

#[test]
fn prometheus_errors_are_errors_with_its_message() {
    let r = eval("< 1500", fixture("query-error-bad-data.json"));
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!(
        r.reason,
        "Prometheus at http://127.0.0.1:9090 answered bad_data: invalid parameter \"query\": 1:17: parse error: unclosed left parenthesis"
    );
    let errors = [
        PromError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        },
        PromError::Http {
            url: "http://p".into(),
            status: 502,
            body: "<html>bad gateway</html>".into(),
        },
        PromError::TooLarge {
            url: "http://p".into(),
            endpoint: "GET /api/v1/query".into(),
            detail: crate::clients::http::TooLarge {
                limit: 1 << 20,
                declared: None,
            },
        },
    ];
    for e in errors {
        let want = e.to_string();
        let r = eval("< 1500", Err(e));
        assert_eq!(r.verdict, Verdict::Error);
        assert_eq!(r.reason, want);
        assert!(r.series.is_empty());
    }
}

#[test]
fn string_result_is_an_error() {
    let r = eval("< 1", Ok(QueryResult::String(Sample(1.0, "hello".into()))));
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r.reason.contains("\"hello\""));
}

#[test]
fn snapshot_criterion_is_pending_never_pass() {
    let mut c = criterion("< 1", OnEmpty::Pass);
    c.kind = CriterionKind::Snapshot;
    // Even with a result that would pass a PromQL criterion.
    let r = evaluate(&c, "", one("0"));
    assert_eq!(r.verdict, Verdict::Pending);
    assert_eq!(r.reason, SNAPSHOT_PENDING);
    assert_eq!(r.query, None);
    assert_eq!(r.condition, None);
    assert_eq!(render_query(&c, &Vars::new()), Ok(None));
}

#[test]
fn a_missing_run_variable_is_an_error_not_a_silent_empty_match() {
    let mut c = criterion("< 60", OnEmpty::Fail);
    c.kind = CriterionKind::Promql {
        query_template: "max(x{task_id=\"{{sentinel.task_id}}\"})".into(),
        pass_if: "< 60".parse().unwrap(),
        on_empty: OnEmpty::Fail,
    };
    let missing = render_query(&c, &Vars::new()).unwrap_err();
    assert_eq!(
        missing,
        QueryRenderError::Missing("sentinel.task_id".to_string())
    );
    let r = missing_variable(&c, "sentinel.task_id");
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r.reason.contains("{{sentinel.task_id}} has no value"));
    assert!(r.reason.contains("published no sentinel"));
    assert_eq!(r.condition.as_deref(), Some("< 60"));
}

#[test]
fn an_injected_task_id_stays_one_label_value() {
    let mut c = criterion("< 60", OnEmpty::Fail);
    c.kind = CriterionKind::Promql {
        query_template: "max(x{task_id=\"{{sentinel.task_id}}\"})".into(),
        pass_if: "< 60".parse().unwrap(),
        on_empty: OnEmpty::Fail,
    };
    let mut vars = Vars::new();
    vars.insert("sentinel.task_id".into(), "x\"}) or vector(1) #".into());
    assert_eq!(
        render_query(&c, &vars),
        Ok(Some(
            r#"max(x{task_id="x\"}) or vector(1) #"})"#.to_string()
        ))
    );

    // A value the query places outside quotes cannot be escaped: refused,
    // and the criterion is an error, not a pass.
    c.kind = CriterionKind::Promql {
        query_template: "max(x) > {{threshold}}".into(),
        pass_if: "< 60".parse().unwrap(),
        on_empty: OnEmpty::Fail,
    };
    vars.insert("threshold".into(), "0 or vector(1)".into());
    let Err(QueryRenderError::Unsafe { name, reason }) = render_query(&c, &vars) else {
        panic!("rendered")
    };
    assert_eq!(name, "threshold");
    let r = unsafe_variable(&c, &name, &reason);
    assert_eq!(r.verdict, Verdict::Error);
    assert!(
        r.reason
            .starts_with("the query was not run: the value of {{threshold}} cannot be placed"),
        "{}",
        r.reason
    );
    assert_eq!(r.query, None);
}

#[test]
fn evidence_links_label_the_panel_and_render_the_link() {
    let ev = Evidence {
        dashboard: Some("fleet-overview".into()),
        panel: Some("Task-to-artifact latency".into()),
        link_template: Some("{{trace_url}}".into()),
    };
    let mut vars = Vars::new();
    vars.insert("trace_url".into(), "https://tempo.example/trace/abc".into());
    let links = evidence_links(
        &ev,
        &vars,
        None,
        Some(("https://grafana.example/", 1000, 2000)),
    );
    assert_eq!(
        links,
        [
            Link {
                label: "Grafana dashboard fleet-overview, panel \"Task-to-artifact latency\""
                    .into(),
                url: Some("https://grafana.example/d/fleet-overview?from=1000&to=2000".into()),
            },
            Link {
                label: "Trace of the sentinel task".into(),
                url: Some("https://tempo.example/trace/abc".into()),
            },
        ]
    );
    // No trace URL (the target has no trace_url_template): the link is left out.
    vars.insert("trace_url".into(), String::new());
    let links = evidence_links(&ev, &vars, None, None);
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].url, None);
    // The target's dashboard is the fallback.
    let bare = Evidence::default();
    let links = evidence_links(&bare, &vars, Some("uid-1"), None);
    assert_eq!(links[0].label, "Grafana dashboard uid-1");
    assert!(evidence_links(&bare, &vars, None, None).is_empty());
}

#[test]
fn label_formatting() {
    assert_eq!(format_labels(&Labels::new()), "{}");
    assert_eq!(format_labels(&labels(&[("__name__", "up")])), "up");
    assert_eq!(
        format_labels(&labels(&[("__name__", "up"), ("job", "a\"b")])),
        "up{job=\"a\\\"b\"}"
    );
}

/// `n` series `{pod="p00000"}` .. with the values `value(i)`.
fn pods(n: usize, value: impl Fn(usize) -> String) -> Result<QueryResult, PromError> {
    Ok(QueryResult::Vector(
        (0..n)
            .map(|i| VectorSample {
                metric: labels(&[("pod", &format!("p{i:05}"))]),
                value: Sample(1.0, value(i)),
            })
            .collect(),
    ))
}

#[test]
fn thousands_of_series_are_all_judged_but_only_the_worst_listed() {
    // 5000 series under 1000, except 17 over 1500 (p00007 the furthest).
    let failing: Vec<usize> = (0..5000).filter(|i| i % 300 == 7).collect();
    assert_eq!(failing.len(), 17);
    let r = eval(
        "< 1500",
        pods(5000, |i| match i {
            7 => "99999".into(),
            i if i % 300 == 7 => format!("{}", 1500 + i),
            i => format!("{}", i % 1000),
        }),
    );
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!((r.series_total, r.series_failing), (5000, 17));
    assert_eq!(r.series.len(), SERIES_LISTED);
    assert_eq!(r.series_unlisted(), 5000 - SERIES_LISTED);
    assert!(
        r.reason.starts_with(
            "17 of 5000 series violate < 1500: {pod=\"p00007\"} = 99999; {pod=\"p04807\"} = 6307;"
        ),
        "{}",
        r.reason
    );
    assert!(r.reason.ends_with("and 7 more"), "{}", r.reason);
    // Every failing series is listed, furthest past the condition first,
    // then the passing ones closest to failing (999 = 1500 - 501).
    let listed: Vec<(&str, &str, bool)> = r
        .series
        .iter()
        .map(|s| (s.labels["pod"].as_str(), s.value.as_str(), s.passed))
        .collect();
    assert_eq!(listed[0], ("p00007", "99999", false));
    assert_eq!(listed[1], ("p04807", "6307", false));
    assert_eq!(listed[16], ("p00307", "1807", false));
    assert!(listed[..17].iter().all(|s| !s.2));
    assert_eq!(listed[17], ("p00999", "999", true));
    assert_eq!(listed[18], ("p01999", "999", true));
}

#[test]
fn worst_first_puts_non_finite_first_and_ranks_by_the_condition() {
    let r = eval(
        "> 10",
        pods(6, |i| ["50", "NaN", "3", "11", "-7", "+Inf"][i].to_string()),
    );
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!((r.series_total, r.series_failing), (6, 4));
    let order: Vec<&str> = r.series.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(order, ["NaN", "+Inf", "-7", "3", "11", "50"]);

    let r = eval("== 5", pods(4, |i| ["5", "9", "5", "-1"][i].to_string()));
    let order: Vec<&str> = r.series.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(order, ["-1", "9", "5", "5"]);
    assert_eq!(r.series_failing, 2);

    let r = eval("!= 5", pods(3, |i| ["8", "5", "5.5"][i].to_string()));
    let order: Vec<&str> = r.series.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(order, ["5", "5.5", "8"]);
}

#[test]
fn results_without_series_count_none() {
    for r in [
        eval("< 1", fixture("query-empty.json")),
        eval("< 1", fixture("query-error-bad-data.json")),
    ] {
        assert_eq!((r.series_total, r.series_failing), (0, 0));
        assert!(r.series.is_empty());
    }
}
