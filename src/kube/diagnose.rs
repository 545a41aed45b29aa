//! Why a rollout failed, told from its pods and events: pure classification (tested by table),
//! and the collection of what a person needs to act on it (pod states, last termination
//! reasons, recent events, the last lines of the failing container's log).
//!
//! Classification comes in two strengths. Decisive signs end the wait at once, because
//! Kubernetes will not recover from them by itself within a rollout: an image that cannot be
//! pulled (`ImagePullBackOff`, `InvalidImageName`), a crash loop, a container that runs out of
//! memory again and again, a missing Secret or ConfigMap key (`CreateContainerConfigError`), a
//! pod that stayed unschedulable for [`UNSCHEDULABLE_GRACE`]. At the deadline, weaker signs
//! (a first `ErrImagePull`, a single OOM kill) explain the timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use serde::Serialize;

use super::api;

/// How long a pod may stay unschedulable before that counts as a failure. A cluster autoscaler
/// reacts within seconds and reports `TriggeredScaleUp`; a pod that still has no node after this
/// long asks for more than the cluster has (or a taint, affinity or quota forbids it).
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(30);

/// How many restarts make a crash a loop even before the kubelet says `CrashLoopBackOff`.
const CRASH_RESTARTS: i32 = 2;

/// Log lines kept from the failing container.
pub const LOG_LINES: i64 = 20;

/// Events kept per failing workload, most recent last.
pub const EVENTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureReason {
    /// `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`, `ErrImageNeverPull`.
    ImagePull,
    /// `CrashLoopBackOff`, or repeated restarts.
    CrashLoop,
    /// A container was killed for exceeding its memory limit.
    OomKilled,
    /// `PodScheduled=False` with reason `Unschedulable` (the `FailedScheduling` event).
    Unschedulable,
    /// `CreateContainerConfigError`: a Secret or ConfigMap (or one of its keys) is missing.
    ConfigError,
    /// The Deployment's `Progressing` condition says `ProgressDeadlineExceeded`.
    ProgressDeadlineExceeded,
    /// The environment's rollout timeout passed without a clearer reason.
    Timeout,
    /// A pre-deploy hook Job failed.
    HookFailed,
    /// Anything else kubectl would call an error (the workload vanished, `OnDelete` strategy).
    Other,
}

impl FailureReason {
    /// The word used in logs, annotations and the report.
    pub fn word(self) -> &'static str {
        match self {
            FailureReason::ImagePull => "ImagePull",
            FailureReason::CrashLoop => "CrashLoopBackOff",
            FailureReason::OomKilled => "OOMKilled",
            FailureReason::Unschedulable => "Unschedulable",
            FailureReason::ConfigError => "CreateContainerConfigError",
            FailureReason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            FailureReason::Timeout => "Timeout",
            FailureReason::HookFailed => "HookFailed",
            FailureReason::Other => "Failed",
        }
    }
}

/// A classified failure, pointing at the pod and container that show it when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Whether the container restarted, so its previous instance has the interesting log.
    #[serde(skip)]
    pub restarted: bool,
}

impl Failure {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            pod: None,
            container: None,
            restarted: false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.word(), self.message)
    }
}

/// Which signs count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Only signs Kubernetes will not recover from by itself: end the wait now.
    Decisive,
    /// Any sign: the deadline has passed and the best explanation is wanted.
    AtDeadline,
}

