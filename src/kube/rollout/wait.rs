//! The watch loop of a rollout: the workload and its pods are watched until the status rules
//! say it is no longer waiting, a pod shows a decisive failure, or the deadline passes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use serde::Serialize;

use super::status::{
    daemonset_progress, deployment_progress, evaluate_daemonset, evaluate_deployment,
    evaluate_statefulset, statefulset_progress,
};
use super::{Progress, RolloutState, Workload, WorkloadKind, revision_of};
use crate::kube::diagnose::{self, Failure, FailureReason};
use crate::kube::watch::Watch;

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
