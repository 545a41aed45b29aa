//! Pre-deploy hooks: each hook Job (a database migration, say) runs with the new image before
//! the rollout, its log streamed into a collapsible group, and the deploy waits for it. A
//! failed hook stops the deploy before anything else is applied.
//!
//! A hook Job's name is a hash of its image and command (`render`), so a rerun of the same
//! release finds the Job it already ran: a succeeded one is not run again, a failed one is
//! replaced.

use std::time::Duration;

use futures_util::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, LogParams, PropagationPolicy};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;

use super::api::{self, ApiError};
use super::apply::{self, Force, Mode};
use super::diagnose::{self, Diagnosis, Failure, FailureReason};
use super::rollout::RolloutState;
use super::watch::Watch;
use crate::actions::{Console, redact};

/// Time allowed beyond a hook's own `activeDeadlineSeconds` for the Job controller to mark it
/// failed, for the pod to be scheduled and the image pulled.
const GRACE: Duration = Duration::from_secs(60);

/// How a Job stands: conditions `Complete` / `Failed` are final (the Job controller sets them
/// after `SuccessCriteriaMet` / `FailureTarget`). A missing Job has failed: it was deleted.
pub fn evaluate_job(job: Option<&Job>) -> RolloutState {
    let Some(job) = job else {
        return RolloutState::Failed("the Job no longer exists".into());
    };
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if is("Complete").is_some() {
        return RolloutState::Complete;
    }
    if let Some(c) = is("Failed") {
        return RolloutState::Failed(api::server_text(&format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Failed"),
            c.message.as_deref().unwrap_or("the Job failed")
        )));
    }
    let active = job.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    RolloutState::Waiting(format!("{active} pod(s) running"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookOutcome {
    Succeeded,
    /// The same Job (same image and command) had already succeeded.
    AlreadySucceeded,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    /// The hook's name in promotion.yml.
    pub name: String,
    /// The Job's name.
    pub job: String,
    pub outcome: HookOutcome,
    pub duration_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

/// Runs `jobs` (rendered hook Jobs) one after the other; stops at the first failure.
///
/// # Errors
/// Only when the API cannot be used; a failed hook is a report with [`HookOutcome::Failed`].
pub async fn run(
    client: &Client,
    console: &Console,
    jobs: &[Value],
) -> anyhow::Result<Vec<HookReport>> {
    let mut reports = Vec::new();
    for job in jobs {
        let report = run_one(client, console, job).await?;
        let failed = report.outcome == HookOutcome::Failed;
        reports.push(report);
        if failed {
            break;
        }
    }
    Ok(reports)
}

async fn run_one(client: &Client, console: &Console, object: &Value) -> anyhow::Result<HookReport> {
    let started = tokio::time::Instant::now();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let hook = object["metadata"]["labels"]["promote.studysphere.dev/hook"]
        .as_str()
        .unwrap_or(&name)
        .to_string();
    let deadline_secs = object["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .unwrap_or(600);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let report = |outcome, diagnosis| HookReport {
        name: hook.clone(),
        job: name.clone(),
        outcome,
        duration_ms: started.elapsed().as_millis(),
        diagnosis,
    };

    if let Some(existing) = api::retrying("reading", || jobs.get_opt(&name)).await? {
        match evaluate_job(Some(&existing)) {
            RolloutState::Complete => {
                crate::say!(
                    "Hook {hook}: job/{name} already succeeded for this release; not running it again"
                );
                return Ok(report(HookOutcome::AlreadySucceeded, None));
            }
            RolloutState::Failed(_) => {
                crate::say!("Hook {hook}: replacing the failed job/{name} of an earlier attempt");
                delete_and_wait(&jobs, &name).await?;
            }
            // Still running (an earlier attempt was cancelled): wait for it below.
            RolloutState::Waiting(_) => {}
        }
    }
    if let Err(e) = apply::apply_one(client, object, Mode::Write, Force::No).await {
        return Err(anyhow::Error::new(e).context(format!("starting hook {hook}")));
    }

    console.start_group(&format!("Hook {hook} (job/{name})"));
    let logs = tokio::spawn(stream_logs(client.clone(), namespace.clone(), name.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_secs) + GRACE;
    let mut watch = Watch::new(jobs.clone()).fields(&format!("metadata.name={name}"));
    let state = tokio::time::timeout_at(deadline, async {
        loop {
            let store = watch.next().await?;
            match evaluate_job(store.get(&name)) {
                RolloutState::Waiting(_) => continue,
                done => return Ok::<_, ApiError>(done),
            }
        }
    })
    .await;
    // The log stream ends when the container exits; give it a moment to drain.
    let mut logs = logs;
    if tokio::time::timeout(Duration::from_secs(3), &mut logs)
        .await
        .is_err()
    {
        logs.abort();
    }
    console.end_group();

    let failure = match state {
        Ok(Ok(RolloutState::Complete)) => {
            crate::say!(
                "Hook {hook} succeeded in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(report(HookOutcome::Succeeded, None));
        }
        Ok(Ok(RolloutState::Failed(message))) => Failure::new(FailureReason::HookFailed, message),
        Ok(Ok(RolloutState::Waiting(_))) => unreachable!("the loop returns only final states"),
        Ok(Err(e)) => return Err(anyhow::Error::new(e).context(format!("waiting for hook {hook}"))),
        Err(_) => Failure::new(
            FailureReason::Timeout,
            format!(
                "job/{name} did not finish within {}s",
                deadline_secs + GRACE.as_secs()
            ),
        ),
    };
    let selector = format!("job-name={name}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut failure = failure;
    // Point the diagnosis at the hook's container, whose log tells what went wrong.
    if let Ok(list) = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        && let Some(pod) = list.items.last()
    {
        failure.pod = pod.metadata.name.clone();
        failure.container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone());
    }
    let diagnosis = diagnose::collect(
        client,
        &namespace,
        &format!("job/{name}"),
        &name,
        Some(&selector),
        &failure,
    )
    .await;
    Ok(report(HookOutcome::Failed, Some(diagnosis)))
}

async fn delete_and_wait(jobs: &Api<Job>, name: &str) -> anyhow::Result<()> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match jobs.delete(name, &params).await.map_err(ApiError::from) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("deleting job/{name}"))),
    }
    let gone = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match jobs.get_opt(name).await {
                Ok(None) => return,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    })
    .await;
    gone.map_err(|_| anyhow::anyhow!("job/{name} was not deleted within 60s"))
}

