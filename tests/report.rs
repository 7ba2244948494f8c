//! Renderers over one fixed `Report`: markdown, JSON and JUnit snapshots
//! (a changed render fails until its `.snap` is reviewed and updated), plus
//! structural checks (tables keep their columns, Mermaid stays parseable,
//! JUnit is XML) and the GitHub step summary and outputs files.

use chrono::{DateTime, Duration, Utc};
use firedrill::accept::verdict::{evaluate, evidence_links};
use firedrill::clients::prometheus::{decode, graph_url, QueryResult};
use firedrill::model::probe::{LatencyBucket, LatencySummary};
use firedrill::probe::{ProbeOutcome, SentinelRef};
use firedrill::report::github::{self, GithubFiles};
use firedrill::report::model::{
    DrillResult, DrillTrial, Link, ManualRecovery, ProbeResult, RecoveryStep, Report, RunWindow,
    SnapshotSummary, TargetInfo, TimelineEvent, ToolInfo, SCHEMA_VERSION,
};
use firedrill::report::{console, json, junit, markdown, write, Verdict};
use firedrill::spec::criteria::{Criterion, CriterionKind, Evidence, OnEmpty};
use firedrill::spec::{SourceLoc, Vars};

const PROM: &str = "http://127.0.0.1:39090";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window() -> RunWindow {
    RunWindow {
        start: t("2026-11-23T09:54:00Z"),
        end: t("2026-11-23T09:56:30.250Z"),
    }
}

fn fixture(name: &str) -> Result<QueryResult, firedrill::clients::prometheus::PromError> {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let status = if name.contains("error") { 400 } else { 200 };
    decode(PROM, status, &body)
}

fn promql(id: &str, title: &str, query: &str, pass_if: &str, evidence: Evidence) -> Criterion {
    Criterion {
        id: id.into(),
        title: title.into(),
        kind: CriterionKind::Promql {
            query_template: query.into(),
            pass_if: pass_if.parse().unwrap(),
            on_empty: OnEmpty::Fail,
        },
        evidence,
        regression: None,
        source: SourceLoc {
            file: "acceptance/phase5.toml".into(),
            line: 1,
        },
    }
}

/// Criteria decided by the real verdict logic from captured payloads:
/// pass, fail, error (Prometheus' bad_data), error (NaN), pending (snapshot).
fn criteria() -> Vec<firedrill::report::model::CriterionResult> {
    let w = window();
    let mut vars = Vars::new();
    vars.insert(
        "trace_url".into(),
        "http://127.0.0.1:3200/trace/4bf92f3577b34da6a3ce929d0e0e4736".into(),
    );
    let cold = Evidence {
        dashboard: Some("fleet-overview".into()),
        panel: Some("Cold-start latency".into()),
        link_template: None,
    };
    let task = Evidence {
        dashboard: Some("fleet-overview".into()),
        panel: Some("Task-to-artifact latency".into()),
        link_template: Some("{{trace_url}}".into()),
    };
    let ac1 = promql(
        "AC1",
        "Deploy in 25 minutes: cold-start p99 under 1500 s over the run window, per agent type",
        "",
        "< 1500",
        cold.clone(),
    );
    let ac2 = promql(
        "AC2",
        "E2E task asserted: the sentinel task's duration was recorded and is under 60 s",
        "",
        "< 5",
        task,
    );
    let ac3 = promql(
        "AC3",
        "Queue depth | per consumer",
        "",
        "< 100",
        Evidence::default(),
    );
    let ac4 = promql("AC4", "Cold-start p50 has data", "", "> 0", cold);
    let ac5 = Criterion {
        id: "AC5".into(),
        title: "workflow_dispatch passes: a Grafana snapshot of the fleet overview, scoped to the run window, was produced".into(),
        kind: CriterionKind::Snapshot,
        evidence: Evidence {
            dashboard: Some("fleet-overview".into()),
            ..Evidence::default()
        },
        regression: None,
        source: SourceLoc { file: "acceptance/phase5.toml".into(), line: 30 },
    };
    let runs = [
        (
            &ac1,
            "histogram_quantile(0.99, sum by (le, agent_type) (increase(daedalus_cold_start_seconds_bucket[151s])))",
            fixture("query-histogram-quantile.json"),
        ),
        (
            &ac2,
            "max(daedalus_task_duration_seconds_sum{task_id=\"sentinel-20261123-0001\"})",
            fixture("query-scalar.json"),
        ),
        (
            &ac3,
            "max by (consumer_name) (nats_consumer_num_pending{stream=\"AGENT_TASKS\"}",
            fixture("query-error-bad-data.json"),
        ),
        (
            &ac4,
            "histogram_quantile(0.5, sum by (le) (increase(daedalus_cold_start_seconds_bucket[151s])))",
            fixture("query-histogram-quantile-nan.json"),
        ),
    ];
    let mut out: Vec<_> = runs
        .into_iter()
        .map(|(c, q, answer)| {
            let mut r = evaluate(c, q, answer);
            r.query_url = Some(graph_url(
                PROM,
                q,
                w.end,
                std::time::Duration::from_secs(151),
            ));
            r.evidence = evidence_links(&c.evidence, &vars, None, None);
            r
        })
        .collect();
    let mut pending = evaluate(&ac5, "", Ok(QueryResult::Vector(vec![])));
    pending.evidence = evidence_links(&ac5.evidence, &vars, None, None);
    out.push(pending);
    out
}

