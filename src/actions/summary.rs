//! The job summary (`GITHUB_STEP_SUMMARY`), kept under GitHub's size limit by design, and the
//! Markdown helpers that make untrusted text safe inside it.

use std::fs::OpenOptions;
use std::io::Write;

use super::context::Context;
use super::masks::redact;
use crate::untrusted::html_text;

/// GitHub accepts at most 1 MiB of summary per step and drops the WHOLE summary above that,
/// leaving only an error annotation (protocols.md §2). [`Summary::render`] never exceeds it.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Which sections get the budget first when everything does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// The verdict and what was deployed: shown whole whenever it fits at all.
    Essential,
    High,
    Normal,
    /// Bulky extras (full logs, manifests): the first to be trimmed or omitted.
    Low,
}

/// Bytes a block costs on top of its text: the blank line that separates it from the next.
const SEPARATOR: &str = "\n";

#[derive(Debug, Clone)]
enum Block {
    Markdown(String),
    Details {
        title: String,
        body: String,
        lang: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    priority: Priority,
    block: Block,
}

/// A job summary built from sections and rendered within a byte budget.
///
/// The budget goes to sections by priority ([`Priority::Essential`] first; in insertion order
/// within a priority) while the output keeps insertion order. A section that does not fit is
/// never dropped silently: it is replaced by a one-line note, and a [`details`](Self::details)
/// body is trimmed to what fits, with a note saying how much was cut. Room for every note is
/// reserved before any section is placed, so the result always fits the budget.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    entries: Vec<Entry>,
}

/// How one block ended up in the output.
enum Placed {
    Full,
    Trimmed(String),
    Omitted,
    /// Not even the note fit; counted in one note at the end.
    Collapsed,
}

/// A block with its text redacted and rendered, ready to be measured.
struct Prepared {
    priority: Priority,
    full: String,
    omitted: String,
    details: Option<(String, String, String)>,
}

impl Prepared {
    fn new(entry: &Entry) -> Self {
        // Redact before measuring: `***` can be longer than a short secret, and the budget
        // must hold for the text that is actually written.
        let (full, details) = match &entry.block {
            Block::Markdown(markdown) => {
                let mut text = redact(markdown).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                (text, None)
            }
            Block::Details { title, body, lang } => {
                let title = html_text(&redact(title));
                let body = redact(body).into_owned();
                let full = format!(
                    "<details><summary>{title}</summary>\n\n{}\n</details>\n",
                    code_fence(&body, lang)
                );
                (full, Some((title, body, lang.clone())))
            }
        };
        let omitted = omitted_note(full.len());
        Self {
            priority: entry.priority,
            full,
            omitted,
            details,
        }
    }

    /// The details block with as many leading body lines as fit in `available` bytes
    /// (separator included), or `None` when not even one line fits.
    fn trimmed(&self, available: usize) -> Option<String> {
        let (title, body, lang) = self.details.as_ref()?;
        let fence = fence_for(body);
        let lines: Vec<&str> = body.split_inclusive('\n').collect();
        let head = format!("<details><summary>{title} (trimmed)</summary>\n\n{fence}{lang}\n");
        // The note for the largest possible cut is the longest one: size the frame with it.
        let longest_note = trimmed_note(lines.len(), body.len());
        let frame = head.len() + fence.len() + 2 + longest_note.len() + "\n\n</details>\n".len();
        let room = available.checked_sub(frame + SEPARATOR.len())?;
        let mut kept = String::new();
        let mut kept_lines = 0;
        for line in &lines {
            let cost = line.len() + usize::from(!line.ends_with('\n'));
            if kept.len() + cost > room {
                break;
            }
            kept.push_str(line);
            if !line.ends_with('\n') {
                kept.push('\n');
            }
            kept_lines += 1;
        }
        if kept_lines == 0 {
            return None;
        }
        let cut_bytes = body.len().saturating_sub(kept.len());
        let note = trimmed_note(lines.len() - kept_lines, cut_bytes);
        Some(format!("{head}{kept}{fence}\n\n{note}\n\n</details>\n"))
    }
}

