//! Integration checks: a Kubernetes Job from the environment's config (image, command, env,
//! service account, timeout) run in the environment's namespace. Its log is streamed into a
//! collapsible group; the check passes when the Job completes and fails when it fails or runs
//! out of time. The Job is deleted afterwards, with `ttlSecondsAfterFinished` as the backstop
//! when this process cannot (it was cancelled, the API failed).
//!
//! A test container may print a JUnit XML report between the marker lines of [`super::junit`];
//! its counts and failing test names go into the report. The Job's result decides the check.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::junit::{self, BEGIN_MARKER, END_MARKER};
use super::report::{CheckKind, CheckReport, IntegrationReport};
use crate::actions::Console;
use crate::config::IntegrationCheck;
use crate::kube::{
    JobEnd, LABEL_ENVIRONMENT, LABEL_MANAGED_BY, MANAGER, delete_job, follow_job, print_job_line,
};

/// Labels the Job and its pod with the check's name.
const LABEL_CHECK: &str = "promote.studysphere.dev/check";
/// An hour: long enough to read a leftover Job's log by hand, short enough not to pile up.
const TTL_AFTER_FINISHED: u32 = 3600;
/// Time beyond the Job's own `activeDeadlineSeconds` for the Job controller to mark it failed
/// (and for the pod to be scheduled and its image pulled before the deadline counts).
const GRACE: Duration = Duration::from_secs(60);

/// The Job's name: `verify-<check>-<suffix>`, at most 52 characters so that pod names
/// (`<job>-xxxxx`) and the `job-name` label stay within 63.
fn job_name(check: &str, suffix: &str) -> String {
    let mut name: String = check
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    name.truncate(52 - "verify--".len() - suffix.len());
    let name = name.trim_matches('-');
    format!("verify-{name}-{suffix}")
}

/// A label value from free text: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at
/// both ends.
fn label_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    value.truncate(63);
    value
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The Job for `check`: one pod, no retries (a flaky test must not pass on its second try
/// unnoticed), `activeDeadlineSeconds` from the check's timeout.
fn job_object(
    check: &IntegrationCheck,
    name: &str,
    namespace: &str,
    environment: &str,
    image: &str,
) -> Value {
    let labels = json!({
        LABEL_MANAGED_BY: MANAGER,
        LABEL_ENVIRONMENT: label_value(environment),
        LABEL_CHECK: label_value(&check.name),
    });
    let mut container = json!({ "name": "test", "image": image });
    if !check.command.is_empty() {
        container["command"] = json!(check.command);
    }
    if !check.args.is_empty() {
        container["args"] = json!(check.args);
    }
    if !check.env.is_empty() {
        container["env"] = check
            .env
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
    }
    let mut pod_spec = json!({ "restartPolicy": "Never", "containers": [container] });
    if let Some(account) = &check.service_account {
        pod_spec["serviceAccountName"] = json!(account);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": check.timeout.as_secs().max(1),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": { "metadata": { "labels": labels }, "spec": pod_spec },
        },
    })
}

/// Five random lower-case letters and digits, like the suffixes Kubernetes generates.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time still makes a clash between two runs unlikely.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = nanos.to_le_bytes().repeat(2)[..5]
            .try_into()
            .unwrap_or([0; 5]);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Runs `check` as a Job with `image` and reports it.
