//! The endpoints and EndpointSlice controllers (`pkg/controller/endpoint`,
//! `pkg/controller/endpointslice`): for every Service with a selector, the pods it selects as
//! a core/v1 Endpoints object of the same name and as `discovery.k8s.io/v1` EndpointSlices
//! labelled `kubernetes.io/service-name`. They run on every controller pass, so a pod turning
//! ready or unready, changing labels or being deleted, and a Service's selector or ports
//! changing, show in both at once. Services without a selector, and ExternalName ones, are left
//! alone as the real controllers leave them: their endpoints are someone else's to write.

use serde_json::{Map, Value, json};

use super::fields::Part;
use super::object;
use super::registry::{self, CONTROLLER_MANAGER, DeleteOpts, Ownership, Propagation, WriteOpts};
use super::resources as r;
use super::selectors::LabelSelector;
use super::state::State;

pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
const SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// The label the endpoints controller puts on what it writes (since v1.33).
const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
const HEADLESS: &str = "service.kubernetes.io/headless";
/// kube-controller-manager's `--max-endpoints-per-slice` default.
const MAX_PER_SLICE: usize = 100;

/// One pass over every Service, then the Endpoints whose Service is gone.
pub fn run(st: &mut State) {
    for svc in st.store.list(r::SERVICES, None) {
        if object::is_deleting(&svc) {
            continue;
        }
        let Some(selector) = selector_of(&svc) else {
            continue;
        };
        let pods: Vec<Value> = st
            .store
            .list_refs(r::PODS, Some(object::namespace(&svc)))
            .into_iter()
            .filter(|p| selector.matches(&object::labels(p)) && has_address(p))
            .cloned()
            .collect();
        sync_endpoints(st, &svc, &pods);
        sync_slices(st, &svc, &pods);
    }
    for ep in st.store.list(r::ENDPOINTS, None) {
        let ours =
            object::labels(&ep).get(ENDPOINTS_MANAGED_BY) == Some(&json!(ENDPOINTS_CONTROLLER));
        let service = st
            .store
            .get(r::SERVICES, object::namespace(&ep), object::name(&ep));
        if ours && service.is_none() {
            remove(st, r::ENDPOINTS, &ep);
        }
    }
}

/// The selector the controllers use, or `None` when they leave the Service alone. An empty
/// selector counts as none: it does not survive the real server's storage.
fn selector_of(svc: &Value) -> Option<LabelSelector> {
    let selector = svc["spec"]["selector"].as_object()?;
    if selector.is_empty() || svc["spec"]["type"] == "ExternalName" {
        return None;
    }
    Some(LabelSelector::from_object(
        &json!({ "matchLabels": selector }),
    ))
}

/// `ShouldPodBeInEndpoints` with terminating pods included: not finished, and with an IP.
fn has_address(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    phase != "Succeeded"
        && phase != "Failed"
        && pod["status"]["podIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// `findPort`: a numeric `targetPort` as is, a named one looked up among the pod's container
/// ports of the same protocol.
fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = if svc_port["targetPort"].is_null() {
        &svc_port["port"]
    } else {
        &svc_port["targetPort"]
    };
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP");
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_i64())
}

/// The Service's ports resolved against one pod, as endpoint ports (a port the pod does not
/// have is left out). `named_empty`: EndpointSlices always carry `name`, Endpoints omit "".
fn ports_for(svc: &Value, pod: &Value, named_empty: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(port) = find_port(pod, sp) else {
            continue;
        };
        let name = sp["name"].as_str().unwrap_or_default();
        let mut p = Map::new();
        if named_empty || !name.is_empty() {
            p.insert("name".into(), json!(name));
        }
        p.insert("port".into(), json!(port));
        p.insert(
            "protocol".into(),
            json!(sp["protocol"].as_str().unwrap_or("TCP")),
        );
        if let Some(app) = sp["appProtocol"].as_str() {
            p.insert("appProtocol".into(), json!(app));
        }
        out.push(Value::Object(p));
    }
    out.sort_by_key(object::canonical);
    out
}

fn target_ref(pod: &Value) -> Value {
    json!({
        "kind": "Pod",
        "namespace": object::namespace(pod),
        "name": object::name(pod),
        "uid": object::uid(pod),
    })
}

