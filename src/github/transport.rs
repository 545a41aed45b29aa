//! One request to GitHub, with our retry policy around octocrab's raw methods.
//!
//! octocrab is built without its `retry` feature (Cargo.toml), so it sends each request exactly
//! once; every retry happens here, where the method is known:
//!
//! - 5xx and connection errors: retried with exponential backoff for idempotent calls only (GET,
//!   PUT, DELETE, PATCH of a known URL). A POST is never resent then: GitHub may have acted on
//!   it, and a second `POST /deployments` makes a second deployment.
//! - Rate limits (429; 403 with `x-ratelimit-remaining: 0`, a `retry-after` header or a
//!   "secondary rate limit" message): GitHub did not act on the request, so any call, a POST
//!   too, is resent after waiting as the headers say (protocols.md §5), as long as the waits add
//!   up to at most `max_rate_limit_wait`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;

use super::{GitHubError, RetrySettings};

/// What GitHub answered: any status, the caller decides.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How long to wait before resending a rate-limited request, or `None` when the answer is not
/// a rate limit. Pure: `now` is seconds since the epoch, `attempt` counts earlier rate-limit
/// waits of this request, `message` is GitHub's JSON `message` if any.
///
/// GitHub's rules (protocols.md §5): honour `retry-after`; else when `x-ratelimit-remaining` is
/// 0 wait until `x-ratelimit-reset`; else (a secondary limit without hints) back off at least
/// a minute, doubling: `60 × base_delay × 2^attempt`, which is 60 s, 120 s … with the default
/// one-second base and short with the small base tests use.
pub(crate) fn rate_limit_wait(
    status: u16,
    headers: &HeaderMap,
    message: &str,
    now: u64,
    attempt: u32,
    settings: &RetrySettings,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after");
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let secondary = message.to_ascii_lowercase().contains("rate limit");
    let limited =
        status == 429 || (status == 403 && (exhausted || retry_after.is_some() || secondary));
    if !limited {
        return None;
    }
    if let Some(value) = retry_after {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            let at = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            return Some(Duration::from_secs(at.saturating_sub(now)));
        }
    }
    if exhausted
        && let Some(reset) = header("x-ratelimit-reset").and_then(|r| r.parse::<u64>().ok())
    {
        // The reset is a whole second; the window opens at the end of it. One more second keeps
        // clock skew between us and GitHub from sending the request a moment too early.
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    Some(
        settings
            .base_delay
            .saturating_mul(60)
            .saturating_mul(1u32 << attempt.min(10)),
    )
}

/// The backoff before retry `attempt` (0 = first) of an idempotent call after a 5xx or a
/// connection error: `base_delay × 2^attempt`.
pub(crate) fn backoff(settings: &RetrySettings, attempt: u32) -> Duration {
    settings.base_delay.saturating_mul(1u32 << attempt.min(10))
}

/// Whether a failed call may be sent again: only methods whose repetition has the same effect.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::PATCH
    )
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// GitHub's `message` from an error body, `""` when there is none.
pub(crate) fn json_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// The longest server text we quote in an error.
const MAX_QUOTED: usize = 500;

/// GitHub's words from an error body on one line: `message`, and for a 422 the `errors[]`
/// details (`Validation Failed: reviewers[0].id: invalid`). A body that is not GitHub's JSON is
/// quoted, cut to a length. Server text is untrusted: line breaks and control characters become
/// spaces, so it cannot start a workflow command line (`::`) on its own.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let mut text = map
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let details: Vec<String> = map
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| errors.iter().map(error_detail).collect())
                .unwrap_or_default();
            if !details.is_empty() {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&details.join("; "));
            }
            if text.is_empty() {
                serde_json::to_string(&map).unwrap_or_default()
            } else {
                text
            }
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let text = one_line(&text);
    if text.is_empty() {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned()
    } else {
        cut(&text, MAX_QUOTED)
    }
}

/// One entry of a 422's `errors`: a string, or `{resource, field, code, message}`.
fn error_detail(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(e) => {
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
            let location = match (text("resource"), text("field")) {
                ("", "") => String::new(),
                ("", field) => format!("{field}: "),
                (resource, "") => format!("{resource}: "),
                (resource, field) => format!("{resource}.{field}: "),
            };
            let what = if text("message").is_empty() {
                text("code")
            } else {
                text("message")
            };
            format!("{location}{what}")
        }
        other => other.to_string(),
    }
}

