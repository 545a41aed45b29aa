//! Rendering: a service's base manifests plus an environment's settings → the exact objects a
//! deploy applies. Pure functions of their inputs (no clock, no I/O), so `plan` shows precisely
//! what `deploy` will send and snapshot tests pin it down.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::yaml::Pos;
use crate::config::{self, Config, ConfigError, Environment, Hook, Service};
use crate::registry::Reference;

pub const MANAGER: &str = "promote-action";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_ENVIRONMENT: &str = "promote.studysphere.dev/environment";
pub const LABEL_SERVICE: &str = "promote.studysphere.dev/service";
pub const ANNOTATION_GIT_SHA: &str = "promote.studysphere.dev/git-sha";
pub const ANNOTATION_RUN_URL: &str = "promote.studysphere.dev/run-url";
pub const ANNOTATION_ENVIRONMENT: &str = "promote.studysphere.dev/environment";
pub const ANNOTATION_CONFIG_HASH: &str = "promote.studysphere.dev/config-hash";
pub const ANNOTATION_IMAGE: &str = "promote.studysphere.dev/image";
pub const ANNOTATION_CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// On a `fromEnv` Secret's version: the name promotion.yml gives it (`azure-secrets` for
/// `azure-secrets-<hash>`).
pub const ANNOTATION_SECRET_NAME: &str = "promote.studysphere.dev/secret-name";
/// On a pre-deploy hook Job: the hook's name.
pub const LABEL_HOOK: &str = "promote.studysphere.dev/hook";

/// Where a deploy comes from, recorded on every workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub git_sha: Option<String>,
    pub run_url: Option<String>,
}

/// The objects of one service in one environment, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub environment: String,
    pub service: String,
    pub image: String,
    /// Hash of the ConfigMap data; also part of the ConfigMap's name.
    pub config_hash: String,
    pub objects: Vec<Value>,
}

/// Renders `service` for `env` with `image` (pinned by digest when one is known).
///
/// # Errors
/// Every problem found, located in the manifest it comes from: rendering is part of validation.
pub fn render_service(
    env: &Environment,
    service: &Service,
    image: &Reference,
    provenance: &Provenance,
) -> Result<Rendered, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let config_data = config_data(env);
    let config_hash = short_hash(&serde_json::to_vec(&config_data).unwrap_or_default());
    let config_map_name = format!("{}-config-{config_hash}", service.name);
    let pinned = image.pinned();
    let labels = common_labels(env, service);

    let mut objects = Vec::new();
    if !config_data.is_empty() {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": config_map_name,
                "namespace": env.namespace,
                "labels": labels,
                "annotations": { ANNOTATION_CONFIG_HASH: config_hash },
            },
            // Content-addressed: a new hash is a new object, so it never changes in place.
            "immutable": true,
            "data": config_data,
        }));
    }

    let mut deployment_selector = Value::Null;
    for manifest in &service.manifests {
        let mut object = manifest.object.clone();
        let kind = manifest.kind().to_string();
        let name = manifest.name().to_string();
        // The environment's own autoscaling and disruption budget replace a base one.
        if env.autoscaling.is_some()
            && kind == "HorizontalPodAutoscaler"
            && name == service.deployment
        {
            continue;
        }
        if env.min_replicas() >= 2 && kind == "PodDisruptionBudget" && name == service.deployment {
            continue;
        }
        set_metadata(&mut object, env, &labels);
        if kind == "Deployment" && name == service.deployment {
            let at = |field: &str, message: String| ConfigError {
                file: manifest.file.clone(),
                pos: Pos {
                    line: manifest.line,
                    col: 1,
                },
                field: field.to_string(),
                message,
            };
            let annotations = workload_annotations(env, &pinned, &config_hash, provenance);
            if let Err((field, message)) = render_deployment(
                &mut object,
                env,
                service,
                image,
                (!config_data.is_empty()).then_some(config_map_name.as_str()),
                &config_hash,
                &labels,
                annotations,
            ) {
                errors.push(at(field, message));
            }
            deployment_selector = object["spec"]["selector"].clone();
        } else if matches!(kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet") {
            // Every workload a deploy rolls out says where it came from, not only the service's.
            let annotations = workload_annotations(env, &pinned, &config_hash, provenance);
            ensure_object_in(ensure_object(&mut object, "metadata"), "annotations")
                .extend(annotations);
        }
        objects.push(object);
    }

    if let Some(a) = &env.autoscaling {
        let mut metrics = vec![resource_metric("cpu", a.target_cpu)];
        if let Some(memory) = a.target_memory {
            metrics.push(resource_metric("memory", memory));
        }
        objects.push(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": service.deployment, "namespace": env.namespace, "labels": labels },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": service.deployment },
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "metrics": metrics,
            },
        }));
    }
    if env.min_replicas() >= 2 && !deployment_selector.is_null() {
        objects.push(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": { "name": service.deployment, "namespace": env.namespace, "labels": labels },
            "spec": { "maxUnavailable": 1, "selector": deployment_selector },
        }));
    }

    objects.sort_by_key(|o| apply_rank(o["kind"].as_str().unwrap_or_default()));
    if errors.is_empty() {
        Ok(Rendered {
            environment: env.name.clone(),
            service: service.name.clone(),
            image: pinned,
            config_hash,
            objects,
        })
    } else {
        Err(errors)
    }
}

