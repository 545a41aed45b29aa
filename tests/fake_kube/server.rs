//! The HTTP face: hyper on 127.0.0.1, bearer-token authentication, injected faults, the
//! request log, and routing on (method, path segments) to the verbs of the Kubernetes REST API:
//! get, list, watch, create, update, patch (apply, JSON, merge, strategic), delete,
//! deletecollection, the `status` and `scale` subresources, pod logs, the service proxy and
//! discovery.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_rustls::TlsAcceptor;

use super::fields::{self, Part};
use super::kubelet::{self, LogOpts};
use super::object;
use super::proxy::{self, ProxyRequest};
use super::registry::{self, DeleteOpts, Ownership, Propagation, WriteOpts};
use super::resources::{self as r, ResourceType, TYPES};
use super::selectors::{FieldSelector, LabelSelector};
use super::state::{Shared, State};
use super::status::ApiError;
use super::store::WatchFilter;
use super::{Fault, RecordedRequest, WatchDrop};

/// A response body: all at once, or streamed (watches, followed logs) until the sender goes.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// What a handler answers.
enum Reply {
    Json(u16, Value),
    /// Aggregated discovery, which clients recognise by its content type.
    Discovery(Value),
    Text(u16, String),
    Stream(&'static str, mpsc::UnboundedReceiver<Bytes>),
    /// A service proxy request to send on once the state is unlocked.
    Forward(proxy::Forward),
    /// An answer through the service proxy, or the proxy's own redirect.
    Proxied(proxy::Answer),
    /// Close the connection without answering (an injected fault).
    Drop,
}

/// Accepts connections (TLS ones when an acceptor is given) until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop_accept = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Go's listeners set TCP_NODELAY, so watch events leave at once (not after
                // a delayed ACK).
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let tls = tls.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let builder = http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            tokio::select! {
                                _ = conn => {}
                                _ = stop.changed() => {}
                            }
                        }
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            tokio::select! {
                                _ = conn => {}
                                _ = stop.changed() => {}
                            }
                        }
                    }
                });
            }
            _ = stop_accept.changed() => return,
        }
    }
}

/// The parts of a request the handlers look at.
struct Req {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// The query as sent, without `?`.
    raw_query: String,
    content_type: String,
    accept: String,
    user_agent: String,
    /// Every header, for what the service proxy passes on.
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Req {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }
}

