//! The action's inputs, defined once. `action.yml`, the README table and the CLI flags are
//! checked against this table by tests, so none of them can drift.
//!
//! Under Actions the runner passes inputs as `INPUT_<NAME>` (upper-cased, spaces → `_`, hyphens
//! kept: `INPUT_OUTPUT-DIR`); an empty value means "not given". They are turned into the same
//! command line a person would type, so one parser (clap) validates both sources.

use std::ffi::OsString;

/// How an input becomes command-line arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Selects the subcommand.
    Command,
    /// `--name value`.
    Value,
    /// A secret: masked the moment it is read, then passed as `--name value`.
    Secret,
    /// One `--flag value` per non-empty line (`images`: one image per line, like k8s-deploy).
    Lines(&'static str),
    /// `true`/`false`; `--name` when true.
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub struct InputDef {
    pub name: &'static str,
    pub description: &'static str,
    /// The default `action.yml` declares; `None` for no default.
    pub default: Option<&'static str>,
    pub kind: InputKind,
}

pub const INPUTS: &[InputDef] = &[
    InputDef {
        name: "command",
        description: "What to do: `plan` renders every environment's objects without a cluster.",
        default: Some("plan"),
        kind: InputKind::Command,
    },
    InputDef {
        name: "config",
        description: "Path of the promotion file, relative to the workspace.",
        default: Some("promotion.yml"),
        kind: InputKind::Value,
    },
    InputDef {
        name: "environment",
        description: "Environment to act on (a name from the promotion file); empty means all for `plan`.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "service",
        description: "Limit the step to one service; empty means every service.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "images",
        description: "Images to pin, one per line, as `[SERVICE=]REGISTRY/REPOSITORY@sha256:…` (the service prefix may be left out with one service).",
        default: None,
        kind: InputKind::Lines("image"),
    },
    InputDef {
        name: "output-dir",
        description: "Directory to write the rendered objects to, one multi-document YAML file per environment and service.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "github-token",
        description: "Token for the GitHub API (deployments, environments, PR comments).",
        default: Some("${{ github.token }}"),
        kind: InputKind::Secret,
    },
];

/// Outputs the action declares, with their descriptions (also checked against action.yml).
pub const OUTPUTS: &[(&str, &str)] = &[
    (
        "outcome",
        "How the step ended: success, failed, invalid, refused or rollback-failed (the exit code as a word).",
    ),
    (
        "digest",
        "The image digest (`sha256:…`) the step worked with, when there is exactly one.",
    ),
    (
        "image",
        "The pinned image reference (`registry/repository@sha256:…`), when there is exactly one.",
    ),
    (
        "revision",
        "The Deployment revision after the step (deploy and run).",
    ),
    (
        "environment-url",
        "The environment's URL from the promotion file.",
    ),
    ("report-path", "Path of the JSON report the step wrote."),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("input `{name}`: expected `true` or `false`, found {value:?}")]
    NotABool { name: &'static str, value: String },
}

/// The environment variable the runner sets for an input.
pub fn env_name(input: &str) -> String {
    format!("INPUT_{}", input.replace(' ', "_").to_uppercase())
}

/// Builds the command line from `INPUT_*` variables. `get` returns a variable's value; `mask`
/// is called with every secret before anything else happens to it.
pub fn argv_from_inputs(
    get: impl Fn(&str) -> Option<String>,
    mut mask: impl FnMut(&str),
) -> Result<Vec<OsString>, InputError> {
    let value_of = |def: &InputDef| {
        get(&env_name(def.name))
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                def.default
                    .filter(|d| !d.contains("${{"))
                    .map(str::to_string)
            })
    };
    let mut argv: Vec<OsString> = vec!["promote".into()];
    let mut rest: Vec<OsString> = Vec::new();
    for def in INPUTS {
        let Some(value) = value_of(def) else { continue };
        match def.kind {
            InputKind::Command => argv.push(value.trim().into()),
            InputKind::Value => {
                rest.push(format!("--{}", def.name).into());
                rest.push(value.trim().into());
            }
            InputKind::Secret => {
                mask(&value);
                rest.push(format!("--{}", def.name).into());
                rest.push(value.trim().into());
            }
            InputKind::Lines(flag) => {
                for line in value
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    rest.push(format!("--{flag}").into());
                    rest.push(line.into());
                }
            }
            InputKind::Bool => match value.trim() {
                "true" | "True" | "TRUE" => rest.push(format!("--{}", def.name).into()),
                "false" | "False" | "FALSE" => {}
                other => {
                    return Err(InputError::NotABool {
                        name: def.name,
                        value: other.to_string(),
                    });
                }
            },
        }
    }
    argv.extend(rest);
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn argv(vars: &[(&str, &str)]) -> Vec<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        argv_from_inputs(|k| vars.get(k).cloned(), |_| {})
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn hyphens_are_kept_in_variable_names() {
        assert_eq!(env_name("output-dir"), "INPUT_OUTPUT-DIR");
        assert_eq!(env_name("github token"), "INPUT_GITHUB_TOKEN");
    }

    #[test]
    fn empty_inputs_count_as_not_given_and_defaults_apply() {
        let args = argv(&[("INPUT_ENVIRONMENT", ""), ("INPUT_OUTPUT-DIR", "out")]);
        assert_eq!(
            args,
            [
                "promote",
                "plan",
                "--config",
                "promotion.yml",
                "--output-dir",
                "out"
            ]
        );
    }

    #[test]
    fn lines_become_repeated_flags_and_secrets_are_masked_first() {
        let vars: HashMap<String, String> = [
            ("INPUT_COMMAND", "plan"),
            ("INPUT_IMAGES", "a=r.io/a@x\n\n  b=r.io/b@y \n# comment\n"),
            ("INPUT_GITHUB-TOKEN", "ghs_secret"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut masked = Vec::new();
        let args =
            argv_from_inputs(|k| vars.get(k).cloned(), |s| masked.push(s.to_string())).unwrap();
        assert_eq!(masked, ["ghs_secret"]);
        let args: Vec<String> = args.into_iter().map(|s| s.into_string().unwrap()).collect();
        assert!(args.windows(2).any(|w| w == ["--image", "a=r.io/a@x"]));
        assert!(args.windows(2).any(|w| w == ["--image", "b=r.io/b@y"]));
    }

    #[test]
    fn the_table_is_kebab_case_without_duplicates_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for def in INPUTS {
            assert!(seen.insert(def.name), "duplicate input {}", def.name);
            assert!(
                def.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "input {} is not kebab-case",
                def.name
            );
            assert!(
                def.description.ends_with('.'),
                "input {} needs a sentence",
                def.name
            );
        }
        for (name, _) in OUTPUTS {
            assert!(seen.insert(name), "output {name} shadows an input");
        }
    }
}
