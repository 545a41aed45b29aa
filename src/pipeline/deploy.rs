//! `promote deploy`: render (as `plan` does), connect, lock, validate every object with a
//! server-side dry run, run the pre-deploy hooks, apply in dependency order, wait for every
//! changed workload by watch, and on failure roll back by the environment's policy.
//!
//! 1. Render with `plan` — bad input or config: exit 2 before touching the cluster.
//! 2. Connect (`kube::connect`), check the namespace (create it only with `create-namespace`).
//! 3. Dry run of every object: any rejection is exit 2 with nothing written (a namespace this
//!    run created is removed again).
//! 4. Lock: a Lease per service in scope, in name order (no two runs can deadlock).
//! 5. Hooks, with their ConfigMaps: a failed hook is exit 1, nothing else applied.
//! 6. Apply, then wait for the changed Deployments/StatefulSets/DaemonSets concurrently.
//! 7. On failure: diagnose; with `onFailure: rollback`, undo every changed workload and wait for
//!    that too: "rolled back" (exit 1) or "rollback failed" (exit 4).
//!
//! Everything that happened goes into a [`DeployReport`] (JSON), written even when the deploy
//! stops early.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{Value, json};

use super::Runtime;
use super::plan::{Plan, PlanRequest, plan};
use crate::actions::{Annotation, Console};
use crate::checks;
use crate::cli::{ClusterArgs, DeployArgs, GlobalArgs};
use crate::config::{self, Config, Environment, OnFailure};
use crate::kube::apply::{self, ApplyError, Force, Mode};
use crate::kube::connect::{self, ClusterInputs, Connection, Source, TokenSource};
use crate::kube::diagnose::{self, Diagnosis};
use crate::kube::hooks::{self, HookOutcome, HookReport};
use crate::kube::lock::{self, HeldLock, LockError, LockRequest};
use crate::kube::rollback::{self, RollbackError, UndoError};
use crate::kube::rollout::{self, RolloutOutcome, RolloutResult, Workload, WorkloadKind};
use crate::kube::{LABEL_ENVIRONMENT, LABEL_MANAGED_BY, MANAGER};
use crate::outcome::{Classified, Outcome, outcome_of};

/// Default for `lock-timeout`: long enough for another deploy of the same service to finish
/// its rollout (the default rollout timeout), short enough to free the runner.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// What a deploy (or rollback) did, for the JSON report and the report issue's renderers.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// `deploy` or `rollback`.
    pub command: &'static str,
    pub environment: String,
    pub namespace: String,
    /// How the cluster was found (context or AKS cluster, and the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The outcome word (`success`, `failed`, `invalid`, `refused`, `rollback-failed`).
    pub outcome: String,
    /// One line saying what happened.
    pub summary: String,
    pub started_at: String,
    /// When the outcome was known (the moment "success" is reported).
    pub finished_at: String,
    pub duration_ms: u128,
    pub namespace_created: bool,
    pub locks: Vec<LockReport>,
    /// Objects the dry run (or the apply) refused, in the server's words.
    pub rejected: Vec<Rejection>,
    pub hooks: Vec<HookReport>,
    /// `kind/name` of every object applied.
    pub applied: Vec<String>,
    pub workloads: Vec<WorkloadReport>,
    /// The environment's checks after a successful rollout (absent with `--no-verify` or none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::checks::VerifyReport>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    pub lease: String,
    pub holder: String,
    pub waited_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub object: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// `deployment/web`.
    pub object: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_before: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_after: Option<String>,
    /// Whether the apply changed it (a new generation).
    pub changed: bool,
    /// Whether its rollout was awaited: it changed, or an earlier rollout had not finished.
    pub awaited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_ms: Option<u128>,
    /// When the rollout was seen complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// `rolled-back`, `skipped` (already at that revision), `not-possible` (no earlier
    /// revision) or `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

impl DeployReport {
    pub fn new(command: &'static str, env: &Environment) -> DeployReport {
        DeployReport {
            command,
            environment: env.name.clone(),
            namespace: env.namespace.clone(),
            cluster: None,
            outcome: String::new(),
            summary: String::new(),
            started_at: Timestamp::now().to_string(),
            finished_at: String::new(),
            duration_ms: 0,
            namespace_created: false,
            locks: Vec::new(),
            rejected: Vec::new(),
            hooks: Vec::new(),
            applied: Vec::new(),
            workloads: Vec::new(),
            verification: None,
            warnings: Vec::new(),
        }
    }
}

