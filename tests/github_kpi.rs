//! The delivery metrics over histories seeded into the fake GitHub: the deployment history read
//! page by page until the window starts, statuses and commits read once each, rate limits
//! waited out, and the figures computed from what was read, up to 5,000 deployments.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use promote_action::actions::{Console, Secret};
use promote_action::github::{GitHub, HistoryRequest, RetrySettings};
use promote_action::kpi::{self, KpiReport, Settings, Targets, Verdict};
use promote_action::report;
use serde_json::json;

use crate::fake_github::{FakeGitHub, Fault, SeededDeployment, TokenKind};

const TOKEN: &str = "ghs_workflow_token_for_kpi_tests";
const REPO: &str = "/repos/studysphere/app";
/// A Monday noon, UTC: the end of every window here.
const NOW: &str = "2025-03-31T12:00:00Z";
const DAY: i64 = 86_400;
const RELEASE: &str = "3f2a9c1b0d4e";

fn fake() -> FakeGitHub {
    FakeGitHub::builder("studysphere", "app")
        .token(TOKEN, TokenKind::WorkflowToken)
        .start()
}

fn client(gh: &FakeGitHub) -> GitHub {
    GitHub::new(
        &gh.url(),
        &Secret::new(TOKEN, &Console::new(false)),
        "studysphere/app",
    )
    .expect("client")
    .with_retry(RetrySettings {
        retries: 3,
        base_delay: Duration::from_millis(10),
        max_rate_limit_wait: Duration::from_secs(5),
    })
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `NOW` plus `seconds` (negative: before), as GitHub writes times.
fn at(seconds: i64) -> String {
    (now() + SignedDuration::from_secs(seconds)).to_string()
}

pub(crate) fn sha(n: usize) -> String {
    format!("{n:040x}")
}

#[derive(Clone, Copy)]
pub(crate) enum End {
    Success,
    RolledBack,
    Refused,
    /// GitHub's own job deployment, finished by the job: no payload, no words of ours.
    JobSuccess,
}

/// A deployment `promote run` made at `created` (seconds from `NOW`), ending `end` after
/// 5 minutes (a success) or 20 (a rollback).
fn deployment(environment: &str, commit: &str, created: i64, end: End) -> SeededDeployment {
    deployment_from(now(), environment, commit, created, end)
}

/// [`deployment`] made `created` seconds from `origin` (the binary's tests: the real clock).
pub(crate) fn deployment_from(
    origin: Timestamp,
    environment: &str,
    commit: &str,
    created: i64,
    end: End,
) -> SeededDeployment {
    let at = |seconds: i64| (origin + SignedDuration::from_secs(seconds)).to_string();
    let promoting = (
        "in_progress".to_string(),
        format!("promoting release {RELEASE} to {environment} (2 services)"),
        at(created),
    );
    let (payload, statuses) = match end {
        End::Success => (
            true,
            vec![
                promoting,
                (
                    "success".into(),
                    format!("release {RELEASE} verified in {environment}"),
                    at(created + 300),
                ),
            ],
        ),
        End::RolledBack => (
            true,
            vec![
                promoting,
                (
                    "failure".into(),
                    format!(
                        "release {RELEASE} failed: deploy to {environment} failed (web: \
                         CrashLoopBackOff); rolled back"
                    ),
                    at(created + 1200),
                ),
            ],
        ),
        End::Refused => (
            true,
            vec![(
                "failure".into(),
                format!("release {RELEASE} refused: testing has not verified it"),
                at(created + 5),
            )],
        ),
        End::JobSuccess => (
            false,
            vec![
                ("in_progress".into(), String::new(), at(created)),
                ("success".into(), String::new(), at(created + 300)),
            ],
        ),
    };
    SeededDeployment {
        environment: environment.to_string(),
        sha: commit.to_string(),
        payload: if payload {
            json!({ "promote": {
                "release": RELEASE,
                "sha": commit,
                "digests": { "web": "sha256:1111", "api": "sha256:2222" },
            }})
        } else {
            json!({})
        },
        production_environment: None,
        created_at: at(created),
        statuses,
    }
}

/// What `promote metrics` does between reading and rendering: the window of `days` ending
/// at `NOW`, production being the promotion's last environment.
async fn measure(github: &GitHub, days: i64, environment: Option<&str>) -> KpiReport {
    let production = vec!["production".to_string()];
    let request = HistoryRequest {
        environment: environment.map(str::to_string),
        since: now() - SignedDuration::from_secs(days * DAY),
        concurrency: 16,
    };
    let history = github
        .deployment_history(&request, |d| kpi::lead_time_commit(d, &production))
        .await
        .expect("history");
    kpi::compute(
        &history,
        &Settings {
            repository: "studysphere/app".into(),
            now: now(),
            window: Duration::from_secs((days * DAY) as u64),
            environments: vec!["testing".into(), "production".into()],
            production,
            targets: Targets::SEED,
        },
    )
}

fn row<'a>(report: &'a KpiReport, environment: &str) -> &'a kpi::EnvironmentKpis {
    report
        .environments
        .iter()
        .find(|e| e.environment == environment)
        .unwrap_or_else(|| panic!("no row for {environment}"))
}

