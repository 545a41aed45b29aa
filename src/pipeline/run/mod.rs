//! `promote run --environment E`: promote one release (every service's digest, built from one
//! commit) to E, as one step of a workflow job.
//!
//! 1. Resolve the release: the `images` input (tags resolved to digests once), or what E's
//!    `requires` environment D runs, verified.
//! 2. Record the start on GitHub: post `in_progress` to the deployment GitHub made for the job's
//!    `environment:`, or create one for (E, commit) with the release in its payload.
//! 3. Gate (exit 3): the branch may deploy to E; the release runs in D and was verified there;
//!    GitHub's record of D agrees with D's cluster. `skip-gate` only reports the checks.
//! 4. Deploy as `promote deploy` does (render, dry run, lock), copying the images into E's
//!    repository and tag once everything is validated and locked, then roll out, verify, and
//!    roll back on failure.
//! 5. On success mark each Deployment verified (the cluster's half of the record), then post
//!    `success`; otherwise `failure` (or `error` when the rollback failed too).
//! 6. Outputs, the JSON report (promote-run.json) and the job summary.

mod path;
mod record;
mod release;

use std::path::Path;

use anyhow::Context as _;
use jiff::Timestamp;

use super::Runtime;
use super::copy::{Copied, copy_image};
use super::deploy::{self, Deploy, DeployOptions};
use super::gate;
use crate::actions::{Annotation, Secret, redact};
use crate::cli::{GlobalArgs, RunArgs};
use crate::config::{self, Config, Environment};
use crate::github::GitHub;
use crate::kube::{Variables, Verified};
use crate::outcome::{Classified, Outcome, outcome_of};
use crate::plan::{self, PlanRequest};
use crate::registry::Reference;
use crate::report::{
    self, DeployCommand, DeployReport, Gate, ImageRow, Release, ReleaseImage, ReleaseSource,
    RunReport,
};
use crate::say;

pub use record::last_deployment;
use record::{Recorder, final_status, latest_success};

/// `promote run`.
pub async fn run_promotion(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RunArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    let env = plan::environment(&config, &args.environment)?;
    // Before anything is recorded on GitHub: a Secret variable without a value is bad input.
    let variables = super::secret_variables(rt, [env]);
    plan::require_secrets(&config, env, &variables)?;
    let mut report = new_report(rt, env);
    let github = github_client(rt, global)?;
    if github.is_none() {
        report.warnings.push(
            "no GitHub record: GITHUB_REPOSITORY or the GitHub token is not set (a run outside Actions)"
                .to_string(),
        );
    }
    let mut recorder: Option<Recorder> = None;
    let promotion = Promotion {
        global,
        args,
        config: &config,
        env,
        github: github.as_ref(),
        variables: &variables,
    };
    let result = promote(rt, &promotion, &mut recorder, &mut report).await;
    let outcome = match &result {
        Ok(o) => *o,
        Err(e) => outcome_of(e),
    };
    report.outcome = outcome;
    if outcome != Outcome::Success || report.summary.is_empty() {
        report.summary = match (&result, &report.deploy) {
            (Err(e), _) => redact(&format!("{e:#}")).into_owned(),
            (Ok(_), Some(d)) => d.summary.clone(),
            (Ok(_), None) => outcome.word().to_string(),
        };
    }
    if let Some(recorder) = recorder.as_mut() {
        let (state, description) = final_status(outcome, &report);
        if let Err(e) = recorder.post(state, &description).await {
            let warning = format!("could not record the outcome on GitHub: {e}");
            rt.console
                .annotate(&Annotation::warning(warning.clone()).title("GitHub deployment"));
            report.warnings.push(warning);
        }
        report.github = Some(recorder.record());
    }
    report.path = path::promotion_path(&config, env, github.as_ref(), &report).await;
    finish(rt, &mut report, started, args.output_dir.as_deref())?;
    result
}

fn new_report(rt: &Runtime<'_>, env: &Environment) -> RunReport {
    RunReport {
        command: "run",
        environment: env.name.clone(),
        outcome: Outcome::Failed,
        summary: String::new(),
        started_at: Timestamp::now(),
        finished_at: None,
        duration_ms: 0,
        repository: rt.ctx.repository.clone(),
        sha: rt.ctx.sha.clone(),
        run_url: rt.ctx.run_url(),
        environment_url: env.url.clone(),
        release: Release::default(),
        gate: Gate {
            requires: env.requires.clone(),
            ..Gate::default()
        },
        path: Vec::new(),
        images: Vec::new(),
        deploy: None,
        github: None,
        warnings: Vec::new(),
    }
}

/// A client when the run can record to GitHub: a token and a repository.
fn github_client(rt: &Runtime<'_>, global: &GlobalArgs) -> anyhow::Result<Option<GitHub>> {
    let (Some(token), Some(repository)) = (global.github_token(), &rt.ctx.repository) else {
        return Ok(None);
    };
    let token = Secret::new(token, rt.console);
    GitHub::new(&rt.ctx.api_url, &token, repository)
        .map(Some)
        .map_err(Classified::invalid)
}

