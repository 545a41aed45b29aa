//! The writes: hooks with the ConfigMaps and Secrets they read, the apply, the wait for every
//! changed workload, the environment's checks, and on failure the diagnosis and the rollback
//! policy.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use kube::Client;
use serde_json::Value;

use super::decide::{self, Reason, Verdict};
use super::leave_blue_green::leave_blue_green;
use super::workloads::{Before, container_of, image_of, read_before, selector_of};
use super::{Deploy, Locked, metrics, roll_back};
use crate::actions::{Annotation, Console};
use crate::checks;
use crate::checks::analysis::Track;
use crate::config::{self, OnFailure};
use crate::kube::{
    APPLY_CONCURRENCY, ApplyBatch as Batch, ApplyError, Diagnosis, HookOutcome, Mode,
    RolloutOutcome, RolloutResult, Workload, apply_all, collect_diagnosis, object_ref,
    wait_for_rollout,
};
use crate::outcome::chain;
use crate::outcome::{Classified, Outcome};
use crate::report::{self, DeployReport, Rejection, WorkloadReport};
use crate::say;

/// The environment's checks for this deploy, unless there are none or `--no-verify`.
pub(super) fn verification<'a>(
    deploy: &Deploy<'a>,
    client: &Client,
    secrets: &'a (dyn Fn(&str) -> Option<crate::actions::Secret> + Sync),
) -> Option<checks::Verification<'a>> {
    let service = deploy.options.service.as_deref();
    (deploy.options.verify && checks::has_checks(deploy.environment, service)).then(|| {
        checks::Verification {
            console: deploy.console,
            config: deploy.config,
            environment: deploy.environment,
            service: deploy.options.service.as_deref(),
            client: Some(client.clone()),
            secrets,
            images: deploy
                .plan
                .services
                .iter()
                .map(|r| (r.service.clone(), r.image.clone()))
                .collect(),
        }
    })
}

/// Hooks, apply, wait, verify; on failure, diagnose and apply the rollback policy.
pub(super) async fn roll_out_rolling(
    deploy: &Deploy<'_>,
    locked: &Locked,
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    let client = &locked.client;
    if let Err(why) = leave_blue_green(deploy, client, report).await? {
        report.summary = format!(
            "moving {} back to rolling failed ({why}); the serving colour keeps serving, unchanged",
            deploy.environment.name
        );
        return Ok(Outcome::Failed);
    }
    let before = read_all_before(deploy, client).await?;
    if !deploy.plan.hooks.is_empty() && !run_hooks(deploy, client, report).await? {
        return Ok(Outcome::Failed);
    }
    let apply_failed = !apply_and_record(deploy, client, &before, report).await;
    let awaited: Vec<Workload> = report
        .workloads
        .iter()
        .filter(|w| w.awaited)
        .map(|w| Workload {
            kind: w.kind,
            namespace: deploy.environment.namespace.clone(),
            name: w.name.clone(),
        })
        .collect();
    for w in report.workloads.iter().filter(|w| !w.awaited) {
        say!("{}: unchanged", w.object);
    }
    let results = if apply_failed {
        Vec::new()
    } else {
        wait_all(client, &awaited, deploy.options.timeout).await?
    };
    let rolled_out = record_rollouts(report, &results) && !apply_failed;
    for w in report.workloads.iter_mut().filter(|w| !w.awaited) {
        w.revision_after = w.revision_before;
    }
    if rolled_out {
        return verify(deploy, client, &awaited, report).await;
    }
    diagnose_failures(deploy, client, deploy.plan.objects(), &results, report).await;
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
    fail_and_roll_back(deploy, client, &awaited, report, &why).await
}

/// Where every workload stands before the apply, with the service it belongs to.
async fn read_all_before(
    deploy: &Deploy<'_>,
    client: &Client,
) -> anyhow::Result<BTreeMap<Workload, (String, Before)>> {
    let mut before = BTreeMap::new();
    for planned in deploy.plan.workloads() {
        let container = container_of(deploy.config, planned.service);
        let state = read_before(client, planned.object, &container).await?;
        before.insert(planned.workload, (planned.service.to_string(), state));
    }
    Ok(before)
}

/// Applies `objects` (a write) and records each applied object once on the report; a rejection
/// is reported. Callers decide what a rejection stops.
pub(super) async fn apply_recorded(
    deploy: &Deploy<'_>,
    client: &Client,
    objects: &[Value],
    report: &mut DeployReport,
) -> Batch {
    let batch = apply_all(
        client,
        objects,
        Mode::Write,
        deploy.options.apply_force(),
        APPLY_CONCURRENCY,
    )
    .await;
    for a in &batch.applied {
        if !report.applied.contains(&a.object) {
            report.applied.push(a.object.clone());
        }
    }
    if !batch.errors.is_empty() {
        reject(deploy.console, report, &batch.errors);
    }
    batch
}

