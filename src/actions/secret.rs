//! Secret values: masked the moment they are read, mirrored to the runner with `::add-mask::`,
//! and never printed.

use std::io::Write;

use serde::{Serialize, Serializer};

use super::commands::{Console, escape_data};
use super::masks::register;

/// Registers `value` as a secret and, in Actions, tells the runner to mask it too.
///
/// The runner masks log output line by line, so a multi-line value (a kubeconfig, a PEM key)
/// registered whole never matches anything it prints. Each line trimmed of surrounding
/// whitespace is therefore registered as well, when it has at least 4 characters; the whole
/// value is registered as-is, for [`redact`], whose input may span lines.
///
/// The value is added to this process's list before any `::add-mask::` line is written, and
/// stdout is flushed afterwards, so nothing printed after `mask` returns can show it.
///
/// # Caveats
/// Masking works on exact text: a secret that is base64-encoded or split before printing is
/// not caught. Mask the encoded form too when you print one.
pub fn mask(value: &str, console: &Console) {
    let commands = add_mask_commands(value);
    if console.in_actions() && !commands.is_empty() {
        let mut out = std::io::stdout().lock();
        for command in &commands {
            // A failed write to stdout is not worth a panic; see `commands::emit_stdout`.
            let _ = writeln!(out, "{command}");
        }
        let _ = out.flush();
    }
}

/// The `::add-mask::` commands for the parts of `value` not registered before.
///
/// Built by hand, not with `command_line`: that function redacts, and a mask command that
/// prints `***` would mask nothing.
fn add_mask_commands(value: &str) -> Vec<String> {
    register(value)
        .iter()
        .map(|part| format!("::add-mask::{}", escape_data(part)))
        .collect()
}

/// A secret value (a token, a kubeconfig) that is masked the moment it is created and cannot be
/// printed: `Debug`, `Display` and `Serialize` all show `<redacted>`, so it can sit in a struct
/// that is logged or written to the JSON report. Read the value with [`Secret::expose`], at the
/// one place that sends it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` and [`mask`]s it at once.
    pub fn new(value: impl Into<String>, console: &Console) -> Secret {
        let value = value.into();
        mask(&value, console);
        Secret(value)
    }

    /// The value itself, for the request that needs it. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::actions::masks::{redact, unique_secret};

    // Every line of at least 4 characters in these tests is unique: the registry is shared by
    // all tests in the binary, and masking a common line ("users:") would redact other tests'
    // output.

    #[test]
    fn multi_line_secret_gets_one_add_mask_per_line() {
        let first = unique_secret("client-key-data");
        let second = unique_secret("token");
        let value = format!("  - {first}\n\t{second}  \n  ab\n}}\n");
        let commands = add_mask_commands(&value);
        let whole = format!("::add-mask::{}", escape_data(&value));
        assert_eq!(
            commands,
            vec![
                whole,
                format!("::add-mask::{}", escape_data(value.trim())),
                format!("::add-mask::- {first}"),
                format!("::add-mask::{second}"),
            ]
        );
        assert!(commands.iter().all(|c| !c.contains('\n')), "{commands:#?}");
    }

    #[test]
    fn registering_twice_prints_nothing_new() {
        let value = unique_secret("again");
        assert_eq!(
            add_mask_commands(&value),
            vec![format!("::add-mask::{value}")]
        );
        assert!(add_mask_commands(&value).is_empty());
    }

    #[test]
    fn empty_value_masks_nothing() {
        assert!(add_mask_commands("").is_empty());
        assert!(add_mask_commands(" \n\t").is_empty());
    }

    #[test]
    fn redact_replaces_every_occurrence_longest_first() {
        let short = unique_secret("pw");
        let long = format!("{short}-and-more");
        mask(&short, &Console::new(false));
        mask(&long, &Console::new(false));
        let text = format!("a {long} b {short} c");
        assert_eq!(redact(&text), "a *** b *** c");
        assert!(matches!(redact("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redact_catches_each_line_of_a_kubeconfig() {
        let token = unique_secret("token");
        let (users, user) = (unique_secret("users"), unique_secret("user"));
        let kubeconfig = format!("{users}:\n- {user}:\n    token: {token}\n");
        mask(&kubeconfig, &Console::new(false));
        let logged = format!("sending token: {token}");
        assert!(!redact(&logged).contains(&token));
    }

    #[test]
    fn secret_never_prints_its_value() {
        let value = unique_secret("secret");
        let secret = Secret::new(value.clone(), &Console::new(false));
        assert_eq!(secret.expose(), value);
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
        let json = serde_json::to_string(&serde_json::json!({ "token": secret }));
        assert_eq!(json.ok().as_deref(), Some(r#"{"token":"<redacted>"}"#));
        assert_eq!(redact(&value), "***", "creating a Secret masks it");
    }
}
