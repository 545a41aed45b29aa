//! Secrets created from the job's environment: promotion.yml's `secrets:` entries with
//! `fromEnv` (`{ name: azure-secrets, fromEnv: { DATABASE_URL: DEV_DATABASE_URL } }`) become v1
//! Secrets holding the values of those variables (GitHub environment secrets passed to the
//! step), and each workload's pod template gets a hash of the Secrets it reads, so a changed
//! value rolls out with the Deployment.
//!
//! - [`read_variables`] reads the variables (the one step with a side effect): every value is
//!   masked the moment it is read, and so is its base64 form, which is what the Secret object
//!   carries;
//! - [`materialize`] turns them into [`ManagedSecret`]s, which print only names and keys, and
//!   [`annotate_pod_templates`] hashes them into the pod templates (both pure);
//! - [`hide_values`] replaces the values of any Secret object with a keyed hash, for anything
//!   that shows objects to people (a plan, a diff).
//!
//! # Caveats
//! The Secret keeps its name and changes in place, so names written in manifests and read by
//! other tools keep working. Rolling a Deployment back restores the previous pod template (and
//! its hash annotation) but not the previous values; content-addressed names, as the ConfigMap
//! has, would be needed for that. The hash on the pod template is not keyed (it must stay the
//! same from run to run, or every deploy would roll): like Helm's `checksum/secret` annotation
//! and kustomize's hashed Secret names, it lets someone who can read the Deployment test a
//! guess at a short value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::live::ValueHasher;
use super::render::{LABEL_ENVIRONMENT, LABEL_MANAGED_BY, MANAGER};
use crate::actions::{Console, Secret, Variable, mask};
use crate::config::yaml::Pos;
use crate::config::{ConfigError, ConfigErrors, SecretRef};

/// Pod-template annotation: a hash of the names, keys and values of the promote-action-created
/// Secrets the pod reads, beside `promote.studysphere.dev/config-hash`.
pub const ANNOTATION_SECRETS_HASH: &str = "promote.studysphere.dev/secrets-hash";

/// A Secret to create from the job's environment. Its values are masked and never printed:
/// `Debug` and `Display` show the name and keys only.
#[derive(Clone)]
pub struct ManagedSecret {
    name: String,
    namespace: String,
    environment: String,
    data: BTreeMap<String, Secret>,
}

impl ManagedSecret {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// The v1 Secret to server-side apply, with the values base64-encoded in `data` (not
    /// `stringData`, which the API server folds into `data`, so a later apply would not own
    /// the fields it sent). Holds the values: give it to the API client and to nothing else.
    pub fn to_object(&self) -> Value {
        let data: BTreeMap<&str, String> = self
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), encode(v.expose())))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": { LABEL_MANAGED_BY: MANAGER, LABEL_ENVIRONMENT: self.environment },
            },
            "type": "Opaque",
            "data": data,
        })
    }

    /// Feeds the name, keys and values into `hasher`, each length-prefixed so no two different
    /// Secrets feed the same bytes.
    fn feed(&self, hasher: &mut Sha256) {
        let mut part = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        part(self.name.as_bytes());
        for (key, value) in &self.data {
            part(key.as_bytes());
            part(value.expose().as_bytes());
        }
    }
}

impl fmt::Debug for ManagedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ManagedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.keys().collect();
        write!(f, "secret/{} (keys {})", self.name, keys.join(", "))
    }
}

/// Why a variable gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    NotSet,
    /// Set but empty: what `${{ secrets.X }}` gives when the GitHub secret does not exist.
    Empty,
}

/// One `fromEnv` variable without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable {
    pub secret: String,
    pub key: String,
    pub variable: String,
    pub absence: Absence,
    /// Where the `secrets:` entry was written.
    pub pos: Pos,
}

impl fmt::Display for MissingVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (key {} of secret {}) {}",
            self.variable,
            self.key,
            self.secret,
            match self.absence {
                Absence::NotSet => "is not set",
                Absence::Empty => {
                    "is empty (a GitHub secret that does not exist expands to an empty string)"
                }
            }
        )
    }
}

