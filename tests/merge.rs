//! `firedrill merge` and `--baseline`: the exact histogram merge (property
//! test over random samples), refusals, the change since a baseline, and
//! the binary on real smoke reports.

use crate::common::reports::{drill, empty, with_probe};
use assert_cmd::Command;
use firedrill::model::hdr;
use firedrill::model::probe::LatencySummary;
use firedrill::probe::latency::Latencies;
use firedrill::report::baseline::{compare, Status, Thresholds};
use firedrill::report::merge::{merge, stats_of, MergeError};
use firedrill::report::model::{Report, SCHEMA_VERSION};
use firedrill::report::Verdict;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Merging N reports of random round trips gives exactly the percentiles
/// of one histogram holding every sample (never an average of percentiles).
#[test]
fn merged_percentiles_equal_one_histogram_of_all_samples() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    for case in 0..200 {
        let n = rng.random_range(1..=8);
        let mut all = Latencies::default();
        let mut all_ttf = hdr::time_to_fire_histogram();
        let mut inputs = Vec::new();
        for i in 0..n {
            // Skewed legs (some fast, some slow) make averaged percentiles wrong.
            let scale = 10u64.pow(rng.random_range(2..7));
            let samples: Vec<u64> = (0..rng.random_range(0..300))
                .map(|_| rng.random_range(1..=scale))
                .collect();
            for us in &samples {
                all.record(Duration::from_micros(*us));
            }
            let fires: Vec<i64> = (0..rng.random_range(1..4))
                .map(|_| rng.random_range(0..600_000))
                .collect();
            for ms in &fires {
                hdr::record_ms(&mut all_ttf, *ms);
            }
            let mut r = with_probe(
                empty(&format!("run-{case}-{i}"), "aks"),
                "copilot",
                &samples,
            );
            r.drills = vec![drill("worker-down", Verdict::Pass, &fires)];
            inputs.push((format!("leg{i}/report.json"), r));
        }
        let merged = merge(&inputs, "merged", empty("x", "x").tool).unwrap();
        let got = &merged.probes[0].outcome.latency;
        let want = all.summary();
        assert_eq!(
            (got.count, got.min_ms, got.p50_ms, got.p90_ms, got.p99_ms, got.max_ms),
            (
                want.count,
                want.min_ms,
                want.p50_ms,
                want.p90_ms,
                want.p99_ms,
                want.max_ms
            ),
            "case {case}: {n} legs"
        );
        assert!((got.mean_ms - want.mean_ms).abs() < 1e-9, "case {case}");
        assert_eq!(got.buckets, want.buckets, "case {case}");
        assert_eq!(
            merged.drills[0].time_to_fire,
            Some(stats_of(&all_ttf)),
            "case {case}"
        );
        assert_eq!(
            hdr::decode(merged.drills[0].time_to_fire_histogram.as_deref().unwrap()).unwrap(),
            all_ttf
        );
        assert_eq!(merged.inputs.len(), n);
    }
}

#[test]
fn merged_verdict_is_the_worst_and_identities_are_kept() {
    let a = with_probe(empty("run-a", "aks-test"), "copilot", &[1000, 2000]);
    let mut b = with_probe(empty("run-b", "aks-prod"), "claude", &[3000]);
    b.drills = vec![drill("worker-down", Verdict::Fail, &[200_000])];
    b.verdict = Verdict::Fail;
    let merged = merge(
        &[("a.json".into(), a), ("b.json".into(), b)],
        "m",
        empty("x", "x").tool,
    )
    .unwrap();
    assert_eq!(merged.verdict, Verdict::Fail);
    assert_eq!(merged.target.name, "aks-test + aks-prod");
    // Two agent types: two probe rows, each its own leg's figures.
    assert_eq!(merged.probes.len(), 2);
    let ids: Vec<(&str, &str, Vec<String>)> = merged
        .inputs
        .iter()
        .map(|i| (i.run_id.as_str(), i.target.as_str(), i.agent_types.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            ("run-a", "aks-test", vec!["copilot".to_string()]),
            ("run-b", "aks-prod", vec!["claude".to_string()])
        ]
    );
    let md = firedrill::report::markdown::render(&merged);
    assert!(md.contains("## Merged runs"), "{md}");
    assert!(
        md.contains("| `run-b` | aks-prod | `claude` | run | ❌ fail |"),
        "{md}"
    );
    // A merged report merges again: its inputs stand for their runs.
    let again = merge(
        &[
            ("m.json".into(), merged.clone()),
            ("c.json".into(), empty("run-c", "aks")),
        ],
        "m2",
        empty("x", "x").tool,
    )
    .unwrap();
    assert_eq!(again.inputs.len(), 3);
    assert_eq!(again.probes[0].outcome.latency.count, 2);
}

