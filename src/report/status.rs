//! `promote status`: every environment side by side, as a job summary and as terminal text.

use jiff::Timestamp;
use serde::Serialize;

use super::text::*;
use crate::actions::{Priority, Summary, table};
use crate::github::DeploymentState;
use crate::kube::Colour;
use crate::untrusted::{code, escape_md_with_code, short_digest, short_sha};

/// `promote status`: every environment of the promotion, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub environments: Vec<EnvironmentStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    pub environment: String,
    pub namespace: String,
    /// Set when the cluster could not be read; the rows are then empty.
    pub error: Option<String>,
    pub services: Vec<ServiceStatus>,
    /// The latest GitHub deployment's outcome for this environment, when GitHub was read.
    pub last_outcome: Option<LastOutcome>,
    pub last_deployed_by: Option<String>,
    pub last_deployed_at: Option<Timestamp>,
}

/// What GitHub says of an environment's newest deployment. Serialized as GitHub's state word
/// (`success`, `in_progress`, …), `created` (no status yet), `never deployed`, or
/// `unknown (<why>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastOutcome {
    State(DeploymentState),
    /// A deployment without any status.
    Created,
    NeverDeployed,
    /// GitHub could not be read; the reason.
    Unknown(String),
}

impl std::fmt::Display for LastOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastOutcome::State(state) => f.write_str(state.word()),
            LastOutcome::Created => f.write_str("created"),
            LastOutcome::NeverDeployed => f.write_str("never deployed"),
            LastOutcome::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

impl Serialize for LastOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// False when the Deployment does not exist.
    pub deployed: bool,
    pub digest: Option<String>,
    pub git_sha: Option<String>,
    pub revision: Option<i64>,
    pub ready: Option<i32>,
    pub desired: Option<i32>,
    /// When the current revision was created.
    pub since: Option<Timestamp>,
    /// The digest the last successful verification approved (cluster annotation).
    pub verified_digest: Option<String>,
    pub deployed_by: Option<String>,
    /// `rolling`, `blue-green` or `canary`: the environment's strategy for it.
    pub strategy: &'static str,
    /// Both colours, when the service runs blue-green (the fields above describe the serving
    /// colour's Deployment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStatus>,
    /// The `<deployment>-canary` Deployment, while one exists (a canary under way, or one an
    /// abort scaled to zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<TrackStatus>,
}

/// One service's blue-green as the cluster has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlueGreenStatus {
    /// The colour the Service selects; none before the first switch.
    pub serving: Option<Colour>,
    pub switched_at: Option<Timestamp>,
    /// When the previous colour may be scaled to zero (`keepPrevious` after the switch).
    pub previous_kept_until: Option<Timestamp>,
    /// The colours' Deployments that exist, blue first.
    pub colours: Vec<TrackStatus>,
}

/// A Deployment beside the plain one: a colour or the canary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackStatus {
    /// `blue`, `green` or `canary`.
    pub track: String,
    pub deployment: String,
    pub digest: Option<String>,
    pub replicas: i32,
    pub ready: i32,
    /// Whether its Service sends it traffic.
    pub serving: bool,
}

