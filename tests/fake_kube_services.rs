//! What blue-green and canary deploys use from the fake Kubernetes API, checked with the real
//! `kube` client: Services and their selector writes, EndpointSlices of ready pods, the API
//! server's service proxy to test-registered HTTP backends, the Deployment `scale` subresource
//! and deletion, Ingresses and their annotations, and discovery of all of them.

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::checks_server::{Answer, Route, TestService};
use crate::fake_kube::FakeKube;
use crate::fake_kube_tests::{PATIENCE, api_error, apply, cluster, namespace, raw_patch};

/// `web-<colour>`: `replicas` pods labelled `app: web, version: <colour>`, serving on 8080.
fn colour(version: &str, image: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": format!("web-{version}") },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "web", "version": version } },
            "template": {
                "metadata": { "labels": { "app": "web", "version": version } },
                "spec": { "containers": [{ "name": "app", "image": image, "ports": [{ "name": "http", "containerPort": 8080 }] }] },
            },
        },
    })
}

/// Service `name` on port 80 (`http`, to the pods' 8080) selecting `selector`.
fn service(name: &str, selector: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name },
        "spec": { "selector": selector, "ports": [{ "name": "http", "port": 80, "targetPort": "http" }] },
    })
}

/// Namespace `prod` with `web-blue` and `web-green` rolled out (two pods each) and Service
/// `web` selecting blue.
async fn blue_and_green(fake: &FakeKube, client: &Client) {
    namespace(fake, client, "prod").await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), "prod");
    for version in ["blue", "green"] {
        let d = colour(version, &format!("example.com/web:{version}"), 2);
        apply(&deployments, &format!("web-{version}"), "promote", &d)
            .await
            .unwrap();
    }
    let services = Api::<Service>::namespaced(client.clone(), "prod");
    apply(
        &services,
        "web",
        "promote",
        &service("web", json!({ "app": "web", "version": "blue" })),
    )
    .await
    .unwrap();
    for version in ["blue", "green"] {
        let ready = fake
            .wait_for_async(PATIENCE, |f| {
                ready_pods(f, "prod", &format!("version={version}")).len() == 2
            })
            .await;
        assert!(ready, "web-{version} rolled out");
    }
}

