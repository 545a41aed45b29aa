//! Rollout status, exactly as `kubectl rollout status` decides it (protocols.md §6), and the
//! watch loop that feeds live objects into that decision until it is no longer `Waiting`.
//!
//! The decisions are pure functions over one object; the loop watches the workload (by name,
//! as kubectl does with `fieldSelector=metadata.name=<n>`) and its pods, so a pull failure or a
//! crash loop ends the wait as soon as it is visible instead of at the deadline. kube-runtime's
//! `is_deployment_completed` is deliberately not used: it ignores `observedGeneration`, so it
//! reports the previous rollout as complete before the controller has seen the new one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use serde::Serialize;

use super::diagnose::{self, Failure, FailureReason};
use super::watch::Watch;

/// `deployment.kubernetes.io/revision`: the Deployment controller's revision counter, on the
/// Deployment and on each of its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Where a rollout stands. `Failed` ends the wait early (kubectl: an error from the status
/// viewer), `Complete` ends it successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Still rolling out; the text is kubectl's own progress message.
    Waiting(String),
    Complete,
    Failed(String),
}

/// The three workload kinds whose rollout can be waited for, parsed once from `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn parse(kind: &str) -> Option<WorkloadKind> {
        match kind {
            "Deployment" => Some(WorkloadKind::Deployment),
            "StatefulSet" => Some(WorkloadKind::StatefulSet),
            "DaemonSet" => Some(WorkloadKind::DaemonSet),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// kubectl's lower-case resource name, used in `kind/name` references.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }
}

/// One workload whose rollout is awaited.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.resource(), self.name)
    }
}

/// Counts shown in the progress line: how many of `desired` pods run the new template, are ready
/// and are available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.desired;
        write!(
            f,
            "{}/{d} updated, {}/{d} ready, {}/{d} available",
            self.updated, self.ready, self.available
        )
    }
}

/// The revision a Deployment (or ReplicaSet) carries, if it has a valid one.
pub fn revision_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(REVISION_ANNOTATION)?.parse().ok()
}

/// kubectl's `DeploymentStatusViewer`, rule for rule:
/// 1. a requested revision that differs from the Deployment's → error;
/// 2. `generation > observedGeneration` → waiting for the spec update to be observed;
/// 3. the `Progressing` condition has reason `ProgressDeadlineExceeded` → failed;
/// 4. `updatedReplicas < spec.replicas` → waiting for new replicas;
/// 5. `status.replicas > updatedReplicas` → waiting for old replicas to terminate;
/// 6. `availableReplicas < updatedReplicas` → waiting for availability;
/// 7. otherwise complete.
///
/// A missing Deployment has failed: it was deleted while we waited for it.
pub fn evaluate_deployment(d: Option<&Deployment>, revision: Option<i64>) -> RolloutState {
    let Some(d) = d else {
        return RolloutState::Failed("the Deployment no longer exists".into());
    };
    let name = d.metadata.name.as_deref().unwrap_or_default();
    if let Some(wanted) = revision.filter(|r| *r > 0) {
        match d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
        {
            None => {
                return RolloutState::Failed(format!(
                    "cannot get the revision of deployment {name:?}"
                ));
            }
            Some(text) => match text.parse::<i64>() {
                Ok(running) if running == wanted => {}
                Ok(running) => {
                    return RolloutState::Failed(format!(
                        "desired revision ({wanted}) is different from the running revision ({running})"
                    ));
                }
                Err(_) => {
                    return RolloutState::Failed(format!(
                        "cannot get the revision of deployment {name:?}: {text:?} is not a number"
                    ));
                }
            },
        }
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutState::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let timed_out = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if timed_out {
        return RolloutState::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < desired
    {
        return RolloutState::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutState::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutState::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutState::Complete
}

/// kubectl's `StatefulSetStatusViewer` (RollingUpdate only):
/// 1. another update strategy → error (kubectl cannot tell when `OnDelete` is done);
/// 2. `observedGeneration` 0 or behind `generation` → waiting;
/// 3. `readyReplicas < spec.replicas` → waiting;
/// 4. with a partition: `updatedReplicas < replicas - partition` → waiting, else complete;
/// 5. otherwise complete once `updateRevision == currentRevision`.
///
/// A strategy left out is `RollingUpdate`, the API server's default.
pub fn evaluate_statefulset(s: Option<&StatefulSet>) -> RolloutState {
    let Some(s) = s else {
        return RolloutState::Failed("the StatefulSet no longer exists".into());
    };
    let spec = s.spec.clone().unwrap_or_default();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return RolloutState::Failed(
            "rollout status is only available for RollingUpdate strategy type".into(),
        );
    }
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return RolloutState::Waiting(
            "Waiting for statefulset spec update to be observed...".into(),
        );
    }
    let ready = status.ready_replicas.unwrap_or(0);
    if let Some(desired) = spec.replicas
        && ready < desired
    {
        return RolloutState::Waiting(format!(
            "Waiting for {} pods to be ready...",
            desired - ready
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(rolling) = &strategy.rolling_update {
        if let (Some(desired), Some(partition)) = (spec.replicas, rolling.partition)
            && updated < desired - partition
        {
            return RolloutState::Waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                desired - partition
            ));
        }
        return RolloutState::Complete;
    }
    if status.update_revision != status.current_revision {
        return RolloutState::Waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {}...",
            status.update_revision.unwrap_or_default()
        ));
    }
    RolloutState::Complete
}

