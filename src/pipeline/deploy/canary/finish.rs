//! How a canary ends: promoted (the stable takes the canary's release, the canary's objects
//! go) or aborted (the stable back at full size first, then the canary's objects removed).

use ::kube::Client;
use jiff::Timestamp;
use serde_json::Value;

use super::super::Deploy;
use super::super::decide::Verdict;
use super::super::roll_out::{self, wait_all};
use super::{Pair, record, write};
use crate::actions::Annotation;
use crate::kube::{self, RolloutOutcome, Workload, WorkloadKind, object_ref};
use crate::outcome::Outcome;
use crate::report::{CanaryDecision, DeployReport, RollbackOutcome, RollbackReport, StepVerdict};
use crate::say;

/// Every step passed: the stable Deployment rolls out the canary's release at full size, then
/// the canary's objects go. A stable that fails to roll out is rolled back like any rollout.
pub(super) async fn promote(
    deploy: &Deploy<'_>,
    client: &Client,
    pairs: &[Pair],
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    say!("Canary passed every step: promoting");
    let stables: Vec<Value> = pairs
        .iter()
        .map(|p| kube::stable_deployment(&p.rendered))
        .collect();
    let applied = write(deploy, client, &stables, report).await;
    let workloads: Vec<Workload> = pairs.iter().map(|p| p.stable.clone()).collect();
    for pair in pairs {
        if let Some(entry) = report.workload_mut(WorkloadKind::Deployment, &pair.stable.name) {
            entry.image_after = pair.image_after.clone();
            entry.changed = true;
            entry.awaited = true;
        }
    }
    let results = if applied {
        wait_all(client, &workloads, deploy.options.timeout).await?
    } else {
        Vec::new()
    };
    let complete = applied && record(report, &results);
    if !complete {
        roll_out::diagnose_failures(deploy, client, &stables, &results, report).await;
        let outcome = roll_out::fail_and_roll_back(
            deploy,
            client,
            &workloads,
            report,
            "the stable did not roll out the canary's release",
        )
        .await;
        remove_canaries(client, pairs, report).await;
        if let Some(c) = report.canary.as_mut() {
            c.decision = Some(CanaryDecision::AbortFailed);
        }
        return outcome;
    }
    remove_canaries(client, pairs, report).await;
    if let Some(c) = report.canary.as_mut() {
        c.decision = Some(CanaryDecision::Promoted);
        c.promoted_at = Some(Timestamp::now());
    }
    report.summary = format!(
        "deployed {} to {} by canary ({} steps passed, promoted)",
        pairs
            .iter()
            .filter_map(|p| p.image_after.clone())
            .collect::<Vec<_>>()
            .join(", "),
        deploy.environment.name,
        deploy_steps(report)
    );
    say!("Done: {}", report.summary);
    Ok(Outcome::Success)
}

fn deploy_steps(report: &DeployReport) -> usize {
    report
        .canary
        .as_ref()
        .and_then(|c| c.steps.iter().map(|s| s.step).max())
        .unwrap_or(0)
}