#[tokio::test]
async fn a_small_history_gives_the_seeds_figures() {
    let gh = fake();
    // Two weeks: testing first, then production 10 minutes later; one rollback restored by
    // the next promotion; one refusal; a deployment GitHub made for a job; one too old.
    let mut seeds = vec![deployment("production", &sha(99), -40 * DAY, End::Success)];
    for k in 0..6 {
        let t = -13 * DAY + k * 2 * DAY;
        let commit = sha(k as usize);
        gh.seed_commit(&commit, &at(t - 3600), &at(t - 7200));
        seeds.push(deployment("testing", &commit, t, End::Success));
        let end = if k == 2 {
            End::RolledBack
        } else {
            End::Success
        };
        seeds.push(deployment("production", &commit, t + 600, end));
    }
    seeds.push(deployment("production", &sha(7), -DAY, End::Refused));
    seeds.push(deployment("production", &sha(8), -3600, End::JobSuccess));
    gh.seed_commit(&sha(8), &at(-3600 - 1800), &at(-3600 - 1800));
    gh.seed_deployments(seeds);

    let report = measure(&client(&gh), 28, None).await;
    assert_eq!(
        report.deployments_read, 14,
        "the one before the window is not read"
    );
    let production = row(&report, "production");
    let k = &production.kpis;
    assert_eq!(k.counts.deployments, 8);
    assert_eq!(k.counts.succeeded, 6);
    assert_eq!(k.counts.rolled_back, 1);
    assert_eq!(k.counts.refused, 1);
    assert_eq!(k.counts.decided_by_github, 1);
    // 6 successes in 4 weeks.
    assert_eq!(k.deployment_frequency.per_week, 1.5);
    assert_eq!(k.deployment_frequency.verdict, Some(Verdict::NotMet));
    // Committed an hour before testing; production succeeded 15 minutes after that: 75 min.
    // GitHub's job deployment: 35 min.
    let lead = k.lead_time.as_ref().unwrap();
    assert_eq!(lead.samples, 6);
    assert_eq!(lead.median_seconds, Some(75 * 60));
    assert_eq!(lead.verdict, Some(Verdict::Met));
    assert_eq!(k.change_failure_rate.rate, Some(1.0 / 7.0));
    assert_eq!(k.change_failure_rate.verdict, Some(Verdict::Met));
    // Failed 20 min after its start; the next one succeeded 2 days + 5 min after that start.
    assert_eq!(
        k.time_to_restore.median_seconds,
        Some((2 * DAY + 300 - 1200) as u64)
    );
    assert_eq!(k.time_to_restore.verdict, Some(Verdict::NotMet));
    let testing = row(&report, "testing");
    assert_eq!(testing.kpis.counts.succeeded, 6);
    assert_eq!(testing.kpis.change_failure_rate.verdict, None);

    // Commit dates were asked for production successes only, each sha once.
    let commits = gh.requests_to("GET", &format!("{REPO}/commits/"));
    assert_eq!(commits.len(), 6, "5 of ours and GitHub's job deployment");

    let md = report::kpi_summary(&report).render();
    assert!(
        md.contains("| Deployment frequency | 1.5 / week (6 successful) | 2+ / week | ❌ |"),
        "{md}"
    );
    assert!(md.contains("xychart-beta"), "{md}");
    assert!(!md.contains(TOKEN), "the token must not leak");
}

