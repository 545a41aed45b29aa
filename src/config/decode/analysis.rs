//! `analysis`: Prometheus queries with bounds, evaluated after a rollout and at every canary
//! step.

use std::collections::HashMap;
use std::time::Duration;

use super::read::*;
use crate::config::diagnostics::{Diagnostics, Fields, join};
use crate::config::model::*;
use crate::config::units::format_duration;
use crate::config::yaml::{Node, Pos, Value};

/// `analysis`; `None` as well when it declares no analysis at all (`analysis: {}`), so that
/// `Environment::analysis` is `Some` only when there is something to evaluate.
pub(super) fn decode_analysis(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Analysis> {
    let f = d.fields(node, path, &["prometheus"])?;
    let prometheus = opt(d, &f, "prometheus", decode_prometheus)?;
    Some(Analysis {
        prometheus: Some(prometheus),
    })
}

fn decode_prometheus(d: &mut Diagnostics, node: &Node, path: &str) -> Option<PrometheusAnalysis> {
    let f = d.fields(node, path, &["url", "window", "onInconclusive", "queries"])?;
    let url = f
        .required(
            d,
            "url",
            "the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`",
        )
        .and_then(|n| prometheus_url(d, n, &f.path("url")));
    let window = opt(d, &f, "window", duration);
    if window.is_some_and(|w| w.is_zero())
        && let Some(n) = f.get("window")
    {
        d.error(
            n.pos,
            &f.path("window"),
            "expected an analysis window of more than zero",
        );
    }
    let on_inconclusive = opt(d, &f, "onInconclusive", |d, n, p| {
        one_of(
            d,
            n,
            p,
            &[
                ("fail", OnInconclusive::Fail),
                ("pass", OnInconclusive::Pass),
            ],
        )
    });
    let queries = f
        .required(d, "queries", "the PromQL queries with their bounds")
        .and_then(|n| decode_queries(d, n, &f.path("queries")));
    Some(PrometheusAnalysis {
        url: url?,
        queries: queries?,
        on_inconclusive: on_inconclusive.unwrap_or_default(),
        window: window.unwrap_or(DEFAULT_ANALYSIS_WINDOW),
        pos: node.pos,
    })
}

/// The base URL the API paths (`/api/v1/query_range`) are appended to: no query or fragment.
fn prometheus_url(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    let url = http_url(d, node, path)?;
    if url.contains(['?', '#']) {
        d.error(
            node.pos,
            path,
            format!("give the base URL of the Prometheus HTTP API, without a query or fragment, found {url:?}"),
        );
        return None;
    }
    Some(url)
}

/// The queries, or `None` when any is wrong (reported); names are unique, since they label the
/// numbers in the report.
fn decode_queries(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<MetricQuery>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            path,
            format!("expected a list of queries, found {}", node.describe()),
        );
        return None;
    };
    let count = items.len();
    if count == 0 {
        d.error(node.pos, path, "give at least one query");
        return None;
    }
    let queries = list(d, node, path, decode_query);
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    let mut valid = queries.len() == count;
    for q in &queries {
        let name_pos = q.name_pos;
        if let Some(first) = seen.insert(&q.query.name, name_pos) {
            d.error(
                name_pos,
                &format!("{path}.{}.name", q.query.name),
                format!(
                    "duplicate query name `{}` (first at line {})",
                    q.query.name, first.line
                ),
            );
            valid = false;
        }
    }
    valid.then(|| queries.into_iter().map(|q| q.query).collect())
}

struct DecodedQuery {
    query: MetricQuery,
    name_pos: Pos,
}

fn decode_query(d: &mut Diagnostics, node: &Node, path: &str) -> Option<DecodedQuery> {
    let f = d.fields(node, path, &["name", "query", "max", "min", "for"])?;
    let name = req_string(d, &f, "name", "a name for the query, e.g. `error-rate`");
    if let Some(name) = &name
        && !is_query_name(name)
        && let Some(n) = f.get("name")
    {
        d.error(
            n.pos,
            &f.path("name"),
            format!(
                "{name:?} is not a valid query name: a letter, then letters, digits, `-` and `_`"
            ),
        );
        return None;
    }
    let query = req_string(d, &f, "query", "the PromQL expression");
    if let Some(text) = &query
        && let Err(why) = check_placeholders(text)
        && let Some(n) = f.get("query")
    {
        d.error(n.pos, &f.path("query"), why);
        return None;
    }
    let max = opt(d, &f, "max", number);
    let min = opt(d, &f, "min", number);
    let for_ = opt(d, &f, "for", duration).unwrap_or(Duration::ZERO);
    let bound = match (f.get("max"), f.get("min")) {
        (Some(_), Some(_)) => {
            d.error(
                node.pos,
                path,
                "give either `max` (breached above) or `min` (breached below), not both",
            );
            None
        }
        (None, None) => {
            d.error(
                node.pos,
                path,
                "missing the bound: `max` (breached above) or `min` (breached below)",
            );
            None
        }
        (Some(_), None) => max.map(Bound::Max),
        (None, Some(_)) => min.map(Bound::Min),
    };
    let name_pos = f.get("name").map_or(node.pos, |n| n.pos);
    Some(DecodedQuery {
        query: MetricQuery {
            name: name?,
            query: query?,
            bound: bound?,
            for_,
            pos: node.pos,
        },
        name_pos,
    })
}

