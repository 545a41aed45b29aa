//! One registry, one set of scopes: the distribution API calls the transfer engine needs
//! (protocols.md §4), signed in once and retried where that is safe.
//!
//! Registries on the loopback interface (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken to in
//! plain `http`, like Docker's default insecure-registry rule; every other registry in `https`.

use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;

use super::auth::{self, Challenge, Credentials, Token};
use super::error::Error;
use super::http::{Http, scheme_for};
use super::image::{MANIFEST_TYPES, sha256};
use super::reference::Digest;
use super::retry::RetryPolicy;
use crate::actions::Console;

mod blobs;

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
