//! Generated test images: random, incompressible layers of chosen sizes, written as an OCI image
//! layout (optionally an index of two platforms), an OCI archive or a `docker save` tar.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub struct Layout {
    pub dir: tempfile::TempDir,
    /// The root manifest's (or index's) digest.
    pub digest: String,
    /// Every blob digest (configs and layers).
    pub blobs: Vec<String>,
}

impl Layout {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Bytes no compressor can shrink: xorshift64* seeded from the OS.
fn fill_random(out: &mut impl Write, mut size: usize) -> Sha256 {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).expect("randomness");
    let mut state = u64::from_le_bytes(seed) | 1;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    while size > 0 {
        let n = size.min(buf.len());
        for chunk in buf[..n].chunks_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out.write_all(&buf[..n]).unwrap();
        hasher.update(&buf[..n]);
        size -= n;
    }
    hasher
}

pub fn hex(hash: Sha256) -> String {
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = hex(Sha256::new_with_prefix(bytes));
    let path = dir.join("blobs/sha256").join(&hex);
    std::fs::write(path, bytes).unwrap();
    format!("sha256:{hex}")
}

fn random_blob(dir: &Path, size: usize) -> String {
    let tmp = dir.join("blobs/sha256/.partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let hash = fill_random(&mut file, size);
    file.flush().unwrap();
    drop(file);
    let hex = hex(hash);
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    format!("sha256:{hex}")
}

/// Writes one image (config + random layers) into the layout at `dir`; returns the manifest
/// descriptor JSON and every blob digest.
fn image(dir: &Path, layer_sizes: &[usize], arch: &str) -> (serde_json::Value, Vec<String>) {
    let layers: Vec<(String, usize)> = layer_sizes
        .iter()
        .map(|size| (random_blob(dir, *size), *size))
        .collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>() },
    })
    .to_string();
    let config_digest = write_blob(dir, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let manifest_digest = write_blob(dir, manifest.as_bytes());
    let mut blobs = vec![config_digest];
    blobs.extend(layers.into_iter().map(|(d, _)| d));
    (
        serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len(),
            "platform": { "architecture": arch, "os": "linux" },
        }),
        blobs,
    )
}

fn new_layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    dir
}

fn write_index(dir: &Path, entry: serde_json::Value) {
    let index =
        serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// An OCI image layout with one image of random layers of these sizes.
pub fn layout(layer_sizes: &[usize]) -> Layout {
    let dir = new_layout();
    let (mut descriptor, blobs) = image(dir.path(), layer_sizes, "amd64");
    descriptor.as_object_mut().unwrap().remove("platform");
    let digest = descriptor["digest"].as_str().unwrap().to_string();
    write_index(dir.path(), descriptor);
    Layout { dir, digest, blobs }
}

/// An OCI image layout whose image is an index of two platforms (amd64, arm64).
pub fn multi_arch_layout(layer_sizes: &[usize]) -> Layout {
    let dir = new_layout();
    let (amd, mut blobs) = image(dir.path(), layer_sizes, "amd64");
    let (arm, more) = image(dir.path(), layer_sizes, "arm64");
    blobs.extend(more);
    let index =
        serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm] })
            .to_string();
    let digest = write_blob(dir.path(), index.as_bytes());
    write_index(
        dir.path(),
        serde_json::json!({ "mediaType": OCI_INDEX, "digest": digest, "size": index.len() }),
    );
    Layout { dir, digest, blobs }
}

/// The layout as an OCI archive (what buildx `type=oci` writes), made with `tar`.
pub fn archive(layout: &Layout) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("image.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&path)
        .arg("-C")
        .arg(layout.path())
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success());
    (out, path)
}

/// A classic `docker save` tar (manifest.json, config, `<id>/layer.tar`), made with `tar`.
/// Returns the archive and the layers' digests.
pub fn docker_save(layer_sizes: &[usize]) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let content = out.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let mut layers = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        std::fs::create_dir_all(content.join(format!("layer{i}"))).unwrap();
        let mut file = std::fs::File::create(content.join(format!("layer{i}/layer.tar"))).unwrap();
        layers.push(format!("sha256:{}", hex(fill_random(&mut file, *size))));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": layers },
    });
    std::fs::write(content.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["example/web:latest"],
        "Layers": (0..layer_sizes.len()).map(|i| format!("layer{i}/layer.tar")).collect::<Vec<_>>(),
    }]);
    std::fs::write(content.join("manifest.json"), manifest.to_string()).unwrap();
    let path = out.path().join("saved.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&path)
        .arg("-C")
        .arg(&content)
        .arg("manifest.json")
        .arg("config.json")
        .args((0..layer_sizes.len()).map(|i| format!("layer{i}/layer.tar")))
        .status()
        .expect("tar runs");
    assert!(status.success());
    (out, path, layers)
}
