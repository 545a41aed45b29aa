//! AKS without az or kubelogin: a client from the cluster's user credential (which `azure`
//! asks ARM for), with an Entra token for the AKS server application on every request,
//! refreshed in the background before it expires.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use kube::Config;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};

use super::kubeconfig::mask_kubeconfig;
use super::{AKS_SCOPE, ARM_SCOPE, ConnectError, Connection, build_client};
use crate::actions::{Console, Secret};
use crate::azure::UserCredential;
use crate::config::AksCluster;

pub(super) fn aks_name(aks: &AksCluster) -> String {
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
enum AksAuth {
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
fn aks_kubeconfig(text: &str) -> Result<(Kubeconfig, AksAuth), String> {
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
fn refresh_delay(now: SystemTime, expires_at: SystemTime) -> Duration {
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

    /// Hands out `aks-1`, `aks-2`, … each living `lifetime`, counting the calls.
    struct Counter {
        lifetime: Duration,
        calls: std::sync::atomic::AtomicU32,
    }

    impl TokenSource for Counter {
        fn token<'a>(&'a self, scope: &'static str) -> BoxFuture<'a, anyhow::Result<Token>> {
            Box::pin(async move {
                assert_eq!(scope, AKS_SCOPE);
                let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                Ok(Token {
                    secret: Secret::new(format!("aks-{n}"), &Console::new(false)),
                    expires_at: SystemTime::now() + self.lifetime,
                })
            })
        }
    }

    fn header(cache: &TokenCache) -> String {
        let value = cache.header.read().unwrap().clone();
        value.to_str().unwrap().to_string()
    }

    /// A 4 s token is replaced before it expires (the refresh never waits less than 5 s), and
    /// the refresh ends with the client.
    #[tokio::test(start_paused = true)]
    async fn the_token_is_refreshed_until_the_client_is_dropped() {
        let tokens = Arc::new(Counter {
            lifetime: Duration::from_secs(4),
            calls: Default::default(),
        });
        let first = tokens.token(AKS_SCOPE).await.unwrap();
        let cache = Arc::new(TokenCache::new(&first));
        assert_eq!(header(&cache), "Bearer aks-1");
        let refresher = tokio::spawn(refresh(
            Arc::downgrade(&cache),
            tokens.clone(),
            first.expires_at,
        ));
        tokio::time::sleep(Duration::from_millis(5500)).await;
        assert_eq!(header(&cache), "Bearer aks-2", "refreshed once");
        assert_eq!(tokens.calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        drop(cache);
        tokio::time::timeout(Duration::from_secs(10), refresher)
            .await
            .expect("the refresh stops once the cache is gone")
            .unwrap();
        assert_eq!(tokens.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
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
