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

mod aks;
mod kubeconfig;

use std::path::PathBuf;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::actions::Console;
use crate::config::{AksCluster, Cluster};
use aks::aks_name;
use kubeconfig::{check_context, mask_kubeconfig, read_path};

// Where the AKS path signs in; `azure` owns them, re-exported for this module's callers.
pub use crate::azure::{AKS_SCOPE, ARM_SCOPE};
pub use aks::{Token, TokenSource, aks_client, connect_aks};
use kubeconfig::parse_content;

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

pub(super) fn build_client(mut config: Config) -> Result<(Client, String), ConnectError> {
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

fn describe(context: &Option<String>, from: &str, server: &str) -> String {
    match context {
        Some(c) => format!("context {c} in {from} ({server})"),
        None => format!("current context in {from} ({server})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
