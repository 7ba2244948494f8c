//! The seven shipped drills as Kubernetes faults, end to end through real
//! Prometheus and Alertmanager: on `--target local`, and on a remote-style
//! target pointed at a running `firedrill stack` the way the cluster job
//! sees the cluster (URLs and a token; no stack started by the run).

use crate::common;

use common::run::report_json;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TOKEN_ENV: &str = "REHEARSAL_KUBE_TOKEN";
const KUBE_DRILLS: [&str; 6] = [
    "collector-down",
    "consumer-stop",
    "keda-error",
    "orchestrator-down",
    "worker-crash",
    "worker-image-tag",
];
const SCALED_JOB: &str = "/apis/keda.sh/v1alpha1/namespaces/daedalus/scaledjobs/daedalus-worker";
const IMAGE: &str = "/spec/jobTargetRef/template/spec/containers/0/image";

fn firedrill(reports: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.current_dir(REPO)
        .env("CI", "true")
        .arg("--reports-dir")
        .arg(reports);
    c
}

fn events(trial: &Value) -> Vec<String> {
    trial["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

/// Every drill passed, each trial's timeline runs inject -> firing -> in
/// Alertmanager -> routed -> revert -> resolved, and Alertmanager routed it
/// to the local stack's receiver.
fn assert_all_passed(json: &Value, names: &[&str]) {
    let drills = json["drills"].as_array().unwrap();
    let got: Vec<&str> = drills.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(got, names);
    for d in drills {
        assert_eq!(d["verdict"], "pass", "{}: {}", d["name"], d["reason"]);
        let t = &d["trials"][0];
        let ev = events(t);
        for want in [
            "inject_started",
            "inject_done",
            "firing",
            "in_alertmanager",
            "routed",
            "revert_done",
            "resolved",
        ] {
            assert!(
                ev.iter().any(|e| e == want),
                "{}: {want} in {ev:?}",
                d["name"]
            );
        }
        assert_eq!(t["receivers"], json!(["firedrill"]), "{}", d["name"]);
        assert_eq!(t["reverted"], true, "{}", d["name"]);
    }
}

#[test]
fn all_seven_drills_pass_on_the_local_stack_through_the_kubernetes_api() {
    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = firedrill(reports.path())
        .args(["drill", "--all", "--target", "local"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    eprintln!(
        "drill --all --target local: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let json = report_json(reports.path());
    let mut all = KUBE_DRILLS.to_vec();
    all.push("stream-unhealthy");
    all.sort();
    assert_all_passed(&json, &all);
    // Every structural rule the local stack loads is proven by this run.
    let coverage = &json["coverage"];
    let rules = coverage["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 7, "{coverage:#}");
    assert!(
        rules.iter().all(|r| r["status"] == "proven"),
        "{coverage:#}"
    );
    for d in json["drills"].as_array().unwrap() {
        let kind = d["fault"].as_str().unwrap_or_default();
        if d["name"] == "stream-unhealthy" {
            continue;
        }
        assert!(
            kind.starts_with("kubernetes-"),
            "{} is not a Kubernetes fault: {kind}",
            d["name"]
        );
    }
}

#[test]
fn all_seven_drills_pass_in_parallel_groups_none_sharing_an_object() {
    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = firedrill(reports.path())
        .args(["drill", "--all", "--parallel", "--target", "local"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    eprintln!(
        "drill --all --parallel --target local: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The groups are shown before anything is injected.
    let plan = stderr.find("parallel: group 1:").expect(&stderr);
    let first_inject = stderr.find("injecting:").expect(&stderr);
    assert!(plan < first_inject, "{stderr}");
    let json = report_json(reports.path());
    let mut all = KUBE_DRILLS.to_vec();
    all.push("stream-unhealthy");
    all.sort();
    assert_all_passed(&json, &all);
    // The four ScaledJob drills one to a group: never two on the one
    // object.
    let groups = json["drill_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "{groups:#?}");
    for g in groups {
        let on_job = g["footprints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f.as_str().unwrap().contains("ScaledJob"))
            .count();
        assert_eq!(on_job, 1, "{g:#}");
        assert_eq!(g["crosstalk"], json!([]), "{g:#}");
    }
    // Coverage works as in a serial run: every structural rule proven.
    let rules = json["coverage"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 7);
    assert!(rules.iter().all(|r| r["status"] == "proven"), "{rules:#?}");
}

/// `firedrill stack` in the background, and what it printed.
struct Stack {
    child: Child,
    nats: String,
    prometheus: String,
    alertmanager: String,
    kube: String,
    token: String,
}

impl Stack {
    fn start() -> Stack {
        let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(REPO)
            .env("CI", "true")
            .args(["stack", "--target", "local"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut field = |name: &str| -> String {
            for line in lines.by_ref() {
                let line = line.unwrap();
                if let Some(rest) = line.trim().strip_prefix(name) {
                    return rest.trim().to_string();
                }
            }
            panic!("firedrill stack never printed {name}");
        };
        let nats = field("NATS");
        let prometheus = field("Prometheus");
        let alertmanager = field("Alertmanager");
        let kube_line = field("Kubernetes");
        let (kube, token_file) = kube_line
            .split_once("  (bearer token in ")
            .expect("kube line");
        let token = std::fs::read_to_string(token_file.trim_end_matches(')'))
            .unwrap()
            .trim()
            .to_string();
        // Keep reading what the stack prints: a closed pipe would make its
        // next line fail.
        std::thread::spawn(move || lines.for_each(drop));
        Stack {
            child,
            nats,
            prometheus,
            alertmanager,
            kube: kube.to_string(),
            token,
        }
    }

    /// A remote-style target for this stack (as the cluster job sees a cluster).
    fn config(&self, dir: &Path) -> PathBuf {
        let drills: Vec<String> = KUBE_DRILLS.iter().map(|d| format!("\"{d}\"")).collect();
        let text = format!(
            r#"[targets.rehearsal]
description = "a running firedrill stack, reached only by URL and token"
namespace = "daedalus"
nats_url = "{}"
prometheus_url = "{}"
alertmanager_url = "{}"
kube_api_url = "{}"
kube_token_env = "{TOKEN_ENV}"
drills_allowed = true
drill_time_scale = 0.2
drills = [{}]

[targets.rehearsal.variables]
stream = "DAEDALUS_TASKS"
consumer = "daedalus-workers"
orchestrator_deployment = "daedalus-orchestrator"
worker_scaledjob = "daedalus-worker"
collector_deployment = "otel-collector"
collector_namespace = "daedalus"
broken_worker_image = "ghcr.io/daedalus/worker:firedrill-no-such-tag"
missing_stream = "FIREDRILL_NO_SUCH_STREAM"
alert_receiver = "firedrill"
"#,
            self.nats,
            self.prometheus,
            self.alertmanager,
            self.kube,
            drills.join(", ")
        );
        let path = dir.join("firedrill.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn firedrill(&self, reports: &Path, config: &Path) -> Command {
        let mut c = firedrill(reports);
        c.env(TOKEN_ENV, &self.token).arg("--config").arg(config);
        c
    }

    /// `drill worker-image-tag --target rehearsal`, in the background.
    fn start_image_drill(&self, reports: &Path, config: &Path) -> Child {
        self.firedrill(reports, config)
            .args(["drill", "worker-image-tag", "--target", "rehearsal"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// One request to the stack's Kubernetes API (reqwest, so the test
    /// needs no curl on the machine).
    fn call(&self, method: reqwest::Method, path: &str, merge_patch: Option<Value>) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method.clone(), format!("{}{path}", self.kube))
                .bearer_auth(&self.token);
            if let Some(body) = merge_patch {
                req = req
                    .header("content-type", "application/merge-patch+json")
                    .body(body.to_string());
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            assert!(status.is_success(), "{method} {path}: {status} {body}");
            serde_json::from_str(&body).unwrap()
        })
    }

    fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
    }

    fn merge_patch(&self, path: &str, body: Value) {
        self.call(reqwest::Method::PATCH, path, Some(body));
    }

    fn wait_for_image(&self, unlike: &str) -> String {
        let start = Instant::now();
        loop {
            let image = self.get(SCALED_JOB).pointer(IMAGE).unwrap().clone();
            if image != unlike {
                return image.as_str().unwrap().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the drill never changed the image"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child) -> Option<i32> {
    common::run::wait(child, Duration::from_secs(120))
}

#[test]
fn a_remote_style_target_on_a_running_stack_gives_the_same_verdicts() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.config(dir.path());
    let before = stack.get(SCALED_JOB);
    let reports = dir.path().join("reports");
    let out = stack
        .firedrill(&reports, &config)
        .args(["drill", "--all", "--target", "rehearsal"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_all_passed(&report_json(&reports), &KUBE_DRILLS);
    // Every change was put back.
    let after = stack.get(SCALED_JOB);
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(
        after["metadata"]["annotations"],
        before["metadata"]["annotations"]
    );
}

#[test]
fn sigkill_mid_drill_then_recover_restores_the_object_exactly() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.config(dir.path());
    let reports = dir.path().join("reports");
    let before = stack.get(SCALED_JOB);
    let original = before.pointer(IMAGE).unwrap().as_str().unwrap().to_string();
    let mut child = stack.start_image_drill(&reports, &config);
    let broken = stack.wait_for_image(&original);
    assert_eq!(broken, "ghcr.io/daedalus/worker:firedrill-no-such-tag");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    assert_eq!(
        stack.get(SCALED_JOB).pointer(IMAGE).unwrap(),
        &json!(broken)
    );

    let out = stack
        .firedrill(&reports, &config)
        .arg("recover")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let after = stack.get(SCALED_JOB);
    assert_eq!(
        serde_json::to_string(&after["spec"]).unwrap(),
        serde_json::to_string(&before["spec"]).unwrap(),
        "the spec is byte-identical to before the drill"
    );
}

#[test]
fn an_edit_made_during_the_drill_is_reported_not_overwritten() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.config(dir.path());
    let reports = dir.path().join("reports");
    let original = stack
        .get(SCALED_JOB)
        .pointer(IMAGE)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let mut child = stack.start_image_drill(&reports, &config);
    stack.wait_for_image(&original);
    // Someone rolls out a hotfix image while the drill is live.
    let hotfix = "ghcr.io/daedalus/worker:1.0.1-hotfix";
    stack.merge_patch(
        SCALED_JOB,
        json!({"spec": {"jobTargetRef": {"template": {"spec": {"containers": [
            {"name": "worker", "image": hotfix, "imagePullPolicy": "IfNotPresent",
             "env": [{"name": "NATS_URL", "value": stack.nats}]}
        ]}}}}}),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait(&mut child), Some(5), "a revert that could not be done");
    assert_eq!(
        stack.get(SCALED_JOB).pointer(IMAGE).unwrap(),
        &json!(hotfix),
        "the hotfix was not overwritten"
    );
    let json = report_json(&reports);
    let error = json["drills"][0]["trials"][0]["revert_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("CONFLICT") && error.contains(hotfix),
        "{json:#}"
    );
}

#[test]
fn an_alert_routed_to_another_receiver_fails_naming_it() {
    let reports = tempfile::tempdir().unwrap();
    let out = firedrill(reports.path())
        .arg("--drills-dir")
        .arg(format!("{REPO}/tests/fixtures/drills/wrong-receiver"))
        .args(["drill", "orchestrator-down", "--target", "local"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json = report_json(reports.path());
    let reason = json["drills"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("routed it to \"firedrill\"")
            && reason.contains("\"daedalus/daedalus/pagerduty\""),
        "{reason}"
    );
    // Failing on routing still reverted the fault.
    assert_eq!(json["drills"][0]["trials"][0]["reverted"], true);
}

#[test]
fn coverage_names_the_rules_no_drill_exercises() {
    let dir = tempfile::tempdir().unwrap();
    let drills = dir.path().join("induced-failures");
    std::fs::create_dir(&drills).unwrap();
    std::fs::copy(
        format!("{REPO}/induced-failures/orchestrator-down.toml"),
        drills.join("orchestrator-down.toml"),
    )
    .unwrap();
    let out = firedrill(&dir.path().join("reports"))
        .arg("--drills-dir")
        .arg(&drills)
        .args(["coverage", "--target", "local", "--min-coverage", "50%"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1/7 alerting rules have a drill (14.3%)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("below the minimum coverage of 50%"),
        "{stdout}"
    );
    let not_drilled = stdout.lines().filter(|l| l.contains("not drilled")).count();
    assert_eq!(not_drilled, 6, "{stdout}");
    // Uncovered page-severity alerts come first; the drilled one last.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        rows.last().unwrap().contains("OrchestratorDown"),
        "{stdout}"
    );
}
