//! The object store: objects by (type, namespace, name), one resourceVersion counter for all
//! writes (like etcd's revision), a bounded history of changes for watches to resume from, and
//! the open watches each change is sent to.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::object;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;

/// (type index, namespace or "" for cluster-scoped, name).
pub type Key = (usize, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    at: Instant,
    rt: usize,
    kind: ChangeKind,
    old: Option<Value>,
    new: Value,
}

/// What a watch selects.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub rt: usize,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    pub fn matches(&self, rt: usize, o: &Value) -> bool {
        rt == self.rt
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| object::namespace(o) == ns)
            && self.labels.matches(&object::labels(o))
            && self.fields.matches(o)
    }

    /// The events a change means for this watch: moving out of the selection is DELETED,
    /// moving in is ADDED (like the watch cache).
    fn translate(&self, c: &Change) -> Option<(&'static str, Value)> {
        let now = self.matches(c.rt, &c.new);
        let before = c.old.as_ref().is_some_and(|o| self.matches(c.rt, o));
        match c.kind {
            ChangeKind::Added if now => Some(("ADDED", c.new.clone())),
            ChangeKind::Modified if now && before => Some(("MODIFIED", c.new.clone())),
            ChangeKind::Modified if now => Some(("ADDED", c.new.clone())),
            ChangeKind::Modified if before => Some(("DELETED", c.new.clone())),
            ChangeKind::Deleted if now => Some(("DELETED", c.new.clone())),
            _ => None,
        }
    }
}

struct Watcher {
    filter: WatchFilter,
    tx: UnboundedSender<(&'static str, Value)>,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    uids: HashMap<String, Key>,
    rv: u64,
    history: VecDeque<Change>,
    pub history_limit: usize,
    /// The newest revision no longer in `history`: watches from before it get 410.
    compacted: u64,
    watchers: Vec<Watcher>,
    counter: u64,
    /// Set by every write; the controllers clear it when they look.
    pub dirty: bool,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        Store {
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            watchers: Vec::new(),
            counter: 0,
            dirty: false,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A fresh number for uids and generated names.
    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn get(&self, rt: usize, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(rt, ns.to_string(), name.to_string()))
    }

    pub fn by_uid(&self, uid: &str) -> Option<&Value> {
        self.uids.get(uid).and_then(|k| self.objects.get(k))
    }

    pub fn exists_uid(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Objects of a type, in key order (namespace, then name), like an etcd range read.
    pub fn list(&self, rt: usize, ns: Option<&str>) -> Vec<Value> {
        self.list_refs(rt, ns).into_iter().cloned().collect()
    }

    pub fn list_refs(&self, rt: usize, ns: Option<&str>) -> Vec<&Value> {
        let start = (rt, ns.unwrap_or("").to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(|((t, n, _), _)| *t == rt && ns.is_none_or(|ns| n == ns))
            .map(|(_, v)| v)
            .collect()
    }

    /// Objects whose controller owner reference is `owner_uid`.
    pub fn owned_by(&self, rt: usize, ns: &str, owner_uid: &str) -> Vec<Value> {
        self.list_refs(rt, Some(ns))
            .into_iter()
            .filter(|o| object::controller_uid(o) == Some(owner_uid))
            .cloned()
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    pub fn all_keys(&self) -> Vec<Key> {
        self.objects.keys().cloned().collect()
    }

    pub fn insert(&mut self, rt: usize, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = key_of(rt, &obj);
        self.uids.insert(object::uid(&obj).to_string(), key.clone());
        self.objects.insert(key, obj.clone());
        self.record(rt, ChangeKind::Added, None, obj.clone());
        obj
    }

    pub fn replace(&mut self, rt: usize, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = key_of(rt, &obj);
        let old = self.objects.insert(key, obj.clone());
        self.record(rt, ChangeKind::Modified, old, obj.clone());
        obj
    }

    pub fn remove(&mut self, rt: usize, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .remove(&(rt, ns.to_string(), name.to_string()))?;
        self.uids.remove(object::uid(&obj));
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(rt, ChangeKind::Deleted, None, obj.clone());
        Some(obj)
    }

    fn record(&mut self, rt: usize, kind: ChangeKind, old: Option<Value>, new: Value) {
        self.dirty = true;
        let change = Change {
            rv: self.rv,
            at: Instant::now(),
            rt,
            kind,
            old,
            new,
        };
        self.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            match w.filter.translate(&change) {
                Some(event) => w.tx.send(event).is_ok(),
                None => true,
            }
        });
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rv;
            }
        }
    }

    /// Opens a watch from `from` (exclusive): the stored changes after it, then live ones.
    /// `None` starts from the current state, sent as ADDED events.
    ///
    /// # Errors
    /// 410 Expired when changes after `from` have left the history window.
    pub fn watch(
        &mut self,
        filter: WatchFilter,
        from: Option<u64>,
        tx: UnboundedSender<(&'static str, Value)>,
    ) -> Result<(), ApiError> {
        match from {
            None => {
                for o in self.list_refs(filter.rt, filter.namespace.as_deref()) {
                    if filter.matches(filter.rt, o) {
                        let _ = tx.send(("ADDED", o.clone()));
                    }
                }
            }
            Some(rv) => {
                if rv < self.compacted {
                    return Err(ApiError::expired(rv, self.compacted + 1));
                }
                for c in self.history.iter().filter(|c| c.rv > rv) {
                    if let Some(event) = filter.translate(c) {
                        let _ = tx.send(event);
                    }
                }
            }
        }
        self.watchers.push(Watcher { filter, tx });
        Ok(())
    }

    /// The changes of one object still in the history window, oldest first: when, what kind,
    /// and the object as written.
    pub fn changes_of(&self, rt: usize, ns: &str, name: &str) -> Vec<(Instant, ChangeKind, Value)> {
        self.history
            .iter()
            .filter(|c| {
                c.rt == rt && object::namespace(&c.new) == ns && object::name(&c.new) == name
            })
            .map(|c| (c.at, c.kind, c.new.clone()))
            .collect()
    }

    /// Drops every open watch (their streams end).
    pub fn close_watches(&mut self) {
        self.watchers.clear();
    }
}

fn key_of(rt: usize, o: &Value) -> Key {
    (
        rt,
        object::namespace(o).to_string(),
        object::name(o).to_string(),
    )
}
