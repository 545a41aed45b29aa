//! Everything before the first write that matters: the namespace, a server-side dry run of
//! every object, and the locks. What comes out is a [`Locked`] deploy: valid, and ours alone.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::DeleteParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::Deploy;
use super::roll_out::{reject, verification};
use crate::actions::Context;
use crate::config::{self, Environment};
use crate::kube::{
    APPLY_CONCURRENCY, Connection, Force, HeldLock, LEASE_DURATION, LockError, LockRequest, Mode,
    acquire_lock, apply_all, apply_one, lease_name, retrying,
};
use crate::kube::{LABEL_ENVIRONMENT, LABEL_MANAGED_BY, MANAGER};
use crate::outcome::{Classified, Outcome, outcome_of};
use crate::report::{DeployReport, LockReport};
use crate::say;

/// Default for `lock-timeout`: long enough for another deploy of the same service to finish
/// its rollout (the default rollout timeout), short enough to free the runner.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// A deploy that has passed every check and holds its locks; nothing but (perhaps) its
/// namespace has been written. [`Locked::release`] ends it.
pub struct Locked {
    pub client: Client,
    namespace: String,
    locks: Vec<HeldLock>,
}

/// Checks the namespace, validates every object with a server-side dry run and takes the locks.
///
/// # Errors
/// Invalid input (exit 2: a rejected object, a missing namespace, checks that cannot run), a
/// lock held by another run (exit 3), or the API failing. Nothing is left behind: a namespace
/// this run created for an invalid deploy is removed again.
pub async fn prepare(
    deploy: &Deploy<'_>,
    connection: &Connection,
    report: &mut DeployReport,
) -> anyhow::Result<Locked> {
    let env = deploy.environment;
    let client = connection.client.clone();
    report.cluster = Some(connection.description.clone());
    say!("Cluster: {}", connection.description);
    // The checks must be able to run before anything is written (a secret they need, say).
    let secrets = |variable: &str| deploy.ctx.read_secret(variable, deploy.console);
    if let Some(v) = verification(deploy, &client, &secrets) {
        crate::checks::preflight(&v).map_err(Classified::invalid)?;
    }
    super::metrics::preflight(deploy).await?;

    report.namespace_created =
        ensure_namespace(&client, env, deploy.options.create_namespace).await?;
    let locks = async {
        validate(deploy, &client, report).await?;
        if deploy.options.create_namespace && !report.namespace_created {
            // An existing namespace gets the environment's label too, once all is valid.
            apply_namespace(&client, env).await?;
        }
        take_locks(
            deploy.ctx,
            &client,
            env,
            &deploy.plan.service_names(),
            deploy.options.lock_timeout,
            report,
        )
        .await
    }
    .await;
    let locked = |locks| Locked {
        client: client.clone(),
        namespace: env.namespace.clone(),
        locks,
    };
    match locks {
        Ok(locks) => Ok(locked(locks)),
        Err(e) => {
            let invalid = outcome_of(&e) == Outcome::Invalid;
            locked(Vec::new()).finish(invalid, report).await;
            Err(e)
        }
    }
}

impl Locked {
    /// Releases the locks. A deploy that turned out invalid before anything was written (here,
    /// or in the image copy `run` makes before the rollout) also loses the namespace this run
    /// created for it.
    pub async fn release(self, result: &anyhow::Result<Outcome>, report: &mut DeployReport) {
        let invalid = matches!(result, Err(e) if outcome_of(e) == Outcome::Invalid);
        self.finish(invalid, report).await;
    }

    async fn finish(self, invalid: bool, report: &mut DeployReport) {
        for lock in self.locks {
            lock.release().await;
        }
        if report.namespace_created && invalid {
            let api: Api<Namespace> = Api::all(self.client.clone());
            if let Err(e) = api.delete(&self.namespace, &DeleteParams::default()).await {
                report.warnings.push(format!(
                    "could not remove namespace {} created by this run: {e}",
                    self.namespace
                ));
            } else {
                report.namespace_created = false;
            }
        }
    }
}

