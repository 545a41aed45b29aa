//! Blue-green on a cluster: two Deployments `<deployment>-blue` / `-green` told apart by the
//! label `version`, the Service whose selector picks the colour that serves, and a preview
//! Service `<service>-preview` that picks the other. The object rewrites and the decisions are
//! pure (tested by table below); the reads and writes at the end go through [`api`]'s retries.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{Value, json};

use super::api;
use super::apply::{self, Force, Mode};

/// The label that tells the colours' pods apart, in the Deployments and the Service selector.
pub const LABEL_VERSION: &str = "version";
/// When the Service's selector last switched (RFC 3339), kept on the Service itself so the
/// next deploy and `status` know how long the previous colour has been kept.
pub const ANNOTATION_SWITCHED_AT: &str = "promote.studysphere.dev/switched-at";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Blue,
    Green,
}

impl Colour {
    pub fn word(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }

    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    pub fn parse(word: &str) -> Option<Colour> {
        match word {
            "blue" => Some(Colour::Blue),
            "green" => Some(Colour::Green),
            _ => None,
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// `web-blue`: the Deployment of one colour.
pub fn colour_name(deployment: &str, colour: Colour) -> String {
    format!("{deployment}-{}", colour.word())
}

/// `web-preview`: the Service that reaches the idle colour.
pub fn preview_name(service: &str) -> String {
    format!("{service}-preview")
}

/// One colour's Deployment as it is in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColourState {
    pub replicas: i32,
    pub ready: i32,
    pub image: Option<String>,
}

/// What the cluster says about one service's blue-green: the colour its Service selects (none
/// before the first blue-green deploy), when it switched, and the Deployments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub serving: Option<Colour>,
    pub switched_at: Option<Timestamp>,
    /// The plain `<deployment>` of a rolling environment (or a migration cut short).
    pub plain: Option<ColourState>,
    pub blue: Option<ColourState>,
    pub green: Option<ColourState>,
}

impl Live {
    pub fn colour(&self, colour: Colour) -> Option<&ColourState> {
        match colour {
            Colour::Blue => self.blue.as_ref(),
            Colour::Green => self.green.as_ref(),
        }
    }
}

/// Where a blue-green deploy starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The colour serving now (after the migration, when there is one).
    pub active: Option<Colour>,
    /// The colour the release goes to.
    pub idle: Colour,
    /// A plain Deployment serves now: it becomes `active` first (copied to that colour, which
    /// the Service then selects), so no request finds no pod.
    pub migrate: bool,
}

/// Which colour serves and which gets the release. A Service that selects no colour yet, with
/// a plain Deployment, is a rolling environment moving to blue-green: the plain Deployment's
/// pods become blue, the release goes to green. With nothing there, the first release is blue.
pub fn start(live: &Live) -> Start {
    match (live.serving, &live.plain) {
        (Some(active), _) => Start {
            active: Some(active),
            idle: active.other(),
            migrate: false,
        },
        (None, Some(_)) => Start {
            active: Some(Colour::Blue),
            idle: Colour::Green,
            migrate: true,
        },
        (None, None) => Start {
            active: None,
            idle: Colour::Blue,
            migrate: false,
        },
    }
}

/// A rollback of a blue-green service: the Services select `to` again instead of `from`; when
/// `to` was scaled to zero, it is first scaled to `scale_to` (the serving colour's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchBack {
    pub from: Colour,
    pub to: Colour,
    pub scale_to: Option<i32>,
}

/// Why a blue-green service has nothing to switch back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoPrevious {
    #[error("its Service selects no colour yet (no blue-green deploy has switched it)")]
    NotSwitched,
    #[error("{serving} serves and the other colour's Deployment does not exist (a first deploy)")]
    Missing { serving: Colour },
}

/// What `promote rollback` does to one blue-green service: switch to the colour that does not
/// serve, the previous release, which `keepPrevious` kept at full size (or, scaled down, is
/// scaled up first: pods start, but nothing is rebuilt).
///
/// # Errors
/// [`NoPrevious`] when there is no other colour to switch to.
pub fn switch_back(live: &Live) -> Result<SwitchBack, NoPrevious> {
    let from = live.serving.ok_or(NoPrevious::NotSwitched)?;
    let to = from.other();
    let previous = live
        .colour(to)
        .ok_or(NoPrevious::Missing { serving: from })?;
    let serving_size = live.colour(from).map_or(1, |c| c.replicas.max(1));
    Ok(SwitchBack {
        from,
        to,
        scale_to: (previous.replicas == 0).then_some(serving_size),
    })
}

