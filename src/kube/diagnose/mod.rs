//! Why a rollout failed, told from its pods and events: pure classification (`classify`,
//! tested by table), what the pods and events look like (`describe`), and the collection of
//! what a person needs to act on it (here: pods, events and the last lines of the failing
//! container's log, read best effort).

mod classify;
mod describe;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use serde::Serialize;

use super::api;

pub use classify::{Failure, FailureReason, Urgency, classify_pods, runs_template};
pub use describe::{ContainerState, EventLine, PodState};
use describe::{pod_state, recent_events};

/// Log lines kept from the failing container.
const LOG_LINES: i64 = 20;

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
async fn log_tail(pods: &Api<Pod>, pod: &str, container: &str, previous: bool) -> Option<LogTail> {
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
        lines: text.lines().map(crate::untrusted::server_text).collect(),
    })
}