pub async fn run(
    client: &Client,
    console: &Console,
    namespace: &str,
    environment: &str,
    check: &IntegrationCheck,
    image: &str,
) -> CheckReport {
    let started = Instant::now();
    let mut report = CheckReport::new(CheckKind::Integration, &check.name);
    let name = job_name(&check.name, &random_suffix());
    let mut details = IntegrationReport {
        job: name.clone(),
        image: image.to_string(),
        status: String::new(),
        junit: None,
        deleted: false,
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let object = job_object(check, &name, namespace, environment, image);
    let job: Job = match serde_json::from_value(object) {
        Ok(job) => job,
        Err(e) => {
            report.reason = Some(format!("building the Job: {e}"));
            report.integration = Some(details);
            return report;
        }
    };
    crate::say!(
        "Integration check {}: job/{name} with {image} (timeout {})",
        check.name,
        crate::config::units::format_duration(check.timeout)
    );
    if let Err(e) = jobs.create(&PostParams::default(), &job).await {
        let e = crate::kube::ApiError::from(e);
        details.status = "not started".into();
        report.reason = Some(format!("starting job/{name} failed: {e}"));
        report.integration = Some(details);
        report.duration_ms = started.elapsed().as_millis();
        return report;
    }

    let deadline = started + check.timeout + GRACE;
    let run = follow_job(
        client,
        console,
        namespace,
        &name,
        &format!("Integration check {} (job/{name})", check.name),
        deadline,
        junit_hidden(),
    )
    .await;

    let failure = match &run.end {
        JobEnd::Complete => {
            details.status = "succeeded".into();
            None
        }
        JobEnd::Failed(why) => {
            details.status = format!("failed: {why}");
            Some(format!("job/{name} failed: {why}"))
        }
        JobEnd::TimedOut => {
            details.status = "timed out".into();
            Some(format!(
                "job/{name} did not finish within {}",
                crate::config::units::format_duration(check.timeout + GRACE)
            ))
        }
        JobEnd::Api(e) => {
            details.status = "unknown".into();
            Some(format!("watching job/{name} failed: {e}"))
        }
    };
    let mut warnings = Vec::new();
    match junit::extract(&run.log) {
        None => {}
        Some(Ok(xml)) => match junit::parse(&xml) {
            Ok(summary) => details.junit = Some(summary),
            Err(e) => warnings.push(e.to_string()),
        },
        Some(Err(e)) => warnings.push(e.to_string()),
    }
    details.deleted = match delete_job(&jobs, &name).await {
        Ok(()) => true,
        Err(e) => {
            warnings.push(format!(
                "could not delete job/{name} ({e}); its ttlSecondsAfterFinished ({TTL_AFTER_FINISHED}s) will"
            ));
            false
        }
    };
    report.passed = failure.is_none();
    report.reason = match (failure, &details.junit) {
        (Some(why), Some(j)) if j.failed > 0 => Some(format!(
            "{why}; {} of {} tests failed: {}",
            j.failed,
            j.tests,
            j.failures.join(", ")
        )),
        (why, _) => why,
    };
    if !warnings.is_empty() {
        let note = warnings.join("; ");
        report.reason = Some(match report.reason.take() {
            Some(why) => format!("{why} ({note})"),
            None => note,
        });
    }
    report.integration = Some(details);
    report.duration_ms = started.elapsed().as_millis();
    report
}

/// A printer for the Job's log that leaves out the JUnit report between its markers (it is
/// only collected) and says where it was.
fn junit_hidden() -> impl FnMut(&str) + Send + 'static {
    let mut in_report = false;
    move |line| match line.trim() {
        BEGIN_MARKER => in_report = true,
        END_MARKER => {
            in_report = false;
            crate::say!("│ (JUnit report collected)");
        }
        _ if in_report => {}
        _ => print_job_line(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn check(name: &str) -> IntegrationCheck {
        IntegrationCheck {
            name: name.into(),
            image: None,
            command: vec!["npm".into(), "run".into(), "test:integration".into()],
            args: vec!["--ci".into()],
            env: BTreeMap::from([("BASE_URL".to_string(), "http://web".to_string())]),
            service_account: Some("tester".into()),
            timeout: Duration::from_secs(900),
            pos: crate::config::yaml::Pos { line: 1, col: 1 },
        }
    }

    #[test]
    fn job_names_fit_in_a_label() {
        let cases: &[(&str, &str)] = &[
            ("api-contracts", "verify-api-contracts-b2c4d"),
            ("API Contracts!", "verify-api-contracts-b2c4d"),
            (
                "a-very-long-integration-check-name-that-goes-on-and-on",
                "verify-a-very-long-integration-check-name-that-b2c4d",
            ),
        ];
        for (check, want) in cases {
            let name = job_name(check, "b2c4d");
            assert_eq!(name, *want);
            assert!(name.len() <= 52, "{name}");
        }
    }

    #[test]
    fn the_job_runs_once_within_its_timeout() {
        let job = job_object(
            &check("api contracts"),
            "verify-api-contracts-b2c4d",
            "testing",
            "testing",
            "example.azurecr.io/shop/web@sha256:abc",
        );
        let want = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "verify-api-contracts-b2c4d",
                "namespace": "testing",
                "labels": {
                    "app.kubernetes.io/managed-by": "promote-action",
                    "promote.studysphere.dev/environment": "testing",
                    "promote.studysphere.dev/check": "api-contracts",
                },
            },
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": 900,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": { "labels": {
                        "app.kubernetes.io/managed-by": "promote-action",
                        "promote.studysphere.dev/environment": "testing",
                        "promote.studysphere.dev/check": "api-contracts",
                    }},
                    "spec": {
                        "restartPolicy": "Never",
                        "serviceAccountName": "tester",
                        "containers": [{
                            "name": "test",
                            "image": "example.azurecr.io/shop/web@sha256:abc",
                            "command": ["npm", "run", "test:integration"],
                            "args": ["--ci"],
                            "env": [{ "name": "BASE_URL", "value": "http://web" }],
                        }],
                    },
                },
            },
        });
        assert_eq!(job, want);
        let parsed: Result<Job, _> = serde_json::from_value(job);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn suffixes_are_dns_safe() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
