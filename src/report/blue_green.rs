//! Blue-green as data: each service's two colours, which one serves, the switch and every
//! transition, for the JSON report, the job summary and `status`.

use jiff::Timestamp;
use serde::Serialize;

use super::text::human_ms;
use crate::actions::table;
use crate::kube::{Colour, ColourState};
use crate::untrusted::{code, escape_md_with_code};

/// One service's blue-green deploy.
#[derive(Debug, Clone, Serialize)]
pub struct BlueGreenReport {
    pub service: String,
    /// The base Deployment (`web`); the colours are `web-blue` / `web-green`.
    pub deployment: String,
    /// The Services whose selector switches, and their previews.
    pub services: Vec<String>,
    pub previews: Vec<String>,
    /// The colour serving before this deploy (after a migration, the migrated one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_before: Option<Colour>,
    /// The colour the release went to.
    pub release_colour: Colour,
    /// The colour serving at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<Colour>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Timestamp>,
    /// How long the selector switch took (every Service, one request each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_back_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_back_ms: Option<u128>,
    /// Until when the previous colour stays at full size (`keepPrevious`); `None` with
    /// `until-next-promotion` or when nothing is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_kept_until: Option<Timestamp>,
    /// A rolling environment moved to blue-green by this deploy: its Deployment became this
    /// colour first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrated_to: Option<Colour>,
    /// Both colours as they stood at the end.
    pub colours: Vec<ColourRow>,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColourRow {
    pub colour: Colour,
    pub deployment: String,
    #[serde(flatten)]
    pub state: ColourState,
    pub serving: bool,
}

/// One step of the deploy, timed.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub at: Timestamp,
    /// `migrated`, `deployed`, `previewed`, `switched`, `switched-back`, `scaled-down`, …
    pub event: String,
    pub detail: String,
}

impl BlueGreenReport {
    pub fn new(service: &str, deployment: &str, release_colour: Colour) -> BlueGreenReport {
        BlueGreenReport {
            service: service.to_string(),
            deployment: deployment.to_string(),
            services: Vec::new(),
            previews: Vec::new(),
            active_before: None,
            release_colour,
            serving: None,
            switched_at: None,
            switch_ms: None,
            switched_back_at: None,
            switch_back_ms: None,
            previous_kept_until: None,
            migrated_to: None,
            colours: Vec::new(),
            transitions: Vec::new(),
        }
    }

    /// Records a transition now.
    pub fn record(&mut self, event: &str, detail: String) {
        self.transitions.push(Transition {
            at: Timestamp::now(),
            event: event.to_string(),
            detail,
        });
    }
}

fn colour_cell(serving: bool) -> &'static str {
    if serving { "✅ serving" } else { "idle" }
}

/// The job summary's blue-green section: per service, both colours and which serves, the
/// switch time, and the transitions.
pub(super) fn blue_green_section(reports: &[BlueGreenReport]) -> Option<String> {
    if reports.is_empty() {
        return None;
    }
    let mut out = "### Blue-green\n\n".to_string();
    for r in reports {
        let serving = r.serving.map_or("none".to_string(), |c| format!("**{c}**"));
        out.push_str(&format!(
            "{} · release on {} · serving: {serving}",
            code(&r.service),
            r.release_colour
        ));
        if let (Some(at), Some(ms)) = (r.switched_at, r.switch_ms) {
            out.push_str(&format!(" · switched at {} in {}", at, human_ms(ms)));
        }
        if let (Some(at), Some(ms)) = (r.switched_back_at, r.switch_back_ms) {
            out.push_str(&format!(" · switched back at {} in {}", at, human_ms(ms)));
        }
        if let Some(until) = r.previous_kept_until {
            out.push_str(&format!(" · previous kept until {until}"));
        }
        out.push_str("\n\n");
        let rows: Vec<Vec<String>> = r
            .colours
            .iter()
            .map(|c| {
                vec![
                    c.colour.to_string(),
                    code(&c.deployment),
                    c.state
                        .image
                        .as_deref()
                        .map_or_else(|| "—".to_string(), code),
                    format!("{}/{}", c.state.ready, c.state.replicas),
                    colour_cell(c.serving).to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Colour", "Deployment", "Image", "Ready", "Traffic"],
            &rows,
        ));
        let steps: Vec<Vec<String>> = r
            .transitions
            .iter()
            .map(|t| {
                vec![
                    t.at.to_string(),
                    code(&t.event),
                    escape_md_with_code(&t.detail),
                ]
            })
            .collect();
        if !steps.is_empty() {
            out.push('\n');
            out.push_str(&table(&["At", "Step", "What"], &steps));
        }
        out.push('\n');
    }
    Some(out)
}
