//! The promotion project the command tests run the binary on: a temporary directory with a
//! `promotion.yml` holding one service `web` and one environment, the service's manifests, and
//! optionally a kubeconfig; plus the command lines and reports of its verbs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Run, promote, read, run};

/// `web`'s Deployment: container `web` serving port `http` (8080).
const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/team/web:latest
          ports: [{name: http, containerPort: 8080}]
";

/// A promotion project on disk.
pub struct Project {
    pub dir: tempfile::TempDir,
    environment: String,
    kubeconfig: Option<PathBuf>,
    /// Arguments every [`Project::deploy`] passes first (`--create-namespace`).
    deploy_args: Vec<&'static str>,
}

impl Project {
    /// Service `web` (image `registry.example.com/team/web`, port 8080, manifests in `web/`,
    /// the Deployment only) and environment `environment` in the namespace of the same name,
    /// whose further lines (indented four spaces: `    replicas: 2`) are `lines`.
    pub fn new(environment: &str, lines: &str) -> Project {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path();
        std::fs::create_dir_all(root.join("web")).expect("web/");
        std::fs::write(root.join("web/deployment.yaml"), DEPLOYMENT_YAML).expect("deployment");
        std::fs::write(
            root.join("promotion.yml"),
            format!(
                "registry: registry.example.com
services:
  - name: web
    image: team/web
    manifests: web
    port: 8080
environments:
  - name: {environment}
    namespace: {environment}
{lines}"
            ),
        )
        .expect("promotion.yml");
        Project {
            dir,
            environment: environment.to_string(),
            kubeconfig: None,
            deploy_args: Vec::new(),
        }
    }

    /// Adds `web/<file>` (a Service, a ConfigMap …) to the service's manifests.
    pub fn with_manifest(self, file: &str, yaml: &str) -> Project {
        std::fs::write(self.dir.path().join("web").join(file), yaml).expect("a manifest");
        self
    }

    /// Writes `yaml` as `kubeconfig`, which every command is then given.
    pub fn with_kubeconfig(mut self, yaml: &str) -> Project {
        let path = self.dir.path().join("kubeconfig");
        std::fs::write(&path, yaml).expect("kubeconfig");
        self.kubeconfig = Some(path);
        self
    }

    /// Arguments [`Project::deploy`] passes before the test's own.
    pub fn with_deploy_args(mut self, args: &[&'static str]) -> Project {
        self.deploy_args = args.to_vec();
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where the commands write their reports.
    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// `promote --config … <verb> --environment <env> [--kubeconfig-path …] --output-dir out
    /// <args>`.
    pub fn command(&self, verb: &str, args: &[&str]) -> Command {
        self.command_in(verb, args, &self.out())
    }

    /// [`Project::command`] writing its report to `out`.
    pub fn command_in(&self, verb: &str, args: &[&str], out: &Path) -> Command {
        let mut cmd = promote();
        cmd.arg("--config")
            .arg(self.path("promotion.yml"))
            .arg(verb)
            .args(["--environment", &self.environment]);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig-path").arg(kubeconfig);
        }
        cmd.arg("--output-dir").arg(out).args(args);
        cmd
    }

    pub fn verify(&self) -> Run {
        run(&mut self.command("verify", &[]))
    }

    /// `promote deploy --image web=registry.example.com/team/web@<digest>` with the project's
    /// deploy arguments, then `args`.
    pub fn deploy(&self, digest: &str, args: &[&str]) -> Run {
        let image = format!("web=registry.example.com/team/web@{digest}");
        let mut all = vec!["--image", image.as_str()];
        all.extend_from_slice(&self.deploy_args);
        all.extend_from_slice(args);
        run(&mut self.command("deploy", &all))
    }

    /// `out/promote-<verb>.json`.
    pub fn report(&self, verb: &str) -> Value {
        let text = read(&self.out().join(format!("promote-{verb}.json")));
        serde_json::from_str(&text).expect("the report is JSON")
    }
}
