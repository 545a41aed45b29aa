//! The promotion file (promotion.yml): its model and its validation.
//!
//! `load` reads the file and every service's manifests, checks all of it and returns either a
//! [`Config`] that later steps can trust or every error found, each located by file, line and
//! column. Nothing else in the crate parses promotion.yml; rendering and deploying take a
//! [`Config`].

mod decode;
mod diagnostics;
mod manifests;
mod model;
pub mod units;
mod validate;
pub mod yaml;

use std::path::Path;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use manifests::{is_dns_label, is_dns_subdomain};
pub use model::*;
pub use validate::{FEATURE_FLAGS_KEY, feature_env_name};

use diagnostics::Diagnostics;
use yaml::Pos;

/// Reads and validates promotion.yml at `path` (as the user named it) and the manifests it names.
///
/// # Errors
/// [`ConfigErrors`] with every problem found, sorted by file and line.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "file not found (pass --config or the `config` input)".to_string()
        } else {
            format!("cannot read: {e}")
        };
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            pos: Pos { line: 1, col: 1 },
            field: String::new(),
            message: why,
        }])
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse(path, base_dir, &source)
}

/// Validates promotion.yml given as text; manifests are read relative to `base_dir`.
pub fn parse(file: &Path, base_dir: &Path, source: &str) -> Result<Config, ConfigErrors> {
    let mut d = Diagnostics::new(file);
    let root = match yaml::parse_single(source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            d.error(
                Pos { line: 1, col: 1 },
                "",
                "the file is empty: declare `registry`, `services` and `environments`",
            );
            return Err(finish(d));
        }
        Err(e) => {
            d.error(e.pos, "", format!("invalid YAML: {}", e.message));
            return Err(finish(d));
        }
    };
    let Some(mut config) = decode::decode_config(&mut d, &root) else {
        return Err(finish(d));
    };
    validate::validate(&mut d, &root, base_dir, &mut config);
    if d.errors.is_empty() {
        Ok(config)
    } else {
        Err(finish(d))
    }
}

fn finish(d: Diagnostics) -> ConfigErrors {
    let mut errors = d.errors;
    errors.sort_by(|a, b| (&a.file, a.pos.line, a.pos.col).cmp(&(&b.file, b.pos.line, b.pos.col)));
    errors.dedup();
    ConfigErrors(errors)
}
