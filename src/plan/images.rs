//! `[SERVICE=]REF` arguments (the `images` input, `--image`): parsed one way for every command
//! that takes them.

use std::collections::BTreeMap;

use super::{PlannedImage, unknown};
use crate::config::Config;
use crate::kube::Provenance;
use crate::registry::Reference;

/// One reference per service named in `given`. A bare `REF` is allowed when `in_scope` holds one
/// service. Every problem is collected, each naming the argument it is about.
///
/// # Errors
/// The messages, one per bad argument: a missing `SERVICE=`, an unknown service, a reference
/// that does not parse, two images for one service.
pub fn parse_images(
    config: &Config,
    in_scope: &[&str],
    given: &[String],
) -> Result<BTreeMap<String, Reference>, Vec<String>> {
    let mut errors = Vec::new();
    let mut images = BTreeMap::new();
    for text in given {
        let (service, reference) = match text.split_once('=') {
            Some((service, reference)) => (service.trim().to_string(), reference.trim()),
            None if in_scope.len() == 1 => (in_scope[0].to_string(), text.trim()),
            None => {
                errors.push(format!(
                    "{text:?}: name the service as SERVICE=REF; this step covers {}",
                    in_scope.join(", ")
                ));
                continue;
            }
        };
        if config.service(&service).is_none() {
            let names = config.services.iter().map(|s| s.name.as_str());
            errors.push(format!("{text:?}: {}", unknown("service", &service, names)));
            continue;
        }
        let reference = match Reference::parse(reference) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{text:?}: {e}"));
                continue;
            }
        };
        if images.insert(service.clone(), reference).is_some() {
            errors.push(format!("two images given for service `{service}`"));
        }
    }
    if errors.is_empty() {
        Ok(images)
    } else {
        Err(errors)
    }
}

/// The image of every service in scope: the one given, or its repository at the commit's short
/// sha (`latest` without one), shown as not pinned.
pub(super) fn resolve(
    config: &Config,
    in_scope: &[&str],
    given: &[String],
    provenance: &Provenance,
) -> Result<BTreeMap<String, PlannedImage>, Vec<String>> {
    let mut images: BTreeMap<String, PlannedImage> = parse_images(config, in_scope, given)?
        .into_iter()
        .map(|(service, reference)| {
            let pinned = reference.digest.is_some();
            (service, PlannedImage { reference, pinned })
        })
        .collect();
    let tag = provenance
        .git_sha
        .as_deref()
        .map_or("latest".to_string(), |sha| {
            format!("sha-{}", crate::untrusted::short_sha(sha))
        });
    for service in config
        .services
        .iter()
        .filter(|s| in_scope.contains(&s.name.as_str()))
    {
        images
            .entry(service.name.clone())
            .or_insert_with(|| PlannedImage {
                reference: Reference {
                    registry: config.registry.clone(),
                    repository: service.image.clone(),
                    tag: Some(tag.clone()),
                    digest: None,
                },
                pinned: false,
            });
    }
    images.retain(|name, _| in_scope.contains(&name.as_str()));
    Ok(images)
}