/// `promote deploy`.
pub async fn run_deploy(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &DeployArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    let request = PlanRequest {
        environment: Some(args.environment.clone()),
        service: args.service.clone(),
        images: args.images.clone(),
        provenance: rt.provenance(),
    };
    let plan = plan(&config, &request)?;
    require_pinned(&plan)?;
    let env = config
        .environment(&args.environment)
        .expect("plan checked the environment");
    let timeout = args.timeout.unwrap_or(env.rollout.timeout);

    let mut report = DeployReport::new("deploy", env);
    let result = match connect_to(rt, global, &args.cluster, env).await {
        Ok(connection) => {
            deploy(
                rt,
                &connection,
                args,
                &config,
                env,
                &plan,
                timeout,
                &mut report,
                async |_: &Runtime<'_>| Ok(()),
            )
            .await
        }
        Err(e) => Err(e),
    };
    finish_report(
        rt,
        &mut report,
        &result,
        started,
        args.output_dir.as_deref(),
    );
    if let [env_plan] = plan.environments.as_slice()
        && let [service] = env_plan.services.as_slice()
    {
        rt.outputs.set("image", service.image.clone());
        if let Some((_, digest)) = service.image.split_once('@') {
            rt.outputs.set("digest", digest);
        }
    }
    if let Some(url) = &env.url {
        rt.outputs.set("environment-url", url.clone());
    }
    result
}

/// Deploy needs every image pinned by digest: a tag can move between validation and rollout.
fn require_pinned(plan: &Plan) -> anyhow::Result<()> {
    let unpinned: Vec<&str> = plan
        .images
        .iter()
        .filter(|(_, i)| !i.pinned)
        .map(|(s, _)| s.as_str())
        .collect();
    if unpinned.is_empty() {
        return Ok(());
    }
    Err(Classified::invalid(anyhow::anyhow!(
        "deploy needs an image pinned by digest for every service it deploys; missing for {}: give --image SERVICE=REGISTRY/REPOSITORY@sha256:… (the `images` input)",
        unpinned.join(", ")
    )))
}

/// Fills in the outcome and timing, writes the JSON report, sets the `revision` and
/// `report-path` outputs.
pub(crate) fn finish_report(
    rt: &mut Runtime<'_>,
    report: &mut DeployReport,
    result: &anyhow::Result<Outcome>,
    started: tokio::time::Instant,
    output_dir: Option<&Path>,
) {
    let outcome = match result {
        Ok(o) => *o,
        Err(e) => outcome_of(e),
    };
    report.outcome = outcome.word().to_string();
    report.finished_at = Timestamp::now().to_string();
    report.duration_ms = started.elapsed().as_millis();
    if report.summary.is_empty() {
        report.summary = match result {
            Ok(_) => outcome.word().to_string(),
            Err(e) => format!("{e:#}"),
        };
    }
    let deployments: Vec<&WorkloadReport> = report
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Deployment)
        .collect();
    if let [only] = deployments.as_slice() {
        let revision = only
            .rollback
            .as_ref()
            .and_then(|r| r.revision_after)
            .or(only.revision_after);
        if let Some(r) = revision {
            rt.outputs.set("revision", r.to_string());
        }
    }
    let dir = output_dir
        .map(Path::to_path_buf)
        .or_else(|| rt.ctx.runner_temp.as_ref().map(PathBuf::from));
    if let Some(dir) = dir {
        let path = dir.join(format!("promote-{}.json", report.command));
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(report).unwrap_or_default(),
            )
        });
        match written {
            Ok(()) => rt.outputs.set("report-path", path.display().to_string()),
            Err(e) => eprintln!(
                "warning: cannot write the report to {}: {e}",
                path.display()
            ),
        }
    }
}

