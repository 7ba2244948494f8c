//! GitHub, from inside a GitHub Actions job: a check run carrying the
//! verdict and summary, and one issue per failing acceptance (opened once,
//! commented on by later runs). Talks to `GITHUB_API_URL` through octocrab,
//! so GitHub Enterprise Server and test doubles work the same way. Also
//! `--baseline previous`: the latest successful run's report artifact
//! (which run and artifact: the pure [`previous`] module).

use crate::model::Verdict;
use octocrab::models::issues::Issue;
use octocrab::params::checks::{CheckRunConclusion, CheckRunOutput, CheckRunStatus};
use octocrab::Octocrab;
use serde::Serialize;
use std::time::Duration;
use thiserror::Error;

pub mod previous;

/// GitHub rejects a check run `output.summary` over 65 535 characters.
pub const SUMMARY_LIMIT: usize = 65_535;
/// Open issues firedrill looks through for one with the same title.
const MAX_ISSUE_PAGES: u32 = 10;

/// Where the job runs and how to reach GitHub. `Debug` hides the token.
#[derive(Clone)]
pub struct GitHubContext {
    pub owner: String,
    pub repo: String,
    /// The commit the job runs on (`GITHUB_SHA`); the check run attaches to it.
    pub sha: String,
    /// `GITHUB_SERVER_URL`, e.g. `https://github.com`.
    pub server_url: String,
    /// `GITHUB_API_URL`, e.g. `https://api.github.com` (octocrab's base URI).
    pub api_url: String,
    pub run_id: Option<String>,
    /// `GITHUB_WORKFLOW_REF`, e.g.
    /// `octo-org/octo-repo/.github/workflows/acceptance.yml@refs/heads/main`.
    pub workflow_ref: Option<String>,
    token: String,
}

impl std::fmt::Debug for GitHubContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubContext")
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("sha", &self.sha)
            .field("server_url", &self.server_url)
            .field("api_url", &self.api_url)
            .field("run_id", &self.run_id)
            .field("workflow_ref", &self.workflow_ref)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why there is no GitHub context: one line for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoGitHubContext {
    #[error("not running in GitHub Actions (GITHUB_ACTIONS is not \"true\"); skipping GitHub check run and issue")]
    NotInActions,
    #[error(
        "GITHUB_TOKEN is not set, so firedrill cannot create a check run or an issue; add \
         `env: GITHUB_TOKEN: ${{{{ github.token }}}}` to the step and grant `checks: write` and \
         `issues: write`"
    )]
    NoToken,
    #[error("{var} is not set or malformed ({value:?}); GitHub Actions always sets it")]
    Missing { var: &'static str, value: String },
}

impl GitHubContext {
    /// The job's context from the environment, or `None` outside Actions or
    /// without a token (see [`detect`](Self::detect) for the reason).
    pub fn from_env() -> Option<Self> {
        Self::detect(|k| std::env::var(k).ok()).ok()
    }

    /// As [`from_env`](Self::from_env), reading variables through `lookup`
    /// and saying why when there is no context.
    pub fn detect(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NoGitHubContext> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if get("GITHUB_ACTIONS").as_deref() != Some("true") {
            return Err(NoGitHubContext::NotInActions);
        }
        let token = get("GITHUB_TOKEN").ok_or(NoGitHubContext::NoToken)?;
        crate::secrets::register(&token);
        let repository = get("GITHUB_REPOSITORY").unwrap_or_default();
        let (owner, repo) = match repository.split_once('/') {
            Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => {
                (o.to_string(), r.to_string())
            }
            _ => {
                return Err(NoGitHubContext::Missing {
                    var: "GITHUB_REPOSITORY",
                    value: repository,
                })
            }
        };
        let sha = get("GITHUB_SHA").ok_or(NoGitHubContext::Missing {
            var: "GITHUB_SHA",
            value: String::new(),
        })?;
        Ok(GitHubContext {
            owner,
            repo,
            sha,
            server_url: get("GITHUB_SERVER_URL")
                .unwrap_or_else(|| "https://github.com".into())
                .trim_end_matches('/')
                .to_string(),
            api_url: get("GITHUB_API_URL")
                .unwrap_or_else(|| "https://api.github.com".into())
                .trim_end_matches('/')
                .to_string(),
            run_id: get("GITHUB_RUN_ID"),
            workflow_ref: get("GITHUB_WORKFLOW_REF"),
            token,
        })
    }

