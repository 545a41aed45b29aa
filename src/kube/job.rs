//! Running a Job to its end, the way `kubectl wait --for=condition=complete` and `kubectl logs
//! -f` do it together: the Job is watched by name until its conditions say it is final, while
//! its pod's log is streamed into a collapsible group. Pre-deploy hooks and integration checks
//! both run their Jobs through [`follow`]; each keeps its own report of what the end means.
//!
//! The decision ([`evaluate`]) is pure and tested by table; creating the Job is the caller's
//! (a hook applies it, a check creates it), and so is the deadline.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams, PropagationPolicy};
use kube::{Api, Client};
use tokio::time::Instant;

use super::api::{self, ApiError};
use super::rollout::RolloutState;
use super::watch::Watch;
use crate::actions::{Console, redact};

/// How long the log stream may take to drain once the Job has finished: the stream ends when
/// the container exits, but the last lines may still be on their way.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// How long a deleted Job may take to go (its finalizers, the garbage collector).
const DELETION: Duration = Duration::from_secs(60);

/// How a Job stands: conditions `Complete` / `Failed` are final (the Job controller sets them
/// after `SuccessCriteriaMet` / `FailureTarget`). A missing Job has failed: it was deleted.
pub fn evaluate(job: Option<&Job>) -> RolloutState {
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
        return RolloutState::Failed(crate::untrusted::server_text(&format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Failed"),
            c.message.as_deref().unwrap_or("the Job failed")
        )));
    }
    let active = job.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    RolloutState::Waiting(format!("{active} pod(s) running"))
}

/// How a followed Job ended.
#[derive(Debug)]
pub enum JobEnd {
    Complete,
    /// The Job controller's reason and message.
    Failed(String),
    /// The deadline passed with the Job still running.
    TimedOut,
    /// Watching the Job failed beyond the watch's retries.
    Api(ApiError),
}

/// What [`follow`] saw: the end and the pod's whole log (every line, printed or not).
#[derive(Debug)]
pub struct JobRun {
    pub end: JobEnd,
    pub log: String,
}

/// Prints one log line of a Job's pod: prefixed, so that it cannot pass for a workflow command,
/// cut to one line and redacted.
pub fn print_line(line: &str) {
    crate::say!("│ {}", redact(&crate::untrusted::server_text(line)));
}

/// Watches `job/{name}` (already created) until it is final or `deadline` passes, streaming
/// its pod's log inside the console group `group`: each line goes to `print` (which may leave
/// some out, see [`print_line`]) and into [`JobRun::log`]. When the pod finished before the
/// stream could start, its log is read once instead.
///
/// # Caveats
/// The log is best effort: one that cannot be read is only missing. The Job is left in place;
/// deleting it is the caller's ([`delete`]).
pub async fn follow<F>(
    client: &Client,
    console: &Console,
    namespace: &str,
    name: &str,
    group: &str,
    deadline: Instant,
    print: F,
) -> JobRun
where
    F: FnMut(&str) + Send + 'static,
{
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let log = Arc::new(Mutex::new(Log {
        text: String::new(),
        print,
    }));
    console.start_group(group);
    let mut follower = tokio::spawn(stream_log(pods.clone(), name.to_string(), log.clone()));
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let end = wait(jobs, name, deadline).await;
    if tokio::time::timeout(LOG_DRAIN, &mut follower)
        .await
        .is_err()
    {
        follower.abort();
    }
    let streamed = !lock(&log).text.is_empty();
    if !streamed && let Some(text) = read_log(&pods, name).await {
        let mut log = lock(&log);
        for line in text.lines() {
            log.line(line);
        }
    }
    console.end_group();
    let text = std::mem::take(&mut lock(&log).text);
    JobRun { end, log: text }
}

fn lock<F>(log: &Mutex<Log<F>>) -> std::sync::MutexGuard<'_, Log<F>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pod's log as collected so far, and where its lines are printed.
struct Log<F> {
    text: String,
    print: F,
}

