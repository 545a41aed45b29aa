//! How a release reaches an environment: `strategy` with its `blueGreen` / `canary` settings,
//! and `analysis` (Prometheus queries with bounds).

use std::collections::HashMap;
use std::time::Duration;

use super::read::*;
use crate::config::diagnostics::{Diagnostics, Fields, join};
use crate::config::manifests::is_dns_subdomain;
use crate::config::model::*;
use crate::config::units::{self, format_duration};
use crate::config::yaml::{Node, Pos, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rolling,
    BlueGreen,
    Canary,
}

const KINDS: &[(&str, Kind)] = &[
    ("rolling", Kind::Rolling),
    ("blue-green", Kind::BlueGreen),
    ("canary", Kind::Canary),
];

/// `strategy`, `blueGreen` and `canary` of an environment. Settings of a strategy the environment
/// does not use are errors: they would silently do nothing.
pub(super) fn decode_strategy(d: &mut Diagnostics, f: &Fields<'_>) -> Strategy {
    let kind = opt(d, f, "strategy", |d, n, p| one_of(d, n, p, KINDS));
    let blue_green = opt(d, f, "blueGreen", decode_blue_green);
    let canary = opt(d, f, "canary", decode_canary);
    // A misspelt strategy is reported once, not again for its settings.
    let strategy_is_valid = kind.is_some() || f.get("strategy").is_none();
    let kind = kind.unwrap_or(Kind::Rolling);
    for (key, owner, word) in [
        ("blueGreen", Kind::BlueGreen, "blue-green"),
        ("canary", Kind::Canary, "canary"),
    ] {
        if strategy_is_valid
            && kind != owner
            && f.get(key).is_some()
            && let Some(pos) = key_pos(f.node, key)
        {
            let current = KINDS
                .iter()
                .find(|(_, k)| *k == kind)
                .map_or("", |(w, _)| w);
            d.error(
                pos,
                &f.path(key),
                format!(
                    "`{key}` applies to `strategy: {word}` only, and this environment's strategy is `{current}`"
                ),
            );
        }
    }
    match kind {
        Kind::Rolling => Strategy::Rolling,
        Kind::BlueGreen => Strategy::BlueGreen(blue_green.unwrap_or_default()),
        Kind::Canary => Strategy::Canary(canary.unwrap_or_default()),
    }
}

fn decode_blue_green(d: &mut Diagnostics, node: &Node, path: &str) -> Option<BlueGreen> {
    let f = d.fields(node, path, &["keepPrevious", "previewUrl"])?;
    let keep_previous = opt(d, &f, "keepPrevious", |d, n, p| {
        with_parser(d, n, p, |text| {
            if text.trim() == "until-next-promotion" {
                return Ok(KeepPrevious::UntilNextPromotion);
            }
            units::parse_duration(text)
                .map(KeepPrevious::For)
                .map_err(|_| {
                    format!(
                        "expected a duration such as `30m`, or `until-next-promotion`, found {text:?}"
                    )
                })
        })
    });
    let preview_url = opt(d, &f, "previewUrl", http_url);
    Some(BlueGreen {
        keep_previous: keep_previous.unwrap_or(BlueGreen::default().keep_previous),
        preview_url,
    })
}

fn decode_canary(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Canary> {
    let f = d.fields(node, path, &["steps", "trafficRouting"])?;
    let steps = opt(d, &f, "steps", decode_steps);
    let traffic_routing = opt(d, &f, "trafficRouting", decode_traffic_routing);
    Some(Canary {
        steps: steps.unwrap_or_else(|| Canary::default().steps),
        traffic_routing: traffic_routing.unwrap_or_default(),
    })
}

/// The steps, or `None` when any is wrong (reported). Weights rise strictly and end at 100: the
/// canary's last step carries all traffic before it replaces the stable release.
fn decode_steps(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<CanaryStep>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            path,
            format!(
                "expected a list of steps such as `- {{ weight: 10, pause: 2m }}`, found {}",
                node.describe()
            ),
        );
        return None;
    };
    if items.is_empty() {
        d.error(
            node.pos,
            path,
            "give at least one step; the last one has weight 100",
        );
        return None;
    }
    let mut steps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let step_path = format!("{path}[{i}]");
        let Some(f) = d.fields(item, &step_path, &["weight", "pause"]) else {
            continue;
        };
        let weight = f
            .required(
                d,
                "weight",
                "the canary's share of traffic in percent, 1 to 100",
            )
            .and_then(|n| uint(d, n, &f.path("weight"), 1, 100));
        let pause = opt(d, &f, "pause", duration);
        if pause.is_some_and(|p| p.is_zero())
            && let Some(n) = f.get("pause")
        {
            d.error(
                n.pos,
                &f.path("pause"),
                "a step's pause is its analysis window: give more than zero",
            );
            continue;
        }
        if let Some(weight) = weight {
            steps.push(CanaryStep {
                weight: weight as u32,
                pause: pause.unwrap_or(DEFAULT_CANARY_PAUSE),
                pos: item.pos,
            });
        }
    }
    if steps.len() != items.len() {
        return None;
    }
    let weight_pos = |i: usize| items[i].get("weight").map_or(items[i].pos, |n| n.pos);
    let mut valid = true;
    for (i, pair) in steps.windows(2).enumerate() {
        if pair[1].weight <= pair[0].weight {
            d.error(
                weight_pos(i + 1),
                &format!("{path}[{}].weight", i + 1),
                format!(
                    "weights must increase from step to step: {} follows {}",
                    pair[1].weight, pair[0].weight
                ),
            );
            valid = false;
        }
    }
    let last = steps.len() - 1;
    if steps[last].weight != 100 {
        d.error(
            weight_pos(last),
            &format!("{path}[{last}].weight"),
            format!(
                "the last step must have weight 100 (the canary takes all traffic before it replaces the stable release), found {}",
                steps[last].weight
            ),
        );
        valid = false;
    }
    valid.then_some(steps)
}

