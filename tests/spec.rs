//! Spec loading: every invalid fixture is reported at the right file, line
//! and key; the repo's own specs and the built-in fallback load cleanly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firedrill::spec::criteria::{CmpOp, CriterionKind, OnEmpty};
use firedrill::spec::drill::{Fault, ScaleKind};
use firedrill::spec::probe::BUILTIN_SENTINEL_PROBE;
use firedrill::spec::target::BUILTIN_LOCAL_TARGET;
use firedrill::spec::{
    builtin_local_target, is_env_var_name, load_plan, load_target, parse_duration, plan_drills,
    Endpoints, LoadOptions, Plan, SpecError, SpecErrorKind, Vars,
};

const FIXTURES: &str = "tests/fixtures/spec";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn opts(root: impl Into<PathBuf>, target: &str) -> LoadOptions {
    LoadOptions {
        root: root.into(),
        ..LoadOptions::new(target)
    }
}

struct Case {
    /// Directory under `invalid/`, holding the one offending file.
    name: &'static str,
    target: &'static str,
    /// The file the error must name, relative to the case directory.
    file: &'static str,
    line: Option<usize>,
    key: Option<&'static str>,
    kind: SpecErrorKind,
    /// Part of the message.
    says: &'static str,
}

const fn case(
    name: &'static str,
    target: &'static str,
    file: &'static str,
    line: Option<usize>,
    key: Option<&'static str>,
    kind: SpecErrorKind,
    says: &'static str,
) -> Case {
    Case {
        name,
        target,
        file,
        line,
        key,
        kind,
        says,
    }
}

use SpecErrorKind as K;