/// Whether the previous colour has been kept at full size long enough to scale it to zero:
/// `keep` after the switch (`None`: until the next promotion replaces it).
pub fn previous_expired(
    switched_at: Option<Timestamp>,
    keep: Option<Duration>,
    now: Timestamp,
) -> bool {
    match (switched_at, keep) {
        (Some(at), Some(keep)) => {
            let kept = now.duration_since(at);
            kept.is_positive() && kept.unsigned_abs() >= keep
        }
        _ => false,
    }
}

/// What `promote retire` does to one blue-green service's previous colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Retirement {
    /// Its `keepPrevious` window has passed: scale `colour` (now `replicas`) to zero.
    ScaleDown { colour: Colour, replicas: i32 },
    /// Still inside the window (`until` is `None` with `until-next-promotion`).
    Keep {
        colour: Colour,
        until: Option<Timestamp>,
    },
    /// Nothing runs besides the serving colour: already scaled down, a first deploy, or no
    /// switch yet.
    NothingKept,
}

/// Whether the previous colour of `live` is retired now: only the colour that does not serve,
/// only at full size, only once `keep` has passed since the switch. A Service that selects no
/// colour is left alone (a migration in progress, or not blue-green yet).
pub fn retirement(live: &Live, keep: Option<Duration>, now: Timestamp) -> Retirement {
    let Some(serving) = live.serving else {
        return Retirement::NothingKept;
    };
    let previous = serving.other();
    match live.colour(previous) {
        Some(state) if state.replicas > 0 => {
            if previous_expired(live.switched_at, keep, now) {
                Retirement::ScaleDown {
                    colour: previous,
                    replicas: state.replicas,
                }
            } else {
                Retirement::Keep {
                    colour: previous,
                    until: live.switched_at.and_then(|at| kept_until(at, keep)),
                }
            }
        }
        _ => Retirement::NothingKept,
    }
}

/// When the previous colour may be scaled to zero, for the report.
pub fn kept_until(switched_at: Timestamp, keep: Option<Duration>) -> Option<Timestamp> {
    let keep = jiff::SignedDuration::try_from(keep?).ok()?;
    switched_at.checked_add(keep).ok()
}

fn set_label(object: &mut Value, pointer: &str, colour: Colour) {
    if let Some(map) = ensure_map(object, pointer) {
        map.insert(LABEL_VERSION.to_string(), json!(colour.word()));
    }
}

/// The JSON object at `pointer` (`/spec/selector/matchLabels`), created when missing.
fn ensure_map<'v>(
    object: &'v mut Value,
    pointer: &str,
) -> Option<&'v mut serde_json::Map<String, Value>> {
    let mut at = object;
    for part in pointer.split('/').skip(1) {
        let map = at.as_object_mut()?;
        at = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
    at.as_object_mut()
}

/// A rendered Deployment as one colour: its name, selector, pod labels and own labels carry the
/// colour, so the two never share pods (a new object: the selector of an existing Deployment is
/// immutable, which is why the colours are two Deployments).
pub fn colour_deployment(rendered: &Value, colour: Colour) -> Value {
    let mut object = rendered.clone();
    let name = rendered["metadata"]["name"].as_str().unwrap_or_default();
    object["metadata"]["name"] = json!(colour_name(name, colour));
    set_label(&mut object, "/metadata/labels", colour);
    set_label(&mut object, "/spec/selector/matchLabels", colour);
    set_label(&mut object, "/spec/template/metadata/labels", colour);
    object
}

/// The first colour of a migration, copied from the live plain Deployment: the same pods (image,
/// configuration, size), labelled with the colour; only what the server owns is left out.
pub fn colour_from_live(live: &Value, colour: Colour) -> Value {
    colour_deployment(&copy_of_live(live), colour)
}

