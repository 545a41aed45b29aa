//! Verification of an environment after a rollout: its one job is to run the checks
//! promotion.yml declares and say, with numbers, whether they passed.
//!
//! - smoke checks over HTTP (`smoke`): readiness, then a sample of N requests at concurrency
//!   C (or for a duration) whose latency percentiles and error rate meet the SLO gate
//!   (`slo`), straight to a URL or through the API server's service proxy (`proxy`);
//! - integration checks (`integration`): a Job whose log is streamed and whose JUnit report
//!   (`junit`) is counted;
//! - the soak (`soak`): the new pods watched for a while;
//! - metric analysis ([`analysis`]): Prometheus queries judged against bounds over a window.
//!
//! [`verify`] runs them all and returns a [`VerifyReport`]; it never rolls back, exits or
//! writes files. Deciding what a failure means (roll back after a deploy, exit 1 alone) is the
//! caller's: `pipeline::verify` for `promote verify`, the deploy/pipeline code after a rollout.
//! The submodules are private and callers use the names re-exported here, except
//! [`analysis`], a capability of its own with its own face.

pub mod analysis;
mod integration;
mod junit;
mod proxy;
mod report;
mod slo;
mod smoke;
mod soak;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};
use tokio::time::Instant;

pub use junit::JunitSummary;
pub use report::{
    CheckKind, CheckReport, IntegrationReport, Readiness, SampleStats, SmokeReport, VerifyReport,
};
pub use slo::{Verdict, percentile};

use crate::actions::{Annotation, Console, Secret};
use crate::config::{CheckRoute, Config, Environment, HeaderValue, Service, Slo, SmokeCheck};
use smoke::{Amount, Expect, Request, Transport};

/// What a verification is given. Build it from the run's context; nothing here reads the
/// process environment.
pub struct Verification<'a> {
    pub console: &'a Console,
    pub config: &'a Config,
    pub environment: &'a Environment,
    /// Only this service's smoke checks and pods (integration checks always run); `None`: all.
    pub service: Option<&'a str>,
    /// The environment's cluster: needed by service-proxy smoke checks, integration checks and
    /// the soak (see [`needs_cluster`]).
    pub client: Option<Client>,
    /// Reads the variable of a `{fromEnv: VAR}` header, masked as it is read: in the binary,
    /// `|name| ctx.read_secret(name, console)`.
    pub secrets: &'a (dyn Fn(&str) -> Option<Secret> + Sync),
    /// Images pinned by service (`service → registry/repo@sha256:…`), when the caller knows
    /// them (a deploy does). An integration check without an `image` runs the first service's;
    /// when it is not here, it is read from that service's Deployment in the cluster.
    pub images: BTreeMap<String, String>,
}

/// A verification that cannot start: the configuration or the run's inputs are wrong, so
/// nothing was checked. Callers treat it as invalid input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "smoke check {check}: header {header} takes its value from the environment variable {variable}, which is not set (pass it to the step with `env:`)"
    )]
    MissingSecret {
        check: String,
        header: String,
        variable: String,
    },
    #[error("smoke check {check}: {header:?} is not a valid HTTP header name or value")]
    Header { check: String, header: String },
    #[error("smoke check {check}: cannot read the CA file {}", path.display())]
    CaFile {
        check: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("smoke check {check}: the CA file {} holds no usable PEM certificate", path.display())]
    CaPem {
        check: String,
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("smoke check {check}: {url:?} is not a valid URL")]
    Url {
        check: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("smoke check {check}: `path` needs the environment's `url`")]
    NoUrl { check: String },
    #[error("building the HTTP client of smoke check {check}")]
    Client {
        check: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} needs a connection to the cluster")]
    NoCluster { what: String },
}

/// Whether verifying `env` (for `service`, or all) needs the cluster: a service-proxy smoke
/// check, an integration check or the soak. Connect only then, so URL-only checks run anywhere.
pub fn needs_cluster(env: &Environment, service: Option<&str>) -> bool {
    env.checks
        .smoke
        .iter()
        .filter(|c| in_scope(c, service))
        .any(|c| c.via == CheckRoute::ServiceProxy)
        || !env.checks.integration.is_empty()
        || env.checks.soak.is_some()
}

