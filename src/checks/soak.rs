//! The post-deploy soak: for the environment's `soak.duration`, watch the pods of each
//! Deployment's current revision. More restarts than `maxRestarts` (over all of them), or a pod
//! that was Ready turning unready, fails the verification.
//!
//! [`SoakWatch::observe`] decides from one look at the pods (pure, tested with YAML fixtures);
//! [`run`] only finds the pods and feeds it until the duration is over.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::time::Instant;

use super::report::{CheckKind, CheckReport, SoakReport};
use crate::config::Soak;

/// What one look at the pods says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoakState {
    /// Within limits: total restarts so far.
    Healthy {
        restarts: u32,
    },
    Failed(String),
}

/// The soak's memory between looks: which pods have been seen Ready.
#[derive(Debug, Default)]
pub struct SoakWatch {
    max_restarts: u32,
    seen_ready: BTreeSet<String>,
    /// Every pod seen, for the report.
    pub pods: BTreeSet<String>,
}

impl SoakWatch {
    pub fn new(max_restarts: u32) -> SoakWatch {
        SoakWatch {
            max_restarts,
            ..SoakWatch::default()
        }
    }

    /// Judges the pods of the current revision as they are now.
    ///
    /// A pod being deleted is ignored for readiness (scale-down, eviction), not for its restarts.
    /// A pod that has never been Ready (one starting after a scale-up) is not "turning" unready.
    pub fn observe(&mut self, pods: &[Pod]) -> SoakState {
        let mut restarts = 0u32;
        let mut worst: Option<(u32, String)> = None;
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            self.pods.insert(name.clone());
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            for c in &statuses {
                let n = u32::try_from(c.restart_count).unwrap_or(0);
                restarts += n;
                if n > 0 && worst.as_ref().is_none_or(|(m, _)| n > *m) {
                    let last = c
                        .last_state
                        .as_ref()
                        .and_then(|s| s.terminated.as_ref())
                        .map(|t| {
                            format!(
                                ", last exit: {} (exit code {})",
                                t.reason.as_deref().unwrap_or("terminated"),
                                t.exit_code
                            )
                        })
                        .unwrap_or_default();
                    worst = Some((
                        n,
                        format!(
                            "pod {name}: container {} restarted {n} time{}{last}",
                            c.name,
                            if n == 1 { "" } else { "s" }
                        ),
                    ));
                }
            }
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match ready_condition(pod) {
                Ready::Yes => {
                    self.seen_ready.insert(name);
                }
                Ready::No(why) if self.seen_ready.contains(&name) => {
                    return SoakState::Failed(format!("pod {name} turned unready{why}"));
                }
                Ready::No(_) => {}
            }
        }
        if restarts > self.max_restarts {
            let detail = worst.map(|(_, w)| format!(" ({w})")).unwrap_or_default();
            return SoakState::Failed(format!(
                "{restarts} restart{} of the new pods, at most {} allowed{detail}",
                if restarts == 1 { "" } else { "s" },
                self.max_restarts
            ));
        }
        SoakState::Healthy { restarts }
    }
}

enum Ready {
    Yes,
    /// Not ready, with `: reason` when the pod says why.
    No(String),
}

fn ready_condition(pod: &Pod) -> Ready {
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    match condition {
        Some(c) if c.status == "True" => Ready::Yes,
        Some(c) => {
            let waiting = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
            let why = waiting
                .or_else(|| c.reason.clone())
                .or_else(|| c.message.clone());
            Ready::No(why.map(|w| format!(": {w}")).unwrap_or_default())
        }
        None => Ready::No(String::new()),
    }
}

