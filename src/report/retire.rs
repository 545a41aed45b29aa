//! `promote retire` as data and text: per environment and blue-green service, the colour that
//! serves, the previous colour, and whether its `keepPrevious` window let it be scaled to zero.

use jiff::Timestamp;
use serde::Serialize;

use crate::actions::{Priority, Summary, table};
use crate::kube::{Colour, Retirement, colour_name};
use crate::outcome::Outcome;
use crate::untrusted::{code, escape_md_with_code};

/// What one `promote retire` did.
#[derive(Debug, Clone, Serialize)]
pub struct RetireReport {
    pub command: &'static str,
    pub outcome: Outcome,
    pub summary: String,
    pub started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub duration_ms: u128,
    pub environments: Vec<RetireEnvironment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetireEnvironment {
    pub environment: String,
    pub namespace: String,
    /// `30m`, `until-next-promotion`: the window the decisions used.
    pub keep_previous: String,
    pub services: Vec<RetiredService>,
    /// Why the environment could not be looked at or finished (cluster, lock, API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went unusually but did not stop it (a lease taken over from a run that died).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetiredService {
    pub service: String,
    /// The base Deployment (`web`); the colours are `web-blue` / `web-green`.
    pub deployment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<Colour>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Timestamp>,
    #[serde(flatten)]
    pub decision: Retirement,
    /// Set once the previous colour's scale-down was accepted by the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaled_down_at: Option<Timestamp>,
}

impl RetireReport {
    pub fn new(started_at: Timestamp) -> RetireReport {
        RetireReport {
            command: "retire",
            outcome: Outcome::Success,
            summary: String::new(),
            started_at,
            finished_at: None,
            duration_ms: 0,
            environments: Vec::new(),
        }
    }

