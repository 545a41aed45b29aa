//! The run and status renderers against realistic reports: order, escaping, the size limit.

use super::deploy::*;
use super::fixtures::*;
use super::rollout::*;
use super::run::*;
use super::status::*;
use super::summary::*;
use super::terminal::*;
use super::text::*;
use crate::actions::SUMMARY_LIMIT;
use crate::checks::JunitSummary;
use crate::checks::Verdict;
use crate::checks::VerifyReport;
use crate::checks::{
    CheckKind, CheckReport, IntegrationReport, Readiness, SampleStats, SmokeReport,
};
use crate::github::DeploymentState;
use crate::kube::{
    ContainerState, Diagnosis, EventLine, Failure, FailureReason, LogTail, PodState,
    RolloutOutcome, WorkloadKind,
};
use crate::outcome::Outcome;
use crate::registry::Digest;

use crate::report::{Gate, GitHubRecord, Release, ReleaseImage};
use crate::untrusted::*;

fn image(service: &str, digest: &str, size: u64) -> ImageRow {
    ImageRow {
        service: service.into(),
        digest: Digest::parse(digest).expect("a test digest"),
        image: format!("studysphere.azurecr.io/studysphere/{service}@{digest}"),
        tags: vec!["3f2a9c1".into(), "testing".into()],
        size: Some(size),
        source_environment: Some("development".into()),
    }
}

fn step(environment: &str, state: StepState, at: Option<&str>) -> PathStep {
    PathStep {
        environment: environment.into(),
        state,
        release_id: at.map(|_| "3f2a9c1b".to_string()),
        at: at.map(ts),
        strategy: if environment == "production" {
            "blue-green".into()
        } else {
            "rolling".into()
        },
    }
}

fn gate_passed() -> Gate {
    Gate {
        requires: Some("development".into()),
        skipped: false,
        checks: vec![
            GateCheck {
                name: "release passed development".into(),
                passed: true,
                detail: "development runs this release, verified at 2025-03-14 11:58 UTC".into(),
            },
            GateCheck {
                name: "branch main may deploy to testing".into(),
                passed: true,
                detail: "testing allows main".into(),
            },
        ],
    }
}

fn workload(service: &str, before: i64, after: i64) -> WorkloadReport {
    WorkloadReport {
        object: format!("deployment/{service}"),
        kind: WorkloadKind::Deployment,
        name: service.into(),
        service: service.into(),
        revision_before: Some(before),
        revision_after: Some(after),
        image_before: None,
        image_after: None,
        changed: true,
        awaited: true,
        rollout: Some(RolloutOutcome::Complete),
        rollout_ms: Some(42_300),
        completed_at: Some(ts("2025-03-14T12:08:40Z")),
        diagnosis: None,
        rollback: None,
    }
}

fn smoke(passed: bool) -> CheckReport {
    let mut check = CheckReport::new(CheckKind::Smoke, "auth-health");
    check.passed = passed;
    check.duration_ms = 12_400;
    let p95 = if passed { 41.0 } else { 812.0 };
    check.smoke = Some(SmokeReport {
        target: "/api/v1/namespaces/testing/services/auth-service:3001/proxy/health".into(),
        route: "service-proxy",
        method: "GET".into(),
        expect_status: 200,
        readiness: Some(Readiness {
            ready: true,
            attempts: 2,
            elapsed_ms: 2100,
            last_failure: None,
        }),
        sampling: Some(SampleStats {
            requests: 200,
            errors: if passed { 0 } else { 7 },
            error_rate_percent: if passed { 0.0 } else { 3.5 },
            concurrency: 10,
            elapsed_ms: 9800.0,
            throughput_rps: 20.4,
            p50_ms: Some(12.1),
            p95_ms: Some(p95),
            p99_ms: Some(p95 + 30.0),
            min_ms: Some(4.0),
            max_ms: Some(p95 + 80.0),
            mean_ms: Some(15.0),
            error_reasons: Vec::new(),
        }),
        slo: vec![
            Verdict {
                objective: "p95Latency",
                target: "500 ms".into(),
                measured: format!("{p95} ms"),
                passed,
                reason: format!("p95 {p95} ms {} 500 ms", if passed { "≤" } else { ">" }),
            },
            Verdict {
                objective: "errorRate",
                target: "1%".into(),
                measured: if passed { "0%" } else { "3.5%" }.into(),
                passed,
                reason: String::new(),
            },
        ],
    });
    if !passed {
        check.reason = Some(format!("p95 {p95} ms > 500 ms"));
    }
    check
}