/// Every `fromEnv` variable of an environment that has no value; nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingVariables {
    pub environment: String,
    pub missing: Vec<MissingVariable>,
}

impl fmt::Display for MissingVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.missing.len();
        let list: Vec<String> = self.missing.iter().map(ToString::to_string).collect();
        write!(
            f,
            "environment {}: {n} variable{} for its secrets {} no value: {}; pass {} to the step \
             (`env:`)",
            self.environment,
            if n == 1 { "" } else { "s" },
            if n == 1 { "has" } else { "have" },
            list.join("; "),
            if n == 1 { "it" } else { "them" },
        )
    }
}

impl MissingVariables {
    /// One config error per variable, located at its `secrets:` entry in `file`, so the
    /// command fails as invalid configuration (exit 2) with file and line.
    pub fn into_config_errors(self, file: &Path) -> ConfigErrors {
        ConfigErrors(
            self.missing
                .into_iter()
                .map(|m| ConfigError {
                    file: file.to_path_buf(),
                    pos: m.pos,
                    field: format!(
                        "environments.{}.secrets.{}.fromEnv.{}",
                        self.environment, m.secret, m.key
                    ),
                    message: format!("environment variable {m}"),
                })
                .collect(),
        )
    }
}

/// The job's variables `fromEnv` Secrets are made of, by name, as they were read.
pub type Variables = BTreeMap<String, Variable>;

/// Reads every variable the `fromEnv` entries of `refs` name, once each, through `read` (which
/// masks what it reads), and masks the base64 form of each value too: that is the text a Secret
/// object carries, and masking matches exact text only.
pub fn read_variables<'a>(
    refs: impl IntoIterator<Item = &'a SecretRef>,
    read: impl Fn(&str) -> Variable,
    console: &Console,
) -> Variables {
    let mut variables = Variables::new();
    for variable in refs.into_iter().flat_map(|r| r.from_env.values()) {
        if variables.contains_key(variable) {
            continue;
        }
        let value = read(variable);
        if let Variable::Set(secret) = &value {
            mask(&encode(secret.expose()), console);
        }
        variables.insert(variable.clone(), value);
    }
    variables
}

/// An environment's `fromEnv` Secrets, as far as their variables have values.
#[derive(Debug, Clone)]
pub struct Materialized {
    /// The Secrets every variable of which has a value.
    pub secrets: Vec<ManagedSecret>,
    /// The variables without one (their Secrets are not in `secrets`).
    pub missing: Option<MissingVariables>,
}

