//! An image as the transfer engine sees it: manifests (exact bytes, children before the index
//! that lists them) and blobs (digest, size, where to read them). Built from what a build left on
//! disk — an OCI image layout directory, an OCI archive, a `docker save` tar — or from a registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::Client;
use super::error::Error;
use super::media::{OCI_INDEX, OCI_MANIFEST};
use super::reference::{Digest, digest_of, sha256};
use super::tar;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where a blob's bytes are read from.
#[derive(Clone)]
pub enum Source {
    /// `size` bytes at `offset` in a file (a blob file, or an entry inside a tar).
    File { path: PathBuf, offset: u64 },
    /// Made in memory (the config of a `docker save` image).
    Memory(Bytes),
    /// A blob in another repository, possibly on another registry.
    Registry {
        client: Arc<Client>,
        repository: String,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File { path, offset } => write!(f, "{}@{offset}", path.display()),
            Source::Memory(b) => write!(f, "memory ({} bytes)", b.len()),
            Source::Registry { client, repository } => {
                write!(f, "{}/{repository}", client.registry())
            }
        }
    }
}

/// How much memory a read from disk holds at a time: large enough for fast syscalls, small
/// enough that parallel uploads of any size stay within a few MB.
const READ_BUFFER: usize = 256 * 1024;

impl Source {
    /// `len` bytes of the blob `digest`, from byte `start`.
    pub async fn open(&self, digest: &Digest, start: u64, len: u64) -> Result<ByteStream, Error> {
        match self {
            Source::File { path, offset } => {
                let io = |source| Error::Io {
                    path: path.display().to_string(),
                    source,
                };
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(offset + start))
                    .await
                    .map_err(io)?;
                let reader = file.take(len);
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    reader,
                    READ_BUFFER,
                )))
            }
            Source::Memory(bytes) => {
                let from = usize::try_from(start)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let to = usize::try_from(start + len)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let part = bytes.slice(from..to);
                Ok(Box::pin(futures_util::stream::once(
                    async move { Ok(part) },
                )))
            }
            Source::Registry { client, repository } => {
                let response = client.get_blob(repository, digest, start, len).await?;
                Ok(Box::pin(
                    response
                        .bytes_stream()
                        .map_err(std::io::Error::other)
                        .boxed(),
                ))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub source: Source,
}

/// A manifest or index, as the exact bytes that were read (and will be pushed).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// Everything needed to push one image: `manifests` in push order (children first, the root
/// last) and every distinct blob.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifests: Vec<Manifest>,
    pub blobs: Vec<Blob>,
}

impl Image {
    pub fn root(&self) -> &Manifest {
        self.manifests.last().expect("an image has a root manifest")
    }

