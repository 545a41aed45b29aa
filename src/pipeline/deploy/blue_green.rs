//! `strategy: blue-green`: the release goes to the idle colour of two Deployments
//! `<deployment>-blue` / `-green` at full size, is waited for by kubectl's rules and checked
//! through the preview Service `<service>-preview`, and the Service's selector then switches to
//! it in one request per Service. The previous colour stays at full size (`keepPrevious`), so a
//! failure after the switch is undone by switching the selector back: one request, no pod start.
//!
//! A rolling environment moves over without dropping traffic: its live Deployment is copied to
//! the first colour, which the Service selects once it is ready; then the plain one is deleted.
//! The decisions (which colour, what each object becomes) are pure, in `kube::blue_green` and
//! `preview`.

use std::time::Duration;

use ::kube::Client;
use jiff::Timestamp;

use super::preview::{PreviewTarget, preview_checks};
use super::roll_out::{apply_recorded, diagnose_failures, run_hooks, wait_all};
use super::workloads::{ColouredService, coloured_services, image_of, read_before};
use super::{Deploy, Locked, metrics};
use crate::actions::Annotation;
use crate::checks::{self, analysis::Track};
use crate::config::{self, KeepPrevious, OnFailure};
use crate::kube::{
    self, BlueGreenLive, BlueGreenStart, Colour, Mode, RolloutOutcome, Workload, WorkloadKind,
    apply_one, colour_from_live, colour_name, objects_before_switch, preview_name, read_deployment,
    scale_deployment, switch_selector, switched_services,
};
use crate::outcome::{Classified, Outcome};
use crate::report::{BlueGreenReport, ColourRow, DeployReport, WorkloadReport};
use crate::say;

/// One service's blue-green deploy.
struct Side<'a> {
    svc: ColouredService<'a>,
    start: BlueGreenStart,
    switched_at: Option<Timestamp>,
    /// A plain Deployment left to delete after the switch.
    plain_left: bool,
}

impl Side<'_> {
    fn idle_name(&self) -> String {
        colour_name(&self.svc.deployment, self.start.idle)
    }
}

fn keep_of(settings: &config::BlueGreen) -> Option<Duration> {
    match settings.keep_previous {
        KeepPrevious::For(d) => Some(d),
        KeepPrevious::UntilNextPromotion => None,
    }
}

