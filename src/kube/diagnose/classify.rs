//! Classifying a failed rollout from its pods (pure, tested by table).
//!
//! Classification comes in two strengths. Decisive signs end the wait at once, because
//! Kubernetes will not recover from them by itself within a rollout: an image that cannot be
//! pulled (`ImagePullBackOff`, `InvalidImageName`), a crash loop, a container that runs out of
//! memory again and again, a missing Secret or ConfigMap key (`CreateContainerConfigError`), a
//! pod that stayed unschedulable for [`UNSCHEDULABLE_GRACE`]. At the deadline, weaker signs
//! (a first `ErrImagePull`, a single OOM kill) explain the timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// How long a pod may stay unschedulable before that counts as a failure. A cluster autoscaler
/// reacts within seconds and reports `TriggeredScaleUp`; a pod that still has no node after this
/// long asks for more than the cluster has (or a taint, affinity or quota forbids it).
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(30);

/// How many restarts make a crash a loop even before the kubelet says `CrashLoopBackOff`.
const CRASH_RESTARTS: i32 = 2;

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
                        crate::untrusted::server_text(
                            c.message.as_deref().unwrap_or("no reason given")
                        )
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
        let message = crate::untrusted::server_text(waiting.message.as_deref().unwrap_or_default());
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
}
