//! Deployments and their statuses: the promotion's record on GitHub, and the deployment GitHub
//! makes itself for a job that declares `environment:`.

use http::Method;
use serde::Deserialize;

use super::transport::cut;
use super::{
    ACTIONS_BOT, Account, Deployment, DeploymentFilter, DeploymentState, DeploymentStatus, GitHub,
    GitHubError, MAX_DESCRIPTION, NewDeployment, NewStatus, decode, encode, status_error,
};

/// How many of GitHub's own deployments for (environment, sha) `find_job_deployment` looks
/// through: a job's deployment is among the newest, re-runs add one each.
const JOB_DEPLOYMENT_SCAN: usize = 30;

/// A status as GitHub sends it, with `target_url` (the older name of `log_url`, which GitHub
/// still fills for its own deployments).
#[derive(Deserialize)]
struct RawStatus {
    #[serde(flatten)]
    status: DeploymentStatus,
    #[serde(default)]
    target_url: Option<String>,
}

impl GitHub {
    /// `POST /repos/{o}/{r}/deployments`, sent once (never retried after a 5xx: a resent POST
    /// makes a second deployment).
    ///
    /// # Errors
    /// `AutoMerged` for GitHub's 202; `Status` with GitHub's message for 409 (failed commit
    /// status contexts) and 422 (a ref GitHub does not know, a bad payload).
    pub async fn create_deployment(&self, new: &NewDeployment) -> Result<Deployment, GitHubError> {
        let path = self.repo_path("/deployments");
        let answer = self.send(Method::POST, &path, Some(new)).await?;
        match answer.status {
            201 => decode(&Method::POST, &path, &answer.body),
            202 => Err(GitHubError::AutoMerged(new.git_ref.clone())),
            _ => Err(status_error(&Method::POST, &path, &answer)),
        }
    }

    /// Newest first, at most `filter.limit` (0: one page of 100).
    pub async fn deployments(
        &self,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let mut query = Vec::new();
        for (key, value) in [
            ("sha", &filter.sha),
            ("task", &filter.task),
            ("environment", &filter.environment),
        ] {
            if let Some(value) = value {
                query.push(format!("{key}={}", encode(value)));
            }
        }
        let mut path = self.repo_path("/deployments");
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        // A filter built with `Default` (limit 0) reads one page rather than nothing.
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        self.paged(&path, limit, Some).await
    }

    /// `POST .../deployments/{id}/statuses`; a description over 140 characters is cut with `…`
    /// (GitHub rejects longer ones with a 422).
    pub async fn create_status(
        &self,
        deployment: u64,
        status: &NewStatus,
    ) -> Result<DeploymentStatus, GitHubError> {
        let mut status = status.clone();
        status.description = cut(&status.description, MAX_DESCRIPTION);
        let path = self.repo_path(&format!("/deployments/{deployment}/statuses"));
        self.call(Method::POST, &path, Some(&status)).await
    }

    /// Newest first.
    pub async fn statuses(&self, deployment: u64) -> Result<Vec<DeploymentStatus>, GitHubError> {
        Ok(self
            .raw_statuses(deployment, usize::MAX)
            .await?
            .into_iter()
            .map(|s| s.status)
            .collect())
    }

    async fn raw_statuses(
        &self,
        deployment: u64,
        limit: usize,
    ) -> Result<Vec<RawStatus>, GitHubError> {
        let path = self.repo_path(&format!("/deployments/{deployment}/statuses"));
        self.paged(&path, limit, Some).await
    }

    /// The deployment GitHub created for this job: a job that declares `environment:` gets one
    /// from `github-actions[bot]` for (environment, sha), whose statuses link to the run
    /// (`…/actions/runs/{run_id}/…`). Posting our statuses to it keeps one deployment per
    /// promotion instead of a confusing duplicate.
    ///
    /// The newest bot deployment with a status linking to `run_id` wins; failing that, the
    /// newest bot deployment still waiting to run (latest status queued, waiting, in_progress or
    /// pending, or no status yet). `None` when the job declares no environment.
    pub async fn find_job_deployment(
        &self,
        environment: &str,
        sha: &str,
        run_id: &str,
    ) -> Result<Option<Deployment>, GitHubError> {
        let candidates = self
            .deployments(&DeploymentFilter {
                environment: Some(environment.to_owned()),
                sha: Some(sha.to_owned()),
                task: None,
                limit: JOB_DEPLOYMENT_SCAN,
            })
            .await?;
        let mut fallback = None;
        for deployment in candidates {
            let by_bot = deployment
                .creator
                .as_ref()
                .is_some_and(|c: &Account| c.login == ACTIONS_BOT);
            if !by_bot || deployment.environment != environment || deployment.sha != sha {
                continue;
            }
            let statuses = self.raw_statuses(deployment.id, 100).await?;
            if statuses.iter().any(|s| links_to_run(s, run_id)) {
                return Ok(Some(deployment));
            }
            let waiting = statuses.first().is_none_or(|s| {
                matches!(
                    s.status.state,
                    DeploymentState::Queued
                        | DeploymentState::Waiting
                        | DeploymentState::InProgress
                        | DeploymentState::Pending
                )
            });
            if waiting && fallback.is_none() {
                fallback = Some(deployment);
            }
        }
        Ok(fallback)
    }
}

/// Whether a status's `log_url` or `target_url` is a page of run `run_id`.
fn links_to_run(status: &RawStatus, run_id: &str) -> bool {
    let needle = format!("/actions/runs/{run_id}");
    [&status.status.log_url, &status.target_url]
        .into_iter()
        .flatten()
        .any(|url| {
            url.match_indices(&needle).any(|(i, _)| {
                matches!(
                    url[i + needle.len()..].chars().next(),
                    None | Some('/' | '?' | '#')
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(log_url: Option<&str>, target_url: Option<&str>) -> RawStatus {
        RawStatus {
            status: DeploymentStatus {
                id: 1,
                state: DeploymentState::InProgress,
                description: None,
                environment_url: None,
                log_url: log_url.map(str::to_owned),
                creator: None,
                created_at: String::new(),
            },
            target_url: target_url.map(str::to_owned),
        }
    }

    #[test]
    fn a_status_links_to_its_run_and_not_to_a_longer_run_id() {
        let url = "https://github.com/o/r/actions/runs/42/job/7";
        assert!(links_to_run(&status(Some(url), None), "42"));
        assert!(links_to_run(&status(None, Some(url)), "42"));
        assert!(links_to_run(
            &status(Some("https://github.com/o/r/actions/runs/42"), None),
            "42"
        ));
        assert!(!links_to_run(&status(Some(url), None), "4"));
        assert!(!links_to_run(&status(None, None), "42"));
    }
}
