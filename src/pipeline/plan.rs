//! `promote plan`: render what a deploy would apply, for every environment (or one), without a
//! cluster. The first step of every promotion, and on its own a review tool for config changes:
//! with `--base-config` it diffs the rendered objects against what the base branch's promotion
//! file renders, with `--diff-cluster` against the live cluster (a server-side dry run, like
//! `kubectl diff`), and with `--comment-on-pr` it keeps one comment on the pull request updated.
//! None of these extras can fail the plan: a base file that does not load, a cluster that does
//! not answer or a comment GitHub refuses is a warning, since the plan itself is the product.
//!
//! `fromEnv` Secrets are planned from the job's variables when they are set (a plan on a pull
//! request usually has none: then a warning says which Secrets were left out). Every Secret
//! value, the live cluster's included, is shown as `***` and a hash keyed for this run only, so
//! a diff tells a changed value from an unchanged one and reveals neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures_util::{StreamExt as _, stream};
use serde_json::Value;

use super::Runtime;
use crate::actions::{Annotation, Secret};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::{self, Config, ConfigErrors};
use crate::github::{self, COMMENT_BUDGET, GitHub, NoPullRequest, PLAN_COMMENT_MARKER};
use crate::kube::{
    APPLY_CONCURRENCY, ApiError, ApplyError, Force, Mode, ValueHasher, apply_one, get_live,
    hide_secret_values, pod_references,
};
use crate::outcome::{Outcome, chain};
use crate::plan::{
    Against, Change, ChangeSet, Changes, EnvironmentChanges, EnvironmentPlan, ObjectChange, Plan,
    PlanRequest, Unset, add_secrets, base_request, compare, diff_plans, display_name, identity,
    plan, strip_noise, to_yaml,
};
use crate::report;
use crate::say;

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
    // `planned` holds the Secret values, for the cluster's dry run only; `plan` is what is shown.
    let planned = planned_with_secrets(rt, &config, &request)?;
    let hasher = ValueHasher::random()
        .map_err(|e| anyhow::anyhow!("no randomness to hash Secret values with: {e}"))?;
    let mut plan = planned.clone();
    plan.hide_secret_values(&hasher);

    let mut changes = Changes::default();
    changes
        .warnings
        .extend(plan.environments.iter().filter_map(|e| {
            e.unplanned_secrets.as_ref().map(|missing| {
                format!("{missing}; planned without those Secrets (a deploy needs the variables)")
            })
        }));
    if let Some(base) = &args.base_config {
        match base_changes(rt, base, &request, &plan, &hasher) {
            Ok(set) => changes.sets.push(set),
            Err(warning) => changes.warnings.push(warning),
        }
    }
    if args.diff_cluster {
        let set = cluster_changes(rt, global, args, &config, &planned, &hasher).await;
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

    say!("{}", report::plan_text(&config, &plan).trim_end());
    let changes_text = report::changes_text(&changes);
    if !changes_text.is_empty() {
        say!("{}", changes_text.trim_end());
    }
    if let Some(dir) = &args.output_dir {
        let files = write_files(&plan, dir)?;
        say!(
            "\nWrote {} file{} to {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            dir.display()
        );
    }

    // The JSON report goes beside the rendered files, or to the runner's temp dir in Actions.
    let mut json = report::plan_json(&config, &plan);
    if !changes.is_empty() {
        json["changes"] = report::changes_json(&changes);
    }
    super::write_report(rt, "promote-plan.json", &json, args.output_dir.as_deref())?;
    if let [env] = plan.environments.as_slice()
        && let Some(url) = config.environment(&env.name).and_then(|e| e.url.clone())
    {
        rt.outputs.set("environment-url", url);
    }
    let pinned: Vec<String> = plan
        .images
        .values()
        .filter(|i| i.pinned)
        .map(|i| i.reference.pinned())
        .collect();
    let only = match pinned.as_slice() {
        [only] => Some(only.as_str()),
        _ => None,
    };
    super::set_release_outputs(rt.outputs, only, None);
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
        comment_on_pr(rt, global, &format!("{PLAN_COMMENT_MARKER}\n{body}")).await;
    }
    Ok(Outcome::Success)
}

/// The plan of `request` with the `fromEnv` Secrets whose variables are set.
///
/// # Errors
/// As [`plan`].
fn planned_with_secrets(
    rt: &Runtime<'_>,
    config: &Config,
    request: &PlanRequest,
) -> Result<Plan, ConfigErrors> {
    let mut planned = plan(config, request)?;
    let in_scope = planned
        .environments
        .iter()
        .filter_map(|e| config.environment(&e.name));
    let variables = super::secret_variables(rt, in_scope);
    add_secrets(config, &mut planned, &variables, Unset::LeftOut)?;
    Ok(planned)
}

