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
use super::blue_green::{fill_colours, record};
use super::roll_out::wait_all;
use super::workloads::{ColouredService, coloured_services};
use crate::kube::{
    self, RolloutOutcome, SwitchBack, Workload, WorkloadKind, colour_name, scale_deployment,
    switch_selector, switched_services,
};
use crate::outcome::Classified;
use crate::report::{BlueGreenReport, DeployReport};

/// One service's switch back, decided.
struct Planned<'a> {
    svc: ColouredService<'a>,
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
    for svc in coloured_services(deploy.config, deploy.plan) {
        let live = svc.read(client, ns).await?;
        match kube::blue_green_switch_back(&live) {
            Ok(switch) => planned.push(Planned { svc, switch }),
            Err(why) => nothing_to_switch.push(format!("{}: {why}", svc.service)),
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
        let mut bg = BlueGreenReport::new(p.svc.service, &p.svc.deployment, p.switch.to);
        bg.services = p.svc.fronting.clone();
        bg.active_before = Some(p.switch.from);
        report.blue_green.push(bg);
    }

    // A previous colour scaled to zero comes back to size before any Service selects it.
    let mut scaled = Vec::new();
    for p in &planned {
        let Some(replicas) = p.switch.scale_to else {
            continue;
        };
        let name = colour_name(&p.svc.deployment, p.switch.to);
        scale_deployment(client, ns, &name, u32::try_from(replicas).unwrap_or(1))
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("scaling deployment/{name}")))?;
        record(
            report,
            p.svc.service,
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
        fill_colours(client, ns, planned.iter().map(|p| &p.svc), report).await;
        return Ok(false);
    }

    let at = Timestamp::now();
    let mut switched = Vec::new();
    for p in &planned {
        let services = switched_services(p.svc.objects, &p.svc.fronting, p.switch.to, at);
        let took = match switch_selector(client, &services, deploy.options.apply_force()).await {
            Ok(took) => took,
            Err(e) => {
                report.summary = format!(
                    "rolling back in {} failed: switching {} to {} failed ({}): a human must act",
                    deploy.environment.name,
                    p.svc.service,
                    p.switch.to,
                    crate::outcome::chain(&e)
                );
                fill_colours(client, ns, planned.iter().map(|p| &p.svc), report).await;
                return Ok(false);
            }
        };
        record(
            report,
            p.svc.service,
            "switched-back",
            format!(
                "{} now select{} {} ({:.0} ms)",
                p.svc.fronting.join(", "),
                if p.svc.fronting.len() == 1 { "s" } else { "" },
                p.switch.to,
                took.as_secs_f64() * 1000.0
            ),
        );
        if let Some(bg) = report
            .blue_green
            .iter_mut()
            .find(|b| b.service == p.svc.service)
        {
            bg.switched_back_at = Some(at);
            bg.switch_back_ms = Some(took.as_millis());
            bg.serving = Some(p.switch.to);
        }
        switched.push(format!(
            "{} → {}",
            colour_name(&p.svc.deployment, p.switch.from),
            colour_name(&p.svc.deployment, p.switch.to)
        ));
    }
    report.summary = format!(
        "rolled back {} by switching the selector back: {}",
        deploy.environment.name,
        switched.join(", ")
    );
    fill_colours(client, ns, planned.iter().map(|p| &p.svc), report).await;
    Ok(true)
}
