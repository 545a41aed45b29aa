//! Which cluster, and a client for it.
//!
//! Sources, first match wins (inputs override promotion.yml):
//! 1. the `kubeconfig` input: kubeconfig content (YAML, or base64 of it), kept in memory;
//! 2. the `kubeconfig-path` input: a kubeconfig file;
//! 3. the environment's `cluster.aks` in promotion.yml (unless a `context` input was given): the
//!    cluster's user credential from ARM (`azure::user_credential`) for server and CA, and an
//!    Entra token for the AKS server application, refreshed before it expires — no az, no
//!    kubelogin;
//! 4. otherwise what kubectl would use: `KUBECONFIG`, `~/.kube/config`, or in-cluster.
//!
//! The context is the `context` input, else the environment's `cluster.context`, else the
//! kubeconfig's current context.
//!
//! Credentials in a kubeconfig are masked as soon as it is parsed: the values of `token`,
//! `client-key-data`, `client-certificate-data`, `password`, and of auth-provider config and exec
//! env entries. Only those values: masking every line would blank `apiVersion: v1` and
//! `- name: …` out of the whole job log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use kube::{Client, Config};
use serde_json::Value;

use crate::actions::{Console, Secret, mask};
use crate::azure::UserCredential;
use crate::config::{AksCluster, Cluster};

// Where the AKS path signs in; `azure` owns them, re-exported for this module's callers.
pub use crate::azure::{AKS_SCOPE, ARM_BASE, ARM_SCOPE};

/// The connection inputs, as given (empty counts as not given).
#[derive(Debug, Clone, Default)]
pub struct ClusterInputs {
    /// Kubeconfig content. Not masked yet: [`connect`] masks its credentials when it parses it.
    pub kubeconfig: Option<String>,
    pub kubeconfig_path: Option<PathBuf>,
    pub context: Option<String>,
}

/// Where the cluster comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `kubeconfig` input.
    Content { context: Option<String> },
    /// The `kubeconfig-path` input.
    Path {
        path: PathBuf,
        context: Option<String>,
    },
    /// promotion.yml's `cluster.aks`.
    Aks(AksCluster),
    /// `KUBECONFIG`, `~/.kube/config`, or in-cluster.
    Default { context: Option<String> },
}

/// Decides the source (pure): inputs first, then the environment's cluster, then the default.
pub fn resolve_source(inputs: &ClusterInputs, cluster: &Cluster) -> Source {
    let context = inputs
        .context
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| cluster.context.clone());
    if inputs
        .kubeconfig
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
    {
        return Source::Content { context };
    }
    if let Some(path) = inputs
        .kubeconfig_path
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
    {
        return Source::Path { path, context };
    }
    let context_input = inputs
        .context
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty());
    if let Some(aks) = &cluster.aks
        && !context_input
    {
        return Source::Aks(aks.clone());
    }
    Source::Default { context }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the `kubeconfig` input is not a kubeconfig (YAML with clusters, contexts and users, or base64 of it)"
    )]
    InvalidContent,
    #[error("cannot read the kubeconfig {path}")]
    ReadPath {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("context `{context}` is not in the kubeconfig (it has: {available})")]
    UnknownContext { context: String, available: String },
    #[error(
        "no cluster to deploy to: give the `kubeconfig` or `kubeconfig-path` input, name the cluster in promotion.yml (`cluster`), set KUBECONFIG, or run in a cluster (in-cluster: {in_cluster}); the kubeconfig"
    )]
    NoCluster {
        /// Why in-cluster configuration did not apply either.
        in_cluster: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot set up a client for {server}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the environment names AKS cluster {cluster}, and signing in to it needs an Azure identity: give `azure-client-id` and `azure-tenant-id` (GitHub OIDC, or `azure-client-secret`), or a `kubeconfig`"
    )]
    AksNeedsIdentity { cluster: String },
    #[error("cannot get an Entra token for {scope}")]
    Token {
        scope: &'static str,
        #[source]
        source: anyhow::Error,
    },
    /// ARM refused the cluster's credentials or could not be reached; its own words.
    #[error(transparent)]
    Arm(#[from] crate::azure::Error),
    #[error("the credentials ARM returned for AKS cluster {cluster} are not usable: {detail}")]
    ArmKubeconfig { cluster: String, detail: String },
}

