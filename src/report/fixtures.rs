//! Reports shared by the renderers' tests: one status across three environments, the digests
//! and commit it shows, and the instant it is read at.

use jiff::Timestamp;

use super::status::*;

/// A timestamp from a fixture's RFC 3339 text.
pub(super) fn ts(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

pub(super) const AUTH_DIGEST: &str =
    "sha256:4f1c2d3e4a5b6c7d8e9f00112233445566778899aabbccddeeff001122334455";
pub(super) const COURSE_DIGEST: &str =
    "sha256:9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
pub(super) const SHA: &str = "3f2a9c1b8e7d6c5b4a39281706f5e4d3c2b1a098";

fn service(name: &str, digest: &str, revision: i64, ready: i32) -> ServiceStatus {
    ServiceStatus {
        service: name.into(),
        deployed: true,
        digest: Some(digest.into()),
        git_sha: Some(SHA.into()),
        revision: Some(revision),
        ready: Some(ready),
        desired: Some(3),
        since: Some(ts("2025-03-14T10:10:00Z")),
        verified_digest: Some(digest.into()),
        deployed_by: Some("octocat".into()),
        strategy: "rolling",
        blue_green: None,
        canary: None,
    }
}

pub(super) fn status() -> StatusReport {
    let env = |name: &str, services: Vec<ServiceStatus>| EnvironmentStatus {
        environment: name.into(),
        namespace: name.into(),
        error: None,
        services,
        last_outcome: Some(LastOutcome::State(crate::github::DeploymentState::Success)),
        last_deployed_by: Some("octocat".into()),
        last_deployed_at: Some(ts("2025-03-14T10:10:00Z")),
    };
    let mut testing = env(
        "testing",
        vec![
            service("auth-service", AUTH_DIGEST, 7, 3),
            service("course-service", "sha256:77aa01bc9d3e0000", 5, 1),
        ],
    );
    testing.services[1].verified_digest = Some(COURSE_DIGEST.into());
    let mut production = env("production", Vec::new());
    production.error =
        Some("cannot reach https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden | <b>".into());
    StatusReport {
        environments: vec![
            env(
                "development",
                vec![
                    service("auth-service", AUTH_DIGEST, 9, 3),
                    service("course-service", COURSE_DIGEST, 6, 3),
                ],
            ),
            testing,
            production,
        ],
    }
}

pub(super) fn now() -> Timestamp {
    "2025-03-14T12:10:00Z".parse().unwrap()
}
