//! The comparison end to end: a promotion file with two environments, rendered for each, and
//! live namespaces made from what a deploy of it would leave, then changed case by case.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::config::{self, Config};
use crate::kube::LiveSecret;
use crate::kube::{Provenance, render_service};
use crate::registry::Reference;

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Two environments that promotion.yml says differ only in replicas; the production one also
/// creates a Secret from the job's environment.
const PROMOTION: &str = "registry: acr.io
services:
  - {name: web, image: team/web, manifests: web}
environments:
  - name: staging
    namespace: staging
    replicas: 1
    config: {LOG_LEVEL: info}
    featureFlags: {newUi: true}
    secrets: [app-secrets]
  - name: production
    namespace: production
    requires: staging
    replicas: 3
    config: {LOG_LEVEL: info}
    featureFlags: {newUi: true}
    secrets: [app-secrets]
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: 'acr.io/team/web:latest'}
";

fn config() -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("web")).unwrap();
    std::fs::write(dir.path().join("web/deployment.yaml"), DEPLOYMENT).unwrap();
    config::parse(Path::new("promotion.yml"), dir.path(), PROMOTION)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", e.0))
}

/// What promotion.yml renders for `env`, as `plan` does without images.
fn desired(config: &Config, env: &str) -> Vec<Value> {
    let env = config.environment(env).unwrap();
    let image = Reference::parse("acr.io/team/web:latest").unwrap();
    render_service(env, &config.services[0], &image, &Provenance::default())
        .unwrap()
        .objects
}

/// What a deploy of `digest` to `env` leaves in its namespace, owned by promote-action, with
/// `app-secrets` holding `secret_hash`.
fn deployed(config: &Config, env: &str, digest: &str, secret_hash: &str) -> LiveNamespace {
    let environment = config.environment(env).unwrap();
    let image = Reference::parse(&format!("acr.io/team/web@{digest}")).unwrap();
    let objects = render_service(
        environment,
        &config.services[0],
        &image,
        &Provenance::default(),
    )
    .unwrap()
    .objects
    .into_iter()
    .map(|mut o| {
        o["metadata"]["managedFields"] = json!([{
            "manager": "promote-action", "operation": "Apply",
            "time": "2025-03-14T10:00:00Z", "fieldsV1": { "f:spec": {} },
        }]);
        o
    })
    .collect();
    LiveNamespace {
        namespace: environment.namespace.clone(),
        objects,
        secrets: vec![LiveSecret {
            name: "app-secrets".into(),
            keys: [("TOKEN".to_string(), secret_hash.to_string())].into(),
            ..LiveSecret::default()
        }],
    }
}

fn deployment(live: &mut LiveNamespace) -> &mut Value {
    live.objects
        .iter_mut()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
}

fn report(config: &Config, live: [Option<&LiveNamespace>; 2]) -> DriftReport {
    let (staging, production) = (desired(config, "staging"), desired(config, "production"));
    fn input<'a>(
        config: &'a Config,
        name: &str,
        desired: &'a [Value],
        live: Option<&'a LiveNamespace>,
    ) -> EnvironmentInput<'a> {
        EnvironmentInput {
            environment: config.environment(name).unwrap(),
            desired,
            live: live.map_or(Live::Unreadable("403 Forbidden"), Live::Read),
        }
    }
    compare(
        &config.services,
        &[
            input(config, "staging", &staging, live[0]),
            input(config, "production", &production, live[1]),
        ],
    )
}

/// `(row label, class)` of every row that differs.
fn differing(report: &DriftReport) -> Vec<(String, &'static str)> {
    report.services[0]
        .rows
        .iter()
        .filter_map(|r| r.class.map(|c| (r.aspect.label(), c.word())))
        .collect()
}

