//! The one way a command reaches an environment's cluster: the cluster inputs, else the
//! environment's `cluster` (AKS through an Entra identity, a kubeconfig, or in-cluster).

use std::sync::Arc;

use anyhow::Context as _;

use super::Runtime;
use crate::azure::ARM_BASE;
use crate::cli::{ClusterArgs, GlobalArgs};
use crate::config::{Environment, Service};
use crate::kube::{
    ClusterInputs, ClusterSource, ConnectError, Connection, TokenSource, connect, resolve_source,
};
use crate::outcome::Classified;

/// Connects by the inputs and the environment's `cluster`.
///
/// # Errors
/// Invalid input (exit 2) for a kubeconfig that is not one, a context it lacks, or AKS without
/// an identity to sign in with; otherwise the cluster not answering.
pub async fn connect_to(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    cluster: &ClusterArgs,
    env: &Environment,
) -> anyhow::Result<Connection> {
    let inputs = ClusterInputs {
        kubeconfig: cluster.kubeconfig.clone(),
        kubeconfig_path: cluster.kubeconfig_path.clone(),
        context: cluster.context.clone(),
    };
    let source = resolve_source(&inputs, &env.cluster);
    let tokens: Option<Arc<dyn TokenSource>> = match &source {
        ClusterSource::Aks(_) => {
            let http = crate::registry::http_client();
            super::sign_in::azure_identity(rt.ctx, rt.console, &global.auth, &http)?
                .map(|identity| Arc::new(identity) as Arc<dyn TokenSource>)
        }
        _ => None,
    };
    connect(&source, &inputs, rt.console, tokens, ARM_BASE)
        .await
        .with_context(|| format!("connecting to the cluster of environment {}", env.name))
        .map_err(|e| {
            // A kubeconfig that is not one, a context it does not have, or AKS without an
            // identity to sign in with: bad input, nothing was touched.
            let bad_input = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ConnectError>(),
                    Some(
                        ConnectError::InvalidContent
                            | ConnectError::UnknownContext { .. }
                            | ConnectError::ReadPath { .. }
                            | ConnectError::AksNeedsIdentity { .. }
                    )
                )
            });
            if bad_input { Classified::invalid(e) } else { e }
        })
}

/// The Deployment serving `service` in `env` now: a blue-green colour once the service's
/// Service selects one, else the service's own Deployment. What is read as "running" and
/// marked verified.
///
/// # Errors
/// The API failing.
pub(crate) async fn serving_deployment(
    client: &kube::Client,
    env: &Environment,
    service: &Service,
) -> anyhow::Result<String> {
    let fronting = service.fronting_services();
    crate::kube::serving_deployment(
        client,
        &env.namespace,
        &service.deployment,
        fronting.first().map(|m| m.name()),
    )
    .await
}
