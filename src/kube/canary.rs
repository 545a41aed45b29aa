//! A canary's objects and the few writes that move it: the `<deployment>-canary` Deployment
//! (pod label `track: canary`) behind the stable release's own Service, its size for a step's
//! weight, and for `trafficRouting: ingress-nginx` a `<service>-canary` Service with a copy of
//! the service's Ingress carrying NGINX's canary annotations.
//!
//! The objects are pure functions of the rendered stable objects, table-tested here; when to
//! create, scale or remove them is the deploy's decision.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use serde_json::{Value, json};

use super::api::{self, ApiError};
use super::apply::{self, SCALE_MANAGER};

/// The pod label that tells the two releases apart (and fills a query's `{{track}}`).
pub const LABEL_TRACK: &str = "track";
/// NGINX's canary switch and weight ([ingress-nginx canary annotations]).
///
/// [ingress-nginx canary annotations]: https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#canary
pub const ANNOTATION_NGINX_CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const ANNOTATION_NGINX_CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// How many pods each release runs at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Split {
    pub stable: u32,
    pub canary: u32,
}

impl Split {
    /// The canary's share of the pods, in percent (what the Service's endpoints carry when every
    /// pod is ready).
    pub fn share(self) -> f64 {
        let total = self.stable + self.canary;
        if total == 0 {
            0.0
        } else {
            f64::from(self.canary) * 100.0 / f64::from(total)
        }
    }
}

/// The pods for `weight` percent when the Service spreads traffic evenly over ready pods and
/// the stable release runs `replicas` (treated as at least 1).
///
/// Capacity never drops below `replicas`, and no step runs more than twice that:
/// - up to 50 %, the stable keeps all its pods and the canary gets `c` in `1..=replicas`,
///   the `c` whose share `c / (replicas + c)` is closest to the weight (ties: the smaller);
/// - above 50 %, the canary runs `replicas` and the stable keeps `s` in `1..=replicas`, the
///   `s` whose `replicas / (replicas + s)` is closest; only 100 % takes the stable to zero, so
///   it serves until the last step.
pub fn split(replicas: u32, weight: u32) -> Split {
    let n = replicas.max(1);
    let w = f64::from(weight.min(100)) / 100.0;
    if weight >= 100 {
        return Split {
            stable: 0,
            canary: n,
        };
    }
    let closest = |share: &dyn Fn(u32) -> f64| {
        (1..=n)
            .min_by(|a, b| {
                let da = (share(*a) - w).abs();
                let db = (share(*b) - w).abs();
                da.total_cmp(&db)
            })
            .unwrap_or(1)
    };
    let nf = f64::from(n);
    if weight <= 50 {
        let canary = closest(&|c| f64::from(c) / (nf + f64::from(c)));
        Split { stable: n, canary }
    } else {
        let stable = closest(&|s| nf / (nf + f64::from(s)));
        Split { stable, canary: n }
    }
}

/// The pods for `weight` percent when ingress-nginx splits the traffic (exactly, per request):
/// the stable keeps all `replicas` until the promotion, and the canary gets enough pods for
/// its share, `ceil(weight × replicas / 100)`, at least one.
pub fn ingress_split(replicas: u32, weight: u32) -> Split {
    let n = replicas.max(1);
    let canary = (u64::from(n) * u64::from(weight.min(100))).div_ceil(100);
    Split {
        stable: n,
        canary: u32::try_from(canary).unwrap_or(n).max(1),
    }
}

/// `<name>-canary`.
pub fn canary_name(name: &str) -> String {
    format!("{name}-canary")
}

/// The stable Deployment as rendered, with `track: stable` on its pods. Only the pod template
/// gets the label: a Deployment's `spec.selector` is immutable, and the Service's selector
/// (which has no `track`) keeps matching both releases.
pub fn stable_deployment(rendered: &Value) -> Value {
    let mut object = rendered.clone();
    set_label(&mut object["spec"]["template"]["metadata"], "stable");
    object
}

/// The canary Deployment: the rendered stable one (the new image) named `<name>-canary`, its
/// own selector and pods labelled `track: canary`, at `replicas`. Its pods keep every label the
/// stable's pods have, so the Service in front of the stable selects them too.
pub fn canary_deployment(rendered: &Value, replicas: u32) -> Value {
    let mut object = rendered.clone();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    object["metadata"]["name"] = json!(canary_name(name));
    set_label(&mut object["metadata"], "canary");
    if let Some(meta) = object["metadata"].as_object_mut() {
        // Server-written fields a rendered object may carry from its manifest.
        for key in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
            meta.remove(key);
        }
    }
    object["spec"]["replicas"] = json!(replicas);
    let selector = &mut object["spec"]["selector"];
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][LABEL_TRACK] = json!("canary");
    set_label(&mut object["spec"]["template"]["metadata"], "canary");
    if let Some(status) = object.as_object_mut() {
        status.remove("status");
    }
    object
}

