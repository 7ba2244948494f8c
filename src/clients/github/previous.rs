//! `--baseline previous`, the pure part: which earlier run of the workflow
//! and which of its artifacts hold the report to compare with, and which
//! file in that artifact's zip is the report. Everything here works on
//! decoded GitHub payloads and bytes; `github.rs` does the requests.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::io::Read;

/// Successful runs looked at (one page of "list workflow runs for a
/// workflow", newest first). A target that has not passed in the last 20
/// green runs of its workflow has no useful baseline; each run looked at
/// costs one more API call.
pub const MAX_RUNS: u8 = 20;
/// Artifacts looked at per run (one page; GitHub's maximum). The workflow
/// uploads one per matrix leg and attempt, plus the merged one.
pub const ARTIFACTS_PER_PAGE: u8 = 100;
/// The largest artifact zip downloaded. A report directory is a few hundred
/// kilobytes; anything far larger is not a firedrill report.
pub const MAX_ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;
/// The largest report.json read out of the zip (uncompressed).
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// The whole lookup, however many runs it looks into: a baseline is worth
/// waiting for, not worth holding up the job's report.
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// "List workflow runs for a workflow": the fields firedrill uses. GitHub
/// sends many more; they are ignored, so a change to them cannot break the
/// lookup.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunsPage {
    #[serde(default)]
    pub total_count: u64,
    pub workflow_runs: Vec<WorkflowRun>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
}

/// "List workflow run artifacts": the fields firedrill uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArtifactsPage {
    #[serde(default)]
    pub total_count: u64,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub size_in_bytes: u64,
    #[serde(default)]
    pub expired: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The artifact a run's report travels in, as `.github/workflows/acceptance.yml`
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A matrix leg: `firedrill-report-<run id>-<attempt>-<target>`.
    Leg { target: String },
    /// The merge job: `firedrill-merged-report-<run id>-<attempt>`.
    Merged,
}

impl Wanted {
    fn prefix(&self) -> &'static str {
        match self {
            Wanted::Leg { .. } => "firedrill-report-",
            Wanted::Merged => "firedrill-merged-report-",
        }
    }

    /// Whether an artifact name is this report's: the prefix, the run id and
    /// attempt (digits), then exactly the target (a leg) or nothing (merged).
    pub fn matches(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(self.prefix()) else {
            return false;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let mut parts = rest.splitn(3, '-');
        let (Some(run), Some(attempt)) = (parts.next(), parts.next()) else {
            return false;
        };
        if !digits(run) {
            return false;
        }
        match (self, parts.next()) {
            (Wanted::Leg { target }, Some(t)) => digits(attempt) && t == target,
            (Wanted::Merged, None) => digits(attempt),
            _ => false,
        }
    }

    /// The name pattern, for notes: `firedrill-report-<run id>-<attempt>-aks-test`.
    pub fn pattern(&self) -> String {
        match self {
            Wanted::Leg { target } => format!("{}<run id>-<attempt>-{target}", self.prefix()),
            Wanted::Merged => format!("{}<run id>-<attempt>", self.prefix()),
        }
    }
}

/// The workflow file from `GITHUB_WORKFLOW_REF`
/// (`octo-org/octo-repo/.github/workflows/acceptance.yml@refs/heads/main`):
/// `acceptance.yml`, which the API takes in place of the workflow id.
pub fn workflow_file(workflow_ref: &str) -> Option<String> {
    let path = workflow_ref
        .split_once('@')
        .map_or(workflow_ref, |(p, _)| p);
    let (_, file) = path.split_once("/.github/workflows/")?;
    let file = file.trim();
    let ok = !file.is_empty()
        && !file.contains('/')
        && (file.ends_with(".yml") || file.ends_with(".yaml"));
    ok.then(|| file.to_string())
}

/// The runs worth looking into, newest first: successful ones (the list is
/// asked for `status=success`, but a run re-run since may say otherwise),
/// never the run doing the lookup.
pub fn candidate_runs(runs: &[WorkflowRun], current_run: Option<u64>) -> Vec<&WorkflowRun> {
    let mut out: Vec<&WorkflowRun> = runs
        .iter()
        .filter(|r| Some(r.id) != current_run)
        .filter(|r| r.conclusion.as_deref() == Some("success"))
        .collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    out
}

/// What one run's artifacts offered.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactChoice<'a> {
    Found(&'a Artifact),
    /// No usable artifact; how many had the right name but could not be used.
    None {
        expired: usize,
        too_large: usize,
    },
}

