//! Text the product did not write — server answers, cluster objects, user input — made safe for
//! where it goes: one line for a log (a line break could start a forged `::` workflow command),
//! escaped for Markdown, HTML and mermaid in the job summary, and cut by characters, never by
//! bytes, so no value of any length or script can panic a renderer.
//!
//! The one place for these rules; every module that prints or renders foreign text uses it.

/// Server text kept in messages: long enough for an API server's `Invalid` causes, short enough
/// that a proxy's HTML error page does not flood the log.
pub const SERVER_TEXT_LIMIT: usize = 1000;

/// Server-controlled text on one line, trimmed, at most [`SERVER_TEXT_LIMIT`] characters.
pub fn server_text(text: &str) -> String {
    server_text_within(text, SERVER_TEXT_LIMIT)
}

/// [`server_text`] with its own limit in characters (the `…` marking a cut comes on top).
pub fn server_text_within(text: &str, limit: usize) -> String {
    let one_line = one_line(text);
    let trimmed = one_line.trim();
    if trimmed.chars().count() > limit {
        let mut cut: String = trimmed.chars().take(limit).collect();
        cut.push('…');
        cut
    } else {
        trimmed.to_string()
    }
}

/// Control characters (line breaks above all) become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, the last one `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` bytes including the `…` that marks a cut, ending on a character boundary (for
/// limits the runner counts in bytes).
pub fn cut_bytes(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// The first `n` characters.
pub fn prefix(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The first 7 characters of a commit sha, as git shows it.
pub fn short_sha(sha: &str) -> &str {
    prefix(sha, 7)
}

/// `sha256:3f2a9c1b4d5e`: the algorithm and 12 hex digits, like `docker images`.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if !algorithm.is_empty() => {
            format!("{algorithm}:{}", prefix(hex, 12))
        }
        Some((_, hex)) => prefix(hex, 12).to_string(),
        None => prefix(digest, 12).to_string(),
    }
}

/// Escapes text for inline Markdown, table cells included.
///
/// Markdown punctuation gets a backslash (`\|` is GFM's own way to keep a pipe inside a cell);
/// `<`, `>` and `&` become entities, so no HTML tag or entity survives, even in places where a
/// backslash escape is not honoured; a line break becomes `<br>`, because a real one would end
/// the table row or paragraph.
pub fn escape_md(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            _ => out.push(c),
        }
    }
    out
}

/// [`escape_md`] for messages that mark names with backticks (`` `main` matches main ``): each
/// backticked part becomes [`code`], the rest is escaped. An unpaired backtick stays literal.
pub fn escape_md_with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let paired = parts.len() % 2 == 1;
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if i % 2 == 1 && (paired || !last) {
            out.push_str(&code(part));
        } else {
            if i % 2 == 1 {
                out.push_str("\\`");
            }
            out.push_str(&escape_md(part));
        }
    }
    out
}

