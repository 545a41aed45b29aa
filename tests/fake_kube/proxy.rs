//! The service proxy, `/api/v1/namespaces/{ns}/services/{id}/proxy/{path}` with `id` one of
//! `name`, `name:port` and `scheme:name:port` (`https:web:8443`), resolved the way the real
//! service registry's `ResourceLocation` does: a numeric port names a Service port, the
//! Service's Endpoints give the ready addresses with that port, and a missing piece is the same
//! Status (404 for a missing Service or Endpoints, 503 `no endpoints available for service
//! "x"`). The real server picks an address at random; this one takes turns (round robin), so a
//! test can count which pods answered.
//!
//! Fake pods are not processes: the request goes to the HTTP server a test registered for the
//! pod (by label selector or name, newest registration first:
//! [`super::FakeKube::set_http_backend`]), whose address stands for every port of the pod,
//! with the request's method, path, query, headers (less `Authorization`, which the API server
//! consumes, and hop-by-hop headers; plus the `X-Forwarded-*` headers of its proxy transport)
//! and body. Its status, headers and body are the answer; a redirect's `Location` is rewritten
//! to go through the proxy again, like the real transport's; a backend that cannot be reached
//! is 503 `error trying to reach service: …`. With no backend registered for the pod the
//! answer is 200 with a small JSON body naming the pod, its image and labels, so a test can see
//! which pods a Service reaches without running a server.

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::object;
use super::resources::{self as r, TYPES};
use super::state::{Shared, State};
use super::status::ApiError;

/// Headers that concern one connection, which a proxy never passes on (RFC 9110 §7.6.1, the
/// list `httputil.ReverseProxy` removes).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Methods the proxy subresource serves.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// What a resolved proxy request does.
pub enum Plan {
    /// Send it to the pod's registered backend.
    Forward(Forward),
    /// No backend for the pod: answer this in its name.
    Echo(Value),
}

pub struct Forward {
    /// `scheme://host:port/path?query` at the backend.
    url: String,
    /// `host:port` of the backend, for recognising its own redirects.
    backend: String,
    /// `/api/v1/namespaces/{ns}/services/{id}/proxy`.
    prefix: String,
    /// The path under the prefix, as forwarded.
    path: String,
}

/// `SplitSchemeNamePort`: `name`, `name:port` or `scheme:name:port` with scheme `http`,
/// `https` or empty.
fn split_id(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && ["", "http", "https"].contains(&scheme)).then_some((scheme, name, port))
}

/// `path.Join("/", rest...)`: `.` and empty segments dropped, `..` climbing; a trailing `/`
/// of the request is kept, as the real proxy keeps it.
fn clean_path(rest: &[&str], trailing_slash: bool) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in rest {
        match *seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if trailing_slash && !path.ends_with('/') {
        path.push('/');
    }
    path
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", message, Value::Null)
}

/// A service proxy request as it arrived: `/api/v1/namespaces/{ns}/services/{id}/proxy/{rest}`.
pub struct ProxyRequest<'a> {
    pub ns: &'a str,
    pub id: &'a str,
    /// The path segments after `proxy`.
    pub rest: &'a [&'a str],
    pub trailing_slash: bool,
    /// The raw query, without `?`.
    pub query: &'a str,
    pub method: &'a str,
}