/// A step failed: the stable back at full size (and ready) first, then the canary's objects
/// removed, so that the stable serves all traffic; exit 1, reported as rolled back.
pub(super) async fn abort(
    deploy: &Deploy<'_>,
    client: &Client,
    pairs: &mut [Pair],
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    let decided = tokio::time::Instant::now();
    let reason = report
        .canary
        .as_ref()
        .and_then(|c| {
            c.steps
                .iter()
                .rev()
                .find(|s| s.verdict != StepVerdict::Passed)
                .map(|s| format!("step {} ({} %): {}", s.step, s.weight, s.summary))
        })
        .unwrap_or_else(|| "a step failed".to_string());
    say!("Canary aborted at {reason}; restoring the stable release");
    if let Some(c) = report.canary.as_mut() {
        c.abort_decided_at = Some(Timestamp::now());
        c.reason = Some(reason.clone());
    }
    let mut errors = Vec::new();
    // NGINX stops sending the canary its weight at once; the stable's pods take it.
    for pair in pairs.iter() {
        if let Some((_, ingress)) = &pair.ingress {
            let object = kube::canary_ingress(ingress, &pair.service, 0);
            if let Err(e) = kube::remove_object(client, &object).await {
                errors.push(format!(
                    "removing {}: {}",
                    object_ref(&object),
                    crate::outcome::chain(&e)
                ));
            }
        }
    }
    let mut raised = Vec::new();
    for pair in pairs.iter_mut() {
        if pair.stable_now != pair.replicas {
            match kube::scale_deployment(
                client,
                &pair.stable.namespace,
                &pair.stable.name,
                pair.replicas,
            )
            .await
            {
                Ok(()) => {
                    pair.stable_now = pair.replicas;
                    raised.push(pair.stable.clone());
                }
                Err(e) => errors.push(format!(
                    "scaling {}: {}",
                    pair.stable,
                    crate::outcome::chain(&e)
                )),
            }
        }
    }
    let results = wait_all(client, &raised, deploy.options.timeout).await?;
    let restored = errors.is_empty()
        && results
            .iter()
            .all(|r| r.outcome == RolloutOutcome::Complete);
    errors.extend(
        results
            .iter()
            .filter(|r| r.outcome != RolloutOutcome::Complete)
            .map(|r| format!("{} did not come back to full size", r.workload)),
    );
    // Only then the canary's pods go: a stable at zero (100 %) is back before they leave.
    let mut drained = Vec::new();
    for pair in pairs.iter() {
        match kube::scale_deployment(client, &pair.canary.namespace, &pair.canary.name, 0).await {
            Ok(()) => drained.push(pair.canary.clone()),
            // Never created: its apply was what failed.
            Err(e) if e.is_not_found() => {}
            Err(e) => errors.push(format!(
                "scaling {} to 0: {}",
                pair.canary,
                crate::outcome::chain(&e)
            )),
        }
    }
    let results = wait_all(client, &drained, deploy.options.timeout).await?;
    errors.extend(
        results
            .iter()
            .filter(|r| r.outcome != RolloutOutcome::Complete)
            .map(|r| format!("{} did not scale to 0", r.workload)),
    );
    let restored = restored && errors.is_empty();
    let removed = remove_canaries(client, pairs, report).await;
    let ok = restored && removed;
    let elapsed = decided.elapsed();
    if let Some(c) = report.canary.as_mut() {
        c.decision = Some(if ok {
            CanaryDecision::Aborted
        } else {
            CanaryDecision::AbortFailed
        });
        if ok {
            c.stable_restored_at = Some(Timestamp::now());
            c.abort_to_stable_ms = Some(elapsed.as_millis());
        }
    }
    for pair in pairs.iter() {
        if let Some(entry) = report.workload_mut(WorkloadKind::Deployment, &pair.canary.name) {
            entry.rollback = Some(RollbackReport {
                outcome: if ok {
                    RollbackOutcome::RolledBack
                } else {
                    RollbackOutcome::Failed
                },
                to_revision: None,
                revision_after: None,
                message: Some(if ok {
                    format!("canary removed; {} serves all traffic", pair.stable)
                } else {
                    errors.join("; ")
                }),
                diagnosis: None,
            });
        }
        if let Some(entry) = report.workload_mut(WorkloadKind::Deployment, &pair.stable.name) {
            entry.image_after = entry.image_before.clone();
        }
    }
    let why = format!("canary aborted at {reason}");
    let verdict = if ok {
        Verdict::RolledBack
    } else {
        Verdict::RollbackFailed
    };
    report.summary = verdict.summary(&deploy.environment.name, &why);
    say!(
        "Stable serving all traffic {:.1}s after the abort",
        elapsed.as_secs_f64()
    );
    let env = &deploy.environment.name;
    deploy.console.annotate(&if ok {
        Annotation::warning(report.summary.clone()).title(format!("Canary aborted in {env}"))
    } else {
        Annotation::error(report.summary.clone()).title(format!("Canary abort failed in {env}"))
    });
    Ok(if ok {
        Outcome::Failed
    } else {
        Outcome::RollbackFailed
    })
}

/// Removes every canary's objects: the canary Ingress first (NGINX stops sending it traffic at
/// once), then its Service and Deployment. Returns whether all went; failures are warnings.
async fn remove_canaries(client: &Client, pairs: &[Pair], report: &mut DeployReport) -> bool {
    let mut ok = true;
    for pair in pairs {
        let mut objects = Vec::new();
        if let Some((service, ingress)) = &pair.ingress {
            objects.push(kube::canary_ingress(ingress, &pair.service, 0));
            objects.push(kube::canary_service(service));
        }
        objects.push(kube::canary_deployment(&pair.rendered, 0));
        for object in &objects {
            match kube::remove_object(client, object).await {
                Ok(_) => say!("Removed {}", object_ref(object)),
                Err(e) => {
                    ok = false;
                    report.warnings.push(format!(
                        "could not remove {}: {}",
                        object_ref(object),
                        crate::outcome::chain(&e)
                    ));
                }
            }
        }
    }
    ok
}