/// The Ready pods in `ns` whose labels include every `key=value` of `labels`, by name.
fn ready_pods(fake: &FakeKube, ns: &str, labels: &str) -> Vec<String> {
    let wanted: Vec<(&str, &str)> = labels
        .split(',')
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    let mut names: Vec<String> = fake
        .list("pods", Some(ns))
        .into_iter()
        .filter(|p| {
            wanted
                .iter()
                .all(|(k, v)| p["metadata"]["labels"][*k] == *v)
                && p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The pods the EndpointSlices of `service` list as ready, by name.
fn sliced_ready(fake: &FakeKube, ns: &str, service: &str) -> Vec<String> {
    let mut names: Vec<String> = fake
        .list("endpointslices", Some(ns))
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .map(|e| e["targetRef"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Waits until `service`'s slices list exactly the ready pods labelled `labels`.
async fn slices_follow(fake: &FakeKube, service: &str, labels: &str) {
    let followed = fake
        .wait_for_async(PATIENCE, |f| {
            let want = ready_pods(f, "prod", labels);
            !want.is_empty() && sliced_ready(f, "prod", service) == want
        })
        .await;
    assert!(
        followed,
        "slices of {service}: {:?}, pods {labels}: {:?}",
        sliced_ready(fake, "prod", service),
        ready_pods(fake, "prod", labels)
    );
}

/// The fake and a client without kube's own retries, which would repeat a proxied 503 up to
/// 15 times (the product turns them off too, `kube/connect.rs`).
async fn cluster_without_retries() -> (FakeKube, Client) {
    let fake = FakeKube::start();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    let client = Client::try_from(config).unwrap();
    (fake, client)
}

/// One request through the API server's service proxy: status, headers, body.
async fn proxied(client: &Client, method: &str, path: &str) -> (u16, http::HeaderMap, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let response = client.send(request).await.expect("the proxy answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn get_health(client: &Client) -> (u16, String) {
    let (code, _, body) = proxied(
        client,
        "GET",
        "/api/v1/namespaces/prod/services/web:80/proxy/health",
    )
    .await;
    (code, body)
}

fn merge_selector(version: Value) -> Value {
    json!({ "spec": { "selector": { "version": version } } })
}

#[tokio::test]
async fn endpoint_slices_list_the_ready_pods_the_selector_picks() {
    let (fake, client) = cluster().await;
    blue_and_green(&fake, &client).await;
    slices_follow(&fake, "web", "version=blue").await;

    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "prod")
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .expect("EndpointSlices list as discovery.k8s.io/v1");
    assert_eq!(slices.items.len(), 1);
    let slice = &slices.items[0];
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice.labels().get("endpointslice.kubernetes.io/managed-by"),
        Some(&"endpointslice-controller.k8s.io".to_string())
    );
    let owner = &slice.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP")),
        "the named targetPort resolved against the pods"
    );
    for e in &slice.endpoints {
        let c = e.conditions.as_ref().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(e.target_ref.as_ref().unwrap().kind.as_deref(), Some("Pod"));
    }
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), "prod")
        .get("web")
        .await
        .unwrap();
    let subset = &endpoints.subsets.unwrap()[0];
    let mut names: Vec<String> = subset
        .addresses
        .iter()
        .flatten()
        .map(|a| a.target_ref.as_ref().unwrap().name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ready_pods(&fake, "prod", "version=blue"));

    // The switch: one merge patch of the selector, and the slices list green instead.
    let path = "/api/v1/namespaces/prod/services/web";
    raw_patch(
        &client,
        path,
        "application/merge-patch+json",
        &merge_selector(json!("green")),
    )
    .await
    .unwrap();
    slices_follow(&fake, "web", "version=green").await;

    // Unready pods are listed, not ready; Endpoints keep them apart.
    let deployments = Api::<Deployment>::namespaced(client.clone(), "prod");
    let canary = colour("canary", "example.com/web-never-ready:3", 1);
    apply(&deployments, "web-canary", "promote", &canary)
        .await
        .unwrap();
    let services = Api::<Service>::namespaced(client.clone(), "prod");
    apply(
        &services,
        "web-all",
        "promote",
        &service("web-all", json!({ "app": "web" })),
    )
    .await
    .unwrap();
    let listed = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("endpointslices", Some("prod"))
                .iter()
                .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "web-all")
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .any(|e| {
                    e["targetRef"]["name"]
                        .as_str()
                        .unwrap()
                        .starts_with("web-canary-")
                        && e["conditions"]
                            == json!({ "ready": false, "serving": false, "terminating": false })
                })
        })
        .await;
    assert!(listed, "{:#?}", fake.list("endpointslices", Some("prod")));
    assert_eq!(
        sliced_ready(&fake, "prod", "web-all").len(),
        4,
        "blue and green"
    );
    let all = fake.get("endpoints", "prod", "web-all").unwrap();
    assert_eq!(all["subsets"][0]["addresses"].as_array().unwrap().len(), 4);
    assert_eq!(
        all["subsets"][0]["notReadyAddresses"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A Service that selects nothing keeps one empty slice; deleting it removes its slices.
    apply(
        &services,
        "none",
        "promote",
        &service("none", json!({ "app": "nothing" })),
    )
    .await
    .unwrap();
    let placeholder = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("endpointslices", Some("prod")).iter().any(|s| {
                s["metadata"]["labels"]["kubernetes.io/service-name"] == "none"
                    && s["endpoints"].is_null()
            })
        })
        .await;
    assert!(placeholder);
    services
        .delete("none", &DeleteParams::default())
        .await
        .unwrap();
    let gone = fake
        .wait_for_async(PATIENCE, |f| {
            f.get("endpoints", "prod", "none").is_none()
                && !f
                    .list("endpointslices", Some("prod"))
                    .iter()
                    .any(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "none")
        })
        .await;
    assert!(gone, "collected with their Service");
}