/// Whitespace runs and control characters collapsed into single spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) use crate::untrusted::cut;

/// An octocrab error and its causes on one line (its `Display` of some variants appends a
/// backtrace after a blank line, which is cut off).
fn transport_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let text = text
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    one_line(&parts.join(": "))
}

/// Sends `method path` (path and query, relative to the API URL) with an optional JSON body,
/// under the retry policy above. Returns every answer that is not retried, error statuses
/// included. `sent` counts every request put on the wire, retries included.
pub(crate) async fn send<B: Serialize + ?Sized>(
    client: &octocrab::Octocrab,
    settings: &RetrySettings,
    sent: &AtomicU64,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<Answer, GitHubError> {
    let mut server_attempts = 0u32;
    let mut rate_attempts = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        sent.fetch_add(1, Ordering::Relaxed);
        let outcome = send_once(client, &method, path, body).await;
        let answer = match outcome {
            Ok(answer) => answer,
            Err(message) => {
                if is_idempotent(&method) && server_attempts < settings.retries {
                    let delay = backoff(settings, server_attempts);
                    server_attempts += 1;
                    crate::say!(
                        "GitHub: {method} {path}: {message}; retrying in {:.1} s ({server_attempts}/{})",
                        delay.as_secs_f64(),
                        settings.retries
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(GitHubError::Transport {
                    method: method.to_string(),
                    path: path.to_owned(),
                    message,
                });
            }
        };
        let message = json_message(&answer.body);
        if let Some(wait) = rate_limit_wait(
            answer.status,
            &answer.headers,
            &message,
            now_epoch(),
            rate_attempts,
            settings,
        ) {
            if waited + wait > settings.max_rate_limit_wait {
                return Err(GitHubError::RateLimited {
                    method: method.to_string(),
                    path: path.to_owned(),
                    reset: reset_text(&answer.headers, wait),
                });
            }
            rate_attempts += 1;
            waited += wait;
            crate::say!(
                "GitHub: {method} {path}: rate limited ({}); waiting {:.1} s before retrying",
                answer.status,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            continue;
        }
        if answer.status >= 500 && is_idempotent(&method) && server_attempts < settings.retries {
            let delay = backoff(settings, server_attempts);
            server_attempts += 1;
            crate::say!(
                "GitHub: {method} {path}: {} {}; retrying in {:.1} s ({server_attempts}/{})",
                answer.status,
                error_message(answer.status, &answer.body),
                delay.as_secs_f64(),
                settings.retries
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        return Ok(answer);
    }
}

/// When a rate limit we will not wait for ends: `x-ratelimit-reset` as an HTTP date, else "in
/// N s".
fn reset_text(headers: &HeaderMap, wait: Duration) -> String {
    headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|epoch| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(epoch)))
        .unwrap_or_else(|| format!("in {} s", wait.as_secs()))
}

/// One request through octocrab's raw methods; `Err` is a connection-level failure (no answer,
/// or the body broke off), as text.
async fn send_once<B: Serialize + ?Sized>(
    client: &octocrab::Octocrab,
    method: &Method,
    path: &str,
    body: Option<&B>,
) -> Result<Answer, String> {
    let response = match *method {
        Method::GET => client._get(path).await,
        Method::POST => client._post(path, body).await,
        Method::PUT => client._put(path, body).await,
        Method::PATCH => client._patch(path, body).await,
        Method::DELETE => client._delete(path, body).await,
        _ => unreachable!("the client only sends GET, POST, PUT, PATCH and DELETE"),
    }
    .map_err(|e| transport_message(&e))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| transport_message(&e))?
        .to_bytes();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn settings() -> RetrySettings {
        RetrySettings::default()
    }

    const NOW: u64 = 1_700_000_000;

    /// (case, status, headers, GitHub's message, earlier waits, expected wait in seconds).
    type Case<'a> = (&'a str, u16, HeaderMap, &'a str, u32, Option<u64>);

    /// Rate-limit decisions from GitHub's headers.
    #[test]
    fn rate_limit_waits_follow_githubs_headers() {
        let reset = (NOW + 30).to_string();
        let cases: Vec<Case> = vec![
            (
                "429 with retry-after",
                429,
                headers(&[("retry-after", "7")]),
                "",
                0,
                Some(7),
            ),
            (
                "403 with retry-after",
                403,
                headers(&[("retry-after", "2")]),
                "",
                0,
                Some(2),
            ),
            (
                "403 primary limit waits until reset",
                403,
                headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset),
                ]),
                "API rate limit exceeded",
                0,
                Some(31),
            ),
            (
                "reset in the past waits a second",
                403,
                headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]),
                "",
                0,
                Some(1),
            ),
            (
                "429 without hints backs off a minute",
                429,
                headers(&[]),
                "",
                0,
                Some(60),
            ),
            ("and doubles", 429, headers(&[]), "", 2, Some(240)),
            (
                "secondary limit named in the message",
                403,
                headers(&[("x-ratelimit-remaining", "4000")]),
                "You have exceeded a secondary rate limit",
                0,
                Some(60),
            ),
            (
                "403 permission error is not a rate limit",
                403,
                headers(&[("x-ratelimit-remaining", "4000")]),
                "Resource not accessible by integration",
                0,
                None,
            ),
            (
                "500 is not a rate limit",
                500,
                headers(&[("retry-after", "3")]),
                "",
                0,
                None,
            ),
            (
                "200 is not",
                200,
                headers(&[("x-ratelimit-remaining", "0")]),
                "",
                0,
                None,
            ),
        ];
        for (case, status, headers, message, attempt, want) in cases {
            let got = rate_limit_wait(status, &headers, message, NOW, attempt, &settings());
            assert_eq!(got, want.map(Duration::from_secs), "case: {case}");
        }
    }

    #[test]
    fn retry_after_as_http_date() {
        let at = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(NOW + 12));
        let got = rate_limit_wait(
            429,
            &headers(&[("retry-after", &at)]),
            "",
            NOW,
            0,
            &settings(),
        );
        assert_eq!(got, Some(Duration::from_secs(12)));
    }

    #[test]
    fn only_idempotent_methods_are_retried_after_server_errors() {
        for m in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(is_idempotent(&m), "{m}");
        }
        assert!(!is_idempotent(&Method::POST));
    }

    /// octocrab's own retry layer (feature `retry`) would resend POSTs; it must stay off.
    #[test]
    fn octocrab_is_built_without_its_retry_feature() {
        let manifest = include_str!("../../Cargo.toml");
        let line = manifest
            .lines()
            .find(|l| l.trim_start().starts_with("octocrab"))
            .expect("octocrab is a dependency");
        assert!(line.contains("default-features = false"), "{line}");
        assert!(!line.contains("\"retry\""), "{line}");
    }

    #[test]
    fn error_messages_keep_githubs_words_on_one_line() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"Environment","field":"wait_timer","code":"invalid"},"reviewers must be at most 6"],"documentation_url":"https://docs.github.com"}"#;
        assert_eq!(
            error_message(422, body),
            "Validation Failed: Environment.wait_timer: invalid; reviewers must be at most 6"
        );
        assert_eq!(
            error_message(
                422,
                b"{\"message\":\"Invalid request.\\n\\nFor 'properties/ref', 5 is not a string.\"}"
            ),
            "Invalid request. For 'properties/ref', 5 is not a string."
        );
        assert_eq!(
            error_message(502, b"<html>\n::error::bad gateway</html>"),
            "<html> ::error::bad gateway</html>"
        );
        assert_eq!(error_message(404, b""), "Not Found");
    }

    #[test]
    fn status_errors_name_the_missing_permission() {
        let err = GitHubError::Status {
            method: "PUT".into(),
            path: "/repos/o/r/environments/production".into(),
            status: 403,
            message: "Resource not accessible by integration".into(),
            accepted_permissions: Some("administration=write".into()),
        };
        assert_eq!(
            err.to_string(),
            "PUT /repos/o/r/environments/production: 403 Resource not accessible by integration (the token needs: administration=write)"
        );
    }

    #[test]
    fn cut_counts_characters_and_marks_the_cut() {
        assert_eq!(cut("short", 140), "short");
        let long = "é".repeat(150);
        let got = cut(&long, 140);
        assert_eq!(got.chars().count(), 140);
        assert!(got.ends_with('…'));
        assert_eq!(cut(&"a".repeat(140), 140), "a".repeat(140));
    }
}
