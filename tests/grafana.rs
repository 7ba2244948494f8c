//! The Grafana snapshot (AC5's proof) end to end: a real Prometheus (started
//! here, scraping itself every second) answers the panel queries; a wiremock
//! double answers like Grafana 11 with the bodies in tests/fixtures/grafana/.
//!
//! The fixture dashboard's panel queries a Tempo metric this Prometheus does
//! not have, so the test points it at `prometheus_http_requests_total` (with
//! the target variable `$job` and `$__rate_interval`) and adds a collapsed
//! row holding a second panel (`up{job="$job"}`).

use chrono::{DateTime, Utc};
use firedrill::accept::{snapshot_name, snapshot_verdict, SnapshotOutcome};
use firedrill::clients::grafana::{GrafanaClient, GrafanaError, SnapshotInfo, SnapshotSettings};
use firedrill::clients::prometheus::Prometheus;
use firedrill::report::model::RunWindow;
use firedrill::report::Verdict;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::MockServer;

mod common;
use common::grafana::Store;
use common::prometheus::{free_port, start_prometheus, wait_for_scrapes};

const TOKEN_VAR: &str = "FIREDRILL_TEST_GRAFANA_TOKEN";
const TOKEN: &str = "glsa_test_0123456789abcdef";
const UID: &str = "fleet-overview";

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/grafana/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

// ------------------------------------------------------------ Grafana double

/// The fixture dashboard, pointed at metrics the test Prometheus has.
fn test_dashboard() -> Value {
    let mut d = fixture("dashboard-get-by-uid.json");
    d["dashboard"]["uid"] = json!(UID);
    let panel = &mut d["dashboard"]["panels"][0];
    panel["targets"][0]["expr"] = json!(
        r#"sum by (handler) (rate(prometheus_http_requests_total{job="$job"}[$__rate_interval]))"#
    );
    panel["targets"][0]["legendFormat"] = json!("{{handler}}");
    let mut up = panel.clone();
    up["id"] = json!(89);
    up["title"] = json!("Up");
    up["targets"][0]["expr"] = json!(r#"up{job="$job"}"#);
    up["targets"][0]["legendFormat"] = json!("__auto");
    let row = json!({
        "collapsed": true, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 20},
        "id": 90, "panels": [up], "title": "Scrapes", "type": "row"
    });
    d["dashboard"]["panels"].as_array_mut().unwrap().push(row);
    d
}

/// A Grafana 11 double serving the test dashboard.
async fn grafana(read_back_works: bool) -> (MockServer, Store) {
    common::grafana::start(TOKEN, vec![test_dashboard()], read_back_works).await
}

/// A snapshot of dashboard `uid` over the last 5 minutes, with the
/// Prometheus it queries down.
async fn snapshot_prometheus_down(
    grafana: &GrafanaClient,
    uid: &str,
) -> Result<SnapshotInfo, GrafanaError> {
    let window = RunWindow {
        start: Utc::now() - chrono::Duration::minutes(5),
        end: Utc::now(),
    };
    let prom = Prometheus::new("http://127.0.0.1:9");
    grafana
        .snapshot_run(&prom, uid, window, "n", Duration::from_secs(3600), &vars())
        .await
}

fn client(base: &str, token: Option<&str>) -> GrafanaClient {
    let token = token.map(str::to_string);
    GrafanaClient::with_env_lookup(base, Some(TOKEN_VAR), move |k| {
        assert_eq!(k, TOKEN_VAR);
        token.clone()
    })
    .unwrap()
    .with_settings(SnapshotSettings {
        scrape_interval: Duration::from_secs(1),
        max_data_points: 1000,
    })
}