/// Inline code. A Markdown code span would show escapes literally (`CORS\_ORIGIN`) and break on
/// backticks, so this is HTML `<code>` with the text HTML-escaped, and `|` encoded so it cannot
/// end a table cell. GitHub still parses Markdown inside raw `<code>`, so the characters that
/// start a link, emphasis or a code span are encoded as entities too: `[x](https://…)` from the
/// cluster stays text.
pub fn code(text: &str) -> String {
    let mut out = String::from("<code>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // `_` stays: names are full of it, and inside a word it never makes emphasis.
            '|' | '`' | '*' | '[' | ']' | '\\' | '~' => {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push_str("</code>");
    out
}

/// Text for HTML content (`<summary>`) or a quoted attribute inside Markdown. Markdown is still
/// parsed between inline HTML tags, so its punctuation becomes character references too, which
/// CommonMark shows literally (a `[x](url)` in a digest must not become a link); a line break
/// would end the HTML block, so it becomes a space.
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' | '|' | '`' | '*' | '_' | '[' | ']' | '\\' | '~' => {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for a quoted mermaid label. Mermaid reads `#name;` and `#123;` as entity codes (its
/// documented escape, since a label cannot contain `"`); everything that is syntax in a label,
/// HTML, or a Markdown fence (backticks) becomes one, and line breaks become spaces.
pub fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' | '&' | '<' | '>' | '`' | '[' | ']' | '{' | '}' | '(' | ')' | '|' | ';' | '\\' => {
                out.push_str(&format!("#{};", u32::from(c)));
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `[text](url)` for an http(s) URL, with every character that could end the link or the
/// table cell percent-encoded; anything else is shown as code, never as a link.
pub fn link(text: &str, url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return code(url);
    }
    let mut safe = String::with_capacity(url.len());
    for byte in url.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'/'
            | b'?'
            | b'='
            | b'&'
            | b'%'
            | b'+'
            | b','
            | b'@'
            | b'!'
            | b'$'
            | b';'
            | b'#' => safe.push(char::from(byte)),
            other => safe.push_str(&format!("%{other:02X}")),
        }
    }
    format!("[{}]({safe})", escape_md_with_code(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values a cluster or a user may hand us: multi-byte scripts at every cut point, emoji,
    /// combining marks, control characters, and far more than any limit.
    fn hostile() -> Vec<String> {
        let mut values = vec![
            String::new(),
            "é".to_string(),
            "ß1234567890abcdef".to_string(),
            "sha256:ééééééééééééééééé".to_string(),
            "日本語のコミット".repeat(3),
            "👩‍👩‍👧‍👦".repeat(9),
            "e\u{301}".repeat(20),
            "line\nbreak\r::error::forged".to_string(),
            "\u{1b}[31mred".to_string(),
        ];
        values.push("ü".repeat(5000));
        values.push(format!("sha256:{}", "€".repeat(100)));
        values
    }

    #[test]
    fn nothing_panics_on_non_ascii_or_long_values() {
        for value in hostile() {
            let _ = short_sha(&value);
            let _ = short_digest(&value);
            let _ = prefix(&value, 3);
            for n in 0..20 {
                let cut_text = cut(&value, n);
                assert!(cut_text.chars().count() <= n.max(1) || value.chars().count() <= n);
                let bytes = cut_bytes(&value, n + 3);
                assert!(bytes.len() <= (n + 3).max('…'.len_utf8()) || value.len() <= n + 3);
            }
            let line = server_text(&value);
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(line.chars().count() <= SERVER_TEXT_LIMIT + 1);
            for rendered in [
                escape_md(&value),
                escape_md_with_code(&value),
                code(&value),
                html_text(&value),
                mermaid_text(&value),
                link(&value, &value),
            ] {
                assert!(!rendered.contains('\n'), "{rendered:?}");
            }
        }
    }

    #[test]
    fn shas_and_digests_are_cut_by_characters() {
        assert_eq!(short_sha("0123456789abcdef"), "0123456");
        assert_eq!(short_sha("é1234567"), "é123456");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(
            short_digest("sha256:3f2a9c1b4d5e6f708192a3b4c5d6e7f8"),
            "sha256:3f2a9c1b4d5e"
        );
        assert_eq!(short_digest("sha256:éééééééééééééé"), "sha256:éééééééééééé");
        assert_eq!(short_digest("nodigest"), "nodigest");
    }

    #[test]
    fn server_text_is_one_trimmed_line_of_bounded_length() {
        assert_eq!(server_text("  a\nb\r\n::error::x  "), "a b  ::error::x");
        let long = "ä".repeat(SERVER_TEXT_LIMIT + 10);
        let cut = server_text(&long);
        assert_eq!(cut.chars().count(), SERVER_TEXT_LIMIT + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn cuts_mark_themselves_and_respect_their_unit() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(cut_bytes("ééé", 5), "é…");
        assert_eq!(cut_bytes("abc", 5), "abc");
    }

    #[test]
    fn markup_is_neutralised_everywhere() {
        assert_eq!(escape_md("a|b<i>"), "a\\|b&lt;i&gt;");
        assert_eq!(code("x|`y`"), "<code>x&#124;&#96;y&#96;</code>");
        assert_eq!(
            html_text("<b>[x](y)</b>"),
            "&lt;b&gt;&#91;x&#93;(y)&lt;/b&gt;"
        );
        assert_eq!(mermaid_text("a\"b|c"), "a#quot;b#124;c");
        assert_eq!(
            link("x", "javascript:alert(1)"),
            "<code>javascript:alert(1)</code>"
        );
        assert_eq!(link("run", "https://x/a b"), "[run](https://x/a%20b)");
    }

    #[test]
    fn escape_md_neutralises_tables_and_html() {
        assert_eq!(escape_md("a|b"), "a\\|b");
        assert_eq!(
            escape_md("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape_md("one\ntwo\r\nthree\rfour"),
            "one<br>two<br>three<br>four"
        );
        assert_eq!(escape_md("*_`[x](y)`_*"), "\\*\\_\\`\\[x\\](y)\\`\\_\\*");
        assert_eq!(escape_md("# h & \\"), "\\# h &amp; \\\\");
        assert_eq!(escape_md("plain text: ok"), "plain text: ok");
    }

    #[test]
    fn code_spans_escape_html_and_pipes_but_not_underscores() {
        assert_eq!(code("CORS_ORIGIN"), "<code>CORS_ORIGIN</code>");
        assert_eq!(code("a|b<script>"), "<code>a&#124;b&lt;script&gt;</code>");
        assert_eq!(
            escape_md_with_code("`main` matches a*b"),
            "<code>main</code> matches a\\*b"
        );
        assert_eq!(escape_md_with_code("odd ` one"), "odd \\` one");
        assert_eq!(
            code("[x](https://e.com) *b* `c`"),
            "<code>&#91;x&#93;(https://e.com) &#42;b&#42; &#96;c&#96;</code>"
        );
    }
}
