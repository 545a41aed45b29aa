//! The transfer engine behind `push` and `copy`: make every blob present in the target
//! repository (skip what is there, mount what the registry can mount, upload the rest in
//! parallel, large blobs in chunks that resume), then the manifests — children, root by digest,
//! tags last — so that no tag ever points at an incomplete image.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

use super::client::{Client, Mount};
use super::error::Error;
use super::image::{Blob, ByteStream, Image, Manifest, Parsed, Source, digest_of, parse_manifest};
use super::progress::{BlobFate, Progress};
use super::reference::Digest;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Blobs transferred at once.
    pub concurrency: usize,
    /// Blobs larger than this go up in chunks of this size, each resumable; smaller ones in one
    /// request.
    pub chunk_size: u64,
}

/// 4 parallel uploads saturate a registry on loopback and a CI runner's uplink alike; more
/// mostly adds contention on 2-core machines (see the README's benchmark).
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Chunks of 256 MiB: a blob below it (most layers) is one request, the fastest path; a larger
/// one loses at most one chunk to a broken connection.
pub const DEFAULT_CHUNK_SIZE: u64 = 256 * 1024 * 1024;

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: DEFAULT_CONCURRENCY,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Pushes `image` to `repository` and then sets `tags` on it; returns the root digest.
///
/// `mount_from` is a repository of the same registry that holds the blobs (a copy): they are
/// mounted, falling back to an upload from `Blob::source` when the registry declines (202).
///
/// # Errors
/// The first blob or manifest that could not be transferred after retries. When it fails, no
/// tag has been touched; blobs already sent stay (unreferenced, collected by the registry's GC).
pub async fn push_image(
    dst: &Client,
    repository: &str,
    image: &Image,
    tags: &[String],
    mount_from: Option<&str>,
    options: &Options,
    progress: &Progress,
) -> Result<Digest, Error> {
    let root = image.root();
    // A registry accepts a manifest only when everything it references is there (distribution
    // checks blobs and, for an index, child manifests), so a root that exists means the whole
    // image does: one HEAD instead of one per blob. Only the tags are left to set.
    if dst.resolve(repository, root.digest.as_str()).await? == Some(root.digest.clone()) {
        for blob in &image.blobs {
            progress.add_bytes(blob.size);
            progress.blob_done(BlobFate::Present);
        }
    } else {
        push_content(dst, repository, image, mount_from, options, progress).await?;
    }
    for tag in tags {
        put_manifest(dst, repository, tag, root).await?;
    }
    Ok(root.digest.clone())
}

/// Every blob, then every manifest by digest (children first).
async fn push_content(
    dst: &Client,
    repository: &str,
    image: &Image,
    mount_from: Option<&str>,
    options: &Options,
    progress: &Progress,
) -> Result<(), Error> {
    futures_util::stream::iter(image.blobs.iter())
        .map(|blob| ensure_blob(dst, repository, blob, mount_from, options, progress))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    for manifest in &image.manifests {
        put_manifest(dst, repository, manifest.digest.as_str(), manifest).await?;
    }
    Ok(())
}

async fn put_manifest(
    dst: &Client,
    repository: &str,
    reference: &str,
    m: &Manifest,
) -> Result<(), Error> {
    let digest = dst
        .put_manifest(repository, reference, &m.media_type, &m.bytes)
        .await?;
    if digest != m.digest {
        return Err(Error::DigestMismatch {
            expected: m.digest.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(())
}

/// Makes one blob present in `repository`.
async fn ensure_blob(
    dst: &Client,
    repository: &str,
    blob: &Blob,
    mount_from: Option<&str>,
    options: &Options,
    progress: &Progress,
) -> Result<(), Error> {
    let mut session = None;
    if let Some(from) = mount_from {
        // A mount of a blob that is already there also answers 201: no HEAD needed first.
        match dst.mount(repository, &blob.digest, from).await? {
            Mount::Mounted => {
                progress.add_bytes(blob.size);
                progress.blob_done(BlobFate::Mounted);
                return Ok(());
            }
            Mount::Upload(location) => session = Some(location),
        }
    } else if dst.blob_exists(repository, &blob.digest).await? {
        progress.add_bytes(blob.size);
        progress.blob_done(BlobFate::Present);
        return Ok(());
    }
    if blob.size > options.chunk_size {
        upload_chunked(dst, repository, blob, session, options.chunk_size, progress).await?;
    } else {
        upload_whole(dst, repository, blob, session, progress).await?;
    }
    progress.blob_done(BlobFate::Uploaded);
    Ok(())
}

/// The bytes of `stream` fed to `hasher` and counted, as they go by.
/// The stream must be `'static` for reqwest, so bytes are counted into `sent`, which the
/// uploading task publishes to the shared [`Progress`].
fn hashed(stream: ByteStream, hasher: Arc<Mutex<Sha256>>, sent: Arc<AtomicU64>) -> ByteStream {
    Box::pin(stream.inspect_ok(move |bytes| {
        hasher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(bytes);
        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }))
}

/// The final hash of a stream: refuses to end it (so the request fails and the registry never
/// commits) when the bytes do not hash to `expected`.
fn verified_end(
    stream: ByteStream,
    hasher: Arc<Mutex<Sha256>>,
    expected: Digest,
    mismatch: Arc<Mutex<Option<String>>>,
) -> ByteStream {
    let check = futures_util::stream::once(async move {
        let hash = hasher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .finalize();
        let actual = digest_of(hash.as_slice());
        if actual == expected {
            None
        } else {
            *mismatch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actual.to_string());
            Some(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the source does not hash to {expected} (it is {actual})"),
            )))
        }
    })
    .filter_map(|item| async move { item });
    Box::pin(stream.chain(check))
}