/// The plain Deployment `deployment` of an environment moving back from blue-green to rolling,
/// copied from the live serving colour: the same pods, without the colour in its name, selector
/// or labels, so the rendered Services (which select no colour) reach it.
pub fn plain_from_colour(live: &Value, deployment: &str) -> Value {
    let mut object = copy_of_live(live);
    object["metadata"]["name"] = json!(deployment);
    for pointer in [
        "/metadata/labels",
        "/spec/selector/matchLabels",
        "/spec/template/metadata/labels",
    ] {
        if let Some(map) = object.pointer_mut(pointer).and_then(Value::as_object_mut) {
            map.remove(LABEL_VERSION);
        }
    }
    object
}

/// A live Deployment as an object to apply under another name: what the server owns (status,
/// revision, uid, managed fields, creation time) left out.
fn copy_of_live(live: &Value) -> Value {
    let metadata = &live["metadata"];
    let mut annotations = metadata["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.remove("deployment.kubernetes.io/revision");
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    let mut spec = live["spec"].clone();
    if let Some(template_metadata) = spec
        .pointer_mut("/template/metadata")
        .and_then(Value::as_object_mut)
    {
        template_metadata.remove("creationTimestamp");
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "labels": metadata["labels"].as_object().cloned().unwrap_or_default(),
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// A fronting Service that selects `colour`, recording when it switched to it.
pub fn serving_service(rendered: &Value, colour: Colour, switched_at: Option<Timestamp>) -> Value {
    let mut object = rendered.clone();
    set_label(&mut object, "/spec/selector", colour);
    if let Some(at) = switched_at
        && let Some(annotations) = ensure_map(&mut object, "/metadata/annotations")
    {
        annotations.insert(ANNOTATION_SWITCHED_AT.to_string(), json!(at.to_string()));
    }
    object
}

/// The preview Service of a fronting Service: the same ports, selecting `colour`, reachable
/// inside the cluster only (no node ports or load balancer of its own).
pub fn preview_service(rendered: &Value, colour: Colour) -> Value {
    let mut object = rendered.clone();
    let name = rendered["metadata"]["name"].as_str().unwrap_or_default();
    object["metadata"]["name"] = json!(preview_name(name));
    if let Some(spec) = object["spec"].as_object_mut() {
        for owned in [
            "clusterIP",
            "clusterIPs",
            "externalIPs",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "externalTrafficPolicy",
            "healthCheckNodePort",
        ] {
            spec.remove(owned);
        }
        spec.insert("type".into(), json!("ClusterIP"));
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
    }
    set_label(&mut object, "/spec/selector", colour);
    object
}

/// What a blue-green deploy applies for one service before the switch: its rendered objects
/// with the Deployment as the idle colour, the fronting Services still selecting the active
/// colour (or the idle one on a first deploy, when nothing serves), a preview Service for each,
/// and an autoscaler that follows the release.
pub fn objects_before_switch(
    objects: &[Value],
    deployment: &str,
    fronting: &[String],
    start: &Start,
    switched_at: Option<Timestamp>,
) -> Vec<Value> {
    let serving = start.active.unwrap_or(start.idle);
    let mut out = Vec::with_capacity(objects.len() + fronting.len());
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        match kind {
            "Deployment" if name == deployment => out.push(colour_deployment(object, start.idle)),
            "Service" if fronting.iter().any(|f| f == name) => {
                out.push(serving_service(object, serving, switched_at));
                out.push(preview_service(object, start.idle));
            }
            "HorizontalPodAutoscaler"
                if object
                    .pointer("/spec/scaleTargetRef/name")
                    .and_then(Value::as_str)
                    == Some(deployment) =>
            {
                let mut hpa = object.clone();
                hpa["spec"]["scaleTargetRef"]["name"] = json!(colour_name(deployment, start.idle));
                out.push(hpa);
            }
            _ => out.push(object.clone()),
        }
    }
    out
}

/// The fronting Services of `objects` switched to `colour` at `at`: one apply each.
pub fn switched_services(
    objects: &[Value],
    fronting: &[String],
    colour: Colour,
    at: Timestamp,
) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| {
            o["kind"] == "Service" && fronting.iter().any(|f| o["metadata"]["name"] == f.as_str())
        })
        .map(|o| serving_service(o, colour, Some(at)))
        .collect()
}

