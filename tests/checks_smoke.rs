//! `promote verify` smoke checks end to end: the real binary against local HTTP and HTTPS
//! services (tests/checks_server.rs) whose latency distributions, error rates and slow starts
//! are scripted per request, so every assertion is about counts, never about timing.

use std::time::Duration;

use serde_json::Value;

use crate::checks_server::{Answer, Route, TestService};
use crate::support::project::Project;
use crate::util::{promote, read, run};

/// The environment's lines for one smoke check on `path` of `service`, plus `more` check fields
/// (each `key: value` on a line of its own) and environment lines.
fn environment(service: &TestService, check: &str, slo: &str) -> String {
    format!(
        "    url: {}
    checks:
      smoke:
{check}
{slo}",
        service.url("")
    )
}

fn check(report: &Value, i: usize) -> &Value {
    &report["checks"][i]
}

const FAST: Duration = Duration::ZERO;
const SLOW: Duration = Duration::from_millis(300);

#[test]
fn readiness_waits_for_a_warming_service() {
    let service = TestService::http(vec![(
        "/health",
        Route::warming(3, Answer::status(503).body("warming up"), Answer::ok("ok")),
    )]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: health, path: /health, samples: 5, concurrency: 2 }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    let report = project.report("verify");
    let smoke = &check(&report, 0)["smoke"];
    assert_eq!(smoke["readiness"]["attempts"], 4, "{report:#}");
    assert_eq!(smoke["readiness"]["ready"], true);
    assert_eq!(smoke["sampling"]["requests"], 5);
    assert_eq!(service.count("/health"), 4 + 5, "attempts, then the sample");
    assert_eq!(report["outcome"], "success");
    assert!(out.stdout.contains("outcome=success"), "{out:?}");
}

#[test]
fn a_service_that_never_gets_ready_fails_with_its_last_answer() {
    let service = TestService::http(vec![(
        "/health",
        Route::always(Answer::status(503).body("warming\nup")),
    )]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: health, path: /health, readinessTimeout: 1s }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    let reason = check(&report, 0)["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not ready within 1s (")
            && reason.ends_with("status 503, expected 200: warming up"),
        "{reason}"
    );
    assert!(
        check(&report, 0)["smoke"]["sampling"].is_null(),
        "no sample without readiness"
    );
    assert!(
        out.stderr
            .contains("error: Verification failed: smoke health: not ready within 1s"),
        "{out:?}"
    );
}

/// Nearest rank: with 100 samples p95 is the 95th fastest. 5 slow answers leave it fast, 6 make
/// it slow: the SLO gate's boundary, by construction.
#[test]
fn p95_passes_with_five_slow_answers_in_a_hundred_and_fails_with_six() {
    for (slow, want_code) in [(5, 0), (6, 1)] {
        let service = TestService::http(vec![(
            "/health",
            Route::mix(&[
                (100 - slow, Answer::ok("ok").after(FAST)),
                (slow, Answer::ok("ok").after(SLOW)),
            ]),
        )]);
        let project = Project::new(
            "testing",
            &environment(
                &service,
                "        - { name: health, path: /health, samples: 100, concurrency: 10 }",
                "    slo: { p95Latency: 250ms, uptime: 99.9% }",
            ),
        );
        let out = project.verify();
        assert_eq!(out.code, want_code, "{slow} slow answers: {out:?}");
        let report = project.report("verify");
        let verdict = &check(&report, 0)["smoke"]["slo"][0];
        assert_eq!(verdict["objective"], "p95Latency");
        assert_eq!(verdict["passed"], want_code == 0, "{report:#}");
        let p95 = check(&report, 0)["smoke"]["sampling"]["p95_ms"]
            .as_f64()
            .unwrap();
        let reason = verdict["reason"].as_str().unwrap();
        if want_code == 0 {
            assert!(p95 < 250.0 && reason.ends_with("≤ 250 ms"), "{reason}");
        } else {
            assert!(p95 >= 300.0, "{report:#}");
            assert!(
                reason.starts_with("p95 ") && reason.ends_with(" ms > 250 ms"),
                "{reason}"
            );
            assert_eq!(check(&report, 0)["reason"].as_str(), Some(reason));
            assert!(out.stderr.contains(reason), "{out:?}");
        }
        assert_eq!(check(&report, 0)["smoke"]["sampling"]["requests"], 100);
    }
}

