//! GitHub check runs and issues against a wiremock double at octocrab's base
//! URI (`GITHUB_API_URL`), answering with bodies captured from api.github.com
//! (tests/fixtures/github/).

use firedrill::clients::github::{
    create_check_run, open_or_comment_issue, GitHubContext, GitHubError, IssueAction, SUMMARY_LIMIT,
};
use firedrill::report::Verdict;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "ghs_test_token_value";
const SHA: &str = "c3b93769f009d1738363041806908cb3739c88d9";

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ctx(api_url: &str) -> GitHubContext {
    let env: HashMap<&str, String> = [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_TOKEN", TOKEN.to_string()),
        ("GITHUB_REPOSITORY", "raykao/daedalus".to_string()),
        ("GITHUB_SHA", SHA.to_string()),
        ("GITHUB_SERVER_URL", "https://github.com".to_string()),
        ("GITHUB_API_URL", api_url.to_string()),
        ("GITHUB_RUN_ID", "6028130407".to_string()),
    ]
    .into();
    GitHubContext::detect(|k| env.get(k).cloned()).unwrap()
}

fn requests_to<'a>(reqs: &'a [Request], m: &str, p: &str) -> Vec<&'a Request> {
    reqs.iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

#[tokio::test]
async fn check_run_carries_name_sha_conclusion_and_summary() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/check-runs"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("check-run.json")))
        .expect(2)
        .mount(&server)
        .await;
    let ctx = ctx(&server.uri());

    let info = create_check_run(
        &ctx,
        "firedrill acceptance (aks-test)",
        Verdict::Fail,
        "AC1 failed: cold-start p99 1733 s",
        "# firedrill acceptance report: ❌ fail\n",
    )
    .await
    .unwrap();
    assert_eq!(info.id, 16354767716);
    assert_eq!(info.conclusion, "failure");
    assert!(info.html_url.unwrap().contains("/actions/runs/"));

    // A summary over GitHub's limit is cut, with a note, before it is sent.
    let huge = "x".repeat(SUMMARY_LIMIT + 10_000);
    create_check_run(&ctx, "firedrill", Verdict::Pass, "ok", &huge)
        .await
        .unwrap();

    let reqs = server.received_requests().await.unwrap();
    let posts = requests_to(&reqs, "POST", "/repos/raykao/daedalus/check-runs");
    let first: Value = posts[0].body_json().unwrap();
    assert_eq!(first["name"], "firedrill acceptance (aks-test)");
    assert_eq!(first["head_sha"], SHA);
    assert_eq!(first["status"], "completed");
    assert_eq!(first["conclusion"], "failure");
    assert_eq!(
        first["output"]["title"],
        "AC1 failed: cold-start p99 1733 s"
    );
    assert_eq!(
        first["output"]["summary"],
        "# firedrill acceptance report: ❌ fail\n"
    );
    assert_eq!(
        first["details_url"],
        "https://github.com/raykao/daedalus/actions/runs/6028130407"
    );
    assert!(first["completed_at"].is_string());
    let second: Value = posts[1].body_json().unwrap();
    assert_eq!(second["conclusion"], "success");
    let summary = second["output"]["summary"].as_str().unwrap();
    assert!(summary.len() <= SUMMARY_LIMIT, "{}", summary.len());
    assert!(summary.contains("truncated"));
}

#[tokio::test]
async fn check_run_conclusions_per_verdict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/check-runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("check-run.json")))
        .mount(&server)
        .await;
    let ctx = ctx(&server.uri());
    for v in [Verdict::Pass, Verdict::Error, Verdict::Skipped] {
        create_check_run(&ctx, "c", v, "t", "s").await.unwrap();
    }
    let reqs = server.received_requests().await.unwrap();
    let got: Vec<String> = reqs
        .iter()
        .map(|r| {
            r.body_json::<Value>().unwrap()["conclusion"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, ["success", "failure", "neutral"]);
}

/// A repository's open issues: the recorded page, plus what this test created.
#[derive(Clone, Default)]
struct Issues {
    created: Arc<Mutex<Vec<Value>>>,
}

struct ListIssues(Issues);
impl Respond for ListIssues {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut list = fixture("issues-list.json").as_array().unwrap().clone();
        list.extend(self.0.created.lock().unwrap().iter().cloned());
        ResponseTemplate::new(200).set_body_json(list)
    }
}

struct CreateIssue(Issues);
impl Respond for CreateIssue {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let sent: Value = req.body_json().unwrap();
        let mut issue = fixture("issue-create.json");
        issue["number"] = json!(42);
        issue["title"] = sent["title"].clone();
        issue["body"] = sent["body"].clone();
        issue["html_url"] = json!("https://github.com/raykao/daedalus/issues/42");
        self.0.created.lock().unwrap().push(issue.clone());
        ResponseTemplate::new(201).set_body_json(issue)
    }
}

struct CreateComment;
impl Respond for CreateComment {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let sent: Value = req.body_json().unwrap();
        let mut c = fixture("issue-comment.json");
        c["body"] = sent["body"].clone();
        c["html_url"] =
            json!("https://github.com/raykao/daedalus/issues/42#issuecomment-1640255529");
        ResponseTemplate::new(201).set_body_json(c)
    }
}

