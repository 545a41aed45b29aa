//! GitHub's half of the record: the deployment `run` reports to (found or created), its
//! statuses, and reading back an environment's latest success — for the gate, the promotion map
//! and `status`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::super::Runtime;
use super::super::gate::Record;
use crate::config::{Config, Environment};
use crate::github::{
    Deployment, DeploymentFilter, DeploymentState, GitHub, GitHubError, NewDeployment, NewStatus,
};
use crate::outcome::{Classified, Outcome};
use crate::report::{GitHubRecord, LastOutcome, Release, RunReport};
use crate::say;

/// The payload key under which the release is recorded on deployments this action creates.
pub const PAYLOAD_KEY: &str = "promote";

/// How many of an environment's newest deployments are searched for its latest success.
const RECORD_SEARCH: usize = 20;

/// The newest deployment of `environment` whose latest status is success, as a [`Record`].
pub async fn latest_success(github: &GitHub, environment: &str) -> anyhow::Result<Record> {
    Ok(match latest_successful(github, environment).await? {
        Some((deployment, description)) => record_of(&deployment, description.as_deref()),
        None => Record::Missing,
    })
}

/// The newest deployment of `environment` whose latest status is success, with the newest
/// success status's description that names a release.
pub async fn latest_successful(
    github: &GitHub,
    environment: &str,
) -> anyhow::Result<Option<(Deployment, Option<String>)>> {
    let deployments = github
        .deployments(&DeploymentFilter {
            environment: Some(environment.to_string()),
            limit: RECORD_SEARCH,
            ..DeploymentFilter::default()
        })
        .await?;
    for deployment in deployments {
        let statuses = github.statuses(deployment.id).await?;
        if statuses
            .first()
            .is_some_and(|latest| latest.state == DeploymentState::Success)
        {
            // GitHub posts its own status when a job with `environment:` ends, after ours: the
            // release id is in the newest success status that names one.
            let description = statuses
                .iter()
                .filter(|s| s.state == DeploymentState::Success)
                .filter_map(|s| s.description.clone())
                .find(|d| release_in_description(d).is_some());
            return Ok(Some((deployment, description)));
        }
    }
    Ok(None)
}

/// What a deployment records: our payload, or (on a deployment GitHub made for a job) the
/// release id in its success status's description.
pub fn record_of(deployment: &Deployment, description: Option<&str>) -> Record {
    let ours = &deployment.payload[PAYLOAD_KEY];
    let digests: BTreeMap<String, String> = ours["digests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let release = ours["release"]
        .as_str()
        .map(str::to_string)
        .or_else(|| description.and_then(release_in_description));
    Record::Success {
        deployment_id: deployment.id,
        sha: deployment.sha.clone(),
        release,
        digests,
    }
}

/// `release 3f2a9c1b0d4e …` → `3f2a9c1b0d4e`.
fn release_in_description(text: &str) -> Option<String> {
    let rest = &text[text.find("release ")? + "release ".len()..];
    let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (id.len() == 12).then_some(id)
}

/// An environment's newest deployment, as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastDeployment {
    pub outcome: LastOutcome,
    pub by: Option<String>,
    pub at: Option<Timestamp>,
}

/// The newest deployment of `environment`: its latest state, who made it, when.
pub async fn last_deployment(
    github: &GitHub,
    environment: &str,
) -> anyhow::Result<Option<LastDeployment>> {
    let deployments = github
        .deployments(&DeploymentFilter {
            environment: Some(environment.to_string()),
            limit: 1,
            ..DeploymentFilter::default()
        })
        .await?;
    let Some(deployment) = deployments.into_iter().next() else {
        return Ok(None);
    };
    let statuses = github.statuses(deployment.id).await?;
    let outcome = statuses
        .first()
        .map_or(LastOutcome::Created, |s| LastOutcome::State(s.state));
    Ok(Some(LastDeployment {
        outcome,
        by: deployed_by(&deployment),
        at: deployment.created_at.parse().ok(),
    }))
}

