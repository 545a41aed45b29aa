//! `promote environments check|sync`: GitHub environments as code. Each environment's
//! `approval` in promotion.yml (required reviewers, wait timer, self-review rule, deployment
//! branches) is what its GitHub environment's protection rules must be.
//!
//! - `check` changes nothing: it reads every environment and prints where GitHub differs from
//!   the file. Exit 1 on drift (an environment missing on GitHub is drift), 0 when in sync.
//! - `sync` resolves every reviewer to its id first, for all environments, so an unknown login
//!   or team fails (exit 2) before anything is written; then it writes each environment that
//!   differs, reads them back and confirms.
//!
//! Writing environments needs the `administration: write` repository permission, which a
//! workflow's `GITHUB_TOKEN` cannot be granted (protocols.md §5): a 403 becomes a message that
//! names what the token lacks and which token to use instead (exit 2, nothing written).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;

use super::Runtime;
use crate::actions::{Annotation, Priority, Secret, Summary, table};
use crate::cli::{EnvironmentsCommand, GlobalArgs, SecretArg};
use crate::config::{self, Approval, ConfigError, ConfigErrors, Environment, Reviewer};
use crate::github::{EnvironmentRules, EnvironmentState, GitHub, GitHubError, ReviewerId};
use crate::outcome::{Classified, Outcome};
use crate::untrusted::{code, escape_md};

/// GitHub's limit on required reviewers per environment.
const MAX_REVIEWERS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sync,
    Check,
}

/// One setting where GitHub differs from the promotion file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub environment: String,
    /// `environment`, `required reviewers`, `wait timer`, `prevent self-review`,
    /// `deployment branches`.
    pub setting: &'static str,
    /// As the promotion file has it.
    pub want: String,
    /// As GitHub has it.
    pub have: String,
}

impl Drift {
    /// One line for people: `production: no required reviewers on GitHub, promotion.yml wants
    /// team:product-owners, team:engineering-managers`.
    pub fn sentence(&self, file: &str) -> String {
        if self.setting == "environment" {
            format!(
                "{}: the environment does not exist on GitHub, {file} wants {}",
                self.environment, self.want
            )
        } else if self.have == "none" {
            format!(
                "{}: no {} on GitHub, {file} wants {}",
                self.environment, self.setting, self.want
            )
        } else {
            format!(
                "{}: {} on GitHub is {}, {file} wants {}",
                self.environment, self.setting, self.have, self.want
            )
        }
    }
}

/// `user:<login>` / `team:<slug>`, as promotion.yml writes reviewers.
fn reviewer_name(r: &Reviewer) -> String {
    match r {
        Reviewer::User(login) => format!("user:{login}"),
        Reviewer::Team(slug) => format!("team:{slug}"),
    }
}

