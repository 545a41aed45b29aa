//! `promote plan`: render what a deploy would apply, for every environment (or one), without a
//! cluster. The first step of every promotion, and on its own a review tool for config changes:
//! with `--base-config` it diffs the rendered objects against what the base branch's promotion
//! file renders, with `--diff-cluster` against the live cluster (a server-side dry run, like
//! `kubectl diff`), and with `--comment-on-pr` it keeps one comment on the pull request updated.
//! None of these extras can fail the plan: a base file that does not load, a cluster that does
//! not answer or a comment GitHub refuses is a warning, since the plan itself is the product.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures_util::{StreamExt as _, stream};
use serde_json::Value;

use super::Runtime;
use super::deploy::chain;
use crate::actions::{Annotation, Secret};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::{self, Config, ConfigError, ConfigErrors, yaml::Pos};
use crate::github::{GitHub, GitHubError};
use crate::kube::api::ApiError;
use crate::kube::apply::{self, ApplyError, Force, Mode};
use crate::kube::{self, ANNOTATION_CONFIG_HASH, Provenance, Rendered};
use crate::outcome::Outcome;
use crate::registry::Reference;
use crate::report::{self, diff::Diff};

/// The marker that finds the plan's sticky comment on a pull request again.
pub const COMMENT_MARKER: &str = "<!-- promote-action:plan -->";

/// GitHub refuses a comment body over 65,536 characters; a byte budget below it is safe for
/// any text (a character is at least one byte), with room for the marker and the footer.
const COMMENT_BUDGET: usize = 65_536 - 1_024;

/// `promote plan`.
pub async fn run_plan(
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

    let mut changes = Changes::default();
    if let Some(base) = &args.base_config {
        match base_changes(base, &request, &plan) {
            Ok(set) => changes.sets.push(set),
            Err(warning) => changes.warnings.push(warning),
        }
    }
    if args.diff_cluster {
        let set = cluster_changes(rt, global, args, &config, &plan).await;
        changes
            .warnings
            .extend(set.environments.iter().filter_map(|e| {
                e.skipped
                    .as_ref()
                    .map(|why| format!("{}: {why}", e.environment))
            }));
        changes.sets.push(set);
    }
    for warning in &changes.warnings {
        rt.console
            .annotate(&Annotation::warning(warning.clone()).title("promote plan"));
    }

    eprint!("{}", report::plan_text(&config, &plan));
    eprint!("{}", report::changes_text(&changes));
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
        let mut json = report::plan_json(&config, &plan);
        if !changes.is_empty() {
            json["changes"] = report::changes_json(&changes);
        }
        let json = serde_json::to_string_pretty(&json)?;
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
    report::plan_summary_with(&config, &plan, &changes)
        .write(rt.ctx)
        .context("writing the job summary")?;
    if args.comment_on_pr {
        let run_url = rt.ctx.run_url();
        // The summary's notes about trimmed sections name the job summary's limit; here the
        // comment's applies (the same length, so the budget still holds).
        let body = report::plan_comment(&config, &plan, &changes, run_url.as_deref())
            .render_with_budget(COMMENT_BUDGET)
            .replace("the 1 MiB job summary limit", "GitHub's comment size limit");
        comment_on_pr(rt, global, &format!("{COMMENT_MARKER}\n{body}")).await;
    }
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
            format!("sha-{}", crate::untrusted::short_sha(sha))
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

impl Plan {
    pub fn environment(&self, name: &str) -> Option<&EnvironmentPlan> {
        self.environments.iter().find(|e| e.name == name)
    }
}

/// How an object compares with what it was diffed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only the head has it (base comparison), or the cluster does not (cluster comparison).
    Added,
    /// Only the base has it: a deploy of the head would leave it behind, not delete it.
    Removed,
    Changed,
    Unchanged,
    /// It could not be compared (the server refused the dry run); `note` says why.
    Failed,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
            Change::Failed => "not compared",
        }
    }
}

/// One object's comparison.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    /// The service it belongs to, or `pre-deploy hooks`.
    pub service: String,
    /// `Kind/name`; `Kind/old → new` for a ConfigMap or hook Job whose hashed name changed.
    pub object: String,
    pub change: Change,
    /// The unified diff of the two sides as YAML; empty when unchanged or not compared.
    pub diff: String,
    pub added_lines: usize,
    pub removed_lines: usize,
    pub note: Option<String>,
}