/// Who made a deployment. With a workflow's token every deployment is made by the Actions bot:
/// the person is the actor our payload records; for GitHub's own job deployments it is left to
/// the cluster.
fn deployed_by(deployment: &Deployment) -> Option<String> {
    deployment.payload[PAYLOAD_KEY]["actor"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            deployment
                .creator
                .as_ref()
                .map(|c| c.login.clone())
                .filter(|login| login != crate::github::ACTIONS_BOT)
        })
}

/// The GitHub deployment this run reports to.
pub struct Recorder {
    github: GitHub,
    deployment: Deployment,
    reused: bool,
    posted: Vec<DeploymentState>,
    log_url: Option<String>,
    environment_url: Option<String>,
}

impl Recorder {
    /// Finds the deployment GitHub made for this job's `environment:`, or creates one, and
    /// posts `in_progress` to it.
    pub async fn start(
        rt: &Runtime<'_>,
        github: &GitHub,
        env: &Environment,
        config: &Config,
        release: &Release,
    ) -> anyhow::Result<Recorder> {
        let sha = rt
            .ctx
            .sha
            .clone()
            .or_else(|| release.sha.clone())
            .ok_or_else(|| {
                Classified::invalid(anyhow::anyhow!(
                    "GITHUB_SHA is not set: cannot record a GitHub deployment"
                ))
            })?;
        let found = match &rt.ctx.run_id {
            Some(run_id) => github
                .find_job_deployment(&env.name, &sha, run_id)
                .await
                .with_context(|| format!("failed to read GitHub's deployments of {}", env.name))?,
            None => None,
        };
        let (deployment, reused) = match found {
            Some(d) => {
                say!(
                    "Recording to deployment {} that GitHub created for this job's environment",
                    d.id
                );
                (d, true)
            }
            None => {
                let last = config.environments.last().map(|e| e.name.as_str());
                let created = github
                    .create_deployment(&NewDeployment {
                        git_ref: sha.clone(),
                        task: "deploy".to_string(),
                        auto_merge: false,
                        required_contexts: Vec::new(),
                        payload: payload(release, rt.ctx.actor.as_deref()),
                        environment: env.name.clone(),
                        description: format!("promote-action: release {}", release.id),
                        transient_environment: false,
                        production_environment: last == Some(env.name.as_str()),
                    })
                    .await
                    .map_err(|e| permission_error(e, "deployments: write"))
                    .with_context(|| {
                        format!("failed to create a GitHub deployment for {}", env.name)
                    })?;
                say!("Created GitHub deployment {} for {}", created.id, env.name);
                (created, false)
            }
        };
        let mut recorder = Recorder {
            github: github.clone(),
            deployment,
            reused,
            posted: Vec::new(),
            log_url: rt.ctx.run_url(),
            environment_url: env.url.clone(),
        };
        recorder
            .post(
                DeploymentState::InProgress,
                &format!(
                    "promoting release {} to {} ({} service{})",
                    release.id,
                    env.name,
                    release.images.len(),
                    if release.images.len() == 1 { "" } else { "s" }
                ),
            )
            .await
            .map_err(|e| permission_error(e, "deployments: write"))
            .context("failed to post the deployment's status")?;
        Ok(recorder)
    }

    pub async fn post(
        &mut self,
        state: DeploymentState,
        description: &str,
    ) -> Result<(), GitHubError> {
        self.github
            .create_status(
                self.deployment.id,
                &NewStatus {
                    state,
                    description: description.to_string(),
                    environment_url: self.environment_url.clone(),
                    log_url: self.log_url.clone(),
                    auto_inactive: true,
                },
            )
            .await?;
        self.posted.push(state);
        Ok(())
    }