/// The Secrets of `refs` that promote-action creates (`fromEnv`), for `environment`'s
/// `namespace`, from `variables` (a variable not in it counts as unset). References to existing
/// Secrets are skipped.
pub fn materialize(
    environment: &str,
    namespace: &str,
    refs: &[SecretRef],
    variables: &Variables,
) -> Materialized {
    let mut secrets = Vec::new();
    let mut missing = Vec::new();
    for r in refs.iter().filter(|r| r.is_managed()) {
        let mut data = BTreeMap::new();
        let mut complete = true;
        for (key, variable) in &r.from_env {
            let absence = match variables.get(variable) {
                Some(Variable::Set(value)) => {
                    data.insert(key.clone(), value.clone());
                    continue;
                }
                Some(Variable::Empty) => Absence::Empty,
                Some(Variable::Unset) | None => Absence::NotSet,
            };
            complete = false;
            missing.push(MissingVariable {
                secret: r.name.clone(),
                key: key.clone(),
                variable: variable.clone(),
                absence,
                pos: r.pos,
            });
        }
        if complete {
            secrets.push(ManagedSecret {
                name: r.name.clone(),
                namespace: namespace.to_string(),
                environment: environment.to_string(),
                data,
            });
        }
    }
    Materialized {
        secrets,
        missing: (!missing.is_empty()).then(|| MissingVariables {
            environment: environment.to_string(),
            missing,
        }),
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

/// Adds [`ANNOTATION_SECRETS_HASH`] to the pod template of every Deployment, StatefulSet,
/// DaemonSet and CronJob in `objects` that reads one of `secrets` (through `env[].valueFrom.
/// secretKeyRef`, `envFrom[].secretRef`, a `secret` volume or a projected one): a hash of the
/// Secrets it reads, so a new value changes the template and rolls the workload.
///
/// # Caveats
/// Jobs are left alone: a Job's template cannot change once created, and a hook Job that is
/// re-applied with a new annotation would be refused.
pub fn annotate_pod_templates(objects: &mut [Value], secrets: &[ManagedSecret]) {
    for object in objects.iter_mut() {
        let template = match object["kind"].as_str().unwrap_or_default() {
            "Deployment" | "StatefulSet" | "DaemonSet" => &mut object["spec"]["template"],
            "CronJob" => &mut object["spec"]["jobTemplate"]["spec"]["template"],
            _ => continue,
        };
        let read = referenced(&template["spec"]);
        let mut used: Vec<&ManagedSecret> = secrets
            .iter()
            .filter(|s| read.iter().any(|r| r == s.name()))
            .collect();
        if used.is_empty() {
            continue;
        }
        used.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hasher = Sha256::new();
        for secret in used {
            secret.feed(&mut hasher);
        }
        // Ten hex digits, like the config hash: enough to notice a change.
        let hash: String = hasher
            .finalize()
            .iter()
            .take(5)
            .map(|b| format!("{b:02x}"))
            .collect();
        if !template["metadata"].is_object() {
            template["metadata"] = json!({});
        }
        if !template["metadata"]["annotations"].is_object() {
            template["metadata"]["annotations"] = json!({});
        }
        template["metadata"]["annotations"][ANNOTATION_SECRETS_HASH] = json!(hash);
    }
}

/// The names of the Secrets a pod spec reads.
fn referenced(pod: &Value) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                names.extend(e["valueFrom"]["secretKeyRef"]["name"].as_str());
            }
            for from in c["envFrom"].as_array().into_iter().flatten() {
                names.extend(from["secretRef"]["name"].as_str());
            }
        }
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        names.extend(volume["secret"]["secretName"].as_str());
        for source in volume["projected"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            names.extend(source["secret"]["name"].as_str());
        }
    }
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(str::to_string).collect()
}