/// One environment's comparison.
#[derive(Debug, Clone)]
pub struct EnvironmentChanges {
    pub environment: String,
    /// The head's objects in apply order, then those only the base has.
    pub objects: Vec<ObjectChange>,
    /// Why this environment was not compared at all (an unreachable cluster).
    pub skipped: Option<String>,
}

impl EnvironmentChanges {
    pub fn count(&self, change: Change) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }
}

/// What the rendered objects were compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Against {
    /// The promotion file of the base branch, rendered with the same request.
    Base(PathBuf),
    /// The live cluster, through a server-side dry run of each object.
    Cluster,
}

#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub against: Against,
    pub environments: Vec<EnvironmentChanges>,
}

/// Every comparison `plan` was asked for, and what kept any of them from being made.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub sets: Vec<ChangeSet>,
    pub warnings: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.warnings.is_empty()
    }
}

/// The group objects of pre-deploy hook Jobs are listed under.
pub const HOOKS: &str = "pre-deploy hooks";

/// Renders the base branch's promotion file with the head's request and diffs the two.
///
/// # Errors
/// The warning to show when the base file cannot be loaded or rendered: then the head is
/// planned alone (the pull request may be what fixes the base).
fn base_changes(base: &Path, request: &PlanRequest, head: &Plan) -> Result<ChangeSet, String> {
    let invalid = |what: &str, errors: &ConfigErrors| {
        let first = errors
            .0
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        format!(
            "the base promotion file {} {what} ({} error{}; first: {first}); planned the head without a diff",
            base.display(),
            errors.0.len(),
            if errors.0.len() == 1 { "" } else { "s" },
        )
    };
    let config = config::load(base).map_err(|e| invalid("is invalid", &e))?;
    let base_plan = match base_request(&config, request) {
        Some(request) => plan(&config, &request).map_err(|e| invalid("cannot be rendered", &e))?,
        // The environment or service asked for is new in the head: the base renders nothing.
        None => Plan {
            environments: Vec::new(),
            images: BTreeMap::new(),
        },
    };
    Ok(ChangeSet {
        against: Against::Base(base.to_path_buf()),
        environments: diff_plans(&base_plan, head),
    })
}

/// The head's request as the base file understands it: `None` when the base has no such
/// environment or service; images only for services the base declares.
fn base_request(base: &Config, request: &PlanRequest) -> Option<PlanRequest> {
    if let Some(env) = &request.environment
        && base.environment(env).is_none()
    {
        return None;
    }
    if let Some(service) = &request.service
        && base.service(service).is_none()
    {
        return None;
    }
    let images = request
        .images
        .iter()
        .filter(|text| match text.split_once('=') {
            Some((service, _)) => base.service(service.trim()).is_some(),
            None => true,
        })
        .cloned()
        .collect();
    Some(PlanRequest {
        images,
        ..request.clone()
    })
}

/// An object as the diff sees it: which service, what it is matched by, and its name.
struct Entry<'a> {
    service: &'a str,
    identity: String,
    object: &'a Value,
}

fn entries(env: &EnvironmentPlan) -> Vec<Entry<'_>> {
    let services = env.services.iter().flat_map(|r| {
        r.objects.iter().map(|o| Entry {
            service: &r.service,
            identity: identity(o),
            object: o,
        })
    });
    let hooks = env.hooks.iter().map(|o| Entry {
        service: HOOKS,
        identity: identity(o),
        object: o,
    });
    services.chain(hooks).collect()
}

/// What matches an object across two renderings: `Kind/name`, except for names that carry a
/// content hash, which change with every edit. A service's ConfigMap (`web-config-<hash>`) is
/// matched by its name without the hash, a hook Job by its hook, so a config edit reads as the
/// ConfigMap changed rather than one added and one removed.
pub fn identity(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if kind == "Job"
        && let Some(hook) = object["metadata"]["labels"]["promote.studysphere.dev/hook"].as_str()
    {
        return format!("Job/hook {hook}");
    }
    if kind == "ConfigMap"
        && let Some(hash) = object["metadata"]["annotations"][ANNOTATION_CONFIG_HASH].as_str()
        && !hash.is_empty()
        && let Some(stem) = name.strip_suffix(hash)
    {
        return format!("ConfigMap/{stem}*");
    }
    format!("{kind}/{name}")
}