/// Validates every object (hooks included) with a server-side dry run, before anything is
/// written — the lock's Lease included.
async fn validate(
    deploy: &Deploy<'_>,
    client: &Client,
    report: &mut DeployReport,
) -> anyhow::Result<()> {
    let force = deploy.options.apply_force();
    let all: Vec<Value> = deploy
        .plan
        .objects()
        .chain(&deploy.plan.hooks)
        .cloned()
        .collect();
    let batch = apply_all(client, &all, Mode::DryRun, force, APPLY_CONCURRENCY).await;
    if !batch.errors.is_empty() {
        let count = batch.errors.len();
        reject(deploy.console, report, &batch.errors);
        report.summary = format!(
            "{count} of {} objects rejected by the API server's dry run; nothing was written",
            all.len()
        );
        return Err(Classified::invalid(anyhow::anyhow!("{}", report.summary)));
    }
    say!(
        "Validated {} objects with a server-side dry run ({:.1}s)",
        all.len(),
        batch.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Makes sure the namespace exists: created (and labelled with the environment) only with
/// `create-namespace`. Returns whether this run created it.
async fn ensure_namespace(
    client: &Client,
    env: &Environment,
    create: bool,
) -> anyhow::Result<bool> {
    let api: Api<Namespace> = Api::all(client.clone());
    let existing = retrying("reading the namespace", || api.get_opt(&env.namespace))
        .await
        .with_context(|| format!("reading namespace {}", env.namespace))?;
    match (existing, create) {
        (Some(_), _) => Ok(false),
        (None, false) => Err(Classified::invalid(anyhow::anyhow!(
            "namespace {} does not exist; set `create-namespace: true` (--create-namespace) to create it",
            env.namespace
        ))),
        (None, true) => {
            // Objects cannot be validated in a namespace that does not exist, so this one write
            // comes first (and is undone when validation fails).
            apply_namespace(client, env).await?;
            say!("Created namespace {}", env.namespace);
            Ok(true)
        }
    }
}

/// Applies the namespace with the environment's label (`create-namespace`).
async fn apply_namespace(client: &Client, env: &Environment) -> anyhow::Result<()> {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": env.namespace,
            "labels": { LABEL_ENVIRONMENT: env.name, LABEL_MANAGED_BY: MANAGER },
        },
    });
    for mode in [Mode::DryRun, Mode::Write] {
        apply_one(client, &object, mode, Force::No)
            .await
            .map_err(|e| match mode {
                Mode::DryRun => Classified::invalid(e),
                Mode::Write => anyhow::Error::new(e),
            })?;
    }
    Ok(())
}

/// Takes one Lease per service, in name order (no two runs can deadlock).
///
/// # Errors
/// A lease another run holds past the timeout (refused, exit 3), or the API failing; the
/// leases already taken are released.
pub async fn take_locks(
    ctx: &Context,
    client: &Client,
    env: &Environment,
    services: &[String],
    lock_timeout: Option<Duration>,
    report: &mut DeployReport,
) -> anyhow::Result<Vec<HeldLock>> {
    let holder = ctx.run_url().unwrap_or_else(|| {
        format!(
            "local:{}-{}",
            std::process::id(),
            crate::actions::random_delimiter().trim_start_matches("ghadelimiter_")
        )
    });
    let mut sorted = services.to_vec();
    sorted.sort();
    let mut held: Vec<HeldLock> = Vec::new();
    for service in sorted {
        let request = LockRequest {
            namespace: env.namespace.clone(),
            environment: env.name.clone(),
            service,
            holder: holder.clone(),
            timeout: lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
            lease_duration: LEASE_DURATION,
        };
        let on_wait = |holder: &str| {
            say!(
                "Waiting for {} (held by {holder}) for up to {}",
                lease_name(&request.environment, &request.service),
                config::units::format_duration(request.timeout)
            );
        };
        match acquire_lock(client, &request, &on_wait).await {
            Ok(lock) => {
                if let Some(previous) = &lock.took_over_from {
                    report.warnings.push(format!(
                        "took over the expired lease {} from {previous}",
                        lock.name
                    ));
                }
                report.locks.push(LockReport {
                    lease: lock.name.clone(),
                    holder: lock.holder.clone(),
                    waited_ms: lock.waited.as_millis(),
                    took_over_from: lock.took_over_from.clone(),
                });
                held.push(lock);
            }
            Err(e) => {
                for lock in held {
                    lock.release().await;
                }
                let outcome = match &e {
                    LockError::Held { .. } => Outcome::Refused,
                    LockError::Api { .. } => Outcome::Failed,
                };
                return Err(anyhow::Error::new(Classified {
                    outcome,
                    source: anyhow::Error::new(e),
                }));
            }
        }
    }
    Ok(held)
}
