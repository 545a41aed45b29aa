//! Metric analysis against the real Prometheus (tests/support/prometheus.rs), scraping every
//! second an exporter whose series the test sets. Counters grow at exact rates by the exporter's
//! clock, so ratios of rates are exact; the tests poll the analysis until the data they wrote
//! has been scraped and judged, with a generous deadline, and assert values, never timings.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use promote_action::checks::analysis::{
    self, AnalysisReport, Error, Prometheus, QueryReport, Target, Track, Verdict, Window,
};
use promote_action::config::{Bound, MetricQuery, OnInconclusive, PrometheusAnalysis, yaml::Pos};
use promote_action::registry::RetryPolicy;

use crate::support::prometheus::{self as harness, Exporter};

/// Long enough for a cold Prometheus on a busy 2-core machine; the tests end as soon as the
/// data is there.
const DEADLINE: Duration = Duration::from_secs(180);

fn query(name: &str, text: &str, bound: Bound, for_: Duration) -> MetricQuery {
    MetricQuery {
        name: name.to_string(),
        query: text.to_string(),
        bound,
        for_,
        pos: Pos { line: 7, col: 9 },
    }
}

fn analysis(url: &str, queries: Vec<MetricQuery>, policy: OnInconclusive) -> PrometheusAnalysis {
    PrometheusAnalysis {
        url: url.to_string(),
        queries,
        on_inconclusive: policy,
        window: Duration::from_secs(300),
        pos: Pos::default(),
    }
}

/// Analyses from `start` to now until `done` says the report is the one awaited.
async fn analyse_until(
    client: &Prometheus,
    analysis: &PrometheusAnalysis,
    target: &Target,
    start: Timestamp,
    what: &str,
    done: impl Fn(&AnalysisReport) -> bool,
) -> AnalysisReport {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let window = Window::new(start, Timestamp::now());
        let report = analysis::analyse(client, analysis, target, &window)
            .await
            .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
        if done(&report) {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still not there after {DEADLINE:?}:\n{}",
            serde_json::to_string_pretty(&report).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn row<'a>(report: &'a AnalysisReport, name: &str) -> &'a QueryReport {
    report
        .queries
        .iter()
        .find(|q| q.name == name)
        .unwrap_or_else(|| panic!("a row for {name}"))
}

fn close(got: Option<f64>, want: f64, tolerance: f64) -> bool {
    got.is_some_and(|v| (v - want).abs() <= tolerance)
}

/// `http_requests_total` of one track, growing at `ok` 200s and `errors` 500s a second.
fn requests(exporter: &Exporter, namespace: &str, track: &str, ok: f64, errors: f64) {
    for (code, rate) in [("200", ok), ("500", errors)] {
        exporter.grow(
            &format!(
                r#"http_requests_total{{namespace="{namespace}",service="web",track="{track}",code="{code}"}}"#
            ),
            rate,
        );
    }
}

/// An error ratio over 5 s rates: a test's window is seconds, not the seed's minutes.
const ERROR_RATIO: &str = r#"sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}",code=~"5.."}[5s])) / sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[5s]))"#;

