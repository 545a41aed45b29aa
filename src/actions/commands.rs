//! Workflow commands on stdout (`::error ...::`, `::group::`, `::debug::`) and their local,
//! human-readable equivalents on stderr.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use super::secret::redact;

/// The runner cuts a message longer than this (protocols.md §2); cutting it ourselves keeps the
/// cut on a character boundary and makes it visible with "…".
const MESSAGE_LIMIT: usize = 4096;

/// Escapes a command's message the way the runner unescapes it (`ActionCommand` in
/// actions/runner, `escapeData` in @actions/core): `%` first, so `%0A` typed by a user survives
/// as text, then `\r` and `\n`, so no line break can end the command early and start a forged one.
pub fn escape_data(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value: like [`escape_data`], plus `:` and `,`, which separate the
/// properties from each other and from the message (`escapeProperty` in @actions/core).
pub fn escape_property(value: &str) -> String {
    escape_data(value).replace(':', "%3A").replace(',', "%2C")
}

/// Formats `::name key=value,key=value::message`, or `::name::message` without properties.
///
/// Property values and the message are [`redact`]ed and escaped; the name and keys are escaped
/// too, so whatever the caller passes, the result is one line that carries exactly one command.
pub fn command_line(name: &str, props: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{}", escape_property(name));
    for (i, (key, value)) in props.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        line.push_str(&escape_property(key));
        line.push('=');
        line.push_str(&escape_property(&redact(value)));
    }
    line.push_str("::");
    line.push_str(&escape_data(&redact(message)));
    line
}

/// The severity of an [`Annotation`]: the three annotation commands the runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    #[default]
    Error,
    Warning,
    Notice,
}

impl Level {
    /// The workflow command name, also used as the local prefix (`error: ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }

    /// Bold red / yellow / cyan, as rustc and cargo colour their diagnostics.
    fn colour(self) -> &'static str {
        match self {
            Level::Error => "\x1b[1;31m",
            Level::Warning => "\x1b[1;33m",
            Level::Notice => "\x1b[1;36m",
        }
    }
}

/// An error, warning or notice, shown on the run page and, with a file, on the diff.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub end_line: Option<usize>,
    pub col: Option<usize>,
    pub end_column: Option<usize>,
}

impl Annotation {
    pub fn error(message: impl Into<String>) -> Self {
        Self::with_level(Level::Error, message)
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self::with_level(Level::Warning, message)
    }

    pub fn notice(message: impl Into<String>) -> Self {
        Self::with_level(Level::Notice, message)
    }

    fn with_level(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            ..Self::default()
        }
    }

    /// The file, relative to the repository root, for GitHub to place the annotation on.
    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// The 1-based line in [`file`](Self::file).
    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn end_line(mut self, end_line: usize) -> Self {
        self.end_line = Some(end_line);
        self
    }

    /// The 1-based column in [`line`](Self::line).
    pub fn col(mut self, col: usize) -> Self {
        self.col = Some(col);
        self
    }

    pub fn end_column(mut self, end_column: usize) -> Self {
        self.end_column = Some(end_column);
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The workflow command, e.g. `::error file=a.yml,line=3,col=5,title=T::message`.
    ///
    /// Properties come in the runner's documented order (file, line, endLine, col, endColumn,
    /// title) and are left out when unset. The message is redacted and then cut to 4096 bytes,
    /// in that order, so a cut can never leave half a secret unmasked.
    pub fn to_command(&self) -> String {
        let numbers = [
            ("line", self.line),
            ("endLine", self.end_line),
            ("col", self.col),
            ("endColumn", self.end_column),
        ]
        .map(|(key, value)| (key, value.map(|n| n.to_string())));
        let mut props: Vec<(&str, &str)> = Vec::new();
        if let Some(file) = &self.file {
            props.push(("file", file));
        }
        props.extend(
            numbers
                .iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
        );
        if let Some(title) = &self.title {
            props.push(("title", title));
        }
        command_line(self.level.as_str(), &props, &cut(&redact(&self.message)))
    }

    /// The local form, `error: file:line:col: title: message`, with the level coloured when
    /// `colour` is set. Control characters other than newline and tab are shown escaped, so text
    /// from a server cannot move the cursor or recolour the terminal.
    fn to_local(&self, colour: bool) -> String {
        let mut text = String::new();
        if let Some(file) = &self.file {
            text.push_str(file);
            if let Some(line) = self.line {
                let _ = write!(text, ":{line}");
                if let Some(col) = self.col {
                    let _ = write!(text, ":{col}");
                }
            }
            text.push_str(": ");
        }
        if let Some(title) = &self.title {
            text.push_str(title);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        let text = sanitize_terminal(&redact(&text)).into_owned();
        let level = self.level.as_str();
        if colour {
            format!("{}{level}\x1b[0m: {text}", self.level.colour())
        } else {
            format!("{level}: {text}")
        }
    }
}

/// Cuts `message` to [`MESSAGE_LIMIT`] bytes including the "…", on a character boundary.
fn cut(message: &str) -> Cow<'_, str> {
    crate::untrusted::cut_bytes(message, MESSAGE_LIMIT)
}