    /// The workflow run's page, when the run id is known.
    pub fn run_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|id| {
            format!(
                "{}/{}/{}/actions/runs/{id}",
                self.server_url, self.owner, self.repo
            )
        })
    }

    fn client(&self) -> Result<Octocrab, GitHubError> {
        Octocrab::builder()
            .base_uri(self.api_url.as_str())
            .map_err(|e| GitHubError::Client {
                api_url: self.api_url.clone(),
                reason: format!("GITHUB_API_URL is not a usable URL: {e}"),
            })?
            .personal_token(self.token.clone())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| GitHubError::Client {
                api_url: self.api_url.clone(),
                reason: e.to_string(),
            })
    }

    fn repo_slug(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// GitHub's answer, or why there was none. Carries GitHub's `message`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GitHubError {
    #[error(
        "GitHub at {api_url} rejected GITHUB_TOKEN on {request}: 401 {message}. The token may \
         have expired; in Actions pass `${{{{ github.token }}}}`"
    )]
    Unauthorized {
        api_url: String,
        request: String,
        message: String,
    },
    #[error(
        "GitHub refused {request} in {repo}: 403 {message}. Grant the job `permissions: \
         checks: write, issues: write` (forks' pull requests get a read-only token)"
    )]
    Forbidden {
        repo: String,
        request: String,
        message: String,
    },
    #[error(
        "GitHub answered 404 {message} to {request} in {repo}: check GITHUB_REPOSITORY and that \
         the token can see the repository (issues must be enabled for issues)"
    )]
    NotFound {
        repo: String,
        request: String,
        message: String,
    },
    #[error("GitHub rejected {request} in {repo}: 422 {message} {errors}")]
    Validation {
        repo: String,
        request: String,
        message: String,
        errors: String,
    },
    #[error("GitHub answered HTTP {status} to {request} in {repo}: {message}")]
    Api {
        repo: String,
        request: String,
        status: u16,
        message: String,
    },
    #[error(
        "GitHub at {api_url} is unreachable ({request}): {reason}. Check GITHUB_API_URL and the \
         runner's network"
    )]
    Unreachable {
        api_url: String,
        request: String,
        reason: String,
    },
    #[error("cannot set up a GitHub client for {api_url}: {reason}")]
    Client { api_url: String, reason: String },
}

impl GitHubError {
    fn from_octocrab(e: octocrab::Error, ctx: &GitHubContext, request: &str) -> Self {
        let repo = ctx.repo_slug();
        let request = request.to_string();
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let message = source.message.clone();
                match source.status_code.as_u16() {
                    401 => GitHubError::Unauthorized {
                        api_url: ctx.api_url.clone(),
                        request,
                        message,
                    },
                    403 => GitHubError::Forbidden {
                        repo,
                        request,
                        message,
                    },
                    404 => GitHubError::NotFound {
                        repo,
                        request,
                        message,
                    },
                    422 => GitHubError::Validation {
                        repo,
                        request,
                        message,
                        errors: source
                            .errors
                            .as_ref()
                            .map(|e| serde_json::to_string(e).unwrap_or_default())
                            .unwrap_or_default(),
                    },
                    status => GitHubError::Api {
                        repo,
                        request,
                        status,
                        message,
                    },
                }
            }
            octocrab::Error::Hyper { .. }
            | octocrab::Error::Service { .. }
            | octocrab::Error::Http { .. } => GitHubError::Unreachable {
                api_url: ctx.api_url.clone(),
                request,
                reason: error_chain(&e),
            },
            other => GitHubError::Api {
                repo,
                request,
                status: 0,
                message: other.to_string(),
            },
        }
    }
}

