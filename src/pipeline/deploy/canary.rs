//! `strategy: canary`: the new release runs as `<deployment>-canary` beside the stable one,
//! behind the same Service, and grows step by step (10 → 25 → 50 → 100 % by default). Each
//! step sizes both releases for its weight (or sets ingress-nginx's exact `canary-weight`),
//! waits for them by kubectl's rules, pauses for the step's window, then analyses: the
//! environment's checks and the Prometheus queries for `track=canary` over the pause.
//!
//! - every step passes → promote: the stable Deployment rolls out the canary's release (with
//!   `track: stable` on its pods) and the canary's objects are removed;
//! - a step fails → abort: the stable back at full size first, then the canary's objects
//!   removed, so the stable serves all traffic; exit 1, reported as rolled back. A canary is
//!   aborted whatever `onFailure` says: the stable release was never replaced.
//!
//! With `trafficRouting: ingress-nginx` the service's own Service still selects the canary's
//! pods (its selector has no `track`, and the stable's pods carry `track: stable` only after
//! their first promotion), so the canary's real share is the weight plus its share of the rest,
//! `w + (1 − w)·c/(N + c)`; the canary is kept to the pods its weight needs for that reason.
//!
//! A service without a live stable Deployment (its first deploy) or whose stable already runs
//! the image has nothing to compare with: it rolls out as `rolling` does.

use ::kube::Client;
use anyhow::Context as _;
use jiff::Timestamp;
use serde_json::Value;

mod finish;

use super::roll_out::{self, run_hooks, verification, wait_all};
use super::workloads::{container_of, image_of};
use super::{Deploy, Locked};
use crate::checks;
use crate::checks::analysis::{self, Prometheus, Target, Track, Window};
use crate::config::{Canary, TrafficRouting};
use crate::kube::{
    self, CanarySplit, Mode, RolloutOutcome, RolloutResult, Workload, WorkloadKind, apply_all,
    get_live, object_ref,
};
use crate::outcome::{Classified, Outcome};
use crate::report::{
    CanaryReport, CanaryStepReport, DeployReport, StepChecks, StepVerdict, WorkloadReport,
};
use crate::say;

/// What comes after a step, from its verdict (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDecision {
    /// Go on to the step at this index.
    Next(usize),
    /// The last step (100 %) passed: the stable takes the canary's release.
    Promote,
    Abort,
}

/// After step `index` of `steps`: on to the next one, promote after the last, or abort when the
/// step did not pass (its rollout, a check or a metric).
pub fn after_step(index: usize, steps: usize, passed: bool) -> StepDecision {
    match (passed, index + 1 < steps) {
        (false, _) => StepDecision::Abort,
        (true, true) => StepDecision::Next(index + 1),
        (true, false) => StepDecision::Promote,
    }
}

/// Whether a step passed: its releases rolled out, and neither the checks nor the metrics (when
/// there are any) failed.
pub fn step_passed(rolled_out: bool, checks: Option<bool>, metrics: Option<bool>) -> bool {
    rolled_out && checks != Some(false) && metrics != Some(false)
}

/// One service's two releases.
struct Pair {
    service: String,
    /// The rendered stable Deployment: the new release as the stable will run it.
    rendered: Value,
    stable: Workload,
    canary: Workload,
    /// The stable's full size.
    replicas: u32,
    /// The size the stable runs now (lowered above 50 %).
    stable_now: u32,
    /// With ingress-nginx: the service's Service and Ingress the canary copies.
    ingress: Option<(Value, Value)>,
    image_before: Option<String>,
    image_after: Option<String>,
}