/// The live Environment Comparison as a job summary: services as rows, an environment per
/// column, then the differences along the path and any environment that could not be read.
/// Times are absolute (UTC): a job summary is read long after it was written, when "2h ago"
/// would be wrong.
pub fn status_summary(report: &StatusReport) -> Summary {
    let mut summary = Summary::new();
    let services = service_names(report);
    let mut head = format!(
        "## 🌐 Environment comparison\n\nLive from each environment's cluster · {} environment{} \
         · {} service{} · times in UTC\n",
        report.environments.len(),
        plural(report.environments.len()),
        services.len(),
        plural(services.len())
    );
    let unreadable: Vec<&EnvironmentStatus> = report
        .environments
        .iter()
        .filter(|e| e.error.is_some())
        .collect();
    if !unreadable.is_empty() {
        head.push_str("\n> [!WARNING]\n");
        for env in unreadable {
            head.push_str(&format!(
                "> **{}** (namespace {}): the cluster could not be read: {}\n",
                escape_md_with_code(&env.environment),
                code(&env.namespace),
                escape_md_with_code(env.error.as_deref().unwrap_or_default())
            ));
            head.push_str(">\n");
        }
        // The last `>` line would be an empty trailing paragraph.
        head.truncate(head.len() - ">\n".len());
    }
    summary.section(Priority::Essential, head);

    let headers: Vec<String> = std::iter::once("Service".to_string())
        .chain(
            report
                .environments
                .iter()
                .map(|e| format!("**{}**", escape_md_with_code(&e.environment))),
        )
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for service in &services {
        let mut row = vec![format!("**{}**", escape_md_with_code(service))];
        for env in &report.environments {
            row.push(status_cell(env, service));
        }
        rows.push(row);
    }
    let mut last = vec!["*Last deployment*".to_string()];
    for env in &report.environments {
        last.push(last_deployment_cell(env));
    }
    rows.push(last);
    let mut namespaces = vec!["*Namespace*".to_string()];
    namespaces.extend(report.environments.iter().map(|e| code(&e.namespace)));
    rows.push(namespaces);
    summary.section(Priority::Essential, table(&header_refs, &rows));

    let differences = differences(report, &services);
    if !differences.is_empty() {
        let mut out = "### Along the path\n\n".to_string();
        for line in differences {
            out.push_str(&format!("- {line}\n"));
        }
        summary.section(Priority::High, out);
    }
    summary
}

/// Every service in first-seen order across environments.
pub(super) fn service_names(report: &StatusReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for env in &report.environments {
        for s in &env.services {
            if !names.contains(&s.service) {
                names.push(s.service.clone());
            }
        }
    }
    names
}

pub(super) fn find_service<'a>(
    env: &'a EnvironmentStatus,
    service: &str,
) -> Option<&'a ServiceStatus> {
    env.services.iter().find(|s| s.service == service)
}

pub(super) fn status_cell(env: &EnvironmentStatus, service: &str) -> String {
    if env.error.is_some() {
        return "⚠️ unreadable".to_string();
    }
    let Some(s) = find_service(env, service).filter(|s| s.deployed) else {
        return "— not deployed".to_string();
    };
    let mut lines = Vec::new();
    let mut first = s
        .digest
        .as_deref()
        .map_or("digest unknown".to_string(), digest_code);
    if let (Some(digest), Some(verified)) = (&s.digest, &s.verified_digest) {
        first.push_str(if digest == verified {
            " ✔︎ verified"
        } else {
            " ⚠️ not verified"
        });
    }
    lines.push(first);
    let mut second = Vec::new();
    if let Some(sha) = &s.git_sha {
        second.push(format!("commit {}", code(short_sha(sha))));
    }
    if let Some(revision) = s.revision {
        second.push(format!("rev {revision}"));
    }
    if !second.is_empty() {
        lines.push(second.join(" · "));
    }
    let mut third = Vec::new();
    if let Some(ready) = replicas_text(s) {
        third.push(ready);
    }
    if let Some(since) = s.since.map(short_time) {
        third.push(format!("since {since}"));
    }
    if let Some(by) = &s.deployed_by {
        third.push(format!("by {}", escape_md_with_code(by)));
    }
    if !third.is_empty() {
        lines.push(third.join(" · "));
    }
    lines.extend(delivery_lines(s));
    lines.join("<br>")
}

/// The colours (which serves, since when, how long the other is kept) and a canary, as cell
/// lines: `🔵 blue serves · switched Mar 14 10:10`, `green 3/3 · kept until Mar 14 10:40`.
fn delivery_lines(s: &ServiceStatus) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(bg) = &s.blue_green {
        let mut head = match bg.serving {
            Some(c) => format!("{} {c} serves", colour_mark(c)),
            None => "no colour serves yet".to_string(),
        };
        if let Some(at) = bg.switched_at.map(short_time) {
            head.push_str(&format!(" · switched {at}"));
        }
        lines.push(head);
        for colour in bg.colours.iter().filter(|c| !c.serving) {
            let mut line = track_text(colour);
            if colour.replicas > 0
                && let Some(until) = bg.previous_kept_until.map(short_time)
            {
                line.push_str(&format!(" · kept until {until}"));
            }
            lines.push(line);
        }
    }
    if let Some(canary) = &s.canary {
        lines.push(format!("🐤 {}", track_text(canary)));
    }
    lines
}

