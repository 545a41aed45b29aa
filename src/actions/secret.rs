//! Secret masking: a process-wide list of values that must never be printed, mirrored to the
//! runner with `::add-mask::`.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{PoisonError, RwLock};

use serde::{Serialize, Serializer};

use super::commands::{Console, escape_data};

/// Every registered secret, longest first, so that [`redact`] replaces a secret before any
/// shorter secret inside it (one kubeconfig line is a substring of the whole kubeconfig).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The shortest line of a multi-line secret worth masking on its own. Shorter lines are
/// structure (`}`, `---`, `- a`); masking them would turn every brace in the job log into `***`
/// and hide nothing.
const MIN_LINE_LEN: usize = 4;

/// What [`redact`] puts in place of a secret: the runner's own mask.
const MASK: &str = "***";

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
    let commands = register(value);
    if console.in_actions() && !commands.is_empty() {
        let mut out = std::io::stdout().lock();
        for command in &commands {
            // A failed write to stdout is not worth a panic; see `commands::emit_stdout`.
            let _ = writeln!(out, "{command}");
        }
        let _ = out.flush();
    }
}

/// Adds `value` and its lines to the registry and returns the `::add-mask::` commands for the
/// parts that were not registered before.
///
/// These commands are built by hand, not with `command_line`: that function redacts, and a mask
/// command that prints `***` would mask nothing.
fn register(value: &str) -> Vec<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !value.trim().is_empty() {
        parts.push(value);
        parts.push(value.trim());
    }
    for line in value.lines().map(str::trim) {
        if line.chars().count() >= MIN_LINE_LEN {
            parts.push(line);
        }
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    let mut commands = Vec::new();
    for part in parts {
        if secrets.iter().any(|known| known == part) {
            continue;
        }
        // Keep the list sorted longest first; equal lengths keep registration order.
        let at = secrets.partition_point(|known| known.len() >= part.len());
        secrets.insert(at, part.to_owned());
        commands.push(format!("::add-mask::{}", escape_data(part)));
    }
    commands
}

/// Replaces every registered secret in `text` with `***`, longest secret first.
///
/// Borrows when there is nothing to replace, which is the common case, so it is cheap to call on
/// every line that leaves the process.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
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

/// A value no other test uses, so tests can share the process-wide registry while running in
/// parallel: clearing it would unmask another test's secrets halfway through.
#[cfg(test)]
pub(crate) fn unique_secret(label: &str) -> String {
    let delimiter = super::files::random_delimiter();
    let random = delimiter.trim_start_matches("ghadelimiter_");
    format!("{label}-{random}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every line of at least 4 characters in these tests is unique: the registry is shared by
    // all tests in the binary, and masking a common line ("users:") would redact other tests'
    // output.

    #[test]
    fn multi_line_secret_gets_one_add_mask_per_line() {
        let first = unique_secret("client-key-data");
        let second = unique_secret("token");
        let value = format!("  - {first}\n\t{second}  \n  ab\n}}\n");
        let commands = register(&value);
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
        assert_eq!(register(&value), vec![format!("::add-mask::{value}")]);
        assert!(register(&value).is_empty());
    }

    #[test]
    fn empty_value_masks_nothing() {
        assert!(register("").is_empty());
        assert!(register(" \n\t").is_empty());
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
