//! `promote retire [--environment E] [--service S]`: enforces `blueGreen.keepPrevious` between
//! deploys. With no controller in the cluster, nothing else would scale a previous colour down
//! once its window has passed, so a scheduled workflow runs this: for each blue-green service it
//! scales the colour that does not serve to zero when the window since the switch is over, and
//! changes nothing else. A later `rollback` scales it back up before switching.
//!
//! Under the same per-service locks as a deploy, waited for briefly: a promotion holding them
//! takes the previous colour over anyway, so the environment is skipped, not failed. Exit 0 when
//! every environment was looked at, 1 when one could not be (cluster, API), 2 for a request that
//! names an environment that is not blue-green or a service that does not exist.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;

use super::Runtime;
use super::deploy::take_locks;
use crate::cli::{GlobalArgs, RetireArgs};
use crate::config::{self, Config, Environment, Strategy};
use crate::kube::{self, Retirement, colour_name, read_blue_green, scale_deployment};
use crate::outcome::{Classified, Outcome, outcome_of};
use crate::report::{
    self, DeployCommand, DeployReport, RetireEnvironment, RetireReport, RetiredService,
};
use crate::say;

/// How long `retire` waits for a deploy's lock: a deploy holding it replaces the previous
/// colour itself, so there is no point in waiting for it.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// `promote retire`.
///
/// # Errors
/// An invalid promotion file or request (exit 2), a summary that cannot be written.
pub async fn run_retire(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &RetireArgs,
) -> anyhow::Result<Outcome> {
    let started = tokio::time::Instant::now();
    let config = config::load(&global.config)?;
    let environments = blue_green_environments(&config, args.environment.as_deref())?;
    let services = services_in_scope(&config, args.service.as_deref())?;

    let mut report = RetireReport::new(Timestamp::now());
    for (env, settings) in environments {
        let mut entry = RetireEnvironment {
            environment: env.name.clone(),
            namespace: env.namespace.clone(),
            keep_previous: settings.keep_previous.word(),
            services: Vec::new(),
            error: None,
            warnings: Vec::new(),
        };
        if let Err(e) = retire_in(rt, global, args, env, settings, &services, &mut entry).await {
            let skipped = outcome_of(&e) == Outcome::Refused;
            entry.error = Some(if skipped {
                format!("skipped: {e:#}; the promotion holding it takes the previous colour over")
            } else {
                crate::actions::redact(&format!("{e:#}")).into_owned()
            });
            if !skipped {
                report.outcome = Outcome::Failed;
            }
        }
        report.environments.push(entry);
    }
    report.summary = summary_sentence(&report);
    report.finished_at = Some(Timestamp::now());
    report.duration_ms = started.elapsed().as_millis();

    say!("{}", report::retire_text(&report).trim_end());
    super::write_report(
        rt,
        "promote-retire.json",
        &report,
        args.output_dir.as_deref(),
    )?;
    report::retire_summary(&report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(report.outcome)
}

/// The environments asked for, each with its blue-green settings. Naming one that is not
/// blue-green is an error (it has no previous colour); with none named, the blue-green ones.
fn blue_green_environments<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> anyhow::Result<Vec<(&'a Environment, &'a config::BlueGreen)>> {
    let named = name.is_some_and(|n| !n.is_empty());
    let mut found = Vec::new();
    for env in super::environments(config, name)? {
        match &env.strategy {
            Strategy::BlueGreen(settings) => found.push((env, settings)),
            other if named => {
                return Err(Classified::invalid(anyhow::anyhow!(
                    "{} runs `strategy: {}`: only a blue-green environment keeps a previous colour to retire",
                    env.name,
                    other.word()
                )));
            }
            _ => {}
        }
    }
    Ok(found)
}

fn services_in_scope<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> anyhow::Result<Vec<&'a config::Service>> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => Ok(vec![crate::plan::service(config, name)?]),
        None => Ok(config.services.iter().collect()),
    }
}

/// One environment: connect, lock, decide per service, scale the expired ones.
async fn retire_in(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &RetireArgs,
    env: &Environment,
    settings: &config::BlueGreen,
    services: &[&config::Service],
    entry: &mut RetireEnvironment,
) -> anyhow::Result<()> {
    let connection = super::connect_to(rt, global, &args.cluster, env).await?;
    say!("Cluster of {}: {}", env.name, connection.description);
    let client = connection.client;
    // The lock bookkeeping of a deploy's report; of it, this command reports the warnings.
    let mut lock_record = DeployReport::new(DeployCommand::Deploy, env, Timestamp::now());
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let locks = take_locks(
        rt.ctx,
        &client,
        env,
        &names,
        Some(args.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT)),
        &mut lock_record,
    )
    .await?;
    entry.warnings = lock_record.warnings;
    let result = async {
        for service in services {
            let Some(front) = service.fronting_services().first().map(|m| m.name()) else {
                continue; // Validation makes sure a blue-green service has one.
            };
            let ns = &env.namespace;
            let live = read_blue_green(&client, ns, &service.deployment, &service.container, front)
                .await?;
            let decision =
                kube::retirement(&live, settings.keep_previous.duration(), Timestamp::now());
            let mut retired = RetiredService {
                service: service.name.clone(),
                deployment: service.deployment.clone(),
                serving: live.serving,
                switched_at: live.switched_at,
                decision,
                scaled_down_at: None,
            };
            if let Retirement::ScaleDown { colour, .. } = decision {
                let name = colour_name(&service.deployment, colour);
                let scaled = scale_deployment(&client, ns, &name, 0).await;
                if let Err(e) = scaled {
                    entry.services.push(retired);
                    return Err(
                        anyhow::Error::new(e).context(format!("scaling deployment/{name} to 0"))
                    );
                }
                retired.scaled_down_at = Some(Timestamp::now());
            }
            entry.services.push(retired);
        }
        anyhow::Ok(())
    }
    .await;
    for lock in locks {
        lock.release().await;
    }
    result
}

/// `scaled 1 previous colour to zero (production)`, `nothing to retire: …`.
fn summary_sentence(report: &RetireReport) -> String {
    if report.environments.is_empty() {
        return "no environment runs blue-green: nothing to retire".to_string();
    }
    let names = report
        .environments
        .iter()
        .map(|e| e.environment.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let failed = report
        .environments
        .iter()
        .filter(|e| e.error.is_some())
        .count();
    let retired = report.retired();
    let mut sentence = match retired {
        0 => format!("no previous colour was past keepPrevious in {names}"),
        1 => format!("scaled 1 previous colour to zero in {names}"),
        n => format!("scaled {n} previous colours to zero in {names}"),
    };
    if failed > 0 {
        sentence.push_str(&format!(
            "; {failed} environment{} not finished (see below)",
            if failed == 1 { "" } else { "s" }
        ));
    }
    sentence
}