/// `replicas`, `ingress-nginx`, or `{ ingress-nginx: { ingress: NAME } }` to name the Ingress
/// when a service has several.
fn decode_traffic_routing(d: &mut Diagnostics, node: &Node, path: &str) -> Option<TrafficRouting> {
    if let Value::Map(_) = &node.value {
        let f = d.fields(node, path, &["ingress-nginx"])?;
        // `{ ingress-nginx: }` says the same as `ingress-nginx`.
        if node.get("ingress-nginx").is_some_and(Node::is_null) {
            return Some(TrafficRouting::IngressNginx { ingress: None });
        }
        let nginx = f.required(d, "ingress-nginx", "the ingress-nginx settings")?;
        let nginx_path = f.path("ingress-nginx");
        let n = d.fields(nginx, &nginx_path, &["ingress"])?;
        let ingress = opt(d, &n, "ingress", string);
        if let Some(name) = &ingress
            && !is_dns_subdomain(name)
            && let Some(value) = n.get("ingress")
        {
            d.error(
                value.pos,
                &n.path("ingress"),
                format!("{name:?} is not a valid Ingress name"),
            );
            return None;
        }
        return Some(TrafficRouting::IngressNginx { ingress });
    }
    one_of(
        d,
        node,
        path,
        &[
            ("replicas", TrafficRouting::Replicas),
            (
                "ingress-nginx",
                TrafficRouting::IngressNginx { ingress: None },
            ),
        ],
    )
}

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
    let count = match &node.value {
        Value::Seq(items) => items.len(),
        _ => 0,
    };
    let queries = list(d, node, path, decode_query);
    if count == 0 && matches!(node.value, Value::Seq(_)) {
        d.error(node.pos, path, "give at least one query");
        return None;
    }
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
    use crate::config::decode::decode_test_environment as decode;

    /// Decodes each body and checks that its errors start with the wanted `line:col field:
    /// message` lines (one per error); reports every case that differs at once.
    fn assert_one_error_each(cases: &[(String, String)]) {
        let mut failures = Vec::new();
        for (body, want) in cases {
            let got = match decode(body) {
                Ok(_) => "(accepted)".to_string(),
                Err(errors) => errors.join("\n"),
            };
            if !got.starts_with(want.as_str()) || got.lines().count() != want.lines().count() {
                failures.push(format!("{body}\n  want: {want}\n  got:  {got}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    }

    fn cases(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(body, want)| (body.to_string(), want.to_string()))
            .collect()
    }

    fn weights(c: &Canary) -> Vec<u32> {
        c.steps.iter().map(|s| s.weight).collect()
    }

    #[test]
    fn rolling_without_a_strategy() {
        let env = decode("replicas: 2").unwrap();
        assert_eq!(env.strategy, Strategy::Rolling);
        assert_eq!(env.analysis, None);
    }

    #[test]
    fn blue_green_settings_and_defaults() {
        let env = decode("strategy: blue-green").unwrap();
        assert_eq!(env.strategy, Strategy::BlueGreen(BlueGreen::default()));
        let env = decode(
            "strategy: blue-green
blueGreen: { keepPrevious: until-next-promotion, previewUrl: https://preview.example.com }",
        )
        .unwrap();
        let want = BlueGreen {
            keep_previous: KeepPrevious::UntilNextPromotion,
            preview_url: Some("https://preview.example.com".into()),
        };
        assert_eq!(env.strategy, Strategy::BlueGreen(want));
        let env = decode("strategy: blue-green\nblueGreen: { keepPrevious: 2h }").unwrap();
        let Strategy::BlueGreen(bg) = env.strategy else {
            panic!("blue-green")
        };
        let two_hours = KeepPrevious::For(Duration::from_secs(7200));
        assert_eq!(bg.keep_previous, two_hours);
    }

    #[test]
    fn canary_steps_and_routing() {
        let env = decode("strategy: canary").unwrap();
        assert_eq!(env.strategy, Strategy::Canary(Canary::default()));
        let env = decode(
            "strategy: canary
canary:
  steps:
    - { weight: 20, pause: 2m }
    - { weight: 100 }
  trafficRouting: { ingress-nginx: { ingress: web } }",
        )
        .unwrap();
        let Strategy::Canary(c) = env.strategy else {
            panic!("canary")
        };
        assert_eq!(weights(&c), [20, 100]);
        assert_eq!(c.steps[0].pause, Duration::from_secs(120));
        assert_eq!(c.steps[1].pause, DEFAULT_CANARY_PAUSE);
        assert_eq!(c.steps[0].pos.line, 8);
        let web = Some("web".to_string());
        assert_eq!(
            c.traffic_routing,
            TrafficRouting::IngressNginx { ingress: web }
        );
        let nginx = TrafficRouting::IngressNginx { ingress: None };
        for (routing, want) in [
            ("replicas", TrafficRouting::Replicas),
            ("ingress-nginx", nginx.clone()),
            ("{ ingress-nginx: }", nginx.clone()),
            ("{ ingress-nginx: {} }", nginx.clone()),
        ] {
            let body = format!("strategy: canary\ncanary: {{ trafficRouting: {routing} }}");
            let Strategy::Canary(c) = decode(&body).unwrap().strategy else {
                panic!("canary")
            };
            assert_eq!(c.traffic_routing, want, "trafficRouting: {routing}");
        }
    }

    #[test]
    fn bad_canary_steps() {
        let steps = "environments.testing.canary.steps";
        let table = [
            (
                "[]",
                "7:14 {steps}: give at least one step; the last one has weight 100",
            ),
            (
                "[{ weight: 0 }, { weight: 100 }]",
                "7:25 {steps}[0].weight: expected an integer from 1 to 100, found 0",
            ),
            (
                "[{ weight: 101 }]",
                "7:25 {steps}[0].weight: expected an integer from 1 to 100, found 101",
            ),
            (
                "[{ weight: 50 }, { weight: 25 }, { weight: 100 }]",
                "7:41 {steps}[1].weight: weights must increase from step to step: 25 follows 50",
            ),
            (
                "[{ weight: 50 }, { weight: 50 }, { weight: 100 }]",
                "7:41 {steps}[1].weight: weights must increase from step to step: 50 follows 50",
            ),
            (
                "[{ weight: 10 }, { weight: 50 }]",
                "7:41 {steps}[1].weight: the last step must have weight 100 (the canary takes all traffic before it replaces the stable release), found 50",
            ),
            (
                "[{ weight: 100, pause: 0 }]",
                "7:37 {steps}[0].pause: a step's pause is its analysis window: give more than zero",
            ),
            (
                "[{ pause: 1m }]",
                "7:15 {steps}[0]: missing required field `weight`",
            ),
            (
                "[{ weight: 100, wait: 1m }]",
                "7:30 {steps}[0].wait: unknown field `wait` (expected one of: weight, pause)",
            ),
            (
                "10",
                "7:14 {steps}: expected a list of steps such as `- { weight: 10, pause: 2m }`, found",
            ),
        ];
        let table: Vec<(String, String)> = table
            .iter()
            .map(|(list, want)| {
                let body = format!("strategy: canary\ncanary:\n  steps: {list}");
                (body, want.replace("{steps}", steps))
            })
            .collect();
        assert_one_error_each(&table);
    }

    #[test]
    fn bad_strategy_settings() {
        assert_one_error_each(&cases(&[
            (
                "strategy: blue",
                "5:15 environments.testing.strategy: expected one of `rolling`, `blue-green`, `canary`, found \"blue\"",
            ),
            (
                "blueGreen: { keepPrevious: 1h }",
                "5:5 environments.testing.blueGreen: `blueGreen` applies to `strategy: blue-green` only, and this environment's strategy is `rolling`",
            ),
            (
                "strategy: blue-green\ncanary: {}",
                "6:5 environments.testing.canary: `canary` applies to `strategy: canary` only, and this environment's strategy is `blue-green`",
            ),
            (
                "strategy: blue-green\nblueGreen: { keepPrevious: forever }",
                "6:32 environments.testing.blueGreen.keepPrevious: expected a duration such as `30m`, or `until-next-promotion`, found \"forever\"",
            ),
            (
                "strategy: blue-green\nblueGreen: { previewUrl: preview.example.com }",
                "6:30 environments.testing.blueGreen.previewUrl: expected an absolute http(s) URL, found \"preview.example.com\"",
            ),
            (
                "strategy: canary\ncanary: { trafficRouting: istio }",
                "6:31 environments.testing.canary.trafficRouting: expected one of `replicas`, `ingress-nginx`, found \"istio\"",
            ),
            (
                "strategy: canary\ncanary: { trafficRouting: { nginx: {} } }",
                "6:33 environments.testing.canary.trafficRouting.nginx: unknown field `nginx` (expected one of: ingress-nginx)\n6:31 environments.testing.canary.trafficRouting: missing required field `ingress-nginx`",
            ),
            (
                "strategy: canary\ncanary: { trafficRouting: { ingress-nginx: { ingress: Web_1 } } }",
                "6:59 environments.testing.canary.trafficRouting.ingress-nginx.ingress: \"Web_1\" is not a valid Ingress name",
            ),
            // A misspelt strategy is one error, not one more for its settings.
            (
                "strategy: canry\ncanary: {}",
                "5:15 environments.testing.strategy: expected one of",
            ),
        ]));
    }

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