/// Rolls the release out blue-green (see the module's documentation).
///
/// # Errors
/// The API failing outside a rollout, or checks that cannot run (invalid input).
pub(super) async fn roll_out(
    deploy: &Deploy<'_>,
    locked: &Locked,
    settings: &config::BlueGreen,
    report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    let client = &locked.client;
    let env = deploy.environment;
    if !deploy.plan.hooks.is_empty() && !run_hooks(deploy, client, report).await? {
        return Ok(Outcome::Failed);
    }
    let mut sides = Vec::new();
    for svc in coloured_services(deploy.config, deploy.plan) {
        let live = svc.read(client, &env.namespace).await?;
        let start = kube::blue_green_start(&live);
        let mut bg = BlueGreenReport::new(svc.service, &svc.deployment, start.idle);
        bg.services = svc.fronting.clone();
        bg.previews = svc.fronting.iter().map(|f| preview_name(f)).collect();
        bg.active_before = start.active;
        if let Some(kept) = live.colour(start.idle).filter(|c| c.replicas > 0)
            && kube::previous_expired(live.switched_at, keep_of(settings), Timestamp::now())
        {
            bg.record(
                "previous-expired",
                format!(
                    "{} ({} replicas) was kept past keepPrevious; it takes the release now",
                    colour_name(&svc.deployment, start.idle),
                    kept.replicas
                ),
            );
        }
        let plain_left = live.plain.is_some() && !start.migrate;
        let mut side = Side {
            svc,
            start,
            switched_at: live.switched_at,
            plain_left,
        };
        if start.migrate {
            let migrated = migrate(deploy, client, &mut side, &mut bg).await;
            report.blue_green.push(bg);
            if let Err(why) = migrated? {
                report.summary = format!(
                    "moving {} to blue-green failed ({why}); deployment/{} keeps serving, unchanged",
                    env.name, side.svc.deployment
                );
                return Ok(Outcome::Failed);
            }
        } else {
            report.blue_green.push(bg);
        }
        sides.push(side);
    }

    // The release on the idle colours; the Services keep selecting the active ones.
    let mut objects = Vec::new();
    for side in &sides {
        let colour = objects_before_switch(
            side.svc.objects,
            &side.svc.deployment,
            &side.svc.fronting,
            &side.start,
            side.switched_at,
        );
        for object in colour.iter().filter(|o| o["kind"] == "Deployment") {
            let state = read_before(client, object, &side.svc.container).await?;
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let mut entry = WorkloadReport::named(
                format!("deployment/{name}"),
                WorkloadKind::Deployment,
                name.to_string(),
            );
            entry.service = side.svc.service.to_string();
            entry.revision_before = state.revision;
            entry.image_before = state.image;
            entry.image_after = image_of(object, &side.svc.container);
            entry.changed = true;
            entry.awaited = true;
            report.workloads.push(entry);
        }
        objects.extend(colour);
    }
    let batch = apply_recorded(deploy, client, &objects, report).await;
    say!("Applied {} objects", batch.applied.len());
    if !batch.errors.is_empty() {
        return not_switched(deploy, client, &sides, report, "applying failed").await;
    }
    for side in &sides {
        record(
            report,
            side.svc.service,
            "deployed",
            format!("{} has the release", side.idle_name()),
        );
    }

    let awaited: Vec<Workload> = report
        .workloads
        .iter()
        .map(|w| Workload {
            kind: w.kind,
            namespace: env.namespace.clone(),
            name: w.name.clone(),
        })
        .collect();
    let results = wait_all(client, &awaited, deploy.options.timeout).await?;
    let mut failed = Vec::new();
    for result in &results {
        if let Some(entry) = report.workload_mut(result.workload.kind, &result.workload.name) {
            entry.rollout = Some(result.outcome);
            entry.rollout_ms = Some(result.elapsed.as_millis());
            entry.revision_after = result.revision;
            if result.outcome == RolloutOutcome::Complete {
                entry.completed_at = Some(Timestamp::now());
            }
        }
        if result.outcome != RolloutOutcome::Complete {
            failed.push(match &result.failure {
                Some(failure) => format!("{}: {failure}", result.workload),
                None => format!("{}: {:?}", result.workload, result.outcome),
            });
        }
    }
    diagnose_failures(deploy, client, &objects, &results, report).await;
    if !failed.is_empty() {
        return not_switched(deploy, client, &sides, report, &failed.join("; ")).await;
    }

    // The environment's checks against the previews.
    let targets: Vec<PreviewTarget> = sides
        .iter()
        .map(|s| PreviewTarget {
            service: s.svc.service.to_string(),
            preview: preview_name(
                s.svc
                    .fronting
                    .iter()
                    .find(|f| *f == s.svc.service)
                    .unwrap_or(&s.svc.fronting[0]),
            ),
            deployment: s.idle_name(),
        })
        .collect();
    let (preview_config, preview_env, warnings) = preview_checks(
        deploy.config,
        env,
        &targets,
        settings.preview_url.as_deref(),
    );
    report.warnings.extend(warnings);
    let scope = deploy.options.service.as_deref().map(|s| {
        targets
            .iter()
            .find(|t| t.service == s)
            .map_or_else(|| s.to_string(), |t| t.preview.clone())
    });
    let secrets = |variable: &str| deploy.ctx.read_secret(variable, deploy.console);
    if deploy.options.verify && checks::has_checks(&preview_env, scope.as_deref()) {
        let verification = checks::Verification {
            console: deploy.console,
            config: &preview_config,
            environment: &preview_env,
            service: scope.as_deref(),
            client: Some(client.clone()),
            secrets: &secrets,
            images: deploy
                .plan
                .services
                .iter()
                .map(|r| {
                    let name = targets
                        .iter()
                        .find(|t| t.service == r.service)
                        .map_or_else(|| r.service.clone(), |t| t.preview.clone());
                    (name, r.image.clone())
                })
                .collect(),
        };
        let verified = checks::verify(&verification)
            .await
            .map_err(Classified::invalid)?;
        let passed = verified.passed;
        let why = verified.summary.clone();
        report.verification = Some(verified);
        for side in &sides {
            record(
                report,
                side.svc.service,
                "previewed",
                format!("checks on {}: {why}", side.idle_name()),
            );
        }
        if !passed {
            return not_switched(
                deploy,
                client,
                &sides,
                report,
                &format!("verification of the preview failed: {why}"),
            )
            .await;
        }
    }

    // The switch.
    let switched_at = Timestamp::now();
    for side in &sides {
        switch(
            deploy,
            client,
            side,
            side.start.idle,
            switched_at,
            report,
            "switched",
        )
        .await?;
        if side.plain_left {
            kube::delete_deployment(client, &env.namespace, &side.svc.deployment).await?;
            record(
                report,
                side.svc.service,
                "removed-plain",
                format!(
                    "deployment/{} (left by an earlier migration)",
                    side.svc.deployment
                ),
            );
        }
    }
    let mut outcome = Outcome::Success;
    report.summary = format!(
        "deployed {} to {} blue-green",
        deploy
            .plan
            .services
            .iter()
            .map(|r| r.image.clone())
            .collect::<Vec<_>>()
            .join(", "),
        env.name
    );
    if let Some(analysed) = metrics::analyse_window(deploy, switched_at, Track::Stable).await {
        report.analysis = analysed.reports;
        if analysed.passed {
            report
                .summary
                .push_str(&format!("; metrics within bounds ({})", analysed.summary));
        } else {
            let why = format!("metric analysis failed: {}", analysed.summary);
            outcome = switch_back(deploy, client, &sides, report, &why).await?;
        }
    }
    if outcome == Outcome::Success {
        let until = kube::kept_until(switched_at, keep_of(settings));
        for bg in &mut report.blue_green {
            if bg.active_before.is_some() {
                bg.previous_kept_until = until;
            }
        }
    }
    fill_colours(client, &env.namespace, sides.iter().map(|s| &s.svc), report).await;
    say!("Done: {}", report.summary);
    Ok(outcome)
}

