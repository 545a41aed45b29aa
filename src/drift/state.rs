//! One workload as rows: what each container runs and sees, and how many replicas, read the
//! same way from a rendered object (promotion.yml's side) and a live one (the cluster's), so
//! both sides of a comparison mean the same thing.
//!
//! Environment variables are resolved as the kubelet resolves them: `envFrom` sources in order
//! (a later one wins), then `env` (wins over `envFrom`); ConfigMap and Secret references are
//! looked up, an optional one that is missing sets nothing. `$(VAR)` references are shown as
//! written.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ownership::{FieldPath, Pe, fields, named};
use super::{Aspect, Shown};
use crate::config::{FEATURE_FLAGS_KEY, feature_env_name, units};
use crate::kube::{LiveSecret, object_ref};

/// Where a value comes from: an object (`deployment/web`) and the field in it, so a hand edit
/// of that field can be pinned on the row.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Source {
    pub object: String,
    pub path: FieldPath,
}

/// One row's value on one side; `value` is `None` when that side does not say (promotion.yml
/// does not fix a digest nobody promoted yet).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    pub value: Option<Shown>,
    pub sources: Vec<Source>,
}

pub(super) type Rows = BTreeMap<Aspect, Observed>;

/// A Secret as one side knows it.
#[derive(Debug, Clone, Copy)]
pub(super) enum SecretView<'a> {
    Live(&'a LiveSecret),
    /// Created by promote-action from the job's environment (`fromEnv`): promotion.yml
    /// declares its keys, never their values, so a declared key takes the live hash when there
    /// is one.
    Declared {
        name: &'a str,
        /// `fromEnv`: key → the job's variable holding its value.
        keys: &'a BTreeMap<String, String>,
        live: Option<&'a LiveSecret>,
    },
}

impl SecretView<'_> {
    fn name(&self) -> &str {
        match self {
            SecretView::Live(s) => &s.name,
            SecretView::Declared { name, .. } => name,
        }
    }

    fn keys(&self) -> Vec<String> {
        match self {
            SecretView::Live(s) => s.keys.keys().cloned().collect(),
            SecretView::Declared { keys, .. } => keys.keys().cloned().collect(),
        }
    }

    fn value(&self, key: &str) -> Option<Shown> {
        match self {
            SecretView::Live(s) => s.keys.get(key).map(|h| Shown::Hashed(h.clone())),
            SecretView::Declared { keys, live, .. } => {
                keys.contains_key(key)
                    .then(|| match live.and_then(|l| l.keys.get(key)) {
                        Some(hash) => Shown::Hashed(hash.clone()),
                        None => Shown::Unresolved("created by the next deploy".to_string()),
                    })
            }
        }
    }
}

/// What a workload's references resolve against, searched in order (the first object of a
/// name wins).
#[derive(Debug, Clone, Default)]
pub(super) struct Lookup<'a> {
    pub config_maps: Vec<&'a Value>,
    pub secrets: Vec<SecretView<'a>>,
    pub autoscalers: Vec<&'a Value>,
}

impl<'a> Lookup<'a> {
    fn config_map(&self, name: &str) -> Option<&'a Value> {
        self.config_maps
            .iter()
            .copied()
            .find(|c| c["metadata"]["name"] == name)
    }

    fn secret(&self, name: &str) -> Option<SecretView<'a>> {
        self.secrets.iter().copied().find(|s| s.name() == name)
    }

    fn autoscaler(&self, workload: &Value) -> Option<&'a Value> {
        self.autoscalers.iter().copied().find(|h| {
            let target = &h["spec"]["scaleTargetRef"];
            target["kind"] == workload["kind"] && target["name"] == workload["metadata"]["name"]
        })
    }
}

/// How a side names a container's image.
#[derive(Debug, Clone, Copy)]
pub(super) enum Images<'a> {
    /// The cluster's side: as it runs.
    AsRunning,
    /// promotion.yml's side: the render leaves the service's image unpinned (plan has no
    /// digest), so its value is what was last promoted to the environment (`promoted`, from the
    /// live workload's annotation), or unknown.
    Rendered {
        promoted: Option<&'a str>,
        service_container: &'a str,
    },
}

/// Which container's environment holds the feature flags: the service's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Service<'a> {
    pub container: &'a str,
}

