//! JUnit XML reports printed by an integration test container between two marker lines:
//!
//! ```text
//! --- promote-junit-begin ---
//! <?xml version="1.0"?><testsuites>…</testsuites>
//! --- promote-junit-end ---
//! ```
//!
//! [`extract`] finds the text between the markers in a log, [`parse`] counts its test cases.
//! The parser is small and hand-written: it reads the elements JUnit reporters write
//! (`testsuites`, `testsuite`, `testcase` with `failure`, `error` or `skipped` inside) and skips
//! everything else (`properties`, `system-out`, comments, CDATA, the XML declaration). It does
//! not validate XML; it rejects only what it cannot read (an unclosed tag or comment).

use serde::Serialize;

pub const BEGIN_MARKER: &str = "--- promote-junit-begin ---";
pub const END_MARKER: &str = "--- promote-junit-end ---";

/// At most this many failing test names are kept: the report names the first ones; the counts
/// stay exact.
const MAX_FAILURES: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JunitSummary {
    pub tests: u32,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// `classname.name` of failed (and errored) test cases, in report order.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JunitError {
    #[error("the JUnit report has `{BEGIN_MARKER}` but no `{END_MARKER}` after it")]
    Unterminated,
    #[error("the JUnit report is not readable XML at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("the JUnit report has no <testcase> element")]
    NoTestCases,
}

/// The report between the markers, each on a line of its own (surrounding whitespace allowed);
/// `None` when the log has no begin marker. With several reports, the last one counts: a test
/// runner that retried printed its final result last.
pub fn extract(log: &str) -> Option<Result<String, JunitError>> {
    let mut report: Option<Result<String, JunitError>> = None;
    let mut inside: Option<Vec<&str>> = None;
    for line in log.lines() {
        match (line.trim(), &mut inside) {
            (BEGIN_MARKER, _) => inside = Some(Vec::new()),
            (END_MARKER, Some(lines)) => {
                report = Some(Ok(lines.join("\n")));
                inside = None;
            }
            (_, Some(lines)) => lines.push(line),
            _ => {}
        }
    }
    if inside.is_some() {
        return Some(Err(JunitError::Unterminated));
    }
    report
}

/// Counts the test cases of a JUnit XML document.
///
/// # Errors
/// [`JunitError::Malformed`] for an unclosed tag, comment or CDATA section;
/// [`JunitError::NoTestCases`] when no `<testcase>` is found.
pub fn parse(xml: &str) -> Result<JunitSummary, JunitError> {
    let mut summary = JunitSummary::default();
    // The open test case: its name and what was found inside it so far.
    let mut case: Option<(String, Outcome)> = None;
    let mut rest = xml;
    let offset = |rest: &str| xml.len() - rest.len();
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        for (open, close, what) in [
            ("<!--", "-->", "unclosed comment"),
            ("<![CDATA[", "]]>", "unclosed CDATA section"),
            ("<?", "?>", "unclosed processing instruction"),
            ("<!", ">", "unclosed declaration"),
        ] {
            if rest.starts_with(open) {
                let end = rest.find(close).ok_or(JunitError::Malformed {
                    at: offset(rest),
                    what,
                })?;
                rest = &rest[end + close.len()..];
                break;
            }
        }
        if !rest.starts_with('<') || rest.starts_with("<!") || rest.starts_with("<?") {
            continue;
        }
        let end = tag_end(rest).ok_or(JunitError::Malformed {
            at: offset(rest),
            what: "unclosed tag",
        })?;
        let tag = Tag::read(&rest[1..end]);
        rest = &rest[end + 1..];
        match (tag.name, tag.kind) {
            ("testcase", TagKind::Open | TagKind::Empty) => {
                if let Some(open) = case.take() {
                    // A test case left open by a sloppy reporter ends where the next begins.
                    record(&mut summary, open);
                }
                let name = match (tag.attr("classname"), tag.attr("name")) {
                    (Some(class), Some(name)) if !class.is_empty() => format!("{class}.{name}"),
                    (_, Some(name)) => name,
                    (Some(class), None) => class,
                    (None, None) => "(unnamed)".to_string(),
                };
                let open = (name, Outcome::Passed);
                if tag.kind == TagKind::Empty {
                    record(&mut summary, open);
                } else {
                    case = Some(open);
                }
            }
            ("testcase", TagKind::Close) => {
                if let Some(open) = case.take() {
                    record(&mut summary, open);
                }
            }
            ("failure" | "error", TagKind::Open | TagKind::Empty) => {
                if let Some((_, outcome)) = &mut case {
                    *outcome = Outcome::Failed;
                }
            }
            ("skipped", TagKind::Open | TagKind::Empty) => {
                if let Some((_, outcome)) = &mut case
                    && *outcome == Outcome::Passed
                {
                    *outcome = Outcome::Skipped;
                }
            }
            _ => {}
        }
    }
    if let Some(open) = case.take() {
        record(&mut summary, open);
    }
    if summary.tests == 0 {
        return Err(JunitError::NoTestCases);
    }
    Ok(summary)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