#[tokio::test]
async fn selector_writes_follow_the_patch_and_apply_rules() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let services = Api::<Service>::namespaced(client.clone(), "prod");
    let created = apply(
        &services,
        "web",
        "promote",
        &service("web", json!({ "app": "web", "version": "blue" })),
    )
    .await
    .unwrap();
    let cluster_ip = created.spec.as_ref().unwrap().cluster_ip.clone();
    let rv = created.resource_version().unwrap();
    let mut watch = services
        .watch(
            &kube::api::WatchParams::default().fields("metadata.name=web"),
            &rv,
        )
        .await
        .unwrap()
        .boxed();

    // Strategic merge: the selector map merges key by key.
    let path = "/api/v1/namespaces/prod/services/web?fieldManager=switcher";
    let patched = raw_patch(
        &client,
        path,
        "application/strategic-merge-patch+json",
        &merge_selector(json!("green")),
    )
    .await
    .unwrap();
    assert_eq!(
        patched["spec"]["selector"],
        json!({ "app": "web", "version": "green" })
    );
    assert_eq!(patched["spec"]["clusterIP"].as_str(), cluster_ip.as_deref());
    let bumped = patched["metadata"]["resourceVersion"].as_str().unwrap();
    assert!(bumped.parse::<u64>().unwrap() > rv.parse::<u64>().unwrap());
    let event = tokio::time::timeout(PATIENCE, watch.try_next())
        .await
        .expect("a watch event in time")
        .unwrap()
        .unwrap();
    let WatchEvent::Modified(seen) = event else {
        panic!("expected MODIFIED, got {event:?}")
    };
    assert_eq!(seen.resource_version().as_deref(), Some(bumped));
    assert_eq!(
        seen.spec
            .unwrap()
            .selector
            .unwrap()
            .get("version")
            .map(String::as_str),
        Some("green")
    );

    // The same patch again writes nothing.
    let again = raw_patch(
        &client,
        path,
        "application/strategic-merge-patch+json",
        &merge_selector(json!("green")),
    )
    .await
    .unwrap();
    assert_eq!(again["metadata"]["resourceVersion"], bumped);

    // JSON merge patch: null removes a key.
    let merged = raw_patch(
        &client,
        path,
        "application/merge-patch+json",
        &json!({ "spec": { "selector": { "version": null, "tier": "front" } } }),
    )
    .await
    .unwrap();
    assert_eq!(
        merged["spec"]["selector"],
        json!({ "app": "web", "tier": "front" })
    );

    // The selector is one atomic field for apply: the patcher owns it now, so applying
    // conflicts; forcing takes it whole (no `tier` left over from the patcher).
    let blue = service("web", json!({ "app": "web", "version": "blue" }));
    let e = api_error(apply(&services, "web", "promote", &blue).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(
        e.message.contains("conflict with \"switcher\"") && e.message.contains(".spec.selector"),
        "{}",
        e.message
    );
    let forced = services
        .patch(
            "web",
            &PatchParams::apply("promote").force(),
            &Patch::Apply(&blue),
        )
        .await
        .unwrap();
    let selector = forced.spec.unwrap().selector.unwrap();
    assert_eq!(
        selector.into_iter().collect::<Vec<_>>(),
        [
            ("app".to_string(), "web".to_string()),
            ("version".to_string(), "blue".to_string())
        ]
    );

    // PUT with a stale resourceVersion, a second create, a missing Service.
    let mut stale = patched.clone();
    stale["spec"]["selector"] = json!({ "app": "web" });
    let stale: Service = serde_json::from_value(stale).unwrap();
    let e = api_error(
        services
            .replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let fresh: Service = serde_json::from_value(blue.clone()).unwrap();
    let e = api_error(
        services
            .create(&PostParams::default(), &fresh)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    let e = api_error(services.get("web-preview").await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "services \"web-preview\" not found")
    );
    let e = api_error(
        raw_patch(
            &client,
            "/api/v1/namespaces/prod/services/web-preview",
            "application/merge-patch+json",
            &merge_selector(json!("green")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn invalid_services_are_422_with_the_fields_named() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let services = Api::<Service>::namespaced(client.clone(), "prod");
    for (spec, want) in [
        (
            json!({ "selector": { "app": "web" }, "ports": [{ "port": 80 }, { "port": 81 }] }),
            "Service \"bad\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]",
        ),
        (
            json!({ "selector": { "app": "web" }, "ports": [{ "name": "http", "port": 80 }, { "name": "http", "port": 81 }] }),
            "Service \"bad\" is invalid: spec.ports[1].name: Duplicate value: \"http\"",
        ),
        (
            json!({ "selector": { "app": "web" }, "ports": [{ "port": 70000 }] }),
            // targetPort defaults to the port, so it is out of range too.
            "Service \"bad\" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive, \
             spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive]",
        ),
        (
            json!({ "selector": { "version": "blue green" }, "ports": [{ "port": 80 }] }),
            "Service \"bad\" is invalid: spec.selector: Invalid value: \"blue green\": a valid label",
        ),
    ] {
        let body = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "bad" }, "spec": spec });
        let e = api_error(apply(&services, "bad", "promote", &body).await.unwrap_err());
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "{spec}");
        assert!(e.message.starts_with(want), "{}\nwanted: {want}", e.message);
    }
    assert!(fake.get("Service", "prod", "bad").is_none());
}

