//! What the apiserver does to an object between the request and storage: defaulting (the
//! `SetDefaults_*` functions for the fields clients read back), validation with the real
//! field paths and wording (422 Invalid), and immutability on update.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::object::{self, object_at};
use super::resources::{self as r, TYPES};
use super::selectors::{self, LabelSelector};
use super::status::{ApiError, FieldError};

/// Fills the defaults the real server fills, for the types clients read defaults from.
/// `fresh_id` is called for allocations (a Service's cluster IP).
pub fn default(rt: usize, o: &mut Value, fresh_id: &mut dyn FnMut() -> u64) {
    match rt {
        r::NAMESPACES => {
            let name = object::name(o).to_string();
            object::set_label(o, "kubernetes.io/metadata.name", &name);
            let spec = object_at(o, &["spec"]);
            spec.entry("finalizers").or_insert(json!(["kubernetes"]));
            let status = object_at(o, &["status"]);
            status.entry("phase").or_insert(json!("Active"));
        }
        r::PODS => {
            let spec = object_at(o, &["spec"]);
            default_pod_spec(spec);
            spec.entry("serviceAccountName").or_insert(json!("default"));
            spec.entry("serviceAccount").or_insert(json!("default"));
            spec.entry("enableServiceLinks").or_insert(json!(true));
            spec.entry("preemptionPolicy")
                .or_insert(json!("PreemptLowerPriority"));
            spec.entry("priority").or_insert(json!(0));
            if spec.get("tolerations").is_none() {
                spec.insert(
                    "tolerations".into(),
                    json!([
                        { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                        { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                    ]),
                );
            }
        }
        r::DEPLOYMENTS => {
            let spec = object_at(o, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            let strategy = spec.entry("strategy").or_insert(json!({}));
            if !strategy.is_object() {
                *strategy = json!({});
            }
            let s = strategy.as_object_mut().expect("made an object");
            s.entry("type").or_insert(json!("RollingUpdate"));
            if s["type"] == "RollingUpdate" {
                let ru = s.entry("rollingUpdate").or_insert(json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    ru.entry("maxSurge").or_insert(json!("25%"));
                    ru.entry("maxUnavailable").or_insert(json!("25%"));
                }
            }
            default_template(spec);
        }
        r::REPLICASETS => {
            let spec = object_at(o, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            default_template(spec);
        }
        r::STATEFULSETS => {
            let spec = object_at(o, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("podManagementPolicy")
                .or_insert(json!("OrderedReady"));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("persistentVolumeClaimRetentionPolicy")
                .or_insert(json!({ "whenDeleted": "Retain", "whenScaled": "Retain" }));
            let strategy = spec
                .entry("updateStrategy")
                .or_insert(json!({ "type": "RollingUpdate" }));
            if strategy["type"] == "RollingUpdate" && strategy["rollingUpdate"].is_null() {
                strategy["rollingUpdate"] = json!({ "partition": 0 });
            }
            default_template(spec);
        }
        r::DAEMONSETS => {
            let spec = object_at(o, &["spec"]);
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            let strategy = spec
                .entry("updateStrategy")
                .or_insert(json!({ "type": "RollingUpdate" }));
            if strategy["type"] == "RollingUpdate" && strategy["rollingUpdate"].is_null() {
                strategy["rollingUpdate"] = json!({ "maxUnavailable": 1, "maxSurge": 0 });
            }
            default_template(spec);
        }
        r::JOBS => {
            let spec = object_at(o, &["spec"]);
            if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
                spec.insert("completions".into(), json!(1));
            }
            spec.entry("parallelism").or_insert(json!(1));
            spec.entry("backoffLimit").or_insert(json!(6));
            spec.entry("completionMode").or_insert(json!("NonIndexed"));
            spec.entry("suspend").or_insert(json!(false));
            spec.entry("manualSelector").or_insert(json!(false));
            spec.entry("podReplacementPolicy")
                .or_insert(json!("TerminatingOrFailed"));
            default_template(spec);
        }
        r::SERVICES => {
            let spec = object_at(o, &["spec"]);
            spec.entry("type").or_insert(json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
            if spec["type"] != "ExternalName" {
                spec.entry("internalTrafficPolicy")
                    .or_insert(json!("Cluster"));
                spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
                spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
                if spec
                    .get("clusterIP")
                    .is_none_or(|ip| ip.as_str() == Some(""))
                {
                    let n = fresh_id();
                    let ip = format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 2);
                    spec.insert("clusterIP".into(), json!(ip));
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if let Some(p) = p.as_object_mut() {
                        p.entry("protocol").or_insert(json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            p.entry("targetPort").or_insert(port);
                        }
                    }
                }
            }
        }
        r::SECRETS => {
            let m = o.as_object_mut().expect("objects are JSON objects");
            m.entry("type").or_insert(json!("Opaque"));
            if let Some(Value::Object(string_data)) = m.remove("stringData") {
                let data = m.entry("data").or_insert(json!({}));
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    data[&k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        r::HPAS => {
            let spec = object_at(o, &["spec"]);
            spec.entry("minReplicas").or_insert(json!(1));
        }
        _ => {}
    }
}

/// What an update keeps from the stored object when the new one leaves it out: a Service's
/// allocated cluster IPs (`patchAllocatedValues` in the service registry), so a PUT or patch
/// without `spec.clusterIP` keeps the address instead of failing as a change.
pub fn keep_allocated(rt: usize, old: &Value, new: &mut Value) {
    if rt != r::SERVICES || new["spec"]["type"] == "ExternalName" {
        return;
    }
    let spec = object_at(new, &["spec"]);
    for field in ["clusterIP", "clusterIPs"] {
        let missing = spec.get(field).is_none_or(|v| {
            v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty)
        });
        if missing && !old["spec"][field].is_null() {
            spec.insert(field.into(), old["spec"][field].clone());
        }
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(pod_spec) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        default_pod_spec(pod_spec);
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let Some(c) = c.as_object_mut() else { continue };
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            if c.get("imagePullPolicy").is_none() {
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                c.insert("imagePullPolicy".into(), json!(pull_policy(image)));
            }
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if let Some(p) = p.as_object_mut() {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Validates `o` (and, on update, what may not change from `old`).
///
/// # Errors
/// 422 Invalid with every field error found.
pub fn validate(rt: usize, o: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let t = &TYPES[rt];
    let mut errs = Vec::new();
    let name = object::name(o);
    let name_ok = match rt {
        r::NAMESPACES | r::SERVICES => selectors::is_dns_label(name),
        _ => selectors::is_dns_subdomain(name),
    };
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !name_ok {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    for (k, v) in object::labels(o) {
        if let Err(e) = selectors::check_key(&k) {
            errs.push(FieldError::invalid("metadata.labels", &json!(k), e));
        }
        if let Err(e) = selectors::check_value(v.as_str().unwrap_or("?")) {
            errs.push(FieldError::invalid(format!("metadata.labels[{k}]"), &v, e));
        }
    }
    let spec = &o["spec"];
    match rt {
        r::DEPLOYMENTS | r::REPLICASETS | r::STATEFULSETS | r::DAEMONSETS => {
            validate_workload(spec, &mut errs);
            if rt == r::DEPLOYMENTS {
                let strategy = &spec["strategy"];
                if strategy["type"] == "RollingUpdate" {
                    let ru = &strategy["rollingUpdate"];
                    // Validation looks at the raw numbers, before percentages are resolved.
                    let raw = |v: &Value| object::scaled(v, 100, false, 1);
                    if raw(&ru["maxSurge"]) == 0 && raw(&ru["maxUnavailable"]) == 0 {
                        errs.push(FieldError::invalid(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            &ru["maxUnavailable"],
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                } else if strategy["type"] == "Recreate" && !strategy["rollingUpdate"].is_null() {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            if let Some(old) = old
                && old["spec"]["selector"] != spec["selector"]
            {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    &spec["selector"],
                    "field is immutable",
                ));
            }
            if rt == r::STATEFULSETS
                && let Some(old) = old
            {
                let mut a = old["spec"].clone();
                let mut b = spec.clone();
                for f in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                    "revisionHistoryLimit",
                ] {
                    a.as_object_mut().map(|m| m.remove(f));
                    b.as_object_mut().map(|m| m.remove(f));
                }
                if a != b {
                    errs.push(FieldError::forbidden(
                        "spec",
                        "updates to statefulset spec for fields other than 'replicas', 'ordinals', \
                         'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and \
                         'minReadySeconds' are forbidden",
                    ));
                }
            }
        }
        r::JOBS => {
            let tpl = &spec["template"];
            validate_pod_spec(&tpl["spec"], "spec.template.spec", &mut errs);
            let policy = &tpl["spec"]["restartPolicy"];
            if policy != "OnFailure" && policy != "Never" {
                errs.push(FieldError::unsupported(
                    "spec.template.spec.restartPolicy",
                    policy,
                    &["OnFailure", "Never"],
                ));
            }
            if let Some(old) = old {
                if old["spec"]["selector"] != spec["selector"] {
                    errs.push(FieldError::invalid(
                        "spec.selector",
                        &spec["selector"],
                        "field is immutable",
                    ));
                }
                if old["spec"]["template"] != spec["template"] {
                    errs.push(FieldError::invalid(
                        "spec.template",
                        &json!("core.PodTemplateSpec{...}"),
                        "field is immutable",
                    ));
                }
                if old["spec"]["completions"] != spec["completions"] {
                    errs.push(FieldError::invalid(
                        "spec.completions",
                        &spec["completions"],
                        "field is immutable",
                    ));
                }
            }
        }
        r::PODS => {
            validate_pod_spec(spec, "spec", &mut errs);
            if let Some(old) = old {
                let strip = |p: &Value| {
                    let mut p = p.clone();
                    if let Some(cs) = p["containers"].as_array_mut() {
                        for c in cs {
                            c.as_object_mut().map(|m| m.remove("image"));
                        }
                    }
                    for f in ["activeDeadlineSeconds", "tolerations", "nodeName"] {
                        p.as_object_mut().map(|m| m.remove(f));
                    }
                    p
                };
                if strip(&old["spec"]) != strip(spec) {
                    errs.push(FieldError::forbidden(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`,\
                         `spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
                         `spec.tolerations` (only additions to existing tolerations),\
                         `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        r::SERVICES => {
            validate_service(spec, &mut errs);
            if let Some(old) = old {
                let (a, b) = (&old["spec"]["clusterIP"], &spec["clusterIP"]);
                if !a.is_null() && a != b {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs[0]",
                        b,
                        "may not change once set",
                    ));
                }
            }
        }
        r::INGRESSES => validate_ingress(spec, &mut errs),
        r::ENDPOINTSLICES => {
            let kind = &o["addressType"];
            if kind.is_null() {
                errs.push(FieldError::required("addressType", ""));
            } else if !["IPv4", "IPv6", "FQDN"].contains(&kind.as_str().unwrap_or_default()) {
                errs.push(FieldError::unsupported(
                    "addressType",
                    kind,
                    &["FQDN", "IPv4", "IPv6"],
                ));
            }
            if let Some(old) = old
                && old["addressType"] != *kind
            {
                errs.push(FieldError::invalid(
                    "addressType",
                    kind,
                    "field is immutable",
                ));
            }
        }
        r::CONFIGMAPS | r::SECRETS => {
            if rt == r::SECRETS
                && let Some(data) = o["data"].as_object()
            {
                for (k, v) in data {
                    let ok = v.as_str().is_some_and(|s| {
                        base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                    });
                    if !ok {
                        errs.push(FieldError::invalid(
                            format!("data[{k}]"),
                            v,
                            "must be base64-encoded",
                        ));
                    }
                }
            }
            if let Some(old) = old
                && old["immutable"] == true
            {
                for f in ["data", "binaryData"] {
                    if old[f] != o[f] {
                        errs.push(FieldError::forbidden(
                            f,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if o["immutable"] != true {
                    errs.push(FieldError::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        r::HPAS => {
            if spec["scaleTargetRef"]["name"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                errs.push(FieldError::required("spec.scaleTargetRef.name", ""));
            }
            if spec["maxReplicas"].as_i64().is_none_or(|m| m < 1) {
                errs.push(FieldError::invalid(
                    "spec.maxReplicas",
                    &spec["maxReplicas"],
                    "must be greater than or equal to 1",
                ));
            }
        }
        r::PDBS if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() => {
            errs.push(FieldError::invalid(
                "spec",
                &json!("policy.PodDisruptionBudgetSpec{...}"),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(t, name, &errs))
    }
}

/// `ValidateService`'s checks on what a client writes: ports (numbers in range, names required
/// and unique once there are several, `IsValidPortNum`), and the selector's labels.
fn validate_service(spec: &Value, errs: &mut Vec<FieldError>) {
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if kind != "ExternalName" && ports.is_empty() {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = p["name"].as_str().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else if !name.is_empty() {
            if !selectors::is_dns_label(name) {
                errs.push(FieldError::invalid(
                    format!("{at}.name"),
                    &json!(name),
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric \
                     characters or '-', and must start and end with an alphanumeric character",
                ));
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
            }
            names.push(name);
        }
        if !p["port"].as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
            errs.push(FieldError::invalid(
                format!("{at}.port"),
                &p["port"],
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(n) = p["targetPort"].as_i64()
            && !(1..=65535).contains(&n)
        {
            errs.push(FieldError::invalid(
                format!("{at}.targetPort"),
                &p["targetPort"],
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = &p["protocol"];
        if !protocol.is_null()
            && !["TCP", "UDP", "SCTP"].contains(&protocol.as_str().unwrap_or_default())
        {
            errs.push(FieldError::unsupported(
                format!("{at}.protocol"),
                protocol,
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
    for (k, v) in spec["selector"].as_object().into_iter().flatten() {
        if let Err(e) = selectors::check_key(k) {
            errs.push(FieldError::invalid("spec.selector", &json!(k), e));
        }
        if let Err(e) = selectors::check_value(v.as_str().unwrap_or("?")) {
            errs.push(FieldError::invalid("spec.selector", v, e));
        }
    }
}

/// `ValidateIngressSpec` for rules and backends: every path has a supported `pathType`, an
/// absolute `path` where the type needs one, and a backend naming a service and a port.
fn validate_ingress(spec: &Value, errs: &mut Vec<FieldError>) {
    if !spec["defaultBackend"].is_null() {
        validate_ingress_backend(&spec["defaultBackend"], "spec.defaultBackend", errs);
    }
    for (i, rule) in spec["rules"].as_array().into_iter().flatten().enumerate() {
        let paths = rule["http"]["paths"].as_array();
        for (j, path) in paths.into_iter().flatten().enumerate() {
            let at = format!("spec.rules[{i}].http.paths[{j}]");
            let text = path["path"].as_str().unwrap_or_default();
            match path["pathType"].as_str() {
                None => {
                    errs.push(FieldError::required(
                        format!("{at}.pathType"),
                        "pathType must be specified",
                    ));
                    continue;
                }
                Some("Exact" | "Prefix") if !text.starts_with('/') => {
                    errs.push(FieldError::invalid(
                        format!("{at}.path"),
                        &json!(text),
                        "must be an absolute path",
                    ));
                }
                Some("ImplementationSpecific") if !text.is_empty() && !text.starts_with('/') => {
                    errs.push(FieldError::invalid(
                        format!("{at}.path"),
                        &json!(text),
                        "must be an absolute path",
                    ));
                }
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(_) => errs.push(FieldError::unsupported(
                    format!("{at}.pathType"),
                    &path["pathType"],
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            validate_ingress_backend(&path["backend"], &format!("{at}.backend"), errs);
        }
    }
}

fn validate_ingress_backend(backend: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let service = &backend["service"];
    match (backend["resource"].is_null(), service.is_null()) {
        (false, false) => errs.push(FieldError::invalid(
            at,
            &json!(""),
            "cannot set both resource and service backends",
        )),
        (false, true) => {}
        (true, true) => errs.push(FieldError::invalid(
            at,
            &json!(""),
            "resource or service must be specified",
        )),
        (true, false) => {
            if service["name"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("{at}.service.name"), ""));
            }
            let port = &service["port"];
            let has_name = port["name"].as_str().is_some_and(|n| !n.is_empty());
            let has_number = port["number"].as_i64().is_some_and(|n| n != 0);
            if has_name && has_number {
                errs.push(FieldError::invalid(
                    at,
                    &json!(""),
                    "cannot set both port name & port number",
                ));
            } else if !has_name && !has_number {
                errs.push(FieldError::required(
                    format!("{at}.service.port"),
                    "port name or number is required",
                ));
            }
        }
    }
}

fn validate_workload(spec: &Value, errs: &mut Vec<FieldError>) {
    let selector = &spec["selector"];
    let template_labels = spec["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if selector.is_null() {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        let sel = LabelSelector::from_object(selector);
        if sel.is_empty() {
            errs.push(FieldError::invalid(
                "spec.selector",
                selector,
                "empty selector is invalid for deployment",
            ));
        } else if !sel.matches(&template_labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                &Value::Object(template_labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    if let Some(n) = spec["replicas"].as_i64()
        && n < 0
    {
        errs.push(FieldError::invalid(
            "spec.replicas",
            &spec["replicas"],
            "must be greater than or equal to 0",
        ));
    }
    if !spec["replicas"].is_null() && !spec["replicas"].is_i64() {
        errs.push(FieldError::invalid(
            "spec.replicas",
            &spec["replicas"],
            "must be an integer",
        ));
    }
    let pod = &spec["template"]["spec"];
    validate_pod_spec(pod, "spec.template.spec", errs);
    let policy = &pod["restartPolicy"];
    if !policy.is_null() && policy != "Always" {
        errs.push(FieldError::unsupported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
}

fn validate_pod_spec(pod: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{at}.containers"), ""));
    }
    let mut seen = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in pod[list].as_array().into_iter().flatten().enumerate() {
            let path = format!("{at}.{list}[{i}]");
            let cname = c["name"].as_str().unwrap_or_default();
            if cname.is_empty() {
                errs.push(FieldError::required(format!("{path}.name"), ""));
            } else if !selectors::is_dns_label(cname) {
                errs.push(FieldError::invalid(
                    format!("{path}.name"),
                    &c["name"],
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
                     and must start and end with an alphanumeric character",
                ));
            } else if seen.contains(&cname) {
                errs.push(FieldError {
                    field: format!("{path}.name"),
                    reason: "FieldValueDuplicate",
                    detail: format!("\"{cname}\""),
                });
            }
            seen.push(cname);
            if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
                errs.push(FieldError::required(format!("{path}.image"), ""));
            }
            for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
                let port = p["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    errs.push(FieldError::invalid(
                        format!("{path}.ports[{j}].containerPort"),
                        &p["containerPort"],
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
    }
}

/// The server's part of a new object: identity, timestamps, generation, and the status a new
/// object starts with.
pub fn prepare_create(rt: usize, o: &mut Value, uid: &str, created: &str) {
    let t = &TYPES[rt];
    let meta = object_at(o, &["metadata"]);
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(created));
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(f);
    }
    if t.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    o["apiVersion"] = json!(t.api_version());
    o["kind"] = json!(t.kind);
    if t.status_subresource {
        let status = match rt {
            r::PODS => json!({ "phase": "Pending", "qosClass": qos_class(&o["spec"]) }),
            r::NAMESPACES => json!({ "phase": "Active" }),
            r::SERVICES => json!({ "loadBalancer": {} }),
            _ => json!({}),
        };
        o["status"] = status;
    }
    if rt == r::JOBS {
        // The job controller's selector and labels, keyed by the Job's uid.
        let manual = o["spec"]["manualSelector"] == true;
        let job_name = object::name(o).to_string();
        if !manual {
            o["spec"]["selector"] =
                json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
            let tpl = object_at(o, &["spec", "template", "metadata", "labels"]);
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", uid),
                ("batch.kubernetes.io/job-name", job_name.as_str()),
                ("controller-uid", uid),
                ("job-name", job_name.as_str()),
            ] {
                tpl.insert(k.into(), json!(v));
            }
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let any_resources = containers.iter().any(|c| {
        c["resources"]["requests"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
            || c["resources"]["limits"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
    });
    if !any_resources {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
        ["cpu", "memory"]
            .iter()
            .all(|k| !lim[k].is_null() && (req[k].is_null() || req[k] == lim[k]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// True when something other than metadata and status differs: what bumps
/// `metadata.generation`.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(m) = o.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        o
    };
    strip(old) != strip(new)
}
