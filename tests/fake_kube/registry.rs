//! The write paths every caller shares (HTTP handlers, controllers, the test handle): create,
//! update, server-side apply and delete, each through defaulting, validation, generation,
//! managed fields and the store; plus core/v1 Events as controllers and the kubelet record them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::admission;
use super::fields::{self, Applier, Part};
use super::object::{self, timestamp};
use super::resources::{self as r, TYPES};
use super::state::State;
use super::status::ApiError;

/// The manager the controllers and the kubelet write as.
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// Who writes and how.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    /// Controllers skip validation: they only write what they read from valid objects.
    pub validate: bool,
}

impl WriteOpts {
    pub fn client(manager: &str, dry_run: bool) -> WriteOpts {
        WriteOpts {
            manager: manager.to_string(),
            dry_run,
            validate: true,
        }
    }

    pub fn controller() -> WriteOpts {
        WriteOpts {
            manager: CONTROLLER_MANAGER.into(),
            dry_run: false,
            validate: false,
        }
    }
}

/// Which part of the object a write touches for a type.
pub fn main_part(rt: usize) -> Part {
    if TYPES[rt].status_subresource {
        Part::Main
    } else {
        Part::All
    }
}

fn now_ts() -> String {
    timestamp(SystemTime::now())
}

/// Checks the namespace a namespaced object is created in.
fn check_namespace(st: &State, ns: &str) -> Result<(), ApiError> {
    match st.store.get(r::NAMESPACES, "", ns) {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if object::is_deleting(n) => Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        ))),
        Some(_) => Ok(()),
    }
}

/// Creates `obj` in `ns` (ignored for cluster-scoped types).
///
/// # Errors
/// 404 for a missing namespace, 409 AlreadyExists, 422 Invalid.
pub fn create(
    st: &mut State,
    rt: usize,
    ns: &str,
    mut obj: Value,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let t = &TYPES[rt];
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let meta = object::object_at(&mut obj, &["metadata"]);
    if t.namespaced {
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.remove("namespace");
    }
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        let prefix = prefix.to_string();
        let id = st.store.next_id();
        meta.insert(
            "name".into(),
            json!(format!("{prefix}{}", object::name_suffix(&prefix, id))),
        );
    }
    if t.namespaced {
        check_namespace(st, ns)?;
    }
    let name = object::name(&obj).to_string();
    if !name.is_empty() && st.store.get(rt, ns_key(rt, ns), &name).is_some() {
        return Err(ApiError::already_exists(t, &name));
    }
    let id = st.store.next_id();
    let uid = object::make_uid(id);
    let created = now_ts();
    admission::prepare_create(rt, &mut obj, &uid, &created);
    admission::default(rt, &mut obj, &mut || st.store.next_id());
    if opts.validate {
        admission::validate(rt, &obj, None)?;
    }
    fields::record_update(
        None,
        &mut obj,
        &opts.manager,
        &t.api_version(),
        &created,
        main_part(rt),
        None,
    );
    if opts.dry_run {
        return Ok(obj);
    }
    Ok(st.store.insert(rt, obj))
}

fn ns_key(rt: usize, ns: &str) -> &str {
    if TYPES[rt].namespaced { ns } else { "" }
}

/// How an update treats `managedFields`.
pub enum Ownership<'a> {
    /// A non-apply write: the manager takes what it changed.
    Record {
        manager: &'a str,
        subresource: Option<&'a str>,
    },
    /// Already computed (server-side apply).
    Keep,
}

