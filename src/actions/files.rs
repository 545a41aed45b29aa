//! File commands: step outputs (`GITHUB_OUTPUT`), environment for later steps (`GITHUB_ENV`) and
//! state for the post step (`GITHUB_STATE`), with a plain stdout fallback outside Actions.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::context::Context;
use super::masks::redact;

/// Why a file command could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FileCommandError {
    /// The value would end the heredoc early and let the rest be read as more entries.
    #[error("{name}: the value contains the delimiter {delimiter}, refusing to write it")]
    DelimiterInValue { name: String, delimiter: String },
    #[error("invalid name {0:?}: a name must be non-empty and contain no '=', '<<' or line break")]
    InvalidName(String),
    #[error("failed to write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A fresh heredoc delimiter: `ghadelimiter_` and 32 random hex digits, as @actions/core makes
/// them (`ghadelimiter_<uuid>`). Being unpredictable, it cannot be planted in a value by whoever
/// controls that value (a cluster, a registry) to smuggle extra entries into the file.
pub fn random_delimiter() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = fallback_random();
    }
    let mut delimiter = String::from("ghadelimiter_");
    for byte in bytes {
        delimiter.push(char::from(HEX[usize::from(byte >> 4)]));
        delimiter.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    delimiter
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Used only if the OS has no randomness to give, which on Linux means a kernel older than
/// 3.17 without `/dev/urandom`. The value is then unique but guessable; [`format_entry`] still
/// refuses a value that contains it, so the worst case is an error, never a forged entry.
fn fallback_random() -> [u8; 16] {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(now.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes
}

/// Rejects a name the runner would misread: it splits a line at the first `=` or `<<`
/// (`SetOutputFileCommand` in actions/runner), and an entry's name must fit on one line.
fn check_name(name: &str) -> Result<(), FileCommandError> {
    if name.is_empty() || name.contains(['=', '\n', '\r']) || name.contains("<<") {
        return Err(FileCommandError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Formats one entry in the heredoc form `name<<DELIM\nvalue\nDELIM\n`.
///
/// The heredoc form is used for every value, one line or many, so there is a single code path
/// and no value can be misread as `name=value`.
///
/// # Errors
/// [`FileCommandError::InvalidName`] for a name that is empty or contains `=`, `<<` or a line
/// break; [`FileCommandError::DelimiterInValue`] when the value contains `delimiter`.
pub fn format_entry(name: &str, value: &str, delimiter: &str) -> Result<String, FileCommandError> {
    check_name(name)?;
    if value.contains(delimiter) {
        return Err(FileCommandError::DelimiterInValue {
            name: name.to_owned(),
            delimiter: delimiter.to_owned(),
        });
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Appends one entry to a file command file (created if missing), with a fresh delimiter.
///
/// The value is [`redact`]ed first: a secret must not reach a later step's log through an
/// output. Pass secrets to later steps as inputs, not through these files.
///
/// # Errors
/// As [`format_entry`], or [`FileCommandError::Io`] naming `path`.
pub fn append_entry(path: &Path, name: &str, value: &str) -> Result<(), FileCommandError> {
    let entry = format_entry(name, &redact(value), &random_delimiter())?;
    append(path, &entry)
}

/// Appends `text` with a single write, so a half-written file is unlikely even on failure.
/// The runner creates these files fresh for every step (protocols.md §2) and reads them as UTF-8.
fn append(path: &Path, text: &str) -> Result<(), FileCommandError> {
    let io_error = |source| FileCommandError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.flush().map_err(io_error)
}

/// How [`Outputs::flush`] prints outputs outside Actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `name=value` lines, or the heredoc form for a value with line breaks.
    #[default]
    Lines,
    /// One pretty-printed JSON object, in the order the outputs were set.
    Json,
}

/// Step outputs, collected in memory and written once at the end, so an output set twice
/// appears once with its last value, and a run that fails early writes nothing half-done.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    entries: Vec<(String, String)>,
    document: Option<serde_json::Value>,
}

impl Outputs {
    /// Sets an output. Setting a name again replaces the value and keeps the original position.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.entries.iter_mut().find(|(known, _)| *known == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// A command's own JSON document (`promote metrics`' report): with `--json` outside Actions,
    /// stdout gets it instead of the outputs object, so a dashboard reads one document. The
    /// outputs still go to `GITHUB_OUTPUT` in Actions.
    pub fn set_document(&mut self, document: serde_json::Value) {
        self.document = Some(document);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// The outputs in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Writes the outputs: appended to `GITHUB_OUTPUT` in Actions, printed on stdout otherwise
    /// (`format` applies only there). Values are [`redact`]ed either way.
    ///
    /// Every name is checked before anything is written, and the file gets all entries in a
    /// single write.
    ///
    /// # Errors
    /// An invalid name, a value holding its delimiter, or a failed write (stdout is reported as
    /// the path `<stdout>`).
    pub fn flush(&self, ctx: &Context, format: OutputFormat) -> Result<(), FileCommandError> {
        match (&ctx.output_file, ctx.in_actions) {
            (Some(path), true) => append(path, &self.to_file_text()?),
            _ => {
                let text = self.to_stdout_text(format)?;
                if text.is_empty() {
                    return Ok(());
                }
                // In a runner without GITHUB_OUTPUT, stdout is still parsed for commands: a
                // multi-line value must not be read as one. `::stop-commands::` with an
                // unguessable token turns command parsing off until the token comes back.
                let text = if ctx.in_actions {
                    let token = random_delimiter();
                    format!("::stop-commands::{token}\n{text}::{token}::\n")
                } else {
                    text
                };
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|source| FileCommandError::Io {
                        path: "<stdout>".into(),
                        source,
                    })
            }
        }
    }

    fn to_file_text(&self) -> Result<String, FileCommandError> {
        let mut text = String::new();
        for (name, value) in &self.entries {
            text.push_str(&format_entry(name, &redact(value), &random_delimiter())?);
        }
        Ok(text)
    }

    /// What a local run prints: the same names and values a workflow would get.
    fn to_stdout_text(&self, format: OutputFormat) -> Result<String, FileCommandError> {
        for (name, _) in &self.entries {
            check_name(name)?;
        }
        match format {
            OutputFormat::Lines => {
                let mut text = String::new();
                for (name, value) in &self.entries {
                    let value = redact(value);
                    if value.contains(['\n', '\r']) {
                        text.push_str(&format_entry(name, &value, &random_delimiter())?);
                    } else {
                        text.push_str(&format!("{name}={value}\n"));
                    }
                }
                Ok(text)
            }
            OutputFormat::Json => {
                if let Some(document) = &self.document {
                    return Ok(redact(&format!("{document:#}\n")).into_owned());
                }
                let object: serde_json::Map<String, serde_json::Value> = self
                    .entries
                    .iter()
                    .map(|(name, value)| (name.clone(), redact(value).into_owned().into()))
                    .collect();
                // `{:#}` pretty-prints and, unlike `to_string_pretty`, cannot fail.
                Ok(format!("{:#}\n", serde_json::Value::Object(object)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::commands::Console;
    use crate::actions::masks::unique_secret;
    use crate::actions::secret::mask;

    fn actions_context(dir: &Path) -> Context {
        Context {
            in_actions: true,
            output_file: Some(dir.join("output")),
            env_file: Some(dir.join("env")),
            state_file: Some(dir.join("state")),
            ..Context::default()
        }
    }

    /// Reads the file back as the runner does: heredoc entries into (name, value) pairs.
    fn parse_entries(text: &str) -> Vec<(String, String)> {
        let mut entries = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some((name, delimiter)) = line.split_once("<<") else {
                panic!("not a heredoc entry: {line:?}");
            };
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            entries.push((name.to_owned(), value.join("\n")));
        }
        entries
    }

    #[test]
    fn delimiter_is_prefixed_random_hex() {
        let delimiter = random_delimiter();
        let hex = delimiter.strip_prefix("ghadelimiter_").expect("prefix");
        assert_eq!(hex.len(), 32);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(random_delimiter(), delimiter);
        let fallback = fallback_random();
        assert_ne!(fallback_random(), fallback);
    }

    #[test]
    fn entry_uses_heredoc_form() {
        assert_eq!(
            format_entry("digest", "sha256:ab", "EOF").ok().as_deref(),
            Some("digest<<EOF\nsha256:ab\nEOF\n")
        );
        assert_eq!(
            format_entry("notes", "a\nb", "D").ok().as_deref(),
            Some("notes<<D\na\nb\nD\n")
        );
        assert_eq!(
            format_entry("empty", "", "D").ok().as_deref(),
            Some("empty<<D\n\nD\n")
        );
    }

    #[test]
    fn entry_refuses_a_value_holding_its_delimiter() {
        let delimiter = random_delimiter();
        let value = format!("x\n{delimiter}\nevil<<y");
        let error = format_entry("url", &value, &delimiter).expect_err("must refuse");
        assert!(matches!(error, FileCommandError::DelimiterInValue { .. }));
        assert_eq!(
            error.to_string(),
            format!("url: the value contains the delimiter {delimiter}, refusing to write it")
        );
    }

    #[test]
    fn entry_refuses_names_the_runner_would_misread() {
        for name in ["", "a=b", "a<<b", "a\nb", "a\rb"] {
            assert!(
                matches!(
                    format_entry(name, "v", "D"),
                    Err(FileCommandError::InvalidName(_))
                ),
                "name {name:?}"
            );
        }
        assert!(format_entry("a<b-c_d.e f", "v", "D").is_ok());
    }

    #[test]
    fn append_creates_then_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("output");
        append_entry(&path, "first", "1").expect("first append");
        append_entry(&path, "second", "two\nlines").expect("second append");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(
            parse_entries(&text),
            vec![
                ("first".into(), "1".into()),
                ("second".into(), "two\nlines".into())
            ]
        );
        let delimiters: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("<<"))
            .map(|(_, d)| d)
            .collect();
        assert_eq!(delimiters.len(), 2);
        assert_ne!(delimiters[0], delimiters[1], "a fresh delimiter per entry");
    }

    #[test]
    fn append_reports_the_path_it_could_not_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing-dir").join("output");
        let error = append_entry(&path, "a", "b").expect_err("no such directory");
        assert_eq!(
            error.to_string(),
            format!("failed to write {}", path.display())
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn appended_values_are_redacted() {
        let secret = unique_secret("output");
        mask(&secret, &Console::new(false));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("output");
        append_entry(&path, "leak", &format!("token={secret}")).expect("append");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(
            parse_entries(&text),
            vec![("leak".into(), "token=***".into())]
        );
    }

    #[test]
    fn outputs_replace_in_place() {
        let mut outputs = Outputs::default();
        outputs.set("digest", "sha256:1");
        outputs.set("environment", "testing");
        outputs.set("digest", "sha256:2");
        assert_eq!(outputs.get("digest"), Some("sha256:2"));
        assert_eq!(outputs.get("missing"), None);
        let pairs: Vec<(&str, &str)> = outputs.iter().collect();
        assert_eq!(
            pairs,
            vec![("digest", "sha256:2"), ("environment", "testing")]
        );
    }

    #[test]
    fn outputs_print_as_lines_locally() {
        let mut outputs = Outputs::default();
        outputs.set("digest", "sha256:1");
        outputs.set("notes", "a\nb");
        let text = outputs.to_stdout_text(OutputFormat::Lines).expect("format");
        let (first, rest) = text.split_once('\n').expect("two parts");
        assert_eq!(first, "digest=sha256:1");
        assert_eq!(parse_entries(rest), vec![("notes".into(), "a\nb".into())]);
    }

    #[test]
    fn outputs_print_as_json_locally() {
        let mut outputs = Outputs::default();
        outputs.set("z-last-set-first", "1");
        outputs.set("notes", "a\n\"b\"");
        let text = outputs.to_stdout_text(OutputFormat::Json).expect("format");
        assert_eq!(
            text,
            "{\n  \"z-last-set-first\": \"1\",\n  \"notes\": \"a\\n\\\"b\\\"\"\n}\n"
        );
        assert_eq!(
            Outputs::default()
                .to_stdout_text(OutputFormat::Json)
                .ok()
                .as_deref(),
            Some("{}\n")
        );
    }

    #[test]
    fn outputs_check_names_before_printing() {
        let mut outputs = Outputs::default();
        outputs.set("bad=name", "v");
        for format in [OutputFormat::Lines, OutputFormat::Json] {
            assert!(matches!(
                outputs.to_stdout_text(format),
                Err(FileCommandError::InvalidName(_))
            ));
        }
    }

    #[test]
    fn outputs_flush_to_the_output_file_in_actions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = actions_context(dir.path());
        let mut outputs = Outputs::default();
        outputs.set("digest", "sha256:1");
        outputs.set("notes", "a\nb");
        outputs.flush(&ctx, OutputFormat::Json).expect("flush");
        let text = std::fs::read_to_string(dir.path().join("output")).expect("read back");
        assert_eq!(
            parse_entries(&text),
            vec![
                ("digest".into(), "sha256:1".into()),
                ("notes".into(), "a\nb".into())
            ]
        );
    }

    #[test]
    fn outputs_flush_writes_nothing_when_a_name_is_bad() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = actions_context(dir.path());
        let mut outputs = Outputs::default();
        outputs.set("good", "1");
        outputs.set("", "2");
        assert!(outputs.flush(&ctx, OutputFormat::Lines).is_err());
        assert!(!dir.path().join("output").exists());
    }
}