fn integration() -> CheckReport {
    let mut check = CheckReport::new(CheckKind::Integration, "api-suite");
    check.passed = true;
    check.duration_ms = 48_000;
    check.integration = Some(IntegrationReport {
        job: "api-suite-3f2a9c1b".into(),
        image: "studysphere.azurecr.io/studysphere/api-tests@sha256:ab12".into(),
        status: "succeeded".into(),
        junit: Some(JunitSummary {
            tests: 64,
            passed: 62,
            failed: 0,
            skipped: 2,
            failures: Vec::new(),
        }),
        deleted: true,
    });
    check
}

fn verification(checks: Vec<CheckReport>) -> VerifyReport {
    let mut v = VerifyReport {
        environment: "testing".into(),
        namespace: "testing".into(),
        passed: false,
        summary: String::new(),
        duration_ms: 61_500,
        checks,
        warnings: Vec::new(),
    };
    v.conclude();
    v
}

fn deploy(workloads: Vec<WorkloadReport>, verification: Option<VerifyReport>) -> DeployReport {
    DeployReport {
        command: DeployCommand::Deploy,
        environment: "testing".into(),
        namespace: "testing".into(),
        strategy: "rolling".into(),
        cluster: Some("context aks-studysphere-test".into()),
        outcome: Outcome::Success,
        summary: String::new(),
        started_at: ts("2025-03-14T12:07:50Z"),
        finished_at: Some(ts("2025-03-14T12:09:58Z")),
        duration_ms: 128_000,
        namespace_created: false,
        locks: vec![LockReport {
            lease: "promote-auth-service".into(),
            holder: "run 1234".into(),
            waited_ms: 0,
            took_over_from: None,
        }],
        rejected: Vec::new(),
        hooks: Vec::new(),
        applied: vec![
            "ConfigMap/auth-service-config".into(),
            "Deployment/auth-service".into(),
            "ConfigMap/course-service-config".into(),
            "Deployment/course-service".into(),
        ],
        workloads,
        verification,
        canary: None,
        analysis: Vec::new(),
        blue_green: Vec::new(),
        warnings: Vec::new(),
    }
}

fn success() -> RunReport {
    RunReport {
        command: "run",
        environment: "testing".into(),
        outcome: Outcome::Success,
        summary: "promoted release 3f2a9c1b to testing; verified (2 checks passed)".into(),
        started_at: ts("2025-03-14T12:07:31Z"),
        finished_at: Some(ts("2025-03-14T12:10:02Z")),
        duration_ms: 151_000,
        repository: Some("studysphere/studysphere".into()),
        sha: Some(SHA.into()),
        run_url: Some("https://github.com/studysphere/studysphere/actions/runs/8812345678".into()),
        environment_url: Some("https://testing.studysphere.example.com".into()),
        release: Release {
            sha: Some(SHA.into()),
            source: ReleaseSource::Environment("development".into()),
            id: "3f2a9c1b".into(),
            images: vec![ReleaseImage {
                service: "auth-service".into(),
                image: "studysphere.azurecr.io/studysphere/auth-service".into(),
                digest: Digest::parse(AUTH_DIGEST).expect("a test digest"),
            }],
        },
        gate: gate_passed(),
        path: vec![
            step("development", StepState::Done, Some("2025-03-14T11:58:12Z")),
            step(
                "testing",
                StepState::Succeeded,
                Some("2025-03-14T12:09:58Z"),
            ),
            step("production", StepState::Pending, None),
        ],
        images: vec![
            image("auth-service", AUTH_DIGEST, 48_311_092),
            image("course-service", COURSE_DIGEST, 61_020_331),
        ],
        deploy: Some(deploy(
            vec![
                workload("auth-service", 6, 7),
                workload("course-service", 4, 5),
            ],
            Some(verification(vec![smoke(true), integration()])),
        )),
        github: Some(GitHubRecord {
            deployment_id: 1_874_223_091,
            reused: true,
            statuses: vec![DeploymentState::InProgress, DeploymentState::Success],
        }),
        warnings: Vec::new(),
    }
}