fn in_scope(check: &SmokeCheck, service: Option<&str>) -> bool {
    match (service, check.service.as_deref()) {
        (Some(wanted), Some(own)) => wanted == own,
        _ => true,
    }
}

/// Whether the environment declares any check in scope: a deploy verifies only then.
pub fn has_checks(env: &Environment, service: Option<&str>) -> bool {
    env.checks.smoke.iter().any(|c| in_scope(c, service))
        || !env.checks.integration.is_empty()
        || env.checks.soak.is_some()
}

/// Everything [`verify`] would refuse before sending anything, checked without sending
/// anything: a deploy calls this before its first write, so a missing `fromEnv` variable is
/// invalid input (exit 2, nothing changed) rather than a failed verification after the rollout.
///
/// # Errors
/// See [`SetupError`].
pub fn preflight(v: &Verification<'_>) -> Result<(), SetupError> {
    let env = v.environment;
    let site = Site {
        env_url: env.url.as_deref(),
        namespace: &env.namespace,
        services: &v.config.services,
        base_dir: v.config.file.parent().unwrap_or(Path::new("")),
        client: v.client.as_ref(),
        secrets: v.secrets,
    };
    for check in env.checks.smoke.iter().filter(|c| in_scope(c, v.service)) {
        prepare(&site, check)?;
    }
    if v.client.is_none() && needs_cluster(env, v.service) {
        return Err(SetupError::NoCluster {
            what: "verification".to_string(),
        });
    }
    Ok(())
}

/// Runs every check of the environment in scope and reports each with its numbers: smoke checks
/// one after the other, then integration checks, while the soak (when declared) watches the
/// new pods alongside. A failed check does not stop the others. Failures are annotated as they
/// are found; the caller decides what they mean.
///
/// # Errors
/// [`SetupError`] before anything is sent: a `fromEnv` variable that is not set, an unreadable
/// CA file, a bad URL or header, or a check that needs the cluster without a `client`.
///
/// # Caveats
/// The soak's duration starts when `verify` is called; call it right after the rollout.
pub async fn verify(v: &Verification<'_>) -> Result<VerifyReport, SetupError> {
    let started = Instant::now();
    let env = v.environment;
    let site = Site {
        env_url: env.url.as_deref(),
        namespace: &env.namespace,
        services: &v.config.services,
        base_dir: v.config.file.parent().unwrap_or(Path::new("")),
        client: v.client.as_ref(),
        secrets: v.secrets,
    };
    let smoke_plans = env
        .checks
        .smoke
        .iter()
        .filter(|c| in_scope(c, v.service))
        .map(|c| prepare(&site, c))
        .collect::<Result<Vec<_>, _>>()?;
    let cluster = |what: &str| {
        v.client.clone().ok_or_else(|| SetupError::NoCluster {
            what: what.to_string(),
        })
    };
    let integration_client = match env.checks.integration.first() {
        Some(c) => Some(cluster(&format!("integration check {}", c.name))?),
        None => None,
    };
    let soak = match &env.checks.soak {
        Some(soak) => Some((soak, cluster("the soak")?)),
        None => None,
    };
    let services: Vec<&Service> = v
        .config
        .services
        .iter()
        .filter(|s| v.service.is_none_or(|wanted| s.name == wanted))
        .collect();

    let soak_run = async {
        match &soak {
            Some((soak, client)) => {
                let deployments: Vec<String> =
                    services.iter().map(|s| s.deployment.clone()).collect();
                Some(soak::run(client, &env.namespace, &deployments, soak).await)
            }
            None => None,
        }
    };
    let checks_run = async {
        let mut reports = Vec::new();
        for plan in &smoke_plans {
            let report = run_smoke(plan, &env.slo).await;
            announce(v.console, &report);
            reports.push(report);
        }
        for check in &env.checks.integration {
            let client = integration_client.as_ref().expect("checked above");
            let image = match &check.image {
                Some(image) => Ok(image.clone()),
                None => default_image(v, &services, client).await,
            };
            let report = match image {
                Ok(image) => {
                    integration::run(client, v.console, &env.namespace, &env.name, check, &image)
                        .await
                }
                Err(why) => {
                    let mut report = CheckReport::new(CheckKind::Integration, &check.name);
                    report.reason = Some(why);
                    report
                }
            };
            announce(v.console, &report);
            reports.push(report);
        }
        reports
    };
    let (soak_report, mut checks) = tokio::join!(soak_run, checks_run);
    if let Some(report) = soak_report {
        announce(v.console, &report);
        checks.push(report);
    }
    let warnings = checks
        .iter()
        .filter(|c| c.passed)
        .filter_map(|c| {
            c.reason
                .as_ref()
                .map(|r| format!("{} {}: {r}", c.kind.word(), c.name))
        })
        .collect();
    let mut report = VerifyReport {
        environment: env.name.clone(),
        namespace: env.namespace.clone(),
        passed: false,
        summary: String::new(),
        duration_ms: started.elapsed().as_millis(),
        checks,
        warnings,
    };
    report.conclude();
    Ok(report)
}

