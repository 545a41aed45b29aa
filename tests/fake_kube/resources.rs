//! The resource types the fake serves, and discovery (`/api`, `/apis`, group versions, legacy
//! and aggregated) generated from the same table.

use serde_json::{Value, json};

/// One REST resource: where it lives and what the server does for it.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Writes to the object ignore `status`; `/status` writes only `status`.
    pub status_subresource: bool,
    pub scale_subresource: bool,
    /// `metadata.generation` exists and counts spec changes.
    pub generation: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, `pods`: how errors name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The fields `fieldSelector` accepts besides `metadata.name` and `metadata.namespace`.
    pub fn selectable_fields(&self) -> &'static [&'static str] {
        match self.plural {
            "pods" => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            "events" => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            "secrets" => &["type"],
            "namespaces" => &["status.phase"],
            "nodes" => &["spec.unschedulable"],
            "replicasets" => &["status.replicas"],
            "jobs" => &["status.successful"],
            _ => &[],
        }
    }
}

macro_rules! rt {
    ($group:literal, $version:literal, $plural:literal, $singular:literal, $kind:literal, $namespaced:literal, [$($short:literal),*], $status:literal, $scale:literal, $generation:literal) => {
        ResourceType {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            status_subresource: $status,
            scale_subresource: $scale,
            generation: $generation,
        }
    };
}

/// Everything served. Index constants below name the ones the controllers use.
pub static TYPES: &[ResourceType] = &[
    // group, version, plural, singular, kind, namespaced, short names, status, scale, generation
    rt!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        ["ns"],
        true,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        ["no"],
        true,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        ["po"],
        true,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        ["ev"],
        false,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        ["svc"],
        true,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        ["cm"],
        false,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        [],
        false,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        ["sa"],
        false,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        ["pvc"],
        true,
        false,
        false
    ),
    rt!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        ["ep"],
        false,
        false,
        false
    ),
    rt!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        ["deploy"],
        true,
        true,
        true
    ),
    rt!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        ["rs"],
        true,
        true,
        true
    ),
    rt!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        ["sts"],
        true,
        true,
        true
    ),
    rt!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        ["ds"],
        true,
        false,
        true
    ),
    rt!(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        [],
        false,
        false,
        false
    ),
    rt!(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        [],
        true,
        false,
        true
    ),
    rt!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        ["cj"],
        true,
        false,
        true
    ),
    rt!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        ["hpa"],
        true,
        false,
        true
    ),
    rt!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        ["pdb"],
        true,
        false,
        true
    ),
    rt!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        [],
        false,
        false,
        false
    ),
    rt!(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        ["ing"],
        true,
        false,
        true
    ),
    rt!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        ["netpol"],
        false,
        false,
        true
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        [],
        false,
        false,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        [],
        false,
        false,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        [],
        false,
        false,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        [],
        false,
        false,
        false
    ),
    rt!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        [],
        false,
        false,
        true
    ),
];

pub const NAMESPACES: usize = 0;
pub const NODES: usize = 1;
pub const PODS: usize = 2;
pub const EVENTS: usize = 3;
pub const SERVICES: usize = 4;
pub const CONFIGMAPS: usize = 5;
pub const SECRETS: usize = 6;
pub const SERVICEACCOUNTS: usize = 7;
pub const ENDPOINTS: usize = 9;
pub const DEPLOYMENTS: usize = 10;
pub const REPLICASETS: usize = 11;
pub const STATEFULSETS: usize = 12;
pub const DAEMONSETS: usize = 13;
pub const CONTROLLERREVISIONS: usize = 14;
pub const JOBS: usize = 15;
pub const HPAS: usize = 17;
pub const PDBS: usize = 18;
pub const INGRESSES: usize = 20;
pub const ENDPOINTSLICES: usize = 26;

/// The type served at `group/version/plural`.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<usize> {
    TYPES
        .iter()
        .position(|t| t.group == group && t.version == version && t.plural == plural)
}