/// A progress publisher: counts bytes as a background tick would, by polling `sent`.
struct Counted<'a> {
    sent: Arc<AtomicU64>,
    published: u64,
    progress: &'a Progress,
}

impl<'a> Counted<'a> {
    fn new(progress: &'a Progress) -> Self {
        Counted {
            sent: Arc::new(AtomicU64::new(0)),
            published: 0,
            progress,
        }
    }
    fn publish(&mut self) {
        let now = self.sent.load(Ordering::Relaxed);
        self.progress.add_bytes(now.saturating_sub(self.published));
        self.published = now;
    }
    /// Forgets everything counted: it will be sent again.
    fn rollback(&mut self) {
        self.publish();
        self.progress.sub_bytes(self.published);
        self.sent.store(0, Ordering::Relaxed);
        self.published = 0;
    }
}

/// One request per attempt: a session (`POST`), then the whole blob (`PUT ?digest=`). A failed
/// attempt starts a new session.
async fn upload_whole(
    dst: &Client,
    repository: &str,
    blob: &Blob,
    session: Option<String>,
    progress: &Progress,
) -> Result<(), Error> {
    let session = Mutex::new(session);
    let counted = tokio::sync::Mutex::new(Counted::new(progress));
    let mismatch: Arc<Mutex<Option<String>>> = Arc::default();
    dst.retry
        .run(&format!("uploading {}", blob.digest), || async {
            let given = session
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let location = match given {
                Some(location) => location,
                None => dst.start_upload(repository).await?,
            };
            let mut counter = counted.lock().await;
            counter.rollback();
            let sent = counter.sent.clone();
            let result = with_progress(
                &mut counter,
                dst.put_blob(&location, &blob.digest, blob.size, || async {
                    let hasher = Arc::new(Mutex::new(Sha256::new()));
                    let stream = blob.source.open(&blob.digest, 0, blob.size).await?;
                    let stream = hashed(stream, hasher.clone(), sent.clone());
                    let stream =
                        verified_end(stream, hasher, blob.digest.clone(), mismatch.clone());
                    Ok(reqwest::Body::wrap_stream(stream))
                }),
            )
            .await;
            let mismatched = mismatch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some(actual) = mismatched {
                dst.cancel_upload(&location).await;
                return Err(Error::DigestMismatch {
                    expected: blob.digest.to_string(),
                    actual,
                });
            }
            if result.is_err() {
                counter.rollback();
            }
            result
        })
        .await
}

/// Runs `work` while publishing `counter` to the progress every 200 ms, then once more.
async fn with_progress<T>(
    counter: &mut Counted<'_>,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            out = &mut work => {
                counter.publish();
                return out;
            }
            _ = tick.tick() => counter.publish(),
        }
    }
}