    /// How many previous colours were scaled to zero.
    pub fn retired(&self) -> usize {
        self.environments
            .iter()
            .flat_map(|e| &e.services)
            .filter(|s| s.scaled_down_at.is_some())
            .count()
    }
}

/// `web-blue (3 replicas) → 0`, `web-blue kept until 10:30:00Z`, `nothing kept`.
fn decision_text(service: &RetiredService) -> String {
    let name = |colour: Colour| colour_name(&service.deployment, colour);
    match service.decision {
        Retirement::ScaleDown { colour, replicas } if service.scaled_down_at.is_some() => {
            format!("{} scaled from {replicas} to 0", name(colour))
        }
        Retirement::ScaleDown { colour, replicas } => {
            format!("{} ({replicas} replicas) not scaled down", name(colour))
        }
        Retirement::Keep {
            colour,
            until: Some(until),
        } => format!("{} kept until {}", name(colour), until.strftime("%F %TZ")),
        Retirement::Keep {
            colour,
            until: None,
        } => {
            format!("{} kept until the next promotion", name(colour))
        }
        Retirement::NothingKept => "nothing kept besides the serving colour".to_string(),
    }
}

/// The terminal lines: one per service, then the summary sentence.
pub fn retire_text(report: &RetireReport) -> String {
    let mut out = String::new();
    for env in &report.environments {
        if let Some(error) = &env.error {
            out.push_str(&format!("{}: {error}\n", env.environment));
        }
        for warning in &env.warnings {
            out.push_str(&format!("{}: warning: {warning}\n", env.environment));
        }
        for service in &env.services {
            out.push_str(&format!(
                "{} {}: {}\n",
                env.environment,
                service.service,
                decision_text(service)
            ));
        }
    }
    out.push_str(&report.summary);
    out.push('\n');
    out
}

/// The job summary: the sentence, then one row per blue-green service.
pub fn retire_summary(report: &RetireReport) -> Summary {
    let mut summary = Summary::new();
    let icon = if report.outcome == Outcome::Success {
        "✅"
    } else {
        "❌"
    };
    summary.section(
        Priority::Essential,
        format!(
            "## {icon} Previous colours\n\n{}\n",
            escape_md_with_code(&report.summary)
        ),
    );
    let mut rows = Vec::new();
    for env in &report.environments {
        if let Some(error) = &env.error {
            rows.push(vec![
                format!("**{}**", escape_md_with_code(&env.environment)),
                String::new(),
                String::new(),
                format!("⚠️ {}", escape_md_with_code(error)),
            ]);
        }
        for warning in &env.warnings {
            rows.push(vec![
                format!("**{}**", escape_md_with_code(&env.environment)),
                String::new(),
                String::new(),
                format!("⚠️ {}", escape_md_with_code(warning)),
            ]);
        }
        for service in &env.services {
            rows.push(vec![
                format!(
                    "**{}** (`keepPrevious: {}`)",
                    escape_md_with_code(&env.environment),
                    env.keep_previous
                ),
                escape_md_with_code(&service.service),
                service
                    .serving
                    .map(|c| code(&colour_name(&service.deployment, c)))
                    .unwrap_or_default(),
                escape_md_with_code(&decision_text(service)),
            ]);
        }
    }
    if !rows.is_empty() {
        summary.section(
            Priority::High,
            table(
                &["Environment", "Service", "Serving", "Previous colour"],
                &rows,
            ),
        );
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RetireReport {
        let at: Timestamp = "2026-12-06T10:00:00Z".parse().expect("a time");
        let mut report = RetireReport::new(at);
        report.summary = "scaled 1 previous colour to zero in production".into();
        report.environments.push(RetireEnvironment {
            environment: "production".into(),
            namespace: "studysphere-prod".into(),
            keep_previous: "30m".into(),
            error: None,
            warnings: vec!["took over the expired lease promote-production-web from run 41".into()],
            services: vec![
                RetiredService {
                    service: "web".into(),
                    deployment: "web".into(),
                    serving: Some(Colour::Green),
                    switched_at: Some(at),
                    decision: Retirement::ScaleDown {
                        colour: Colour::Blue,
                        replicas: 3,
                    },
                    scaled_down_at: Some(at),
                },
                RetiredService {
                    service: "api".into(),
                    deployment: "api".into(),
                    serving: Some(Colour::Blue),
                    switched_at: Some(at),
                    decision: Retirement::Keep {
                        colour: Colour::Green,
                        until: "2026-12-06T10:30:00Z".parse().ok(),
                    },
                    scaled_down_at: None,
                },
            ],
        });
        report
    }

    #[test]
    fn the_summary_names_each_previous_colour_and_what_happened_to_it() {
        let report = report();
        let text = retire_summary(&report).render();
        assert!(text.contains("## ✅ Previous colours"), "{text}");
        assert!(text.contains("web-blue scaled from 3 to 0"), "{text}");
        assert!(
            text.contains("api-green kept until 2026-12-06 10:30:00Z"),
            "{text}"
        );
        assert!(text.contains("<code>web-green</code>"), "{text}");
        assert!(
            text.contains("⚠️ took over the expired lease promote-production-web from run 41"),
            "{text}"
        );
        let terminal = retire_text(&report);
        assert!(
            terminal.contains(
                "production: warning: took over the expired lease promote-production-web from run 41"
            ),
            "{terminal}"
        );
        assert!(
            terminal.contains("production web: web-blue scaled from 3 to 0"),
            "{terminal}"
        );
        assert_eq!(report.retired(), 1);
    }

    #[test]
    fn the_json_says_the_action_and_the_colour() {
        let json = serde_json::to_value(report()).expect("serializes");
        let web = &json["environments"][0]["services"][0];
        assert_eq!(web["action"], "scale-down");
        assert_eq!(web["colour"], "blue");
        assert_eq!(web["replicas"], 3);
        let api = &json["environments"][0]["services"][1];
        assert_eq!(api["action"], "keep");
        assert_eq!(api["until"], "2026-12-06T10:30:00Z");
    }
}