fn encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{random_delimiter, redact};

    /// A value no other test uses (the mask registry is shared by the whole test binary).
    fn unique(label: &str) -> String {
        format!(
            "{label}-{}",
            random_delimiter().trim_start_matches("ghadelimiter_")
        )
    }

    fn secret_ref(name: &str, from_env: &[(&str, &str)], line: usize) -> SecretRef {
        SecretRef {
            name: name.into(),
            from_env: from_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pos: Pos { line, col: 7 },
        }
    }

    fn console() -> Console {
        Console::new(false)
    }

    /// What `Context::read_var` gives for a process environment `env`.
    fn read_from(env: &BTreeMap<String, String>) -> impl Fn(&str) -> Variable + '_ {
        |name| match env.get(name) {
            Some(value) if value.is_empty() => Variable::Empty,
            Some(value) => Variable::Set(Secret::new(value.clone(), &console())),
            None => Variable::Unset,
        }
    }

    fn variables(env: &BTreeMap<String, String>, refs: &[SecretRef]) -> Variables {
        read_variables(refs, read_from(env), &console())
    }

    #[test]
    fn secrets_are_built_from_the_jobs_variables_and_masked_as_they_are_read() {
        let (url, jwt) = (unique("postgres://u:p@db"), unique("jwt"));
        let env = BTreeMap::from([
            ("DEV_DATABASE_URL".to_string(), url.clone()),
            ("DEV_JWT_SECRET".to_string(), jwt.clone()),
            ("UNRELATED".to_string(), unique("unrelated")),
        ]);
        let refs = [
            secret_ref(
                "azure-secrets",
                &[
                    ("DATABASE_URL", "DEV_DATABASE_URL"),
                    ("JWT_SECRET", "DEV_JWT_SECRET"),
                ],
                14,
            ),
            secret_ref("again", &[("URL", "DEV_DATABASE_URL")], 15),
            secret_ref("existing", &[], 16),
        ];
        let read = variables(&env, &refs);
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            ["DEV_DATABASE_URL", "DEV_JWT_SECRET"],
            "each named variable once, and no other"
        );
        for value in [url.clone(), encode(&url), jwt.clone(), encode(&jwt)] {
            assert_eq!(
                redact(&format!("x {value} y")),
                "x *** y",
                "masked as read: {value}"
            );
        }
        let made = materialize("development", "dev", &refs, &read);
        assert!(made.missing.is_none());
        let names: Vec<&str> = made.secrets.iter().map(ManagedSecret::name).collect();
        assert_eq!(
            names,
            ["azure-secrets", "again"],
            "an existing Secret is only referenced"
        );
        assert_eq!(
            made.secrets[0].to_object(),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "azure-secrets",
                    "namespace": "dev",
                    "labels": {
                        "app.kubernetes.io/managed-by": "promote-action",
                        "promote.studysphere.dev/environment": "development",
                    },
                },
                "type": "Opaque",
                "data": { "DATABASE_URL": encode(&url), "JWT_SECRET": encode(&jwt) },
            })
        );
    }

    #[test]
    fn missing_and_empty_variables_are_all_named_with_their_place() {
        let set = unique("set");
        let env = BTreeMap::from([
            ("SET".to_string(), set.clone()),
            ("EMPTY".to_string(), String::new()),
        ]);
        let refs = [
            secret_ref("a", &[("ONE", "SET"), ("TWO", "UNSET")], 14),
            secret_ref("b", &[("THREE", "EMPTY")], 20),
            secret_ref("c", &[("FOUR", "SET")], 26),
        ];
        let made = materialize("production", "prod", &refs, &variables(&env, &refs));
        let names: Vec<&str> = made.secrets.iter().map(ManagedSecret::name).collect();
        assert_eq!(
            names,
            ["c"],
            "only the Secrets whose variables all have values"
        );
        let err = made.missing.expect("two variables have no value");
        let got: Vec<(&str, &str, &str, Absence, usize)> = err
            .missing
            .iter()
            .map(|m| {
                (
                    m.secret.as_str(),
                    m.key.as_str(),
                    m.variable.as_str(),
                    m.absence,
                    m.pos.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "TWO", "UNSET", Absence::NotSet, 14),
                ("b", "THREE", "EMPTY", Absence::Empty, 20),
            ]
        );
        assert_eq!(
            err.to_string(),
            "environment production: 2 variables for its secrets have no value: UNSET (key TWO of \
             secret a) is not set; EMPTY (key THREE of secret b) is empty (a GitHub secret that \
             does not exist expands to an empty string); pass them to the step (`env:`)"
        );
        let errors = err.into_config_errors(Path::new("promotion.yml"));
        assert_eq!(
            errors.0[0].to_string(),
            "promotion.yml:14:7: environments.production.secrets.a.fromEnv.TWO: environment \
             variable UNSET (key TWO of secret a) is not set"
        );
        assert_eq!(errors.0.len(), 2);
        assert!(!format!("{errors:?}").contains(&set));
    }

    #[test]
    fn a_managed_secret_never_prints_its_values() {
        let value = unique("hunter2");
        let env = BTreeMap::from([("V".to_string(), value.clone())]);
        let refs = [secret_ref("s", &[("PASSWORD", "V")], 3)];
        let read = variables(&env, &refs);
        let secrets = materialize("testing", "test", &refs, &read).secrets;
        let s = &secrets[0];
        assert_eq!(s.to_string(), "secret/s (keys PASSWORD)");
        assert_eq!(
            format!("{s:?}"),
            "ManagedSecret { name: \"s\", namespace: \"test\", keys: [\"PASSWORD\"], .. }"
        );
        for printed in [
            format!("{s}"),
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{secrets:?}"),
            format!("{read:?}"),
        ] {
            assert!(
                !printed.contains(&value) && !printed.contains(&encode(&value)),
                "{printed}"
            );
        }
    }

    /// Equal values hide as equal text, different ones differently; nothing of the value shows.
    #[test]
    fn hidden_values_tell_a_change_without_showing_the_value() {
        let hasher = ValueHasher::with_key([7; 32]);
        let (old, new) = (unique("old"), unique("new"));
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

    fn managed(name: &str, value: &str) -> ManagedSecret {
        let env = BTreeMap::from([("V".to_string(), value.to_string())]);
        let refs = [secret_ref(name, &[("K", "V")], 1)];
        materialize("e", "ns", &refs, &variables(&env, &refs))
            .secrets
            .remove(0)
    }

    fn workload(kind: &str, pod: Value) -> Value {
        let template = json!({ "metadata": { "annotations": { "a": "b" } }, "spec": pod });
        match kind {
            "CronJob" => {
                json!({ "kind": kind, "spec": { "jobTemplate": { "spec": { "template": template } } } })
            }
            _ => json!({ "kind": kind, "spec": { "template": template } }),
        }
    }

    fn hash_of(object: &Value) -> Option<&str> {
        let template = if object["kind"] == "CronJob" {
            &object["spec"]["jobTemplate"]["spec"]["template"]
        } else {
            &object["spec"]["template"]
        };
        template["metadata"]["annotations"][ANNOTATION_SECRETS_HASH].as_str()
    }

    #[test]
    fn workloads_that_read_a_managed_secret_carry_its_hash() {
        let (one, two) = (unique("one"), unique("two"));
        let secrets = [managed("app", &one), managed("other", &two)];
        let env_from = json!({ "containers": [{ "name": "c", "envFrom": [{ "secretRef": { "name": "app" } }] }] });
        let key_ref = json!({ "initContainers": [{ "name": "i", "env": [{ "name": "X", "valueFrom": { "secretKeyRef": { "name": "app", "key": "K" } } }] }] });
        let volume = json!({ "volumes": [{ "name": "v", "secret": { "secretName": "app" } }] });
        let projected = json!({ "volumes": [{ "name": "v", "projected": { "sources": [{ "secret": { "name": "app" } }] } }] });
        let unrelated = json!({ "containers": [{ "name": "c", "envFrom": [{ "secretRef": { "name": "existing" } }] }] });
        let cases: Vec<(&str, Value, bool)> = vec![
            (
                "deployment with envFrom",
                workload("Deployment", env_from.clone()),
                true,
            ),
            (
                "statefulset with secretKeyRef",
                workload("StatefulSet", key_ref),
                true,
            ),
            (
                "daemonset with a secret volume",
                workload("DaemonSet", volume),
                true,
            ),
            (
                "cronjob with a projected volume",
                workload("CronJob", projected),
                true,
            ),
            (
                "a Secret it does not create",
                workload("Deployment", unrelated),
                false,
            ),
            (
                "a Job: its template is immutable",
                workload("Job", env_from.clone()),
                false,
            ),
            (
                "not a workload",
                json!({ "kind": "ConfigMap", "data": {} }),
                false,
            ),
        ];
        let mut objects: Vec<Value> = cases.iter().map(|(_, o, _)| o.clone()).collect();
        annotate_pod_templates(&mut objects, &secrets);
        let first = hash_of(&objects[0]).map(str::to_string);
        for ((name, _, annotated), object) in cases.iter().zip(&objects) {
            if *annotated {
                assert_eq!(hash_of(object).map(str::to_string), first, "case: {name}");
                assert!(
                    object.to_string().contains("\"a\":\"b\""),
                    "case: {name}: other annotations stay"
                );
            } else {
                assert_eq!(hash_of(object), None, "case: {name}");
            }
        }
        let hash = first.unwrap();
        assert_eq!(hash.len(), 10);
        assert!(!hash.contains(&one));

        // The hash changes with the value, not with Secrets the workload does not read.
        let rehash = |secrets: &[ManagedSecret]| {
            let mut objects = vec![workload("Deployment", env_from.clone())];
            annotate_pod_templates(&mut objects, secrets);
            hash_of(&objects[0]).unwrap().to_string()
        };
        assert_eq!(
            rehash(&[managed("app", &one)]),
            hash,
            "`other` takes no part"
        );
        assert_eq!(
            rehash(&[managed("other", &two), managed("app", &one)]),
            hash,
            "order"
        );
        assert_ne!(rehash(&[managed("app", &unique("rotated"))]), hash);
    }
}
