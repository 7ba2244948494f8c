//! `firedrill accept` as a user runs it, against a Prometheus double that
//! answers `/api/v1/query` exactly as Prometheus does (a `success` envelope
//! with a vector, sent chunked with no `Content-Length`, as Prometheus sends
//! any answer of more than a few KiB), only with thousands of series.
//!
//! Proves: an answer over the response limit is verdict `error` (exit 3)
//! naming the request, the limit and what to do, not a buffer of it; and a
//! criterion over 5,000 series keeps report.json, report.md and junit.xml
//! small while its verdict and counts stay exact and the worst series are
//! listed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Labels like a kube-state-metrics series, so sizes are realistic.
fn series_json(i: usize, value: &str) -> String {
    format!(
        r#"{{"metric":{{"__name__":"queue_depth","container":"worker","instance":"10.0.{}.{}:8080","job":"size-test","namespace":"daedalus","pod":"daedalus-worker-{i:05}"}},"value":[1795427689.049,"{value}"]}}"#,
        i / 250,
        i % 250
    )
}

/// Serves `/api/v1/query` with `n` series valued `value(i)`, one chunk per
/// 100 series. Returns the double's base URL; it lives as long as the test.
fn prometheus_double(n: usize, value: fn(usize) -> String) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/api/v1/query",
                axum::routing::get(move || async move {
                    let head = r#"{"status":"success","data":{"resultType":"vector","result":["#;
                    let chunks = (0..n.div_ceil(100)).map(move |c| {
                        let mut s = if c == 0 {
                            head.to_string()
                        } else {
                            String::new()
                        };
                        for i in c * 100..(c * 100 + 100).min(n) {
                            if i > 0 {
                                s.push(',');
                            }
                            s.push_str(&series_json(i, &value(i)));
                        }
                        if (c + 1) * 100 >= n {
                            s.push_str("]}}");
                        }
                        Ok::<_, std::convert::Infallible>(s)
                    });
                    (
                        [("content-type", "application/json")],
                        axum::body::Body::from_stream(futures::stream::iter(chunks)),
                    )
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A directory with a targets file (target `double`) and one criterion.
fn workspace(prometheus: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        format!(
            "[targets.double]\ndescription = \"Prometheus double\"\nnamespace = \"daedalus\"\n\
             nats_url = \"nats://127.0.0.1:9\"\nprometheus_url = \"{prometheus}/\"\n\n\
             [targets.double.variables]\nstream = \"TASKS\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("acceptance")).unwrap();
    std::fs::write(
        dir.path().join("acceptance/size.toml"),
        r#"[[criterion]]
id = "AC9"
title = "Every worker's queue depth under 1500"
query = 'queue_depth{job="size-test"}'
pass_if = "< 1500"
"#,
    )
    .unwrap();
    dir
}

fn accept(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.current_dir(dir)
        .env("CI", "true")
        .env_remove("FIREDRILL_MAX_RESPONSE_BYTES")
        .args(["accept", "--target", "double", "--since", "5m"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The one run directory under `reports/`.
fn run_dir(dir: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn report_json(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap()
}

#[test]
fn an_answer_over_the_limit_is_an_error_naming_the_request_not_a_buffer() {
    // 20,000 series, ~4 MB, against a 1 MiB limit.
    let prom = prometheus_double(20_000, |i| (i % 1000).to_string());
    let dir = workspace(&prom);
    let out = accept(dir.path(), &[("FIREDRILL_MAX_RESPONSE_BYTES", "1MiB")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = report_json(&run_dir(dir.path()));
    assert_eq!(json["verdict"], "error");
    let c = &json["criteria"][0];
    assert_eq!(c["verdict"], "error");
    let reason = c["reason"].as_str().unwrap();
    for part in [
        format!("Prometheus at {prom} answered GET /api/v1/query with more than 1048576 bytes"),
        "over firedrill's limit of 1 MiB".to_string(),
        "Narrow the request".to_string(),
        "--max-response-bytes or FIREDRILL_MAX_RESPONSE_BYTES".to_string(),
    ] {
        assert!(reason.contains(&part), "{part:?} not in {reason}");
    }
    assert_eq!(c["series"], serde_json::json!([]));
}

#[test]
fn five_thousand_series_make_small_reports_with_exact_counts_and_the_worst_listed() {
    // 17 of 5,000 series fail `< 1500`; daedalus-worker-00007 is the worst.
    let prom = prometheus_double(5_000, |i| match i {
        7 => "99999".into(),
        i if i % 300 == 7 => (1500 + i).to_string(),
        i => (i % 1000).to_string(),
    });
    let dir = workspace(&prom);
    let out = accept(dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_dir(dir.path());
    for file in ["report.json", "report.md", "junit.xml"] {
        let bytes = std::fs::metadata(run.join(file)).unwrap().len();
        assert!(bytes < 200_000, "{file} is {bytes} bytes");
    }

    let json = report_json(&run);
    assert_eq!(json["verdict"], "fail");
    let c = &json["criteria"][0];
    assert_eq!(c["verdict"], "fail");
    assert_eq!(c["series_total"], 5000);
    assert_eq!(c["series_failing"], 17);
    let series = c["series"].as_array().unwrap();
    assert_eq!(series.len(), 20);
    assert_eq!(series[0]["labels"]["pod"], "daedalus-worker-00007");
    assert_eq!(series[0]["value"], "99999");
    assert!(series[..17].iter().all(|s| s["passed"] == false));
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "17 of 5000 series violate < 1500: queue_depth{container=\"worker\", instance=\"10.0.0.7:8080\", job=\"size-test\", namespace=\"daedalus\", pod=\"daedalus-worker-00007\"} = 99999; "
        ),
        "{reason}"
    );

    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("pod=\"daedalus-worker-00007\"}` | `99999` | ❌ |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| … and 4980 more series, not listed (17 of all 5000 fail; the worst are above) | | |"
        ),
        "{md}"
    );
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(junit.contains("daedalus-worker-00007"));
    assert!(
        junit.contains("... and 4980 more series, not listed (17 of all 5000 fail)"),
        "{junit}"
    );
}
