//! `--baseline previous`: the latest successful run's report artifact, found
//! through a loopback double of GitHub's REST API at `GITHUB_API_URL`. The
//! double answers with the docs' example payloads (tests/fixtures/github/,
//! see its README), changed only in the ids, names, dates and conclusion
//! each test needs; the artifact download answers 302 to a blob path on the
//! double, as GitHub does to its blob store.

use crate::common::reports::{drill, empty, with_probe};
use assert_cmd::Command;
use firedrill::commands::baseline::previous;
use firedrill::report::baseline::{BaselineComparison, Status, Thresholds};
use firedrill::report::model::Report;
use firedrill::report::Verdict;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ghs_previous_lookup_token";
/// The docs examples' repository.
const OWNER_REPO: &str = "octo-org/octo-repo";
const WORKFLOW_REF: &str = "octo-org/octo-repo/.github/workflows/acceptance.yml@refs/heads/main";
const RUNS: &str = "/repos/octo-org/octo-repo/actions/workflows/acceptance.yml/runs";
/// The run doing the lookup.
const CURRENT: u64 = 30433700;
/// The docs example's run id, the previous successful run.
const PREV: u64 = 30433642;
const TARGET: &str = "aks-test";

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The docs' example run, made a completed, successful run `id` created at
/// `created` (the example is a queued run).
fn run(id: u64, created: &str) -> Value {
    let mut r = fixture("workflow-runs-for-workflow.json")["workflow_runs"][0].clone();
    let docs_id = r["id"].to_string();
    for key in [
        "url",
        "html_url",
        "jobs_url",
        "logs_url",
        "artifacts_url",
        "cancel_url",
        "rerun_url",
    ] {
        let v = r[key].as_str().unwrap().replace(&docs_id, &id.to_string());
        r[key] = json!(v);
    }
    r["id"] = json!(id);
    r["status"] = json!("completed");
    r["conclusion"] = json!("success");
    for key in ["created_at", "updated_at", "run_started_at"] {
        r[key] = json!(created);
    }
    r
}

fn runs_page(runs: Vec<Value>) -> Value {
    json!({"total_count": runs.len(), "workflow_runs": runs})
}

/// The docs' example artifact ("Rails"), renamed and re-dated.
fn artifact(id: u64, name: &str, run_id: u64, created: &str, expires: &str) -> Value {
    let mut a = fixture("workflow-run-artifacts.json")["artifacts"][0].clone();
    a["id"] = json!(id);
    a["name"] = json!(name);
    a["url"] = json!(format!(
        "https://api.github.com/repos/{OWNER_REPO}/actions/artifacts/{id}"
    ));
    a["archive_download_url"] = json!(format!(
        "https://api.github.com/repos/{OWNER_REPO}/actions/artifacts/{id}/zip"
    ));
    a["created_at"] = json!(created);
    a["updated_at"] = json!(created);
    a["expires_at"] = json!(expires);
    a["workflow_run"]["id"] = json!(run_id);
    a
}

/// The docs' example page, unchanged: two artifacts of other workflows.
fn docs_artifacts() -> Vec<Value> {
    fixture("workflow-run-artifacts.json")["artifacts"]
        .as_array()
        .unwrap()
        .clone()
}

fn leg_name(run_id: u64, attempt: u32) -> String {
    format!("firedrill-report-{run_id}-{attempt}-{TARGET}")
}

fn zip_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The earlier run's report and this run's: the drill got 60% slower
/// (a regression past +25%) and the probe faster.
fn reports() -> (Report, Report) {
    let mut then = with_probe(empty("run-then", TARGET), "copilot", &[2_000, 3_000, 4_000]);
    then.drills = vec![drill("worker-down", Verdict::Pass, &[10_000])];
    let mut now = with_probe(empty("run-now", TARGET), "copilot", &[1_000, 1_500, 2_000]);
    now.drills = vec![drill("worker-down", Verdict::Pass, &[16_000])];
    (then, now)
}

/// A leg's artifact as `upload-artifact` of `reports/` zips it: the run's
/// directory, and the committed example, which must not be taken.
fn leg_zip(report: &Report) -> Vec<u8> {
    let mut decoy = empty("example-run", "local");
    decoy.verdict = Verdict::Fail;
    zip_of(&[
        ("README.md", b"# reports/\n".to_vec()),
        ("example/report.json", serde_json::to_vec(&decoy).unwrap()),
        (
            "20261201T080000Z-ab12/report.json",
            serde_json::to_vec(report).unwrap(),
        ),
        ("20261201T080000Z-ab12/report.md", b"# report\n".to_vec()),
    ])
}