/// `errorRate: 1%` allows 1 failed request in 100 and not 2.
#[test]
fn error_rate_at_the_boundary() {
    for (errors, want_code) in [(1, 0), (2, 1)] {
        let service = TestService::http(vec![(
            "/health",
            Route::mix(&[
                (100 - errors, Answer::ok("ok")),
                (errors, Answer::status(500).body("boom")),
            ]),
        )]);
        let project = Project::new(
            "testing",
            &environment(
                &service,
                "        - { name: health, path: /health, samples: 100, concurrency: 4 }",
                "    slo: { errorRate: 1% }",
            ),
        );
        let out = project.verify();
        assert_eq!(out.code, want_code, "{errors} errors: {out:?}");
        let report = project.report("verify");
        let sampling = &check(&report, 0)["smoke"]["sampling"];
        assert_eq!(sampling["errors"], errors as u64, "{report:#}");
        assert_eq!(
            sampling["error_reasons"][0]["reason"],
            "status 500, expected 200: boom"
        );
        let reason = check(&report, 0)["smoke"]["slo"][0]["reason"]
            .as_str()
            .unwrap();
        let want = if errors == 1 {
            "error rate 1% ≤ 1% (1 of 100 requests failed)"
        } else {
            "error rate 2% > 1% (2 of 100 requests failed)"
        };
        assert_eq!(reason, want);
    }
}

#[test]
fn body_and_json_expectations() {
    let json = r#"{"status":"ok","checks":{"db":"up"},"replicas":[{"ready":2}]}"#;
    let service = TestService::http(vec![("/health", Route::always(Answer::ok(json)))]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            r#"        - name: json-ok
          path: /health
          samples: 3
          expectBody: '"status":"ok"'
          expectJson: { status: ok, checks.db: up, replicas.0.ready: 2 }
        - name: json-wrong
          path: /health
          readinessTimeout: 1s
          expectJson: { checks.db: down }
        - name: body-wrong
          path: /health
          readinessTimeout: 1s
          expectBody: healthy"#,
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    assert_eq!(check(&report, 0)["passed"], true, "{report:#}");
    let reason = |i| check(&report, i)["reason"].as_str().unwrap().to_string();
    assert!(
        reason(1).ends_with(r#"JSON field `checks.db` is "up", expected "down""#),
        "{}",
        reason(1)
    );
    assert!(
        reason(2).ends_with(r#"the body does not contain "healthy""#),
        "{}",
        reason(2)
    );
    assert_eq!(
        report["summary"].as_str().unwrap().split(';').count(),
        2,
        "{report:#}"
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 of 3 checks failed: ")
    );
}

#[test]
fn a_request_that_outlasts_its_timeout_is_no_answer() {
    let service = TestService::http(vec![(
        "/hang",
        Route::always(Answer::ok("late").after(Duration::from_secs(60))),
    )]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: hang, path: /hang, requestTimeout: 200ms, readinessTimeout: 300ms }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let reason = project.report("verify")["checks"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.ends_with("no answer within 200ms"), "{reason}");
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let service = TestService::http(vec![
        ("/old", Route::always(Answer::redirect("/new"))),
        ("/new", Route::always(Answer::ok("moved here"))),
        ("/loop", Route::always(Answer::redirect("/loop"))),
    ]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: followed, path: /old, samples: 2, expectBody: moved here }
        - { name: not-followed, path: /old, samples: 2, maxRedirects: 0, expectStatus: 302 }
        - { name: loop, path: /loop, maxRedirects: 3, readinessTimeout: 1s }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    assert_eq!(check(&report, 0)["passed"], true, "{report:#}");
    assert_eq!(check(&report, 1)["passed"], true, "{report:#}");
    let reason = check(&report, 2)["reason"].as_str().unwrap();
    assert!(reason.contains("too many redirects"), "{reason}");
    assert_eq!(
        service.count("/new"),
        1 + 2,
        "only the followed check reached /new"
    );
}

#[test]
fn https_with_the_check_s_own_ca() {
    let service = TestService::https(vec![("/health", Route::always(Answer::ok("ok")))]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: private-ca, path: /health, samples: 3, caFile: ca.pem }
        - { name: public-roots, path: /health, readinessTimeout: 1s }",
            "",
        ),
    );
    std::fs::write(project.path("ca.pem"), service.ca_pem.as_ref().unwrap()).unwrap();
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    assert_eq!(check(&report, 0)["passed"], true, "{report:#}");
    assert!(
        check(&report, 0)["smoke"]["target"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let reason = check(&report, 1)["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot connect") && reason.contains("certificate"),
        "an unknown CA is refused: {reason}"
    );
}

#[test]
fn an_unreadable_ca_file_is_invalid_input() {
    let service = TestService::https(vec![("/health", Route::always(Answer::ok("ok")))]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: health, path: /health, caFile: missing.pem }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("smoke check health: cannot read the CA file"),
        "{out:?}"
    );
    assert_eq!(service.count("/health"), 0, "nothing was sent");
}

/// The secret header is sent, and never shows: not in the log, not in the report, not even
/// when the service echoes it back in an error body.
#[test]
fn secret_headers_are_sent_and_never_printed() {
    let secret = format!("s3cr3t-{}", std::process::id());
    let service = TestService::http(vec![(
        "/private",
        Route::always(Answer::status(500).body(&format!("rejected token Bearer {secret}"))),
    )]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - name: private
          path: /private
          readinessTimeout: 1s
          headers:
            Authorization: { fromEnv: SMOKE_TOKEN }
            X-Plain: visible",
            "",
        ),
    );
    for in_actions in [false, true] {
        let summary = project.path("summary.md");
        let mut cmd = project.command("verify", &[]);
        cmd.env("SMOKE_TOKEN", format!("Bearer {secret}"));
        if in_actions {
            cmd.env("GITHUB_ACTIONS", "true")
                .env("GITHUB_STEP_SUMMARY", &summary);
        }
        let out = run(&mut cmd);
        assert_eq!(out.code, 1, "{out:?}");
        let seen = service.seen();
        let last = seen.last().unwrap();
        assert_eq!(
            last.header("authorization"),
            Some(format!("Bearer {secret}").as_str())
        );
        assert_eq!(last.header("x-plain"), Some("visible"));
        let report = read(&project.path("out/promote-verify.json"));
        assert!(report.contains("rejected token ***"), "{report}");
        // In Actions the runner is told what to mask; that line is the only one holding it.
        let stdout: String = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect();
        for (what, text) in [
            ("stdout", stdout.as_str()),
            ("stderr", out.stderr.as_str()),
            ("report", report.as_str()),
        ] {
            assert!(!text.contains(&secret), "{what} shows the secret:\n{text}");
        }
        if in_actions {
            assert!(
                out.stdout.contains(&format!("::add-mask::Bearer {secret}")),
                "{out:?}"
            );
            assert!(
                out.stdout.contains("::error title=Verification failed::"),
                "{out:?}"
            );
            let summary = read(&summary);
            assert!(
                summary.contains("| Check |") && !summary.contains(&secret),
                "{summary}"
            );
        }
    }
}