/// Rolls out by canary steps. A service with nothing to compare with (no live stable, or the
/// same image) goes the rolling way, as do all of them when none has a stable to compare with.
///
/// # Errors
/// The API failing outside a rollout, or checks that turn out not to be runnable (invalid
/// input).
pub(super) async fn roll_out(
    deploy: &Deploy<'_>,
    locked: &Locked,
    canary: &Canary,
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    let client = &locked.client;
    let pairs = pairs(deploy, client, canary).await?;
    if pairs.is_empty() {
        say!("Canary: no stable release to compare with; rolling out as `rolling` does");
        return roll_out::roll_out_rolling(deploy, locked, report).await;
    }
    validate_canaries(deploy, client, canary, &pairs, report).await?;
    if !deploy.plan.hooks.is_empty() && !run_hooks(deploy, client, report).await? {
        return Ok(Outcome::Failed);
    }
    if !apply_rest(deploy, client, &pairs, report).await {
        report.summary = format!(
            "deploy to {} failed (applying failed); the stable release was not touched",
            deploy.environment.name
        );
        return Ok(Outcome::Failed);
    }
    if !roll_out_the_others(deploy, client, &pairs, report).await? {
        return Ok(Outcome::Failed);
    }
    for pair in &pairs {
        report.workloads.push(stable_entry(pair));
        let mut entry = WorkloadReport::named(
            pair.canary.to_string(),
            WorkloadKind::Deployment,
            pair.canary.name.clone(),
        );
        entry.service = pair.service.clone();
        entry.image_after = pair.image_after.clone();
        entry.changed = true;
        entry.awaited = true;
        report.workloads.push(entry);
    }
    let routing = match canary.traffic_routing {
        TrafficRouting::Replicas => "replicas",
        TrafficRouting::IngressNginx { .. } => "ingress-nginx",
    };
    report.canary = Some(CanaryReport::new(routing));
    let mut pairs = pairs;
    let mut index = 0;
    loop {
        let passed = run_step(deploy, client, canary, index, &mut pairs, report).await?;
        match after_step(index, canary.steps.len(), passed) {
            StepDecision::Next(next) => index = next,
            StepDecision::Promote => return finish::promote(deploy, client, &pairs, report).await,
            StepDecision::Abort => return finish::abort(deploy, client, &mut pairs, report).await,
        }
    }
}

/// Has the API server dry-run the canary's own objects (prepare validated the rendered ones),
/// so that one it refuses is bad input before anything is written.
///
/// # Errors
/// Invalid input (exit 2) naming what was refused.
async fn validate_canaries(
    deploy: &Deploy<'_>,
    client: &Client,
    canary: &Canary,
    pairs: &[Pair],
    report: &mut DeployReport,
) -> anyhow::Result<()> {
    let weight = canary.steps.first().map_or(100, |s| s.weight);
    let mut objects = Vec::new();
    for pair in pairs {
        let split = split_for(canary, pair, weight);
        objects.push(kube::canary_deployment(&pair.rendered, split.canary));
        if let Some((service, ingress)) = &pair.ingress {
            objects.push(kube::canary_service(service));
            objects.push(kube::canary_ingress(ingress, &pair.service, weight));
        }
    }
    let batch = apply_all(
        client,
        &objects,
        Mode::DryRun,
        deploy.options.apply_force(),
        kube::APPLY_CONCURRENCY,
    )
    .await;
    if batch.errors.is_empty() {
        return Ok(());
    }
    roll_out::reject(deploy.console, report, &batch.errors);
    report.summary = format!(
        "{} of the canary's {} objects rejected by the API server's dry run; nothing was written",
        batch.errors.len(),
        objects.len()
    );
    Err(Classified::invalid(anyhow::anyhow!("{}", report.summary)))
}

/// The services that get a canary: those whose live stable runs another image.
async fn pairs(deploy: &Deploy<'_>, client: &Client, canary: &Canary) -> anyhow::Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for rendered in &deploy.plan.services {
        let Some(service) = deploy.config.service(&rendered.service) else {
            continue;
        };
        let Some(object) = rendered.objects.iter().find(|o| {
            o["kind"] == "Deployment" && o["metadata"]["name"] == service.deployment.as_str()
        }) else {
            continue;
        };
        let container = container_of(deploy.config, &service.name);
        let live = get_live(client, object)
            .await
            .with_context(|| format!("reading {}", object_ref(object)))?;
        let Some(live) = live else { continue };
        let image_before = image_of(&live, &container);
        let image_after = image_of(object, &container);
        if image_before == image_after {
            continue;
        }
        let replicas = object["spec"]["replicas"]
            .as_u64()
            .or(live["spec"]["replicas"].as_u64())
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(1);
        let ingress = match &canary.traffic_routing {
            TrafficRouting::Replicas => None,
            TrafficRouting::IngressNginx { ingress } => {
                let found = service
                    .canary_ingress(ingress.as_deref())
                    .map_err(|e| Classified::invalid(anyhow::anyhow!("{e}")))?;
                let rendered_object = |kind: &str, name: &str| {
                    rendered
                        .objects
                        .iter()
                        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                        .cloned()
                };
                let ingress = rendered_object("Ingress", found.name());
                let front = service
                    .fronting_services()
                    .first()
                    .and_then(|s| rendered_object("Service", s.name()));
                match (front, ingress) {
                    (Some(front), Some(ingress)) => Some((front, ingress)),
                    _ => {
                        return Err(Classified::invalid(anyhow::anyhow!(
                            "service `{}` needs a Service selecting its pods and an Ingress for `trafficRouting: ingress-nginx`",
                            service.name
                        )));
                    }
                }
            }
        };
        let name = service.deployment.clone();
        let workload = |name: String| Workload {
            kind: WorkloadKind::Deployment,
            namespace: deploy.environment.namespace.clone(),
            name,
        };
        pairs.push(Pair {
            service: service.name.clone(),
            rendered: object.clone(),
            stable: workload(name.clone()),
            canary: workload(kube::canary_name(&name)),
            replicas,
            stable_now: replicas,
            ingress,
            image_before,
            image_after,
        });
    }
    Ok(pairs)
}

