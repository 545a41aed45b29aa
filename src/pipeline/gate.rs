//! The promotion gate, as pure decisions: may this release go to this environment from this
//! branch? Every condition becomes a [`GateCheck`] in the report, passed or not, so a refusal
//! says exactly what is missing and a pass says what was checked.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::config::Environment;
use crate::kube::LiveService;
use crate::report::{GateCheck, ReleaseImage};
use crate::untrusted::{short_digest, short_sha};

/// A release's fingerprint: the first 12 hex digits of the SHA-256 of its sorted
/// `service@digest` lines. The same digests make the same id in every environment.
pub fn release_id(images: &[ReleaseImage]) -> String {
    let mut lines: Vec<String> = images
        .iter()
        .map(|i| format!("{}@{}\n", i.service, i.digest))
        .collect();
    lines.sort();
    let hash = Sha256::digest(lines.concat().as_bytes());
    hash.iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// What the lower environment (`requires`) shows, read before deciding.
#[derive(Debug, Clone, Default)]
pub struct Lower {
    pub environment: String,
    /// Each service's Deployment there.
    pub services: BTreeMap<String, LiveService>,
    /// GitHub's record: `None` when GitHub was not consulted.
    pub record: Option<Record>,
}

/// What GitHub's deployments say of the lower environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Record {
    /// No deployment of the environment whose latest status is success.
    #[default]
    Missing,
    /// The latest successful one.
    Success {
        deployment_id: u64,
        sha: String,
        /// The release id it recorded (payload, or the status description).
        release: Option<String>,
        /// Service → digest, when its payload lists them.
        digests: BTreeMap<String, String>,
    },
}

/// Whether `branch` matches a deployment branch pattern the way GitHub's branch policies do:
/// `*` is any run of characters but `/`, `**` any run at all, `?` one character but `/`.
pub fn branch_matches(pattern: &str, branch: &str) -> bool {
    fn go(p: &[u8], b: &[u8]) -> bool {
        match p {
            [] => b.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=b.len()).any(|i| go(rest, &b[i..])),
            [b'*', rest @ ..] => {
                let stop = b.iter().position(|&c| c == b'/').unwrap_or(b.len());
                (0..=stop).any(|i| go(rest, &b[i..]))
            }
            [b'?', rest @ ..] => matches!(b, [c, ..] if *c != b'/') && go(rest, &b[1..]),
            [c, rest @ ..] => b.first() == Some(c) && go(rest, &b[1..]),
        }
    }
    go(pattern.as_bytes(), branch.as_bytes())
}

/// The branch rule: `branch` is the run's branch (`None` when the run is not on one).
pub fn check_branch(env: &Environment, branch: Option<&str>) -> GateCheck {
    let patterns = &env.approval.branches;
    let name = format!("branch may deploy to {}", env.name);
    if patterns.is_empty() {
        return GateCheck {
            name,
            passed: true,
            detail: "any branch (no `approval.branches`)".to_string(),
        };
    }
    let wanted = patterns.join(", ");
    match branch {
        Some(b) if patterns.iter().any(|p| branch_matches(p, b)) => GateCheck {
            name,
            passed: true,
            detail: format!("`{b}` matches {wanted}"),
        },
        Some(b) => GateCheck {
            name,
            passed: false,
            detail: format!("`{b}` is not allowed: {} takes {wanted}", env.name),
        },
        None => GateCheck {
            name,
            passed: false,
            detail: format!(
                "this run is not on a branch (GITHUB_REF is not refs/heads/…); {} takes {wanted}",
                env.name
            ),
        },
    }
}