    pub fn total_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// A descriptor inside a manifest.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// What a manifest refers to.
#[derive(Debug)]
pub enum Parsed {
    /// An index: its child manifests.
    Index(Vec<Descriptor>),
    /// An image: config then layers (foreign layers with `urls` left out: they are not in the
    /// registry by design).
    Image(Vec<Descriptor>),
}

/// Reads a manifest's media type (the `mediaType` field, else `fallback`, e.g. the
/// `Content-Type` it was served with) and what it refers to.
pub fn parse_manifest(bytes: &[u8], fallback: Option<&str>) -> Result<(String, Parsed), String> {
    let json: ManifestJson =
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    let media_type = json
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| fallback.map(str::to_string))
        .unwrap_or_else(|| {
            if json.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    if let Some(children) = json.manifests {
        return Ok((media_type, Parsed::Index(children)));
    }
    let config = json
        .config
        .ok_or_else(|| "a manifest without `config` or `manifests`".to_string())?;
    let mut blobs = vec![config];
    blobs.extend(json.layers.into_iter().filter(|l| l.urls.is_empty()));
    Ok((media_type, Parsed::Image(blobs)))
}

/// Where an image on disk keeps its files: a directory, or a tar archive read in place.
enum Store {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        entries: HashMap<String, tar::Entry>,
    },
}

impl Store {
    fn exists(&self, name: &str) -> bool {
        match self {
            Store::Dir(dir) => dir.join(name).is_file(),
            Store::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    fn source(&self, name: &str) -> Option<(Source, u64)> {
        match self {
            Store::Dir(dir) => {
                let path = dir.join(name);
                let size = std::fs::metadata(&path).ok()?.len();
                Some((Source::File { path, offset: 0 }, size))
            }
            Store::Tar { path, entries } => entries.get(name).map(|e| {
                (
                    Source::File {
                        path: path.clone(),
                        offset: e.offset,
                    },
                    e.size,
                )
            }),
        }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, String> {
        /// Manifests, configs and index files are small; a larger one is not what its name says.
        const LIMIT: u64 = 4 * 1024 * 1024;
        let (source, size) = self
            .source(name)
            .ok_or_else(|| format!("`{name}` is missing"))?;
        if size > LIMIT {
            return Err(format!(
                "`{name}` is {size} bytes, more than a manifest can be"
            ));
        }
        let Source::File { path, offset } = source else {
            unreachable!("disk stores read files")
        };
        use std::io::{Read, Seek};
        let mut file =
            std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(bytes)
    }
}

/// Why an image on disk cannot be pushed: always the user's input, so an invalid-input error.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SourceError {
    pub path: String,
    pub message: String,
}

/// Opens an image a build left on disk: an OCI image layout directory (`index.json` +
/// `blobs/`), an OCI archive (the same in a tar, buildx `type=oci`), or a `docker save` tar
/// (buildx `type=docker`; newer Docker writes an OCI layout inside it, which is preferred).
///
/// The layout's `index.json` must list exactly one manifest or index: that is the image.
/// Manifests are read into memory; blobs stay on disk and are streamed when pushed. A
/// `docker save` image without an OCI layout gets a new OCI manifest, its layer digests are
/// computed from the tar (one read of each layer).
///
/// # Errors
/// [`SourceError`] naming the path and what is wrong.
pub fn open_source(path: &Path) -> Result<Image, SourceError> {
    let fail = |message: String| SourceError {
        path: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let store = if meta.is_dir() {
        Store::Dir(path.to_path_buf())
    } else {
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
        let entries = tar::index(std::io::BufReader::new(file)).map_err(|e| {
            fail(format!(
                "neither a directory nor a tar archive (an OCI image layout, an OCI archive or a `docker save` tar is expected): {e}"
            ))
        })?;
        Store::Tar {
            path: path.to_path_buf(),
            entries,
        }
    };
    if store.exists("index.json") {
        from_oci_layout(&store).map_err(fail)
    } else if store.exists("manifest.json") {
        from_docker_save(&store).map_err(fail)
    } else {
        Err(fail(
            "no `index.json` (OCI image layout) or `manifest.json` (docker save) in it".into(),
        ))
    }
}

fn blob_path(digest: &str) -> Result<String, String> {
    let d = Digest::parse(digest).map_err(|e| e.to_string())?;
    Ok(format!("blobs/sha256/{}", &d.as_str()["sha256:".len()..]))
}

fn from_oci_layout(store: &Store) -> Result<Image, String> {
    let index = store.read("index.json")?;
    let (_, parsed) =
        parse_manifest(&index, Some(OCI_INDEX)).map_err(|e| format!("index.json: {e}"))?;
    let Parsed::Index(entries) = parsed else {
        return Err("index.json is not an image index".into());
    };
    let root = match entries.as_slice() {
        [one] => one.clone(),
        [] => return Err("index.json lists no image".into()),
        many => {
            return Err(format!(
                "index.json lists {} images; push one layout per image",
                many.len()
            ));
        }
    };
    let mut image = Image {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    walk_layout(store, &root, &mut image, &mut seen, 0)?;
    Ok(image)
}

/// Adds `descriptor`'s manifest, its children and its blobs to `image`, children first.
fn walk_layout(
    store: &Store,
    descriptor: &Descriptor,
    image: &mut Image,
    seen: &mut std::collections::HashSet<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > 4 {
        return Err("indexes nested deeper than 4 levels".into());
    }
    let name = blob_path(&descriptor.digest)?;
    let bytes = store.read(&name)?;
    let digest = sha256(&bytes);
    if digest.as_str() != descriptor.digest {
        return Err(format!(
            "`{name}` does not hash to its name (it is {digest})"
        ));
    }
    let fallback = (!descriptor.media_type.is_empty()).then_some(descriptor.media_type.as_str());
    let (media_type, parsed) =
        parse_manifest(&bytes, fallback).map_err(|e| format!("{name}: {e}"))?;
    match parsed {
        Parsed::Index(children) => {
            for child in &children {
                walk_layout(store, child, image, seen, depth + 1)?;
            }
        }
        Parsed::Image(blobs) => {
            for blob in blobs {
                if !seen.insert(blob.digest.clone()) {
                    continue;
                }
                let path = blob_path(&blob.digest)?;
                let (source, size) = store
                    .source(&path)
                    .ok_or_else(|| format!("blob `{path}` is missing"))?;
                if size != blob.size {
                    return Err(format!(
                        "blob `{path}` is {size} bytes, the manifest says {}",
                        blob.size
                    ));
                }
                image.blobs.push(Blob {
                    digest: Digest::parse(&blob.digest).map_err(|e| e.to_string())?,
                    size,
                    source,
                });
            }
        }
    }
    if !image.manifests.iter().any(|m| m.digest == digest) {
        image.manifests.push(Manifest {
            digest,
            media_type,
            bytes: Bytes::from(bytes),
        });
    }
    Ok(())
}

/// The classic `docker save` layout: `manifest.json` lists the config file and layer tars.
fn from_docker_save(store: &Store) -> Result<Image, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        layers: Vec<String>,
    }
    let list: Vec<Entry> = serde_json::from_slice(&store.read("manifest.json")?)
        .map_err(|e| format!("manifest.json: {e}"))?;
    let entry = match list.as_slice() {
        [one] => one,
        other => {
            return Err(format!(
                "manifest.json lists {} images; save one image per archive",
                other.len()
            ));
        }
    };
    let config = Bytes::from(store.read(&entry.config)?);
    let config_digest = sha256(&config);
    let mut blobs = vec![Blob {
        digest: config_digest.clone(),
        size: config.len() as u64,
        source: Source::Memory(config.clone()),
    }];
    let mut layers = Vec::new();
    for name in &entry.layers {
        let (source, size) = store
            .source(name)
            .ok_or_else(|| format!("layer `{name}` is missing"))?;
        let (digest, media_type) = hash_layer(&source, size).map_err(|e| format!("{name}: {e}"))?;
        layers.push(serde_json::json!({
            "mediaType": media_type, "digest": digest.as_str(), "size": size,
        }));
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(Blob {
                digest,
                size,
                source,
            });
        }
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config_digest.as_str(), "size": config.len() },
        "layers": layers,
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).expect("JSON"));
    Ok(Image {
        manifests: vec![Manifest {
            digest: sha256(&bytes),
            media_type: OCI_MANIFEST.into(),
            bytes,
        }],
        blobs,
    })
}