/// A client and where it points.
pub struct Connection {
    pub client: Client,
    /// The API server URL.
    pub server: String,
    /// How the cluster was found, for the log: `context dev in the kubeconfig input`.
    pub description: String,
}

/// The values in a kubeconfig (as JSON) that are credentials.
pub fn kubeconfig_secrets(kubeconfig: &Value) -> Vec<String> {
    const FIELDS: &[&str] = &[
        "token",
        "client-key-data",
        "client-certificate-data",
        "password",
    ];
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str().filter(|s| !s.trim().is_empty()) {
            out.push(s.to_string());
        }
    };
    for user in kubeconfig["users"].as_array().into_iter().flatten() {
        let user = &user["user"];
        for field in FIELDS {
            push(&user[*field]);
        }
        for value in user["auth-provider"]["config"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            push(value);
        }
        for entry in user["exec"]["env"].as_array().into_iter().flatten() {
            push(&entry["value"]);
        }
    }
    out
}

/// Parses kubeconfig content (YAML, or base64 of YAML) and masks its credentials. The base64
/// form is masked whole too: it is one line, and it is the secret.
///
/// # Errors
/// [`ConnectError::InvalidContent`], without repeating any of the content.
pub fn parse_content(content: &str, console: &Console) -> Result<Kubeconfig, ConnectError> {
    let parse = |text: &str| -> Option<(Kubeconfig, Value)> {
        let value: Value = serde_saphyr::from_str(text).ok()?;
        if !value.is_object() || !(value.get("clusters").is_some() || value.get("users").is_some())
        {
            return None;
        }
        let kubeconfig = Kubeconfig::from_yaml(text).ok()?;
        Some((kubeconfig, value))
    };
    let (kubeconfig, value, text) = match parse(content) {
        Some((kubeconfig, value)) => (kubeconfig, value, content.to_string()),
        None => {
            let compact: String = content.split_whitespace().collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(ConnectError::InvalidContent)?;
            mask(content.trim(), console);
            let (kubeconfig, value) = parse(&decoded).ok_or(ConnectError::InvalidContent)?;
            (kubeconfig, value, decoded)
        }
    };
    let secrets = kubeconfig_secrets(&value);
    for secret in &secrets {
        mask(secret, console);
    }
    // Line by line as well, the way the runner masks a multi-line secret: every line that
    // carries a credential (`token: …`, `client-key-data: …`). Other lines such as
    // `apiVersion: v1` stay readable in the job log.
    for line in text.lines().map(str::trim) {
        if secrets.iter().any(|s| line.contains(s.as_str())) {
            mask(line, console);
        }
    }
    Ok(kubeconfig)
}

/// Masks the credentials of a kubeconfig read from a file (or kube's default location).
fn mask_kubeconfig(kubeconfig: &Kubeconfig, console: &Console) {
    // AuthInfo serializes its secret strings in the clear: exactly what is needed here.
    if let Ok(value) = serde_json::to_value(kubeconfig) {
        for secret in kubeconfig_secrets(&value) {
            mask(&secret, console);
        }
    }
}