impl<F: FnMut(&str)> Log<F> {
    fn line(&mut self, line: &str) {
        (self.print)(line);
        self.text.push_str(line);
        self.text.push('\n');
    }
}

/// Watches the Job by name (kubectl's `fieldSelector=metadata.name=<n>`) until [`evaluate`]
/// says it is final.
async fn wait(jobs: Api<Job>, name: &str, deadline: Instant) -> JobEnd {
    let mut watch = Watch::new(jobs).fields(&format!("metadata.name={name}"));
    let state = tokio::time::timeout_at(deadline, async {
        loop {
            let store = watch.next().await?;
            match evaluate(store.get(name)) {
                RolloutState::Waiting(_) => continue,
                done => return Ok::<_, ApiError>(done),
            }
        }
    })
    .await;
    match state {
        Ok(Ok(RolloutState::Complete)) => JobEnd::Complete,
        Ok(Ok(RolloutState::Failed(why))) => JobEnd::Failed(why),
        Ok(Ok(RolloutState::Waiting(_))) | Err(_) => JobEnd::TimedOut,
        Ok(Err(e)) => JobEnd::Api(e),
    }
}

/// Follows the log of the Job's pod once its container has started (running or already
/// finished). Ends with the stream, or quietly when the pods cannot be watched.
async fn stream_log<F: FnMut(&str)>(pods: Api<Pod>, job: String, log: Arc<Mutex<Log<F>>>) {
    let mut watch = Watch::new(pods.clone()).labels(&format!("job-name={job}"));
    let pod = loop {
        let Ok(store) = watch.next().await else {
            return;
        };
        if let Some(p) = store.values().find(|p| container_started(p)) {
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
        lock(&log).line(&line);
    }
}

fn container_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
        })
}

/// The whole log of the Job's (last) pod.
async fn read_log(pods: &Api<Pod>, job: &str) -> Option<String> {
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .ok()?;
    let pod = list.items.last()?.metadata.name.clone()?;
    pods.logs(&pod, &LogParams::default()).await.ok()
}

/// Deletes the Job and, in the background, its pod (a Job's default is to orphan it). A Job
/// that is already gone counts as deleted.
///
/// # Errors
/// The API's answer, after retrying what is transient.
pub async fn delete(jobs: &Api<Job>, name: &str) -> Result<(), ApiError> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api::retrying("deleting the Job", || jobs.delete(name, &params)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`delete`], then waits (watching) until the Job is gone, so that one of the same name can
/// be created.
///
/// # Errors
/// The API's answer, or a Job still there after a minute.
pub async fn delete_and_wait(jobs: &Api<Job>, name: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    delete(jobs, name)
        .await
        .with_context(|| format!("deleting job/{name}"))?;
    let mut watch = Watch::new(jobs.clone()).fields(&format!("metadata.name={name}"));
    let gone = tokio::time::timeout(DELETION, async {
        loop {
            if !watch.next().await?.contains_key(name) {
                return Ok::<_, ApiError>(());
            }
        }
    })
    .await;
    match gone {
        Ok(result) => result.with_context(|| format!("waiting for job/{name} to go")),
        Err(_) => anyhow::bail!("job/{name} was not deleted within {}s", DELETION.as_secs()),
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
            assert_eq!(evaluate(Some(&job(yaml))), *want, "case: {case}");
        }
        assert!(matches!(evaluate(None), RolloutState::Failed(_)));
    }

    #[test]
    fn every_line_is_kept_and_printed_through_the_callers_filter() {
        let printed = Arc::new(Mutex::new(Vec::new()));
        let seen = printed.clone();
        let mut log = Log {
            text: String::new(),
            print: move |line: &str| {
                if line != "hidden" {
                    seen.lock().unwrap().push(line.to_string());
                }
            },
        };
        for line in ["one", "hidden", "two"] {
            log.line(line);
        }
        assert_eq!(log.text, "one\nhidden\ntwo\n");
        assert_eq!(*printed.lock().unwrap(), ["one", "two"]);
    }
}
