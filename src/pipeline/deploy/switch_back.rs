//! `promote rollback` in a blue-green environment: every service in scope switches its
//! Services' selector to the colour that does not serve, the previous release, which
//! `keepPrevious` kept at full size: one request per Service, no pod start. A previous colour
//! that was scaled to zero is scaled back to the serving size and waited for first.
//!
//! Every service's decision ([`kube::blue_green_switch_back`]) is made before anything is
//! written, so a service with nothing to switch back to (a first deploy) fails the whole
//! rollback as invalid (exit 2) with nothing changed.

use ::kube::Client;
use jiff::Timestamp;

use super::Deploy;
use super::blue_green::{colour_rows, record};
use super::roll_out::wait_all;
use super::workloads::container_of;
use crate::kube::{
    self, BlueGreenLive, RolloutOutcome, SwitchBack, Workload, WorkloadKind, colour_name,
    read_blue_green, scale_deployment, switch_selector, switched_services,
};
use crate::outcome::Classified;
use crate::report::{BlueGreenReport, DeployReport};

/// One service's switch back, decided.
struct Planned<'a> {
    service: &'a str,
    objects: &'a [serde_json::Value],
    deployment: String,
    container: String,
    fronting: Vec<String>,
    switch: SwitchBack,
}

/// Switches every blue-green service of `deploy`'s plan back to its previous colour (see the
/// module's documentation); `Ok(false)` when a scaled-down colour did not become ready again
/// (nothing switched) or a switch failed.
///
/// # Errors
/// A service with no previous colour (invalid, nothing written), or the API failing.
pub async fn roll_back_colours(
    deploy: &Deploy<'_>,
    client: &Client,
    report: &mut DeployReport,
) -> anyhow::Result<bool> {
    let ns = &deploy.environment.namespace;
    let mut planned = Vec::new();
    let mut nothing_to_switch = Vec::new();
    for rendered in &deploy.plan.services {
        let Some(service) = deploy.config.service(&rendered.service) else {
            continue;
        };
        let fronting: Vec<String> = service
            .fronting_services()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let Some(first) = fronting.first() else {
            continue; // Validation makes sure there is one.
        };
        let container = container_of(deploy.config, &rendered.service);
        let live = read_blue_green(client, ns, &service.deployment, &container, first).await?;
        match kube::blue_green_switch_back(&live) {
            Ok(switch) => planned.push(Planned {
                service: &rendered.service,
                objects: &rendered.objects,
                deployment: service.deployment.clone(),
                container,
                fronting,
                switch,
            }),
            Err(why) => nothing_to_switch.push(format!("{}: {why}", rendered.service)),
        }
    }
    if !nothing_to_switch.is_empty() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "nothing to switch back to in {}: {}; nothing was changed",
            deploy.environment.name,
            nothing_to_switch.join("; ")
        )));
    }

    for p in &planned {
        let mut bg = BlueGreenReport::new(p.service, &p.deployment, p.switch.to);
        bg.services = p.fronting.clone();
        bg.active_before = Some(p.switch.from);
        report.blue_green.push(bg);
    }

    // A previous colour scaled to zero comes back to size before any Service selects it.
    let mut scaled = Vec::new();
    for p in &planned {
        let Some(replicas) = p.switch.scale_to else {
            continue;
        };
        let name = colour_name(&p.deployment, p.switch.to);
        scale_deployment(client, ns, &name, u32::try_from(replicas).unwrap_or(1))
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("scaling deployment/{name}")))?;
        record(
            report,
            p.service,
            "scaled-up",
            format!("{name} to {replicas} before switching back"),
        );
        scaled.push(Workload {
            kind: WorkloadKind::Deployment,
            namespace: ns.clone(),
            name,
        });
    }
    let results = wait_all(client, &scaled, deploy.options.timeout).await?;
    if let Some(stuck) = results
        .iter()
        .find(|r| r.outcome != RolloutOutcome::Complete)
    {
        report.summary = format!(
            "rolling back in {} failed: {} did not become ready again, so no selector was switched: a human must act",
            deploy.environment.name, stuck.workload
        );
        fill_colours(deploy, client, &planned, report).await;
        return Ok(false);
    }

    let at = Timestamp::now();
    let mut switched = Vec::new();
    for p in &planned {
        let services = switched_services(p.objects, &p.fronting, p.switch.to, at);
        let took = match switch_selector(client, &services, deploy.options.apply_force()).await {
            Ok(took) => took,
            Err(e) => {
                report.summary = format!(
                    "rolling back in {} failed: switching {} to {} failed ({}): a human must act",
                    deploy.environment.name,
                    p.service,
                    p.switch.to,
                    crate::outcome::chain(&e)
                );
                fill_colours(deploy, client, &planned, report).await;
                return Ok(false);
            }
        };
        record(
            report,
            p.service,
            "switched-back",
            format!(
                "{} now select{} {} ({:.0} ms)",
                p.fronting.join(", "),
                if p.fronting.len() == 1 { "s" } else { "" },
                p.switch.to,
                took.as_secs_f64() * 1000.0
            ),
        );
        if let Some(bg) = report
            .blue_green
            .iter_mut()
            .find(|b| b.service == p.service)
        {
            bg.switched_back_at = Some(at);
            bg.switch_back_ms = Some(took.as_millis());
            bg.serving = Some(p.switch.to);
        }
        switched.push(format!(
            "{} → {}",
            colour_name(&p.deployment, p.switch.from),
            colour_name(&p.deployment, p.switch.to)
        ));
    }
    report.summary = format!(
        "rolled back {} by switching the selector back: {}",
        deploy.environment.name,
        switched.join(", ")
    );
    fill_colours(deploy, client, &planned, report).await;
    Ok(true)
}

/// Both colours of every service as they stand now, for the report.
async fn fill_colours(
    deploy: &Deploy<'_>,
    client: &Client,
    planned: &[Planned<'_>],
    report: &mut DeployReport,
) {
    for p in planned {
        let live: BlueGreenLive = match read_blue_green(
            client,
            &deploy.environment.namespace,
            &p.deployment,
            &p.container,
            &p.fronting[0],
        )
        .await
        {
            Ok(live) => live,
            Err(_) => continue,
        };
        if let Some(bg) = report
            .blue_green
            .iter_mut()
            .find(|b| b.service == p.service)
        {
            bg.serving = live.serving;
            bg.colours = colour_rows(&live, &p.deployment);
        }
    }
}
