//! Azure sign-in without stored secrets: a GitHub OIDC ID token exchanged at Microsoft Entra for
//! an access token to any scope (ACR, ARM, AKS), and ACR's exchange of that token for a registry
//! refresh token (protocols.md §3). A service principal secret works in place of the ID token.
//!
//! This module only obtains tokens. It does not read the environment (the caller passes the
//! OIDC request URL and token from `actions::Context`) and does not talk to the registry API
//! itself: the ACR refresh token goes to `registry` as `Credentials::RefreshToken`. Every token
//! is a [`Secret`], masked the moment it is read.
//!
//! With ARM's token it also asks for an AKS cluster's user credential ([`user_credential`]): a
//! kubeconfig for `kube::connect`, which builds the client.

mod aks;

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use crate::actions::{Console, Secret};
use crate::registry::{jwt_claims, scheme_for};
use crate::untrusted::server_text;

pub use aks::{ARM_BASE, UserCredential, user_credential};

/// Entra's public cloud authority; sovereign clouds (and tests) pass another.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The audience of the GitHub ID token that Entra's federated credentials expect.
const GITHUB_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Scope for ACR's `/oauth2/exchange`.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// Scope for Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Scope for an AKS cluster with Entra integration (the AKS server application).
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// How the app registration proves itself to Entra.
#[derive(Debug, Clone)]
pub enum Credential {
    /// GitHub's OIDC token service: `ACTIONS_ID_TOKEN_REQUEST_URL` and
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (present only with `permissions: id-token: write`).
    GithubOidc {
        request_url: String,
        request_token: Secret,
    },
    /// A service principal's client secret.
    ClientSecret(Secret),
}

/// An access token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GitHub OIDC token service refused or failed.
    #[error("GitHub's OIDC token service answered {status}: {detail}")]
    GithubOidc { status: StatusCode, detail: String },
    /// Entra refused the exchange. `code` is the `AADSTS…` number when Entra sent one; `hint`
    /// says what usually fixes it.
    #[error("Microsoft Entra refused the token request ({status}): {detail}{}", hint.as_deref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Entra {
        status: StatusCode,
        code: Option<u64>,
        detail: String,
        hint: Option<String>,
    },
    /// ACR's `/oauth2/exchange` refused the Entra token.
    #[error("{registry} refused the Entra token at /oauth2/exchange ({status}): {detail}")]
    AcrExchange {
        registry: String,
        status: StatusCode,
        detail: String,
    },
    /// ARM refused `listClusterUserCredential`; `hint` says what usually fixes it.
    #[error("Azure Resource Manager answered {status} for the credentials of AKS cluster {cluster}: {detail}{}", hint.map(|h| format!(" — {h}")).unwrap_or_default())]
    Arm {
        cluster: String,
        status: StatusCode,
        detail: String,
        hint: Option<&'static str>,
    },
    /// ARM's answer holds no kubeconfig.
    #[error("the credentials ARM returned for AKS cluster {cluster} are not usable: {detail}")]
    ArmCredential { cluster: String, detail: String },
    #[error("request to {url} failed")]
    Connection {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from {url}: {detail}")]
    Protocol { url: String, detail: String },
}

/// An Entra app registration (client id in a tenant) and how it signs in.
#[derive(Debug, Clone)]
pub struct Identity {
    http: reqwest::Client,
    console: Console,
    pub tenant_id: String,
    pub client_id: String,
    /// `https://login.microsoftonline.com`, or a sovereign cloud's (no trailing slash needed).
    pub authority_host: String,
    pub credential: Credential,
}

impl Identity {
    pub fn new(
        http: reqwest::Client,
        console: Console,
        tenant_id: &str,
        client_id: &str,
        authority_host: &str,
        credential: Credential,
    ) -> Identity {
        Identity {
            http,
            console,
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            authority_host: authority_host.trim_end_matches('/').to_string(),
            credential,
        }
    }

    /// An Entra access token for `scope` (e.g. [`ACR_SCOPE`], [`ARM_SCOPE`], [`AKS_SCOPE`]).
    ///
    /// With GitHub OIDC, a fresh ID token is requested for every call: they live minutes, and a
    /// cached one is the classic cause of AADSTS700024 in long jobs.
    ///
    /// # Errors
    /// [`Error::GithubOidc`], [`Error::Entra`] (with a hint for the known AADSTS codes),
    /// [`Error::Connection`].
    pub async fn token(&self, scope: &str) -> Result<AccessToken, Error> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host, self.tenant_id
        );
        let id_token;
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ];
        match &self.credential {
            Credential::GithubOidc {
                request_url,
                request_token,
            } => {
                id_token = self.github_id_token(request_url, request_token).await?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", id_token.expose()));
            }
            Credential::ClientSecret(secret) => form.push(("client_secret", secret.expose())),
        }
        let (status, body) = exchange(self.http.post(&url).form(&form), &url).await?;
        if !status.is_success() {
            let subject = match &self.credential {
                Credential::GithubOidc { .. } => form
                    .iter()
                    .find(|(k, _)| *k == "client_assertion")
                    .and_then(|(_, jwt)| jwt_claims(jwt))
                    .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(str::to_string)),
                Credential::ClientSecret(_) => None,
            };
            return Err(entra_error(
                status,
                &body,
                &self.client_id,
                subject.as_deref(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| Error::Protocol {
            url: url.clone(),
            detail: format!("no access token in the answer ({e})"),
        })?;
        let token = Secret::new(answer.access_token, &self.console);
        let expires_at = SystemTime::now() + Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(AccessToken { token, expires_at })
    }

    /// A new GitHub ID token for Entra's audience (protocols.md §3 step 1).
    async fn github_id_token(
        &self,
        request_url: &str,
        request_token: &Secret,
    ) -> Result<Secret, Error> {
        let separator = if request_url.contains('?') { '&' } else { '?' };
        let url = format!("{request_url}{separator}audience=api%3A%2F%2FAzureADTokenExchange");
        let (status, body) = exchange(
            self.http.get(&url).bearer_auth(request_token.expose()),
            request_url,
        )
        .await?;
        if !status.is_success() {
            return Err(Error::GithubOidc {
                status,
                detail: server_text(body.trim()),
            });
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            value: String,
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| Error::Protocol {
            url: request_url.to_string(),
            detail: format!("no `value` in the answer ({e})"),
        })?;
        Ok(Secret::new(answer.value, &self.console))
    }
}