fn probe() -> ProbeResult {
    let ms = |v: f64| v;
    ProbeResult::from_outcome(ProbeOutcome {
        name: "sentinel".into(),
        subject: "agent.tasks.copilot".into(),
        agent_type: "copilot".into(),
        started_at: t("2026-11-23T09:54:00.100Z"),
        finished_at: t("2026-11-23T09:54:04.600Z"),
        sent: 100,
        acked: 100,
        completed: 100,
        timed_out: vec![],
        duplicated: vec![],
        trace_mismatches: vec![],
        publish_failures: vec![],
        latency: LatencySummary {
            count: 100,
            min_ms: ms(3.2),
            p50_ms: ms(12.4),
            p90_ms: ms(25.1),
            p99_ms: ms(61.9),
            max_ms: ms(70.3),
            mean_ms: ms(15.0),
            buckets: [
                (4.0, 2),
                (8.0, 18),
                (16.0, 45),
                (32.0, 30),
                (64.0, 4),
                (128.0, 1),
            ]
            .into_iter()
            .map(|(le_ms, count)| LatencyBucket { le_ms, count })
            .collect(),
            histogram: None,
        },
        throughput_per_s: 22.2,
        sentinel: Some(SentinelRef {
            task_id: "sentinel-20261123-0001".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        }),
        tasks: vec![],
    })
}

fn trial(n: u32, inject: DateTime<Utc>, fire_after_ms: i64) -> DrillTrial {
    let at = |ms: i64| inject + Duration::milliseconds(ms);
    let ev = |event: &str, ms: i64, source: &str| TimelineEvent {
        event: event.into(),
        at: at(ms),
        source: source.into(),
    };
    let timeline = vec![
        ev("inject_started", -120, "firedrill clock"),
        ev("inject_done", 0, "firedrill clock"),
        ev("pending", 695, "Prometheus activeAt"),
        ev("firing", fire_after_ms, "Alertmanager startsAt"),
        ev("in_alertmanager", fire_after_ms, "Alertmanager startsAt"),
        ev("notified", fire_after_ms + 1_240, "webhook receiver"),
        ev("revert_done", fire_after_ms + 3_100, "firedrill clock"),
        ev("resolved", fire_after_ms + 3_951, "Alertmanager endsAt"),
    ];
    DrillTrial {
        trial: n,
        verdict: Verdict::Pass,
        reason: format!(
            "fired {:.3} s after inject, within the 3m deadline; labels match",
            fire_after_ms as f64 / 1000.0
        ),
        timeline,
        time_to_pending_ms: Some(695),
        time_to_fire_ms: Some(fire_after_ms),
        time_to_notify_ms: Some(fire_after_ms + 1_240),
        time_to_resolve_ms: Some(851),
        alert_labels: [
            ("alertname", "WorkerImagePullBackOff"),
            ("namespace", "daedalus"),
            ("pod", "daedalus-worker-copilot-1"),
            ("severity", "page"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        receivers: vec!["firedrill".to_string()],
        reverted: true,
        revert_error: None,
        notes: Vec::new(),
    }
}

fn drill() -> DrillResult {
    DrillResult {
        name: "worker-image-tag".into(),
        alert: "WorkerImagePullBackOff".into(),
        fault: "fleet: image-pull-backoff on copilot".into(),
        deadline_ms: 180_000,
        verdict: Verdict::Pass,
        reason: "2 of 2 trials fired within 3m".into(),
        trials: vec![
            trial(1, t("2026-11-23T09:54:49.156Z"), 5_695),
            trial(2, t("2026-11-23T09:55:20.000Z"), 6_020),
        ],
        alert_urls: vec![
            Link {
                label: "Prometheus alerts".into(),
                url: Some(format!("{PROM}/alerts")),
            },
            Link {
                label: "Alertmanager alerts for WorkerImagePullBackOff".into(),
                url: Some(
                    "http://127.0.0.1:39093/#/alerts?filter=%7Balertname%3D%22WorkerImagePullBackOff%22%7D"
                        .into(),
                ),
            },
        ],
        manual_recovery: None,
        time_to_fire: None,
        time_to_fire_histogram: None,
        notes: Vec::new(),
        journal: None,
    }
}

/// The fixed report every snapshot is taken of.
fn report() -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        run_id: "20261123T095400Z-3f9a".into(),
        command: "smoke".into(),
        tool: ToolInfo {
            name: "firedrill".into(),
            version: "0.0.0-test".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_ref: Some("main".into()),
            commit_unknown_because: None,
        },
        target: TargetInfo {
            name: "local".into(),
            description: "Local real stack | nats-server, prometheus, alertmanager".into(),
            kind: "local".into(),
            namespace: "daedalus".into(),
            nats_url: "nats://127.0.0.1:34222".into(),
            prometheus_url: Some(PROM.into()),
            alertmanager_url: Some("http://127.0.0.1:39093".into()),
            grafana_url: None,
        },
        window: window(),
        verdict: Verdict::Pass,
        probes: vec![probe()],
        criteria: criteria(),
        drills: vec![drill()],
        errors: vec![],
        interrupted: false,
        snapshot: None,
        criteria_window: None,
        validation: vec![],
        routes: Vec::new(),
        trace_audit: None,
        coverage: None,
        inputs: Vec::new(),
        baseline: None,
        drill_groups: Vec::new(),
    };
    r.verdict = r.compute_verdict();
    r
}