/// What one promotion is about: the command's inputs, the config, the environment.
struct Promotion<'a> {
    global: &'a GlobalArgs,
    args: &'a RunArgs,
    config: &'a Config,
    env: &'a Environment,
    github: Option<&'a GitHub>,
    /// The job's variables the environment's `fromEnv` Secrets are made of.
    variables: &'a Variables,
}

/// Steps 1–5; the caller does 6.
async fn promote(
    rt: &mut Runtime<'_>,
    promotion: &Promotion<'_>,
    recorder: &mut Option<Recorder>,
    report: &mut RunReport,
) -> anyhow::Result<Outcome> {
    let Promotion {
        global,
        args,
        config,
        env,
        github,
        variables,
    } = *promotion;

    // 1. The release, and what the lower environment shows.
    let lower_env = env.requires.as_deref().and_then(|d| config.environment(d));
    let mut lower = match lower_env {
        Some(d) => Some(release::read_lower(rt, global, args, config, d).await?),
        None => None,
    };
    let from_input = !args.images.is_empty();
    let images = if from_input {
        release::release_from_input(rt, global, config, &args.images).await?
    } else if let (Some(lower), Some(d)) = (&lower, lower_env) {
        release::release_from_lower(config, d, lower)?
    } else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "{} requires no earlier environment, so its release must be given: set the `images` input (one `SERVICE=REGISTRY/REPOSITORY@sha256:…` per line)",
            env.name
        )));
    };
    let release_id = gate::release_id(&images);
    report.release = Release {
        sha: if from_input {
            rt.ctx.sha.clone()
        } else {
            lower
                .as_ref()
                .and_then(|l| l.services.values().find_map(|s| s.verified_sha.clone()))
        },
        source: match (from_input, lower_env) {
            (true, _) | (false, None) => ReleaseSource::Input,
            (false, Some(d)) => ReleaseSource::Environment(d.name.clone()),
        },
        id: release_id.clone(),
        images: images.clone(),
    };
    say!(
        "Release {release_id}: {}",
        images
            .iter()
            .map(|i| format!("{}={}", i.service, i.image))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 2. GitHub's record of D, and the start of E's.
    if let (Some(github), Some(lower), Some(d)) = (github, lower.as_mut(), lower_env) {
        lower.record = Some(
            latest_success(github, &d.name)
                .await
                .with_context(|| format!("failed to read GitHub's deployments of {}", d.name))?,
        );
    }
    if let Some(github) = github {
        *recorder = Some(Recorder::start(rt, github, env, config, &report.release).await?);
    }

    // 3. The gate.
    let commit = if from_input {
        None
    } else {
        rt.ctx.sha.as_deref()
    };
    gate_or_refuse(
        rt,
        args,
        env,
        lower.as_ref(),
        &images,
        &release_id,
        commit,
        report,
    )?;

    // 4. Render pinned to E's repository; prepare (dry run, locks); copy the images; roll out.
    let targets = release::targets(config, &images)?;
    let request = PlanRequest {
        environment: Some(env.name.clone()),
        service: None,
        images: targets
            .iter()
            .map(|(i, t)| format!("{}={}@{}", i.service, t.name(), i.digest))
            .collect(),
        provenance: crate::kube::Provenance {
            git_sha: report.release.sha.clone().or_else(|| rt.ctx.sha.clone()),
            run_url: rt.ctx.run_url(),
        },
    };
    let mut target = plan::plan_environment(config, &env.name, &request)?;
    plan::add_secrets(config, &mut target.plan, variables, plan::Unset::Invalid)?;
    let options = DeployOptions {
        service: None,
        create_namespace: args.create_namespace,
        force: args.force,
        timeout: args.timeout.unwrap_or(env.rollout.timeout),
        lock_timeout: args.lock_timeout,
        verify: true,
    };
    let connection = super::connect_to(rt, global, &args.cluster, env).await?;
    let deploy = Deploy {
        console: rt.console,
        ctx: rt.ctx,
        config,
        environment: env,
        plan: target.objects(),
        options: &options,
    };
    let source_environment = lower_env.filter(|_| !from_input).map(|d| d.name.clone());
    let started = tokio::time::Instant::now();
    let mut deploy_report = DeployReport::new(DeployCommand::Run, env, Timestamp::now());
    let result = async {
        let locked = deploy::prepare(&deploy, &connection, &mut deploy_report).await?;
        // Copied once everything is validated and locked, so a bad object or a held lock stops
        // the promotion before the registry changes too.
        let copied = copy_release(rt, promotion, &targets, source_environment, report).await;
        let result = match copied {
            Ok(()) => deploy::roll_out(&deploy, &locked, &mut deploy_report).await,
            Err(e) => Err(e),
        };
        locked.release(&result, &mut deploy_report).await;
        result
    }
    .await;
    deploy::finish_report(&mut deploy_report, &result, started);
    report.deploy = Some(deploy_report);
    let outcome = result?;

    // 5. The cluster's half of the record, before GitHub's says success.
    if outcome == Outcome::Success {
        mark_verified(
            rt,
            promotion,
            &connection.client,
            &images,
            &release_id,
            report,
        )
        .await?;
        report.summary = format!(
            "promoted release {release_id} ({} service{}) to {}, verified",
            images.len(),
            if images.len() == 1 { "" } else { "s" },
            env.name
        );
    }
    Ok(outcome)
}

