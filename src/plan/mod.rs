//! The plan: what a deploy would apply, rendered from a validated [`Config`] and a request
//! (environment, service, images), with no cluster and no I/O. The second stage of input after
//! `config`: every object a deploy writes is in a plan first, so bad input stops here, before
//! anything is written anywhere.
//!
//! - [`plan`] renders the environments in scope; [`plan_environment`] renders one and hands
//!   back the environment it is for;
//! - [`parse_images`] reads `[SERVICE=]REF` arguments, for `plan`, `deploy` and `run` alike;
//! - [`add_secrets`] adds the `fromEnv` Secrets, made of the job's variables, and their hash
//!   on the pod templates; [`Plan::hide_secret_values`] makes such a plan fit to show;
//! - [`diff`](diff_plans) compares two plans object by object (the base branch's and the
//!   head's), with the model the cluster comparison of `promote plan` fills in too.

mod diff;
mod images;
mod secrets;
pub mod text_diff;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::{self, Config, ConfigError, ConfigErrors, Environment, Service, yaml::Pos};
use crate::kube::MissingVariables;
use crate::kube::{self, Provenance, Rendered};
use crate::kube::{Workload, WorkloadKind};
use crate::registry::Reference;

pub use diff::{
    Against, Change, ChangeSet, Changes, EnvironmentChanges, HOOKS, ObjectChange, base_request,
    compare, diff_plans, display_name, identity, strip_noise,
};
pub use images::parse_images;
pub use secrets::{Unset, add_secrets, require_secrets};

/// What to plan, as the user asked for it.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub environment: Option<String>,
    pub service: Option<String>,
    /// `[SERVICE=]REF` as typed.
    pub images: Vec<String>,
    pub provenance: Provenance,
}

impl PlanRequest {
    /// One environment (and perhaps one service of it), as every command that acts on an
    /// environment asks for it.
    pub fn for_environment(
        environment: &str,
        service: Option<&str>,
        images: &[String],
        provenance: Provenance,
    ) -> PlanRequest {
        PlanRequest {
            environment: Some(environment.to_string()),
            service: service.map(str::to_string),
            images: images.to_vec(),
            provenance,
        }
    }
}

/// The rendered objects of the environments in scope.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environments: Vec<EnvironmentPlan>,
    /// Service → the image it runs; `pinned` is false for a service given no digest.
    pub images: BTreeMap<String, PlannedImage>,
}

impl Plan {
    pub fn environment(&self, name: &str) -> Option<&EnvironmentPlan> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The services whose image is not pinned by digest.
    pub fn unpinned(&self) -> Vec<&str> {
        self.images
            .iter()
            .filter(|(_, i)| !i.pinned)
            .map(|(s, _)| s.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct PlannedImage {
    pub reference: Reference,
    pub pinned: bool,
}

#[derive(Debug, Clone)]
pub struct EnvironmentPlan {
    pub name: String,
    pub namespace: String,
    pub services: Vec<Rendered>,
    /// Pre-deploy hook Jobs, run before the services' objects are applied.
    pub hooks: Vec<serde_json::Value>,
    /// The `fromEnv` Secrets [`add_secrets`] left out, for variables without a value.
    pub unplanned_secrets: Option<MissingVariables>,
}

impl EnvironmentPlan {
    /// Every service's objects, in apply order within each service.
    pub fn objects(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.services.iter().flat_map(|r| r.objects.iter())
    }

    /// Every service's objects with the service they belong to.
    pub fn objects_by_service(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.services
            .iter()
            .flat_map(|r| r.objects.iter().map(move |o| (r.service.as_str(), o)))
    }

    pub fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|r| r.service.clone()).collect()
    }

    /// The Deployments, StatefulSets and DaemonSets among the objects: what a rollout waits for
    /// and a rollback undoes. The one place a workload's kind is read from rendered JSON.
    pub fn workloads(&self) -> Vec<PlannedWorkload<'_>> {
        self.objects_by_service()
            .filter_map(|(service, object)| {
                let kind = WorkloadKind::parse(object["kind"].as_str()?)?;
                Some(PlannedWorkload {
                    service,
                    workload: Workload {
                        kind,
                        namespace: self.namespace.clone(),
                        name: object["metadata"]["name"].as_str()?.to_string(),
                    },
                    object,
                })
            })
            .collect()
    }
}

/// A workload of the plan, with the service it belongs to and its rendered object.
#[derive(Debug, Clone)]
pub struct PlannedWorkload<'p> {
    pub service: &'p str,
    pub workload: Workload,
    pub object: &'p serde_json::Value,
}

/// One environment's plan, with the environment it renders.
#[derive(Debug, Clone)]
pub struct Target<'c> {
    pub environment: &'c Environment,
    pub plan: Plan,
}

impl Target<'_> {
    /// The environment's rendered objects.
    pub fn objects(&self) -> &EnvironmentPlan {
        &self.plan.environments[0]
    }
}

/// Renders the plan. Bad requests and objects that cannot be rendered are config errors: the
/// whole plan is validated before anything is written anywhere.
///
/// # Errors
/// Every problem found: unknown environment or service, bad image arguments, objects that cannot
/// be rendered.
pub fn plan(config: &Config, request: &PlanRequest) -> Result<Plan, ConfigErrors> {
    let mut errors = Vec::new();
    let environments: Vec<&Environment> = match &request.environment {
        Some(name) => match environment(config, name) {
            Ok(env) => vec![env],
            Err(e) => {
                errors.extend(e.0);
                Vec::new()
            }
        },
        None => config.environments.iter().collect(),
    };
    render(config, request, &environments, errors)
}