/// Renders the base branch's promotion file with the head's request (and its Secrets, hidden
/// with `hasher` as the head's are) and diffs the two.
///
/// # Errors
/// The warning to show when the base file cannot be loaded or rendered: then the head is
/// planned alone (the pull request may be what fixes the base).
fn base_changes(
    rt: &Runtime<'_>,
    base: &Path,
    request: &PlanRequest,
    head: &Plan,
    hasher: &ValueHasher,
) -> Result<ChangeSet, String> {
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
        Some(request) => {
            let mut base_plan = planned_with_secrets(rt, &config, &request)
                .map_err(|e| invalid("cannot be rendered", &e))?;
            base_plan.hide_secret_values(hasher);
            base_plan
        }
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

/// Diffs every environment's rendered objects (`plan`, with its Secret values: the dry run
/// needs them) against its live cluster, hiding every Secret value on both sides with
/// `hasher`. Pre-deploy hook Jobs are left out: they are created fresh by each deploy, never
/// applied over a live one.
async fn cluster_changes(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &PlanArgs,
    config: &Config,
    plan: &Plan,
    hasher: &ValueHasher,
) -> ChangeSet {
    let mut environments = Vec::new();
    for env_plan in &plan.environments {
        let Some(env) = config.environment(&env_plan.name) else {
            continue;
        };
        let (objects, skipped) = match super::connect_to(rt, global, &args.cluster, env).await {
            Ok(connection) => {
                say!(
                    "Comparing {} with the live cluster: {}",
                    env.name,
                    connection.description
                );
                match live_changes(&connection.client, env_plan, hasher).await {
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

/// The live object and the server's dry-run result of applying the rendered one over it; on
/// failure, the live object if it could be read.
type LiveAndMerged = Result<(Option<Value>, Value), (Option<Value>, ApplyError)>;

/// The live object and the server's dry-run result of applying the rendered one over it.
async fn live_and_merged(client: &::kube::Client, object: &Value) -> LiveAndMerged {
    let live = get_live(client, object).await.map_err(|e| (None, e))?;
    match apply_one(client, object, Mode::DryRun, Force::No).await {
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
    hasher: &ValueHasher,
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
            .buffered(APPLY_CONCURRENCY)
            .collect::<Vec<_>>()
            .await,
    );
    let predecessors = predecessors(&objects, &results);
    let mut compared_with = BTreeMap::new();
    for (i, previous) in predecessors {
        let mut probe = objects[i].1.clone();
        probe["metadata"]["name"] = Value::from(previous.as_str());
        if let Ok(Some(live)) = get_live(client, &probe).await
            && let Ok((slot, _)) = &mut results[i]
        {
            *slot = Some(live);
            compared_with.insert(i, previous);
        }
    }
    Ok(objects
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, ((service, rendered), result))| {
            let mut change = live_change(&env.name, service, rendered, result, hasher);
            if let Some(previous) = compared_with.get(&i) {
                let kind = rendered["kind"].as_str().unwrap_or_default();
                change.note.get_or_insert_with(|| {
                    format!("a new version, compared with {kind}/{previous}, the one the live workloads read")
                });
            }
            change
        })
        .collect())
}

/// For each new object named by its content (a ConfigMap `web-config-<hash>`, a Secret version
/// `app-secrets-<hash>`) the version the live workloads read now, by index into `objects`: a
/// changed value then reads as that object changed, key by key, rather than as a new one.
fn predecessors(objects: &[(&str, &Value)], results: &[LiveAndMerged]) -> Vec<(usize, String)> {
    let live_workloads: Vec<&Value> = results
        .iter()
        .filter_map(|r| match r {
            Ok((Some(live), _)) | Err((Some(live), _)) => Some(live),
            _ => None,
        })
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("Deployment" | "StatefulSet" | "DaemonSet" | "CronJob")
            )
        })
        .collect();
    let mut found = Vec::new();
    for (i, ((_, rendered), result)) in objects.iter().zip(results).enumerate() {
        let (Ok((None, _)), Some(stem)) = (result, hashed_stem(rendered)) else {
            continue;
        };
        let kind = rendered["kind"].as_str().unwrap_or_default();
        let name = rendered["metadata"]["name"].as_str().unwrap_or_default();
        if let Some((_, previous)) = live_workloads
            .iter()
            .flat_map(|w| pod_references(w))
            .find(|(k, n)| *k == kind && n.starts_with(&stem) && n != name)
        {
            found.push((i, previous));
        }
    }
    found
}

/// `web-config-` for `web-config-<hash>`: the name of a content-addressed object without its
/// hash, or `None` for an object named by hand.
fn hashed_stem(object: &Value) -> Option<String> {
    let identity = identity(object);
    let (_, name) = identity.strip_suffix('*')?.split_once('/')?;
    Some(name.to_string())
}

/// One object's line in a cluster comparison, `kubectl diff` style: LIVE against MERGED,
/// Secret values hidden on both sides.
fn live_change(
    env: &str,
    service: &str,
    rendered: &Value,
    result: LiveAndMerged,
    hasher: &ValueHasher,
) -> ObjectChange {
    let name = display_name(rendered);
    let clean = |v: &Value| {
        let mut v = v.clone();
        strip_noise(&mut v);
        hide_secret_values(&mut v, hasher);
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
                Some((format!("rendered/{env}/{name}"), &clean(rendered))),
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

/// Creates or updates the plan's one comment on the pull request. Every failure is a warning:
/// the plan was made and is in the job summary either way.
async fn comment_on_pr(rt: &Runtime<'_>, global: &GlobalArgs, body: &str) {
    let warn = |message: String| {
        rt.console
            .annotate(&Annotation::warning(message).title("Plan comment not posted"));
    };
    let number = match github::pull_request_of_run(
        rt.ctx.event_name.as_deref(),
        rt.ctx.event_path.as_deref(),
    ) {
        Ok(n) => n,
        Err(NoPullRequest::OtherEvent(event)) => {
            rt.console.annotate(&Annotation::notice(format!(
                "comment-on-pr: this run is not for a pull request (event `{event}`); no comment posted"
            )));
            return;
        }
        Err(NoPullRequest::Unreadable(why)) => return warn(format!("comment-on-pr: {why}")),
    };
    let Some(token) = global.github_token() else {
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
        Ok(github) => {
            github
                .upsert_comment(number, PLAN_COMMENT_MARKER, body)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(url) => say!("\nPlan comment on pull request #{number}: {url}"),
        Err(e) => warn(github::comment_failure(number, &e)),
    }
}
