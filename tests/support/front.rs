//! One small HTTP server that plays everything in front of the real registry, each part
//! checking requests the way the real server does (protocols.md §3, §4):
//!
//! - the distribution token server (`GET /token`): Basic users, requested scopes, RS256 JWTs
//!   the registry verifies (`x5c` rooted in its bundle);
//! - ACR (`POST /oauth2/exchange`, `POST|GET /oauth2/token`) for the registry it fronts;
//! - Microsoft Entra (`POST /{tenant}/oauth2/v2.0/token`) with the AADSTS errors of the classic
//!   failures, and GitHub's OIDC token service (`GET /oidc/token`), which mints a new ID token
//!   per call; Entra refuses an ID token it has seen before;
//! - a reverse proxy to the registry for everything else (`/v2/…`), with scripted faults:
//!   status codes, 429 + Retry-After, connections reset in the middle of a body, slow answers.
//!
//! Routes on `(method, path segments)` like cargo's test registry; records what it received.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

use super::keys::{SigningKey, unsigned_jwt};

pub type Body = BoxBody<Bytes, std::io::Error>;

pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
pub const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Who may do what: `(user, repository, action) -> allowed`.
pub type Policy = Arc<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

/// The Entra app registration and GitHub job the doubles expect.
#[derive(Clone)]
pub struct AzureSetup {
    pub tenant: String,
    pub client_id: String,
    /// The subject the app's federated credential accepts.
    pub federated_subject: String,
    /// The subject GitHub puts in the ID tokens of this job.
    pub job_subject: String,
    /// The bearer token for the OIDC service (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
    pub request_token: String,
    /// A service principal secret Entra accepts instead of an assertion.
    pub client_secret: String,
    /// Seconds GitHub's ID tokens live; negative mints tokens that are already expired.
    pub id_token_lifetime: i64,
}

impl AzureSetup {
    pub fn new() -> AzureSetup {
        AzureSetup {
            tenant: "72f988bf-0000-4000-8000-2d7cd011db47".into(),
            client_id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
            federated_subject: "repo:studysphere/app:environment:production".into(),
            job_subject: "repo:studysphere/app:environment:production".into(),
            request_token: format!("oidc-request-{}", random_hex()),
            client_secret: format!("sp-secret-{}", random_hex()),
            id_token_lifetime: 300,
        }
    }
}

/// A scripted fault for proxied requests matching `method` and a path containing `path`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path: &'static str,
    /// How many matching requests get it.
    pub times: usize,
    pub kind: FaultKind,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    Status(u16),
    TooManyRequests {
        retry_after: u64,
    },
    /// Read this many bytes of the request body, then drop the connection (the registry never
    /// sees the request).
    ResetRequestBody {
        after: usize,
    },
    /// Forward this many bytes of the request body to the registry, then break both
    /// connections: the registry keeps a partial chunk.
    ForwardPartialRequestBody {
        after: usize,
    },
    /// Forward a mount request as a plain upload request: the registry answers 202 with an
    /// upload session, as registries that decline a mount do.
    DeclineMount,
    /// Forward, then cut the response body after this many bytes.
    ResetResponseBody {
        after: usize,
    },
    /// Wait before forwarding.
    Delay(Duration),
}

/// A request as received, for assertions.
#[derive(Debug, Clone)]
pub struct Record {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
}

