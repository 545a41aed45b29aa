//! `promote status`: the design document's Environment Comparison, live. For every environment
//! and service: the digest running, its commit, the revision, ready/desired replicas, since
//! when, who promoted it, and the last outcome GitHub recorded for the environment.
//!
//! Read-only. An environment whose cluster cannot be read is shown with the reason, and the
//! command exits 1 so a script notices.

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;

use super::Runtime;
use super::connect_to;
use super::run::last_deployment;
use crate::actions::{Secret, redact};
use crate::cli::{GlobalArgs, StatusArgs};
use crate::config::{self, Config, Environment};
use crate::github::GitHub;
use crate::kube::read_verified;
use crate::outcome::{Classified, Outcome};
use crate::report::{self, EnvironmentStatus, LastOutcome, ServiceStatus, StatusReport};

/// `promote status`.
pub async fn run_status(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &StatusArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let environments = super::environments(&config, args.environment.as_deref())?;
    let github = match (&global.github_token, &rt.ctx.repository) {
        (Some(token), Some(repository)) if !token.expose().trim().is_empty() => Some(
            GitHub::new(
                &rt.ctx.api_url,
                &Secret::new(token.expose().trim(), rt.console),
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

    crate::say!(
        "{}",
        report::status_text(&report, Timestamp::now()).trim_end()
    );
    super::write_report(
        rt,
        "promote-status.json",
        &report,
        args.output_dir.as_deref(),
    )?;
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
            Ok(Some(last)) => {
                status.last_outcome = Some(last.outcome);
                status.last_deployed_by = last.by;
                status.last_deployed_at = last.at;
            }
            Ok(None) => status.last_outcome = Some(LastOutcome::NeverDeployed),
            Err(e) => status.last_outcome = Some(LastOutcome::Unknown(format!("{e:#}"))),
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
        match read_verified(
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
                since: live.since.as_deref().and_then(|s| s.parse().ok()),
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