/// Answers one request: from a connection, or from [`InProcess`] without one.
pub async fn handle<B>(
    shared: Arc<Shared>,
    req: Request<B>,
) -> Result<Response<Body>, std::io::Error>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, accept, user_agent, authorization) = (
        header("content-type"),
        header("accept"),
        header("user-agent"),
        header("authorization"),
    );
    let headers = req.headers().clone();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let r = Req {
        method,
        path,
        query: parse_query(&raw_query),
        raw_query: raw_query.clone(),
        content_type,
        accept,
        user_agent,
        headers,
        body,
    };
    let mut warning = None;
    let (reply, write, index) = {
        let mut st = shared.lock();
        let index = st.requests.len();
        st.requests.push(RecordedRequest {
            method: r.method.clone(),
            path: r.path.clone(),
            query: raw_query,
            content_type: (!r.content_type.is_empty()).then(|| r.content_type.clone()),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            user_agent: (!r.user_agent.is_empty()).then(|| r.user_agent.clone()),
            status: 0,
        });
        let public = matches!(r.path.as_str(), "/healthz" | "/livez" | "/readyz");
        let reply = if !public && authorization != format!("Bearer {}", st.knobs.token) {
            Err(ApiError::unauthorized())
        } else if let Some(fault) = take_fault(&mut st, &r) {
            match fault {
                Fault::TooManyRequests { retry_after, .. } => {
                    Err(ApiError::too_many_requests(retry_after))
                }
                Fault::InternalError { .. } => {
                    Err(ApiError::internal("etcdserver: request timed out"))
                }
                Fault::Status {
                    code,
                    reason,
                    message,
                    ..
                } => Err(ApiError::new(code, &reason, message, Value::Null)),
                Fault::DropConnection { .. } => Ok(Reply::Drop),
            }
        } else {
            route(&shared, &mut st, &r, &mut warning)
        };
        let code = match &reply {
            Ok(Reply::Json(c, _) | Reply::Text(c, _)) => *c,
            Ok(Reply::Proxied(a)) => a.status,
            Ok(Reply::Stream(..) | Reply::Discovery(_) | Reply::Forward(_)) => 200,
            Ok(Reply::Drop) => 0,
            Err(e) => e.code,
        };
        st.requests[index].status = code;
        (reply, r.method != "GET", index)
    };
    if write {
        shared.wake.notify_one();
    }
    let reply = match reply {
        Ok(Reply::Forward(forward)) => {
            let answer = proxy::send(&shared, forward, &r.method, &r.headers, r.body.clone()).await;
            let code = answer.as_ref().map_or_else(|e| e.code, |a| a.status);
            shared.lock().requests[index].status = code;
            answer.map(Reply::Proxied)
        }
        other => other,
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            let mut resp = json_response(e.code, &e.status);
            if let Some(after) = e.retry_after {
                resp.headers_mut()
                    .insert("retry-after", after.to_string().parse().expect("digits"));
            }
            if e.code == 401 {
                resp.headers_mut().insert(
                    "www-authenticate",
                    "Bearer realm=\"fake-kube\"".parse().expect("ascii"),
                );
            }
            return Ok(resp);
        }
    };
    let mut resp = match reply {
        Reply::Json(code, v) => json_response(code, &v),
        Reply::Discovery(v) => {
            let mut resp = json_response(200, &v);
            resp.headers_mut()
                .insert("content-type", r::AGGREGATED.parse().expect("ascii"));
            resp
        }
        Reply::Text(code, text) => {
            let mut resp = Response::new(Body::Full(Some(Bytes::from(text))));
            *resp.status_mut() = hyper::StatusCode::from_u16(code).expect("valid code");
            resp.headers_mut()
                .insert("content-type", "text/plain".parse().expect("ascii"));
            resp
        }
        Reply::Stream(content_type, rx) => {
            let mut resp = Response::new(Body::Stream(rx));
            resp.headers_mut()
                .insert("content-type", content_type.parse().expect("ascii"));
            resp
        }
        Reply::Proxied(answer) => {
            let mut resp = Response::new(Body::Full(Some(answer.body)));
            *resp.status_mut() = hyper::StatusCode::from_u16(answer.status)
                .unwrap_or(hyper::StatusCode::BAD_GATEWAY);
            for (name, value) in answer.headers {
                resp.headers_mut().append(name, value);
            }
            resp
        }
        Reply::Forward(_) => unreachable!("forwarded above"),
        Reply::Drop => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault injected: connection dropped",
            ));
        }
    };
    if let Some(w) = warning {
        let text = format!("299 - \"{w}\"");
        if let Ok(v) = text.parse() {
            resp.headers_mut().insert("warning", v);
        }
    }
    Ok(resp)
}

/// The server as a tower service in the caller's runtime, for a `kube::Client` without a
/// socket (see `FakeKube::in_process_client`): the request gets the server's token and goes
/// to [`handle`] as a connection's would.
#[derive(Clone)]
pub struct InProcess(pub Arc<Shared>);

impl tower::Service<Request<kube::client::Body>> for InProcess {
    type Response = Response<Body>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<kube::client::Body>) -> Self::Future {
        let token = self.0.lock().knobs.token.clone();
        if let Ok(value) = format!("Bearer {token}").parse() {
            req.headers_mut()
                .insert(hyper::header::AUTHORIZATION, value);
        }
        let shared = self.0.clone();
        // Read the body first: kube's body is not `Sync`, and `handle` borrows its request.
        let (parts, body) = req.into_parts();
        Box::pin(async move {
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let req = Request::from_parts(parts, http_body_util::Full::new(bytes));
            handle(shared, req).await
        })
    }
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Full(Some(Bytes::from(v.to_string()))));
    *resp.status_mut() = hyper::StatusCode::from_u16(code).expect("valid code");
    resp.headers_mut()
        .insert("content-type", "application/json".parse().expect("ascii"));
    resp.headers_mut()
        .insert("cache-control", "no-cache, private".parse().expect("ascii"));
    resp
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first fault matching the request that still fires; spends one of its times.
fn take_fault(st: &mut State, r: &Req) -> Option<Fault> {
    let line = format!("{} {}", r.method, r.path);
    let slot = st.knobs.faults.iter_mut().find(|(f, left)| {
        let prefix = f.path_prefix();
        *left > 0
            && if prefix.starts_with('/') || prefix.is_empty() {
                r.path.starts_with(prefix)
            } else {
                line.starts_with(prefix)
            }
    })?;
    slot.1 -= 1;
    Some(slot.0.clone())
}

