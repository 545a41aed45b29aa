//! `promote push`: push an image a build step left on disk (OCI layout, OCI archive, `docker
//! save` tar) to a repository, by digest, then tag it. Outputs `digest` and `image`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::Runtime;
use super::sign_in::registry_credentials;
use crate::actions::{Summary, redact};
use crate::cli::{GlobalArgs, PushArgs, TransferArgs};
use crate::outcome::{Classified, Outcome};
use crate::registry::{self, Client, Digest, Image, Progress, Reference, RetryPolicy};

/// `promote push`.
pub async fn run_push(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &PushArgs,
) -> anyhow::Result<Outcome> {
    let (target, tags) = destination(&args.image, &args.tags).map_err(Classified::invalid)?;
    let image = registry::open_source(&args.source).map_err(Classified::invalid)?;
    let root = image.root().digest.clone();
    let http = registry::Http::new();
    let credentials =
        registry_credentials(rt.ctx, rt.console, &global.auth, &http, &target.registry).await?;
    let client = Client::new(
        http,
        &target.registry,
        credentials,
        vec![Client::scope(&target.repository, "pull,push")],
        *rt.console,
        retry_policy(&args.transfer),
    );
    let digest = transfer(rt, &client, &target, &image, &tags, None, &args.transfer)
        .await
        .with_context(|| format!("failed to push {root} to {}", target.name()))?;
    finish(rt, &target, &digest, &tags, "Pushed");
    Ok(Outcome::Success)
}

/// The target repository and the tags to set: `--image` must name a repository (a `:tag` on it
/// is one more tag; a digest is refused, the digest is what the push produces).
pub(super) fn destination(
    image: &str,
    tags: &[String],
) -> anyhow::Result<(Reference, Vec<String>)> {
    let mut target = Reference::parse(image).context("image")?;
    if target.digest.is_some() {
        anyhow::bail!("image: give the repository to push to, without a digest (got {image})");
    }
    let mut all: Vec<String> = target.tag.take().into_iter().collect();
    for tag in tags {
        let probe = format!("{}:{tag}", target.name());
        match Reference::parse(&probe) {
            Ok(r) if r.tag.as_deref() == Some(tag.as_str()) => {}
            _ => anyhow::bail!(
                "tag {tag:?} is not a valid tag (up to 128 letters, digits, `.`, `_`, `-`)"
            ),
        }
        if !all.contains(tag) {
            all.push(tag.clone());
        }
    }
    Ok((target, all))
}

pub(super) fn retry_policy(args: &TransferArgs) -> RetryPolicy {
    RetryPolicy {
        retries: args.retries,
        ..RetryPolicy::default()
    }
}

/// Runs the transfer inside a log group, with a progress line every few seconds and a final one.
pub(super) async fn transfer(
    rt: &Runtime<'_>,
    client: &Client,
    target: &Reference,
    image: &Image,
    tags: &[String],
    mount_from: Option<&str>,
    args: &TransferArgs,
) -> Result<Digest, registry::Error> {
    client.sign_in().await?;
    let progress = Arc::new(Progress::new(image.blobs.len(), image.total_bytes()));
    let in_actions = rt.console.in_actions();
    let emit = move |line: &str| {
        // In Actions the group's lines go to stdout with the group commands, so they stay inside it.
        if in_actions {
            println!("{}", redact(line));
        } else {
            crate::say!("{}", redact(line));
        }
    };
    rt.console.start_group(&format!(
        "Transferring {} blob{} ({:.1} MB) to {}",
        image.blobs.len(),
        if image.blobs.len() == 1 { "" } else { "s" },
        image.total_bytes() as f64 / 1e6,
        target.name()
    ));
    let options = registry::Options {
        concurrency: usize::from(args.upload_concurrency),
        chunk_size: args.chunk_size,
    };
    let work = registry::push_image(
        client,
        &target.repository,
        image,
        tags,
        mount_from,
        &options,
        &progress,
    );
    let result = tokio::select! {
        result = work => result,
        () = progress.report_every(Duration::from_secs(args.progress_interval), emit) => unreachable!("reports forever"),
    };
    emit(&progress.line());
    if let Err(err) = &result {
        emit(&format!("failed: {err}"));
    }
    rt.console.end_group();
    let (uploaded, mounted, present) = progress.counts();
    rt.console.debug(&format!(
        "{uploaded} uploaded, {mounted} mounted, {present} present"
    ));
    result
}

/// Sets the outputs, prints the result and adds it to the job summary.
pub(super) fn finish(
    rt: &mut Runtime<'_>,
    target: &Reference,
    digest: &Digest,
    tags: &[String],
    verb: &str,
) {
    let pinned = format!("{}@{digest}", target.name());
    rt.outputs.set("digest", digest.to_string());
    rt.outputs.set("image", pinned.clone());
    let tags_text = if tags.is_empty() {
        String::new()
    } else {
        format!(
            ", tagged {}",
            tags.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    crate::say!("{verb} {pinned}{}", tags_text.replace('`', ""));
    let mut summary = Summary::new();
    summary.section(
        crate::actions::Priority::Essential,
        format!(
            "### {verb} image\n\n`{}`{tags_text}\n",
            crate::untrusted::escape_md(&pinned)
        ),
    );
    if let Err(e) = summary.write(rt.ctx) {
        tracing::warn!("could not write the job summary: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_takes_a_tag_and_refuses_a_digest() {
        let (r, tags) = destination(
            "127.0.0.1:5000/team/web:v1",
            &["sha-abc".into(), "v1".into()],
        )
        .unwrap();
        assert_eq!(r.name(), "127.0.0.1:5000/team/web");
        assert_eq!(tags, ["v1", "sha-abc"]);
        let d = format!("r.io/web@{}", registry::sha256(b""));
        assert!(destination(&d, &[]).is_err());
        assert!(destination("r.io/web", &["bad tag".into()]).is_err());
    }
}
