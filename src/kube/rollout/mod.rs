//! Rollout status, exactly as `kubectl rollout status` decides it (protocols.md §6), and the
//! watch loop that feeds live objects into that decision until it is no longer `Waiting`.
//!
//! The decisions are pure functions over one object (`status`, kubectl's rules tested by
//! table); the loop (`wait`) watches the workload (by name, as kubectl does with
//! `fieldSelector=metadata.name=<n>`) and its pods, so a pull failure or a crash loop ends the
//! wait as soon as it is visible instead of at the deadline. kube-runtime's
//! `is_deployment_completed` is deliberately not used: it ignores `observedGeneration`, so it
//! reports the previous rollout as complete before the controller has seen the new one.

mod status;
mod wait;

use std::collections::BTreeMap;

use serde::Serialize;

pub use status::evaluate_value;
pub use wait::{RolloutOutcome, RolloutResult, wait};

/// `deployment.kubernetes.io/revision`: the Deployment controller's revision counter, on the
/// Deployment and on each of its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Where a rollout stands. `Failed` ends the wait early (kubectl: an error from the status
/// viewer), `Complete` ends it successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Still rolling out; the text is kubectl's own progress message.
    Waiting(String),
    Complete,
    Failed(String),
}

/// The three workload kinds whose rollout can be waited for, parsed once from `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn parse(kind: &str) -> Option<WorkloadKind> {
        match kind {
            "Deployment" => Some(WorkloadKind::Deployment),
            "StatefulSet" => Some(WorkloadKind::StatefulSet),
            "DaemonSet" => Some(WorkloadKind::DaemonSet),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// kubectl's lower-case resource name, used in `kind/name` references.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }
}

/// One workload whose rollout is awaited.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.resource(), self.name)
    }
}

/// Counts shown in the progress line: how many of `desired` pods run the new template, are ready
/// and are available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.desired;
        write!(
            f,
            "{}/{d} updated, {}/{d} ready, {}/{d} available",
            self.updated, self.ready, self.available
        )
    }
}

/// The revision a Deployment (or ReplicaSet) carries, if it has a valid one.
pub fn revision_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(REVISION_ANNOTATION)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_kinds_parse_once() {
        assert_eq!(
            WorkloadKind::parse("StatefulSet"),
            Some(WorkloadKind::StatefulSet)
        );
        assert_eq!(WorkloadKind::parse("statefulset"), None);
        assert_eq!(
            Workload {
                kind: WorkloadKind::Deployment,
                namespace: "ns".into(),
                name: "web".into()
            }
            .to_string(),
            "deployment/web"
        );
    }
}