fn route(
    shared: &Arc<Shared>,
    st: &mut State,
    r: &Req,
    warning: &mut Option<String>,
) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let aggregated = r.accept.contains("as=APIGroupDiscoveryList");
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["healthz" | "livez" | "readyz"]) => Ok(Reply::Text(200, "ok".into())),
        ("GET", ["version"]) => Ok(Reply::Json(200, version())),
        ("GET", ["api"]) if aggregated => Ok(Reply::Discovery(r::aggregated(true))),
        ("GET", ["api"]) => Ok(Reply::Json(
            200,
            r::api_versions(&format!("127.0.0.1:{}", shared.port)),
        )),
        ("GET", ["apis"]) if aggregated => Ok(Reply::Discovery(r::aggregated(false))),
        ("GET", ["apis"]) => Ok(Reply::Json(200, r::api_group_list())),
        ("GET", ["api", "v1"]) => r::api_resource_list("", "v1")
            .map(|v| Reply::Json(200, v))
            .ok_or_else(ApiError::route_not_found),
        ("GET", ["apis", group, version]) => r::api_resource_list(group, version)
            .map(|v| Reply::Json(200, v))
            .ok_or_else(ApiError::route_not_found),
        (
            method,
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "services",
                id,
                "proxy",
                rest @ ..,
            ],
        ) => service_proxy(st, r, method, ns, id, rest),
        (_, ["api", "v1", rest @ ..]) => resource(shared, st, r, "", "v1", rest, warning),
        (_, ["apis", group, version, rest @ ..]) => {
            resource(shared, st, r, group, version, rest, warning)
        }
        _ => Err(ApiError::route_not_found()),
    }
}

/// `services/{id}/proxy/...`: resolved now, sent once the state is unlocked. A GET or HEAD of
/// the proxy root without its slash is redirected to it first (`proxyRedirectsforRootPath`).
fn service_proxy(
    st: &mut State,
    r: &Req,
    method: &str,
    ns: &str,
    id: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    if !proxy::METHODS.contains(&method) {
        return Err(ApiError::method_not_allowed(method));
    }
    let trailing_slash = r.path.ends_with('/');
    if rest.is_empty() && !trailing_slash && (method == "GET" || method == "HEAD") {
        let query = if r.raw_query.is_empty() {
            String::new()
        } else {
            format!("?{}", r.raw_query)
        };
        let location = format!("{}/{query}", r.path);
        return Ok(Reply::Proxied(proxy::Answer {
            status: 301,
            headers: vec![(
                hyper::header::LOCATION,
                location
                    .parse()
                    .map_err(|_| ApiError::bad_request("invalid path"))?,
            )],
            body: Bytes::new(),
        }));
    }
    let req = ProxyRequest {
        ns,
        id,
        rest,
        trailing_slash,
        query: &r.raw_query,
        method,
    };
    match proxy::resolve(st, &req)? {
        proxy::Plan::Forward(forward) => Ok(Reply::Forward(forward)),
        proxy::Plan::Echo(v) => Ok(Reply::Json(200, v)),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Where a resource request points.
struct Target<'a> {
    rt: usize,
    t: &'static ResourceType,
    ns: &'a str,
    sub: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)] // the route's pieces, passed through once
