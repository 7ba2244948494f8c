//! A second platform, run entirely from its own spec files
//! (`tests/fixtures/platforms/aegis-compose/`): no NATS, no namespace, its
//! own rules loaded into the real local stack, its own criteria and `exec`
//! drills against a small HTTP service this test starts with the platform's
//! metric names. Nothing of the Daedalus specs is in the directory the runs
//! read.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::run::{report_json, wait};

const TARGET: &str = "aegis-compose";

/// The Aegis API stand-in: `/metrics` with `http_requests_total{status}`,
/// fed by simulated traffic. `<faults>/down` makes the scrape answer 503;
/// `<faults>/errors` turns one request in five into a 500.
async fn aegis_api(faults: PathBuf) -> String {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    {
        let (ok, failed, faults) = (ok.clone(), failed.clone(), faults.clone());
        tokio::spawn(async move {
            for n in 0u64.. {
                if n % 5 == 0 && faults.join("errors").exists() {
                    failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let metrics = move || {
        let (ok, failed, faults) = (ok.clone(), failed.clone(), faults.clone());
        async move {
            if faults.join("down").exists() {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let body = format!(
                "# TYPE http_requests_total counter\nhttp_requests_total{{status=\"200\"}} {}\nhttp_requests_total{{status=\"500\"}} {}\n",
                ok.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed)
            );
            (axum::http::StatusCode::OK, body)
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A copy of the fixture platform in a fresh directory (runs write their
/// reports next to it, and the accept step adds a target to it).
fn platform_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platforms/aegis-compose");
    let dst = tempfile::tempdir().unwrap();
    copy_dir(&src, dst.path());
    dst
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Platform {
    dir: tempfile::TempDir,
    faults: tempfile::TempDir,
    api: String,
}

impl Platform {
    /// `firedrill <args>` in the platform's directory, its reports under
    /// `reports/<name>`.
    fn firedrill(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        c.current_dir(self.dir.path())
            .env("CI", "true")
            .env_remove("FIREDRILL_TARGET")
            .arg("--reports-dir")
            .arg(self.reports(name))
            .args(["--var", &format!("api_addr={}", self.api)])
            .args([
                "--var",
                &format!("fault_dir={}", self.faults.path().display()),
            ])
            .args(args);
        c
    }

    fn reports(&self, name: &str) -> PathBuf {
        self.dir.path().join("reports").join(name)
    }

    /// Runs `firedrill <args>`; its exit code, stdout+stderr and report.json.
    fn run(&self, name: &str, args: &[&str]) -> (Option<i32>, String, serde_json::Value) {
        let out = self.firedrill(name, args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = report_json(&self.reports(name));
        (out.status.code(), text, report)
    }
}

fn alerts_in_report(report: &serde_json::Value) -> Vec<String> {
    report["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{}={}", d["alert"].as_str().unwrap(), d["verdict"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_without_nats_or_namespace_runs_from_its_own_specs() {
    let faults = tempfile::tempdir().unwrap();
    let api = aegis_api(faults.path().to_path_buf()).await;
    let p = Platform {
        dir: platform_copy(),
        faults,
        api,
    };

    // validate: the platform's own rules, loaded into the real local stack.
    let (code, out, report) = p.run("validate", &["validate", "--target", TARGET]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(report["target"]["namespace"], "", "{out}");
    // Its policy (absent() rules carry `team`, not `namespace`) holds: no
    // finding. Every rule the routing audit saw is one of its own.
    assert!(report.get("validation").is_none(), "{out}");
    let mut routed: Vec<String> = report["routes"]
        .as_array()
        .expect("the routing audit lists every alerting rule")
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["file"].as_str().unwrap(),
                r["alert"].as_str().unwrap()
            )
        })
        .collect();
    routed.sort();
    assert_eq!(
        routed,
        [
            "rules/aegis.yml HighAPIErrorRate",
            "rules/aegis.yml ServiceDown"
        ],
        "{out}"
    );

    // drill: both exec drills time their own alerts, and revert.
    let (code, out, report) = p.run("drill", &["drill", "--all", "--target", TARGET]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        alerts_in_report(&report),
        ["ServiceDown=\"pass\"", "HighAPIErrorRate=\"pass\""],
        "{out}"
    );
    assert!(std::fs::read_dir(p.faults.path()).unwrap().next().is_none());

    // smoke: criteria over the run window plus the target's smoke drill.
    let (code, out, report) = p.run("smoke", &["smoke", "--target", TARGET]);
    assert_eq!(code, Some(0), "{out}");
    let criteria: Vec<String> = report["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c["id"].as_str().unwrap(), c["verdict"]))
        .collect();
    assert_eq!(
        criteria,
        ["API-UP=\"pass\"", "API-TRAFFIC=\"pass\""],
        "{out}"
    );
    assert_eq!(alerts_in_report(&report), ["ServiceDown=\"pass\""], "{out}");
    assert!(report["probes"].as_array().unwrap().is_empty());

    // The same platform as a deployed target (its Prometheus and
    // Alertmanager already running, no nats_url): accept and drill.
    let mut stack = p
        .firedrill("stack", &["stack", "--target", TARGET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(stack.stdout.take().unwrap()).lines();
    let mut urls = std::collections::BTreeMap::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        assert!(!line.contains("NATS"), "no NATS is started: {line}");
        for key in ["Prometheus", "Alertmanager"] {
            if let Some(url) = line.trim().strip_prefix(key) {
                urls.insert(key, url.trim().to_string());
            }
        }
        if line.starts_with("press Ctrl-C") {
            break;
        }
    }
    // The stack opens right after its first scrapes: give increase() the
    // second sample it needs (scrapes every 500ms).
    std::thread::sleep(Duration::from_millis(1500));
    let config = p.dir.path().join("firedrill.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[targets.aegis-live]\nprometheus_url = \"{}\"\nalertmanager_url = \"{}\"\nacceptance_dir = \"acceptance\"\ndrills_dir = \"drills\"\ndrills_allowed = true\n[targets.aegis-live.variables]\nfault_dir = \"{}\"\n",
        urls["Prometheus"],
        urls["Alertmanager"],
        p.faults.path().display()
    ));
    std::fs::write(&config, text).unwrap();
    let (code, out, report) = p.run(
        "accept",
        &["accept", "--target", "aegis-live", "--since", "5s"],
    );
    let (drill_code, drill_out, drill_report) = p.run(
        "drill-live",
        &["drill", "api-down", "--target", "aegis-live"],
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(stack.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(wait(&mut stack, Duration::from_secs(30)), Some(0));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(report["verdict"], "pass", "{out}");
    assert_eq!(drill_code, Some(0), "{drill_out}");
    assert_eq!(
        alerts_in_report(&drill_report),
        ["ServiceDown=\"pass\""],
        "{drill_out}"
    );
}