fn check_context(kubeconfig: &Kubeconfig, context: Option<&str>) -> Result<(), ConnectError> {
    let Some(context) = context else {
        return Ok(());
    };
    if kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Ok(());
    }
    Err(ConnectError::UnknownContext {
        context: context.to_string(),
        available: kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn build_client(mut config: Config) -> Result<(Client, String), ConnectError> {
    // One retry policy for the whole crate: `kube::api::retrying` (kube's own covers 429, 503
    // and 504 but not 500 or a dropped connection, and would retry under ours).
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|source| ConnectError::Client {
        server: server.clone(),
        source,
    })?;
    Ok((client, server))
}

/// Connects to the cluster `source` names.
///
/// `tokens` is needed only for AKS; `arm_base` is [`ARM_BASE`] except in tests.
///
/// # Errors
/// [`ConnectError`]: a bad or missing kubeconfig, an unknown context, ARM or Entra refusing.
pub async fn connect(
    source: &Source,
    inputs: &ClusterInputs,
    console: &Console,
    tokens: Option<Arc<dyn TokenSource>>,
    arm_base: &str,
) -> Result<Connection, ConnectError> {
    let options = |context: &Option<String>| KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    match source {
        Source::Content { context } => {
            let kubeconfig =
                parse_content(inputs.kubeconfig.as_deref().unwrap_or_default(), console)?;
            check_context(&kubeconfig, context.as_deref())?;
            let config = Config::from_custom_kubeconfig(kubeconfig, &options(context))
                .await
                .map_err(|source| ConnectError::Client {
                    server: "the cluster in the `kubeconfig` input".into(),
                    source: source.into(),
                })?;
            let (client, server) = build_client(config)?;
            Ok(Connection {
                client,
                description: describe(context, "the `kubeconfig` input", &server),
                server,
            })
        }
        Source::Path { path, context } => {
            let kubeconfig = read_path(path)?;
            mask_kubeconfig(&kubeconfig, console);
            check_context(&kubeconfig, context.as_deref())?;
            let config = Config::from_custom_kubeconfig(kubeconfig, &options(context))
                .await
                .map_err(|source| ConnectError::ReadPath {
                    path: path.clone(),
                    source,
                })?;
            let (client, server) = build_client(config)?;
            Ok(Connection {
                client,
                description: describe(context, &path.display().to_string(), &server),
                server,
            })
        }
        Source::Aks(aks) => {
            let tokens = tokens.ok_or_else(|| ConnectError::AksNeedsIdentity {
                cluster: aks_name(aks),
            })?;
            connect_aks(
                &crate::registry::http_client(),
                arm_base,
                aks,
                tokens,
                console,
            )
            .await
        }
        Source::Default { context } => {
            // kube reads KUBECONFIG (or ~/.kube/config) itself: that variable is kube's
            // convention, read where kube reads it.
            if let Ok(kubeconfig) = Kubeconfig::read() {
                mask_kubeconfig(&kubeconfig, console);
                check_context(&kubeconfig, context.as_deref())?;
            }
            let config = match Config::from_kubeconfig(&options(context)).await {
                Ok(config) => config,
                Err(kubeconfig) => {
                    Config::incluster().map_err(|in_cluster| ConnectError::NoCluster {
                        in_cluster: in_cluster.to_string(),
                        source: kubeconfig,
                    })?
                }
            };
            let (client, server) = build_client(config)?;
            Ok(Connection {
                client,
                description: describe(context, "the default kubeconfig", &server),
                server,
            })
        }
    }
}

fn read_path(path: &Path) -> Result<Kubeconfig, ConnectError> {
    Kubeconfig::read_from(path).map_err(|source| ConnectError::ReadPath {
        path: path.to_path_buf(),
        source,
    })
}

fn describe(context: &Option<String>, from: &str, server: &str) -> String {
    match context {
        Some(c) => format!("context {c} in {from} ({server})"),
        None => format!("current context in {from} ({server})"),
    }
}

fn aks_name(aks: &AksCluster) -> String {
    format!("{}/{}", aks.resource_group, aks.name)
}

/// An access token and when it expires.
pub struct Token {
    pub secret: Secret,
    pub expires_at: SystemTime,
}

/// Something that hands out Entra access tokens for a scope (the `azure` module's identity).
/// A trait object so the AKS path takes any sign-in, including a test's.
pub trait TokenSource: Send + Sync {
    fn token<'a>(&'a self, scope: &'static str) -> BoxFuture<'a, anyhow::Result<Token>>;
}

impl TokenSource for crate::azure::Identity {
    fn token<'a>(&'a self, scope: &'static str) -> BoxFuture<'a, anyhow::Result<Token>> {
        Box::pin(async move {
            let token = crate::azure::Identity::token(self, scope).await?;
            Ok(Token {
                secret: token.token,
                expires_at: token.expires_at,
            })
        })
    }
}

/// How the AKS client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AksAuth {
    /// Entra-integrated cluster (the credential says `kubelogin`): a bearer token for
    /// [`AKS_SCOPE`] on every request.
    Entra,
    /// A cluster with local accounts: the credential itself (token or client certificate).
    Static,
}

