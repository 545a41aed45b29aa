//! The controllers of kube-controller-manager that a deploy depends on, each one pass over its
//! objects, following the real sync functions closely enough that status fields, conditions,
//! annotations and events come out the way kubectl and client code read them:
//! Deployment (`pkg/controller/deployment`: `rolling.go`, `sync.go`, `progress.go`),
//! ReplicaSet, StatefulSet, DaemonSet, Job, HorizontalPodAutoscaler (bounds only),
//! PodDisruptionBudget status, namespaces, and the garbage collector; the endpoints
//! controllers run in the same passes (`endpoints.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::endpoints;
use super::fields::{self, Part};
use super::kubelet::{self, PodMemory};
use super::object::{self, int, omit_zero, scaled, timestamp};
use super::registry::{self, CONTROLLER_MANAGER, DeleteOpts, Ownership, Propagation, WriteOpts};
use super::resources::{self as r, TYPES};
use super::selectors::LabelSelector;
use super::state::{Shared, State};

/// One reconcile pass's clock, and the earliest moment something time-based happens next.
pub struct Ctx {
    pub now: Instant,
    pub wake: Option<Instant>,
}

impl Ctx {
    pub fn wake_at(&mut self, t: Instant) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }
}

/// What the controllers remember between passes (the real ones keep it in informer caches
/// and expectations; here precise instants stand in for second-precision timestamps).
#[derive(Default)]
pub struct Memory {
    pub pods: HashMap<String, PodMemory>,
    /// When each Deployment last made progress (its Progressing `lastUpdateTime`).
    progress: HashMap<String, Instant>,
    job_start: HashMap<String, Instant>,
    job_finish: HashMap<String, Instant>,
    /// Per Job: failures seen and when the last one was seen, for the pod creation back-off.
    job_failures: HashMap<String, (i64, Instant)>,
}

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Runs the controllers until `stop` fires: a pass after every API write (the server rings
/// `wake`), and when the next time-based change is due.
pub async fn run(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let next = {
            let mut st = shared.lock();
            if st.knobs.paused {
                None
            } else {
                reconcile(&mut st)
            }
        };
        let sleep = next
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Passes over every controller until nothing changes (bounded, so a controller that keeps
/// writing cannot hang the server). Returns when to look again.
pub fn reconcile(st: &mut State) -> Option<Instant> {
    let mut ctx = Ctx {
        now: Instant::now(),
        wake: None,
    };
    for pass in 0..30 {
        if pass == 29 {
            // A controller that writes on every pass is a bug in the fake; say so.
            eprintln!("fake-kube: the controllers did not settle after 30 passes");
        }
        st.store.dirty = false;
        namespaces(st);
        garbage_collect(st);
        for d in st.store.list(r::DEPLOYMENTS, None) {
            deployment(st, &mut ctx, &d);
        }
        for rs in st.store.list(r::REPLICASETS, None) {
            replica_set(st, &mut ctx, &rs);
        }
        for sts in st.store.list(r::STATEFULSETS, None) {
            stateful_set(st, &mut ctx, &sts);
        }
        for ds in st.store.list(r::DAEMONSETS, None) {
            daemon_set(st, &mut ctx, &ds);
        }
        for job in st.store.list(r::JOBS, None) {
            job_sync(st, &mut ctx, &job);
        }
        for hpa in st.store.list(r::HPAS, None) {
            autoscaler(st, &hpa);
        }
        for pdb in st.store.list(r::PDBS, None) {
            disruption_budget(st, &pdb);
        }
        kubelet::run(st, &mut ctx);
        endpoints::run(st);
        if !st.store.dirty {
            break;
        }
    }
    ctx.wake
}

// ---- helpers ----------------------------------------------------------------------------

fn is_active(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    !object::is_deleting(pod) && phase != "Succeeded" && phase != "Failed"
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Ready for `min_ready_seconds` (object time); asks to be woken when that is still ahead.
fn is_available(st: &State, ctx: &mut Ctx, pod: &Value, min_ready_seconds: i64) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let Some(since) = st
        .memory
        .pods
        .get(object::uid(pod))
        .and_then(|m| m.ready_since)
    else {
        return false;
    };
    let at = since + st.knobs.scaled(min_ready_seconds as f64);
    if ctx.now >= at {
        true
    } else {
        ctx.wake_at(at);
        false
    }
}

fn revision_of(o: &Value) -> i64 {
    object::annotation(o, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Two pod templates are the same rollout when equal but for `pod-template-hash`.
fn equal_ignoring_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                t["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        t
    };
    strip(a) == strip(b)
}

/// `SetDeploymentCondition` and friends: same status and reason change nothing; same status
/// keeps `lastTransitionTime`.
fn set_condition(conditions: &mut Vec<Value>, mut c: Value) {
    if let Some(existing) = conditions.iter().find(|e| e["type"] == c["type"]) {
        if existing["status"] == c["status"] && existing["reason"] == c["reason"] {
            return;
        }
        if existing["status"] == c["status"] && !existing["lastTransitionTime"].is_null() {
            c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
    }
    conditions.retain(|e| e["type"] != c["type"]);
    conditions.push(c);
}

fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update_time: bool,
) -> Value {
    let now = timestamp(SystemTime::now());
    let mut c = json!({
        "type": kind,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    if with_update_time {
        c["lastUpdateTime"] = json!(now);
    }
    c
}

/// Writes `status` as the controller manager (status subresource) when it changed.
fn put_status(st: &mut State, rt: usize, old: &Value, status: Value) -> Value {
    if old["status"] == status {
        return old.clone();
    }
    let mut new = old.clone();
    new["status"] = status;
    fields::record_update(
        Some(old),
        &mut new,
        CONTROLLER_MANAGER,
        &TYPES[rt].api_version(),
        &timestamp(SystemTime::now()),
        Part::Status,
        Some("status"),
    );
    st.store.replace(rt, new)
}

/// Writes spec or metadata as the controller manager.
fn put_object(st: &mut State, rt: usize, old: &Value, new: Value) -> Value {
    if *old == new {
        return new;
    }
    registry::update(
        st,
        rt,
        old,
        new,
        registry::main_part(rt),
        Ownership::Record {
            manager: CONTROLLER_MANAGER,
            subresource: None,
        },
        &WriteOpts::controller(),
    )
    .unwrap_or_else(|_| old.clone())
}

fn create(st: &mut State, rt: usize, ns: &str, obj: Value) -> Option<Value> {
    registry::create(st, rt, ns, obj, &WriteOpts::controller()).ok()
}

fn delete(st: &mut State, rt: usize, o: &Value) {
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

fn event(st: &mut State, about: &Value, kind: &str, reason: &str, message: &str, component: &str) {
    registry::record_event(st, about, kind, reason, message, component, None);
}

/// A pod for `owner` from `template`, named `<prefix><5 characters>` unless `name` is given.
fn new_pod(
    st: &mut State,
    owner: &Value,
    template: &Value,
    name: Option<String>,
    extra_labels: &[(&str, String)],
) -> Value {
    let ns = object::namespace(owner);
    let prefix = format!("{}-", object::name(owner));
    let name = name.unwrap_or_else(|| {
        let id = st.store.next_id();
        format!("{prefix}{}", object::name_suffix(&prefix, id))
    });
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut meta = json!({
        "name": name,
        "generateName": prefix,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [object::owner_ref(owner)],
    });
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        meta["annotations"] = Value::Object(a.clone());
    }
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"] })
}

// ---- namespaces and garbage collection ---------------------------------------------------

/// Terminating namespaces lose their content, then go; live ones get the `default`
/// ServiceAccount and the `kube-root-ca.crt` ConfigMap, as their controllers add them.
fn namespaces(st: &mut State) {
    for ns in st.store.list(r::NAMESPACES, None) {
        let name = object::name(&ns).to_string();
        if object::is_deleting(&ns) {
            for (rt, t) in TYPES.iter().enumerate() {
                if !t.namespaced {
                    continue;
                }
                for o in st.store.list(rt, Some(&name)) {
                    st.store.remove(rt, &name, object::name(&o));
                }
            }
            st.store.remove(r::NAMESPACES, "", &name);
            continue;
        }
        if st.store.get(r::SERVICEACCOUNTS, &name, "default").is_none() {
            let sa = json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "default" } });
            create(st, r::SERVICEACCOUNTS, &name, sa);
        }
        if st
            .store
            .get(r::CONFIGMAPS, &name, "kube-root-ca.crt")
            .is_none()
        {
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "kube-root-ca.crt", "annotations": { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." } },
                "data": { "ca.crt": "-----BEGIN CERTIFICATE-----\nZmFrZS1rdWJlIHJvb3QgQ0E=\n-----END CERTIFICATE-----\n" },
            });
            create(st, r::CONFIGMAPS, &name, cm);
        }
    }
}

/// The garbage collector: dependents whose owners are all gone are deleted (background
/// propagation), references to gone owners are dropped, and foreground deletion finishes once
/// an owner has no dependents left.
fn garbage_collect(st: &mut State) {
    let foreground = |o: &Value| {
        object::is_deleting(o)
            && o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("foregroundDeletion")))
    };
    // Look first (no copies), then act.
    let mut delete_now = Vec::new();
    let mut drop_refs = Vec::new();
    let mut finished = Vec::new();
    let mut owners_with_dependents: HashSet<String> = HashSet::new();
    for ((rt, _, _), o) in st.store.iter() {
        let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() {
            continue;
        }
        let owner_uid = |r: &Value| r["uid"].as_str().unwrap_or_default().to_string();
        owners_with_dependents.extend(refs.iter().map(owner_uid));
        let live = refs
            .iter()
            .filter(|r| st.store.exists_uid(r["uid"].as_str().unwrap_or_default()))
            .count();
        if live == 0 {
            if !object::is_deleting(o) {
                delete_now.push((*rt, o.clone()));
            }
            continue;
        }
        if live < refs.len() {
            drop_refs.push((*rt, o.clone()));
        }
        let owner_going = refs.iter().any(|r| {
            st.store
                .by_uid(r["uid"].as_str().unwrap_or_default())
                .is_some_and(foreground)
        });
        if owner_going && !object::is_deleting(o) {
            delete_now.push((*rt, o.clone()));
        }
    }
    for (key, o) in st.store.iter() {
        if foreground(o) && !owners_with_dependents.contains(object::uid(o)) {
            finished.push((key.clone(), o.clone()));
        }
    }
    for (rt, mut o) in drop_refs {
        if let Some(list) = o["metadata"]["ownerReferences"].as_array_mut() {
            list.retain(|r| st.store.exists_uid(r["uid"].as_str().unwrap_or_default()));
        }
        st.store.replace(rt, o);
    }
    for (rt, o) in delete_now {
        delete(st, rt, &o);
    }
    for ((rt, ns, name), mut o) in finished {
        if let Some(list) = o["metadata"]["finalizers"].as_array_mut() {
            list.retain(|f| f != "foregroundDeletion");
        }
        let done = o["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        st.store.replace(rt, o);
        if done {
            st.store.remove(rt, &ns, &name);
        }
    }
}

// ---- Deployment --------------------------------------------------------------------------

/// `maxSurge` and `maxUnavailable` resolved against `replicas` (`ResolveFenceposts`).
fn fenceposts(d: &Value) -> (i64, i64) {
    let spec = &d["spec"];
    let replicas = int(&spec["replicas"], 1);
    if spec["strategy"]["type"] != "RollingUpdate" {
        return (0, 0);
    }
    let ru = &spec["strategy"]["rollingUpdate"];
    let surge = scaled(&ru["maxSurge"], replicas, true, 1);
    let unavailable = scaled(&ru["maxUnavailable"], replicas, false, 0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// Scales a ReplicaSet as the deployment controller does, with its annotations and event.
fn scale_rs(st: &mut State, d: &Value, rs: &Value, to: i64) -> Value {
    let from = int(&rs["spec"]["replicas"], 0);
    let replicas = int(&d["spec"]["replicas"], 1);
    let (surge, _) = fenceposts(d);
    let mut new = rs.clone();
    new["spec"]["replicas"] = json!(to);
    object::set_annotation(&mut new, DESIRED_REPLICAS, &replicas.to_string());
    object::set_annotation(&mut new, MAX_REPLICAS, &(replicas + surge).to_string());
    let out = put_object(st, r::REPLICASETS, rs, new);
    if from != to {
        let direction = if to > from { "up" } else { "down" };
        event(
            st,
            d,
            "Normal",
            "ScalingReplicaSet",
            &format!(
                "Scaled {direction} replica set {} from {from} to {to}",
                object::name(rs)
            ),
            "deployment-controller",
        );
    }
    out
}

/// Annotations a ReplicaSet copies from its Deployment (all but the controller's own).
fn copy_annotations(d: &Value, rs: &mut Value) {
    const SKIP: [&str; 6] = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    ];
    if let Some(a) = d["metadata"]["annotations"].as_object() {
        for (k, v) in a {
            if !SKIP.contains(&k.as_str()) {
                object::set_annotation(rs, k, v.as_str().unwrap_or_default());
            }
        }
    }
}

fn deployment(st: &mut State, ctx: &mut Ctx, d: &Value) {
    if object::is_deleting(d) {
        return;
    }
    let ns = object::namespace(d).to_string();
    let uid = object::uid(d).to_string();
    let spec = &d["spec"];
    let replicas = int(&spec["replicas"], 1);
    let paused = spec["paused"] == true;
    let template = &spec["template"];
    let rss: Vec<Value> = st
        .store
        .owned_by(r::REPLICASETS, &ns, &uid)
        .into_iter()
        .filter(|rs| !object::is_deleting(rs))
        .collect();
    let mut conditions: Vec<Value> = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut collision = int(&d["status"]["collisionCount"], 0);
    let max_old = rss
        .iter()
        .filter(|rs| !equal_ignoring_hash(&rs["spec"]["template"], template))
        .map(revision_of)
        .max()
        .unwrap_or(0);
    let has_deadline = int(&spec["progressDeadlineSeconds"], 600) != i64::from(i32::MAX);

    // The new ReplicaSet: found (a rollback re-adopts an old one) or created.
    let mut new_rs = match rss
        .iter()
        .find(|rs| equal_ignoring_hash(&rs["spec"]["template"], template))
    {
        Some(rs) => {
            let mut updated = rs.clone();
            let rev = revision_of(rs);
            if rev <= max_old {
                let history = object::annotation(rs, REVISION_HISTORY)
                    .map(|h| format!("{h},{rev}"))
                    .unwrap_or_else(|| rev.to_string());
                object::set_annotation(&mut updated, REVISION_HISTORY, &history);
                object::set_annotation(&mut updated, REVISION, &(max_old + 1).to_string());
            }
            copy_annotations(d, &mut updated);
            let updated = put_object(st, r::REPLICASETS, rs, updated);
            if has_deadline && !conditions.iter().any(|c| c["type"] == "Progressing") {
                let message = format!("Found new replica set \"{}\"", object::name(&updated));
                set_condition(
                    &mut conditions,
                    condition("Progressing", "True", "FoundNewReplicaSet", &message, true),
                );
                st.memory.progress.insert(uid.clone(), ctx.now);
            }
            Some(updated)
        }
        None if !paused => {
            let hash = object::template_hash(template, collision);
            let name = format!("{}-{hash}", object::name(d));
            if st.store.get(r::REPLICASETS, &ns, &name).is_some() {
                // Same name, different template: a hash collision; the next pass tries anew.
                collision += 1;
                let mut status = d["status"].clone();
                status["collisionCount"] = json!(collision);
                put_status(st, r::DEPLOYMENTS, d, status);
                return;
            }
            let (surge, _) = fenceposts(d);
            let current: i64 = rss.iter().map(|rs| int(&rs["spec"]["replicas"], 0)).sum();
            let start = if spec["strategy"]["type"] == "Recreate" {
                0
            } else {
                (replicas + surge - current).clamp(0, replicas)
            };
            let mut tpl = template.clone();
            object::object_at(&mut tpl, &["metadata", "labels"])
                .insert(POD_TEMPLATE_HASH.into(), json!(hash));
            let mut selector = spec["selector"].clone();
            object::object_at(&mut selector, &["matchLabels"])
                .insert(POD_TEMPLATE_HASH.into(), json!(hash));
            let mut labels = template["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH.into(), json!(hash));
            let mut rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "annotations": {
                        REVISION: (max_old + 1).to_string(),
                        DESIRED_REPLICAS: replicas.to_string(),
                        MAX_REPLICAS: (replicas + surge).to_string(),
                    },
                    "ownerReferences": [object::owner_ref(d)],
                },
                "spec": { "replicas": start, "selector": selector, "template": tpl },
            });
            if let Some(m) = spec["minReadySeconds"].as_i64() {
                rs["spec"]["minReadySeconds"] = json!(m);
            }
            copy_annotations(d, &mut rs);
            let Some(created) = create(st, r::REPLICASETS, &ns, rs) else {
                return;
            };
            if start > 0 {
                event(
                    st,
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {name} from 0 to {start}"),
                    "deployment-controller",
                );
            }
            if has_deadline {
                let message = format!("Created new replica set \"{name}\"");
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetCreated",
                        &message,
                        true,
                    ),
                );
                st.memory.progress.insert(uid.clone(), ctx.now);
            }
            Some(created)
        }
        None => None,
    };

    // The Deployment carries its new ReplicaSet's revision.
    if let Some(rs) = &new_rs {
        let rev = object::annotation(rs, REVISION).unwrap_or("0").to_string();
        if object::annotation(d, REVISION) != Some(rev.as_str()) {
            let mut nd = d.clone();
            object::set_annotation(&mut nd, REVISION, &rev);
            put_object(st, r::DEPLOYMENTS, d, nd);
        }
    }
    let d = &st
        .store
        .get(r::DEPLOYMENTS, &ns, object::name(d))
        .cloned()
        .unwrap_or_else(|| d.clone());

    // Scaling.
    let old_rss: Vec<Value> = {
        let new_name = new_rs.as_ref().map(|rs| object::name(rs).to_string());
        let mut v: Vec<Value> = st
            .store
            .owned_by(r::REPLICASETS, &ns, &uid)
            .into_iter()
            .filter(|rs| !object::is_deleting(rs) && Some(object::name(rs).to_string()) != new_name)
            .collect();
        v.sort_by(|a, b| {
            a["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&b["metadata"]["creationTimestamp"].as_str())
                .then(revision_of(a).cmp(&revision_of(b)))
        });
        v
    };
    if let Some(rs) = new_rs.clone() {
        if paused {
            let active_old = old_rss.iter().any(|o| int(&o["spec"]["replicas"], 0) > 0);
            if !active_old && int(&rs["spec"]["replicas"], 0) != replicas {
                new_rs = Some(scale_rs(st, d, &rs, replicas));
            }
        } else if spec["strategy"]["type"] == "Recreate" {
            recreate(st, d, rs, &old_rss);
        } else {
            rolling_update(st, d, rs, old_rss.clone());
        }
    } else if !paused {
        return;
    }

    // Old ReplicaSets beyond revisionHistoryLimit go, oldest revision first.
    let limit = int(&spec["revisionHistoryLimit"], 10);
    let mut idle: Vec<Value> = st
        .store
        .owned_by(r::REPLICASETS, &ns, &uid)
        .into_iter()
        .filter(|rs| {
            Some(object::name(rs)) != new_rs.as_ref().map(object::name)
                && int(&rs["spec"]["replicas"], 0) == 0
                && int(&rs["status"]["replicas"], 0) == 0
                && !object::is_deleting(rs)
        })
        .collect();
    idle.sort_by_key(revision_of);
    let excess = (idle.len() as i64 - limit).max(0) as usize;
    for rs in idle.iter().take(excess) {
        delete(st, r::REPLICASETS, rs);
    }

    // Status, from the ReplicaSets as they are now.
    let all: Vec<Value> = st
        .store
        .owned_by(r::REPLICASETS, &ns, &uid)
        .into_iter()
        .filter(|rs| !object::is_deleting(rs))
        .collect();
    let new_name = new_rs.as_ref().map(|rs| object::name(rs).to_string());
    let sum = |f: &str| -> i64 { all.iter().map(|rs| int(&rs["status"][f], 0)).sum() };
    let actual = sum("replicas");
    let updated = all
        .iter()
        .find(|rs| Some(object::name(rs).to_string()) == new_name)
        .map_or(0, |rs| int(&rs["status"]["replicas"], 0));
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let (_, max_unavailable) = fenceposts(d);
    if available >= replicas - max_unavailable {
        set_condition(
            &mut conditions,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                true,
            ),
        );
    } else {
        set_condition(
            &mut conditions,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                true,
            ),
        );
    }
    let old_status = &d["status"];
    let generation = object::generation(d);
    let progressing = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned();
    let rs_name = new_name.clone().unwrap_or_default();
    if paused {
        if progressing
            .as_ref()
            .is_none_or(|c| c["reason"] != "DeploymentPaused")
        {
            set_condition(
                &mut conditions,
                condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    true,
                ),
            );
        }
    } else if progressing
        .as_ref()
        .is_some_and(|c| c["reason"] == "DeploymentPaused")
    {
        set_condition(
            &mut conditions,
            condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                true,
            ),
        );
        st.memory.progress.insert(uid.clone(), ctx.now);
    } else if !has_deadline {
        conditions.retain(|c| c["type"] != "Progressing");
    } else {
        let reason = progressing
            .as_ref()
            .map(|c| c["reason"].clone())
            .unwrap_or(Value::Null);
        let is_complete_already = actual == updated && reason == "NewReplicaSetAvailable";
        let complete = updated == replicas && actual == replicas && available == replicas;
        let made_progress = updated > int(&old_status["updatedReplicas"], 0)
            || (actual - updated)
                < (int(&old_status["replicas"], 0) - int(&old_status["updatedReplicas"], 0))
            || ready > int(&old_status["readyReplicas"], 0)
            || available > int(&old_status["availableReplicas"], 0);
        if !is_complete_already {
            if complete {
                let message = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &message,
                        true,
                    ),
                );
            } else if made_progress {
                let message = format!("ReplicaSet \"{rs_name}\" is progressing.");
                let mut c = condition("Progressing", "True", "ReplicaSetUpdated", &message, true);
                if let Some(p) = &progressing
                    && p["status"] == "True"
                {
                    c["lastTransitionTime"] = p["lastTransitionTime"].clone();
                }
                conditions.retain(|e| e["type"] != "Progressing");
                conditions.push(c);
                st.memory.progress.insert(uid.clone(), ctx.now);
            } else if reason != "ProgressDeadlineExceeded" && progressing.is_some() {
                let deadline = int(&spec["progressDeadlineSeconds"], 600);
                let since = *st.memory.progress.entry(uid.clone()).or_insert(ctx.now);
                let at = since + st.knobs.scaled(deadline as f64);
                if ctx.now > at {
                    let message = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
                    set_condition(
                        &mut conditions,
                        condition(
                            "Progressing",
                            "False",
                            "ProgressDeadlineExceeded",
                            &message,
                            true,
                        ),
                    );
                } else {
                    ctx.wake_at(at + Duration::from_millis(1));
                }
            }
        }
    }
    // Condition order as the controller leaves it: Available before Progressing.
    conditions.sort_by_key(|c| if c["type"] == "Available" { 0 } else { 1 });
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    status.insert("replicas".into(), json!(actual));
    status.insert("updatedReplicas".into(), json!(updated));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(available));
    status.insert(
        "unavailableReplicas".into(),
        json!((replicas - available).max(0)),
    );
    let mut status = omit_zero(status, &[]);
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if collision > 0 {
        status.insert("collisionCount".into(), json!(collision));
    }
    put_status(st, r::DEPLOYMENTS, d, Value::Object(status));
}