struct Double {
    server: MockServer,
}

impl Double {
    async fn start() -> Self {
        Double {
            server: MockServer::start().await,
        }
    }

    async fn runs(&self, runs: Vec<Value>) {
        Mock::given(method("GET"))
            .and(path(RUNS))
            .and(query_param("status", "success"))
            .respond_with(ResponseTemplate::new(200).set_body_json(runs_page(runs)))
            .mount(&self.server)
            .await;
    }

    async fn artifacts(&self, run_id: u64, artifacts: Vec<Value>) {
        Mock::given(method("GET"))
            .and(path(format!(
                "/repos/{OWNER_REPO}/actions/runs/{run_id}/artifacts"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_count": artifacts.len(), "artifacts": artifacts
            })))
            .mount(&self.server)
            .await;
    }

    /// `.../artifacts/{id}/zip` answers 302 to a signed blob URL on the
    /// double, which serves `bytes`.
    async fn zip(&self, artifact_id: u64, bytes: Vec<u8>) {
        let blob = format!("/blob/artifacts/{artifact_id}.zip");
        Mock::given(method("GET"))
            .and(path(format!(
                "/repos/{OWNER_REPO}/actions/artifacts/{artifact_id}/zip"
            )))
            .respond_with(ResponseTemplate::new(302).insert_header(
                "Location",
                format!("{}{blob}?sv=2024&sig=signed-secret", self.server.uri()).as_str(),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(blob))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Content-Type", "application/zip")
                    .set_body_bytes(bytes),
            )
            .mount(&self.server)
            .await;
    }

    async fn error(&self, p: &str, status: u16, message: &str) {
        let mut body = fixture("error-404.json");
        body["message"] = json!(message);
        body["status"] = json!(status.to_string());
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    fn vars(&self) -> HashMap<&'static str, String> {
        [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("GITHUB_TOKEN", TOKEN.to_string()),
            ("GITHUB_REPOSITORY", OWNER_REPO.to_string()),
            (
                "GITHUB_SHA",
                "acb5820ced9479c074f688cc328bf03f341a511d".to_string(),
            ),
            ("GITHUB_SERVER_URL", "https://github.com".to_string()),
            ("GITHUB_API_URL", self.server.uri()),
            ("GITHUB_RUN_ID", CURRENT.to_string()),
            ("GITHUB_WORKFLOW_REF", WORKFLOW_REF.to_string()),
        ]
        .into()
    }

    async fn lookup(&self, now: &Report) -> BaselineComparison {
        let vars = self.vars();
        previous(now, &Thresholds::default(), |k| vars.get(k).cloned()).await
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap()
    }
}

fn note(c: &BaselineComparison) -> &str {
    c.note
        .as_deref()
        .unwrap_or_else(|| panic!("no note: {c:#?}"))
}

fn paths(reqs: &[Request]) -> Vec<String> {
    reqs.iter().map(|r| r.url.path().to_string()).collect()
}

