//! The repository's deployment history since a cutoff, what the delivery metrics are computed
//! from: every deployment (newest first, read until a page reaches past the cutoff), each
//! one's statuses, and the commit dates of the deployments the caller asks about.
//!
//! GitHub has no list of statuses across deployments, so there is one call per deployment;
//! those run `concurrency` at a time, starting while later pages of deployments are still
//! being read. Rate limits are waited out by the transport like any other call.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use http::Method;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Deployment, DeploymentStatus, GitHub, GitHubError, decode, encode, expect_success};

/// What [`GitHub::deployment_history`] reads.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    /// One environment (GitHub's `environment` filter), or `None` for all of them.
    pub environment: Option<String>,
    /// Deployments created before this are not read.
    pub since: Timestamp,
    /// Requests in flight at once for statuses and commits (0 counts as 1). GitHub's secondary
    /// limit is 100 concurrent requests per token; 16 keeps far from it.
    pub concurrency: usize,
}

/// A deployment with everything GitHub recorded about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentHistory {
    pub deployment: Deployment,
    /// GitHub's `production_environment` flag of the deployment.
    pub production_environment: bool,
    /// Newest first, `inactive` ones included.
    pub statuses: Vec<DeploymentStatus>,
}

/// When a commit was made, as GitHub's git database records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CommitDates {
    /// The committer date: when the commit became what it is (a rebase or squash merge sets it).
    pub committed_at: Option<String>,
    /// The author date: when the change was first written.
    pub authored_at: Option<String>,
}

/// What [`GitHub::deployment_history`] read.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Created at or after the cutoff, newest first. A deployment deleted while it was being
    /// read is left out.
    pub deployments: Vec<DeploymentHistory>,
    /// The dates of the commits asked for, by sha; a sha GitHub knows no commit for (force-pushed
    /// away and collected) is absent.
    pub commits: BTreeMap<String, CommitDates>,
    /// Requests this call sent, retries included.
    pub requests: u64,
}

/// A deployment as GitHub lists it, with the flag [`Deployment`] leaves out.
#[derive(Deserialize)]
struct RawDeployment {
    #[serde(flatten)]
    deployment: Deployment,
    #[serde(default)]
    production_environment: bool,
}

/// `GET /repos/{o}/{r}/commits/{sha}`: only the parts read here.
#[derive(Deserialize)]
struct RawCommit {
    commit: GitCommit,
}

#[derive(Deserialize)]
struct GitCommit {
    author: Option<Signature>,
    committer: Option<Signature>,
}

#[derive(Deserialize)]
struct Signature {
    date: Option<String>,
}

impl GitHub {
    /// Every deployment created since `request.since` (of one environment or all), newest
    /// first, with its statuses; then, for each deployment `commit_of` names a sha for, that
    /// commit's dates, each unique sha read once.
    ///
    /// Deployments are read 100 a page; the first page holding one older than the cutoff is
    /// the last read.
    ///
    /// # Errors
    /// The first call that fails after the transport's retries and rate-limit waits (a
    /// statuses call answering 404, for a deployment deleted meanwhile, only drops that
    /// deployment); a `created_at` that is not a timestamp is a `Decode` error.
    pub async fn deployment_history(
        &self,
        request: &HistoryRequest,
        commit_of: impl Fn(&DeploymentHistory) -> Option<String>,
    ) -> Result<History, GitHubError> {
        let before = self.requests_sent();
        let concurrency = request.concurrency.max(1);
        let mut path = self.repo_path("/deployments");
        if let Some(environment) = &request.environment {
            path = format!("{path}?environment={}", encode(environment));
        }
        let (path, since) = (&path, request.since);
        let pages = stream::try_unfold(Some(1usize), move |page| async move {
            let Some(page) = page else {
                return Ok(None);
            };
            let (list, more) = self.list_page::<RawDeployment>(path, page, &Some).await?;
            let mut kept = Vec::with_capacity(list.len());
            let mut past_cutoff = false;
            for raw in list {
                if created_at(path, &raw.deployment)? < since {
                    past_cutoff = true;
                } else {
                    kept.push(raw);
                }
            }
            let next = (more && !past_cutoff).then_some(page + 1);
            Ok::<_, GitHubError>(Some((stream::iter(kept.into_iter().map(Ok)), next)))
        });
        let mut read: Vec<(usize, DeploymentHistory)> = pages
            .try_flatten()
            .enumerate()
            .map(|(index, raw)| async move {
                let raw: RawDeployment = raw?;
                match self.statuses(raw.deployment.id).await {
                    Ok(statuses) => Ok(Some((
                        index,
                        DeploymentHistory {
                            deployment: raw.deployment,
                            production_environment: raw.production_environment,
                            statuses,
                        },
                    ))),
                    Err(e) if e.status() == Some(404) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(concurrency)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await?;
        read.sort_unstable_by_key(|(index, _)| *index);
        let deployments: Vec<DeploymentHistory> = read.into_iter().map(|(_, d)| d).collect();

        let shas: BTreeSet<String> = deployments.iter().filter_map(&commit_of).collect();
        let commits: BTreeMap<String, CommitDates> = stream::iter(shas)
            .map(|sha| async move {
                let dates = self.commit_dates(&sha).await?;
                Ok::<_, GitHubError>(dates.map(|d| (sha, d)))
            })
            .buffer_unordered(concurrency)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await?;
        Ok(History {
            deployments,
            commits,
            requests: self.requests_sent() - before,
        })
    }

    /// The author and committer dates of commit `sha` (`GET /repos/{o}/{r}/commits/{sha}`);
    /// `None` when GitHub has no such commit.
    ///
    /// # Errors
    /// Any other failure of the call.
    pub async fn commit_dates(&self, sha: &str) -> Result<Option<CommitDates>, GitHubError> {
        let path = self.repo_path(&format!("/commits/{}", encode(sha)));
        let answer = self.send(Method::GET, &path, None::<&()>).await?;
        // 404 for an unknown sha; 422 `No commit found for SHA: x` for one that is not a sha.
        if matches!(answer.status, 404 | 422) {
            return Ok(None);
        }
        let answer = expect_success(&Method::GET, &path, answer)?;
        let commit: RawCommit = decode(&Method::GET, &path, &answer.body)?;
        Ok(Some(CommitDates {
            committed_at: commit.commit.committer.and_then(|s| s.date),
            authored_at: commit.commit.author.and_then(|s| s.date),
        }))
    }
}

fn created_at(path: &str, deployment: &Deployment) -> Result<Timestamp, GitHubError> {
    deployment
        .created_at
        .parse()
        .map_err(|e| GitHubError::Decode {
            method: "GET".into(),
            path: path.to_owned(),
            message: format!(
                "deployment {}: created_at {:?}: {e}",
                deployment.id, deployment.created_at
            ),
        })
}
