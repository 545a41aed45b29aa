//! `promote verify --environment E [--service S]`: runs the environment's checks
//! (`checks::verify`) and reports them; it never rolls back. Exit 0 when every check passed, 1
//! when one failed, 2 for invalid input (an unknown environment, a `fromEnv` variable that is
//! not set, an unreadable CA file).
//!
//! 1. Load promotion.yml, find the environment (and service).
//! 2. Connect to the cluster only when a check needs it (service proxy, Job, soak).
//! 3. Verify; write `promote-verify.json` and the job summary; set `report-path`.
//!
//! `promote verify --url URL [--samples N] [--concurrency C | --duration D]` samples one URL
//! with the smoke sampler instead, without a promotion file: for a quick look, and for
//! `scripts/bench-smoke`, which compares it with `hey`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::Runtime;
use crate::actions::{Priority, Summary};
use crate::checks::{self, Site, Verification, VerifyReport};
use crate::cli::{GlobalArgs, SampleArgs, VerifyArgs};
use crate::config::{self, CheckRoute, Slo, SmokeCheck};
use crate::outcome::{Classified, Outcome};
use crate::plan::{PlanRequest, plan};

/// `verify --url` defaults: enough requests for a p99 that is not just the maximum.
const DEFAULT_SAMPLES: u32 = 200;
const DEFAULT_CONCURRENCY: u32 = 10;

/// The JSON report: the verification with the command and its outcome.
#[derive(Serialize)]
struct Report<'a> {
    command: &'static str,
    outcome: &'static str,
    #[serde(flatten)]
    verification: &'a VerifyReport,
}

/// `promote verify`.
pub async fn run_verify(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &VerifyArgs,
) -> anyhow::Result<Outcome> {
    if let Some(url) = &args.sample.url {
        if args.environment.is_some() || args.service.is_some() {
            return Err(Classified::invalid(anyhow::anyhow!(
                "give either --url (sample one URL) or --environment (run its checks), not both"
            )));
        }
        return sample_url(rt, &args.sample, url, args.output_dir.as_deref()).await;
    }
    let name = args
        .environment
        .as_deref()
        .expect("clap requires --environment without --url");
    let config = config::load(&global.config)?;
    let env = crate::plan::environment(&config, name)?;
    if let Some(service) = &args.service
        && config.service(service).is_none()
    {
        return Err(Classified::invalid(anyhow::anyhow!(
            "unknown service `{service}` (one of: {})",
            config
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let images = pinned_images(&config, rt, args)?;
    if let Some(url) = &env.url {
        rt.outputs.set("environment-url", url.clone());
    }
    let client = if checks::needs_cluster(env, args.service.as_deref()) {
        let connection = super::connect_to(rt, global, &args.cluster, env).await?;
        crate::say!("Cluster: {}", connection.description);
        Some(connection.client)
    } else {
        None
    };
    let (ctx, console) = (rt.ctx, *rt.console);
    let secrets = move |variable: &str| ctx.read_secret(variable, &console);
    let verification = Verification {
        console: rt.console,
        config: &config,
        environment: env,
        service: args.service.as_deref(),
        client,
        secrets: &secrets,
        images,
    };
    let report = checks::verify(&verification)
        .await
        .map_err(Classified::invalid)?;
    finish(rt, &report, args.output_dir.as_deref())
}

/// `--image` values resolved as `deploy` resolves them: service → pinned reference.
fn pinned_images(
    config: &config::Config,
    rt: &Runtime<'_>,
    args: &VerifyArgs,
) -> anyhow::Result<BTreeMap<String, String>> {
    if args.images.is_empty() {
        return Ok(BTreeMap::new());
    }
    let request = PlanRequest {
        environment: args.environment.clone(),
        service: args.service.clone(),
        images: args.images.clone(),
        provenance: rt.provenance(),
    };
    let plan = plan(config, &request)?;
    Ok(plan
        .images
        .into_iter()
        .filter(|(_, image)| image.pinned)
        .map(|(service, image)| (service, image.reference.to_string()))
        .collect())
}

/// `verify --url`: one smoke check built from the flags, no SLO (the numbers are the point).
async fn sample_url(
    rt: &mut Runtime<'_>,
    args: &SampleArgs,
    url: &str,
    output_dir: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let check = SmokeCheck {
        name: "url".into(),
        url: Some(url.to_string()),
        path: None,
        via: CheckRoute::Url,
        service: None,
        method: args
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase(),
        headers: BTreeMap::new(),
        expect_status: args.expect_status.unwrap_or(200),
        expect_body: None,
        expect_json: BTreeMap::new(),
        samples: args.samples.unwrap_or(DEFAULT_SAMPLES),
        concurrency: args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        duration: args.duration,
        request_timeout: args.request_timeout.unwrap_or(Duration::from_secs(10)),
        readiness_timeout: args.readiness_timeout.unwrap_or(Duration::from_secs(30)),
        ca_file: args.ca_file.clone(),
        max_redirects: 10,
        pos: config::yaml::Pos { line: 0, col: 0 },
    };
    let no_secrets = |_: &str| None;
    let site = Site {
        env_url: None,
        namespace: "",
        services: &[],
        base_dir: Path::new(""),
        client: None,
        secrets: &no_secrets,
    };
    let plan = checks::prepare(&site, &check).map_err(Classified::invalid)?;
    let started = tokio::time::Instant::now();
    let check_report = checks::run_smoke(&plan, &Slo::default()).await;
    checks::announce(rt.console, &check_report);
    let mut report = VerifyReport {
        environment: String::new(),
        namespace: String::new(),
        passed: false,
        summary: String::new(),
        duration_ms: 0,
        checks: vec![check_report],
        warnings: Vec::new(),
    };
    report.conclude();
    report.duration_ms = started.elapsed().as_millis();
    finish(rt, &report, output_dir)
}

/// Prints the verdict, writes the JSON report and the job summary, sets `report-path`.
fn finish(
    rt: &mut Runtime<'_>,
    report: &VerifyReport,
    output_dir: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let outcome = if report.passed {
        Outcome::Success
    } else {
        Outcome::Failed
    };
    let subject = if report.environment.is_empty() {
        String::new()
    } else {
        format!(" of {}", report.environment)
    };
    if report.passed {
        crate::say!("Verification{subject} passed: {}", report.summary);
    } else {
        // Each failure was annotated as it was found; this is the count.
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        crate::say!(
            "Verification{subject} failed: {failed} of {} check{} failed",
            report.checks.len(),
            if report.checks.len() == 1 { "" } else { "s" }
        );
    }
    super::write_report(
        rt,
        "promote-verify.json",
        &Report {
            command: "verify",
            outcome: outcome.word(),
            verification: report,
        },
        output_dir,
    )?;
    if rt.ctx.summary_file.is_some() && !report.checks.is_empty() {
        let mut summary = Summary::new();
        summary.section(
            Priority::Essential,
            format!(
                "### Verification{subject}: {}\n\n{}\n\n{}",
                if report.passed { "passed" } else { "failed" },
                crate::untrusted::escape_md(&report.summary),
                report.summary_table()
            ),
        );
        if let Err(e) = summary.write(rt.ctx) {
            crate::say!("warning: cannot write the job summary: {e}");
        }
    }
    Ok(outcome)
}