/// A layer's digest (one streaming read) and media type (from its magic bytes: gzip, zstd or
/// a plain tar).
fn hash_layer(source: &Source, size: u64) -> std::io::Result<(Digest, &'static str)> {
    use std::io::{Read, Seek};
    let Source::File { path, offset } = source else {
        unreachable!("layers on disk are files")
    };
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(*offset))?;
    let mut reader = file.take(size);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut magic = Vec::new();
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        if magic.len() < 4 {
            magic.extend_from_slice(&buffer[..n.min(4)]);
        }
        hasher.update(&buffer[..n]);
    }
    let media_type = if magic.starts_with(&[0x1f, 0x8b]) {
        OCI_LAYER_GZIP
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        OCI_LAYER_ZSTD
    } else {
        OCI_LAYER_TAR
    };
    Ok((digest_of(hasher.finalize().as_slice()), media_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::media::DOCKER_LIST;

    #[test]
    fn parses_images_and_indexes() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"c","digest":"sha256:aa","size":2},
            "layers":[{"mediaType":"l","digest":"sha256:bb","size":3},
                      {"mediaType":"foreign","digest":"sha256:cc","size":4,"urls":["https://x"]}]}"#;
        let (media_type, parsed) = parse_manifest(manifest, None).unwrap();
        assert_eq!(media_type, OCI_MANIFEST);
        let Parsed::Image(blobs) = parsed else {
            panic!()
        };
        let digests: Vec<_> = blobs.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(
            digests,
            ["sha256:aa", "sha256:bb"],
            "foreign layers are skipped"
        );

        let index =
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:dd","size":5}]}"#;
        let (media_type, parsed) = parse_manifest(index, Some(DOCKER_LIST)).unwrap();
        assert_eq!(
            media_type, DOCKER_LIST,
            "the served type counts when the body has none"
        );
        assert!(matches!(parsed, Parsed::Index(c) if c.len() == 1));
        assert!(parse_manifest(b"[]", None).is_err());
    }

    #[test]
    fn a_layout_with_two_images_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"digest":"{0}","size":1}},{{"digest":"{0}","size":1}}]}}"#,
                sha256(b"x")
            ),
        )
        .unwrap();
        let err = open_source(dir.path()).unwrap_err();
        assert!(err.message.contains("lists 2 images"), "{err}");
    }
}