/// Steps 2–7. `before_write` runs once everything is validated and the locks are held, before
/// the first object is written: `run` copies the release's images there, so a bad object or a
/// held lock stops the promotion before the registry changes too.
#[allow(clippy::too_many_arguments)] // two call sites, each argument a different input
pub(crate) async fn deploy(
    rt: &mut Runtime<'_>,
    connection: &Connection,
    args: &DeployArgs,
    config: &Config,
    env: &Environment,
    plan: &Plan,
    timeout: Duration,
    report: &mut DeployReport,
    before_write: impl AsyncFnOnce(&Runtime<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let console = *rt.console;
    let env_plan = &plan.environments[0];
    report.cluster = Some(connection.description.clone());
    eprintln!("Cluster: {}", connection.description);
    let client = connection.client.clone();
    let ctx = rt.ctx;
    let secrets = move |variable: &str| ctx.read_secret(variable, &console);
    let verification =
        (!args.no_verify && checks::has_checks(env, args.service.as_deref())).then(|| {
            checks::Verification {
                console: rt.console,
                config,
                environment: env,
                service: args.service.as_deref(),
                client: Some(client.clone()),
                secrets: &secrets,
                images: env_plan
                    .services
                    .iter()
                    .map(|r| (r.service.clone(), r.image.clone()))
                    .collect(),
            }
        });
    if let Some(v) = &verification {
        checks::preflight(v).map_err(Classified::invalid)?;
    }

    report.namespace_created = ensure_namespace(&client, env, args.create_namespace).await?;

    let result = async {
        validate(&console, &client, env_plan, args, report).await?;
        if args.create_namespace && !report.namespace_created {
            // An existing namespace gets the environment's label too, once all is valid.
            apply_namespace(&client, env).await?;
        }
        let services: Vec<String> = env_plan
            .services
            .iter()
            .map(|r| r.service.clone())
            .collect();
        let locks = take_locks(rt, &client, env, &services, args.lock_timeout, report).await?;
        if let Err(e) = before_write(rt).await {
            for lock in locks {
                lock.release().await;
            }
            return Err(e);
        }
        let result = deploy_locked(
            &console,
            &client,
            config,
            env,
            env_plan,
            args,
            timeout,
            verification.as_ref(),
            report,
        )
        .await;
        for lock in locks {
            lock.release().await;
        }
        result
    }
    .await;
    if report.namespace_created && matches!(&result, Err(e) if outcome_of(e) == Outcome::Invalid) {
        // Nothing was written but the namespace this run created for it: remove that too.
        let api: Api<Namespace> = Api::all(client.clone());
        if let Err(e) = api.delete(&env.namespace, &DeleteParams::default()).await {
            report.warnings.push(format!(
                "could not remove namespace {} created by this run: {e}",
                env.namespace
            ));
        } else {
            report.namespace_created = false;
        }
    }
    result
}

/// Validates every object (hooks included) with a server-side dry run, before anything is
/// written — the lock's Lease included.
async fn validate(
    console: &Console,
    client: &Client,
    env_plan: &super::plan::EnvironmentPlan,
    args: &DeployArgs,
    report: &mut DeployReport,
) -> anyhow::Result<()> {
    let force = if args.force { Force::Yes } else { Force::No };
    let all: Vec<Value> = env_plan
        .services
        .iter()
        .flat_map(|r| r.objects.iter().cloned())
        .chain(env_plan.hooks.iter().cloned())
        .collect();
    let batch = apply::apply_all(client, &all, Mode::DryRun, force, apply::CONCURRENCY).await;
    if !batch.errors.is_empty() {
        let count = batch.errors.len();
        reject(console, report, &batch.errors);
        report.summary = format!(
            "{count} of {} objects rejected by the API server's dry run; nothing was written",
            all.len()
        );
        return Err(Classified::invalid(anyhow::anyhow!("{}", report.summary)));
    }
    eprintln!(
        "Validated {} objects with a server-side dry run ({:.1}s)",
        all.len(),
        batch.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Connects by the inputs and the environment's `cluster`.
pub(crate) async fn connect_to(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    cluster: &ClusterArgs,
    env: &Environment,
) -> anyhow::Result<Connection> {
    let inputs = ClusterInputs {
        kubeconfig: cluster.kubeconfig.clone(),
        kubeconfig_path: cluster.kubeconfig_path.clone(),
        context: cluster.context.clone(),
    };
    let source = connect::resolve_source(&inputs, &env.cluster);
    let tokens: Option<Arc<dyn TokenSource>> = match &source {
        Source::Aks(_) => {
            let http = reqwest::Client::new();
            super::sign_in::azure_identity(rt.ctx, rt.console, &global.auth, &http)?
                .map(|identity| Arc::new(identity) as Arc<dyn TokenSource>)
        }
        _ => None,
    };
    let connection = connect::connect(&source, &inputs, rt.console, tokens, connect::ARM_BASE)
        .await
        .with_context(|| format!("connecting to the cluster of environment {}", env.name))
        .map_err(|e| {
            // A kubeconfig that is not one, a context it does not have, or AKS without an
            // identity to sign in with: bad input, nothing was touched.
            let bad_input = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<connect::ConnectError>(),
                    Some(
                        connect::ConnectError::InvalidContent
                            | connect::ConnectError::UnknownContext { .. }
                            | connect::ConnectError::ReadPath { .. }
                            | connect::ConnectError::AksNeedsIdentity { .. }
                    )
                )
            });
            if bad_input { Classified::invalid(e) } else { e }
        })?;
    Ok(connection)
}