impl Summary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a Markdown section, kept whole or replaced by a one-line note when it cannot fit.
    /// The text is used as Markdown: escape untrusted parts with [`escape_md`].
    pub fn section(&mut self, priority: Priority, markdown: impl Into<String>) -> &mut Self {
        self.entries.push(Entry {
            priority,
            block: Block::Markdown(markdown.into()),
        });
        self
    }

    /// Adds a collapsible `<details>` block whose body is shown as a fenced code block of
    /// `lang`. When the budget is short the body is trimmed on a line boundary, keeping the
    /// first lines, and a note says how many lines and KiB were cut. `title` is plain text.
    pub fn details(
        &mut self,
        priority: Priority,
        title: &str,
        body: &str,
        lang: Option<&str>,
    ) -> &mut Self {
        // The info string ends at a line break and may not contain a backtick (CommonMark
        // fenced code blocks); keep only what a language name needs.
        let lang: String = lang
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "+-._#".contains(*c))
            .collect();
        self.entries.push(Entry {
            priority,
            block: Block::Details {
                title: title.to_owned(),
                body: body.to_owned(),
                lang,
            },
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The summary within [`SUMMARY_LIMIT`].
    pub fn render(&self) -> String {
        self.render_with_budget(SUMMARY_LIMIT)
    }

    /// The summary within `budget` bytes; see [`Summary`] for how the budget is shared.
    pub fn render_with_budget(&self, budget: usize) -> String {
        let prepared: Vec<Prepared> = self.entries.iter().map(Prepared::new).collect();
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&i| prepared[i].priority); // stable: insertion order within a priority
        let note_cost = |i: usize| prepared[i].omitted.len() + SEPARATOR.len();

        // Reserve a note for every block. If even the notes do not fit (a tiny budget or
        // thousands of sections), the lowest-priority blocks share one note at the end.
        let mut placed: Vec<Placed> = prepared.iter().map(|_| Placed::Omitted).collect();
        let mut reserved: usize = order.iter().map(|&i| note_cost(i)).sum();
        if reserved > budget {
            reserved = collapsed_note(prepared.len()).len() + SEPARATOR.len();
            if reserved > budget {
                return String::new();
            }
            // Keep notes for the highest priorities while they fit; from the first one that
            // does not, every later (lower-priority) block collapses into the shared note.
            let mut kept = 0;
            while kept < order.len() && reserved + note_cost(order[kept]) <= budget {
                reserved += note_cost(order[kept]);
                kept += 1;
            }
            for &i in &order[kept..] {
                placed[i] = Placed::Collapsed;
            }
        }

        // Place blocks by priority. Before each, release its own note from the reservation:
        // it may use that room plus whatever is unreserved. Every choice costs at most that,
        // so `used + reserved <= budget` holds throughout.
        let mut used = 0;
        for &i in &order {
            if matches!(placed[i], Placed::Collapsed) {
                continue;
            }
            reserved = reserved.saturating_sub(note_cost(i));
            let available = budget.saturating_sub(used + reserved);
            let block = &prepared[i];
            let (choice, cost) = if block.full.len() + SEPARATOR.len() <= available {
                (Placed::Full, block.full.len() + SEPARATOR.len())
            } else if let Some(trimmed) = block.trimmed(available) {
                let cost = trimmed.len() + SEPARATOR.len();
                (Placed::Trimmed(trimmed), cost)
            } else {
                (Placed::Omitted, note_cost(i))
            };
            placed[i] = choice;
            used += cost;
        }

        let mut parts: Vec<&str> = Vec::new();
        let mut collapsed = 0;
        for (block, placed) in prepared.iter().zip(&placed) {
            match placed {
                Placed::Full => parts.push(&block.full),
                Placed::Trimmed(text) => parts.push(text),
                Placed::Omitted => parts.push(&block.omitted),
                Placed::Collapsed => collapsed += 1,
            }
        }
        let note = collapsed_note(collapsed);
        if collapsed > 0 {
            parts.push(&note);
        }
        parts.join(SEPARATOR)
    }

    /// Appends the summary to `GITHUB_STEP_SUMMARY` when the runner gave one; returns whether
    /// anything was written. Text already in the file (another tool in the same step) counts
    /// against the 1 MiB limit.
    ///
    /// # Errors
    /// Reading the file's size or appending to it failed; the caller names the file.
    pub fn write(&self, ctx: &Context) -> std::io::Result<bool> {
        let Some(path) = ctx.summary_file.as_deref() else {
            return Ok(false);
        };
        if self.entries.is_empty() {
            return Ok(false);
        }
        let existing = match std::fs::metadata(path) {
            Ok(metadata) => usize::try_from(metadata.len()).unwrap_or(usize::MAX),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        let separator = if existing > 0 { "\n" } else { "" };
        let budget = SUMMARY_LIMIT.saturating_sub(existing.saturating_add(separator.len()));
        // Rendering redacts each block; redact the whole once more for a secret registered
        // across block boundaries. That can only shrink the text unless a secret is shorter
        // than `***`, so check the budget again rather than trust it.
        let text = redact(&self.render_with_budget(budget)).into_owned();
        if text.is_empty() || text.len() > budget {
            tracing::warn!(
                "not writing the job summary: {budget} bytes are left of the 1 MiB limit and it \
                 needs {} bytes",
                text.len()
            );
            return Ok(false);
        }
        let mut file = OpenOptions::new().append(true).create(true).open(path)?;
        file.write_all(format!("{separator}{text}").as_bytes())?;
        file.flush()?;
        Ok(true)
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

fn omitted_note(bytes: usize) -> String {
    format!(
        "> ⚠️ Section omitted: {} KiB would exceed the 1 MiB job summary limit; see the JSON \
         report.\n",
        kib(bytes)
    )
}

fn trimmed_note(lines: usize, bytes: usize) -> String {
    format!(
        "*… trimmed {lines} lines ({} KiB) to stay under the 1 MiB job summary limit*",
        kib(bytes)
    )
}

fn collapsed_note(sections: usize) -> String {
    format!(
        "> ⚠️ {sections} more sections omitted to stay under the 1 MiB job summary limit; see \
         the JSON report.\n"
    )
}

/// A GFM table: header row, `|---|` row, then the rows. Cells are Markdown already (escape
/// untrusted text with [`escape_md`]); a line break left in a cell is turned into `<br>` anyway,
/// since it would split the row. Short rows are padded with empty cells. Empty without headers.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
        out.push('|');
        for cell in cells {
            out.push(' ');
            out.push_str(&cell.replace("\r\n", "<br>").replace(['\r', '\n'], "<br>"));
            out.push_str(" |");
        }
        out.push('\n');
    }
    if headers.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    push_row(&mut out, headers.iter().copied());
    out.push('|');
    for _ in headers {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        let padding = headers.len().saturating_sub(row.len());
        push_row(
            &mut out,
            row.iter()
                .map(String::as_str)
                .chain(std::iter::repeat_n("", padding)),
        );
    }
    out
}

/// A backtick fence longer than any backtick run in `body` (at least three), so the body cannot
/// close the block early (CommonMark: the closing fence must be at least as long).
fn fence_for(body: &str) -> String {
    let longest = body
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    "`".repeat((longest + 1).max(3))
}

/// `body` as a fenced code block of `lang`, ending with a newline.
pub fn code_fence(body: &str, lang: &str) -> String {
    let fence = fence_for(body);
    let newline = if body.is_empty() || body.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{fence}{lang}\n{body}{newline}{fence}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::commands::Console;
    use crate::actions::masks::unique_secret;
    use crate::actions::secret::mask;
    use crate::untrusted::escape_md;

    /// A deterministic pseudo-random sequence (Knuth's MMIX LCG), enough to vary sizes.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            usize::try_from(self.0 >> 33).unwrap_or_default() % bound.max(1)
        }
    }

    const PRIORITIES: [Priority; 4] = [
        Priority::Essential,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    #[test]
    fn never_exceeds_the_budget() {
        let mut rng = Lcg(0x5eed);
        let (mut trimmed, mut omitted, mut collapsed) = (0, 0, 0);
        for round in 0..250 {
            let mut summary = Summary::new();
            let sections = rng.below(12);
            for n in 0..sections {
                let priority = PRIORITIES[rng.below(4)];
                let size = rng.below(16 * 1024);
                if rng.below(2) == 0 {
                    summary.section(priority, format!("§{n}§ {}", "x".repeat(size)));
                } else {
                    let line = "y".repeat(rng.below(300) + 1);
                    let body = vec![line.as_str(); size / line.len() + 1].join("\n");
                    summary.details(priority, &format!("§{n}§"), &body, Some("text"));
                }
            }
            let budget = rng.below(48 * 1024);
            let text = summary.render_with_budget(budget);
            assert!(
                text.len() <= budget,
                "round {round}: {} bytes over a budget of {budget}",
                text.len()
            );
            // With room for every note, every section shows up: whole, trimmed or as a note.
            let notes_fit = summary
                .entries
                .iter()
                .map(|e| Prepared::new(e).omitted.len() + 1);
            if notes_fit.sum::<usize>() <= budget {
                let shown = (0..sections)
                    .filter(|n| text.contains(&format!("§{n}§")))
                    .count();
                let notes = text.matches("Section omitted").count();
                assert_eq!(shown + notes, sections, "round {round}, budget {budget}");
            }
            trimmed += text.matches("(trimmed)</summary>").count();
            omitted += text.matches("Section omitted").count();
            collapsed += text.matches("more sections omitted").count();
        }
        // The sizes above must exercise every way of making room, or the test proves little.
        assert!(
            trimmed > 0 && omitted > 0 && collapsed > 0,
            "{trimmed} {omitted} {collapsed}"
        );
    }

    #[test]
    fn tiny_budgets_still_fit() {
        let mut summary = Summary::new();
        for _ in 0..50 {
            summary.section(Priority::Normal, "z".repeat(500));
        }
        for budget in [0, 1, 50, 150, 400, 1000, 5000] {
            let text = summary.render_with_budget(budget);
            assert!(
                text.len() <= budget,
                "budget {budget}: {} bytes",
                text.len()
            );
        }
        let text = summary.render_with_budget(1000);
        assert!(text.contains("more sections omitted"), "{text}");
    }

    #[test]
    fn essential_is_kept_when_low_is_huge() {
        let mut summary = Summary::new();
        summary.section(Priority::Low, "L".repeat(2 * SUMMARY_LIMIT));
        summary.section(Priority::Essential, "## Promoted `web` to production");
        let text = summary.render();
        assert!(text.len() <= SUMMARY_LIMIT);
        assert_eq!(
            text,
            "> ⚠️ Section omitted: 2049 KiB would exceed the 1 MiB job summary limit; see the \
             JSON report.\n\n## Promoted `web` to production\n"
        );
    }

    #[test]
    fn budget_goes_by_priority_but_order_is_kept() {
        let mut summary = Summary::new();
        summary.section(Priority::Low, "first-low ".repeat(100));
        summary.section(Priority::High, "second-high ".repeat(100));
        summary.section(Priority::Low, "third-low");
        let text = summary.render_with_budget(1500);
        assert!(text.len() <= 1500);
        assert!(text.starts_with("> ⚠️ Section omitted: 1 KiB"), "{text}");
        assert!(text.contains("second-high"));
        assert!(text.ends_with("third-low\n"), "{text}");
        assert!(text.find("second-high") < text.find("third-low"));
    }

    #[test]
    fn trimmed_details_carry_the_note() {
        let body: String = (1..=1000).map(|n| format!("line {n:04}\n")).collect();
        let mut summary = Summary::new();
        summary.section(Priority::Essential, "# Verdict");
        summary.details(Priority::Low, "Pod logs", &body, Some("log"));
        let text = summary.render_with_budget(4096);
        assert!(text.len() <= 4096, "{} bytes", text.len());
        assert!(text.starts_with("# Verdict\n\n<details><summary>Pod logs (trimmed)</summary>"));
        assert!(text.contains("```log\nline 0001\nline 0002\n"), "{text}");
        let kept = text.matches("line 0").count();
        let note = format!(
            "*… trimmed {} lines ({} KiB) to stay under the 1 MiB job summary limit*",
            1000 - kept,
            kib((1000 - kept) * 10)
        );
        assert!(text.contains(&note), "missing {note:?} in\n{text}");
        assert!(text.ends_with("</details>\n"));
        let full = summary.render();
        assert!(full.contains("line 1000\n```\n\n</details>\n"));
        assert!(!full.contains("trimmed"));
    }

    #[test]
    fn omitted_section_leaves_the_note() {
        let mut summary = Summary::new();
        summary.section(Priority::Normal, "n".repeat(10 * 1024));
        let text = summary.render_with_budget(2048);
        assert_eq!(
            text,
            "> ⚠️ Section omitted: 11 KiB would exceed the 1 MiB job summary limit; see the \
             JSON report.\n"
        );
    }

    #[test]
    fn details_fence_outlasts_backticks_in_the_body() {
        let mut summary = Summary::new();
        summary.details(
            Priority::Normal,
            "a <b> & \"c\"\nd",
            "x ```` y",
            Some("ya`ml\n"),
        );
        assert_eq!(
            summary.render(),
            "<details><summary>a &lt;b&gt; &amp; &quot;c&quot; d</summary>\n\n`````yaml\nx ```` \
             y\n`````\n\n</details>\n"
        );
        assert_eq!(code_fence("a\n", "sh"), "```sh\na\n```\n");
        assert_eq!(code_fence("", ""), "```\n```\n");
    }

    #[test]
    fn summary_is_redacted() {
        let secret = unique_secret("summary");
        mask(&secret, &Console::new(false));
        let mut summary = Summary::new();
        summary.section(Priority::Essential, format!("token {secret}"));
        summary.details(Priority::Low, &secret, &format!("body {secret}"), None);
        let text = summary.render();
        assert!(!text.contains(&secret), "{text}");
        assert!(text.contains("token ***"));
    }

    #[test]
    fn write_appends_to_the_step_summary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("step_summary");
        let ctx = Context {
            summary_file: Some(path.clone()),
            ..Context::default()
        };
        let mut summary = Summary::new();
        assert!(
            !summary.write(&ctx).expect("empty summary"),
            "nothing to write"
        );
        summary.section(Priority::Essential, "# One");
        assert!(summary.write(&ctx).expect("first write"));
        assert!(summary.write(&ctx).expect("second write"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read back"),
            "# One\n\n# One\n"
        );
        assert!(
            !summary.write(&Context::default()).expect("no file"),
            "no summary file"
        );
    }

    #[test]
    fn table_renders_gfm() {
        let rows = vec![
            vec!["web".to_string(), escape_md("a|b")],
            vec!["api".to_string()],
            vec!["x\ny".to_string(), "z".to_string()],
        ];
        assert_eq!(
            table(&["Workload", "Status"], &rows),
            "| Workload | Status |\n|---|---|\n| web | a\\|b |\n| api |  |\n| x<br>y | z |\n"
        );
        assert_eq!(table(&[], &rows), "");
    }
}