/// Logs a transition of `service` and records it in its blue-green report.
pub(super) fn record(report: &mut DeployReport, service: &str, event: &str, detail: String) {
    say!("{service}: {event}: {detail}");
    if let Some(bg) = report.blue_green.iter_mut().find(|b| b.service == service) {
        bg.record(event, detail);
    }
}

/// Switches one service's Services to `colour`, timed and recorded.
async fn switch(
    deploy: &Deploy<'_>,
    client: &Client,
    side: &Side<'_>,
    colour: Colour,
    at: Timestamp,
    report: &mut DeployReport,
    event: &str,
) -> anyhow::Result<()> {
    let services = switched_services(side.svc.objects, &side.svc.fronting, colour, at);
    let took = switch_selector(client, &services, deploy.options.apply_force())
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("switching {} to {colour}", side.svc.service))
        })?;
    record(
        report,
        side.svc.service,
        event,
        format!(
            "{} now select{} {colour} ({:.0} ms)",
            side.svc.fronting.join(", "),
            if side.svc.fronting.len() == 1 {
                "s"
            } else {
                ""
            },
            took.as_secs_f64() * 1000.0
        ),
    );
    if let Some(bg) = report
        .blue_green
        .iter_mut()
        .find(|b| b.service == side.svc.service)
    {
        if event == "switched" {
            bg.switched_at = Some(at);
            bg.switch_ms = Some(took.as_millis());
        } else {
            bg.switched_back_at = Some(at);
            bg.switch_back_ms = Some(took.as_millis());
        }
        bg.serving = Some(colour);
    }
    Ok(())
}

/// A rolling environment's first blue-green deploy: the live Deployment copied to the first
/// colour, waited for, selected by the Services, then deleted. `Ok(Err(why))` when the copy did
/// not become ready: nothing switched, the plain Deployment serves as before.
async fn migrate(
    deploy: &Deploy<'_>,
    client: &Client,
    side: &mut Side<'_>,
    bg: &mut BlueGreenReport,
) -> anyhow::Result<Result<(), String>> {
    let ns = &deploy.environment.namespace;
    let first = side.start.active.unwrap_or(Colour::Blue);
    let live = read_deployment(client, ns, &side.svc.deployment).await?;
    let copy = colour_from_live(&live, first);
    let name = colour_name(&side.svc.deployment, first);
    if let Err(e) = apply_one(client, &copy, Mode::Write, deploy.options.apply_force()).await {
        return Ok(Err(crate::outcome::chain(&e)));
    }
    let workload = Workload {
        kind: WorkloadKind::Deployment,
        namespace: ns.clone(),
        name: name.clone(),
    };
    let results = wait_all(client, &[workload], deploy.options.timeout).await?;
    if results
        .iter()
        .any(|r| r.outcome != RolloutOutcome::Complete)
    {
        return Ok(Err(format!("deployment/{name} did not become ready")));
    }
    let at = Timestamp::now();
    let services = switched_services(side.svc.objects, &side.svc.fronting, first, at);
    switch_selector(client, &services, deploy.options.apply_force()).await?;
    kube::delete_deployment(client, ns, &side.svc.deployment).await?;
    bg.migrated_to = Some(first);
    bg.record(
        "migrated",
        format!(
            "deployment/{} became {name}; {} select{} {first}",
            side.svc.deployment,
            side.svc.fronting.join(", "),
            if side.svc.fronting.len() == 1 {
                "s"
            } else {
                ""
            }
        ),
    );
    side.switched_at = Some(at);
    Ok(Ok(()))
}

