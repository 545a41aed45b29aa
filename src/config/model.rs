//! The promotion, as plain data: what promotion.yml declares after it has been decoded and
//! validated. Nothing here does I/O; positions are kept where later checks or errors need them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::units::{IntOrPercent, Quantity};
use super::yaml::Pos;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file as the user named it (used in error locations and annotations).
    pub file: PathBuf,
    /// Login server of the container registry, e.g. `studysphere.azurecr.io`.
    pub registry: String,
    pub services: Vec<Service>,
    /// In promotion order: each environment's `requires` names an earlier one.
    pub environments: Vec<Environment>,
}

impl Config {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Where each field of an item was written (see `yaml::positions`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Positions(pub BTreeMap<String, Pos>);

impl Positions {
    /// The position of `path` (`approval.reviewers`, `secrets[1]`), or `fallback`.
    pub fn at(&self, path: &str, fallback: Pos) -> Pos {
        self.0.get(path).copied().unwrap_or(fallback)
    }

    pub fn has(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Repository inside the registry, e.g. `studysphere/auth-service`.
    pub image: String,
    /// The manifests directory as written, relative to promotion.yml.
    pub manifests_dir: PathBuf,
    /// The plain Kubernetes objects found there, in file order.
    pub manifests: Vec<Manifest>,
    /// The Deployment that runs the service (default: the service name).
    pub deployment: String,
    /// The container that gets the image, resources and configuration (default: the service name).
    pub container: String,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    pub pos: Pos,
    pub positions: Positions,
}

impl Service {
    /// Where `field` of this service was written, or the service itself.
    pub fn pos_of(&self, field: &str) -> Pos {
        self.positions.at(field, self.pos)
    }

    /// The service's Deployment among its manifests (validation guarantees it is there).
    pub fn deployment_manifest(&self) -> Option<&Manifest> {
        self.manifests
            .iter()
            .find(|m| m.kind() == "Deployment" && m.name() == self.deployment)
    }

    /// The Services among the manifests whose selector picks the Deployment's pods: what
    /// blue-green switches and what a canary's pods join.
    pub fn fronting_services(&self) -> Vec<&Manifest> {
        let Some(labels) = self
            .deployment_manifest()
            .and_then(|d| d.object["spec"]["template"]["metadata"]["labels"].as_object())
        else {
            return Vec::new();
        };
        self.manifests
            .iter()
            .filter(|m| m.kind() == "Service")
            .filter(|m| {
                m.object["spec"]["selector"].as_object().is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
            })
            .collect()
    }

    /// The Ingress a canary with `trafficRouting: ingress-nginx` splits: the one named, or the
    /// only one in the manifests.
    ///
    /// # Errors
    /// Why there is no such Ingress, as a sentence about this service.
    pub fn canary_ingress(&self, name: Option<&str>) -> Result<&Manifest, String> {
        let ingresses: Vec<&Manifest> = self
            .manifests
            .iter()
            .filter(|m| m.kind() == "Ingress")
            .collect();
        let names = || {
            ingresses
                .iter()
                .map(|m| format!("`{}`", m.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (name, ingresses.as_slice()) {
            (Some(name), _) => ingresses
                .iter()
                .copied()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    if ingresses.is_empty() {
                        format!(
                            "service `{}` has no Ingress `{name}` in its manifests (it has none)",
                            self.name
                        )
                    } else {
                        format!(
                            "service `{}` has no Ingress `{name}` in its manifests (found: {})",
                            self.name,
                            names()
                        )
                    }
                }),
            (None, [only]) => Ok(only),
            (None, []) => Err(format!(
                "service `{}` has no Ingress in its manifests for ingress-nginx to split",
                self.name
            )),
            (None, _) => Err(format!(
                "service `{}` has several Ingresses ({}): name the one to split with `ingress-nginx: {{ ingress: NAME }}`",
                self.name,
                names()
            )),
        }
    }
}

/// One object of a service's base manifests with the place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub file: PathBuf,
    pub line: usize,
    /// Where `metadata.name` was written, for errors about the object's identity.
    pub name_pos: Pos,
    pub object: serde_json::Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub namespace: String,
    pub url: Option<String>,
    /// The environment whose success gates this one.
    pub requires: Option<String>,
    pub cluster: Cluster,
    pub approval: Approval,
    pub replicas: Replicas,
    pub resources: Resources,
    pub autoscaling: Option<Autoscaling>,
    /// ConfigMap data, strings only (YAML `on` stays `"on"`).
    pub config: BTreeMap<String, String>,
    pub feature_flags: BTreeMap<String, serde_json::Value>,
    /// Secrets whose keys become environment variables: existing ones by name, or created from
    /// the job's environment (`fromEnv`).
    pub secrets: Vec<SecretRef>,
    pub rollout: Rollout,
    /// How a new release replaces the running one (`strategy`, with `blueGreen` / `canary`).
    pub strategy: Strategy,
    /// Metric analysis after a rollout and at every canary step (`analysis`).
    pub analysis: Option<Analysis>,
    pub checks: Checks,
    pub slo: Slo,
    pub on_failure: OnFailure,
    pub hooks: Hooks,
    pub pos: Pos,
    pub positions: Positions,
}

impl Environment {
    /// Where `field` of this environment was written, or the environment itself.
    pub fn pos_of(&self, field: &str) -> Pos {
        self.positions.at(field, self.pos)
    }

    /// Manual approval is GitHub's own: an environment needs it when it declares reviewers.
    pub fn needs_approval(&self) -> bool {
        !self.approval.reviewers.is_empty()
    }

    /// The floor of running replicas: the HPA minimum, or the fixed count.
    pub fn min_replicas(&self) -> u32 {
        self.autoscaling
            .as_ref()
            .map_or(self.replicas.min, |a| a.min_replicas)
    }
}

/// Where the environment's cluster is; inputs override it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Cluster {
    /// A kubeconfig context name.
    pub context: Option<String>,
    pub aks: Option<AksCluster>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AksCluster {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Approval {
    pub reviewers: Vec<Reviewer>,
    /// Minutes GitHub waits before the job may start (0..=43200).
    pub wait_timer: u32,
    pub prevent_self_review: bool,
    /// Branch name patterns allowed to deploy; empty means any branch.
    pub branches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewer {
    User(String),
    Team(String),
}

impl std::fmt::Display for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reviewer::User(login) => write!(f, "@{login}"),
            Reviewer::Team(slug) => write!(f, "team {slug}"),
        }
    }
}

/// `replicas: 2` or the seed's range form `replicas: 1-2` (the Deployment starts at the lower bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    pub min: u32,
    pub max: u32,
}

impl std::fmt::Display for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceList {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
    pub ephemeral_storage: Option<Quantity>,
}

impl ResourceList {
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }

    /// (Kubernetes resource name, quantity) pairs that are set.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &Quantity)> {
        [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("ephemeral-storage", &self.ephemeral_storage),
        ]
        .into_iter()
        .filter_map(|(name, q)| q.as_ref().map(|q| (name, q)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent of requests.
    pub target_cpu: u32,
    pub target_memory: Option<u32>,
}

/// Kubernetes' own default for `kubectl autoscale --cpu-percent`.
pub const DEFAULT_TARGET_CPU: u32 = 80;

#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// How long to wait for the rollout before it counts as failed (seed: 10 minutes).
    pub timeout: Duration,
    pub max_surge: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            timeout: Duration::from_secs(600),
            max_surge: None,
            max_unavailable: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    pub smoke: Vec<SmokeCheck>,
    pub integration: Vec<IntegrationCheck>,
    pub soak: Option<Soak>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmokeCheck {
    pub name: String,
    /// Full URL; `{url}` is replaced by the environment's url.
    pub url: Option<String>,
    /// Path appended to the environment's url (or the service's port when going through the proxy).
    pub path: Option<String>,
    /// Reach the service through the API server's service proxy instead of a public URL.
    pub via: CheckRoute,
    pub service: Option<String>,
    pub method: String,
    pub headers: BTreeMap<String, HeaderValue>,
    pub expect_status: u16,
    pub expect_body: Option<String>,
    pub expect_json: BTreeMap<String, serde_json::Value>,
    pub samples: u32,
    pub concurrency: u32,
    /// Sample for this long instead of `samples` requests.
    pub duration: Option<Duration>,
    pub request_timeout: Duration,
    pub readiness_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// Redirects followed before the answer counts (0: a 3xx is the answer).
    pub max_redirects: u32,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckRoute {
    #[default]
    Url,
    ServiceProxy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Plain(String),
    /// Read from this environment variable at run time and masked.
    FromEnv(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationCheck {
    pub name: String,
    /// Defaults to the first service's image at the promoted digest.
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub timeout: Duration,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Soak {
    pub duration: Duration,
    pub max_restarts: u32,
}

/// Service-level objectives the verification gate compares against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    pub p95_latency: Option<Duration>,
    pub p99_latency: Option<Duration>,
    /// Percent of failed requests allowed (0.1 means 0.1%).
    pub error_rate: Option<f64>,
    /// Percent availability target, reported for reference (the seed's uptime SLA).
    pub uptime: Option<f64>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        *self == Slo::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    #[default]
    Rollback,
    Keep,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub pre_deploy: Vec<Hook>,
}

/// A Job run before the rollout, e.g. a database migration, with a service's new image.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub pos: Pos,
}

/// One entry of `secrets:`: a Secret the workloads read as environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    /// Secret key → name of the job's environment variable holding the value (`fromEnv`). Empty:
    /// the Secret already exists in the namespace and is only referenced.
    pub from_env: BTreeMap<String, String>,
    pub pos: Pos,
}

impl SecretRef {
    /// Whether the action creates this Secret (from the job's environment) instead of only
    /// referencing an existing one.
    pub fn is_managed(&self) -> bool {
        !self.from_env.is_empty()
    }
}

/// `strategy: rolling | blue-green | canary`, with the chosen strategy's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Strategy {
    /// The Deployment's own rolling update (the default).
    #[default]
    Rolling,
    BlueGreen(BlueGreen),
    Canary(Canary),
}

impl Strategy {
    /// The word promotion.yml uses for it.
    pub fn word(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen(_) => "blue-green",
            Strategy::Canary(_) => "canary",
        }
    }
}

/// `blueGreen:` settings: two Deployments `<deployment>-blue` / `-green`, the Service's selector
/// (label `version`) picks the one that serves.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    /// How long the previous colour stays at full size after a switch, as the instant rollback.
    pub keep_previous: KeepPrevious,
    /// A URL that reaches the preview Service (`<service>-preview`); without it checks go
    /// through the API server's service proxy.
    pub preview_url: Option<String>,
}