#[test]
fn fixed_report_has_every_verdict() {
    let r = report();
    let verdicts: Vec<Verdict> = r.criteria.iter().map(|c| c.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Error,
            Verdict::Error,
            Verdict::Pending
        ]
    );
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("report_md", markdown::render(&report()));
}

#[test]
fn json_snapshot_and_round_trip() {
    let r = report();
    let text = json::render(&r);
    insta::assert_snapshot!("report_json", text);
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    // An older report without the `snapshot` key still reads.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("snapshot");
    let old: Report = serde_json::from_value(v).unwrap();
    assert_eq!(old.snapshot, None);
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!("junit_xml", junit::render(&report()));
}

/// Splits a markdown table row on unescaped pipes.
fn cells(row: &str) -> usize {
    let mut n = 0;
    let mut prev = ' ';
    for c in row.chars() {
        if c == '|' && prev != '\\' {
            n += 1;
        }
        prev = c;
    }
    n
}

#[test]
fn markdown_tables_keep_their_columns_and_mermaid_stays_valid() {
    let md = markdown::render(&report());
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut tables = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') {
            let want = cells(lines[i]);
            tables += 1;
            while i < lines.len() && lines[i].starts_with('|') {
                assert_eq!(cells(lines[i]), want, "row {}: {}", i + 1, lines[i]);
                i += 1;
            }
        }
        i += 1;
    }
    assert!(tables >= 8, "{tables} tables");

    // Every Mermaid block is closed; gantt task names carry no ':' '#' ';'.
    let mut in_gantt = false;
    let mut gantts = 0;
    for line in md.lines() {
        match line {
            "```mermaid" => {}
            "gantt" => {
                in_gantt = true;
                gantts += 1;
            }
            "```" => in_gantt = false,
            l if in_gantt && l.trim_start().starts_with("section ") => {}
            l if in_gantt && l.contains(" :t") => {
                let (name, spec) = l.split_once(" :").unwrap();
                assert!(!name.contains([':', '#', ';']), "{l}");
                let parts: Vec<&str> = spec.split(", ").collect();
                assert_eq!(parts.len(), 3, "{l}");
                let (a, b): (i64, i64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
                assert!(b >= a, "{l}");
            }
            _ => {}
        }
    }
    assert_eq!(gantts, 1);
    assert_eq!(md.matches("```mermaid").count(), 2, "latency chart + gantt");
    assert!(md.contains("    dateFormat x\n"));
    // No raw HTML sneaks in from values (an HTTP error body, for instance).
    assert!(!md.contains("<html"));
}

