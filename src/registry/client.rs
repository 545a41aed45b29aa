//! One registry, one set of scopes: the distribution API calls the transfer engine needs
//! (protocols.md §4), signed in once and retried where that is safe.
//!
//! Registries on the loopback interface (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken to in
//! plain `http`, like Docker's default insecure-registry rule; every other registry in `https`.

use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;

use super::auth::{self, Challenge, Credentials, Token};
use super::error::Error;
use super::image::{MANIFEST_TYPES, sha256};
use super::reference::Digest;
use super::retry::RetryPolicy;
use crate::actions::Console;

/// `http` for a registry on the loopback interface, `https` for any other.
pub fn scheme_for(registry: &str) -> &'static str {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { "http" } else { "https" }
}

/// The HTTP client every registry and Azure call shares: rustls with aws-lc-rs, the system's
/// roots, and an identifying User-Agent. No overall timeout: a 1 GiB layer takes as long as it
/// takes; a stalled connection is caught by the read timeout.
pub fn http_client() -> reqwest::Client {
    builder().build().expect("the TLS backend initialises")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("promote-action/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(300))
}

/// The HTTP clients of one run: a plain one for `http://` URLs (loopback registries, which
/// need no trust roots), and the TLS one, built on first use, because loading the system's trust
/// roots costs more than a whole warm push on loopback.
///
/// # Caveats
/// A plain-`http` registry that redirects to `https` storage fails: the plain client has no roots.
#[derive(Debug, Clone)]
pub struct Http {
    plain: reqwest::Client,
    tls: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            plain: builder()
                .tls_certs_only(Vec::new())
                .build()
                .expect("the TLS backend initialises"),
            tls: std::sync::Arc::default(),
        }
    }

    /// The client for `url`: plain for `http://`, TLS otherwise.
    pub fn for_url(&self, url: &str) -> &reqwest::Client {
        if url.starts_with("http://") {
            &self.plain
        } else {
            self.tls.get_or_init(http_client)
        }
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.for_url(url).request(method, url)
    }

    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }
}

#[derive(Debug)]
enum AuthState {
    /// Not asked yet: the first call pings `/v2/`.
    Unknown,
    Anonymous,
    Basic(String),
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<Token>,
    },
}

/// The answer to a mount request.
#[derive(Debug, PartialEq, Eq)]
pub enum Mount {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry did not mount it and opened an upload session instead.
    Upload(String),
}

pub struct Client {
    http: Http,
    registry: String,
    base: String,
    credentials: Credentials,
    scopes: Vec<String>,
    console: Console,
    pub retry: RetryPolicy,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}, {:?})", self.registry, self.scopes)
    }
}

