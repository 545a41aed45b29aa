//! A namespace as it runs, read for `promote drift`: its Deployments, StatefulSets, ConfigMaps,
//! HorizontalPodAutoscalers, Services and Secrets, as plain values.
//!
//! Secret values never leave this file: each one is replaced by a keyed hash ([`ValueHasher`])
//! while the list answer is converted, and the answer is dropped right after. The key is random
//! per run, so a hash shown in a report tells two environments' values apart (same run, same
//! key) without letting anyone confirm a guessed value offline, as a plain SHA-256 of a short
//! password would. [`hide_values`] does the same to a whole Secret object, for anything that
//! shows objects to people (a plan, a diff).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::api::{self, ApiError};
use super::apply::known_resource;
use super::blue_green::{colour_name, selected_colour};
use super::render::ANNOTATION_SECRET_NAME;

/// The kinds read as JSON, with their API versions.
const KINDS: [(&str, &str); 5] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "ConfigMap"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    // For their selectors: which blue-green colour serves.
    ("v1", "Service"),
];

/// Objects per list page: client-go's pager default, small enough for the API server to answer
/// quickly, large enough that a namespace is one or two round trips.
const PAGE_SIZE: u32 = 500;

/// How many hex digits of a hash are shown: enough to tell values apart at a glance.
const HASH_DIGITS: usize = 12;

/// One namespace, read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveNamespace {
    pub namespace: String,
    /// Deployments, StatefulSets, ConfigMaps, HPAs and Services as the API server answered, with
    /// `apiVersion` and `kind` set (list items may leave them out) and `managedFields` kept.
    pub objects: Vec<Value>,
    pub secrets: Vec<LiveSecret>,
}

impl LiveNamespace {
    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The Deployment that runs the release of `deployment`: the plain one, or in a blue-green
    /// environment the colour the first of the `fronting` Services selects.
    pub fn serving(&self, deployment: &str, fronting: &[&str]) -> Option<&Value> {
        if let Some(plain) = self.get("Deployment", deployment) {
            return Some(plain);
        }
        let colour = fronting
            .iter()
            .find_map(|f| self.get("Service", f))
            .and_then(selected_colour)?;
        self.get("Deployment", &colour_name(deployment, colour))
    }

    pub fn secret(&self, name: &str) -> Option<&LiveSecret> {
        self.secrets.iter().find(|s| s.name == name)
    }
}

/// A Secret without its values: each key with a keyed hash of its value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveSecret {
    pub name: String,
    /// For a version of a `fromEnv` Secret (`app-secrets-<hash>`), the name promotion.yml
    /// gives it.
    pub declared: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Key → `sha256:` and the first 12 hex digits of the keyed hash of its value.
    pub keys: BTreeMap<String, String>,
    /// `metadata.managedFields`: field paths and managers, never values.
    pub managed_fields: Value,
}

/// Hashes values with a key, so equal values hash equally within a run and nothing can be
/// checked against a hash outside it. `Debug` never shows the key.
#[derive(Clone)]
pub struct ValueHasher {
    key: [u8; 32],
}

impl ValueHasher {
    /// A hasher with a fresh random key: the one to use in a run.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn random() -> Result<ValueHasher, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(ValueHasher { key })
    }

    /// A hasher with a fixed key, for tests that compare hashes across runs.
    pub fn with_key(key: [u8; 32]) -> ValueHasher {
        ValueHasher { key }
    }

    /// `sha256:` and the first 12 hex digits of SHA-256 over the key and `value`.
    pub fn hash(&self, value: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(value);
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{}", &hex[..HASH_DIGITS])
    }
}

impl std::fmt::Debug for ValueHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueHasher(<key redacted>)")
    }
}

/// Reading a namespace failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("listing {kind}s in namespace {namespace} failed")]
    List {
        kind: &'static str,
        namespace: String,
        #[source]
        source: ApiError,
    },
}

/// `secret` without its values: each key's value (from `data`, or `stringData` when a client
/// left it there) hashed with `hasher`.
pub fn live_secret(secret: Secret, hasher: &ValueHasher) -> LiveSecret {
    let mut keys = BTreeMap::new();
    for (key, value) in secret.data.unwrap_or_default() {
        keys.insert(key, hasher.hash(&value.0));
    }
    for (key, value) in secret.string_data.unwrap_or_default() {
        keys.insert(key, hasher.hash(value.as_bytes()));
    }
    let declared = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SECRET_NAME))
        .cloned();
    LiveSecret {
        name: secret.metadata.name.unwrap_or_default(),
        declared,
        labels: secret.metadata.labels.unwrap_or_default(),
        keys,
        managed_fields: serde_json::to_value(secret.metadata.managed_fields.unwrap_or_default())
            .unwrap_or(Value::Null),
    }
}