/// `rolloutRolling`: scale the new ReplicaSet up within `maxSurge`, then old ones down while
/// at least `replicas - maxUnavailable` pods stay available.
fn rolling_update(st: &mut State, d: &Value, new_rs: Value, old_rss: Vec<Value>) {
    let replicas = int(&d["spec"]["replicas"], 1);
    let (surge, max_unavailable) = fenceposts(d);
    let spec_of = |rs: &Value| int(&rs["spec"]["replicas"], 0);
    let new_count = spec_of(&new_rs);
    let current: i64 = old_rss.iter().map(spec_of).sum::<i64>() + new_count;
    let target = if new_count > replicas {
        replicas
    } else if new_count == replicas {
        new_count
    } else {
        let max_total = replicas + surge;
        if current >= max_total {
            new_count
        } else {
            new_count + (max_total - current).min(replicas - new_count)
        }
    };
    let new_rs = if target != new_count {
        scale_rs(st, d, &new_rs, target)
    } else {
        new_rs
    };

    let old_total: i64 = old_rss.iter().map(spec_of).sum();
    if old_total == 0 {
        return;
    }
    let all_pods = old_total + spec_of(&new_rs);
    let min_available = replicas - max_unavailable;
    let new_unavailable = spec_of(&new_rs) - int(&new_rs["status"]["availableReplicas"], 0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return;
    }
    // Unhealthy old replicas go first: they do not count towards availability anyway.
    let mut olds = old_rss;
    let mut cleaned = 0;
    for rs in olds.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let count = spec_of(rs);
        let unhealthy = count - int(&rs["status"]["availableReplicas"], 0);
        if count == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(max_scaled_down - cleaned);
        *rs = scale_rs(st, d, rs, count - down);
        cleaned += down;
    }
    let available: i64 = olds
        .iter()
        .chain(std::iter::once(&new_rs))
        .map(|rs| int(&rs["status"]["availableReplicas"], 0))
        .sum();
    if available <= min_available {
        return;
    }
    let mut remaining = available - min_available;
    for rs in &olds {
        if remaining <= 0 {
            break;
        }
        let count = spec_of(rs);
        if count == 0 {
            continue;
        }
        let down = count.min(remaining);
        scale_rs(st, d, rs, count - down);
        remaining -= down;
    }
}