/// Resolves a proxy request to a pod and what to do with it.
///
/// # Errors
/// 400 for an unparsable `id`; 404 when the Service (numeric port) or its Endpoints do not
/// exist; 503 when the Service has no such port or no ready address has it.
pub fn resolve(st: &mut State, req: &ProxyRequest<'_>) -> Result<Plan, ApiError> {
    let (ns, id) = (req.ns, req.id);
    let (scheme, name, port) = split_id(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request \"{id}\"")))?;
    let mut port_name = port.to_string();
    if let Ok(number) = port.parse::<i64>() {
        let svc = st
            .store
            .get(r::SERVICES, ns, name)
            .ok_or_else(|| ApiError::not_found(&TYPES[r::SERVICES], name))?;
        let declared = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_i64() == Some(number))
            .ok_or_else(|| {
                unavailable(format!(
                    "no service port {number} found for service \"{name}\""
                ))
            })?;
        port_name = declared["name"].as_str().unwrap_or_default().to_string();
    }
    let endpoints = st
        .store
        .get(r::ENDPOINTS, ns, name)
        .ok_or_else(|| ApiError::not_found(&TYPES[r::ENDPOINTS], name))?;
    let subsets = endpoints["subsets"].as_array().cloned().unwrap_or_default();
    if subsets.is_empty() {
        return Err(unavailable(format!(
            "no endpoints available for service \"{name}\""
        )));
    }
    // Every (pod, port) the request could go to; only addresses that are pods with that IP
    // (`isValidAddress`).
    let mut candidates: Vec<(String, i64)> = Vec::new();
    for ss in &subsets {
        for p in ss["ports"].as_array().into_iter().flatten() {
            if p["name"].as_str().unwrap_or_default() != port_name {
                continue;
            }
            for addr in ss["addresses"].as_array().into_iter().flatten() {
                let pod_name = addr["targetRef"]["name"].as_str().unwrap_or_default();
                let is_pod = addr["targetRef"]["kind"] == "Pod"
                    && st
                        .store
                        .get(r::PODS, ns, pod_name)
                        .is_some_and(|pod| pod["status"]["podIP"] == addr["ip"]);
                if is_pod {
                    candidates.push((pod_name.to_string(), object::int(&p["port"], 0)));
                }
            }
        }
    }
    if candidates.is_empty() {
        return Err(unavailable(format!(
            "no endpoints available for service \"{id}\""
        )));
    }
    let turn = st.proxy_turns.entry(format!("{ns}/{id}")).or_default();
    let (pod_name, target_port) = candidates[*turn % candidates.len()].clone();
    *turn += 1;
    let pod = st
        .store
        .get(r::PODS, ns, &pod_name)
        .cloned()
        .unwrap_or(Value::Null);
    let path = clean_path(req.rest, req.trailing_slash);
    let backend = st
        .knobs
        .backends
        .iter()
        .rev()
        .find(|b| b.serves(&pod))
        .map(|b| b.url.clone());
    let Some(backend) = backend else {
        let image = serving_image(&pod, target_port);
        return Ok(Plan::Echo(json!({
            "pod": pod_name,
            "namespace": ns,
            "image": image,
            "labels": pod["metadata"]["labels"],
            "port": target_port,
            "method": req.method,
            "path": path,
            "query": req.query,
        })));
    };
    let origin = reqwest::Url::parse(&backend)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(format!("{host}:{}", u.port_or_known_default()?))
        })
        .unwrap_or(backend);
    let scheme = if scheme == "https" { "https" } else { "http" };
    let query_part = if req.query.is_empty() {
        String::new()
    } else {
        format!("?{}", req.query)
    };
    Ok(Plan::Forward(Forward {
        url: format!("{scheme}://{origin}{path}{query_part}"),
        backend: origin,
        prefix: format!("/api/v1/namespaces/{ns}/services/{id}/proxy"),
        path,
    }))
}