impl Default for BlueGreen {
    fn default() -> Self {
        BlueGreen {
            keep_previous: KeepPrevious::For(Duration::from_secs(30 * 60)),
            preview_url: None,
        }
    }
}

/// `keepPrevious: 30m` or `keepPrevious: until-next-promotion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepPrevious {
    /// Scaled to zero this long after the switch by `promote retire` (run on a schedule);
    /// the next promotion takes it over either way.
    For(Duration),
    /// Kept at full size until the next promotion replaces it.
    UntilNextPromotion,
}

impl KeepPrevious {
    /// How long after a switch the previous colour is kept (`None`: until the next promotion).
    pub fn duration(self) -> Option<Duration> {
        match self {
            KeepPrevious::For(d) => Some(d),
            KeepPrevious::UntilNextPromotion => None,
        }
    }

    /// As promotion.yml writes it: `30m`, `until-next-promotion`.
    pub fn word(self) -> String {
        match self {
            KeepPrevious::For(d) => super::units::format_duration(d),
            KeepPrevious::UntilNextPromotion => "until-next-promotion".to_string(),
        }
    }
}

/// `canary:` settings: a `<deployment>-canary` Deployment behind the same Service, grown step by
/// step, analysed at each step.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// Increasing weights in percent, the last one 100 (the seed's 10 → 25 → 50 → 100).
    pub steps: Vec<CanaryStep>,
    pub traffic_routing: TrafficRouting,
}

