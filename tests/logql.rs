//! LogQL criteria end to end: `firedrill accept` on a target with a
//! `loki_url`, against a Loki stand-in answering with Loki's own recorded
//! answers (`tests/common/loki.rs`, `tests/fixtures/loki/README.md`).
//!
//! Proves: the rendered LogQL reaches Loki at the window's end; the same
//! verdict policy as PromQL (a value past `pass_if` fails, no data fails,
//! NaN is an error); a syntax error is an error carrying Loki's message;
//! an unreachable Loki is verdict `error` (exit 3); the report shows the
//! query as LogQL with a Grafana Explore link on Loki; a logql criterion on
//! a target without `loki_url` is a spec error (exit 2).

use crate::common::loki::{self, LokiAnswer};
use crate::common::run::report_json;
use std::path::Path;
use std::process::Command;

const START: &str = "2026-11-23T10:00:00Z";
const END: &str = "2026-11-23T10:05:00Z";

fn write_config(dir: &Path, loki_url: Option<&str>) {
    let loki = loki_url
        .map(|u| format!("loki_url = \"{u}\"\nloki_datasource_uid = \"loki-aegis\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("firedrill.toml"),
        format!(
            r#"[targets.aegis-test]
namespace = "aegis"
nats_url = "nats://127.0.0.1:4222"
prometheus_url = "http://127.0.0.1:9"
grafana_url = "https://grafana.aegis.example"
{loki}"#
        ),
    )
    .unwrap();
}

fn write_criteria(dir: &Path, text: &str) {
    let acc = dir.join("acceptance");
    std::fs::create_dir_all(&acc).unwrap();
    // This platform takes no NATS sentinels: no probe specs.
    std::fs::create_dir_all(dir.join("probes")).unwrap();
    std::fs::write(acc.join("logs.toml"), text).unwrap();
}

/// Runs `firedrill accept` in `dir` over [START, END]; (exit code, stderr).
async fn accept(dir: &Path) -> (i32, String) {
    let dir = dir.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(&dir)
            .env("CI", "true")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .args([
                "--config",
                "firedrill.toml",
                "--acceptance-dir",
                "acceptance",
            ])
            .args([
                "--reports-dir",
                "reports",
                "accept",
                "--target",
                "aegis-test",
            ])
            .args(["--window-start", START, "--window-end", END])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn criterion<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no criterion {id} in {report}"))
}

const PASSING: &str = r#"
[[criterion]]
id = "LOG1"
title = "No gateway errors logged over the run"
kind = "logql"
query = 'sum(count_over_time({namespace="{{namespace}}", app="aegis-gateway"} |= "error" [{{window}}]))'
pass_if = "== 0"
on_empty = "pass"

[[criterion]]
id = "LOG2"
title = "Every agent logged under 5 denials per second"
kind = "logql"
query = 'sum by (agent) (rate({namespace="{{namespace}}"} |= "policy denied" [{{window}}]))'
pass_if = "< 5"
"#;

#[tokio::test]
async fn logql_criteria_pass_on_lokis_answers_with_explore_links() {
    let standin = loki::start(|q| {
        if q.contains("policy denied") {
            LokiAnswer::Vector(vec![
                (vec![("agent", "planner")], "0.2".into()),
                (vec![("agent", "coder")], "1.5".into()),
            ])
        } else {
            LokiAnswer::Fixture("query-empty.json")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&standin.url));
    write_criteria(dir.path(), PASSING);
    let (code, stderr) = accept(dir.path()).await;
    assert_eq!(code, 0, "{stderr}");

    let seen = standin.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].query,
        r#"sum(count_over_time({namespace="aegis", app="aegis-gateway"} |= "error" [300s]))"#
    );
    // Evaluated at the window's end, in a format Loki reads as a time.
    assert_eq!(seen[0].time, "2026-11-23T10:05:00.000000000Z");

    let report = report_json(&dir.path().join("reports"));
    let log1 = criterion(&report, "LOG1");
    assert_eq!(log1["verdict"], "pass");
    assert!(log1["reason"]
        .as_str()
        .unwrap()
        .contains("on_empty = \"pass\""));
    let log2 = criterion(&report, "LOG2");
    assert_eq!(log2["verdict"], "pass", "{log2}");
    assert_eq!(log2["series_total"], 2);
    assert_eq!(log2["language"], "logql");
    let explore = log2["query_url"].as_str().unwrap();
    assert!(
        explore.starts_with("https://grafana.aegis.example/explore?schemaVersion=1&panes="),
        "{explore}"
    );
    assert!(explore.contains("loki-aegis"), "{explore}");

    let run = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("```logql\nsum by (agent)"), "{md}");
    assert!(md.contains("This query in Grafana Explore on Loki"), "{md}");
}

