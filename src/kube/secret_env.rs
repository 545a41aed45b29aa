//! Secrets created from the job's environment: promotion.yml's `secrets:` entries with
//! `fromEnv` (`{ name: azure-secrets, fromEnv: { DATABASE_URL: DEV_DATABASE_URL } }`) become v1
//! Secrets holding the values of those variables (GitHub environment secrets passed to the
//! step). Each is content-addressed, as a service's ConfigMap is: `azure-secrets-<hash>`,
//! immutable, and the pod templates that read `azure-secrets` are pointed at that version, so a
//! changed value rolls out with the Deployment and rolls back with it.
//!
//! - [`read_variables`] reads the variables (the one step with a side effect): every value is
//!   masked the moment it is read, and so is its base64 form, which is what the Secret object
//!   carries;
//! - [`materialize`] turns them into [`ManagedSecret`]s, which print only names and keys, and
//!   [`point_at_versions`] rewrites the references to them (both pure);
//!
//! # Caveats
//! Older versions stay in the namespace (a rollback needs them), as older ConfigMaps do. The
//! version hash is not keyed (it must stay the same from run to run, or every deploy would
//! roll): like kustomize's hashed Secret names, it lets someone who can list Secrets test a
//! guess at a short value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::render::{
    ANNOTATION_SECRET_NAME, LABEL_ENVIRONMENT, LABEL_HOOK, LABEL_MANAGED_BY, MANAGER, short_hash,
};
use crate::actions::{Console, Secret, Variable, mask};
use crate::config::yaml::Pos;
use crate::config::{ConfigError, ConfigErrors, SecretRef};

/// A Secret to create from the job's environment. Its values are masked and never printed:
/// `Debug` and `Display` show the name and keys only.
#[derive(Clone)]
pub struct ManagedSecret {
    name: String,
    /// `<name>-<hash of its keys and values>`: the object's name in the cluster.
    version: String,
    namespace: String,
    environment: String,
    data: BTreeMap<String, Secret>,
}

impl ManagedSecret {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of this version of it in the cluster, `<name>-<10 hex digits>`: the same values
    /// give the same version, run after run.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// The v1 Secret to server-side apply, named by its version and immutable (a new value is a
    /// new object), with the values base64-encoded in `data` (not `stringData`, which the API
    /// server folds into `data`, so a later apply would not own the fields it sent). Holds the
    /// values: give it to the API client and to nothing else.
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
                "name": self.version,
                "namespace": self.namespace,
                "labels": { LABEL_MANAGED_BY: MANAGER, LABEL_ENVIRONMENT: self.environment },
                "annotations": { ANNOTATION_SECRET_NAME: self.name },
            },
            "type": "Opaque",
            "immutable": true,
            "data": data,
        })
    }
}

/// `<name>-<hash>`: ten hex digits, like a service's ConfigMap, of the name, keys and values,
/// each length-prefixed so no two different Secrets hash the same bytes.
fn version_of(name: &str, data: &BTreeMap<String, Secret>) -> String {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(name.as_bytes());
    for (key, value) in data {
        part(key.as_bytes());
        part(value.expose().as_bytes());
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}-{hash}")
}

impl fmt::Debug for ManagedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedSecret")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("namespace", &self.namespace)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ManagedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.keys().collect();
        write!(f, "secret/{} (keys {})", self.version, keys.join(", "))
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
                version: version_of(&r.name, &data),
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

/// Points every pod template in `objects` that reads one of `secrets` by its declared name
/// (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, a `secret` volume or a projected
/// one) at that Secret's version (see [`ManagedSecret::version`]). A new value is then a new pod
/// template, so the workload rolls out, and a rollback returns the template to the version it
/// read before, which is still in the namespace: the values roll back with the Deployment.
///
/// Deployments, StatefulSets, DaemonSets, CronJobs and Jobs are rewritten. A hook Job is
/// renamed as well: a Job's template cannot change once created, and its name stands for
/// what it runs, so a new version of a Secret it reads is a new Job.
pub fn point_at_versions(objects: &mut [Value], secrets: &[ManagedSecret]) {
    let versions: BTreeMap<String, String> = secrets
        .iter()
        .map(|s| (s.name.clone(), s.version.clone()))
        .collect();
    rename_secret_references(objects, &versions);
}

