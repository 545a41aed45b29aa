//! The environments' `fromEnv` Secrets in a plan: made of the job's variables (read and masked
//! by the command before planning), applied before the objects that read them, each as a
//! version named by its content, which the pod templates that read it are pointed at, so a new
//! value rolls the workload out like a new image, and a rollback takes the old value back.
//!
//! A plan holding these Secrets holds their values: show it to people only through
//! [`Plan::hide_secret_values`].

use crate::config::{Config, ConfigErrors, Environment};
use crate::kube::{
    ManagedSecret, Materialized, ValueHasher, Variables, apply_rank, hide_secret_values,
    materialize_secrets, point_at_versions,
};

use super::Plan;

/// What a command makes of a `fromEnv` variable without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// `deploy`, `run`: a config error at the `secrets:` entry, before anything is written.
    Invalid,
    /// `plan`: the Secret is left out and named in
    /// [`EnvironmentPlan::unplanned_secrets`](super::EnvironmentPlan::unplanned_secrets), so a
    /// plan can be made without any environment's secrets (on a pull request, say).
    LeftOut,
}

/// Adds each planned environment's `fromEnv` Secrets, made of `variables`, to the objects of its
/// first service in scope (where they sort first, by kube's apply order), and points every pod
/// template that reads one, the hook Jobs' included, at its version.
///
/// # Errors
/// With [`Unset::Invalid`], one config error per variable without a value, located at its
/// `secrets:` entry; then the plan is left as it was.
pub fn add_secrets(
    config: &Config,
    plan: &mut Plan,
    variables: &Variables,
    unset: Unset,
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let mut made = Vec::new();
    for env_plan in &plan.environments {
        let Some(env) = config.environment(&env_plan.name) else {
            continue;
        };
        let materialized = materialize(env, variables);
        if let (Some(missing), Unset::Invalid) = (&materialized.missing, unset) {
            errors.extend(missing.clone().into_config_errors(&config.file).0);
        }
        made.push((env_plan.name.clone(), materialized));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    for (name, materialized) in made {
        let Some(env_plan) = plan.environments.iter_mut().find(|e| e.name == name) else {
            continue;
        };
        env_plan.unplanned_secrets = materialized.missing;
        let secrets = materialized.secrets;
        if secrets.is_empty() {
            continue;
        }
        for rendered in &mut env_plan.services {
            point_at_versions(&mut rendered.objects, &secrets);
        }
        point_at_versions(&mut env_plan.hooks, &secrets);
        if let Some(first) = env_plan.services.first_mut() {
            let mut objects: Vec<serde_json::Value> =
                secrets.iter().map(ManagedSecret::to_object).collect();
            objects.append(&mut first.objects);
            // Stable: the Secrets stay ahead of the ConfigMap of the same rank.
            objects.sort_by_key(|o| apply_rank(o["kind"].as_str().unwrap_or_default()));
            first.objects = objects;
        }
    }
    Ok(())
}

/// The check [`add_secrets`] makes with [`Unset::Invalid`], for one environment and before
/// there is a plan: `run` makes it before it records anything on GitHub.
///
/// # Errors
/// One config error per variable without a value, located at its `secrets:` entry.
pub fn require_secrets(
    config: &Config,
    env: &Environment,
    variables: &Variables,
) -> Result<(), ConfigErrors> {
    match materialize(env, variables).missing {
        Some(missing) => Err(missing.into_config_errors(&config.file)),
        None => Ok(()),
    }
}

fn materialize(env: &Environment, variables: &Variables) -> Materialized {
    materialize_secrets(&env.name, &env.namespace, &env.secrets, variables)
}

impl Plan {
    /// Replaces every Secret value in the plan with `***` and its hash (see
    /// [`hide_secret_values`]): the plan as it may be printed, written to files and diffed.
    pub fn hide_secret_values(&mut self, hasher: &ValueHasher) {
        for env in &mut self.environments {
            for object in env
                .services
                .iter_mut()
                .flat_map(|r| r.objects.iter_mut())
                .chain(env.hooks.iter_mut())
            {
                hide_secret_values(object, hasher);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::actions::{Console, Secret, Variable, random_delimiter};
    use crate::config::yaml::Pos;
    use crate::config::{self, SecretRef};
    use crate::kube::{ANNOTATION_SECRET_NAME, pod_references};
    use crate::plan::{PlanRequest, plan};

    /// The example with a `fromEnv` Secret in development (line 14 of a promotion file).
    fn example() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows-examples/studysphere/promotion.yml");
        let mut config = config::load(&path).expect("the example loads");
        config.environments[0].secrets.push(SecretRef {
            name: "app-secrets".into(),
            from_env: BTreeMap::from([("DATABASE_URL".into(), "DEV_DATABASE_URL".into())]),
            pos: Pos { line: 14, col: 9 },
        });
        config
    }

    fn planned(config: &Config) -> Plan {
        plan(config, &PlanRequest::default()).expect("the example renders")
    }

    fn set(value: &str) -> Variables {
        let value = format!("{value}-{}", random_delimiter());
        BTreeMap::from([(
            "DEV_DATABASE_URL".to_string(),
            Variable::Set(Secret::new(value, &Console::new(false))),
        )])
    }

    fn kinds(plan: &Plan, env: usize, service: usize) -> Vec<String> {
        plan.environments[env].services[service]
            .objects
            .iter()
            .map(crate::kube::object_ref)
            .collect()
    }

    /// The Secrets the service's Deployment reads.
    fn secrets_read(plan: &Plan, env: usize, service: usize) -> Vec<String> {
        plan.environments[env].services[service]
            .objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .flat_map(pod_references)
            .filter(|(kind, _)| *kind == "Secret")
            .map(|(_, name)| name)
            .collect()
    }

    #[test]
    fn secrets_go_first_and_every_workload_reading_them_reads_their_version() {
        let config = example();
        let mut plan = planned(&config);
        add_secrets(&config, &mut plan, &set("postgres"), Unset::Invalid).unwrap();
        let first = kinds(&plan, 0, 0);
        let version = first[0]
            .strip_prefix("secret/")
            .expect("the Secret goes first")
            .to_string();
        assert!(version.starts_with("app-secrets-"), "{first:?}");
        assert_eq!(
            plan.environments[0].services[0].objects[0]["metadata"]["annotations"]
                [ANNOTATION_SECRET_NAME],
            "app-secrets"
        );
        assert!(first[1].starts_with("configmap/"), "{first:?}");
        assert!(
            !kinds(&plan, 0, 1).iter().any(|k| k.starts_with("secret/")),
            "applied once per environment"
        );
        // `azure-secrets` exists in the cluster already: read by its name, as written.
        let read = [version.clone(), "azure-secrets".to_string()];
        assert_eq!(secrets_read(&plan, 0, 0), read);
        assert_eq!(secrets_read(&plan, 0, 1), read, "both services read it");
        assert!(plan.environments[0].unplanned_secrets.is_none());
        // Testing declares no `fromEnv` Secret.
        assert_eq!(secrets_read(&plan, 1, 0), ["azure-secrets"]);

        let mut rotated = planned(&config);
        add_secrets(&config, &mut rotated, &set("postgres"), Unset::Invalid).unwrap();
        assert_ne!(secrets_read(&rotated, 0, 0), read, "a new value rolls");
    }

    #[test]
    fn a_variable_without_a_value_is_an_error_for_a_deploy_and_left_out_of_a_plan() {
        let config = example();
        let none = Variables::new();
        let mut plan = planned(&config);
        let errors = add_secrets(&config, &mut plan, &none, Unset::Invalid).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        let error = &errors.0[0];
        assert_eq!(
            (error.file.as_path(), error.pos.line, error.field.as_str()),
            (
                config.file.as_path(),
                14,
                "environments.development.secrets.app-secrets.fromEnv.DATABASE_URL"
            )
        );
        assert!(
            error.message.contains("DEV_DATABASE_URL"),
            "{}",
            error.message
        );
        assert_eq!(
            kinds(&plan, 0, 0),
            kinds(&planned(&config), 0, 0),
            "unchanged"
        );

        add_secrets(&config, &mut plan, &none, Unset::LeftOut).unwrap();
        assert!(!kinds(&plan, 0, 0).iter().any(|k| k.starts_with("secret/")));
        assert_eq!(
            secrets_read(&plan, 0, 0),
            ["app-secrets", "azure-secrets"],
            "left as declared: nothing to point at"
        );
        let unplanned = plan.environments[0].unplanned_secrets.as_ref().unwrap();
        assert_eq!(unplanned.missing[0].variable, "DEV_DATABASE_URL");
    }

    #[test]
    fn a_hidden_plan_shows_no_value() {
        let config = example();
        let mut plan = planned(&config);
        let variables = set("hidden");
        add_secrets(&config, &mut plan, &variables, Unset::Invalid).unwrap();
        let Some(Variable::Set(value)) = variables.get("DEV_DATABASE_URL") else {
            unreachable!()
        };
        let hasher = ValueHasher::with_key([1; 32]);
        plan.hide_secret_values(&hasher);
        let secret = &plan.environments[0].services[0].objects[0];
        assert_eq!(
            secret["data"]["DATABASE_URL"],
            format!("*** {}", hasher.hash(value.expose().as_bytes()))
        );
        let text = format!("{plan:?}");
        assert!(!text.contains(value.expose()));
    }
}
