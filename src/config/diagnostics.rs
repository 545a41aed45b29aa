//! Config errors, collected rather than thrown: every problem of a file is reported in one run,
//! each with file, line, column and the dotted path of the field.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::{Node, Pos, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub pos: Pos,
    /// Dotted path of the field, e.g. `environments.testing.replicas`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Errors about command-line input have no file.
        if !self.file.as_os_str().is_empty() {
            write!(
                f,
                "{}:{}:{}: ",
                self.file.display(),
                self.pos.line,
                self.pos.col
            )?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// All the errors of one validation run; the error type of `config::load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let files: std::collections::BTreeSet<_> = self
            .0
            .iter()
            .filter(|e| !e.file.as_os_str().is_empty())
            .map(|e| e.file.display().to_string())
            .collect();
        let what = if files.is_empty() {
            "invalid input".to_string()
        } else {
            format!(
                "invalid configuration in {}",
                files.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        write!(
            f,
            "{what}: {n} error{} (nothing was changed)",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while decoding one file.
#[derive(Debug)]
pub struct Diagnostics {
    file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl Diagnostics {
    pub fn new(file: &Path) -> Self {
        Diagnostics {
            file: file.to_path_buf(),
            errors: Vec::new(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn error(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            pos,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Records an error located in another file (a manifest) while validating this one.
    pub fn error_in(&mut self, file: &Path, pos: Pos, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: file.to_path_buf(),
            pos,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Checks that `node` is a mapping whose keys are all in `allowed`, reporting unknown keys
    /// with a near-miss suggestion. Returns `None` (after reporting) when it is not a mapping.
    pub fn fields<'a>(
        &mut self,
        node: &'a Node,
        field: &str,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                field,
                format!("expected a mapping, found {}", node.describe()),
            );
            return None;
        };
        for (key, _) in entries {
            let name = key.scalar().unwrap_or_default();
            if !allowed.contains(&name) {
                let hint = match suggest(name, allowed) {
                    Some(s) => format!(", did you mean `{s}`?"),
                    None => format!(" (expected one of: {})", allowed.join(", ")),
                };
                self.error(
                    key.pos,
                    &join(field, name),
                    format!("unknown field `{name}`{hint}"),
                );
            }
        }
        Some(Fields {
            node,
            field: field.to_string(),
        })
    }
}

/// A validated mapping: look fields up by name; each lookup knows the field's dotted path.
pub struct Fields<'a> {
    pub node: &'a Node,
    pub field: String,
}

impl<'a> Fields<'a> {
    /// The value of `key`, treating an explicit `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key).filter(|n| !n.is_null())
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.field, key)
    }

    /// The value of a required field, reporting it missing at the mapping's position.
    pub fn required(&self, d: &mut Diagnostics, key: &str, what: &str) -> Option<&'a Node> {
        let found = self.get(key);
        if found.is_none() {
            d.error(
                self.node.pos,
                &self.field,
                format!("missing required field `{key}` ({what})"),
            );
        }
        found
    }
}

pub fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// The allowed name closest to `name`, if it is close enough to be a likely typo or a spelling
/// in another case style (`health-path` for `healthPath`).
pub fn suggest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
    if let Some(same) = allowed.iter().find(|a| fold(a) == fold(name)) {
        return Some(same);
    }
    let (best, distance) = allowed
        .iter()
        .map(|a| (*a, edit_distance(&fold(name), &fold(a))))
        .min_by_key(|(_, d)| *d)?;
    // Two edits catch most typos without suggesting unrelated short names.
    (distance <= 2.min(name.len() / 2).max(1)).then_some(best)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_and_case_styles() {
        let allowed = ["replicas", "resources", "healthPath", "namespace"];
        assert_eq!(suggest("replica", &allowed), Some("replicas"));
        assert_eq!(suggest("health-path", &allowed), Some("healthPath"));
        assert_eq!(suggest("namespce", &allowed), Some("namespace"));
        assert_eq!(suggest("colour", &allowed), None);
    }
}