/// Follows the log of the Job's pod, each line prefixed (so a line cannot pass for a workflow
/// command) and redacted. Best effort: a log that cannot be read is only missing from the log.
async fn stream_logs(client: Client, namespace: String, job: String) {
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let mut watch = Watch::new(pods.clone()).labels(&format!("job-name={job}"));
    // Wait for a pod whose container has started (running or already finished).
    let pod = loop {
        let Ok(store) = watch.next().await else {
            return;
        };
        let started = store.values().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
                })
        });
        if let Some(p) = started {
            break p.metadata.name.clone().unwrap_or_default();
        }
    };
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let Ok(reader) = pods.log_stream(&pod, &params).await else {
        return;
    };
    let mut lines = reader.lines();
    while let Some(Ok(line)) = lines.next().await {
        crate::say!("│ {}", redact(&api::server_text(&line)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> Job {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    #[test]
    fn job_states() {
        let cases: &[(&str, &str, RolloutState)] = &[
            (
                "running",
                "metadata: {name: j}\nstatus: {active: 1}",
                RolloutState::Waiting("1 pod(s) running".into()),
            ),
            (
                "success criteria met is not yet complete",
                "metadata: {name: j}
status:
  conditions: [{type: SuccessCriteriaMet, status: 'True'}]",
                RolloutState::Waiting("0 pod(s) running".into()),
            ),
            (
                "complete",
                "metadata: {name: j}
status:
  succeeded: 1
  conditions: [{type: SuccessCriteriaMet, status: 'True'}, {type: Complete, status: 'True'}]",
                RolloutState::Complete,
            ),
            (
                "failed, with the controller's reason",
                "metadata: {name: j}
status:
  failed: 1
  conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}]",
                RolloutState::Failed(
                    "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
                ),
            ),
            (
                "a condition that is not True does not count",
                "metadata: {name: j}
status:
  conditions: [{type: Failed, status: 'False'}]",
                RolloutState::Waiting("0 pod(s) running".into()),
            ),
        ];
        for (case, yaml, want) in cases {
            assert_eq!(evaluate_job(Some(&job(yaml))), *want, "case: {case}");
        }
        assert!(matches!(evaluate_job(None), RolloutState::Failed(_)));
    }
}