/// The image of the container that declares `port` (else the first container's).
fn serving_image(pod: &Value, port: i64) -> String {
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    containers
        .iter()
        .find(|c| {
            c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["containerPort"].as_i64() == Some(port))
        })
        .or_else(|| containers.first())
        .and_then(|c| c["image"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The proxied answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// The client requests are forwarded with: one per server (its connections belong to the
/// server's runtime), made on first use. Pods' certificates are not verified, as the API
/// server's proxy transport does not verify them.
fn client(shared: &Shared) -> &reqwest::Client {
    shared.http.get_or_init(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(true)
            .build()
            .expect("the service proxy's HTTP client builds")
    })
}

/// Sends `forward` to the backend and reads its whole answer.
///
/// # Errors
/// 503 `error trying to reach service: …` when the backend does not answer.
pub async fn send(
    shared: &Shared,
    forward: Forward,
    method: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let api_scheme = if shared.tls { "https" } else { "http" };
    let api_host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| format!("127.0.0.1:{}", shared.port), str::to_string);
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| ApiError::method_not_allowed(method))?;
    let mut request = client(shared).request(method, &forward.url);
    let mut forwarded_for = None;
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || n == "authorization" || n.starts_with("x-forwarded-") {
            if n == "x-forwarded-for" {
                forwarded_for = value.to_str().ok().map(str::to_string);
            }
            continue;
        }
        request = request.header(name, value);
    }
    let forwarded_for = match forwarded_for {
        Some(earlier) => format!("{earlier}, 127.0.0.1"),
        None => "127.0.0.1".to_string(),
    };
    let answer = request
        .header("x-forwarded-for", forwarded_for)
        .header(
            "x-forwarded-uri",
            format!("{}{}", forward.prefix, forward.path),
        )
        .header("x-forwarded-host", api_host.as_str())
        .header("x-forwarded-proto", api_scheme)
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable(format!("error trying to reach service: {}", chain(&e))))?;
    let status = answer.status().as_u16();
    let mut out_headers = Vec::new();
    for (name, value) in answer.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) || name == "content-length" {
            continue;
        }
        let value = if name == "location" {
            let location = value.to_str().unwrap_or_default();
            let rewritten = rewrite_location(location, &forward, api_scheme, &api_host);
            HeaderValue::from_str(&rewritten).unwrap_or_else(|_| value.clone())
        } else {
            value.clone()
        };
        out_headers.push((name.clone(), value));
    }
    let body = answer
        .bytes()
        .await
        .map_err(|e| unavailable(format!("error trying to reach service: {}", chain(&e))))?;
    Ok(Answer {
        status,
        headers: out_headers,
        body,
    })
}

/// An error and its causes on one line, as Go prints a wrapped error.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The real transport's `rewriteURL`: a redirect to an absolute path, or to the backend or
/// API server host, goes back through the proxy; relative and foreign ones pass unchanged.
fn rewrite_location(location: &str, f: &Forward, api_scheme: &str, api_host: &str) -> String {
    let (host, rest) =
        if let Some(path) = location.strip_prefix('/').filter(|p| !p.starts_with('/')) {
            (None, format!("/{path}"))
        } else if let Some((_, after)) = location.split_once("://") {
            let (host, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
            (Some(host), rest.to_string())
        } else {
            return location.to_string();
        };
    if host.is_some_and(|h| h != f.backend && h != api_host) {
        return location.to_string();
    }
    let rest = if rest.is_empty() {
        "/".to_string()
    } else {
        rest
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), format!("?{q}")),
        None => (rest.clone(), String::new()),
    };
    let path = if path.starts_with(&f.prefix) {
        path
    } else {
        let segments: Vec<&str> = path.split('/').collect();
        format!("{}{}", f.prefix, clean_path(&segments, path.ends_with('/')))
    };
    format!("{api_scheme}://{api_host}{path}{query}")
}

#[test]
fn ids_split_like_split_scheme_name_port() {
    assert_eq!(split_id("web"), Some(("", "web", "")));
    assert_eq!(split_id("web:8080"), Some(("", "web", "8080")));
    assert_eq!(split_id("web:http"), Some(("", "web", "http")));
    assert_eq!(split_id("https:web:8443"), Some(("https", "web", "8443")));
    assert_eq!(split_id("ftp:web:21"), None);
    assert_eq!(split_id(":8080"), None);
    assert_eq!(split_id("a:b:c:d"), None);
}

#[test]
fn paths_are_cleaned_keeping_a_trailing_slash() {
    assert_eq!(clean_path(&[], false), "/");
    assert_eq!(clean_path(&["health"], false), "/health");
    assert_eq!(clean_path(&["a", "", ".", "b", ".."], true), "/a/");
    assert_eq!(clean_path(&["api", "v1"], true), "/api/v1/");
}