fn crash_diagnosis(log_lines: Vec<String>) -> Diagnosis {
    Diagnosis {
        object: "deployment/auth-service".into(),
        failure: Failure {
            reason: FailureReason::CrashLoop,
            message: "container auth-service is in CrashLoopBackOff (5 restarts): Error \
                      (exit code 1)"
                .into(),
            pod: Some("auth-service-7d9f8b6c5-x2k4q".into()),
            container: Some("auth-service".into()),
            restarted: true,
        },
        pods: vec![PodState {
            name: "auth-service-7d9f8b6c5-x2k4q".into(),
            phase: "Running".into(),
            ready: false,
            scheduling: None,
            containers: vec![ContainerState {
                name: "auth-service".into(),
                state: "waiting: CrashLoopBackOff: back-off 2m40s restarting failed container"
                    .into(),
                ready: false,
                restarts: 5,
                last_termination: Some("Error (exit code 1)".into()),
            }],
        }],
        events: vec![
            EventLine {
                time: Some("2025-03-14T12:08:02Z".into()),
                type_: "Normal".into(),
                reason: "Pulled".into(),
                object: "pod/auth-service-7d9f8b6c5-x2k4q".into(),
                message: "Successfully pulled image \"studysphere.azurecr.io/studysphere/auth-service@sha256:4f1c…\"".into(),
                count: 1,
            },
            EventLine {
                time: Some("2025-03-14T12:09:41Z".into()),
                type_: "Warning".into(),
                reason: "BackOff".into(),
                object: "pod/auth-service-7d9f8b6c5-x2k4q".into(),
                message: "Back-off restarting failed container auth-service in pod auth-service-7d9f8b6c5-x2k4q_testing".into(),
                count: 9,
            },
        ],
        logs: Some(LogTail {
            pod: "auth-service-7d9f8b6c5-x2k4q".into(),
            container: "auth-service".into(),
            previous: true,
            lines: log_lines,
        }),
    }
}

fn failed(log_lines: Vec<String>) -> RunReport {
    let mut report = success();
    report.outcome = Outcome::Failed;
    report.summary = "deploy to testing failed (deployment/auth-service: CrashLoopBackOff: \
                      container auth-service is in CrashLoopBackOff (5 restarts)); rolled back"
        .into();
    report.path[1].state = StepState::Failed;
    report.path[1].release_id = None;
    report.path[1].at = None;
    report.github.as_mut().unwrap().statuses =
        vec![DeploymentState::InProgress, DeploymentState::Failure];
    let mut broken = workload("auth-service", 6, 7);
    broken.rollout = Some(RolloutOutcome::Failed);
    broken.rollout_ms = Some(101_200);
    broken.completed_at = None;
    broken.diagnosis = Some(crash_diagnosis(log_lines));
    broken.rollback = Some(RollbackReport {
        outcome: RollbackOutcome::RolledBack,
        to_revision: Some(6),
        revision_after: Some(8),
        message: None,
        diagnosis: None,
    });
    let mut other = workload("course-service", 4, 5);
    other.rollback = Some(RollbackReport {
        outcome: RollbackOutcome::RolledBack,
        to_revision: Some(4),
        revision_after: Some(6),
        message: None,
        diagnosis: None,
    });
    let mut d = deploy(vec![broken, other], None);
    d.outcome = Outcome::Failed;
    d.warnings = vec!["ReplicaSet auth-service-7d9f8b6c5 kept 1 pod after the rollback".into()];
    report.deploy = Some(d);
    report
}

