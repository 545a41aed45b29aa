//! `strategy` and the chosen strategy's settings (`blueGreen`, `canary`): how a release
//! replaces the running one.

use super::read::*;
use crate::config::diagnostics::{Diagnostics, Fields};
use crate::config::manifests::is_dns_subdomain;
use crate::config::model::*;
use crate::config::units;
use crate::config::yaml::{Node, Value};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::decode::{assert_one_error_each, cases, decode_test_environment as decode};

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
}