impl Record {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct FrontConfig {
    /// The registry to proxy `/v2/` to (`127.0.0.1:port`).
    pub upstream: Option<String>,
    /// The token service name the registry is configured with.
    pub service: String,
    pub issuer: String,
    /// Basic users of the distribution token server; empty = anonymous allowed.
    pub users: Vec<(String, String)>,
    pub policy: Policy,
    pub azure: Option<AzureSetup>,
}

pub struct State {
    pub addr: String,
    pub config: FrontConfig,
    pub key: SigningKey,
    pub records: Mutex<Vec<Record>>,
    pub faults: Mutex<Vec<Fault>>,
    seen_id_tokens: Mutex<HashSet<String>>,
    /// Every token and secret this double handed out, to check none is ever printed.
    pub issued: Mutex<Vec<String>>,
    entra_tokens: Mutex<HashSet<String>>,
    refresh_tokens: Mutex<HashSet<String>>,
    http: reqwest::Client,
}

pub struct Front {
    pub addr: String,
    pub state: Arc<State>,
}

impl Front {
    /// Binds a free port (so its address can go into the registry's config before the registry
    /// starts) and serves on a thread of its own until the test process ends.
    pub fn bind() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    pub fn serve(listener: std::net::TcpListener, config: FrontConfig, key: SigningKey) -> Front {
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            addr: addr.clone(),
            config,
            key,
            records: Mutex::default(),
            faults: Mutex::default(),
            seen_id_tokens: Mutex::default(),
            issued: Mutex::default(),
            entra_tokens: Mutex::default(),
            refresh_tokens: Mutex::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
        });
        listener.set_nonblocking(true).unwrap();
        let shared = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let service =
                            hyper::service::service_fn(move |req| handle(state.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            });
        });
        Front { addr, state }
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push(fault);
    }

    pub fn records(&self, path_start: &str) -> Vec<Record> {
        self.state
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path_start))
            .cloned()
            .collect()
    }
}

pub fn allow_all() -> Policy {
    Arc::new(|_, _, _| true)
}

pub fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .unwrap()
}

fn json(status: u16, value: serde_json::Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

/// An Entra error body, as Entra writes them.
fn aadsts(status: u16, error: &str, code: u64, text: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000 Correlation ID: 0000 Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [code],
        }),
    )
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn basic_user(header: Option<&str>) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = header?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = parse_form(req.uri().query().unwrap_or(""));
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_proxy = segments.first() == Some(&"v2");
    let (req, form) = if is_proxy {
        (Some(req), Vec::new())
    } else {
        let body = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        (None, parse_form(&String::from_utf8_lossy(&body)))
    };
    let record = Record {
        method: method.clone(),
        path: path.clone(),
        query,
        form,
        authorization,
    };
    state.records.lock().unwrap().push(record.clone());
    let response = match (method.as_str(), segments.as_slice()) {
        ("GET", ["token"]) => distribution_token(&state, &record),
        ("POST", ["oauth2", "exchange"]) => acr_exchange(&state, &record),
        ("POST", ["oauth2", "token"]) => acr_token(&state, &record),
        ("GET", ["oauth2", "token"]) => distribution_token(&state, &record),
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => entra(&state, tenant, &record),
        ("GET", ["oidc", "token"]) => oidc(&state, &record),
        _ if is_proxy => return proxy(&state, req.expect("kept"), &record).await,
        _ => full(404, "text/plain", "no such route in the test double"),
    };
    Ok(response)
}

/// Grants what the policy allows of each requested `repository:name:actions` scope.
fn grant(state: &State, user: &str, scopes: &[&str]) -> Vec<serde_json::Value> {
    let mut access = Vec::new();
    for scope in scopes {
        for one in scope.split(' ') {
            let mut parts = one.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let allowed: Vec<&str> = actions
                .split(',')
                .filter(|a| (state.config.policy)(user, name, a))
                .collect();
            access.push(serde_json::json!({ "type": kind, "name": name, "actions": allowed }));
        }
    }
    access
}

fn registry_jwt(state: &State, user: &str, access: Vec<serde_json::Value>) -> String {
    let now = now();
    state.key.jwt(&serde_json::json!({
        "iss": state.config.issuer,
        "sub": user,
        "aud": state.config.service,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": random_hex(),
        "access": access,
    }))
}

/// distribution's token server: `GET /token?service=…&scope=…`, optional Basic.
fn distribution_token(state: &State, r: &Record) -> Response<Body> {
    if r.param("service") != Some(state.config.service.as_str()) {
        return json(
            400,
            serde_json::json!({"details": "wrong or missing service"}),
        );
    }
    let user = match basic_user(r.authorization.as_deref()) {
        Some((u, p))
            if state
                .config
                .users
                .iter()
                .any(|(uu, pp)| *uu == u && *pp == p) =>
        {
            u
        }
        Some(_) => {
            return json(
                401,
                serde_json::json!({"details": "incorrect username or password"}),
            );
        }
        None if state.config.users.is_empty() => String::new(),
        None => {
            return json(
                401,
                serde_json::json!({"details": "authentication required"}),
            );
        }
    };
    let access = grant(state, &user, &r.params("scope"));
    let token = registry_jwt(state, &user, access);
    state.issued.lock().unwrap().push(token.clone());
    json(
        200,
        serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 }),
    )
}

