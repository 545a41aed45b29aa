//! Registry sign-in: anonymous, Basic, and the distribution bearer-token flow (challenge →
//! token server → `Authorization: Bearer`), with several scopes in one token (a cross-repository
//! mount needs `pull` on the source and `push` on the target), tokens cached until shortly
//! before they expire.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::error::Error;
use super::error::SERVER_TEXT_LIMIT;
use crate::actions::{Console, Secret};
use crate::untrusted::server_text_within;

/// How the client proves who it is.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    /// A user name and password (htpasswd, ACR admin user, ACR scope-map token, a service
    /// principal's app id and secret), sent as Basic to the registry or its token server.
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token for the registry's token server (ACR's `/oauth2/exchange`
    /// result): access tokens are requested with `POST realm` and `grant_type=refresh_token`.
    RefreshToken(Secret),
}

/// The user name `docker login` uses with a refresh token (protocols.md §3).
pub const REFRESH_TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`; `None` for
    /// anything else.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `key="value", key=value` pairs; commas inside quotes (scope lists) are kept.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// An access token for a set of scopes, and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: Secret,
    /// Refresh after this instant: some seconds before the server's expiry.
    pub refresh_at: SystemTime,
    /// What the token grants, when it is a JWT with an `access` claim (distribution and ACR
    /// tokens are); `None` when it cannot be read.
    pub granted: Option<Vec<Access>>,
}

/// One `access` entry of a registry token: `{"type":"repository","name":"a/b","actions":["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// Distribution's default when the token server does not say (`expires_in` absent).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// When to refresh a token that lives `lifetime`: 30 s early, or at half its life for short ones,
/// so that a request started just before expiry is not refused halfway through an upload.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(30))
}

/// Fetches a token for `scopes` from the realm of a bearer challenge.
///
/// Anonymous and Basic use `GET realm?service=…&scope=…` (the scope parameter repeated); a
/// refresh token uses the OAuth2 form `POST realm` with `grant_type=refresh_token`
/// (protocols.md §3, step 4). The token is masked as soon as it is read.
///
/// # Errors
/// [`Error::Unauthorized`] when the token server refuses the credentials; [`Error::Status`] and
/// [`Error::Connection`] (retryable) when it fails.
pub async fn fetch_token(
    http: &super::http::Http,
    console: &Console,
    credentials: &Credentials,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> Result<Token, Error> {
    let request = match credentials {
        Credentials::RefreshToken(refresh) => {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ];
            if let Some(service) = service {
                form.push(("service", service));
            }
            for scope in scopes {
                form.push(("scope", scope));
            }
            http.post(realm).form(&form)
        }
        other => {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(service) = service {
                query.push(("service", service));
            }
            for scope in scopes {
                query.push(("scope", scope));
            }
            let request = http.get(realm).query(&query);
            match other {
                Credentials::Basic { username, password } => {
                    request.basic_auth(username, Some(password.expose()))
                }
                _ => request,
            }
        }
    };
    let response = request.send().await.map_err(|source| Error::Connection {
        url: realm.to_string(),
        source,
    })?;
    let status = response.status();
    if !status.is_success() {
        let err = Error::from_response(response, "token").await;
        return Err(match err {
            Error::Unauthorized {
                status,
                challenge,
                detail,
            } => Error::Unauthorized {
                status,
                challenge,
                detail: format!("the token server at {realm} refused the credentials: {detail}"),
            },
            Error::Denied { detail, .. } => Error::Denied {
                scope: scopes.join(" "),
                detail: format!("the token server at {realm} refused: {detail}"),
            },
            other => other,
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let body = response.bytes().await.map_err(|source| Error::Connection {
        url: realm.to_string(),
        source,
    })?;
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
        Error::Protocol(format!(
            "the token server at {realm} answered something other than a token ({e})"
        ))
    })?;
    let value = answer
        .access_token
        .or(answer.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Protocol(format!("the token server at {realm} sent no token")))?;
    let value = Secret::new(value, console);
    let claims = jwt_claims(value.expose());
    let now = SystemTime::now();
    let expires_at = claims
        .as_ref()
        .and_then(|c| c.get("exp"))
        .and_then(serde_json::Value::as_u64)
        .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
        .unwrap_or_else(|| {
            now + answer
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        });
    let lifetime = expires_at.duration_since(now).unwrap_or_default();
    let granted = claims
        .and_then(|c| c.get("access").cloned())
        .and_then(|a| serde_json::from_value::<Vec<Access>>(a).ok());
    Ok(Token {
        value,
        refresh_at: expires_at - refresh_margin(lifetime),
        granted,
    })
}

/// The claims of a JWT, read without checking the signature (the registry checks it; we only
/// look at the expiry and the granted access). `None` for anything that is not a JWT.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The first requested `repository:name:actions` scope whose actions the token does not grant,
/// as `repository:name:action`. Token servers grant a subset of what was asked rather than
/// refuse (distribution, ACR), so this is how a missing push permission shows up.
pub fn missing_scope(requested: &[String], granted: &[Access]) -> Option<String> {
    for scope in requested {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for action in actions.split(',') {
            let ok = granted.iter().any(|a| {
                a.kind == kind
                    && a.name == name
                    && a.actions.iter().any(|g| g == action || g == "*")
            });
            if !ok {
                return Some(format!("{kind}:{name}:{action}"));
            }
        }
    }
    None
}

/// `Basic base64(user:password)`.
pub fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// The server's `WWW-Authenticate` header, cleaned for messages.
pub fn challenge_text(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(|t| server_text_within(t, SERVER_TEXT_LIMIT))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bearer_challenge_with_a_scope_list() {
        let c = Challenge::parse(
            r#"Bearer realm="https://acr.io/oauth2/token",service="acr.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://acr.io/oauth2/token".into(),
                service: Some("acr.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(
            Challenge::parse("Bearer service=x"),
            None,
            "a realm is required"
        );
    }

    #[test]
    fn a_token_granting_less_names_the_missing_action() {
        let granted = vec![Access {
            kind: "repository".into(),
            name: "web".into(),
            actions: vec!["pull".into()],
        }];
        let requested = vec!["repository:web:pull,push".to_string()];
        assert_eq!(
            missing_scope(&requested, &granted).as_deref(),
            Some("repository:web:push")
        );
        assert_eq!(
            missing_scope(&["repository:web:pull".into()], &granted),
            None
        );
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        assert_eq!(
            refresh_margin(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn reads_jwt_claims_without_verifying() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1700000000,"access":[]}"#);
        let claims = jwt_claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(claims["exp"], 1_700_000_000);
        assert!(jwt_claims("opaque-token").is_none());
    }
}