fn record(summary: &mut JunitSummary, (name, outcome): (String, Outcome)) {
    summary.tests += 1;
    match outcome {
        Outcome::Passed => summary.passed += 1,
        Outcome::Skipped => summary.skipped += 1,
        Outcome::Failed => {
            summary.failed += 1;
            if summary.failures.len() < MAX_FAILURES {
                summary.failures.push(name);
            }
        }
    }
}

/// The index of the `>` that ends the tag starting at `text[0] == '<'`, skipping quoted
/// attribute values (which may hold `>`).
fn tag_end(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Open,
    Close,
    /// `<x/>`.
    Empty,
}

struct Tag<'a> {
    name: &'a str,
    kind: TagKind,
    attrs: &'a str,
}

impl<'a> Tag<'a> {
    /// Reads what is between `<` and `>`.
    fn read(inner: &'a str) -> Tag<'a> {
        let (kind, body) = if let Some(body) = inner.strip_prefix('/') {
            (TagKind::Close, body)
        } else if let Some(body) = inner.strip_suffix('/') {
            (TagKind::Empty, body)
        } else {
            (TagKind::Open, inner)
        };
        let body = body.trim();
        let split = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..split];
        // Namespaced reporters write `<ns:testcase>`; the local name is what counts.
        let name = name.rsplit(':').next().unwrap_or(name);
        Tag {
            name,
            kind,
            attrs: &body[split..],
        }
    }

    /// The value of attribute `key`, entities decoded.
    fn attr(&self, key: &str) -> Option<String> {
        let mut rest = self.attrs;
        loop {
            rest = rest.trim_start();
            let eq = rest.find('=')?;
            let name = rest[..eq].trim();
            let after = rest[eq + 1..].trim_start();
            let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let close = after[1..].find(quote)?;
            let value = &after[1..1 + close];
            if name == key {
                return Some(decode_entities(value));
            }
            rest = &after[close + 2..];
        }
    }
}

/// The five predefined entities and numeric character references.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="4" failures="1" errors="0" time="1.2">
  <!-- a comment with <testcase name="fake"/> inside -->
  <testsuite name="auth" errors="0" failures="1" skipped="1" timestamp="2025-01-01T00:00:00" time="1.1" tests="4">
    <properties><property name="a" value="b"/></properties>
    <testcase classname="auth login" name="accepts a valid password" time="0.1">
    </testcase>
    <testcase classname="auth login" name="rejects &quot;wrong&quot; &amp; empty passwords" time="0.2">
      <failure message="expected 401, got 200">Error: expected 401 &lt;Unauthorized&gt;
    at Object.&lt;anonymous&gt; (login.test.js:10:5)</failure>
    </testcase>
    <testcase classname="auth" name="refreshes tokens" time="0"><skipped/></testcase>
    <testcase classname="auth" name="logs out" time="0.01"/>
    <system-out><![CDATA[<testcase name="not a test"/>]]></system-out>
  </testsuite>
