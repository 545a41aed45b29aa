//! Typed readers: each reads one kind of value from a node, reports its own error (located,
//! with the field's path) and returns `None`, so a section goes on and every error is found.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::diagnostics::{Diagnostics, Fields, join};
use crate::config::units::{self, IntOrPercent, Quantity};
use crate::config::yaml::{Node, PlainKind, Pos, Value, plain_kind};

/// A list whose items are named: the item's path uses its `name` (`environments.testing`) when
/// it has one, its index otherwise.
pub(super) fn list<T>(
    d: &mut Diagnostics,
    node: &Node,
    field: &str,
    mut item: impl FnMut(&mut Diagnostics, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            field,
            format!("expected a list, found {}", node.describe()),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let path = match n.get("name").and_then(Node::scalar) {
                Some(name) if !name.is_empty() => format!("{field}.{name}"),
                _ => format!("{field}[{i}]"),
            };
            item(d, n, &path)
        })
        .collect()
}

pub(super) fn opt<T>(
    d: &mut Diagnostics,
    f: &Fields<'_>,
    key: &str,
    read: impl FnOnce(&mut Diagnostics, &Node, &str) -> Option<T>,
) -> Option<T> {
    let node = f.get(key)?;
    read(d, node, &f.path(key))
}

pub(super) fn req_string(
    d: &mut Diagnostics,
    f: &Fields<'_>,
    key: &str,
    what: &str,
) -> Option<String> {
    let node = f.required(d, key, what)?;
    let value = string(d, node, &f.path(key))?;
    if value.trim().is_empty() {
        d.error(
            node.pos,
            &f.path(key),
            format!("must not be empty ({what})"),
        );
        return None;
    }
    Some(value)
}

/// The text of a scalar, refusing lists and mappings.
pub(super) fn scalar_text(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    expected: &str,
) -> Option<String> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected {expected}, found {}", node.describe()),
            );
            None
        }
    }
}

/// The entries of a mapping, or an "expected {what}" error at the node.
pub(super) fn map_entries<'a>(
    d: &mut Diagnostics,
    node: &'a Node,
    path: &str,
    what: &str,
) -> Option<&'a [(Node, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// A string: any scalar, taken as written, so `on`, `no` or `3.10` stay strings.
pub(super) fn string(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    scalar_text(d, node, path, "a string")
}

pub(super) fn boolean(d: &mut Diagnostics, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
            PlainKind::Bool(b) => Some(b),
            _ => {
                d.error(
                    node.pos,
                    path,
                    format!("expected `true` or `false`, found {}", node.describe()),
                );
                None
            }
        },
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected `true` or `false`, found {}", node.describe()),
            );
            None
        }
    }
}

pub(super) fn uint(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let found = match &node.value {
        Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
            PlainKind::Int(i) if i >= 0 => Some(i as u64),
            PlainKind::Int(i) => {
                d.error(
                    node.pos,
                    path,
                    format!("expected an integer from {min} to {max}, found {i}"),
                );
                return None;
            }
            _ => None,
        },
        _ => None,
    };
    match found {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            d.error(
                node.pos,
                path,
                format!("expected an integer from {min} to {max}, found {n}"),
            );
            None
        }
        None => {
            d.error(
                node.pos,
                path,
                format!("expected an integer, found {}", node.describe()),
            );
            None
        }
    }
}

pub(super) fn string_list(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<String>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            path,
            format!("expected a list of strings, found {}", node.describe()),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        out.push(string(d, item, &format!("{path}[{i}]"))?);
    }
    Some(out)
}

/// A mapping of strings to strings (ConfigMap data, env): values keep their source text,
/// so YAML 1.1 booleans like `on` and numbers like `010` arrive exactly as written.
pub(super) fn string_map(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<BTreeMap<String, String>> {
    let entries = map_entries(d, node, path, "a mapping of names to strings")?;
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default().to_string();
        let field = join(path, &name);
        let text = if value.is_null() {
            Some(String::new())
        } else {
            string(d, value, &field)
        };
        if let Some(text) = text {
            map.insert(name, text);
        }
    }
    Some(map)
}

pub(super) fn one_of<T: Clone>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let text = string(d, node, path)?;
    if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text) {
        return Some(value.clone());
    }
    let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
    d.error(
        node.pos,
        path,
        format!("expected one of {}, found {text:?}", names.join(", ")),
    );
    None
}

pub(super) fn with_parser<T>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let text = scalar_text(d, node, path, "a scalar value")?;
    parse(&text).map_err(|e| d.error(node.pos, path, e)).ok()
}

pub(super) fn quantity(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Quantity> {
    with_parser(d, node, path, units::parse_quantity)
}

pub(super) fn duration(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Duration> {
    with_parser(d, node, path, units::parse_duration)
}

pub(super) fn percent(d: &mut Diagnostics, node: &Node, path: &str) -> Option<f64> {
    with_parser(d, node, path, units::parse_percent)
}

pub(super) fn int_or_percent(d: &mut Diagnostics, node: &Node, path: &str) -> Option<IntOrPercent> {
    with_parser(d, node, path, units::parse_int_or_percent)
}

/// Where a field is, for checks that run after decoding.
pub(super) fn field_pos(root: &Node, path: &[&str]) -> Option<Pos> {
    let mut node = root;
    for key in path {
        node = node.get(key)?;
    }
    Some(node.pos)
}

/// Where `key` itself is written in a mapping, for errors about the field's presence rather than
/// its value.
pub(super) fn key_pos(node: &Node, key: &str) -> Option<Pos> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.scalar() == Some(key))
        .map(|(k, _)| k.pos)
}

/// A finite number, integer or not (`0.01`, `1`, `1e3`).
pub(super) fn number(d: &mut Diagnostics, node: &Node, path: &str) -> Option<f64> {
    if let Value::Scalar { text, quoted } = &node.value {
        match plain_kind(text, *quoted) {
            PlainKind::Int(i) => return Some(i as f64),
            PlainKind::Float(f) if f.is_finite() => return Some(f),
            _ => {}
        }
    }
    d.error(
        node.pos,
        path,
        format!("expected a number, found {}", node.describe()),
    );
    None
}

/// An absolute `http://` or `https://` URL with a host.
pub(super) fn http_url(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    let text = string(d, node, path)?;
    match check_http_url(&text) {
        Ok(()) => Some(text),
        Err(why) => {
            d.error(node.pos, path, why);
            None
        }
    }
}

fn check_http_url(text: &str) -> Result<(), String> {
    let expected = format!("expected an absolute http(s) URL, found {text:?}");
    // The URL standard's parser forgives what a person should fix (`https:///x` becomes
    // `https://x/`), so the text itself must start with the scheme and a host.
    let after_scheme = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    if after_scheme.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        return Err(expected);
    }
    let url = reqwest::Url::parse(text).map_err(|_| expected.clone())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(expected);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        for (url, ok) in [
            ("http://prometheus.monitoring:9090", true),
            ("https://prom.example.com/prometheus", true),
            ("http://127.0.0.1:9090/", true),
            ("prometheus.monitoring:9090", false),
            ("prometheus:9090", false),
            ("ftp://prom.example.com", false),
            ("http://", false),
            ("https:///path", false),
            ("", false),
        ] {
            assert_eq!(check_http_url(url).is_ok(), ok, "{url:?}");
        }
    }
}
