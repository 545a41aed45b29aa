//! Smoke checks in private clusters: requests go to the Kubernetes API server's service proxy,
//! `/api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/{path}`, through the same `kube::Client`
//! (and so the same credentials and TLS) the deploy uses. No ingress, no port-forward.
//!
//! # Caveats
//! The API server adds its own latency and answers some failures itself (503 "no endpoints
//! available for service" while no pod is ready); those count as the service's answers. Only
//! plain HTTP services are proxied (the `https:` scheme prefix is not used). The identity needs
//! RBAC `get` on `services/proxy` in the namespace.

use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::smoke::Request;
use crate::config::Service;

/// Requests through the service proxy of one service port.
#[derive(Clone)]
pub struct ServiceProxy {
    client: kube::Client,
    /// `/api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/path?query`.
    path: String,
}

/// The API server path that proxies `path` (which may carry a query) to port `port` (a number
/// or a port name) of Kubernetes Service `service` in `namespace`; without a port the
/// Service's first port is used.
pub fn proxy_path(namespace: &str, service: &str, port: Option<&str>, path: &str) -> String {
    let target = match port {
        Some(port) => format!("{service}:{port}"),
        None => service.to_string(),
    };
    let path = path.trim_start_matches('/');
    format!("/api/v1/namespaces/{namespace}/services/{target}/proxy/{path}")
}

/// The Kubernetes Service and the port of it that reach `service`'s pods on its `port`.
///
/// promotion.yml's `port` is the container's, while the proxy addresses a *Service* port (an
/// API server answers 503 for `web:8080` when the Service maps 80 → 8080). So: the Service in
/// the manifests that selects the Deployment's pods (the one named like the service when
/// several do), and of its ports the one whose `targetPort` is `port` (by number, or by the
/// name of the container port), else the one whose `port` is, else the first. Without such a
/// Service: the service's name and `port` as written.
pub fn proxy_target(service: &Service) -> (String, Option<String>) {
    let fronting = service.fronting_services();
    let Some(svc) = fronting
        .iter()
        .find(|m| m.name() == service.name)
        .or_else(|| fronting.first())
    else {
        return (service.name.clone(), service.port.map(|p| p.to_string()));
    };
    let ports = svc.object["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let container_port_name = |name: &str| -> Option<u64> {
        let containers =
            service.deployment_manifest()?.object["spec"]["template"]["spec"]["containers"]
                .as_array()?
                .clone();
        containers
            .iter()
            .filter(|c| c["name"] == service.container.as_str())
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
    };
    let targets = |p: &serde_json::Value, want: u64| match &p["targetPort"] {
        serde_json::Value::Number(n) => n.as_u64() == Some(want),
        serde_json::Value::String(name) => container_port_name(name) == Some(want),
        // No targetPort: it is the port itself.
        _ => p["port"].as_u64() == Some(want),
    };
    let chosen = match service.port.map(u64::from) {
        Some(want) => ports
            .iter()
            .find(|p| targets(p, want))
            .or_else(|| ports.iter().find(|p| p["port"].as_u64() == Some(want))),
        None => None,
    }
    .or(ports.first());
    let port = chosen
        .and_then(|p| p["port"].as_u64())
        .map(|p| p.to_string())
        .or_else(|| service.port.map(|p| p.to_string()));
    (svc.name().to_string(), port)
}

impl ServiceProxy {
    pub fn new(client: kube::Client, path: String) -> ServiceProxy {
        ServiceProxy { client, path }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Sends one request and reads the whole answer; any status is an answer.
    pub(crate) async fn send(&self, request: &Request) -> Result<(u16, Bytes), String> {
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&self.path);
        for (name, value) in &request.headers {
            builder = builder.header(name, value.clone());
        }
        let http_request = builder
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| format!("building the proxy request: {e}"))?;
        let response = self
            .client
            .send(http_request)
            .await
            .map_err(|e| format!("the API server's service proxy failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer through the service proxy: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths() {
        let cases: &[(&str, Option<&str>, &str, &str)] = &[
            (
                "auth-service",
                Some("3001"),
                "/api/auth/health",
                "/api/v1/namespaces/testing/services/auth-service:3001/proxy/api/auth/health",
            ),
            (
                "web",
                None,
                "/",
                "/api/v1/namespaces/testing/services/web/proxy/",
            ),
            (
                "web",
                Some("http"),
                "health?verbose=1",
                "/api/v1/namespaces/testing/services/web:http/proxy/health?verbose=1",
            ),
        ];
        for (service, port, path, want) in cases {
            assert_eq!(proxy_path("testing", service, *port, path), *want);
        }
    }

    fn service(port: Option<u16>, manifests: &[serde_json::Value]) -> Service {
        use crate::config::yaml::Pos;
        use crate::config::{Manifest, Positions};
        Service {
            name: "web".into(),
            image: "shop/web".into(),
            manifests_dir: "web".into(),
            manifests: manifests
                .iter()
                .map(|object| Manifest {
                    file: "web/objects.yaml".into(),
                    line: 1,
                    name_pos: Pos::default(),
                    object: object.clone(),
                })
                .collect(),
            deployment: "web".into(),
            container: "web".into(),
            port,
            health_path: None,
            pos: Pos::default(),
            positions: Positions::default(),
        }
    }

    fn deployment() -> serde_json::Value {
        serde_json::json!({
            "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "ports": [{ "name": "app", "containerPort": 8080 }] }] },
            } },
        })
    }

    fn kube_service(name: &str, ports: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "kind": "Service", "metadata": { "name": name },
            "spec": { "selector": { "app": "web" }, "ports": ports },
        })
    }

    #[test]
    fn the_proxy_addresses_the_service_port_that_reaches_the_container_port() {
        let target = |port, manifests: &[serde_json::Value]| {
            let (name, port) = proxy_target(&service(port, manifests));
            (name, port.unwrap_or_default())
        };
        let owned = |n: &str, p: &str| (n.to_string(), p.to_string());
        // 80 → 8080: the Service port, not the container's.
        let mapped = kube_service(
            "web-svc",
            serde_json::json!([{ "port": 80, "targetPort": 8080 }]),
        );
        assert_eq!(
            target(Some(8080), &[deployment(), mapped]),
            owned("web-svc", "80")
        );
        // A named targetPort is resolved through the container's ports.
        let named = kube_service(
            "web",
            serde_json::json!([{ "port": 9090, "name": "metrics", "targetPort": 9090 },
                               { "port": 80, "targetPort": "app" }]),
        );
        assert_eq!(
            target(Some(8080), &[deployment(), named]),
            owned("web", "80")
        );
        // `port` naming a Service port rather than a container port still works.
        let plain = kube_service("web", serde_json::json!([{ "port": 3001 }]));
        assert_eq!(
            target(Some(3001), &[deployment(), plain.clone()]),
            owned("web", "3001")
        );
        // No `port`: the Service's first port.
        assert_eq!(target(None, &[deployment(), plain]), owned("web", "3001"));
        // No Service among the manifests: as written.
        assert_eq!(target(Some(3001), &[deployment()]), owned("web", "3001"));
    }
}
