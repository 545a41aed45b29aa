//! GitHub's REST API: deployments and their statuses (the promotion's record, and its history
//! for the delivery metrics), environments and their protection rules (environments as code),
//! and the sticky pull-request comment.
//!
//! One client over octocrab with its own retries off: octocrab would retry POSTs, and a
//! retried `POST /deployments` makes a second deployment. Here only idempotent calls (GET, PUT,
//! DELETE, PATCH of a known comment) are retried on 5xx and connection errors; any call is
//! retried after a rate-limit answer (GitHub did not act on it), waiting as its headers say.
//!
//! CONTRACT (the pipeline codes against these signatures; keep them):
//!
//! Submodules: `transport` sends one request under the retry policy and turns GitHub's error
//! bodies into one-line messages; `deployments` (with `find_job_deployment`, the deployment
//! GitHub makes itself for a job with `environment:`), `history` (every deployment since a
//! cutoff with its statuses and commit dates, read concurrently), `environments` and
//! `comments` hold the endpoints, as `impl GitHub` blocks. Paths are relative to the API URL
//! (octocrab joins them to its base, keeping a GHES `/api/v3` prefix), names in them
//! percent-encoded, lists read with `per_page=100` while GitHub's `Link` header has a next
//! page.

mod comments;
pub use comments::{
    COMMENT_BUDGET, NoPullRequest, PLAN_COMMENT_MARKER, comment_failure, pull_request_number,
    pull_request_of_run,
};
mod deployments;
mod environments;
mod history;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::Secret;

pub use history::{CommitDates, DeploymentHistory, History, HistoryRequest};

/// The login GitHub shows for deployments it creates for a job that declares `environment:`.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub answered with an error status. `accepted_permissions` is GitHub's
    /// `x-accepted-github-permissions` header (e.g. `administration=write`), when sent.
    #[error("{method} {path}: {status} {message}{}", permission_hint(.accepted_permissions))]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
        accepted_permissions: Option<String>,
    },
    /// 202 on `POST /deployments`: GitHub merged the default branch into the ref instead of
    /// creating a deployment (auto_merge); we always send `auto_merge: false`, so this means the
    /// ref is behind and nothing was created.
    #[error("GitHub merged the default branch into {0} instead of creating a deployment")]
    AutoMerged(String),
    /// Still rate-limited after waiting as long as we are willing to.
    #[error("{method} {path}: rate limited by GitHub; reset at {reset}")]
    RateLimited {
        method: String,
        path: String,
        reset: String,
    },
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    #[error("{method} {path}: unexpected answer: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    #[error("invalid GitHub setting: {0}")]
    Setup(String),
}

fn permission_hint(accepted: &Option<String>) -> String {
    match accepted {
        Some(p) if !p.is_empty() => format!(" (the token needs: {p})"),
        _ => String::new(),
    }
}

impl GitHubError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How the client waits and retries; tests shrink the waits.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Retries of an idempotent call on 5xx or a connection error.
    pub retries: u32,
    pub base_delay: Duration,
    /// The longest rate-limit wait to sit out; a longer one fails with `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            retries: 3,
            base_delay: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(300),
        }
    }
}

/// A client for one repository.
#[derive(Clone)]
pub struct GitHub {
    client: octocrab::Octocrab,
    owner: String,
    repo: String,
    retry: RetrySettings,
    /// Requests sent by this client and its clones, retries included.
    sent: Arc<AtomicU64>,
}

/// `POST /repos/{o}/{r}/deployments`.
#[derive(Debug, Clone, Serialize)]
pub struct NewDeployment {
    /// Branch, tag or sha.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    /// Always false: never let GitHub merge the default branch into the ref.
    pub auto_merge: bool,
    /// `[]`: the promotion's own gate decides, not commit statuses.
    pub required_contexts: Vec<String>,
    pub payload: Value,
    pub environment: String,
    pub description: String,
    pub transient_environment: bool,
    pub production_environment: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    /// GitHub returns `{}` or a string when none was given.
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub description: Option<String>,
    pub creator: Option<Account>,
    pub created_at: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Account {
    pub login: String,
    pub id: u64,
}

/// Filter of `GET /repos/{o}/{r}/deployments`; `None` fields are left out.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFilter {
    pub environment: Option<String>,
    pub sha: Option<String>,
    pub task: Option<String>,
    /// How many to fetch at most (pages of 100), newest first.
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Error,
    Failure,
    Inactive,
    InProgress,
    Queued,
    Pending,
    Success,
    /// Sent by GitHub while a job waits for approval; never posted by us.
    Waiting,
}