#[tokio::test]
async fn the_service_proxy_reaches_the_pods_the_service_selects() {
    let (fake, client) = cluster_without_retries().await;
    let blue = TestService::http(vec![("/health", Route::always(Answer::ok("blue")))]);
    let green = TestService::http(vec![("/health", Route::always(Answer::ok("green")))]);
    fake.set_http_backend("prod", "app=web,version=blue", &blue.url(""));
    fake.set_http_backend("prod", "version=green", &green.url(""));
    blue_and_green(&fake, &client).await;
    slices_follow(&fake, "web", "version=blue").await;
    assert_eq!(get_health(&client).await, (200, "blue".to_string()));
    for id in ["web:http", "http:web:80", "http:web:http"] {
        let (code, _, body) = proxied(
            &client,
            "GET",
            &format!("/api/v1/namespaces/prod/services/{id}/proxy/health"),
        )
        .await;
        assert_eq!((code, body.as_str()), (200, "blue"), "{id}");
    }

    // Blue-green: switch the selector, green serves; switch back (a rollback), blue serves.
    let path = "/api/v1/namespaces/prod/services/web";
    raw_patch(
        &client,
        path,
        "application/merge-patch+json",
        &merge_selector(json!("green")),
    )
    .await
    .unwrap();
    slices_follow(&fake, "web", "version=green").await;
    assert_eq!(get_health(&client).await, (200, "green".to_string()));
    raw_patch(
        &client,
        path,
        "application/strategic-merge-patch+json",
        &merge_selector(json!("blue")),
    )
    .await
    .unwrap();
    slices_follow(&fake, "web", "version=blue").await;
    assert_eq!(get_health(&client).await, (200, "blue".to_string()));
    assert_eq!((blue.count("/health"), green.count("/health")), (5, 1));

    // What the pod's server sees: the path under the proxy, no API credentials, the
    // forwarding headers of the API server's transport.
    let seen = blue.seen().pop().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/health")
    );
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.header("x-forwarded-uri"),
        Some("/api/v1/namespaces/prod/services/web:80/proxy/health")
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));

    // A newer registration for one pod wins over the selector's.
    let one = TestService::http(vec![(
        "/health",
        Route::always(Answer::status(503).body("draining")),
    )]);
    let pod = ready_pods(&fake, "prod", "version=blue").remove(0);
    fake.set_pod_http_backend("prod", &pod, &one.url(""));
    let answers: Vec<(u16, String)> = [get_health(&client).await, get_health(&client).await].into();
    assert!(
        answers.contains(&(503, "draining".to_string())),
        "{answers:?}"
    );
    assert!(answers.contains(&(200, "blue".to_string())), "{answers:?}");

    // Without a backend, a pod answers with who it is; requests take turns over the pods.
    fake.clear_http_backends();
    let mut pods = Vec::new();
    for _ in 0..4 {
        let (code, headers, body) = proxied(
            &client,
            "GET",
            "/api/v1/namespaces/prod/services/web:80/proxy/x/../status/?verbose=1",
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(headers["content-type"], "application/json");
        let echo: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echo["labels"]["version"], "blue");
        assert_eq!(
            (echo["path"].as_str(), echo["query"].as_str()),
            (Some("/status/"), Some("verbose=1"))
        );
        assert_eq!(
            (echo["port"].as_i64(), echo["image"].as_str()),
            (Some(8080), Some("example.com/web:blue"))
        );
        pods.push(echo["pod"].as_str().unwrap().to_string());
    }
    pods.sort();
    let blue_pods = ready_pods(&fake, "prod", "version=blue");
    let expected: Vec<String> = blue_pods
        .iter()
        .flat_map(|p| [p.clone(), p.clone()])
        .collect();
    assert_eq!(pods, expected, "round robin over the two blue pods");
}

