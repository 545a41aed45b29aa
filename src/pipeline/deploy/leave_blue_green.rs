//! An environment moving back from `strategy: blue-green` to `rolling`, without dropping
//! traffic: before the rolling update, the serving colour is copied to the plain Deployment with
//! the same pods; once that is ready, the idle colour goes, the Services select the plain
//! Deployment (the rendered selector, without the colour), and the serving colour and the
//! preview Services go. The rolling update then starts from a plain Deployment that serves the
//! current release, so its rollback has a revision to return to.
//!
//! Moving to `canary` goes the same way: with no plain Deployment to be the stable, a canary
//! deploy rolls out as `rolling` does, and this runs first; the next release is a canary.

use ::kube::Client;
use serde_json::{Value, json};

use super::Deploy;
use super::roll_out::wait_all;
use super::workloads::coloured_services;
use crate::kube::{
    self, Colour, Mode, RolloutOutcome, Workload, WorkloadKind, apply_one, colour_name,
    plain_from_colour, preview_name, read_deployment, switch_selector,
};
use crate::report::DeployReport;
use crate::say;

/// Moves every service whose Service still selects a colour back to a plain Deployment (see
/// the module's documentation). `Ok(Err(why))` when a copy did not become ready: it is deleted
/// again and the colour keeps serving; services before it have moved.
///
/// # Errors
/// The API failing (after retries).
pub(super) async fn leave_blue_green(
    deploy: &Deploy<'_>,
    client: &Client,
    report: &mut DeployReport,
) -> anyhow::Result<Result<(), String>> {
    let ns = &deploy.environment.namespace;
    let force = deploy.options.apply_force();
    for svc in coloured_services(deploy.config, deploy.plan) {
        let live = svc.read(client, ns).await?;
        let Some(serving) = live.serving else {
            continue; // Not blue-green: the rolling update goes on as usual.
        };
        let (deployment, fronting) = (&svc.deployment, &svc.fronting);
        let serving_name = colour_name(deployment, serving);
        say!(
            "{}: leaving blue-green: copying deployment/{serving_name} to deployment/{deployment}",
            svc.service
        );
        let copy = plain_from_colour(
            &read_deployment(client, ns, &serving_name).await?,
            deployment,
        );
        if let Err(e) = apply_one(client, &copy, Mode::Write, force).await {
            return Ok(Err(crate::outcome::chain(&e)));
        }
        let workload = Workload {
            kind: WorkloadKind::Deployment,
            namespace: ns.clone(),
            name: deployment.clone(),
        };
        let results = wait_all(client, &[workload], deploy.options.timeout).await?;
        if results
            .iter()
            .any(|r| r.outcome != RolloutOutcome::Complete)
        {
            kube::delete_deployment(client, ns, deployment).await?;
            return Ok(Err(format!(
                "deployment/{deployment}, the copy of {serving_name}, did not become ready"
            )));
        }
        // The idle colour holds the previous release: gone before the Services could reach it.
        if live.colour(serving.other()).is_some() {
            kube::delete_deployment(client, ns, &colour_name(deployment, serving.other())).await?;
        }
        let services: Vec<Value> = svc
            .objects
            .iter()
            .filter(|o| {
                o["kind"] == "Service"
                    && fronting.iter().any(|f| o["metadata"]["name"] == f.as_str())
            })
            .cloned()
            .collect();
        switch_selector(client, &services, force)
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context(format!("switching {} to {deployment}", fronting[0]))
            })?;
        kube::delete_deployment(client, ns, &serving_name).await?;
        for preview in fronting.iter().map(|f| preview_name(f)) {
            let object = json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": preview, "namespace": ns },
            });
            kube::remove_object(client, &object).await.map_err(|e| {
                anyhow::Error::new(e).context(format!("deleting service/{preview}"))
            })?;
        }
        let moved = format!(
            "{} moved from blue-green to {}: deployment/{serving_name} became deployment/{deployment}, which {} select{}; {} deleted",
            svc.service,
            deploy.environment.strategy.word(),
            fronting.join(", "),
            if fronting.len() == 1 { "s" } else { "" },
            [Colour::Blue, Colour::Green]
                .iter()
                .map(|c| colour_name(deployment, *c))
                .collect::<Vec<_>>()
                .join(" and ")
        );
        say!("{moved}");
        report.warnings.push(moved);
    }
    Ok(Ok(()))
}