#[test]
fn differences_are_declared_undeclared_or_hand_edits() {
    let config = config();
    let staging = deployed(&config, "staging", DIGEST_A, "sha256:111111111111");
    type Case = (
        &'static str,
        fn(&Config, &mut LiveNamespace),
        &'static [(&'static str, &'static str)],
        bool,
    );
    let cases: &[Case] = &[
        (
            "as promoted: replicas and secret values differ as declared",
            |_, _| {},
            &[("replicas", "declared"), ("env TOKEN (web)", "declared")],
            false,
        ),
        (
            "production still runs the previous release",
            |config, live| *live = deployed(config, "production", DIGEST_B, "sha256:222222222222"),
            &[
                ("image (web)", "declared"),
                ("replicas", "declared"),
                ("env TOKEN (web)", "declared"),
            ],
            false,
        ),
        (
            "production was deployed from an older promotion.yml",
            |config, live| {
                let mut old = config.clone();
                old.environments[1]
                    .config
                    .insert("LOG_LEVEL".into(), "debug".into());
                *live = deployed(&old, "production", DIGEST_A, "sha256:222222222222");
            },
            &[
                ("replicas", "declared"),
                ("env LOG_LEVEL (web)", "undeclared-between-environments"),
                ("env TOKEN (web)", "declared"),
            ],
            true,
        ),
        (
            "kubectl scale in production",
            |_, live| {
                let d = deployment(live);
                d["spec"]["replicas"] = json!(5);
                d["metadata"]["managedFields"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({
                        "manager": "kubectl", "operation": "Update", "subresource": "scale",
                        "time": "2025-03-14T11:00:00Z", "fieldsV1": { "f:spec": { "f:replicas": {} } },
                    }));
            },
            &[("replicas", "hand-edit"), ("env TOKEN (web)", "declared")],
            true,
        ),
        (
            "kubectl set env in production",
            |_, live| {
                let d = deployment(live);
                let env = &mut d["spec"]["template"]["spec"]["containers"][0]["env"];
                env.as_array_mut()
                    .unwrap()
                    .push(json!({ "name": "DEBUG", "value": "1" }));
                d["metadata"]["managedFields"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({
                        "manager": "kubectl-set", "operation": "Update",
                        "time": "2025-03-14T09:00:00Z",
                        "fieldsV1": { "f:spec": { "f:template": { "f:spec": { "f:containers": {
                            "k:{\"name\":\"web\"}": { "f:env": {
                                "k:{\"name\":\"DEBUG\"}": { ".": {}, "f:name": {}, "f:value": {} },
                            } },
                        } } } } },
                    }));
            },
            &[
                ("replicas", "declared"),
                ("env DEBUG (web)", "hand-edit"),
                ("env TOKEN (web)", "declared"),
            ],
            true,
        ),
    ];
    for (name, change, want, undeclared) in cases {
        let mut production = deployed(&config, "production", DIGEST_A, "sha256:222222222222");
        change(&config, &mut production);
        let report = report(&config, [Some(&staging), Some(&production)]);
        let want: Vec<(String, &str)> = want.iter().map(|(l, c)| (l.to_string(), *c)).collect();
        assert_eq!(differing(&report), want, "case: {name}");
        assert_eq!(report.undeclared(), *undeclared, "case: {name}");
    }
}

#[test]
fn hand_edits_name_the_manager_the_fields_and_whether_they_came_after_the_promotion() {
    let config = config();
    let staging = deployed(&config, "staging", DIGEST_A, "sha256:111111111111");
    let mut production = deployed(&config, "production", DIGEST_A, "sha256:222222222222");
    let d = deployment(&mut production);
    d["spec"]["replicas"] = json!(5);
    d["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "manager": "kubectl-edit", "operation": "Update", "time": "2025-03-14T11:00:00Z",
            "fieldsV1": { "f:spec": { "f:replicas": {} }, "f:metadata": { "f:labels": { "f:owner": {} } } },
        }));
    let report = report(&config, [Some(&staging), Some(&production)]);
    let web = &report.services[0];
    assert_eq!(
        web.hand_edits,
        [HandEdit {
            environment: "production".into(),
            object: "deployment/web".into(),
            manager: "kubectl-edit".into(),
            operation: "Update".into(),
            time: "2025-03-14T11:00:00Z".parse().ok(),
            since_promotion: true,
            fields: vec![".metadata.labels.owner".into(), ".spec.replicas".into()],
        }]
    );
    let replicas = web
        .rows
        .iter()
        .find(|r| r.aspect == Aspect::Replicas)
        .unwrap();
    assert_eq!(
        replicas.cells[1],
        Cell {
            live: Some(Shown::Text("5".into())),
            declared: Some(Shown::Text("3".into())),
            edited_by: vec!["kubectl-edit".into()],
        }
    );
    assert_eq!(report.count(Class::HandEdit), 1);
}

#[test]
fn unreadable_and_undeployed_environments_take_no_part() {
    let config = config();
    let staging = deployed(&config, "staging", DIGEST_A, "sha256:111111111111");

    let unreadable = report(&config, [Some(&staging), None]);
    assert_eq!(unreadable.unreadable().count(), 1);
    assert_eq!(
        unreadable.environments[1].error.as_deref(),
        Some("403 Forbidden")
    );
    let rows = &unreadable.services[0].rows;
    assert!(differing(&unreadable).is_empty(), "{rows:#?}");
    assert!(rows.iter().all(|r| r.cells[1].live.is_none()));
    assert!(!unreadable.undeclared());

    let empty = LiveNamespace {
        namespace: "production".into(),
        ..LiveNamespace::default()
    };
    let report = report(&config, [Some(&staging), Some(&empty)]);
    assert_eq!(report.services[0].not_deployed, ["production"]);
    assert!(differing(&report).is_empty());
    assert!(!report.undeclared());
}

#[test]
fn declared_secret_keys_must_exist_and_their_values_never_show() {
    let mut config = config();
    // Both environments create app-secrets from the job's environment with one key.
    for env in &mut config.environments {
        env.secrets[0].from_env = [("TOKEN".to_string(), "TOKEN_VAR".to_string())].into();
    }
    let staging = deployed(&config, "staging", DIGEST_A, "sha256:111111111111");
    let mut production = deployed(&config, "production", DIGEST_A, "sha256:222222222222");
    production.secrets.clear();
    let report = report(&config, [Some(&staging), Some(&production)]);
    let token = report.services[0]
        .rows
        .iter()
        .find(|r| r.aspect.label() == "env TOKEN (web)")
        .unwrap();
    assert_eq!(token.class, Some(Class::UndeclaredBetweenEnvironments));
    assert_eq!(
        token.cells[1].declared,
        Some(Shown::Unresolved("created by the next deploy".into()))
    );
    assert_eq!(
        token.cells[0].live,
        Some(Shown::Hashed("sha256:111111111111".into()))
    );
}