/// The rows of `workload` (a Deployment or StatefulSet).
pub(super) fn rows(
    workload: &Value,
    service: Service<'_>,
    lookup: &Lookup<'_>,
    images: Images<'_>,
) -> Rows {
    let me = object_ref(workload);
    let mut rows = Rows::new();
    let pod = &workload["spec"]["template"]["spec"];
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            let at = |tail: &[&str]| {
                let mut path = fields(&["spec", "template", "spec", list]);
                path.push(named(name));
                path.extend(fields(tail));
                Source {
                    object: me.clone(),
                    path,
                }
            };
            let image = c["image"].as_str().unwrap_or_default();
            rows.insert(
                Aspect::Image {
                    container: name.to_string(),
                },
                Observed {
                    value: image_value(image, name, images),
                    sources: vec![at(&["image"])],
                },
            );
            for (kind, quantities) in c["resources"].as_object().into_iter().flatten() {
                for (resource, q) in quantities.as_object().into_iter().flatten() {
                    let text = q.as_str().map_or_else(|| q.to_string(), str::to_string);
                    rows.insert(
                        Aspect::Resource {
                            container: name.to_string(),
                            list: kind.clone(),
                            name: resource.clone(),
                        },
                        Observed {
                            value: Some(Shown::Text(canonical_quantity(resource, &text))),
                            sources: vec![at(&["resources", kind, resource])],
                        },
                    );
                }
            }
            let mut vars = environment(c, name, lookup, &at);
            if list == "containers" && name == service.container {
                feature_flags(&mut vars, &mut rows);
            }
            for (var, observed) in vars {
                let aspect = match var {
                    Var::Env(var) => Aspect::Env {
                        container: name.to_string(),
                        name: var,
                    },
                    Var::MissingSource(source) => Aspect::MissingSource {
                        container: name.to_string(),
                        source,
                    },
                };
                rows.insert(aspect, observed);
            }
        }
    }
    rows.insert(Aspect::Replicas, replicas(workload, lookup));
    rows
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Var {
    Env(String),
    MissingSource(String),
}

/// The container's effective environment, by variable name.
fn environment(
    c: &Value,
    container: &str,
    lookup: &Lookup<'_>,
    at: &dyn Fn(&[&str]) -> Source,
) -> BTreeMap<Var, Observed> {
    let mut vars = BTreeMap::new();
    let listed = at(&["envFrom"]);
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            match lookup.config_map(name) {
                Some(cm) => {
                    for (key, value) in cm["data"].as_object().into_iter().flatten() {
                        vars.insert(
                            Var::Env(format!("{prefix}{key}")),
                            Observed {
                                value: Some(text(value)),
                                sources: vec![listed.clone(), data_source(cm, key)],
                            },
                        );
                    }
                }
                None if from["configMapRef"]["optional"] == true => {}
                None => missing_source(&mut vars, &listed, "configmap", name),
            }
        } else if let Some(name) = from["secretRef"]["name"].as_str() {
            match lookup.secret(name) {
                Some(secret) => {
                    for key in secret.keys() {
                        vars.insert(
                            Var::Env(format!("{prefix}{key}")),
                            Observed {
                                value: secret.value(&key),
                                sources: vec![listed.clone(), secret_source(name, &key)],
                            },
                        );
                    }
                }
                None if from["secretRef"]["optional"] == true => {}
                None => missing_source(&mut vars, &listed, "secret", name),
            }
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        let mut sources = vec![{
            let mut s = at(&["env"]);
            s.path.push(named(name));
            s
        }];
        let from = &e["valueFrom"];
        let value = if let Some(r) = from["configMapKeyRef"].as_object() {
            let (cm, key) = (str_of(r, "name"), str_of(r, "key"));
            match lookup.config_map(cm).map(|o| (o, &o["data"][key])) {
                Some((o, Value::String(v))) => {
                    sources.push(data_source(o, key));
                    Some(Shown::Text(v.clone()))
                }
                _ if r.get("optional") == Some(&Value::Bool(true)) => continue,
                Some(_) => Some(Shown::Unresolved(format!(
                    "key {key} not in configmap {cm}"
                ))),
                None => Some(Shown::Unresolved(format!("configmap {cm} not found"))),
            }
        } else if let Some(r) = from["secretKeyRef"].as_object() {
            let (secret, key) = (str_of(r, "name"), str_of(r, "key"));
            sources.push(secret_source(secret, key));
            match lookup.secret(secret).map(|s| s.value(key)) {
                Some(Some(v)) => Some(v),
                _ if r.get("optional") == Some(&Value::Bool(true)) => continue,
                Some(None) => Some(Shown::Unresolved(format!(
                    "key {key} not in secret {secret}"
                ))),
                None => Some(Shown::Unresolved(format!("secret {secret} not found"))),
            }
        } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            Some(Shown::Text(format!("fieldRef {path}")))
        } else if let Some(resource) = from["resourceFieldRef"]["resource"].as_str() {
            let of = from["resourceFieldRef"]["containerName"]
                .as_str()
                .unwrap_or(container);
            Some(Shown::Text(format!("resourceFieldRef {resource} of {of}")))
        } else {
            Some(Shown::Text(
                e["value"].as_str().unwrap_or_default().to_string(),
            ))
        };
        vars.insert(Var::Env(name.to_string()), Observed { value, sources });
    }
    vars
}