/// By kind (`Deployment`), plural (`deployments`), singular or short name, any case; for the
/// test-facing accessors.
pub fn by_any_name(name: &str) -> Option<usize> {
    let n = name.to_ascii_lowercase();
    TYPES.iter().position(|t| {
        t.kind.eq_ignore_ascii_case(&n)
            || t.plural == n
            || t.singular == n
            || t.short_names.contains(&n.as_str())
    })
}

/// The type an object says it is (`apiVersion` + `kind`).
pub fn by_kind(api_version: &str, kind: &str) -> Option<usize> {
    TYPES
        .iter()
        .position(|t| t.kind == kind && t.api_version() == api_version)
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for t in TYPES {
        if !t.group.is_empty() && !out.contains(&(t.group, t.version)) {
            out.push((t.group, t.version));
        }
    }
    out
}

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
            json!({ "name": g, "versions": [gv.clone()], "preferredVersion": gv })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `GET /api/v1`, `GET /apis/{group}/{version}`; `None` for a group version not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in TYPES
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
            "shortNames": t.short_names,
        }));
        for (sub, kind) in subresources(t) {
            resources.push(json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": kind,
                "verbs": subresource_verbs(sub),
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

fn subresources(t: &ResourceType) -> Vec<(&'static str, &'static str)> {
    let mut subs = Vec::new();
    if t.status_subresource {
        subs.push(("status", t.kind));
    }
    if t.scale_subresource {
        subs.push(("scale", "Scale"));
    }
    if t.plural == "pods" {
        subs.push(("log", "Pod"));
    }
    if t.plural == "services" {
        subs.push(("proxy", "ServiceProxyOptions"));
    }
    subs
}

/// What discovery says a subresource accepts (`services/proxy` as the real server lists it).
fn subresource_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "log" => vec!["get"],
        "proxy" => vec!["create", "delete", "get", "patch", "update"],
        _ => vec!["get", "patch", "update"],
    }
}

/// The `Content-Type` of aggregated discovery, and what a client puts in `Accept` to get it.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /api` or `GET /apis` with aggregated discovery accepted: the core group or all others.
pub fn aggregated(core: bool) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for t in TYPES {
        if (t.group.is_empty()) == core && !groups.contains(&t.group) {
            groups.push(t.group);
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let resources: Vec<Value> = TYPES
                .iter()
                .filter(|t| t.group == g)
                .map(|t| {
                    let subs: Vec<Value> = subresources(t)
                        .into_iter()
                        .map(|(sub, kind)| {
                            json!({
                                "subresource": sub,
                                "responseKind": { "group": if kind == "Scale" { "autoscaling" } else { t.group }, "version": "v1", "kind": kind },
                                "verbs": subresource_verbs(sub),
                            })
                        })
                        .collect();
                    json!({
                        "resource": t.plural,
                        "responseKind": { "group": t.group, "version": t.version, "kind": t.kind },
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": VERBS,
                        "shortNames": t.short_names,
                        "subresources": subs,
                    })
                })
                .collect();
            let version = TYPES.iter().find(|t| t.group == g).map_or("v1", |t| t.version);
            json!({
                "metadata": { "name": g },
                "versions": [{ "version": version, "resources": resources, "freshness": "Current" }],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[test]
fn the_index_constants_name_their_types() {
    for (index, plural) in [
        (NAMESPACES, "namespaces"),
        (NODES, "nodes"),
        (PODS, "pods"),
        (EVENTS, "events"),
        (SERVICES, "services"),
        (CONFIGMAPS, "configmaps"),
        (SECRETS, "secrets"),
        (SERVICEACCOUNTS, "serviceaccounts"),
        (ENDPOINTS, "endpoints"),
        (DEPLOYMENTS, "deployments"),
        (REPLICASETS, "replicasets"),
        (STATEFULSETS, "statefulsets"),
        (DAEMONSETS, "daemonsets"),
        (CONTROLLERREVISIONS, "controllerrevisions"),
        (JOBS, "jobs"),
        (HPAS, "horizontalpodautoscalers"),
        (PDBS, "poddisruptionbudgets"),
        (INGRESSES, "ingresses"),
        (ENDPOINTSLICES, "endpointslices"),
    ] {
        assert_eq!(TYPES[index].plural, plural);
    }
}