/// `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to be gone, then the new.
fn recreate(st: &mut State, d: &Value, new_rs: Value, old_rss: &[Value]) {
    let mut scaled_down = false;
    for rs in old_rss {
        if int(&rs["spec"]["replicas"], 0) > 0 {
            scale_rs(st, d, rs, 0);
            scaled_down = true;
        }
    }
    if scaled_down {
        return;
    }
    let ns = object::namespace(d);
    let old_pods_left = old_rss
        .iter()
        .any(|rs| !st.store.owned_by(r::PODS, ns, object::uid(rs)).is_empty());
    if old_pods_left {
        return;
    }
    let replicas = int(&d["spec"]["replicas"], 1);
    if int(&new_rs["spec"]["replicas"], 0) != replicas {
        scale_rs(st, d, &new_rs, replicas);
    }
}

// ---- ReplicaSet --------------------------------------------------------------------------

fn replica_set(st: &mut State, ctx: &mut Ctx, rs: &Value) {
    if object::is_deleting(rs) {
        return;
    }
    let ns = object::namespace(rs).to_string();
    let uid = object::uid(rs).to_string();
    let desired = int(&rs["spec"]["replicas"], 1);
    let mut active: Vec<Value> = st
        .store
        .owned_by(r::PODS, &ns, &uid)
        .into_iter()
        .filter(is_active)
        .collect();
    let count = active.len() as i64;
    if count < desired {
        for _ in count..desired {
            let pod = new_pod(st, rs, &rs["spec"]["template"], None, &[]);
            if let Some(p) = create(st, r::PODS, &ns, pod) {
                let message = format!("Created pod: {}", object::name(&p));
                event(
                    st,
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    &message,
                    "replicaset-controller",
                );
            }
        }
    } else if count > desired {
        // getPodsToDelete's ranking: unscheduled, pending, not ready, then the newest.
        active.sort_by_key(|p| {
            (
                !p["spec"]["nodeName"].is_null(),
                p["status"]["phase"] != "Pending",
                is_ready(p),
                std::cmp::Reverse(object::resource_version(p).parse::<u64>().unwrap_or(0)),
            )
        });
        for p in active.iter().take((count - desired) as usize) {
            delete(st, r::PODS, p);
            let message = format!("Deleted pod: {}", object::name(p));
            event(
                st,
                rs,
                "Normal",
                "SuccessfulDelete",
                &message,
                "replicaset-controller",
            );
        }
    }
    let pods: Vec<Value> = st
        .store
        .owned_by(r::PODS, &ns, &uid)
        .into_iter()
        .filter(is_active)
        .collect();
    let min_ready = int(&rs["spec"]["minReadySeconds"], 0);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(st, ctx, p, min_ready))
        .count();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    status.insert("fullyLabeledReplicas".into(), json!(pods.len()));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(available));
    status.insert("observedGeneration".into(), json!(object::generation(rs)));
    let rs = st
        .store
        .get(r::REPLICASETS, &ns, object::name(rs))
        .cloned()
        .unwrap_or_else(|| rs.clone());
    put_status(
        st,
        r::REPLICASETS,
        &rs,
        Value::Object(omit_zero(status, &["replicas"])),
    );
}

