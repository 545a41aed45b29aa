//! The environment's checks aimed at a blue-green preview instead of the serving colour: pure
//! rewrites of the configuration the checks read, table-tested below.
//!
//! Smoke checks reach a Service by the service's name (through the API server's proxy), so the
//! preview's checks see each service renamed to its preview Service and its Deployment to the
//! idle colour (for the soak). A URL check goes to `previewUrl` when there is one; without it,
//! a check on the environment's URL (`path`, or a `url` starting with `{url}`) goes through the
//! service proxy to the preview, and one with a fixed URL of its own stays as it is (warned).

use std::collections::BTreeMap;

use crate::config::{CheckRoute, Config, Environment};

/// What the preview's checks run with: for each service in scope, its preview Service (the name
/// the checks address) and the idle colour's Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewTarget {
    pub service: String,
    pub preview: String,
    pub deployment: String,
}

/// The configuration and environment the preview's checks read, and a warning per check that
/// cannot be aimed at the preview.
pub fn preview_checks(
    config: &Config,
    env: &Environment,
    targets: &[PreviewTarget],
    preview_url: Option<&str>,
) -> (Config, Environment, Vec<String>) {
    let renamed: BTreeMap<&str, &PreviewTarget> =
        targets.iter().map(|t| (t.service.as_str(), t)).collect();
    let mut config = config.clone();
    for service in &mut config.services {
        if let Some(t) = renamed.get(service.name.as_str()) {
            service.name = t.preview.clone();
            service.deployment = t.deployment.clone();
        }
    }
    let mut env = env.clone();
    let mut warnings = Vec::new();
    match preview_url {
        Some(url) => env.url = Some(url.to_string()),
        None => env.url = None,
    }
    for check in &mut env.checks.smoke {
        if let Some(own) = &check.service
            && let Some(t) = renamed.get(own.as_str())
        {
            check.service = Some(t.preview.clone());
        }
        if check.via != CheckRoute::Url || preview_url.is_some() {
            continue;
        }
        match check.url.as_deref() {
            None => check.via = CheckRoute::ServiceProxy,
            Some(url) if url.starts_with("{url}") => {
                let rest = url.trim_start_matches("{url}");
                let path = match (rest, check.path.as_deref()) {
                    ("", None) => "/".to_string(),
                    ("", Some(p)) => p.to_string(),
                    (rest, _) => rest.to_string(),
                };
                check.url = None;
                check.path = Some(path);
                check.via = CheckRoute::ServiceProxy;
            }
            Some(_) => warnings.push(format!(
                "smoke check {} has a fixed URL of its own, so it checks what that URL serves, not the preview; set `blueGreen.previewUrl` or use `path`",
                check.name
            )),
        }
    }
    (config, env, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Checks, SmokeCheck};

    fn smoke(name: &str, url: Option<&str>, path: Option<&str>, via: CheckRoute) -> SmokeCheck {
        SmokeCheck {
            name: name.into(),
            url: url.map(str::to_string),
            path: path.map(str::to_string),
            via,
            service: None,
            method: "GET".into(),
            headers: BTreeMap::new(),
            expect_status: 200,
            expect_body: None,
            expect_json: BTreeMap::new(),
            samples: 1,
            concurrency: 1,
            duration: None,
            request_timeout: std::time::Duration::from_secs(1),
            readiness_timeout: std::time::Duration::from_secs(1),
            ca_file: None,
            max_redirects: 0,
            pos: Default::default(),
        }
    }

    fn fixture(smoke: Vec<SmokeCheck>) -> (Config, Environment) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(
            dir.path().join("web/deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: x}]}\n",
        )
        .unwrap();
        let text = "registry: r.example.com\nservices:\n  - {name: web, image: team/web, manifests: web}\nenvironments:\n  - {name: testing, namespace: testing}\n";
        let config = crate::config::parse(&dir.path().join("promotion.yml"), dir.path(), text)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut env = config.environments[0].clone();
        env.url = Some("https://shop.example".into());
        env.checks = Checks {
            smoke,
            ..Checks::default()
        };
        (config, env)
    }

    #[test]
    fn checks_are_aimed_at_the_preview() {
        let (config, env) = fixture(vec![
            smoke("path", None, Some("/health"), CheckRoute::Url),
            smoke("templated", Some("{url}/ready"), None, CheckRoute::Url),
            smoke("bare", Some("{url}"), Some("/x"), CheckRoute::Url),
            smoke(
                "fixed",
                Some("https://status.example/ok"),
                None,
                CheckRoute::Url,
            ),
            smoke("proxied", None, Some("/health"), CheckRoute::ServiceProxy),
        ]);
        let service = config.services[0].name.clone();
        let targets = [PreviewTarget {
            service: service.clone(),
            preview: format!("{service}-preview"),
            deployment: "web-green".into(),
        }];
        let (c, e, warnings) = preview_checks(&config, &env, &targets, None);
        assert_eq!(c.services[0].name, format!("{service}-preview"));
        assert_eq!(c.services[0].deployment, "web-green");
        assert_eq!(e.url, None);
        let routes: Vec<(CheckRoute, Option<&str>, Option<&str>)> = e
            .checks
            .smoke
            .iter()
            .map(|s| (s.via, s.url.as_deref(), s.path.as_deref()))
            .collect();
        assert_eq!(
            routes,
            [
                (CheckRoute::ServiceProxy, None, Some("/health")),
                (CheckRoute::ServiceProxy, None, Some("/ready")),
                (CheckRoute::ServiceProxy, None, Some("/x")),
                (CheckRoute::Url, Some("https://status.example/ok"), None),
                (CheckRoute::ServiceProxy, None, Some("/health")),
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("smoke check fixed "),
            "{warnings:?}"
        );

        // With a preview URL the URL checks stay URL checks, on the preview's URL.
        let (_, e, warnings) =
            preview_checks(&config, &env, &targets, Some("https://preview.example"));
        assert_eq!(e.url.as_deref(), Some("https://preview.example"));
        assert_eq!(e.checks.smoke[0].via, CheckRoute::Url);
        assert!(warnings.is_empty());
    }
}