/// The state of one Deployment, or `None` when it does not exist.
fn state_of(d: &Deployment, container: &str) -> ColourState {
    let spec = d.spec.as_ref();
    let containers = spec
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    ColourState {
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        ready: d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        image: containers
            .iter()
            .find(|c| c.name == container)
            .or(containers.first())
            .and_then(|c| c.image.clone()),
    }
}

/// Reads one service's blue-green state: the first fronting Service's selector and switch time,
/// and the plain and coloured Deployments.
///
/// # Errors
/// The API failing (after retries).
pub async fn read_live(
    client: &Client,
    namespace: &str,
    deployment: &str,
    container: &str,
    service: &str,
) -> anyhow::Result<Live> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live_service = api::retrying("reading the Service", || services.get_opt(service))
        .await
        .with_context(|| format!("reading service/{service}"))?;
    let read = |name: String| {
        let deployments = deployments.clone();
        async move {
            api::retrying("reading the Deployment", || deployments.get_opt(&name))
                .await
                .with_context(|| format!("reading deployment/{name}"))
                .map(|d| d.map(|d| state_of(&d, container)))
        }
    };
    let selector = live_service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.selector.as_ref());
    Ok(Live {
        serving: selector
            .and_then(|s| s.get(LABEL_VERSION))
            .and_then(|v| Colour::parse(v)),
        switched_at: live_service
            .as_ref()
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(ANNOTATION_SWITCHED_AT))
            .and_then(|t| t.parse().ok()),
        plain: read(deployment.to_string()).await?,
        blue: read(colour_name(deployment, Colour::Blue)).await?,
        green: read(colour_name(deployment, Colour::Green)).await?,
    })
}

/// The Deployment whose pods `service` sends traffic to: `<deployment>-<colour>` once its
/// selector picks a colour, else `<deployment>` itself (a rolling or canary environment).
pub fn serving_name(deployment: &str, service: Option<&Service>) -> String {
    service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get(LABEL_VERSION))
        .and_then(|v| Colour::parse(v))
        .map_or_else(|| deployment.to_string(), |c| colour_name(deployment, c))
}

/// The colour a Service (as JSON) selects, if any.
pub fn selected_colour(service: &Value) -> Option<Colour> {
    service["spec"]["selector"][LABEL_VERSION]
        .as_str()
        .and_then(Colour::parse)
}

/// [`serving_name`] from the live Service `service` (none: the service has no Service, so
/// `deployment` itself serves).
///
/// # Errors
/// The API failing (after retries).
pub async fn serving_deployment(
    client: &Client,
    namespace: &str,
    deployment: &str,
    service: Option<&str>,
) -> anyhow::Result<String> {
    let Some(service) = service else {
        return Ok(deployment.to_string());
    };
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let live = api::retrying("reading the Service", || services.get_opt(service))
        .await
        .with_context(|| format!("reading service/{service}"))?;
    Ok(serving_name(deployment, live.as_ref()))
}

/// The live Deployment `name` as JSON, for a migration's copy.
///
/// # Errors
/// The API failing, or no such Deployment.
pub async fn read_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live = api::retrying("reading the Deployment", || deployments.get(name))
        .await
        .with_context(|| format!("reading deployment/{name}"))?;
    Ok(serde_json::to_value(live)?)
}

/// Switches every fronting Service (already rewritten by [`switched_services`]) in one apply
/// each, and returns how long that took.
///
/// # Errors
/// The first Service the server refused; those before it are switched.
pub async fn switch(
    client: &Client,
    services: &[Value],
    force: Force,
) -> Result<Duration, apply::ApplyError> {
    let started = tokio::time::Instant::now();
    for service in services {
        apply::apply_one(client, service, Mode::Write, force).await?;
    }
    Ok(started.elapsed())
}