impl DeploymentState {
    /// GitHub's word for it (`in_progress`).
    pub fn word(self) -> &'static str {
        match self {
            DeploymentState::Error => "error",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Queued => "queued",
            DeploymentState::Pending => "pending",
            DeploymentState::Success => "success",
            DeploymentState::Waiting => "waiting",
        }
    }
}

/// `POST /repos/{o}/{r}/deployments/{id}/statuses`.
#[derive(Debug, Clone, Serialize)]
pub struct NewStatus {
    pub state: DeploymentState,
    /// At most 140 characters: longer text is cut by the client with an ellipsis.
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// Let GitHub mark earlier successful deployments of the environment inactive.
    pub auto_inactive: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct DeploymentStatus {
    pub id: u64,
    pub state: DeploymentState,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    pub creator: Option<Account>,
    pub created_at: String,
}

/// An environment's protection rules as promotion.yml declares them, ids resolved.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct EnvironmentRules {
    pub wait_timer: u32,
    pub prevent_self_review: bool,
    pub reviewers: Vec<ReviewerId>,
    /// Branch name patterns; empty: any branch may deploy (`deployment_branch_policy: null`).
    pub branches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ReviewerId {
    User { login: String, id: u64 },
    Team { slug: String, id: u64 },
}

/// What GitHub has for an environment now (`GET /repos/{o}/{r}/environments/{name}` plus its
/// branch policies).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct EnvironmentState {
    pub wait_timer: u32,
    pub prevent_self_review: bool,
    pub reviewers: Vec<ReviewerId>,
    /// `None`: any branch; `Some(patterns)`: custom branch policies.
    pub branches: Option<Vec<String>>,
    /// `protected_branches: true` instead of custom patterns.
    pub protected_branches_only: bool,
    pub html_url: Option<String>,
}

