//! Field ownership and patches: server-side apply with `managedFields` (structured-merge-diff's
//! rules on the subset of the schema that matters: which lists are keyed, by what), and JSON,
//! merge and strategic merge patches.
//!
//! A field set is the set of paths a manager owns: leaves (scalars, atomic lists, empty
//! objects) and the items of keyed lists. It is written to `fieldsV1` like the real server
//! (`f:spec`, `k:{"name":"web"}`, `v:"x"`, `.` for an item owned as a whole).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::object::canonical;

/// One step of a path in a field set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pe {
    Field(String),
    /// An item of a keyed list, by its key fields as canonical JSON (`{"name":"web"}`).
    Key(String),
    /// An item of a set-like list, by its value as JSON.
    Value(String),
}

pub type Path = Vec<Pe>;
pub type FieldSet = BTreeSet<Path>;

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status` (for types with a status subresource).
    Main,
    /// The whole object (types without a status subresource).
    All,
    /// Only `status`.
    Status,
}

/// How a list is merged: as one value, keyed by some of its items' fields, or as a set.
enum ListType {
    Atomic,
    Map(&'static [&'static str]),
    Set,
}

/// The list types of the Kubernetes schema that clients rely on, by field name. Lists not
/// named here are atomic, as most are in the real schema.
fn list_type(field: &str, items: &[Value]) -> ListType {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListType::Map(&["name"]),
        "volumeMounts" => ListType::Map(&["mountPath"]),
        "volumeDevices" => ListType::Map(&["devicePath"]),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            ListType::Map(&["containerPort", "protocol"])
        }
        "ports" => ListType::Map(&["port", "protocol"]),
        "conditions" => ListType::Map(&["type"]),
        "ownerReferences" => ListType::Map(&["uid"]),
        "topologySpreadConstraints" => ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        "hostAliases" => ListType::Map(&["ip"]),
        "finalizers" => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Maps and structs the schema marks atomic (`+mapType=atomic`, `+structType=atomic`): one
/// field owned and replaced as a whole by apply. Every built-in label selector is (Service
/// `spec.selector`, the workloads' and Jobs' `spec.selector`, PDB and NetworkPolicy selectors,
/// affinity and spread `labelSelector`s), and so is `nodeSelector`.
fn is_atomic_map(field: &str) -> bool {
    matches!(
        field,
        "selector" | "nodeSelector" | "labelSelector" | "podSelector" | "namespaceSelector"
    )
}

/// A key field's schema default (`protocol: TCP`), used when an item leaves it out.
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| json!("TCP"))
}

fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k).cloned().or_else(|| key_default(k)) {
            Some(v) => {
                m.insert((*k).to_string(), v);
            }
            None if keys.len() > 1 => {}
            None => return None,
        }
    }
    Some(canonical(&Value::Object(m)))
}

/// Metadata the server owns: never part of a field set.
const SERVER_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The paths `v` sets, restricted to `part`.
pub fn field_set(v: &Value, part: Part) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(obj) = v.as_object() else {
        return out;
    };
    for (k, child) in obj {
        let keep = match k.as_str() {
            "apiVersion" | "kind" => false,
            "status" => part != Part::Main,
            _ => part != Part::Status,
        };
        if !keep {
            continue;
        }
        if k == "metadata" {
            if let Some(meta) = child.as_object() {
                for (mk, mv) in meta {
                    if !SERVER_METADATA.contains(&mk.as_str()) {
                        walk(
                            mv,
                            vec![Pe::Field("metadata".into()), Pe::Field(mk.clone())],
                            mk,
                            &mut out,
                        );
                    }
                }
            }
            continue;
        }
        walk(child, vec![Pe::Field(k.clone())], k, &mut out);
    }
    out
}

fn walk(v: &Value, path: Path, field: &str, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() && !is_atomic_map(field) => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(Pe::Field(k.clone()));
                walk(child, p, k, out);
            }
        }
        Value::Array(items) => match list_type(field, items) {
            ListType::Atomic => {
                out.insert(path);
            }
            ListType::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(Pe::Value(item.to_string()));
                    out.insert(p);
                }
            }
            ListType::Map(keys) => {
                let keyed: Option<Vec<String>> = items.iter().map(|i| item_key(i, keys)).collect();
                let Some(keyed) = keyed else {
                    out.insert(path);
                    return;
                };
                for (item, key) in items.iter().zip(keyed) {
                    let mut p = path.clone();
                    p.push(Pe::Key(key));
                    out.insert(p.clone());
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            let mut cp = p.clone();
                            cp.push(Pe::Field(k.clone()));
                            walk(child, cp, k, out);
                        }
                    }
                }
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The item a `v:` path element names.
fn set_item(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// The value at `path`, if any.
pub fn get_at<'a>(v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut at = v;
    let mut field = "";
    for pe in path {
        match pe {
            Pe::Field(f) => {
                at = at.as_object()?.get(f)?;
                field = f;
            }
            Pe::Key(key) => {
                let items = at.as_array()?;
                let ListType::Map(keys) = list_type(field, items) else {
                    return None;
                };
                at = items
                    .iter()
                    .find(|i| item_key(i, keys).as_deref() == Some(key))?;
            }
            Pe::Value(json) => {
                let wanted = set_item(json);
                at = at.as_array()?.iter().find(|i| **i == wanted)?;
            }
        }
    }
    Some(at)
}

/// Removes what `path` names (a field, or a list item); true when something was there.
fn remove_at(v: &mut Value, path: &[Pe]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut at = v;
    let mut field = String::new();
    for pe in parent_path {
        let next = match pe {
            Pe::Field(f) => {
                field = f.clone();
                at.as_object_mut().and_then(|m| m.get_mut(f))
            }
            Pe::Key(key) => {
                let fname = field.clone();
                at.as_array_mut().and_then(|items| {
                    let keys = match list_type(&fname, items) {
                        ListType::Map(keys) => keys,
                        _ => return None,
                    };
                    items
                        .iter_mut()
                        .find(|i| item_key(i, keys).as_deref() == Some(key.as_str()))
                })
            }
            Pe::Value(json) => at.as_array_mut().and_then(|items| {
                let wanted = set_item(json);
                items.iter_mut().find(|i| **i == wanted)
            }),
        };
        match next {
            Some(n) => at = n,
            None => return false,
        }
    }
    match last {
        Pe::Field(f) => at.as_object_mut().and_then(|m| m.remove(f)).is_some(),
        Pe::Key(key) => {
            let Some(items) = at.as_array_mut() else {
                return false;
            };
            let ListType::Map(keys) = list_type(&field, items) else {
                return false;
            };
            let before = items.len();
            items.retain(|i| item_key(i, keys).as_deref() != Some(key.as_str()));
            before != items.len()
        }
        Pe::Value(json) => {
            let Some(items) = at.as_array_mut() else {
                return false;
            };
            let before = items.len();
            let wanted = set_item(json);
            items.retain(|i| *i != wanted);
            before != items.len()
        }
    }
}

/// Objects left empty by removals are dropped, as structured-merge-diff prunes them.
fn prune_empty(v: &mut Value) {
    if let Value::Object(m) = v {
        for child in m.values_mut() {
            prune_empty(child);
        }
        m.retain(|_, c| !matches!(c, Value::Object(cm) if cm.is_empty()));
    }
}

/// The SSA merge of `config` onto `live`: objects field by field, keyed lists item by item,
/// sets as unions, everything else replaced.
fn merge_apply(live: &Value, config: &Value, field: &str) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !is_atomic_map(field) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge_apply(lv, cv, k),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match list_type(field, c) {
            ListType::Map(keys) => merge_keyed(l, c, keys, |lv, cv| merge_apply(lv, cv, "")),
            ListType::Set => {
                let mut out = l.clone();
                for item in c {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Atomic => config.clone(),
        },
        _ => config.clone(),
    }
}

/// Keyed-list merge: the config's items in its order (merged with their live counterparts),
/// then live items the config does not mention.
fn merge_keyed(
    live: &[Value],
    config: &[Value],
    keys: &[&str],
    merge: impl Fn(&Value, &Value) -> Value,
) -> Value {
    let mut out = Vec::new();
    let config_keys: Vec<Option<String>> = config.iter().map(|c| item_key(c, keys)).collect();
    for (c, ck) in config.iter().zip(&config_keys) {
        match live
            .iter()
            .find(|l| ck.is_some() && item_key(l, keys) == *ck)
        {
            Some(l) => out.push(merge(l, c)),
            None => out.push(c.clone()),
        }
    }
    for l in live {
        let lk = item_key(l, keys);
        if lk.is_none() || !config_keys.contains(&lk) {
            out.push(l.clone());
        }
    }
    Value::Array(out)
}

/// One `managedFields` entry, parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    /// How a conflict names this manager: `"kubectl-edit" using apps/v1` for updates.
    fn describe(&self) -> String {
        if self.operation == "Update" {
            format!("\"{}\" using {}", self.manager, self.api_version)
        } else {
            format!("\"{}\"", self.manager)
        }
    }

    fn same_manager(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

pub fn read_managed(o: &Value) -> Vec<Entry> {
    o["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or_default().to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managed(o: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    let meta = super::object::object_at(o, &["metadata"]);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn pe_text(pe: &Pe) -> String {
    match pe {
        Pe::Field(f) => format!("f:{f}"),
        Pe::Key(k) => format!("k:{k}"),
        Pe::Value(v) => format!("v:{v}"),
    }
}

pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut at = &mut root;
        for pe in path {
            let entry = at
                .entry(pe_text(pe))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
            at = entry;
        }
    }
    // A path that is both a member and a parent (an owned list item) gets ".".
    fn mark(node: &mut Map<String, Value>, path: &mut Path, set: &FieldSet) {
        if !path.is_empty() && set.contains(path) && !node.is_empty() {
            node.insert(".".into(), json!({}));
        }
        for (k, child) in node.iter_mut() {
            if k == "." {
                continue;
            }
            let pe = parse_pe(k);
            if let (Some(pe), Some(m)) = (pe, child.as_object_mut()) {
                path.push(pe);
                mark(m, path, set);
                path.pop();
            }
        }
    }
    mark(&mut root, &mut Vec::new(), set);
    Value::Object(root)
}

fn parse_pe(text: &str) -> Option<Pe> {
    let (tag, rest) = text.split_at_checked(2)?;
    match tag {
        "f:" => Some(Pe::Field(rest.into())),
        "k:" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| Pe::Key(canonical(&v))),
        "v:" => Some(Pe::Value(rest.into())),
        _ => None,
    }
}

pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn go(node: &Value, path: &mut Path, out: &mut FieldSet) {
        let Some(m) = node.as_object() else { return };
        if !path.is_empty() && (m.is_empty() || m.contains_key(".")) {
            out.insert(path.clone());
        }
        for (k, child) in m {
            if let Some(pe) = parse_pe(k) {
                path.push(pe);
                go(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// A path as conflicts print it: `.spec.template.spec.containers[name="web"].image`.
pub fn path_text(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let v: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let parts: Vec<String> = v
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
        }
    }
    s
}

/// A field owned by someone else with a different value than the applier asks for.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

/// Apply's conflicts as the real server reports them: the message and one cause per field.
pub fn conflict_status(conflicts: &[Conflict]) -> super::status::ApiError {
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager, conflicts[0].path
        )
    } else {
        let mut by_manager: Vec<(String, Vec<String>)> = Vec::new();
        for c in conflicts {
            match by_manager.iter_mut().find(|(m, _)| *m == c.manager) {
                Some((_, paths)) => paths.push(c.path.clone()),
                None => by_manager.push((c.manager.clone(), vec![c.path.clone()])),
            }
        }
        // Like structured-merge-diff: managers in order, each with its paths.
        by_manager.sort();
        let lines: Vec<String> = by_manager
            .into_iter()
            .flat_map(|(m, paths)| {
                std::iter::once(format!("conflicts with {m}:"))
                    .chain(paths.into_iter().map(|p| format!("- {p}")))
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": c.path,
            })
        })
        .collect();
    super::status::ApiError::new(409, "Conflict", message, json!({ "causes": causes }))
}

/// Who applies, and how.
pub struct Applier<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub time: &'a str,
    pub part: Part,
}

/// Server-side apply of `config` onto `live` (an empty object when creating): returns the
/// merged object with its `managedFields`, or the conflicts.
///
/// # Errors
/// The conflicts when `force` is false and another manager owns a field `config` sets to a
/// different value.
pub fn apply(live: &Value, config: &Value, a: &Applier<'_>) -> Result<Value, Vec<Conflict>> {
    let mut managed = read_managed(live);
    let applied = field_set(config, a.part);
    let subresource = (a.part == Part::Status).then_some("status");

    let mut conflicts = Vec::new();
    for e in &managed {
        if e.same_manager(a.manager, "Apply", subresource) {
            continue;
        }
        for p in e.fields.intersection(&applied) {
            if matches!(p.last(), Some(Pe::Key(_) | Pe::Value(_))) {
                continue; // owning an item together is no conflict; its fields may be
            }
            if get_at(live, p) != get_at(config, p) {
                conflicts.push(Conflict {
                    manager: e.describe(),
                    path: path_text(p),
                });
            }
        }
    }
    if !conflicts.is_empty() && !a.force {
        return Err(conflicts);
    }
    if a.force {
        // Forced: the others lose what they disagreed about.
        for e in managed.iter_mut() {
            if e.same_manager(a.manager, "Apply", subresource) {
                continue;
            }
            let lost: Vec<Path> = e
                .fields
                .intersection(&applied)
                .filter(|p| get_at(live, p) != get_at(config, p))
                .cloned()
                .collect();
            for p in lost {
                e.fields.remove(&p);
            }
        }
    }

    let mut merged = merge_apply(live, &strip_for_merge(config, a.part), "");
    // What this manager applied before and no longer does goes, unless someone else owns it.
    let previous: FieldSet = managed
        .iter()
        .find(|e| e.same_manager(a.manager, "Apply", subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut dropped: Vec<&Path> = previous.difference(&applied).collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let owned_elsewhere = managed.iter().any(|e| {
            !e.same_manager(a.manager, "Apply", subresource)
                && e.fields.iter().any(|q| q.starts_with(p))
        });
        if !owned_elsewhere {
            remove_at(&mut merged, p);
        }
    }
    prune_empty_spec(&mut merged);

    match managed
        .iter_mut()
        .find(|e| e.same_manager(a.manager, "Apply", subresource))
    {
        Some(e) => {
            if e.fields != applied {
                e.fields = applied;
                e.time = a.time.to_string();
            }
            e.api_version = a.api_version.to_string();
        }
        None => managed.push(Entry {
            manager: a.manager.to_string(),
            operation: "Apply".into(),
            api_version: a.api_version.to_string(),
            time: a.time.to_string(),
            subresource: subresource.map(str::to_string),
            fields: applied,
        }),
    }
    write_managed(&mut merged, &managed);
    Ok(merged)
}

/// The applied config without what apply never writes (server metadata, or the other part).
fn strip_for_merge(config: &Value, part: Part) -> Value {
    let mut c = config.clone();
    if let Some(m) = c.as_object_mut() {
        match part {
            Part::Main => {
                m.remove("status");
            }
            Part::Status => m.retain(|k, _| k == "status" || k == "apiVersion" || k == "kind"),
            Part::All => {}
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                !SERVER_METADATA.contains(&k.as_str()) || k == "name" || k == "namespace"
            });
        }
    }
    c
}

fn prune_empty_spec(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for key in ["spec", "data", "stringData"] {
            if let Some(child) = m.get_mut(key) {
                prune_empty(child);
            }
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in ["labels", "annotations"] {
                if meta
                    .get(key)
                    .is_some_and(|l| l.as_object().is_some_and(Map::is_empty))
                {
                    meta.remove(key);
                }
            }
        }
    }
}

/// Ownership after a non-apply write (create, update, patch) by `manager`: it takes the fields
/// it changed, others lose them, and removed fields leave every set.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    time: &str,
    part: Part,
    subresource: Option<&str>,
) {
    let mut managed = old.map(read_managed).unwrap_or_default();
    let old_set = old.map(|o| field_set(o, part)).unwrap_or_default();
    let new_set = field_set(new, part);
    // An item of a keyed list is changed only by being added: a change inside it (an env var
    // added to a container) is owned field by field, as structured-merge-diff compares, so
    // `kubectl set env` does not take the whole container from its applier.
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            !old_set.contains(*p)
                || (!matches!(p.last(), Some(Pe::Key(_)))
                    && old.and_then(|o| get_at(o, p)) != get_at(new, p))
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        write_managed(new, &managed);
        return;
    }
    for e in managed.iter_mut() {
        let mine = e.same_manager(manager, "Update", subresource);
        let before = e.fields.len();
        e.fields
            .retain(|p| !removed.contains(p) && (mine || !changed.contains(p)));
        if mine && before != e.fields.len() {
            e.time = time.to_string();
        }
    }
    if !changed.is_empty() {
        match managed
            .iter_mut()
            .find(|e| e.same_manager(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = time.to_string();
                e.api_version = api_version.to_string();
            }
            None => managed.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: time.to_string(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    write_managed(new, &managed);
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, pv) in p {
                if pv.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), pv);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Strategic merge patch, on the list types above: keyed lists merge item by item (an item
/// with `$patch: delete` goes), other lists are replaced; `$`-directives are otherwise ignored.
pub fn strategic_merge_patch(target: &Value, patch: &Value, field: &str) -> Value {
    match (target, patch) {
        (_, Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut r = p.clone();
                r.remove("$patch");
                return Value::Object(r);
            }
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, pv) in p {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                } else {
                    let merged = strategic_merge_patch(out.get(k).unwrap_or(&Value::Null), pv, k);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) => match list_type(field, p) {
            ListType::Map(keys) => {
                let deletes: Vec<Option<String>> = p
                    .iter()
                    .filter(|i| i["$patch"] == "delete")
                    .map(|i| item_key(i, keys))
                    .collect();
                let kept: Vec<Value> = p
                    .iter()
                    .filter(|i| i["$patch"] != "delete")
                    .cloned()
                    .collect();
                let Value::Array(mut merged) =
                    merge_keyed(t, &kept, keys, |tv, pv| strategic_merge_patch(tv, pv, ""))
                else {
                    unreachable!("merge_keyed returns an array")
                };
                merged.retain(|i| !deletes.contains(&item_key(i, keys)));
                Value::Array(merged)
            }
            _ => patch.clone(),
        },
        _ => patch.clone(),
    }
}

/// RFC 6902 JSON patch.
///
/// # Errors
/// The failing operation, worded like the apiserver's 422 answer.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("json patch must be an array of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"].as_str().ok_or("missing op")?;
        let path = op["path"].as_str().ok_or("missing path")?;
        match kind {
            "add" => pointer_add(&mut doc, path, op["value"].clone())?,
            "remove" => {
                pointer_remove(&mut doc, path)?;
            }
            "replace" => {
                let slot = doc.pointer_mut(path).ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing key: {path}")
                })?;
                *slot = op["value"].clone();
            }
            "move" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let v = pointer_remove(&mut doc, from)?;
                pointer_add(&mut doc, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let v = doc.pointer(from).cloned().ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing from path: {from}")
                })?;
                pointer_add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(doc)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer: {path}"))?;
    Ok((parent.to_string(), unescape(last)))
}

fn pointer_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let target = doc.pointer_mut(&parent).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    match target {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("add operation does not apply: invalid index {last}"))?;
            if i > items.len() {
                return Err(format!(
                    "add operation does not apply: index {i} out of bounds"
                ));
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        )),
    }
}

fn pointer_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(items) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < items.len() {
                Ok(items.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}