/// Replaces `old` with `new`, touching only `part`.
///
/// # Errors
/// 422 Invalid (including immutable fields).
pub fn update(
    st: &mut State,
    rt: usize,
    old: &Value,
    mut new: Value,
    part: Part,
    ownership: Ownership<'_>,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let t = &TYPES[rt];
    if !new.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    match part {
        Part::Status => {
            let status = new["status"].clone();
            let managed = new["metadata"]["managedFields"].clone();
            new = old.clone();
            new["status"] = status;
            if !managed.is_null() {
                new["metadata"]["managedFields"] = managed;
            }
        }
        Part::Main => {
            new["status"] = old["status"].clone();
            if new["status"].is_null() {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
        Part::All => {}
    }
    {
        let meta = object::object_at(&mut new, &["metadata"]);
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ] {
            match old["metadata"].get(f) {
                Some(v) => {
                    meta.insert(f.into(), v.clone());
                }
                None => {
                    meta.remove(f);
                }
            }
        }
    }
    new["apiVersion"] = json!(t.api_version());
    new["kind"] = json!(t.kind);
    admission::keep_allocated(rt, old, &mut new);
    admission::default(rt, &mut new, &mut || st.store.next_id());
    if opts.validate {
        admission::validate(rt, &new, Some(old))?;
    }
    if t.generation && admission::spec_changed(old, &new) {
        new["metadata"]["generation"] = json!(object::generation(old) + 1);
    }
    if let Ownership::Record {
        manager,
        subresource,
    } = ownership
    {
        fields::record_update(
            Some(old),
            &mut new,
            manager,
            &t.api_version(),
            &now_ts(),
            part,
            subresource,
        );
    }
    if new == *old {
        return Ok(new);
    }
    if opts.dry_run {
        return Ok(new);
    }
    let finished = object::is_deleting(&new)
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if finished {
        let ns = object::namespace(&new).to_string();
        let name = object::name(&new).to_string();
        st.store.replace(rt, new);
        return Ok(st.store.remove(rt, &ns, &name).unwrap_or(Value::Null));
    }
    Ok(st.store.replace(rt, new))
}

/// Server-side apply of `config` to `ns/name`: creates the object when missing.
/// Returns the HTTP code (201 when created) and the object.
///
/// # Errors
/// 409 Conflict naming the other managers' fields (unless `force`), 404 for a missing
/// namespace, 422 Invalid.
#[allow(clippy::too_many_arguments)] // mirrors the request's parameters one to one
pub fn apply(
    st: &mut State,
    rt: usize,
    ns: &str,
    name: &str,
    config: Value,
    force: bool,
    part: Part,
    opts: &WriteOpts,
) -> Result<(u16, Value), ApiError> {
    let t = &TYPES[rt];
    let time = now_ts();
    let api_version = t.api_version();
    let applier = Applier {
        manager: &opts.manager,
        force,
        api_version: &api_version,
        time: &time,
        part,
    };
    match st.store.get(rt, ns_key(rt, ns), name).cloned() {
        None => {
            if part == Part::Status {
                return Err(ApiError::not_found(t, name));
            }
            let mut seed = json!({ "metadata": { "name": name } });
            if t.namespaced {
                seed["metadata"]["namespace"] = json!(ns);
            }
            let merged =
                fields::apply(&seed, &config, &applier).map_err(|c| fields::conflict_status(&c))?;
            let managed = merged["metadata"]["managedFields"].clone();
            let mut created = create(
                st,
                rt,
                ns,
                merged,
                &WriteOpts {
                    dry_run: true,
                    ..opts.clone()
                },
            )?;
            // The applier owns what it applied, not what defaulting added.
            created["metadata"]["managedFields"] = managed;
            if opts.dry_run {
                return Ok((201, created));
            }
            Ok((201, st.store.insert(rt, created)))
        }
        Some(live) => {
            let merged =
                fields::apply(&live, &config, &applier).map_err(|c| fields::conflict_status(&c))?;
            let out = update(st, rt, &live, merged, part, Ownership::Keep, opts)?;
            Ok((200, out))
        }
    }
}

/// How a delete treats dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Option<Propagation> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<Propagation>,
    pub grace_seconds: Option<i64>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// The answer to a delete: the object (still terminating, or as deleted for pods) or a
/// success Status, plus a warning to send in a `Warning` header.
pub struct Deleted {
    pub body: Value,
    pub warning: Option<String>,
}

/// Deletes `ns/name` the way the real registry does: graceful for scheduled pods, finalizers
/// and foreground deletion keep the object (with `deletionTimestamp`) until they are done,
/// orphaning strips owner references, background leaves dependents to the garbage collector.
///
/// # Errors
/// 404, or 409 for a failed precondition.
pub fn delete(
    st: &mut State,
    rt: usize,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Deleted, ApiError> {
    let t = &TYPES[rt];
    let ns = ns_key(rt, ns).to_string();
    let Some(obj) = st.store.get(rt, &ns, name).cloned() else {
        return Err(ApiError::not_found(t, name));
    };
    if let Some(uid) = &opts.precondition_uid
        && uid != object::uid(&obj)
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::uid(&obj)
            ),
            json!({ "name": name, "group": t.group, "kind": t.plural }),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && rv != object::resource_version(&obj)
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                object::resource_version(&obj)
            ),
            json!({ "name": name, "group": t.group, "kind": t.plural }),
        ));
    }
    if rt == r::NAMESPACES && ["default", "kube-system", "kube-public"].contains(&name) {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            json!({ "name": name, "kind": "namespaces" }),
        ));
    }
    let mut warning = None;
    let propagation = opts.propagation.unwrap_or_else(|| {
        if rt == r::JOBS {
            warning = Some(
                "child pods are preserved by default when jobs are deleted; set \
                 propagationPolicy=Background to remove them or set propagationPolicy=Orphan to \
                 suppress this warning"
                    .to_string(),
            );
            Propagation::Orphan
        } else {
            Propagation::Background
        }
    });
    if opts.dry_run {
        return Ok(Deleted { body: obj, warning });
    }
    if object::is_deleting(&obj) {
        return Ok(Deleted { body: obj, warning });
    }
    if propagation == Propagation::Orphan {
        orphan_dependents(st, object::uid(&obj));
    }
    let now = SystemTime::now();
    let mut marked = obj.clone();
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let grace = if rt == r::PODS && !obj["spec"]["nodeName"].is_null() {
        opts.grace_seconds
            .unwrap_or_else(|| object::int(&obj["spec"]["terminationGracePeriodSeconds"], 30))
    } else {
        0
    };
    let keep = if rt == r::NAMESPACES {
        marked["status"]["phase"] = json!("Terminating");
        marked["metadata"]["deletionTimestamp"] = json!(timestamp(now));
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        true
    } else if propagation == Propagation::Foreground || has_finalizers {
        if propagation == Propagation::Foreground {
            let f = object::object_at(&mut marked, &["metadata"])
                .entry("finalizers")
                .or_insert(json!([]));
            if let Some(list) = f.as_array_mut()
                && !list.contains(&json!("foregroundDeletion"))
            {
                list.push(json!("foregroundDeletion"));
            }
        }
        marked["metadata"]["deletionTimestamp"] = json!(timestamp(now));
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        true
    } else if grace > 0 {
        marked["metadata"]["deletionTimestamp"] =
            json!(timestamp(now + Duration::from_secs(grace.unsigned_abs())));
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        true
    } else {
        false
    };
    if keep {
        if marked["metadata"]["generation"].is_i64() {
            marked["metadata"]["generation"] = json!(object::generation(&obj) + 1);
        }
        let body = st.store.replace(rt, marked);
        return Ok(Deleted { body, warning });
    }
    let removed = st.store.remove(rt, &ns, name).unwrap_or(Value::Null);
    let body = if rt == r::PODS {
        removed
    } else {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": { "name": name, "group": t.group, "kind": t.plural, "uid": object::uid(&obj) },
        })
    };
    Ok(Deleted { body, warning })
}

