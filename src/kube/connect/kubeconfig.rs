//! Reading kubeconfigs (the `kubeconfig` input's content, a file, kube's default) and masking
//! their credentials the moment they are read: only the credential values, since masking every
//! line would blank `apiVersion: v1` and `- name: …` out of the whole job log.

use std::path::Path;

use base64::Engine as _;
use kube::config::Kubeconfig;
use serde_json::Value;

use super::ConnectError;
use crate::actions::{Console, mask};

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
pub(super) fn mask_kubeconfig(kubeconfig: &Kubeconfig, console: &Console) {
    // AuthInfo serializes its secret strings in the clear: exactly what is needed here.
    if let Ok(value) = serde_json::to_value(kubeconfig) {
        for secret in kubeconfig_secrets(&value) {
            mask(&secret, console);
        }
    }
}

pub(super) fn check_context(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
) -> Result<(), ConnectError> {
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

pub(super) fn read_path(path: &Path) -> Result<Kubeconfig, ConnectError> {
    Kubeconfig::read_from(path).map_err(|source| ConnectError::ReadPath {
        path: path.to_path_buf(),
        source,
    })
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
}
