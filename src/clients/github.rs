//! GitHub, from inside a GitHub Actions job: a check run carrying the
//! verdict and summary, and one issue per failing acceptance (opened once,
//! commented on by later runs). Talks to `GITHUB_API_URL` through octocrab,
//! so GitHub Enterprise Server and test doubles work the same way.

use crate::model::Verdict;
use octocrab::models::issues::Issue;
use octocrab::params::checks::{CheckRunConclusion, CheckRunOutput, CheckRunStatus};
use octocrab::Octocrab;
use serde::Serialize;
use std::time::Duration;
use thiserror::Error;

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