/// How long to wait for a TCP (and TLS) connection to GitHub.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read or write may stall; GitHub answers REST calls in well under a second.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// GitHub's largest page.
const PER_PAGE: usize = 100;
/// GitHub's limit on a deployment status description.
pub const MAX_DESCRIPTION: usize = 140;

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api_url` (`GITHUB_API_URL`).
    ///
    /// # Errors
    /// `Setup` for a repository that is not `owner/name`, an API URL that is not a URL, or a
    /// token that is empty or holds characters an HTTP header cannot carry (octocrab would
    /// panic on it).
    pub fn new(api_url: &str, token: &Secret, repository: &str) -> Result<GitHub, GitHubError> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                GitHubError::Setup(format!(
                    "repository `{repository}` is not `owner/name` (GITHUB_REPOSITORY)"
                ))
            })?;
        // A token read from a file or a secret often ends with a newline.
        let value = token.expose().trim();
        // RFC 9110 field values: visible ASCII; GitHub tokens never contain anything else.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(GitHubError::Setup(
                "the GitHub token is empty or contains characters that cannot be sent in a header"
                    .into(),
            ));
        }
        let base = api_url.trim_end_matches('/');
        let setup =
            |e: octocrab::Error| GitHubError::Setup(format!("GitHub API URL `{api_url}`: {e}"));
        // Retries are NOT octocrab's: the crate is built without its `retry` feature (see
        // `transport`), so a POST is sent exactly once unless GitHub rate-limited it.
        let client = octocrab::OctocrabBuilder::new()
            .base_uri(base)
            .map_err(setup)?
            .personal_token(value.to_owned())
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            )
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(IO_TIMEOUT))
            .set_write_timeout(Some(IO_TIMEOUT))
            .build()
            .map_err(setup)?;
        Ok(GitHub {
            client,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            retry: RetrySettings::default(),
            sent: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn with_retry(self, settings: RetrySettings) -> GitHub {
        GitHub {
            retry: settings,
            ..self
        }
    }

    /// How many requests this client and its clones have sent so far, each retry counted.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// `owner/name`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// `/repos/{owner}/{repo}{rest}`.
    fn repo_path(&self, rest: &str) -> String {
        format!(
            "/repos/{}/{}{rest}",
            encode(&self.owner),
            encode(&self.repo)
        )
    }

    /// Sends a request under the retry policy; any status comes back.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<transport::Answer, GitHubError> {
        transport::send(&self.client, &self.retry, &self.sent, method, path, body).await
    }

    /// Sends a request and decodes a 2xx answer as `T`; any other status is a `Status` error.
    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, GitHubError> {
        let answer = self.send(method.clone(), path, body).await?;
        let answer = expect_success(&method, path, answer)?;
        decode(&method, path, &answer.body)
    }

    /// Every item of a paged list at `path` (which may carry a query), `per_page=100`, until
    /// GitHub has no next page or `limit` items are in. `items` takes the list out of a page
    /// (some endpoints wrap it in an object).
    async fn paged<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
        items: impl Fn(Value) -> Option<Value>,
    ) -> Result<Vec<T>, GitHubError> {
        let mut out = Vec::new();
        let mut page = 1;
        while out.len() < limit {
            let (list, more) = self.list_page(path, page, &items).await?;
            out.extend(list);
            if !more {
                break;
            }
            page += 1;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Page `page` (from 1) of the list at `path`, `per_page=100`, and whether GitHub has a
    /// next one: its `Link` header says so and this page was full.
    async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        page: usize,
        items: &impl Fn(Value) -> Option<Value>,
    ) -> Result<(Vec<T>, bool), GitHubError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{separator}per_page={PER_PAGE}&page={page}");
        let answer = self.send(Method::GET, &url, None::<&()>).await?;
        let answer = expect_success(&Method::GET, &url, answer)?;
        let value: Value = decode(&Method::GET, &url, &answer.body)?;
        let list = items(value).unwrap_or(Value::Array(Vec::new()));
        let list: Vec<T> = serde_json::from_value(list).map_err(|e| GitHubError::Decode {
            method: "GET".into(),
            path: url.clone(),
            message: e.to_string(),
        })?;
        let more = list.len() >= PER_PAGE && has_next_page(&answer.headers);
        Ok((list, more))
    }

    /// A user's id from their login (`GET /users/{login}`).
    pub async fn user_id(&self, login: &str) -> Result<u64, GitHubError> {
        let account: Account = self
            .call(
                Method::GET,
                &format!("/users/{}", encode(login)),
                None::<&()>,
            )
            .await?;
        Ok(account.id)
    }

    /// A team's id from its slug in the repository's owner organisation
    /// (`GET /orgs/{org}/teams/{slug}`).
    pub async fn team_id(&self, slug: &str) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Team {
            id: u64,
        }
        let team: Team = self
            .call(
                Method::GET,
                &format!("/orgs/{}/teams/{}", encode(&self.owner), encode(slug)),
                None::<&()>,
            )
            .await?;
        Ok(team.id)
    }
}

/// A 2xx answer, or GitHub's error as `Status` (message, 422 details, and the permission GitHub
/// says the call needs).
fn expect_success(
    method: &Method,
    path: &str,
    answer: transport::Answer,
) -> Result<transport::Answer, GitHubError> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    Err(status_error(method, path, &answer))
}

fn status_error(method: &Method, path: &str, answer: &transport::Answer) -> GitHubError {
    GitHubError::Status {
        method: method.to_string(),
        path: path.to_owned(),
        status: answer.status,
        message: transport::error_message(answer.status, &answer.body),
        accepted_permissions: answer
            .headers
            .get("x-accepted-github-permissions")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
    }
}

fn decode<T: DeserializeOwned>(method: &Method, path: &str, body: &[u8]) -> Result<T, GitHubError> {
    serde_json::from_slice(body).map_err(|e| GitHubError::Decode {
        method: method.to_string(),
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Whether a `Link` header has a `rel="next"` entry.
fn has_next_page(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|link| link.split(';').skip(1).any(|p| p.trim() == "rel=\"next\""))
}

/// Percent-encodes a path segment or query value: everything but RFC 3986's unreserved
/// characters, so an environment named `QA / staging` or `prod#1` stays one segment.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_path_segment() {
        assert_eq!(encode("production"), "production");
        assert_eq!(encode("QA / staging"), "QA%20%2F%20staging");
        assert_eq!(encode("prod#1?x=é"), "prod%231%3Fx%3D%C3%A9");
    }

    #[test]
    fn next_page_comes_from_the_link_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert!(has_next_page(&headers));
        headers.insert(
            http::header::LINK,
            "<https://api.github.com/x?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert!(!has_next_page(&headers));
        assert!(!has_next_page(&http::HeaderMap::new()));
    }

    #[test]
    fn a_malformed_repository_or_token_is_a_setup_error() {
        let console = crate::actions::Console::new(false);
        let token = Secret::new("ghp_example", &console);
        for repo in ["noslash", "/name", "owner/", "a/b/c"] {
            assert!(
                matches!(
                    GitHub::new("https://api.github.com", &token, repo),
                    Err(GitHubError::Setup(_))
                ),
                "{repo}"
            );
        }
        let bad = Secret::new("tok en", &console);
        assert!(matches!(
            GitHub::new("https://api.github.com", &bad, "o/r"),
            Err(GitHubError::Setup(_))
        ));
    }
}