/// `green 3/3 on `sha256:4f1c2d3e4a5b``.
fn track_text(t: &TrackStatus) -> String {
    let mut text = format!(
        "{} {}/{}",
        escape_md_with_code(&t.track),
        t.ready,
        t.replicas
    );
    if let Some(digest) = &t.digest {
        text.push_str(&format!(" on {}", digest_code(digest)));
    }
    text
}

fn colour_mark(colour: Colour) -> &'static str {
    match colour {
        Colour::Blue => "🔵",
        Colour::Green => "🟩",
    }
}

/// `🟢 3/3 ready`, `🟡 1/3 ready`, `🔴 0/3 ready`.
pub(super) fn replicas_text(s: &ServiceStatus) -> Option<String> {
    let (ready, desired) = (s.ready.unwrap_or(0), s.desired?);
    let light = if ready >= desired && desired > 0 {
        "🟢"
    } else if ready > 0 {
        "🟡"
    } else if desired == 0 {
        "⚪"
    } else {
        "🔴"
    };
    Some(format!("{light} {ready}/{desired} ready"))
}

pub(super) fn last_deployment_cell(env: &EnvironmentStatus) -> String {
    let mut parts = Vec::new();
    if let Some(outcome) = &env.last_outcome {
        parts.push(format!(
            "{} {}",
            outcome_mark(outcome),
            escape_md_with_code(&outcome.to_string())
        ));
    }
    if let Some(at) = env.last_deployed_at.map(short_time) {
        parts.push(at);
    }
    if let Some(by) = &env.last_deployed_by {
        parts.push(format!("by {}", escape_md_with_code(by)));
    }
    if parts.is_empty() {
        "—".to_string()
    } else {
        parts.join(" · ")
    }
}

pub(super) fn outcome_mark(outcome: &LastOutcome) -> &'static str {
    match outcome {
        LastOutcome::State(DeploymentState::Success) => "✅",
        LastOutcome::State(DeploymentState::Failure | DeploymentState::Error) => "❌",
        LastOutcome::State(
            DeploymentState::InProgress | DeploymentState::Queued | DeploymentState::Pending,
        ) => "⏳",
        LastOutcome::State(DeploymentState::Inactive) => "⚪",
        _ => "•",
    }
}

/// For each environment and the one before it: which services run a different digest.
pub(super) fn differences(report: &StatusReport, services: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for pair in report.environments.windows(2) {
        let (lower, upper) = (&pair[0], &pair[1]);
        if lower.error.is_some() || upper.error.is_some() {
            continue;
        }
        let digest = |env: &EnvironmentStatus, service: &str| {
            find_service(env, service)
                .filter(|s| s.deployed)
                .and_then(|s| s.digest.clone())
        };
        let differing: Vec<String> = services
            .iter()
            .filter(|s| digest(lower, s) != digest(upper, s))
            .map(|s| code(s))
            .collect();
        let (l, u) = (
            escape_md_with_code(&lower.environment),
            escape_md_with_code(&upper.environment),
        );
        lines.push(if differing.is_empty() {
            format!("**{l}** → **{u}**: the same release")
        } else {
            match differing.as_slice() {
                [one] => format!("**{l}** → **{u}**: {one} runs a different digest"),
                many => format!(
                    "**{l}** → **{u}**: {} services run different digests: {}",
                    many.len(),
                    many.join(", ")
                ),
            }
        });
    }
    lines
}

/// `production auth-service: blue serves (switched 2h ago); green 3/3 sha256:4f1c2d3e4a5b kept
/// 28m more`, `… canary 1/3 sha256:…`: the colours and the canary, for the terminal.
fn delivery_text(env: &EnvironmentStatus, s: &ServiceStatus, now: Timestamp) -> Option<String> {
    let track = |t: &TrackStatus| {
        let mut text = format!("{} {}/{}", plain(&t.track), t.ready, t.replicas);
        if let Some(digest) = &t.digest {
            text.push_str(&format!(" {}", plain(&short_digest(digest))));
        }
        text
    };
    let mut parts = Vec::new();
    if let Some(bg) = &s.blue_green {
        let mut head = bg.serving.map_or("no colour serves yet".to_string(), |c| {
            format!("{c} serves")
        });
        if let Some(at) = bg.switched_at {
            head.push_str(&format!(" (switched {} ago)", age(at, now)));
        }
        parts.push(head);
        for colour in bg.colours.iter().filter(|c| !c.serving) {
            let mut text = track(colour);
            match bg.previous_kept_until {
                Some(until) if colour.replicas > 0 && until > now => {
                    text.push_str(&format!(" kept {} more", age(now, until)));
                }
                Some(_) if colour.replicas > 0 => text.push_str(" kept past keepPrevious"),
                _ => {}
            }
            parts.push(text);
        }
    }
    if let Some(canary) = &s.canary {
        parts.push(track(canary));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{} {}: {}",
            plain(&env.environment),
            plain(&s.service),
            parts.join("; ")
        )
    })
}