/// The newest successful run is this one (a re-run): skipped. The one
/// before has the leg's artifact among others; its report.json (not the
/// example's) is compared, and report.md shows the change.
#[tokio::test]
async fn finds_the_previous_runs_report_and_compares() {
    let (then, mut now) = reports();
    let d = Double::start().await;
    d.runs(vec![
        run(CURRENT, "2026-12-02T08:00:00Z"),
        run(PREV, "2026-12-01T08:00:00Z"),
    ])
    .await;
    let mut arts = docs_artifacts();
    arts.push(artifact(
        501,
        &leg_name(PREV, 1),
        PREV,
        "2026-12-01T08:10:00Z",
        "2099-03-01T08:10:00Z",
    ));
    arts.push(artifact(
        502,
        &format!("firedrill-report-{PREV}-1-aks-prod"),
        PREV,
        "2026-12-01T08:11:00Z",
        "2099-03-01T08:11:00Z",
    ));
    arts.push(artifact(
        503,
        &format!("firedrill-merged-report-{PREV}-1"),
        PREV,
        "2026-12-01T08:12:00Z",
        "2099-03-01T08:12:00Z",
    ));
    d.artifacts(PREV, arts).await;
    d.zip(501, leg_zip(&then)).await;

    let started = Instant::now();
    let cmp = d.lookup(&now).await;
    eprintln!("lookup against the double: {:?}", started.elapsed());

    assert_eq!(cmp.note, None, "{cmp:#?}");
    assert_eq!(cmp.run_id.as_deref(), Some("run-then"));
    assert!(cmp.source.contains(&leg_name(PREV, 1)), "{}", cmp.source);
    assert!(
        cmp.source
            .contains("https://github.com/octo-org/octo-repo/actions/runs/30433642"),
        "{}",
        cmp.source
    );
    assert!(
        cmp.source.contains("20261201T080000Z-ab12/report.json"),
        "{}",
        cmp.source
    );
    let fire = cmp
        .changes
        .iter()
        .find(|c| c.subject == "drill worker-down")
        .expect("the drill compared");
    assert_eq!(fire.status, Status::Regressed);
    assert_eq!(
        (fire.baseline, fire.current),
        (Some(10_000.0), Some(16_000.0))
    );

    now.baseline = Some(cmp);
    let md = firedrill::report::markdown::render(&now);
    assert!(md.contains("## Change since baseline"), "{md}");
    assert!(md.contains("**1 regression**"), "{md}");
    assert!(!md.contains("no comparison"), "{md}");

    let reqs = d.requests().await;
    assert_eq!(
        paths(&reqs),
        [
            RUNS.to_string(),
            format!("/repos/{OWNER_REPO}/actions/runs/{PREV}/artifacts"),
            format!("/repos/{OWNER_REPO}/actions/artifacts/501/zip"),
            "/blob/artifacts/501.zip".to_string(),
        ],
        "three API calls and the blob; never the current run's artifacts"
    );
    let q: HashMap<_, _> = reqs[0].url.query_pairs().into_owned().collect();
    assert_eq!(q.get("status").map(String::as_str), Some("success"));
    assert_eq!(q.get("per_page").map(String::as_str), Some("20"));
    for r in &reqs[..3] {
        assert_eq!(
            r.headers.get("authorization").unwrap(),
            format!("Bearer {TOKEN}").as_str()
        );
    }
    // The signed blob URL gets no GitHub token.
    assert!(reqs[3].headers.get("authorization").is_none());
}

/// Only this run has succeeded so far: nothing to compare, said so.
#[tokio::test]
async fn the_current_run_is_never_its_own_baseline() {
    let (_, now) = reports();
    let d = Double::start().await;
    d.runs(vec![run(CURRENT, "2026-12-02T08:00:00Z")]).await;
    let cmp = d.lookup(&now).await;
    let n = note(&cmp);
    assert!(n.starts_with("no comparison: `--baseline previous`"), "{n}");
    assert!(
        n.contains("acceptance.yml in octo-org/octo-repo has no successful run before this one"),
        "{n}"
    );
    assert_eq!(cmp.source, "previous");
    assert!(cmp.changes.is_empty());
    assert_eq!(paths(&d.requests().await), [RUNS]);
}

/// Runs whose artifacts are other targets', the merged report's or other
/// workflows': a note naming the artifact looked for and where.
#[tokio::test]
async fn no_matching_artifact_is_a_note() {
    let (_, now) = reports();
    let d = Double::start().await;
    d.runs(vec![
        run(PREV, "2026-12-01T08:00:00Z"),
        run(PREV - 10, "2026-11-30T08:00:00Z"),
    ])
    .await;
    let mut arts = docs_artifacts();
    arts.push(artifact(
        601,
        &format!("firedrill-merged-report-{PREV}-1"),
        PREV,
        "2026-12-01T08:12:00Z",
        "2099-03-01T08:12:00Z",
    ));
    d.artifacts(PREV, arts).await;
    d.artifacts(
        PREV - 10,
        vec![artifact(
            602,
            &format!("firedrill-report-{}-1-{TARGET}-eu", PREV - 10),
            PREV - 10,
            "2026-11-30T08:12:00Z",
            "2099-03-01T08:12:00Z",
        )],
    )
    .await;
    let cmp = d.lookup(&now).await;
    let n = note(&cmp);
    assert!(
        n.contains("artifact firedrill-report-<run id>-<attempt>-aks-test"),
        "{n}"
    );
    assert!(
        n.contains(
            "none of the 2 newest successful runs of acceptance.yml in octo-org/octo-repo \
             (this run excluded; at most 20 are looked at) has such an artifact"
        ),
        "{n}"
    );
    // Nothing was downloaded.
    assert!(paths(&d.requests().await)
        .iter()
        .all(|p| !p.ends_with("/zip")));
}