/// Deletes Deployment `name` with its ReplicaSets and pods (a migration's plain Deployment).
///
/// # Errors
/// The API failing (after retries); a Deployment already gone is not an error.
pub async fn delete_deployment(client: &Client, namespace: &str, name: &str) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api::retrying("deleting the Deployment", || {
        deployments.delete(name, &params)
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("deleting deployment/{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_switches_to_the_colour_that_does_not_serve() {
        let state = |replicas| ColourState {
            replicas,
            ready: replicas,
            image: None,
        };
        let live = |serving, blue: Option<i32>, green: Option<i32>| Live {
            serving,
            blue: blue.map(state),
            green: green.map(state),
            ..Live::default()
        };
        let cases = [
            (
                "previous kept at full size",
                live(Some(Colour::Green), Some(3), Some(3)),
                Ok(SwitchBack {
                    from: Colour::Green,
                    to: Colour::Blue,
                    scale_to: None,
                }),
            ),
            (
                "back again",
                live(Some(Colour::Blue), Some(3), Some(3)),
                Ok(SwitchBack {
                    from: Colour::Blue,
                    to: Colour::Green,
                    scale_to: None,
                }),
            ),
            (
                "previous scaled to zero: to the serving size first",
                live(Some(Colour::Green), Some(0), Some(4)),
                Ok(SwitchBack {
                    from: Colour::Green,
                    to: Colour::Blue,
                    scale_to: Some(4),
                }),
            ),
            (
                "previous at zero and the serving one too: one pod",
                live(Some(Colour::Green), Some(0), Some(0)),
                Ok(SwitchBack {
                    from: Colour::Green,
                    to: Colour::Blue,
                    scale_to: Some(1),
                }),
            ),
            (
                "a first deploy",
                live(Some(Colour::Blue), Some(2), None),
                Err(NoPrevious::Missing {
                    serving: Colour::Blue,
                }),
            ),
            (
                "never switched",
                live(None, None, None),
                Err(NoPrevious::NotSwitched),
            ),
        ];
        for (name, live, want) in cases {
            assert_eq!(switch_back(&live), want, "case: {name}");
        }
    }

    fn state() -> Option<ColourState> {
        Some(ColourState {
            replicas: 2,
            ready: 2,
            image: None,
        })
    }

    #[test]
    fn the_serving_deployment_follows_the_selector() {
        let service = |selector: Value| -> Service {
            serde_json::from_value(
                json!({"metadata": {"name": "web"}, "spec": {"selector": selector}}),
            )
            .unwrap()
        };
        let cases = [
            (None, "web"),
            (Some(service(json!({"app": "web"}))), "web"),
            (
                Some(service(json!({"app": "web", "version": "green"}))),
                "web-green",
            ),
            (
                Some(service(json!({"app": "web", "version": "blue"}))),
                "web-blue",
            ),
            (Some(service(json!({"app": "web", "version": "v2"}))), "web"),
        ];
        for (live, want) in cases {
            assert_eq!(serving_name("web", live.as_ref()), want, "{live:?}");
        }
    }

    #[test]
    fn which_colour_gets_the_release() {
        let cases = [
            // (serving, plain exists) → (active, idle, migrate)
            (None, false, (None, Colour::Blue, false)),
            (None, true, (Some(Colour::Blue), Colour::Green, true)),
            (
                Some(Colour::Blue),
                false,
                (Some(Colour::Blue), Colour::Green, false),
            ),
            (
                Some(Colour::Green),
                false,
                (Some(Colour::Green), Colour::Blue, false),
            ),
            // A plain Deployment left by a migration cut short after the switch: no new migration.
            (
                Some(Colour::Blue),
                true,
                (Some(Colour::Blue), Colour::Green, false),
            ),
        ];
        for (serving, plain, (active, idle, migrate)) in cases {
            let live = Live {
                serving,
                plain: if plain { state() } else { None },
                ..Live::default()
            };
            assert_eq!(
                start(&live),
                Start {
                    active,
                    idle,
                    migrate
                },
                "{serving:?} {plain}"
            );
        }
    }

    #[test]
    fn previous_colour_is_kept_for_its_window() {
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let min = |m: u64| Duration::from_secs(m * 60);
        let now = |s: &str| -> Timestamp { s.parse().unwrap() };
        let cases = [
            (Some(at), Some(min(30)), "2026-01-01T10:29:59Z", false),
            (Some(at), Some(min(30)), "2026-01-01T10:30:00Z", true),
            (Some(at), Some(min(30)), "2026-01-01T09:00:00Z", false),
            (Some(at), None, "2027-01-01T00:00:00Z", false),
            (None, Some(min(30)), "2027-01-01T00:00:00Z", false),
        ];
        for (switched, keep, when, expired) in cases {
            assert_eq!(
                previous_expired(switched, keep, now(when)),
                expired,
                "{when}"
            );
        }
        assert_eq!(
            kept_until(at, Some(min(30))),
            Some(now("2026-01-01T10:30:00Z"))
        );
        assert_eq!(kept_until(at, None), None);
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "prod", "labels": { "app": "web" } },
            "spec": {
                "replicas": 3,
                "selector": { "matchLabels": { "app": "web" } },
                "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [] } },
            },
        })
    }

    fn service() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "web", "namespace": "prod" },
            "spec": {
                "type": "LoadBalancer", "clusterIP": "10.0.0.9",
                "selector": { "app": "web" },
                "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30080 }],
            },
        })
    }

    #[test]
    fn objects_for_the_idle_colour() {
        let hpa = json!({ "kind": "HorizontalPodAutoscaler", "metadata": { "name": "web" },
                          "spec": { "scaleTargetRef": { "name": "web" } } });
        let config = json!({ "kind": "ConfigMap", "metadata": { "name": "web-config-1" } });
        let objects = [config.clone(), deployment(), service(), hpa];
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let start = Start {
            active: Some(Colour::Blue),
            idle: Colour::Green,
            migrate: false,
        };
        let out = objects_before_switch(&objects, "web", &["web".into()], &start, Some(at));
        let names: Vec<String> = out
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "ConfigMap/web-config-1",
                "Deployment/web-green",
                "Service/web",
                "Service/web-preview",
                "HorizontalPodAutoscaler/web"
            ]
        );
        assert_eq!(out[0], config);
        let d = &out[1];
        for pointer in [
            "/metadata/labels",
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            assert_eq!(
                d.pointer(pointer).unwrap(),
                &json!({ "app": "web", "version": "green" }),
                "{pointer}"
            );
        }
        // The serving Service keeps the active colour and its switch time; the preview picks idle.
        assert_eq!(
            out[2]["spec"]["selector"],
            json!({ "app": "web", "version": "blue" })
        );
        assert_eq!(
            out[2]["metadata"]["annotations"][ANNOTATION_SWITCHED_AT],
            "2026-01-01T10:00:00Z"
        );
        assert_eq!(out[2]["spec"]["type"], "LoadBalancer");
        let preview = &out[3]["spec"];
        assert_eq!(
            preview["selector"],
            json!({ "app": "web", "version": "green" })
        );
        assert_eq!(preview["type"], "ClusterIP");
        assert_eq!(
            preview["ports"],
            json!([{ "port": 80, "targetPort": 8080 }])
        );
        assert!(preview.get("clusterIP").is_none());
        assert_eq!(out[4]["spec"]["scaleTargetRef"]["name"], "web-green");

        // A first deploy: nothing serves, so the Service selects the release at once.
        let fresh = Start {
            active: None,
            idle: Colour::Blue,
            migrate: false,
        };
        let out = objects_before_switch(&objects, "web", &["web".into()], &fresh, None);
        assert_eq!(
            out[2]["spec"]["selector"],
            json!({ "app": "web", "version": "blue" })
        );
        assert!(out[2]["metadata"].get("annotations").is_none());
    }

    #[test]
    fn a_switch_is_the_selector_and_its_time() {
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let objects = [deployment(), service()];
        let out = switched_services(&objects, &["web".into()], Colour::Green, at);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0]["spec"]["selector"],
            json!({ "app": "web", "version": "green" })
        );
        assert_eq!(
            out[0]["metadata"]["annotations"][ANNOTATION_SWITCHED_AT],
            "2026-01-01T10:00:00Z"
        );
        assert!(switched_services(&objects, &["other".into()], Colour::Green, at).is_empty());
    }

    #[test]
    fn a_migration_copies_the_live_deployment() {
        let mut live = deployment();
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["resourceVersion"] = json!("77");
        live["metadata"]["annotations"] = json!({
            "deployment.kubernetes.io/revision": "4",
            "promote.studysphere.dev/image": "r.io/web@sha256:a",
        });
        live["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        live["status"] = json!({ "readyReplicas": 3 });
        let blue = colour_from_live(&live, Colour::Blue);
        assert_eq!(blue["metadata"]["name"], "web-blue");
        assert_eq!(
            blue["metadata"]["annotations"],
            json!({ "promote.studysphere.dev/image": "r.io/web@sha256:a" })
        );
        assert!(blue["metadata"].get("uid").is_none() && blue.get("status").is_none());
        assert_eq!(blue["spec"]["replicas"], 3);
        assert_eq!(
            blue["spec"]["selector"]["matchLabels"],
            json!({ "app": "web", "version": "blue" })
        );
        assert!(
            blue["spec"]["template"]["metadata"]
                .get("creationTimestamp")
                .is_none()
        );
    }

    #[test]
    fn leaving_blue_green_copies_the_serving_colour_without_its_colour() {
        let mut live = colour_from_live(&deployment(), Colour::Green);
        live["metadata"]["uid"] = json!("u-2");
        live["status"] = json!({ "readyReplicas": 3 });
        let plain = plain_from_colour(&live, "web");
        assert_eq!(plain["metadata"]["name"], "web");
        assert!(plain["metadata"].get("uid").is_none() && plain.get("status").is_none());
        for pointer in [
            "/metadata/labels",
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            assert!(
                plain.pointer(pointer).unwrap().get(LABEL_VERSION).is_none(),
                "{pointer}: {plain:#}"
            );
        }
        assert_eq!(
            plain["spec"]["selector"]["matchLabels"],
            json!({ "app": "web" })
        );
        assert_eq!(plain["spec"]["replicas"], 3);
        assert_eq!(
            plain["spec"]["template"]["spec"],
            deployment()["spec"]["template"]["spec"]
        );
    }

    #[test]
    fn only_a_previous_colour_kept_past_its_window_is_retired() {
        let at: Timestamp = "2026-12-06T10:00:00Z".parse().expect("a time");
        let later = |minutes: i64| {
            at.checked_add(jiff::SignedDuration::from_mins(minutes))
                .expect("in range")
        };
        let state = |replicas| ColourState {
            replicas,
            ready: replicas,
            image: None,
        };
        let live = |serving, blue: Option<i32>, green: Option<i32>, switched| Live {
            serving,
            switched_at: switched,
            blue: blue.map(state),
            green: green.map(state),
            ..Live::default()
        };
        let thirty = Some(Duration::from_secs(30 * 60));
        let cases = [
            (
                "window passed",
                live(Some(Colour::Green), Some(3), Some(3), Some(at)),
                thirty,
                later(31),
                Retirement::ScaleDown {
                    colour: Colour::Blue,
                    replicas: 3,
                },
            ),
            (
                "exactly at the end of the window",
                live(Some(Colour::Blue), Some(2), Some(2), Some(at)),
                thirty,
                later(30),
                Retirement::ScaleDown {
                    colour: Colour::Green,
                    replicas: 2,
                },
            ),
            (
                "inside the window",
                live(Some(Colour::Green), Some(3), Some(3), Some(at)),
                thirty,
                later(10),
                Retirement::Keep {
                    colour: Colour::Blue,
                    until: Some(later(30)),
                },
            ),
            (
                "until the next promotion",
                live(Some(Colour::Green), Some(3), Some(3), Some(at)),
                None,
                later(600),
                Retirement::Keep {
                    colour: Colour::Blue,
                    until: None,
                },
            ),
            (
                "already scaled down",
                live(Some(Colour::Green), Some(0), Some(3), Some(at)),
                thirty,
                later(60),
                Retirement::NothingKept,
            ),
            (
                "a first deploy: no other colour",
                live(Some(Colour::Blue), Some(3), None, Some(at)),
                thirty,
                later(60),
                Retirement::NothingKept,
            ),
            (
                "no colour selected yet",
                live(None, Some(3), Some(3), None),
                thirty,
                later(60),
                Retirement::NothingKept,
            ),
            (
                "a switch time in the future (clock skew) keeps it",
                live(Some(Colour::Green), Some(3), Some(3), Some(later(5))),
                thirty,
                at,
                Retirement::Keep {
                    colour: Colour::Blue,
                    until: Some(later(35)),
                },
            ),
        ];
        for (name, live, keep, now, want) in cases {
            assert_eq!(retirement(&live, keep, now), want, "{name}");
        }
    }
}
