//! Integration tests: one binary, a module per capability. Each drives the real `promote`
//! binary or the library's public face; none reaches a network beyond 127.0.0.1.

/// The programmable HTTP(S) service the smoke-check tests point at.
mod checks_server;
/// The fake GitHub REST API (deployments, environments, comments) the GitHub tests run against.
mod fake_github;
mod fake_kube;
mod support;
mod util;

/// The binary as the Actions runner starts it: INPUT_* variables, file commands, masking.
mod action_runtime;
/// `verify` against the fake API server: integration Jobs and JUnit, the soak, the service proxy.
mod checks_kube;
/// Metric analysis against the real Prometheus scraping a test exporter: bounds, `for`,
/// inconclusive data, rejected queries, the seed's alert rules.
mod checks_prometheus;
/// `verify`'s smoke checks against scripted HTTP(S) services: readiness, SLO boundaries,
/// expectations, timeouts, redirects, TLS, secrets.
mod checks_smoke;
/// Invalid promotion files, each with the exact errors and locations it must produce.
mod config_corpus;
/// `deploy` with `strategy: blue-green` against the fake API server: the switch, the preview,
/// the migration from rolling.
mod deploy_blue_green;
/// `strategy: canary` end to end with the real Prometheus: aborted at 25 % by a metric breach,
/// promoted through 100 %.
mod deploy_canary;
/// action.yml, the README tables and the input table in code say the same thing.
mod docs_sync;
/// `promote environments check|sync` against the fake GitHub: drift, sync, permissions.
mod environments_cmd;
/// What blue-green and canary deploys use from the fake: Services, EndpointSlices, the service
/// proxy to test-registered backends, scale, deletion, Ingresses.
mod fake_kube_services;
/// The fake Kubernetes API server and its controllers, checked with the real kube client.
mod fake_kube_tests;
/// The GitHub client against the fake GitHub: deployments, statuses, retries, rate limits,
/// environments, the sticky comment.
mod github_api;
/// The delivery metrics over histories seeded into the fake GitHub: paging to the window,
/// rate limits, 5,000 deployments (and the benchmark `scripts/bench-metrics` runs).
mod github_kpi;
/// Connecting: AKS through ARM with refreshed Entra tokens, kubeconfig inputs and contexts.
mod kube_connect;
/// `deploy`, `rollback`, `history` end to end against the fake API server; measurements.
mod kube_deploy;
/// `promote drift` against the fake API server: declared differences, hand edits, no secrets.
mod kube_drift;
/// `fromEnv` Secrets in `deploy`, `run` and `plan` against the fake API server: applied first,
/// rolled on a new value, missing variables, and no value anywhere.
mod kube_secrets;
/// `promote metrics` through the binary: as the action, with `--json`, and its invalid input.
mod metrics_cmd;
/// The jobs of promote.yml run in sequence by the binary as the runner starts it, against the
/// real registry and the fake Kubernetes and GitHub APIs.
mod pipeline_e2e;
/// `plan`'s diffs against the base branch and the live cluster, and its pull-request comment.
mod plan_diff;
/// Registry sign-in: htpasswd, and token auth with RS256 JWTs and scope policies.
mod registry_auth;
/// Azure sign-in: GitHub OIDC → Entra → ACR, and its classic failures, against doubles.
mod registry_azure;
/// The transfer engine under injected faults: retries, resumed chunks, exhausted retries.
mod registry_faults;
/// `push` and `copy` against the real registry, anonymous; skopeo interoperability.
mod registry_push;
/// `plan`'s rendered objects, pinned down as YAML snapshots.
mod render_snapshots;