fn resource(
    shared: &Arc<Shared>,
    st: &mut State,
    r: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
    warning: &mut Option<String>,
) -> Result<Reply, ApiError> {
    let (plural, ns, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if *plural != "status" && *plural != "finalize" => {
            (*plural, *ns, tail.first().copied(), tail.get(1).copied())
        }
        [plural, tail @ ..] => (*plural, "", tail.first().copied(), tail.get(1).copied()),
        [] => return Err(ApiError::route_not_found()),
    };
    let rt = r::by_path(group, version, plural).ok_or_else(ApiError::route_not_found)?;
    let t = &TYPES[rt];
    if (t.namespaced && ns.is_empty() && name.is_some()) || (!t.namespaced && !ns.is_empty()) {
        return Err(ApiError::route_not_found());
    }
    let allowed_sub = match sub {
        None => true,
        Some("status") => t.status_subresource,
        Some("scale") => t.scale_subresource,
        Some("log") => rt == r::PODS,
        Some(_) => false,
    };
    if !allowed_sub || rest.len() > if t.namespaced { 5 } else { 3 } {
        return Err(ApiError::route_not_found());
    }
    let target = Target { rt, t, ns, sub };
    match (r.method.as_str(), name, sub) {
        ("GET", None, _) if r.flag("watch") => watch(shared, st, r, &target),
        ("GET", None, _) => list(st, r, &target),
        ("GET", Some(name), Some("log")) => logs(shared, st, r, ns, name),
        ("GET", Some(name), Some("scale")) => {
            let o = get_existing(st, &target, name)?;
            Ok(Reply::Json(200, scale_of(&o)))
        }
        ("GET", Some(name), _) => Ok(Reply::Json(200, get_existing(st, &target, name)?)),
        ("POST", None, None) => create(st, r, &target),
        ("PUT", Some(name), _) => replace(st, r, &target, name),
        ("PATCH", Some(name), _) => patch(st, r, &target, name),
        ("DELETE", Some(name), None) => delete(st, r, &target, name, warning),
        ("DELETE", None, None) => delete_collection(st, r, &target, warning),
        (method, ..) => Err(ApiError::method_not_allowed(method)),
    }
}

fn get_existing(st: &State, target: &Target<'_>, name: &str) -> Result<Value, ApiError> {
    st.store
        .get(target.rt, target.ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(target.t, name))
}

