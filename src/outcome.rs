//! How a run ended, as an exit code and as the `outcome` output. The one place that maps
//! meanings to codes; every command reports through it.

use std::fmt;
use std::process::ExitCode;

/// Serialized in reports as its [`word`](Outcome::word) (kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// 0: everything asked for was done.
    Success,
    /// 1: a deployment or check failed (and, by policy, was rolled back).
    Failed,
    /// 2: invalid input or config; nothing was changed.
    Invalid,
    /// 3: refused by a gate or a lock.
    Refused,
    /// 4: the rollback itself failed; a human must act.
    RollbackFailed,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::Invalid => 2,
            Outcome::Refused => 3,
            Outcome::RollbackFailed => 4,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Refused => "refused",
            Outcome::RollbackFailed => "rollback-failed",
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// An error that carries its outcome, for failures that are not config errors: wrap the cause
/// with `Classified::new(Outcome::Refused, err)` where the meaning is known.
#[derive(Debug)]
pub struct Classified {
    pub outcome: Outcome,
    pub source: anyhow::Error,
}

impl Classified {
    pub fn invalid(source: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(Classified {
            outcome: Outcome::Invalid,
            source: source.into(),
        })
    }
}

impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause is the message; this layer only adds the meaning.
        write!(f, "{:#}", self.source)
    }
}

impl std::error::Error for Classified {}

/// The outcome an error stands for: the first classified cause in its chain; invalid config is
/// always `Invalid`; anything unclassified is a failure.
pub fn outcome_of(err: &anyhow::Error) -> Outcome {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Classified>() {
            return c.outcome;
        }
        if cause
            .downcast_ref::<crate::config::ConfigErrors>()
            .is_some()
            || cause.downcast_ref::<clap::Error>().is_some()
        {
            return Outcome::Invalid;
        }
    }
    Outcome::Failed
}

/// An error and its causes on one line, as anyhow's `{:#}` prints them: for errors that are not
/// `anyhow::Error` (an `ApplyError`, a registry error) in logs, annotations and reports.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_stable() {
        let all = [
            Outcome::Success,
            Outcome::Failed,
            Outcome::Invalid,
            Outcome::Refused,
            Outcome::RollbackFailed,
        ];
        let codes: Vec<u8> = all.iter().map(|o| o.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn classification_walks_the_chain() {
        let err = Classified::invalid(anyhow::anyhow!("bad image")).context("reading inputs");
        assert_eq!(outcome_of(&err), Outcome::Invalid);
        assert_eq!(
            outcome_of(&anyhow::anyhow!("network down")),
            Outcome::Failed
        );
    }
}