/// Lists everything `promote drift` compares in `namespace`, page by page, retrying what is
/// transient. A namespace that does not exist reads as empty, as the API server lists it.
///
/// # Errors
/// The first list the API server refused, in its words.
pub async fn read_namespace(
    client: &Client,
    namespace: &str,
    hasher: &ValueHasher,
) -> Result<LiveNamespace, LiveError> {
    let mut live = LiveNamespace {
        namespace: namespace.to_string(),
        ..LiveNamespace::default()
    };
    for (api_version, kind) in KINDS {
        let (resource, _) = known_resource(api_version, kind).expect("a rendered kind");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let failed = |source| LiveError::List {
            kind,
            namespace: namespace.to_string(),
            source,
        };
        let mut token: Option<String> = None;
        loop {
            let params = page(token.as_deref());
            let list = api::retrying("listing", || api.list(&params))
                .await
                .map_err(failed)?;
            for item in list.items {
                let mut object = serde_json::to_value(item).unwrap_or(Value::Null);
                object["apiVersion"] = Value::from(api_version);
                object["kind"] = Value::from(kind);
                live.objects.push(object);
            }
            token = list.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut token: Option<String> = None;
    loop {
        let params = page(token.as_deref());
        let list = api::retrying("listing", || secrets.list(&params))
            .await
            .map_err(|source| LiveError::List {
                kind: "Secret",
                namespace: namespace.to_string(),
                source,
            })?;
        token = list.metadata.continue_.clone().filter(|t| !t.is_empty());
        // Consumed here: the values exist only until each Secret is hashed.
        live.secrets
            .extend(list.items.into_iter().map(|s| live_secret(s, hasher)));
        if token.is_none() {
            break;
        }
    }
    Ok(live)
}

fn page(token: Option<&str>) -> ListParams {
    let params = ListParams::default().limit(PAGE_SIZE);
    match token {
        Some(t) => params.continue_token(t),
        None => params,
    }
}

/// Replaces each value of a Secret object (`data`, base64, and `stringData`) with `***` and
/// its keyed hash, so a plan or a diff shows whether a value changed and never what it is. The
/// hash is of the value itself, as `kube::live` hashes a live Secret's, so a rendered Secret and
/// the live one compare equal when their values are. The copy of the whole object that
/// `kubectl apply` keeps in an annotation is hidden the same way. Other kinds are left alone.
pub fn hide_values(object: &mut Value, hasher: &ValueHasher) {
    if object["kind"] != "Secret" {
        return;
    }
    if let Some(copy) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.get_mut(LAST_APPLIED))
    {
        *copy = Value::from(hidden(hasher, copy.as_str().unwrap_or_default().as_bytes()));
    }
    if let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            let text = value.as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_else(|_| text.as_bytes().to_vec());
            *value = Value::from(hidden(hasher, &bytes));
        }
    }
    if let Some(data) = object.get_mut("stringData").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            *value = Value::from(hidden(
                hasher,
                value.as_str().unwrap_or_default().as_bytes(),
            ));
        }
    }
}