/// A release that never served: the Services still select the active colour. By the policy, the
/// idle colour is scaled back to zero (exit 1) or left for inspection (`onFailure: keep`).
async fn not_switched(
    deploy: &Deploy<'_>,
    client: &Client,
    sides: &[Side<'_>],
    report: &mut DeployReport,
    why: &str,
) -> anyhow::Result<Outcome> {
    let env = deploy.environment;
    let keep = env.on_failure == OnFailure::Keep;
    let mut scaled = Vec::new();
    for side in sides.iter().filter(|s| s.start.active.is_some()) {
        if keep {
            continue;
        }
        let idle = side.idle_name();
        scale_deployment(client, &env.namespace, &idle, 0)
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context(format!("scaling deployment/{idle} to 0"))
            })?;
        record(
            report,
            side.svc.service,
            "scaled-down",
            format!("{} to 0", side.idle_name()),
        );
        scaled.push(side.idle_name());
    }
    for bg in &mut report.blue_green {
        bg.serving = bg.active_before;
    }
    let serving: Vec<String> = sides
        .iter()
        .filter_map(|s| s.start.active.map(|c| colour_name(&s.svc.deployment, c)))
        .collect();
    report.summary = if serving.is_empty() {
        format!(
            "deploy to {} failed ({why}); nothing served before (first deploy), left as deployed",
            env.name
        )
    } else if keep {
        format!(
            "deploy to {} failed ({why}); the selector was never switched: {} keep serving; the release is left as is (onFailure: keep)",
            env.name,
            serving.join(", ")
        )
    } else {
        format!(
            "deploy to {} failed ({why}); rolled back: the selector was never switched, {} keep serving and {} scaled to 0",
            env.name,
            serving.join(", "),
            scaled.join(", ")
        )
    };
    deploy.console.annotate(
        &Annotation::warning(report.summary.clone()).title(format!("Rolled back {}", env.name)),
    );
    fill_colours(client, &env.namespace, sides.iter().map(|s| &s.svc), report).await;
    Ok(Outcome::Failed)
}

/// After the switch, a failure: the Services select the previous colour again (kept at full size),
/// unless `onFailure: keep` or there is none (a first deploy).
async fn switch_back(
    deploy: &Deploy<'_>,
    client: &Client,
    sides: &[Side<'_>],
    report: &mut DeployReport,
    why: &str,
) -> anyhow::Result<Outcome> {
    let env = deploy.environment;
    if env.on_failure == OnFailure::Keep {
        report.summary = format!(
            "deploy to {} failed ({why}); left as is (onFailure: keep)",
            env.name
        );
        return Ok(Outcome::Failed);
    }
    let at = Timestamp::now();
    let mut back = Vec::new();
    for side in sides {
        let Some(previous) = side.start.active else {
            continue;
        };
        if let Err(e) = switch(deploy, client, side, previous, at, report, "switched-back").await {
            report.summary = format!(
                "deploy to {} failed ({why}), and switching back failed too ({e:#}): a human must act",
                env.name
            );
            deploy.console.annotate(
                &Annotation::error(report.summary.clone())
                    .title(format!("Rollback failed in {}", env.name)),
            );
            return Ok(Outcome::RollbackFailed);
        }
        back.push(colour_name(&side.svc.deployment, previous));
    }
    report.summary = if back.is_empty() {
        format!(
            "deploy to {} failed ({why}); nothing to switch back to (first deploy), left as deployed",
            env.name
        )
    } else {
        format!(
            "deploy to {} failed ({why}); rolled back by switching the selector back to {}",
            env.name,
            back.join(", ")
        )
    };
    deploy.console.annotate(
        &Annotation::warning(report.summary.clone()).title(format!("Rolled back {}", env.name)),
    );
    Ok(Outcome::Failed)
}

/// Both colours of every service as they stand now, for the report (a service that cannot be
/// read keeps what the report has).
pub(super) async fn fill_colours<'a>(
    client: &Client,
    namespace: &str,
    services: impl IntoIterator<Item = &'a ColouredService<'a>>,
    report: &mut DeployReport,
) {
    for svc in services {
        let Ok(live) = svc.read(client, namespace).await else {
            continue;
        };
        if let Some(bg) = report
            .blue_green
            .iter_mut()
            .find(|b| b.service == svc.service)
        {
            bg.serving = live.serving;
            bg.colours = colour_rows(&live, &svc.deployment);
        }
    }
}

/// Both colours of `deployment` as `live` has them, for the report.
pub(super) fn colour_rows(live: &BlueGreenLive, deployment: &str) -> Vec<ColourRow> {
    [Colour::Blue, Colour::Green]
        .into_iter()
        .filter_map(|c| {
            live.colour(c).map(|state| ColourRow {
                colour: c,
                deployment: colour_name(deployment, c),
                state: state.clone(),
                serving: live.serving == Some(c),
            })
        })
        .collect()
}