#[rustfmt::skip]
const CASES: &[Case] = &[
    case("syntax", "local", "firedrill.toml", Some(7), Some("targets.local.fleet.cold_start"), K::Syntax, "invalid TOML"),
    case("unknown-key-top", "local", "firedrill.toml", Some(2), Some("default_target"), K::UnknownKey, "valid keys here: targets"),
    case("unknown-key-nested", "local", "firedrill.toml", Some(14), Some("targets.local.fleet.cold_starts"), K::UnknownKey, "unknown key \"cold_starts\""),
    case("unknown-key-fault", "local", "induced-failures/worker-crash.toml", Some(8), Some("fault.severity"), K::UnknownKey, "unknown key \"severity\""),
    case("bad-duration", "local", "firedrill.toml", Some(14), Some("targets.local.fleet.cold_start"), K::InvalidValue, "invalid duration \"5 parsecs\" (expected a humantime duration such as \"90s\" or \"3m\")"),
    case("duration-over-cap", "local", "induced-failures/worker-crash.toml", Some(3), Some("deadline"), K::InvalidValue, "duration \"1000000years\" is longer than the maximum of 30 days (\"720h\")"),
    case("missing-key", "local", "acceptance/phase5.toml", Some(7), Some("criterion[1].title"), K::MissingKey, "missing required key \"title\" (add it to this [[criterion]] entry)"),
    case("unknown-target", "prod", "firedrill.toml", None, None, K::UnknownTarget, "known targets: local (built-in), staging"),
    case("unknown-variable", "local", "acceptance/phase5.toml", Some(6), Some("criterion[0].query"), K::UnknownVariable, "unknown template variable {{windw}} (available here: broken_worker_image, end, missing_stream, namespace, sentinel.task_id, sentinel.trace_id, start, stream, window"),
    case("invalid-pass-if", "local", "acceptance/phase5.toml", Some(5), Some("criterion[0].pass_if"), K::InvalidValue, "invalid pass_if \"below 1500\""),
    case("duplicate-criterion-id", "local", "acceptance/phase5.toml", Some(8), Some("criterion[1].id"), K::Duplicate, "criterion id \"AC1\" is already used at"),
    case("drill-name-mismatch", "local", "induced-failures/worker-crash.toml", Some(1), Some("name"), K::NameMismatch, "must equal the file name \"worker-crash\""),
    case("drill-unknown-probe", "local", "induced-failures/consumer-stop.toml", Some(10), Some("trigger.probe"), K::UnknownReference, "unknown probe \"sentinal\" (loaded probes: sentinel)"),
    case("remote-missing-prometheus-url", "aks-test", "firedrill.toml", Some(3), Some("targets.aks-test.prometheus_url"), K::MissingKey, "missing required key \"prometheus_url\""),
    case("invalid-url", "aks-test", "firedrill.toml", Some(4), Some("targets.aks-test.prometheus_url"), K::InvalidValue, "invalid URL \"http//prometheus.example/\": relative URL without a base"),
    case("count-zero", "local", "probes/sentinel.toml", Some(6), Some("count"), K::InvalidValue, "must be from 1 to 1000000, got 0"),
    case("local-with-remote-key", "local", "firedrill.toml", Some(1), Some("targets.local.prometheus_url"), K::InvalidValue, "does not apply to stack = \"local\""),
    case("fault-missing-key", "local", "induced-failures/worker-image-tag.toml", Some(5), Some("fault.pointer"), K::MissingKey, "kind = \"kubernetes-patch\" needs it"),
    case("fault-key-of-other-kind", "local", "induced-failures/worker-image-tag.toml", Some(5), Some("fault.pointer"), K::InvalidValue, "does not apply to kind = \"fleet\""),
    case("unknown-fleet-fault", "local", "induced-failures/worker-crash.toml", Some(7), Some("fault.fault"), K::InvalidValue, "unknown value \"worker-meltdown\" (expected one of: worker-image-tag, worker-crash"),
    case("bad-env-var-name", "aks-test", "firedrill.toml", Some(6), Some("targets.aks-test.grafana_token_env"), K::InvalidValue, "invalid environment variable name"),
    case("snapshot-with-query", "local", "acceptance/phase5.toml", Some(1), Some("criterion[0].query"), K::InvalidValue, "does not apply to kind = \"snapshot\""),
    case("probe-outside-fleet", "local", "probes/sentinel.toml", Some(3), Some("subject"), K::InvalidValue, "not captured by the local fleet's stream (subjects: daedalus.tasks.>)"),
    case("drill-unknown-variable", "local", "induced-failures/keda-error.toml", Some(3), Some("expect_labels.cluster"), K::UnknownVariable, "unknown template variable {{cluster}} (available here: alert_receiver, broken_worker_image, collector_deployment, collector_namespace, consumer, missing_stream, namespace, orchestrator_deployment, stream, worker_pod_prefix, worker_scaledjob;"),
    case("spaced-template", "local", "acceptance/phase5.toml", Some(4), Some("criterion[0].query"), K::InvalidValue, "write {{sentinel.task_id}} without spaces"),
    case("unbalanced-query", "local", "acceptance/phase5.toml", Some(4), Some("criterion[0].query"), K::InvalidValue, "query is not valid PromQL: '(' at character 4 is never closed"),
    // Checked once, at load: the fault drivers take these as given.
    case("exec-empty-command", "local", "induced-failures/worker-crash.toml", Some(7), Some("fault.inject"), K::InvalidValue, "must list at least one value"),
    case("patch-bad-pointer", "local", "induced-failures/worker-image-tag.toml", Some(11), Some("fault.pointer"), K::InvalidValue, "invalid JSON pointer \"spec/template/spec/containers/0/image\""),
    case("scale-not-a-workload", "local", "induced-failures/orchestrator-down.toml", Some(7), Some("fault.object_kind"), K::InvalidValue, "scales a Deployment or StatefulSet, not \"ScaledJob\""),
    case("reserved-variable", "aks-test", "firedrill.toml", Some(8), Some("targets.aks-test.variables.window"), K::InvalidValue, "variable name \"window\" is reserved"),
];

fn load_invalid(case: &Case) -> SpecError {
    let root = Path::new(FIXTURES).join("invalid").join(case.name);
    match load_plan(&opts(&root, case.target)) {
        Ok(_) => panic!("{}: loaded without error", case.name),
        Err(e) => e,
    }
}

