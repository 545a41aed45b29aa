//! `promote status`: the design document's Environment Comparison, live. For every environment
//! and service: the digest running, its commit, the revision, ready/desired replicas, since
//! when, who promoted it, and the last outcome GitHub recorded for the environment.
//!
//! A blue-green service is read from the colour its Service selects, with both colours beside
//! it; a canary Deployment is shown while one exists.
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
use crate::config::{self, Config, Environment, Strategy};
use crate::github::GitHub;
use crate::kube::{
    BlueGreenLive, Colour, canary_name, colour_name, kept_until, read_blue_green, read_verified,
};
use crate::outcome::{Classified, Outcome};
use crate::report::{
    self, BlueGreenStatus, EnvironmentStatus, LastOutcome, ServiceStatus, StatusReport, TrackStatus,
};

/// `promote status`.
pub async fn run_status(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &StatusArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let environments = super::environments(&config, args.environment.as_deref())?;
    let github = match (global.github_token(), &rt.ctx.repository) {
        (Some(token), Some(repository)) => Some(
            GitHub::new(&rt.ctx.api_url, &Secret::new(token, rt.console), repository)
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
        match service_status(&connection.client, env, service).await {
            Ok(service) => status.services.push(service),
            Err(e) => {
                status.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    if status.last_deployed_by.is_none() {
        status.last_deployed_by = status.services.iter().find_map(|s| s.deployed_by.clone());
    }
    status
}

/// One service as it runs: the serving Deployment (a blue-green colour once the Service selects
/// one), both colours in a blue-green environment, and a canary while one exists.
async fn service_status(
    client: &kube::Client,
    env: &Environment,
    service: &config::Service,
) -> anyhow::Result<ServiceStatus> {
    let namespace = &env.namespace;
    let name = super::serving_deployment(client, env, service).await?;
    let live = read_verified(client, namespace, &name, &service.container)
        .await
        .with_context(|| format!("cannot read deployment/{name} in {namespace}"))?;
    let blue_green = match (&env.strategy, service.fronting_services().first()) {
        (Strategy::BlueGreen(settings), Some(front)) => {
            let colours = read_blue_green(
                client,
                namespace,
                &service.deployment,
                &service.container,
                front.name(),
            )
            .await?;
            Some(blue_green_status(&service.deployment, &colours, settings))
        }
        _ => None,
    };
    let canary_name = canary_name(&service.deployment);
    let canary = read_verified(client, namespace, &canary_name, &service.container)
        .await
        .with_context(|| format!("cannot read deployment/{canary_name} in {namespace}"))?;
    Ok(ServiceStatus {
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
        strategy: env.strategy.word(),
        blue_green,
        canary: canary.deployed.then(|| TrackStatus {
            track: "canary".into(),
            deployment: canary_name.clone(),
            digest: canary.digest,
            replicas: canary.desired.unwrap_or(0),
            ready: canary.ready.unwrap_or(0),
            // Its pods carry the Service's labels: they serve while they are ready.
            serving: canary.ready.unwrap_or(0) > 0,
        }),
    })
}

/// The colours as the report shows them.
fn blue_green_status(
    deployment: &str,
    live: &BlueGreenLive,
    settings: &config::BlueGreen,
) -> BlueGreenStatus {
    BlueGreenStatus {
        serving: live.serving,
        switched_at: live.switched_at,
        previous_kept_until: live
            .switched_at
            .and_then(|at| kept_until(at, settings.keep_previous.duration())),
        colours: [Colour::Blue, Colour::Green]
            .into_iter()
            .filter_map(|c| {
                live.colour(c).map(|state| TrackStatus {
                    track: c.word().into(),
                    deployment: colour_name(deployment, c),
                    digest: state
                        .image
                        .as_deref()
                        .and_then(|i| i.split_once('@'))
                        .map(|(_, d)| d.to_string()),
                    replicas: state.replicas,
                    ready: state.ready,
                    serving: live.serving == Some(c),
                })
            })
            .collect(),
    }
}
