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

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::Runtime;
use super::copy::{Copied, copy_image, resolve_digest};
use super::deploy::{DeployReport, connect_to, deploy};
use super::gate::{self, Lower, Record};
use super::plan::{PlanRequest, plan};
use crate::actions::{Annotation, Secret, redact};
use crate::cli::{DeployArgs, GlobalArgs, RunArgs};
use crate::config::{self, Config, Environment};
use crate::github::{
    Deployment, DeploymentFilter, DeploymentState, GitHub, NewDeployment, NewStatus,
};
use crate::kube::verified::{self, Verified};
use crate::outcome::{Classified, Outcome, outcome_of};
use crate::registry::Reference;
use crate::report::{
    self, Gate, GitHubRecord, ImageRow, PathStep, Release, ReleaseImage, RunReport, StepState,
};

/// How many of an environment's newest deployments are searched for its latest success.
const RECORD_SEARCH: usize = 20;

/// `promote run`.
pub async fn run_promotion(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RunArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    let env = super::environment(&config, &args.environment)?;
    let mut report = new_report(rt, env);
    let github = github_client(rt, global)?;
    if github.is_none() {
        report.warnings.push(
            "no GitHub record: GITHUB_REPOSITORY or the GitHub token is not set (a run outside Actions)"
                .to_string(),
        );
    }
    let mut recorder: Option<Recorder> = None;
    let result = promote(
        rt,
        global,
        args,
        &config,
        env,
        github.as_ref(),
        &mut recorder,
        &mut report,
    )
    .await;
    let outcome = match &result {
        Ok(o) => *o,
        Err(e) => outcome_of(e),
    };
    report.outcome = outcome.word().to_string();
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
    report.path = promotion_path(&config, env, github.as_ref(), &report).await;
    finish(rt, &mut report, started, args.output_dir.as_deref());
    result
}

fn new_report(rt: &Runtime<'_>, env: &Environment) -> RunReport {
    RunReport {
        command: "run",
        environment: env.name.clone(),
        outcome: String::new(),
        summary: String::new(),
        started_at: Timestamp::now().to_string(),
        finished_at: String::new(),
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
    let (Some(token), Some(repository)) = (&global.github_token, &rt.ctx.repository) else {
        return Ok(None);
    };
    if token.trim().is_empty() {
        return Ok(None);
    }
    let token = Secret::new(token.trim(), rt.console);
    GitHub::new(&rt.ctx.api_url, &token, repository)
        .map(Some)
        .map_err(Classified::invalid)
}

#[allow(clippy::too_many_arguments)] // one call site
async fn promote(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RunArgs,
    config: &Config,
    env: &Environment,
    github: Option<&GitHub>,
    recorder: &mut Option<Recorder>,
    report: &mut RunReport,
) -> anyhow::Result<Outcome> {
    // 1. The release, and what the lower environment shows.
    let lower_env = env.requires.as_deref().and_then(|d| config.environment(d));
    let mut lower = match lower_env {
        Some(d) => Some(read_lower(rt, global, args, config, d).await?),
        None => None,
    };
    let from_input = !args.images.is_empty();
    let images = if from_input {
        release_from_input(rt, global, config, &args.images).await?
    } else if let (Some(lower), Some(d)) = (&lower, lower_env) {
        release_from_lower(config, d, lower)?
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
            (true, _) | (false, None) => "input".to_string(),
            (false, Some(d)) => format!("environment:{}", d.name),
        },
        id: release_id.clone(),
        images: images.clone(),
    };
    eprintln!(
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
    let mut checks = vec![gate::check_branch(env, branch_of(rt))];
    if let Some(lower) = &lower {
        let commit = if from_input {
            None
        } else {
            rt.ctx.sha.as_deref()
        };
        checks.extend(gate::check_lower(lower, &images, &release_id, commit));
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
        eprintln!("Gate: {} checks passed", report.gate.checks.len());
    }

    // 4. Render pinned to E's repository, then deploy, copying once validated and locked.
    let targets: Vec<(ReleaseImage, Reference)> = images
        .iter()
        .map(|i| {
            let service = config
                .service(&i.service)
                .expect("release services are known");
            let target = Reference::parse(&format!("{}/{}", config.registry, service.image))
                .map_err(|e| Classified::invalid(anyhow::anyhow!("{}: {e}", i.service)))?;
            Ok((i.clone(), target))
        })
        .collect::<anyhow::Result<_>>()?;
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
    let plan = plan(config, &request)?;
    let deploy_args = DeployArgs {
        environment: env.name.clone(),
        service: None,
        images: request.images.clone(),
        cluster: args.cluster.clone(),
        create_namespace: args.create_namespace,
        force: args.force,
        timeout: args.timeout,
        lock_timeout: args.lock_timeout,
        output_dir: None,
        no_verify: false,
    };
    let timeout = args.timeout.unwrap_or(env.rollout.timeout);
    let connection = connect_to(rt, global, &args.cluster, env).await?;
    let tag = env.name.clone();
    let source_environment = lower_env.filter(|_| !from_input).map(|d| d.name.clone());
    let mut rows: Vec<ImageRow> = Vec::new();
    let copy_all = async |rt: &Runtime<'_>| -> anyhow::Result<()> {
        for (image, target) in &targets {
            let source = Reference::parse(&image.image).map_err(Classified::invalid)?;
            let tags = vec![tag.clone()];
            let Copied { digest, bytes } =
                copy_image(rt, &global.auth, &source, target, &tags, &args.transfer).await?;
            eprintln!(
                "Copied {} to {}@{digest} (tag {tag})",
                image.image,
                target.name()
            );
            rows.push(ImageRow {
                service: image.service.clone(),
                digest: digest.to_string(),
                image: format!("{}@{digest}", target.name()),
                tags,
                size: Some(bytes),
                source_environment: source_environment.clone(),
            });
        }
        Ok(())
    };
    let mut deploy_report = DeployReport::new("run", env);
    let result = deploy(
        rt,
        &connection,
        &deploy_args,
        config,
        env,
        &plan,
        timeout,
        &mut deploy_report,
        copy_all,
    )
    .await;
    report.images = rows;
    report.deploy = Some(deploy_report);
    let outcome = result?;

    // 5. The cluster's half of the record, before GitHub's says success.
    if outcome == Outcome::Success {
        let at = Timestamp::now().to_string();
        for image in &images {
            let service = config.service(&image.service).expect("known service");
            verified::mark(
                &connection.client,
                &env.namespace,
                &service.deployment,
                &Verified {
                    digest: &image.digest,
                    release: &release_id,
                    git_sha: report.release.sha.as_deref(),
                    deployed_by: rt.ctx.actor.as_deref(),
                    at: &at,
                },
            )
            .await
            .with_context(|| {
                format!(
                    "verified, but failed to record it on deployment/{} in {}",
                    service.deployment, env.namespace
                )
            })?;
        }
        report.summary = format!(
            "promoted release {release_id} ({} service{}) to {}, verified",
            images.len(),
            if images.len() == 1 { "" } else { "s" },
            env.name
        );
    }
    Ok(outcome)
}