#[test]
fn every_invalid_fixture_names_file_line_and_key() {
    let mut failures = Vec::new();
    for case in CASES {
        let err = load_invalid(case);
        let want_file = Path::new(FIXTURES)
            .join("invalid")
            .join(case.name)
            .join(case.file);
        let got = (&err.file, err.line, err.key.as_deref(), err.kind);
        let want = (&want_file, case.line, case.key, case.kind);
        if got != want || !err.message.contains(case.says) {
            failures.push(format!(
                "{}:\n  got  {got:?}\n  want {want:?}\n  message: {}\n  must contain: {}",
                case.name, err.message, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_has_a_case() {
    let dir = Path::new(FIXTURES).join("invalid");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut cased: Vec<String> = CASES.iter().map(|c| c.name.to_string()).collect();
    cased.sort();
    assert_eq!(on_disk, cased);
    for name in &on_disk {
        let files = walk(&dir.join(name));
        assert_eq!(
            files.len(),
            1,
            "{name}: one fixture file per error case, found {files:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn error_messages_read_well() {
    let all: Vec<String> = CASES.iter().map(|c| load_invalid(c).to_string()).collect();
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn explicitly_named_paths_must_exist() {
    let root = Path::new(FIXTURES).join("invalid").join("missing-file");
    let config = root.join("firedrill.toml");
    let err = load_plan(&LoadOptions {
        config: Some(config.clone()),
        ..opts(&root, "local")
    })
    .unwrap_err();
    assert_eq!(
        (&err.file, err.line, err.key.as_deref(), err.kind),
        (&config, None, None, K::MissingFile)
    );
    assert!(err.message.contains("file not found (create it"), "{err}");

    let probes = root.join("probes");
    let err = load_plan(&LoadOptions {
        probes_dir: Some(probes.clone()),
        ..opts(&root, "local")
    })
    .unwrap_err();
    assert_eq!((&err.file, err.kind), (&probes, K::MissingFile));
    assert!(
        err.message
            .contains("probes directory not found (create it, or point"),
        "{err}"
    );

    let not_a_dir = Path::new(FIXTURES).join("valid/remote/firedrill.toml");
    let err = load_plan(&LoadOptions {
        drills_dir: Some(not_a_dir.clone()),
        ..opts(&root, "local")
    })
    .unwrap_err();
    assert_eq!((&err.file, err.kind), (&not_a_dir, K::MissingFile));
    assert!(err.message.contains("not a directory"), "{err}");
}

fn repo_plan(target: &str) -> Plan {
    load_plan(&opts(repo_root(), target)).unwrap_or_else(|e| panic!("repo specs for {target}: {e}"))
}

#[test]
fn repo_specs_load_for_local() {
    let plan = repo_plan("local");
    assert_eq!(plan.target_name, "local");
    assert_eq!(
        plan.config_path.as_deref(),
        Some(repo_root().join("firedrill.toml").as_path())
    );
    assert!(plan.target.is_local() && plan.target.drills_allowed);

    let names: Vec<&str> = plan.probes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["sentinel"]);
    assert_eq!(
        plan.probes[0].stream, "DAEDALUS_TASKS",
        "{{stream}} rendered from the target"
    );

    let ids: Vec<&str> = plan.criteria.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["AC1", "AC2", "AC5"]);
    match &plan.criteria[0].kind {
        CriterionKind::Promql {
            query_template,
            pass_if,
            on_empty,
        } => {
            assert!(query_template.contains("daedalus_cold_start_seconds_bucket[{{window}}]"));
            assert_eq!(
                (pass_if.op, pass_if.threshold, *on_empty),
                (CmpOp::Lt, 1500.0, OnEmpty::Fail)
            );
        }
        other => panic!("AC1 must be promql: {other:?}"),
    }
    match &plan.criteria[1].kind {
        CriterionKind::Promql {
            query_template,
            pass_if,
            ..
        } => {
            assert!(query_template.contains("task_id=\"{{sentinel.task_id}}\""));
            assert_eq!((pass_if.op, pass_if.threshold), (CmpOp::Lt, 60.0));
        }
        other => panic!("AC2 must be promql: {other:?}"),
    }
    assert_eq!(
        plan.criteria[1].evidence.link_template.as_deref(),
        Some("{{trace_url}}")
    );
    assert_eq!(plan.criteria[2].kind, CriterionKind::Snapshot);

    plan_drills(&plan.target, &plan.drills, &[]).expect("local drills are runnable on local");
}

/// The seven structural alerts of the seed spec, by the fault that raises each.
const SEED_ALERTS: [(&str, &str); 7] = [
    ("collector-down", "OTelCollectorDown"),
    ("consumer-stop", "NATSConsumerLagUnbounded"),
    ("keda-error", "KEDAScalerError"),
    ("orchestrator-down", "OrchestratorDown"),
    ("stream-unhealthy", "NATSStreamUnhealthy"),
    ("worker-crash", "WorkerCrashLoopBackOff"),
    ("worker-image-tag", "WorkerImagePullBackOff"),
];

#[test]
fn repo_drills_cover_the_seven_alerts_as_cluster_operations() {
    let plan = repo_plan("local");
    let got: Vec<(&str, &str)> = plan
        .drills
        .iter()
        .map(|d| (d.name.as_str(), d.alert.as_str()))
        .collect();
    assert_eq!(got, SEED_ALERTS);
    for drill in &plan.drills {
        match &drill.fault {
            Fault::KubernetesPatch(_) | Fault::KubernetesScale(_) => {}
            Fault::Fleet { fault } => assert_eq!(
                (drill.name.as_str(), fault.as_str()),
                ("stream-unhealthy", "stream-unhealthy"),
                "only stream-unhealthy needs the fleet switch"
            ),
            other => panic!("{}: {other:?}", drill.name),
        }
        assert_eq!(
            drill.expect_labels.get("namespace").map(String::as_str),
            Some("daedalus")
        );
        assert_eq!(drill.expect_receiver.as_deref(), Some("firedrill"));
    }
    // The cluster's deadlines, scaled by the local target's drill_time_scale.
    let deadline = |name: &str| plan.drill(name).unwrap().deadline;
    assert_eq!(deadline("worker-image-tag"), Duration::from_secs(36));
    assert_eq!(deadline("worker-crash"), Duration::from_secs(144));

    // The same files on the cluster target: names from its variables,
    // times as written, stream-unhealthy left out of its list.
    let cluster = repo_plan("aks-test");
    assert_eq!(
        cluster.drill("worker-image-tag").unwrap().deadline,
        Duration::from_secs(180)
    );
    let Fault::KubernetesScale(s) = &cluster.drill("collector-down").unwrap().fault else {
        panic!()
    };
    assert_eq!(
        (s.namespace.as_str(), s.name.as_str()),
        ("monitoring", "otel-collector")
    );
    let mut t = cluster.target.clone();
    t.drills_allowed = true;
    let planned: Vec<&str> = plan_drills(&t, &cluster.drills, &[])
        .unwrap()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert!(!planned.contains(&"stream-unhealthy"), "{planned:?}");
    assert_eq!(planned.len(), 6);
}

#[test]
fn repo_aks_test_target_loads_and_refuses_drills() {
    let plan = repo_plan("aks-test");
    let remote = plan
        .target
        .remote()
        .expect("aks-test is a deployed platform");
    assert_eq!(
        remote.nats_creds_env.as_deref(),
        Some("DAEDALUS_NATS_CREDS")
    );
    assert!(remote.alertmanager_url.is_some());
    let err = plan_drills(&plan.target, &plan.drills, &[]).unwrap_err();
    assert_eq!(err.kind, K::NotAllowed);
    assert_eq!(err.key.as_deref(), Some("targets.aks-test.drills_allowed"));
    let config = std::fs::read_to_string(repo_root().join("firedrill.toml")).unwrap();
    let header = config
        .lines()
        .position(|l| l == "[targets.aks-test]")
        .unwrap()
        + 1;
    assert_eq!(err.line, Some(header), "{err}");

    let runtime: Vars = [
        ("sentinel.trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("sentinel.task_id", "t-1"),
    ]
    .into_iter()
    .chain([("window", "60s"), ("start", "s"), ("end", "e")])
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let link = plan.criteria[1]
        .evidence
        .link(&plan.target.run_vars(&runtime))
        .unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:3000/explore?")
            && link.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{link}"
    );
}

#[test]
fn repo_spec_files_are_the_builtin_ones() {
    let config = std::fs::read_to_string(repo_root().join("firedrill.toml")).unwrap();
    assert!(
        config.starts_with(BUILTIN_LOCAL_TARGET),
        "firedrill.toml must begin with src/spec/builtin/local-target.toml verbatim"
    );
    let probe = std::fs::read_to_string(repo_root().join("probes/sentinel.toml")).unwrap();
    assert_eq!(
        probe, BUILTIN_SENTINEL_PROBE,
        "probes/sentinel.toml must equal src/spec/builtin/sentinel.toml"
    );

    let from_repo = repo_plan("local");
    let builtin = load_plan(&opts(tempfile::tempdir().unwrap().path(), "local")).unwrap();
    let mut repo_target = from_repo.target.clone();
    repo_target.source = builtin.target.source.clone();
    assert_eq!(repo_target, builtin.target);
    let mut repo_probes = from_repo.probes.clone();
    repo_probes[0].source = builtin.probes[0].source.clone();
    assert_eq!(repo_probes, builtin.probes);
}

#[test]
fn builtin_fallback_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load_plan(&opts(dir.path(), "local")).unwrap();
    assert_eq!(plan.config_path, None);
    assert_eq!(
        plan.target.source.file,
        Path::new("<built-in>/local-target.toml")
    );
    let Endpoints::Local(local) = &plan.target.endpoints else {
        panic!("built-in local is a local stack")
    };
    let fleet = local.fleet.as_ref().expect("built-in local has a fleet");
    assert_eq!(fleet.stream, "DAEDALUS_TASKS");
    assert_eq!(
        (fleet.cold_start, fleet.work),
        (Duration::from_millis(40), Duration::from_millis(10))
    );
    assert_eq!(plan.probes.len(), 1);
    assert_eq!(
        plan.probes[0].source.file,
        Path::new("<built-in>/sentinel.toml")
    );
    assert!(plan.criteria.is_empty() && plan.drills.is_empty());

    let err = load_plan(&opts(dir.path(), "aks-test")).unwrap_err();
    assert_eq!(err.kind, K::UnknownTarget);
    assert_eq!(err.file, dir.path().join("firedrill.toml"));
    assert!(
        err.message
            .contains("only the built-in \"local\" target exists"),
        "{err}"
    );
}

#[test]
fn config_without_local_falls_back_to_builtin_local() {
    let config = Path::new(FIXTURES).join("valid/remote/firedrill.toml");
    let target = load_target(&config, "local", &Vars::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(target, builtin_local_target(&Vars::new()).unwrap());
    assert_eq!(
        target.source.file,
        Path::new("<built-in>/local-target.toml")
    );

    let err = load_target(&config, "prod", &Vars::new()).unwrap_err();
    assert!(
        err.message
            .contains("known targets: aks-test, local (built-in), staging"),
        "{err}"
    );
}

#[test]
fn remote_fixture_plan() {
    let root = Path::new(FIXTURES).join("valid/remote");
    let plan = load_plan(&opts(&root, "aks-test")).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_debug_snapshot!(plan);

    let selected = plan_drills(
        &plan.target,
        &plan.drills,
        &["worker-image-tag".to_string()],
    )
    .unwrap();
    assert_eq!(selected.len(), 1);
    let Fault::KubernetesPatch(patch) = &selected[0].fault else {
        panic!("worker-image-tag patches the deployment")
    };
    assert_eq!(
        (patch.namespace.as_str(), patch.name.as_str()),
        ("daedalus", "daedalus-worker")
    );
    let Fault::KubernetesScale(scale) = &plan.drill("orchestrator-down").unwrap().fault else {
        panic!("orchestrator-down scales")
    };
    assert_eq!(
        (scale.object_kind, scale.replicas),
        (ScaleKind::Deployment, 0)
    );

    let err = plan_drills(&plan.target, &plan.drills, &["nope".to_string()]).unwrap_err();
    assert_eq!(err.kind, K::UnknownReference);
    assert!(
        err.message
            .contains("loaded drills: collector-down, orchestrator-down, worker-image-tag"),
        "{err}"
    );

    // Links drop out when they render empty: {{trace_url}} on a target
    // without trace_url_template.
    let mut target = plan.target.clone();
    let runtime: Vars = [("sentinel.trace_id", "abc")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let ac2 = plan.criterion("AC2").unwrap();
    assert_eq!(
        ac2.evidence.link(&target.run_vars(&runtime)),
        None,
        "without start/end the trace link cannot render, so it is left out"
    );
    let full: Vars = [("sentinel.trace_id", "abc"), ("start", "S"), ("end", "E")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(
        ac2.evidence.link(&target.run_vars(&full)).as_deref(),
        Some("https://grafana.example/explore?trace=abc&from=S&to=E")
    );
    target.trace_url_template = None;
    assert_eq!(ac2.evidence.link(&target.run_vars(&full)), None);
}

#[test]
fn drills_refused_by_kind_and_missing_alertmanager() {
    let local = repo_plan("local");
    let remote = load_plan(&opts(Path::new(FIXTURES).join("valid/remote"), "aks-test")).unwrap();

    // Fleet drills cannot run against a deployed platform...
    let err = plan_drills(&remote.target, &local.drills, &[]).unwrap_err();
    assert_eq!(
        (err.kind, err.key.as_deref()),
        (K::NotAllowed, Some("fault.kind"))
    );
    assert!(
        err.message
            .contains("only exists on a local stack with a [fleet] table"),
        "{err}"
    );
    // Kubernetes drills run on the local stack too (its rehearsed cluster).
    plan_drills(&local.target, &remote.drills, &["orchestrator-down".into()]).unwrap();
    // exec drills run anywhere.
    plan_drills(&local.target, &remote.drills, &["collector-down".into()]).unwrap();

    let mut no_am = remote.target.clone();
    if let Endpoints::Remote(r) = &mut no_am.endpoints {
        r.alertmanager_url = None;
    }
    let err = plan_drills(&no_am, &remote.drills, &[]).unwrap_err();
    assert_eq!(
        (err.kind, err.key.as_deref()),
        (K::MissingKey, Some("targets.aks-test.alertmanager_url"))
    );
    assert_eq!(err.line, Some(2), "the target's table header");
}

#[test]
fn cli_vars_override_target_variables() {
    let root = Path::new(FIXTURES).join("valid/remote");
    let mut o = opts(&root, "aks-test");
    o.vars
        .insert("worker_deployment".into(), "other-worker".into());
    let plan = load_plan(&o).unwrap();
    let Fault::KubernetesPatch(patch) = &plan.drill("worker-image-tag").unwrap().fault else {
        panic!()
    };
    assert_eq!(patch.name, "other-worker");

    o.vars.insert("window".into(), "1h".into());
    let err = load_plan(&o).unwrap_err();
    assert_eq!(err.file, Path::new("<command line>"));
    assert_eq!(err.key.as_deref(), Some("var.window"));
}

/// A target variable the query places outside quotes becomes PromQL
/// syntax: only token-like values may go there, checked at load (exit 2)
/// rather than at every run. Inside quotes any value is escaped.
#[test]
fn target_variables_that_would_change_a_query_are_spec_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firedrill.toml"),
        r#"[targets.remote]
namespace = "daedalus"
nats_url = "nats://127.0.0.1:4222"
prometheus_url = "http://127.0.0.1:9090/"

[targets.remote.variables]
stream = "DAEDALUS_TASKS"
by = "le, agent_type"
"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("acceptance")).unwrap();
    let write = |query: &str| {
        std::fs::write(
            dir.path().join("acceptance/a.toml"),
            format!(
                "[[criterion]]\nid = \"A\"\ntitle = \"t\"\nquery = '{query}'\npass_if = \"< 1\"\n"
            ),
        )
        .unwrap()
    };

    write("sum by ({{by}}) (rate(x[{{window}}]))");
    let err = load_plan(&opts(dir.path(), "remote")).unwrap_err();
    assert_eq!(err.file, dir.path().join("acceptance/a.toml"));
    assert_eq!(
        (err.line, err.key.as_deref(), err.kind),
        (Some(4), Some("criterion[0].query"), K::InvalidValue)
    );
    assert!(
        err.message
            .starts_with("{{by}} cannot be placed in this query: the query uses it outside a quoted PromQL string"),
        "{}",
        err.message
    );

    write(r#"count_over_time(x{labels="{{by}}"}[{{window}}])"#);
    load_plan(&opts(dir.path(), "remote")).unwrap();
}

#[test]
fn cmp_ops_compare_and_never_pass_nan() {
    for op in CmpOp::ALL {
        assert!(!op.holds(f64::NAN, 0.0), "NaN {op} 0");
        assert!(!op.holds(0.0, f64::NAN), "0 {op} NaN");
    }
    assert!(CmpOp::Lt.holds(1.0, 2.0) && !CmpOp::Lt.holds(2.0, 2.0));
    assert!(CmpOp::Le.holds(2.0, 2.0) && !CmpOp::Le.holds(3.0, 2.0));
    assert!(CmpOp::Gt.holds(3.0, 2.0) && !CmpOp::Gt.holds(2.0, 2.0));
    assert!(CmpOp::Ge.holds(2.0, 2.0) && !CmpOp::Ge.holds(1.0, 2.0));
    assert!(CmpOp::Eq.holds(2.0, 2.0) && !CmpOp::Eq.holds(1.0, 2.0));
    assert!(CmpOp::Ne.holds(1.0, 2.0) && !CmpOp::Ne.holds(2.0, 2.0));
}

#[test]
fn durations_and_env_var_names() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(is_env_var_name("GRAFANA_TOKEN") && is_env_var_name("_X1"));
    assert!(!is_env_var_name("grafana_token") && !is_env_var_name("1X") && !is_env_var_name(""));
}

#[test]
fn validate_settings_of_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firedrill.toml");
    let base = "[targets.t]\nnamespace = \"daedalus\"\nnats_url = \"nats://127.0.0.1:4222\"\nprometheus_url = \"http://127.0.0.1:9090\"\n";
    std::fs::write(
        &path,
        format!("{base}[targets.t.validate]\nlookback = \"2h\"\nrequired_labels = [\"namespace\", \"team\"]\nexpected_receivers = {{ namespace = \"daedalus\", receiver = \"daedalus-pagerduty\" }}\n"),
    )
    .unwrap();
    let t = load_target(&path, "t", &Default::default()).unwrap();
    assert_eq!(t.validate.lookback, Duration::from_secs(7200));
    assert_eq!(
        t.validate.required_labels.keys().collect::<Vec<_>>(),
        ["namespace", "team"]
    );
    assert_eq!(t.validate.expected_receivers.len(), 1);
    assert_eq!(
        t.validate.expected_receivers[0].receiver,
        "daedalus-pagerduty"
    );
    assert_eq!(
        t.validate.expected_receivers[0]
            .labels
            .get("namespace")
            .map(String::as_str),
        Some("daedalus")
    );
    // Defaults without the table; bad values are spec errors.
    std::fs::write(&path, base).unwrap();
    let t = load_target(&path, "t", &Default::default()).unwrap();
    assert_eq!(t.validate.lookback, Duration::from_secs(3600));
    assert!(t.validate.required_labels.is_empty());
    for bad in [
        "required_labels = [\"bad-label\"]",
        "lookback = \"0s\"",
        "expected_receivers = [{ namespace = \"x\" }]",
        "unknown = 1",
    ] {
        std::fs::write(&path, format!("{base}[targets.t.validate]\n{bad}\n")).unwrap();
        let e = load_target(&path, "t", &Default::default()).unwrap_err();
        assert!(e.to_string().contains("validate"), "{bad}: {e}");
    }
}