/// A pod's DNS hostname under the Service: set when its `subdomain` is the Service.
fn hostname(svc: &Value, pod: &Value) -> Option<Value> {
    let host = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty())?;
    (pod["spec"]["subdomain"] == object::name(svc)).then(|| json!(host))
}

/// The Service's labels, which both controllers copy onto what they write, plus `extra`.
fn labels_for(svc: &Value, extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut labels = object::labels(svc);
    labels.remove(SERVICE_NAME);
    labels.remove(SLICE_MANAGED_BY);
    if svc["spec"]["clusterIP"] == "None" {
        labels.insert(HEADLESS.into(), json!(""));
    }
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    labels
}

/// Endpoints: ready pods in `addresses`, unready ones in `notReadyAddresses` (all ready with
/// `publishNotReadyAddresses`), terminating ones left out; pods with the same resolved ports
/// share a subset (`RepackSubsets`).
fn sync_endpoints(st: &mut State, svc: &Value, pods: &[Value]) {
    let tolerate_unready = svc["spec"]["publishNotReadyAddresses"] == true;
    let has_ports = svc["spec"]["ports"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    // (ports, ready, not ready), by ports.
    let mut groups: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
    for pod in pods {
        if object::is_deleting(pod) && !tolerate_unready {
            continue;
        }
        let ports = ports_for(svc, pod, false);
        if has_ports && ports.is_empty() {
            continue;
        }
        let mut address = json!({ "ip": pod["status"]["podIP"] });
        if let Some(h) = hostname(svc, pod) {
            address["hostname"] = h;
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            address["nodeName"] = json!(node);
        }
        address["targetRef"] = target_ref(pod);
        let slot = match groups.iter().position(|(p, _, _)| *p == ports) {
            Some(i) => i,
            None => {
                groups.push((ports, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        if tolerate_unready || is_ready(pod) {
            groups[slot].1.push(address);
        } else {
            groups[slot].2.push(address);
        }
    }
    groups.sort_by_key(|(ports, _, _)| object::canonical(&json!(ports)));
    let by_ip = |a: &Value| (a["ip"].to_string(), a["targetRef"]["name"].to_string());
    let subsets: Vec<Value> = groups
        .into_iter()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by_key(by_ip);
            not_ready.sort_by_key(by_ip);
            let mut subset = Map::new();
            if !ready.is_empty() {
                subset.insert("addresses".into(), json!(ready));
            }
            if !not_ready.is_empty() {
                subset.insert("notReadyAddresses".into(), json!(not_ready));
            }
            if !ports.is_empty() {
                subset.insert("ports".into(), json!(ports));
            }
            Value::Object(subset)
        })
        .collect();
    let labels = labels_for(svc, &[(ENDPOINTS_MANAGED_BY, ENDPOINTS_CONTROLLER)]);
    let (ns, name) = (object::namespace(svc), object::name(svc));
    let apply = |o: &mut Value| {
        o["metadata"]["labels"] = Value::Object(labels.clone());
        let m = o.as_object_mut().expect("objects are JSON objects");
        if subsets.is_empty() {
            m.remove("subsets");
        } else {
            m.insert("subsets".into(), json!(subsets));
        }
    };
    match st.store.get(r::ENDPOINTS, ns, name).cloned() {
        Some(old) => {
            let mut new = old.clone();
            apply(&mut new);
            write(st, r::ENDPOINTS, &old, new);
        }
        None => {
            let mut new = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": { "name": name, "namespace": ns },
            });
            apply(&mut new);
            let _ = registry::create(st, r::ENDPOINTS, ns, new, &WriteOpts::controller());
        }
    }
}

/// One endpoint of a slice: `ready` only while serving and not terminating (unless
/// `publishNotReadyAddresses`), `serving` the pod's readiness, `terminating` its deletion.
fn slice_endpoint(svc: &Value, pod: &Value) -> Value {
    let serving = is_ready(pod);
    let terminating = object::is_deleting(pod);
    let tolerate_unready = svc["spec"]["publishNotReadyAddresses"] == true;
    let ready = tolerate_unready || (serving && !terminating);
    let mut e = json!({
        "addresses": [pod["status"]["podIP"]],
        "conditions": { "ready": ready, "serving": serving, "terminating": terminating },
    });
    if let Some(h) = hostname(svc, pod) {
        e["hostname"] = h;
    }
    e["targetRef"] = target_ref(pod);
    if let Some(node) = pod["spec"]["nodeName"].as_str() {
        e["nodeName"] = json!(node);
    }
    e
}

/// EndpointSlices: one per set of resolved ports (up to 100 endpoints each), terminating pods
/// included with their conditions; with no pods, one placeholder slice without endpoints or
/// ports (`null`, as the real server returns them). Slices are updated in place when they
/// can be, created and deleted when their number changes.
fn sync_slices(st: &mut State, svc: &Value, pods: &[Value]) {
    let mut groups: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for pod in pods {
        let ports = ports_for(svc, pod, true);
        let endpoint = slice_endpoint(svc, pod);
        match groups.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, eps)) => eps.push(endpoint),
            None => groups.push((ports, vec![endpoint])),
        }
    }
    groups.sort_by_key(|(ports, _)| object::canonical(&json!(ports)));
    let mut desired: Vec<(Value, Value)> = Vec::new();
    for (ports, mut eps) in groups {
        eps.sort_by_key(|e| e["targetRef"]["name"].to_string());
        for chunk in eps.chunks(MAX_PER_SLICE) {
            desired.push((json!(ports), json!(chunk)));
        }
    }
    if desired.is_empty() {
        desired.push((Value::Null, Value::Null));
    }
    let name = object::name(svc).to_string();
    let ns = object::namespace(svc).to_string();
    let labels = Value::Object(labels_for(
        svc,
        &[(SERVICE_NAME, &name), (SLICE_MANAGED_BY, SLICE_CONTROLLER)],
    ));
    let mut existing: Vec<Value> = st
        .store
        .list_refs(r::ENDPOINTSLICES, Some(&ns))
        .into_iter()
        .filter(|s| {
            let l = object::labels(s);
            l.get(SERVICE_NAME) == Some(&json!(name))
                && l.get(SLICE_MANAGED_BY) == Some(&json!(SLICE_CONTROLLER))
                && object::controller_uid(s) == Some(object::uid(svc))
        })
        .cloned()
        .collect();
    let same = |s: &Value, (ports, eps): &(Value, Value)| {
        s["ports"] == *ports && s["endpoints"] == *eps && s["metadata"]["labels"] == labels
    };
    // Slices already right stay; the rest are rewritten, created or deleted.
    let mut todo = Vec::new();
    for want in desired {
        match existing.iter().position(|s| same(s, &want)) {
            Some(i) => {
                existing.remove(i);
            }
            None => todo.push(want),
        }
    }
    for (ports, eps) in todo {
        let reuse = existing
            .iter()
            .position(|s| s["ports"] == ports)
            .or_else(|| (!existing.is_empty()).then_some(0));
        match reuse {
            Some(i) => {
                let old = existing.remove(i);
                let mut new = old.clone();
                new["metadata"]["labels"] = labels.clone();
                new["ports"] = ports;
                new["endpoints"] = eps;
                write(st, r::ENDPOINTSLICES, &old, new);
            }
            None => {
                let slice = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": labels.clone(),
                        "ownerReferences": [object::owner_ref(svc)],
                    },
                    "addressType": "IPv4",
                    "endpoints": eps,
                    "ports": ports,
                });
                let _ =
                    registry::create(st, r::ENDPOINTSLICES, &ns, slice, &WriteOpts::controller());
            }
        }
    }
    for stale in existing {
        remove(st, r::ENDPOINTSLICES, &stale);
    }
}

/// Writes as the controller manager (whole object: neither type has a status subresource).
fn write(st: &mut State, rt: usize, old: &Value, new: Value) {
    let _ = registry::update(
        st,
        rt,
        old,
        new,
        Part::All,
        Ownership::Record {
            manager: CONTROLLER_MANAGER,
            subresource: None,
        },
        &WriteOpts::controller(),
    );
}

fn remove(st: &mut State, rt: usize, o: &Value) {
    let _ = registry::delete(
        st,
        rt,
        object::namespace(o),
        object::name(o),
        &DeleteOpts {
            propagation: Some(Propagation::Background),
            ..DeleteOpts::default()
        },
    );
}
