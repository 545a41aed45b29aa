//! The seed's production alert rules (error rate > 1 %, p95 latency > 1 s, pod restarts > 5 an
//! hour, CPU/memory > 80 %) as metric queries: the ready-made example of `analysis.prometheus`.
//!
//! What the queries assume of the cluster's Prometheus:
//! - the application's own metrics (`http_requests_total{code}`,
//!   `http_request_duration_seconds_bucket{le}`) carry `namespace`, `service` and `track`
//!   labels, relabelled from the pods' labels at scrape time;
//! - kube-state-metrics exports the pods' `app` and `track` labels (`kube_pod_labels` with
//!   `label_app`, `label_track`: its `--metric-labels-allowlist`), which the per-pod cAdvisor and
//!   restart metrics are joined with on `namespace` and `pod`;
//! - CPU and memory are judged against the containers' limits, per pod.
//!
//! # Caveats
//! `rate(…[1m])` divides by the whole minute, so over a series younger than a minute (a
//! canary pod just started) it reads low: analyse a step no earlier than a minute after its
//! pods are ready. Ratios of two such rates (error rate, quantiles) are not affected.

use std::time::Duration;

use crate::config::{Bound, MetricQuery, yaml::Pos};

/// [`seed_alert_rules`] as promotion.yml spells it, for the README.
pub const SEED_ALERT_RULES_YAML: &str = r#"analysis:
  prometheus:
    url: http://prometheus.monitoring:9090
    onInconclusive: fail
    queries:
      # Error rate > 1 %
      - name: error-rate
        query: >-
          sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}",code=~"5.."}[1m]))
          / sum(rate(http_requests_total{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[1m]))
        max: 0.01
        for: 1m
      # Latency p95 > 1 s
      - name: latency-p95
        query: >-
          histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[1m])))
        max: 1
        for: 1m
      # Pod restarts > 5 an hour, per pod
      - name: pod-restarts
        query: >-
          max by (namespace, pod) (increase(kube_pod_container_status_restarts_total{namespace="{{namespace}}"}[1h]))
          * on (namespace, pod) group_left() kube_pod_labels{namespace="{{namespace}}",label_app="{{service}}",label_track="{{track}}"}
        max: 5
        for: 0s
      # CPU > 80 % of the limit, per pod
      - name: cpu
        query: >-
          sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",container!=""}[1m]))
          * on (namespace, pod) group_left() kube_pod_labels{namespace="{{namespace}}",label_app="{{service}}",label_track="{{track}}"}
          / on (namespace, pod) sum by (namespace, pod) (kube_pod_container_resource_limits{namespace="{{namespace}}",resource="cpu"})
        max: 0.8
        for: 2m
      # Memory > 80 % of the limit, per pod
      - name: memory
        query: >-
          sum by (namespace, pod) (container_memory_working_set_bytes{namespace="{{namespace}}",container!=""})
          * on (namespace, pod) group_left() kube_pod_labels{namespace="{{namespace}}",label_app="{{service}}",label_track="{{track}}"}
          / on (namespace, pod) sum by (namespace, pod) (kube_pod_container_resource_limits{namespace="{{namespace}}",resource="memory"})
        max: 0.8
        for: 2m
"#;

/// The seed's four alert rules as five queries (CPU and memory are one rule, two queries),
/// the same as [`SEED_ALERT_RULES_YAML`]; `pos` is 0:0, they come from no file.
pub fn seed_alert_rules() -> Vec<MetricQuery> {
    let selector = r#"namespace="{{namespace}}",service="{{service}}",track="{{track}}""#;
    let pod_labels = r#"kube_pod_labels{namespace="{{namespace}}",label_app="{{service}}",label_track="{{track}}"}"#;
    let query = |name: &str, query: String, bound: Bound, for_secs: u64| MetricQuery {
        name: name.to_string(),
        query,
        bound,
        for_: Duration::from_secs(for_secs),
        pos: Pos::default(),
    };
    vec![
        query(
            "error-rate",
            format!(
                r#"sum(rate(http_requests_total{{{selector},code=~"5.."}}[1m])) / sum(rate(http_requests_total{{{selector}}}[1m]))"#
            ),
            Bound::Max(0.01),
            60,
        ),
        query(
            "latency-p95",
            format!(
                "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}[1m])))"
            ),
            Bound::Max(1.0),
            60,
        ),
        query(
            "pod-restarts",
            format!(
                r#"max by (namespace, pod) (increase(kube_pod_container_status_restarts_total{{namespace="{{{{namespace}}}}"}}[1h])) * on (namespace, pod) group_left() {pod_labels}"#
            ),
            Bound::Max(5.0),
            0,
        ),
        query(
            "cpu",
            format!(
                r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{namespace="{{{{namespace}}}}",container!=""}}[1m])) * on (namespace, pod) group_left() {pod_labels} / on (namespace, pod) sum by (namespace, pod) (kube_pod_container_resource_limits{{namespace="{{{{namespace}}}}",resource="cpu"}})"#
            ),
            Bound::Max(0.8),
            120,
        ),
        query(
            "memory",
            format!(
                r#"sum by (namespace, pod) (container_memory_working_set_bytes{{namespace="{{{{namespace}}}}",container!=""}}) * on (namespace, pod) group_left() {pod_labels} / on (namespace, pod) sum by (namespace, pod) (kube_pod_container_resource_limits{{namespace="{{{{namespace}}}}",resource="memory"}})"#
            ),
            Bound::Max(0.8),
            120,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::parse_duration;

    #[derive(serde::Deserialize)]
    struct Doc {
        analysis: Analysis,
    }
    #[derive(serde::Deserialize)]
    struct Analysis {
        prometheus: Prometheus,
    }
    #[derive(serde::Deserialize)]
    struct Prometheus {
        queries: Vec<Query>,
    }
    #[derive(serde::Deserialize)]
    struct Query {
        name: String,
        query: String,
        max: Option<f64>,
        min: Option<f64>,
        #[serde(rename = "for")]
        for_: String,
    }

    /// The README's YAML and the queries in code say the same thing.
    #[test]
    fn the_yaml_example_is_the_code() {
        let doc: Doc = serde_saphyr::from_str(SEED_ALERT_RULES_YAML).expect("the example parses");
        let from_yaml: Vec<MetricQuery> = doc
            .analysis
            .prometheus
            .queries
            .into_iter()
            .map(|q| MetricQuery {
                name: q.name,
                query: q.query,
                bound: match (q.max, q.min) {
                    (Some(max), None) => Bound::Max(max),
                    (None, Some(min)) => Bound::Min(min),
                    _ => panic!("one of max and min"),
                },
                for_: parse_duration(&q.for_).expect("a duration"),
                pos: Pos::default(),
            })
            .collect();
        assert_eq!(from_yaml, seed_alert_rules());
    }
}