fn reviewer_id_name(r: &ReviewerId) -> String {
    match r {
        ReviewerId::User { login, .. } => format!("user:{login}"),
        ReviewerId::Team { slug, .. } => format!("team:{slug}"),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn minutes(m: u32) -> String {
    if m == 0 {
        "none".to_string()
    } else {
        format!("{m} min")
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

fn wanted_branches(want: &Approval) -> String {
    if want.branches.is_empty() {
        "any branch".to_string()
    } else {
        want.branches.join(", ")
    }
}

/// What `approval` declares, in one phrase (for an environment missing on GitHub).
fn describe(want: &Approval) -> String {
    let reviewers: Vec<String> = want.reviewers.iter().map(reviewer_name).collect();
    format!(
        "reviewers {}, wait timer {}, branches {}",
        list_or_none(&reviewers),
        minutes(want.wait_timer),
        wanted_branches(want)
    )
}

/// Where GitHub's environment `have` differs from `want`; `None` means it does not exist.
///
/// Reviewers and branch patterns compare as sets (logins and slugs case-insensitively, as
/// GitHub treats them); the self-review rule only counts when there are reviewers, since GitHub
/// keeps it on the reviewers rule.
pub fn compare(name: &str, want: &Approval, have: Option<&EnvironmentState>) -> Vec<Drift> {
    let drift = |setting: &'static str, want: String, have: String| Drift {
        environment: name.to_string(),
        setting,
        want,
        have,
    };
    let Some(have) = have else {
        return vec![drift("environment", describe(want), "missing".into())];
    };
    let mut out = Vec::new();
    let want_reviewers: Vec<String> = want.reviewers.iter().map(reviewer_name).collect();
    let have_reviewers: Vec<String> = have.reviewers.iter().map(reviewer_id_name).collect();
    let set = |v: &[String]| -> BTreeSet<String> { v.iter().map(|s| s.to_lowercase()).collect() };
    if set(&want_reviewers) != set(&have_reviewers) {
        out.push(drift(
            "required reviewers",
            list_or_none(&want_reviewers),
            list_or_none(&have_reviewers),
        ));
    }
    if want.wait_timer != have.wait_timer {
        out.push(drift(
            "wait timer",
            minutes(want.wait_timer),
            minutes(have.wait_timer),
        ));
    }
    if !want.reviewers.is_empty() && want.prevent_self_review != have.prevent_self_review {
        out.push(drift(
            "prevent self-review",
            on_off(want.prevent_self_review),
            on_off(have.prevent_self_review),
        ));
    }
    let want_branches: BTreeSet<&str> = want.branches.iter().map(String::as_str).collect();
    let have_branches = match (&have.branches, have.protected_branches_only) {
        (_, true) => Err("protected branches only".to_string()),
        (None, false) => Ok(BTreeSet::new()),
        (Some(list), false) => Ok(list.iter().map(String::as_str).collect()),
    };
    let same = match &have_branches {
        Ok(h) => *h == want_branches,
        Err(_) => false,
    };
    if !same {
        let have_text = match have_branches {
            Err(text) => text,
            Ok(h) if h.is_empty() => "any branch".to_string(),
            Ok(h) => h.into_iter().collect::<Vec<_>>().join(", "),
        };
        out.push(drift(
            "deployment branches",
            wanted_branches(want),
            have_text,
        ));
    }
    out
}

/// Whether a GitHub error means the token lacks a permission (rather than a missing object).
fn is_permission_error(err: &GitHubError) -> bool {
    match err {
        GitHubError::Status {
            status: 403,
            accepted_permissions,
            message,
            ..
        } => {
            accepted_permissions.is_some()
                || message.contains("Resource not accessible")
                || message.contains("Must have admin rights")
        }
        _ => false,
    }
}

/// The message for a token that may not write environments (or resolve their reviewers).
fn write_permission_error(what: &str, err: GitHubError) -> anyhow::Error {
    Classified::invalid(anyhow::anyhow!(
        "GitHub refused to {what} ({err}): writing environments needs the `administration: write` \
         repository permission (and organization `members: read` to resolve team reviewers), which a \
         workflow's GITHUB_TOKEN cannot be granted; pass a GitHub App installation token or a \
         fine-grained personal access token with \"Administration: Read and write\" (and \"Members: \
         Read\" on the organization) as `github-token`. Nothing was written."
    ))
}

/// The message for a token that may not read environments.
fn read_permission_error(name: &str, err: GitHubError) -> anyhow::Error {
    Classified::invalid(anyhow::anyhow!(
        "GitHub refused to read environment `{name}` ({err}): reading environments needs the \
         `actions: read` repository permission (`permissions: actions: read` for a workflow's \
         GITHUB_TOKEN; \"Actions: Read-only\" and \"Metadata: Read-only\" for a fine-grained token)"
    ))
}

/// `promote environments sync|check`.
pub async fn run_environments(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    command: &EnvironmentsCommand,
) -> anyhow::Result<Outcome> {
    let (mode, args) = match command {
        EnvironmentsCommand::Sync(args) => (Mode::Sync, args),
        EnvironmentsCommand::Check(args) => (Mode::Check, args),
    };
    let config = config::load(&global.config)?;
    let targets = super::environments(&config, args.environment.as_deref())?;
    let Some(repository) = rt.ctx.repository.clone() else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "GITHUB_REPOSITORY is not set: set it to `owner/name` of the repository whose \
             environments to {} (the runner sets it in Actions)",
            if mode == Mode::Sync { "sync" } else { "check" }
        )));
    };
    let Some(token) = global
        .github_token
        .as_ref()
        .map(SecretArg::expose)
        .filter(|t| !t.is_empty())
    else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "no GitHub token: pass --github-token or set GITHUB_TOKEN (the action's `github-token` input)"
        )));
    };
    let token = Secret::new(token, rt.console);
    let client = GitHub::new(&rt.ctx.api_url, &token, &repository).map_err(Classified::invalid)?;
    let file = config
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| config.file.display().to_string());
    match mode {
        Mode::Check => check(rt, &client, &config.file, &file, &targets).await,
        Mode::Sync => sync(rt, &client, &config.file, &file, &targets).await,
    }
}