/// The image an integration check runs when it names none: the first service's (in scope),
/// pinned by the caller, else as its Deployment runs it now.
async fn default_image(
    v: &Verification<'_>,
    services: &[&Service],
    client: &Client,
) -> Result<String, String> {
    let service = services.first().ok_or_else(|| {
        "no service to take the image from; give the check an `image`".to_string()
    })?;
    if let Some(image) = v.images.get(&service.name) {
        return Ok(image.clone());
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &v.environment.namespace);
    let deployment = crate::kube::retrying("reading the Deployment", || {
        api.get_opt(&service.deployment)
    })
    .await
    .map_err(|e| {
        format!(
            "reading deployment/{} for the image failed: {e}",
            service.deployment
        )
    })?;
    let containers = deployment
        .and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    containers
        .iter()
        .find(|c| c.name == service.container)
        .or(containers.first())
        .and_then(|c| c.image.clone())
        .ok_or_else(|| {
            format!(
                "deployment/{} does not exist, so it has no image to run; deploy it first or give the check an `image`",
                service.deployment
            )
        })
}

/// Prints a check's verdict: a line, and an error annotation when it failed.
pub fn announce(console: &Console, report: &CheckReport) {
    let numbers = report.numbers();
    let numbers = if numbers.is_empty() {
        String::new()
    } else {
        format!(": {numbers}")
    };
    if report.passed {
        crate::say!("✓ {} {}{numbers}", report.kind.word(), report.name);
        if let Some(note) = &report.reason {
            console.annotate(&Annotation::warning(format!(
                "{} {}: {note}",
                report.kind.word(),
                report.name
            )));
        }
    } else {
        crate::say!("✗ {} {}{numbers}", report.kind.word(), report.name);
        console.annotate(&Annotation::error(report.headline()).title("Verification failed"));
    }
}

/// Where smoke checks are resolved: the environment's URL and namespace, the services, the
/// directory relative paths (`caFile`) start from, the cluster and the secrets.
pub struct Site<'a> {
    pub env_url: Option<&'a str>,
    pub namespace: &'a str,
    pub services: &'a [Service],
    pub base_dir: &'a Path,
    pub client: Option<&'a Client>,
    pub secrets: &'a (dyn Fn(&str) -> Option<Secret> + Sync),
}

/// A smoke check ready to run: where to send what, and what to expect back.
pub struct SmokePlan {
    pub check: SmokeCheck,
    pub transport: Arc<Transport>,
    pub request: Arc<Request>,
    pub expect: Arc<Expect>,
}

