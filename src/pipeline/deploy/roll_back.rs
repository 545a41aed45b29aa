//! `kubectl rollout undo` for a set of workloads, then the wait that proves the rollback healthy.
//! Used after a failed deploy and by `promote rollback`.

use std::time::Duration;

use kube::Client;

use super::decide::{self, Reason, UndoFailure, UndoVerdict};
use super::roll_out::{show_diagnosis, wait_all};
use crate::actions::{Annotation, Console};
use crate::config::Environment;
use crate::kube::{RollbackError, RolloutOutcome, UndoError, Workload, collect_diagnosis, undo};
use crate::outcome::Classified;
use crate::report::{DeployReport, RollbackOutcome, RollbackReport, WorkloadReport};
use crate::say;

/// What kind of undo failure `e` is.
fn failure_of(e: &RollbackError) -> UndoFailure {
    match e {
        RollbackError::Refused(UndoError::NoHistory(_)) => UndoFailure::NoHistory,
        RollbackError::Refused(UndoError::RevisionNotFound(_)) => UndoFailure::RevisionNotFound,
        e if e.is_not_found() => UndoFailure::NotFound,
        _ => UndoFailure::Other,
    }
}

fn entry(
    rollback: RollbackOutcome,
    to_revision: Option<i64>,
    message: Option<String>,
) -> RollbackReport {
    RollbackReport {
        outcome: rollback,
        to_revision,
        revision_after: None,
        message,
        diagnosis: None,
    }
}

/// Undoes each workload, then waits for those rollouts. Returns whether every workload is back
/// at an earlier revision (or, after a failed deploy, had none).
///
/// # Errors
/// With [`Reason::Asked`], a workload or revision that does not exist is invalid input;
/// otherwise only the API failing while waiting.
#[allow(clippy::too_many_arguments)] // two call sites, each argument a different input
pub async fn roll_back(
    console: &Console,
    client: &Client,
    env: &Environment,
    workloads: &[Workload],
    to_revision: Option<i64>,
    reason: Reason,
    timeout: Duration,
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut waiting: Vec<Workload> = Vec::new();
    for w in workloads {
        let rollback = match undo(client, w, to_revision).await {
            Ok(undo) if undo.skipped => entry(
                RollbackOutcome::Skipped,
                Some(undo.to_revision),
                Some(format!(
                    "current template already matches revision {}",
                    undo.to_revision
                )),
            ),
            Ok(undo) => {
                say!("{w}: rolling back to revision {}", undo.to_revision);
                if !undo.deleted_pods.is_empty() {
                    report.warnings.push(format!(
                        "{w}: deleted the pods stuck on the failed revision ({}) so the StatefulSet can roll back",
                        undo.deleted_pods.join(", ")
                    ));
                }
                waiting.push(w.clone());
                entry(RollbackOutcome::RolledBack, Some(undo.to_revision), None)
            }
            Err(e) => {
                let failure = failure_of(&e);
                // The whole chain, as `{e:#}` prints it.
                let e = anyhow::Error::new(e);
                match decide::undo_verdict(failure, reason) {
                    UndoVerdict::Invalid if failure == UndoFailure::NotFound => {
                        return Err(Classified::invalid(anyhow::anyhow!(
                            "{w} does not exist in namespace {}: nothing to roll back",
                            w.namespace
                        )));
                    }
                    UndoVerdict::Invalid => {
                        return Err(Classified::invalid(e.context(format!("rolling back {w}"))));
                    }
                    UndoVerdict::NotPossible => {
                        report.warnings.push(format!(
                            "{w}: no earlier revision to roll back to; left as deployed"
                        ));
                        entry(RollbackOutcome::NotPossible, None, Some(e.to_string()))
                    }
                    UndoVerdict::Failed => {
                        ok = false;
                        console.annotate(
                            &Annotation::error(format!("{w}: {e:#}"))
                                .title(format!("Rollback failed in {}", env.name)),
                        );
                        entry(RollbackOutcome::Failed, to_revision, Some(format!("{e:#}")))
                    }
                }
            }
        };
        match report.workload_mut(w.kind, &w.name) {
            Some(existing) => existing.rollback = Some(rollback),
            None => {
                let mut named = WorkloadReport::named(w.to_string(), w.kind, w.name.clone());
                named.rollback = Some(rollback);
                report.workloads.push(named);
            }
        }
    }
    let results = wait_all(client, &waiting, timeout).await?;
    for result in results {
        let diagnosis = match &result.failure {
            Some(f) if result.outcome != RolloutOutcome::Complete => {
                ok = false;
                let d = collect_diagnosis(
                    client,
                    &env.namespace,
                    &result.workload.to_string(),
                    &result.workload.name,
                    None,
                    f,
                )
                .await;
                console.annotate(
                    &Annotation::error(format!(
                        "{}: rollback did not roll out: {f}",
                        result.workload
                    ))
                    .title(format!("Rollback failed in {}", env.name)),
                );
                show_diagnosis(console, &d);
                Some(d)
            }
            _ => {
                say!(
                    "{} rolled back{}",
                    result.workload,
                    result
                        .revision
                        .map(|r| format!(" (now revision {r})"))
                        .unwrap_or_default()
                );
                None
            }
        };
        if let Some(rollback) = report
            .workload_mut(result.workload.kind, &result.workload.name)
            .and_then(|w| w.rollback.as_mut())
        {
            rollback.revision_after = result.revision;
            if diagnosis.is_some() {
                rollback.outcome = RollbackOutcome::Failed;
                rollback.diagnosis = diagnosis;
            }
        }
    }
    Ok(ok)
}