#[test]
fn a_missing_secret_variable_is_invalid_input() {
    let service = TestService::http(vec![("/health", Route::always(Answer::ok("ok")))]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: health, path: /health, headers: { Authorization: { fromEnv: NOT_SET_ANYWHERE } } }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "smoke check health: header Authorization takes its value from the environment variable NOT_SET_ANYWHERE, which is not set"
        ),
        "{out:?}"
    );
    assert_eq!(service.count("/health"), 0);
}

#[test]
fn sampling_for_a_duration() {
    let service = TestService::http(vec![(
        "/health",
        Route::always(Answer::ok("ok").after(Duration::from_millis(20))),
    )]);
    let project = Project::new(
        "testing",
        &environment(
            &service,
            "        - { name: health, path: /health, duration: 1s, concurrency: 2 }",
            "",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    let sampling = project.report("verify")["checks"][0]["smoke"]["sampling"].clone();
    let requests = sampling["requests"].as_u64().unwrap();
    assert!(requests >= 2, "{sampling:#}");
    assert!(
        sampling["elapsed_ms"].as_f64().unwrap() >= 1000.0,
        "{sampling:#}"
    );
    assert_eq!(service.count("/health") as u64, requests + 1);
}

#[test]
fn verify_url_samples_exactly_what_was_asked() {
    let service = TestService::http(vec![("/", Route::always(Answer::ok("ok")))]);
    let dir = tempfile::tempdir().unwrap();
    let out = run(promote()
        .args(["verify", "--url", &service.url("/")])
        .args(["--samples", "30", "--concurrency", "3", "--output-dir"])
        .arg(dir.path()));
    assert_eq!(out.code, 0, "{out:?}");
    let report: Value =
        serde_json::from_str(&read(&dir.path().join("promote-verify.json"))).unwrap();
    let sampling = &report["checks"][0]["smoke"]["sampling"];
    assert_eq!(sampling["requests"], 30);
    assert_eq!(sampling["concurrency"], 3);
    assert!(sampling["p95_ms"].is_number(), "{report:#}");
    assert_eq!(service.count("/"), 31, "one readiness request, then 30");
    assert!(
        out.stderr.contains("30 requests at concurrency 3"),
        "{out:?}"
    );
}

#[test]
fn verify_inputs_that_cannot_work() {
    let project = Project::new("testing", "");
    let cases: &[(&str, Vec<&str>, &str)] = &[
        (
            "an unknown environment",
            vec!["verify", "--environment", "staging"],
            "unknown environment `staging` (the promotion file declares: testing)",
        ),
        (
            "an unknown service",
            vec!["verify", "--environment", "testing", "--service", "api"],
            "unknown service `api` (one of: web)",
        ),
        (
            "both --url and --environment",
            vec![
                "verify",
                "--environment",
                "testing",
                "--url",
                "http://127.0.0.1:9/",
            ],
            "give either --url (sample one URL) or --environment (run its checks), not both",
        ),
        (
            "sampling flags without --url",
            vec!["verify", "--environment", "testing", "--samples", "5"],
            "--url",
        ),
    ];
    for (case, args, want) in cases {
        let out = run(promote()
            .arg("--config")
            .arg(project.path("promotion.yml"))
            .args(args));
        assert_eq!(out.code, 2, "{case}: {out:?}");
        assert!(out.stderr.contains(want), "{case}: {out:?}");
    }
}

#[test]
fn an_environment_without_checks_passes() {
    let project = Project::new("testing", "");
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(project.report("verify")["summary"], "no checks declared");
}
