//! `promote deploy`: render (as `plan` does), connect, lock, validate every object with a
//! server-side dry run, run the pre-deploy hooks, apply in dependency order, wait for every
//! changed workload by watch, and on failure roll back by the environment's policy.
//!
//! The phases, each a function over plain values, so `run` can put its image copy between the
//! second and the third:
//!
//! 1. [`plan::plan_environment`] with the `fromEnv` Secrets ([`plan::add_secrets`]) — bad
//!    input or config, a variable without a value: exit 2 before touching the cluster.
//! 2. [`prepare`]: check the namespace (create it only with `create-namespace`), dry-run every
//!    object (any rejection is exit 2 with nothing written; a namespace this run created is
//!    removed again), then take a Lease per service in name order → a [`Locked`] deploy.
//! 3. [`roll_out`]: hooks with their ConfigMaps and Secrets (a failed hook is exit 1, nothing
//!    else applied), apply, wait for the changed workloads concurrently, verify.
//! 4. [`roll_back`] on failure, by `onFailure`: "rolled back" (exit 1) or "rollback failed"
//!    (exit 4). What is awaited, which ConfigMaps and Secrets a hook needs, how an undo failure
//!    counts and the verdict are pure functions in `decide`.
//!
//! Everything that happened goes into a [`DeployReport`] (JSON), written even when the deploy
//! stops early.

mod blue_green;
mod canary;
mod decide;
mod leave_blue_green;
mod metrics;
mod prepare;
mod preview;
mod roll_back;
mod roll_out;
mod switch_back;
mod workloads;

use std::time::Duration;

use jiff::Timestamp;

use super::Runtime;
use crate::actions::{Console, Context};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::config::{self, Config, Environment, Strategy};
use crate::kube::Force;
use crate::outcome::{Classified, Outcome, outcome_of};
use crate::plan::{self, EnvironmentPlan, Plan, PlanRequest};
use crate::report::{DeployCommand, DeployReport};

pub use decide::Reason;
pub use prepare::{Locked, prepare, take_locks};
pub use roll_back::roll_back;
pub use switch_back::roll_back_colours;
pub use workloads::{container_of, read_before};

/// Rolls the release out by the environment's `strategy`: a plain rolling update here, or
/// blue-green / canary in their own modules.
///
/// # Errors
/// The API failing outside a rollout (reading a workload, waiting), or checks that turn out
/// not to be runnable (invalid input).
pub async fn roll_out(
    deploy: &Deploy<'_>,
    locked: &Locked,
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    report.strategy = deploy.environment.strategy.word().to_string();
    match &deploy.environment.strategy {
        Strategy::Rolling => roll_out::roll_out_rolling(deploy, locked, report).await,
        Strategy::BlueGreen(settings) => {
            blue_green::roll_out(deploy, locked, settings, report).await
        }
        Strategy::Canary(settings) => canary::roll_out(deploy, locked, settings, report).await,
    }
}

/// How to deploy, from the command's flags (or `run`'s) and the environment's defaults.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Only this service's objects (and checks).
    pub service: Option<String>,
    pub create_namespace: bool,
    /// Take over fields another field manager owns.
    pub force: bool,
    /// For each rollout (and a rollback's).
    pub timeout: Duration,
    /// For the Leases; `prepare::DEFAULT_LOCK_TIMEOUT` when unset.
    pub lock_timeout: Option<Duration>,
    /// Run the environment's checks after the rollout.
    pub verify: bool,
}

impl DeployOptions {
    /// How the apply treats fields another manager owns.
    pub fn apply_force(&self) -> Force {
        if self.force { Force::Yes } else { Force::No }
    }

    pub fn from_args(args: &DeployArgs, env: &Environment) -> DeployOptions {
        DeployOptions {
            service: args.service.clone(),
            create_namespace: args.create_namespace,
            force: args.force,
            timeout: args.timeout.unwrap_or(env.rollout.timeout),
            lock_timeout: args.lock_timeout,
            verify: !args.no_verify,
        }
    }
}

/// One deploy's fixed inputs, shared by its phases.
#[derive(Clone, Copy)]
pub struct Deploy<'a> {
    pub console: &'a Console,
    pub ctx: &'a Context,
    pub config: &'a Config,
    pub environment: &'a Environment,
    pub plan: &'a EnvironmentPlan,
    pub options: &'a DeployOptions,
}

/// `promote deploy`.
pub async fn run_deploy(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &DeployArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    let request = PlanRequest::for_environment(
        &args.environment,
        args.service.as_deref(),
        &args.images,
        rt.provenance(),
    );
    let mut target = plan::plan_environment(&config, &args.environment, &request)?;
    let variables = super::secret_variables(rt, [target.environment]);
    plan::add_secrets(&config, &mut target.plan, &variables, plan::Unset::Invalid)?;
    require_pinned(&target.plan)?;
    let env = target.environment;
    let options = DeployOptions::from_args(args, env);
    let deploy = Deploy {
        console: rt.console,
        ctx: rt.ctx,
        config: &config,
        environment: env,
        plan: target.objects(),
        options: &options,
    };

    let mut report = DeployReport::new(DeployCommand::Deploy, env, Timestamp::now());
    let result = async {
        let connection = super::connect_to(rt, global, &args.cluster, env).await?;
        let locked = prepare(&deploy, &connection, &mut report).await?;
        let result = roll_out(&deploy, &locked, &mut report).await;
        locked.release(&result, &mut report).await;
        result
    }
    .await;
    finish_report(&mut report, &result, started);
    let image = match target.objects().services.as_slice() {
        [only] => Some(only.image.as_str()),
        _ => None,
    };
    super::set_release_outputs(rt.outputs, image, report.final_revision());
    if let Some(url) = &env.url {
        rt.outputs.set("environment-url", url.clone());
    }
    super::write_report(
        rt,
        "promote-deploy.json",
        &report,
        args.output_dir.as_deref(),
    )?;
    result
}

/// Deploy needs every image pinned by digest: a tag can move between validation and rollout.
fn require_pinned(plan: &Plan) -> anyhow::Result<()> {
    let unpinned = plan.unpinned();
    if unpinned.is_empty() {
        return Ok(());
    }
    Err(Classified::invalid(anyhow::anyhow!(
        "deploy needs an image pinned by digest for every service it deploys; missing for {}: give --image SERVICE=REGISTRY/REPOSITORY@sha256:… (the `images` input)",
        unpinned.join(", ")
    )))
}

/// Fills in the outcome and timing of a deploy (or rollback) report.
pub fn finish_report(
    report: &mut DeployReport,
    result: &anyhow::Result<Outcome>,
    started: tokio::time::Instant,
) {
    let outcome = match result {
        Ok(o) => *o,
        Err(e) => outcome_of(e),
    };
    report.outcome = outcome;
    report.finished_at = Some(Timestamp::now());
    report.duration_ms = started.elapsed().as_millis();
    if report.summary.is_empty() {
        report.summary = match result {
            Ok(_) => outcome.word().to_string(),
            Err(e) => format!("{e:#}"),
        };
    }
}
