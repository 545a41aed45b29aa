//! Smoke checks over HTTP: phase 1 waits until the service answers as expected (readiness),
//! phase 2 sends N requests at concurrency C, or for a duration, and measures latency and
//! errors for the SLO gate.
//!
//! A request goes either straight to a URL (reqwest on rustls, with the check's own CA and
//! redirect policy) or through the Kubernetes API server's service proxy ([`super::proxy`]).
//! Whether an answer is good is decided by [`judge`], a pure function: the status, a body
//! substring, and JSON fields found by a dotted path ([`lookup`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;

use super::proxy::ServiceProxy;
use super::report::{ErrorCount, Readiness, SampleStats};
use super::slo;

/// The first wait between readiness attempts; it doubles up to [`MAX_RETRY_DELAY`]. A service
/// that is still starting usually answers within a second or two.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Long enough not to hammer a warming service, short enough that a ready one is noticed soon.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Reasons kept per sample: the report shows why requests failed, not every variant.
const MAX_REASONS: usize = 5;
/// Bytes of a bad answer's body quoted in the reason.
const BODY_EXCERPT: usize = 200;

/// What the check expects of every answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub status: u16,
    pub body: Option<String>,
    pub json: BTreeMap<String, Value>,
}

/// Decides whether an answer meets `expect`: `Err` says why not, in one line.
pub fn judge(expect: &Expect, status: u16, body: &[u8]) -> Result<(), String> {
    if status != expect.status {
        let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT * 4)]);
        // One line of bounded length: a newline could forge a workflow command, and a page
        // of HTML helps nobody beyond its first words.
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut excerpt: String = crate::untrusted::server_text(&words)
            .chars()
            .take(BODY_EXCERPT)
            .collect();
        if excerpt.chars().count() == BODY_EXCERPT {
            excerpt.push('…');
        }
        return Err(if excerpt.is_empty() {
            format!("status {status}, expected {}", expect.status)
        } else {
            format!("status {status}, expected {}: {excerpt}", expect.status)
        });
    }
    if let Some(needle) = &expect.body
        && !memchr_find(body, needle.as_bytes())
    {
        return Err(format!("the body does not contain {needle:?}"));
    }
    if expect.json.is_empty() {
        return Ok(());
    }
    let document: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}), expected fields in it"))?;
    for (path, want) in &expect.json {
        match lookup(&document, path) {
            None => return Err(format!("JSON field `{path}` is missing")),
            Some(found) if !json_equal(found, want) => {
                return Err(format!("JSON field `{path}` is {found}, expected {want}"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The value at a dotted path: `status`, `checks.database`, `items.0.id` (a number indexes an
/// array). Keys that contain a dot cannot be addressed.
pub fn lookup<'v>(document: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(document, |node, key| match node {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Equality where numbers compare by value (YAML's `3` equals JSON's `3.0`).
fn json_equal(found: &Value, want: &Value) -> bool {
    match (found, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => found == want,
    }
}

/// The wait before readiness attempt `attempt + 1` (after attempt 1, 2, …).
pub fn retry_delay(attempt: u32) -> Duration {
    FIRST_RETRY_DELAY
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_RETRY_DELAY)
}

/// One request as every attempt sends it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    /// Values read from secrets are marked sensitive (never shown by `Debug`).
    pub headers: http::HeaderMap,
}

/// Where requests go.
#[derive(Clone)]
pub enum Transport {
    Direct {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    Proxy(ServiceProxy),
}

impl Transport {
    /// What the report names as the target.
    pub fn describe(&self) -> String {
        match self {
            Transport::Direct { url, .. } => url.to_string(),
            Transport::Proxy(proxy) => proxy.path().to_string(),
        }
    }

    pub fn route(&self) -> &'static str {
        match self {
            Transport::Direct { .. } => "url",
            Transport::Proxy(_) => "service-proxy",
        }
    }

    /// Sends `request` and reads the whole answer within `timeout`. `Err` is why there is no
    /// answer (timeout, connection, TLS, too many redirects), in one line.
    pub async fn send(&self, request: &Request, timeout: Duration) -> Result<(u16, Bytes), String> {
        let exchange = async {
            match self {
                Transport::Direct { client, url } => {
                    let response = client
                        .request(request.method.clone(), url.clone())
                        .headers(request.headers.clone())
                        .send()
                        .await
                        .map_err(|e| describe_reqwest(&e))?;
                    let status = response.status().as_u16();
                    let body = response.bytes().await.map_err(|e| describe_reqwest(&e))?;
                    Ok((status, body))
                }
                Transport::Proxy(proxy) => proxy.send(request).await,
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::config::units::format_duration(timeout)
            )),
        }
    }
}

/// A reqwest error as one line without the URL (the report names the target once), with its
/// causes: "cannot connect: tcp connect error: Connection refused (os error 111)".
fn describe_reqwest(err: &reqwest::Error) -> String {
    let what = if err.is_redirect() {
        "too many redirects"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper-util's "client error (Connect)" names a layer, not a cause.
        if !text.starts_with("client error (") && !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}

/// Phase 1: sends the request until an answer meets `expect`, waiting [`retry_delay`] between
/// attempts. Attempts start until `readiness_timeout` has passed (the last one at that moment at
/// the latest) and each may take the whole `request_timeout`, so the phase ends within their sum.
pub async fn await_ready(
    transport: &Transport,
    request: &Request,
    expect: &Expect,
    readiness_timeout: Duration,
    request_timeout: Duration,
) -> Readiness {
    let started = Instant::now();
    let deadline = started + readiness_timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failure = match transport.send(request, request_timeout).await {
            Ok((status, body)) => judge(expect, status, &body).err(),
            Err(why) => Some(why),
        };
        let Some(failure) = failure else {
            return Readiness {
                ready: true,
                attempts,
                elapsed_ms: started.elapsed().as_millis(),
                last_failure: None,
            };
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Readiness {
                ready: false,
                attempts,
                elapsed_ms: started.elapsed().as_millis(),
                last_failure: Some(failure),
            };
        }
        tokio::time::sleep(retry_delay(attempts).min(remaining)).await;
    }
}

/// How much to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Requests(u64),
    For(Duration),
}

/// What the sampler measured, before statistics.
#[derive(Debug, Default)]
pub struct Sample {
    pub requests: u64,
    pub errors: u64,
    /// Latency of every answered request.
    pub latencies: Vec<Duration>,
    pub reasons: HashMap<String, u64>,
    pub elapsed: Duration,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        for (reason, n) in other.reasons {
            *self.reasons.entry(reason).or_default() += n;
        }
    }

    /// Statistics for the report (and the SLO gate's figures).
    pub fn stats(mut self, concurrency: u32) -> (SampleStats, slo::Latencies) {
        let latencies = slo::latencies(&mut self.latencies);
        let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
        let mut reasons: Vec<ErrorCount> = self
            .reasons
            .into_iter()
            .map(|(reason, count)| ErrorCount { reason, count })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        reasons.truncate(MAX_REASONS);
        let seconds = self.elapsed.as_secs_f64();
        let stats = SampleStats {
            requests: self.requests,
            errors: self.errors,
            error_rate_percent: slo::error_rate(self.errors, self.requests),
            concurrency,
            elapsed_ms: (seconds * 1e6).round() / 1e3,
            throughput_rps: if seconds > 0.0 {
                self.requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(latencies.p50),
            p95_ms: ms(latencies.p95),
            p99_ms: ms(latencies.p99),
            min_ms: ms(latencies.min),
            max_ms: ms(latencies.max),
            mean_ms: ms(latencies.mean),
            error_reasons: reasons,
        };
        (stats, latencies)
    }
}

/// Phase 2: `concurrency` workers send the request until `amount` is done; every answer is
/// judged, its latency recorded.
///
/// Each worker is a task of its own, so the sampler uses every core the runtime has, and
/// keeps one connection busy, like `hey -c` does. Latency is measured from just before the
/// request is sent until its body has been read.
pub async fn sample(
    transport: Arc<Transport>,
    request: Arc<Request>,
    expect: Arc<Expect>,
    amount: Amount,
    concurrency: u32,
    request_timeout: Duration,
) -> Sample {
    let started = Instant::now();
    let tickets = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    let workers_wanted = match amount {
        Amount::Requests(n) => u64::from(concurrency.max(1)).min(n.max(1)),
        Amount::For(_) => u64::from(concurrency.max(1)),
    };
    for _ in 0..workers_wanted {
        let (transport, request, expect, tickets) = (
            transport.clone(),
            request.clone(),
            expect.clone(),
            tickets.clone(),
        );
        workers.spawn(async move {
            let mut mine = Sample::default();
            loop {
                let more = match amount {
                    Amount::Requests(n) => tickets.fetch_add(1, Ordering::Relaxed) < n,
                    Amount::For(d) => started.elapsed() < d,
                };
                if !more {
                    break;
                }
                let sent = Instant::now();
                let outcome = transport.send(&request, request_timeout).await;
                mine.requests += 1;
                let failure = match outcome {
                    Ok((status, body)) => {
                        mine.latencies.push(sent.elapsed());
                        judge(&expect, status, &body).err()
                    }
                    Err(why) => Some(why),
                };
                if let Some(why) = failure {
                    mine.errors += 1;
                    *mine.reasons.entry(why).or_default() += 1;
                }
            }
            mine
        });
    }
    let mut total = Sample::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(part) => total.merge(part),
            // A worker cannot panic short of a bug; its requests are lost, not the sample.
            Err(e) => {
                *total
                    .reasons
                    .entry(format!("sampler worker failed: {e}"))
                    .or_default() += 1;
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(status: u16, body: Option<&str>, json: &[(&str, Value)]) -> Expect {
        Expect {
            status,
            body: body.map(str::to_string),
            json: json
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn judging_answers() {
        let health = r#"{"status":"ok","checks":{"db":"up"},"items":[{"id":3}],"uptime":12.5}"#;
        // (case, expectations, status, body, verdict)
        type Case<'a> = (&'a str, Expect, u16, &'a str, Result<(), &'a str>);
        let cases: &[Case] = &[
            ("status only", expect(200, None, &[]), 200, "", Ok(())),
            (
                "wrong status quotes the body",
                expect(200, None, &[]),
                503,
                "upstream connect error\n",
                Err("status 503, expected 200: upstream connect error"),
            ),
            (
                "wrong status, empty body",
                expect(204, None, &[]),
                200,
                "",
                Err("status 200, expected 204"),
            ),
            (
                "body substring",
                expect(200, Some("\"ok\""), &[]),
                200,
                health,
                Ok(()),
            ),
            (
                "body substring missing",
                expect(200, Some("healthy"), &[]),
                200,
                health,
                Err("the body does not contain \"healthy\""),
            ),
            (
                "JSON fields by dotted path",
                expect(
                    200,
                    None,
                    &[
                        ("status", json!("ok")),
                        ("checks.db", json!("up")),
                        ("items.0.id", json!(3.0)),
                        ("uptime", json!(12.5)),
                    ],
                ),
                200,
                health,
                Ok(()),
            ),
            (
                "JSON field with another value",
                expect(200, None, &[("checks.db", json!("up"))]),
                200,
                r#"{"checks":{"db":"down"}}"#,
                Err("JSON field `checks.db` is \"down\", expected \"up\""),
            ),
            (
                "JSON field missing",
                expect(200, None, &[("checks.cache", json!("up"))]),
                200,
                health,
                Err("JSON field `checks.cache` is missing"),
            ),
            (
                "a string is not a number",
                expect(200, None, &[("items.0.id", json!("3"))]),
                200,
                health,
                Err("JSON field `items.0.id` is 3, expected \"3\""),
            ),
            (
                "not JSON",
                expect(200, None, &[("status", json!("ok"))]),
                200,
                "OK",
                Err(
                    "the body is not JSON (expected value at line 1 column 1), expected fields in it",
                ),
            ),
        ];
        for (case, expect, status, body, want) in cases {
            let want = want.map_err(str::to_string);
            assert_eq!(
                judge(expect, *status, body.as_bytes()),
                want,
                "case: {case}"
            );
        }
    }

    #[test]
    fn a_long_body_is_cut_and_kept_on_one_line() {
        let body = format!("::error::forged\n{}", "x".repeat(5000));
        let why = judge(&expect(200, None, &[]), 500, body.as_bytes()).unwrap_err();
        assert!(!why.contains('\n'), "{why}");
        assert!(why.len() < 300, "{} bytes", why.len());
    }

    #[test]
    fn dotted_paths() {
        let doc = json!({"a": {"b": [10, {"c": true}]}, "x.y": 1});
        let cases: &[(&str, Option<Value>)] = &[
            ("a.b.0", Some(json!(10))),
            ("a.b.1.c", Some(json!(true))),
            ("a.b.2", None),
            ("a.b.first", None),
            ("a.b.0.z", None),
            ("x.y", None),
            ("missing", None),
        ];
        for (path, want) in cases {
            assert_eq!(lookup(&doc, path).cloned(), *want, "path: {path}");
        }
    }

    #[test]
    fn retry_delays_double_up_to_a_cap() {
        let got: Vec<u64> = (1..=8).map(|a| retry_delay(a).as_millis() as u64).collect();
        assert_eq!(got, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY);
    }
}