/// An error and its causes, `outer: inner: root` (octocrab's own text
/// stops at "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// The check run's conclusion for a verdict: only a pass is a success.
pub fn conclusion_for(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "success",
        Verdict::Fail | Verdict::Error => "failure",
        Verdict::Skipped | Verdict::Pending => "neutral",
    }
}

fn octo_conclusion(verdict: Verdict) -> CheckRunConclusion {
    match conclusion_for(verdict) {
        "success" => CheckRunConclusion::Success,
        "failure" => CheckRunConclusion::Failure,
        _ => CheckRunConclusion::Neutral,
    }
}

/// Cuts `summary` to fit GitHub's limit (counted in bytes, which is never
/// fewer than characters) on a character boundary, saying so at the end.
pub fn truncate_summary(summary: &str, limit: usize) -> String {
    if summary.len() <= limit {
        return summary.to_string();
    }
    const NOTE: &str =
        "\n\n… (truncated to fit GitHub's check-run limit; the full report is in the run's artifact)";
    let mut cut = limit.saturating_sub(NOTE.len());
    while cut > 0 && !summary.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{NOTE}", &summary[..cut])
}

/// The created check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRunInfo {
    pub id: u64,
    pub html_url: Option<String>,
    pub conclusion: String,
}

/// `POST /repos/{owner}/{repo}/check-runs`: a completed check run on the
/// job's commit with the verdict as conclusion and the summary as output.
pub async fn create_check_run(
    ctx: &GitHubContext,
    name: &str,
    verdict: Verdict,
    title: &str,
    summary_markdown: &str,
) -> Result<CheckRunInfo, GitHubError> {
    let request = "POST check-runs";
    let octo = ctx.client()?;
    let checks = octo.checks(&ctx.owner, &ctx.repo);
    let mut builder = checks
        .create_check_run(name, &ctx.sha)
        .status(CheckRunStatus::Completed)
        .conclusion(octo_conclusion(verdict))
        .completed_at(chrono::Utc::now())
        .output(CheckRunOutput {
            title: title.to_string(),
            summary: truncate_summary(summary_markdown, SUMMARY_LIMIT),
            text: None,
            annotations: Vec::new(),
            images: Vec::new(),
        });
    if let Some(url) = ctx.run_url() {
        builder = builder.details_url(url);
    }
    let run = builder
        .send()
        .await
        .map_err(|e| GitHubError::from_octocrab(e, ctx, request))?;
    Ok(CheckRunInfo {
        id: run.id.into_inner(),
        html_url: run.html_url,
        conclusion: conclusion_for(verdict).to_string(),
    })
}

/// Whether [`open_or_comment_issue`] opened a new issue or commented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueAction {
    Created,
    Commented,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueOutcome {
    pub action: IssueAction,
    pub number: u64,
    /// The issue's page (for a comment: the comment's anchor on it).
    pub url: String,
}

/// Opens an issue titled `title`, or, if an open one with exactly that
/// title exists, comments `body` on it, so repeated failures gather in one
/// place. Lists open issues (not search, which lags behind new issues).
pub async fn open_or_comment_issue(
    ctx: &GitHubContext,
    title: &str,
    body: &str,
) -> Result<IssueOutcome, GitHubError> {
    let octo = ctx.client()?;
    let issues = octo.issues(&ctx.owner, &ctx.repo);
    if let Some(existing) = find_open_issue(&octo, ctx, title).await? {
        let comment = issues
            .create_comment(existing.number, body)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, ctx, "POST issue comment"))?;
        return Ok(IssueOutcome {
            action: IssueAction::Commented,
            number: existing.number,
            url: comment.html_url.to_string(),
        });
    }
    let created = issues
        .create(title)
        .body(body)
        .send()
        .await
        .map_err(|e| GitHubError::from_octocrab(e, ctx, "POST issues"))?;
    Ok(IssueOutcome {
        action: IssueAction::Created,
        number: created.number,
        url: created.html_url.to_string(),
    })
}