/// Client-side `kubectl apply`'s record of what it last applied: the whole object, values too.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `*** sha256:0123456789ab`.
fn hidden(hasher: &ValueHasher, value: &[u8]) -> String {
    format!("*** {}", hasher.hash(value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn encode(value: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(value)
    }

    fn secret(yaml: &str) -> Secret {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    #[test]
    fn the_serving_deployment_is_the_plain_one_or_the_colour_the_service_selects() {
        let deployment = |name: &str| json!({"kind": "Deployment", "metadata": {"name": name}});
        let service = |selector: Value| json!({"kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": selector}});
        let namespace = |objects: Vec<Value>| LiveNamespace {
            objects,
            ..LiveNamespace::default()
        };
        let blue_green = |selector: Value| {
            namespace(vec![
                deployment("web-blue"),
                deployment("web-green"),
                service(selector),
            ])
        };
        let cases = [
            ("rolling", namespace(vec![deployment("web")]), Some("web")),
            (
                "a migration cut short: the plain one still serves",
                namespace(vec![deployment("web"), deployment("web-blue")]),
                Some("web"),
            ),
            (
                "green selected",
                blue_green(json!({"app": "web", "version": "green"})),
                Some("web-green"),
            ),
            (
                "blue selected",
                blue_green(json!({"app": "web", "version": "blue"})),
                Some("web-blue"),
            ),
            (
                "no colour selected",
                blue_green(json!({"app": "web"})),
                None,
            ),
            ("not deployed", namespace(vec![service(json!({}))]), None),
        ];
        for (name, live, want) in cases {
            let got = live
                .serving("web", &["web"])
                .and_then(|d| d["metadata"]["name"].as_str());
            assert_eq!(got, want, "case: {name}");
        }
    }

    #[test]
    fn secrets_keep_their_keys_and_only_a_keyed_hash_of_each_value() {
        let hasher = ValueHasher::with_key([7; 32]);
        // `aHVudGVyMg==` is base64 of `hunter2`.
        let s = secret(
            "metadata:
  name: app-secrets
  labels: {app.kubernetes.io/managed-by: promote-action}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"PASSWORD\":\"aHVudGVyMg==\"}}'}
data: {PASSWORD: aHVudGVyMg==, EMPTY: ''}
stringData: {TOKEN: hunter2}",
        );
        let live = live_secret(s, &hasher);
        assert_eq!(live.name, "app-secrets");
        assert_eq!(live.declared, None, "not a version");
        assert_eq!(
            live.keys.keys().collect::<Vec<_>>(),
            ["EMPTY", "PASSWORD", "TOKEN"]
        );
        assert_eq!(live.keys["PASSWORD"], hasher.hash(b"hunter2"));
        assert_eq!(
            live.keys["TOKEN"], live.keys["PASSWORD"],
            "data and stringData hash alike"
        );
        assert_ne!(live.keys["EMPTY"], live.keys["PASSWORD"]);
        assert!(live.keys["PASSWORD"].starts_with("sha256:"));
        assert_eq!(live.keys["PASSWORD"].len(), "sha256:".len() + 12);
        let everything = format!("{live:?} {}", serde_json::to_string(&live).unwrap());
        for value in ["hunter2", "aHVudGVyMg=="] {
            assert!(!everything.contains(value), "{value} leaked: {everything}");
        }
    }

    #[test]
    fn hashes_depend_on_the_key() {
        let a = ValueHasher::with_key([1; 32]);
        let b = ValueHasher::with_key([2; 32]);
        assert_eq!(a.hash(b"x"), a.hash(b"x"));
        assert_ne!(a.hash(b"x"), b.hash(b"x"));
        assert_ne!(a.hash(b"x"), a.hash(b"y"));
        assert_eq!(format!("{a:?}"), "ValueHasher(<key redacted>)");
        let random = ValueHasher::random().unwrap();
        assert_ne!(random.hash(b"x"), ValueHasher::with_key([0; 32]).hash(b"x"));
    }

    /// Equal values hide as equal text, different ones differently; nothing of the value shows.
    #[test]
    fn hidden_values_tell_a_change_without_showing_the_value() {
        let hasher = ValueHasher::with_key([7; 32]);
        let (old, new) = ("old-b5e1f0a2".to_string(), "new-9c3d7e41".to_string());
        let hide = |object: Value| {
            let mut object = object;
            hide_values(&mut object, &hasher);
            object
        };
        let applied = json!({ "kind": "Secret", "data": { "K": encode(&old) } }).to_string();
        let live = hide(json!({
            "kind": "Secret",
            "metadata": { "annotations": { LAST_APPLIED: applied } },
            "data": { "K": encode(&old) },
        }));
        let same = hide(json!({ "kind": "Secret", "stringData": { "K": old.clone() } }));
        let changed = hide(json!({ "kind": "Secret", "data": { "K": encode(&new) } }));
        assert_eq!(live["data"]["K"], same["stringData"]["K"]);
        assert_ne!(live["data"]["K"], changed["data"]["K"]);
        let shown = live["data"]["K"].as_str().unwrap();
        assert!(shown.starts_with("*** sha256:"), "{shown}");
        for object in [&live, &same, &changed] {
            let text = object.to_string();
            for value in [&old, &new, &encode(&old), &encode(&new)] {
                assert!(!text.contains(value.as_str()), "{text}");
            }
        }
        let config_map = json!({ "kind": "ConfigMap", "data": { "K": "v" } });
        assert_eq!(hide(config_map.clone()), config_map, "only Secrets");
    }
}