/// A step's pause when it gives none.
pub const DEFAULT_CANARY_PAUSE: Duration = Duration::from_secs(60);

impl Default for Canary {
    fn default() -> Self {
        Canary {
            steps: [10, 25, 50, 100]
                .into_iter()
                .map(|weight| CanaryStep {
                    weight,
                    pause: DEFAULT_CANARY_PAUSE,
                    pos: Pos { line: 0, col: 0 },
                })
                .collect(),
            traffic_routing: TrafficRouting::Replicas,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CanaryStep {
    /// Percent of traffic (1..=100).
    pub weight: u32,
    /// How long the step runs before its analysis decides (the analysis window).
    pub pause: Duration,
    pub pos: Pos,
}

/// How a canary's weight becomes traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrafficRouting {
    /// No router: the canary's share of ready pods behind the one Service approximates the weight.
    #[default]
    Replicas,
    /// ingress-nginx canary annotations (`canary-weight`) on a copy of the service's Ingress:
    /// exact weights.
    IngressNginx {
        /// The service's Ingress in its manifests (default: the only one).
        ingress: Option<String>,
    },
}

/// `analysis:`: what decides whether a release is healthy beyond the smoke checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub prometheus: Option<PrometheusAnalysis>,
}

/// `analysis.prometheus`: queries against a Prometheus HTTP API, each with a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusAnalysis {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    pub queries: Vec<MetricQuery>,
    /// What a query without data means.
    pub on_inconclusive: OnInconclusive,
    /// How long a plain rolling update is analysed after its rollout (default 5m).
    pub window: Duration,
    pub pos: Pos,
}

/// `window` when it is not given.
pub const DEFAULT_ANALYSIS_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The names a query may use as `{{name}}`; [`MetricQuery::expand`] fills them in.
pub const QUERY_PLACEHOLDERS: &[&str] = &["namespace", "service", "track"];

/// One PromQL query with its bound, e.g. the seed's "error rate > 1 %".
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub name: String,
    /// PromQL with `{{namespace}}`, `{{service}}` and `{{track}}` (stable | canary) placeholders.
    pub query: String,
    pub bound: Bound,
    /// How long the bound must be broken without a break before it counts (Prometheus' `for`).
    pub for_: Duration,
    pub pos: Pos,
}

impl MetricQuery {
    /// The query for one service and track (`stable` or `canary`), placeholders filled in.
    /// Validation has made sure every `{{…}}` in it is one of [`QUERY_PLACEHOLDERS`].
    pub fn expand(&self, namespace: &str, service: &str, track: &str) -> String {
        self.query
            .replace("{{namespace}}", namespace)
            .replace("{{service}}", service)
            .replace("{{track}}", track)
    }
}

impl Bound {
    /// Whether `value` breaks the bound (a value on the bound is within it). NaN breaks neither:
    /// the caller decides what a sample without a number means.
    pub fn is_breached_by(&self, value: f64) -> bool {
        match *self {
            Bound::Max(max) => value > max,
            Bound::Min(min) => value < min,
        }
    }
}