async fn find_open_issue(
    octo: &Octocrab,
    ctx: &GitHubContext,
    title: &str,
) -> Result<Option<Issue>, GitHubError> {
    let request = "GET issues?state=open";
    let mut page = octo
        .issues(&ctx.owner, &ctx.repo)
        .list()
        .state(octocrab::params::State::Open)
        .per_page(100u8)
        .send()
        .await
        .map_err(|e| GitHubError::from_octocrab(e, ctx, request))?;
    for _ in 0..MAX_ISSUE_PAGES {
        if let Some(found) = page
            .items
            .iter()
            .find(|i| i.pull_request.is_none() && i.title.trim() == title.trim())
        {
            return Ok(Some(found.clone()));
        }
        match octo
            .get_page::<Issue>(&page.next)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, ctx, request))?
        {
            Some(next) => page = next,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The report `--baseline previous` found: where it came from and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousReport {
    pub run_id: u64,
    /// The run's page on GitHub.
    pub run_url: String,
    pub artifact_id: u64,
    pub artifact_name: String,
    /// The report's path inside the artifact's zip.
    pub entry: String,
    pub json: Vec<u8>,
    /// Successful runs whose artifacts were listed (1 when the newest had it).
    pub runs_looked_at: usize,
    /// Requests to GitHub's API (the blob download not counted).
    pub api_calls: u32,
}

/// Why `--baseline previous` found no report; each names what was looked
/// for and where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PreviousError {
    #[error(
        "GITHUB_WORKFLOW_REF is {value:?}, not `owner/repo/.github/workflows/FILE@ref` as GitHub \
         Actions sets it, so firedrill cannot tell which workflow's runs to look in; pass a \
         report with --baseline PATH instead"
    )]
    WorkflowRef { value: String },
    #[error(
        "GitHub refused {request} in {repo}: 403 {message}. `--baseline previous` reads the \
         workflow's runs and artifacts: grant the job `permissions: actions: read`"
    )]
    Forbidden {
        repo: String,
        request: String,
        message: String,
    },
    #[error(
        "GitHub answered 404 {message} to {request} in {repo}: check that {workflow} is this \
         repository's workflow (from GITHUB_WORKFLOW_REF) and that the job's token may read \
         Actions (`permissions: actions: read`)"
    )]
    NotFound {
        repo: String,
        request: String,
        workflow: String,
        message: String,
    },
    #[error("{0}")]
    Api(GitHubError),
    #[error("GitHub's answer to {request} is not what its API documents: {reason}")]
    Decode { request: String, reason: String },
    #[error(
        "{workflow} in {repo} has no successful run before this one (asked for the newest \
         {asked}): the first green run becomes the baseline of the next"
    )]
    NoRuns {
        workflow: String,
        repo: String,
        asked: u8,
    },
    #[error(
        "none of the {runs} newest successful runs of {workflow} in {repo} (this run excluded; \
         at most {asked} are looked at) has such an artifact{skipped}"
    )]
    NoArtifact {
        workflow: String,
        repo: String,
        runs: usize,
        asked: u8,
        /// `; 2 with that name had expired` or empty.
        skipped: String,
    },
    #[error("artifact {name} of run {run_url} could not be downloaded: {reason}")]
    Download {
        name: String,
        run_url: String,
        reason: String,
    },
    #[error("artifact {name} of run {run_url} {problem}")]
    Zip {
        name: String,
        run_url: String,
        problem: String,
    },
    #[error(
        "the lookup in {repo} took longer than {secs} s and was abandoned (GitHub at {api_url} \
         answering slowly?)"
    )]
    Timeout {
        repo: String,
        api_url: String,
        secs: u64,
    },
}

