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
    /// A document that holds credentials (a kubeconfig), passed as `--name value`. It is not
    /// masked whole: that masks each of its lines, and common lines (`apiVersion: v1`) would
    /// vanish from the whole job log. The code that parses it masks each credential value.
    Credentials,
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
        description: "What to do: `run` (promote to `environment`), `plan`, `push`, `copy`, `deploy`, `verify`, `rollback`, `retire` (scale down blue-green previous colours past `keepPrevious`), `history`, `status`, `metrics`, `drift` (compare the environments' clusters with each other and the promotion file; exit 1 on undeclared drift), `environments sync` or `environments check` (see the README).",
        default: Some("run"),
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
        description: "Environment to act on (a name from the promotion file); empty means all for `plan`, `status`, `metrics`, `drift` and `retire`.",
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
    InputDef {
        name: "source",
        description: "Image to push (`push`: an OCI image layout directory, an OCI archive or a `docker save` tar) or to copy (`copy`: `REGISTRY/REPOSITORY@sha256:…`).",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "tags",
        description: "Tags to set on the pushed or copied image once it is complete, one per line.",
        default: None,
        kind: InputKind::Lines("tag"),
    },
    InputDef {
        name: "registry-username",
        description: "Registry user name (ACR admin user, scope-map token name or service principal app id); with `registry-password`.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "registry-password",
        description: "Password or token for `registry-username`.",
        default: None,
        kind: InputKind::Secret,
    },
    InputDef {
        name: "azure-client-id",
        description: "Client id of the Entra app registration to sign in to Azure with (GitHub OIDC, or `azure-client-secret`).",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "azure-tenant-id",
        description: "Entra tenant id of that app registration.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "azure-client-secret",
        description: "A service principal's client secret, instead of GitHub OIDC (which needs `permissions: id-token: write`).",
        default: None,
        kind: InputKind::Secret,
    },
    InputDef {
        name: "azure-authority-host",
        description: "Microsoft Entra authority host, `https://login.microsoftonline.com` when empty; change it only for a sovereign cloud.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "upload-concurrency",
        description: "How many blobs `push` and `copy` transfer at once (default 4).",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "kubeconfig",
        description: "Kubeconfig content (YAML, or base64 of it), e.g. from a secret; kept in memory, and only its credential values are masked.",
        default: None,
        kind: InputKind::Credentials,
    },
    InputDef {
        name: "kubeconfig-path",
        description: "Path of a kubeconfig file; without it or `kubeconfig`, the environment's `cluster` from the promotion file, else `KUBECONFIG`, else in-cluster.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "context",
        description: "Kubeconfig context to use; overrides the environment's `cluster.context` and `cluster.aks`.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "create-namespace",
        description: "Create the environment's namespace, labelled with the environment, when it does not exist (`true` or `false`).",
        default: None,
        kind: InputKind::Bool,
    },
    InputDef {
        name: "force",
        description: "Take over fields that other field managers own when applying (server-side apply `force`; `true` or `false`).",
        default: None,
        kind: InputKind::Bool,
    },
    InputDef {
        name: "timeout",
        description: "How long each rollout may take (`deploy`, `rollback`): `10m`, `90s` or a number of minutes; default the environment's `rollout.timeout`.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "lock-timeout",
        description: "How long to wait while another run holds the lock of the environment and service before giving up with exit code 3 (default `10m`).",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "to-revision",
        description: "Revision to roll back to (`rollback`), as `history` lists them; default the previous one.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "skip-gate",
        description: "Emergency only: `run` promotes without checking the lower environment and the branch; the summary says so loudly (`true` or `false`).",
        default: None,
        kind: InputKind::Bool,
    },
    InputDef {
        name: "base-config",
        description: "`plan`: the base branch's promotion file (checked out beside the workspace) to diff the rendered objects against.",
        default: None,
        kind: InputKind::Value,
    },
    InputDef {
        name: "diff-cluster",
        description: "`plan`: diff the rendered objects against the live cluster with a server-side dry run (needs cluster access; `true` or `false`).",
        default: None,
        kind: InputKind::Bool,
    },
    InputDef {
        name: "comment-on-pr",
        description: "`plan` on a pull request: keep one comment on it updated with the plan (`true` or `false`; needs `pull-requests: write`).",
        default: None,
        kind: InputKind::Bool,
    },
    InputDef {
        name: "since",
        description: "`metrics`: how far back to measure: `30d`, `2w`, `12h` or a number of days (default `30d`).",
        default: None,
        kind: InputKind::Value,
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
///
/// `accepts(command, flag)` says whether the chosen command takes `--flag`: an input meant for
/// another command (`source` with `plan`) is left out and named in [`ActionArgs::ignored`]
/// rather than failing the step, because a workflow often shares `with:` values between steps.
pub fn argv_from_inputs(
    get: impl Fn(&str) -> Option<String>,
    mut mask: impl FnMut(&str),
    accepts: impl Fn(&str, &str) -> bool,
) -> Result<ActionArgs, InputError> {
    let value_of = |def: &InputDef| {
        get(&env_name(def.name))
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                def.default
                    .filter(|d| !d.contains("${{"))
                    .map(str::to_string)
            })
    };
    let command = INPUTS
        .iter()
        .find(|d| d.kind == InputKind::Command)
        .and_then(value_of)
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    let mut argv: Vec<OsString> = vec!["promote".into()];
    let mut rest: Vec<OsString> = Vec::new();
    let mut ignored = Vec::new();
    for def in INPUTS {
        let Some(value) = value_of(def) else { continue };
        if def.kind == InputKind::Secret {
            mask(&value);
        }
        let flag = match def.kind {
            InputKind::Command => None,
            InputKind::Lines(flag) => Some(flag),
            _ => Some(def.name),
        };
        if let Some(flag) = flag
            && !accepts(&command, flag)
        {
            ignored.push(def.name);
            continue;
        }
        match def.kind {
            // `environments check` is a command and its subcommand.
            InputKind::Command => argv.extend(value.split_whitespace().map(OsString::from)),
            InputKind::Value | InputKind::Credentials => {
                rest.push(format!("--{}", def.name).into());
                rest.push(value.trim().into());
            }
            InputKind::Secret => {
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
    Ok(ActionArgs { argv, ignored })
}

/// The command line built from the inputs, and the inputs the chosen command does not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionArgs {
    pub argv: Vec<OsString>,
    pub ignored: Vec<&'static str>,
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
        argv_from_inputs(|k| vars.get(k).cloned(), |_| {}, |_, _| true)
            .unwrap()
            .argv
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn a_two_word_command_is_a_command_and_its_subcommand() {
        let args = argv(&[("INPUT_COMMAND", " environments  check ")]);
        assert_eq!(args[..3], ["promote", "environments", "check"]);
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
                "run",
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
        let args = argv_from_inputs(
            |k| vars.get(k).cloned(),
            |s| masked.push(s.to_string()),
            |_, _| true,
        )
        .unwrap();
        assert_eq!(masked, ["ghs_secret"]);
        let args: Vec<String> = args
            .argv
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert!(args.windows(2).any(|w| w == ["--image", "a=r.io/a@x"]));
        assert!(args.windows(2).any(|w| w == ["--image", "b=r.io/b@y"]));
    }

    #[test]
    fn inputs_the_command_does_not_take_are_left_out_and_named() {
        let vars: HashMap<String, String> = [
            ("INPUT_COMMAND", "plan"),
            ("INPUT_SOURCE", "image.tar"),
            ("INPUT_GITHUB-TOKEN", "ghs_other"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut masked = Vec::new();
        let args = argv_from_inputs(
            |k| vars.get(k).cloned(),
            |s| masked.push(s.to_string()),
            |command, flag| command == "plan" && flag != "source" && flag != "github-token",
        )
        .unwrap();
        assert_eq!(args.ignored, ["github-token", "source"], "in table order");
        assert_eq!(masked, ["ghs_other"], "an unused secret is still masked");
        assert!(!args.argv.iter().any(|a| a == "image.tar"));
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