/// Shows control characters (ANSI escapes above all) as `\u{1b}` instead of sending them to a
/// terminal; newlines and tabs stay.
fn sanitize_terminal(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes one line to stdout. `println!` would panic on a closed pipe (`promote ... | head`); a
/// command nobody can read is not worth a crash, so a failed write is dropped.
fn emit_stdout(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A progress line for the reader of the log, on stderr, redacted (a server may echo a secret
/// back into a message). The `say!` macro formats and calls this; `eprintln!` bypasses both.
pub fn say(text: &str) {
    emit_stderr(&redact(text));
}

/// `say!("{x} rolled out")`: a redacted progress line on stderr (see [`say`]).
#[macro_export]
macro_rules! say {
    () => {
        $crate::actions::say("")
    };
    ($($arg:tt)*) => {
        $crate::actions::say(&format!($($arg)*))
    };
}

/// Writes one line to stderr; see [`emit_stdout`] for why errors are dropped.
fn emit_stderr(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Where user-facing diagnostics go: workflow commands on stdout inside Actions (the runner
/// parses only stdout lines for them), readable text on stderr outside, so stdout stays free
/// for outputs.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    in_actions: bool,
}

impl Console {
    pub fn new(in_actions: bool) -> Self {
        Self { in_actions }
    }

    /// Whether this console prints workflow commands.
    pub fn in_actions(&self) -> bool {
        self.in_actions
    }

    /// Shows an annotation: `::error ...::` in Actions, `error: file:line:col: ...` locally.
    pub fn annotate(&self, annotation: &Annotation) {
        if self.in_actions {
            emit_stdout(&annotation.to_command());
        } else {
            emit_stderr(&annotation.to_local(std::io::stderr().is_terminal()));
        }
    }

    /// Opens a collapsible group in the log (`::group::`); locally prints the title in bold.
    pub fn start_group(&self, title: &str) {
        if self.in_actions {
            emit_stdout(&command_line("group", &[], title));
        } else {
            emit_stderr(&local_group_title(title, std::io::stderr().is_terminal()));
        }
    }

    /// Closes the group opened by [`start_group`](Self::start_group). The runner does not nest
    /// groups: a second `::group::` implicitly ends the first.
    pub fn end_group(&self) {
        if self.in_actions {
            emit_stdout(&command_line("endgroup", &[], ""));
        }
    }

    /// Runs `f` inside a group and returns its result.
    ///
    /// # Caveats
    /// If `f` panics the group is not closed; the runner closes it at the end of the step.
    pub fn group<T>(&self, title: &str, f: impl FnOnce() -> T) -> T {
        self.start_group(title);
        let value = f();
        self.end_group();
        value
    }

    /// A debug message: `::debug::` in Actions (shown only when step debug logging is on, which
    /// `RUNNER_DEBUG=1` reports), `tracing::debug!` locally.
    pub fn debug(&self, message: &str) {
        if self.in_actions {
            emit_stdout(&command_line("debug", &[], message));
        } else {
            tracing::debug!("{}", redact(message));
        }
    }
}

fn local_group_title(title: &str, bold: bool) -> String {
    let title = sanitize_terminal(&redact(title)).replace('\n', " ");
    if bold {
        format!("\x1b[1m{title}\x1b[0m")
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::secret::{mask, unique_secret};

    #[test]
    fn data_escapes_percent_first_then_line_breaks() {
        assert_eq!(escape_data("100%"), "100%25");
        assert_eq!(escape_data("%0A"), "%250A", "a literal %0A stays text");
        assert_eq!(escape_data("a\r\nb\nc"), "a%0D%0Ab%0Ac");
        assert_eq!(escape_data("a:b,c"), "a:b,c", "data keeps : and ,");
    }

    #[test]
    fn property_also_escapes_colon_and_comma() {
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(escape_property("50%\n"), "50%25%0A");
        assert_eq!(escape_property("::error::x"), "%3A%3Aerror%3A%3Ax");
    }

    #[test]
    fn annotation_without_properties() {
        assert_eq!(Annotation::error("boom").to_command(), "::error::boom");
        assert_eq!(Annotation::warning("w").to_command(), "::warning::w");
        assert_eq!(Annotation::notice("n").to_command(), "::notice::n");
    }

    #[test]
    fn annotation_properties_in_runner_order() {
        let annotation = Annotation::error("bad value")
            .title("T")
            .col(5)
            .line(3)
            .file("a.yml");
        assert_eq!(
            annotation.to_command(),
            "::error file=a.yml,line=3,col=5,title=T::bad value"
        );
        let full = Annotation::warning("m")
            .file("f")
            .line(1)
            .end_line(2)
            .col(3)
            .end_column(4);
        assert_eq!(
            full.to_command(),
            "::warning file=f,line=1,endLine=2,col=3,endColumn=4::m"
        );
    }

    #[test]
    fn annotation_escapes_message_and_properties() {
        let annotation = Annotation::error("line one\n::error::forged")
            .file("dir,x/a:b.yml")
            .title("50% done");
        let command = annotation.to_command();
        assert_eq!(
            command,
            "::error file=dir%2Cx/a%3Ab.yml,title=50%25 done::line one%0A::error::forged"
        );
        assert!(!command.contains('\n'));
    }

    #[test]
    fn long_message_is_cut_on_a_char_boundary() {
        let message = "é".repeat(3000); // 6000 bytes, 2 bytes per char
        let command = Annotation::error(message).to_command();
        let body = command.strip_prefix("::error::").expect("no properties");
        assert!(body.len() <= MESSAGE_LIMIT, "{} bytes", body.len());
        assert!(body.ends_with('…'));
        assert!(body.len() > MESSAGE_LIMIT - 8);
        let exact = "x".repeat(MESSAGE_LIMIT);
        assert_eq!(cut(&exact), exact, "a message at the limit stays whole");
    }

    #[test]
    fn annotation_redacts_secrets() {
        let secret = unique_secret("annotation");
        mask(&secret, &Console::new(false));
        let command = Annotation::error(format!("token {secret} rejected"))
            .title(format!("for {secret}"))
            .to_command();
        assert!(!command.contains(&secret), "{command}");
        assert_eq!(command, "::error title=for ***::token *** rejected");
        let local = Annotation::error(format!("token {secret}")).to_local(false);
        assert_eq!(local, "error: token ***");
    }

    #[test]
    fn command_line_formats_any_command() {
        assert_eq!(
            command_line("group", &[], "Deploy web"),
            "::group::Deploy web"
        );
        assert_eq!(command_line("endgroup", &[], ""), "::endgroup::");
        assert_eq!(
            command_line("error", &[("file", "a"), ("line", "1")], "m"),
            "::error file=a,line=1::m"
        );
    }

    #[test]
    fn local_annotation_reads_like_a_compiler() {
        let annotation = Annotation::warning("replicas is ignored")
            .file("promotion.yml")
            .line(14)
            .col(3)
            .title("deprecated");
        assert_eq!(
            annotation.to_local(false),
            "warning: promotion.yml:14:3: deprecated: replicas is ignored"
        );
        assert_eq!(
            Annotation::error("x").to_local(true),
            "\x1b[1;31merror\x1b[0m: x"
        );
        assert_eq!(
            Annotation::error("evil \x1b[2J").to_local(false),
            "error: evil \\u{1b}[2J"
        );
    }

    #[test]
    fn local_group_title_is_one_line() {
        assert_eq!(local_group_title("a\nb", false), "a b");
        assert_eq!(local_group_title("t", true), "\x1b[1mt\x1b[0m");
    }
}