/// The newest artifact named as `wanted` that has not expired (by its flag
/// or its `expires_at`, compared with `now`) and is not over `max_bytes`.
pub fn choose_artifact<'a>(
    artifacts: &'a [Artifact],
    wanted: &Wanted,
    now: DateTime<Utc>,
    max_bytes: u64,
) -> ArtifactChoice<'a> {
    let (mut expired, mut too_large) = (0, 0);
    let mut best: Option<&Artifact> = None;
    for a in artifacts.iter().filter(|a| wanted.matches(&a.name)) {
        if a.expired || a.expires_at.is_some_and(|t| t <= now) {
            expired += 1;
        } else if a.size_in_bytes > max_bytes {
            too_large += 1;
        } else if best.is_none_or(|b| (a.created_at, a.id) > (b.created_at, b.id)) {
            best = Some(a);
        }
    }
    match best {
        Some(a) => ArtifactChoice::Found(a),
        None => ArtifactChoice::None { expired, too_large },
    }
}

/// The report in an artifact's file list: a `report.json` at any depth (a
/// leg uploads `reports/`, so it sits in `<run id>/`), not the committed
/// `example/`. Of several, the greatest path: run ids start with the UTC
/// time, so that is the newest run.
pub fn report_entry(names: &[String]) -> Option<&str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|n| *n == "report.json" || n.ends_with("/report.json"))
        .filter(|n| !n.split('/').any(|part| part == "example"))
        .max()
}

/// Why an artifact's zip gave no report.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipProblem {
    NotAZip(String),
    NoReport { files: Vec<String> },
    TooLarge { entry: String, size: u64 },
    Unreadable { entry: String, reason: String },
}

impl std::fmt::Display for ZipProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZipProblem::NotAZip(e) => write!(f, "is not a readable zip archive ({e})"),
            ZipProblem::NoReport { files } if files.is_empty() => write!(f, "is empty"),
            ZipProblem::NoReport { files } => {
                const SHOWN: usize = 10;
                let mut list = files
                    .iter()
                    .take(SHOWN)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if files.len() > SHOWN {
                    list.push_str(&format!(", … {} more", files.len() - SHOWN));
                }
                write!(f, "holds no report.json outside example/ (it holds {list})")
            }
            ZipProblem::TooLarge { entry, size } => write!(
                f,
                "holds a {entry} of {size} bytes, over firedrill's limit of {MAX_REPORT_BYTES} bytes"
            ),
            ZipProblem::Unreadable { entry, reason } => {
                write!(f, "holds a {entry} that cannot be unpacked ({reason})")
            }
        }
    }
}