/// An expired artifact (flagged, or past `expires_at`) is skipped for an
/// older run's live one; when all have expired, the note says so.
#[tokio::test]
async fn expired_artifacts_are_skipped() {
    let (then, now) = reports();
    let older = PREV - 10;
    let d = Double::start().await;
    d.runs(vec![
        run(PREV, "2026-12-01T08:00:00Z"),
        run(older, "2026-11-30T08:00:00Z"),
    ])
    .await;
    let mut flagged = artifact(
        701,
        &leg_name(PREV, 2),
        PREV,
        "2026-12-01T09:00:00Z",
        "2099-03-01T08:00:00Z",
    );
    flagged["expired"] = json!(true);
    let past = artifact(
        702,
        &leg_name(PREV, 1),
        PREV,
        "2026-12-01T08:10:00Z",
        "2026-12-01T20:00:00Z",
    );
    d.artifacts(PREV, vec![flagged, past]).await;
    d.artifacts(
        older,
        vec![artifact(
            703,
            &leg_name(older, 1),
            older,
            "2026-11-30T08:10:00Z",
            "2099-03-01T08:10:00Z",
        )],
    )
    .await;
    d.zip(703, leg_zip(&then)).await;
    let cmp = d.lookup(&now).await;
    assert_eq!(cmp.note, None, "{cmp:#?}");
    assert!(cmp.source.contains(&leg_name(older, 1)), "{}", cmp.source);
    let reqs = paths(&d.requests().await);
    assert!(!reqs
        .iter()
        .any(|p| p.contains("/artifacts/701/") || p.contains("/artifacts/702/")));

    // Nothing live anywhere.
    let d = Double::start().await;
    d.runs(vec![run(PREV, "2026-12-01T08:00:00Z")]).await;
    let mut flagged = artifact(
        711,
        &leg_name(PREV, 1),
        PREV,
        "2026-09-01T08:00:00Z",
        "2026-11-30T08:00:00Z",
    );
    flagged["expired"] = json!(true);
    d.artifacts(PREV, vec![flagged]).await;
    let cmp = d.lookup(&now).await;
    assert!(note(&cmp).ends_with("has such an artifact; 1 with that name had expired"));
}

/// GitHub refusing or failing: a note naming the request and what to do;
/// the comparison simply is not there.
#[tokio::test]
async fn api_errors_are_notes() {
    let (then, now) = reports();

    let d = Double::start().await;
    d.error(RUNS, 404, "Not Found").await;
    let n = d.lookup(&now).await.note.unwrap();
    assert!(n.contains("GitHub answered 404 Not Found to GET "), "{n}");
    assert!(
        n.contains("acceptance.yml/runs?status=success in octo-org/octo-repo"),
        "{n}"
    );
    assert!(n.contains("actions: read"), "{n}");

    let d = Double::start().await;
    d.error(RUNS, 403, "Resource not accessible by integration")
        .await;
    let n = d.lookup(&now).await.note.unwrap();
    assert!(
        n.contains("403 Resource not accessible by integration"),
        "{n}"
    );
    assert!(
        n.contains("grant the job `permissions: actions: read`"),
        "{n}"
    );

    let d = Double::start().await;
    d.runs(vec![run(PREV, "2026-12-01T08:00:00Z")]).await;
    d.error(
        &format!("/repos/{OWNER_REPO}/actions/runs/{PREV}/artifacts"),
        500,
        "Server Error",
    )
    .await;
    let n = d.lookup(&now).await.note.unwrap();
    assert!(n.contains("GitHub answered HTTP 500 to GET "), "{n}");
    assert!(n.contains("Server Error"), "{n}");

    // The artifact expired between the listing and the download: 410.
    let d = Double::start().await;
    d.runs(vec![run(PREV, "2026-12-01T08:00:00Z")]).await;
    d.artifacts(
        PREV,
        vec![artifact(
            801,
            &leg_name(PREV, 1),
            PREV,
            "2026-12-01T08:10:00Z",
            "2099-03-01T08:10:00Z",
        )],
    )
    .await;
    d.error(
        &format!("/repos/{OWNER_REPO}/actions/artifacts/801/zip"),
        410,
        "Artifact has expired",
    )
    .await;
    let n = d.lookup(&now).await.note.unwrap();
    assert!(
        n.contains(&format!(
            "artifact {} of run https://github.com/octo-org/octo-repo/actions/runs/{PREV} could \
             not be downloaded",
            leg_name(PREV, 1)
        )),
        "{n}"
    );
    assert!(n.contains("410"), "{n}");

    // The blob store GitHub redirects to is unreachable: the note names it
    // but never the signed part of its URL.
    let d = Double::start().await;
    d.runs(vec![run(PREV, "2026-12-01T08:00:00Z")]).await;
    d.artifacts(
        PREV,
        vec![artifact(
            802,
            &leg_name(PREV, 1),
            PREV,
            "2026-12-01T08:10:00Z",
            "2099-03-01T08:10:00Z",
        )],
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/repos/{OWNER_REPO}/actions/artifacts/802/zip"
        )))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "Location",
            "http://127.0.0.1:9/blob/802.zip?sv=2024&sig=signed-secret",
        ))
        .mount(&d.server)
        .await;
    let n = d.lookup(&now).await.note.unwrap();
    assert!(
        n.contains("could not be downloaded: http://127.0.0.1:9/blob/802.zip: "),
        "{n}"
    );
    assert!(!n.contains("signed-secret") && !n.contains("sig="), "{n}");

    // Nothing listens at GITHUB_API_URL.
    let d = Double::start().await;
    let mut vars = d.vars();
    drop(d);
    vars.insert("GITHUB_API_URL", "http://127.0.0.1:9".into());
    let cmp = previous(&now, &Thresholds::default(), |k| vars.get(k).cloned()).await;
    let n = note(&cmp);
    assert!(n.contains("is unreachable"), "{n}");
    let _ = then;
}

