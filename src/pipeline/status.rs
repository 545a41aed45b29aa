//! `promote status`: the design document's Environment Comparison, live. For every environment
//! and service: the digest running, its commit, the revision, ready/desired replicas, since
//! when, who promoted it, and the last outcome GitHub recorded for the environment.
//!
//! Read-only. An environment whose cluster cannot be read is shown with the reason, and the
//! command exits 1 so a script notices.

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;

use super::Runtime;
use super::deploy::connect_to;
use super::run::PAYLOAD_KEY;
use crate::actions::{Secret, redact};
use crate::cli::{GlobalArgs, StatusArgs};
use crate::config::{self, Config, Environment};
use crate::github::{DeploymentFilter, GitHub};
use crate::kube::verified;
use crate::outcome::{Classified, Outcome};
use crate::report::{self, EnvironmentStatus, ServiceStatus, StatusReport};

/// `promote status`.
pub async fn run_status(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &StatusArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let environments = super::environments(&config, args.environment.as_deref())?;
    let github = match (&global.github_token, &rt.ctx.repository) {
        (Some(token), Some(repository)) if !token.trim().is_empty() => Some(
            GitHub::new(
                &rt.ctx.api_url,
                &Secret::new(token.trim(), rt.console),
                repository,
            )
            .map_err(Classified::invalid)?,
        ),
        _ => None,
    };

    let mut report = StatusReport {
        environments: Vec::new(),
    };
    for env in environments {
        report
            .environments
            .push(environment_status(rt, global, args, &config, env, github.as_ref()).await);
    }

    eprint!("{}", report::status_text(&report, Timestamp::now()));
    super::write_report(
        rt,
        "promote-status.json",
        &report,
        args.output_dir.as_deref(),
    );
    report::status_summary(&report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(if report.environments.iter().any(|e| e.error.is_some()) {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

async fn environment_status(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &StatusArgs,
    config: &Config,
    env: &Environment,
    github: Option<&GitHub>,
) -> EnvironmentStatus {
    let mut status = EnvironmentStatus {
        environment: env.name.clone(),
        namespace: env.namespace.clone(),
        error: None,
        services: Vec::new(),
        last_outcome: None,
        last_deployed_by: None,
        last_deployed_at: None,
    };
    if let Some(github) = github {
        match last_deployment(github, &env.name).await {
            Ok(Some((state, by, at))) => {
                status.last_outcome = Some(state);
                status.last_deployed_by = by;
                status.last_deployed_at = Some(at);
            }
            Ok(None) => status.last_outcome = Some("never deployed".to_string()),
            Err(e) => status.last_outcome = Some(format!("unknown ({e})")),
        }
    }
    let connection = match connect_to(rt, global, &args.cluster, env).await {
        Ok(c) => c,
        Err(e) => {
            status.error = Some(redact(&format!("{e:#}")).into_owned());
            return status;
        }
    };
    for service in &config.services {
        match verified::read(
            &connection.client,
            &env.namespace,
            &service.deployment,
            &service.container,
        )
        .await
        {
            Ok(live) => status.services.push(ServiceStatus {
                service: service.name.clone(),
                deployed: live.deployed,
                digest: live.digest,
                git_sha: live.git_sha,
                revision: live.revision,
                ready: live.ready,
                desired: live.desired,
                since: live.since,
                verified_digest: live.verified_digest,
                deployed_by: live.deployed_by,
            }),
            Err(e) => {
                status.error = Some(format!(
                    "cannot read deployment/{} in {}: {e}",
                    service.deployment, env.namespace
                ));
                break;
            }
        }
    }
    if status.last_deployed_by.is_none() {
        status.last_deployed_by = status.services.iter().find_map(|s| s.deployed_by.clone());
    }
    status
}

/// The newest deployment of `environment`: its latest state, who made it, when.
async fn last_deployment(
    github: &GitHub,
    environment: &str,
) -> anyhow::Result<Option<(String, Option<String>, String)>> {
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
    let state = statuses
        .first()
        .map(|s| {
            serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "created".to_string());
    // With a workflow's token every deployment is made by the Actions bot: the person is the
    // actor our payload records; for GitHub's own job deployments it is left to the cluster.
    let by = deployment.payload[PAYLOAD_KEY]["actor"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            deployment
                .creator
                .as_ref()
                .map(|c| c.login.clone())
                .filter(|login| login != crate::github::ACTIONS_BOT)
        });
    Ok(Some((state, by, deployment.created_at)))
}