/// The hooks, after the ConfigMaps and Secrets they read. Returns whether they all passed.
pub(super) async fn run_hooks(
    deploy: &Deploy<'_>,
    client: &Client,
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let console = deploy.console;
    let sources = decide::hook_sources(&deploy.plan.hooks, deploy.plan.objects());
    let batch = apply_recorded(deploy, client, &sources, report).await;
    if !batch.errors.is_empty() {
        anyhow::bail!("applying the configuration the hooks read failed");
    }
    report.hooks = crate::kube::run_hooks(client, console, &deploy.plan.hooks).await?;
    let Some(failed) = report
        .hooks
        .iter()
        .find(|h| h.outcome == HookOutcome::Failed)
    else {
        return Ok(true);
    };
    let message = failed
        .diagnosis
        .as_ref()
        .map_or_else(|| "failed".to_string(), |d| d.failure.to_string());
    console.annotate(
        &Annotation::error(format!("hook {} ({}): {message}", failed.name, failed.job))
            .title("Pre-deploy hook failed"),
    );
    if let Some(d) = &failed.diagnosis {
        show_diagnosis(console, d);
    }
    report.summary = format!(
        "pre-deploy hook {} failed; the rollout was not started",
        failed.name
    );
    Ok(false)
}

/// Applies every object and records each workload: changed or not, awaited or not. Returns
/// whether every object was applied.
async fn apply_and_record(
    deploy: &Deploy<'_>,
    client: &Client,
    before: &BTreeMap<Workload, (String, Before)>,
    report: &mut DeployReport,
) -> bool {
    let objects: Vec<Value> = deploy.plan.objects().cloned().collect();
    let batch = apply_recorded(deploy, client, &objects, report).await;
    for applied in batch.applied.iter().filter(|a| a.took_back_rollback_fields) {
        report.warnings.push(format!(
            "{}: took back the fields an earlier rollback set",
            applied.object
        ));
    }
    say!(
        "Applied {} objects ({:.1}s)",
        batch.applied.len(),
        batch.elapsed.as_secs_f64()
    );
    let generations: BTreeMap<&str, Option<i64>> = batch
        .applied
        .iter()
        .map(|a| (a.object.as_str(), a.generation))
        .collect();
    for planned in deploy.plan.workloads() {
        let workload = &planned.workload;
        let (service, was) = before.get(workload).cloned().unwrap_or_default();
        let applied = generations
            .get(object_ref(planned.object).as_str())
            .copied();
        let strategy = planned
            .object
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str);
        let decision = decide::awaited(&was, applied, strategy);
        if decision.not_waitable {
            report.warnings.push(format!(
                "{workload}: rollout status is only available for the RollingUpdate strategy; not waited for"
            ));
        }
        let mut entry =
            WorkloadReport::named(workload.to_string(), workload.kind, workload.name.clone());
        entry.service = service;
        entry.revision_before = was.revision;
        entry.image_before = was.image;
        entry.image_after = image_of(
            planned.object,
            &container_of(deploy.config, planned.service),
        );
        entry.changed = decision.changed;
        entry.awaited = decision.awaited;
        report.workloads.push(entry);
    }
    if batch.errors.is_empty() {
        true
    } else {
        reject(deploy.console, report, &batch.errors);
        false
    }
}

/// Records each rollout's result. Returns whether they all completed.
fn record_rollouts(report: &mut DeployReport, results: &[RolloutResult]) -> bool {
    let mut all_complete = true;
    for result in results {
        let Some(entry) = report.workload_mut(result.workload.kind, &result.workload.name) else {
            continue;
        };
        entry.rollout = Some(result.outcome);
        entry.rollout_ms = Some(result.elapsed.as_millis());
        entry.revision_after = result.revision;
        if result.outcome == RolloutOutcome::Complete {
            entry.completed_at = Some(Timestamp::now());
            say!(
                "{} rolled out{} in {:.1}s",
                result.workload,
                result
                    .revision
                    .map(|r| format!(" (revision {r})"))
                    .unwrap_or_default(),
                result.elapsed.as_secs_f64()
            );
        } else {
            all_complete = false;
        }
    }
    all_complete
}

/// After a complete rollout: the environment's checks, right away so a soak watches the new
/// pods from their start; a failed check rolls back by the policy.
async fn verify(
    deploy: &Deploy<'_>,
    client: &Client,
    awaited: &[Workload],
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    report.summary = format!(
        "deployed {} to {} ({} workload{} rolled out)",
        report
            .workloads
            .iter()
            .filter_map(|w| w.image_after.clone())
            .collect::<Vec<_>>()
            .join(", "),
        deploy.environment.name,
        awaited.len(),
        if awaited.len() == 1 { "" } else { "s" }
    );
    // The analysis window starts when the new pods are all serving.
    let serving_since = Timestamp::now();
    let secrets = |variable: &str| deploy.ctx.read_secret(variable, deploy.console);
    if let Some(verification) = verification(deploy, client, &secrets) {
        let verified = checks::verify(&verification)
            .await
            .map_err(Classified::invalid)?;
        let passed = verified.passed;
        let why = verified.summary.clone();
        report.verification = Some(verified);
        if !passed {
            let why = format!("verification failed: {why}");
            return fail_and_roll_back(deploy, client, awaited, report, &why).await;
        }
        report.summary.push_str(&format!("; verified ({why})"));
    }
    if let Some(analysed) = metrics::analyse_window(deploy, serving_since, Track::Stable).await {
        report.analysis = analysed.reports;
        if !analysed.passed {
            let why = format!("metric analysis failed: {}", analysed.summary);
            return fail_and_roll_back(deploy, client, awaited, report, &why).await;
        }
        report
            .summary
            .push_str(&format!("; metrics within bounds ({})", analysed.summary));
    }
    say!("Done: {}", report.summary);
    Ok(Outcome::Success)
}