#[test]
fn markdown_shows_the_evidence_a_reviewer_needs() {
    let md = markdown::render(&report());
    for needle in [
        "| Target | **local** (local): Local real stack \\| nats-server",
        "| Commit | `0123456789abcdef0123456789abcdef01234567` (`main`) |",
        "| Tool | firedrill 0.0.0-test |",
        "```promql\nhistogram_quantile(0.99, sum by (le, agent_type) (increase(daedalus_cold_start_seconds_bucket[151s])))\n```",
        "| `{agent_type=\"copilot\"}` | `10` | ✅ |",
        "| `{}` | `9` | ❌ |",
        "| `{}` | `NaN` | ⚠️ not a finite number |",
        "[This query in Prometheus](http://127.0.0.1:39090/graph?g0.expr=",
        "Evidence: [Trace of the sentinel task](http://127.0.0.1:3200/trace/4bf92f3577b34da6a3ce929d0e0e4736)",
        "Evidence: Grafana dashboard fleet-overview, panel \"Cold-start latency\"",
        "unclosed left parenthesis",
        "the Grafana snapshot step has not run yet",
        "| Time to fire, min / median / max | 5.695\u{a0}s / 5.857\u{a0}s / 6.020\u{a0}s (2 of 2 trials fired) |",
        "| 1 | ✅ pass | 0.695\u{a0}s | 5.695\u{a0}s | 6.935\u{a0}s | 0.851\u{a0}s | yes |",
        "[Prometheus alerts](http://127.0.0.1:39090/alerts)",
        "First sentinel: task `sentinel-20261123-0001`",
        "xychart-beta",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    assert!(!md.contains("MANUAL RECOVERY"));
}

#[test]
fn manual_recovery_is_loud_in_markdown_summary_and_junit() {
    let mut r = report();
    let d = &mut r.drills[0];
    d.verdict = Verdict::Error;
    d.trials[1].verdict = Verdict::Error;
    d.trials[1].reverted = false;
    d.trials[1].revert_error = Some("patch refused: 409 Conflict".into());
    d.manual_recovery = Some(ManualRecovery {
        summary: "The worker image is still `broken:tag`.".into(),
        steps: vec![RecoveryStep {
            label: "Retry the revert".into(),
            command: "firedrill recover --run 20261123T095400Z-3f9a".into(),
        }],
    });
    r.verdict = r.compute_verdict();
    let md = markdown::render(&r);
    let block = "> [!CAUTION]\n> **MANUAL RECOVERY NEEDED: drill `worker-image-tag` could not revert its fault (`fleet: image-pull-backoff on copilot`). The fault may still be live.**\n>\n> The worker image is still `broken:tag`.\n>\n> Retry the revert:\n>\n> ```sh\n> firedrill recover --run 20261123T095400Z-3f9a\n> ```\n";
    // At the top (before the verdicts) and in the drill's own section.
    assert_eq!(md.matches(block).count(), 2, "{md}");
    assert!(md.find(block).unwrap() < md.find("## Verdicts").unwrap());
    assert!(markdown::render_summary(&r).contains(block));
    assert!(md.contains("| 2 | ⚠️ error |"));
    assert!(md.contains("❌ patch refused: 409 Conflict"));
    let xml = junit::render(&r);
    assert!(xml.contains("MANUAL RECOVERY NEEDED: The worker image"));
}

/// The text of every fenced or indented code block, as a CommonMark
/// renderer (GitHub's among them) would show it.
fn code_blocks(md: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for ev in Parser::new(md) {
        match ev {
            Event::Start(Tag::CodeBlock(_)) => cur = Some(String::new()),
            Event::Text(t) => {
                if let Some(c) = cur.as_mut() {
                    c.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => out.extend(cur.take()),
            _ => {}
        }
    }
    out
}

#[test]
fn recovery_commands_render_exactly_as_journaled() {
    // Shell quoting with '\'' and backslashes, a backtick run, a second line:
    // what a person copies from GitHub must be the journaled command.
    let commands = [
        r#"sh -c 'rm -f "$FIREDRILL_TEST_FAULT"; echo it'\''s off'"#.to_string(),
        "kubectl -n daedalus patch scaledjob daedalus-worker --type json -p '[{\"op\":\"replace\",\"path\":\"/spec/jobTargetRef/template/spec/containers/0/image\",\"value\":\"reg\\\\io/worker:1.2\"}]'".to_string(),
        "echo ```fenced``` \\\n  && printf '%s\\n' done".to_string(),
    ];
    let mut r = report();
    r.drills[0].manual_recovery = Some(ManualRecovery {
        summary: "A revert failed, so a fault may still be live.".into(),
        steps: commands
            .iter()
            .enumerate()
            .map(|(i, c)| RecoveryStep {
                label: format!("step {i}"),
                command: c.clone(),
            })
            .collect(),
    });
    let md = markdown::render(&r);
    let blocks = code_blocks(&md);
    for c in &commands {
        // Once at the top, once in the drill's section.
        let n = blocks
            .iter()
            .filter(|b| b.trim_end_matches('\n') == c)
            .count();
        assert_eq!(
            n, 2,
            "{c:?} not rendered verbatim; code blocks: {blocks:#?}"
        );
    }
}

/// Parses the whole document; returns (element name, attributes) of every
/// start or empty element.
fn xml_elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("junit.xml is well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("valid attribute");
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                out.push((name, attrs));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn junit_is_valid_xml_with_one_case_per_check() {
    let xml = junit::render(&report());
    let elements = xml_elements(&xml);
    let attr = |attrs: &Vec<(String, String)>, k: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let suites: Vec<(String, String)> = elements
        .iter()
        .filter(|(n, _)| n == "testsuite")
        .map(|(_, a)| (attr(a, "name"), attr(a, "tests")))
        .collect();
    assert_eq!(
        suites,
        [
            ("probes".to_string(), "1".to_string()),
            ("criteria".to_string(), "5".to_string()),
            ("drills".to_string(), "2".to_string()),
        ]
    );
    let count = |name: &str| elements.iter().filter(|(n, _)| n == name).count();
    assert_eq!(count("testcase"), 8);
    assert_eq!(count("failure"), 1, "AC2");
    assert_eq!(count("error"), 2, "AC3 bad_data, AC4 NaN");
    assert_eq!(count("skipped"), 1, "AC5 pending");
    let failure = elements.iter().find(|(n, _)| n == "failure").unwrap();
    assert_eq!(
        attr(&failure.1, "message"),
        "fail: 1 of 1 series violate < 5: {} = 9"
    );
    let trial = elements
        .iter()
        .find(|(n, a)| n == "testcase" && attr(a, "name") == "worker-image-tag trial 1")
        .unwrap();
    assert_eq!(attr(&trial.1, "time"), "9.766");
    assert_eq!(
        attr(&trial.1, "classname"),
        "firedrill.drills.worker-image-tag"
    );
}

#[test]
fn write_all_writes_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports").join("20261123T095400Z-3f9a");
    let r = report();
    let written = write::write_all(&r, &out).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.json", "report.md", "junit.xml"]);
    assert_eq!(
        std::fs::read_to_string(out.join("junit.xml")).unwrap(),
        junit::render(&r)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        markdown::render(&r)
    );
}

#[test]
fn snapshot_section_lists_panels_by_status_and_every_variable() {
    use firedrill::model::snapshot::{PanelData, VariableChoice};
    let mut r = report();
    let panel = |title: &str, queries, failed, series| PanelData {
        title: title.into(),
        queries,
        failed,
        series,
    };
    let var = |name: &str, value: &str, source: &str, note: Option<&str>| VariableChoice {
        name: name.into(),
        value: value.into(),
        source: source.into(),
        note: note.map(str::to_string),
    };
    r.snapshot = Some(SnapshotSummary {
        url: "https://grafana.example/dashboard/snapshot/AbC123xyz".into(),
        dashboard_uid: "prometheus2".into(),
        verified: true,
        panels: 3,
        series: 4,
        notes: vec![
            "panel \"Broken\" query A failed, so the panel shows no data for it: bad_data".into(),
        ],
        panel_data: vec![
            panel("\"Series\"", 1, 0, 4),
            panel("\"Broken\"", 1, 1, 0),
            panel("\"Idle | quiet\"", 2, 0, 0),
        ],
        variables: vec![
            var("instance", "All", "default", Some("1 option(s)")),
            var("quantile", "0.99", "resolved", Some("ran query_result(x)")),
            var("namespace", "daedalus", "target", None),
            var("job", "", "none", Some("no values in the window")),
        ],
        delete_url: Some("https://grafana.example/api/snapshots-delete/SECRETdeleteKEY".into()),
    });
    let md = markdown::render(&r);
    let section = &md[md.find("## Grafana snapshot").expect("a snapshot section")..];
    assert!(section.contains("3 panel(s), 1 with data, 1 without data, 1 with errors; 4 series; read back from Grafana"), "{section}");
    assert!(
        section.contains("| `instance` | `All` | default | 1 option(s) |"),
        "{section}"
    );
    assert!(
        section.contains("| `quantile` | `0.99` | resolved | ran query_result(x) |"),
        "{section}"
    );
    assert!(
        section.contains("| `namespace` | `daedalus` | target |  |"),
        "{section}"
    );
    assert!(section.contains("| `job` | (empty) | none |"), "{section}");
    // Errors first, then no data, then data; a `|` in a title is escaped.
    let broken = section
        .find("\"Broken\" | ❌ errors | 1 | 1 | 0")
        .expect("errors row");
    let idle = section
        .find("\"Idle \\| quiet\" | ⚪ no data | 2 | 0 | 0")
        .expect("no data row");
    let series = section
        .find("\"Series\" | ✅ data | 1 | 0 | 4")
        .expect("data row");
    assert!(broken < idle && idle < series, "{section}");
    assert!(
        section.contains("- panel \"Broken\" query A failed"),
        "{section}"
    );
    assert!(!md.contains("SECRETdeleteKEY"));
}

#[test]
fn github_step_summary_and_outputs_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    let output = dir.path().join("output");
    // Earlier steps' content stays.
    std::fs::write(&summary, "## earlier step\n").unwrap();
    std::fs::write(&output, "earlier=1\n").unwrap();
    let mut r = report();
    r.snapshot = Some(SnapshotSummary {
        url: "https://grafana.example/dashboard/snapshot/AbC123xyz".into(),
        dashboard_uid: "fleet-overview".into(),
        verified: true,
        panels: 7,
        series: 12,
        notes: Vec::new(),
        panel_data: Vec::new(),
        variables: Vec::new(),
        delete_url: Some("https://grafana.example/api/snapshots-delete/SECRETdeleteKEY".into()),
    });
    let files = GithubFiles {
        step_summary: Some(summary.clone()),
        output: Some(output.clone()),
    };
    let report_path = std::path::Path::new("reports/20261123T095400Z-3f9a/report.md");
    let done = github::publish(&r, report_path, &files).unwrap();
    assert!(done.step_summary && done.outputs);
    for f in [&summary, &output] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains("SECRETdeleteKEY"),
            "delete URL leaked into {f:?}"
        );
    }
    assert!(!firedrill::report::markdown::render(&r).contains("SECRETdeleteKEY"));

    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(s.starts_with("## earlier step\n# firedrill acceptance report: ❌ fail\n"));
    assert!(s.contains("| Grafana snapshot | [snapshot of the run window](https://grafana.example/dashboard/snapshot/AbC123xyz) of dashboard `fleet-overview` (read back from Grafana) |"));
    assert!(s.contains("## Verdicts"));
    assert!(s.contains("| AC2 E2E task asserted"));
    assert!(s.ends_with(
        "Full report with the evidence: `reports/20261123T095400Z-3f9a/report.md` in this run's workflow artifact.\n"
    ));
    // Only the head and verdicts: the evidence sections stay in the artifact.
    assert!(!s.contains("```promql"));
    assert!(!s.contains("delete"));

    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "earlier=1\nverdict=fail\nreport_path=reports/20261123T095400Z-3f9a/report.md\nsnapshot_url=https://grafana.example/dashboard/snapshot/AbC123xyz\n"
    );

    // Without the env vars nothing is written.
    let none = github::publish(&r, report_path, &GithubFiles::default()).unwrap();
    assert_eq!(none, github::Published::default());
}

