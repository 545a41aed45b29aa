//! `promote plan`: render what a deploy would apply, for every environment (or one), without a
//! cluster. The first step of every promotion, and on its own a review tool for config changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Runtime;
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::{self, Config, ConfigError, ConfigErrors, yaml::Pos};
use crate::kube::{self, Provenance, Rendered};
use crate::outcome::Outcome;
use crate::registry::Reference;
use crate::report;

/// `promote plan`.
pub fn run_plan(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &PlanArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let request = PlanRequest {
        environment: args.environment.clone(),
        service: args.service.clone(),
        images: args.images.clone(),
        provenance: rt.provenance(),
    };
    let plan = plan(&config, &request)?;

    eprint!("{}", report::plan_text(&config, &plan));
    if let Some(dir) = &args.output_dir {
        let files = write_files(&plan, dir)?;
        eprintln!(
            "\nWrote {} file{} to {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            dir.display()
        );
    }

    // The JSON report goes beside the rendered files, or to the runner's temp dir in Actions.
    let report_dir = args
        .output_dir
        .clone()
        .or_else(|| rt.ctx.runner_temp.as_ref().map(PathBuf::from));
    if let Some(dir) = report_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("promote-plan.json");
        let json = serde_json::to_string_pretty(&report::plan_json(&config, &plan))?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        rt.outputs.set("report-path", path.display().to_string());
    }
    if let [env] = plan.environments.as_slice()
        && let Some(url) = config.environment(&env.name).and_then(|e| e.url.clone())
    {
        rt.outputs.set("environment-url", url);
    }
    let pinned: Vec<_> = plan.images.values().filter(|i| i.pinned).collect();
    if let [only] = pinned.as_slice() {
        rt.outputs.set("image", only.reference.pinned());
        if let Some(d) = &only.reference.digest {
            rt.outputs.set("digest", d.to_string());
        }
    }
    report::plan_summary(&config, &plan)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(Outcome::Success)
}

/// What to plan, as the user asked for it.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub environment: Option<String>,
    pub service: Option<String>,
    /// `[SERVICE=]REF` as typed.
    pub images: Vec<String>,
    pub provenance: Provenance,
}

/// The rendered objects of the environments in scope.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environments: Vec<EnvironmentPlan>,
    /// Service → the image it runs; `pinned` is false for a service given no digest.
    pub images: BTreeMap<String, PlannedImage>,
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
}

/// Renders the plan. Bad requests and objects that cannot be rendered are config errors: the
/// whole plan is validated before anything is written anywhere.
pub fn plan(config: &Config, request: &PlanRequest) -> Result<Plan, ConfigErrors> {
    let mut errors = Vec::new();
    let input_error = |field: &str, message: String| ConfigError {
        file: PathBuf::new(),
        pos: Pos { line: 0, col: 0 },
        field: field.to_string(),
        message,
    };

    let environments: Vec<_> = match &request.environment {
        Some(name) => match config.environment(name) {
            Some(env) => vec![env],
            None => {
                errors.push(input_error(
                    "environment",
                    unknown(
                        "environment",
                        name,
                        config.environments.iter().map(|e| e.name.as_str()),
                    ),
                ));
                Vec::new()
            }
        },
        None => config.environments.iter().collect(),
    };
    let services: Vec<_> = match &request.service {
        Some(name) => match config.service(name) {
            Some(s) => vec![s],
            None => {
                errors.push(input_error(
                    "service",
                    unknown(
                        "service",
                        name,
                        config.services.iter().map(|s| s.name.as_str()),
                    ),
                ));
                Vec::new()
            }
        },
        None => config.services.iter().collect(),
    };
    let in_scope: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let images = match resolve_images(config, &in_scope, &request.images, &request.provenance) {
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

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    format!(
        "unknown {what} `{name}` (the promotion file declares: {})",
        known.join(", ")
    )
}

/// `--image` values → one reference per service in scope. A service without one runs its
/// repository at the commit's short sha (or `latest`), shown as not pinned.
fn resolve_images(
    config: &Config,
    in_scope: &[&str],
    given: &[String],
    provenance: &Provenance,
) -> Result<BTreeMap<String, PlannedImage>, Vec<String>> {
    let mut errors = Vec::new();
    let mut images = BTreeMap::new();
    for text in given {
        let (service, reference) = match text.split_once('=') {
            Some((service, reference)) => (service.trim().to_string(), reference.trim()),
            None if in_scope.len() == 1 => (in_scope[0].to_string(), text.trim()),
            None => {
                errors.push(format!(
                    "{text:?}: name the service as SERVICE=REF; this step covers {}",
                    in_scope.join(", ")
                ));
                continue;
            }
        };
        if config.service(&service).is_none() {
            let names = config.services.iter().map(|s| s.name.as_str());
            errors.push(format!("{text:?}: {}", unknown("service", &service, names)));
            continue;
        }
        let reference = match Reference::parse(reference) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let pinned = reference.digest.is_some();
        if images
            .insert(service.clone(), PlannedImage { reference, pinned })
            .is_some()
        {
            errors.push(format!("two images given for service `{service}`"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let tag = provenance
        .git_sha
        .as_deref()
        .map_or("latest".to_string(), |sha| {
            format!("sha-{}", &sha[..sha.len().min(7)])
        });
    for name in in_scope {
        let service = config.service(name).expect("in scope means declared");
        images
            .entry(service.name.clone())
            .or_insert_with(|| PlannedImage {
                reference: Reference {
                    registry: config.registry.clone(),
                    repository: service.image.clone(),
                    tag: Some(tag.clone()),
                    digest: None,
                },
                pinned: false,
            });
    }
    images.retain(|name, _| in_scope.contains(&name.as_str()));
    Ok(images)
}

/// One multi-document YAML stream of objects, in apply order.
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

/// Writes `<dir>/<environment>/<service>.yaml` (and `hooks.yaml`), returning the files written.
pub fn write_files(plan: &Plan, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for env in &plan.environments {
        let env_dir = dir.join(&env.name);
        std::fs::create_dir_all(&env_dir)
            .with_context(|| format!("creating {}", env_dir.display()))?;
        let mut files: Vec<(PathBuf, &[serde_json::Value])> = env
            .services
            .iter()
            .map(|r| {
                (
                    env_dir.join(format!("{}.yaml", r.service)),
                    r.objects.as_slice(),
                )
            })
            .collect();
        if !env.hooks.is_empty() {
            files.push((env_dir.join("hooks.yaml"), env.hooks.as_slice()));
        }
        for (path, objects) in files {
            std::fs::write(&path, to_yaml(objects)?)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}