/// Turns the kubeconfig of ARM's user credential into one with one cluster, one user and one
/// context `aks`, and says how to authenticate. Pure.
///
/// # Errors
/// A description of what is missing.
pub fn aks_kubeconfig(text: &str) -> Result<(Kubeconfig, AksAuth), String> {
    let source =
        Kubeconfig::from_yaml(text).map_err(|_| "the kubeconfig does not parse".to_string())?;
    let context = source
        .current_context
        .as_deref()
        .and_then(|name| source.contexts.iter().find(|c| c.name == name))
        .or(source.contexts.first())
        .and_then(|c| c.context.clone());
    let cluster = context
        .as_ref()
        .and_then(|c| source.clusters.iter().find(|n| n.name == c.cluster))
        .or(source.clusters.first())
        .and_then(|c| c.cluster.clone())
        .filter(|c| c.server.is_some())
        .ok_or("no cluster with a server in the kubeconfig")?;
    let user = context
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .and_then(|u| source.auth_infos.iter().find(|n| n.name == u))
        .or(source.auth_infos.first())
        .and_then(|u| u.auth_info.clone())
        .unwrap_or_default();
    let has_static = user.token.is_some()
        || (user.client_certificate_data.is_some() && user.client_key_data.is_some());
    let interactive = user.exec.is_some() || user.auth_provider.is_some();
    let (auth_info, auth) = if has_static && !interactive {
        (user, AksAuth::Static)
    } else {
        (kube::config::AuthInfo::default(), AksAuth::Entra)
    };
    let kubeconfig = Kubeconfig {
        clusters: vec![NamedCluster {
            name: "aks".into(),
            cluster: Some(cluster),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "aks".into(),
            auth_info: Some(auth_info),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: "aks".into(),
            context: Some(kube::config::Context {
                cluster: "aks".into(),
                user: Some("aks".into()),
                ..kube::config::Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some("aks".into()),
        ..Kubeconfig::default()
    };
    Ok((kubeconfig, auth))
}

/// Connects to an AKS cluster without az or kubelogin: ARM's user credential for server and
/// CA ([`crate::azure::user_credential`] at `arm_base`), then [`aks_client`].
///
/// # Errors
/// Entra or ARM refusing (with a hint for 401/403/404), or a credential without a server.
pub async fn connect_aks(
    http: &reqwest::Client,
    arm_base: &str,
    aks: &AksCluster,
    tokens: Arc<dyn TokenSource>,
    console: &Console,
) -> Result<Connection, ConnectError> {
    let arm = tokens
        .token(ARM_SCOPE)
        .await
        .map_err(|source| ConnectError::Token {
            scope: ARM_SCOPE,
            source,
        })?;
    let credential = crate::azure::user_credential(http, arm_base, &arm.secret, aks).await?;
    aks_client(&credential, aks, tokens, console).await
}

/// A client for AKS cluster `aks` from its user credential: the credential's server and CA,
/// and for an Entra-integrated cluster a token for the AKS server application on every request,
/// refreshed in the background before it expires. The credential's secrets are masked here.
///
/// # Errors
/// Entra refusing the AKS token, or a credential without a server.
pub async fn aks_client(
    credential: &UserCredential,
    aks: &AksCluster,
    tokens: Arc<dyn TokenSource>,
    console: &Console,
) -> Result<Connection, ConnectError> {
    let cluster = aks_name(aks);
    let (kubeconfig, auth) =
        aks_kubeconfig(credential.kubeconfig()).map_err(|detail| ConnectError::ArmKubeconfig {
            cluster: cluster.clone(),
            detail,
        })?;
    mask_kubeconfig(&kubeconfig, console);
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| ConnectError::ArmKubeconfig {
            cluster: cluster.clone(),
            detail: e.to_string(),
        })?;
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    let client = match auth {
        AksAuth::Static => build_client(config)?.0,
        AksAuth::Entra => {
            let first = tokens
                .token(AKS_SCOPE)
                .await
                .map_err(|source| ConnectError::Token {
                    scope: AKS_SCOPE,
                    source,
                })?;
            let cache = Arc::new(TokenCache::new(&first));
            tokio::spawn(refresh(Arc::downgrade(&cache), tokens, first.expires_at));
            ClientBuilder::try_from(config)
                .map_err(|source| ConnectError::Client {
                    server: server.clone(),
                    source,
                })?
                .with_layer(&BearerLayer(cache))
                .build()
        }
    };
    Ok(Connection {
        client,
        description: format!("AKS cluster {cluster} ({server})"),
        server,
    })
}

/// The current `Authorization` header value.
struct TokenCache {
    header: RwLock<http::HeaderValue>,
}

impl TokenCache {
    fn new(token: &Token) -> TokenCache {
        TokenCache {
            header: RwLock::new(bearer(token)),
        }
    }
}

fn bearer(token: &Token) -> http::HeaderValue {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {}", token.secret.expose()))
        .unwrap_or_else(|_| http::HeaderValue::from_static("Bearer invalid"));
    value.set_sensitive(true);
    value
}

/// When to fetch the next token: five minutes before expiry, or halfway through a shorter
/// lifetime, and never sooner than 5 s from now (a clock skew must not spin the loop).
pub fn refresh_delay(now: SystemTime, expires_at: SystemTime) -> Duration {
    let left = expires_at.duration_since(now).unwrap_or_default();
    let margin = Duration::from_secs(300).min(left / 2);
    (left - margin).max(Duration::from_secs(5))
}

/// Keeps the cache fresh until the client (and so the cache) is dropped.
async fn refresh(
    cache: Weak<TokenCache>,
    tokens: Arc<dyn TokenSource>,
    mut expires_at: SystemTime,
) {
    loop {
        tokio::time::sleep(refresh_delay(SystemTime::now(), expires_at)).await;
        let Some(cache) = cache.upgrade() else { return };
        match tokens.token(AKS_SCOPE).await {
            Ok(token) => {
                *cache.header.write().unwrap_or_else(PoisonError::into_inner) = bearer(&token);
                expires_at = token.expires_at;
            }
            Err(e) => {
                tracing::warn!("could not refresh the AKS token (retrying in 30s): {e:#}");
                expires_at = SystemTime::now() + Duration::from_secs(60);
            }
        }
    }
}

/// Sets `Authorization` from the [`TokenCache`] on every request.
struct BearerLayer(Arc<TokenCache>);

impl<S> tower::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            cache: self.0.clone(),
        }
    }
}