/// `max: 0.01` (breached above) or `min: 0.99` (breached below).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Max(f64),
    Min(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInconclusive {
    /// A query without data fails the analysis (the safe default).
    #[default]
    Fail,
    Pass,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(object: serde_json::Value) -> Manifest {
        Manifest {
            file: PathBuf::from("web/objects.yaml"),
            line: 1,
            name_pos: Pos::default(),
            object,
        }
    }

    fn service(objects: Vec<serde_json::Value>) -> Service {
        Service {
            name: "web".into(),
            image: "shop/web".into(),
            manifests_dir: PathBuf::from("web"),
            manifests: objects.into_iter().map(manifest).collect(),
            deployment: "web".into(),
            container: "web".into(),
            port: None,
            health_path: None,
            pos: Pos::default(),
            positions: Positions::default(),
        }
    }

    fn deployment() -> serde_json::Value {
        json!({ "kind": "Deployment", "metadata": { "name": "web" },
                "spec": { "template": { "metadata": { "labels": { "app": "web", "tier": "front" } } } } })
    }

    fn object(kind: &str, name: &str, selector: serde_json::Value) -> serde_json::Value {
        json!({ "kind": kind, "metadata": { "name": name }, "spec": { "selector": selector } })
    }

    #[test]
    fn services_in_front_of_the_deployment() {
        let s = service(vec![
            deployment(),
            object("Service", "web", json!({ "app": "web" })),
            object("Service", "both", json!({ "app": "web", "tier": "front" })),
            object("Service", "other", json!({ "app": "api" })),
            object("Service", "wider", json!({ "app": "web", "track": "x" })),
            object("Service", "headless", json!({})),
        ]);
        let names: Vec<&str> = s.fronting_services().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["web", "both"]);
        assert!(
            service(vec![object("Service", "web", json!({ "app": "web" }))])
                .fronting_services()
                .is_empty()
        );
    }

    #[test]
    fn the_ingress_a_canary_splits() {
        let ingress = |name: &str| object("Ingress", name, json!(null));
        let one = service(vec![deployment(), ingress("web")]);
        let two = service(vec![deployment(), ingress("web"), ingress("admin")]);
        let none = service(vec![deployment()]);
        assert_eq!(one.canary_ingress(None).unwrap().name(), "web");
        assert_eq!(two.canary_ingress(Some("admin")).unwrap().name(), "admin");
        for (s, name, why) in [
            (
                &two,
                None,
                "has several Ingresses (`web`, `admin`): name the one",
            ),
            (&none, None, "has no Ingress in its manifests"),
            (
                &one,
                Some("admin"),
                "has no Ingress `admin` in its manifests (found: `web`)",
            ),
            (
                &none,
                Some("web"),
                "has no Ingress `web` in its manifests (it has none)",
            ),
        ] {
            let error = s.canary_ingress(name).unwrap_err();
            assert!(error.contains(why), "{name:?}: {error}");
        }
    }

    #[test]
    fn queries_expand_their_placeholders() {
        let q = MetricQuery {
            name: "errors".into(),
            query: r#"rate(x{namespace="{{namespace}}",app="{{service}}",track="{{track}}"}[1m]) / {{track}}"#.into(),
            bound: Bound::Max(0.01),
            for_: Duration::ZERO,
            pos: Pos::default(),
        };
        assert_eq!(
            q.expand("production", "web", "canary"),
            r#"rate(x{namespace="production",app="web",track="canary"}[1m]) / canary"#
        );
    }

    #[test]
    fn bounds() {
        for (bound, value, breached) in [
            (Bound::Max(0.01), 0.02, true),
            (Bound::Max(0.01), 0.01, false),
            (Bound::Max(0.01), 0.0, false),
            (Bound::Min(0.99), 0.98, true),
            (Bound::Min(0.99), 0.99, false),
            (Bound::Max(1.0), f64::NAN, false),
            (Bound::Min(1.0), f64::NAN, false),
        ] {
            assert_eq!(
                bound.is_breached_by(value),
                breached,
                "{bound:?} at {value}"
            );
        }
    }
}
