//! GitHub's REST API: deployments and their statuses (the promotion's record), environments
//! and their protection rules (environments as code), and the sticky pull-request comment.
//!
//! One client over octocrab with its own retries off: octocrab would retry POSTs, and a
//! retried `POST /deployments` makes a second deployment. Here only idempotent calls (GET, PUT,
//! DELETE, PATCH of a known comment) are retried on 5xx and connection errors; any call is
//! retried after a rate-limit answer (GitHub did not act on it), waiting as its headers say.
//!
//! CONTRACT (the pipeline codes against these signatures; keep them):

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::Secret;

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
    // private: octocrab client, owner, repo, retry settings
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

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api_url` (`GITHUB_API_URL`).
    pub fn new(api_url: &str, token: &Secret, repository: &str) -> Result<GitHub, GitHubError> {
        let _ = (api_url, token, repository);
        todo!()
    }

    pub fn with_retry(self, settings: RetrySettings) -> GitHub {
        let _ = settings;
        todo!()
    }

    /// `owner/name`.
    pub fn repository(&self) -> String {
        todo!()
    }

    pub async fn create_deployment(&self, new: &NewDeployment) -> Result<Deployment, GitHubError> {
        let _ = new;
        todo!()
    }

    /// Newest first, at most `filter.limit`.
    pub async fn deployments(
        &self,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let _ = filter;
        todo!()
    }

    pub async fn create_status(
        &self,
        deployment: u64,
        status: &NewStatus,
    ) -> Result<DeploymentStatus, GitHubError> {
        let _ = (deployment, status);
        todo!()
    }

    /// Newest first.
    pub async fn statuses(&self, deployment: u64) -> Result<Vec<DeploymentStatus>, GitHubError> {
        let _ = deployment;
        todo!()
    }

    /// `None` when the environment does not exist (404).
    pub async fn environment(&self, name: &str) -> Result<Option<EnvironmentState>, GitHubError> {
        let _ = name;
        todo!()
    }

    /// Creates or updates the environment and makes its custom branch policies exactly
    /// `rules.branches` (adding and deleting patterns).
    pub async fn put_environment(
        &self,
        name: &str,
        rules: &EnvironmentRules,
    ) -> Result<(), GitHubError> {
        let _ = (name, rules);
        todo!()
    }

    /// A user's id from their login (`GET /users/{login}`).
    pub async fn user_id(&self, login: &str) -> Result<u64, GitHubError> {
        let _ = login;
        todo!()
    }

    /// A team's id from its slug in the repository's owner organisation
    /// (`GET /orgs/{org}/teams/{slug}`).
    pub async fn team_id(&self, slug: &str) -> Result<u64, GitHubError> {
        let _ = slug;
        todo!()
    }

    /// Creates, or edits in place, the one comment on issue/PR `number` whose body contains
    /// `marker` (an HTML comment); returns the comment's html_url.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<String, GitHubError> {
        let _ = (number, marker, body);
        todo!()
    }
}