/// The run's branch, when it runs on one (`refs/heads/…`).
fn branch_of<'a>(rt: &'a Runtime<'_>) -> Option<&'a str> {
    rt.ctx
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
}

/// Reads every service's Deployment in the lower environment `d`.
async fn read_lower(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &RunArgs,
    config: &Config,
    d: &Environment,
) -> anyhow::Result<Lower> {
    let connection = connect_to(rt, global, &args.cluster, d)
        .await
        .with_context(|| format!("failed to connect to {}'s cluster", d.name))?;
    let mut services = BTreeMap::new();
    for service in &config.services {
        let live = verified::read(
            &connection.client,
            &d.namespace,
            &service.deployment,
            &service.container,
        )
        .await
        .with_context(|| {
            format!(
                "failed to read deployment/{} in {}",
                service.deployment, d.namespace
            )
        })?;
        services.insert(service.name.clone(), live);
    }
    Ok(Lower {
        environment: d.name.clone(),
        services,
        record: None,
    })
}

/// The `images` input: one per service, tags resolved to digests here, once.
async fn release_from_input(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    config: &Config,
    given: &[String],
) -> anyhow::Result<Vec<ReleaseImage>> {
    let mut errors = Vec::new();
    let mut parsed: BTreeMap<String, Reference> = BTreeMap::new();
    for text in given {
        let (service, reference) = match text.split_once('=') {
            Some((s, r)) => (s.trim().to_string(), r.trim()),
            None if config.services.len() == 1 => (config.services[0].name.clone(), text.trim()),
            None => {
                errors.push(format!(
                    "{text:?}: name the service as SERVICE=REF (the release has {})",
                    service_names(config)
                ));
                continue;
            }
        };
        if config.service(&service).is_none() {
            errors.push(format!(
                "{text:?}: unknown service `{service}` (the promotion file declares: {})",
                service_names(config)
            ));
            continue;
        }
        match Reference::parse(reference) {
            Ok(r) => {
                if parsed.insert(service.clone(), r).is_some() {
                    errors.push(format!("two images given for service `{service}`"));
                }
            }
            Err(e) => errors.push(format!("{text:?}: {e}")),
        }
    }
    let missing: Vec<&str> = config
        .services
        .iter()
        .filter(|s| !parsed.contains_key(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    if errors.is_empty() && !missing.is_empty() {
        errors.push(format!(
            "a release is every service's image: missing {}",
            missing.join(", ")
        ));
    }
    if !errors.is_empty() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "images: {}",
            errors.join("; ")
        )));
    }
    let mut images = Vec::new();
    for (service, reference) in parsed {
        let digest = resolve_digest(rt, &global.auth, &reference).await?;
        if reference.digest.is_none() {
            eprintln!("Resolved {reference} to {digest}");
        }
        images.push(ReleaseImage {
            service,
            image: format!("{}@{digest}", reference.name()),
            digest: digest.to_string(),
        });
    }
    Ok(images)
}