#[tokio::test]
async fn service_proxy_failures_are_the_api_servers() {
    let (fake, client) = cluster_without_retries().await;
    blue_and_green(&fake, &client).await;
    slices_follow(&fake, "web", "version=blue").await;
    let services = Api::<Service>::namespaced(client.clone(), "prod");
    apply(
        &services,
        "empty",
        "promote",
        &service("empty", json!({ "app": "nothing" })),
    )
    .await
    .unwrap();
    let has_endpoints = fake
        .wait_for_async(PATIENCE, |f| f.get("endpoints", "prod", "empty").is_some())
        .await;
    assert!(has_endpoints);
    let status_of = |body: &str| -> (String, String) {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["kind"], "Status", "{v}");
        (
            v["reason"].as_str().unwrap().into(),
            v["message"].as_str().unwrap().into(),
        )
    };
    for (id, code, reason, message) in [
        (
            "nothing:80",
            404,
            "NotFound",
            "services \"nothing\" not found",
        ),
        (
            "nothing",
            404,
            "NotFound",
            "endpoints \"nothing\" not found",
        ),
        (
            "empty:80",
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"empty\"",
        ),
        (
            "web:81",
            503,
            "ServiceUnavailable",
            "no service port 81 found for service \"web\"",
        ),
        (
            "web:metrics",
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"web:metrics\"",
        ),
        // Without a port only an unnamed Service port matches; `web`'s is named `http`.
        (
            "web",
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"web\"",
        ),
        (
            "ftp:web:21",
            400,
            "BadRequest",
            "invalid service request \"ftp:web:21\"",
        ),
    ] {
        let path = format!("/api/v1/namespaces/prod/services/{id}/proxy/health");
        let (got, _, body) = proxied(&client, "GET", &path).await;
        assert_eq!(got, code, "{id}: {body}");
        assert_eq!(
            status_of(&body),
            (reason.to_string(), message.to_string()),
            "{id}"
        );
    }

    // The proxy root without its slash is redirected to it.
    let (code, headers, _) = proxied(
        &client,
        "GET",
        "/api/v1/namespaces/prod/services/web/proxy?a=1",
    )
    .await;
    assert_eq!(code, 301);
    assert_eq!(
        headers["location"],
        "/api/v1/namespaces/prod/services/web/proxy/?a=1"
    );

    // A pod whose server is gone.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    fake.set_http_backend("prod", "version=blue", &url);
    let (code, body) = get_health(&client).await;
    assert_eq!(code, 503, "{body}");
    let (reason, message) = status_of(&body);
    assert_eq!(reason, "ServiceUnavailable");
    assert!(
        message.starts_with("error trying to reach service: "),
        "{message}"
    );

    // A backend's redirect comes back through the proxy; its status and headers pass.
    let login = TestService::http(vec![(
        "/old",
        Route::always(Answer::redirect("/login").header("x-colour", "blue")),
    )]);
    fake.set_http_backend("prod", "version=blue", &login.url(""));
    let (code, headers, _) = proxied(
        &client,
        "GET",
        "/api/v1/namespaces/prod/services/web:80/proxy/old",
    )
    .await;
    assert_eq!(code, 302);
    assert_eq!(headers["x-colour"], "blue");
    assert_eq!(
        headers["location"],
        format!(
            "{}/api/v1/namespaces/prod/services/web:80/proxy/login",
            fake.url()
        )
        .as_str()
    );

    // The proxy is part of the API: it needs the token, and its requests are recorded.
    let addr = fake.url().trim_start_matches("http://").to_string();
    let anonymous = reqwest::Client::new()
        .get(format!(
            "http://{addr}/api/v1/namespaces/prod/services/web/proxy/health"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let recorded: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/proxy/old"))
        .map(|r| r.status)
        .collect();
    assert_eq!(recorded, [302]);
}

#[tokio::test]
async fn deployments_scale_through_the_scale_subresource() {
    let (fake, client) = cluster().await;
    blue_and_green(&fake, &client).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), "prod");
    let scale = deployments.get_scale("web-green").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.unwrap().selector.as_deref(),
        Some("app=web,version=green")
    );

    // The canary's abort: scale to zero with a merge patch of the subresource.
    let params = PatchParams {
        field_manager: Some("promote".into()),
        ..PatchParams::default()
    };
    let scaled = deployments
        .patch_scale(
            "web-green",
            &params,
            &Patch::Merge(json!({ "spec": { "replicas": 0 } })),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(0));
    let stored = deployments.get("web-green").await.unwrap();
    assert_eq!(stored.spec.as_ref().unwrap().replicas, Some(0));
    assert!(
        stored
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("promote")
                && m.subresource.as_deref() == Some("scale")),
        "{:?}",
        stored.managed_fields()
    );
    let drained = fake
        .wait_for_async(PATIENCE, |f| {
            ready_pods(f, "prod", "version=green").is_empty()
        })
        .await;
    assert!(drained);

    // Back up with a strategic merge patch of the subresource, as kubectl scale does.
    raw_patch(
        &client,
        "/apis/apps/v1/namespaces/prod/deployments/web-green/scale",
        "application/strategic-merge-patch+json",
        &json!({ "spec": { "replicas": 3 } }),
    )
    .await
    .unwrap();
    let back = fake
        .wait_for_async(PATIENCE, |f| {
            ready_pods(f, "prod", "version=green").len() == 3
        })
        .await;
    assert!(back);

    let e = api_error(
        deployments
            .patch_scale(
                "web-green",
                &params,
                &Patch::Merge(json!({ "spec": { "replicas": -1 } })),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "Scale.autoscaling \"web-green\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        )
    );
    let e = api_error(deployments.get_scale("web-canary").await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "deployments.apps \"web-canary\" not found")
    );
}