fn missing_source(vars: &mut BTreeMap<Var, Observed>, listed: &Source, kind: &str, name: &str) {
    vars.insert(
        Var::MissingSource(format!("{kind}/{name}")),
        Observed {
            value: Some(Shown::Unresolved(format!("{kind} {name} not found"))),
            sources: vec![listed.clone()],
        },
    );
}

/// The flags of `featureFlags` as the service container sees them: the `FEATURE_*` variable
/// its code reads (render sets one per flag), else the flag's value in the `FEATURE_FLAGS`
/// JSON. Both variables leave the environment rows, which would only repeat the flag.
fn feature_flags(vars: &mut BTreeMap<Var, Observed>, rows: &mut Rows) {
    let Some(all) = vars.remove(&Var::Env(FEATURE_FLAGS_KEY.to_string())) else {
        return;
    };
    let Some(Shown::Text(json)) = &all.value else {
        return;
    };
    let Ok(Value::Object(flags)) = serde_json::from_str::<Value>(json) else {
        return;
    };
    for (flag, value) in flags {
        let env = vars.remove(&Var::Env(feature_env_name(&flag)));
        let mut sources = all.sources.clone();
        let value = match env {
            Some(env) => {
                sources.extend(env.sources);
                env.value
            }
            None => Some(text(&value)),
        };
        rows.insert(
            Aspect::FeatureFlag { name: flag },
            Observed { value, sources },
        );
    }
}

/// `2`, or `autoscaled 2–5 (cpu 70%)` when an HPA scales the workload (its `spec.replicas` is
/// then the HPA's to set, not a setting).
fn replicas(workload: &Value, lookup: &Lookup<'_>) -> Observed {
    if let Some(hpa) = lookup.autoscaler(workload) {
        let spec = &hpa["spec"];
        let targets: Vec<String> = spec["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let resource = &m["resource"];
                let target = &resource["target"];
                let name = resource["name"].as_str()?;
                let value = target["averageUtilization"]
                    .as_i64()
                    .map(|u| format!("{u}%"))
                    .or_else(|| target["averageValue"].as_str().map(str::to_string))?;
                Some(format!("{name} {value}"))
            })
            .collect();
        let min = spec["minReplicas"].as_i64().unwrap_or(1);
        let max = spec["maxReplicas"].as_i64().unwrap_or(min);
        let mut text = format!("autoscaled {min}–{max}");
        if !targets.is_empty() {
            text.push_str(&format!(" ({})", targets.join(", ")));
        }
        return Observed {
            value: Some(Shown::Text(text)),
            sources: vec![Source {
                object: object_ref(hpa),
                path: fields(&["spec"]),
            }],
        };
    }
    // The API server defaults a missing count to 1.
    let count = workload["spec"]["replicas"].as_i64().unwrap_or(1);
    Observed {
        value: Some(Shown::Text(count.to_string())),
        sources: vec![Source {
            object: object_ref(workload),
            path: fields(&["spec", "replicas"]),
        }],
    }
}

fn image_value(image: &str, container: &str, images: Images<'_>) -> Option<Shown> {
    let shown = |reference: &str| {
        Shown::Text(match reference.split_once('@') {
            Some((_, digest)) => digest.to_string(),
            None => reference.to_string(),
        })
    };
    match images {
        Images::AsRunning => Some(shown(image)),
        Images::Rendered {
            promoted,
            service_container,
        } => match promoted {
            Some(p) if repository(p) == repository(image) => Some(shown(p)),
            _ if container == service_container => None,
            _ => Some(shown(image)),
        },
    }
}

/// `registry/repo:tag@sha256:…` → `registry/repo`.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => no_digest,
    }
}