/// [`plan`] for the one environment `name`, handing the environment back with its objects.
///
/// # Errors
/// As [`plan`].
pub fn plan_environment<'c>(
    config: &'c Config,
    name: &str,
    request: &PlanRequest,
) -> Result<Target<'c>, ConfigErrors> {
    let environment = environment(config, name)?;
    let request = PlanRequest {
        environment: Some(name.to_string()),
        ..request.clone()
    };
    let plan = render(config, &request, &[environment], Vec::new())?;
    Ok(Target { environment, plan })
}

/// The environment `name` of the promotion file, or an input error naming the ones it declares.
///
/// # Errors
/// One input error (no file position: the name came from an input).
pub fn environment<'c>(config: &'c Config, name: &str) -> Result<&'c Environment, ConfigErrors> {
    config.environment(name).ok_or_else(|| {
        ConfigErrors(vec![input_error(
            "environment",
            unknown(
                "environment",
                name,
                config.environments.iter().map(|e| e.name.as_str()),
            ),
        )])
    })
}

/// The service named on the command line, or the error `--service` gets for a name the file
/// does not have.
///
/// # Errors
/// An unknown name, with the names there are.
pub fn service<'c>(config: &'c Config, name: &str) -> Result<&'c Service, ConfigErrors> {
    config.service(name).ok_or_else(|| {
        ConfigErrors(vec![input_error(
            "service",
            unknown(
                "service",
                name,
                config.services.iter().map(|s| s.name.as_str()),
            ),
        )])
    })
}

fn render(
    config: &Config,
    request: &PlanRequest,
    environments: &[&Environment],
    mut errors: Vec<ConfigError>,
) -> Result<Plan, ConfigErrors> {
    let services: Vec<&Service> = match &request.service {
        Some(name) => match service(config, name) {
            Ok(s) => vec![s],
            Err(ConfigErrors(mut unknown_service)) => {
                errors.append(&mut unknown_service);
                Vec::new()
            }
        },
        None => config.services.iter().collect(),
    };
    let in_scope: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let images = match images::resolve(config, &in_scope, &request.images, &request.provenance) {
        Ok(images) => images,
        Err(messages) => {
            errors.extend(messages.into_iter().map(|m| input_error("image", m)));
            BTreeMap::new()
        }
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let references: BTreeMap<String, Reference> = images
        .iter()
        .map(|(k, v)| (k.clone(), v.reference.clone()))
        .collect();
    let mut planned = Vec::new();
    for env in environments {
        let mut rendered = Vec::new();
        for service in &services {
            match kube::render_service(
                env,
                service,
                &references[&service.name],
                &request.provenance,
            ) {
                Ok(r) => rendered.push(r),
                Err(e) => errors.extend(e),
            }
        }
        errors.extend(strategy_errors(config, env, &rendered));
        // Hooks run with every service's image, so they belong to the whole environment.
        let hooks = if request.service.is_none() {
            kube::render_hooks(config, env, &references, &rendered)
        } else {
            Vec::new()
        };
        planned.push(EnvironmentPlan {
            name: env.name.clone(),
            namespace: env.namespace.clone(),
            services: rendered,
            hooks,
            unplanned_secrets: None,
        });
    }
    if errors.is_empty() {
        Ok(Plan {
            environments: planned,
            images,
        })
    } else {
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

/// Blue-green and canary replace Deployments only: a StatefulSet (stable identities and
/// volumes) or a DaemonSet (one pod per node) cannot run two releases side by side, so a
/// service in a blue-green or canary environment with one of them is a config error.
fn strategy_errors(config: &Config, env: &Environment, rendered: &[Rendered]) -> Vec<ConfigError> {
    if env.strategy == config::Strategy::Rolling {
        return Vec::new();
    }
    rendered
        .iter()
        .flat_map(|r| {
            r.objects.iter().filter_map(move |o| {
                let kind = o["kind"].as_str()?;
                matches!(kind, "StatefulSet" | "DaemonSet").then(|| ConfigError {
                    file: config.file.clone(),
                    pos: env.pos_of("strategy"),
                    field: format!("environments.{}.strategy", env.name),
                    message: format!(
                        "`strategy: {}` replaces Deployments only, and service `{}` has {kind} `{}`; use `strategy: rolling` for this environment or move the {kind} to a service of its own in a rolling environment",
                        env.strategy.word(),
                        r.service,
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                })
            })
        })
        .collect()
}

/// An error about an input (no file position).
fn input_error(field: &str, message: String) -> ConfigError {
    ConfigError {
        file: PathBuf::new(),
        pos: Pos { line: 0, col: 0 },
        field: field.to_string(),
        message,
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    format!(
        "unknown {what} `{name}` (the promotion file declares: {})",
        known.join(", ")
    )
}

/// One multi-document YAML stream of objects, in apply order.
///
/// # Errors
/// When an object cannot be written as YAML.
pub fn to_yaml(objects: &[serde_json::Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object).context("serializing an object to YAML")?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