/// Makes sure the namespace exists: created (and labelled with the environment) only with
/// `create-namespace`. Returns whether this run created it.
async fn ensure_namespace(
    client: &Client,
    env: &Environment,
    create: bool,
) -> anyhow::Result<bool> {
    let api: Api<Namespace> = Api::all(client.clone());
    let existing =
        crate::kube::api::retrying("reading the namespace", || api.get_opt(&env.namespace))
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
            eprintln!("Created namespace {}", env.namespace);
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
        apply::apply_one(client, &object, mode, Force::No)
            .await
            .map_err(|e| match mode {
                Mode::DryRun => Classified::invalid(e),
                Mode::Write => anyhow::Error::new(e),
            })?;
    }
    Ok(())
}

/// Takes one Lease per service, in name order.
pub(crate) async fn take_locks(
    rt: &Runtime<'_>,
    client: &Client,
    env: &Environment,
    services: &[String],
    lock_timeout: Option<Duration>,
    report: &mut DeployReport,
) -> anyhow::Result<Vec<HeldLock>> {
    let holder = rt.ctx.run_url().unwrap_or_else(|| {
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
            lease_duration: lock::LEASE_DURATION,
        };
        let on_wait = |holder: &str| {
            eprintln!(
                "Waiting for {} (held by {holder}) for up to {}",
                lock::lease_name(&request.environment, &request.service),
                config::units::format_duration(request.timeout)
            );
        };
        match lock::acquire(client, &request, &on_wait).await {
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

/// What a workload looked like before the apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
    pub generation: Option<i64>,
    pub revision: Option<i64>,
    pub image: Option<String>,
    /// Whether its last rollout had finished (kubectl's rules): a rerun waits for one that had not.
    pub settled: bool,
}

fn image_of(object: &Value, container: &str) -> Option<String> {
    let containers = object
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    containers
        .iter()
        .find(|c| c["name"] == container)
        .or(containers.first())
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
}

pub(crate) async fn read_before(
    client: &Client,
    object: &Value,
    container: &str,
) -> anyhow::Result<Before> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some((resource, _)) = apply::known_resource(api_version, kind) else {
        return Ok(Before::default());
    };
    let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let live = crate::kube::api::retrying("reading", || api.get_opt(name))
        .await
        .with_context(|| format!("reading {}", apply::object_ref(object)))?;
    Ok(match live {
        None => Before::default(),
        Some(live) => {
            let value = serde_json::to_value(&live).unwrap_or(Value::Null);
            let settled = WorkloadKind::parse(kind).is_none_or(|k| {
                rollout::evaluate_value(k, &value) == rollout::RolloutState::Complete
            });
            Before {
                generation: live.metadata.generation,
                revision: rollout::revision_of(live.metadata.annotations.as_ref()),
                image: image_of(&value, container),
                settled,
            }
        }
    })
}

/// Workloads in a service's rendered objects, with the objects.
fn workloads_of<'a>(
    env: &Environment,
    rendered: &'a crate::kube::Rendered,
) -> Vec<(Workload, &'a Value)> {
    rendered
        .objects
        .iter()
        .filter_map(|o| {
            let kind = WorkloadKind::parse(o["kind"].as_str().unwrap_or_default())?;
            Some((
                Workload {
                    kind,
                    namespace: env.namespace.clone(),
                    name: o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                o,
            ))
        })
        .collect()
}

fn selector_of(object: &Value) -> Option<String> {
    let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[allow(clippy::too_many_arguments)] // one call site
async fn deploy_locked(
    console: &Console,
    client: &Client,
    config: &Config,
    env: &Environment,
    env_plan: &super::plan::EnvironmentPlan,
    args: &DeployArgs,
    timeout: Duration,
    verification: Option<&checks::Verification<'_>>,
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    let force = if args.force { Force::Yes } else { Force::No };
    let objects: Vec<Value> = env_plan
        .services
        .iter()
        .flat_map(|r| r.objects.iter().cloned())
        .collect();

    // Where things stand before.
    let mut before: BTreeMap<Workload, (String, Before)> = BTreeMap::new();
    for rendered in &env_plan.services {
        let container = container_of(config, &rendered.service);
        for (workload, object) in workloads_of(env, rendered) {
            let state = read_before(client, object, &container).await?;
            before.insert(workload, (rendered.service.clone(), state));
        }
    }

    // Hooks, with the ConfigMaps they read.
    if !env_plan.hooks.is_empty() {
        let wanted: Vec<&str> = env_plan
            .hooks
            .iter()
            .flat_map(|h| {
                h.pointer("/spec/template/spec/containers/0/envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["configMapRef"]["name"].as_str())
            })
            .collect();
        let config_maps: Vec<Value> = objects
            .iter()
            .filter(|o| o["kind"] == "ConfigMap")
            .filter(|o| wanted.contains(&o["metadata"]["name"].as_str().unwrap_or_default()))
            .cloned()
            .collect();
        let batch =
            apply::apply_all(client, &config_maps, Mode::Write, force, apply::CONCURRENCY).await;
        if !batch.errors.is_empty() {
            reject(console, report, &batch.errors);
            anyhow::bail!("applying the configuration the hooks read failed");
        }
        report
            .applied
            .extend(batch.applied.iter().map(|a| a.object.clone()));
        report.hooks = hooks::run(client, console, &env_plan.hooks).await?;
        if let Some(failed) = report
            .hooks
            .iter()
            .find(|h| h.outcome == HookOutcome::Failed)
        {
            let message = failed
                .diagnosis
                .as_ref()
                .map_or_else(|| "failed".to_string(), |d| d.failure.to_string());
            console.annotate(
                &Annotation::error(format!("hook {} ({}): {message}", failed.name, failed.job))
                    .title("Pre-deploy hook failed"),
            );
            if let Some(d) = &failed.diagnosis {
                print_diagnosis(console, d);
            }
            report.summary = format!(
                "pre-deploy hook {} failed; the rollout was not started",
                failed.name
            );
            return Ok(Outcome::Failed);
        }
    }

    // Apply.
    let batch = apply::apply_all(client, &objects, Mode::Write, force, apply::CONCURRENCY).await;
    report
        .applied
        .extend(batch.applied.iter().map(|a| a.object.clone()));
    for applied in batch.applied.iter().filter(|a| a.took_back_rollback_fields) {
        report.warnings.push(format!(
            "{}: took back the fields an earlier rollback set",
            applied.object
        ));
    }
    eprintln!(
        "Applied {} objects ({:.1}s)",
        batch.applied.len(),
        batch.elapsed.as_secs_f64()
    );
    let generations: BTreeMap<&str, Option<i64>> = batch
        .applied
        .iter()
        .map(|a| (a.object.as_str(), a.generation))
        .collect();
    for rendered in &env_plan.services {
        for (workload, object) in workloads_of(env, rendered) {
            let (service, was) = before.get(&workload).cloned().unwrap_or_default();
            let applied = generations.get(apply::object_ref(object).as_str()).copied();
            let changed = match applied {
                Some(after) => was.generation.is_none() || after != was.generation,
                None => false,
            };
            // One still rolling out (or failed) from an earlier run is awaited too: success
            // means it is healthy now, not that this apply changed nothing.
            let mut awaited = applied.is_some() && (changed || !was.settled);
            // kubectl cannot tell when an OnDelete rollout is done (pods change only when
            // deleted): say so instead of failing, and do not wait.
            let strategy = object
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str);
            if awaited && strategy.is_some_and(|s| s != "RollingUpdate") {
                awaited = false;
                report.warnings.push(format!(
                    "{workload}: rollout status is only available for the RollingUpdate strategy; not waited for"
                ));
            }
            report.workloads.push(WorkloadReport {
                object: workload.to_string(),
                kind: workload.kind,
                name: workload.name.clone(),
                service,
                revision_before: was.revision,
                revision_after: None,
                image_before: was.image,
                image_after: image_of(object, &container_of(config, &rendered.service)),
                changed,
                awaited,
                rollout: None,
                rollout_ms: None,
                completed_at: None,
                diagnosis: None,
                rollback: None,
            });
        }
    }
    let apply_failed = !batch.errors.is_empty();
    if apply_failed {
        reject(console, report, &batch.errors);
    }

    // Wait for every changed workload.
    let changed: Vec<Workload> = report
        .workloads
        .iter()
        .filter(|w| w.awaited)
        .map(|w| Workload {
            kind: w.kind,
            namespace: env.namespace.clone(),
            name: w.name.clone(),
        })
        .collect();
    for w in report.workloads.iter().filter(|w| !w.awaited) {
        eprintln!("{}: unchanged", w.object);
    }
    let results = if apply_failed {
        Vec::new()
    } else {
        wait_all(client, &changed, timeout).await?
    };
    let mut failed = apply_failed;
    for result in &results {
        let entry = report
            .workloads
            .iter_mut()
            .find(|w| w.kind == result.workload.kind && w.name == result.workload.name)
            .expect("waited for a reported workload");
        entry.rollout = Some(result.outcome);
        entry.rollout_ms = Some(result.elapsed.as_millis());
        entry.revision_after = result.revision;
        if result.outcome == RolloutOutcome::Complete {
            entry.completed_at = Some(Timestamp::now().to_string());
            eprintln!(
                "{} rolled out{} in {:.1}s",
                result.workload,
                result
                    .revision
                    .map(|r| format!(" (revision {r})"))
                    .unwrap_or_default(),
                result.elapsed.as_secs_f64()
            );
        } else {
            failed = true;
        }
    }
    for w in report.workloads.iter_mut().filter(|w| !w.awaited) {
        w.revision_after = w.revision_before;
    }
    if !failed {
        report.summary = format!(
            "deployed {} to {} ({} workload{} rolled out)",
            report
                .workloads
                .iter()
                .filter_map(|w| w.image_after.clone())
                .collect::<Vec<_>>()
                .join(", "),
            env.name,
            changed.len(),
            if changed.len() == 1 { "" } else { "s" }
        );
        let Some(verification) = verification else {
            eprintln!("Done: {}", report.summary);
            return Ok(Outcome::Success);
        };
        // Right after the rollout, so the soak watches the new pods from their start.
        let verified = checks::verify(verification)
            .await
            .map_err(Classified::invalid)?;
        let passed = verified.passed;
        let why = verified.summary.clone();
        report.verification = Some(verified);
        if passed {
            report.summary.push_str(&format!("; verified ({why})"));
            eprintln!("Done: {}", report.summary);
            return Ok(Outcome::Success);
        }
        return fail_and_roll_back(
            console,
            client,
            env,
            &changed,
            timeout,
            report,
            &format!("verification failed: {why}"),
        )
        .await;
    }

    // Diagnose.
    for result in results
        .iter()
        .filter(|r| r.outcome != RolloutOutcome::Complete)
    {
        let Some(failure) = &result.failure else {
            continue;
        };
        let object = env_plan
            .services
            .iter()
            .flat_map(|r| r.objects.iter())
            .find(|o| apply::object_ref(o) == result.workload.to_string());
        let selector = object.and_then(selector_of);
        let diagnosis = diagnose::collect(
            client,
            &env.namespace,
            &result.workload.to_string(),
            &result.workload.name,
            selector.as_deref(),
            failure,
        )
        .await;
        console.annotate(
            &Annotation::error(format!("{}: {failure}", result.workload))
                .title(format!("Rollout failed in {}", env.name)),
        );
        print_diagnosis(console, &diagnosis);
        if let Some(entry) = report
            .workloads
            .iter_mut()
            .find(|w| w.kind == result.workload.kind && w.name == result.workload.name)
        {
            entry.diagnosis = Some(diagnosis);
        }
    }
    let reasons: Vec<String> = report
        .workloads
        .iter()
        .filter_map(|w| {
            w.diagnosis
                .as_ref()
                .map(|d| format!("{}: {}", w.object, d.failure))
        })
        .collect();
    let why = if reasons.is_empty() {
        "applying failed".to_string()
    } else {
        reasons.join("; ")
    };
    fail_and_roll_back(console, client, env, &changed, timeout, report, &why).await
}

/// After a failed rollout or verification: by the environment's policy, keep it (exit 1) or
/// roll every changed workload back and say whether that worked (exit 1) or not (exit 4).
async fn fail_and_roll_back(
    console: &Console,
    client: &Client,
    env: &Environment,
    changed: &[Workload],
    timeout: Duration,
    report: &mut DeployReport,
    why: &str,
) -> anyhow::Result<Outcome> {
    // Roll back by policy.
    if env.on_failure == OnFailure::Keep {
        report.summary = format!(
            "deploy to {} failed ({why}); left as is (onFailure: keep)",
            env.name
        );
        return Ok(Outcome::Failed);
    }
    let rolled_back = roll_back(
        console,
        client,
        env,
        changed,
        None,
        Reason::DeployFailed,
        timeout,
        report,
    )
    .await?;
    let first_deploy = report
        .workloads
        .iter()
        .filter_map(|w| w.rollback.as_ref())
        .all(|r| r.outcome == "not-possible");
    if rolled_back && first_deploy {
        // Nothing ran there before: there is nothing to return to, and saying "rolled back"
        // would hide that the failing version is what runs now.
        report.summary = format!(
            "deploy to {} failed ({why}); nothing to roll back to (first deploy), left as deployed",
            env.name
        );
        console.annotate(
            &Annotation::warning(report.summary.clone()).title(format!("Failed in {}", env.name)),
        );
        Ok(Outcome::Failed)
    } else if rolled_back {
        report.summary = format!("deploy to {} failed ({why}); rolled back", env.name);
        console.annotate(
            &Annotation::warning(report.summary.clone()).title(format!("Rolled back {}", env.name)),
        );
        Ok(Outcome::Failed)
    } else {
        report.summary = format!(
            "deploy to {} failed ({why}), and rolling back failed too: a human must act",
            env.name
        );
        console.annotate(
            &Annotation::error(report.summary.clone())
                .title(format!("Rollback failed in {}", env.name)),
        );
        Ok(Outcome::RollbackFailed)
    }
}

/// The container that runs the service's image in its workloads.
pub(crate) fn container_of(config: &Config, service: &str) -> String {
    config
        .service(service)
        .map_or_else(|| service.to_string(), |s| s.container.clone())
}

fn reject(console: &Console, report: &mut DeployReport, errors: &[ApplyError]) {
    for e in errors {
        let message = chain(e);
        console.annotate(&Annotation::error(message.clone()).title("Rejected by the API server"));
        report.rejected.push(Rejection {
            object: e.object().to_string(),
            message,
        });
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` prints them.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Waits for all `workloads` concurrently, one progress line per workload and change.
pub(crate) async fn wait_all(
    client: &Client,
    workloads: &[Workload],
    timeout: Duration,
) -> anyhow::Result<Vec<RolloutResult>> {
    if workloads.is_empty() {
        return Ok(Vec::new());
    }
    eprintln!(
        "Waiting up to {} for {}",
        config::units::format_duration(timeout),
        workloads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let progress = |w: &Workload, line: &str| eprintln!("{w}: {line}");
    let waits = workloads
        .iter()
        .map(|w| rollout::wait(client, w, deadline, &progress));
    let results = futures_util::future::join_all(waits).await;
    results
        .into_iter()
        .zip(workloads)
        .map(|(r, w)| r.with_context(|| format!("waiting for the rollout of {w}")))
        .collect()
}

pub(crate) fn print_diagnosis(console: &Console, d: &Diagnosis) {
    console.start_group(&format!(
        "Diagnostics: {} — {}",
        d.object,
        d.failure.reason.word()
    ));
    eprintln!("{}", d.failure);
    if !d.pods.is_empty() {
        eprintln!("Pods:");
        for p in &d.pods {
            eprintln!(
                "  {} {}{}{}",
                p.name,
                p.phase,
                if p.ready { ", ready" } else { "" },
                p.scheduling
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
            for c in &p.containers {
                eprintln!(
                    "    {}: {}, {} restarts{}",
                    c.name,
                    c.state,
                    c.restarts,
                    c.last_termination
                        .as_deref()
                        .map(|t| format!(", last: {t}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if !d.events.is_empty() {
        eprintln!("Events:");
        for e in &d.events {
            eprintln!(
                "  {} {} {} {}{}",
                e.time.as_deref().unwrap_or("-"),
                e.type_,
                e.reason,
                e.object,
                if e.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.message)
                }
            );
        }
    }
    if let Some(logs) = &d.logs {
        eprintln!(
            "Last {} log lines of {}/{}{}:",
            logs.lines.len(),
            logs.pod,
            logs.container,
            if logs.previous {
                " (previous instance)"
            } else {
                ""
            }
        );
        for line in &logs.lines {
            eprintln!("│ {}", crate::actions::redact(line));
        }
    }
    console.end_group();
}

/// Why a rollback happens, which decides what a missing revision means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// After a failed deploy: a workload this deploy created has nothing to go back to, and is
    /// left as deployed (with a warning).
    DeployFailed,
    /// `promote rollback`: a revision that is not in the history is bad input (exit 2).
    Asked,
}

/// Undoes each workload (`kubectl rollout undo`), then waits for those rollouts. Returns whether
/// every workload is back at an earlier revision (or, after a failed deploy, had none).
///
/// # Errors
/// With [`Reason::Asked`], a revision not in the history is invalid input; otherwise only the
/// API failing while waiting.
#[allow(clippy::too_many_arguments)] // two call sites, each argument a different input
pub(crate) async fn roll_back(
    console: &Console,
    client: &Client,
    env: &Environment,
    workloads: &[Workload],
    to_revision: Option<i64>,
    reason: Reason,
    timeout: Duration,
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut waiting: Vec<Workload> = Vec::new();
    for w in workloads {
        let result = rollback::undo(client, w, to_revision).await;
        let entry = report
            .workloads
            .iter_mut()
            .find(|r| r.kind == w.kind && r.name == w.name);
        let rollback = match result {
            Ok(undo) if undo.skipped => RollbackReport {
                outcome: "skipped",
                to_revision: Some(undo.to_revision),
                revision_after: None,
                message: Some(format!(
                    "current template already matches revision {}",
                    undo.to_revision
                )),
                diagnosis: None,
            },
            Ok(undo) => {
                eprintln!("{w}: rolling back to revision {}", undo.to_revision);
                if !undo.deleted_pods.is_empty() {
                    report.warnings.push(format!(
                        "{w}: deleted the pods stuck on the failed revision ({}) so the StatefulSet can roll back",
                        undo.deleted_pods.join(", ")
                    ));
                }
                waiting.push(w.clone());
                RollbackReport {
                    outcome: "rolled-back",
                    to_revision: Some(undo.to_revision),
                    revision_after: None,
                    message: None,
                    diagnosis: None,
                }
            }
            Err(e) => match e {
                RollbackError::Refused(
                    UndoError::NoHistory(_) | UndoError::RevisionNotFound(_),
                ) if reason == Reason::Asked => {
                    return Err(Classified::invalid(
                        anyhow::Error::new(e).context(format!("rolling back {w}")),
                    ));
                }
                e if reason == Reason::Asked && e.is_not_found() => {
                    return Err(Classified::invalid(anyhow::anyhow!(
                        "{w} does not exist in namespace {}: nothing to roll back",
                        w.namespace
                    )));
                }
                RollbackError::Refused(UndoError::NoHistory(_)) => {
                    report.warnings.push(format!(
                        "{w}: no earlier revision to roll back to; left as deployed"
                    ));
                    RollbackReport {
                        outcome: "not-possible",
                        to_revision: None,
                        revision_after: None,
                        message: Some(e.to_string()),
                        diagnosis: None,
                    }
                }
                e => {
                    // The whole chain, as with the anyhow error undo used to return.
                    let e = anyhow::Error::new(e);
                    ok = false;
                    console.annotate(
                        &Annotation::error(format!("{w}: {e:#}"))
                            .title(format!("Rollback failed in {}", env.name)),
                    );
                    RollbackReport {
                        outcome: "failed",
                        to_revision,
                        revision_after: None,
                        message: Some(format!("{e:#}")),
                        diagnosis: None,
                    }
                }
            },
        };
        match entry {
            Some(entry) => entry.rollback = Some(rollback),
            None => report.workloads.push(WorkloadReport {
                object: w.to_string(),
                kind: w.kind,
                name: w.name.clone(),
                service: String::new(),
                revision_before: None,
                revision_after: None,
                image_before: None,
                image_after: None,
                changed: false,
                awaited: false,
                rollout: None,
                rollout_ms: None,
                completed_at: None,
                diagnosis: None,
                rollback: Some(rollback),
            }),
        }
    }
    let results = wait_all(client, &waiting, timeout).await?;
    for result in results {
        let failure = result.failure.clone();
        let diagnosis = match (&failure, result.outcome) {
            (Some(f), outcome) if outcome != RolloutOutcome::Complete => {
                ok = false;
                let d = diagnose::collect(
                    client,
                    &env.namespace,
                    &result.workload.to_string(),
                    &result.workload.name,
                    None,
                    f,
                )
                .await;
                console.annotate(
                    &Annotation::error(format!(
                        "{}: rollback did not roll out: {f}",
                        result.workload
                    ))
                    .title(format!("Rollback failed in {}", env.name)),
                );
                print_diagnosis(console, &d);
                Some(d)
            }
            _ => {
                eprintln!(
                    "{} rolled back{}",
                    result.workload,
                    result
                        .revision
                        .map(|r| format!(" (now revision {r})"))
                        .unwrap_or_default()
                );
                None
            }
        };
        if let Some(rollback) = report
            .workloads
            .iter_mut()
            .find(|w| w.kind == result.workload.kind && w.name == result.workload.name)
            .and_then(|w| w.rollback.as_mut())
        {
            rollback.revision_after = result.revision;
            if diagnosis.is_some() {
                rollback.outcome = "failed";
                rollback.diagnosis = diagnosis;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_serializes_with_kebab_outcomes() {
        let report = WorkloadReport {
            object: "deployment/web".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
            service: "web".into(),
            revision_before: Some(3),
            revision_after: Some(4),
            image_before: None,
            image_after: Some("r.io/web@sha256:x".into()),
            changed: true,
            awaited: true,
            rollout: Some(RolloutOutcome::TimedOut),
            rollout_ms: Some(10),
            completed_at: None,
            diagnosis: None,
            rollback: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rollout"], "timed-out");
        assert_eq!(json["kind"], "Deployment");
        assert_eq!(json["revision_before"], 3);
        assert!(json.get("image_before").is_none());
    }

    #[test]
    fn images_are_read_from_the_named_container() {
        let object = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "proxy:1"},
            {"name": "web", "image": "r.io/web@sha256:x"}
        ]}}}});
        assert_eq!(
            image_of(&object, "web").as_deref(),
            Some("r.io/web@sha256:x")
        );
        assert_eq!(image_of(&object, "other").as_deref(), Some("proxy:1"));
        assert_eq!(
            selector_of(
                &json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "api"}}}})
            ),
            Some("app=web,tier=api".into())
        );
    }
}
