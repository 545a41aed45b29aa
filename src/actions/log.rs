//! Logging setup: `tracing` to stderr, redacted, shaped for the runner or for a terminal.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

use super::secret::redact;

/// Installs the global `tracing` subscriber.
///
/// Logs go to stderr in both modes: the runner shows stdout and stderr alike, and stdout is kept
/// for workflow commands and, locally, for outputs. In Actions there are no timestamps (the
/// runner stamps every line) and no ANSI colours; locally the compact format is used, coloured
/// only when stderr is a terminal, also without timestamps, as befits a CLI. Targets are hidden.
///
/// The level comes from `PROMOTE_LOG`, else `RUST_LOG` (`EnvFilter` syntax); without either it
/// is `info`, and `debug` for this crate when `verbose` is set (the caller folds in the run's
/// debug logging, `Context::debug`). Every line passes through [`redact`].
///
/// Only the first call installs anything, so tests may call it freely.
pub fn init_logging(in_actions: bool, verbose: bool) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let directives = var("PROMOTE_LOG").or_else(|| var("RUST_LOG"));
    let (filter, rejected) = build_filter(directives.as_deref(), verbose);

    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingWriter(std::io::stderr()))
        .without_time()
        .with_target(false);
    let installed = if in_actions {
        builder.with_ansi(false).try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    if let (Ok(()), Some(error)) = (installed, rejected) {
        tracing::warn!("ignoring the log filter: {error}");
    }
}

/// Debug for our own code only: at debug level the HTTP and TLS stacks log every frame. Targets
/// match by prefix, so `promote` covers the library (`promote_action`) and the binary (`promote`).
const DEBUG: &str = "info,promote=debug";

/// The filter for `directives` (`None` when unset), or the default level and the reason when
/// they do not parse: a typo in `RUST_LOG` should not cost the whole log.
fn build_filter(directives: Option<&str>, debug: bool) -> (EnvFilter, Option<String>) {
    let default = || EnvFilter::new(if debug { DEBUG } else { "info" });
    match directives.map(EnvFilter::try_new) {
        None => (default(), None),
        Some(Ok(filter)) => (filter, None),
        Some(Err(error)) => (
            default(),
            Some(format!("{:?}: {error}", directives.unwrap_or_default())),
        ),
    }
}

/// Redacts each log line before it reaches stderr. The fmt layer formats a whole event into a
/// buffer and hands it over in one `write_all`, so a secret is never split across two writes.
struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::commands::Console;
    use crate::actions::secret::{mask, unique_secret};

    #[test]
    fn filter_defaults_to_info_and_debug_for_this_crate() {
        let (filter, rejected) = build_filter(None, false);
        assert_eq!(filter.to_string(), "info");
        assert!(rejected.is_none());
        let (filter, _) = build_filter(None, true);
        let filter = filter.to_string();
        assert!(filter.contains("promote=debug"), "{filter}");
        assert!(filter.split(',').any(|d| d == "info"), "{filter}");
    }

    #[test]
    fn filter_takes_directives_and_survives_a_typo() {
        let (filter, rejected) = build_filter(Some("warn,kube=debug"), true);
        assert!(rejected.is_none());
        assert!(filter.to_string().contains("kube=debug"));
        let (filter, rejected) = build_filter(Some("info,=[{"), false);
        assert_eq!(filter.to_string(), "info");
        assert!(rejected.is_some_and(|r| r.contains("info,=[{")));
    }

    #[test]
    fn writer_redacts_secrets() {
        let secret = unique_secret("log");
        mask(&secret, &Console::new(false));
        let mut writer = RedactingWriter(Vec::new());
        let line = format!(" INFO using token {secret}\n");
        assert_eq!(writer.write(line.as_bytes()).ok(), Some(line.len()));
        assert_eq!(
            String::from_utf8_lossy(&writer.0),
            " INFO using token ***\n"
        );
    }

    #[test]
    fn init_twice_does_not_panic() {
        init_logging(true, false);
        init_logging(false, true);
    }
}