impl Client {
    /// A client for `registry` (host and port, no scheme). `scopes` are requested together in
    /// one token, e.g. `repository:team/web:pull,push` and `repository:team/base:pull` to mount
    /// from `team/base`.
    pub fn new(
        http: Http,
        registry: &str,
        credentials: Credentials,
        scopes: Vec<String>,
        console: Console,
        retry: RetryPolicy,
    ) -> Client {
        Client {
            http,
            base: format!("{}://{registry}", scheme_for(registry)),
            registry: registry.to_string(),
            credentials,
            scopes,
            console,
            retry,
            auth: Mutex::new(AuthState::Unknown),
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `repository:{name}:{actions}`.
    pub fn scope(repository: &str, actions: &str) -> String {
        format!("repository:{repository}:{actions}")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An upload `Location` made absolute: it may be relative or absolute, and is otherwise
    /// used verbatim (protocols.md §4).
    fn location_url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// The `Authorization` header for the next request: signs in on first use, refreshes a
    /// bearer token that is about to expire.
    async fn authorization(&self, force_refresh: bool) -> Result<Option<String>, Error> {
        let mut state = self.auth.lock().await;
        if matches!(*state, AuthState::Unknown) {
            *state = self.ping().await?;
        }
        match &mut *state {
            AuthState::Unknown | AuthState::Anonymous => Ok(None),
            AuthState::Basic(header) => Ok(Some(header.clone())),
            AuthState::Bearer {
                realm,
                service,
                token,
            } => {
                let fresh = token
                    .as_ref()
                    .is_some_and(|t| !force_refresh && SystemTime::now() < t.refresh_at);
                if !fresh {
                    let new = self
                        .retry
                        .run("requesting a registry token", || {
                            auth::fetch_token(
                                &self.http,
                                &self.console,
                                &self.credentials,
                                realm,
                                service.as_deref(),
                                &self.scopes,
                            )
                        })
                        .await?;
                    if let Some(granted) = &new.granted
                        && let Some(missing) = auth::missing_scope(&self.scopes, granted)
                    {
                        return Err(Error::Denied {
                            scope: missing,
                            detail: format!(
                                "the token server at {realm} granted less than was asked; the identity lacks this permission (on ACR: the AcrPush role to push, AcrPull to read, or a scope map allowing it)"
                            ),
                        });
                    }
                    *token = Some(new);
                }
                Ok(token
                    .as_ref()
                    .map(|t| format!("Bearer {}", t.value.expose())))
            }
        }
    }

    /// `GET /v2/` without credentials, to learn how this registry wants to be signed in to.
    async fn ping(&self) -> Result<AuthState, Error> {
        let url = self.url("/v2/");
        let response = self
            .retry
            .run("contacting the registry", || async {
                let response =
                    self.http
                        .get(&url)
                        .send()
                        .await
                        .map_err(|source| Error::Connection {
                            url: url.clone(),
                            source,
                        })?;
                let status = response.status();
                if status.is_success() || status == StatusCode::UNAUTHORIZED {
                    Ok(response)
                } else {
                    Err(Error::from_response(response, "the registry API (/v2/)").await)
                }
            })
            .await?;
        if response.status().is_success() {
            return Ok(AuthState::Anonymous);
        }
        let header = auth::challenge_text(response.headers());
        let basic = |username: &str, password: &str| {
            AuthState::Basic(auth::basic_header(username, password))
        };
        match (Challenge::parse(&header), &self.credentials) {
            (Some(Challenge::Bearer { realm, service, .. }), _) => Ok(AuthState::Bearer {
                realm,
                service,
                token: None,
            }),
            (Some(Challenge::Basic), Credentials::Basic { username, password }) => {
                Ok(basic(username, password.expose()))
            }
            (Some(Challenge::Basic), Credentials::RefreshToken(token)) => {
                Ok(basic(auth::REFRESH_TOKEN_USERNAME, token.expose()))
            }
            _ => Err(Error::Unauthorized {
                status: StatusCode::UNAUTHORIZED,
                challenge: header,
                detail: "the registry needs credentials and none were given (registry-username and registry-password, or azure-client-id and azure-tenant-id)".into(),
            }),
        }
    }

    /// Sends one request built by `build` with the current credentials. A 401 refreshes the
    /// token once and sends a rebuilt request; any other status is returned as it is.
    async fn send<F, Fut>(&self, url: &str, build: F) -> Result<Response, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, Error>>,
    {
        let mut refreshed = false;
        loop {
            let mut request = build().await?;
            if let Some(header) = self.authorization(refreshed).await? {
                request = request.header(AUTHORIZATION, header);
            }
            let response = request.send().await.map_err(|source| Error::Connection {
                url: url.to_string(),
                source,
            })?;
            let bearer = matches!(*self.auth.lock().await, AuthState::Bearer { .. });
            if response.status() == StatusCode::UNAUTHORIZED && bearer && !refreshed {
                refreshed = true;
                continue;
            }
            if response.status() == StatusCode::UNAUTHORIZED {
                let challenge = auth::challenge_text(response.headers());
                if challenge.contains("insufficient_scope") {
                    return Err(Error::Denied {
                        scope: self.scopes.join(" "),
                        detail: format!(
                            "the registry answered 401 insufficient_scope ({challenge})"
                        ),
                    });
                }
            }
            return Ok(response);
        }
    }

    /// Sends a body-less request, retried; `what` names the object for errors.
    async fn simple(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        step: &str,
    ) -> Result<Response, Error> {
        let url = self.url(path);
        self.retry
            .run(step, || async {
                let r = self
                    .send(&url, || async {
                        Ok(self
                            .http
                            .request(method.clone(), &url)
                            .headers(headers.clone()))
                    })
                    .await?;
                retryable_as_error(r, step).await
            })
            .await
    }

    /// Signs in now, so that credential problems show before any transfer starts.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] or [`Error::Denied`] with the server's words.
    pub async fn sign_in(&self) -> Result<(), Error> {
        self.authorization(false).await.map(|_| ())
    }

    /// Whether the repository has the blob (`HEAD /v2/<name>/blobs/<digest>`).
    pub async fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool, Error> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let r = self
            .simple(Method::HEAD, &path, HeaderMap::new(), "checking a blob")
            .await?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Error::from_response(r, &format!("blob {digest}")).await),
        }
    }