/// The report.json in an artifact's zip (read in memory): its path in the
/// zip and its bytes.
pub fn report_from_zip(zip_bytes: &[u8]) -> Result<(String, Vec<u8>), ZipProblem> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
        .map_err(|e| ZipProblem::NotAZip(e.to_string()))?;
    let names = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| ZipProblem::NotAZip(e.to_string()))?;
    let Some(entry) = report_entry(&names).map(str::to_string) else {
        let mut files = names;
        files.sort();
        return Err(ZipProblem::NoReport { files });
    };
    let file = archive
        .by_name(&entry)
        .map_err(|e| ZipProblem::Unreadable {
            entry: entry.clone(),
            reason: e.to_string(),
        })?;
    if file.size() > MAX_REPORT_BYTES {
        return Err(ZipProblem::TooLarge {
            entry,
            size: file.size(),
        });
    }
    // The header's size may lie: never read past the limit.
    let mut out = Vec::with_capacity(file.size() as usize);
    file.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ZipProblem::Unreadable {
            entry: entry.clone(),
            reason: e.to_string(),
        })?;
    if out.len() as u64 > MAX_REPORT_BYTES {
        return Err(ZipProblem::TooLarge {
            size: out.len() as u64,
            entry,
        });
    }
    Ok((entry, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn run(id: u64, conclusion: Option<&str>, created: &str) -> WorkflowRun {
        WorkflowRun {
            id,
            run_attempt: Some(1),
            status: Some("completed".into()),
            conclusion: conclusion.map(str::to_string),
            created_at: t(created),
            html_url: Some(format!("https://github.com/o/r/actions/runs/{id}")),
            head_branch: Some("main".into()),
        }
    }

    fn artifact(id: u64, name: &str, created: &str, expires: &str, expired: bool) -> Artifact {
        Artifact {
            id,
            name: name.into(),
            size_in_bytes: 556,
            expired,
            created_at: Some(t(created)),
            expires_at: Some(t(expires)),
        }
    }

    fn leg(target: &str) -> Wanted {
        Wanted::Leg {
            target: target.into(),
        }
    }

    #[test]
    fn artifact_names_match_exactly_the_target() {
        let w = leg("aks-test");
        assert!(w.matches("firedrill-report-6028130407-1-aks-test"));
        assert!(w.matches("firedrill-report-6028130407-12-aks-test"));
        for other in [
            "firedrill-report-6028130407-1-aks-test-2", // another target
            "firedrill-report-6028130407-1-aks",
            "firedrill-report-6028130407-1-",
            "firedrill-report-6028130407-aks-test", // no attempt
            "firedrill-report-x-1-aks-test",
            "firedrill-report--1-aks-test",
            "firedrill-merged-report-6028130407-1",
            "Rails",
            "",
        ] {
            assert!(!w.matches(other), "{other}");
        }
        // A target name with dashes is matched whole, not split.
        assert!(leg("eu-west-1").matches("firedrill-report-7-2-eu-west-1"));
        assert!(!leg("west-1").matches("firedrill-report-7-2-eu-west-1"));

        let m = Wanted::Merged;
        assert!(m.matches("firedrill-merged-report-6028130407-1"));
        for other in [
            "firedrill-merged-report-6028130407-1-aks-test",
            "firedrill-merged-report-6028130407",
            "firedrill-report-6028130407-1-aks-test",
            "firedrill-merged-report-6028130407-x",
        ] {
            assert!(!m.matches(other), "{other}");
        }
        assert_eq!(
            leg("aks-test").pattern(),
            "firedrill-report-<run id>-<attempt>-aks-test"
        );
        assert_eq!(
            Wanted::Merged.pattern(),
            "firedrill-merged-report-<run id>-<attempt>"
        );
    }

    #[test]
    fn workflow_file_comes_from_the_workflow_ref() {
        assert_eq!(
            workflow_file("octo-org/octo-repo/.github/workflows/acceptance.yml@refs/heads/main")
                .as_deref(),
            Some("acceptance.yml")
        );
        assert_eq!(
            workflow_file("o/r/.github/workflows/ci.yaml@refs/pull/12/merge").as_deref(),
            Some("ci.yaml")
        );
        assert_eq!(
            workflow_file("o/r/.github/workflows/a.yml").as_deref(),
            Some("a.yml")
        );
        for bad in [
            "",
            "acceptance.yml",
            "o/r/.github/workflows/@refs/heads/main",
            "o/r/.github/workflows/sub/a.yml@main",
            "o/r/.github/workflows/README.md@main",
        ] {
            assert_eq!(workflow_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn candidates_are_successful_runs_newest_first_without_the_current_one() {
        let runs = vec![
            run(10, Some("success"), "2026-11-01T10:00:00Z"),
            run(30, Some("success"), "2026-11-03T10:00:00Z"), // current
            run(20, Some("success"), "2026-11-02T10:00:00Z"),
            run(25, Some("failure"), "2026-11-02T12:00:00Z"),
            run(26, None, "2026-11-02T13:00:00Z"),
            run(21, Some("success"), "2026-11-02T10:00:00Z"), // same time: higher id first
        ];
        let ids: Vec<u64> = candidate_runs(&runs, Some(30))
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [21, 20, 10]);
        let ids: Vec<u64> = candidate_runs(&runs, None).iter().map(|r| r.id).collect();
        assert_eq!(ids, [30, 21, 20, 10]);
        assert!(candidate_runs(&[], Some(1)).is_empty());
    }

    #[test]
    fn the_newest_unexpired_matching_artifact_is_chosen() {
        let now = t("2026-12-02T08:00:00Z");
        let w = leg("aks-test");
        let arts = vec![
            artifact(
                1,
                "firedrill-report-9-1-aks-test",
                "2026-11-01T00:00:00Z",
                "2027-01-30T00:00:00Z",
                false,
            ),
            artifact(
                2,
                "firedrill-report-9-2-aks-test",
                "2026-11-02T00:00:00Z",
                "2027-01-31T00:00:00Z",
                false,
            ),
            artifact(
                3,
                "firedrill-report-9-2-other",
                "2026-11-03T00:00:00Z",
                "2027-02-01T00:00:00Z",
                false,
            ),
            artifact(
                4,
                "firedrill-merged-report-9-2",
                "2026-11-03T00:00:00Z",
                "2027-02-01T00:00:00Z",
                false,
            ),
        ];
        assert_eq!(
            choose_artifact(&arts, &w, now, MAX_ARTIFACT_BYTES),
            ArtifactChoice::Found(&arts[1])
        );
        assert_eq!(
            choose_artifact(&arts, &Wanted::Merged, now, MAX_ARTIFACT_BYTES),
            ArtifactChoice::Found(&arts[3])
        );
        assert_eq!(
            choose_artifact(&arts, &leg("nope"), now, MAX_ARTIFACT_BYTES),
            ArtifactChoice::None {
                expired: 0,
                too_large: 0
            }
        );
    }

    #[test]
    fn expired_and_oversized_artifacts_are_skipped_and_counted() {
        let now = t("2026-12-02T08:00:00Z");
        let w = leg("aks-test");
        let flagged = artifact(
            1,
            "firedrill-report-9-3-aks-test",
            "2026-11-05T00:00:00Z",
            "2027-01-01T00:00:00Z",
            true,
        );
        // GitHub has not flipped the flag yet, but the date has passed.
        let past = artifact(
            2,
            "firedrill-report-9-2-aks-test",
            "2026-09-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
            false,
        );
        let mut huge = artifact(
            3,
            "firedrill-report-9-4-aks-test",
            "2026-11-06T00:00:00Z",
            "2027-01-01T00:00:00Z",
            false,
        );
        huge.size_in_bytes = MAX_ARTIFACT_BYTES + 1;
        let good = artifact(
            4,
            "firedrill-report-9-1-aks-test",
            "2026-10-01T00:00:00Z",
            "2026-12-30T00:00:00Z",
            false,
        );
        let arts = vec![flagged.clone(), past.clone(), huge.clone(), good.clone()];
        assert_eq!(
            choose_artifact(&arts, &w, now, MAX_ARTIFACT_BYTES),
            ArtifactChoice::Found(&arts[3])
        );
        let arts = vec![flagged, past, huge];
        assert_eq!(
            choose_artifact(&arts, &w, now, MAX_ARTIFACT_BYTES),
            ArtifactChoice::None {
                expired: 2,
                too_large: 1
            }
        );
    }

    #[test]
    fn the_report_entry_skips_the_example_and_prefers_the_newest_run() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            report_entry(&names(&["report.md", "report.json", "junit.xml"])),
            Some("report.json")
        );
        assert_eq!(
            report_entry(&names(&[
                "README.md",
                "example/report.json",
                "20261201T080000Z-ab12/report.json",
                "20261201T090000Z-cd34/report.json",
                "20261201T090000Z-cd34/report.md",
            ])),
            Some("20261201T090000Z-cd34/report.json")
        );
        assert_eq!(report_entry(&names(&["example/report.json"])), None);
        assert_eq!(report_entry(&names(&["myreport.json", "report.md"])), None);
        assert_eq!(report_entry(&[]), None);
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn the_report_is_read_out_of_the_zip() {
        let z = zip_of(&[
            ("example/report.json", b"{\"old\":1}"),
            ("20261201T090000Z-cd34/report.json", b"{\"run_id\":\"x\"}"),
            ("20261201T090000Z-cd34/report.md", b"# r"),
        ]);
        let (entry, bytes) = report_from_zip(&z).unwrap();
        assert_eq!(entry, "20261201T090000Z-cd34/report.json");
        assert_eq!(bytes, b"{\"run_id\":\"x\"}");
    }

    #[test]
    fn a_zip_without_a_report_or_not_a_zip_says_what_it_holds() {
        let z = zip_of(&[("report.md", b"# r"), ("junit.xml", b"<x/>")]);
        let e = report_from_zip(&z).unwrap_err();
        assert_eq!(
            e,
            ZipProblem::NoReport {
                files: vec!["junit.xml".into(), "report.md".into()]
            }
        );
        assert!(e.to_string().contains("holds no report.json"), "{e}");
        assert!(e.to_string().contains("junit.xml, report.md"), "{e}");
        let many: Vec<(String, Vec<u8>)> = (0..15)
            .map(|i| (format!("f{i:02}.txt"), vec![b'x']))
            .collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let e = report_from_zip(&zip_of(&refs)).unwrap_err().to_string();
        assert!(e.ends_with("f09.txt, … 5 more)"), "{e}");
        assert_eq!(
            report_from_zip(&zip_of(&[])).unwrap_err().to_string(),
            "is empty"
        );
        let e = report_from_zip(b"{\"message\":\"Not Found\"}").unwrap_err();
        assert!(matches!(e, ZipProblem::NotAZip(_)), "{e:?}");
        assert!(e.to_string().starts_with("is not a readable zip archive"));
    }
}