/// GitHub's state of each target, `None` for a missing environment.
async fn read_all(
    client: &GitHub,
    targets: &[&Environment],
) -> anyhow::Result<Vec<Option<EnvironmentState>>> {
    let mut states = Vec::new();
    for env in targets {
        let state = client.environment(&env.name).await.map_err(|e| {
            if is_permission_error(&e) {
                read_permission_error(&env.name, e)
            } else {
                anyhow::Error::new(e).context(format!("reading environment `{}`", env.name))
            }
        })?;
        states.push(state);
    }
    Ok(states)
}

async fn check(
    rt: &mut Runtime<'_>,
    client: &GitHub,
    path: &std::path::Path,
    file: &str,
    targets: &[&Environment],
) -> anyhow::Result<Outcome> {
    let states = read_all(client, targets).await?;
    let mut drifts = Vec::new();
    for (env, state) in targets.iter().zip(&states) {
        let found = compare(&env.name, &env.approval, state.as_ref());
        if !found.is_empty() && rt.console.in_actions() {
            let pos = env.pos_of("approval");
            let text: Vec<String> = found.iter().map(|d| d.sentence(file)).collect();
            rt.console.annotate(
                &Annotation::error(text.join("; "))
                    .title(format!("GitHub environment `{}` drifted", env.name))
                    .file(path.display().to_string())
                    .line(pos.line)
                    .col(pos.col),
            );
        }
        drifts.extend(found);
    }
    let names: Vec<&str> = targets.iter().map(|e| e.name.as_str()).collect();
    let rows: Vec<[String; 4]> = drifts
        .iter()
        .map(|d| {
            [
                d.environment.clone(),
                d.setting.to_string(),
                d.want.clone(),
                d.have.clone(),
            ]
        })
        .collect();
    let headers = ["Environment", "Setting", file, "GitHub"];
    if drifts.is_empty() {
        crate::say!("GitHub environments match {file}: {}", names.join(", "));
    } else {
        for d in &drifts {
            crate::say!("drift: {}", d.sentence(file));
        }
        crate::say!();
        crate::say!("{}", terminal_table(&headers, &rows).trim_end());
    }
    if rt.ctx.summary_file.is_some() {
        let mut summary = Summary::new();
        let body = if drifts.is_empty() {
            format!(
                "### GitHub environments: in sync\n\n{} match {}.",
                names.iter().map(|n| code(n)).collect::<Vec<_>>().join(", "),
                code(file)
            )
        } else {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| escape_md(c)).collect())
                .collect();
            format!(
                "### GitHub environments: {} difference{} from {}\n\n{}\nRun `promote environments sync` with a token that has the `administration: write` permission to apply {}.",
                drifts.len(),
                if drifts.len() == 1 { "" } else { "s" },
                code(file),
                table(
                    &["Environment", "Setting", &escape_md(file), "GitHub"],
                    &cells
                ),
                code(file)
            )
        };
        summary.section(Priority::Essential, body);
        if let Err(e) = summary.write(rt.ctx) {
            crate::say!("warning: cannot write the job summary: {e}");
        }
    }
    Ok(if drifts.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Every reviewer of every target resolved to its id, or every unknown one as a located error.
async fn resolve(
    client: &GitHub,
    path: &std::path::Path,
    targets: &[&Environment],
) -> anyhow::Result<Vec<Vec<ReviewerId>>> {
    // Keyed by `user:login` / `team:slug`: each one is looked up once.
    let mut known: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for env in targets {
        if env.approval.reviewers.len() > MAX_REVIEWERS {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                pos: env.pos_of("approval.reviewers"),
                field: format!("environments.{}.approval.reviewers", env.name),
                message: format!(
                    "GitHub allows at most {MAX_REVIEWERS} required reviewers, found {}",
                    env.approval.reviewers.len()
                ),
            });
        }
        let mut ids = Vec::new();
        for (i, reviewer) in env.approval.reviewers.iter().enumerate() {
            let id = match known.get(&reviewer_name(reviewer)) {
                Some(id) => *id,
                None => {
                    let found = match reviewer {
                        Reviewer::User(login) => client.user_id(login).await,
                        Reviewer::Team(slug) => client.team_id(slug).await,
                    };
                    let id = match found {
                        Ok(id) => Some(id),
                        Err(e) if e.status() == Some(404) => None,
                        Err(e) if is_permission_error(&e) => {
                            let what = match reviewer {
                                Reviewer::User(login) => format!("read user `{login}`"),
                                Reviewer::Team(slug) => format!("read team `{slug}`"),
                            };
                            return Err(write_permission_error(&what, e));
                        }
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!(
                                "resolving reviewer {}",
                                reviewer_name(reviewer)
                            )));
                        }
                    };
                    known.insert(reviewer_name(reviewer), id);
                    id
                }
            };
            match (id, reviewer) {
                (Some(id), Reviewer::User(login)) => ids.push(ReviewerId::User {
                    login: login.clone(),
                    id,
                }),
                (Some(id), Reviewer::Team(slug)) => ids.push(ReviewerId::Team {
                    slug: slug.clone(),
                    id,
                }),
                (None, _) => errors.push(ConfigError {
                    file: path.to_path_buf(),
                    pos: env.pos_of(&format!("approval.reviewers[{i}]")),
                    field: format!("environments.{}.approval.reviewers[{i}]", env.name),
                    message: match reviewer {
                        Reviewer::User(login) => {
                            format!("GitHub has no user `{login}`")
                        }
                        Reviewer::Team(slug) => format!(
                            "the organization `{}` has no team `{slug}` (or the token cannot see it)",
                            client.repository().split('/').next().unwrap_or_default()
                        ),
                    },
                }),
            }
        }
        out.push(ids);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors).into())
    }
}

