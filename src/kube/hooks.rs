//! Pre-deploy hooks: each hook Job (a database migration, say) runs with the new image before
//! the rollout, its log streamed into a collapsible group, and the deploy waits for it
//! ([`super::job`] runs it). A failed hook stops the deploy before anything else is applied.
//!
//! A hook Job's name is a hash of its image and command (`render`), so a rerun of the same
//! release finds the Job it already ran: a succeeded one is not run again, a failed one is
//! replaced.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;

use super::api;
use super::apply::{self, Force, Mode};
use super::diagnose::{self, Diagnosis, Failure, FailureReason};
use super::job::{self, JobEnd};
use super::rollout::RolloutState;
use crate::actions::Console;

/// Time allowed beyond a hook's own `activeDeadlineSeconds` for the Job controller to mark it
/// failed, for the pod to be scheduled and the image pulled.
const GRACE: Duration = Duration::from_secs(60);

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
        match job::evaluate(Some(&existing)) {
            RolloutState::Complete => {
                crate::say!(
                    "Hook {hook}: job/{name} already succeeded for this release; not running it again"
                );
                return Ok(report(HookOutcome::AlreadySucceeded, None));
            }
            RolloutState::Failed(_) => {
                crate::say!("Hook {hook}: replacing the failed job/{name} of an earlier attempt");
                job::delete_and_wait(&jobs, &name).await?;
            }
            // Still running (an earlier attempt was cancelled): wait for it below.
            RolloutState::Waiting(_) => {}
        }
    }
    if let Err(e) = apply::apply_one(client, object, Mode::Write, Force::No).await {
        return Err(anyhow::Error::new(e).context(format!("starting hook {hook}")));
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_secs) + GRACE;
    let run = job::follow(
        client,
        console,
        &namespace,
        &name,
        &format!("Hook {hook} (job/{name})"),
        deadline,
        job::print_line,
    )
    .await;

    let failure = match run.end {
        JobEnd::Complete => {
            crate::say!(
                "Hook {hook} succeeded in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(report(HookOutcome::Succeeded, None));
        }
        JobEnd::Failed(message) => Failure::new(FailureReason::HookFailed, message),
        JobEnd::Api(e) => {
            return Err(anyhow::Error::new(e).context(format!("waiting for hook {hook}")));
        }
        JobEnd::TimedOut => Failure::new(
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