#[tokio::test]
async fn an_error_rate_within_its_bound_passes_then_breaches_when_errors_rise() {
    let start = Timestamp::now();
    let prom = harness::Prometheus::start();
    requests(&prom.exporter, "testing", "canary", 199.0, 1.0);
    let client = Prometheus::new(&prom.url).unwrap();
    let analysis = analysis(
        &prom.url,
        vec![query(
            "error-rate",
            ERROR_RATIO,
            Bound::Max(0.01),
            Duration::from_secs(2),
        )],
        OnInconclusive::Fail,
    );
    let canary = Target::new("testing", "web", Track::Canary);

    let report = analyse_until(
        &client,
        &analysis,
        &canary,
        start,
        "a passing window",
        |r| r.queries[0].samples >= 5,
    )
    .await;
    let q = &report.queries[0];
    assert_eq!(q.verdict, Verdict::Pass, "{}", q.headline());
    assert!(q.passed && report.passed);
    assert!(close(q.worst, 0.005, 1e-5), "worst {:?}", q.worst);
    assert!(close(q.last, 0.005, 1e-5), "last {:?}", q.last);
    assert!(q.query.contains(r#"track="canary""#), "{}", q.query);
    assert!(!q.query.contains("{{"), "{}", q.query);
    assert_eq!(report.summary, "1 query passed");

    // 20 errors a second beside 199 successes: the ratio settles at 20/219.
    let switched = Timestamp::now();
    requests(&prom.exporter, "testing", "canary", 199.0, 20.0);
    let breached = 20.0 / 219.0;
    let report = analyse_until(&client, &analysis, &canary, start, "the breach", |r| {
        r.queries[0].verdict == Verdict::Breach && close(r.queries[0].last, breached, 1e-5)
    })
    .await;
    let q = &report.queries[0];
    let breach = q.breach.as_ref().expect("a breach");
    assert!(
        close(Some(breach.value), breached, 1e-5),
        "value {}",
        breach.value
    );
    assert!(breach.at > switched, "{} after {switched}", breach.at);
    assert!(
        breach.lasted >= Duration::from_secs(2),
        "{:?}",
        breach.lasted
    );
    assert!(!q.passed && !report.passed);
    assert_eq!(report.verdict, Verdict::Breach);
    assert!(
        report
            .summary
            .starts_with("error-rate: 0.09132 > 0.01 for "),
        "{}",
        report.summary
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["queries"][0]["verdict"], "breach");
    assert_eq!(json["queries"][0]["bound"]["max"], 0.01);
    assert_eq!(json["track"], "canary");
}

#[tokio::test]
async fn a_query_without_data_is_inconclusive_and_the_policy_decides() {
    let start = Timestamp::now();
    let prom = harness::Prometheus::start();
    // Counters that exist but do not move: their ratio of rates is 0/0, NaN at every step.
    prom.exporter.set(
        r#"http_requests_total{namespace="testing",service="idle",track="stable",code="200"}"#,
        0.0,
    );
    prom.exporter.set(
        r#"http_requests_total{namespace="testing",service="idle",track="stable",code="500"}"#,
        0.0,
    );
    let client = Prometheus::new(&prom.url).unwrap();
    let queries = vec![
        query("error-rate", ERROR_RATIO, Bound::Max(0.01), Duration::ZERO),
        // Data beside the NaN: shows that the window has been scraped.
        query(
            "traffic",
            r#"sum(rate(http_requests_total{service="{{service}}"}[5s]))"#,
            Bound::Min(0.0),
            Duration::ZERO,
        ),
    ];
    let idle = Target::new("testing", "idle", Track::Stable);
    let failing = analysis(&prom.url, queries.clone(), OnInconclusive::Fail);
    let report = analyse_until(&client, &failing, &idle, start, "traffic data", |r| {
        row(r, "traffic").samples >= 3
    })
    .await;
    let nan = row(&report, "error-rate");
    assert_eq!(nan.verdict, Verdict::Inconclusive);
    assert_eq!((nan.samples, nan.series), (0, 1));
    assert!(!nan.passed && !report.passed);
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert_eq!(report.summary, "error-rate: no data");

    // No series at all: a service nobody scrapes.
    let absent = Target::new("testing", "absent", Track::Canary);
    let window = Window::new(start, Timestamp::now());
    let report = analysis::analyse(&client, &failing, &absent, &window)
        .await
        .unwrap();
    assert!(
        report
            .queries
            .iter()
            .all(|q| q.verdict == Verdict::Inconclusive && q.series == 0),
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert!(!report.passed);

    let passing = analysis(&prom.url, queries, OnInconclusive::Pass);
    let report = analysis::analyse(&client, &passing, &absent, &window)
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert!(report.passed && report.queries.iter().all(|q| q.passed));
    assert_eq!(
        report.summary,
        "2 queries passed (2 without data, passed by onInconclusive: pass)"
    );
    assert_eq!(
        serde_json::to_value(&report).unwrap()["on_inconclusive"],
        "pass"
    );
}

#[tokio::test]
async fn preflight_names_the_queries_prometheus_rejects_in_its_own_words() {
    let prom = harness::Prometheus::start();
    let client = Prometheus::new(&prom.url).unwrap();
    let analysis = analysis(
        &prom.url,
        vec![
            query("fine", ERROR_RATIO, Bound::Max(0.01), Duration::ZERO),
            query(
                "unclosed",
                r#"sum(rate(http_requests_total{service="{{service}}"}[5m])"#,
                Bound::Max(1.0),
                Duration::ZERO,
            ),
            query(
                "range-vector",
                r#"http_requests_total{service="{{service}}"}[5m]"#,
                Bound::Max(1.0),
                Duration::ZERO,
            ),
            query(
                "wrong-type",
                r#"rate(http_requests_total{track="{{track}}"})"#,
                Bound::Max(1.0),
                Duration::ZERO,
            ),
        ],
        OnInconclusive::Fail,
    );
    let targets = [
        Target::new("testing", "web", Track::Stable),
        Target::new("testing", "web", Track::Canary),
    ];
    let errors = analysis::preflight(&client, &analysis, &targets)
        .await
        .expect_err("three queries are rejected");
    let names: Vec<(&str, usize)> = errors.iter().map(|e| (e.name.as_str(), e.index)).collect();
    assert_eq!(
        names,
        [("unclosed", 1), ("range-vector", 2), ("wrong-type", 3)],
        "each rejected query once, in order"
    );
    assert!(errors.iter().all(|e| e.pos.line == 7));
    let messages: Vec<String> = errors.iter().map(|e| chain(e)).collect();
    for m in &messages {
        assert!(!m.contains('\n'), "one line: {m}");
    }
    assert!(
        messages[0].starts_with(
            r#"analysis query unclosed: Prometheus rejected the query `sum(rate(http_requests_total{service="web"}[5m])`: "#
        ) && messages[0].contains("parse error"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("returns a range vector"),
        "{}",
        messages[1]
    );
    // Prometheus' own type check, with the rendered track.
    assert!(
        messages[2].contains(r#"track="stable""#) && messages[2].contains("range vector"),
        "{}",
        messages[2]
    );

    let good = PrometheusAnalysis {
        queries: analysis.queries[..1].to_vec(),
        ..analysis.clone()
    };
    analysis::preflight(&client, &good, &targets)
        .await
        .expect("a valid query passes preflight");
}

#[tokio::test]
async fn an_unreachable_prometheus_is_named_by_its_url() {
    let url = format!("http://127.0.0.1:{}", crate::support::registry::free_port());
    let client = Prometheus::new(&url).unwrap().with_retry(RetryPolicy {
        retries: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    });
    let analysis = analysis(
        &url,
        vec![query("up", "up", Bound::Min(1.0), Duration::ZERO)],
        OnInconclusive::Fail,
    );
    let target = Target::new("testing", "web", Track::Stable);
    let errors = analysis::preflight(&client, &analysis, std::slice::from_ref(&target))
        .await
        .expect_err("nobody listens");
    assert_eq!(errors.len(), 1);
    assert!(matches!(errors[0].source, Error::Unreachable { .. }));
    assert!(
        chain(&errors[0]).starts_with(&format!(
            "analysis query up: cannot reach Prometheus at {url}/api/v1/query: "
        )),
        "{}",
        chain(&errors[0])
    );
    let now = Timestamp::now();
    let err = analysis::analyse(&client, &analysis, &target, &Window::new(now, now))
        .await
        .expect_err("nobody listens");
    assert!(matches!(err.source, Error::Unreachable { .. }), "{err}");
}

/// The seed's production monitoring as it would run on a canary step: the stable pods are
/// healthy, the canary's are not in every way the seed's alert rules look for.
#[tokio::test]
async fn the_seed_alert_rules_pass_the_stable_track_and_catch_a_bad_canary() {
    let start = Timestamp::now();
    let prom = harness::Prometheus::start();
    let e = &prom.exporter;
    requests(e, "production", "stable", 199.0, 1.0);
    requests(e, "production", "canary", 90.0, 10.0);
    // Cumulative latency buckets a second: stable p95 = 0.1 + (190-150)/50·0.15 = 0.22 s,
    // canary p95 = 1 + (95-40)/60·1.5 = 2.375 s.
    let buckets = [
        ("0.1", 150.0, 10.0),
        ("0.25", 200.0, 20.0),
        ("0.5", 200.0, 30.0),
        ("1", 200.0, 40.0),
        ("2.5", 200.0, 100.0),
        ("+Inf", 200.0, 100.0),
    ];
    for (le, stable, canary) in buckets {
        for (track, rate) in [("stable", stable), ("canary", canary)] {
            e.grow(
                &format!(
                    r#"http_request_duration_seconds_bucket{{namespace="production",service="web",track="{track}",le="{le}"}}"#
                ),
                rate,
            );
        }
    }
    // Pods: (name, track, CPU cores in use, memory in use, restarts a second).
    const GIB: f64 = 1_073_741_824.0;
    let pods = [
        ("web-6d4c8b7f9-k2x8p", "stable", 0.3, 0.25 * GIB, 0.0),
        ("web-6d4c8b7f9-q7w4z", "stable", 0.5, 0.5 * GIB, 0.0),
        ("web-canary-5f7b9c-m3n6t", "canary", 0.95, 0.95 * GIB, 1.0),
    ];
    for (pod, track, cpu, memory, restarts) in pods {
        let at = format!(r#"namespace="production",pod="{pod}""#);
        e.set(
            &format!(r#"kube_pod_labels{{{at},label_app="web",label_track="{track}"}}"#),
            1.0,
        );
        e.set(
            &format!(
                r#"kube_pod_container_resource_limits{{{at},container="web",resource="cpu",unit="core"}}"#
            ),
            1.0,
        );
        e.set(
            &format!(
                r#"kube_pod_container_resource_limits{{{at},container="web",resource="memory",unit="byte"}}"#
            ),
            GIB,
        );
        e.grow(
            &format!(r#"container_cpu_usage_seconds_total{{{at},container="web"}}"#),
            cpu,
        );
        // cAdvisor's pod-level cgroup (no container label): `container!=""` leaves it out.
        e.grow(
            &format!(r#"container_cpu_usage_seconds_total{{{at}}}"#),
            5.0,
        );
        e.set(
            &format!(r#"container_memory_working_set_bytes{{{at},container="web"}}"#),
            memory,
        );
        e.grow(
            &format!(r#"kube_pod_container_status_restarts_total{{{at},container="web"}}"#),
            restarts,
        );
    }
    let seeded = Timestamp::now();
    let client = Prometheus::new(&prom.url).unwrap();
    let seed = analysis(
        &prom.url,
        analysis::seed_alert_rules(),
        OnInconclusive::Fail,
    );
    let stable = Target::new("production", "web", Track::Stable);
    let canary = Target::new("production", "web", Track::Canary);
    analysis::preflight(&client, &seed, &[stable.clone(), canary.clone()])
        .await
        .expect("Prometheus accepts the seed's queries");

    // `rate(…[1m])` divides by the minute: it reads low until a minute of samples exists.
    let minute = k8s_openapi::jiff::SignedDuration::from_secs(62);
    let report = analyse_until(&client, &seed, &stable, start, "a minute of data", |r| {
        r.window.end.duration_since(seeded) >= minute
    })
    .await;
    let table = serde_json::to_string_pretty(&report).unwrap();
    assert!(report.passed, "{table}");
    assert_eq!(report.summary, "5 queries passed");
    assert!(
        close(row(&report, "error-rate").worst, 0.005, 1e-5),
        "{table}"
    );
    assert!(
        close(row(&report, "latency-p95").worst, 0.22, 1e-5),
        "{table}"
    );
    assert_eq!(row(&report, "pod-restarts").worst, Some(0.0), "{table}");
    assert_eq!(row(&report, "pod-restarts").series, 2, "one row per pod");
    let cpu = row(&report, "cpu");
    // A rate read from scrapes a few milliseconds late or early: close, not exact.
    assert!(close(cpu.worst, 0.5, 0.05), "{table}");
    assert_eq!(
        cpu.labels["pod"], "web-6d4c8b7f9-q7w4z",
        "the busiest pod decides"
    );
    let memory = row(&report, "memory");
    assert!(close(memory.worst, 0.5, 1e-9), "{table}");
    assert_eq!(memory.labels["pod"], "web-6d4c8b7f9-q7w4z");

    // The rules' `for` (1m, 2m) is longer than this test's window: judge each sample alone.
    let mut at_once = seed.clone();
    for q in &mut at_once.queries {
        q.for_ = Duration::ZERO;
    }
    let report = analyse_until(
        &client,
        &at_once,
        &canary,
        start,
        "the canary's breaches",
        |r| r.queries.iter().all(|q| q.verdict == Verdict::Breach),
    )
    .await;
    let table = serde_json::to_string_pretty(&report).unwrap();
    assert!(!report.passed, "{table}");
    assert!(
        report.summary.starts_with("5 of 5 queries failed: "),
        "{}",
        report.summary
    );
    let value = |name: &str| row(&report, name).breach.as_ref().map(|b| b.value);
    assert!(close(value("error-rate"), 0.1, 1e-5), "{table}");
    assert!(close(value("latency-p95"), 2.375, 1e-5), "{table}");
    assert!(value("pod-restarts").is_some_and(|v| v > 5.0), "{table}");
    assert!(close(value("cpu"), 0.95, 0.05), "{table}");
    assert!(close(value("memory"), 0.95, 1e-9), "{table}");
    assert_eq!(row(&report, "cpu").labels["pod"], "web-canary-5f7b9c-m3n6t");
}
