//! Small formatters shared by the renderers: aligned columns, durations, sizes, times.

use jiff::Timestamp;

use crate::untrusted::{html_text, server_text, short_digest};

/// Rows as columns padded to the widest cell (counted in characters), trailing space trimmed.
pub(super) fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Server or user text for the terminal: one line, no control characters, at most 1000
/// characters, so it cannot forge a workflow command (`::error::` at the start of a line).
pub(super) fn plain(text: &str) -> String {
    server_text(text)
}

/// `850 ms`, `4.2s`, `42s`, `3m 05s`, `1h 02m`.
pub(super) fn human_ms(ms: u128) -> String {
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `512 B`, `12.3 KiB`, `12.3 MiB`, `1.2 GiB`.
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `12:03` when `at` falls on the same UTC day as `reference`, else `05-01 12:03`.
pub(super) fn clock(at: Timestamp, reference: Timestamp) -> String {
    let same_day =
        reference.strftime("%Y-%m-%d").to_string() == at.strftime("%Y-%m-%d").to_string();
    if same_day {
        at.strftime("%H:%M").to_string()
    } else {
        at.strftime("%m-%d %H:%M").to_string()
    }
}

/// `Mar 14 10:10` (UTC).
pub(super) fn short_time(at: Timestamp) -> String {
    at.strftime("%b %-d %H:%M").to_string()
}

/// `2024-05-01 12:03:11 UTC`.
pub(super) fn time_text(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `45s`, `12m`, `5h`, `3d` between `since` and `now`; a time in the future (clock skew)
/// counts as `0s`.
pub(super) fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second().saturating_sub(since.as_second()).max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 48 * 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `<code title="sha256:full">sha256:3f2a9c1b4d5e</code>`: the short form, the whole on hover.
pub(super) fn digest_code(digest: &str) -> String {
    format!(
        "<code title=\"{}\">{}</code>",
        html_text(digest),
        html_text(&short_digest(digest))
    )
}