/// Removes owner references to `owner_uid` from every object that has one.
fn orphan_dependents(st: &mut State, owner_uid: &str) {
    let keys = st.store.all_keys();
    for (rt, ns, name) in keys {
        let Some(o) = st.store.get(rt, &ns, &name) else {
            continue;
        };
        let refs = o["metadata"]["ownerReferences"].as_array();
        if !refs.is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid)) {
            continue;
        }
        let mut new = o.clone();
        if let Some(list) = new["metadata"]["ownerReferences"].as_array_mut() {
            list.retain(|r| r["uid"] != owner_uid);
            if list.is_empty() {
                new["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("ownerReferences"));
            }
        }
        st.store.replace(rt, new);
    }
}

/// The event recorder names events `<object>.<unix nanoseconds in hex>`, so they sort by
/// time; this keeps them unique when two land in the same nanosecond.
fn event_nanos(now: SystemTime) -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let previous = LAST.fetch_max(nanos, Ordering::SeqCst);
    if previous >= nanos {
        LAST.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        nanos
    }
}

/// Records a core/v1 Event about `involved`, folding a repeat of the same reason and message
/// into `count` and `lastTimestamp` like the event recorder's aggregation.
pub fn record_event(
    st: &mut State,
    involved: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
    component: &str,
    field_path: Option<&str>,
) {
    let ns = match object::namespace(involved) {
        "" => "default",
        ns => ns,
    }
    .to_string();
    let now = SystemTime::now();
    let uid = object::uid(involved).to_string();
    let existing = st
        .store
        .list_refs(r::EVENTS, Some(&ns))
        .into_iter()
        .find(|e| {
            e["involvedObject"]["uid"] == uid.as_str()
                && e["reason"] == reason
                && e["message"] == message
                && e["type"] == event_type
        })
        .cloned();
    if let Some(mut e) = existing {
        e["count"] = json!(object::int(&e["count"], 1) + 1);
        e["lastTimestamp"] = json!(timestamp(now));
        st.store.replace(r::EVENTS, e);
        return;
    }
    let mut involved_ref = json!({
        "kind": involved["kind"],
        "namespace": object::namespace(involved),
        "name": object::name(involved),
        "uid": uid,
        "apiVersion": involved["apiVersion"],
        "resourceVersion": object::resource_version(involved),
    });
    if let Some(fp) = field_path {
        involved_ref["fieldPath"] = json!(fp);
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:x}", object::name(involved), event_nanos(now)),
            "namespace": ns,
        },
        "involvedObject": involved_ref,
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": { "component": component },
        "firstTimestamp": timestamp(now),
        "lastTimestamp": timestamp(now),
        "count": 1,
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    let _ = create(st, r::EVENTS, &ns, event, &WriteOpts::controller());
}