/// `<service>-canary`: the service's Service selecting only the canary's pods, for the canary
/// Ingress to send its weight to.
pub fn canary_service(service: &Value) -> Value {
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let mut spec = service["spec"].clone();
    if let Some(spec) = spec.as_object_mut() {
        // Allocated per Service by the server; a copy must not ask for the same ones.
        for key in ["clusterIP", "clusterIPs", "nodePort", "healthCheckNodePort"] {
            spec.remove(key);
        }
    }
    if !spec["selector"].is_object() {
        spec["selector"] = json!({});
    }
    spec["selector"][LABEL_TRACK] = json!("canary");
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": canary_name(name),
            "namespace": service["metadata"]["namespace"],
            "labels": with_track(&service["metadata"]["labels"], "canary"),
        },
        "spec": spec,
    })
}

/// `<ingress>-canary`: a copy of the service's Ingress whose backends for `service` go to
/// `<service>-canary`, marked as NGINX's canary with `weight` percent (exact, per request).
pub fn canary_ingress(ingress: &Value, service: &str, weight: u32) -> Value {
    let name = ingress["metadata"]["name"].as_str().unwrap_or_default();
    let mut spec = ingress["spec"].clone();
    redirect_backends(&mut spec, service, &canary_name(service));
    let mut annotations = ingress["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(ANNOTATION_NGINX_CANARY.into(), json!("true"));
    annotations.insert(
        ANNOTATION_NGINX_CANARY_WEIGHT.into(),
        json!(weight.min(100).to_string()),
    );
    json!({
        "apiVersion": ingress["apiVersion"],
        "kind": "Ingress",
        "metadata": {
            "name": canary_name(name),
            "namespace": ingress["metadata"]["namespace"],
            "labels": with_track(&ingress["metadata"]["labels"], "canary"),
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// Points every `backend.service.name == from` (default backend and rules) at `to`.
fn redirect_backends(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            if let Some(service) = map.get_mut("service")
                && service["name"] == from
            {
                service["name"] = json!(to);
            }
            for (key, child) in map.iter_mut() {
                if key != "service" {
                    redirect_backends(child, from, to);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| redirect_backends(i, from, to)),
        _ => {}
    }
}

fn set_label(metadata: &mut Value, track: &str) {
    metadata["labels"] = with_track(&metadata["labels"], track);
}

fn with_track(labels: &Value, track: &str) -> Value {
    let mut labels = labels.as_object().cloned().unwrap_or_default();
    labels.insert(LABEL_TRACK.into(), json!(track));
    Value::Object(labels)
}

/// Sets a Deployment's replicas through its `scale` subresource (what `kubectl scale` does),
/// leaving its template alone.
///
/// # Errors
/// The API refusing or failing after retries.
pub async fn scale(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: u32,
) -> Result<(), ApiError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(SCALE_MANAGER.into()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
    api::retrying("scaling", || api.patch_scale(name, &params, &patch))
        .await
        .map(|_| ())
}

/// Deletes `object` (its kind and name) with its dependents; one that is already gone counts
/// as deleted. Returns whether it existed.
///
/// # Errors
/// The API refusing or failing after retries.
pub async fn remove(client: &Client, object: &Value) -> Result<bool, ApiError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some((resource, _)) = apply::known_resource(api_version, kind) else {
        return Ok(false);
    };
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api::retrying("deleting", || api.delete(name, &params)).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// How many of a Deployment's pods are ready (`status.readyReplicas`); 0 when it is gone.
///
/// # Errors
/// The API failing after retries.
pub async fn ready_replicas(client: &Client, namespace: &str, name: &str) -> Result<u32, ApiError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live = api::retrying("reading", || api.get_opt(name)).await?;
    Ok(live
        .and_then(|d| d.status?.ready_replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_for_a_weight() {
        // (replicas, weight, stable, canary, why)
        let cases = [
            (2, 10, 2, 1, "one canary pod is the least there is: 33 %"),
            (2, 25, 2, 1, "1 of 3 is closest to 25 %"),
            (2, 50, 2, 2, "half and half"),
            (2, 75, 1, 2, "2 of 3 (67 %) beats 2 of 4 (50 %)"),
            (2, 100, 0, 2, "all traffic: the stable goes to zero"),
            (10, 10, 10, 1, "1 of 11 (9 %) beats 2 of 12 (17 %)"),
            (10, 25, 10, 3, "3 of 13 (23 %)"),
            (10, 50, 10, 10, "half and half"),
            (10, 90, 1, 10, "10 of 11 (91 %)"),
            (
                10,
                99,
                1,
                10,
                "the stable keeps one pod until the last step",
            ),
            (
                4,
                75,
                1,
                4,
                "4 of 5 (80 %) beats 4 of 6 (67 %): ties do not arise here",
            ),
            (1, 10, 1, 1, "one replica: the smallest canary is half"),
            (0, 10, 1, 1, "no replicas counts as one"),
            (3, 100, 0, 3, "all traffic"),
        ];
        for (replicas, weight, stable, canary, why) in cases {
            assert_eq!(
                split(replicas, weight),
                Split { stable, canary },
                "{replicas} replicas at {weight} %: {why}"
            );
        }
    }

    #[test]
    fn a_split_never_drops_below_the_stable_capacity() {
        for replicas in 1..=12 {
            for weight in 1..=100 {
                let s = split(replicas, weight);
                assert!(
                    s.stable + s.canary >= replicas && s.stable + s.canary <= 2 * replicas,
                    "{replicas} at {weight}: {s:?}"
                );
                assert!(s.canary >= 1, "{replicas} at {weight}: {s:?}");
                assert_eq!(s.stable == 0, weight == 100, "{replicas} at {weight}");
            }
        }
    }

    #[test]
    fn ingress_split_gives_the_canary_capacity_for_its_share() {
        // (replicas, weight, canary)
        let cases = [
            (4, 10, 1),
            (4, 25, 1),
            (4, 50, 2),
            (4, 100, 4),
            (10, 25, 3),
            (0, 10, 1),
        ];
        for (replicas, weight, canary) in cases {
            let s = ingress_split(replicas, weight);
            assert_eq!(s.canary, canary, "{replicas} at {weight}");
            assert_eq!(s.stable, replicas.max(1), "the stable keeps its pods");
        }
    }

    #[test]
    fn share_is_the_canary_percentage_of_pods() {
        assert_eq!(
            Split {
                stable: 2,
                canary: 2
            }
            .share(),
            50.0
        );
        assert_eq!(
            Split {
                stable: 0,
                canary: 2
            }
            .share(),
            100.0
        );
        assert_eq!(
            Split {
                stable: 0,
                canary: 0
            }
            .share(),
            0.0
        );
    }

    fn rendered() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "prod", "labels": { "app": "web" } },
            "spec": {
                "replicas": 4,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "web", "image": "r.io/web@sha256:b" }] },
                },
            },
        })
    }

    #[test]
    fn the_canary_is_the_new_release_under_its_own_name_and_selector() {
        let canary = canary_deployment(&rendered(), 1);
        assert_eq!(canary["metadata"]["name"], "web-canary");
        assert_eq!(canary["metadata"]["labels"]["track"], "canary");
        assert_eq!(canary["spec"]["replicas"], 1);
        assert_eq!(
            canary["spec"]["selector"]["matchLabels"],
            json!({ "app": "web", "track": "canary" })
        );
        assert_eq!(
            canary["spec"]["template"]["metadata"]["labels"],
            json!({ "app": "web", "track": "canary" }),
            "the stable's Service (app=web) selects the canary's pods too"
        );
        assert_eq!(
            canary["spec"]["template"]["spec"]["containers"][0]["image"],
            "r.io/web@sha256:b"
        );
    }

    #[test]
    fn the_stable_gets_its_track_on_the_pods_only() {
        let stable = stable_deployment(&rendered());
        assert_eq!(stable["metadata"]["name"], "web");
        assert_eq!(
            stable["spec"]["selector"],
            json!({ "matchLabels": { "app": "web" } }),
            "spec.selector is immutable"
        );
        assert_eq!(
            stable["spec"]["template"]["metadata"]["labels"],
            json!({ "app": "web", "track": "stable" })
        );
    }

    #[test]
    fn the_canary_service_selects_only_canary_pods() {
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "web", "namespace": "prod" },
            "spec": {
                "clusterIP": "10.0.0.7",
                "selector": { "app": "web" },
                "ports": [{ "port": 80, "targetPort": "http" }],
            },
        });
        let canary = canary_service(&service);
        assert_eq!(canary["metadata"]["name"], "web-canary");
        assert_eq!(
            canary["spec"]["selector"],
            json!({ "app": "web", "track": "canary" })
        );
        assert!(canary["spec"].get("clusterIP").is_none());
        assert_eq!(canary["spec"]["ports"], service["spec"]["ports"]);
    }

    #[test]
    fn the_canary_ingress_carries_the_exact_weight_and_points_at_the_canary_service() {
        let ingress = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web",
                "namespace": "prod",
                "annotations": { "nginx.ingress.kubernetes.io/proxy-body-size": "8m" },
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{
                    "host": "web.example.com",
                    "http": { "paths": [
                        { "path": "/", "pathType": "Prefix",
                          "backend": { "service": { "name": "web", "port": { "number": 80 } } } },
                        { "path": "/docs", "pathType": "Prefix",
                          "backend": { "service": { "name": "docs", "port": { "number": 80 } } } },
                    ] },
                }],
            },
        });
        for weight in [10, 25, 100] {
            let canary = canary_ingress(&ingress, "web", weight);
            assert_eq!(canary["metadata"]["name"], "web-canary");
            let annotations = &canary["metadata"]["annotations"];
            assert_eq!(annotations[ANNOTATION_NGINX_CANARY], "true");
            assert_eq!(
                annotations[ANNOTATION_NGINX_CANARY_WEIGHT],
                weight.to_string()
            );
            assert_eq!(
                annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
                "8m"
            );
            let paths = &canary["spec"]["rules"][0]["http"]["paths"];
            assert_eq!(paths[0]["backend"]["service"]["name"], "web-canary");
            assert_eq!(
                paths[1]["backend"]["service"]["name"], "docs",
                "another service's backend stays"
            );
            assert_eq!(canary["spec"]["rules"][0]["host"], "web.example.com");
        }
    }
}
