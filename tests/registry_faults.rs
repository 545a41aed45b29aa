//! The transfer engine under faults, through a proxy in front of the real registry: 503s, 429
//! with Retry-After, connections reset in the middle of a blob, slow answers. Every push and
//! copy still ends with the identical digest; when retries run out the command fails with exit
//! code 1 and no tag was moved.

use std::time::Duration;

use crate::registry_push::{assert_skopeo_pulls_identical, copy, output, push};
use crate::support::front::{Fault, FaultKind};
use crate::support::registry::{Auth, Registry};
use crate::support::{images, proxied_stack};

fn fault(method: &'static str, path: &'static str, times: usize, kind: FaultKind) -> Fault {
    Fault {
        method,
        path,
        times,
        kind,
    }
}

#[test]
fn push_survives_503_429_resets_and_slow_answers_with_the_same_digest() {
    let stack = proxied_stack();
    let layout = images::layout(&[1000, 400_000, 900_000]);
    let f = &stack.front;
    f.add_fault(fault("HEAD", "/blobs/sha256:", 2, FaultKind::Status(503)));
    f.add_fault(fault(
        "POST",
        "/blobs/uploads/",
        1,
        FaultKind::TooManyRequests { retry_after: 1 },
    ));
    f.add_fault(fault(
        "PUT",
        "/blobs/uploads/",
        2,
        FaultKind::ResetRequestBody { after: 64 * 1024 },
    ));
    f.add_fault(fault("PUT", "/manifests/", 1, FaultKind::Status(502)));
    f.add_fault(fault(
        "PUT",
        "/manifests/",
        1,
        FaultKind::Delay(Duration::from_millis(300)),
    ));
    let image = format!("{}/faulty", stack.host());
    let r = push(layout.path(), &image, &["--tag", "v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert!(r.stderr.contains("503"), "the retries are logged: {r:?}");
    let faults = f.state.faults.lock().unwrap().clone();
    assert!(
        faults.iter().all(|f| f.times == 0),
        "every fault was hit: {faults:?}"
    );
    assert_skopeo_pulls_identical(&format!("{}/faulty:v1", stack.registry.addr), &layout);
}

#[test]
fn a_chunk_cut_off_is_resumed_where_the_registry_stopped() {
    let stack = proxied_stack();
    let layout = images::layout(&[5 * 1024 * 1024 + 3]);
    stack.front.add_fault(fault(
        "PATCH",
        "/blobs/uploads/",
        2,
        FaultKind::ResetRequestBody { after: 100_000 },
    ));
    let r = push(
        layout.path(),
        &format!("{}/resumed", stack.host()),
        &["--tag", "v1", "--chunk-size", "1MiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert!(r.stderr.contains("resuming at byte"), "{r:?}");
    assert!(!r.stderr.contains("starting over"), "{r:?}");
    assert_eq!(
        stack
            .front
            .records("/v2/resumed/blobs/uploads/")
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        layout.blobs.len(),
        "one upload session per blob: the cut chunk resumed in its session"
    );
    assert_skopeo_pulls_identical(&format!("{}/resumed:v1", stack.registry.addr), &layout);
}

#[test]
fn a_chunk_the_registry_kept_half_of_starts_the_blob_over() {
    // distribution 2.8 invalidates a session whose stored size no longer matches its state: the
    // upload starts over in a new session and still ends with the same digest.
    let stack = proxied_stack();
    let layout = images::layout(&[3 * 1024 * 1024 + 5]);
    stack.front.add_fault(fault(
        "PATCH",
        "/blobs/uploads/",
        1,
        FaultKind::ForwardPartialRequestBody { after: 300_000 },
    ));
    let r = push(
        layout.path(),
        &format!("{}/restarted", stack.host()),
        &["--tag", "v1", "--chunk-size", "1MiB"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert!(
        r.stderr
            .contains("the upload session is gone, starting over"),
        "{r:?}"
    );
    assert_skopeo_pulls_identical(&format!("{}/restarted:v1", stack.registry.addr), &layout);
}

#[test]
fn a_declined_mount_falls_back_to_an_upload_in_the_offered_session() {
    let stack = proxied_stack();
    let layout = images::layout(&[1000, 200_000]);
    let r = push(layout.path(), &format!("{}/base", stack.host()), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    stack.front.add_fault(fault(
        "POST",
        "/blobs/uploads/",
        100,
        FaultKind::DeclineMount,
    ));
    let r = copy(
        &format!("{}/base@{}", stack.host(), layout.digest),
        &format!("{}/derived", stack.host()),
        &["--tag", "v1"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("3 uploaded, 0 mounted"), "{r:?}");
    let mounts: Vec<_> = stack
        .front
        .records("/v2/derived/blobs/uploads/")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(
        mounts.len(),
        3,
        "one request per blob: the 202's session is used"
    );
    assert!(mounts.iter().all(|m| m.param("mount").is_some()));
    assert_skopeo_pulls_identical(&format!("{}/derived:v1", stack.registry.addr), &layout);
}

#[test]
fn a_copy_whose_source_breaks_mid_blob_still_completes() {
    let source = proxied_stack();
    let target = Registry::start(Auth::Anonymous);
    let layout = images::multi_arch_layout(&[300_000]);
    let r = push(layout.path(), &format!("{}/app", source.registry.addr), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    source.front.add_fault(fault(
        "GET",
        "/blobs/sha256:",
        2,
        FaultKind::ResetResponseBody { after: 10_000 },
    ));
    source
        .front
        .add_fault(fault("GET", "/manifests/", 1, FaultKind::Status(503)));
    let r = copy(
        &format!("{}/app@{}", source.host(), layout.digest),
        &format!("{}/app", target.addr),
        &["--tag", "production"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert_skopeo_pulls_identical(&format!("{}/app:production", target.addr), &layout);
}

#[test]
fn when_retries_run_out_the_push_fails_with_1_and_no_tag_moves() {
    let stack = proxied_stack();
    let first = images::layout(&[2000]);
    let r = push(
        first.path(),
        &format!("{}/web", stack.host()),
        &["--tag", "production"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let second = images::layout(&[3000]);
    stack
        .front
        .add_fault(fault("PUT", "/manifests/", 100, FaultKind::Status(503)));
    let r = push(
        second.path(),
        &format!("{}/web", stack.host()),
        &["--tag", "production", "--retries", "2"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("503 Service Unavailable"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("failed to push {}", second.digest)),
        "{r:?}"
    );
    // The tag still points at the first image.
    let tag = stack
        .registry
        .storage()
        .join("docker/registry/v2/repositories/web/_manifests/tags/production/current/link");
    assert_eq!(std::fs::read_to_string(tag).unwrap(), first.digest);
}
