//! `promote drift`: the seed's "Different Behavior Across Environments" as a check. Every
//! environment's cluster is read and compared, side by side, with what promotion.yml renders
//! for it (see `drift`); the differences promotion.yml declares are shown as information, the
//! others (between environments against promotion.yml, and hand edits) make the command exit 1,
//! so it can run on a schedule.
//!
//! Read-only. An environment whose cluster cannot be read is shown with the reason and also
//! exits 1: a check that could not look is not a pass.

use std::path::PathBuf;

use anyhow::Context as _;

use super::Runtime;
use super::deploy::connect_to;
use super::plan::{PlanRequest, plan};
use crate::actions::redact;
use crate::cli::{ClusterArgs, GlobalArgs};
use crate::config;
use crate::drift::{self, DriftReport, EnvironmentInput, Live};
use crate::kube::live::{self, LiveNamespace, ValueHasher};
use crate::outcome::Outcome;
use crate::report;

/// What `promote drift` is asked: the flags of its subcommand.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Only these environments (default: all, in promotion order). One alone still shows hand
    /// edits; differences between environments need two.
    pub environments: Vec<String>,
    pub cluster: ClusterArgs,
    /// Write promote-drift.json here (default: the runner's temp directory).
    pub output_dir: Option<PathBuf>,
}

/// What a drift run found.
#[derive(Debug, Clone)]
pub struct DriftRun {
    pub report: DriftReport,
}

impl DriftRun {
    /// Whether anything differs that promotion.yml does not declare.
    pub fn undeclared(&self) -> bool {
        self.report.undeclared()
    }

    /// Exit 1 on undeclared drift or an environment that could not be read, else 0.
    pub fn outcome(&self) -> Outcome {
        if self.undeclared() || self.report.unreadable().next().is_some() {
            Outcome::Failed
        } else {
            Outcome::Success
        }
    }
}

/// `promote drift`: prints the comparison, writes the job summary and promote-drift.json.
///
/// # Errors
/// An invalid promotion file or request (exit 2), a summary that cannot be written. Clusters
/// that cannot be read are not errors: they are columns saying why.
pub async fn run_drift(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    options: &DriftOptions,
) -> anyhow::Result<DriftRun> {
    let config = config::load(&global.config)?;
    let mut environments = Vec::new();
    for name in &options.environments {
        environments.push(super::environment(&config, name)?);
    }
    if environments.is_empty() {
        environments = config.environments.iter().collect();
    }
    // What promotion.yml renders, as `plan` shows it: no images, so no digest is declared.
    let planned = plan(
        &config,
        &PlanRequest {
            provenance: rt.provenance(),
            ..PlanRequest::default()
        },
    )?;
    let hasher = ValueHasher::random()
        .map_err(|e| anyhow::anyhow!("no randomness to hash Secret values with: {e}"))?;

    let mut desired: Vec<Vec<serde_json::Value>> = Vec::new();
    let mut lives: Vec<Result<LiveNamespace, String>> = Vec::new();
    for env in &environments {
        desired.push(
            planned
                .environment(&env.name)
                .map(|p| p.services.iter().flat_map(|s| s.objects.clone()).collect())
                .unwrap_or_default(),
        );
        eprintln!("Reading namespace {} of {}", env.namespace, env.name);
        lives.push(read_live(rt, global, &options.cluster, env, &hasher).await);
    }
    let inputs: Vec<EnvironmentInput<'_>> = environments
        .iter()
        .zip(&desired)
        .zip(&lives)
        .map(|((env, desired), live)| EnvironmentInput {
            environment: env,
            desired,
            live: match live {
                Ok(namespace) => Live::Read(namespace),
                Err(why) => Live::Unreadable(why),
            },
        })
        .collect();
    let run = DriftRun {
        report: drift::compare(&config.services, &inputs),
    };

    eprint!("{}", redact(&report::drift::text(&run.report)));
    super::write_report(
        rt,
        "promote-drift.json",
        &run.report,
        options.output_dir.as_deref(),
    );
    report::drift::summary(&run.report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(run)
}

/// One environment's namespace, or why it could not be read (one line, redacted).
async fn read_live(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    cluster: &ClusterArgs,
    env: &config::Environment,
    hasher: &ValueHasher,
) -> Result<LiveNamespace, String> {
    let unreadable = |e: anyhow::Error| redact(&format!("{e:#}")).into_owned();
    let connection = connect_to(rt, global, cluster, env)
        .await
        .map_err(unreadable)?;
    live::read_namespace(&connection.client, &env.namespace, hasher)
        .await
        .map_err(|e| unreadable(e.into()))
}