/// The live Environment Comparison for the terminal: one aligned row per environment and
/// service, an error line for an environment whose cluster could not be read.
pub fn status_text(report: &StatusReport, now: Timestamp) -> String {
    let mut out = format!(
        "Environment comparison (live, {})\n\n",
        now.strftime("%Y-%m-%d %H:%M UTC")
    );
    let mut rows = vec![
        [
            "ENVIRONMENT",
            "SERVICE",
            "DIGEST",
            "COMMIT",
            "REV",
            "READY",
            "AGE",
            "BY",
            "VERIFIED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut errors = Vec::new();
    for env in &report.environments {
        if let Some(error) = &env.error {
            errors.push(format!(
                "{}: the cluster could not be read: {}",
                plain(&env.environment),
                plain(error)
            ));
            rows.push(vec![plain(&env.environment), "(unreadable)".to_string()]);
            continue;
        }
        if env.services.is_empty() {
            rows.push(vec![plain(&env.environment), "(no services)".to_string()]);
        }
        for s in &env.services {
            if !s.deployed {
                rows.push(vec![
                    plain(&env.environment),
                    plain(&s.service),
                    "not deployed".to_string(),
                ]);
                continue;
            }
            let dash = || "-".to_string();
            rows.push(vec![
                plain(&env.environment),
                plain(&s.service),
                s.digest
                    .as_deref()
                    .map_or_else(dash, |d| plain(&short_digest(d))),
                s.git_sha
                    .as_deref()
                    .map_or_else(dash, |g| plain(short_sha(g))),
                s.revision.map_or_else(dash, |r| r.to_string()),
                match (s.ready, s.desired) {
                    (r, Some(d)) => format!("{}/{d}", r.unwrap_or(0)),
                    _ => dash(),
                },
                s.since.map_or_else(dash, |t| age(t, now)),
                s.deployed_by.as_deref().map_or_else(dash, plain),
                match (&s.digest, &s.verified_digest) {
                    (Some(d), Some(v)) if d == v => "yes".to_string(),
                    (_, Some(_)) => "no".to_string(),
                    _ => dash(),
                },
            ]);
        }
    }
    out.push_str(&aligned(&rows, ""));
    let deliveries: Vec<String> = report
        .environments
        .iter()
        .filter(|e| e.error.is_none())
        .flat_map(|e| e.services.iter().filter_map(|s| delivery_text(e, s, now)))
        .collect();
    if !deliveries.is_empty() {
        out.push('\n');
        for line in deliveries {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let last: Vec<String> = report
        .environments
        .iter()
        .filter(|e| e.last_outcome.is_some() || e.last_deployed_at.is_some())
        .map(|e| {
            let mut text = format!(
                "{} {}",
                plain(&e.environment),
                e.last_outcome
                    .as_ref()
                    .map_or("-".into(), |o| plain(&o.to_string()))
            );
            if let Some(age) = e.last_deployed_at.map(|t| age(t, now)) {
                text.push_str(&format!(" {age} ago"));
            }
            if let Some(by) = &e.last_deployed_by {
                text.push_str(&format!(" by {}", plain(by)));
            }
            text
        })
        .collect();
    if !last.is_empty() {
        out.push_str(&format!("\nlast deployments: {}\n", last.join("; ")));
    }
    for error in errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{now, status};

    /// Production blue-green (green serves, blue kept), testing with a canary under way.
    fn progressive() -> StatusReport {
        let mut report = status();
        let track = |track: &str, digest: &str, replicas, serving| TrackStatus {
            track: track.into(),
            deployment: format!("auth-service-{track}"),
            digest: Some(digest.into()),
            replicas,
            ready: replicas,
            serving,
        };
        let auth = report.environments[0].services[0].clone();
        let production = &mut report.environments[2];
        production.error = None;
        production.services = vec![ServiceStatus {
            strategy: "blue-green",
            blue_green: Some(BlueGreenStatus {
                serving: Some(Colour::Green),
                switched_at: Some("2025-03-14T11:50:00Z".parse().unwrap()),
                previous_kept_until: Some("2025-03-14T12:20:00Z".parse().unwrap()),
                colours: vec![
                    track("blue", crate::report::fixtures::COURSE_DIGEST, 3, false),
                    track("green", crate::report::fixtures::AUTH_DIGEST, 3, true),
                ],
            }),
            ..auth
        }];
        let testing = &mut report.environments[1].services[0];
        testing.strategy = "canary";
        testing.canary = Some(track(
            "canary",
            crate::report::fixtures::COURSE_DIGEST,
            1,
            true,
        ));
        report
    }

    #[test]
    fn status_shows_both_colours_the_serving_one_the_switch_and_a_canary() {
        let report = progressive();
        let summary = status_summary(&report).render();
        assert!(
            summary.contains("🟩 green serves · switched Mar 14 11:50<br>blue 3/3 on "),
            "{summary}"
        );
        assert!(summary.contains(" · kept until Mar 14 12:20"), "{summary}");
        assert!(summary.contains("🐤 canary 1/1 on "), "{summary}");

        let text = status_text(&report, now());
        assert!(
            text.contains(
                "production auth-service: green serves (switched 20m ago); blue 3/3 \
                 sha256:9a0b1c2d3e4f kept 10m more"
            ),
            "{text}"
        );
        assert!(
            text.contains("testing auth-service: canary 1/1 sha256:9a0b1c2d3e4f"),
            "{text}"
        );

        let json = serde_json::to_value(&report).unwrap();
        let bg = &json["environments"][2]["services"][0];
        assert_eq!(bg["strategy"], "blue-green");
        assert_eq!(bg["blue_green"]["serving"], "green");
        assert_eq!(bg["blue_green"]["switched_at"], "2025-03-14T11:50:00Z");
        assert_eq!(
            json["environments"][0]["services"][0].get("blue_green"),
            None
        );
    }

    #[test]
    fn status_summary_compares_environments_and_names_the_unreadable_one() {
        let text = status_summary(&status()).render();
        assert!(text.starts_with("## 🌐 Environment comparison\n"), "{text}");
        assert!(
            text.contains(
                "> **production** (namespace <code>production</code>): the cluster could not be \
             read: cannot reach https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden \\| &lt;b&gt;"
            ),
            "{text}"
        );
        assert!(text.contains("| Service | **development** | **testing** | **production** |"));
        assert!(
            text.contains("🟢 3/3 ready · since Mar 14 10:10 · by octocat"),
            "{text}"
        );
        assert!(text.contains("🟡 1/3 ready"));
        assert!(text.contains("⚠️ not verified"));
        assert!(text.contains("| ⚠️ unreadable |"));
        assert!(
            text.contains(
                "- **development** → **testing**: <code>course-service</code> runs a different digest"
            ),
            "{text}"
        );
        assert!(
            !text.contains("**testing** → **production**"),
            "unreadable: no comparison"
        );
    }

    #[test]
    fn status_text_is_an_aligned_table_with_an_error_line() {
        let text = status_text(&status(), now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Environment comparison (live, 2025-03-14 12:10 UTC)"
        );
        let header = lines[2];
        assert!(
            header.starts_with("ENVIRONMENT  SERVICE         DIGEST"),
            "{text}"
        );
        let digest_column = header.find("DIGEST").unwrap();
        for line in &lines[3..6] {
            assert_eq!(&line[digest_column..digest_column + 7], "sha256:", "{text}");
        }
        assert!(text.contains("development  auth-service    sha256:4f1c2d3e4a5b  3f2a9c1  9"));
        assert!(text.contains("production   (unreadable)"));
        assert!(text.contains(
            "error: production: the cluster could not be read: cannot reach \
             https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden | <b>"
        ));
        assert!(text.contains("last deployments: development success 2h ago by octocat"));
    }
}