#[tokio::test]
async fn pages_stop_at_the_window_and_the_environment_filter_is_githubs() {
    let gh = fake();
    let mut seeds = Vec::new();
    // 250 half a day apart, alternating environments, the newest an hour ago.
    for n in 0..250i64 {
        let environment = if n % 2 == 0 { "testing" } else { "production" };
        seeds.push(deployment(
            environment,
            &sha(n as usize),
            -3600 - n * DAY / 2,
            End::Success,
        ));
    }
    gh.seed_deployments(seeds);
    let github = client(&gh);

    let report = measure(&github, 30, None).await;
    assert_eq!(report.deployments_read, 60);
    let lists = gh.requests_to("GET", &format!("{REPO}/deployments"));
    let pages: Vec<&str> = lists
        .iter()
        .filter(|r| r.path.ends_with("/deployments"))
        .map(|r| r.query.as_str())
        .collect();
    assert_eq!(
        pages,
        ["per_page=100&page=1"],
        "the first page reaches past the window"
    );

    gh.clear_requests();
    let report = measure(&github, 100, Some("production")).await;
    assert_eq!(report.deployments_read, 100);
    assert_eq!(row(&report, "testing").kpis.counts.deployments, 0);
    let pages: Vec<String> = gh
        .requests_to("GET", &format!("{REPO}/deployments"))
        .into_iter()
        .filter(|r| r.path.ends_with("/deployments"))
        .map(|r| r.query)
        .collect();
    assert_eq!(
        pages,
        [
            "environment=production&per_page=100&page=1",
            "environment=production&per_page=100&page=2",
        ],
        "100 production deployments in the window fill page 1; page 2 reaches past it"
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_a_deleted_deployment_is_dropped() {
    let gh = fake();
    let mut seeds = Vec::new();
    for n in 0..10i64 {
        let commit = sha(n as usize);
        gh.seed_commit(&commit, &at(-n * DAY - 3600), &at(-n * DAY - 3600));
        seeds.push(deployment("production", &commit, -n * DAY, End::Success));
    }
    let ids = gh.seed_deployments(seeds);
    let github = client(&gh);
    let clean = measure(&github, 30, None).await;

    gh.clear_requests();
    gh.inject(Fault::retry_after("GET", &format!("{REPO}/deployments/"), 1).times(2));
    gh.inject(Fault::rate_limit_exhausted(
        "GET",
        &format!("{REPO}/commits/"),
        1,
    ));
    let limited = measure(&github, 30, None).await;
    assert_eq!(
        serde_json::to_value(&limited.environments).unwrap(),
        serde_json::to_value(&clean.environments).unwrap(),
        "the same figures after waiting"
    );
    let answered: Vec<u16> = gh.requests().iter().map(|r| r.status).collect();
    assert_eq!(answered.iter().filter(|s| **s == 429).count(), 2);
    assert_eq!(answered.iter().filter(|s| **s == 403).count(), 1);
    assert_eq!(
        limited.requests,
        clean.requests + 3,
        "each refusal resent once"
    );

    gh.inject(
        Fault::status(
            "GET",
            &format!("{REPO}/deployments/{}/statuses", ids[4]),
            404,
        )
        .body(json!({ "message": "Not Found", "status": "404" })),
    );
    let report = measure(&github, 30, None).await;
    assert_eq!(report.deployments_read, 9, "deleted while being read");
}

#[tokio::test]
async fn a_failing_github_names_the_call() {
    let gh = fake();
    gh.seed_deployments(vec![deployment("production", &sha(1), -DAY, End::Success)]);
    gh.inject(Fault::status("GET", &format!("{REPO}/deployments"), 502).times(10));
    let err = client(&gh)
        .deployment_history(
            &HistoryRequest {
                environment: None,
                since: now() - SignedDuration::from_secs(30 * DAY),
                concurrency: 16,
            },
            |_| None,
        )
        .await
        .expect_err("GitHub is down");
    let message = err.to_string();
    assert!(
        message.contains("GET /repos/studysphere/app/deployments?per_page=100&page=1: 502"),
        "{message}"
    );
}

/// 5,000 deployments in the window (testing then production for each commit) and 200 older
/// ones: the pattern below fixes every figure, so the test checks them, not the time.
fn five_thousand(gh: &FakeGitHub) {
    const SPACING: i64 = 500;
    let mut seeds = Vec::new();
    for i in 0..200usize {
        seeds.push(deployment(
            "production",
            &sha(90_000 + i),
            -40 * DAY + i as i64 * 60,
            End::Success,
        ));
    }
    for i in 0..5000usize {
        let created = -(5000 - i as i64) * SPACING;
        let commit = sha(i / 2);
        let (environment, end) = if i % 2 == 0 {
            gh.seed_commit(&commit, &at(created - 1800), &at(created - 1800));
            let end = if i % 20 == 4 {
                End::RolledBack
            } else {
                End::Success
            };
            ("testing", end)
        } else if i % 10 == 7 {
            ("production", End::RolledBack)
        } else if i % 50 == 3 {
            ("production", End::Refused)
        } else {
            ("production", End::Success)
        };
        seeds.push(deployment(environment, &commit, created, end));
    }
    gh.seed_deployments(seeds);
}

#[tokio::test]
async fn five_thousand_deployments_are_all_counted() {
    let gh = fake();
    five_thousand(&gh);
    let report = measure(&client(&gh), 30, None).await;

    assert_eq!(report.deployments_read, 5000);
    let production = row(&report, "production");
    let k = &production.kpis;
    assert_eq!(k.counts.deployments, 2500);
    assert_eq!(k.counts.rolled_back, 500);
    assert_eq!(k.counts.refused, 100);
    assert_eq!(k.counts.succeeded, 1900);
    assert_eq!(k.change_failure_rate.rate, Some(500.0 / 2400.0));
    assert_eq!(k.change_failure_rate.verdict, Some(Verdict::NotMet));
    // Committed 30 min before testing; production 500 s later, done 300 s after that.
    let lead = k.lead_time.as_ref().unwrap();
    assert_eq!(lead.samples, 1900);
    assert_eq!(lead.median_seconds, Some(1800 + 500 + 300));
    assert_eq!(lead.p90_seconds, Some(1800 + 500 + 300));
    // A rollback 1200 s after its start; the next production deployment started 1000 s
    // after it and succeeded 300 s later.
    assert_eq!(k.time_to_restore.restored, 500);
    assert_eq!(k.time_to_restore.median_seconds, Some(100));
    assert_eq!(k.time_to_restore.open, None);
    let charted: (usize, usize) = production
        .weeks
        .iter()
        .fold((0, 0), |(s, f), w| (s + w.deployments, f + w.failures));
    assert_eq!(charted, (1900, 500));
    for service in &production.services {
        assert_eq!(service.kpis.counts, k.counts, "{}", service.service);
    }
    let testing = row(&report, "testing");
    assert_eq!(testing.kpis.counts.succeeded, 2250);
    assert_eq!(testing.kpis.counts.rolled_back, 250);

    // 51 pages (the 51st reaches past the window), a statuses call per deployment in it, a
    // commit call per production success's sha.
    assert_eq!(
        gh.requests_to("GET", &format!("{REPO}/deployments"))
            .iter()
            .filter(|r| r.path.ends_with("/deployments"))
            .count(),
        51
    );
    assert_eq!(
        gh.requests_to("GET", &format!("{REPO}/commits/")).len(),
        1900
    );
    assert_eq!(report.requests, 51 + 5000 + 1900);
    assert_eq!(report.requests as usize, gh.requests().len());
}

/// The benchmark `scripts/bench-metrics` runs: 5,000 deployments read and computed against the
/// fake, timed and printed. Asserts nothing about the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/bench-metrics runs it"]
async fn bench_five_thousand_deployments() {
    let gh = fake();
    five_thousand(&gh);
    let github = client(&gh);
    let started = Instant::now();
    let report = measure(&github, 30, None).await;
    let elapsed = started.elapsed();
    let rendered = Instant::now();
    let summary = report::kpi_summary(&report).render();
    let render = rendered.elapsed();
    assert_eq!(report.deployments_read, 5000);
    println!(
        "bench-metrics: {} deployments, {} requests, read and computed in {:.2} s \
         ({:.0} requests/s); summary of {} bytes rendered in {} ms",
        report.deployments_read,
        report.requests,
        elapsed.as_secs_f64(),
        report.requests as f64 / elapsed.as_secs_f64(),
        summary.len(),
        render.as_millis()
    );
}