    pub fn record(&self) -> GitHubRecord {
        GitHubRecord {
            deployment_id: self.deployment.id,
            reused: self.reused,
            statuses: self.posted.clone(),
        }
    }
}

/// A GitHub refusal for a missing permission becomes invalid input that names it.
fn permission_error(e: GitHubError, permission: &str) -> anyhow::Error {
    if matches!(e.status(), Some(403 | 404)) {
        let message = format!(
            "{e}: the token needs `{permission}` (add `permissions: {permission}` to the job)"
        );
        return Classified::invalid(anyhow::anyhow!(message));
    }
    anyhow::Error::new(e)
}

fn payload(release: &Release, actor: Option<&str>) -> Value {
    let by_service = |value: &dyn Fn(&crate::report::ReleaseImage) -> String| {
        release
            .images
            .iter()
            .map(|i| (i.service.clone(), Value::from(value(i))))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        PAYLOAD_KEY: {
            "actor": actor,
            "release": release.id,
            "source": release.source.to_string(),
            "sha": release.sha,
            "images": by_service(&|i| i.image.clone()),
            "digests": by_service(&|i| i.digest.to_string()),
        }
    })
}

/// The last status to post for `outcome`.
pub fn final_status(outcome: Outcome, report: &RunReport) -> (DeploymentState, String) {
    let id = &report.release.id;
    let release = if id.is_empty() {
        "promotion".to_string()
    } else {
        format!("release {id}")
    };
    match outcome {
        Outcome::Success => (
            DeploymentState::Success,
            format!("{release} verified in {}", report.environment),
        ),
        Outcome::RollbackFailed => (
            DeploymentState::Error,
            format!(
                "{release}: rollback failed in {}; a human must act",
                report.environment
            ),
        ),
        Outcome::Refused => (
            DeploymentState::Failure,
            format!("{release} refused: {}", report.summary),
        ),
        Outcome::Invalid => (
            DeploymentState::Failure,
            format!("invalid: {}", report.summary),
        ),
        Outcome::Failed => (
            DeploymentState::Failure,
            format!("{release} failed: {}", report.summary),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Digest;
    use crate::report::{ReleaseImage, ReleaseSource};

    #[test]
    fn the_release_id_is_read_back_from_a_status_description() {
        assert_eq!(
            release_in_description("release 3f2a9c1b0d4e verified in testing").as_deref(),
            Some("3f2a9c1b0d4e")
        );
        assert_eq!(release_in_description("deployed"), None);
        assert_eq!(release_in_description("release 3f2a"), None);
        // Non-ASCII around the id does not cut a character in half.
        assert_eq!(
            release_in_description("é release 3f2a9c1b0d4eé").as_deref(),
            Some("3f2a9c1b0d4e")
        );
    }

    #[test]
    fn our_payload_is_the_record() {
        let digest = Digest::parse(&format!("sha256:{}", "1".repeat(64))).expect("a digest");
        let release = Release {
            sha: Some("abc".into()),
            source: ReleaseSource::Environment("development".into()),
            id: "0123456789ab".into(),
            images: vec![ReleaseImage {
                service: "web".into(),
                image: format!("r.io/web@{digest}"),
                digest: digest.clone(),
            }],
        };
        let deployment = Deployment {
            id: 5,
            sha: "abc".into(),
            git_ref: "abc".into(),
            task: "deploy".into(),
            environment: "testing".into(),
            payload: payload(&release, Some("octocat")),
            description: None,
            creator: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            url: String::new(),
        };
        assert_eq!(
            deployment.payload[PAYLOAD_KEY]["source"],
            "environment:development"
        );
        let Record::Success {
            release: id,
            digests,
            ..
        } = record_of(&deployment, None)
        else {
            panic!("a success")
        };
        assert_eq!(id.as_deref(), Some("0123456789ab"));
        assert_eq!(digests["web"], digest.to_string());
        assert_eq!(deployed_by(&deployment).as_deref(), Some("octocat"));
    }
}