fn refused() -> RunReport {
    let mut report = success();
    report.environment = "production".into();
    report.outcome = Outcome::Refused;
    report.summary = "refused: release 3f2a9c1b has not passed testing".into();
    report.duration_ms = 2_400;
    report.environment_url = Some("https://studysphere.example.com".into());
    report.gate = Gate {
        requires: Some("testing".into()),
        skipped: false,
        checks: vec![
            GateCheck {
                name: "release passed testing".into(),
                passed: false,
                detail: "testing runs release 91c0d2e7 (auth-service sha256:77aa01bc9d3e); \
                         promote 3f2a9c1b to testing first"
                    .into(),
            },
            GateCheck {
                name: "branch main may deploy to production".into(),
                passed: true,
                detail: "production allows main".into(),
            },
        ],
    };
    report.path = vec![
        step("development", StepState::Done, Some("2025-03-14T11:58:12Z")),
        step("testing", StepState::Done, Some("2025-03-13T16:20:05Z")),
        step("production", StepState::Refused, None),
    ];
    report.path[1].release_id = Some("91c0d2e7".into());
    report.images.clear();
    report.deploy = None;
    report.github = None;
    report
}

fn section_order(text: &str, needles: &[&str]) {
    let mut last = 0;
    for needle in needles {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?} in\n{text}"));
        assert!(at >= last, "{needle:?} is out of order in\n{text}");
        last = at;
    }
}

/// The mermaid block, checked line by line against the only shapes it may have.
fn assert_mermaid_is_well_formed(text: &str) {
    let start = text.find("```mermaid\n").expect("mermaid block") + "```mermaid\n".len();
    let block = &text[start..start + text[start..].find("\n```").expect("closed")];
    let mut lines = block.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    for line in lines {
        let line = line.trim_start();
        let ok = if let Some(rest) = line.strip_prefix("step") {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let rest = &rest[digits..];
            (rest.starts_with("[\"") && rest.ends_with("\"]") && {
                let label = &rest[2..rest.len() - 2];
                !label.contains(['"', '`', '[', ']', '\n'])
                    && !label.replace("<br/>", "").contains(['<', '>'])
            }) || rest.starts_with(" --> ")
        } else {
            line.starts_with("classDef ") || line.starts_with("class ")
        };
        assert!(ok, "unexpected mermaid line {line:?} in\n{block}");
    }
}

#[test]
fn success_reads_top_down() {
    let text = run_summary(&success()).render();
    assert!(
        text.starts_with("## ✅ testing: promoted release 3f2a9c1b\n"),
        "{text}"
    );
    section_order(
        &text,
        &[
            "\npromoted release 3f2a9c1b to testing; verified (2 checks passed)\n",
            "commit <code>3f2a9c1</code>",
            "[workflow run](https://github.com/studysphere/studysphere/actions/runs/8812345678)",
            "[open testing](https://testing.studysphere.example.com)",
            "```mermaid",
            "### Release <code>3f2a9c1b</code>",
            "registry <code>studysphere.azurecr.io</code>",
            "| **auth-service** | <code>studysphere/auth-service</code> | <code title=\"sha256:4f1c",
            "### Rollout in <code>testing</code>",
            "| <code>deployment/auth-service</code> | auth-service | 6 → 7 | 42s | ✅ complete |",
            "### Gate",
            "### Checks: ✅ passed",
            "**Against the SLO**",
            "GitHub deployment **1874223091**",
        ],
    );
    assert!(text.contains("46.1 MiB"), "{text}");
    assert!(text.contains("| input |") || text.contains("| development |"));
    assert!(!text.contains("What went wrong"));
    assert!(!text.contains("CAUTION"));
    assert_mermaid_is_well_formed(&text);
    assert!(
        text.contains("step1[\"testing ✅<br/>3f2a9c1b · 12:09 · rolling · this run\"]"),
        "{text}"
    );
    assert!(text.contains("step0 --> step1 --> step2"));
    assert!(text.contains("class step1 current"));
    assert!(
        text.contains("step2[\"production ⏳<br/>blue-green\"]"),
        "every environment shows its strategy: {text}"
    );
}