/// Rewrites the Secret references of every pod template in `objects` by `versions` (a name
/// as read → the name to read instead); [`point_at_versions`] with names alone, for a side
/// that has no values (`drift` folds promotion.yml's references onto the live versions).
pub fn rename_secret_references(objects: &mut [Value], versions: &BTreeMap<String, String>) {
    for object in objects.iter_mut() {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let pointer = match kind.as_str() {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => "/spec/template/spec",
            "CronJob" => "/spec/jobTemplate/spec/template/spec",
            _ => continue,
        };
        let Some(pod) = object.pointer_mut(pointer) else {
            continue;
        };
        let used = rename_in_pod(pod, versions);
        let is_hook = object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(LABEL_HOOK))
            .is_some();
        if kind == "Job"
            && is_hook
            && !used.is_empty()
            && let Some(name) = object.pointer_mut("/metadata/name")
        {
            let old = name.as_str().unwrap_or_default().to_string();
            let stem = old.rsplit_once('-').map_or(old.as_str(), |(stem, _)| stem);
            let identity = json!([old, used]).to_string();
            *name = json!(format!("{stem}-{}", &short_hash(identity.as_bytes())[..8]));
        }
    }
}

/// Renames the Secret references of one pod spec; the new names it wrote, sorted.
fn rename_in_pod(pod: &mut Value, versions: &BTreeMap<String, String>) -> Vec<String> {
    let mut used = Vec::new();
    let mut rename = |slot: Option<&mut Value>| {
        if let Some(slot) = slot
            && let Some(version) = slot.as_str().and_then(|n| versions.get(n))
        {
            used.push(version.clone());
            *slot = json!(version);
        }
    };
    for list in ["initContainers", "containers"] {
        for c in pod
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for e in c
                .get_mut("env")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                rename(e.pointer_mut("/valueFrom/secretKeyRef/name"));
            }
            for from in c
                .get_mut("envFrom")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                rename(from.pointer_mut("/secretRef/name"));
            }
        }
    }
    for volume in pod
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        rename(volume.pointer_mut("/secret/secretName"));
        for source in volume
            .pointer_mut("/projected/sources")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            rename(source.pointer_mut("/secret/name"));
        }
    }
    used.sort_unstable();
    used.dedup();
    used
}