</testsuites>"#;

    #[test]
    fn counts_a_jest_report() {
        let summary = parse(JEST).expect("parses");
        assert_eq!(
            summary,
            JunitSummary {
                tests: 4,
                passed: 2,
                failed: 1,
                skipped: 1,
                failures: vec![r#"auth login.rejects "wrong" & empty passwords"#.into()],
            }
        );
    }

    #[test]
    fn shapes_reporters_write() {
        // (case, XML, (tests, passed, failed, skipped, failing names) or the error)
        type Case<'a> = (
            &'a str,
            &'a str,
            Result<(u32, u32, u32, u32, &'a [&'a str]), JunitError>,
        );
        let cases: &[Case] = &[
            (
                "a bare testsuite, single quotes, errors count as failures",
                "<testsuite><testcase name='a'/><testcase classname='' name='b'><error type='E'/></testcase></testsuite>",
                Ok((2, 1, 1, 0, &["b"])),
            ),
            (
                "a quoted > inside an attribute",
                r#"<testsuite><testcase name="a > b"><failure/></testcase></testsuite>"#,
                Ok((1, 0, 1, 0, &["a > b"])),
            ),
            (
                "numeric character references",
                r#"<testcase name="caf&#233; &#x2713;"><failure/></testcase>"#,
                Ok((1, 0, 1, 0, &["café ✓"])),
            ),
            (
                "a namespaced element",
                r#"<j:testsuite><j:testcase name="a"/></j:testsuite>"#,
                Ok((1, 1, 0, 0, &[])),
            ),
            (
                "a failure wins over skipped",
                r#"<testcase name="a"><skipped/><failure/></testcase>"#,
                Ok((1, 0, 1, 0, &["a"])),
            ),
            (
                "no test case",
                "<testsuites></testsuites>",
                Err(JunitError::NoTestCases),
            ),
            (
                "an unclosed tag",
                "<testsuite><testcase name=\"a\"",
                Err(JunitError::Malformed {
                    at: 11,
                    what: "unclosed tag",
                }),
            ),
            (
                "an unclosed comment",
                "<testsuite><!-- <testcase/>",
                Err(JunitError::Malformed {
                    at: 11,
                    what: "unclosed comment",
                }),
            ),
        ];
        for (case, xml, want) in cases {
            let got = parse(xml).map(|s| (s.tests, s.passed, s.failed, s.skipped, s.failures));
            let want = want.clone().map(|(t, p, f, s, names)| {
                (t, p, f, s, names.iter().map(|n| n.to_string()).collect())
            });
            assert_eq!(got, want, "case: {case}");
        }
    }

    #[test]
    fn failing_names_are_capped_counts_are_not() {
        let xml: String = (0..80)
            .map(|i| format!("<testcase name=\"t{i}\"><failure/></testcase>"))
            .collect();
        let summary = parse(&xml).expect("parses");
        assert_eq!((summary.tests, summary.failed), (80, 80));
        assert_eq!(summary.failures.len(), MAX_FAILURES);
    }

    #[test]
    fn extracts_between_markers() {
        // (case, log, the report or the error)
        type Case<'a> = (&'a str, &'a str, Option<Result<&'a str, JunitError>>);
        let cases: &[Case] = &[
            ("no markers", "ran 3 tests\nok\n", None),
            (
                "one report, indented markers",
                "start\n  --- promote-junit-begin ---\n<a/>\n<b/>\n--- promote-junit-end ---  \nbye\n",
                Some(Ok("<a/>\n<b/>")),
            ),
            (
                "the last report counts",
                "--- promote-junit-begin ---\n<first/>\n--- promote-junit-end ---\n--- promote-junit-begin ---\n<second/>\n--- promote-junit-end ---\n",
                Some(Ok("<second/>")),
            ),
            (
                "no end marker",
                "--- promote-junit-begin ---\n<a/>\n",
                Some(Err(JunitError::Unterminated)),
            ),
            (
                "an end marker alone is text",
                "--- promote-junit-end ---\n",
                None,
            ),
        ];
        for (case, log, want) in cases {
            let want = want.clone().map(|r| r.map(str::to_string));
            assert_eq!(extract(log), want, "case: {case}");
        }
    }
}