struct Bearer<S> {
    inner: S,
    cache: Arc<TokenCache>,
}

impl<S, B> tower::Service<http::Request<B>> for Bearer<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let value = self
            .cache
            .header
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::redact;

    /// A value no other test uses: the mask registry is shared by the whole test binary.
    fn unique(label: &str) -> String {
        format!(
            "{label}-{}",
            crate::actions::random_delimiter().trim_start_matches("ghadelimiter_")
        )
    }

    fn aks() -> AksCluster {
        AksCluster {
            subscription: "sub-1".into(),
            resource_group: "rg".into(),
            name: "aks-1".into(),
        }
    }

    /// Inputs override promotion.yml; the context input overrides both the file's context and
    /// its AKS cluster.
    #[test]
    fn sources_in_order() {
        let file = |context: Option<&str>, with_aks: bool| Cluster {
            context: context.map(str::to_string),
            aks: with_aks.then(aks),
        };
        let inputs = |content: bool, path: bool, context: Option<&str>| ClusterInputs {
            kubeconfig: content.then(|| "apiVersion: v1".to_string()),
            kubeconfig_path: path.then(|| PathBuf::from("/k")),
            context: context.map(str::to_string),
        };
        let cases: &[(&str, ClusterInputs, Cluster, Source)] = &[
            (
                "content beats everything, file context applies",
                inputs(true, true, None),
                file(Some("dev"), true),
                Source::Content {
                    context: Some("dev".into()),
                },
            ),
            (
                "the context input beats the file's",
                inputs(true, false, Some("ci")),
                file(Some("dev"), false),
                Source::Content {
                    context: Some("ci".into()),
                },
            ),
            (
                "a path beats AKS",
                inputs(false, true, None),
                file(None, true),
                Source::Path {
                    path: "/k".into(),
                    context: None,
                },
            ),
            (
                "AKS from promotion.yml",
                inputs(false, false, None),
                file(None, true),
                Source::Aks(aks()),
            ),
            (
                "a context input means kubectl's kubeconfig, not AKS",
                inputs(false, false, Some("ci")),
                file(None, true),
                Source::Default {
                    context: Some("ci".into()),
                },
            ),
            (
                "nothing given: kubectl's default",
                inputs(false, false, None),
                file(Some("dev"), false),
                Source::Default {
                    context: Some("dev".into()),
                },
            ),
            (
                "empty inputs count as not given",
                ClusterInputs {
                    kubeconfig: Some("  ".into()),
                    kubeconfig_path: Some(PathBuf::new()),
                    context: Some(String::new()),
                },
                file(None, false),
                Source::Default { context: None },
            ),
        ];
        for (case, inputs, cluster, want) in cases {
            assert_eq!(resolve_source(inputs, cluster), *want, "case: {case}");
        }
    }

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: Q0EK}
contexts:
- name: dev
  context: {cluster: dev, user: ci}
