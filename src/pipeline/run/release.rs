//! Step 1 of `run`: the release (every service's digest, built from one commit). From the
//! `images` input, tags resolved to digests once here; or what the lower environment runs.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::super::Runtime;
use super::super::copy::resolve_digest;
use super::super::gate::Lower;
use crate::cli::{GlobalArgs, RunArgs};
use crate::config::{Config, Environment};
use crate::kube::read_verified;
use crate::outcome::{Classified, Outcome};
use crate::registry::{Digest, Reference};
use crate::report::ReleaseImage;
use crate::say;

/// The `images` input as a release: one reference per service, every service named. Pure.
///
/// # Errors
/// Every bad argument (as `plan` reads them), or the services missing from it.
pub fn parse_release(
    config: &Config,
    given: &[String],
) -> anyhow::Result<BTreeMap<String, Reference>> {
    let all: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let parsed = crate::plan::parse_images(config, &all, given);
    let errors = match &parsed {
        Ok(images) => {
            let missing: Vec<&str> = all
                .iter()
                .copied()
                .filter(|s| !images.contains_key(*s))
                .collect();
            if missing.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "a release is every service's image: missing {}",
                    missing.join(", ")
                )]
            }
        }
        Err(errors) => errors.clone(),
    };
    if !errors.is_empty() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "images: {}",
            errors.join("; ")
        )));
    }
    Ok(parsed.unwrap_or_default())
}

/// The `images` input, with tags resolved to digests.
pub async fn release_from_input(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    config: &Config,
    given: &[String],
) -> anyhow::Result<Vec<ReleaseImage>> {
    let mut images = Vec::new();
    for (service, reference) in parse_release(config, given)? {
        let digest = resolve_digest(rt, &global.auth, &reference).await?;
        if reference.digest.is_none() {
            say!("Resolved {reference} to {digest}");
        }
        images.push(ReleaseImage {
            service,
            image: format!("{}@{digest}", reference.name()),
            digest,
        });
    }
    Ok(images)
}

/// The release D runs: each service's running digest (the gate then checks it was verified).
///
/// # Errors
/// Refused (exit 3) when a service is not deployed there by digest.
pub fn release_from_lower(
    config: &Config,
    d: &Environment,
    lower: &Lower,
) -> anyhow::Result<Vec<ReleaseImage>> {
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for service in &config.services {
        let digest = lower
            .services
            .get(&service.name)
            .and_then(|l| l.digest.as_deref())
            .and_then(|d| Digest::parse(d).ok());
        match digest {
            Some(digest) => images.push(ReleaseImage {
                service: service.name.clone(),
                image: format!("{}/{}@{digest}", config.registry, service.image),
                digest,
            }),
            None => missing.push(service.name.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(anyhow::Error::new(Classified {
            outcome: Outcome::Refused,
            source: anyhow::anyhow!(
                "nothing to promote from {}: {} not deployed there by digest; promote to {} first",
                d.name,
                missing.join(", "),
                d.name
            ),
        }));
    }
    Ok(images)
}

/// Reads every service's Deployment in the lower environment `d`.
pub async fn read_lower(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &RunArgs,
    config: &Config,
    d: &Environment,
) -> anyhow::Result<Lower> {
    let connection = super::super::connect_to(rt, global, &args.cluster, d)
        .await
        .with_context(|| format!("failed to connect to {}'s cluster", d.name))?;
    let mut services = BTreeMap::new();
    for service in &config.services {
        let name = super::super::serving_deployment(&connection.client, d, service).await?;
        let live = read_verified(&connection.client, &d.namespace, &name, &service.container)
            .await
            .with_context(|| format!("failed to read deployment/{name} in {}", d.namespace))?;
        services.insert(service.name.clone(), live);
    }
    Ok(Lower {
        environment: d.name.clone(),
        services,
        record: None,
    })
}

/// Each release image with the reference it is copied to: E's repository in the registry.
///
/// # Errors
/// Invalid input when a repository does not make a reference.
pub fn targets(
    config: &Config,
    images: &[ReleaseImage],
) -> anyhow::Result<Vec<(ReleaseImage, Reference)>> {
    images
        .iter()
        .map(|i| {
            let repository = config
                .service(&i.service)
                .map_or(i.service.as_str(), |s| s.image.as_str());
            let target = Reference::parse(&format!("{}/{repository}", config.registry))
                .map_err(|e| Classified::invalid(anyhow::anyhow!("{}: {e}", i.service)))?;
            Ok((i.clone(), target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn example() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows-examples/studysphere/promotion.yml");
        crate::config::load(&path).expect("the example loads")
    }

    #[test]
    fn a_release_names_every_service_once() {
        let config = example();
        let services: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        let all: Vec<String> = services
            .iter()
            .map(|s| format!("{s}=r.io/{s}@sha256:{}", "a".repeat(64)))
            .collect();
        let parsed = parse_release(&config, &all).expect("a whole release");
        assert_eq!(parsed.len(), services.len());

        let cases: [(Vec<String>, &str); 3] = [
            (all[..all.len() - 1].to_vec(), "missing"),
            (
                [all.clone(), vec![all[0].clone()]].concat(),
                "two images given",
            ),
            (vec!["nosuch=r.io/x:1".to_string()], "unknown service"),
        ];
        for (given, want) in cases {
            let e = parse_release(&config, &given).expect_err(want);
            assert!(format!("{e:#}").contains(want), "{e:#}");
        }
    }
}