/// The report of the latest successful run of this job's workflow that
/// uploaded an artifact named as `wanted`: lists the workflow's successful
/// runs (one page of [`previous::MAX_RUNS`], newest first, this run
/// skipped), each run's artifacts until one matches, downloads that zip
/// (GitHub answers 302 to a short-lived blob URL, fetched without the
/// token) and reads its report.json in memory. The whole lookup is bounded
/// by [`previous::LOOKUP_TIMEOUT`].
pub async fn previous_report(
    ctx: &GitHubContext,
    wanted: &previous::Wanted,
) -> Result<PreviousReport, PreviousError> {
    let limit = previous::LOOKUP_TIMEOUT;
    match tokio::time::timeout(limit, find_previous(ctx, wanted)).await {
        Ok(found) => found,
        Err(_) => Err(PreviousError::Timeout {
            repo: ctx.repo_slug(),
            api_url: ctx.api_url.clone(),
            secs: limit.as_secs(),
        }),
    }
}

async fn find_previous(
    ctx: &GitHubContext,
    wanted: &previous::Wanted,
) -> Result<PreviousReport, PreviousError> {
    use previous::{ArtifactChoice, ArtifactsPage, RunsPage, MAX_ARTIFACT_BYTES, MAX_RUNS};
    let raw_ref = ctx.workflow_ref.clone().unwrap_or_default();
    let workflow =
        previous::workflow_file(&raw_ref).ok_or(PreviousError::WorkflowRef { value: raw_ref })?;
    let octo = ctx.client().map_err(PreviousError::Api)?;
    let current = ctx.run_id.as_deref().and_then(|s| s.parse::<u64>().ok());
    let (owner, repo) = (ctx.owner.as_str(), ctx.repo.as_str());
    let mut api_calls = 0;

    let route = api_path(&[
        "repos",
        owner,
        repo,
        "actions",
        "workflows",
        &workflow,
        "runs",
    ]);
    let request = format!("GET {route}?status=success");
    let per_page = MAX_RUNS.to_string();
    api_calls += 1;
    let page: RunsPage = octo
        .get(
            &route,
            Some(&[
                ("status", "success"),
                ("per_page", per_page.as_str()),
                ("exclude_pull_requests", "true"),
            ]),
        )
        .await
        .map_err(|e| previous_api_error(e, ctx, &request, &workflow))?;
    let runs = previous::candidate_runs(&page.workflow_runs, current);
    if runs.is_empty() {
        return Err(PreviousError::NoRuns {
            workflow,
            repo: ctx.repo_slug(),
            asked: MAX_RUNS,
        });
    }

    let now = chrono::Utc::now();
    let (mut expired, mut too_large) = (0, 0);
    for (looked, run) in runs.iter().enumerate() {
        let id = run.id.to_string();
        let route = api_path(&["repos", owner, repo, "actions", "runs", &id, "artifacts"]);
        let request = format!("GET {route}");
        let per_page = previous::ARTIFACTS_PER_PAGE.to_string();
        api_calls += 1;
        let page: ArtifactsPage = octo
            .get(&route, Some(&[("per_page", per_page.as_str())]))
            .await
            .map_err(|e| previous_api_error(e, ctx, &request, &workflow))?;
        let artifact =
            match previous::choose_artifact(&page.artifacts, wanted, now, MAX_ARTIFACT_BYTES) {
                ArtifactChoice::Found(a) => a,
                ArtifactChoice::None {
                    expired: e,
                    too_large: t,
                } => {
                    expired += e;
                    too_large += t;
                    continue;
                }
            };
        let run_url = run
            .html_url
            .clone()
            .unwrap_or_else(|| format!("{}/{owner}/{repo}/actions/runs/{id}", ctx.server_url));
        api_calls += 1;
        let zip = download_artifact_zip(&octo, ctx, artifact.id)
            .await
            .map_err(|reason| PreviousError::Download {
                name: artifact.name.clone(),
                run_url: run_url.clone(),
                reason,
            })?;
        let (entry, json) = previous::report_from_zip(&zip).map_err(|p| PreviousError::Zip {
            name: artifact.name.clone(),
            run_url: run_url.clone(),
            problem: p.to_string(),
        })?;
        return Ok(PreviousReport {
            run_id: run.id,
            run_url,
            artifact_id: artifact.id,
            artifact_name: artifact.name.clone(),
            entry,
            json,
            runs_looked_at: looked + 1,
            api_calls,
        });
    }
    let mut skipped = Vec::new();
    if expired > 0 {
        skipped.push(format!("{expired} with that name had expired"));
    }
    if too_large > 0 {
        skipped.push(format!(
            "{too_large} with that name were over {}",
            crate::clients::http::human_bytes(MAX_ARTIFACT_BYTES)
        ));
    }
    Err(PreviousError::NoArtifact {
        workflow,
        repo: ctx.repo_slug(),
        runs: runs.len(),
        asked: MAX_RUNS,
        skipped: if skipped.is_empty() {
            String::new()
        } else {
            format!("; {}", skipped.join(", "))
        },
    })
}