/// The pre-deploy hook Jobs of `env`, each running its service's new image with that service's
/// configuration, so a migration sees the same settings as the release it prepares.
pub fn render_hooks(
    config: &Config,
    env: &Environment,
    images: &BTreeMap<String, Reference>,
    rendered: &[Rendered],
) -> Vec<Value> {
    env.hooks
        .pre_deploy
        .iter()
        .filter_map(|hook| {
            let service_name = if hook.service.is_empty() {
                config.services.first()?.name.as_str()
            } else {
                hook.service.as_str()
            };
            let service = config.service(service_name)?;
            let image = images.get(service_name)?;
            let config_map = rendered
                .iter()
                .find(|r| r.service == service_name)
                .and_then(|r| r.objects.iter().find(|o| o["kind"] == "ConfigMap"))
                .and_then(|o| o["metadata"]["name"].as_str().map(str::to_string));
            Some(render_hook(
                env,
                service,
                hook,
                &image.pinned(),
                config_map.as_deref(),
            ))
        })
        .collect()
}

fn render_hook(
    env: &Environment,
    service: &Service,
    hook: &Hook,
    image: &str,
    config_map: Option<&str>,
) -> Value {
    // A new name per image and command: Job templates are immutable, and a rerun of the same
    // release finds (and reuses the result of) the Job it already ran.
    let identity = json!([image, hook.command, hook.args, hook.env]);
    let name = format!(
        "{}-{}",
        hook.name,
        &short_hash(identity.to_string().as_bytes())[..8]
    );
    let base_pod = service
        .manifests
        .iter()
        .find(|m| m.kind() == "Deployment" && m.name() == service.deployment)
        .map(|m| m.object["spec"]["template"]["spec"].clone())
        .unwrap_or(Value::Null);
    let mut container = json!({ "name": hook.name, "image": image, "command": hook.command });
    if !hook.args.is_empty() {
        container["args"] = json!(hook.args);
    }
    let env_vars: Vec<Value> = hook
        .env
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    if !env_vars.is_empty() {
        container["env"] = json!(env_vars);
    }
    let env_from = env_from(config_map, &env.secrets);
    if !env_from.is_empty() {
        container["envFrom"] = json!(env_from);
    }
    let mut pod = json!({ "restartPolicy": "Never", "containers": [container] });
    for key in ["serviceAccountName", "imagePullSecrets"] {
        if !base_pod[key].is_null() {
            pod[key] = base_pod[key].clone();
        }
    }
    let mut labels = common_labels(env, service);
    labels.insert(LABEL_HOOK.into(), json!(hook.name));
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "namespace": env.namespace, "labels": labels },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": hook.timeout.as_secs().max(1),
            // Backstop for clean-up when the deploy that ran it could not delete it.
            "ttlSecondsAfterFinished": 86400,
            "template": { "metadata": { "labels": labels }, "spec": pod },
        },
    })
}

/// ConfigMap data: the environment's config plus the feature flags, as one JSON value and as
/// one `FEATURE_*` key each, all strings.
fn config_data(env: &Environment) -> BTreeMap<String, String> {
    let mut data = env.config.clone();
    if !env.feature_flags.is_empty() {
        data.insert(
            config::FEATURE_FLAGS_KEY.to_string(),
            serde_json::to_string(&env.feature_flags).unwrap_or_default(),
        );
    }
    data
}

