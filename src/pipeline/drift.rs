//! `promote drift`: the seed's "Different Behavior Across Environments" as a check. Every
//! environment's cluster is read and compared, side by side, with what promotion.yml renders
//! for it (see `drift`); the differences promotion.yml declares are shown as information, the
//! others (between environments against promotion.yml, and hand edits) make the command exit 1,
//! so it can run on a schedule.
//!
//! Read-only. An environment whose cluster cannot be read is shown with the reason and also
//! exits 1: a check that could not look is not a pass.

use anyhow::Context as _;

use super::Runtime;
use crate::actions::redact;
use crate::cli::{ClusterArgs, DriftArgs, GlobalArgs};
use crate::config;
use crate::drift::{self, DriftReport, EnvironmentInput, Live};
use crate::kube::{LiveNamespace, ValueHasher, read_namespace};
use crate::outcome::Outcome;
use crate::plan::{self, PlanRequest};
use crate::report;
use crate::say;

/// `promote drift`: prints the comparison, writes the job summary and promote-drift.json.
///
/// # Errors
/// An invalid promotion file or request (exit 2), a summary that cannot be written. Clusters
/// that cannot be read are not errors: they are columns saying why.
pub async fn run_drift(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &DriftArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let mut environments = Vec::new();
    for name in args.environments.iter().filter(|n| !n.is_empty()) {
        environments.push(plan::environment(&config, name)?);
    }
    if environments.is_empty() {
        environments = config.environments.iter().collect();
    }
    // What promotion.yml renders, as `plan` shows it: no images, so no digest is declared, and
    // no Secret values (the comparison needs only their keys; the live side is hashed).
    let planned = plan::plan(
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
        let mut objects: Vec<serde_json::Value> = planned
            .environment(&env.name)
            .map(|p| p.objects().cloned().collect())
            .unwrap_or_default();
        say!("Reading namespace {} of {}", env.namespace, env.name);
        let live = read_live(rt, global, &args.cluster, env, &hasher).await;
        if let Ok(namespace) = &live {
            drift::fold_secret_versions(&mut objects, namespace);
        }
        desired.push(objects);
        lives.push(live);
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
    let report = drift::compare(&config.services, &inputs);

    say!("{}", report::drift_text(&report).trim_end());
    super::write_report(
        rt,
        "promote-drift.json",
        &report,
        args.output_dir.as_deref(),
    )?;
    report::drift_summary(&report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(outcome(&report))
}

/// Exit 1 on undeclared drift or an environment that could not be read (a check that could
/// not look is not a pass), else 0.
fn outcome(report: &DriftReport) -> Outcome {
    if report.undeclared() || report.unreadable().next().is_some() {
        Outcome::Failed
    } else {
        Outcome::Success
    }
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
    let connection = super::connect_to(rt, global, cluster, env)
        .await
        .map_err(unreadable)?;
    read_namespace(&connection.client, &env.namespace, hasher)
        .await
        .map_err(|e| unreadable(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{Column, HandEdit, ServiceDrift};

    fn report(unreadable: bool, hand_edit: bool) -> DriftReport {
        DriftReport {
            environments: vec![Column {
                environment: "production".into(),
                namespace: "prod".into(),
                error: unreadable.then(|| "connection refused".to_string()),
            }],
            services: vec![ServiceDrift {
                service: "web".into(),
                not_deployed: Vec::new(),
                runs_as: Vec::new(),
                rows: Vec::new(),
                hand_edits: if hand_edit {
                    vec![HandEdit {
                        environment: "production".into(),
                        object: "deployment/web".into(),
                        manager: "kubectl-edit".into(),
                        operation: "Update".into(),
                        time: None,
                        since_promotion: true,
                        fields: vec![".spec.replicas".into()],
                    }]
                } else {
                    Vec::new()
                },
            }],
        }
    }

    #[test]
    fn exit_1_on_undeclared_drift_or_an_environment_it_could_not_read() {
        let cases = [
            ("clean", false, false, Outcome::Success),
            ("a hand edit", false, true, Outcome::Failed),
            ("a cluster it could not read", true, false, Outcome::Failed),
        ];
        for (name, unreadable, hand_edit, want) in cases {
            assert_eq!(
                outcome(&report(unreadable, hand_edit)),
                want,
                "case: {name}"
            );
        }
    }
}