#[test]
fn refuses_mismatched_schema_versions() {
    let mut old = empty("run-a", "aks");
    old.schema_version = 2;
    let err = merge(
        &[
            ("new.json".into(), empty("run-b", "aks")),
            ("old.json".into(), old),
        ],
        "m",
        empty("x", "x").tool,
    )
    .unwrap_err();
    assert_eq!(
        err,
        MergeError::SchemaMismatch {
            file: "old.json".into(),
            found: 2,
            first_file: "new.json".into(),
            first: SCHEMA_VERSION
        }
    );
    let text = err.to_string();
    assert!(text.contains("old.json is report schema 2"), "{text}");
}

#[test]
fn refuses_overlapping_run_ids_and_nothing() {
    let err = merge(
        &[
            ("a.json".into(), empty("run-a", "aks")),
            ("b.json".into(), empty("run-a", "aks")),
        ],
        "m",
        empty("x", "x").tool,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("run id run-a is in both a.json and b.json"),
        "{err}"
    );
    assert_eq!(
        merge(&[], "m", empty("x", "x").tool).unwrap_err(),
        MergeError::Empty
    );
}

#[test]
fn refuses_percentiles_without_histograms() {
    let mut r = with_probe(empty("run-a", "aks"), "copilot", &[1000, 2000]);
    r.probes[0].outcome.latency.histogram = None;
    let err = merge(&[("a.json".into(), r)], "m", empty("x", "x").tool).unwrap_err();
    assert!(matches!(err, MergeError::MissingHistogram { .. }), "{err}");
    let mut r = with_probe(empty("run-a", "aks"), "copilot", &[1000]);
    r.probes[0].outcome.latency.histogram = Some("bm90IGEgaGlzdG9ncmFt".into());
    let err = merge(&[("a.json".into(), r)], "m", empty("x", "x").tool).unwrap_err();
    assert!(matches!(err, MergeError::BadHistogram { .. }), "{err}");
}

/// A schema 2 report (no histograms, no inputs, no baseline) still loads.
#[test]
fn old_reports_still_load() {
    let text = include_str!("fixtures/merge/schema2-report.json");
    let r: Report = serde_json::from_str(text).unwrap();
    assert_eq!(r.schema_version, 2);
    assert!(r.probes[0].outcome.latency.histogram.is_none());
    assert!(r.inputs.is_empty() && r.baseline.is_none());
}

fn by<'a>(
    c: &'a firedrill::report::baseline::BaselineComparison,
    subject: &str,
    metric: &str,
) -> &'a firedrill::report::baseline::Change {
    c.changes
        .iter()
        .find(|x| x.subject == subject && x.metric == metric)
        .unwrap_or_else(|| panic!("no {subject} {metric} in {:#?}", c.changes))
}

#[test]
fn baseline_diff_improved_regressed_new_and_dropped() {
    let mut then = with_probe(empty("run-1", "aks"), "copilot", &[10_000; 10]);
    then.drills = vec![
        drill("worker-down", Verdict::Pass, &[60_000]),
        drill("stream-unhealthy", Verdict::Pass, &[30_000]),
        drill("retired", Verdict::Pass, &[10_000]),
    ];
    let mut now = with_probe(empty("run-2", "aks"), "copilot", &[10_500; 10]);
    now.drills = vec![
        drill("worker-down", Verdict::Pass, &[40_000]),
        drill("stream-unhealthy", Verdict::Pass, &[45_000]),
        drill("brand-new", Verdict::Pass, &[5_000]),
    ];
    let mut t = Thresholds::default();
    let c = compare(&now, &then, "base.json", &t);
    let wd = by(&c, "drill worker-down", "time to fire (median)");
    assert_eq!((wd.status, wd.regression), (Status::Improved, false));
    assert_eq!(wd.delta, Some(-20_000.0));
    let su = by(&c, "drill stream-unhealthy", "time to fire (median)");
    assert_eq!((su.status, su.regression), (Status::Regressed, true));
    assert_eq!(su.delta_pct, Some(50.0));
    assert_eq!(
        by(&c, "drill brand-new", "time to fire (median)").status,
        Status::New
    );
    let dropped = by(&c, "drill retired", "time to fire (median)");
    assert_eq!(
        (dropped.status, dropped.regression),
        (Status::Dropped, false)
    );
    // +5% round trip: worse but within the default +25%.
    assert_eq!(
        by(&c, "probe sentinel (copilot)", "p50").status,
        Status::Worse
    );

    // A spec threshold of +60% forgives the +50%.
    t.by_subject.insert("drill stream-unhealthy".into(), 60.0);
    let c = compare(&now, &then, "base.json", &t);
    assert_eq!(
        by(&c, "drill stream-unhealthy", "time to fire (median)").status,
        Status::Worse
    );
    assert_eq!(c.regressions().count(), 0);

    // A verdict that went from pass to fail is a regression whatever the numbers.
    now.drills[0] = drill("worker-down", Verdict::Fail, &[40_000]);
    let c = compare(&now, &then, "base.json", &t);
    assert!(by(&c, "drill worker-down", "time to fire (median)").regression);
}