// ---- controller revisions (StatefulSet, DaemonSet) ---------------------------------------

/// The ControllerRevision for `owner`'s current template: found (its revision number raised
/// when an older template comes back) or created. Returns its name and hash.
fn ensure_revision(st: &mut State, owner: &Value) -> (String, String) {
    let ns = object::namespace(owner).to_string();
    let template = &owner["spec"]["template"];
    let collision = int(&owner["status"]["collisionCount"], 0);
    let hash = object::template_hash(template, collision);
    let name = format!("{}-{hash}", object::name(owner));
    let revisions = st
        .store
        .owned_by(r::CONTROLLERREVISIONS, &ns, object::uid(owner));
    let max = revisions
        .iter()
        .map(|c| int(&c["revision"], 0))
        .max()
        .unwrap_or(0);
    let mut data_template = template.clone();
    data_template["$patch"] = json!("replace");
    match revisions.iter().find(|c| object::name(c) == name) {
        Some(existing) => {
            if int(&existing["revision"], 0) < max {
                let mut new = existing.clone();
                new["revision"] = json!(max + 1);
                put_object(st, r::CONTROLLERREVISIONS, existing, new);
            }
        }
        None => {
            let mut labels = template["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            labels.insert("controller.kubernetes.io/hash".into(), json!(hash));
            let cr = json!({
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": { "name": name, "labels": labels, "ownerReferences": [object::owner_ref(owner)] },
                "data": { "spec": { "template": data_template } },
                "revision": max + 1,
            });
            create(st, r::CONTROLLERREVISIONS, &ns, cr);
        }
    }
    (name, hash)
}

/// Drops revisions beyond `revisionHistoryLimit`, never the ones in use.
fn trim_revisions(st: &mut State, owner: &Value, in_use: &[&str]) {
    let ns = object::namespace(owner);
    let limit = int(&owner["spec"]["revisionHistoryLimit"], 10);
    let mut old: Vec<Value> = st
        .store
        .owned_by(r::CONTROLLERREVISIONS, ns, object::uid(owner))
        .into_iter()
        .filter(|c| !in_use.contains(&object::name(c)))
        .collect();
    old.sort_by_key(|c| int(&c["revision"], 0));
    let excess = (old.len() as i64 - limit).max(0) as usize;
    for c in old.iter().take(excess) {
        delete(st, r::CONTROLLERREVISIONS, c);
    }
}

fn revision_template(st: &State, ns: &str, revision: &str) -> Option<Value> {
    let cr = st.store.get(r::CONTROLLERREVISIONS, ns, revision)?;
    let mut t = cr["data"]["spec"]["template"].clone();
    t.as_object_mut().map(|m| m.remove("$patch"));
    Some(t)
}

// ---- StatefulSet -------------------------------------------------------------------------

fn stateful_set(st: &mut State, ctx: &mut Ctx, sts: &Value) {
    if object::is_deleting(sts) {
        return;
    }
    let ns = object::namespace(sts).to_string();
    let name = object::name(sts).to_string();
    let spec = &sts["spec"];
    let replicas = int(&spec["replicas"], 1);
    let parallel = spec["podManagementPolicy"] == "Parallel";
    let rolling = spec["updateStrategy"]["type"] != "OnDelete";
    let partition = int(&spec["updateStrategy"]["rollingUpdate"]["partition"], 0);
    let (update_rev, _) = ensure_revision(st, sts);
    let current_rev = sts["status"]["currentRevision"]
        .as_str()
        .filter(|c| st.store.get(r::CONTROLLERREVISIONS, &ns, c).is_some())
        .unwrap_or(&update_rev)
        .to_string();
    let min_ready = int(&spec["minReadySeconds"], 0);
    let pod_of = |st: &State, i: i64| st.store.get(r::PODS, &ns, &format!("{name}-{i}")).cloned();
    let revision_label = |p: &Value| {
        p["metadata"]["labels"]["controller-revision-hash"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // Create missing pods (in order unless Parallel), replace failed ones.
    for i in 0..replicas {
        match pod_of(st, i) {
            None => {
                let revision = if rolling && i < partition {
                    &current_rev
                } else {
                    &update_rev
                };
                let template = revision_template(st, &ns, revision)
                    .unwrap_or_else(|| spec["template"].clone());
                let pod_name = format!("{name}-{i}");
                let mut pod = new_pod(
                    st,
                    sts,
                    &template,
                    Some(pod_name.clone()),
                    &[
                        ("controller-revision-hash", revision.clone()),
                        ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                );
                pod["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("generateName"));
                pod["spec"]["hostname"] = json!(pod_name);
                if let Some(svc) = spec["serviceName"].as_str() {
                    pod["spec"]["subdomain"] = json!(svc);
                }
                if create(st, r::PODS, &ns, pod).is_some() {
                    let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
                    event(
                        st,
                        sts,
                        "Normal",
                        "SuccessfulCreate",
                        &message,
                        "statefulset-controller",
                    );
                }
                if !parallel {
                    break;
                }
            }
            Some(p) if p["status"]["phase"] == "Failed" && !object::is_deleting(&p) => {
                delete(st, r::PODS, &p);
                if !parallel {
                    break;
                }
            }
            Some(p) if !parallel && (object::is_deleting(&p) || !is_ready(&p)) => break,
            Some(_) => {}
        }
    }
    // Scale down from the highest ordinal.
    let owned = st.store.owned_by(r::PODS, &ns, object::uid(sts));
    let mut condemned: Vec<Value> = owned
        .iter()
        .filter(|p| ordinal(&name, p).is_some_and(|o| o >= replicas) && !object::is_deleting(p))
        .cloned()
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(&name, p)));
    let all_ready = (0..replicas)
        .all(|i| pod_of(st, i).is_some_and(|p| is_ready(&p) && !object::is_deleting(&p)));
    for p in condemned
        .iter()
        .take(if parallel { condemned.len() } else { 1 })
    {
        if parallel || all_ready {
            delete(st, r::PODS, p);
            let message = format!(
                "delete Pod {} in StatefulSet {name} successful",
                object::name(p)
            );
            event(
                st,
                sts,
                "Normal",
                "SuccessfulDelete",
                &message,
                "statefulset-controller",
            );
        }
    }
    // Rolling update: one pod at a time, highest ordinal first, down to the partition.
    if rolling && all_ready {
        for i in (partition..replicas).rev() {
            if let Some(p) = pod_of(st, i)
                && revision_label(&p) != update_rev
            {
                delete(st, r::PODS, &p);
                let message = format!(
                    "delete Pod {} in StatefulSet {name} successful",
                    object::name(&p)
                );
                event(
                    st,
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    &message,
                    "statefulset-controller",
                );
                break;
            }
        }
    }
    // Status.
    let pods: Vec<Value> = st
        .store
        .owned_by(r::PODS, &ns, object::uid(sts))
        .into_iter()
        .filter(|p| !object::is_deleting(p))
        .collect();
    let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
    let ready = count(&|p| is_ready(p));
    let available = pods
        .iter()
        .filter(|p| is_available(st, ctx, p, min_ready))
        .count() as i64;
    let updated = count(&|p| revision_label(p) == update_rev);
    let mut current = count(&|p| revision_label(p) == current_rev);
    let total = pods.len() as i64;
    let mut current_rev = current_rev;
    if rolling && updated == total && ready == total && total == replicas {
        current_rev = update_rev.clone();
        current = updated;
    }
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(object::generation(sts)));
    status.insert("replicas".into(), json!(total));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("currentReplicas".into(), json!(current));
    status.insert("updatedReplicas".into(), json!(updated));
    status.insert("availableReplicas".into(), json!(available));
    let mut status = omit_zero(status, &["replicas", "availableReplicas"]);
    status.insert("currentRevision".into(), json!(current_rev));
    status.insert("updateRevision".into(), json!(update_rev));
    status.insert(
        "collisionCount".into(),
        json!(int(&sts["status"]["collisionCount"], 0)),
    );
    let sts = st
        .store
        .get(r::STATEFULSETS, &ns, &name)
        .cloned()
        .unwrap_or_else(|| sts.clone());
    put_status(st, r::STATEFULSETS, &sts, Value::Object(status));
    trim_revisions(st, &sts, &[current_rev.as_str(), update_rev.as_str()]);
}

fn ordinal(set: &str, pod: &Value) -> Option<i64> {
    object::name(pod)
        .strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

// ---- DaemonSet ---------------------------------------------------------------------------

fn daemon_set(st: &mut State, ctx: &mut Ctx, ds: &Value) {
    if object::is_deleting(ds) {
        return;
    }
    let ns = object::namespace(ds).to_string();
    let name = object::name(ds).to_string();
    let spec = &ds["spec"];
    let (_, hash) = ensure_revision(st, ds);
    let nodes = st.knobs.nodes.clone();
    let desired = nodes.len() as i64;
    let min_ready = int(&spec["minReadySeconds"], 0);
    let rolling = spec["updateStrategy"]["type"] != "OnDelete";
    let ru = &spec["updateStrategy"]["rollingUpdate"];
    let max_surge = scaled(&ru["maxSurge"], desired, true, 0);
    let max_unavailable =
        scaled(&ru["maxUnavailable"], desired, true, 1).max(if max_surge == 0 { 1 } else { 0 });
    let label = |p: &Value| {
        p["metadata"]["labels"]["controller-revision-hash"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let on_node = |st: &State, node: &str| -> Vec<Value> {
        st.store
            .owned_by(r::PODS, &ns, object::uid(ds))
            .into_iter()
            .filter(|p| p["spec"]["nodeName"] == node && is_active(p))
            .collect()
    };
    let generation = object::generation(ds).to_string();
    let make = |st: &mut State, node: &str| {
        let mut pod = new_pod(
            st,
            ds,
            &spec["template"],
            None,
            &[
                ("controller-revision-hash", hash.clone()),
                ("pod-template-generation", generation.clone()),
            ],
        );
        pod["spec"]["nodeName"] = json!(node);
        if let Some(p) = create(st, r::PODS, &ns, pod) {
            let message = format!("Created pod: {}", object::name(&p));
            event(
                st,
                ds,
                "Normal",
                "SuccessfulCreate",
                &message,
                "daemonset-controller",
            );
        }
    };
    for node in &nodes {
        if on_node(st, node).is_empty() {
            make(st, node);
        }
    }
    if rolling {
        let mut unavailable = nodes
            .iter()
            .filter(|n| {
                !on_node(st, n)
                    .iter()
                    .any(|p| is_available(st, ctx, p, min_ready))
            })
            .count() as i64;
        let mut surged = 0;
        for node in &nodes {
            let pods = on_node(st, node);
            let old: Vec<&Value> = pods.iter().filter(|p| label(p) != hash).collect();
            let new: Vec<&Value> = pods.iter().filter(|p| label(p) == hash).collect();
            let Some(old_pod) = old.first() else { continue };
            if max_surge > 0 {
                if new.is_empty() && surged < max_surge {
                    make(st, node);
                    surged += 1;
                } else if new.iter().any(|p| is_available(st, ctx, p, min_ready)) {
                    delete(st, r::PODS, old_pod);
                }
            } else if !is_available(st, ctx, old_pod, min_ready) {
                delete(st, r::PODS, old_pod);
            } else if unavailable < max_unavailable {
                delete(st, r::PODS, old_pod);
                unavailable += 1;
            }
        }
    }
    let mut scheduled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut updated = 0;
    for node in &nodes {
        let pods = on_node(st, node);
        if !pods.is_empty() {
            scheduled += 1;
        }
        if pods.iter().any(|p| label(p) == hash) {
            updated += 1;
        }
        if pods.iter().any(is_ready) {
            ready += 1;
        }
        if pods.iter().any(|p| is_available(st, ctx, p, min_ready)) {
            available += 1;
        }
    }
    let mut status = Map::new();
    status.insert("currentNumberScheduled".into(), json!(scheduled));
    status.insert("numberMisscheduled".into(), json!(0));
    status.insert("desiredNumberScheduled".into(), json!(desired));
    status.insert("numberReady".into(), json!(ready));
    status.insert("observedGeneration".into(), json!(object::generation(ds)));
    status.insert("updatedNumberScheduled".into(), json!(updated));
    status.insert("numberAvailable".into(), json!(available));
    status.insert("numberUnavailable".into(), json!(desired - available));
    let status = omit_zero(
        status,
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ],
    );
    let ds = st
        .store
        .get(r::DAEMONSETS, &ns, &name)
        .cloned()
        .unwrap_or_else(|| ds.clone());
    put_status(st, r::DAEMONSETS, &ds, Value::Object(status));
    let in_use = format!("{name}-{hash}");
    trim_revisions(st, &ds, &[in_use.as_str()]);
}

// ---- Job ---------------------------------------------------------------------------------

fn job_sync(st: &mut State, ctx: &mut Ctx, job: &Value) {
    if object::is_deleting(job) {
        return;
    }
    let ns = object::namespace(job).to_string();
    let uid = object::uid(job).to_string();
    let spec = &job["spec"];
    let status = &job["status"];
    let pods = st.store.owned_by(r::PODS, &ns, &uid);
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let finished = status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    });
    if finished {
        for p in active {
            delete(st, r::PODS, p);
        }
        if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
            let since = *st.memory.job_finish.entry(uid.clone()).or_insert(ctx.now);
            let at = since + st.knobs.scaled(ttl as f64);
            if ctx.now >= at {
                delete(st, r::JOBS, job);
            } else {
                ctx.wake_at(at);
            }
        }
        return;
    }
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    if spec["suspend"] == true {
        for p in &active {
            delete(st, r::PODS, p);
        }
        set_condition(
            &mut conditions,
            condition("Suspended", "True", "JobSuspended", "Job suspended", false),
        );
        let mut s = status.clone();
        s["conditions"] = Value::Array(conditions);
        s["active"] = json!(0);
        put_status(st, r::JOBS, job, s);
        return;
    }
    let started = *st.memory.job_start.entry(uid.clone()).or_insert(ctx.now);
    let start_time = status["startTime"]
        .as_str()
        .map_or_else(|| timestamp(SystemTime::now()), str::to_string);
    let always_on_failure = spec["template"]["spec"]["restartPolicy"] == "OnFailure";
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count() as i64;
    let restarts: i64 = if always_on_failure {
        active
            .iter()
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| int(&c["restartCount"], 0))
            .sum()
    } else {
        0
    };
    let failed = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count() as i64
        + restarts;
    let completions = int(&spec["completions"], 1);
    let parallelism = int(&spec["parallelism"], 1);
    let backoff_limit = int(&spec["backoffLimit"], 6);
    let now_ts = timestamp(SystemTime::now());
    let mut completion_time = Value::Null;
    let mut failure: Option<(&str, &str)> = None;
    if failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    } else if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64() {
        let at = started + st.knobs.scaled(deadline as f64);
        if ctx.now >= at {
            failure = Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        } else {
            ctx.wake_at(at);
        }
    }
    let mut active_count = active.len() as i64;
    if let Some((reason, message)) = failure {
        for p in &active {
            delete(st, r::PODS, p);
        }
        active_count = 0;
        set_condition(
            &mut conditions,
            condition("FailureTarget", "True", reason, message, false),
        );
        set_condition(
            &mut conditions,
            condition("Failed", "True", reason, message, false),
        );
        event(st, job, "Warning", reason, message, "job-controller");
        st.memory.job_finish.insert(uid.clone(), ctx.now);
    } else if succeeded >= completions {
        let message = "Reached expected number of succeeded pods";
        set_condition(
            &mut conditions,
            condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                message,
                false,
            ),
        );
        set_condition(
            &mut conditions,
            condition("Complete", "True", "CompletionsReached", message, false),
        );
        completion_time = json!(now_ts);
        event(
            st,
            job,
            "Normal",
            "Completed",
            "Job completed",
            "job-controller",
        );
        st.memory.job_finish.insert(uid.clone(), ctx.now);
    } else {
        // Replacement pods wait out the failure back-off (10s doubling, in object time).
        let (seen, _) = *st
            .memory
            .job_failures
            .entry(uid.clone())
            .or_insert((0, ctx.now));
        if failed > seen {
            st.memory
                .job_failures
                .insert(uid.clone(), (failed, ctx.now));
        }
        let (_, last) = st.memory.job_failures[&uid];
        let ready_at = if failed > 0 {
            last + st
                .knobs
                .scaled((10u64 << (failed - 1).min(5)).min(360) as f64)
        } else {
            ctx.now
        };
        let want = parallelism.min(completions - succeeded) - active_count;
        if want > 0 {
            if ctx.now >= ready_at {
                for _ in 0..want {
                    let pod = new_pod(st, job, &spec["template"], None, &[]);
                    if let Some(p) = create(st, r::PODS, &ns, pod) {
                        let message = format!("Created pod: {}", object::name(&p));
                        event(
                            st,
                            job,
                            "Normal",
                            "SuccessfulCreate",
                            &message,
                            "job-controller",
                        );
                        active_count += 1;
                    }
                }
            } else {
                ctx.wake_at(ready_at);
            }
        }
    }
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let mut s = Map::new();
    s.insert("active".into(), json!(active_count));
    s.insert("succeeded".into(), json!(succeeded));
    s.insert("failed".into(), json!(failed));
    let mut s = omit_zero(s, &[]);
    s.insert("ready".into(), json!(ready));
    s.insert("terminating".into(), json!(0));
    s.insert("startTime".into(), json!(start_time));
    s.insert("uncountedTerminatedPods".into(), json!({}));
    if !completion_time.is_null() {
        s.insert("completionTime".into(), completion_time);
    }
    if !conditions.is_empty() {
        s.insert("conditions".into(), Value::Array(conditions));
    }
    let job = st
        .store
        .get(r::JOBS, &ns, object::name(job))
        .cloned()
        .unwrap_or_else(|| job.clone());
    put_status(st, r::JOBS, &job, Value::Object(s));
}