/// How often to look: ten looks per soak, at least every 5 s and at most every 200 ms.
pub fn interval(duration: Duration) -> Duration {
    (duration / 10).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

/// Watches the current-revision pods of `deployments` for `soak.duration`.
pub async fn run(
    client: &Client,
    namespace: &str,
    deployments: &[String],
    soak: &Soak,
) -> CheckReport {
    let started = Instant::now();
    let mut report = CheckReport::new(CheckKind::Soak, "pods");
    let mut watch = SoakWatch::new(soak.max_restarts);
    let mut selectors = Vec::new();
    for name in deployments {
        match current_pods_selector(client, namespace, name).await {
            Ok(selector) => selectors.push(selector),
            Err(why) => {
                report.reason = Some(why);
                report.soak = Some(soak_report(&watch, soak, 0, started));
                return report;
            }
        }
    }
    crate::say!(
        "Soak: watching the new pods of {} for {}",
        deployments
            .iter()
            .map(|d| format!("deployment/{d}"))
            .collect::<Vec<_>>()
            .join(", "),
        crate::config::units::format_duration(soak.duration)
    );
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = started + soak.duration;
    let mut restarts = 0;
    loop {
        let mut pods = Vec::new();
        for selector in &selectors {
            let params = ListParams::default().labels(selector);
            let listed = crate::kube::retrying("listing pods", || pods_api.list(&params)).await;
            match listed {
                Ok(list) => pods.extend(list.items),
                Err(e) => {
                    report.reason = Some(format!("listing the pods failed: {e}"));
                    report.soak = Some(soak_report(&watch, soak, restarts, started));
                    return report;
                }
            }
        }
        match watch.observe(&pods) {
            SoakState::Healthy { restarts: n } => restarts = n,
            SoakState::Failed(why) => {
                report.reason = Some(why);
                report.soak = Some(soak_report(&watch, soak, restarts, started));
                report.duration_ms = started.elapsed().as_millis();
                return report;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(interval(soak.duration).min(deadline - now)).await;
    }
    report.passed = true;
    report.soak = Some(soak_report(&watch, soak, restarts, started));
    report.duration_ms = started.elapsed().as_millis();
    report
}

fn soak_report(watch: &SoakWatch, soak: &Soak, restarts: u32, started: Instant) -> SoakReport {
    SoakReport {
        watched_ms: started.elapsed().as_millis(),
        max_restarts: soak.max_restarts,
        restarts,
        pods: watch.pods.iter().cloned().collect(),
    }
}

/// The label selector of the pods of the Deployment's current revision: its selector plus the
/// `pod-template-hash` of the ReplicaSet with the Deployment's revision.
async fn current_pods_selector(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = crate::kube::retrying("reading the Deployment", || deployments.get_opt(name))
        .await
        .map_err(|e| format!("reading deployment/{name} failed: {e}"))?
        .ok_or_else(|| format!("deployment/{name} does not exist in namespace {namespace}"))?;
    let labels = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let revision = crate::kube::revision_of(deployment.metadata.annotations.as_ref());
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&selector);
    let owned = crate::kube::retrying("listing ReplicaSets", || sets.list(&params))
        .await
        .map_err(|e| format!("listing the ReplicaSets of deployment/{name} failed: {e}"))?;
    let uid = deployment.metadata.uid.clone();
    let current = owned.items.iter().find(|rs| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(&o.uid) == uid.as_ref())
            && crate::kube::revision_of(rs.metadata.annotations.as_ref()) == revision
    });
    let hash = current
        .and_then(|rs| {
            rs.metadata
                .labels
                .as_ref()?
                .get("pod-template-hash")
                .cloned()
        })
        .ok_or_else(|| format!("deployment/{name} has no ReplicaSet for its current revision"))?;
    Ok(if selector.is_empty() {
        format!("pod-template-hash={hash}")
    } else {
        format!("{selector},pod-template-hash={hash}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    const READY: &str = "metadata: {name: web-1}
status:
  conditions: [{type: Ready, status: 'True'}]
  containerStatuses: [{name: web, image: web, imageID: '', ready: true, restartCount: 0}]";

    const UNREADY: &str = "metadata: {name: web-1}
status:
  conditions: [{type: Ready, status: 'False', reason: ContainersNotReady}]
  containerStatuses: [{name: web, image: web, imageID: '', ready: false, restartCount: 0}]";

    const CRASHING: &str = "metadata: {name: web-1}
status:
  conditions: [{type: Ready, status: 'False', reason: ContainersNotReady}]
  containerStatuses:
  - name: web
    image: web
    imageID: ''
    ready: false
    restartCount: 2
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {reason: Error, exitCode: 1}}";

    const RESTARTED_READY: &str = "metadata: {name: web-2}
status:
  conditions: [{type: Ready, status: 'True'}]
  containerStatuses: [{name: web, image: web, imageID: '', ready: true, restartCount: 1}]";

    const TERMINATING_UNREADY: &str =
        "metadata: {name: web-1, deletionTimestamp: '2025-01-01T00:00:00Z'}
status:
  conditions: [{type: Ready, status: 'False'}]";

    #[test]
    fn soak_looks() {
        // (case, max restarts, looks in order, the state after the last look)
        let cases: &[(&str, u32, &[&[&str]], SoakState)] = &[
            ("ready pods pass", 0, &[&[READY]], SoakState::Healthy { restarts: 0 }),
            ("no pods yet pass", 0, &[&[]], SoakState::Healthy { restarts: 0 }),
            (
                "a pod that was ready turning unready fails",
                0,
                &[&[READY], &[UNREADY]],
                SoakState::Failed("pod web-1 turned unready: ContainersNotReady".into()),
            ),
            (
                "a pod never seen ready is still starting",
                0,
                &[&[UNREADY]],
                SoakState::Healthy { restarts: 0 },
            ),
            (
                "the waiting reason says more than the condition",
                5,
                &[&[READY], &[CRASHING]],
                SoakState::Failed("pod web-1 turned unready: CrashLoopBackOff".into()),
            ),
            (
                "restarts beyond the threshold fail, naming the worst container",
                1,
                &[&[CRASHING]],
                SoakState::Failed(
                    "2 restarts of the new pods, at most 1 allowed (pod web-1: container web restarted 2 times, last exit: Error (exit code 1))".into(),
                ),
            ),
            (
                "restarts count over all pods",
                2,
                &[&[CRASHING, RESTARTED_READY]],
                SoakState::Failed(
                    "3 restarts of the new pods, at most 2 allowed (pod web-1: container web restarted 2 times, last exit: Error (exit code 1))".into(),
                ),
            ),
            (
                "restarts at the threshold pass",
                1,
                &[&[RESTARTED_READY]],
                SoakState::Healthy { restarts: 1 },
            ),
            (
                "a terminating pod is not turning unready",
                0,
                &[&[READY], &[TERMINATING_UNREADY]],
                SoakState::Healthy { restarts: 0 },
            ),
        ];
        for (case, max, looks, want) in cases {
            let mut watch = SoakWatch::new(*max);
            let mut last = None;
            for look in *looks {
                let pods: Vec<Pod> = look.iter().map(|y| pod(y)).collect();
                last = Some(watch.observe(&pods));
            }
            assert_eq!(last.as_ref(), Some(want), "case: {case}");
        }
    }

    #[test]
    fn looks_ten_times_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(interval(s(300)), s(5));
        assert_eq!(interval(s(20)), s(2));
        assert_eq!(interval(s(1)), Duration::from_millis(200));
    }
}