#[tokio::test]
async fn the_promql_verdict_policy_holds_for_logql() {
    let standin = loki::start(|q| {
        if q.contains("nan") {
            LokiAnswer::Fixture("query-vector-nan.json")
        } else if q.contains("empty") {
            LokiAnswer::Fixture("query-empty.json")
        } else if q.contains("log_only") {
            LokiAnswer::Fixture("query-streams.json")
        } else {
            LokiAnswer::Fixture("query-vector.json")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&standin.url));
    write_criteria(
        dir.path(),
        r#"
[[criterion]]
id = "OVER"
title = "varlogs rates under 1"
kind = "logql"
query = 'sum by (filename, job) (rate({job="varlogs"}[{{window}}]))'
pass_if = "< 1"

[[criterion]]
id = "NAN"
title = "a NaN is never a pass"
kind = "logql"
query = 'sum(rate({job="nan"}[{{window}}]))'
pass_if = "< 1"

[[criterion]]
id = "EMPTY"
title = "no data fails by default"
kind = "logql"
query = 'sum(rate({job="empty"}[{{window}}]))'
pass_if = "< 1"

[[criterion]]
id = "LINES"
title = "a log query is not a number"
kind = "logql"
query = '{job="log_only"}'
pass_if = "< 1"
"#,
    );
    let (code, stderr) = accept(dir.path()).await;
    // A fail outranks an error in the exit code (1 > 3).
    assert_eq!(code, 1, "{stderr}");
    let report = report_json(&dir.path().join("reports"));
    let over = criterion(&report, "OVER");
    assert_eq!(over["verdict"], "fail");
    assert_eq!(over["series_failing"], 1);
    assert!(
        over["reason"]
            .as_str()
            .unwrap()
            .contains("/var/hostlog/syslog"),
        "{over}"
    );
    let nan = criterion(&report, "NAN");
    assert_eq!(nan["verdict"], "error");
    assert!(
        nan["reason"].as_str().unwrap().contains("non-finite"),
        "{nan}"
    );
    let empty = criterion(&report, "EMPTY");
    assert_eq!(empty["verdict"], "fail");
    assert!(empty["reason"].as_str().unwrap().starts_with("no data"));
    let lines = criterion(&report, "LINES");
    assert_eq!(lines["verdict"], "error");
    assert!(
        lines["reason"]
            .as_str()
            .unwrap()
            .contains("needs a metric query"),
        "{lines}"
    );
}

#[tokio::test]
async fn a_logql_syntax_error_is_an_error_carrying_lokis_message() {
    let standin = loki::start(|_| LokiAnswer::ParseError).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&standin.url));
    write_criteria(
        dir.path(),
        r#"
[[criterion]]
id = "BAD"
title = "an unknown function"
kind = "logql"
query = 'unk({ foo = "bar" }[5m])'
pass_if = "< 1"
"#,
    );
    let (code, stderr) = accept(dir.path()).await;
    assert_eq!(code, 3, "{stderr}");
    let report = report_json(&dir.path().join("reports"));
    let bad = criterion(&report, "BAD");
    assert_eq!(bad["verdict"], "error");
    let reason = bad["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "rejected the query (HTTP 400): parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn an_unreachable_loki_is_a_verdict_error_exit_3() {
    // A port nothing listens on: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&format!("http://{closed}")));
    write_criteria(dir.path(), PASSING);
    let (code, stderr) = accept(dir.path()).await;
    assert_eq!(code, 3, "{stderr}");
    let report = report_json(&dir.path().join("reports"));
    for id in ["LOG1", "LOG2"] {
        let c = criterion(&report, id);
        assert_eq!(c["verdict"], "error", "{c}");
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("Loki at http://{closed} is unreachable")),
            "{reason}"
        );
        assert!(reason.contains("loki_url"), "{reason}");
    }
}

#[tokio::test]
async fn a_logql_criterion_needs_a_loki_url_on_the_target() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None);
    write_criteria(dir.path(), PASSING);
    let (code, stderr) = accept(dir.path()).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("logs.toml"), "{stderr}");
    assert!(stderr.contains("criterion[0].kind"), "{stderr}");
    assert!(stderr.contains("has no loki_url"), "{stderr}");
}