fn common_labels(env: &Environment, service: &Service) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert(LABEL_MANAGED_BY.into(), json!(MANAGER));
    labels.insert(LABEL_ENVIRONMENT.into(), json!(env.name));
    labels.insert(LABEL_SERVICE.into(), json!(service.name));
    labels
}

fn set_metadata(object: &mut Value, env: &Environment, labels: &Map<String, Value>) {
    let metadata = ensure_object(object, "metadata");
    metadata.insert("namespace".into(), json!(env.namespace));
    let existing = ensure_object_in(metadata, "labels");
    for (k, v) in labels {
        existing.insert(k.clone(), v.clone());
    }
}

fn workload_annotations(
    env: &Environment,
    image: &str,
    config_hash: &str,
    provenance: &Provenance,
) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert(ANNOTATION_ENVIRONMENT.into(), json!(env.name));
    a.insert(ANNOTATION_IMAGE.into(), json!(image));
    a.insert(ANNOTATION_CONFIG_HASH.into(), json!(config_hash));
    if let Some(sha) = &provenance.git_sha {
        a.insert(ANNOTATION_GIT_SHA.into(), json!(sha));
    }
    if let Some(url) = &provenance.run_url {
        a.insert(ANNOTATION_RUN_URL.into(), json!(url));
    }
    let short_sha = provenance
        .git_sha
        .as_deref()
        .map(crate::untrusted::short_sha);
    let cause = match short_sha {
        Some(sha) => format!("promote-action: {image} to {} (commit {sha})", env.name),
        None => format!("promote-action: {image} to {}", env.name),
    };
    a.insert(ANNOTATION_CHANGE_CAUSE.into(), json!(cause));
    a
}