#[tokio::test]
async fn issue_is_opened_once_then_commented() {
    let server = MockServer::start().await;
    let issues = Issues::default();
    Mock::given(method("GET"))
        .and(path("/repos/raykao/daedalus/issues"))
        .and(query_param("state", "open"))
        .respond_with(ListIssues(issues.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(CreateIssue(issues.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/issues/42/comments"))
        .respond_with(CreateComment)
        .mount(&server)
        .await;
    let ctx = ctx(&server.uri());
    let title = "firedrill: acceptance failing on aks-test";

    let first = open_or_comment_issue(&ctx, title, "run 1 failed: AC1")
        .await
        .unwrap();
    assert_eq!(first.action, IssueAction::Created);
    assert_eq!(first.number, 42);
    assert_eq!(first.url, "https://github.com/raykao/daedalus/issues/42");

    let second = open_or_comment_issue(&ctx, title, "run 2 failed: AC5")
        .await
        .unwrap();
    assert_eq!(second.action, IssueAction::Commented);
    assert_eq!(second.number, 42);
    assert!(second.url.ends_with("#issuecomment-1640255529"));

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        requests_to(&reqs, "GET", "/repos/raykao/daedalus/issues").len(),
        2
    );
    let created = requests_to(&reqs, "POST", "/repos/raykao/daedalus/issues");
    assert_eq!(created.len(), 1, "the issue is opened once");
    let body: Value = created[0].body_json().unwrap();
    assert_eq!(body["title"], title);
    assert_eq!(body["body"], "run 1 failed: AC1");
    let comments = requests_to(&reqs, "POST", "/repos/raykao/daedalus/issues/42/comments");
    assert_eq!(comments.len(), 1);
    let body: Value = comments[0].body_json().unwrap();
    assert_eq!(body["body"], "run 2 failed: AC5");
    for r in &reqs {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {TOKEN}")
        );
    }
}

#[tokio::test]
async fn a_title_that_only_resembles_an_open_issue_opens_a_new_one() {
    let server = MockServer::start().await;
    let issues = Issues::default();
    Mock::given(method("GET"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(ListIssues(issues.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(CreateIssue(issues))
        .expect(1)
        .mount(&server)
        .await;
    // The recorded list has "Test issue 13"; a prefix is not the same title.
    let out = open_or_comment_issue(&ctx(&server.uri()), "Test issue 1", "b")
        .await
        .unwrap();
    assert_eq!(out.action, IssueAction::Created);
}

#[tokio::test]
async fn errors_carry_githubs_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/check-runs"))
        .respond_with(ResponseTemplate::new(404).set_body_json(fixture("error-404.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(ResponseTemplate::new(422).set_body_json(fixture("error-422.json")))
        .mount(&server)
        .await;
    let ctx = ctx(&server.uri());

    let e = create_check_run(&ctx, "c", Verdict::Pass, "t", "s")
        .await
        .unwrap_err();
    assert!(
        matches!(e, GitHubError::NotFound { ref message, .. } if message == "Not Found"),
        "{e:?}"
    );
    assert!(e.to_string().contains("raykao/daedalus"), "{e}");

    let e = open_or_comment_issue(&ctx, "t", "b").await.unwrap_err();
    assert!(matches!(e, GitHubError::Validation { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Validation Failed") && msg.contains("\"field\":\"color\""),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN));
}

#[tokio::test]
async fn bad_token_and_no_permission() {
    let server = MockServer::start().await;
    // GitHub's 401 and 403 bodies have the same shape as its 404.
    let mut bad = fixture("error-404.json");
    bad["message"] = json!("Bad credentials");
    bad["status"] = json!("401");
    Mock::given(method("POST"))
        .and(path("/repos/raykao/daedalus/check-runs"))
        .respond_with(ResponseTemplate::new(401).set_body_json(bad))
        .mount(&server)
        .await;
    let mut denied = fixture("error-404.json");
    denied["message"] = json!("Resource not accessible by integration");
    denied["status"] = json!("403");
    Mock::given(method("GET"))
        .and(path("/repos/raykao/daedalus/issues"))
        .respond_with(ResponseTemplate::new(403).set_body_json(denied))
        .mount(&server)
        .await;
    let ctx = ctx(&server.uri());

    let e = create_check_run(&ctx, "c", Verdict::Pass, "t", "s")
        .await
        .unwrap_err();
    assert!(matches!(e, GitHubError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("Bad credentials"));
    assert!(!e.to_string().contains(TOKEN));

    let e = open_or_comment_issue(&ctx, "t", "b").await.unwrap_err();
    assert!(matches!(e, GitHubError::Forbidden { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Resource not accessible by integration"),
        "{msg}"
    );
    assert!(msg.contains("issues: write"), "{msg}");
}

#[tokio::test]
async fn unreachable_api() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ctx = ctx(&format!("http://127.0.0.1:{port}"));
    let e = create_check_run(&ctx, "c", Verdict::Pass, "t", "s")
        .await
        .unwrap_err();
    assert!(matches!(e, GitHubError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn outside_actions_there_is_no_context() {
    let e = GitHubContext::detect(|_| None).unwrap_err();
    assert!(e.to_string().contains("not running in GitHub Actions"));
}