// ---- HorizontalPodAutoscaler and PodDisruptionBudget -------------------------------------

/// Without a metrics server the real HPA cannot compute a recommendation; it still keeps the
/// target within `minReplicas..=maxReplicas`, through the scale subresource.
fn autoscaler(st: &mut State, hpa: &Value) {
    let ns = object::namespace(hpa).to_string();
    let spec = &hpa["spec"];
    let target_kind = spec["scaleTargetRef"]["kind"].as_str().unwrap_or_default();
    let rt = match target_kind {
        "Deployment" => r::DEPLOYMENTS,
        "StatefulSet" => r::STATEFULSETS,
        "ReplicaSet" => r::REPLICASETS,
        _ => return,
    };
    let target_name = spec["scaleTargetRef"]["name"].as_str().unwrap_or_default();
    let mut conditions: Vec<Value> = hpa["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut status = hpa["status"].clone();
    match st.store.get(rt, &ns, target_name).cloned() {
        None => {
            let message = format!(
                "the HPA controller was unable to get the target's current scale: {} \"{target_name}\" not found",
                TYPES[rt].qualified()
            );
            set_condition(
                &mut conditions,
                condition("AbleToScale", "False", "FailedGetScale", &message, false),
            );
        }
        Some(target) => {
            let current = int(&target["spec"]["replicas"], 1);
            let desired = current.clamp(
                int(&spec["minReplicas"], 1),
                int(&spec["maxReplicas"], current).max(1),
            );
            if desired != current {
                let mut new = target.clone();
                new["spec"]["replicas"] = json!(desired);
                let _ = registry::update(
                    st,
                    rt,
                    &target,
                    new,
                    Part::Main,
                    Ownership::Record {
                        manager: CONTROLLER_MANAGER,
                        subresource: Some("scale"),
                    },
                    &WriteOpts::controller(),
                );
                let why = if desired > current {
                    "below Spec.MinReplicas"
                } else {
                    "above Spec.MaxReplicas"
                };
                let message =
                    format!("New size: {desired}; reason: Current number of replicas {why}");
                event(
                    st,
                    hpa,
                    "Normal",
                    "SuccessfulRescale",
                    &message,
                    "horizontal-pod-autoscaler",
                );
                status["lastScaleTime"] = json!(timestamp(SystemTime::now()));
            }
            status["currentReplicas"] = json!(current);
            status["desiredReplicas"] = json!(desired);
            set_condition(
                &mut conditions,
                condition(
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                    false,
                ),
            );
            set_condition(
                &mut conditions,
                condition(
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
                    false,
                ),
            );
        }
    }
    status["conditions"] = Value::Array(conditions);
    status["observedGeneration"] = json!(object::generation(hpa));
    put_status(st, r::HPAS, hpa, status);
}

fn disruption_budget(st: &mut State, pdb: &Value) {
    let ns = object::namespace(pdb);
    let selector = LabelSelector::from_object(&pdb["spec"]["selector"]);
    let pods: Vec<Value> = st
        .store
        .list(r::PODS, Some(ns))
        .into_iter()
        .filter(|p| is_active(p) && selector.matches(&object::labels(p)))
        .collect();
    let expected = pods.len() as i64;
    let healthy = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let spec = &pdb["spec"];
    let desired = if !spec["minAvailable"].is_null() {
        scaled(&spec["minAvailable"], expected, true, 0)
    } else if !spec["maxUnavailable"].is_null() {
        (expected - scaled(&spec["maxUnavailable"], expected, true, 0)).max(0)
    } else {
        0
    };
    let allowed = (healthy - desired).max(0);
    let mut conditions: Vec<Value> = pdb["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let c = if allowed > 0 {
        condition("DisruptionAllowed", "True", "SufficientPods", "", false)
    } else {
        condition("DisruptionAllowed", "False", "InsufficientPods", "", false)
    };
    set_condition(&mut conditions, c);
    let status = json!({
        "observedGeneration": object::generation(pdb),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": conditions,
    });
    put_status(st, r::PDBS, pdb, status);
}