/// kubectl's `DaemonSetStatusViewer` (RollingUpdate only):
/// 1. another update strategy → error;
/// 2. `generation > observedGeneration` → waiting;
/// 3. `updatedNumberScheduled < desiredNumberScheduled` → waiting;
/// 4. `numberAvailable < desiredNumberScheduled` → waiting;
/// 5. otherwise complete.
pub fn evaluate_daemonset(d: Option<&DaemonSet>) -> RolloutState {
    let Some(d) = d else {
        return RolloutState::Failed("the DaemonSet no longer exists".into());
    };
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.clone());
    if strategy.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return RolloutState::Failed(
            "rollout status is only available for RollingUpdate strategy type".into(),
        );
    }
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return RolloutState::Waiting(
            "Waiting for daemon set spec update to be observed...".into(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        return RolloutState::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    let available = status.number_available.unwrap_or(0);
    if available < desired {
        return RolloutState::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    RolloutState::Complete
}

/// [`evaluate_deployment`] and its siblings for an object of `kind` given as JSON (as a
/// dynamic client returns it). An object that does not deserialize counts as missing.
pub fn evaluate_value(kind: WorkloadKind, object: &serde_json::Value) -> RolloutState {
    fn typed<K: serde::de::DeserializeOwned>(object: &serde_json::Value) -> Option<K> {
        serde_json::from_value(object.clone()).ok()
    }
    match kind {
        WorkloadKind::Deployment => evaluate_deployment(typed(object).as_ref(), None),
        WorkloadKind::StatefulSet => evaluate_statefulset(typed(object).as_ref()),
        WorkloadKind::DaemonSet => evaluate_daemonset(typed(object).as_ref()),
    }
}

pub fn deployment_progress(d: &Deployment) -> Progress {
    let status = d.status.clone().unwrap_or_default();
    Progress {
        desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
    }
}

pub fn statefulset_progress(s: &StatefulSet) -> Progress {
    let status = s.status.clone().unwrap_or_default();
    Progress {
        desired: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
    }
}

pub fn daemonset_progress(d: &DaemonSet) -> Progress {
    let status = d.status.clone().unwrap_or_default();
    Progress {
        desired: status.desired_number_scheduled,
        updated: status.updated_number_scheduled.unwrap_or(0),
        ready: status.number_ready,
        available: status.number_available.unwrap_or(0),
    }
}

/// How a wait for one workload ended.
#[derive(Debug, Clone)]
pub struct RolloutResult {
    pub workload: Workload,
    pub outcome: RolloutOutcome,
    pub progress: Progress,
    /// The Deployment revision at the end (Deployments only).
    pub revision: Option<i64>,
    /// Why it failed, classified from the workload, its pods and events.
    pub failure: Option<Failure>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutOutcome {
    Complete,
    Failed,
    TimedOut,
}

/// A workload object of any of the three kinds, so one loop can watch them all.
trait Rollout:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    fn evaluate(object: Option<&Self>) -> RolloutState;
    fn progress(&self) -> Progress;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn match_labels(&self) -> Option<&BTreeMap<String, String>>;
    fn revision(&self) -> Option<i64> {
        None
    }
}

impl Rollout for Deployment {
    fn evaluate(object: Option<&Self>) -> RolloutState {
        evaluate_deployment(object, None)
    }
    fn progress(&self) -> Progress {
        deployment_progress(self)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.as_ref()?.selector.match_labels.as_ref()
    }
    fn revision(&self) -> Option<i64> {
        revision_of(self.metadata.annotations.as_ref())
    }
}

impl Rollout for StatefulSet {
    fn evaluate(object: Option<&Self>) -> RolloutState {
        evaluate_statefulset(object)
    }
    fn progress(&self) -> Progress {
        statefulset_progress(self)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.as_ref()?.selector.match_labels.as_ref()
    }
}

impl Rollout for DaemonSet {
    fn evaluate(object: Option<&Self>) -> RolloutState {
        evaluate_daemonset(object)
    }
    fn progress(&self) -> Progress {
        daemonset_progress(self)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.as_ref()?.selector.match_labels.as_ref()
    }
}

/// Waits for `workload` to finish rolling out, by watch, until `deadline`.
///
/// `on_progress` is called with a line whenever the counts (or kubectl's message) change.
/// A failure visible in the pods of the current template (pull errors, crash loops, OOM,
/// missing config, unschedulable) ends the wait at once; the workload's own status decides
/// everything else. Dropped watches are resumed from the last resourceVersion and a `410 Gone`
/// relists, so a flaky connection costs no events.
///
/// # Errors
/// Only when the API cannot be used at all (403, a watch that cannot be re-established); a
/// failed or timed-out rollout is an `Ok` result with a [`Failure`].
pub async fn wait(
    client: &Client,
    workload: &Workload,
    deadline: tokio::time::Instant,
    on_progress: &(dyn Fn(&Workload, &str) + Sync),
) -> anyhow::Result<RolloutResult> {
    match workload.kind {
        WorkloadKind::Deployment => {
            wait_for::<Deployment>(client, workload, deadline, on_progress).await
        }
        WorkloadKind::StatefulSet => {
            wait_for::<StatefulSet>(client, workload, deadline, on_progress).await
        }
        WorkloadKind::DaemonSet => {
            wait_for::<DaemonSet>(client, workload, deadline, on_progress).await
        }
    }
}

/// How often pods seen are classified again without a new event.
const RECHECK: Duration = Duration::from_secs(5);

/// A decisive failure among the pods of `object`'s current template.
fn decisive<K: Rollout>(pods: &BTreeMap<String, Pod>, object: Option<&K>) -> Option<Failure> {
    let template = object?.template()?;
    let current: Vec<&Pod> = pods
        .values()
        .filter(|p| diagnose::runs_template(p, template))
        .collect();
    diagnose::classify_pods(&current, Timestamp::now(), diagnose::Urgency::Decisive)
}

/// The best explanation among the pods of `object`'s current template, decisive or not.
fn explain<K: Rollout>(pods: &BTreeMap<String, Pod>, object: Option<&K>) -> Option<Failure> {
    let template = object?.template()?;
    let current: Vec<&Pod> = pods
        .values()
        .filter(|p| diagnose::runs_template(p, template))
        .collect();
    diagnose::classify_pods(&current, Timestamp::now(), diagnose::Urgency::AtDeadline)
}

async fn wait_for<K: Rollout>(
    client: &Client,
    workload: &Workload,
    deadline: tokio::time::Instant,
    on_progress: &(dyn Fn(&Workload, &str) + Sync),
) -> anyhow::Result<RolloutResult> {
    let started = tokio::time::Instant::now();
    let api: Api<K> = Api::namespaced(client.clone(), &workload.namespace);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &workload.namespace);
    let mut objects = Watch::new(api).fields(&format!("metadata.name={}", workload.name));
    let mut pods: Option<Watch<Pod>> = None;
    let mut last_line = String::new();
    let mut last: Option<K> = None;

    let finish = |last: &Option<K>, outcome, failure| RolloutResult {
        workload: workload.clone(),
        outcome,
        progress: last.as_ref().map(|o| o.progress()).unwrap_or_default(),
        revision: last.as_ref().and_then(|o| o.revision()),
        failure,
        elapsed: started.elapsed(),
    };

    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = tokio::time::timeout_at(deadline, async {
        loop {
            let pods_ready = pods.is_some();
            tokio::select! {
                changed = objects.next() => {
                    let store = changed?;
                    let object = store.get(&workload.name).cloned();
                    let state = K::evaluate(object.as_ref());
                    if pods.is_none()
                        && let Some(labels) = object.as_ref().and_then(|o| o.match_labels())
                        && !labels.is_empty()
                    {
                        let selector = labels
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",");
                        pods = Some(Watch::new(pods_api.clone()).labels(&selector));
                    }
                    if let Some(o) = &object {
                        let line = match &state {
                            RolloutState::Waiting(message) => format!("{} — {message}", o.progress()),
                            RolloutState::Complete => format!("{} — complete", o.progress()),
                            RolloutState::Failed(message) => format!("{} — {message}", o.progress()),
                        };
                        if line != last_line {
                            on_progress(workload, &line);
                            last_line = line;
                        }
                    }
                    last = object;
                    match state {
                        RolloutState::Waiting(_) => {}
                        RolloutState::Complete => return anyhow::Ok(finish(&last, RolloutOutcome::Complete, None)),
                        RolloutState::Failed(message) => {
                            let reason = if message.contains("progress deadline") {
                                FailureReason::ProgressDeadlineExceeded
                            } else {
                                FailureReason::Other
                            };
                            // The pods usually say why the deadline passed.
                            let why = pods.as_ref().and_then(|p| explain(p.store(), last.as_ref()));
                            let failure = match why {
                                Some(why) => Failure {
                                    reason,
                                    message: format!("{message}: {}", why.message),
                                    ..why
                                },
                                None => Failure::new(reason, message),
                            };
                            return Ok(finish(&last, RolloutOutcome::Failed, Some(failure)));
                        }
                    }
                }
                changed = async { pods.as_mut().expect("guarded by pods_ready").next().await }, if pods_ready => {
                    let store = changed?;
                    if let Some(failure) = decisive(store, last.as_ref()) {
                        return Ok(finish(&last, RolloutOutcome::Failed, Some(failure)));
                    }
                }
                // Signs that become decisive with time (a pod unschedulable for longer than the
                // grace) need a clock, not an event: look at the pods seen so far again.
                _ = recheck.tick(), if pods_ready => {
                    let store = pods.as_ref().expect("guarded by pods_ready").store();
                    if let Some(failure) = decisive(store, last.as_ref()) {
                        return Ok(finish(&last, RolloutOutcome::Failed, Some(failure)));
                    }
                }
            }
        }
    })
    .await;
    match result {
        Ok(done) => done,
        Err(_elapsed) => {
            // What the pods show at the deadline is the best explanation of the timeout.
            let why = pods
                .as_ref()
                .and_then(|p| explain(p.store(), last.as_ref()));
            let waiting = match K::evaluate(last.as_ref()) {
                RolloutState::Waiting(message) => message,
                other => format!("{other:?}"),
            };
            let failure = match why {
                Some(mut f) => {
                    f.message = format!("timed out: {}; {waiting}", f.message);
                    f
                }
                None => Failure::new(FailureReason::Timeout, format!("timed out: {waiting}")),
            };
            Ok(finish(&last, RolloutOutcome::TimedOut, Some(failure)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    const DEPLOYMENT_CASES: &[(&str, &str, Option<i64>, &str)] = &[
        (
            "complete when every replica is updated and available",
            "metadata: {name: web, generation: 3, annotations: {deployment.kubernetes.io/revision: '3'}}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}",
            None,
            "complete",
        ),
        (
            "waiting until the controller observed the new generation",
            "metadata: {name: web, generation: 4}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2}",
            None,
            "waiting: Waiting for deployment spec update to be observed...",
        ),
        (
            "failed when the progress deadline was exceeded",
            "metadata: {name: web, generation: 4}
spec: {replicas: 2, selector: {}, template: {}}
status:
  observedGeneration: 4
  replicas: 3
  updatedReplicas: 1
  conditions:
  - {type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}",
            None,
            "failed: deployment \"web\" exceeded its progress deadline",
        ),
        (
            "a stale generation hides the deadline until it is observed",
            "metadata: {name: web, generation: 5}
spec: {replicas: 2, selector: {}, template: {}}
status:
  observedGeneration: 4
  conditions:
  - {type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}",
            None,
            "waiting: Waiting for deployment spec update to be observed...",
        ),
        (
            "waiting while new replicas are created",
            "metadata: {name: web, generation: 2}
spec: {replicas: 3, selector: {}, template: {}}
status:
  observedGeneration: 2
  replicas: 3
  updatedReplicas: 1
  conditions:
  - {type: Progressing, status: 'True', reason: ReplicaSetUpdated}",
            None,
            "waiting: Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
        ),
        (
            "waiting while old pods terminate",
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2}",
            None,
            "waiting: Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
        ),
        (
            "waiting until updated replicas are available",
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1}",
            None,
            "waiting: Waiting for deployment \"web\" rollout to finish: 1 of 2 updated replicas are available...",
        ),
        (
            "without spec.replicas the count rule is skipped, as in kubectl",
            "metadata: {name: web, generation: 2}
spec: {selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1}",
            None,
            "complete",
        ),
        (
            "scaled to zero is complete",
            "metadata: {name: web, generation: 2}
spec: {replicas: 0, selector: {}, template: {}}
status: {observedGeneration: 2}",
            None,
            "complete",
        ),
        (
            "a different running revision is an error",
            "metadata: {name: web, generation: 2, annotations: {deployment.kubernetes.io/revision: '4'}}
spec: {replicas: 1, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1}",
            Some(3),
            "failed: desired revision (3) is different from the running revision (4)",
        ),
        (
            "the requested revision running is checked further",
            "metadata: {name: web, generation: 2, annotations: {deployment.kubernetes.io/revision: '3'}}
spec: {replicas: 1, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1}",
            Some(3),
            "complete",
        ),
        (
            "a requested revision needs the annotation",
            "metadata: {name: web, generation: 2}
spec: {replicas: 1, selector: {}, template: {}}
status: {observedGeneration: 2}",
            Some(3),
            "failed: cannot get the revision of deployment \"web\"",
        ),
    ];

    fn show(state: &RolloutState) -> String {
        match state {
            RolloutState::Waiting(m) => format!("waiting: {m}"),
            RolloutState::Complete => "complete".into(),
            RolloutState::Failed(m) => format!("failed: {m}"),
        }
    }

    /// Every branch of kubectl's Deployment rules, in its order.
    #[test]
    fn deployment_rules_follow_kubectl() {
        for (name, yaml, revision, want) in DEPLOYMENT_CASES {
            let d: Deployment = fixture(yaml);
            assert_eq!(
                show(&evaluate_deployment(Some(&d), *revision)),
                *want,
                "case: {name}"
            );
        }
    }

    /// A Deployment deleted while we wait has failed, rather than waiting for the deadline.
    #[test]
    fn missing_workloads_have_failed() {
        assert!(matches!(
            evaluate_deployment(None, None),
            RolloutState::Failed(_)
        ));
        assert!(matches!(
            evaluate_statefulset(None),
            RolloutState::Failed(_)
        ));
        assert!(matches!(evaluate_daemonset(None), RolloutState::Failed(_)));
    }

    const STATEFULSET_CASES: &[(&str, &str, &str)] = &[
        (
            "OnDelete cannot be followed",
            "metadata: {name: db, generation: 1}
spec: {replicas: 1, serviceName: db, selector: {}, template: {}, updateStrategy: {type: OnDelete}}
status: {observedGeneration: 1, replicas: 1}",
            "failed: rollout status is only available for RollingUpdate strategy type",
        ),
        (
            "waiting before the first observation",
            "metadata: {name: db, generation: 1}
spec: {replicas: 1, serviceName: db, selector: {}, template: {}}
status: {replicas: 0}",
            "waiting: Waiting for statefulset spec update to be observed...",
        ),
        (
            "waiting for a stale observation",
            "metadata: {name: db, generation: 3}
spec: {replicas: 1, serviceName: db, selector: {}, template: {}, updateStrategy: {type: RollingUpdate}}
status: {observedGeneration: 2, replicas: 1, readyReplicas: 1}",
            "waiting: Waiting for statefulset spec update to be observed...",
        ),
        (
            "waiting for ready pods",
            "metadata: {name: db, generation: 3}
spec: {replicas: 3, serviceName: db, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 3, readyReplicas: 1}",
            "waiting: Waiting for 2 pods to be ready...",
        ),
        (
            "waiting for a partitioned rollout",
            "metadata: {name: db, generation: 3}
spec: {replicas: 4, serviceName: db, selector: {}, template: {}, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}
status: {observedGeneration: 3, replicas: 4, readyReplicas: 4, updatedReplicas: 1}",
            "waiting: Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
        ),
        (
            "a partitioned rollout is complete once the partition is updated",
            "metadata: {name: db, generation: 3}
spec: {replicas: 4, serviceName: db, selector: {}, template: {}, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}
status: {observedGeneration: 3, replicas: 4, readyReplicas: 4, updatedReplicas: 2, currentRevision: db-1, updateRevision: db-2}",
            "complete",
        ),
        (
            "waiting until every pod is at the update revision",
            "metadata: {name: db, generation: 3}
spec: {replicas: 2, serviceName: db, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 2, readyReplicas: 2, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}",
            "waiting: waiting for statefulset rolling update to complete 1 pods at revision db-2...",
        ),
        (
            "complete when the revisions agree",
            "metadata: {name: db, generation: 3}
spec: {replicas: 2, serviceName: db, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: db-2, updateRevision: db-2}",
            "complete",
        ),
    ];

    /// Every branch of kubectl's StatefulSet rules.
    #[test]
    fn statefulset_rules_follow_kubectl() {
        for (name, yaml, want) in STATEFULSET_CASES {
            let s: StatefulSet = fixture(yaml);
            assert_eq!(show(&evaluate_statefulset(Some(&s))), *want, "case: {name}");
        }
    }

    const DAEMONSET_CASES: &[(&str, &str, &str)] = &[
        (
            "OnDelete cannot be followed",
            "metadata: {name: agent, generation: 1}
spec: {selector: {}, template: {}, updateStrategy: {type: OnDelete}}
status: {observedGeneration: 1, currentNumberScheduled: 1, desiredNumberScheduled: 1, numberMisscheduled: 0, numberReady: 1}",
            "failed: rollout status is only available for RollingUpdate strategy type",
        ),
        (
            "waiting for the new generation to be observed",
            "metadata: {name: agent, generation: 2}
spec: {selector: {}, template: {}}
status: {observedGeneration: 1, currentNumberScheduled: 1, desiredNumberScheduled: 1, numberMisscheduled: 0, numberReady: 1}",
            "waiting: Waiting for daemon set spec update to be observed...",
        ),
        (
            "waiting for pods to be updated",
            "metadata: {name: agent, generation: 2}
spec: {selector: {}, template: {}}
status: {observedGeneration: 2, currentNumberScheduled: 3, desiredNumberScheduled: 3, numberMisscheduled: 0, numberReady: 3, updatedNumberScheduled: 1}",
            "waiting: Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated...",
        ),
        (
            "waiting for updated pods to be available",
            "metadata: {name: agent, generation: 2}
spec: {selector: {}, template: {}}
status: {observedGeneration: 2, currentNumberScheduled: 3, desiredNumberScheduled: 3, numberMisscheduled: 0, numberReady: 3, updatedNumberScheduled: 3, numberAvailable: 2}",
            "waiting: Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available...",
        ),
        (
            "complete when every node runs an available new pod",
            "metadata: {name: agent, generation: 2}
spec: {selector: {}, template: {}, updateStrategy: {type: RollingUpdate}}
status: {observedGeneration: 2, currentNumberScheduled: 3, desiredNumberScheduled: 3, numberMisscheduled: 0, numberReady: 3, updatedNumberScheduled: 3, numberAvailable: 3}",
            "complete",
        ),
    ];

    /// Every branch of kubectl's DaemonSet rules.
    #[test]
    fn daemonset_rules_follow_kubectl() {
        for (name, yaml, want) in DAEMONSET_CASES {
            let d: DaemonSet = fixture(yaml);
            assert_eq!(show(&evaluate_daemonset(Some(&d))), *want, "case: {name}");
        }
    }

    #[test]
    fn json_objects_are_evaluated_by_kind() {
        let value: serde_json::Value = fixture(DEPLOYMENT_CASES[0].1);
        assert_eq!(
            evaluate_value(WorkloadKind::Deployment, &value),
            RolloutState::Complete
        );
        assert!(matches!(
            evaluate_value(
                WorkloadKind::Deployment,
                &serde_json::json!("not an object")
            ),
            RolloutState::Failed(_)
        ));
    }

    #[test]
    fn progress_line_counts_against_desired() {
        let d: Deployment = fixture(DEPLOYMENT_CASES[4].1);
        assert_eq!(
            deployment_progress(&d).to_string(),
            "1/3 updated, 0/3 ready, 0/3 available"
        );
    }

    #[test]
    fn workload_kinds_parse_once() {
        assert_eq!(
            WorkloadKind::parse("StatefulSet"),
            Some(WorkloadKind::StatefulSet)
        );
        assert_eq!(WorkloadKind::parse("statefulset"), None);
        assert_eq!(
            Workload {
                kind: WorkloadKind::Deployment,
                namespace: "ns".into(),
                name: "web".into()
            }
            .to_string(),
            "deployment/web"
        );
    }
}
