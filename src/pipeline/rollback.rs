//! `promote rollback --environment E [--service S] [--to-revision N]`: `kubectl rollout undo`
//! for the workloads of every service in scope (or one), under the same lock as a deploy, then
//! a wait for the rollouts it starts. Exit 0 when every workload is back, 2 when the revision
//! asked for is not in the history, 3 when another run holds the lock, 4 when the rollback
//! itself failed.

use super::Runtime;
use super::deploy::{self, DeployReport, Reason, WorkloadReport};
use super::plan::{PlanRequest, plan};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::config;
use crate::kube::rollout::{Workload, WorkloadKind};
use crate::outcome::{Classified, Outcome};

/// `promote rollback`.
pub async fn run_rollback(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RollbackArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    // Rendering tells which workloads belong to the services in scope; images do not matter.
    let request = PlanRequest {
        environment: Some(args.environment.clone()),
        service: args.service.clone(),
        images: Vec::new(),
        provenance: rt.provenance(),
    };
    let plan = plan(&config, &request)?;
    let env = config
        .environment(&args.environment)
        .expect("plan checked the environment");
    let env_plan = &plan.environments[0];
    let in_scope: Vec<(Workload, &str, &serde_json::Value)> = env_plan
        .services
        .iter()
        .flat_map(|r| r.objects.iter().map(move |o| (r.service.as_str(), o)))
        .filter_map(|(service, o)| {
            let workload = Workload {
                kind: WorkloadKind::parse(o["kind"].as_str()?)?,
                namespace: env.namespace.clone(),
                name: o["metadata"]["name"].as_str()?.to_string(),
            };
            Some((workload, service, o))
        })
        .collect();
    let workloads: Vec<Workload> = in_scope.iter().map(|(w, _, _)| w.clone()).collect();
    if args.to_revision.is_some() && workloads.len() != 1 {
        return Err(Classified::invalid(anyhow::anyhow!(
            "--to-revision names a revision of one workload, and this rollback covers {} ({}): add --service",
            workloads.len(),
            workloads
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let timeout = args.timeout.unwrap_or(env.rollout.timeout);
    let mut report = DeployReport::new("rollback", env);
    let result = async {
        let connection = deploy::connect_to(rt, global, &args.cluster, env).await?;
        report.cluster = Some(connection.description.clone());
        eprintln!("Cluster: {}", connection.description);
        let client = connection.client;
        let services: Vec<String> = env_plan
            .services
            .iter()
            .map(|r| r.service.clone())
            .collect();
        let locks =
            deploy::take_locks(rt, &client, env, &services, args.lock_timeout, &mut report).await?;
        let report = &mut report;
        let rolled_back = async {
            for (workload, service, object) in &in_scope {
                let container = deploy::container_of(&config, service);
                let before = deploy::read_before(&client, object, &container).await?;
                report.workloads.push(WorkloadReport {
                    object: workload.to_string(),
                    kind: workload.kind,
                    name: workload.name.clone(),
                    service: service.to_string(),
                    revision_before: before.revision,
                    revision_after: None,
                    image_before: before.image,
                    image_after: None,
                    changed: false,
                    awaited: false,
                    rollout: None,
                    rollout_ms: None,
                    completed_at: None,
                    diagnosis: None,
                    rollback: None,
                });
            }
            deploy::roll_back(
                rt.console,
                &client,
                env,
                &workloads,
                args.to_revision,
                Reason::Asked,
                timeout,
                report,
            )
            .await
        }
        .await;
        for lock in locks {
            lock.release().await;
        }
        let outcome = if rolled_back? {
            Outcome::Success
        } else {
            Outcome::RollbackFailed
        };
        report.summary = match outcome {
            Outcome::Success => format!(
                "rolled back {} in {}",
                report
                    .workloads
                    .iter()
                    .map(|w| {
                        let r = w.rollback.as_ref();
                        match (r.map(|r| r.outcome), r.and_then(|r| r.to_revision)) {
                            (Some("skipped"), Some(n)) => {
                                format!("{} (already at revision {n})", w.object)
                            }
                            (_, Some(n)) => format!("{} to revision {n}", w.object),
                            _ => w.object.clone(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                env.name
            ),
            _ => format!("rolling back in {} failed: a human must act", env.name),
        };
        eprintln!("{}", report.summary);
        anyhow::Ok(outcome)
    }
    .await;
    deploy::finish_report(
        rt,
        &mut report,
        &result,
        started,
        args.output_dir.as_deref(),
    );
    result
}