/// The release D runs: each service's running digest (the gate then checks it was verified).
fn release_from_lower(
    config: &Config,
    d: &Environment,
    lower: &Lower,
) -> anyhow::Result<Vec<ReleaseImage>> {
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for service in &config.services {
        match lower
            .services
            .get(&service.name)
            .and_then(|l| l.digest.clone())
        {
            Some(digest) => images.push(ReleaseImage {
                service: service.name.clone(),
                image: format!("{}/{}@{digest}", config.registry, service.image),
                digest,
            }),
            None => missing.push(service.name.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(anyhow::Error::new(Classified {
            outcome: Outcome::Refused,
            source: anyhow::anyhow!(
                "nothing to promote from {}: {} not deployed there by digest; promote to {} first",
                d.name,
                missing.join(", "),
                d.name
            ),
        }));
    }
    Ok(images)
}

fn service_names(config: &Config) -> String {
    config
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The payload key under which the release is recorded on deployments this action creates.
pub(crate) const PAYLOAD_KEY: &str = "promote";

/// The newest deployment of `environment` whose latest status is success, as a [`Record`].
async fn latest_success(github: &GitHub, environment: &str) -> anyhow::Result<Record> {
    Ok(match latest_successful(github, environment).await? {
        Some((deployment, description)) => record_of(&deployment, description.as_deref()),
        None => Record::Missing,
    })
}

/// The newest deployment of `environment` whose latest status is success, with that status's
/// description and time.
async fn latest_successful(
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
fn record_of(deployment: &Deployment, description: Option<&str>) -> Record {
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

/// The GitHub deployment this run reports to.
struct Recorder {
    github: GitHub,
    deployment: Deployment,
    reused: bool,
    posted: Vec<String>,
    log_url: Option<String>,
    environment_url: Option<String>,
}

impl Recorder {
    /// Finds the deployment GitHub made for this job's `environment:`, or creates one, and
    /// posts `in_progress` to it.
    async fn start(
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
                eprintln!(
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
                eprintln!("Created GitHub deployment {} for {}", created.id, env.name);
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

    async fn post(
        &mut self,
        state: DeploymentState,
        description: &str,
    ) -> Result<(), crate::github::GitHubError> {
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
        self.posted.push(state_word(state).to_string());
        Ok(())
    }

    fn record(&self) -> GitHubRecord {
        GitHubRecord {
            deployment_id: self.deployment.id,
            reused: self.reused,
            statuses: self.posted.clone(),
        }
    }
}

/// A GitHub refusal for a missing permission becomes invalid input that names it.
fn permission_error(e: crate::github::GitHubError, permission: &str) -> anyhow::Error {
    if matches!(e.status(), Some(403 | 404)) {
        let message = format!(
            "{e}: the token needs `{permission}` (add `permissions: {permission}` to the job)"
        );
        return Classified::invalid(anyhow::anyhow!(message));
    }
    anyhow::Error::new(e)
}

fn payload(release: &Release, actor: Option<&str>) -> Value {
    json!({
        PAYLOAD_KEY: {
            "actor": actor,
            "release": release.id,
            "source": release.source,
            "sha": release.sha,
            "images": release.images.iter().map(|i| (i.service.clone(), Value::from(i.image.clone()))).collect::<serde_json::Map<_, _>>(),
            "digests": release.images.iter().map(|i| (i.service.clone(), Value::from(i.digest.clone()))).collect::<serde_json::Map<_, _>>(),
        }
    })
}

fn state_word(state: DeploymentState) -> &'static str {
    match state {
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

/// The last status to post for `outcome`.
fn final_status(outcome: Outcome, report: &RunReport) -> (DeploymentState, String) {
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

/// Every environment in order for the promotion map: this run's state, and for the others
/// whether their latest success is this release.
async fn promotion_path(
    config: &Config,
    env: &Environment,
    github: Option<&GitHub>,
    report: &RunReport,
) -> Vec<PathStep> {
    let mut steps = Vec::new();
    for other in &config.environments {
        if other.name == env.name {
            steps.push(PathStep {
                environment: other.name.clone(),
                state: match outcome_word(&report.outcome) {
                    Outcome::Success => StepState::Succeeded,
                    Outcome::Refused | Outcome::Invalid => StepState::Refused,
                    Outcome::RollbackFailed => StepState::RollbackFailed,
                    Outcome::Failed => StepState::Failed,
                },
                release_id: (!report.release.id.is_empty()).then(|| report.release.id.clone()),
                at: Some(Timestamp::now().to_string()),
            });
            continue;
        }
        let latest = match github {
            Some(github) => latest_successful(github, &other.name).await.ok().flatten(),
            None => None,
        };
        let (release_id, at) = match &latest {
            Some((deployment, description)) => {
                match record_of(deployment, description.as_deref()) {
                    Record::Success { release, .. } => {
                        (release, Some(deployment.created_at.clone()))
                    }
                    Record::Missing => (None, None),
                }
            }
            None => (None, None),
        };
        let done =
            release_id.is_some() && release_id.as_deref() == Some(report.release.id.as_str());
        steps.push(PathStep {
            environment: other.name.clone(),
            state: if done {
                StepState::Done
            } else {
                StepState::Pending
            },
            release_id,
            at,
        });
    }
    steps
}

fn outcome_word(word: &str) -> Outcome {
    match word {
        "success" => Outcome::Success,
        "refused" => Outcome::Refused,
        "invalid" => Outcome::Invalid,
        "rollback-failed" => Outcome::RollbackFailed,
        _ => Outcome::Failed,
    }
}

/// Outputs, the JSON report and the job summary.
fn finish(
    rt: &mut Runtime<'_>,
    report: &mut RunReport,
    started: tokio::time::Instant,
    output_dir: Option<&Path>,
) {
    report.finished_at = Timestamp::now().to_string();
    report.duration_ms = started.elapsed().as_millis();
    if let [only] = report.images.as_slice() {
        rt.outputs.set("digest", only.digest.clone());
        rt.outputs.set("image", only.image.clone());
    } else if let [only] = report.release.images.as_slice() {
        rt.outputs.set("digest", only.digest.clone());
        rt.outputs.set("image", only.image.clone());
    }
    if let Some(deploy) = &report.deploy {
        let revisions: Vec<i64> = deploy
            .workloads
            .iter()
            .filter(|w| w.kind == crate::kube::rollout::WorkloadKind::Deployment)
            .filter_map(|w| {
                w.rollback
                    .as_ref()
                    .and_then(|r| r.revision_after)
                    .or(w.revision_after)
            })
            .collect();
        if let [only] = revisions.as_slice() {
            rt.outputs.set("revision", only.to_string());
        }
    }
    if let Some(url) = &report.environment_url {
        rt.outputs.set("environment-url", url.clone());
    }
    eprintln!("{}", report::run_text(report));
    super::write_report(rt, "promote-run.json", &*report, output_dir);
    if let Err(e) = report::run_summary(report).write(rt.ctx) {
        eprintln!("warning: cannot write the job summary: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_id_is_read_back_from_a_status_description() {
        assert_eq!(
            release_in_description("release 3f2a9c1b0d4e verified in testing").as_deref(),
            Some("3f2a9c1b0d4e")
        );
        assert_eq!(release_in_description("deployed"), None);
        assert_eq!(release_in_description("release 3f2a"), None);
    }

    #[test]
    fn our_payload_is_the_record() {
        let release = Release {
            sha: Some("abc".into()),
            source: "input".into(),
            id: "0123456789ab".into(),
            images: vec![ReleaseImage {
                service: "web".into(),
                image: "r.io/web@sha256:1".into(),
                digest: "sha256:1".into(),
            }],
        };
        let deployment = Deployment {
            id: 5,
            sha: "abc".into(),
            git_ref: "abc".into(),
            task: "deploy".into(),
            environment: "development".into(),
            payload: payload(&release, Some("octocat")),
            description: None,
            creator: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            url: String::new(),
        };
        let Record::Success {
            release: id,
            digests,
            ..
        } = record_of(&deployment, None)
        else {
            panic!("a success")
        };
        assert_eq!(id.as_deref(), Some("0123456789ab"));
        assert_eq!(digests["web"], "sha256:1");
    }
}
