//! `secrets`: Secrets the workloads read as environment variables, either existing ones by name
//! (`- azure-secrets`) or created from the job's environment
//! (`- { name: azure-secrets, fromEnv: { DATABASE_URL: DEV_DATABASE_URL } }`).
//! Only names are read here; values are read (and masked) when the Secret is applied.

use std::collections::BTreeMap;

use super::read::*;
use crate::config::diagnostics::{Diagnostics, join};
use crate::config::model::SecretRef;
use crate::config::yaml::{Node, Value};

pub(super) fn decode_secrets(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<Vec<SecretRef>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            path,
            format!(
                "expected a list of Secret names or `{{ name, fromEnv }}` entries, found {}",
                node.describe()
            ),
        );
        return None;
    };
    let mut secrets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let secret = match &item.value {
            Value::Map(_) => decode_managed(d, item, path),
            _ => string(d, item, &format!("{path}[{i}]")).map(|name| SecretRef {
                name,
                from_env: BTreeMap::new(),
                pos: item.pos,
            }),
        };
        secrets.extend(secret);
    }
    Some(secrets)
}

fn decode_managed(d: &mut Diagnostics, node: &Node, path: &str) -> Option<SecretRef> {
    let item_path = match node.get("name").and_then(Node::scalar) {
        Some(name) if !name.is_empty() => join(path, name),
        _ => path.to_string(),
    };
    let f = d.fields(node, &item_path, &["name", "fromEnv"])?;
    let name = req_string(d, &f, "name", "the Secret's name");
    let from_env = f
        .required(
            d,
            "fromEnv",
            "Secret keys and the job's environment variables holding their values, e.g. `{ DATABASE_URL: DEV_DATABASE_URL }`",
        )
        .and_then(|n| decode_from_env(d, n, &f.path("fromEnv")));
    Some(SecretRef {
        name: name?,
        from_env: from_env?,
        pos: node.pos,
    })
}

fn decode_from_env(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<BTreeMap<String, String>> {
    let entries = map_entries(
        d,
        node,
        path,
        "a mapping of Secret keys to environment variable names",
    )?;
    if entries.is_empty() {
        d.error(
            node.pos,
            path,
            "give at least one `KEY: ENV_VAR` (or list the Secret by name if it already exists)",
        );
        return None;
    }
    let mut map = BTreeMap::new();
    let mut valid = true;
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default();
        let field = join(path, name);
        if !is_secret_key(name) {
            d.error(
                key.pos,
                &field,
                format!("{name:?} is not a valid Secret key for an environment variable: letters, digits, `_`, `-` and `.`, not starting with a digit, at most 253"),
            );
            valid = false;
        }
        let Some(variable) = string(d, value, &field) else {
            valid = false;
            continue;
        };
        if !is_env_var_name(&variable) {
            d.error(
                value.pos,
                &field,
                format!("{variable:?} is not a valid environment variable name: letters, digits and `_`, not starting with a digit"),
            );
            valid = false;
            continue;
        }
        map.insert(name.to_string(), variable);
    }
    valid.then_some(map)
}

/// A Secret data key (Kubernetes' `IsConfigMapKey`) that envFrom can also turn into a variable:
/// the same rule as `config` keys.
fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !key.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// A POSIX shell variable name, the form GitHub's `env:` and secret names take.
fn is_env_var_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::decode::decode_test_environment as decode;

    #[test]
    fn referenced_and_created_secrets() {
        let env = decode(
            "secrets:
  - azure-secrets
  - name: app-secrets
    fromEnv: { DATABASE_URL: DEV_DATABASE_URL, JWT_SECRET: DEV_JWT_SECRET }",
        )
        .unwrap();
        let [referenced, created] = env.secrets.as_slice() else {
            panic!("two secrets: {:?}", env.secrets)
        };
        assert_eq!(referenced.name, "azure-secrets");
        assert!(!referenced.is_managed());
        assert_eq!(referenced.pos.line, 6);
        assert_eq!(created.name, "app-secrets");
        assert_eq!(created.pos.line, 7);
        let want: BTreeMap<String, String> = [
            ("DATABASE_URL", "DEV_DATABASE_URL"),
            ("JWT_SECRET", "DEV_JWT_SECRET"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(created.from_env, want);
    }

    #[test]
    fn bad_secret_entries() {
        let at = "environments.testing.secrets";
        let mut failures = Vec::new();
        for (body, want) in [
            (
                "secrets: azure-secrets",
                format!(
                    "5:14 {at}: expected a list of Secret names or `{{ name, fromEnv }}` entries"
                ),
            ),
            (
                "secrets: [[a]]",
                format!("5:15 {at}[0]: expected a string, found a list"),
            ),
            (
                "secrets: [{ name: s }]",
                format!("5:15 {at}.s: missing required field `fromEnv`"),
            ),
            (
                "secrets: [{ name: s, fromEnv: {} }]",
                format!("5:35 {at}.s.fromEnv: give at least one `KEY: ENV_VAR`"),
            ),
            (
                "secrets: [{ name: s, fromEnv: [A] }]",
                format!(
                    "5:35 {at}.s.fromEnv: expected a mapping of Secret keys to environment variable names"
                ),
            ),
            (
                "secrets: [{ fromEnv: { A: B } }]",
                format!("5:15 {at}: missing required field `name`"),
            ),
            (
                "secrets: [{ name: s, fromEnv: { A: B }, from: x }]",
                format!("5:45 {at}.s.from: unknown field `from`"),
            ),
            (
                "secrets: [{ name: s, fromEnv: { 1KEY: B } }]",
                format!("5:37 {at}.s.fromEnv.1KEY: \"1KEY\" is not a valid Secret key"),
            ),
            (
                "secrets: [{ name: s, fromEnv: { KEY: DEV-KEY } }]",
                format!(
                    "5:42 {at}.s.fromEnv.KEY: \"DEV-KEY\" is not a valid environment variable name"
                ),
            ),
            (
                "secrets: [{ name: s, fromEnv: { KEY: [A] } }]",
                format!("5:42 {at}.s.fromEnv.KEY: expected a string, found a list"),
            ),
        ] {
            let got = match decode(body) {
                Ok(_) => "(accepted)".to_string(),
                Err(errors) => errors.join("\n"),
            };
            if !got.starts_with(&want) || got.contains('\n') {
                failures.push(format!("{body}\n  want: {want}\n  got:  {got}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    }

    #[test]
    fn secret_keys() {
        for (key, valid) in [
            ("DATABASE_URL", true),
            ("jwt.secret", true),
            ("api-key", true),
            ("", false),
            ("1KEY", false),
            ("KEY WITH SPACE", false),
            ("KEY=1", false),
            (&"K".repeat(254), false),
        ] {
            assert_eq!(is_secret_key(key), valid, "key {key:?}");
        }
    }

    #[test]
    fn environment_variable_names() {
        for (name, valid) in [
            ("DEV_DATABASE_URL", true),
            ("_PRIVATE", true),
            ("lower_case", true),
            ("", false),
            ("9LIVES", false),
            ("DEV-DATABASE", false),
            ("A.B", false),
        ] {
            assert_eq!(is_env_var_name(name), valid, "name {name:?}");
        }
    }
}