/// A quantity in one spelling per value, so `0.5` and `500m`, `1Gi` and `1024Mi` compare
/// equal: cores as a whole number or millicores; bytes with the largest binary, else decimal,
/// suffix that divides them. Anything else stays as written.
pub(super) fn canonical_quantity(resource: &str, text: &str) -> String {
    let Ok(q) = units::parse_quantity(text) else {
        return text.to_string();
    };
    if resource == "cpu" {
        let millis = (q.value * 1000.0).round();
        if (q.value * 1000.0 - millis).abs() > 1e-6 {
            return text.to_string();
        }
        let millis = millis as u64;
        return if millis.is_multiple_of(1000) {
            (millis / 1000).to_string()
        } else {
            format!("{millis}m")
        };
    }
    if q.value.fract() != 0.0 || q.value >= 2f64.powi(63) {
        return text.to_string();
    }
    let bytes = q.value as u64;
    if bytes == 0 {
        return "0".to_string();
    }
    for (suffix, unit) in [
        ("Ei", 1u64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
        ("E", 1_000_000_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ] {
        if bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

fn text(value: &Value) -> Shown {
    Shown::Text(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn str_of<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn data_source(config_map: &Value, key: &str) -> Source {
    Source {
        object: object_ref(config_map),
        path: vec![Pe::Field("data".into()), Pe::Field(key.to_string())],
    }
}

fn secret_source(name: &str, key: &str) -> Source {
    Source {
        object: format!("secret/{name}"),
        path: vec![Pe::Field("data".into()), Pe::Field(key.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("fixture: {e}\n{text}"))
    }

    fn secret(name: &str, keys: &[(&str, &str)]) -> LiveSecret {
        LiveSecret {
            name: name.into(),
            keys: keys
                .iter()
                .map(|(k, h)| (k.to_string(), h.to_string()))
                .collect(),
            ..LiveSecret::default()
        }
    }

    const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    spec:
      initContainers:
        - {name: migrate, image: 'acr.io/web@sha256:aaa'}
      containers:
        - name: web
          image: 'acr.io/web@sha256:aaa'
          resources: {requests: {cpu: '0.5', memory: 1024Mi}, limits: {cpu: '1'}}
          envFrom:
            - configMapRef: {name: web-config-1}
            - secretRef: {name: app-secrets}
            - {prefix: OPT_, configMapRef: {name: absent, optional: true}}
            - secretRef: {name: gone}
          env:
            - {name: LOG_LEVEL, value: debug}
            - {name: FEATURE_NEW_UI, value: 'true'}
            - name: DB
              valueFrom: {secretKeyRef: {name: db, key: url}}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: REGION
              valueFrom: {configMapKeyRef: {name: web-config-1, key: REGION}}
            - name: MAYBE
              valueFrom: {configMapKeyRef: {name: web-config-1, key: NOPE, optional: true}}
        - {name: proxy, image: 'envoy:1.30'}
";

    const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: web-config-1}
data: {LOG_LEVEL: info, REGION: eu, FEATURE_FLAGS: '{\"newUi\":false,\"beta\":\"x\"}'}
";

    fn text(s: &str) -> Option<Shown> {
        Some(Shown::Text(s.into()))
    }

    fn env(name: &str) -> Aspect {
        Aspect::Env {
            container: "web".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_workload_reads_as_the_kubelet_would_resolve_it() {
        let (web, cm) = (yaml(WEB), yaml(CONFIG));
        let app = secret("app-secrets", &[("TOKEN", "sha256:111")]);
        let db = secret("db", &[("url", "sha256:222")]);
        let lookup = Lookup {
            config_maps: vec![&cm],
            secrets: vec![SecretView::Live(&app), SecretView::Live(&db)],
            autoscalers: vec![],
        };
        let rows = rows(
            &web,
            Service { container: "web" },
            &lookup,
            Images::AsRunning,
        );
        let value = |a: &Aspect| rows.get(a).and_then(|o| o.value.clone());
        let cases: Vec<(Aspect, Option<Shown>)> = vec![
            (
                Aspect::Image {
                    container: "web".into(),
                },
                text("sha256:aaa"),
            ),
            (
                Aspect::Image {
                    container: "proxy".into(),
                },
                text("envoy:1.30"),
            ),
            (
                Aspect::Image {
                    container: "migrate".into(),
                },
                text("sha256:aaa"),
            ),
            (Aspect::Replicas, text("3")),
            (
                Aspect::Resource {
                    container: "web".into(),
                    list: "requests".into(),
                    name: "cpu".into(),
                },
                text("500m"),
            ),
            (
                Aspect::Resource {
                    container: "web".into(),
                    list: "requests".into(),
                    name: "memory".into(),
                },
                text("1Gi"),
            ),
            (env("LOG_LEVEL"), text("debug")),
            (env("REGION"), text("eu")),
            (env("TOKEN"), Some(Shown::Hashed("sha256:111".into()))),
            (env("DB"), Some(Shown::Hashed("sha256:222".into()))),
            (env("POD"), text("fieldRef metadata.name")),
            (env("MAYBE"), None),
            (env("FEATURE_FLAGS"), None),
            (env("FEATURE_NEW_UI"), None),
            (
                Aspect::FeatureFlag {
                    name: "newUi".into(),
                },
                text("true"),
            ),
            (
                Aspect::FeatureFlag {
                    name: "beta".into(),
                },
                text("x"),
            ),
            (
                Aspect::MissingSource {
                    container: "web".into(),
                    source: "secret/gone".into(),
                },
                Some(Shown::Unresolved("secret gone not found".into())),
            ),
        ];
        for (aspect, want) in cases {
            assert_eq!(value(&aspect), want, "{}", aspect.label());
        }
        assert!(
            !rows.keys().any(|a| a.label().contains("OPT_")),
            "an optional source that is missing sets nothing"
        );
        let sources: Vec<&str> = rows[&env("REGION")]
            .sources
            .iter()
            .map(|s| s.object.as_str())
            .collect();
        assert_eq!(sources, ["deployment/web", "configmap/web-config-1"]);
    }

    #[test]
    fn promotion_yml_side_takes_the_promoted_digest_and_declared_secret_keys() {
        let rendered = yaml(
            "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'acr.io/web:latest'
          envFrom: [{secretRef: {name: made}}]
        - {name: proxy, image: 'envoy:1.30'}
",
        );
        let hpa = yaml(
            "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
",
        );
        let live = secret("made", &[("A", "sha256:aaa"), ("STALE", "sha256:bbb")]);
        let keys: BTreeMap<String, String> = [("A", "DEV_A"), ("B", "DEV_B")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let lookup = Lookup {
            config_maps: vec![],
            secrets: vec![SecretView::Declared {
                name: "made",
                keys: &keys,
                live: Some(&live),
            }],
            autoscalers: vec![&hpa],
        };
        let image = |promoted| {
            let rows = rows(
                &rendered,
                Service { container: "web" },
                &lookup,
                Images::Rendered {
                    promoted,
                    service_container: "web",
                },
            );
            let get = |c: &str| {
                rows[&Aspect::Image {
                    container: c.into(),
                }]
                    .value
                    .clone()
            };
            (get("web"), get("proxy"), rows)
        };
        let (web, proxy, rows) = image(Some("acr.io/web@sha256:ccc"));
        assert_eq!(web, text("sha256:ccc"));
        assert_eq!(proxy, text("envoy:1.30"));
        assert_eq!(image(None).0, None, "nothing promoted yet: unknown");
        assert_eq!(
            rows[&Aspect::Replicas].value,
            text("autoscaled 2–5 (cpu 70%)")
        );
        assert_eq!(
            rows[&env("A")].value,
            Some(Shown::Hashed("sha256:aaa".into()))
        );
        assert_eq!(
            rows[&env("B")].value,
            Some(Shown::Unresolved("created by the next deploy".into()))
        );
        assert!(!rows.contains_key(&env("STALE")), "not declared");
    }

    #[test]
    fn quantities_have_one_spelling_per_value() {
        for (resource, text, want) in [
            ("cpu", "0.5", "500m"),
            ("cpu", "500m", "500m"),
            ("cpu", "2", "2"),
            ("cpu", "2000m", "2"),
            ("cpu", "100u", "100u"),
            ("memory", "1024Mi", "1Gi"),
            ("memory", "1Gi", "1Gi"),
            ("memory", "1G", "1G"),
            ("memory", "1000M", "1G"),
            ("memory", "1500", "1500"),
            ("memory", "129e6", "129M"),
            ("memory", "0", "0"),
            ("memory", "lots", "lots"),
        ] {
            assert_eq!(
                canonical_quantity(resource, text),
                want,
                "{resource} {text}"
            );
        }
    }
}