/// `GET .../actions/artifacts/{id}/zip`: GitHub answers 302 with a
/// pre-signed blob URL (valid for a minute), fetched with a plain client so
/// the token never leaves for the blob store. The zip is read up to
/// [`previous::MAX_ARTIFACT_BYTES`].
async fn download_artifact_zip(
    octo: &Octocrab,
    ctx: &GitHubContext,
    artifact_id: u64,
) -> Result<Vec<u8>, String> {
    let id = artifact_id.to_string();
    let route = api_path(&[
        "repos",
        &ctx.owner,
        &ctx.repo,
        "actions",
        "artifacts",
        &id,
        "zip",
    ]);
    let request = format!("GET {route}");
    // `_get`: the answer as it is, the redirect not followed.
    let resp = octo
        ._get(route.as_str())
        .await
        .map_err(|e| GitHubError::from_octocrab(e, ctx, &request).to_string())?;
    let status = resp.status();
    if !status.is_redirection() {
        if status.is_success() {
            return Err(format!(
                "GitHub answered {request} with {status} instead of a redirect to the zip"
            ));
        }
        let err = match octocrab::map_github_error(resp).await {
            Err(e) => GitHubError::from_octocrab(e, ctx, &request).to_string(),
            Ok(_) => format!("GitHub answered {request} with {status}"),
        };
        return Err(if status == http::StatusCode::GONE {
            format!("{err} (410 Gone: the artifact expired or was deleted)")
        } else {
            err
        });
    }
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("GitHub answered {request} with {status} but no Location"))?;
    let base = url::Url::parse(&format!("{}/", ctx.api_url))
        .map_err(|e| format!("GITHUB_API_URL {} is not a URL: {e}", ctx.api_url))?;
    let url = base
        .join(location)
        .map_err(|e| format!("GitHub redirected to {location:?}, not a URL: {e}"))?;
    // Never name the signed URL in a message: it is a credential for a minute.
    let shown = {
        let mut u = url.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    };
    let client = crate::clients::http::client(Duration::from_secs(120));
    let blob = client.get(url).send().await.map_err(|e| {
        format!(
            "{shown}: {}",
            crate::clients::http::describe(&e.without_url())
        )
    })?;
    let blob_status = blob.status();
    if !blob_status.is_success() {
        let body = crate::clients::http::read_body(blob, 4096)
            .await
            .unwrap_or_default();
        return Err(format!(
            "{shown} (where GitHub redirected) answered HTTP {blob_status}: {}",
            crate::clients::http::snippet(&body, 200)
        ));
    }
    crate::clients::http::read_body(blob, previous::MAX_ARTIFACT_BYTES)
        .await
        .map_err(|e| match e {
            crate::clients::http::BodyError::TooLarge(t) => format!("{shown}: the zip is {t}"),
            crate::clients::http::BodyError::Read(e) => {
                format!(
                    "{shown}: {}",
                    crate::clients::http::describe(&e.without_url())
                )
            }
        })
}

/// `/repos/{owner}/{repo}/...` with each segment percent-encoded.
fn api_path(segments: &[&str]) -> String {
    let mut u = url::Url::parse("http://api/").expect("static URL parses");
    u.path_segments_mut()
        .expect("an http URL has path segments")
        .extend(segments);
    u.path().to_string()
}