#[test]
fn fail_on_regression_turns_a_pass_into_exit_1() {
    use firedrill::exit::{with_regressions, ExitCode};
    let mut then = empty("run-1", "aks");
    then.drills = vec![drill("worker-down", Verdict::Pass, &[10_000])];
    let mut now = empty("run-2", "aks");
    now.drills = vec![drill("worker-down", Verdict::Pass, &[20_000])];
    now.baseline = Some(compare(&now, &then, "b", &Thresholds::default()));
    assert_eq!(
        with_regressions(ExitCode::Success, &now, true),
        ExitCode::Failed
    );
    assert_eq!(
        with_regressions(ExitCode::Success, &now, false),
        ExitCode::Success
    );
    assert_eq!(
        with_regressions(ExitCode::Interrupted, &now, true),
        ExitCode::Interrupted
    );
    now.drills = vec![drill("worker-down", Verdict::Pass, &[9_000])];
    now.baseline = Some(compare(&now, &then, "b", &Thresholds::default()));
    assert_eq!(
        with_regressions(ExitCode::Success, &now, true),
        ExitCode::Success
    );
}

fn write(dir: &std::path::Path, name: &str, r: &Report) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("report.json"), serde_json::to_string(r).unwrap()).unwrap();
    p.join("report.json")
}