/// The names of the Secrets and of the ConfigMaps a workload's pod template reads, as
/// `(kind, name)`, sorted.
pub fn pod_references(workload: &Value) -> Vec<(&'static str, String)> {
    let pod = match workload["kind"].as_str().unwrap_or_default() {
        "CronJob" => &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &workload["spec"]["template"]["spec"],
    };
    let mut found: Vec<(&'static str, &str)> = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                let from = &e["valueFrom"];
                found.extend(from["secretKeyRef"]["name"].as_str().map(|n| ("Secret", n)));
                found.extend(
                    from["configMapKeyRef"]["name"]
                        .as_str()
                        .map(|n| ("ConfigMap", n)),
                );
            }
            for from in c["envFrom"].as_array().into_iter().flatten() {
                found.extend(from["secretRef"]["name"].as_str().map(|n| ("Secret", n)));
                found.extend(
                    from["configMapRef"]["name"]
                        .as_str()
                        .map(|n| ("ConfigMap", n)),
                );
            }
        }
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        found.extend(
            volume["secret"]["secretName"]
                .as_str()
                .map(|n| ("Secret", n)),
        );
        found.extend(
            volume["configMap"]["name"]
                .as_str()
                .map(|n| ("ConfigMap", n)),
        );
        for source in volume["projected"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            found.extend(source["secret"]["name"].as_str().map(|n| ("Secret", n)));
            found.extend(
                source["configMap"]["name"]
                    .as_str()
                    .map(|n| ("ConfigMap", n)),
            );
        }
    }
    found.sort_unstable();
    found.dedup();
    found.into_iter().map(|(k, n)| (k, n.to_string())).collect()
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
        let version = made.secrets[0].version().to_string();
        let hash = version
            .strip_prefix("azure-secrets-")
            .expect("named by version");
        assert!(
            hash.len() == 10 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{version}"
        );
        assert_eq!(
            made.secrets[0].to_object(),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": version,
                    "namespace": "dev",
                    "labels": {
                        "app.kubernetes.io/managed-by": "promote-action",
                        "promote.studysphere.dev/environment": "development",
                    },
                    "annotations": { "promote.studysphere.dev/secret-name": "azure-secrets" },
                },
                "type": "Opaque",
                "immutable": true,
                "data": { "DATABASE_URL": encode(&url), "JWT_SECRET": encode(&jwt) },
            })
        );
        let again = materialize("development", "dev", &refs, &read);
        assert_eq!(
            again.secrets[0].version(),
            version,
            "the same values, the same version"
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
        let version = s.version();
        assert_eq!(s.to_string(), format!("secret/{version} (keys PASSWORD)"));
        assert_eq!(
            format!("{s:?}"),
            format!(
                "ManagedSecret {{ name: \"s\", version: \"{version}\", namespace: \"test\", \
                 keys: [\"PASSWORD\"], .. }}"
            )
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
            _ => {
                json!({ "kind": kind, "metadata": { "name": "w-0123abcd" }, "spec": { "template": template } })
            }
        }
    }

    #[test]
    fn workloads_that_read_a_managed_secret_read_its_version() {
        let (one, two) = (unique("one"), unique("two"));
        let secrets = [managed("app", &one), managed("other", &two)];
        let app = secrets[0].version().to_string();
        let env_from = json!({ "containers": [{ "name": "c", "envFrom": [{ "secretRef": { "name": "app" } }] }] });
        let key_ref = json!({ "initContainers": [{ "name": "i", "env": [{ "name": "X", "valueFrom": { "secretKeyRef": { "name": "app", "key": "K" } } }] }] });
        let volume = json!({ "volumes": [{ "name": "v", "secret": { "secretName": "app" } }] });
        let projected = json!({ "volumes": [{ "name": "v", "projected": { "sources": [{ "secret": { "name": "app" } }] } }] });
        let unrelated = json!({ "containers": [{ "name": "c", "envFrom": [{ "secretRef": { "name": "existing" } }] }] });
        let mut hook = workload("Job", env_from.clone());
        hook["metadata"]["labels"] = json!({ LABEL_HOOK: "migrate" });
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
                workload("Deployment", unrelated.clone()),
                false,
            ),
            ("a Job", workload("Job", env_from.clone()), true),
            ("a hook Job", hook, true),
            (
                "not a workload",
                json!({ "kind": "ConfigMap", "data": {} }),
                false,
            ),
        ];
        let mut objects: Vec<Value> = cases.iter().map(|(_, o, _)| o.clone()).collect();
        point_at_versions(&mut objects, &secrets);
        for ((name, before, rewritten), after) in cases.iter().zip(&objects) {
            let reads: Vec<(&str, String)> = pod_references(after);
            if *rewritten {
                assert_eq!(reads, [("Secret", app.clone())], "case: {name}");
                assert!(
                    after.to_string().contains("\"a\":\"b\""),
                    "case: {name}: annotations stay"
                );
            } else {
                assert_eq!(after, before, "case: {name}");
            }
        }
        assert_eq!(
            objects[5]["metadata"]["name"], "w-0123abcd",
            "a Job of the user's keeps its name"
        );
        let hook_name = objects[6]["metadata"]["name"].as_str().unwrap();
        assert!(
            hook_name.starts_with("w-") && hook_name != "w-0123abcd" && hook_name.len() == 10,
            "a hook Job is a new Job: {hook_name}"
        );
        assert!(!objects.iter().any(|o| o.to_string().contains(&one)));

        // Another value is another version; Secrets the workload does not read take no part.
        let reread = |secrets: &[ManagedSecret]| {
            let mut objects = vec![workload("Deployment", env_from.clone())];
            point_at_versions(&mut objects, secrets);
            pod_references(&objects[0])
        };
        assert_eq!(reread(&[managed("app", &one)]), [("Secret", app.clone())]);
        assert_ne!(
            reread(&[managed("app", &unique("rotated"))]),
            [("Secret", app.clone())]
        );
        let mut untouched = vec![workload("Deployment", unrelated)];
        point_at_versions(&mut untouched, &secrets);
        assert_eq!(
            pod_references(&untouched[0]),
            [("Secret", "existing".to_string())]
        );
    }

    #[test]
    fn pod_references_name_the_secrets_and_config_maps_a_template_reads() {
        let cron = workload(
            "CronJob",
            json!({
                "containers": [{ "name": "c",
                    "env": [{ "name": "A", "valueFrom": { "configMapKeyRef": { "name": "cm", "key": "k" } } }],
                    "envFrom": [{ "configMapRef": { "name": "cm" } }, { "secretRef": { "name": "s" } }] }],
                "volumes": [{ "name": "v", "configMap": { "name": "files" } },
                            { "name": "p", "projected": { "sources": [{ "configMap": { "name": "more" } }] } }],
            }),
        );
        assert_eq!(
            pod_references(&cron),
            [
                ("ConfigMap", "cm".to_string()),
                ("ConfigMap", "files".to_string()),
                ("ConfigMap", "more".to_string()),
                ("Secret", "s".to_string()),
            ]
        );
    }
}