fn previous_api_error(
    e: octocrab::Error,
    ctx: &GitHubContext,
    request: &str,
    workflow: &str,
) -> PreviousError {
    if let octocrab::Error::Json { source, .. } = &e {
        return PreviousError::Decode {
            request: request.to_string(),
            reason: format!("at {}: {}", source.path(), source.inner()),
        };
    }
    match GitHubError::from_octocrab(e, ctx, request) {
        GitHubError::Forbidden {
            repo,
            request,
            message,
        } => PreviousError::Forbidden {
            repo,
            request,
            message,
        },
        GitHubError::NotFound {
            repo,
            request,
            message,
        } => PreviousError::NotFound {
            repo,
            request,
            workflow: workflow.to_string(),
            message,
        },
        other => PreviousError::Api(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_TOKEN", "ghs_secret"),
        ("GITHUB_REPOSITORY", "raykao/daedalus"),
        ("GITHUB_SHA", "c3b93769f009d1738363041806908cb3739c88d9"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", "https://api.github.com/"),
        ("GITHUB_RUN_ID", "6028130407"),
    ];

    #[test]
    fn detects_the_actions_context() {
        let ctx = GitHubContext::detect(env(FULL)).unwrap();
        assert_eq!(
            (ctx.owner.as_str(), ctx.repo.as_str()),
            ("raykao", "daedalus")
        );
        assert_eq!(ctx.api_url, "https://api.github.com");
        assert_eq!(
            ctx.run_url().unwrap(),
            "https://github.com/raykao/daedalus/actions/runs/6028130407"
        );
        assert!(!format!("{ctx:?}").contains("ghs_secret"));
    }

    #[test]
    fn says_why_there_is_no_context() {
        let without = |skip: &str, replace: Option<(&str, &str)>| {
            let v: Vec<(&str, &str)> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != skip)
                .chain(replace)
                .collect();
            GitHubContext::detect(env(&v)).unwrap_err()
        };
        assert_eq!(
            without("GITHUB_ACTIONS", None),
            NoGitHubContext::NotInActions
        );
        assert_eq!(
            without("GITHUB_ACTIONS", Some(("GITHUB_ACTIONS", "false"))),
            NoGitHubContext::NotInActions
        );
        let no_token = without("GITHUB_TOKEN", None);
        assert_eq!(no_token, NoGitHubContext::NoToken);
        assert!(no_token.to_string().contains("${{ github.token }}"));
        assert!(matches!(
            without("GITHUB_REPOSITORY", Some(("GITHUB_REPOSITORY", "nope"))),
            NoGitHubContext::Missing {
                var: "GITHUB_REPOSITORY",
                ..
            }
        ));
        assert!(matches!(
            without("GITHUB_SHA", None),
            NoGitHubContext::Missing {
                var: "GITHUB_SHA",
                ..
            }
        ));
    }

    #[test]
    fn conclusions() {
        for (v, want) in [
            (Verdict::Pass, "success"),
            (Verdict::Fail, "failure"),
            (Verdict::Error, "failure"),
            (Verdict::Skipped, "neutral"),
            (Verdict::Pending, "neutral"),
        ] {
            assert_eq!(conclusion_for(v), want, "{v}");
        }
    }

    #[test]
    fn truncates_summaries_on_char_boundaries() {
        assert_eq!(truncate_summary("short", 100), "short");
        let long = "é".repeat(40_000); // 80 000 bytes
        let t = truncate_summary(&long, SUMMARY_LIMIT);
        assert!(t.len() <= SUMMARY_LIMIT, "{}", t.len());
        assert!(t.ends_with("the full report is in the run's artifact)"));
        assert!(t.starts_with("éé"));
        let exact = "a".repeat(SUMMARY_LIMIT);
        assert_eq!(truncate_summary(&exact, SUMMARY_LIMIT), exact);
    }
}
