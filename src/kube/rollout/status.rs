//! kubectl's rollout status rules, one function per kind, over one object (pure). A missing
//! object has failed: it was deleted while the rollout was awaited.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

use super::{Progress, REVISION_ANNOTATION, RolloutState, WorkloadKind};

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
}