/// The artifact holds no report.json (only the committed example), is not
/// a zip, or its report.json is not a report: each a note naming it.
#[tokio::test]
async fn bad_artifacts_are_notes() {
    let (_, now) = reports();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            zip_of(&[
                ("README.md", b"# reports/\n".to_vec()),
                ("example/report.json", b"{}".to_vec()),
                ("example/report.md", b"# example\n".to_vec()),
            ]),
            "holds no report.json outside example/ (it holds README.md, example/report.json, example/report.md)",
        ),
        (
            b"<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code></Error>".to_vec(),
            "is not a readable zip archive",
        ),
        (
            zip_of(&[("report.json", b"{\"schema_version\": 3}".to_vec())]),
            "report.json in artifact firedrill-report-30433642-1-aks-test of run \
             https://github.com/octo-org/octo-repo/actions/runs/30433642 is not a firedrill \
             report.json (at",
        ),
    ];
    for (bytes, want) in cases {
        let d = Double::start().await;
        d.runs(vec![run(PREV, "2026-12-01T08:00:00Z")]).await;
        d.artifacts(
            PREV,
            vec![artifact(
                901,
                &leg_name(PREV, 1),
                PREV,
                "2026-12-01T08:10:00Z",
                "2099-03-01T08:10:00Z",
            )],
        )
        .await;
        d.zip(901, bytes).await;
        let cmp = d.lookup(&now).await;
        let n = note(&cmp);
        assert!(n.starts_with("no comparison: "), "{n}");
        assert!(n.contains(want), "{want}\n in\n{n}");
        assert!(cmp.changes.is_empty());
    }
}

/// Outside Actions, without a token or a workflow ref: a note saying what
/// `previous` needs, and nothing asked of anyone.
#[tokio::test]
async fn outside_actions_says_how_to_pass_a_path() {
    let (_, now) = reports();
    let none = |_: &str| None::<String>;
    let cmp = previous(&now, &Thresholds::default(), none).await;
    let n = note(&cmp);
    assert!(n.contains("works only inside GitHub Actions"), "{n}");
    assert!(n.contains("--baseline PATH"), "{n}");

    let d = Double::start().await;
    let mut vars = d.vars();
    vars.remove("GITHUB_TOKEN");
    let cmp = previous(&now, &Thresholds::default(), |k| vars.get(k).cloned()).await;
    let n = note(&cmp);
    assert!(n.contains("GITHUB_TOKEN is not set"), "{n}");
    assert!(n.contains("actions: read"), "{n}");

    let mut vars = d.vars();
    vars.insert("GITHUB_WORKFLOW_REF", "octo-org/octo-repo".into());
    let cmp = previous(&now, &Thresholds::default(), |k| vars.get(k).cloned()).await;
    assert!(note(&cmp).contains("GITHUB_WORKFLOW_REF is \"octo-org/octo-repo\""));
    assert!(d.requests().await.is_empty());
}

