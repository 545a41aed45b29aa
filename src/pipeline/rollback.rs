//! `promote rollback --environment E [--service S] [--to-revision N]`: `kubectl rollout undo`
//! for the workloads of every service in scope (or one), under the same lock as a deploy, then
//! a wait for the rollouts it starts. In a blue-green environment it switches each Service's
//! selector back to the previous colour instead (see `deploy::roll_back_colours`). Exit 0 when
//! every workload is back, 2 when the revision asked for is not in the history (or there is no
//! previous colour), 3 when another run holds the lock, 4 when the rollback itself failed.

use jiff::Timestamp;

use super::Runtime;
use super::deploy::{self, Deploy, DeployOptions, Reason};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::config::{self, Strategy};
use crate::kube::Workload;
use crate::outcome::{Classified, Outcome};
use crate::plan::{self, PlanRequest};
use crate::report::{DeployCommand, DeployReport, RollbackOutcome, WorkloadReport};
use crate::say;

/// `promote rollback`.
pub async fn run_rollback(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RollbackArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    // Rendering tells which workloads belong to the services in scope; images do not matter.
    let request = PlanRequest::for_environment(
        &args.environment,
        args.service.as_deref(),
        &[],
        rt.provenance(),
    );
    let target = plan::plan_environment(&config, &args.environment, &request)?;
    let env = target.environment;
    let env_plan = target.objects();
    let in_scope = env_plan.workloads();
    let workloads: Vec<Workload> = in_scope.iter().map(|p| p.workload.clone()).collect();
    let blue_green = matches!(env.strategy, Strategy::BlueGreen(_));
    if blue_green && args.to_revision.is_some() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "--to-revision does not apply to {}: it is blue-green, so a rollback switches the selector back to the previous colour; leave --to-revision out",
            env.name
        )));
    }
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
    let mut report = DeployReport::new(DeployCommand::Rollback, env, Timestamp::now());
    let result = async {
        let connection = super::connect_to(rt, global, &args.cluster, env).await?;
        report.cluster = Some(connection.description.clone());
        say!("Cluster: {}", connection.description);
        let client = connection.client;
        let locks = deploy::take_locks(
            rt.ctx,
            &client,
            env,
            &env_plan.service_names(),
            args.lock_timeout,
            &mut report,
        )
        .await?;
        let report = &mut report;
        if blue_green {
            report.strategy = env.strategy.word().to_string();
            let options = DeployOptions {
                service: args.service.clone(),
                timeout,
                lock_timeout: args.lock_timeout,
                ..DeployOptions::default()
            };
            let deploy = Deploy {
                console: rt.console,
                ctx: rt.ctx,
                config: &config,
                environment: env,
                plan: env_plan,
                options: &options,
            };
            let switched = deploy::roll_back_colours(&deploy, &client, report).await;
            for lock in locks {
                lock.release().await;
            }
            let outcome = if switched? {
                Outcome::Success
            } else {
                Outcome::RollbackFailed
            };
            say!("{}", report.summary);
            return anyhow::Ok(outcome);
        }
        let rolled_back = async {
            for planned in &in_scope {
                let container = deploy::container_of(&config, planned.service);
                let before = deploy::read_before(&client, planned.object, &container).await?;
                let w = &planned.workload;
                let mut entry = WorkloadReport::named(w.to_string(), w.kind, w.name.clone());
                entry.service = planned.service.to_string();
                entry.revision_before = before.revision;
                entry.image_before = before.image;
                report.workloads.push(entry);
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
            Outcome::Success => format!("rolled back {} in {}", rolled_back_list(report), env.name),
            _ => format!("rolling back in {} failed: a human must act", env.name),
        };
        say!("{}", report.summary);
        anyhow::Ok(outcome)
    }
    .await;
    deploy::finish_report(&mut report, &result, started);
    super::set_release_outputs(rt.outputs, None, report.final_revision());
    super::write_report(
        rt,
        "promote-rollback.json",
        &report,
        args.output_dir.as_deref(),
    )?;
    result
}

/// `deployment/web to revision 3, deployment/api (already at revision 2)`.
fn rolled_back_list(report: &DeployReport) -> String {
    report
        .workloads
        .iter()
        .map(|w| {
            let r = w.rollback.as_ref();
            match (r.map(|r| r.outcome), r.and_then(|r| r.to_revision)) {
                (Some(RollbackOutcome::Skipped), Some(n)) => {
                    format!("{} (already at revision {n})", w.object)
                }
                (_, Some(n)) => format!("{} to revision {n}", w.object),
                _ => w.object.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