/// ACR: Entra access token → refresh token.
fn acr_exchange(state: &State, r: &Record) -> Response<Body> {
    let Some(azure) = &state.config.azure else {
        return full(404, "text/plain", "not an ACR");
    };
    let ok = r.param("grant_type") == Some("access_token")
        && r.param("service")
            .is_some_and(|s| s == state.addr || s == state.addr.replace("127.0.0.1", "localhost"))
        && r.param("tenant") == Some(azure.tenant.as_str());
    if !ok {
        return json(
            400,
            serde_json::json!({"errors": [{"code": "UNSUPPORTED", "message": "bad exchange form"}]}),
        );
    }
    let known = r
        .param("access_token")
        .is_some_and(|t| state.entra_tokens.lock().unwrap().contains(t));
    if !known {
        return json(
            401,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid Entra token"}]}),
        );
    }
    let refresh = format!("acr-refresh-{}", random_hex());
    state.refresh_tokens.lock().unwrap().insert(refresh.clone());
    state.issued.lock().unwrap().push(refresh.clone());
    json(200, serde_json::json!({ "refresh_token": refresh }))
}

/// ACR: refresh token + scopes → registry access token.
fn acr_token(state: &State, r: &Record) -> Response<Body> {
    let known = r
        .param("refresh_token")
        .is_some_and(|t| state.refresh_tokens.lock().unwrap().contains(t));
    if r.param("grant_type") != Some("refresh_token")
        || r.param("service") != Some(state.config.service.as_str())
    {
        return json(
            400,
            serde_json::json!({"errors": [{"code": "UNSUPPORTED", "message": "bad token form"}]}),
        );
    }
    if !known {
        return json(
            401,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]}),
        );
    }
    let access = grant(state, "entra-identity", &r.params("scope"));
    let token = registry_jwt(state, "entra-identity", access);
    state.issued.lock().unwrap().push(token.clone());
    json(200, serde_json::json!({ "access_token": token }))
}

