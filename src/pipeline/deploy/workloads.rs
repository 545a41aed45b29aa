//! What the deploy reads about its workloads: how each looked before the apply, the image a
//! rendered or live object runs, and the selector of its pods.

use anyhow::Context as _;
use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::config::Config;
use crate::kube::{
    BlueGreenLive, RolloutState, WorkloadKind, evaluate_rollout, known_resource, object_ref,
    read_blue_green, retrying, revision_of,
};
use crate::plan::EnvironmentPlan;

/// What a workload looked like before the apply.
#[derive(Debug, Clone, Default)]
pub struct Before {
    pub generation: Option<i64>,
    pub revision: Option<i64>,
    pub image: Option<String>,
    /// Whether its last rollout had finished (kubectl's rules): a rerun waits for one that had not.
    pub settled: bool,
}

/// The image of `container` in a workload object (the first container's when none has the name).
pub fn image_of(object: &Value, container: &str) -> Option<String> {
    let containers = object
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    containers
        .iter()
        .find(|c| c["name"] == container)
        .or(containers.first())
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
}

/// Reads the live counterpart of a rendered workload object.
///
/// # Errors
/// The API failing (after retries); a workload that does not exist yet is [`Before::default`].
pub async fn read_before(
    client: &Client,
    object: &Value,
    container: &str,
) -> anyhow::Result<Before> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some((resource, _)) = known_resource(api_version, kind) else {
        return Ok(Before::default());
    };
    let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let live = retrying("reading", || api.get_opt(name))
        .await
        .with_context(|| format!("reading {}", object_ref(object)))?;
    Ok(match live {
        None => Before::default(),
        Some(live) => {
            let value = serde_json::to_value(&live).unwrap_or(Value::Null);
            let settled = WorkloadKind::parse(kind)
                .is_none_or(|k| evaluate_rollout(k, &value) == RolloutState::Complete);
            Before {
                generation: live.metadata.generation,
                revision: revision_of(live.metadata.annotations.as_ref()),
                image: image_of(&value, container),
                settled,
            }
        }
    })
}

/// `app=web,tier=api`: the label selector of a workload's pods, for diagnosis.
pub fn selector_of(object: &Value) -> Option<String> {
    let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The container that runs the service's image in its workloads.
pub fn container_of(config: &Config, service: &str) -> String {
    config
        .service(service)
        .map_or_else(|| service.to_string(), |s| s.container.clone())
}

/// A planned service as blue-green sees it: the Deployment that takes a colour, its container
/// and the Services in front of it.
pub struct ColouredService<'a> {
    pub service: &'a str,
    pub objects: &'a [Value],
    pub deployment: String,
    pub container: String,
    /// Never empty; the first one's selector says which colour serves.
    pub fronting: Vec<String>,
}

impl ColouredService<'_> {
    /// Both colours (and any plain Deployment) as the cluster has them now.
    ///
    /// # Errors
    /// The API failing (after retries).
    pub async fn read(&self, client: &Client, namespace: &str) -> anyhow::Result<BlueGreenLive> {
        read_blue_green(
            client,
            namespace,
            &self.deployment,
            &self.container,
            &self.fronting[0],
        )
        .await
    }
}

/// The planned services with a Service in front of their Deployment, in plan order (in a
/// blue-green environment that is every one: validation makes sure).
pub fn coloured_services<'a>(
    config: &'a Config,
    plan: &'a EnvironmentPlan,
) -> Vec<ColouredService<'a>> {
    plan.services
        .iter()
        .filter_map(|rendered| {
            let service = config.service(&rendered.service)?;
            let fronting: Vec<String> = service
                .fronting_services()
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            (!fronting.is_empty()).then(|| ColouredService {
                service: &rendered.service,
                objects: &rendered.objects,
                deployment: service.deployment.clone(),
                container: service.container.clone(),
                fronting,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_are_read_from_the_named_container() {
        let object = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "proxy:1"},
            {"name": "web", "image": "r.io/web@sha256:x"}
        ]}}}});
        assert_eq!(
            image_of(&object, "web").as_deref(),
            Some("r.io/web@sha256:x")
        );
        assert_eq!(image_of(&object, "other").as_deref(), Some("proxy:1"));
        assert_eq!(
            selector_of(
                &json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "api"}}}})
            ),
            Some("app=web,tier=api".into())
        );
    }
}