/// Entra's error (`error_description` starts with `AADSTS<code>:`) with a hint for the classic
/// failures.
/// Sends one token request and reads its whole answer: these are small JSON documents, and the
/// error paths need the server's words. `url` names the endpoint in a connection error.
async fn exchange(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(StatusCode, String), Error> {
    let response = request.send().await.map_err(|source| Error::Connection {
        url: url.to_string(),
        source,
    })?;
    let status = response.status();
    Ok((status, response.text().await.unwrap_or_default()))
}

fn entra_error(status: StatusCode, body: &str, client_id: &str, subject: Option<&str>) -> Error {
    #[derive(serde::Deserialize, Default)]
    struct Answer {
        #[serde(default)]
        error: String,
        #[serde(default)]
        error_description: String,
        #[serde(default)]
        error_codes: Vec<u64>,
    }
    let answer: Answer = serde_json::from_str(body).unwrap_or_default();
    let code = answer.error_codes.first().copied().or_else(|| {
        let rest = answer.error_description.strip_prefix("AADSTS")?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    let detail = match (answer.error.is_empty(), answer.error_description.is_empty()) {
        (_, false) => answer
            .error_description
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (false, true) => answer.error.clone(),
        _ if !body.trim().is_empty() => body.trim().to_string(),
        _ => status.canonical_reason().unwrap_or("no reason").to_string(),
    };
    let hint = match code {
        Some(70021) => Some(format!(
            "no federated credential of app {client_id} matches the GitHub token's subject{}: add one for exactly that subject (issuer https://token.actions.githubusercontent.com, audience {GITHUB_AUDIENCE})",
            subject.map(|s| format!(" `{}`", server_text(s))).unwrap_or_default()
        )),
        Some(700024) => Some(
            "the GitHub ID token was expired or not yet valid when Entra checked it; promote requests a fresh one for every exchange, so check the runner's clock".to_string(),
        ),
        Some(7000215) => Some("the client secret is wrong or expired (azure-client-secret)".to_string()),
        Some(700016) => Some(format!(
            "no application {client_id} in this tenant: check azure-client-id and azure-tenant-id"
        )),
        Some(90002) => Some("no such tenant: check azure-tenant-id".to_string()),
        _ => None,
    };
    Error::Entra {
        status,
        code,
        detail: server_text(&detail),
        hint,
    }
}

/// Exchanges an Entra token for an ACR refresh token (`POST https://{registry}/oauth2/exchange`,
/// protocols.md §3 step 3). Registries on loopback are spoken to in `http`, like every registry
/// call (see `registry::scheme_for`).
///
/// # Errors
/// [`Error::AcrExchange`] with the registry's words, [`Error::Connection`].
pub async fn acr_refresh_token(
    http: &reqwest::Client,
    console: &Console,
    registry: &str,
    tenant_id: &str,
    entra: &AccessToken,
) -> Result<Secret, Error> {
    let url = format!("{}://{registry}/oauth2/exchange", scheme_for(registry));
    let (status, body) = exchange(
        http.post(&url).form(&[
            ("grant_type", "access_token"),
            ("service", registry),
            ("tenant", tenant_id),
            ("access_token", entra.token.expose()),
        ]),
        &url,
    )
    .await?;
    if !status.is_success() {
        return Err(Error::AcrExchange {
            registry: registry.to_string(),
            status,
            detail: server_text(body.trim()),
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        refresh_token: String,
    }
    let answer: Answer = serde_json::from_str(&body).map_err(|e| Error::Protocol {
        url,
        detail: format!("no refresh_token in the answer ({e})"),
    })?;
    Ok(Secret::new(answer.refresh_token, console))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_subject_mismatch_names_the_subject() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found for presented assertion.\r\nTrace ID: x","error_codes":[70021]}"#;
        let err = entra_error(
            StatusCode::BAD_REQUEST,
            body,
            "app-1",
            Some("repo:o/r:ref:refs/heads/dev"),
        );
        let text = err.to_string();
        assert!(
            text.contains("AADSTS70021: No matching federated identity record"),
            "{text}"
        );
        assert!(text.contains("`repo:o/r:ref:refs/heads/dev`"), "{text}");
        assert!(!text.contains("Trace ID"), "one line: {text}");
    }

    #[test]
    fn expired_assertion_gets_a_hint_without_error_codes() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range."}"#;
        let Error::Entra { code, hint, .. } =
            entra_error(StatusCode::UNAUTHORIZED, body, "a", None)
        else {
            panic!()
        };
        assert_eq!(code, Some(700024));
        assert!(hint.unwrap().contains("fresh one"));
    }
}