/// Step 3: the branch may deploy to E; the release runs in D and was verified there; GitHub's
/// record of D agrees. Refused (exit 3) unless `skip-gate`, which only reports.
#[allow(clippy::too_many_arguments)] // one call site; each argument a different fact
fn gate_or_refuse(
    rt: &Runtime<'_>,
    args: &RunArgs,
    env: &Environment,
    lower: Option<&gate::Lower>,
    images: &[ReleaseImage],
    release_id: &str,
    commit: Option<&str>,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let mut checks = vec![gate::check_branch(env, branch_of(rt))];
    if let Some(lower) = lower {
        checks.extend(gate::check_lower(lower, images, release_id, commit));
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    report.gate.checks = checks;
    if args.skip_gate {
        report.gate.skipped = true;
        rt.console.annotate(
            &Annotation::warning(format!(
                "the promotion gate was skipped (skip-gate){}",
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("; it would have refused: {}", failed.join("; "))
                }
            ))
            .title(format!("Gate skipped for {}", env.name)),
        );
    } else if !failed.is_empty() {
        return Err(anyhow::Error::new(Classified {
            outcome: Outcome::Refused,
            source: anyhow::anyhow!(
                "promotion of release {release_id} to {} refused: {}",
                env.name,
                failed.join("; ")
            ),
        }));
    } else {
        say!("Gate: {} checks passed", report.gate.checks.len());
    }
    Ok(())
}

/// Copies each release image into E's repository under E's tag, recording each as it lands.
async fn copy_release(
    rt: &Runtime<'_>,
    promotion: &Promotion<'_>,
    targets: &[(ReleaseImage, Reference)],
    source_environment: Option<String>,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let tag = promotion.env.name.clone();
    for (image, target) in targets {
        let source = Reference::parse(&image.image).map_err(Classified::invalid)?;
        let tags = vec![tag.clone()];
        let Copied { digest, bytes } = copy_image(
            rt,
            &promotion.global.auth,
            &source,
            target,
            &tags,
            &promotion.args.transfer,
        )
        .await?;
        say!(
            "Copied {} to {}@{digest} (tag {tag})",
            image.image,
            target.name()
        );
        report.images.push(ImageRow {
            service: image.service.clone(),
            image: format!("{}@{digest}", target.name()),
            digest,
            tags,
            size: Some(bytes),
            source_environment: source_environment.clone(),
        });
    }
    Ok(())
}

/// Step 5: marks each service's Deployment verified with the release.
async fn mark_verified(
    rt: &Runtime<'_>,
    promotion: &Promotion<'_>,
    client: &kube::Client,
    images: &[ReleaseImage],
    release_id: &str,
    report: &RunReport,
) -> anyhow::Result<()> {
    let env = promotion.env;
    let at = Timestamp::now().to_string();
    for image in images {
        let Some(service) = promotion.config.service(&image.service) else {
            continue;
        };
        let name = super::serving_deployment(client, env, service).await?;
        crate::kube::mark_verified(
            client,
            &env.namespace,
            &name,
            &Verified {
                digest: image.digest.as_str(),
                release: release_id,
                git_sha: report.release.sha.as_deref(),
                deployed_by: rt.ctx.actor.as_deref(),
                at: &at,
            },
        )
        .await
        .with_context(|| {
            format!(
                "verified, but failed to record it on deployment/{name} in {}",
                env.namespace
            )
        })?;
    }
    Ok(())
}

/// The run's branch, when it runs on one (`refs/heads/…`).
fn branch_of<'a>(rt: &'a Runtime<'_>) -> Option<&'a str> {
    rt.ctx
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
}

/// Outputs, the JSON report and the job summary.
fn finish(
    rt: &mut Runtime<'_>,
    report: &mut RunReport,
    started: tokio::time::Instant,
    output_dir: Option<&Path>,
) -> anyhow::Result<()> {
    report.finished_at = Some(Timestamp::now());
    report.duration_ms = started.elapsed().as_millis();
    let image = match (report.images.as_slice(), report.release.images.as_slice()) {
        ([only], _) => Some(only.image.clone()),
        (_, [only]) => Some(only.image.clone()),
        _ => None,
    };
    let revision = report
        .deploy
        .as_ref()
        .and_then(DeployReport::final_revision);
    super::set_release_outputs(rt.outputs, image.as_deref(), revision);
    if let Some(url) = &report.environment_url {
        rt.outputs.set("environment-url", url.clone());
    }
    say!("{}", report::run_text(report));
    super::write_report(rt, "promote-run.json", &*report, output_dir)?;
    if let Err(e) = report::run_summary(report).write(rt.ctx) {
        rt.console.annotate(
            &Annotation::warning(format!("cannot write the job summary: {e}"))
                .title("Job summary not written"),
        );
    }
    Ok(())
}