current-context: dev
users:
- name: ci
  user:
    token: TOKEN_VALUE
    client-key-data: KEY_VALUE
    client-certificate-data: CERT_VALUE
- name: sso
  user:
    password: PASSWORD_VALUE
    auth-provider: {name: oidc, config: {id-token: ID_TOKEN_VALUE, client-id: CLIENT_ID_VALUE}}
    exec: {command: x, apiVersion: client.authentication.k8s.io/v1, env: [{name: SECRET, value: EXEC_ENV_VALUE}]}
";

    #[test]
    fn only_credential_values_are_secrets() {
        let value: Value = serde_saphyr::from_str(KUBECONFIG).unwrap();
        let mut secrets = kubeconfig_secrets(&value);
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "CERT_VALUE",
                "CLIENT_ID_VALUE",
                "EXEC_ENV_VALUE",
                "ID_TOKEN_VALUE",
                "KEY_VALUE",
                "PASSWORD_VALUE",
                "TOKEN_VALUE"
            ]
        );
    }

    #[test]
    fn content_is_parsed_masked_and_may_be_base64() {
        let token = unique("kubeconfig-token");
        let content = KUBECONFIG.replace("TOKEN_VALUE", &token);
        let console = Console::new(false);
        let parsed = parse_content(&content, &console).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("dev"));
        assert_eq!(redact(&format!("sending {token}")), "sending ***");
        assert_eq!(
            redact("apiVersion: v1"),
            "apiVersion: v1",
            "structure lines stay readable"
        );

        let token = unique("kubeconfig-b64-token");
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(KUBECONFIG.replace("TOKEN_VALUE", &token));
        let parsed = parse_content(&encoded, &console).unwrap();
        assert_eq!(parsed.contexts.len(), 1);
        assert_eq!(redact(&token), "***");
        assert_eq!(redact(&encoded), "***");

        let err = parse_content("not: [a kubeconfig", &console).unwrap_err();
        assert!(!err.to_string().contains("not: ["));
    }

    #[test]
    fn unknown_contexts_list_the_known_ones() {
        let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        assert!(check_context(&kubeconfig, Some("dev")).is_ok());
        assert_eq!(
            check_context(&kubeconfig, Some("prod"))
                .unwrap_err()
                .to_string(),
            "context `prod` is not in the kubeconfig (it has: dev)"
        );
    }

    #[test]
    fn entra_clusters_keep_server_and_ca_and_drop_kubelogin() {
        let body = "apiVersion: v1
clusters:
- name: aks-1
  cluster: {server: 'https://aks-1.hcp.westeurope.azmk8s.io:443', certificate-authority-data: Q0EK}
contexts:
- name: aks-1
  context: {cluster: aks-1, user: clusterUser_rg_aks-1}
current-context: aks-1
users:
- name: clusterUser_rg_aks-1
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
";
        let (kubeconfig, auth) = aks_kubeconfig(body).unwrap();
        assert_eq!(auth, AksAuth::Entra);
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(
            cluster.server.as_deref(),
            Some("https://aks-1.hcp.westeurope.azmk8s.io:443")
        );
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0EK"));
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.exec.is_none(), "no kubelogin in the container");
        assert_eq!(kubeconfig.current_context.as_deref(), Some("aks"));
    }

    #[test]
    fn local_account_clusters_use_their_credential() {
        let body = "clusters:
- name: c
  cluster: {server: 'https://c:443'}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: local-account-token}
";
        let (_, auth) = aks_kubeconfig(body).unwrap();
        assert_eq!(auth, AksAuth::Static);
        // What ARM's answer lacks is `azure::parse_credential`'s to say (tested there).
        assert!(
            aks_kubeconfig("clusters: []")
                .unwrap_err()
                .contains("no cluster")
        );
    }

    #[test]
    fn tokens_are_refreshed_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(
            refresh_delay(now, now + hour),
            hour - Duration::from_secs(300)
        );
        assert_eq!(
            refresh_delay(now, now + Duration::from_secs(240)),
            Duration::from_secs(120)
        );
        assert_eq!(refresh_delay(now, now), Duration::from_secs(5));
        assert_eq!(
            refresh_delay(now, now - hour),
            Duration::from_secs(5),
            "an expired token is replaced soon, not in a loop"
        );
    }
}