#[test]
fn github_outputs_without_snapshot_and_with_odd_paths() {
    let r = report();
    assert_eq!(
        github::outputs(&r, "reports/x/report.md"),
        "verdict=fail\nreport_path=reports/x/report.md\n"
    );
    assert_eq!(
        github::outputs(&r, "reports/a\nverdict=pass/report.md"),
        "verdict=fail\nreport_path<<FIREDRILL_EOF\nreports/a\nverdict=pass/report.md\nFIREDRILL_EOF\n"
    );
}

#[test]
fn step_summary_is_capped_with_a_note() {
    let mut r = report();
    // Thousands of criteria: the verdict table lists 200 and counts the rest.
    let one = r.criteria[1].clone();
    r.criteria = (0..20_000)
        .map(|i| {
            let mut c = one.clone();
            c.id = format!("AC{i}");
            c
        })
        .collect();
    let table = markdown::render_summary(&r);
    assert_eq!(table.matches("| criterion | ❌ fail |").count(), 199);
    assert!(
        table.contains(
            "… 19802 more check(s) (19801 not passing, 1 passing): report.md lists them all."
        ),
        "{}",
        &table[table.len() - 400..]
    );
    // report.md itself lists every check (the rest collapsed, bounded).
    let md = markdown::render(&r);
    assert!(md.contains("19802 more check(s) (19801 not passing) below."));

    // A head too big for the budget: a failed revert with thousands of
    // recovery commands. The cut falls between whole lines, outside any
    // code block.
    r.drills[0].manual_recovery = Some(ManualRecovery {
        summary: "A revert failed, so a fault may still be live.".into(),
        steps: (0..3_000)
            .map(|i| RecoveryStep {
                label: format!("step {i}"),
                command: format!(
                    "kubectl -n daedalus annotate pod p{i} x={}",
                    "y".repeat(200)
                ),
            })
            .collect(),
    });
    let full = markdown::render_summary(&r);
    assert!(full.len() > github::SUMMARY_BUDGET);
    let s = github::step_summary(&r, "reports/x/report.md", github::SUMMARY_BUDGET);
    assert!(s.len() <= github::SUMMARY_BUDGET, "{}", s.len());
    assert!(s.ends_with("> Truncated to stay under GitHub's step-summary limit: the full report is `reports/x/report.md` in this run's workflow artifact.\n"));
    let before_note = s.split("\n> [!NOTE]").next().unwrap();
    assert!(before_note.ends_with('\n'));
    let fences = before_note
        .lines()
        .filter(|l| l.trim_start_matches(['>', ' ']).starts_with("```"))
        .count();
    assert_eq!(fences % 2, 0, "cut inside a code block");
    for block in code_blocks(before_note) {
        assert!(
            block.starts_with("kubectl -n daedalus annotate pod p"),
            "{block}"
        );
        assert!(
            block.trim_end().ends_with(&"y".repeat(200)),
            "a command was cut: {block}"
        );
    }

    // publish() shrinks the budget when earlier steps used most of the 1 MiB.
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "x".repeat(900 * 1024)).unwrap();
    let files = GithubFiles {
        step_summary: Some(summary.clone()),
        output: None,
    };
    github::publish(&r, std::path::Path::new("reports/x/report.md"), &files).unwrap();
    let len = std::fs::metadata(&summary).unwrap().len() as usize;
    assert!(len < github::STEP_SUMMARY_LIMIT, "{len}");
}