fn is_query_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Every `{{…}}` in a query is one of [`QUERY_PLACEHOLDERS`], written without spaces, so that
/// expanding it cannot leave template text for Prometheus to reject.
fn check_placeholders(query: &str) -> Result<(), String> {
    let known = QUERY_PLACEHOLDERS
        .iter()
        .map(|p| format!("`{{{{{p}}}}}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "unclosed placeholder `{}`: expected one of {known}",
                &rest[start..]
            ));
        };
        let name = &after[..end];
        if !QUERY_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{{{name}}}}}`: expected one of {known}"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// A query's `for` must fit in the window it is evaluated over (each canary step's pause, or
/// `window` otherwise), or its bound could never count as broken.
pub(super) fn check_for_fits_windows(
    d: &mut Diagnostics,
    f: &Fields<'_>,
    strategy: &Strategy,
    analysis: Option<&Analysis>,
) {
    let Some(prometheus) = analysis.and_then(|a| a.prometheus.as_ref()) else {
        return;
    };
    let (window, what) = match strategy {
        Strategy::Canary(c) => match c.steps.iter().map(|s| s.pause).min() {
            Some(pause) => (pause, "the shortest canary pause"),
            None => return,
        },
        _ => (prometheus.window, "the analysis window"),
    };
    let queries = f
        .get("analysis")
        .and_then(|n| n.get("prometheus"))
        .and_then(|n| n.get("queries"));
    for (i, q) in prometheus.queries.iter().enumerate() {
        if q.for_ > window {
            let pos = queries
                .and_then(|n| match &n.value {
                    Value::Seq(items) => items.get(i),
                    _ => None,
                })
                .and_then(|n| n.get("for"))
                .map_or(q.pos, |n| n.pos);
            d.error(
                pos,
                &join(
                    &f.path("analysis.prometheus.queries"),
                    &format!("{}.for", q.name),
                ),
                format!(
                    "`for: {}` is longer than {what} ({}): the bound could never count as broken",
                    format_duration(q.for_),
                    format_duration(window)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::decode::{assert_one_error_each, decode_test_environment as decode};

    const ANALYSIS: &str = r#"analysis:
  prometheus:
    url: http://prometheus.monitoring:9090
    queries:
      - name: error-rate
        query: sum(rate(http_requests_total{namespace="{{namespace}}",code=~"5.."}[1m]))
        max: 0.01
        for: 1m
      - name: availability
        query: avg(up{service="{{service}}", track="{{track}}"})
        min: 1"#;

    #[test]
    fn prometheus_analysis() {
        let env = decode(ANALYSIS).unwrap();
        let p = env.analysis.unwrap().prometheus.unwrap();
        assert_eq!(p.url, "http://prometheus.monitoring:9090");
        assert_eq!(p.window, DEFAULT_ANALYSIS_WINDOW);
        assert_eq!(p.on_inconclusive, OnInconclusive::Fail);
        let names: Vec<&str> = p.queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["error-rate", "availability"]);
        assert_eq!(p.queries[0].bound, Bound::Max(0.01));
        assert_eq!(p.queries[0].for_, Duration::from_secs(60));
        assert_eq!(p.queries[1].bound, Bound::Min(1.0));
        assert_eq!(p.queries[1].for_, Duration::ZERO);
        assert_eq!(p.queries[1].pos.line, 13);
        let body = format!("{ANALYSIS}\n    window: 10m\n    onInconclusive: pass");
        let p = decode(&body).unwrap().analysis.unwrap().prometheus.unwrap();
        assert_eq!(p.window, Duration::from_secs(600));
        assert_eq!(p.on_inconclusive, OnInconclusive::Pass);
        assert_eq!(decode("analysis: {}").unwrap().analysis, None);
    }

    #[test]
    fn bad_prometheus_analysis() {
        let at = "environments.testing.analysis.prometheus";
        let q = "[{ name: e, query: up, max: 1 }]";
        let inline = |fields: &str| format!("analysis: {{ prometheus: {{ {fields} }} }}");
        let listed = |items: &[&str]| {
            let mut body =
                String::from("analysis:\n  prometheus:\n    url: http://p:9090\n    queries:");
            for item in items {
                body.push_str(&format!("\n      - {item}"));
            }
            body
        };
        let table = [
            (
                inline(&format!("queries: {q}")),
                format!("5:29 {at}: missing required field `url`"),
            ),
            (
                inline("url: 'http://p:9090'"),
                format!("5:29 {at}: missing required field `queries`"),
            ),
            (
                inline("url: 'http://p:9090', queries: up"),
                format!("5:62 {at}.queries: expected a list of queries, found"),
            ),
            (
                inline("url: 'http://p:9090', queries: []"),
                format!("5:62 {at}.queries: give at least one query"),
            ),
            (
                inline(&format!("url: 'prometheus:9090', queries: {q}")),
                format!(
                    "5:36 {at}.url: expected an absolute http(s) URL, found \"prometheus:9090\""
                ),
            ),
            (
                inline(&format!("url: 'ftp://p', queries: {q}")),
                format!("5:36 {at}.url: expected an absolute http(s) URL, found \"ftp://p\""),
            ),
            (
                inline(&format!("url: 'http://p:9090/?x=1', queries: {q}")),
                format!(
                    "5:36 {at}.url: give the base URL of the Prometheus HTTP API, without a query or fragment"
                ),
            ),
            (
                inline(&format!("url: 'http://p', window: 0, queries: {q}")),
                format!("5:56 {at}.window: expected an analysis window of more than zero"),
            ),
            (
                inline(&format!(
                    "url: 'http://p', onInconclusive: skip, queries: {q}"
                )),
                format!("5:64 {at}.onInconclusive: expected one of `fail`, `pass`, found \"skip\""),
            ),
            (
                listed(&["{ name: errors, query: up, max: 1, min: 0 }"]),
                format!(
                    "9:13 {at}.queries.errors: give either `max` (breached above) or `min` (breached below), not both"
                ),
            ),
            (
                listed(&["{ name: errors, query: up }"]),
                format!(
                    "9:13 {at}.queries.errors: missing the bound: `max` (breached above) or `min` (breached below)"
                ),
            ),
            (
                listed(&["{ name: errors, query: up, max: lots }"]),
                format!("9:45 {at}.queries.errors.max: expected a number, found"),
            ),
            (
                listed(&["{ name: errors, query: up, maximum: 1 }"]),
                format!(
                    "9:40 {at}.queries.errors.maximum: unknown field `maximum` (expected one of: name, query, max, min, for)\n9:13 {at}.queries.errors: missing the bound"
                ),
            ),
            (
                listed(&["{ name: 'error rate', query: up, max: 1 }"]),
                format!(
                    "9:21 {at}.queries.error rate.name: \"error rate\" is not a valid query name"
                ),
            ),
            (
                listed(&[r#"{ name: errors, query: 'up{ns="{{ns}}"}', max: 1 }"#]),
                format!(
                    "9:36 {at}.queries.errors.query: unknown placeholder `{{{{ns}}}}`: expected one of `{{{{namespace}}}}`, `{{{{service}}}}`, `{{{{track}}}}`"
                ),
            ),
            (
                listed(&[r#"{ name: errors, query: 'up{ns="{{namespace"}', max: 1 }"#]),
                format!("9:36 {at}.queries.errors.query: unclosed placeholder"),
            ),
            (
                listed(&["{ name: errors, max: 1 }"]),
                format!(
                    "9:13 {at}.queries.errors: missing required field `query` (the PromQL expression)"
                ),
            ),
            (
                listed(&["{ name: errors, query: up, max: 1, for: 10m }"]),
                format!(
                    "9:53 {at}.queries.errors.for: `for: 10m` is longer than the analysis window (5m): the bound could never count as broken"
                ),
            ),
            (
                listed(&[
                    "{ name: errors, query: up, max: 1 }",
                    "{ name: errors, query: down, min: 1 }",
                ]),
                format!(
                    "10:21 {at}.queries.errors.name: duplicate query name `errors` (first at line 9)"
                ),
            ),
        ];
        assert_one_error_each(&table);
    }

    #[test]
    fn a_query_s_for_fits_the_shortest_canary_pause() {
        let body = format!(
            "strategy: canary\ncanary:\n  steps: [{{ weight: 50, pause: 10m }}, {{ weight: 100, pause: 30s }}]\n{ANALYSIS}"
        );
        assert_one_error_each(&[(body.clone(), "15:18 environments.testing.analysis.prometheus.queries.error-rate.for: `for: 1m` is longer than the shortest canary pause (30s)".to_string())]);
        assert!(decode(&body.replace("pause: 30s", "pause: 1m")).is_ok());
    }

    #[test]
    fn placeholders() {
        for (query, ok) in [
            ("up", true),
            (
                r#"up{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}"#,
                true,
            ),
            ("{{namespace}}{{namespace}}", true),
            (r#"up{a="{{ namespace }}"}"#, false),
            (r#"up{a="{{pod}}"}"#, false),
            (r#"up{a="{{namespace"}"#, false),
        ] {
            assert_eq!(check_placeholders(query).is_ok(), ok, "{query}");
        }
    }

    #[test]
    fn query_names() {
        for (name, ok) in [
            ("error-rate", true),
            ("p95_latency", true),
            ("cpu80", true),
            ("", false),
            ("5xx", false),
            ("error rate", false),
            ("a|b", false),
        ] {
            assert_eq!(is_query_name(name), ok, "{name:?}");
        }
    }
}
