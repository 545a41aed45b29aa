//! An AKS cluster's user credential from Azure Resource Manager: `POST …/listClusterUserCredential`,
//! the call behind `az aks get-credentials`. Its answer is the kubeconfig that names the
//! cluster's server and CA; turning it into a client is `kube::connect`'s.

use reqwest::StatusCode;
use serde_json::Value;

use super::Error;
use super::exchange;
use crate::actions::Secret;
use crate::config::AksCluster;
use crate::untrusted::server_text;

/// Azure Resource Manager's public cloud endpoint; tests pass a double's.
pub const ARM_BASE: &str = "https://management.azure.com";
/// The ARM API version of `listClusterUserCredential` used.
const ARM_API_VERSION: &str = "2024-02-01";

/// The kubeconfig ARM handed out for a cluster's user.
///
/// Not masked, and not printable (`Debug` says `<redacted>`): a cluster with local accounts puts
/// its token or client key in it, which the caller masks value by value when it parses the
/// kubeconfig. Masked whole, it would blank `apiVersion: v1` out of the whole job log.
pub struct UserCredential {
    kubeconfig: String,
}

impl UserCredential {
    /// The kubeconfig, as YAML.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }
}

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCredential(<redacted>)")
    }
}

/// `POST …/managedClusters/{name}/listClusterUserCredential` on `arm_base`.
fn credential_url(arm_base: &str, aks: &AksCluster) -> String {
    format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}/listClusterUserCredential?api-version={ARM_API_VERSION}",
        arm_base.trim_end_matches('/'),
        aks.subscription,
        aks.resource_group,
        aks.name
    )
}

/// The kubeconfig in ARM's answer (`{"kubeconfigs":[{"name":…,"value":<base64>}]}`). Pure.
///
/// # Errors
/// A description of what is missing.
fn parse_credential(body: &str) -> Result<String, String> {
    use base64::Engine as _;
    let answer: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let encoded = answer["kubeconfigs"][0]["value"]
        .as_str()
        .ok_or("no kubeconfigs[0].value in the answer")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "kubeconfigs[0].value is not base64".to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "the kubeconfig is not UTF-8".to_string()))
}

/// What usually fixes ARM's refusal.
fn hint(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("the ARM token was refused: check the identity's tenant"),
        403 => Some(
            "the identity needs `Microsoft.ContainerService/managedClusters/listClusterUserCredential/action` on the cluster (the built-in role \"Azure Kubernetes Service Cluster User Role\")",
        ),
        404 => Some("check cluster.aks (subscription, resourceGroup, name) in promotion.yml"),
        _ => None,
    }
}

/// Asks ARM at `arm_base` ([`ARM_BASE`]) for the user credential of `aks`, with an Entra token
/// for ARM's scope (`super::ARM_SCOPE`).
///
/// # Errors
/// [`Error::Arm`] with ARM's words and a hint for 401/403/404, [`Error::ArmCredential`] for an
/// answer without a kubeconfig, [`Error::Connection`].
pub async fn user_credential(
    http: &reqwest::Client,
    arm_base: &str,
    arm_token: &Secret,
    aks: &AksCluster,
) -> Result<UserCredential, Error> {
    let cluster = format!("{}/{}", aks.resource_group, aks.name);
    let url = credential_url(arm_base, aks);
    let (status, body) = exchange(
        http.post(&url)
            .bearer_auth(arm_token.expose())
            .header(reqwest::header::CONTENT_LENGTH, "0"),
        &url,
    )
    .await?;
    if !status.is_success() {
        let detail = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        return Err(Error::Arm {
            cluster,
            status,
            detail: server_text(detail.trim()),
            hint: hint(status),
        });
    }
    let kubeconfig =
        parse_credential(&body).map_err(|detail| Error::ArmCredential { cluster, detail })?;
    Ok(UserCredential { kubeconfig })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn credential_url_names_the_cluster() {
        let aks = AksCluster {
            subscription: "sub-1".into(),
            resource_group: "rg".into(),
            name: "aks-1".into(),
        };
        assert_eq!(
            credential_url("https://management.azure.com/", &aks),
            "https://management.azure.com/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1/listClusterUserCredential?api-version=2024-02-01"
        );
    }

    #[test]
    fn the_kubeconfig_is_the_first_value_decoded() {
        let body = serde_json::json!({
            "kubeconfigs": [{
                "name": "clusterUser",
                "value": base64::engine::general_purpose::STANDARD.encode("clusters: []"),
            }]
        })
        .to_string();
        assert_eq!(parse_credential(&body).as_deref(), Ok("clusters: []"));
        assert!(
            parse_credential("{}")
                .unwrap_err()
                .contains("kubeconfigs[0].value")
        );
        assert!(
            parse_credential(r#"{"kubeconfigs":[{"value":"%%"}]}"#)
                .unwrap_err()
                .contains("not base64")
        );
    }

    #[test]
    fn refusals_say_what_fixes_them() {
        let err = Error::Arm {
            cluster: "rg/aks".into(),
            status: StatusCode::FORBIDDEN,
            detail: "no authorization".into(),
            hint: hint(StatusCode::FORBIDDEN),
        };
        let text = err.to_string();
        assert!(text.contains("answered 403 Forbidden"), "{text}");
        assert!(text.contains("Cluster User Role"), "{text}");
        assert_eq!(hint(StatusCode::INTERNAL_SERVER_ERROR), None);
    }
}
