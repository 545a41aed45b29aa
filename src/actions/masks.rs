//! The process-wide list of values that must never be printed, and [`redact`], which every
//! line leaving the process goes through. Knows nothing of workflow commands: [`super::secret`]
//! tells the runner.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

/// Every registered secret, longest first, so that [`redact`] replaces a secret before any
/// shorter secret inside it (one kubeconfig line is a substring of the whole kubeconfig).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The shortest line of a multi-line secret worth masking on its own. Shorter lines are
/// structure (`}`, `---`, `- a`); masking them would turn every brace in the job log into `***`
/// and hide nothing.
const MIN_LINE_LEN: usize = 4;

/// What [`redact`] puts in place of a secret: the runner's own mask.
const MASK: &str = "***";

/// Adds `value` and its lines to the registry and returns the parts that were not registered
/// before.
pub(super) fn register(value: &str) -> Vec<String> {
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
    let mut added = Vec::new();
    for part in parts {
        if secrets.iter().any(|known| known == part) {
            continue;
        }
        // Keep the list sorted longest first; equal lengths keep registration order.
        let at = secrets.partition_point(|known| known.len() >= part.len());
        secrets.insert(at, part.to_owned());
        added.push(part.to_owned());
    }
    added
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

/// A value no other test uses, so tests can share the process-wide registry while running in
/// parallel: clearing it would unmask another test's secrets halfway through.
#[cfg(test)]
pub(crate) fn unique_secret(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{n}-unique", std::process::id())
}