/// Diagnoses every rollout that did not complete: pods (found by the selector of the workload
/// among `objects`, the ones written), events, the failing container's log.
pub(super) async fn diagnose_failures<'o>(
    deploy: &Deploy<'_>,
    client: &Client,
    objects: impl IntoIterator<Item = &'o Value>,
    results: &[RolloutResult],
    report: &mut DeployReport,
) {
    let env = deploy.environment;
    let selectors: BTreeMap<String, String> = objects
        .into_iter()
        .filter_map(|o| Some((object_ref(o), selector_of(o)?)))
        .collect();
    for result in results
        .iter()
        .filter(|r| r.outcome != RolloutOutcome::Complete)
    {
        let Some(failure) = &result.failure else {
            continue;
        };
        let selector = selectors.get(&result.workload.to_string());
        let diagnosis = collect_diagnosis(
            client,
            &env.namespace,
            &result.workload.to_string(),
            &result.workload.name,
            selector.map(String::as_str),
            failure,
        )
        .await;
        deploy.console.annotate(
            &Annotation::error(format!("{}: {failure}", result.workload))
                .title(format!("Rollout failed in {}", env.name)),
        );
        show_diagnosis(deploy.console, &diagnosis);
        if let Some(entry) = report.workload_mut(result.workload.kind, &result.workload.name) {
            entry.diagnosis = Some(diagnosis);
        }
    }
}

/// After a failed rollout or verification: by the environment's policy, keep it (exit 1) or
/// roll every changed workload back and say whether that worked (exit 1) or not (exit 4).
pub(super) async fn fail_and_roll_back(
    deploy: &Deploy<'_>,
    client: &Client,
    changed: &[Workload],
    report: &mut DeployReport,
    why: &str,
) -> anyhow::Result<Outcome> {
    let env = deploy.environment;
    let verdict = if env.on_failure == OnFailure::Keep {
        Verdict::Kept
    } else {
        let ok = roll_back(
            deploy.console,
            client,
            env,
            changed,
            None,
            Reason::DeployFailed,
            deploy.options.timeout,
            report,
        )
        .await?;
        let outcomes: Vec<_> = report
            .workloads
            .iter()
            .filter_map(|w| w.rollback.as_ref().map(|r| r.outcome))
            .collect();
        Verdict::after_rollback(ok, &outcomes)
    };
    report.summary = verdict.summary(&env.name, why);
    let annotation = match verdict {
        Verdict::Kept => None,
        Verdict::FirstDeploy => Some(
            Annotation::warning(report.summary.clone()).title(format!("Failed in {}", env.name)),
        ),
        Verdict::RolledBack => Some(
            Annotation::warning(report.summary.clone()).title(format!("Rolled back {}", env.name)),
        ),
        Verdict::RollbackFailed => Some(
            Annotation::error(report.summary.clone())
                .title(format!("Rollback failed in {}", env.name)),
        ),
    };
    if let Some(annotation) = annotation {
        deploy.console.annotate(&annotation);
    }
    Ok(match verdict {
        Verdict::RollbackFailed => Outcome::RollbackFailed,
        _ => Outcome::Failed,
    })
}

/// Records and annotates what the API server refused, in its words.
pub(super) fn reject(console: &Console, report: &mut DeployReport, errors: &[ApplyError]) {
    for e in errors {
        let message = chain(e);
        console.annotate(&Annotation::error(message.clone()).title("Rejected by the API server"));
        report.rejected.push(Rejection {
            object: e.object().to_string(),
            message,
        });
    }
}

/// Waits for all `workloads` concurrently, one progress line per workload and change.
pub(super) async fn wait_all(
    client: &Client,
    workloads: &[Workload],
    timeout: Duration,
) -> anyhow::Result<Vec<RolloutResult>> {
    if workloads.is_empty() {
        return Ok(Vec::new());
    }
    say!(
        "Waiting up to {} for {}",
        config::units::format_duration(timeout),
        workloads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let progress = |w: &Workload, line: &str| say!("{w}: {line}");
    let waits = workloads
        .iter()
        .map(|w| wait_for_rollout(client, w, deadline, &progress));
    let results = futures_util::future::join_all(waits).await;
    results
        .into_iter()
        .zip(workloads)
        .map(|(r, w)| r.with_context(|| format!("waiting for the rollout of {w}")))
        .collect()
}

/// Prints a diagnosis in a collapsed group of the log.
pub(super) fn show_diagnosis(console: &Console, d: &Diagnosis) {
    console.start_group(&format!(
        "Diagnostics: {} — {}",
        d.object,
        d.failure.reason.word()
    ));
    say!("{}", report::diagnosis_text(d));
    console.end_group();
}