fn selectors(r: &Req, t: &ResourceType) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(r.param("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(r.param("fieldSelector").unwrap_or_default(), t)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(st: &State, r: &Req, target: &Target<'_>) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(r, target.t)?;
    let ns = (!target.ns.is_empty()).then_some(target.ns);
    let mut items: Vec<Value> = st
        .store
        .list_refs(target.rt, ns)
        .into_iter()
        .filter(|o| labels.matches(&object::labels(o)) && fields.matches(o))
        .cloned()
        .collect();
    for o in &mut items {
        if let Some(m) = o.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
    }
    let rv = st.store.resource_version().to_string();
    let start: usize = match r.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').and_then(|(_, i)| i.parse().ok()))
            .ok_or_else(|| {
                ApiError::bad_request("continue key is not valid: illegal base64 data")
            })?,
        None => 0,
    };
    let mut metadata = json!({ "resourceVersion": rv });
    let items: Vec<Value> = items.into_iter().skip(start).collect();
    let limit = r
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let items = match limit {
        Some(limit) if items.len() > limit => {
            let remaining = items.len() - limit;
            let token = format!("{rv}:{}", start + limit);
            metadata["continue"] = json!(base64::engine::general_purpose::STANDARD.encode(token));
            metadata["remainingItemCount"] = json!(remaining);
            items.into_iter().take(limit).collect()
        }
        _ => items,
    };
    Ok(Reply::Json(
        200,
        json!({
            "kind": format!("{}List", target.t.kind),
            "apiVersion": target.t.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    ))
}

fn watch(
    shared: &Arc<Shared>,
    st: &mut State,
    r: &Req,
    target: &Target<'_>,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(r, target.t)?;
    let initial_events = r.flag("sendInitialEvents");
    let from = match r.param("resourceVersion") {
        None | Some("" | "0") => None,
        Some(_) if initial_events => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let filter = WatchFilter {
        rt: target.rt,
        namespace: (!target.ns.is_empty()).then(|| target.ns.to_string()),
        labels,
        fields,
    };
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (body_tx, body_rx) = mpsc::unbounded_channel::<Bytes>();
    if let Err(e) = st.store.watch(filter, from, events_tx.clone()) {
        // The watch cache answers a compacted version with an ERROR event, not an HTTP error.
        let line = json!({ "type": "ERROR", "object": e.status });
        let _ = body_tx.send(Bytes::from(format!("{line}\n")));
        return Ok(Reply::Stream("application/json", body_rx));
    }
    let bookmark = |rv: u64, end_of_initial: bool| {
        let mut o = json!({
            "kind": target.t.kind,
            "apiVersion": target.t.api_version(),
            "metadata": { "resourceVersion": rv.to_string(), "creationTimestamp": null },
        });
        if end_of_initial {
            o["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        o
    };
    let bookmarks = r.flag("allowWatchBookmarks");
    if initial_events {
        let _ = events_tx.send(("BOOKMARK", bookmark(st.store.resource_version(), true)));
    }
    drop(events_tx);
    let timeout = r
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let stream = WatchStream {
        shared: shared.clone(),
        kind: target.t.kind,
        api_version: target.t.api_version(),
        bookmarks,
        timeout,
        drop: st.knobs.watch_drop,
        bookmark_interval: st.knobs.bookmark_interval,
    };
    tokio::spawn(stream.forward(events_rx, body_tx));
    Ok(Reply::Stream("application/json", body_rx))
}

/// Copies one watch's events to its response until the timeout, a scripted drop, or the
/// client going away; adds bookmarks when asked for.
struct WatchStream {
    shared: Arc<Shared>,
    kind: &'static str,
    api_version: String,
    bookmarks: bool,
    timeout: Duration,
    drop: Option<WatchDrop>,
    bookmark_interval: Duration,
}

impl WatchStream {
    async fn forward(
        self,
        mut events: mpsc::UnboundedReceiver<(&'static str, Value)>,
        body: UnboundedSender<Bytes>,
    ) {
        let started = Instant::now();
        let mut end = started + self.timeout;
        if let Some(WatchDrop::After(d)) = self.drop {
            end = end.min(started + d);
        }
        let max_events = match self.drop {
            Some(WatchDrop::AfterEvents(n)) => n,
            _ => usize::MAX,
        };
        let mut sent = 0;
        let mut ticker = tokio::time::interval(self.bookmark_interval);
        ticker.tick().await;
        loop {
            if sent >= max_events {
                return;
            }
            tokio::select! {
                event = events.recv() => {
                    let Some((kind, object)) = event else { return };
                    let line = json!({ "type": kind, "object": object });
                    if body.send(Bytes::from(format!("{line}\n"))).is_err() {
                        return;
                    }
                    if kind != "BOOKMARK" {
                        sent += 1;
                    }
                }
                () = tokio::time::sleep_until(end.into()) => return,
                _ = ticker.tick(), if self.bookmarks => {
                    let rv = self.shared.lock().store.resource_version();
                    let line = json!({ "type": "BOOKMARK", "object": {
                        "kind": self.kind,
                        "apiVersion": self.api_version,
                        "metadata": { "resourceVersion": rv.to_string(), "creationTimestamp": null },
                    }});
                    if body.send(Bytes::from(format!("{line}\n"))).is_err() {
                        return;
                    }
                }
                () = body.closed() => return,
            }
        }
    }
}

fn parse_body(r: &Req) -> Result<Value, ApiError> {
    serde_json::from_slice(&r.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn dry_run(r: &Req) -> Result<bool, ApiError> {
    match r.param("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun value: {other}; supported values: \"All\""
        ))),
    }
}

/// `fieldManager`, or the User-Agent up to its first `/` like `prefixFromUserAgent`.
fn manager(r: &Req) -> String {
    match r.param("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => r
            .user_agent
            .split('/')
            .next()
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect(),
    }
}

/// The checks every write body goes through: a JSON object of this kind, in this namespace,
/// with this name.
fn check_body(body: &Value, target: &Target<'_>, name: Option<&str>) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let t = target.t;
    if let Some(kind) = body["kind"].as_str()
        && kind != t.kind
        && target.sub != Some("scale")
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            t.kind
        )));
    }
    if let Some(v) = body["apiVersion"].as_str()
        && v != t.api_version()
        && target.sub != Some("scale")
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            t.api_version()
        )));
    }
    decodes_as_strings(body, t)?;
    let body_ns = object::namespace(body);
    if t.namespaced && !body_ns.is_empty() && body_ns != target.ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(name) = name {
        let body_name = object::name(body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(())
}

/// Labels and annotations are `map[string]string`: a number or boolean there (an unquoted
/// `canary-weight: 10` in YAML) fails decoding with Go's words, before any validation.
fn decodes_as_strings(body: &Value, t: &ResourceType) -> Result<(), ApiError> {
    for field in ["labels", "annotations"] {
        for v in body["metadata"][field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
        {
            let json_type = match v {
                Value::Null | Value::String(_) => continue,
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot \
                 unmarshal {json_type} into Go struct field ObjectMeta.metadata.{field} of type string",
                kind = t.kind,
                version = t.version,
            )));
        }
    }
    Ok(())
}

fn create(st: &mut State, r: &Req, target: &Target<'_>) -> Result<Reply, ApiError> {
    let body = parse_body(r)?;
    check_body(&body, target, None)?;
    let opts = WriteOpts::client(&manager(r), dry_run(r)?);
    let created = registry::create(st, target.rt, target.ns, body, &opts)?;
    Ok(Reply::Json(201, created))
}

