//! The routing audit walks Alertmanager's route tree exactly as
//! Alertmanager does: for every case, firedrill's receivers (from the
//! configuration a real Alertmanager serves on /api/v2/status) equal what
//! `amtool config routes test` prints for the same file.

use firedrill::clients::alertmanager::Alertmanager;
use firedrill::stack::binaries::{self, Tool};
use firedrill::validate::routing::{parse_config, receivers};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alertmanager-routing/operator-namespaces.yml")
}

/// amtool ships with Alertmanager (Debian: prometheus-alertmanager).
fn amtool() -> PathBuf {
    let am = binaries::find(Tool::Alertmanager).unwrap_or_else(|e| panic!("{e}"));
    let beside = am.with_file_name("amtool");
    if beside.exists() {
        return beside;
    }
    PathBuf::from("amtool")
}

fn amtool_receivers(config: &Path, labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut cmd = Command::new(amtool());
    cmd.args(["config", "routes", "test", "--config.file"])
        .arg(config);
    for (k, v) in labels {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("amtool runs");
    assert!(out.status.success(), "amtool failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Every combination of a few values per label the routes match on
/// (missing included): 5 x 5 x 5 x 3 = 375 label sets.
fn cases() -> Vec<BTreeMap<String, String>> {
    let namespaces = ["daedalus", "payments", "kube-system", "monitoring", ""];
    let severities = ["page", "critical", "warning", "info", ""];
    let alertnames = [
        "Watchdog",
        "InfoInhibitor",
        "KubePodCrashLooping",
        "OrchestratorDown",
        "KubeDeploymentReplicasMismatch",
    ];
    let services = ["postgres", "nats", ""];
    let mut out = Vec::new();
    for ns in namespaces {
        for sev in severities {
            for name in alertnames {
                for svc in services {
                    let mut l = BTreeMap::new();
                    l.insert("alertname".to_string(), name.to_string());
                    for (k, v) in [("namespace", ns), ("severity", sev), ("service", svc)] {
                        if !v.is_empty() {
                            l.insert(k.to_string(), v.to_string());
                        }
                    }
                    out.push(l);
                }
            }
        }
    }
    out
}

/// The child, and its data directory (removed when dropped).
struct Am(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Am {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_alertmanager(config: &Path) -> (Am, String) {
    let bin = binaries::find(Tool::Alertmanager).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let url = format!("http://127.0.0.1:{port}");
    let am = Am(child, dir);
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{url}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (am, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager at {url} did not become ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_equals_amtool_on_an_operator_style_configuration() {
    let config = fixture();
    let (_am, url) = start_alertmanager(&config).await;
    // The configuration as the running Alertmanager re-renders it.
    let original = Alertmanager::new(&url).config_original().await.unwrap();
    let root = parse_config(&original).unwrap();
    let cases = cases();
    assert_eq!(cases.len(), 375);
    let mut mismatches = Vec::new();
    let mut distinct = std::collections::BTreeSet::new();
    for labels in &cases {
        let ours = receivers(&root, labels);
        let theirs = amtool_receivers(&config, labels);
        distinct.insert(theirs.clone());
        if ours != theirs {
            mismatches.push(format!("{labels:?}: firedrill {ours:?}, amtool {theirs:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The cases exercise the tree: continue chains, nesting, the default.
    assert!(distinct.len() >= 8, "{distinct:?}");
    assert!(
        distinct.contains(&vec!["Default".to_string()]),
        "{distinct:?}"
    );
    assert!(
        distinct.iter().any(|d| d.len() >= 3),
        "no case went through a continue chain: {distinct:?}"
    );
}

#[test]
fn unreadable_configurations_say_why() {
    assert!(parse_config("route: [")
        .unwrap_err()
        .to_string()
        .contains("not YAML"));
    assert!(parse_config("receivers: []")
        .unwrap_err()
        .to_string()
        .contains("no `route`"));
    let e = parse_config(
        "route:\n  receiver: a\n  routes:\n  - receiver: b\n    matchers: ['severity=~\"(\"']\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("route.routes[0]") && e.contains("invalid regex"),
        "{e}"
    );
}