#[test]
fn console_criteria_table() {
    let table = console::criteria_table(&report()).unwrap();
    for needle in [
        "AC1",
        "value(s)",
        "{agent_type=\"copilot\"} = 10",
        "< 1500",
        "pending",
        "NaN",
    ] {
        assert!(table.contains(needle), "missing {needle} in\n{table}");
    }
    let mut empty = report();
    empty.criteria.clear();
    assert_eq!(console::criteria_table(&empty), None);
}

fn audited() -> Report {
    use firedrill::report::model::{Check, Finding, Severity};
    let f = |subject: &str, severity, check, detail: &str, selector: Option<&str>| Finding {
        subject: subject.into(),
        severity,
        check,
        detail: detail.into(),
        selector: selector.map(str::to_string),
        // Rule findings say where the rule was loaded from; criteria do not.
        file: (subject != "AC2").then(|| "/etc/prometheus/rules/nats.yml".to_string()),
        group: (subject != "AC2").then(|| "nats".to_string()),
    };
    let mut r = report();
    r.validation = vec![
        f(
            "GhostMetric",
            Severity::Error,
            Check::SelectorSeries,
            "references a metric that does not exist, so it silently never fires",
            Some(r#"nats_jetstream_consumer_acks_total{stream="T"}"#),
        ),
        f(
            "GhostMetric",
            Severity::Warning,
            Check::RunbookUrl,
            "runbook_url \"docs/runbook.md\" has no anchor",
            None,
        ),
        f(
            "AC2",
            Severity::Info,
            Check::CriterionQuery,
            "not checked: needs {{sentinel.task_id}}",
            None,
        ),
    ];
    r.verdict = r.compute_verdict();
    r
}

#[test]
fn rule_audit_errors_fail_the_run_and_render_everywhere() {
    assert_eq!(report().verdict, Verdict::Pass.max(report().verdict));
    let r = audited();
    assert_eq!(r.verdict, Verdict::Fail);

    let md = markdown::render(&r);
    let section = &md[md.find("## Rule audit").expect("a Rule audit section")..];
    // Counts first, then one collapsible section per check (open when it
    // holds an error), each finding identified by file, group and alert.
    assert!(
        section.contains("3 finding(s): 1 error, 1 warning, 1 info."),
        "{section}"
    );
    assert!(
        section.contains("| selector-series | 1 | 0 | 0 |"),
        "{section}"
    );
    assert!(
        section.find("| Check | Errors |") < section.find("<details"),
        "{section}"
    );
    assert!(
        section.contains("<details><summary>selector-series: 1 error, 0 warning, 0 info</summary>"),
        "{section}"
    );
    assert!(section.contains(
        "| /etc/prometheus/rules/nats.yml › nats › GhostMetric | ❌ error | references a metric that does not exist, so it silently never fires | `nats_jetstream_consumer_acks_total{stream=\"T\"}` |"
    ), "{section}");
    assert!(
        section.contains("<details><summary>criterion-query: 0 error, 0 warning, 1 info</summary>"),
        "{section}"
    );
    assert!(section.contains("| AC2 | ℹ️ info |"), "{section}");

    let xml = junit::render(&r);
    assert!(
        xml.contains(r#"<testsuite name="rule-audit" tests="2""#),
        "{xml}"
    );
    assert!(
        xml.contains(
            r#"<testcase name="nats.yml › nats › GhostMetric" classname="firedrill.rule-audit""#
        ),
        "{xml}"
    );
    assert!(xml.contains("firedrill.audit.fail"), "{xml}");

    let json = json::render(&r);
    assert!(json.contains(r#""check": "selector-series""#), "{json}");
    // Reports without an audit keep their JSON shape.
    assert!(!json::render(&report()).contains("validation"));

    let table = console::validation_table(&r).unwrap();
    assert!(
        table.starts_with("rule audit: 3 finding(s): 1 error, 1 warning, 1 info"),
        "{table}"
    );
    assert!(table.contains("nats.yml › nats: 1 error"), "{table}");
    assert!(
        table.contains("nats.yml › nats › GhostMetric") && table.contains("selector-series"),
        "{table}"
    );
}

#[test]
fn the_console_shows_the_most_important_findings_and_counts_the_rest() {
    use firedrill::report::model::{Check, Finding, Severity};
    let mut r = report();
    r.validation = (0..200)
        .map(|i| Finding {
            subject: format!("Alert{i}"),
            severity: if i == 150 {
                Severity::Error
            } else {
                Severity::Info
            },
            check: Check::SelectorSeries,
            detail: "d".into(),
            selector: None,
            file: Some(format!("/rules/f{}.yml", i % 3)),
            group: Some("g".into()),
        })
        .collect();
    let table = console::validation_table(&r).unwrap();
    assert!(table.contains("1 error, 0 warning, 199 info"), "{table}");
    // The one error comes first, though it is the 151st finding.
    let first_row = table.find("Alert").unwrap();
    assert!(table[first_row..].starts_with("Alert150"), "{table}");
    assert!(
        table.contains("… 175 more finding(s) in the report"),
        "{table}"
    );
    assert_eq!(
        table.matches("› g › Alert").count(),
        console::CONSOLE_FINDINGS
    );
}

#[test]
fn secrets_echoed_by_remotes_are_redacted_everywhere_in_the_report() {
    const TOKEN: &str = "glsa_REPORTtestTOKEN_9876543210";
    firedrill::secrets::register(TOKEN);
    let mut r = report();
    r.errors.push(format!(
        "Grafana answered 500: denied: Authorization Bearer {TOKEN}"
    ));
    r.criteria[0].reason = format!("error: {TOKEN}");
    r.drills[0].trials[0].notes.push(format!("note {TOKEN}"));
    r.redact_secrets();
    let all = format!(
        "{}\n{}\n{}",
        json::render(&r),
        markdown::render(&r),
        junit::render(&r)
    );
    assert!(!all.contains(TOKEN), "a secret survived redaction");
    assert!(r.errors.last().unwrap().ends_with("Bearer [redacted]"));
    // Everything else is kept as it was.
    let mut plain = report();
    plain.redact_secrets();
    assert_eq!(plain, report());
}

#[test]
fn summary_carries_every_failing_reason_with_links_only_in_the_report() {
    let mut r = audited();
    r.errors
        .push("Alertmanager at http://127.0.0.1:39093 unreachable".into());
    r.verdict = r.compute_verdict();
    let summary = markdown::render_summary(&r);
    for row in [
        "| rule audit: selector-series | rule audit | ❌ fail | GhostMetric: references a metric that does not exist, so it silently never fires |",
        "| AC2 E2E task asserted: the sentinel task's duration was recorded and is under 60\u{a0}s | criterion | ❌ fail | 1 of 1 series violate < 5: {} = 9 |",
        "| run | error | ⚠️ error | Alertmanager at http://127.0.0.1:39093 unreachable |",
    ] {
        assert!(summary.contains(row), "missing {row:?} in\n{summary}");
    }
    // The check run gets the same table, under its 65,535-character limit.
    let check_run = github::step_summary(&r, "reports/x/report.md", 65_535);
    assert!(check_run.contains("| rule audit: selector-series | rule audit | ❌ fail |"));
    // In report.md each check links to its section's anchor.
    let md = markdown::render(&r);
    assert!(md.contains("| [rule audit: selector-series](#rule-audit) | rule audit | ❌ fail |"));
    assert!(md.contains("| [AC2 E2E task asserted"));
    assert!(md.contains("](#criterion-2) | criterion | ❌ fail |"));
    for anchor in ["rule-audit", "criterion-2", "drill-1", "probe-1", "errors"] {
        assert!(
            md.contains(&format!("<a name=\"{anchor}\"></a>\n\n")),
            "{anchor}"
        );
    }
    // Warnings alone pass the rule audit, and the row says what there is.
    r.validation
        .retain(|f| f.severity != firedrill::report::model::Severity::Error);
    assert!(markdown::render_summary(&r).contains(
        "| rule audit | rule audit | ✅ pass | no errors; 1 warning(s), 1 info finding(s) |"
    ));
}

#[test]
fn written_reports_never_stay_pending_and_the_head_says_what_is_unknown() {
    let mut r = report();
    r.close_pending();
    let ac5 = &r.criteria[4];
    assert_eq!(ac5.verdict, Verdict::Skipped);
    assert_eq!(
        ac5.reason,
        "not decided by `firedrill smoke`, so skipped: the Grafana snapshot step has not run yet"
    );
    r.tool.git_commit = None;
    r.tool.git_ref = None;
    r.tool.commit_unknown_because =
        Some("GITHUB_SHA is not set and /srv/x is not a git checkout with a commit".into());
    r.target.description = String::new();
    let md = markdown::render(&r);
    assert!(!md.contains("⏳ pending"));
    assert!(md.contains("| Commit | unknown: GITHUB_SHA is not set and /srv/x is not a git checkout with a commit |"), "{md}");
    assert!(md.contains("| Target | **local** (local) |"), "{md}");
    assert!(md.contains("⏭️ skipped | not decided by `firedrill smoke`, so skipped"));
}
