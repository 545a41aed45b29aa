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

/// Requests through the service proxy of one service port.
#[derive(Clone)]
pub struct ServiceProxy {
    client: kube::Client,
    /// `/api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/path?query`.
    path: String,
}

/// The API server path that proxies `path` (which may carry a query) to port `port` of service
/// `service` in `namespace`; without a port the service's first port is used.
pub fn proxy_path(namespace: &str, service: &str, port: Option<u16>, path: &str) -> String {
    let target = match port {
        Some(port) => format!("{service}:{port}"),
        None => service.to_string(),
    };
    let path = path.trim_start_matches('/');
    format!("/api/v1/namespaces/{namespace}/services/{target}/proxy/{path}")
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
        let cases: &[(&str, Option<u16>, &str, &str)] = &[
            (
                "auth-service",
                Some(3001),
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
                Some(80),
                "health?verbose=1",
                "/api/v1/namespaces/testing/services/web:80/proxy/health?verbose=1",
            ),
        ];
        for (service, port, path, want) in cases {
            assert_eq!(proxy_path("testing", service, *port, path), *want);
        }
    }
}