fn part_for(target: &Target<'_>) -> Part {
    match target.sub {
        Some("status") => Part::Status,
        _ => registry::main_part(target.rt),
    }
}

/// The autoscaling/v1 Scale view of a workload.
fn scale_of(o: &Value) -> Value {
    let selector = LabelSelector::from_object(&o["spec"]["selector"]).to_text();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object::name(o),
            "namespace": object::namespace(o),
            "uid": object::uid(o),
            "resourceVersion": object::resource_version(o),
            "creationTimestamp": o["metadata"]["creationTimestamp"],
        },
        "spec": { "replicas": object::int(&o["spec"]["replicas"], 1) },
        "status": { "replicas": object::int(&o["status"]["replicas"], 0), "selector": selector },
    })
}

/// Writes `replicas` from a Scale object to its workload.
fn write_scale(
    st: &mut State,
    r: &Req,
    target: &Target<'_>,
    old: &Value,
    scale: &Value,
) -> Result<Reply, ApiError> {
    let rv = object::resource_version(scale);
    if !rv.is_empty() && rv != object::resource_version(old) {
        return Err(ApiError::conflict(target.t, object::name(old)));
    }
    // `ValidateScale`, worded for the Scale object rather than its workload.
    let replicas = &scale["spec"]["replicas"];
    if !replicas.is_null() && replicas.as_i64().is_none_or(|n| n < 0) {
        let name = object::name(old);
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: \
                 must be greater than or equal to 0"
            ),
            json!({ "name": name, "group": "autoscaling", "kind": "Scale", "causes": [{
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                "field": "spec.replicas",
            }]}),
        ));
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = scale["spec"]["replicas"].clone();
    let manager = manager(r);
    let out = registry::update(
        st,
        target.rt,
        old,
        new,
        Part::Main,
        Ownership::Record {
            manager: &manager,
            subresource: Some("scale"),
        },
        &WriteOpts::client(&manager, dry_run(r)?),
    )?;
    Ok(Reply::Json(200, scale_of(&out)))
}

fn replace(st: &mut State, r: &Req, target: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    let body = parse_body(r)?;
    check_body(&body, target, Some(name))?;
    let old = get_existing(st, target, name)?;
    if target.sub == Some("scale") {
        return write_scale(st, r, target, &old, &body);
    }
    let rv = object::resource_version(&body);
    if !rv.is_empty() && rv != object::resource_version(&old) {
        return Err(ApiError::conflict(target.t, name));
    }
    let manager = manager(r);
    let out = registry::update(
        st,
        target.rt,
        &old,
        body,
        part_for(target),
        Ownership::Record {
            manager: &manager,
            subresource: target.sub,
        },
        &WriteOpts::client(&manager, dry_run(r)?),
    )?;
    Ok(Reply::Json(200, out))
}