#[test]
fn failure_shows_the_cause_first_and_stays_under_the_limit_with_huge_logs() {
    // 5 MB of log: 50 000 lines of 100 bytes, plus one runaway line of 1 MB.
    let mut lines: Vec<String> = (0..50_000)
        .map(|n| {
            format!(
                "{n:06} ERROR connect ECONNREFUSED 10.0.3.7:5432 {}",
                "x".repeat(50)
            )
        })
        .collect();
    lines.push("y".repeat(1 << 20));
    let report = failed(lines);
    let text = run_summary(&report).render();
    assert!(text.len() <= SUMMARY_LIMIT, "{} bytes", text.len());
    assert!(
        text.starts_with("## ❌ testing: failed — rolled back\n"),
        "{text:.400}"
    );
    let first_table = text.find("\n| ").expect("a table");
    let cause = text.find("### What went wrong").expect("cause");
    assert!(cause < first_table, "the cause must come before any table");
    assert!(
        text.contains("- <code>deployment/auth-service</code>: **CrashLoopBackOff**: container"),
        "{text:.2000}"
    );
    section_order(
        &text,
        &[
            "### What went wrong",
            "```mermaid",
            "### Rollout in",
            "❌ failed: CrashLoopBackOff<br>↩️ rolled back to revision 6",
            "<details open><summary>🔍 <b>deployment/auth-service</b>: CrashLoopBackOff</summary>",
            "| <code>auth-service-7d9f8b6c5-x2k4q</code> | Running | ❌ |",
            "Back-off restarting failed container",
            "Log of auth-service-7d9f8b6c5-x2k4q/auth-service (the crashed instance)",
            "### Rollback",
            "| <code>deployment/auth-service</code> | 6 | 8 | ↩️ rolled back |",
            "ReplicaSet auth-service-7d9f8b6c5 kept 1 pod",
        ],
    );
    assert!(
        text.contains("to stay under the 1 MiB job summary limit"),
        "trimmed note"
    );
    assert_mermaid_is_well_formed(&text);
    assert!(text.contains("class step1 failed") || text.contains("class step1 current"));
    // The terminal form stays short whatever the log holds.
    let terminal = run_text(&report);
    assert!(terminal.len() < 4096, "{terminal}");
    assert!(terminal.contains("rollback: deployment/auth-service rolled-back to revision 6"));
}

#[test]
fn log_lines_are_cleaned_and_cut() {
    let body = log_body(&[
        "\u{1b}[31mred\u{1b}[0m".into(),
        "z".repeat(LOG_LINE_LIMIT + 10),
    ]);
    assert!(body.starts_with("[31mred[0m\n"), "{body:?}");
    assert!(body.ends_with("… (10 more bytes)\n"));
}

#[test]
fn rollback_failure_says_a_human_must_act() {
    let mut report = failed(vec!["boom".into()]);
    report.outcome = Outcome::RollbackFailed;
    let w = &mut report.deploy.as_mut().unwrap().workloads[0];
    let rollback = w.rollback.as_mut().unwrap();
    rollback.outcome = RollbackOutcome::Failed;
    rollback.revision_after = None;
    rollback.message = Some("revision 6 timed out: 0 of 3 pods ready".into());
    rollback.diagnosis = Some(crash_diagnosis(vec!["still broken".into()]));
    let text = run_summary(&report).render();
    assert!(
        text.starts_with("## 🚨 testing: rollback failed — a human must act\n"),
        "{text}"
    );
    assert!(text.contains(
        "- 🚨 the rollback of <code>deployment/auth-service</code> to revision 6 failed: \
         revision 6 timed out: 0 of 3 pods ready"
    ));
    assert!(text.contains("<code>promote rollback --environment testing</code>"));
    assert!(text.contains(
        "<details><summary>🔍 <b>rollback of deployment/auth-service</b>: CrashLoopBackOff"
    ));
}

#[test]
fn refusal_lists_the_failed_gate_checks_first() {
    let text = run_summary(&refused()).render();
    assert!(
        text.starts_with("## ⛔ production: refused by the gate\n"),
        "{text}"
    );
    section_order(
        &text,
        &[
            "### Why it was refused",
            "- ⛔ **release passed testing** — testing runs release 91c0d2e7",
            "```mermaid",
            "### Gate",
            "Requires the release to have passed **testing**: it has not.",
            "| release passed testing | ❌ |",
            "| branch main may deploy to production | ✅ |",
        ],
    );
    assert!(
        !text.contains("branch main may deploy to production** —"),
        "only failed ones"
    );
    assert!(!text.contains("### Rollout"));
    assert!(text.contains("class step2 refused"));
    assert_mermaid_is_well_formed(&text);
    let terminal = run_text(&refused());
    assert!(
        terminal.starts_with("⛔ production: refused: release 3f2a9c1b"),
        "{terminal}"
    );
    assert!(terminal.contains("gate: release passed testing: testing runs release 91c0d2e7"));
}