/// Whether `pod` was created from `template`: same images per container, and every label and
/// annotation of the template present with the same value. This tells the pods of the rollout
/// being waited for from old ones (and, during a rollback, from the failed new ones) without
/// reading ReplicaSets.
pub fn runs_template(pod: &Pod, template: &PodTemplateSpec) -> bool {
    let contains = |want: Option<&BTreeMap<String, String>>,
                    have: Option<&BTreeMap<String, String>>| {
        want.into_iter()
            .flatten()
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
    };
    let meta = template.metadata.as_ref();
    if !contains(
        meta.and_then(|m| m.labels.as_ref()),
        pod.metadata.labels.as_ref(),
    ) || !contains(
        meta.and_then(|m| m.annotations.as_ref()),
        pod.metadata.annotations.as_ref(),
    ) {
        return false;
    }
    let images = |containers: &[k8s_openapi::api::core::v1::Container]| {
        containers
            .iter()
            .map(|c| (c.name.clone(), c.image.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    match (&template.spec, &pod.spec) {
        (Some(t), Some(p)) => images(&t.containers) == images(&p.containers),
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The most telling failure among `pods` (sorted by name for a stable answer), if any.
///
/// Severity order when several show: missing config, image pull, OOM, crash loop,
/// unschedulable — the first is the one a person should fix first.
pub fn classify_pods(pods: &[&Pod], now: Timestamp, urgency: Urgency) -> Option<Failure> {
    let mut pods: Vec<&Pod> = pods.to_vec();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut found: Vec<(u8, Failure)> = Vec::new();
    for pod in pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in statuses {
            if let Some((rank, mut failure)) = classify_container(cs, urgency) {
                failure.pod = Some(pod_name.clone());
                failure.container = Some(cs.name.clone());
                failure.restarted = cs.restart_count > 0;
                found.push((rank, failure));
            }
        }
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        if let Some(c) = unschedulable {
            let since = c.last_transition_time.as_ref().map(|t| t.0).or(pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0));
            let waited = since
                .map(|s| now.duration_since(s).unsigned_abs())
                .unwrap_or_default();
            if urgency == Urgency::AtDeadline || waited >= UNSCHEDULABLE_GRACE {
                let mut failure = Failure::new(
                    FailureReason::Unschedulable,
                    format!(
                        "pod {pod_name} cannot be scheduled: {}",
                        api::server_text(c.message.as_deref().unwrap_or("no reason given"))
                    ),
                );
                failure.pod = Some(pod_name.clone());
                found.push((4, failure));
            }
        }
    }
    found.sort_by_key(|(rank, _)| *rank);
    found.into_iter().next().map(|(_, f)| f)
}

/// One container's sign, with its severity rank (lower is more telling).
fn classify_container(cs: &ContainerStatus, urgency: Urgency) -> Option<(u8, Failure)> {
    let state = cs.state.clone().unwrap_or_default();
    let last_terminated = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let at_deadline = urgency == Urgency::AtDeadline;
    let name = &cs.name;
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let message = api::server_text(waiting.message.as_deref().unwrap_or_default());
        let with_message = |what: String| {
            if message.is_empty() {
                what
            } else {
                format!("{what}: {message}")
            }
        };
        match reason {
            "CreateContainerConfigError" => {
                return Some((
                    0,
                    Failure::new(
                        FailureReason::ConfigError,
                        with_message(format!("container {name} cannot start")),
                    ),
                ));
            }
            "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                return Some((
                    1,
                    Failure::new(
                        FailureReason::ImagePull,
                        with_message(format!("container {name}: {reason}")),
                    ),
                ));
            }
            "ErrImagePull" if at_deadline => {
                return Some((
                    1,
                    Failure::new(
                        FailureReason::ImagePull,
                        with_message(format!("container {name}: {reason}")),
                    ),
                ));
            }
            "CrashLoopBackOff" => return Some(crash(cs, last_terminated)),
            _ => {}
        }
    }
    let oom_now = state
        .terminated
        .as_ref()
        .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"));
    if last_terminated.is_some()
        && (cs.restart_count >= CRASH_RESTARTS || (at_deadline && cs.restart_count > 0))
        && !cs.ready
    {
        return Some(crash(cs, last_terminated));
    }
    if at_deadline && oom_now {
        return Some((
            2,
            Failure::new(
                FailureReason::OomKilled,
                format!("container {name} was killed for exceeding its memory limit"),
            ),
        ));
    }
    None
}