/// `Kind/name` as the summary shows it.
fn display_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Diffs two plans environment by environment: the head's environments in order, then any
/// only the base has (every object removed).
pub fn diff_plans(base: &Plan, head: &Plan) -> Vec<EnvironmentChanges> {
    let mut names: Vec<&str> = head.environments.iter().map(|e| e.name.as_str()).collect();
    for env in &base.environments {
        if !names.contains(&env.name.as_str()) {
            names.push(&env.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let old = base.environment(name).map(entries).unwrap_or_default();
            let new = head.environment(name).map(entries).unwrap_or_default();
            let mut matched = vec![false; old.len()];
            let mut objects = Vec::new();
            for n in &new {
                let found = old
                    .iter()
                    .enumerate()
                    .find(|(i, o)| !matched[*i] && o.identity == n.identity);
                let before = found.map(|(i, o)| {
                    matched[i] = true;
                    o.object
                });
                let object = match before {
                    Some(b) if display_name(b) != display_name(n.object) => format!(
                        "{} → {}",
                        display_name(b),
                        n.object["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    _ => display_name(n.object),
                };
                objects.push(compare(
                    n.service,
                    object,
                    before.map(|b| (format!("base/{name}/{}", display_name(b)), b)),
                    Some((format!("head/{name}/{}", display_name(n.object)), n.object)),
                ));
            }
            for (o, _) in old.iter().zip(&matched).filter(|(_, m)| !**m) {
                objects.push(compare(
                    o.service,
                    display_name(o.object),
                    Some((format!("base/{name}/{}", display_name(o.object)), o.object)),
                    None,
                ));
            }
            EnvironmentChanges {
                environment: name.to_string(),
                objects,
                skipped: None,
            }
        })
        .collect()
}

/// Compares two sides as YAML; a missing side is `/dev/null`, as in `diff -N`.
fn compare(
    service: &str,
    object: String,
    old: Option<(String, &Value)>,
    new: Option<(String, &Value)>,
) -> ObjectChange {
    let yaml = |side: &Option<(String, &Value)>| {
        side.as_ref().map_or_else(String::new, |(_, v)| {
            serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot show as YAML: {e}\n"))
        })
    };
    let label = |side: &Option<(String, &Value)>| {
        side.as_ref()
            .map_or_else(|| "/dev/null".to_string(), |(l, _)| l.clone())
    };
    let (old_text, new_text) = (yaml(&old), yaml(&new));
    let diff = Diff::new(&old_text, &new_text);
    let change = match (&old, &new) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        _ if diff.is_empty() => Change::Unchanged,
        _ => Change::Changed,
    };
    ObjectChange {
        service: service.to_string(),
        object,
        change,
        diff: diff.unified(&label(&old), &label(&new), report::diff::CONTEXT),
        added_lines: diff.added(),
        removed_lines: diff.removed(),
        note: None,
    }
}

/// Removes what the API server maintains and a reader of a diff does not act on, as
/// `kubectl diff` does: managed fields, resource version, uid, generation, creation time,
/// status, and the Deployment controller's revision annotation.
pub fn strip_noise(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
        ] {
            metadata.remove(key);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
}

/// Diffs every environment's rendered objects against its live cluster. Pre-deploy hook Jobs
/// are left out: they are created fresh by each deploy, never applied over a live one.
async fn cluster_changes(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &PlanArgs,
    config: &Config,
    plan: &Plan,
) -> ChangeSet {
    let mut environments = Vec::new();
    for env_plan in &plan.environments {
        let Some(env) = config.environment(&env_plan.name) else {
            continue;
        };
        let (objects, skipped) = match super::deploy::connect_to(rt, global, &args.cluster, env)
            .await
        {
            Ok(connection) => {
                eprintln!(
                    "Comparing {} with the live cluster: {}",
                    env.name, connection.description
                );
                match live_changes(&connection.client, env_plan).await {
                    Ok(objects) => (objects, None),
                    Err(e) => (
                        Vec::new(),
                        Some(format!(
                            "not compared with the live cluster, which does not answer ({}): {}",
                            connection.server,
                            chain(&e)
                        )),
                    ),
                }
            }
            Err(e) => (
                Vec::new(),
                Some(format!("not compared with the live cluster: {e:#}")),
            ),
        };
        environments.push(EnvironmentChanges {
            environment: env.name.clone(),
            objects,
            skipped,
        });
    }
    ChangeSet {
        against: Against::Cluster,
        environments,
    }
}

/// The live object and the server's dry-run result of applying the rendered one over it.
async fn live_and_merged(
    client: &::kube::Client,
    object: &Value,
) -> Result<(Option<Value>, Value), (Option<Value>, ApplyError)> {
    let live = apply::get_live(client, object)
        .await
        .map_err(|e| (None, e))?;
    match apply::apply_one(client, object, Mode::DryRun, Force::No).await {
        Ok(applied) => Ok((live, applied.response)),
        Err(e) => Err((live, e)),
    }
}

/// Whether an error means the cluster as a whole is out of reach for this identity, rather
/// than this one object: no answer, or not signed in or not allowed.
fn cluster_unusable(e: &ApplyError) -> bool {
    match e {
        ApplyError::Read { source, .. } | ApplyError::Rejected { source, .. } => {
            matches!(source, ApiError::Transport(_)) || matches!(source.code(), Some(401 | 403))
        }
        _ => false,
    }
}

/// One environment against its cluster. The first object goes alone, so a cluster that does
/// not answer costs one round of retries and one warning, not one per object.
///
/// # Errors
/// The first object's error when the cluster is out of reach ([`cluster_unusable`]).
async fn live_changes(
    client: &::kube::Client,
    env: &EnvironmentPlan,
) -> Result<Vec<ObjectChange>, ApplyError> {
    let objects: Vec<(&str, &Value)> = env
        .services
        .iter()
        .flat_map(|r| r.objects.iter().map(move |o| (r.service.as_str(), o)))
        .collect();
    let Some((first, rest)) = objects.split_first() else {
        return Ok(Vec::new());
    };
    let first_result = live_and_merged(client, first.1).await;
    if let Err((_, e)) = &first_result
        && cluster_unusable(e)
    {
        let (_, e) = first_result.expect_err("checked above");
        return Err(e);
    }
    let mut results = vec![first_result];
    results.extend(
        stream::iter(rest)
            .map(|(_, o)| live_and_merged(client, o))
            .buffered(apply::CONCURRENCY)
            .collect::<Vec<_>>()
            .await,
    );
    Ok(objects
        .iter()
        .zip(results)
        .map(|((service, rendered), result)| live_change(&env.name, service, rendered, result))
        .collect())
}

/// One object's line in a cluster comparison, `kubectl diff` style: LIVE against MERGED.
fn live_change(
    env: &str,
    service: &str,
    rendered: &Value,
    result: Result<(Option<Value>, Value), (Option<Value>, ApplyError)>,
) -> ObjectChange {
    let name = display_name(rendered);
    let clean = |v: &Value| {
        let mut v = v.clone();
        strip_noise(&mut v);
        v
    };
    match result {
        Ok((live, merged)) => {
            let live = live.as_ref().map(clean);
            let merged = clean(&merged);
            compare(
                service,
                name.clone(),
                live.as_ref().map(|v| (format!("live/{env}/{name}"), v)),
                Some((format!("merged/{env}/{name}"), &merged)),
            )
        }
        // New, but the server would not even dry-run it (a namespace that does not exist
        // yet, say): show what would be sent.
        Err((None, e)) if !matches!(e, ApplyError::Read { .. }) => {
            let mut change = compare(
                service,
                name.clone(),
                None,
                Some((format!("rendered/{env}/{name}"), rendered)),
            );
            change.note = Some(format!("the server-side dry run failed: {}", chain(&e)));
            change
        }
        Err((_, e)) => ObjectChange {
            service: service.to_string(),
            object: name,
            change: Change::Failed,
            diff: String::new(),
            added_lines: 0,
            removed_lines: 0,
            note: Some(chain(&e)),
        },
    }
}

/// The pull request a `pull_request` / `pull_request_target` event is about, from its payload.
///
/// # Errors
/// Why the number could not be read, for the warning.
pub fn pull_request_number(payload: &str) -> Result<u64, String> {
    let event: Value =
        serde_json::from_str(payload).map_err(|e| format!("the event payload is not JSON: {e}"))?;
    event["pull_request"]["number"]
        .as_u64()
        .ok_or_else(|| "the event payload has no `pull_request.number`".to_string())
}

/// Creates or updates the plan's one comment on the pull request. Every failure is a warning:
/// the plan was made and is in the job summary either way.
async fn comment_on_pr(rt: &Runtime<'_>, global: &GlobalArgs, body: &str) {
    let warn = |message: String| {
        rt.console
            .annotate(&Annotation::warning(message).title("Plan comment not posted"));
    };
    let event = rt.ctx.event_name.as_deref().unwrap_or_default();
    if !matches!(event, "pull_request" | "pull_request_target") {
        rt.console.annotate(&Annotation::notice(format!(
            "comment-on-pr: this run is not for a pull request (event `{}`); no comment posted",
            if event.is_empty() { "none" } else { event }
        )));
        return;
    }
    let number = match rt.ctx.event_path.as_deref() {
        None => Err("GITHUB_EVENT_PATH is not set".to_string()),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the event payload {path}: {e}"))
            .and_then(|text| pull_request_number(&text)),
    };
    let number = match number {
        Ok(n) => n,
        Err(why) => return warn(format!("comment-on-pr: {why}")),
    };
    let Some(token) = global.github_token.as_deref().filter(|t| !t.is_empty()) else {
        return warn(
            "comment-on-pr: no GitHub token; the `github-token` input defaults to the job's token"
                .to_string(),
        );
    };
    let Some(repository) = rt.ctx.repository.as_deref() else {
        return warn("comment-on-pr: GITHUB_REPOSITORY is not set".to_string());
    };
    let token = Secret::new(token, rt.console);
    let result = match GitHub::new(&rt.ctx.api_url, &token, repository) {
        Ok(github) => github.upsert_comment(number, COMMENT_MARKER, body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(url) => eprintln!("\nPlan comment on pull request #{number}: {url}"),
        Err(e) => warn(comment_failure(number, &e)),
    }
}

/// The warning for a comment GitHub refused, with the permission it needs.
fn comment_failure(number: u64, e: &GitHubError) -> String {
    let hint = match e.status() {
        Some(401 | 403 | 404) => {
            "; the job needs `permissions: pull-requests: write` (pull requests from forks get a \
             read-only token)"
        }
        _ => "",
    };
    format!("could not comment on pull request #{number}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows-examples/studysphere/promotion.yml");
        config::load(&path).expect("the example loads")
    }

    fn render(config: &Config) -> Plan {
        let request = PlanRequest {
            images: vec![
                "auth-service=studysphere.azurecr.io/studysphere/auth-service@sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c".into(),
            ],
            ..PlanRequest::default()
        };
        plan(config, &request).expect("the example renders")
    }

    fn changed(env: &EnvironmentChanges) -> Vec<(&str, Change)> {
        env.objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
            .map(|o| (o.object.as_str(), o.change))
            .collect()
    }

    /// A config edit renames the hashed ConfigMap: it reads as that ConfigMap changed (and
    /// the Deployment that refers to it), not as one added and one removed.
    #[test]
    fn config_edits_read_as_the_configmap_changed() {
        let base = example();
        let mut head = base.clone();
        head.environments[0]
            .config
            .insert("LOG_LEVEL".into(), "trace".into());
        let changes = diff_plans(&render(&base), &render(&head));
        let names: Vec<&str> = changes.iter().map(|e| e.environment.as_str()).collect();
        assert_eq!(names, ["development", "testing", "production"]);
        let development = changed(&changes[0]);
        // Both ConfigMaps, the Deployments that refer to them, and the hook Job that does.
        assert_eq!(development.len(), 5, "{development:?}");
        assert!(development[4].0.starts_with("Job/migrate-database-"));
        for (object, change) in &development {
            assert_eq!(*change, Change::Changed, "{object}");
        }
        let config_map = &changes[0].objects[0];
        assert!(
            config_map
                .object
                .starts_with("ConfigMap/auth-service-config-")
                && config_map.object.contains(" → auth-service-config-"),
            "{}",
            config_map.object
        );
        assert!(
            config_map
                .diff
                .contains("-  LOG_LEVEL: debug\n+  LOG_LEVEL: trace\n"),
            "{}",
            config_map.diff
        );
        assert!(
            config_map
                .diff
                .starts_with("--- base/development/ConfigMap/auth-service-config-"),
            "{}",
            config_map.diff
        );
        assert_eq!((config_map.added_lines, config_map.removed_lines), (3, 3));
        for env in &changes[1..] {
            assert!(
                changed(env).is_empty(),
                "{}: {:?}",
                env.environment,
                changed(env)
            );
            assert!(env.objects.iter().all(|o| o.diff.is_empty()));
        }
    }

    #[test]
    fn environments_on_one_side_only_are_all_added_or_all_removed() {
        let base = example();
        let mut head = base.clone();
        let production = head.environments.pop().expect("three environments");
        let changes = diff_plans(&render(&base), &render(&head));
        let last = changes.last().expect("production is listed");
        assert_eq!(last.environment, "production");
        assert!(last.objects.iter().all(|o| o.change == Change::Removed));
        assert!(last.objects.iter().any(|o| o.service == HOOKS));

        let mut grown = head.clone();
        grown.environments.push(production);
        let changes = diff_plans(&render(&head), &render(&grown));
        let last = changes.last().expect("production is listed");
        assert!(last.objects.iter().all(|o| o.change == Change::Added));
        let first = &last.objects[0];
        assert!(
            first
                .diff
                .starts_with("--- /dev/null\n+++ head/production/")
        );
        assert_eq!(first.removed_lines, 0);
    }

    #[test]
    fn base_requests_drop_what_the_base_does_not_declare() {
        let base = example();
        let request = PlanRequest {
            images: vec![
                "auth-service=r/a@sha256:1".into(),
                "billing=r/b@sha256:2".into(),
            ],
            ..PlanRequest::default()
        };
        let kept = base_request(&base, &request).expect("every environment");
        assert_eq!(kept.images, ["auth-service=r/a@sha256:1"]);
        let new_env = PlanRequest {
            environment: Some("staging".into()),
            ..PlanRequest::default()
        };
        assert!(base_request(&base, &new_env).is_none());
        let new_service = PlanRequest {
            service: Some("billing".into()),
            ..PlanRequest::default()
        };
        assert!(base_request(&base, &new_service).is_none());
    }

    /// What the API server maintains goes; everything a deploy sets stays.
    #[test]
    fn noise_is_stripped_like_kubectl_diff() {
        let mut live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "staging",
                "uid": "1",
                "resourceVersion": "42",
                "generation": 3,
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "managedFields": [{"manager": "promote-action"}],
                "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "3", "team": "a"},
            },
            "spec": {"replicas": 2},
            "status": {"replicas": 2},
        });
        strip_noise(&mut live);
        assert_eq!(
            live,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "namespace": "staging",
                    "labels": {"app": "web"},
                    "annotations": {"team": "a"},
                },
                "spec": {"replicas": 2},
            })
        );
        let mut only_revision = json!({"metadata": {"name": "x", "annotations": {"deployment.kubernetes.io/revision": "1"}}});
        strip_noise(&mut only_revision);
        assert_eq!(only_revision, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn hashed_names_match_by_what_they_stand_for() {
        let cases = [
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "web-config-ab12", "annotations": {ANNOTATION_CONFIG_HASH: "ab12"}}}),
                "ConfigMap/web-config-*",
            ),
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "settings"}}),
                "ConfigMap/settings",
            ),
            (
                json!({"kind": "Job", "metadata": {"name": "migrate-1a2b3c4d", "labels": {"promote.studysphere.dev/hook": "migrate"}}}),
                "Job/hook migrate",
            ),
            (
                json!({"kind": "Deployment", "metadata": {"name": "web"}}),
                "Deployment/web",
            ),
        ];
        for (object, want) in cases {
            assert_eq!(identity(&object), want);
        }
    }

    #[test]
    fn pull_request_numbers_come_from_the_event_payload() {
        assert_eq!(
            pull_request_number(r#"{"action": "synchronize", "pull_request": {"number": 42}}"#),
            Ok(42)
        );
        assert!(
            pull_request_number(r#"{"ref": "refs/heads/main"}"#)
                .unwrap_err()
                .contains("pull_request.number")
        );
        assert!(
            pull_request_number("not json")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn refused_comments_name_the_permission() {
        let refused = GitHubError::Status {
            method: "POST".into(),
            path: "/repos/o/r/issues/7/comments".into(),
            status: 403,
            message: "Resource not accessible by integration".into(),
            accepted_permissions: None,
        };
        let text = comment_failure(7, &refused);
        assert!(
            text.starts_with("could not comment on pull request #7: POST"),
            "{text}"
        );
        assert!(
            text.contains("`permissions: pull-requests: write`"),
            "{text}"
        );
        let down = GitHubError::Transport {
            method: "GET".into(),
            path: "/x".into(),
            message: "connection refused".into(),
        };
        assert!(!comment_failure(7, &down).contains("permissions"));
    }
}