fn stable_entry(pair: &Pair) -> WorkloadReport {
    let mut entry = WorkloadReport::named(
        pair.stable.to_string(),
        WorkloadKind::Deployment,
        pair.stable.name.clone(),
    );
    entry.service = pair.service.clone();
    entry.image_before = pair.image_before.clone();
    entry
}

/// Applies every planned object but the stable Deployments (ConfigMaps, Services, the Ingress
/// …). Returns whether all were applied.
async fn apply_rest(
    deploy: &Deploy<'_>,
    client: &Client,
    pairs: &[Pair],
    report: &mut DeployReport,
) -> bool {
    let stable: Vec<String> = pairs.iter().map(|p| object_ref(&p.rendered)).collect();
    let objects: Vec<Value> = deploy
        .plan
        .objects()
        .filter(|o| !stable.contains(&object_ref(o)))
        .cloned()
        .collect();
    roll_out::apply_recorded(deploy, client, &objects, report)
        .await
        .errors
        .is_empty()
}

/// Waits for the workloads that get no canary (applied with the rest: a first deploy, the same
/// image, or not the service's Deployment). Returns whether they all rolled out; a failure
/// stops the deploy before any canary starts.
async fn roll_out_the_others(
    deploy: &Deploy<'_>,
    client: &Client,
    pairs: &[Pair],
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let stable: Vec<&Workload> = pairs.iter().map(|p| &p.stable).collect();
    let mut others = Vec::new();
    for planned in deploy.plan.workloads() {
        if stable.contains(&&planned.workload) {
            continue;
        }
        let mut entry = WorkloadReport::named(
            planned.workload.to_string(),
            planned.workload.kind,
            planned.workload.name.clone(),
        );
        entry.service = planned.service.to_string();
        entry.image_after = image_of(
            planned.object,
            &container_of(deploy.config, planned.service),
        );
        entry.awaited = true;
        report.workloads.push(entry);
        others.push(planned.workload);
    }
    let results = wait_all(client, &others, deploy.options.timeout).await?;
    if record(report, &results) {
        return Ok(true);
    }
    roll_out::diagnose_failures(deploy, client, deploy.plan.objects(), &results, report).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome != RolloutOutcome::Complete)
        .map(|r| r.workload.to_string())
        .collect();
    report.summary = format!(
        "deploy to {} failed ({} did not roll out); no canary was started",
        deploy.environment.name,
        failed.join(", ")
    );
    Ok(false)
}

/// The sizes of one step.
fn split_for(canary: &Canary, pair: &Pair, weight: u32) -> CanarySplit {
    match canary.traffic_routing {
        TrafficRouting::Replicas => kube::canary_split(pair.replicas, weight),
        TrafficRouting::IngressNginx { .. } => kube::canary_ingress_split(pair.replicas, weight),
    }
}

