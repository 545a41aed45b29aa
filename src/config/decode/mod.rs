//! promotion.yml's YAML tree → [`Config`], field by field, collecting every error on the way.
//! Cross-field and cross-file rules (requires cycles, manifests) live in `validate.rs`.
//!
//! One file per section: `environment.rs` (an environment's own fields), `checks.rs` (`checks`
//! and `slo`), `secrets.rs`, `strategy.rs` (`strategy`, `blueGreen`, `canary`), `analysis.rs`, and
//! `read.rs`, the typed readers every section uses.

mod analysis;
mod checks;
mod environment;
mod read;
mod secrets;
mod strategy;

use std::path::PathBuf;

use super::diagnostics::Diagnostics;
use super::model::*;
use super::yaml::Node;
use read::{list, opt, req_string, string, uint};

const TOP: &[&str] = &["registry", "services", "environments"];
const SERVICE: &[&str] = &[
    "name",
    "image",
    "manifests",
    "deployment",
    "container",
    "port",
    "healthPath",
];

pub fn decode_config(d: &mut Diagnostics, root: &Node) -> Option<Config> {
    let top = d.fields(root, "", TOP)?;
    let registry = top
        .required(
            d,
            "registry",
            "the registry login server, e.g. `myregistry.azurecr.io`",
        )
        .and_then(|n| string(d, n, "registry"))
        .unwrap_or_default();
    let services = match top.required(d, "services", "a list of services") {
        Some(n) => list(d, n, "services", decode_service),
        None => Vec::new(),
    };
    let environments = match top.required(d, "environments", "a list of environments") {
        Some(n) => list(d, n, "environments", |d, n, path| {
            environment::decode_environment(d, n, path)
        }),
        None => Vec::new(),
    };
    Some(Config {
        file: d.file().to_path_buf(),
        registry,
        services,
        environments,
    })
}

fn decode_service(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Service> {
    let f = d.fields(node, path, SERVICE)?;
    let name = req_string(d, &f, "name", "the service name");
    let image = req_string(d, &f, "image", "the image repository in the registry");
    let manifests_dir = req_string(d, &f, "manifests", "a directory of Kubernetes YAML");
    let deployment = opt(d, &f, "deployment", string);
    let container = opt(d, &f, "container", string);
    let port = opt(d, &f, "port", |d, n, p| uint(d, n, p, 1, 65535)).map(|p| p as u16);
    let health_path = opt(d, &f, "healthPath", string);
    let name = name?;
    Some(Service {
        deployment: deployment.unwrap_or_else(|| name.clone()),
        container: container.unwrap_or_else(|| name.clone()),
        name,
        image: image?,
        manifests_dir: PathBuf::from(manifests_dir?),
        manifests: Vec::new(),
        port,
        health_path,
        pos: node.pos,
        positions: Positions(crate::config::yaml::positions(node)),
    })
}

/// Decodes one environment `testing` whose fields are `body` (written at the environment's
/// indentation), for the sections' tests: the environment, or every error as
/// `line:col field: message`.
#[cfg(test)]
fn decode_test_environment(body: &str) -> Result<Environment, Vec<String>> {
    let mut source =
        String::from("registry: r.io\nservices: []\nenvironments:\n  - name: testing\n");
    for line in body.lines() {
        source.push_str("    ");
        source.push_str(line);
        source.push('\n');
    }
    let root = super::yaml::parse_single(&source)
        .expect("valid YAML")
        .expect("a document");
    let mut d = Diagnostics::new(std::path::Path::new("promotion.yml"));
    let config = decode_config(&mut d, &root);
    if !d.errors.is_empty() {
        return Err(d
            .errors
            .iter()
            .map(|e| format!("{}:{} {}: {}", e.pos.line, e.pos.col, e.field, e.message))
            .collect());
    }
    Ok(config.expect("decoded").environments.remove(0))
}

/// Decodes each body and checks that its errors start with the wanted `line:col field:
/// message` lines (one per error); reports every case that differs at once.
#[cfg(test)]
fn assert_one_error_each(cases: &[(String, String)]) {
    let mut failures = Vec::new();
    for (body, want) in cases {
        let got = match decode_test_environment(body) {
            Ok(_) => "(accepted)".to_string(),
            Err(errors) => errors.join("\n"),
        };
        if !got.starts_with(want.as_str()) || got.lines().count() != want.lines().count() {
            failures.push(format!("{body}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// `(body, wanted errors)` pairs from string literals.
#[cfg(test)]
fn cases(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(body, want)| (body.to_string(), want.to_string()))
        .collect()
}
