//! `promote history --environment E [--service S]`: each service's Deployment revisions, as
//! `kubectl rollout history` lists them, with what promote-action recorded on each: digest, git
//! sha, creation time, change-cause. Printed as a table, and written as JSON
//! (`promote-history.json`) beside the other reports.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use super::Runtime;
use crate::cli::{GlobalArgs, HistoryArgs};
use crate::config;
use crate::kube::{Revision, read_history, revision_of};
use crate::outcome::Outcome;
use crate::plan::{self, PlanRequest};

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    pub environment: String,
    pub namespace: String,
    pub services: Vec<ServiceHistory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceHistory {
    pub service: String,
    pub deployment: String,
    /// False when the Deployment does not exist (never deployed here).
    pub deployed: bool,
    pub current_revision: Option<i64>,
    pub revisions: Vec<Revision>,
}

/// `promote history`.
pub async fn run_history(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &HistoryArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let request = PlanRequest::for_environment(
        &args.environment,
        args.service.as_deref(),
        &[],
        rt.provenance(),
    );
    let target = plan::plan_environment(&config, &args.environment, &request)?;
    let env = target.environment;
    let connection = super::connect_to(rt, global, &args.cluster, env).await?;
    crate::say!("Cluster: {}", connection.description);

    let mut report = HistoryReport {
        environment: env.name.clone(),
        namespace: env.namespace.clone(),
        services: Vec::new(),
    };
    for rendered in &target.objects().services {
        let service = config
            .service(&rendered.service)
            .expect("rendered services are declared");
        let name = super::serving_deployment(&connection.client, env, service).await?;
        let found = read_history(&connection.client, &env.namespace, &name)
            .await
            .with_context(|| {
                format!(
                    "reading the history of deployment/{name} in {}",
                    env.namespace
                )
            })?;
        let (deployed, current, revisions) = match found {
            Some((deployment, revisions)) => (
                true,
                revision_of(deployment.metadata.annotations.as_ref()),
                revisions,
            ),
            None => (false, None, Vec::new()),
        };
        crate::say!(
            "{}",
            table(&rendered.service, &name, deployed, &revisions).trim_end()
        );
        report.services.push(ServiceHistory {
            service: rendered.service.clone(),
            deployment: name,
            deployed,
            current_revision: current,
            revisions,
        });
    }
    if let [only] = report.services.as_slice()
        && let Some(r) = only.current_revision
    {
        rt.outputs.set("revision", r.to_string());
    }
    let dir = args
        .output_dir
        .clone()
        .or_else(|| rt.ctx.runner_temp.as_ref().map(PathBuf::from));
    if let Some(dir) = dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("promote-history.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        rt.outputs.set("report-path", path.display().to_string());
    }
    Ok(Outcome::Success)
}

/// The revisions as a text table, newest first, the current one starred.
pub fn table(service: &str, deployment: &str, deployed: bool, revisions: &[Revision]) -> String {
    let mut out = format!("\n{service} (deployment/{deployment})\n");
    if !deployed {
        out.push_str("  not deployed in this environment\n");
        return out;
    }
    let rows: Vec<[String; 5]> = revisions
        .iter()
        .rev()
        .map(|r| {
            [
                format!("{}{}", r.revision, if r.current { "*" } else { "" }),
                r.digest
                    .as_deref()
                    .map(|d| d.chars().take(19).collect())
                    .or(r.image.clone())
                    .unwrap_or_else(|| "-".into()),
                r.git_sha
                    .as_deref()
                    .map(|s| s.chars().take(7).collect())
                    .unwrap_or_else(|| "-".into()),
                r.created.clone().unwrap_or_else(|| "-".into()),
                r.change_cause.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let headers = ["REVISION", "DIGEST", "GIT SHA", "CREATED", "CHANGE-CAUSE"];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.push('\n');
        text
    };
    out.push_str(&line(&headers));
    for row in &rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_newest_first_and_stars_the_current_revision() {
        let revisions = vec![
            Revision {
                revision: 1,
                image: Some("r.io/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaa".into()),
                digest: Some("sha256:aaaaaaaaaaaaaaaaaaaaaaaa".into()),
                git_sha: Some("1111111222".into()),
                run_url: None,
                created: Some("2025-01-01T00:00:00Z".into()),
                change_cause: Some("first".into()),
                current: false,
                ready: 0,
            },
            Revision {
                revision: 2,
                image: Some("r.io/web:v2".into()),
                digest: None,
                git_sha: None,
                run_url: None,
                created: None,
                change_cause: None,
                current: true,
                ready: 2,
            },
        ];
        let text = table("web", "web", true, &revisions);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "web (deployment/web)");
        assert!(lines[2].starts_with("  REVISION  DIGEST"), "{text}");
        assert!(lines[3].starts_with("  2*"), "{text}");
        assert!(lines[3].contains("r.io/web:v2"), "{text}");
        assert!(lines[4].contains("sha256:aaaaaaaaaaaa"), "{text}");
        assert!(lines[4].contains("1111111 "), "{text}");
        assert!(lines[4].ends_with(" first"), "{text}");
        assert!(table("web", "web", false, &[]).contains("not deployed"));
    }
}