type FieldError = (&'static str, String);

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the list
fn render_deployment(
    object: &mut Value,
    env: &Environment,
    service: &Service,
    image: &Reference,
    config_map: Option<&str>,
    config_hash: &str,
    labels: &Map<String, Value>,
    annotations: Map<String, Value>,
) -> Result<(), FieldError> {
    let metadata = ensure_object(object, "metadata");
    let existing = ensure_object_in(metadata, "annotations");
    existing.extend(annotations);

    let spec = ensure_object(object, "spec");
    // With an HPA, spec.replicas belongs to the HPA: applying it would reset the HPA's count on
    // every deploy. Kubernetes starts a new Deployment at 1 and the HPA raises it to its floor.
    if env.autoscaling.is_some() {
        spec.remove("replicas");
    } else {
        spec.insert("replicas".into(), json!(env.replicas.min));
    }
    if env.rollout.max_surge.is_some() || env.rollout.max_unavailable.is_some() {
        let strategy = ensure_object_in(spec, "strategy");
        strategy.insert("type".into(), json!("RollingUpdate"));
        let rolling = ensure_object_in(strategy, "rollingUpdate");
        if let Some(s) = &env.rollout.max_surge {
            rolling.insert("maxSurge".into(), s.to_json());
        }
        if let Some(u) = &env.rollout.max_unavailable {
            rolling.insert("maxUnavailable".into(), u.to_json());
        }
    }
    let template = ensure_object_in(spec, "template");
    let template_meta = ensure_object_in(template, "metadata");
    let template_labels = ensure_object_in(template_meta, "labels");
    for (k, v) in labels {
        template_labels.insert(k.clone(), v.clone());
    }
    ensure_object_in(template_meta, "annotations")
        .insert(ANNOTATION_CONFIG_HASH.into(), json!(config_hash));
    let pod = ensure_object_in(template, "spec");

    let repository = image.name();
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = pod.get_mut(list) else {
            continue;
        };
        for c in containers.iter_mut() {
            if !c.is_object() {
                return Err((
                    "spec.template.spec.containers",
                    format!("expected each of `{list}` to be a mapping, found {c}"),
                ));
            }
            let is_main = list == "containers" && c["name"] == service.container.as_str();
            let same_repository = c["image"]
                .as_str()
                .is_some_and(|i| strip_tag(i) == repository);
            if is_main || same_repository {
                c["image"] = json!(image.pinned());
            }
            if !is_main {
                continue;
            }
            let container = c.as_object_mut().ok_or((
                "spec.template.spec.containers",
                "expected a mapping".to_string(),
            ))?;
            if !env.resources.is_empty() {
                container.insert("resources".into(), resources_json(env));
            }
            let needs_cpu_request = env.autoscaling.is_some()
                && env.resources.requests.cpu.is_none()
                && container
                    .get("resources")
                    .is_none_or(|r| r["requests"]["cpu"].is_null());
            if needs_cpu_request {
                return Err((
                    "spec.template.spec.containers",
                    format!(
                        "environment `{}` autoscales on CPU utilisation, which needs a CPU request: set resources.requests.cpu",
                        env.name
                    ),
                ));
            }
            let mut from = env_from(config_map, &env.secrets);
            if let Some(Value::Array(existing)) = container.get("envFrom") {
                from.extend(
                    existing
                        .iter()
                        .filter(|e| !from.contains(e))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            if !from.is_empty() {
                container.insert("envFrom".into(), json!(from));
            }
            let flags: Vec<Value> = env
                .feature_flags
                .iter()
                .map(|(flag, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    json!({ "name": config::feature_env_name(flag), "value": text })
                })
                .collect();
            if !flags.is_empty() {
                let names: Vec<Value> = flags.iter().map(|f| f["name"].clone()).collect();
                let mut vars: Vec<Value> = match container.get("env") {
                    Some(Value::Array(v)) => v
                        .iter()
                        .filter(|e| !names.contains(&e["name"]))
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                vars.extend(flags);
                container.insert("env".into(), json!(vars));
            }
        }
    }
    Ok(())
}

fn env_from(config_map: Option<&str>, secrets: &[config::SecretRef]) -> Vec<Value> {
    let mut from = Vec::new();
    if let Some(name) = config_map {
        from.push(json!({ "configMapRef": { "name": name } }));
    }
    for secret in secrets {
        from.push(json!({ "secretRef": { "name": secret.name } }));
    }
    from
}

fn resources_json(env: &Environment) -> Value {
    let list = |l: &config::ResourceList| -> Map<String, Value> {
        l.entries()
            .map(|(name, q)| (name.to_string(), json!(q.text)))
            .collect()
    };
    let mut r = Map::new();
    if !env.resources.requests.is_empty() {
        r.insert(
            "requests".into(),
            Value::Object(list(&env.resources.requests)),
        );
    }
    if !env.resources.limits.is_empty() {
        r.insert("limits".into(), Value::Object(list(&env.resources.limits)));
    }
    Value::Object(r)
}

fn resource_metric(name: &str, utilization: u32) -> Value {
    json!({
        "type": "Resource",
        "resource": { "name": name, "target": { "type": "Utilization", "averageUtilization": utilization } },
    })
}

/// `registry/repo:tag@sha256:…` → `registry/repo`.
fn strip_tag(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => no_digest,
    }
}

/// Apply order: what others reference comes first (config, identities), then what routes to
/// workloads, the workloads, and last what acts on workloads (autoscalers, budgets).
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ServiceAccount"
        | "Secret"
        | "ConfigMap"
        | "Role"
        | "RoleBinding"
        | "PersistentVolumeClaim" => 1,
        "Service" => 2,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => 3,
        "HorizontalPodAutoscaler" | "PodDisruptionBudget" => 4,
        _ => 5,
    }
}

/// The first 10 hex digits of sha256: enough to tell configurations apart, short enough for names.
pub fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn ensure_object<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !value[key].is_object() {
        value[key] = json!({});
    }
    value[key].as_object_mut().expect("just made an object")
}

fn ensure_object_in<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_tag_handles_ports_and_digests() {
        assert_eq!(strip_tag("localhost:5000/app:v1"), "localhost:5000/app");
        assert_eq!(strip_tag("acr.io/team/app@sha256:abc"), "acr.io/team/app");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
    }

    #[test]
    fn apply_order_puts_config_first_and_autoscalers_last() {
        let mut kinds = vec![
            "HorizontalPodAutoscaler",
            "Deployment",
            "Service",
            "ConfigMap",
            "Ingress",
        ];
        kinds.sort_by_key(|k| apply_rank(k));
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "Service",
                "Deployment",
                "HorizontalPodAutoscaler",
                "Ingress"
            ]
        );
    }
}
