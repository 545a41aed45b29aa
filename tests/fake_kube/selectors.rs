//! Label selectors (`app=web,tier in (a,b),!canary`, and `matchLabels`/`matchExpressions`
//! objects) and field selectors (`metadata.name=web,status.phase!=Running`).

use serde_json::{Map, Value};

use super::resources::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector. The empty selector matches everything; [`LabelSelector::nothing`]
/// matches nothing (what a controller does with a missing `spec.selector`).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            reqs: Vec::new(),
            nothing: true,
        }
    }

    /// The query-string form, as `labels.Parse` accepts it.
    ///
    /// # Errors
    /// The apiserver's wording for a requirement it cannot parse.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term)?);
        }
        Ok(LabelSelector {
            reqs,
            nothing: false,
        })
    }

    /// A `metav1.LabelSelector` object; `null` selects nothing.
    pub fn from_object(sel: &Value) -> LabelSelector {
        let Some(obj) = sel.as_object() else {
            return LabelSelector::nothing();
        };
        let mut reqs = Vec::new();
        if let Some(labels) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Eq,
                    values: vec![v.as_str().unwrap_or_default().to_string()],
                });
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let op = match e["operator"].as_str().unwrap_or_default() {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    _ => return LabelSelector::nothing(),
                };
                let values = e["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(Requirement {
                    key: e["key"].as_str().unwrap_or_default().to_string(),
                    op,
                    values,
                });
            }
        }
        LabelSelector {
            reqs,
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        if self.nothing {
            return false;
        }
        self.reqs.iter().all(|r| {
            let value = labels.get(&r.key).and_then(Value::as_str);
            match r.op {
                Op::Eq => value == Some(r.values[0].as_str()),
                Op::NotEq => value != Some(r.values[0].as_str()),
                Op::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    /// The selector as a string (`app=web,tier in (a,b)`), as the Scale subresource reports it.
    pub fn to_text(&self) -> String {
        self.reqs
            .iter()
            .map(|r| match r.op {
                Op::Eq => format!("{}={}", r.key, r.values[0]),
                Op::NotEq => format!("{}!={}", r.key, r.values[0]),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let bad = |why: &str| format!("unable to parse requirement: {why}: \"{term}\"");
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        check_key(key).map_err(|e| bad(&e))?;
        return Ok(Requirement {
            key: key.into(),
            op: Op::DoesNotExist,
            values: Vec::new(),
        });
    }
    for (word, op) in [(" notin ", Op::NotIn), (" in ", Op::In)] {
        if let Some((key, rest)) = term.split_once(word) {
            let key = key.trim();
            check_key(key).map_err(|e| bad(&e))?;
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| bad("found '', expected: '('"))?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            for v in &values {
                check_value(v).map_err(|e| bad(&e))?;
            }
            return Ok(Requirement {
                key: key.into(),
                op,
                values,
            });
        }
    }
    for (sep, op) in [("!=", Op::NotEq), ("==", Op::Eq), ("=", Op::Eq)] {
        if let Some((key, value)) = term.split_once(sep) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key).map_err(|e| bad(&e))?;
            check_value(value).map_err(|e| bad(&e))?;
            return Ok(Requirement {
                key: key.into(),
                op,
                values: vec![value.into()],
            });
        }
    }
    check_key(term).map_err(|e| bad(&e))?;
    Ok(Requirement {
        key: term.into(),
        op: Op::Exists,
        values: Vec::new(),
    })
}

/// A label key: an optional DNS subdomain prefix and `/`, then a qualified name.
pub fn check_key(key: &str) -> Result<(), String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix) {
                return Err(format!(
                    "prefix part of key \"{key}\" must be a DNS-1123 subdomain"
                ));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > 63 || !is_qualified_name(name) {
        return Err(format!(
            "name part of key \"{key}\" must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or up to 63 characters of a qualified name.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_qualified_name(value)) {
        Ok(())
    } else {
        Err(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
             or '.', and must start and end with an alphanumeric character (value \"{value}\")"
        ))
    }
}

fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// RFC 1123 label: lower-case alphanumerics and `-`, alphanumeric at both ends, at most 63.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// # Errors
    /// `field label not supported: x` for a field the resource does not index, as the real
    /// server answers (400).
    pub fn parse(text: &str, rt: &ResourceType) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !rt.selectable_fields().contains(&field)
            {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn matches(&self, o: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| {
            let actual = field_value(o, field);
            (actual == *value) == *eq
        })
    }
}

fn field_value(o: &Value, field: &str) -> String {
    // Jobs index `status.succeeded` under this name.
    let field = if field == "status.successful" {
        "status.succeeded"
    } else {
        field
    };
    if field == "source" {
        return o["source"]["component"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let mut at = o;
    for part in field.split('.') {
        at = &at[part];
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