#[test]
fn merge_command_exit_codes_and_baseline_notes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut then = empty("run-1", "aks");
    then.drills = vec![drill("worker-down", Verdict::Pass, &[10_000])];
    let mut now = empty("run-2", "aks");
    now.drills = vec![drill("worker-down", Verdict::Pass, &[20_000])];
    let base = write(tmp.path(), "base", &then);
    let leg = write(tmp.path(), "leg", &now);
    let out = tmp.path().join("merged");
    let run = |extra: &[&str]| {
        Command::cargo_bin("firedrill")
            .unwrap()
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .arg("merge")
            .arg(&leg)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let b = base.to_str().unwrap();
    assert_eq!(run(&["--baseline", b]).status.code(), Some(0));
    let o = run(&["--baseline", b, "--fail-on-regression"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Change since baseline"), "{md}");
    assert!(md.contains("**1 regression**"), "{md}");
    // A missing baseline is a note, not a failure.
    let o = run(&[
        "--baseline",
        "/nonexistent/report.json",
        "--fail-on-regression",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("> **Note:** no comparison: baseline /nonexistent/report.json cannot be read"),
        "{md}"
    );
    // Mismatched schemas: a usage error naming both files.
    let mut old = empty("run-0", "aks");
    old.schema_version = 2;
    let old = write(tmp.path(), "old", &old);
    let o = run(&[old.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("old/report.json is report schema 2"), "{err}");
    // Not a report at all.
    std::fs::write(tmp.path().join("junk.json"), "{\"schema_version\": 3}").unwrap();
    let o = run(&[tmp.path().join("junk.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a firedrill report.json"));
}

/// `regression = "+10%"` on a criterion or drill sets its threshold; a
/// threshold that is not a percentage is a spec error naming file and line.
#[test]
fn spec_regression_thresholds() {
    use firedrill::spec::{load_plan, LoadOptions};
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let (acc, drills) = (tmp.path().join("acceptance"), tmp.path().join("drills"));
    std::fs::create_dir_all(&acc).unwrap();
    std::fs::create_dir_all(&drills).unwrap();
    let phase5 = std::fs::read_to_string(repo.join("acceptance/phase5.toml")).unwrap();
    let phase5 = phase5.replacen("id = \"AC1\"", "id = \"AC1\"\nregression = \"+10%\"", 1);
    std::fs::write(acc.join("phase5.toml"), &phase5).unwrap();
    let drill =
        std::fs::read_to_string(repo.join("induced-failures/worker-image-tag.toml")).unwrap();
    let drill = drill.replacen(
        "name = \"worker-image-tag\"",
        "name = \"worker-image-tag\"\nregression = \"+50%\"",
        1,
    );
    std::fs::write(drills.join("worker-image-tag.toml"), &drill).unwrap();
    let mut opts = LoadOptions::new("local");
    opts.root = tmp.path().to_path_buf();
    opts.acceptance_dir = Some(acc.clone());
    opts.drills_dir = Some(drills.clone());
    let plan = load_plan(&opts).unwrap();
    let t = firedrill::commands::baseline::thresholds(&plan);
    assert_eq!(t.by_subject.get("criterion AC1"), Some(&10.0));
    assert_eq!(t.by_subject.get("drill worker-image-tag"), Some(&50.0));
    assert_eq!(t.by_subject.len(), 2, "{t:?}");

    std::fs::write(
        drills.join("worker-image-tag.toml"),
        drill.replace("\"+50%\"", "\"faster\""),
    )
    .unwrap();
    let err = load_plan(&opts).unwrap_err().to_string();
    assert!(
        err.contains("worker-image-tag.toml:6")
            && err.contains("invalid regression threshold \"faster\""),
        "{err}"
    );
}

/// Two real smoke runs (real stack, real drill), merged by the binary: the
/// merged round trips count both runs' and the second run's baseline
/// section compares it with the first.
#[test]
fn merges_two_real_smoke_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let smoke = |dir: &str, baseline: Option<&std::path::Path>| {
        let mut cmd = Command::cargo_bin("firedrill").unwrap();
        cmd.env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .arg("--reports-dir")
            .arg(tmp.path().join(dir))
            .args(["smoke", "--count", "30"]);
        if let Some(b) = baseline {
            cmd.arg("--baseline").arg(b);
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = std::fs::read_dir(tmp.path().join(dir))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        run.join("report.json")
    };
    let a = smoke("a", None);
    let b = smoke("b", Some(a.parent().unwrap()));
    let second: Report = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    let base = second.baseline.expect("a baseline section");
    assert_eq!(base.note, None);
    for subject in [
        "drill worker-image-tag",
        "criterion AC1",
        "probe sentinel (copilot)",
        "trace audit",
    ] {
        assert!(
            base.changes.iter().any(|c| c.subject == subject),
            "{subject}: {:#?}",
            base.changes
        );
    }

    let out_dir = tmp.path().join("merged");
    let out = Command::cargo_bin("firedrill")
        .unwrap()
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Report =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let inputs: Vec<Report> = [&a, &b]
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(merged.verdict, Verdict::Pass);
    assert_eq!(merged.inputs.len(), 2);
    assert_eq!(merged.probes[0].outcome.latency.count, 60);
    // Exactly the sum of the two runs' histograms.
    let mut all = hdr::decode(
        inputs[0].probes[0]
            .outcome
            .latency
            .histogram
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    hdr::add(
        &mut all,
        &hdr::decode(
            inputs[1].probes[0]
                .outcome
                .latency
                .histogram
                .as_deref()
                .unwrap(),
        )
        .unwrap(),
    );
    // The mean may differ in its last bit (a JSON round trip of a float
    // computed in another order); everything else is exact.
    let want = LatencySummary::from_histogram(&all);
    let mut got = merged.probes[0].outcome.latency.clone();
    assert!(
        (got.mean_ms - want.mean_ms).abs() < 1e-6,
        "{got:?} vs {want:?}"
    );
    got.mean_ms = want.mean_ms;
    assert_eq!(got, want);
    assert_eq!(merged.drills[0].trials.len(), 2);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for r in &inputs {
        assert!(md.contains(&format!("`{}`", r.run_id)), "{md}");
    }
    assert!(out_dir.join("junit.xml").exists());
}