#[test]
fn skipped_gate_is_a_caution_block() {
    let mut report = success();
    report.environment = "production".into();
    report.gate = Gate {
        requires: Some("testing".into()),
        skipped: true,
        checks: Vec::new(),
    };
    let text = run_summary(&report).render();
    assert!(
        text.contains("\n> [!CAUTION]\n> **The promotion gate was skipped** (`skip-gate`)"),
        "{text}"
    );
    let caution = text.find("[!CAUTION]").unwrap();
    assert!(caution < text.find("```mermaid").unwrap());
    assert!(text.contains("**Skipped** with `skip-gate`"));
    assert!(run_text(&report).contains("WARNING: the promotion gate was skipped"));
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let evil = "evil<script>alert(1)</script>|x`y`]]\"q\"\n## h";
    let mut report = failed(vec![format!("``` </details> {evil}")]);
    report.summary = format!("failed: {evil}");
    report.path[0].environment = format!("dev\"]; click step0 \"javascript:alert(1)\" {evil}");
    report.path[0].release_id = Some(evil.into());
    report.images[0].service = evil.into();
    report.images[0].tags = vec![evil.into()];
    // A parsed digest cannot carry this; the renderers must not rely on that.
    report.images[0].digest =
        Digest::unchecked(format!("sha256:\"><img src=x onerror=alert(1)>{evil}"));
    report.images[0].image = format!("reg/{evil}@sha256:x");
    report.images[1].digest = Digest::unchecked("sha256:[x](https://evil.example) *b*");
    report.environment_url = Some(format!("https://x.example/a) [b](javascript:{evil}"));
    report.run_url = Some("javascript:alert(1)".into());
    report.warnings = vec![evil.into()];
    report.gate.checks[0].detail = evil.into();
    let d = report.deploy.as_mut().unwrap();
    d.workloads[0].service = evil.into();
    let diagnosis = d.workloads[0].diagnosis.as_mut().unwrap();
    diagnosis.failure.message = evil.into();
    diagnosis.events[0].message = evil.into();
    diagnosis.pods[0].containers[0].state = evil.into();
    let text = run_summary(&report).render();

    // Raw text is allowed only inside the log's code block, where it is literal.
    let fence = text.find("````text\n").expect("log block");
    let end = fence + text[fence..].find("\n````\n").expect("closed log block");
    let outside = format!("{}{}", &text[..fence], &text[end..]);
    assert!(!outside.contains("<script"), "{outside}");
    assert!(!outside.contains("<img"), "{outside}");
    assert!(!text.contains("](javascript:"), "{text}");
    assert!(!outside.contains("](https://evil"), "{outside}");
    assert!(outside.contains("&#91;x&#93;(https://evil.example) &#42;b&#42;"));
    assert!(
        !text.contains("\n## h"),
        "a newline in data must not start a heading"
    );
    assert!(
        text.contains("<code>javascript:alert(1)</code>"),
        "non-http URL as code"
    );
    assert!(
        text.contains("](https://x.example/a%29%20%5Bb%5D%28javascript:"),
        "{text}"
    );
    // Every table row keeps its column count: escaped pipes do not split cells.
    let lines: Vec<&str> = text.lines().collect();
    let mut tables = 0;
    for (i, rule) in lines.iter().enumerate() {
        if !rule.starts_with("|---") {
            continue;
        }
        tables += 1;
        let columns = rule.matches('|').count();
        let rows = lines[i + 1..].iter().take_while(|l| l.starts_with("| "));
        for line in std::iter::once(&lines[i - 1]).chain(rows) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, columns, "row {line:?}");
        }
    }
    assert!(tables >= 5, "{tables} tables");
    assert_mermaid_is_well_formed(&text);
    assert!(text.contains("dev#quot;#93;#59; click step0 #quot;javascript:alert#40;1#41;#quot;"));
    // The log stays inside its fence: the fence is longer than any backtick run in it.
    assert!(text.contains("````text\n``` </details>"), "{text}");

    let terminal = run_text(&report);
    assert!(
        !terminal
            .lines()
            .any(|l| l.starts_with("## h") || l.starts_with("::"))
    );
}