fn crash(
    cs: &ContainerStatus,
    last: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>,
) -> (u8, Failure) {
    let name = &cs.name;
    let restarts = cs.restart_count;
    match last {
        Some(t) if t.reason.as_deref() == Some("OOMKilled") => (
            2,
            Failure::new(
                FailureReason::OomKilled,
                format!(
                    "container {name} was killed for exceeding its memory limit (exit code {}, {restarts} restarts)",
                    t.exit_code
                ),
            ),
        ),
        Some(t) => (
            3,
            Failure::new(
                FailureReason::CrashLoop,
                format!(
                    "container {name} keeps exiting: {} (exit code {}, {restarts} restarts)",
                    t.reason.as_deref().unwrap_or("Error"),
                    t.exit_code
                ),
            ),
        ),
        None => (
            3,
            Failure::new(
                FailureReason::CrashLoop,
                format!("container {name} is in CrashLoopBackOff ({restarts} restarts)"),
            ),
        ),
    }
}

/// What a pod looked like, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodState {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
    pub containers: Vec<ContainerState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerState {
    pub name: String,
    /// `running`, `waiting: <reason>: <message>`, `terminated: <reason> (exit code N)`.
    pub state: String,
    pub ready: bool,
    pub restarts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<String>,
}

pub fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    let scheduling = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| {
            api::server_text(&format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or("NotScheduled"),
                c.message.as_deref().unwrap_or_default()
            ))
        });
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .map(|cs| {
            let state = cs.state.clone().unwrap_or_default();
            let text = if let Some(w) = &state.waiting {
                let reason = w.reason.as_deref().unwrap_or("Waiting");
                match w.message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("waiting: {reason}: {}", api::server_text(m)),
                    None => format!("waiting: {reason}"),
                }
            } else if let Some(t) = &state.terminated {
                format!(
                    "terminated: {} (exit code {})",
                    t.reason.as_deref().unwrap_or("Terminated"),
                    t.exit_code
                )
            } else if state.running.is_some() {
                "running".to_string()
            } else {
                "unknown".to_string()
            };
            ContainerState {
                name: cs.name.clone(),
                state: text,
                ready: cs.ready,
                restarts: cs.restart_count,
                last_termination: cs
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| {
                        format!(
                            "{} (exit code {})",
                            t.reason.as_deref().unwrap_or("Terminated"),
                            t.exit_code
                        )
                    }),
            }
        })
        .collect();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    PodState {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Unknown".into()),
        ready,
        scheduling,
        containers,
    }
}

/// One event, as `kubectl describe` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    /// `pod/web-5d8f-abc12`.
    pub object: String,
    pub message: String,
    pub count: i32,
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The last [`EVENTS`] events about `name` or anything named after it (its ReplicaSets and
/// pods: `web-5d8f`, `web-5d8f-abc12`), oldest first.
pub fn recent_events(events: &[Event], name: &str) -> Vec<EventLine> {
    let prefix = format!("{name}-");
    let mut about: Vec<&Event> = events
        .iter()
        .filter(|e| {
            let object = e.involved_object.name.as_deref().unwrap_or_default();
            object == name || object.starts_with(&prefix)
        })
        .collect();
    // Timestamps have second precision; the resourceVersion orders events within a second
    // (it is opaque, but numeric in practice; a non-number sorts as 0).
    about.sort_by_key(|e| {
        let version = e
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        (event_time(e), version)
    });
    let skip = about.len().saturating_sub(EVENTS);
    about
        .into_iter()
        .skip(skip)
        .map(|e| EventLine {
            time: event_time(e).map(|t| t.to_string()),
            type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
            reason: e.reason.clone().unwrap_or_default(),
            object: format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .as_deref()
                    .unwrap_or("object")
                    .to_lowercase(),
                e.involved_object.name.as_deref().unwrap_or_default()
            ),
            message: api::server_text(e.message.as_deref().unwrap_or_default()),
            count: e.count.unwrap_or(1),
        })
        .collect()
}

/// Everything known about one failure, for the log and the JSON report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// `deployment/web`, or `job/migrate-database-1a2b3c4d` for a hook.
    pub object: String,
    pub failure: Failure,
    pub pods: Vec<PodState>,
    pub events: Vec<EventLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogTail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogTail {
    pub pod: String,
    pub container: String,
    /// Whether this is the previous (crashed) instance's log.
    pub previous: bool,
    pub lines: Vec<String>,
}