#[tokio::test]
async fn deleting_a_colour_takes_its_replica_sets_and_pods() {
    let (fake, client) = cluster().await;
    blue_and_green(&fake, &client).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), "prod");
    let owned_by = |f: &FakeKube, version: &str, kind: &str| {
        f.list(kind, Some("prod"))
            .iter()
            .filter(|o| o["metadata"]["labels"]["version"] == version)
            .count()
    };

    // Foreground: the Deployment stays, marked, until its ReplicaSets and pods are gone.
    let marked = deployments
        .delete("web-green", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the Deployment, still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);
    let collected = fake
        .wait_for_async(PATIENCE, |f| {
            f.get("deployments", "prod", "web-green").is_none()
                && owned_by(f, "green", "replicasets") == 0
                && owned_by(f, "green", "pods") == 0
        })
        .await;
    assert!(collected, "{:#?}", fake.list("pods", Some("prod")));
    let e = api_error(
        deployments
            .delete("web-green", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "deployments.apps \"web-green\" not found")
    );

    // Orphan: the ReplicaSet and its pods stay, without the owner reference.
    deployments
        .delete("web-blue", &DeleteParams::orphan())
        .await
        .unwrap();
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), "prod")
        .list(&ListParams::default().labels("version=blue"))
        .await
        .unwrap();
    assert_eq!(rss.items.len(), 1);
    assert!(rss.items[0].owner_references().is_empty());
    assert_eq!(ready_pods(&fake, "prod", "version=blue").len(), 2);
}