async fn sync(
    rt: &mut Runtime<'_>,
    client: &GitHub,
    path: &std::path::Path,
    file: &str,
    targets: &[&Environment],
) -> anyhow::Result<Outcome> {
    // 1. Everything resolved before the first write: an unknown reviewer changes nothing.
    let ids = resolve(client, path, targets).await?;
    let before = read_all(client, targets).await?;
    // 2. Write what differs.
    let mut written: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for ((env, ids), state) in targets.iter().zip(ids).zip(&before) {
        let changes = compare(&env.name, &env.approval, state.as_ref());
        if changes.is_empty() {
            results.push((env.name.clone(), "unchanged", Vec::new()));
            continue;
        }
        let rules = EnvironmentRules {
            wait_timer: env.approval.wait_timer,
            prevent_self_review: env.approval.prevent_self_review,
            reviewers: ids,
            branches: env.approval.branches.clone(),
        };
        if let Err(e) = client.put_environment(&env.name, &rules).await {
            let partial = if written.is_empty() {
                String::new()
            } else {
                format!(" (already written: {})", written.join(", "))
            };
            if is_permission_error(&e) {
                let err = write_permission_error(&format!("write environment `{}`", env.name), e);
                return Err(if written.is_empty() {
                    err
                } else {
                    err.context(format!("syncing environments{partial}"))
                });
            }
            return Err(anyhow::Error::new(e)
                .context(format!("writing environment `{}`{partial}", env.name)));
        }
        written.push(&env.name);
        let verb = if state.is_none() {
            "created"
        } else {
            "updated"
        };
        results.push((env.name.clone(), verb, changes));
    }
    // 3. Read back and confirm.
    let after = read_all(client, targets)
        .await
        .context("reading the environments back after writing them")?;
    let left: Vec<Drift> = targets
        .iter()
        .zip(&after)
        .flat_map(|(env, state)| compare(&env.name, &env.approval, state.as_ref()))
        .collect();

    let rows: Vec<[String; 3]> = results
        .iter()
        .map(|(name, verb, changes)| {
            let what = if changes.is_empty() {
                "matches the file".to_string()
            } else {
                changes
                    .iter()
                    .map(|d| {
                        if d.setting == "environment" {
                            d.want.clone()
                        } else {
                            format!("{}: {} → {}", d.setting, d.have, d.want)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            [name.clone(), verb.to_string(), what]
        })
        .collect();
    crate::say!(
        "{}",
        terminal_table(&["Environment", "Result", "Changes"], &rows).trim_end()
    );
    for d in &left {
        crate::say!("still different after writing: {}", d.sentence(file));
    }
    if rt.ctx.summary_file.is_some() {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| escape_md(c)).collect())
            .collect();
        let mut body = format!(
            "### GitHub environments synced from {}\n\n{}",
            code(file),
            table(&["Environment", "Result", "Changes"], &cells)
        );
        if !left.is_empty() {
            body.push_str("\n**Still different after writing:**\n\n");
            for d in &left {
                body.push_str(&format!("- {}\n", escape_md(&d.sentence(file))));
            }
        }
        let mut summary = Summary::new();
        summary.section(Priority::Essential, body);
        if let Err(e) = summary.write(rt.ctx) {
            crate::say!("warning: cannot write the job summary: {e}");
        }
    }
    if left.is_empty() {
        Ok(Outcome::Success)
    } else {
        Err(anyhow::anyhow!(
            "GitHub did not keep what was written: {}",
            left.iter()
                .map(|d| d.sentence(file))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

/// Columns padded to their widest cell, for the terminal.
fn terminal_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(reviewers: &[&str], wait: u32, self_review: bool, branches: &[&str]) -> Approval {
        Approval {
            reviewers: reviewers
                .iter()
                .map(|r| match r.split_once(':') {
                    Some(("team", slug)) => Reviewer::Team(slug.into()),
                    _ => Reviewer::User(r.trim_start_matches("user:").into()),
                })
                .collect(),
            wait_timer: wait,
            prevent_self_review: self_review,
            branches: branches.iter().map(|b| b.to_string()).collect(),
        }
    }

    fn state(
        reviewers: &[(&str, u64)],
        wait: u32,
        self_review: bool,
        branches: Option<&[&str]>,
    ) -> EnvironmentState {
        EnvironmentState {
            wait_timer: wait,
            prevent_self_review: self_review,
            reviewers: reviewers
                .iter()
                .map(|(slug, id)| ReviewerId::Team {
                    slug: slug.to_string(),
                    id: *id,
                })
                .collect(),
            branches: branches.map(|b| b.iter().map(|s| s.to_string()).collect()),
            protected_branches_only: false,
            html_url: None,
        }
    }

    /// In sync: the same reviewers in another order and case, the same branch set.
    #[test]
    fn in_sync_when_sets_match() {
        let want = approval(&["team:QA", "team:tech-leads"], 5, true, &["main"]);
        let have = state(&[("tech-leads", 2), ("qa", 1)], 5, true, Some(&["main"]));
        assert_eq!(compare("testing", &want, Some(&have)), []);
    }

    #[test]
    fn a_missing_environment_is_one_drift() {
        let want = approval(&["team:qa"], 0, false, &["main"]);
        let d = compare("testing", &want, None);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].setting, "environment");
        assert_eq!(
            d[0].sentence("promotion.yml"),
            "testing: the environment does not exist on GitHub, promotion.yml wants reviewers team:qa, wait timer none, branches main"
        );
    }

    #[test]
    fn each_setting_that_differs_is_named() {
        let want = approval(
            &["team:product-owners", "team:engineering-managers"],
            5,
            true,
            &["main"],
        );
        let have = state(&[], 0, false, None);
        let d = compare("production", &want, Some(&have));
        let settings: Vec<&str> = d.iter().map(|d| d.setting).collect();
        assert_eq!(
            settings,
            [
                "required reviewers",
                "wait timer",
                "prevent self-review",
                "deployment branches"
            ]
        );
        assert_eq!(
            d[0].sentence("promotion.yml"),
            "production: no required reviewers on GitHub, promotion.yml wants team:product-owners, team:engineering-managers"
        );
        assert_eq!(
            d[3].sentence("promotion.yml"),
            "production: deployment branches on GitHub is any branch, promotion.yml wants main"
        );
    }

    /// The self-review rule lives on GitHub's reviewers rule: without reviewers it is not drift.
    #[test]
    fn self_review_without_reviewers_is_not_drift() {
        let want = approval(&[], 0, true, &[]);
        assert_eq!(compare("dev", &want, Some(&state(&[], 0, false, None))), []);
    }

    #[test]
    fn protected_branches_only_differs_from_patterns() {
        let want = approval(&[], 0, false, &["main"]);
        let mut have = state(&[], 0, false, None);
        have.protected_branches_only = true;
        let d = compare("dev", &want, Some(&have));
        assert_eq!(d[0].have, "protected branches only");
    }

    #[test]
    fn terminal_tables_align_columns() {
        let out = terminal_table(
            &["Environment", "Setting"],
            &[["production".into(), "wait timer".into()]],
        );
        assert_eq!(
            out,
            "Environment  Setting\n-----------  ----------\nproduction   wait timer\n"
        );
    }
}
