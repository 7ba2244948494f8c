//! The workflow_dispatch acceptance job and the composite action: actionlint
//! (installed by scripts/install-deps) passes on both, and the parts the
//! proof depends on are there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs actionlint in `dir`; (success, output).
fn actionlint(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("actionlint")
        .args(["-no-color", "-oneline"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("actionlint not runnable ({e}): run scripts/install-deps --test, which installs it from PyPI")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The lines of the YAML block that starts at the line `- name: <name>` and
/// runs until the next step (same indentation) or the end of the file.
fn step<'a>(yaml: &'a str, name: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("no step named {name:?}"));
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut out = vec![lines[start]];
    for l in &lines[start + 1..] {
        let i = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && i <= indent {
            break;
        }
        out.push(l);
    }
    out
}

fn has(block: &[&str], line: &str) -> bool {
    block.iter().any(|l| l.trim() == line)
}

#[test]
fn acceptance_workflow_passes_actionlint() {
    let (ok, out) = actionlint(&repo(), &[".github/workflows/acceptance.yml"]);
    assert!(ok, "actionlint:\n{out}");
}

#[test]
fn acceptance_workflow_uploads_the_report_always() {
    let wf = read(".github/workflows/acceptance.yml");
    assert!(wf.contains("\n  workflow_dispatch:\n"));
    for input in [
        "target:",
        "drills:",
        "trials:",
        "parallel:",
        "extra_window:",
        "require_snapshot:",
        "baseline:",
    ] {
        assert!(wf.contains(&format!("\n      {input}\n")), "input {input}");
    }
    assert!(wf.contains("        default: aks-test\n"));

    let upload = step(&wf, "Upload report");
    assert!(has(&upload, "if: always()"), "{upload:#?}");
    // reports/ but not the committed example, which the merge would take for a leg.
    for line in ["path: |", "reports/", "!reports/example/"] {
        assert!(has(&upload, line), "{line}: {upload:#?}");
    }
    assert!(has(&upload, "if-no-files-found: warn"), "{upload:#?}");
    assert!(
        upload
            .iter()
            .any(|l| l.trim().starts_with("uses: actions/upload-artifact@")),
        "{upload:#?}"
    );
    assert!(
        upload.iter().any(|l| l
            .trim()
            .starts_with("name: firedrill-report-${{ github.run_id }}")),
        "{upload:#?}"
    );

    for perm in [
        "contents: read",
        "checks: write",
        "issues: write",
        "actions: read",
    ] {
        assert!(wf.contains(&format!("\n  {perm}\n")), "permission {perm}");
    }
    for output in ["verdict", "report_path", "snapshot_url"] {
        assert!(
            wf.contains(&format!(
                "      {output}: ${{{{ steps.firedrill.outputs.{output} }}}}\n"
            )),
            "job output {output}"
        );
    }
}

#[test]
fn the_run_step_takes_inputs_from_env_only() {
    let wf = read(".github/workflows/acceptance.yml");
    let run = step(&wf, "Run acceptance");
    assert!(has(&run, "id: firedrill"));
    let script_start = run
        .iter()
        .position(|l| l.trim() == "run: |")
        .expect("a run script");
    let script = &run[script_start + 1..];
    assert!(
        script.iter().all(|l| !l.contains("${{")),
        "expressions inline in the script invite injection: {script:#?}"
    );
    let script = script.join("\n");
    for flag in [
        "run --target \"$TARGET\"",
        "--trials \"$TRIALS\"",
        "--extra-window \"$EXTRA_WINDOW\"",
        "--github-check",
        "--open-issue-on-failure",
        "--drills \"$DRILLS\"",
        "--parallel",
        "--retry-serial",
        "--require-snapshot",
        "--baseline previous",
        "./target/release/firedrill",
    ] {
        assert!(script.contains(flag), "{flag} missing from:\n{script}");
    }
    for env in [
        "TARGET: ${{ matrix.target }}",
        "BASELINE: ${{ inputs.baseline }}",
        "GRAFANA_TOKEN: ${{ secrets.GRAFANA_TOKEN }}",
        "GITHUB_TOKEN: ${{ github.token }}",
    ] {
        assert!(has(&run, env), "{env}");
    }
    let build = step(&wf, "Build firedrill");
    assert!(has(&build, "run: cargo build --release --locked"));
}

/// Many targets fan out as a matrix; a final job always merges the legs'
/// reports, uploads the merged report and writes the job summary.
#[test]
fn the_matrix_fans_out_and_a_final_job_merges() {
    let wf = read(".github/workflows/acceptance.yml");
    let plan = step(&wf, "List targets");
    assert!(has(&plan, "TARGETS: ${{ inputs.target }}"), "{plan:#?}");
    assert!(wf.contains("        target: ${{ fromJSON(needs.plan.outputs.targets) }}\n"));
    assert!(wf.contains("      fail-fast: false\n"));
    let upload = step(&wf, "Upload report");
    assert!(
        upload
            .iter()
            .any(|l| l.trim().ends_with("-${{ matrix.target }}")),
        "{upload:#?}"
    );
    let merge_job = &wf[wf.find("\n  merge:\n").expect("a merge job")..];
    assert!(
        merge_job.contains("\n    needs: acceptance\n    if: always()\n"),
        "{merge_job}"
    );
    let download = step(&wf, "Download the legs' reports");
    assert!(
        has(
            &download,
            "pattern: firedrill-report-${{ github.run_id }}-${{ github.run_attempt }}-*"
        ),
        "{download:#?}"
    );
    let merge = step(&wf, "Merge reports");
    let script = merge.join("\n");
    for part in [
        "-not -path '*/example/*'",
        "args=(merge \"${reports[@]}\" --out merged/)",
        "args+=(--baseline previous)",
        "./target/release/firedrill \"${args[@]}\"",
    ] {
        assert!(script.contains(part), "{part} missing from:\n{script}");
    }
    // --baseline previous reads the workflow's runs with the job's token.
    assert!(
        has(&merge, "GITHUB_TOKEN: ${{ github.token }}"),
        "{merge:#?}"
    );
    assert!(
        !script.split("run: |").nth(1).unwrap().contains("${{"),
        "{script}"
    );
    let merged = step(&wf, "Upload merged report");
    assert!(
        has(&merged, "if: always()") && has(&merged, "path: merged/"),
        "{merged:#?}"
    );
}

#[test]
fn composite_action_declares_its_outputs() {
    let action = read("action.yml");
    assert!(action.contains("\n  using: composite\n"));
    for (output, step_output) in [
        ("verdict", "verdict"),
        ("report-path", "report_path"),
        ("snapshot-url", "snapshot_url"),
    ] {
        assert!(
            action.contains(&format!("  {output}:\n    description: ")),
            "output {output}"
        );
        assert!(
            action.contains(&format!(
                "    value: ${{{{ steps.run.outputs.{step_output} }}}}\n"
            )),
            "output {output} maps the run step's {step_output}"
        );
    }
    for input in [
        "target:",
        "config:",
        "drills:",
        "trials:",
        "parallel:",
        "require-snapshot:",
    ] {
        assert!(action.contains(&format!("\n  {input}\n")), "input {input}");
    }
    let upload = step(&action, "Upload report");
    assert!(has(&upload, "if: always()"));
    assert!(has(&upload, "path: reports/"));
    assert!(action.contains("cargo install --locked --path \"$ACTION_PATH\""));
}

/// actionlint checks a local action's inputs and outputs where a workflow
/// uses it: a caller of `./` in a scratch project proves action.yml parses
/// and exposes what it says.
#[test]
fn composite_action_passes_actionlint_from_a_caller() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::copy(repo().join("action.yml"), dir.path().join("action.yml")).unwrap();
    let caller = |output: &str| {
        format!(
            r#"on: workflow_dispatch
permissions:
  contents: read
  checks: write
  issues: write
jobs:
  acceptance:
    runs-on: ubuntu-latest
    steps:
      - id: firedrill
        uses: ./
        with:
          target: aks-test
          config: firedrill.toml
          drills: all
          trials: "2"
          parallel: "true"
          require-snapshot: "true"
      - env:
          OUT: ${{{{ steps.firedrill.outputs.{output} }}}}
          VERDICT: ${{{{ steps.firedrill.outputs.verdict }}}}
          REPORT: ${{{{ steps.firedrill.outputs.report-path }}}}
        run: echo "$OUT $VERDICT $REPORT"
"#
        )
    };
    let wf = dir.path().join(".github/workflows/caller.yml");
    std::fs::write(&wf, caller("snapshot-url")).unwrap();
    // actionlint finds the project by its .git directory.
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let (ok, out) = actionlint(dir.path(), &[]);
    assert!(ok, "actionlint:\n{out}");

    // And it really read action.yml: an undeclared output is an error.
    std::fs::write(&wf, caller("no-such-output")).unwrap();
    let (ok, out) = actionlint(dir.path(), &[]);
    assert!(!ok, "expected an error for an undeclared output");
    assert!(out.contains("no-such-output"), "{out}");
}