/// Resolves a smoke check's target, headers (reading `fromEnv` secrets) and TLS settings.
///
/// # Errors
/// See [`SetupError`].
pub fn prepare(site: &Site<'_>, check: &SmokeCheck) -> Result<SmokePlan, SetupError> {
    let name = || check.name.clone();
    let mut headers = http::HeaderMap::new();
    for (key, value) in &check.headers {
        let bad = || SetupError::Header {
            check: name(),
            header: key.clone(),
        };
        let header = http::HeaderName::from_bytes(key.as_bytes()).map_err(|_| bad())?;
        let value = match value {
            HeaderValue::Plain(text) => http::HeaderValue::from_str(text).map_err(|_| bad())?,
            HeaderValue::FromEnv(variable) => {
                let secret = (site.secrets)(variable).ok_or_else(|| SetupError::MissingSecret {
                    check: name(),
                    header: key.clone(),
                    variable: variable.clone(),
                })?;
                let mut value = http::HeaderValue::from_str(secret.expose()).map_err(|_| bad())?;
                value.set_sensitive(true);
                value
            }
        };
        headers.append(header, value);
    }
    let method =
        http::Method::from_bytes(check.method.as_bytes()).map_err(|_| SetupError::Header {
            check: name(),
            header: check.method.clone(),
        })?;
    let transport = match check.via {
        CheckRoute::ServiceProxy => {
            let client = site.client.ok_or_else(|| SetupError::NoCluster {
                what: format!("smoke check {} (via: service-proxy)", check.name),
            })?;
            let service = match &check.service {
                Some(s) => site.services.iter().find(|x| &x.name == s),
                None => site.services.first(),
            };
            let (service_name, port) = service.map_or_else(
                || (check.service.clone().unwrap_or_default(), None),
                proxy::proxy_target,
            );
            let path = proxy::proxy_path(
                site.namespace,
                &service_name,
                port.as_deref(),
                check.path.as_deref().unwrap_or("/"),
            );
            Transport::Proxy(proxy::ServiceProxy::new(client.clone(), path))
        }
        CheckRoute::Url => {
            let text = resolve_url(check, site.env_url)
                .ok_or_else(|| SetupError::NoUrl { check: name() })?;
            let url = reqwest::Url::parse(&text).map_err(|e| SetupError::Url {
                check: name(),
                url: text.clone(),
                source: Box::new(e),
            })?;
            Transport::Direct {
                client: http_client(site, check)?,
                url,
            }
        }
    };
    Ok(SmokePlan {
        check: check.clone(),
        transport: Arc::new(transport),
        request: Arc::new(Request { method, headers }),
        expect: Arc::new(Expect {
            status: check.expect_status,
            body: check.expect_body.clone(),
            json: check.expect_json.clone(),
        }),
    })
}

/// The check's URL: `url` with `{url}` replaced by the environment's, or the environment's URL
/// with `path` appended.
fn resolve_url(check: &SmokeCheck, env_url: Option<&str>) -> Option<String> {
    let base = env_url.map(|u| u.trim_end_matches('/'));
    match (&check.url, &check.path) {
        (Some(url), _) if url.contains("{url}") => Some(url.replace("{url}", base?)),
        (Some(url), _) => Some(url.clone()),
        (None, Some(path)) => Some(format!("{}/{}", base?, path.trim_start_matches('/'))),
        (None, None) => base.map(str::to_string),
    }
}