/// One step: size, wait, pause, analyse. Returns whether it passed; the step is in the report.
async fn run_step(
    deploy: &Deploy<'_>,
    client: &Client,
    canary: &Canary,
    index: usize,
    pairs: &mut [Pair],
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let step = &canary.steps[index];
    let started_at = Timestamp::now();
    let splits: Vec<CanarySplit> = pairs
        .iter()
        .map(|p| split_for(canary, p, step.weight))
        .collect();
    say!(
        "Canary step {} of {}: {} % — {}",
        index + 1,
        canary.steps.len(),
        step.weight,
        pairs
            .iter()
            .zip(&splits)
            .map(|(p, s)| format!("{}: {} stable / {} canary", p.service, s.stable, s.canary))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rolled_out = size(deploy, client, pairs, &splits, step.weight, report).await?;
    let ready_at = Timestamp::now();
    let mut entries = Vec::new();
    for (pair, split) in pairs.iter().zip(&splits) {
        let stable_ready = kube::ready_replicas(client, &pair.stable.namespace, &pair.stable.name)
            .await
            .with_context(|| format!("reading {}", pair.stable))?;
        let canary_ready = kube::ready_replicas(client, &pair.canary.namespace, &pair.canary.name)
            .await
            .with_context(|| format!("reading {}", pair.canary))?;
        let actual_share = match canary.traffic_routing {
            TrafficRouting::IngressNginx { .. } => f64::from(step.weight),
            TrafficRouting::Replicas => CanarySplit {
                stable: stable_ready,
                canary: canary_ready,
            }
            .share(),
        };
        entries.push(CanaryStepReport {
            step: index + 1,
            service: pair.service.clone(),
            weight: step.weight,
            stable_replicas: split.stable,
            canary_replicas: split.canary,
            stable_ready,
            canary_ready,
            actual_share,
            started_at,
            ready_at: rolled_out.then_some(ready_at),
            analysed_at: None,
            checks: None,
            analysis: None,
            verdict: StepVerdict::Running,
            summary: String::new(),
        });
    }
    if !rolled_out {
        for e in &mut entries {
            e.verdict = StepVerdict::RolloutFailed;
            e.summary = "the canary did not roll out".to_string();
        }
        push_steps(report, entries);
        return Ok(false);
    }
    say!(
        "Canary at {} %: pausing {} before the analysis",
        step.weight,
        crate::config::units::format_duration(step.pause)
    );
    tokio::time::sleep(step.pause).await;
    let checks = step_checks(deploy, client).await?;
    let checks_passed = checks.as_ref().map(|c| c.passed);
    let window = Window::new(ready_at, Timestamp::now());
    let mut all_passed = true;
    for (pair, entry) in pairs.iter().zip(&mut entries) {
        let metrics = analyse(deploy, &pair.service, &window).await;
        let metrics_passed = metrics.as_ref().map(|m| m.as_ref().is_ok_and(|a| a.passed));
        let passed = step_passed(true, checks_passed, metrics_passed);
        all_passed &= passed;
        let mut why = Vec::new();
        if let Some(c) = &checks {
            if !c.passed {
                why.push(format!("checks: {}", c.summary));
            }
            entry.checks = Some(c.clone());
        }
        match metrics {
            Some(Ok(a)) => {
                if !a.passed {
                    why.push(a.summary.clone());
                }
                entry.analysis = Some(a);
            }
            Some(Err(e)) => why.push(e),
            None => {}
        }
        entry.analysed_at = Some(Timestamp::now());
        entry.verdict = if passed {
            StepVerdict::Passed
        } else {
            StepVerdict::Failed
        };
        entry.summary = if why.is_empty() {
            "passed".to_string()
        } else {
            why.join("; ")
        };
        say!(
            "Canary step {} ({} %) {}: {}",
            index + 1,
            step.weight,
            pair.service,
            entry.summary
        );
    }
    push_steps(report, entries);
    Ok(all_passed)
}

fn push_steps(report: &mut DeployReport, entries: Vec<CanaryStepReport>) {
    if let Some(c) = report.canary.as_mut() {
        c.steps.extend(entries);
    }
}

/// Sets both releases to a step's sizes and waits for them: the canary first (capacity never
/// drops), then the stable when this step lowers it, and with ingress-nginx the canary Ingress
/// at the step's weight once the canary is ready. Returns whether everything rolled out.
async fn size(
    deploy: &Deploy<'_>,
    client: &Client,
    pairs: &mut [Pair],
    splits: &[CanarySplit],
    weight: u32,
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let mut objects = Vec::new();
    for (pair, split) in pairs.iter().zip(splits) {
        objects.push(kube::canary_deployment(&pair.rendered, split.canary));
        if let Some((service, _)) = &pair.ingress {
            objects.push(kube::canary_service(service));
        }
    }
    if !write(deploy, client, &objects, report).await {
        return Ok(false);
    }
    let canaries: Vec<Workload> = pairs.iter().map(|p| p.canary.clone()).collect();
    let results = wait_all(client, &canaries, deploy.options.timeout).await?;
    if !record(report, &results) {
        roll_out::diagnose_failures(deploy, client, &objects, &results, report).await;
        return Ok(false);
    }
    let ingresses: Vec<Value> = pairs
        .iter()
        .filter_map(|p| {
            let (_, ingress) = p.ingress.as_ref()?;
            Some(kube::canary_ingress(ingress, &p.service, weight))
        })
        .collect();
    if !ingresses.is_empty() && !write(deploy, client, &ingresses, report).await {
        return Ok(false);
    }
    let mut lowered = Vec::new();
    for (pair, split) in pairs.iter_mut().zip(splits) {
        if split.stable != pair.stable_now {
            kube::scale_deployment(
                client,
                &pair.stable.namespace,
                &pair.stable.name,
                split.stable,
            )
            .await
            .with_context(|| format!("scaling {} to {}", pair.stable, split.stable))?;
            pair.stable_now = split.stable;
            lowered.push(pair.stable.clone());
        }
    }
    let results = wait_all(client, &lowered, deploy.options.timeout).await?;
    Ok(results
        .iter()
        .all(|r| r.outcome == RolloutOutcome::Complete))
}

/// Applies the canary's own objects. Returns whether all were applied.
async fn write(
    deploy: &Deploy<'_>,
    client: &Client,
    objects: &[Value],
    report: &mut DeployReport,
) -> bool {
    roll_out::apply_recorded(deploy, client, objects, report)
        .await
        .errors
        .is_empty()
}

/// Records the canaries' rollouts on their report entries. Returns whether all completed.
fn record(report: &mut DeployReport, results: &[RolloutResult]) -> bool {
    let mut complete = true;
    for r in results {
        if let Some(entry) = report.workload_mut(r.workload.kind, &r.workload.name) {
            entry.rollout = Some(r.outcome);
            entry.rollout_ms = Some(r.elapsed.as_millis());
            entry.revision_after = r.revision;
            if r.outcome == RolloutOutcome::Complete {
                entry.completed_at = Some(Timestamp::now());
            }
        }
        complete &= r.outcome == RolloutOutcome::Complete;
    }
    complete
}

/// The environment's checks at a step (through the Service, so both releases answer), unless
/// there are none or `--no-verify`. The last step's report is the deploy's verification.
async fn step_checks(deploy: &Deploy<'_>, client: &Client) -> anyhow::Result<Option<StepChecks>> {
    let secrets = |variable: &str| deploy.ctx.read_secret(variable, deploy.console);
    let Some(v) = verification(deploy, client, &secrets) else {
        return Ok(None);
    };
    let verified = checks::verify(&v).await.map_err(Classified::invalid)?;
    let step = StepChecks {
        passed: verified.passed,
        summary: verified.summary.clone(),
    };
    Ok(Some(step))
}

/// The Prometheus queries for `track=canary` over the step's window; `None` without any,
/// `Err` (a failed step) when Prometheus could not answer.
async fn analyse(
    deploy: &Deploy<'_>,
    service: &str,
    window: &Window,
) -> Option<Result<analysis::AnalysisReport, String>> {
    let prometheus = deploy.environment.analysis.as_ref()?.prometheus.as_ref()?;
    if prometheus.queries.is_empty() {
        return None;
    }
    let target = Target::new(&deploy.environment.namespace, service, Track::Canary);
    let result = match Prometheus::new(&prometheus.url) {
        Ok(client) => analysis::analyse(&client, prometheus, &target, window)
            .await
            .map_err(|e| format!("analysis could not run: {}", crate::outcome::chain(&e))),
        Err(e) => Err(format!(
            "analysis could not run: {}",
            crate::outcome::chain(&e)
        )),
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_follows_a_step() {
        // (index, steps, passed, want)
        let cases = [
            (0, 4, true, StepDecision::Next(1)),
            (2, 4, true, StepDecision::Next(3)),
            (3, 4, true, StepDecision::Promote),
            (0, 1, true, StepDecision::Promote),
            (1, 4, false, StepDecision::Abort),
            (3, 4, false, StepDecision::Abort),
        ];
        for (index, steps, passed, want) in cases {
            assert_eq!(
                after_step(index, steps, passed),
                want,
                "step {index} of {steps}, passed {passed}"
            );
        }
    }

    #[test]
    fn a_step_passes_only_when_nothing_failed() {
        // (rolled_out, checks, metrics, want)
        let cases = [
            (true, None, None, true),
            (true, Some(true), Some(true), true),
            (true, None, Some(true), true),
            (true, Some(true), None, true),
            (true, Some(false), Some(true), false),
            (true, Some(true), Some(false), false),
            (false, None, None, false),
            (false, Some(true), Some(true), false),
        ];
        for (rolled_out, checks, metrics, want) in cases {
            assert_eq!(
                step_passed(rolled_out, checks, metrics),
                want,
                "rolled out {rolled_out}, checks {checks:?}, metrics {metrics:?}"
            );
        }
    }
}