fn canary_ingress(weight: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web-canary",
            "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": weight,
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{ "host": "web.example.com", "http": { "paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": "web-canary", "port": { "number": 80 } } },
            }]}}],
        },
    })
}

#[tokio::test]
async fn ingresses_keep_their_annotations() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let ingresses = Api::<Ingress>::namespaced(client.clone(), "prod");
    let created = ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(canary_ingress("10")).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let e = api_error(
        ingresses
            .create(
                &PostParams::default(),
                &serde_json::from_value(canary_ingress("10")).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            409,
            "ingresses.networking.k8s.io \"web-canary\" already exists"
        )
    );

    // A step: the weight changes, the other annotations stay; annotations are not spec.
    let stepped = raw_patch(
        &client,
        "/apis/networking.k8s.io/v1/namespaces/prod/ingresses/web-canary",
        "application/merge-patch+json",
        &json!({ "metadata": { "annotations": { "nginx.ingress.kubernetes.io/canary-weight": "25" } } }),
    )
    .await
    .unwrap();
    assert_eq!(
        stepped["metadata"]["annotations"],
        json!({ "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "25" })
    );
    assert_eq!(stepped["metadata"]["generation"], 1);
    assert_ne!(
        stepped["metadata"]["resourceVersion"].as_str(),
        created.resource_version().as_deref()
    );
    // The patch's manager owns the weight now: applying it is a conflict unless forced.
    let e = api_error(
        apply(&ingresses, "web-canary", "promote", &canary_ingress("50"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409, "{}", e.message);
    let applied = ingresses
        .patch(
            "web-canary",
            &PatchParams::apply("promote").force(),
            &Patch::Apply(canary_ingress("50")),
        )
        .await
        .unwrap();
    assert_eq!(
        applied.annotations()["nginx.ingress.kubernetes.io/canary-weight"],
        "50"
    );

    // An unquoted weight is not a string: the server cannot decode it.
    let mut number = canary_ingress("0");
    number["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = json!(100);
    let e = api_error(
        apply(&ingresses, "web-canary", "promote", &number)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            400,
            "Ingress in version \"v1\" cannot be handled as a Ingress: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string"
        )
    );
    // A path without its type (checked first, alone), one without a port.
    let mut invalid = canary_ingress("0");
    invalid["metadata"]["name"] = json!("other");
    let paths = &mut invalid["spec"]["rules"][0]["http"]["paths"];
    let mut portless = paths[0].clone();
    portless["backend"]["service"]["port"] = json!({});
    paths[0].as_object_mut().unwrap().remove("pathType");
    paths[0]["backend"]["service"]["port"] = json!({});
    paths.as_array_mut().unwrap().push(portless);
    let e = api_error(
        apply(&ingresses, "other", "promote", &invalid)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "Ingress.networking.k8s.io \"other\" is invalid: [spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified, spec.rules[0].http.paths[1].backend.service.port: Required value: port name or number is required]"
        )
    );

    ingresses
        .delete("web-canary", &DeleteParams::default())
        .await
        .unwrap();
    let e = api_error(ingresses.get("web-canary").await.unwrap_err());
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn discovery_lists_services_endpoint_slices_and_ingresses() {
    let (_fake, client) = cluster().await;
    let legacy = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let aggregated = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    for (group, version, kind, plural) in [
        ("", "v1", "Service", "services"),
        ("", "v1", "Endpoints", "endpoints"),
        ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        ("apps", "v1", "Deployment", "deployments"),
    ] {
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        for discovery in [&legacy, &aggregated] {
            let (ar, caps) = discovery
                .resolve_gvk(&gvk)
                .unwrap_or_else(|| panic!("{kind}"));
            assert_eq!(ar.plural, plural);
            assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        }
    }
    let core: Value = client
        .request(http::Request::get("/api/v1").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let proxy = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "services/proxy")
        .expect("services/proxy is listed");
    assert_eq!(proxy["kind"], "ServiceProxyOptions");
    assert!(proxy["verbs"].as_array().unwrap().contains(&json!("get")));
}