/// Reads pods (by `selector`), events and the failing container's log tail for `failure`.
/// Best effort: what cannot be read is left out, since the failure itself is already known.
pub async fn collect(
    client: &Client,
    namespace: &str,
    object: &str,
    name: &str,
    selector: Option<&str>,
    failure: &Failure,
) -> Diagnosis {
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = match selector {
        Some(selector) => {
            let params = ListParams::default().labels(selector);
            api::retrying("listing pods", || pods_api.list(&params))
                .await
                .map(|l| l.items)
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let events_api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let all = ListParams::default();
    let events = api::retrying("listing events", || events_api.list(&all))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut failure = failure.clone();
    // A timeout without a pod named: show the log of the first pod that is not ready.
    if failure.pod.is_none()
        && let Some(pod) = pods.iter().find(|p| !pod_state(p).ready)
    {
        failure.pod = pod.metadata.name.clone();
        failure.container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone());
    }
    let logs = match (&failure.pod, &failure.container) {
        (Some(pod), Some(container)) => {
            log_tail(&pods_api, pod, container, failure.restarted).await
        }
        _ => None,
    };
    let mut pod_states: Vec<PodState> = pods.iter().map(pod_state).collect();
    pod_states.sort_by(|a, b| a.name.cmp(&b.name));
    Diagnosis {
        object: object.to_string(),
        failure,
        pods: pod_states,
        events: recent_events(&events, name),
        logs,
    }
}

/// The last [`LOG_LINES`] lines of a container's log (its previous instance after a restart).
pub async fn log_tail(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    previous: bool,
) -> Option<LogTail> {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(LOG_LINES),
        previous,
        ..LogParams::default()
    };
    let text = match api::retrying("reading logs", || pods.logs(pod, &params)).await {
        Ok(text) => text,
        // The previous instance may not exist yet; the current one may have something.
        Err(_) if previous => {
            let params = LogParams {
                previous: false,
                ..params.clone()
            };
            api::retrying("reading logs", || pods.logs(pod, &params))
                .await
                .ok()?
        }
        Err(_) => return None,
    };
    Some(LogTail {
        pod: pod.to_string(),
        container: container.to_string(),
        previous,
        lines: text.lines().map(api::server_text).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    fn now() -> Timestamp {
        "2025-01-01T00:10:00Z".parse().unwrap()
    }

    /// (case, pod YAML, urgency, expected reason and message)
    type PodCase = (
        &'static str,
        &'static str,
        Urgency,
        Option<(FailureReason, &'static str)>,
    );

    const POD_CASES: &[PodCase] = &[
        (
            "a running ready pod is fine",
            "metadata: {name: web-1}
status:
  phase: Running
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: true, restartCount: 0, state: {running: {}}}",
            Urgency::AtDeadline,
            None,
        ),
        (
            "ImagePullBackOff is decisive",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - name: web
    image: x
    imageID: ''
    ready: false
    restartCount: 0
    state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image \"x\"'}}",
            Urgency::Decisive,
            Some((
                FailureReason::ImagePull,
                "container web: ImagePullBackOff: Back-off pulling image \"x\"",
            )),
        ),
        (
            "a first ErrImagePull may be transient",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ErrImagePull}}}",
            Urgency::Decisive,
            None,
        ),
        (
            "ErrImagePull explains a timeout",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ErrImagePull, message: manifest unknown}}}",
            Urgency::AtDeadline,
            Some((
                FailureReason::ImagePull,
                "container web: ErrImagePull: manifest unknown",
            )),
        ),
        (
            "CrashLoopBackOff is decisive and names the last exit",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - name: web
    image: x
    imageID: ''
    ready: false
    restartCount: 3
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {reason: Error, exitCode: 1}}",
            Urgency::Decisive,
            Some((
                FailureReason::CrashLoop,
                "container web keeps exiting: Error (exit code 1, 3 restarts)",
            )),
        ),
        (
            "a crash loop of OOM kills is OOMKilled",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - name: web
    image: x
    imageID: ''
    ready: false
    restartCount: 1
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {reason: OOMKilled, exitCode: 137}}",
            Urgency::Decisive,
            Some((
                FailureReason::OomKilled,
                "container web was killed for exceeding its memory limit (exit code 137, 1 restarts)",
            )),
        ),
        (
            "repeated restarts are a crash loop before the kubelet says so",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - name: web
    image: x
    imageID: ''
    ready: false
    restartCount: 2
    state: {running: {}}
    lastState: {terminated: {reason: Error, exitCode: 2}}",
            Urgency::Decisive,
            Some((
                FailureReason::CrashLoop,
                "container web keeps exiting: Error (exit code 2, 2 restarts)",
            )),
        ),
        (
            "one OOM kill is not yet decisive",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 0, state: {terminated: {reason: OOMKilled, exitCode: 137}}}",
            Urgency::Decisive,
            None,
        ),
        (
            "one OOM kill explains a timeout",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 0, state: {terminated: {reason: OOMKilled, exitCode: 137}}}",
            Urgency::AtDeadline,
            Some((
                FailureReason::OomKilled,
                "container web was killed for exceeding its memory limit",
            )),
        ),
        (
            "a missing config key is decisive",
            "metadata: {name: web-1}
status:
  containerStatuses:
  - name: web
    image: x
    imageID: ''
    ready: false
    restartCount: 0
    state: {waiting: {reason: CreateContainerConfigError, message: couldn't find key DB_URL in Secret testing/db}}",
            Urgency::Decisive,
            Some((
                FailureReason::ConfigError,
                "container web cannot start: couldn't find key DB_URL in Secret testing/db",
            )),
        ),
        (
            "a failing init container counts too",
            "metadata: {name: web-1}
status:
  initContainerStatuses:
  - {name: migrate, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: InvalidImageName}}}",
            Urgency::Decisive,
            Some((FailureReason::ImagePull, "container migrate: InvalidImageName")),
        ),
        (
            "unschedulable for longer than the grace is decisive",
            "metadata: {name: web-1}
status:
  phase: Pending
  conditions:
  - {type: PodScheduled, status: 'False', reason: Unschedulable, lastTransitionTime: '2025-01-01T00:09:00Z', message: '0/3 nodes are available: 3 Insufficient cpu.'}",
            Urgency::Decisive,
            Some((
                FailureReason::Unschedulable,
                "pod web-1 cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.",
            )),
        ),
        (
            "freshly unschedulable leaves time for an autoscaler",
            "metadata: {name: web-1}
status:
  phase: Pending
  conditions:
  - {type: PodScheduled, status: 'False', reason: Unschedulable, lastTransitionTime: '2025-01-01T00:09:50Z'}",
            Urgency::Decisive,
            None,
        ),
        (
            "freshly unschedulable explains a timeout",
            "metadata: {name: web-1}
status:
  phase: Pending
  conditions:
  - {type: PodScheduled, status: 'False', reason: Unschedulable, lastTransitionTime: '2025-01-01T00:09:50Z'}",
            Urgency::AtDeadline,
            Some((
                FailureReason::Unschedulable,
                "pod web-1 cannot be scheduled: no reason given",
            )),
        ),
        (
            "a slow pod is just slow",
            "metadata: {name: web-1}
status:
  phase: Running
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 0, state: {running: {}}}",
            Urgency::AtDeadline,
            None,
        ),
    ];

    /// Each sign, decisive or only at the deadline, from a realistic pod status.
    #[test]
    fn pods_are_classified_by_their_container_states() {
        for (name, yaml, urgency, want) in POD_CASES {
            let p = pod(yaml);
            let got = classify_pods(&[&p], now(), *urgency);
            let got = got.as_ref().map(|f| (f.reason, f.message.as_str()));
            assert_eq!(got, *want, "case: {name}");
        }
    }

    #[test]
    fn the_most_telling_failure_wins_and_names_its_container() {
        let crash = pod("metadata: {name: web-a}
status:
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 4, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {reason: Error, exitCode: 1}}}");
        let config = pod("metadata: {name: web-b}
status:
  containerStatuses:
  - {name: sidecar, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: CreateContainerConfigError}}}");
        let failure = classify_pods(&[&crash, &config], now(), Urgency::Decisive).unwrap();
        assert_eq!(failure.reason, FailureReason::ConfigError);
        assert_eq!(failure.pod.as_deref(), Some("web-b"));
        assert_eq!(failure.container.as_deref(), Some("sidecar"));
        assert!(!failure.restarted);
        let failure = classify_pods(&[&crash], now(), Urgency::Decisive).unwrap();
        assert!(
            failure.restarted,
            "a crashed container's previous log is the one to read"
        );
    }

    #[test]
    fn pods_are_matched_to_the_template_they_run() {
        let template: PodTemplateSpec = serde_saphyr::from_str(
            "metadata:
  labels: {app: web}
  annotations: {promote.studysphere.dev/config-hash: abc}
spec:
  containers: [{name: web, image: 'r.io/web@sha256:new'}]",
        )
        .unwrap();
        let new = pod("metadata:
  name: web-new
  labels: {app: web, pod-template-hash: '1'}
  annotations: {promote.studysphere.dev/config-hash: abc}
spec:
  containers: [{name: web, image: 'r.io/web@sha256:new'}]");
        let old_image = pod("metadata:
  name: web-old
  labels: {app: web, pod-template-hash: '2'}
  annotations: {promote.studysphere.dev/config-hash: abc}
spec:
  containers: [{name: web, image: 'r.io/web@sha256:old'}]");
        let old_config = pod("metadata:
  name: web-old-config
  labels: {app: web, pod-template-hash: '3'}
  annotations: {promote.studysphere.dev/config-hash: def}
spec:
  containers: [{name: web, image: 'r.io/web@sha256:new'}]");
        assert!(runs_template(&new, &template));
        assert!(!runs_template(&old_image, &template));
        assert!(!runs_template(&old_config, &template));
    }

    #[test]
    fn pod_state_reads_like_kubectl_describe() {
        let p = pod("metadata: {name: web-1}
status:
  phase: Running
  conditions: [{type: Ready, status: 'False'}]
  containerStatuses:
  - {name: web, image: x, imageID: '', ready: false, restartCount: 2, state: {waiting: {reason: CrashLoopBackOff, message: back-off 20s}}, lastState: {terminated: {reason: OOMKilled, exitCode: 137}}}");
        let state = pod_state(&p);
        assert_eq!(state.phase, "Running");
        assert!(!state.ready);
        assert_eq!(
            state.containers[0].state,
            "waiting: CrashLoopBackOff: back-off 20s"
        );
        assert_eq!(
            state.containers[0].last_termination.as_deref(),
            Some("OOMKilled (exit code 137)")
        );
    }

    #[test]
    fn recent_events_are_about_the_workload_and_its_children() {
        let events: Vec<Event> = serde_saphyr::from_str(
            "- {metadata: {name: a}, involvedObject: {kind: Pod, name: web-5d8f-x1}, reason: BackOff, message: back-off, type: Warning, lastTimestamp: '2025-01-01T00:02:00Z', count: 3}
- {metadata: {name: b}, involvedObject: {kind: Deployment, name: web}, reason: ScalingReplicaSet, message: scaled up, lastTimestamp: '2025-01-01T00:01:00Z'}
- {metadata: {name: c}, involvedObject: {kind: Pod, name: webhook-1}, reason: Pulled, lastTimestamp: '2025-01-01T00:03:00Z'}
- {metadata: {name: d}, involvedObject: {kind: Pod, name: other-1}, reason: Pulled, lastTimestamp: '2025-01-01T00:04:00Z'}",
        )
        .unwrap();
        let lines = recent_events(&events, "web");
        let reasons: Vec<&str> = lines.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(reasons, ["ScalingReplicaSet", "BackOff"]);
        assert_eq!(lines[1].object, "pod/web-5d8f-x1");
        assert_eq!(lines[1].type_, "Warning");
        assert_eq!(lines[1].count, 3);
    }
}
