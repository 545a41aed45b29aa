//! What `deploy`, `rollback` and the deploy step of `run` did: plain data, filled in by the
//! pipeline as it goes, serialized as the JSON report and rendered by the run summary.

use jiff::Timestamp;
use serde::Serialize;

use super::blue_green::BlueGreenReport;
use super::canary::CanaryReport;
use crate::checks::VerifyReport;
use crate::checks::analysis::AnalysisReport;
use crate::config::Environment;
use crate::kube::{Diagnosis, HookReport, RolloutOutcome, WorkloadKind};
use crate::outcome::Outcome;

/// The command a [`DeployReport`] belongs to; also names its JSON file (`promote-deploy.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployCommand {
    Deploy,
    Rollback,
    /// The deploy step of `promote run`, reported inside its run report.
    Run,
}

impl DeployCommand {
    pub fn word(self) -> &'static str {
        match self {
            DeployCommand::Deploy => "deploy",
            DeployCommand::Rollback => "rollback",
            DeployCommand::Run => "run",
        }
    }
}

/// What a deploy (or rollback) did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub command: DeployCommand,
    pub environment: String,
    pub namespace: String,
    /// `rolling`, `blue-green` or `canary`: how the release replaced the running one.
    pub strategy: String,
    /// How the cluster was found (context or AKS cluster, and the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// How it ended; [`Outcome::Failed`] until the command says otherwise.
    pub outcome: Outcome,
    /// One line saying what happened.
    pub summary: String,
    pub started_at: Timestamp,
    /// When the outcome was known (the moment "success" is reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub duration_ms: u128,
    pub namespace_created: bool,
    pub locks: Vec<LockReport>,
    /// Objects the dry run (or the apply) refused, in the server's words.
    pub rejected: Vec<Rejection>,
    pub hooks: Vec<HookReport>,
    /// `kind/name` of every object applied.
    pub applied: Vec<String>,
    pub workloads: Vec<WorkloadReport>,
    /// The environment's checks after a successful rollout (absent with `--no-verify` or none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerifyReport>,
    /// The canary's steps and how it ended (`strategy: canary`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryReport>,
    /// Metric analysis of the release's window, one per service (`analysis.prometheus`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<AnalysisReport>,
    /// Blue-green: each service's colours, the switch and every transition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blue_green: Vec<BlueGreenReport>,
    pub warnings: Vec<String>,
}

impl DeployReport {
    pub fn new(command: DeployCommand, env: &Environment, started_at: Timestamp) -> DeployReport {
        DeployReport {
            command,
            environment: env.name.clone(),
            namespace: env.namespace.clone(),
            strategy: env.strategy.word().to_string(),
            cluster: None,
            outcome: Outcome::Failed,
            summary: String::new(),
            started_at,
            finished_at: None,
            duration_ms: 0,
            namespace_created: false,
            locks: Vec::new(),
            rejected: Vec::new(),
            hooks: Vec::new(),
            applied: Vec::new(),
            workloads: Vec::new(),
            verification: None,
            canary: None,
            analysis: Vec::new(),
            blue_green: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The entry of `kind/name`, if the report has one.
    pub fn workload_mut(&mut self, kind: WorkloadKind, name: &str) -> Option<&mut WorkloadReport> {
        self.workloads
            .iter_mut()
            .find(|w| w.kind == kind && w.name == name)
    }

    /// The revision the only Deployment ended at (after a rollback, the one rolled back to), for
    /// the `revision` output; `None` when the report has several Deployments or none.
    pub fn final_revision(&self) -> Option<i64> {
        let revisions: Vec<i64> = self
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Deployment)
            .filter_map(WorkloadReport::final_revision)
            .collect();
        match revisions.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// Whether any workload was rolled back.
    pub fn rolled_back(&self) -> bool {
        self.workloads.iter().any(|w| {
            w.rollback
                .as_ref()
                .is_some_and(|r| r.outcome == RollbackOutcome::RolledBack)
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    pub lease: String,
    pub holder: String,
    pub waited_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub object: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// `deployment/web`.
    pub object: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_before: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_after: Option<String>,
    /// Whether the apply changed it (a new generation).
    pub changed: bool,
    /// Whether its rollout was awaited: it changed, or an earlier rollout had not finished.
    pub awaited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_ms: Option<u128>,
    /// When the rollout was seen complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

impl WorkloadReport {
    /// An entry for a workload known only by name (a rollback of something this run did not
    /// apply).
    pub fn named(object: String, kind: WorkloadKind, name: String) -> WorkloadReport {
        WorkloadReport {
            object,
            kind,
            name,
            service: String::new(),
            revision_before: None,
            revision_after: None,
            image_before: None,
            image_after: None,
            changed: false,
            awaited: false,
            rollout: None,
            rollout_ms: None,
            completed_at: None,
            diagnosis: None,
            rollback: None,
        }
    }

    /// The revision it ended at: after a rollback the one rolled back to, else the rollout's.
    pub fn final_revision(&self) -> Option<i64> {
        self.rollback
            .as_ref()
            .and_then(|r| r.revision_after)
            .or(self.revision_after)
    }
}

/// How undoing one workload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackOutcome {
    /// Undone and rolled out.
    RolledBack,
    /// The current template already matches that revision.
    Skipped,
    /// No earlier revision exists (the first deploy).
    NotPossible,
    Failed,
}

impl RollbackOutcome {
    /// The word the JSON report uses (`rolled-back`).
    pub fn word(self) -> &'static str {
        match self {
            RollbackOutcome::RolledBack => "rolled-back",
            RollbackOutcome::Skipped => "skipped",
            RollbackOutcome::NotPossible => "not-possible",
            RollbackOutcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub outcome: RollbackOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_serializes_with_kebab_outcomes() {
        let mut report = WorkloadReport::named(
            "deployment/web".into(),
            WorkloadKind::Deployment,
            "web".into(),
        );
        report.service = "web".into();
        report.revision_before = Some(3);
        report.revision_after = Some(4);
        report.image_after = Some("r.io/web@sha256:x".into());
        report.changed = true;
        report.awaited = true;
        report.rollout = Some(RolloutOutcome::TimedOut);
        report.rollout_ms = Some(10);
        report.rollback = Some(RollbackReport {
            outcome: RollbackOutcome::NotPossible,
            to_revision: None,
            revision_after: None,
            message: None,
            diagnosis: None,
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rollout"], "timed-out");
        assert_eq!(json["kind"], "Deployment");
        assert_eq!(json["revision_before"], 3);
        assert!(json.get("image_before").is_none());
        assert_eq!(json["rollback"]["outcome"], "not-possible");
        assert_eq!(
            serde_json::to_value(Outcome::RollbackFailed).unwrap(),
            "rollback-failed"
        );
    }
}