#[test]
fn classes_follow_from_the_cells() {
    let cell = |live: Option<&str>, declared: Option<&str>, edited: &[&str]| Cell {
        live: live.map(|v| Shown::Text(v.into())),
        declared: declared.map(|v| Shown::Text(v.into())),
        edited_by: edited.iter().map(|m| m.to_string()).collect(),
    };
    let cases: &[(&str, Vec<Cell>, Option<Class>)] = &[
        (
            "equal",
            vec![
                cell(Some("1"), Some("1"), &[]),
                cell(Some("1"), Some("1"), &[]),
            ],
            None,
        ),
        (
            "equal but both differ from promotion.yml: not between environments",
            vec![
                cell(Some("1"), Some("2"), &[]),
                cell(Some("1"), Some("2"), &[]),
            ],
            None,
        ),
        (
            "differ as declared",
            vec![
                cell(Some("1"), Some("1"), &[]),
                cell(Some("3"), Some("3"), &[]),
            ],
            Some(Class::Declared),
        ),
        (
            "differ, promotion.yml does not say (an unpromoted digest)",
            vec![cell(Some("a"), None, &[]), cell(Some("b"), None, &[])],
            Some(Class::Declared),
        ),
        (
            "differ against promotion.yml",
            vec![
                cell(Some("1"), Some("1"), &[]),
                cell(Some("2"), Some("1"), &[]),
            ],
            Some(Class::UndeclaredBetweenEnvironments),
        ),
        (
            "owned by another manager, even when equal",
            vec![
                cell(Some("1"), Some("1"), &[]),
                cell(Some("1"), Some("1"), &["kubectl"]),
            ],
            Some(Class::HandEdit),
        ),
        (
            "one environment left to compare",
            vec![cell(Some("1"), Some("1"), &[]), cell(None, None, &[])],
            None,
        ),
        ("nothing to compare", vec![cell(None, None, &[])], None),
    ];
    for (name, cells, want) in cases {
        assert_eq!(compare::classify(cells), *want, "case: {name}");
    }
}

#[test]
fn secret_versions_fold_onto_the_one_the_live_workloads_read() {
    let mut config = config();
    for env in &mut config.environments {
        env.secrets[0].from_env = [("TOKEN".to_string(), "TOKEN_VAR".to_string())].into();
    }
    // Each environment runs its own version of app-secrets; staging also keeps an older one.
    let versioned = |env: &str, version: &str, hash: &str| {
        let mut live = deployed(&config, env, DIGEST_A, hash);
        let versions = [("app-secrets".to_string(), version.to_string())].into();
        rename_secret_references(&mut live.objects, &versions);
        live.secrets[0].name = version.to_string();
        live.secrets[0].declared = Some("app-secrets".to_string());
        live
    };
    let mut staging = versioned("staging", "app-secrets-0123456789", "sha256:111111111111");
    staging.secrets.push(LiveSecret {
        name: "app-secrets-aaaaaaaaaa".into(),
        declared: Some("app-secrets".into()),
        keys: [("TOKEN".to_string(), "sha256:999999999999".to_string())].into(),
        ..LiveSecret::default()
    });
    let production = versioned(
        "production",
        "app-secrets-9876543210",
        "sha256:111111111111",
    );

    let mut desired_staging = desired(&config, "staging");
    let mut desired_production = desired(&config, "production");
    fold_secret_versions(&mut desired_staging, &staging);
    fold_secret_versions(&mut desired_production, &production);
    let reads = |objects: &[Value]| -> Vec<String> {
        objects
            .iter()
            .flat_map(pod_references)
            .filter(|(kind, _)| *kind == "Secret")
            .map(|(_, name)| name)
            .collect()
    };
    assert_eq!(reads(&desired_staging), ["app-secrets-0123456789"]);
    assert_eq!(reads(&desired_production), ["app-secrets-9876543210"]);

    let report = compare(
        &config.services,
        &[
            EnvironmentInput {
                environment: config.environment("staging").unwrap(),
                desired: &desired_staging,
                live: Live::Read(&staging),
            },
            EnvironmentInput {
                environment: config.environment("production").unwrap(),
                desired: &desired_production,
                live: Live::Read(&production),
            },
        ],
    );
    let token = report.services[0]
        .rows
        .iter()
        .find(|r| r.aspect.label() == "env TOKEN (web)")
        .unwrap();
    assert_eq!(
        token.class, None,
        "the same value under two versions: {token:?}"
    );
    assert_eq!(
        token.cells[0].declared,
        Some(Shown::Hashed("sha256:111111111111".into())),
        "the version staging reads, not the older one"
    );
    assert!(!report.undeclared(), "{:?}", differing(&report));
}