    fn manifest_accept() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            MANIFEST_TYPES.join(", ").parse().expect("valid header"),
        );
        headers
    }

    /// The digest a tag (or digest) points at, from `HEAD /v2/<name>/manifests/<reference>`;
    /// `None` when there is no such manifest. Falls back to GET when the registry sends no
    /// `Docker-Content-Digest`.
    pub async fn resolve(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, Error> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let r = self
            .simple(
                Method::HEAD,
                &path,
                Self::manifest_accept(),
                "resolving a tag",
            )
            .await?;
        match r.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => {
                return Err(
                    Error::from_response(r, &format!("manifest {repository}:{reference}")).await,
                );
            }
            _ => {}
        }
        if let Some(d) = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
        {
            return Ok(Some(d));
        }
        let (_, _, digest) = self.get_manifest(repository, reference).await?;
        Ok(Some(digest))
    }

    /// A manifest's exact bytes, its media type and its digest (computed; checked against the
    /// reference when that is a digest, and against `Docker-Content-Digest` when sent).
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(String, Bytes, Digest), Error> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let what = format!("manifest {repository}@{reference}");
        self.retry
            .run("reading a manifest", || async {
                let url = self.url(&path);
                let r = self
                    .send(&url, || async {
                        Ok(self.http.get(&url).headers(Self::manifest_accept()))
                    })
                    .await?;
                if !r.status().is_success() {
                    return Err(Error::from_response(r, &what).await);
                }
                let media_type = r
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let header = r
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let bytes = r.bytes().await.map_err(|source| Error::Connection {
                    url: self.url(&path),
                    source,
                })?;
                let digest = sha256(&bytes);
                for expected in [Some(reference.to_string()), header].into_iter().flatten() {
                    if expected.starts_with("sha256:") && expected != digest.as_str() {
                        return Err(Error::DigestMismatch {
                            expected,
                            actual: digest.to_string(),
                        });
                    }
                }
                Ok((media_type, bytes, digest))
            })
            .await
    }

    /// `PUT /v2/<name>/manifests/<reference>` with the exact bytes; the digest the registry
    /// answers must be the one computed.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<Digest, Error> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let expected = sha256(bytes);
        self.retry
            .run("pushing a manifest", || async {
                let r = self
                    .send(&url, || async {
                        Ok(self
                            .http
                            .put(&url)
                            .header(CONTENT_TYPE, media_type)
                            .body(bytes.clone()))
                    })
                    .await?;
                if !r.status().is_success() {
                    return Err(Error::from_response(
                        r,
                        &format!("manifest {repository}:{reference}"),
                    )
                    .await);
                }
                check_digest_header(r.headers(), &expected)?;
                Ok(expected.clone())
            })
            .await
    }

    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`: 201 mounted, 202 an upload
    /// session to use instead.
    pub async fn mount(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, Error> {
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let r = self
            .simple(Method::POST, &path, HeaderMap::new(), "mounting a blob")
            .await?;
        match r.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(location(&r)?)),
            _ => Err(Error::from_response(r, &format!("blob {digest}")).await),
        }
    }

    /// Opens an upload session: its `Location`.
    pub async fn start_upload(&self, repository: &str) -> Result<String, Error> {
        let path = format!("/v2/{repository}/blobs/uploads/");
        let r = self
            .simple(Method::POST, &path, HeaderMap::new(), "starting an upload")
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(Error::from_response(r, &format!("upload to {repository}")).await);
        }
        location(&r)
    }

    /// Sends a whole blob to an upload session and completes it (`PUT <location>?digest=`).
    /// Not retried here: the caller restarts the upload.
    pub async fn put_blob<F, Fut>(
        &self,
        location: &str,
        digest: &Digest,
        len: u64,
        body: F,
    ) -> Result<(), Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<reqwest::Body, Error>>,
    {
        let url = with_digest(&self.location_url(location), digest);
        let r = self
            .send(&url, || async {
                Ok(self
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .body(body().await?))
            })
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Error::from_response(r, &format!("blob {digest}")).await);
        }
        check_digest_header(r.headers(), digest)
    }

    /// Sends bytes `start..start+len` of a blob (`PATCH <location>`, `Content-Range`): the new
    /// `Location`. Not retried here: the caller asks how far the registry got.
    pub async fn patch_chunk(
        &self,
        location: &str,
        start: u64,
        len: u64,
        body: reqwest::Body,
    ) -> Result<String, Error> {
        let url = self.location_url(location);
        let body = std::sync::Mutex::new(Some(body));
        let r = self
            .send(&url, || async {
                let body = body
                    .lock()
                    .map_err(|_| Error::Protocol("poisoned".into()))?
                    .take()
                    // A second attempt (after a 401) has no body left: fail, the caller resumes.
                    .ok_or_else(|| {
                        Error::Protocol("the chunk was refused (401) after it was sent".into())
                    })?;
                Ok(self
                    .http
                    .patch(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header("content-range", format!("{start}-{}", start + len - 1))
                    .header(CONTENT_LENGTH, len)
                    .body(body))
            })
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(Error::from_response(r, "upload chunk").await);
        }
        self::location(&r)
    }

    /// How far an upload session got: its new `Location` and the number of bytes the registry
    /// holds (`GET <location>` → 204 + `Range: 0-<last>`). `None` when the session is gone.
    pub async fn upload_status(&self, location: &str) -> Result<Option<(String, u64)>, Error> {
        let url = self.location_url(location);
        let r = self
            .retry
            .run("asking how far the upload got", || async {
                let r = self
                    .send(&url, || async { Ok(self.http.get(&url)) })
                    .await?;
                retryable_as_error(r, "upload session").await
            })
            .await?;
        match r.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let next = r
                    .headers()
                    .get("range")
                    .and_then(|v| v.to_str().ok())
                    .map_or(0, next_offset);
                let loc = location_opt(&r).unwrap_or_else(|| location.to_string());
                Ok(Some((loc, next)))
            }
            s if s.is_client_error() => Ok(None),
            _ => Err(Error::from_response(r, "upload session").await),
        }
    }

    /// Completes a chunked upload (`PUT <location>?digest=` without a body).
    pub async fn finish_upload(&self, location: &str, digest: &Digest) -> Result<(), Error> {
        let url = with_digest(&self.location_url(location), digest);
        let r = self
            .send(&url, || async {
                Ok(self.http.put(&url).header(CONTENT_LENGTH, 0))
            })
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Error::from_response(r, &format!("blob {digest}")).await);
        }
        check_digest_header(r.headers(), digest)
    }

    /// Abandons an upload session (`DELETE <location>`); failures are ignored, the registry
    /// expires sessions anyway.
    pub async fn cancel_upload(&self, location: &str) {
        let url = self.location_url(location);
        let _ = self
            .send(&url, || async { Ok(self.http.delete(&url)) })
            .await;
    }

    /// Opens a blob for reading, from byte `start` (`Range` when not 0), `len` bytes.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<Response, Error> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let r = self
            .retry
            .run("reading a blob", || async {
                let r = self
                    .send(&url, || async {
                        let mut request = self.http.get(&url);
                        if start > 0 || len > 0 {
                            request = request.header(
                                "range",
                                format!("bytes={start}-{}", start + len.max(1) - 1),
                            );
                        }
                        Ok(request)
                    })
                    .await?;
                if !r.status().is_success() {
                    return Err(Error::from_response(r, &format!("blob {digest}")).await);
                }
                if start > 0 && r.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(Error::Protocol(format!(
                        "asked for bytes {start}- of blob {digest}, the registry sent the whole blob"
                    )));
                }
                Ok(r)
            })
            .await?;
        Ok(r)
    }
}

/// The first byte the registry does not have yet, from an upload's `Range: 0-<last>`.
///
/// distribution answers `0-0` for an empty session as well as for one holding one byte (it
/// clamps `size - 1` at 0). `0-0` is read as empty: if the registry did hold a byte, the next
/// chunk is refused (416) and the blob starts over in a new session, which is always correct.
fn next_offset(range: &str) -> u64 {
    let range = range.trim().trim_start_matches("bytes=");
    match range.split_once('-') {
        Some((_, "0")) => 0,
        Some((_, last)) => last.trim().parse::<u64>().map_or(0, |last| last + 1),
        None => 0,
    }
}

/// A response whose status is worth retrying (5xx, 429, 408) as a retryable error; any other
/// response as it is, for the caller to read.
async fn retryable_as_error(r: Response, what: &str) -> Result<Response, Error> {
    let status = r.status();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Err(Error::from_response(r, what).await)
    } else {
        Ok(r)
    }
}

fn location_opt(r: &Response) -> Option<String> {
    r.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn location(r: &Response) -> Result<String, Error> {
    location_opt(r)
        .ok_or_else(|| Error::Protocol(format!("{} without a Location header", r.status())))
}

/// `<location>?digest=<d>` or `&digest=` when it carries a query already.
fn with_digest(url: &str, digest: &Digest) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}digest={}",
        digest.as_str().replace(':', "%3A")
    )
}

/// The registry's `Docker-Content-Digest`, when sent, must be the digest we computed.
fn check_digest_header(headers: &HeaderMap, expected: &Digest) -> Result<(), Error> {
    match headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        Some(actual) if actual != expected.as_str() => Err(Error::DigestMismatch {
            expected: expected.to_string(),
            actual: crate::untrusted::server_text_within(actual, super::error::SERVER_TEXT_LIMIT),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_http() {
        for (registry, scheme) in [
            ("localhost:5000", "http"),
            ("127.0.0.1:5000", "http"),
            ("127.1.2.3", "http"),
            ("[::1]:5000", "http"),
            ("myacr.azurecr.io", "https"),
            ("localhost.example.com", "https"),
            ("10.0.0.1:5000", "https"),
        ] {
            assert_eq!(scheme_for(registry), scheme, "{registry}");
        }
    }

    #[test]
    fn upload_range_gives_the_next_offset() {
        assert_eq!(next_offset("0-0"), 0, "distribution's empty session");
        assert_eq!(next_offset("0-1048575"), 1_048_576);
        assert_eq!(next_offset("bytes=0-9"), 10);
        assert_eq!(next_offset("garbage"), 0);
    }

    #[test]
    fn digest_is_added_to_the_location_query() {
        let d = sha256(b"");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/1?_state=x", &d),
            format!(
                "http://r/v2/a/blobs/uploads/1?_state=x&digest=sha256%3A{}",
                &d.as_str()[7..]
            )
        );
    }
}