/// The binary: `firedrill merge A B --baseline previous` in a job whose
/// environment points at the double finds the previous run's merged report
/// (made by the binary too), compares, and `--fail-on-regression` fails on
/// the slower drill; with GitHub failing, the same run passes with a note.
#[tokio::test]
async fn merge_with_baseline_previous_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, r: &Report| {
        let p = tmp.path().join(name).join("report.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_vec(r).unwrap()).unwrap();
        p
    };
    let (then, now) = reports();
    let mut now_b = with_probe(empty("run-now-b", "aks-prod"), "copilot", &[1_200]);
    now_b.drills = vec![drill("worker-down", Verdict::Pass, &[15_000])];
    let then_path = write("then", &then);
    let now_a = write("now-a", &now);
    let now_b = write("now-b", &now_b);

    let firedrill = |args: &[&std::ffi::OsStr], vars: &HashMap<&str, String>| {
        let mut cmd = Command::cargo_bin("firedrill").unwrap();
        for v in [
            "GITHUB_STEP_SUMMARY",
            "GITHUB_OUTPUT",
            "FIREDRILL_BASELINE",
            "FIREDRILL_FAIL_ON_REGRESSION",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(args).output().unwrap()
    };
    // Last run's merged report, as the merge job uploaded it.
    let first = tmp.path().join("first");
    let o = firedrill(
        &[
            "merge".as_ref(),
            then_path.as_os_str(),
            "--out".as_ref(),
            first.as_os_str(),
        ],
        &HashMap::from([("GITHUB_ACTIONS", "false".to_string())]),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files: Vec<(&str, Vec<u8>)> = ["report.json", "report.md", "junit.xml"]
        .into_iter()
        .map(|f| (f, std::fs::read(first.join(f)).unwrap()))
        .collect();

    let d = Double::start().await;
    d.runs(vec![
        run(CURRENT, "2026-12-02T08:00:00Z"),
        run(PREV, "2026-12-01T08:00:00Z"),
    ])
    .await;
    let merged_name = format!("firedrill-merged-report-{PREV}-1");
    d.artifacts(
        PREV,
        vec![
            artifact(
                1001,
                &leg_name(PREV, 1),
                PREV,
                "2026-12-01T08:10:00Z",
                "2099-03-01T08:10:00Z",
            ),
            artifact(
                1002,
                &merged_name,
                PREV,
                "2026-12-01T08:20:00Z",
                "2099-03-01T08:20:00Z",
            ),
        ],
    )
    .await;
    d.zip(1002, zip_of(&files)).await;

    let second = tmp.path().join("second");
    let args = [
        "merge".as_ref(),
        now_a.as_os_str(),
        now_b.as_os_str(),
        "--out".as_ref(),
        second.as_os_str(),
        "--baseline".as_ref(),
        "previous".as_ref(),
        "--fail-on-regression".as_ref(),
    ];
    let started = Instant::now();
    let o = firedrill(&args, &d.vars());
    eprintln!("merge with --baseline previous: {:?}", started.elapsed());
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = std::fs::read_to_string(second.join("report.md")).unwrap();
    assert!(md.contains("## Change since baseline"), "{md}");
    assert!(md.contains(&merged_name), "{md}");
    assert!(md.contains("regressed"), "{md}");
    let merged: Report =
        serde_json::from_slice(&std::fs::read(second.join("report.json")).unwrap()).unwrap();
    let base = merged.baseline.unwrap();
    assert_eq!(base.note, None);
    assert!(base.regressions().count() >= 1, "{base:#?}");
    assert!(paths(&d.requests().await)
        .contains(&"/repos/octo-org/octo-repo/actions/artifacts/1002/zip".to_string()));

    // GitHub down: the same command writes its report with a note, exit 0.
    let broken = Double::start().await;
    broken.error(RUNS, 500, "Server Error").await;
    let o = firedrill(&args, &broken.vars());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("note: no comparison: `--baseline previous`"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(second.join("report.md")).unwrap();
    assert!(
        md.contains("> **Note:** no comparison: `--baseline previous` looked for the latest successful run's artifact firedrill-merged-report-"),
        "{md}"
    );
    assert!(!md.contains(TOKEN) && !stderr.contains(TOKEN));
}
