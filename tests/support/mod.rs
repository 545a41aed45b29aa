//! Test harness: for the registry tests, the real distribution registry (Debian's
//! `docker-registry`) started on a free 127.0.0.1 port, the doubles in front of it (token
//! server, ACR, Entra, GitHub OIDC, fault proxy) and generated images; for the metric analysis
//! tests, the real Prometheus scraping a test exporter; for the command tests, the promotion
//! project they run the binary on (`project`).

pub mod front;
pub mod images;
pub mod keys;
pub mod project;
pub mod prometheus;
pub mod registry;

use front::{AzureSetup, Front, FrontConfig, Policy};
use keys::SigningKey;
use registry::{Auth, Registry};

/// The issuer the token-auth registry trusts.
pub const ISSUER: &str = "promote-test-issuer";

/// A registry and the double in front of it.
pub struct Stack {
    pub registry: Registry,
    pub front: Front,
}

impl Stack {
    /// The name clients use for the registry: the double's address (it proxies `/v2/`), like an
    /// ACR login server in front of its storage.
    pub fn host(&self) -> &str {
        &self.front.addr
    }
}

/// A registry with token auth (RS256 JWTs from the double, which also proxies to it).
/// With `azure`, the double plays ACR (realm `/oauth2/token`), Entra and GitHub OIDC too.
pub fn token_stack(
    users: Vec<(String, String)>,
    policy: Policy,
    azure: Option<AzureSetup>,
) -> Stack {
    let key = SigningKey::generate();
    let (listener, addr) = Front::bind();
    let realm = if azure.is_some() {
        format!("http://{addr}/oauth2/token")
    } else {
        format!("http://{addr}/token")
    };
    let registry = Registry::start(Auth::Token {
        realm,
        service: addr.clone(),
        issuer: ISSUER.into(),
        bundle: key.cert_pem.clone(),
    });
    let front = Front::serve(
        listener,
        FrontConfig {
            upstream: Some(registry.addr.clone()),
            service: addr,
            issuer: ISSUER.into(),
            users,
            policy,
            azure,
        },
        key,
    );
    Stack { registry, front }
}

/// An anonymous registry behind the fault-injecting proxy.
pub fn proxied_stack() -> Stack {
    let registry = Registry::start(Auth::Anonymous);
    let (listener, addr) = Front::bind();
    let front = Front::serve(
        listener,
        FrontConfig {
            upstream: Some(registry.addr.clone()),
            service: addr,
            issuer: ISSUER.into(),
            users: Vec::new(),
            policy: front::allow_all(),
            azure: None,
        },
        SigningKey::generate(),
    );
    Stack { registry, front }
}
