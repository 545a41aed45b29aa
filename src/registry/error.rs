//! What can go wrong talking to a registry, as variants callers branch on (retry, hint, exit
//! code). The server's own words and status are kept, cleaned of anything that could forge a
//! workflow command.

use std::time::Duration;

use reqwest::StatusCode;

use crate::untrusted::server_text_within;

/// The longest piece of server text kept in a message: enough for a distribution error list,
/// short enough that an HTML error page does not flood the log.
pub(crate) const SERVER_TEXT_LIMIT: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry (or its token server) refused the credentials, or asked for credentials we
    /// do not have. `challenge` is the `WWW-Authenticate` header as received.
    #[error("registry answered {status}: {detail} (challenge: {challenge})")]
    Unauthorized {
        status: StatusCode,
        challenge: String,
        detail: String,
    },
    /// Signed in, but the identity may not do what was asked (`DENIED`, or a token that grants
    /// less than the requested scope).
    #[error("access denied for `{scope}`: {detail}")]
    Denied { scope: String, detail: String },
    /// The blob, manifest or tag does not exist.
    #[error("{what} not found: {detail}")]
    NotFound { what: String, detail: String },
    /// Any other error status. `retry_after` is the server's `Retry-After`, when it sent one.
    #[error("registry answered {status}: {detail}")]
    Status {
        status: StatusCode,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, timeout, a body cut short.
    #[error("request to {url} failed")]
    Connection {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The bytes do not hash to the digest they were named by: a corrupt source, or a registry
    /// that stored something else.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// The registry answered something the distribution protocol does not allow.
    #[error("unexpected answer from the registry: {0}")]
    Protocol(String),
    /// Reading the image from disk.
    #[error("reading {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether trying the same idempotent step again may succeed: 5xx, 429 (rate limits), 408
    /// and errors without an answer. Everything else (401, 403, 404, 400 …) fails the same way
    /// every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            Error::Connection { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status of a [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error for an unsuccessful response, with the server's words. `what` names the object
    /// for a 404 ("blob sha256:…").
    pub(crate) async fn from_response(response: reqwest::Response, what: &str) -> Error {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Self::from_parts(status, &headers, &body, what)
    }

    pub(crate) fn from_parts(
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &str,
        what: &str,
    ) -> Error {
        let detail = describe_body(status, body);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|t| server_text_within(t, SERVER_TEXT_LIMIT))
        };
        match status {
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                status,
                challenge: header("www-authenticate").unwrap_or_default(),
                detail,
            },
            StatusCode::FORBIDDEN => Error::Denied {
                scope: what.to_string(),
                detail,
            },
            StatusCode::NOT_FOUND => Error::NotFound {
                what: what.to_string(),
                detail,
            },
            _ => Error::Status {
                status,
                detail,
                retry_after: headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            },
        }
    }
}

/// `Retry-After` as RFC 9110 §10.2.3 gives it: a number of seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, std::time::SystemTime::now())
}

/// [`parse_retry_after`] with the clock passed in; a date in the past means "now".
fn parse_retry_after_at(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The distribution error list (`{"errors":[{"code":"DENIED","message":"…"}]}`) as
/// `DENIED: …`, else the body itself, else the status reason; always cleaned and cut.
fn describe_body(status: StatusCode, body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_str::<Errors>(body) {
        Ok(list) if !list.errors.is_empty() => list
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ if !body.trim().is_empty() => body.trim().to_string(),
        _ => status.canonical_reason().unwrap_or("no reason").to_string(),
    };
    server_text_within(&text, SERVER_TEXT_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn distribution_errors_keep_code_and_message() {
        let body = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}"#;
        let err = Error::from_parts(StatusCode::FORBIDDEN, &HeaderMap::new(), body, "x");
        assert_eq!(
            err.to_string(),
            "access denied for `x`: DENIED: requested access to the resource is denied"
        );
    }

    #[test]
    fn server_text_cannot_start_a_workflow_command() {
        let text = server_text_within("oops\n::error::forged\r\n", SERVER_TEXT_LIMIT);
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        let long = server_text_within(&"é".repeat(1000), SERVER_TEXT_LIMIT);
        assert_eq!(
            long.chars().count(),
            SERVER_TEXT_LIMIT + 1,
            "cut by character, then `…`"
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 07:00:00 GMT").unwrap();
        let at = |v| parse_retry_after_at(v, now);
        assert_eq!(at("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            at("Tue, 24 Nov 2026 07:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Tue, 24 Nov 2026 06:59:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("soon"), None);
    }

    #[test]
    fn retry_after_is_read_from_429() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let err = Error::from_parts(StatusCode::TOO_MANY_REQUESTS, &headers, "", "x");
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        let err = Error::from_parts(StatusCode::BAD_REQUEST, &headers, "", "x");
        assert!(!err.is_retryable());
    }
}
