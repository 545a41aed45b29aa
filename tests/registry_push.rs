//! `promote push` and `promote copy` against the real distribution registry, anonymous, and
//! interoperability with skopeo both ways.

use std::path::Path;
use std::process::Command;

use crate::support::images::{self, Layout};
use crate::support::registry::{Auth, Registry};
use crate::util::{Run, promote, run};

/// Parses `name=value` output lines.
pub fn output(run: &Run, name: &str) -> Option<String> {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

pub fn push(source: &Path, image: &str, extra: &[&str]) -> Run {
    run(promote()
        .arg("push")
        .arg("--source")
        .arg(source)
        .arg("--image")
        .arg(image)
        .args(extra))
}

pub fn copy(src: &str, dst: &str, extra: &[&str]) -> Run {
    run(promote().arg("copy").arg(src).arg(dst).args(extra))
}

pub fn skopeo(args: &[&str]) -> std::process::Output {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo runs (Debian package skopeo; scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// skopeo pulls `reference` into a fresh OCI layout; every blob of `layout` must be there,
/// byte for byte, and the layout's root must be `digest`.
pub fn assert_skopeo_pulls_identical(reference: &str, layout: &Layout) {
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:pulled", out.path().display());
    let mut args = vec!["copy", "--src-tls-verify=false", "--preserve-digests"];
    let index = std::fs::read_to_string(layout.path().join("index.json")).unwrap();
    if index.contains(images::OCI_INDEX) {
        args.push("--all");
    }
    let src = format!("docker://{reference}");
    args.extend([src.as_str(), dest.as_str()]);
    skopeo(&args);
    let pulled_index = std::fs::read_to_string(out.path().join("index.json")).unwrap();
    assert!(
        pulled_index.contains(&layout.digest),
        "skopeo's layout points at {pulled_index}, expected {}",
        layout.digest
    );
    for blob in layout.blobs.iter().chain([&layout.digest]) {
        let name = format!("blobs/sha256/{}", &blob["sha256:".len()..]);
        let ours = std::fs::read(layout.path().join(&name)).unwrap();
        let theirs = std::fs::read(out.path().join(&name))
            .unwrap_or_else(|e| panic!("skopeo did not write {name}: {e}"));
        assert!(ours == theirs, "{name} differs after the round trip");
    }
}

const SMALL: &[usize] = &[1024, 300 * 1024, 2 * 1024 * 1024];

#[test]
fn pushed_image_round_trips_through_skopeo_and_tags_point_at_it() {
    let registry = Registry::start(Auth::Anonymous);
    let layout = images::layout(SMALL);
    let image = format!("{}/team/web", registry.addr);
    let r = push(
        layout.path(),
        &format!("{image}:v1"),
        &["--tag", "sha-0123abc"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str()),
        "{r:?}"
    );
    assert_eq!(
        output(&r, "image"),
        Some(format!("{image}@{}", layout.digest))
    );
    assert!(registry.has_tag("team/web", "v1") && registry.has_tag("team/web", "sha-0123abc"));
    assert!(r.stderr.contains("blobs 4/4 (4 uploaded"), "{r:?}");
    assert_skopeo_pulls_identical(&format!("{image}@{}", layout.digest), &layout);
    assert_skopeo_pulls_identical(&format!("{image}:v1"), &layout);

    // Again: every blob is there already, nothing is uploaded.
    let again = push(layout.path(), &image, &["--tag", "v1"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("4 already present"), "{again:?}");
    assert_eq!(output(&again, "digest"), output(&r, "digest"));
}

#[test]
fn large_blobs_go_up_in_chunks_with_the_same_digest() {
    let registry = Registry::start(Auth::Anonymous);
    let layout = images::layout(&[3 * 1024 * 1024 + 17, 1000]);
    let image = format!("{}/chunked", registry.addr);
    let r = push(
        layout.path(),
        &image,
        &[
            "--tag",
            "v1",
            "--chunk-size",
            "1MiB",
            "--upload-concurrency",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert_skopeo_pulls_identical(&format!("{image}:v1"), &layout);
}

#[test]
fn multi_arch_index_is_pushed_and_copied_whole() {
    let registry = Registry::start(Auth::Anonymous);
    let other = Registry::start(Auth::Anonymous);
    let layout = images::multi_arch_layout(&[4096, 70_000]);
    let image = format!("{}/multi", registry.addr);
    let r = push(layout.path(), &image, &["--tag", "v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert_skopeo_pulls_identical(&format!("{image}@{}", layout.digest), &layout);

    // Same registry, new repository: mounted. Another registry: streamed. Same digest both times.
    let src = format!("{image}@{}", layout.digest);
    let mounted = copy(
        &src,
        &format!("{}/multi-testing", registry.addr),
        &["--tag", "testing"],
    );
    assert_eq!(mounted.code, 0, "{mounted:?}");
    assert!(mounted.stderr.contains("6 mounted"), "{mounted:?}");
    assert_eq!(
        output(&mounted, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    let streamed = copy(
        &src,
        &format!("{}/multi", other.addr),
        &["--tag", "production"],
    );
    assert_eq!(streamed.code, 0, "{streamed:?}");
    assert!(streamed.stderr.contains("6 uploaded"), "{streamed:?}");
    assert_skopeo_pulls_identical(&format!("{}/multi:production", other.addr), &layout);
}

#[test]
fn what_skopeo_pushed_we_copy_with_the_identical_digest() {
    let registry = Registry::start(Auth::Anonymous);
    let other = Registry::start(Auth::Anonymous);
    for layout in [images::layout(SMALL), images::multi_arch_layout(&[5000])] {
        let name = format!("{}/from-skopeo", registry.addr);
        let src = format!("oci:{}", layout.path().display());
        let dst = format!("docker://{name}:built");
        skopeo(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ]);
        // By tag: resolved once to the digest skopeo pushed.
        let r = copy(
            &format!("{name}:built"),
            &format!("{}/copied", other.addr),
            &["--tag", "testing"],
        );
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(
            output(&r, "digest").as_deref(),
            Some(layout.digest.as_str()),
            "{r:?}"
        );
        assert_skopeo_pulls_identical(&format!("{}/copied:testing", other.addr), &layout);
    }
}

#[test]
fn oci_archives_and_docker_save_tars_are_pushed() {
    let registry = Registry::start(Auth::Anonymous);
    let layout = images::layout(SMALL);
    let (_keep, archive) = images::archive(&layout);
    let r = push(
        &archive,
        &format!("{}/archive", registry.addr),
        &["--tag", "v1"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );

    let (_keep, saved, layers) = images::docker_save(&[2048, 100_000]);
    let r = push(
        &saved,
        &format!("{}/saved", registry.addr),
        &["--tag", "v1"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let digest = output(&r, "digest").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", out.path().display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--preserve-digests",
        &format!("docker://{}/saved@{digest}", registry.addr),
        &dest,
    ]);
    for layer in layers {
        assert!(
            out.path().join("blobs/sha256").join(&layer[7..]).is_file(),
            "layer {layer} pulled"
        );
    }
}

#[test]
fn bad_input_exits_2_and_names_the_problem() {
    let layout = images::layout(&[10]);
    let r = push(Path::new("/nonexistent/image"), "127.0.0.1:9/x", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("/nonexistent/image: cannot read it"),
        "{r:?}"
    );
    let r = push(layout.path(), "not a reference", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = push(layout.path(), "127.0.0.1:9/x", &["--tag", "no spaces"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = copy("127.0.0.1:9/x", "127.0.0.1:9/y", &[]);
    assert_eq!(r.code, 2, "a source without tag or digest: {r:?}");
}