/// Chunks of `chunk_size` (`PATCH` with `Content-Range`), hashed as they go. After a failed
/// chunk the registry is asked how far it got (`GET <location>`) and the upload continues from
/// there; if the session is gone, the blob starts over in a new one.
async fn upload_chunked(
    dst: &Client,
    repository: &str,
    blob: &Blob,
    session: Option<String>,
    chunk_size: u64,
    progress: &Progress,
) -> Result<(), Error> {
    let mut location = match session {
        Some(location) => location,
        None => dst.start_upload(repository).await?,
    };
    let mut offset = 0u64;
    let mut hasher = Sha256::new();
    let mut counter = Counted::new(progress);
    let mut failures = 0u32;
    while offset < blob.size {
        let len = chunk_size.min(blob.size - offset);
        let shared = Arc::new(Mutex::new(hasher.clone()));
        let sent = counter.sent.clone();
        let attempt = async {
            let stream = blob.source.open(&blob.digest, offset, len).await?;
            let stream = hashed(stream, shared.clone(), sent.clone());
            dst.patch_chunk(&location, offset, len, reqwest::Body::wrap_stream(stream))
                .await
        };
        let before = counter.sent.load(Ordering::Relaxed);
        match with_progress(&mut counter, attempt).await {
            Ok(next) => {
                location = next;
                offset += len;
                hasher = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
            }
            // 416: the registry holds a different amount than we thought; ask it, like after a break.
            Err(err)
                if (err.is_retryable() || err.status() == Some(416))
                    && failures < dst.retry.retries =>
            {
                let delay = dst.retry.delay(failures, err.retry_after(), 0.5);
                failures += 1;
                tracing::warn!(
                    "uploading {}: chunk at byte {offset} failed: {} — asking the registry how far it got",
                    blob.digest,
                    crate::outcome::chain(&err)
                );
                tokio::time::sleep(delay).await;
                // Unpublish this chunk's bytes; what the registry kept is counted again below.
                let this_chunk = counter.sent.load(Ordering::Relaxed) - before;
                counter.publish();
                progress.sub_bytes(this_chunk);
                counter.published -= this_chunk;
                counter.sent.fetch_sub(this_chunk, Ordering::Relaxed);
                match dst.upload_status(&location).await? {
                    Some((resumed, next)) if next >= offset && next <= offset + len => {
                        tracing::info!("uploading {}: resuming at byte {next}", blob.digest);
                        // Hash what the registry already has of this chunk.
                        if next > offset {
                            let mut part = blob
                                .source
                                .open(&blob.digest, offset, next - offset)
                                .await?;
                            while let Some(bytes) = part.next().await {
                                let bytes = bytes.map_err(|source| Error::Io {
                                    path: format!("{:?}", blob.source),
                                    source,
                                })?;
                                hasher.update(&bytes);
                            }
                            progress.add_bytes(next - offset);
                        }
                        location = resumed;
                        offset = next;
                    }
                    _ => {
                        tracing::info!(
                            "uploading {}: the upload session is gone, starting over",
                            blob.digest
                        );
                        progress.sub_bytes(offset);
                        location = dst.start_upload(repository).await?;
                        offset = 0;
                        hasher = Sha256::new();
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    let actual = digest_of(hasher.finalize().as_slice());
    if actual != blob.digest {
        dst.cancel_upload(&location).await;
        return Err(Error::DigestMismatch {
            expected: blob.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    match dst.finish_upload(&location, &blob.digest).await {
        Ok(()) => Ok(()),
        // The commit may have happened before the connection broke: check, else start over.
        Err(err) if err.is_retryable() => {
            if dst.blob_exists(repository, &blob.digest).await? {
                Ok(())
            } else {
                progress.sub_bytes(blob.size);
                Box::pin(upload_chunked(
                    dst, repository, blob, None, chunk_size, progress,
                ))
                .await
            }
        }
        Err(err) => Err(err),
    }
}

/// Reads an image from a registry by digest: every manifest (exact bytes, checked against its
/// digest) and every blob, as sources in `repository` of `src`.
///
/// # Errors
/// A manifest that cannot be read or parsed.
pub async fn read_image(
    src: Arc<Client>,
    repository: &str,
    digest: &Digest,
) -> Result<Image, Error> {
    let mut image = Image {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let source = Source::Registry {
        client: src.clone(),
        repository: repository.to_string(),
    };
    walk_registry(&src, repository, digest, &source, &mut image, 0).await?;
    Ok(image)
}

async fn walk_registry(
    src: &Client,
    repository: &str,
    digest: &Digest,
    source: &Source,
    image: &mut Image,
    depth: usize,
) -> Result<(), Error> {
    if depth > 4 {
        return Err(Error::Protocol(
            "indexes nested deeper than 4 levels".into(),
        ));
    }
    let (content_type, bytes, actual) = src.get_manifest(repository, digest.as_str()).await?;
    let fallback = (!content_type.is_empty()).then_some(content_type.as_str());
    let (media_type, parsed) = parse_manifest(&bytes, fallback)
        .map_err(|e| Error::Protocol(format!("manifest {digest}: {e}")))?;
    match parsed {
        Parsed::Index(children) => {
            for child in children {
                let child =
                    Digest::parse(&child.digest).map_err(|e| Error::Protocol(e.to_string()))?;
                Box::pin(walk_registry(
                    src,
                    repository,
                    &child,
                    source,
                    image,
                    depth + 1,
                ))
                .await?;
            }
        }
        Parsed::Image(blobs) => {
            for blob in blobs {
                let d = Digest::parse(&blob.digest).map_err(|e| Error::Protocol(e.to_string()))?;
                if !image.blobs.iter().any(|b| b.digest == d) {
                    image.blobs.push(Blob {
                        digest: d,
                        size: blob.size,
                        source: source.clone(),
                    });
                }
            }
        }
    }
    if !image.manifests.iter().any(|m| m.digest == actual) {
        image.manifests.push(Manifest {
            digest: actual,
            media_type,
            bytes,
        });
    }
    Ok(())
}