fn http_client(site: &Site<'_>, check: &SmokeCheck) -> Result<reqwest::Client, SetupError> {
    let redirects = match check.max_redirects {
        0 => reqwest::redirect::Policy::none(),
        n => reqwest::redirect::Policy::limited(n as usize),
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "promote-action/",
            env!("CARGO_PKG_VERSION"),
            " (verify)"
        ))
        .redirect(redirects)
        .connect_timeout(check.request_timeout)
        .pool_max_idle_per_host(check.concurrency as usize);
    if let Some(ca) = &check.ca_file {
        let path = site.base_dir.join(ca);
        let pem = std::fs::read(&path).map_err(|source| SetupError::CaFile {
            check: check.name.clone(),
            path: path.clone(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| SetupError::CaPem {
                check: check.name.clone(),
                path: path.clone(),
                source,
            })?;
        // The CA file is the whole trust store for this check, like curl's --cacert: a private
        // CA's endpoint must not validate against a public root by accident, nor the reverse.
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|source| SetupError::Client {
        check: check.name.clone(),
        source,
    })
}

/// Runs a prepared smoke check: readiness, then the sample, then the SLO gate.
pub async fn run_smoke(plan: &SmokePlan, slo: &Slo) -> CheckReport {
    let started = Instant::now();
    let check = &plan.check;
    let mut report = CheckReport::new(CheckKind::Smoke, &check.name);
    crate::say!(
        "Smoke check {}: {} {} (ready within {})",
        check.name,
        plan.request.method,
        plan.transport.describe(),
        crate::config::units::format_duration(check.readiness_timeout)
    );
    let readiness = smoke::await_ready(
        &plan.transport,
        &plan.request,
        &plan.expect,
        check.readiness_timeout,
        check.request_timeout,
    )
    .await;
    let mut smoke = SmokeReport {
        target: plan.transport.describe(),
        route: plan.transport.route(),
        method: check.method.clone(),
        expect_status: check.expect_status,
        readiness: Some(readiness.clone()),
        sampling: None,
        slo: Vec::new(),
    };
    if !readiness.ready {
        report.reason = Some(format!(
            "not ready within {} ({} attempt{}): {}",
            crate::config::units::format_duration(check.readiness_timeout),
            readiness.attempts,
            if readiness.attempts == 1 { "" } else { "s" },
            readiness.last_failure.unwrap_or_default()
        ));
        report.smoke = Some(smoke);
        report.duration_ms = started.elapsed().as_millis();
        return report;
    }
    let amount = match check.duration {
        Some(d) => Amount::For(d),
        None => Amount::Requests(u64::from(check.samples)),
    };
    let sample = smoke::sample(
        plan.transport.clone(),
        plan.request.clone(),
        plan.expect.clone(),
        amount,
        check.concurrency,
        check.request_timeout,
    )
    .await;
    let (errors, requests) = (sample.errors, sample.requests);
    let (stats, latencies) = sample.stats(check.concurrency);
    smoke.slo = slo::gate(slo, &latencies, errors, requests);
    let breaches: Vec<&str> = smoke
        .slo
        .iter()
        .filter(|v| !v.passed)
        .map(|v| v.reason.as_str())
        .collect();
    report.passed = breaches.is_empty();
    report.reason = if !breaches.is_empty() {
        Some(breaches.join("; "))
    } else if errors > 0 && slo.error_rate.is_none() {
        let why = stats
            .error_reasons
            .first()
            .map(|r| format!(", most often: {}", r.reason))
            .unwrap_or_default();
        Some(format!(
            "{errors} of {requests} requests failed{why} (the environment sets no errorRate objective)"
        ))
    } else {
        None
    };
    smoke.sampling = Some(stats);
    report.smoke = Some(smoke);
    report.duration_ms = started.elapsed().as_millis();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: Option<&str>, path: Option<&str>) -> SmokeCheck {
        SmokeCheck {
            name: "health".into(),
            url: url.map(str::to_string),
            path: path.map(str::to_string),
            via: CheckRoute::Url,
            service: None,
            method: "GET".into(),
            headers: BTreeMap::new(),
            expect_status: 200,
            expect_body: None,
            expect_json: BTreeMap::new(),
            samples: 20,
            concurrency: 4,
            duration: None,
            request_timeout: std::time::Duration::from_secs(10),
            readiness_timeout: std::time::Duration::from_secs(120),
            ca_file: None,
            max_redirects: 10,
            pos: crate::config::yaml::Pos { line: 1, col: 1 },
        }
    }

    #[test]
    fn urls_from_the_environment() {
        let env = Some("https://test.example.com/");
        let cases: &[(&str, SmokeCheck, Option<&str>, Option<&str>)] = &[
            (
                "path appended",
                check(None, Some("/api/health")),
                env,
                Some("https://test.example.com/api/health"),
            ),
            (
                "path without a slash",
                check(None, Some("health")),
                env,
                Some("https://test.example.com/health"),
            ),
            (
                "templated url",
                check(Some("{url}/health?full=1"), None),
                env,
                Some("https://test.example.com/health?full=1"),
            ),
            (
                "full url kept",
                check(Some("http://10.0.0.1:8080/x"), None),
                env,
                Some("http://10.0.0.1:8080/x"),
            ),
            (
                "path without an environment url",
                check(None, Some("/x")),
                None,
                None,
            ),
            (
                "template without an environment url",
                check(Some("{url}/x"), None),
                None,
                None,
            ),
        ];
        for (case, check, env_url, want) in cases {
            assert_eq!(
                resolve_url(check, *env_url).as_deref(),
                *want,
                "case: {case}"
            );
        }
    }
}