/// Microsoft Entra's token endpoint for the client-credentials grant.
fn entra(state: &State, tenant: &str, r: &Record) -> Response<Body> {
    let Some(azure) = &state.config.azure else {
        return full(404, "text/plain", "no Entra here");
    };
    if tenant != azure.tenant {
        return aadsts(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if r.param("client_id") != Some(azure.client_id.as_str()) {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            "Application with identifier was not found in the directory.",
        );
    }
    if r.param("grant_type") != Some("client_credentials") || r.param("scope") != Some(ACR_SCOPE) {
        return aadsts(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type' or a valid 'scope'.",
        );
    }
    match (
        r.param("client_secret"),
        r.param("client_assertion_type"),
        r.param("client_assertion"),
    ) {
        (Some(secret), None, None) => {
            if secret != azure.client_secret {
                return aadsts(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided.",
                );
            }
        }
        (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(assertion)) => {
            let claims = promote_action::registry::jwt_claims(assertion).unwrap_or_default();
            let text = |k: &str| {
                claims
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            if text("iss") != OIDC_ISSUER || text("aud") != AUDIENCE {
                return aadsts(
                    400,
                    "invalid_client",
                    700212,
                    "No matching federated identity record found for presented assertion audience.",
                );
            }
            if claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0) <= now() {
                return aadsts(
                    400,
                    "invalid_client",
                    700024,
                    "Client assertion is not within its valid time range.",
                );
            }
            if text("sub") != azure.federated_subject {
                return aadsts(
                    400,
                    "invalid_client",
                    70021,
                    "No matching federated identity record found for presented assertion.",
                );
            }
            if !state.seen_id_tokens.lock().unwrap().insert(text("jti")) {
                return aadsts(
                    400,
                    "invalid_client",
                    700025,
                    "The client assertion was already used (a fresh GitHub ID token is required).",
                );
            }
        }
        _ => {
            return aadsts(
                400,
                "invalid_request",
                900144,
                "The request body must contain client_secret or client_assertion.",
            );
        }
    }
    let token = format!("entra-access-{}", random_hex());
    state.entra_tokens.lock().unwrap().insert(token.clone());
    state.issued.lock().unwrap().push(token.clone());
    json(
        200,
        serde_json::json!({ "token_type": "Bearer", "expires_in": 3599, "access_token": token }),
    )
}

/// GitHub's OIDC token service: a new ID token per request.
fn oidc(state: &State, r: &Record) -> Response<Body> {
    let Some(azure) = &state.config.azure else {
        return full(404, "text/plain", "no OIDC here");
    };
    if r.authorization.as_deref() != Some(format!("Bearer {}", azure.request_token).as_str()) {
        return json(401, serde_json::json!({"message": "Bad credentials"}));
    }
    let Some(audience) = r.param("audience") else {
        return json(400, serde_json::json!({"message": "audience required"}));
    };
    let now = now();
    let token = unsigned_jwt(&serde_json::json!({
        "iss": OIDC_ISSUER,
        "sub": azure.job_subject,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + azure.id_token_lifetime,
        "jti": random_hex(),
    }));
    state.issued.lock().unwrap().push(token.clone());
    json(200, serde_json::json!({ "count": 1, "value": token }))
}

fn take_fault(state: &State, method: &str, path: &str, content_length: u64) -> Option<FaultKind> {
    let mut faults = state.faults.lock().unwrap();
    let fault = faults.iter_mut().find(|f| {
        f.times > 0
            && f.method == method
            && path.contains(f.path)
            && match f.kind {
                FaultKind::ResetRequestBody { after }
                | FaultKind::ForwardPartialRequestBody { after } => content_length > after as u64,
                _ => true,
            }
    })?;
    fault.times -= 1;
    Some(fault.kind.clone())
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn proxy(
    state: &State,
    req: Request<Incoming>,
    record: &Record,
) -> Result<Response<Body>, std::io::Error> {
    let Some(upstream) = &state.config.upstream else {
        return Ok(full(404, "text/plain", "no registry behind this double"));
    };
    let content_length = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fault = take_fault(state, &record.method, &record.path, content_length);
    match &fault {
        Some(FaultKind::Status(code)) => {
            return Ok(json(
                *code,
                serde_json::json!({"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}),
            ));
        }
        Some(FaultKind::TooManyRequests { retry_after }) => {
            let mut r = json(
                429,
                serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}),
            );
            r.headers_mut()
                .insert("retry-after", retry_after.to_string().parse().unwrap());
            return Ok(r);
        }
        Some(FaultKind::ResetRequestBody { after }) => {
            let mut body = BodyStream::new(req.into_body());
            let mut read = 0usize;
            while let Some(frame) = body.next().await {
                if let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() {
                    read += data.len();
                }
                if read >= *after {
                    break;
                }
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ));
        }
        Some(FaultKind::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let uri = match fault {
        Some(FaultKind::DeclineMount) => format!("http://{upstream}{}", req.uri().path()),
        _ => format!(
            "http://{upstream}{}",
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        ),
    };
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
    }
    let limit = match fault {
        Some(FaultKind::ForwardPartialRequestBody { after }) => Some(after),
        _ => None,
    };
    let mut forwarded = 0usize;
    let body = BodyStream::new(req.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            if let Some(after) = limit
                && forwarded + chunk.len() > after
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                ));
            }
            forwarded += chunk.len();
            Ok(chunk)
        });
    let upstream_response = state
        .http
        .request(method, &uri)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(upstream_response.status().as_u16()).unwrap());
    for (name, value) in upstream_response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let cut = match fault {
        Some(FaultKind::ResetResponseBody { after }) => Some(after),
        _ => None,
    };
    let mut sent = 0usize;
    let stream = upstream_response
        .bytes_stream()
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            if let Some(after) = cut
                && sent + chunk.len() > after
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                ));
            }
            sent += chunk.len();
            Ok(Frame::data(chunk))
        });
    Ok(response
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap())
}