/// The lower environment's rules: the release runs there, verified, and GitHub's record of
/// the environment agrees with its cluster. `commit` is this run's commit, checked against
/// the release's when the release came from the lower environment (not from an input).
pub fn check_lower(
    lower: &Lower,
    release: &[ReleaseImage],
    release_id: &str,
    commit: Option<&str>,
) -> Vec<GateCheck> {
    let d = &lower.environment;
    let mut checks = Vec::new();

    let missing: Vec<String> = release
        .iter()
        .filter_map(|image| {
            let short = short_digest(image.digest.as_str());
            match lower.services.get(&image.service) {
                None => Some(format!("{}: not read in {d}", image.service)),
                Some(live) if !live.deployed => {
                    Some(format!("{}: not deployed in {d}", image.service))
                }
                Some(live) if live.runs_verified(image.digest.as_str()) => None,
                Some(live) if live.digest.as_deref() != Some(image.digest.as_str()) => {
                    Some(format!(
                        "{}: {d} runs {}, not {short}",
                        image.service,
                        live.digest
                            .as_deref()
                            .map_or("an unpinned image".to_string(), short_digest)
                    ))
                }
                Some(live) => Some(format!(
                    "{}: {short} runs in {d} but was never verified there{}",
                    image.service,
                    live.verified_digest
                        .as_deref()
                        .map(|v| format!(" (last verified: {})", short_digest(v)))
                        .unwrap_or_default()
                )),
            }
        })
        .collect();
    checks.push(GateCheck {
        name: format!("deployed and verified in {d}"),
        passed: missing.is_empty(),
        detail: if missing.is_empty() {
            format!("release {release_id} runs in {d}, verified")
        } else {
            missing.join("; ")
        },
    });

    if let Some(commit) = commit {
        let shas: Vec<&str> = release
            .iter()
            .filter_map(|i| lower.services.get(&i.service)?.verified_sha.as_deref())
            .collect();
        if let Some(other) = shas.iter().find(|s| **s != commit) {
            checks.push(GateCheck {
                name: "release is this run's commit".to_string(),
                passed: false,
                detail: format!(
                    "{d} now runs the release of commit {}, not this run's {}: a newer release superseded it; promote from that run, or name the images",
                    short_sha(other),
                    short_sha(commit)
                ),
            });
        }
    }

    checks.push(match &lower.record {
        None => GateCheck {
            name: format!("GitHub record of {d} agrees with its cluster"),
            passed: true,
            detail: "not checked: no GitHub token or repository".to_string(),
        },
        Some(Record::Missing) => GateCheck {
            name: format!("GitHub record of {d} agrees with its cluster"),
            passed: false,
            detail: format!("GitHub has no successful deployment to {d}"),
        },
        Some(Record::Success {
            deployment_id,
            release: recorded,
            digests,
            ..
        }) => {
            let mut disagreements: Vec<String> = release
                .iter()
                .filter_map(|i| {
                    let recorded = digests.get(&i.service)?;
                    (recorded != i.digest.as_str()).then(|| {
                        format!(
                            "{}: GitHub recorded {}, the cluster runs {}",
                            i.service,
                            short_digest(recorded),
                            short_digest(i.digest.as_str())
                        )
                    })
                })
                .collect();
            if disagreements.is_empty()
                && let Some(recorded) = recorded
                && recorded != release_id
            {
                disagreements.push(format!(
                    "GitHub recorded release {recorded}, the cluster runs release {release_id}"
                ));
            }
            if recorded.is_none() && digests.is_empty() {
                disagreements.push(format!(
                    "deployment {deployment_id} records no release (not made by promote-action)"
                ));
            }
            GateCheck {
                name: format!("GitHub record of {d} agrees with its cluster"),
                passed: disagreements.is_empty(),
                detail: if disagreements.is_empty() {
                    format!("deployment {deployment_id}: release {release_id}")
                } else {
                    disagreements.join("; ")
                },
            }
        }
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(service: &str, digest: &str) -> ReleaseImage {
        ReleaseImage {
            service: service.into(),
            image: format!("r.io/{service}@{digest}"),
            digest: crate::registry::Digest::unchecked(digest),
        }
    }

    fn live(digest: &str, verified: &str) -> LiveService {
        LiveService {
            deployed: true,
            digest: Some(digest.into()),
            verified_digest: Some(verified.into()),
            verified_sha: Some("abc1234def".into()),
            ..LiveService::default()
        }
    }

    #[test]
    fn release_ids_ignore_order() {
        let a = [image("web", "sha256:1"), image("api", "sha256:2")];
        let b = [image("api", "sha256:2"), image("web", "sha256:1")];
        assert_eq!(release_id(&a), release_id(&b));
        assert_eq!(release_id(&a).len(), 12);
        assert_ne!(release_id(&a), release_id(&[image("web", "sha256:1")]));
    }

    #[test]
    fn branch_patterns_follow_github() {
        assert!(branch_matches("main", "main"));
        assert!(!branch_matches("main", "main2"));
        assert!(branch_matches("release/*", "release/1.2"));
        assert!(!branch_matches("release/*", "release/1/2"));
        assert!(branch_matches("release/**", "release/1/2"));
        assert!(branch_matches("v?", "v1"));
        assert!(!branch_matches("*", "a/b"));
    }

    fn lower(services: &[(&str, LiveService)], record: Option<Record>) -> Lower {
        Lower {
            environment: "development".into(),
            services: services
                .iter()
                .map(|(s, l)| (s.to_string(), l.clone()))
                .collect(),
            record,
        }
    }

    #[test]
    fn passes_when_cluster_and_record_agree() {
        let release = [image("web", "sha256:aaa")];
        let id = release_id(&release);
        let record = Record::Success {
            deployment_id: 7,
            sha: "abc1234def".into(),
            release: Some(id.clone()),
            digests: [("web".to_string(), "sha256:aaa".to_string())].into(),
        };
        let checks = check_lower(
            &lower(&[("web", live("sha256:aaa", "sha256:aaa"))], Some(record)),
            &release,
            &id,
            Some("abc1234def"),
        );
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
    }

    #[test]
    fn refuses_what_was_not_verified_or_disagrees() {
        let release = [image("web", "sha256:aaa")];
        let id = release_id(&release);
        // Rolled back in development after verification: runs aaa, verified bbb.
        let checks = check_lower(
            &lower(&[("web", live("sha256:aaa", "sha256:bbb"))], None),
            &release,
            &id,
            None,
        );
        assert!(!checks[0].passed);
        assert!(
            checks[0].detail.contains("never verified"),
            "{}",
            checks[0].detail
        );
        // The record says another release.
        let record = Record::Success {
            deployment_id: 7,
            sha: "x".into(),
            release: Some("000000000000".into()),
            digests: BTreeMap::new(),
        };
        let checks = check_lower(
            &lower(&[("web", live("sha256:aaa", "sha256:aaa"))], Some(record)),
            &release,
            &id,
            None,
        );
        assert!(checks[0].passed);
        assert!(!checks[1].passed);
        assert!(
            checks[1]
                .detail
                .contains("GitHub recorded release 000000000000")
        );
        // No success on GitHub at all.
        let checks = check_lower(
            &lower(
                &[("web", live("sha256:aaa", "sha256:aaa"))],
                Some(Record::Missing),
            ),
            &release,
            &id,
            None,
        );
        assert!(!checks.last().unwrap().passed);
        // Not deployed.
        let checks = check_lower(
            &lower(&[("web", LiveService::default())], None),
            &release,
            &id,
            None,
        );
        assert!(checks[0].detail.contains("not deployed in development"));
    }

    #[test]
    fn a_superseded_release_is_refused() {
        let release = [image("web", "sha256:aaa")];
        let id = release_id(&release);
        let checks = check_lower(
            &lower(&[("web", live("sha256:aaa", "sha256:aaa"))], None),
            &release,
            &id,
            Some("fff0000"),
        );
        let commit = checks.iter().find(|c| c.name.contains("commit")).unwrap();
        assert!(!commit.passed);
        assert!(commit.detail.contains("superseded"));
    }
}
