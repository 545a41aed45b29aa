//! The placeholders of a metric query: `{{namespace}}`, `{{service}}` and `{{track}}`, filled
//! in for the workload being analysed.

use std::fmt;

use serde::Serialize;

/// Which Deployment of a service the numbers are about: the release already serving, or the
/// canary. A plain rolling update is analysed as `stable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Track {
    Stable,
    Canary,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Stable => "stable",
            Track::Canary => "canary",
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workload a query is rendered for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub namespace: String,
    pub service: String,
    pub track: Track,
}

impl Target {
    pub fn new(namespace: &str, service: &str, track: Track) -> Target {
        Target {
            namespace: namespace.to_string(),
            service: service.to_string(),
            track,
        }
    }
}

/// The placeholders [`render`] fills in, without their braces.
pub const PLACEHOLDERS: [&str; 3] = ["namespace", "service", "track"];

/// `query` with every `{{namespace}}`, `{{service}}` and `{{track}}` (spaces inside the braces
/// allowed) replaced by the target's values, verbatim: they are DNS labels, so nothing in them
/// needs quoting inside a PromQL string. Anything else between `{{` and `}}` is left as it is;
/// rejecting it is configuration validation's job.
pub fn render(query: &str, target: &Target) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}").map(|i| open + 2 + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        let value = match rest[open + 2..close].trim() {
            "namespace" => Some(target.namespace.as_str()),
            "service" => Some(target.service.as_str()),
            "track" => Some(target.track.as_str()),
            _ => None,
        };
        match value {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..close + 2]),
        }
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in() {
        let canary = Target::new("testing", "web", Track::Canary);
        let cases: &[(&str, &str, &str)] = &[
            ("no placeholder", "up", "up"),
            (
                "all three",
                r#"rate(x{namespace="{{namespace}}",service="{{service}}",track="{{track}}"}[1m])"#,
                r#"rate(x{namespace="testing",service="web",track="canary"}[1m])"#,
            ),
            ("repeated", "{{service}}/{{service}}", "web/web"),
            (
                "spaces inside the braces",
                "{{ namespace }}-{{track }}",
                "testing-canary",
            ),
            (
                "unknown placeholder left alone",
                "{{pod}} {{service}}",
                "{{pod}} web",
            ),
            ("unclosed braces left alone", "x{{service", "x{{service"),
            (
                "label matcher braces are not placeholders",
                r#"x{a="b"} + {{service}}"#,
                r#"x{a="b"} + web"#,
            ),
            ("adjacent", "{{namespace}}{{service}}", "testingweb"),
        ];
        for (case, query, want) in cases {
            assert_eq!(render(query, &canary), *want, "case: {case}");
        }
        let stable = Target::new("production", "api", Track::Stable);
        assert_eq!(render("{{track}}", &stable), "stable");
    }
}