fn patch(st: &mut State, r: &Req, target: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    let media = r.content_type.split(';').next().unwrap_or_default().trim();
    let manager = manager(r);
    let opts = WriteOpts::client(&manager, dry_run(r)?);
    if media == "application/apply-patch+yaml" || media == "application/apply-patch+cbor" {
        if r.param("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                Value::Null,
            ));
        }
        let text = String::from_utf8_lossy(&r.body);
        let config: Value = serde_saphyr::from_str(&text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if target.sub == Some("scale") {
            let old = get_existing(st, target, name)?;
            return write_scale(st, r, target, &old, &config);
        }
        check_body(&config, target, Some(name))?;
        if config["apiVersion"].as_str().is_none_or(str::is_empty)
            || config["kind"].as_str().is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                text.trim()
            )));
        }
        if let Some(old) = st.store.get(target.rt, target.ns, name) {
            let rv = object::resource_version(&config);
            if !rv.is_empty() && rv != object::resource_version(old) {
                return Err(ApiError::conflict(target.t, name));
            }
        }
        let force = r.flag("force");
        let (code, out) = registry::apply(
            st,
            target.rt,
            target.ns,
            name,
            config,
            force,
            part_for(target),
            &opts,
        )?;
        return Ok(Reply::Json(code, out));
    }
    let patch_doc = parse_body(r)?;
    let old = get_existing(st, target, name)?;
    let base = if target.sub == Some("scale") {
        scale_of(&old)
    } else {
        old.clone()
    };
    let patched = match media {
        "application/json-patch+json" => {
            fields::json_patch(&base, &patch_doc).map_err(ApiError::unprocessable)?
        }
        "application/merge-patch+json" => fields::merge_patch(&base, &patch_doc),
        "application/strategic-merge-patch+json" => {
            fields::strategic_merge_patch(&base, &patch_doc, "")
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if target.sub == Some("scale") {
        return write_scale(st, r, target, &old, &patched);
    }
    let rv = object::resource_version(&patched);
    if rv != object::resource_version(&old) {
        return Err(ApiError::conflict(target.t, name));
    }
    check_body(&patched, target, Some(name))?;
    let out = registry::update(
        st,
        target.rt,
        &old,
        patched,
        part_for(target),
        Ownership::Record {
            manager: &manager,
            subresource: target.sub,
        },
        &opts,
    )?;
    Ok(Reply::Json(200, out))
}

fn delete_options(r: &Req) -> Result<DeleteOpts, ApiError> {
    let body: Value = if r.body.is_empty() {
        Value::Null
    } else {
        parse_body(r)?
    };
    let policy = r
        .param("propagationPolicy")
        .map(str::to_string)
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
    let propagation = match policy {
        Some(p) => Some(Propagation::parse(&p).ok_or_else(|| {
            ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))
        })?),
        None => match body["orphanDependents"].as_bool().or_else(|| {
            r.param("orphanDependents").map(|v| v == "true")
        }) {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        },
    };
    let dry = dry_run(r)?
        || body["dryRun"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("All")));
    Ok(DeleteOpts {
        propagation,
        grace_seconds: r
            .param("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| body["gracePeriodSeconds"].as_i64()),
        dry_run: dry,
        precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        precondition_rv: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    })
}

fn delete(
    st: &mut State,
    r: &Req,
    target: &Target<'_>,
    name: &str,
    warning: &mut Option<String>,
) -> Result<Reply, ApiError> {
    let opts = delete_options(r)?;
    let deleted = registry::delete(st, target.rt, target.ns, name, &opts)?;
    *warning = deleted.warning;
    Ok(Reply::Json(200, deleted.body))
}

fn delete_collection(
    st: &mut State,
    r: &Req,
    target: &Target<'_>,
    warning: &mut Option<String>,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(r, target.t)?;
    let opts = delete_options(r)?;
    let ns = (!target.ns.is_empty()).then_some(target.ns);
    let victims: Vec<Value> = st
        .store
        .list_refs(target.rt, ns)
        .into_iter()
        .filter(|o| labels.matches(&object::labels(o)) && fields.matches(o))
        .cloned()
        .collect();
    let mut items = Vec::new();
    for v in victims {
        if let Ok(d) = registry::delete(
            st,
            target.rt,
            object::namespace(&v),
            object::name(&v),
            &opts,
        ) {
            if d.warning.is_some() {
                *warning = d.warning;
            }
            let mut item = if d.body["kind"] == "Status" {
                v
            } else {
                d.body
            };
            if let Some(m) = item.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(item);
        }
    }
    Ok(Reply::Json(
        200,
        json!({
            "kind": format!("{}List", target.t.kind),
            "apiVersion": target.t.api_version(),
            "metadata": { "resourceVersion": st.store.resource_version().to_string() },
            "items": items,
        }),
    ))
}

fn logs(
    shared: &Arc<Shared>,
    st: &State,
    r: &Req,
    ns: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let opts = LogOpts {
        container: r.param("container").map(str::to_string),
        previous: r.flag("previous"),
        tail_lines: r.param("tailLines").and_then(|t| t.parse().ok()),
        limit_bytes: r.param("limitBytes").and_then(|t| t.parse().ok()),
        timestamps: r.flag("timestamps"),
    };
    let (text, running) = kubelet::log(st, ns, name, &opts)?;
    if !r.flag("follow") {
        return Ok(Reply::Text(200, text));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(Bytes::from(text));
    if running {
        let (shared, ns, name) = (shared.clone(), ns.to_string(), name.to_string());
        tokio::spawn(async move {
            // A followed log ends when its container stops or the pod goes.
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if tx.is_closed() {
                    return;
                }
                let still = {
                    let st = shared.lock();
                    kubelet::log(&st, &ns, &name, &opts).is_ok_and(|(_, running)| running)
                };
                if !still {
                    return;
                }
            }
        });
    }
    Ok(Reply::Stream("text/plain", rx))
}