fn vars() -> BTreeMap<String, String> {
    [("job".to_string(), "prometheus".to_string())].into()
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// --------------------------------------------------------------------- tests

#[tokio::test]
async fn snapshot_embeds_real_prometheus_data_and_reads_back() {
    let prom = start_prometheus().await;
    let start = Utc::now();
    wait_for_scrapes(&prom, 4).await;
    let window = RunWindow {
        start,
        end: Utc::now(),
    };
    let (grafana, store) = grafana(true).await;
    let name = snapshot_name("Tempo Operational", "aks-test", "20261123-100000-ab12");

    let info = client(&grafana.uri(), Some(TOKEN))
        .snapshot_run(
            &Prometheus::new(&prom.url),
            UID,
            window,
            &name,
            Duration::from_secs(7 * 24 * 3600),
            &vars(),
        )
        .await
        .unwrap();

    assert!(info.verified, "{info:?}");
    assert_eq!(info.panels, 2, "{info:?}");
    assert!(info.series >= 2, "{info:?}");
    assert!(info.notes.is_empty(), "{:?}", info.notes);
    assert!(info
        .url
        .starts_with(&format!("{}/dashboard/snapshot/", grafana.uri())));
    assert!(info.delete_url.contains("/api/snapshots-delete/"));
    assert_eq!(info.dashboard_uid, UID);
    assert_eq!(info.name, name);
    let expires_in = info.expires_at.unwrap() - Utc::now();
    assert!(expires_in > chrono::Duration::days(6), "{expires_in}");
    let (verdict, reason) = snapshot_verdict(Some(&SnapshotOutcome::Created(info.clone())), true);
    assert_eq!(verdict, Verdict::Pass, "{reason}");
    assert!(!reason.contains("snapshots-delete"), "{reason}");
    assert!(!format!("{info:?}").contains("snapshots-delete"));

    // The body Grafana received.
    let body = store.0.lock().unwrap().values().next().unwrap().clone();
    assert_eq!(body["name"], name);
    assert!(name.contains("aks-test") && name.contains("20261123-100000-ab12"));
    assert_eq!(body["expires"], 7 * 24 * 3600);
    assert_eq!(body["external"], false);
    let d = &body["dashboard"];
    assert_eq!(
        d["time"],
        json!({"from": iso(window.start), "to": iso(window.end)})
    );
    assert_eq!(d["refresh"], "");
    assert_eq!(d["links"], json!([]));
    assert_eq!(
        d["panels"].as_array().unwrap().len(),
        2,
        "panel and row kept"
    );
    assert_eq!(d["panels"][1]["type"], "row");

    let window_ms = window.start.timestamp_millis()..=window.end.timestamp_millis();
    let requests = &d["panels"][0];
    let up = &d["panels"][1]["panels"][0];
    for panel in [requests, up] {
        assert_eq!(
            panel["datasource"],
            json!({"type": "datasource", "uid": "grafana"})
        );
        let targets = panel["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0]["queryType"], "snapshot");
        assert_eq!(targets[0]["datasource"]["uid"], "grafana");
        let frames = targets[0]["snapshot"].as_array().unwrap();
        assert!(!frames.is_empty(), "{}", panel["title"]);
        let legacy = panel["snapshotData"].as_array().unwrap();
        assert_eq!(
            legacy.len(),
            frames.len(),
            "legacy form carries the same frames"
        );
        for f in frames {
            assert_eq!(f["schema"]["refId"], "A");
            assert_eq!(f["schema"]["meta"]["type"], "timeseries-multi");
            assert_eq!(f["schema"]["fields"][0]["name"], "Time");
            assert_eq!(f["schema"]["fields"][0]["config"]["interval"], 1000);
            let times = f["data"]["values"][0].as_array().unwrap();
            let values = f["data"]["values"][1].as_array().unwrap();
            assert!(!times.is_empty());
            assert_eq!(times.len(), values.len());
            for t in times {
                assert!(
                    window_ms.contains(&t.as_i64().unwrap()),
                    "{t} outside the window"
                );
            }
            for v in values {
                assert!(v.as_f64().unwrap() >= 0.0, "{v}");
            }
        }
    }
    // Real series from that Prometheus: `up` of its own job is 1, and the
    // request counter has the handlers this test hit.
    let up_frame = &up["targets"][0]["snapshot"][0];
    assert_eq!(up_frame["schema"]["fields"][1]["name"], "up");
    assert_eq!(
        up_frame["schema"]["fields"][1]["labels"]["job"],
        "prometheus"
    );
    assert!(up_frame["data"]["values"][1]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v == 1));
    let handlers: Vec<&str> = requests["targets"][0]["snapshot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["schema"]["name"].as_str().unwrap())
        .collect();
    assert!(handlers.contains(&"/api/v1/query"), "{handlers:?}");
    assert_eq!(
        requests["targets"][0]["snapshot"][0]["schema"]["fields"][1]["config"]["displayNameFromDS"],
        requests["targets"][0]["snapshot"][0]["schema"]["name"]
    );
    // Variables reduced to their current value.
    for v in d["templating"]["list"].as_array().unwrap() {
        assert_eq!(v["options"], json!([v["current"]]));
        assert_eq!(v["query"], "");
    }
}

#[tokio::test]
async fn a_rejected_token_names_the_env_var_never_the_token() {
    let (grafana, _) = grafana(true).await;
    let wrong = "glsa_wrong_token_do_not_print";
    let err = snapshot_prometheus_down(&client(&grafana.uri(), Some(wrong)), UID)
        .await
        .unwrap_err();
    assert!(matches!(err, GrafanaError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(TOKEN_VAR), "{msg}");
    assert!(msg.contains(&grafana.uri()), "{msg}");
    assert!(msg.contains("Invalid API key [api-key.invalid]"), "{msg}");
    assert!(msg.contains("Editor"), "{msg}");
    assert!(!msg.contains(wrong) && !format!("{err:?}").contains(wrong));
    let (v, _) = snapshot_verdict(Some(&SnapshotOutcome::from(Err(err))), false);
    assert_eq!(v, Verdict::Error);
}

#[tokio::test]
async fn token_from_the_named_env_var() {
    let (grafana, _) = grafana(true).await;
    // A name no other test uses, so setting it races with nothing.
    std::env::set_var("FIREDRILL_TEST_GRAFANA_TOKEN_ENV", TOKEN);
    let c = GrafanaClient::new(&grafana.uri(), Some("FIREDRILL_TEST_GRAFANA_TOKEN_ENV")).unwrap();
    let d = c.get_dashboard(UID).await.unwrap();
    assert_eq!(d.dashboard["uid"], UID);
    assert_eq!(d.meta["folderTitle"], "General");

    let err =
        GrafanaClient::new(&grafana.uri(), Some("FIREDRILL_TEST_UNSET_TOKEN_VAR")).unwrap_err();
    assert!(matches!(err, GrafanaError::TokenUnset { .. }));
    assert!(err.to_string().contains("FIREDRILL_TEST_UNSET_TOKEN_VAR"));
}

#[tokio::test]
async fn a_missing_dashboard_names_the_uid_and_where_to_set_it() {
    let (grafana, store) = grafana(true).await;
    let err = snapshot_prometheus_down(&client(&grafana.uri(), Some(TOKEN)), "no-such-dashboard")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GrafanaError::DashboardNotFound { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`no-such-dashboard`"), "{msg}");
    assert!(msg.contains("Dashboard not found"), "{msg}");
    assert!(
        msg.contains("dashboard_uid") && msg.contains("firedrill.toml"),
        "{msg}"
    );
    assert!(msg.contains(&grafana.uri()), "{msg}");
    assert!(store.0.lock().unwrap().is_empty(), "nothing created");
}

#[tokio::test]
async fn a_failed_read_back_fails_ac5_and_failed_panels_do_not_abort() {
    let (grafana, store) = grafana(false).await;
    // Prometheus is down: every panel gets an empty frame and a note, and the
    // snapshot is still created.
    let info = snapshot_prometheus_down(&client(&grafana.uri(), Some(TOKEN)), UID)
        .await
        .unwrap();
    assert_eq!(store.0.lock().unwrap().len(), 1, "created");
    assert!(!info.verified);
    assert_eq!((info.panels, info.series), (2, 0));
    let notes = info.notes.join("\n");
    assert!(
        notes.contains("\"Bytes Written / s\" query A failed"),
        "{notes}"
    );
    assert!(notes.contains("\"Up\" query A failed"), "{notes}");
    assert!(notes.contains("unreachable"), "{notes}");
    assert!(
        notes.contains("Snapshot not found [dashboardsnapshots.not-found]"),
        "{notes}"
    );
    let body = store.0.lock().unwrap().values().next().unwrap().clone();
    let t = &body["dashboard"]["panels"][0]["targets"][0];
    assert_eq!(t["queryType"], "snapshot");
    assert_eq!(t["snapshot"][0]["schema"]["fields"], json!([]));

    let (v, reason) = snapshot_verdict(Some(&SnapshotOutcome::Created(info)), false);
    assert_eq!(v, Verdict::Fail, "{reason}");
    assert!(reason.contains("reading it back failed"), "{reason}");
}

#[tokio::test]
async fn an_unreachable_grafana_is_a_dependency_error() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let err = client(&base, Some(TOKEN))
        .get_dashboard(UID)
        .await
        .unwrap_err();
    assert!(matches!(err, GrafanaError::Refused { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&base), "{msg}");
    assert!(msg.contains("refused the connection"), "{msg}");
    assert!(msg.contains("grafana_url"), "{msg}");
    let (v, _) = snapshot_verdict(Some(&SnapshotOutcome::Failed(err.to_string())), true);
    assert_eq!(v, Verdict::Error);
}

#[tokio::test]
async fn a_grafana_that_never_answers_times_out_and_says_after_how_long() {
    // Accepts the connection, reads, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _hold = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(4).flatten().collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(conns);
    });
    let err = client(&base, Some(TOKEN))
        .with_timeout(Duration::from_millis(700))
        .get_dashboard(UID)
        .await
        .unwrap_err();
    assert!(matches!(err, GrafanaError::Timeout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("within 700ms") && msg.contains("timed out"),
        "{msg}"
    );
    assert!(msg.contains(&base), "{msg}");
}

#[tokio::test]
async fn an_html_page_says_grafana_url_must_be_the_api_root() {
    let server = MockServer::start().await;
    // What a login proxy or the Grafana UI at the wrong path answers.
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Sign in</title></head><body></body></html>",
            "text/html; charset=utf-8",
        ))
        .mount(&server)
        .await;
    let err = client(&server.uri(), Some(TOKEN))
        .get_dashboard(UID)
        .await
        .unwrap_err();
    assert!(matches!(err, GrafanaError::Html { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("HTML page, not JSON"), "{msg}");
    assert!(
        msg.contains("API root") && msg.contains("grafana_url"),
        "{msg}"
    );
    assert!(msg.contains("Sign in"), "{msg}");
}

#[test]
fn no_grafana_on_the_target_skips_unless_required() {
    let outcome = SnapshotOutcome::NotConfigured("target `local` has no grafana_url".into());
    assert_eq!(snapshot_verdict(Some(&outcome), false).0, Verdict::Skipped);
    let (v, reason) = snapshot_verdict(Some(&outcome), true);
    assert_eq!(v, Verdict::Fail);
    assert!(reason.contains("--require-snapshot") && reason.contains("grafana_url"));
}
