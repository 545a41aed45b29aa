//! What a person needs to see of a failed rollout's pods and events, the way `kubectl
//! describe` shows them: pod and container states, last termination reasons, recent events.
//! Pure; server text is cut to one line.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// Events kept per failing workload, most recent last.
pub const EVENTS: usize = 20;

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
            crate::untrusted::server_text(&format!(
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
                    Some(m) => format!("waiting: {reason}: {}", crate::untrusted::server_text(m)),
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
            message: crate::untrusted::server_text(e.message.as_deref().unwrap_or_default()),
            count: e.count.unwrap_or(1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
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
