//! Sign-in, a step every verb that talks to a registry or Azure shares: turns the auth flags
//! (and the run's OIDC variables from `actions::Context`) into an Azure [`Identity`] or registry
//! [`Credentials`].

use anyhow::Context as _;

use crate::actions::{Console, Context, Secret};
use crate::azure::{self, Credential, Identity};
use crate::cli::AuthArgs;
use crate::outcome::Classified;
use crate::registry::{Credentials, Http, scheme_for};

/// The Azure identity the flags describe, or `None` without `--azure-client-id`.
///
/// Without `--azure-client-secret` the GitHub OIDC token service is used, which exists only in a
/// job with `permissions: id-token: write`.
///
/// # Errors
/// Invalid input (exit 2): a client id without a tenant id, or OIDC outside such a job.
pub fn azure_identity(
    ctx: &Context,
    console: &Console,
    auth: &AuthArgs,
    http: &reqwest::Client,
) -> anyhow::Result<Option<Identity>> {
    let Some(client_id) = auth.azure_client_id.as_deref() else {
        return Ok(None);
    };
    let tenant_id = auth.azure_tenant_id.as_deref().ok_or_else(|| {
        Classified::invalid(anyhow::anyhow!(
            "azure-client-id is set but azure-tenant-id is not: Entra needs both"
        ))
    })?;
    let credential = match (&auth.azure_client_secret, &ctx.id_token_request_url) {
        (Some(secret), _) => Credential::ClientSecret(Secret::new(secret.expose(), console)),
        (None, Some(url)) => Credential::GithubOidc {
            request_url: url.clone(),
            request_token: ctx.id_token_request_token.clone().ok_or_else(|| {
                Classified::invalid(anyhow::anyhow!(
                    "ACTIONS_ID_TOKEN_REQUEST_URL is set but ACTIONS_ID_TOKEN_REQUEST_TOKEN is not"
                ))
            })?,
        },
        (None, None) => {
            return Err(Classified::invalid(anyhow::anyhow!(
                "signing in to Azure as {client_id} with GitHub OIDC needs an ID token, and this job cannot request one \
                 (ACTIONS_ID_TOKEN_REQUEST_URL is not set): add `permissions: id-token: write` to the job, \
                 or give azure-client-secret"
            )));
        }
    };
    Ok(Some(Identity::new(
        http.clone(),
        *console,
        tenant_id,
        client_id,
        &auth.azure_authority_host,
        credential,
    )))
}

/// Credentials for `registry`: Basic with `--registry-username`; with an Azure identity, an
/// ACR refresh token (Entra token → `/oauth2/exchange`); else anonymous.
///
/// # Errors
/// Invalid input for a user name without password (or the reverse); the Entra or ACR refusal
/// otherwise, naming the identity and the registry.
pub async fn registry_credentials(
    ctx: &Context,
    console: &Console,
    auth: &AuthArgs,
    http: &Http,
    registry: &str,
) -> anyhow::Result<Credentials> {
    match (&auth.registry_username, &auth.registry_password) {
        (Some(username), Some(password)) => {
            return Ok(Credentials::Basic {
                username: username.clone(),
                password: Secret::new(password.expose(), console),
            });
        }
        (Some(_), None) => {
            return Err(Classified::invalid(anyhow::anyhow!(
                "registry-username is set but registry-password is not"
            )));
        }
        (None, Some(_)) => {
            return Err(Classified::invalid(anyhow::anyhow!(
                "registry-password is set but registry-username is not"
            )));
        }
        (None, None) => {}
    }
    if auth.azure_client_id.is_none() {
        return Ok(Credentials::Anonymous);
    }
    // Entra and GitHub's OIDC service are https in real life; plain only when both are (tests).
    let azure_http = match &ctx.id_token_request_url {
        Some(url) if !url.starts_with("http://") => http.for_url(url),
        _ => http.for_url(&auth.azure_authority_host),
    };
    let Some(identity) = azure_identity(ctx, console, auth, azure_http)? else {
        return Ok(Credentials::Anonymous);
    };
    let entra = identity.token(azure::ACR_SCOPE).await.with_context(|| {
        format!(
            "failed to sign in to Microsoft Entra as {} (tenant {})",
            identity.client_id, identity.tenant_id
        )
    })?;
    let exchange_url = format!("{}://{registry}", scheme_for(registry));
    let refresh = azure::acr_refresh_token(
        http.for_url(&exchange_url),
        console,
        registry,
        &identity.tenant_id,
        &entra,
    )
    .await
    .with_context(|| format!("failed to sign in to {registry}"))?;
    Ok(Credentials::RefreshToken(refresh))
}