#[test]
fn formatters() {
    assert_eq!(human_ms(850), "850 ms");
    assert_eq!(human_ms(4_210), "4.2s");
    assert_eq!(human_ms(42_300), "42s");
    assert_eq!(human_ms(185_000), "3m 05s");
    assert_eq!(human_ms(3_720_000), "1h 02m");
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(12_900_000), "12.3 MiB");
    assert_eq!(short_digest(AUTH_DIGEST), "sha256:4f1c2d3e4a5b");
    assert_eq!(short_sha(SHA), "3f2a9c1");
    assert_eq!(
        clock(ts("2025-03-14T12:03:11Z"), ts("2025-03-14T23:00:00Z")),
        "12:03"
    );
    assert_eq!(
        clock(ts("2025-03-13T12:03:11Z"), ts("2025-03-14T01:00:00Z")),
        "03-13 12:03"
    );
    assert_eq!(age(ts("2025-03-14T12:10:30Z"), now()), "0s");
    assert_eq!(age(ts("2025-03-10T12:10:00Z"), now()), "4d");
    assert_eq!(mermaid_text("a\"b#c<d>\n"), "a#quot;b#35;c#60;d#62; ");
}

/// `WRITE_SUMMARY_EXAMPLES=1 cargo test --lib report::tests` regenerates
/// docs/summary-examples/, the rendered summaries to look at (and review in diffs).
#[test]
fn write_summary_examples() {
    if std::env::var_os("WRITE_SUMMARY_EXAMPLES").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary-examples");
    std::fs::create_dir_all(&dir).expect("create docs/summary-examples");
    let log: Vec<String> = (0..20)
        .map(|n| match n {
            0 => "> auth-service@2.4.0 start".to_string(),
            1 => "> node dist/main.js".to_string(),
            18 => "Error: connect ECONNREFUSED 10.0.3.7:5432".to_string(),
            19 => {
                "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)".to_string()
            }
            n => format!(
                "[2025-03-14T12:09:{:02}Z] info: waiting for postgres ({}/16)",
                20 + n,
                n - 1
            ),
        })
        .collect();
    for (name, text) in [
        ("run-success.md", run_summary(&success()).render()),
        (
            "run-failed-rolled-back.md",
            run_summary(&failed(log)).render(),
        ),
        ("run-refused.md", run_summary(&refused()).render()),
        ("status.md", status_summary(&status()).render()),
    ] {
        std::fs::write(dir.join(name), text).expect("write example");
    }
    // The terminal forms, to look at with `--nocapture`.
    for report in [success(), failed(vec!["boom".into()]), refused()] {
        eprintln!("{}", run_text(&report));
    }
    eprintln!("{}", status_text(&status(), now()));
}

#[test]
fn a_canary_shows_its_step_table_after_the_rollout() {
    use super::canary::{CanaryDecision, CanaryReport, CanaryStepReport, StepVerdict};
    let mut report = success();
    let mut canary = CanaryReport::new("replicas");
    canary.steps.push(CanaryStepReport {
        step: 1,
        service: "auth-service".into(),
        weight: 10,
        stable_replicas: 6,
        canary_replicas: 1,
        stable_ready: 6,
        canary_ready: 1,
        actual_share: 100.0 / 7.0,
        started_at: ts("2025-03-14T12:08:00Z"),
        ready_at: None,
        analysed_at: None,
        checks: None,
        analysis: None,
        verdict: StepVerdict::Passed,
        summary: "passed".into(),
    });
    canary.decision = Some(CanaryDecision::Promoted);
    report.deploy.as_mut().unwrap().canary = Some(canary);
    let text = run_summary(&report).render();
    section_order(
        &text,
        &[
            "### Rollout in <code>testing</code>",
            "### Canary: ✅ promoted",
            "| 1 | 10 % | 6 / 1 | 14 % |",
            "### Gate",
        ],
    );
}
