//! `checks` (smoke, integration, soak) and `slo`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::read::*;
use crate::config::diagnostics::{Diagnostics, join};
use crate::config::model::*;
use crate::config::yaml::{Node, Value};

pub(super) fn decode_checks(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Checks> {
    let f = d.fields(node, path, &["smoke", "integration", "soak"])?;
    let smoke =
        opt(d, &f, "smoke", |d, n, p| Some(list(d, n, p, decode_smoke))).unwrap_or_default();
    let integration = opt(d, &f, "integration", |d, n, p| {
        Some(list(d, n, p, decode_integration))
    })
    .unwrap_or_default();
    let soak = opt(d, &f, "soak", |d, n, p| {
        let s = d.fields(n, p, &["duration", "maxRestarts"])?;
        let duration = s
            .required(d, "duration", "how long to watch the new pods")
            .and_then(|n| duration(d, n, &s.path("duration")));
        let max_restarts = opt(d, &s, "maxRestarts", |d, n, p| uint(d, n, p, 0, 1000)).unwrap_or(0);
        Some(Soak {
            duration: duration?,
            max_restarts: max_restarts as u32,
        })
    });
    Some(Checks {
        smoke,
        integration,
        soak,
    })
}

fn decode_smoke(d: &mut Diagnostics, node: &Node, path: &str) -> Option<SmokeCheck> {
    let f = d.fields(
        node,
        path,
        &[
            "name",
            "url",
            "path",
            "via",
            "service",
            "method",
            "headers",
            "expectStatus",
            "expectBody",
            "expectJson",
            "samples",
            "concurrency",
            "requestTimeout",
            "readinessTimeout",
            "caFile",
            "duration",
            "maxRedirects",
        ],
    )?;
    let name = req_string(d, &f, "name", "a name for the check");
    let url = opt(d, &f, "url", string);
    let check_path = opt(d, &f, "path", string);
    let via = opt(d, &f, "via", |d, n, p| {
        one_of(
            d,
            n,
            p,
            &[
                ("url", CheckRoute::Url),
                ("service-proxy", CheckRoute::ServiceProxy),
            ],
        )
    })
    .unwrap_or_default();
    let service = opt(d, &f, "service", string);
    let method = opt(d, &f, "method", |d, n, p| {
        let m = string(d, n, p)?;
        let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        if known.contains(&m.as_str()) {
            Some(m)
        } else {
            d.error(
                n.pos,
                p,
                format!(
                    "expected an HTTP method ({}), found {m:?}",
                    known.join(", ")
                ),
            );
            None
        }
    })
    .unwrap_or_else(|| "GET".to_string());
    let headers = opt(d, &f, "headers", |d, n, p| {
        let entries = map_entries(d, n, p, "a mapping of header names to values")?;
        let mut headers = BTreeMap::new();
        for (k, v) in entries {
            let key = k.scalar().unwrap_or_default().to_string();
            let field = join(p, &key);
            let value = match &v.value {
                Value::Map(_) => d.fields(v, &field, &["fromEnv"]).and_then(|h| {
                    h.required(
                        d,
                        "fromEnv",
                        "the environment variable holding the secret value",
                    )
                    .and_then(|n| string(d, n, &h.path("fromEnv")))
                    .map(HeaderValue::FromEnv)
                }),
                _ => string(d, v, &field).map(HeaderValue::Plain),
            };
            if let Some(value) = value {
                headers.insert(key, value);
            }
        }
        Some(headers)
    })
    .unwrap_or_default();
    let expect_status =
        opt(d, &f, "expectStatus", |d, n, p| uint(d, n, p, 100, 599)).unwrap_or(200) as u16;
    let expect_body = opt(d, &f, "expectBody", string);
    let expect_json = opt(d, &f, "expectJson", |d, n, p| {
        let entries = map_entries(d, n, p, "a mapping of JSON paths to values")?;
        Some(
            entries
                .iter()
                .map(|(k, v)| (k.scalar().unwrap_or_default().to_string(), v.to_json()))
                .collect(),
        )
    })
    .unwrap_or_default();
    let samples = opt(d, &f, "samples", |d, n, p| uint(d, n, p, 1, 100_000)).unwrap_or(20) as u32;
    let concurrency =
        opt(d, &f, "concurrency", |d, n, p| uint(d, n, p, 1, 1000)).unwrap_or(4) as u32;
    let request_timeout = opt(d, &f, "requestTimeout", duration).unwrap_or(Duration::from_secs(10));
    let readiness_timeout =
        opt(d, &f, "readinessTimeout", duration).unwrap_or(Duration::from_secs(120));
    let ca_file = opt(d, &f, "caFile", string).map(PathBuf::from);
    let sample_for = opt(d, &f, "duration", duration);
    if sample_for.is_some_and(|s| s.is_zero())
        && let Some(n) = f.get("duration")
    {
        d.error(
            n.pos,
            &f.path("duration"),
            "expected a sampling duration of more than zero",
        );
    }
    // reqwest's and curl's habit: 10 redirects is plenty for any health endpoint.
    let max_redirects =
        opt(d, &f, "maxRedirects", |d, n, p| uint(d, n, p, 0, 20)).unwrap_or(10) as u32;
    if url.is_some() && check_path.is_some() {
        d.error(node.pos, path, "give either `url` or `path`, not both");
    }
    if url.is_none() && check_path.is_none() {
        d.error(
            node.pos,
            path,
            "missing `url` (a full URL) or `path` (appended to the environment's url)",
        );
    }
    if via == CheckRoute::ServiceProxy && url.is_some() {
        d.error(
            node.pos,
            path,
            "`via: service-proxy` takes a `path`, not a `url`",
        );
    }
    Some(SmokeCheck {
        name: name?,
        url,
        path: check_path,
        via,
        service,
        method,
        headers,
        expect_status,
        expect_body,
        expect_json,
        samples,
        concurrency,
        request_timeout,
        readiness_timeout,
        ca_file,
        duration: sample_for,
        max_redirects,
        pos: node.pos,
    })
}

fn decode_integration(d: &mut Diagnostics, node: &Node, path: &str) -> Option<IntegrationCheck> {
    let f = d.fields(
        node,
        path,
        &[
            "name",
            "image",
            "command",
            "args",
            "env",
            "serviceAccount",
            "timeout",
        ],
    )?;
    let name = req_string(d, &f, "name", "a name for the check");
    let image = opt(d, &f, "image", string);
    let command = opt(d, &f, "command", string_list).unwrap_or_default();
    let args = opt(d, &f, "args", string_list).unwrap_or_default();
    let env = opt(d, &f, "env", string_map).unwrap_or_default();
    let service_account = opt(d, &f, "serviceAccount", string);
    let timeout = opt(d, &f, "timeout", duration).unwrap_or(Duration::from_secs(600));
    Some(IntegrationCheck {
        name: name?,
        image,
        command,
        args,
        env,
        service_account,
        timeout,
        pos: node.pos,
    })
}

pub(super) fn decode_slo(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Slo> {
    let f = d.fields(
        node,
        path,
        &["p95Latency", "p99Latency", "errorRate", "uptime"],
    )?;
    Some(Slo {
        p95_latency: opt(d, &f, "p95Latency", duration),
        p99_latency: opt(d, &f, "p99Latency", duration),
        error_rate: opt(d, &f, "errorRate", percent),
        uptime: opt(d, &f, "uptime", percent),
    })
}
