//! `promote copy SRC DST --tag T`: copy an image by digest to another repository or registry,
//! adding tags. Same registry: blobs are mounted across repositories; another registry: they
//! are streamed from one to the other, no temporary files. Indexes are copied whole and every
//! manifest is pushed as the exact bytes read, so the digest is preserved.

use std::sync::Arc;

use anyhow::Context as _;

use super::Runtime;
use super::push::{destination, finish, retry_policy, transfer};
use super::sign_in::registry_credentials;
use crate::cli::{AuthArgs, CopyArgs, GlobalArgs, TransferArgs};
use crate::outcome::{Classified, Outcome};
use crate::registry::{self, Client, Digest, Reference};

/// `promote copy`.
pub async fn run_copy(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &CopyArgs,
) -> anyhow::Result<Outcome> {
    let src_text = args
        .src
        .as_deref()
        .or(args.source.as_deref())
        .unwrap_or_default();
    let dst_text = args
        .dst
        .as_deref()
        .or(args.image.as_deref())
        .unwrap_or_default();
    let source = Reference::parse(src_text)
        .context("source")
        .map_err(Classified::invalid)?;
    if source.digest.is_none() && source.tag.is_none() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "source: {src_text} names no image: add `@sha256:…` (or a tag, resolved once)"
        )));
    }
    let (target, tags) = destination(dst_text, &args.tags).map_err(Classified::invalid)?;
    let copied = copy_image(rt, &global.auth, &source, &target, &tags, &args.transfer).await?;
    finish(rt, &target, &copied.digest, &tags, "Copied");
    Ok(Outcome::Success)
}

/// What [`copy_image`] did.
#[derive(Debug, Clone)]
pub(crate) struct Copied {
    pub digest: Digest,
    /// Bytes of the image's blobs (config and layers), whether moved or already there.
    pub bytes: u64,
}

/// Copies `source` (pinned, or a tag resolved here once) to `target`'s repository and `tags`,
/// and checks that the copy has the same digest.
pub(crate) async fn copy_image(
    rt: &Runtime<'_>,
    auth: &AuthArgs,
    source: &Reference,
    target: &Reference,
    tags: &[String],
    transfer_args: &TransferArgs,
) -> anyhow::Result<Copied> {
    let http = registry::Http::new();
    let same_registry = source.registry == target.registry;

    let mut dst_scopes = vec![Client::scope(&target.repository, "pull,push")];
    if same_registry && source.repository != target.repository {
        // One token for both: ACR and distribution check `pull` on the source of a mount.
        dst_scopes.push(Client::scope(&source.repository, "pull"));
    }
    let dst_credentials =
        registry_credentials(rt.ctx, rt.console, auth, &http, &target.registry).await?;
    let dst = Arc::new(Client::new(
        http.clone(),
        &target.registry,
        dst_credentials,
        dst_scopes,
        *rt.console,
        retry_policy(transfer_args),
    ));
    let src = if same_registry {
        dst.clone()
    } else {
        let credentials =
            registry_credentials(rt.ctx, rt.console, auth, &http, &source.registry).await?;
        Arc::new(Client::new(
            http,
            &source.registry,
            credentials,
            vec![Client::scope(&source.repository, "pull")],
            *rt.console,
            retry_policy(transfer_args),
        ))
    };

    // A tag is resolved once; everything after uses the digest.
    let digest = match (&source.digest, &source.tag) {
        (Some(d), _) => d.clone(),
        (None, Some(tag)) => src
            .resolve(&source.repository, tag)
            .await
            .with_context(|| format!("failed to resolve {source}"))?
            .ok_or_else(|| anyhow::anyhow!("failed to resolve {source}: no such tag"))?,
        (None, None) => {
            return Err(Classified::invalid(anyhow::anyhow!(
                "{source} names no image: add `@sha256:…` (or a tag, resolved once)"
            )));
        }
    };
    let image = registry::read_image(src.clone(), &source.repository, &digest)
        .await
        .with_context(|| format!("failed to read {}@{digest}", source.name()))?;
    // Within one repository (adding tags) the blobs are there already: HEAD finds them.
    let mount_from = (same_registry && source.repository != target.repository)
        .then_some(source.repository.as_str());
    let copied = transfer(rt, &dst, target, &image, tags, mount_from, transfer_args)
        .await
        .with_context(|| format!("failed to copy {digest} to {}", target.name()))?;
    if copied != digest {
        anyhow::bail!(
            "failed to copy {digest} to {}: the copy has digest {copied}",
            target.name()
        );
    }
    Ok(Copied {
        digest: copied,
        bytes: image.total_bytes(),
    })
}

/// The digest `reference` names: its own, or its tag's, resolved once here.
pub(crate) async fn resolve_digest(
    rt: &Runtime<'_>,
    auth: &AuthArgs,
    reference: &Reference,
) -> anyhow::Result<Digest> {
    if let Some(digest) = &reference.digest {
        return Ok(digest.clone());
    }
    let Some(tag) = &reference.tag else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "{reference} names no image: add `@sha256:…` (or a tag, resolved once)"
        )));
    };
    let http = registry::Http::new();
    let credentials =
        registry_credentials(rt.ctx, rt.console, auth, &http, &reference.registry).await?;
    let client = Client::new(
        http,
        &reference.registry,
        credentials,
        vec![Client::scope(&reference.repository, "pull")],
        *rt.console,
        registry::RetryPolicy::default(),
    );
    client
        .resolve(&reference.repository, tag)
        .await
        .with_context(|| format!("failed to resolve {reference}"))?
        .ok_or_else(|| {
            Classified::invalid(anyhow::anyhow!(
                "failed to resolve {reference}: no such tag"
            ))
        })
}
