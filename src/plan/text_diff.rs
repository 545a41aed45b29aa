//! Line diffs, shown the way `diff -u` and `git diff` show them: Myers' shortest edit script
//! ("An O(ND) Difference Algorithm and Its Variations", 1986) over lines, cut into hunks with
//! `@@ -a,b +c,d @@` headers and a few lines of context. Pure; the plan's object diffs (base
//! branch against head, live cluster against a server-side dry run) are rendered with it.

/// Lines of context around each change, as `diff -u` uses by default.
pub const CONTEXT: usize = 3;

/// Edits beyond which the search stops and the differing middle is shown as removed, then
/// added: the trace kept for backtracking grows with the square of the edits (about 16 MiB
/// at this bound), and a diff that large is read as "replaced" anyway.
const MAX_EDITS: usize = 2000;

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The line-by-line difference between two texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Diff<'a> {
    /// Compares `old` and `new` line by line (a final newline does not make a line).
    pub fn new(old: &'a str, new: &'a str) -> Self {
        let a: Vec<&str> = old.lines().collect();
        let b: Vec<&str> = new.lines().collect();
        Diff {
            lines: edit_script(&a, &b),
        }
    }

    pub fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// Whether the texts have the same lines.
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| matches!(l, Line::Same(_)))
    }

    pub fn added(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, Line::Added(_)))
            .count()
    }

    pub fn removed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, Line::Removed(_)))
            .count()
    }

    /// The unified diff: `--- old_name`, `+++ new_name`, then one hunk per group of changes
    /// with `context` lines around it. Empty when nothing differs.
    pub fn unified(&self, old_name: &str, new_name: &str, context: usize) -> String {
        let changes: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !matches!(l, Line::Same(_)))
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = changes.first() else {
            return String::new();
        };
        // Changes separated by at most 2 × context unchanged lines share a hunk.
        let mut groups: Vec<(usize, usize)> = vec![(first, first)];
        for &c in &changes[1..] {
            let last = groups.last_mut().expect("one group at least");
            if c - last.1 - 1 <= 2 * context {
                last.1 = c;
            } else {
                groups.push((c, c));
            }
        }
        // Line numbers before each position, to number the hunks.
        let mut old_before = Vec::with_capacity(self.lines.len() + 1);
        let mut new_before = Vec::with_capacity(self.lines.len() + 1);
        let (mut o, mut n) = (0, 0);
        for line in &self.lines {
            old_before.push(o);
            new_before.push(n);
            match line {
                Line::Same(_) => {
                    o += 1;
                    n += 1;
                }
                Line::Removed(_) => o += 1,
                Line::Added(_) => n += 1,
            }
        }
        old_before.push(o);
        new_before.push(n);

        let mut out = format!("--- {old_name}\n+++ {new_name}\n");
        for (first, last) in groups {
            let start = first.saturating_sub(context);
            let end = (last + context + 1).min(self.lines.len());
            let old_len = old_before[end] - old_before[start];
            let new_len = new_before[end] - new_before[start];
            out.push_str(&format!(
                "@@ -{} +{} @@\n",
                range(old_before[start], old_len),
                range(new_before[start], new_len)
            ));
            for line in &self.lines[start..end] {
                let (mark, text) = match line {
                    Line::Same(t) => (' ', t),
                    Line::Removed(t) => ('-', t),
                    Line::Added(t) => ('+', t),
                };
                out.push(mark);
                out.push_str(text);
                out.push('\n');
            }
        }
        out
    }
}

/// A hunk range as `diff -u` prints it: `start,len`, `start` alone for one line, and for no
/// lines the line before (`0,0` at the top of the file).
fn range(before: usize, len: usize) -> String {
    match len {
        0 => format!("{before},0"),
        1 => format!("{}", before + 1),
        _ => format!("{},{len}", before + 1),
    }
}

/// The shortest edit script turning `a` into `b`, common prefix and suffix first.
fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Line<'a>> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out: Vec<Line<'a>> = a[..prefix].iter().map(|l| Line::Same(l)).collect();
    match myers(a_mid, b_mid) {
        Some(middle) => out.extend(middle),
        None => {
            out.extend(a_mid.iter().map(|l| Line::Removed(l)));
            out.extend(b_mid.iter().map(|l| Line::Added(l)));
        }
    }
    out.extend(a[a.len() - suffix..].iter().map(|l| Line::Same(l)));
    out
}

/// Myers' greedy forward search, keeping for each edit count `d` the furthest x reached on
/// every diagonal k = x − y in −d..=d (2d + 1 values), then walking back through them.
/// `None` when more than [`MAX_EDITS`] edits are needed.
fn myers<'a>(a: &[&'a str], b: &[&'a str]) -> Option<Vec<Line<'a>>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (a.len() + b.len()).min(MAX_EDITS) as isize;
    let offset = max + 1;
    let mut v = vec![0isize; 2 * offset as usize + 1];
    let at = |k: isize| (k + offset) as usize;
    // trace[d]: v on diagonals -d..=d as it stood before step d (the result of step d - 1).
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = None;
    'search: for d in 0..=max {
        trace.push(v[at(-d)..=at(d)].to_vec());
        for k in (-d..=d).step_by(2) {
            let mut x = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
                v[at(k + 1)]
            } else {
                v[at(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                found = Some(d);
                break 'search;
            }
        }
    }
    let edits = found?;

    let mut reversed = Vec::with_capacity(a.len() + b.len());
    let (mut x, mut y) = (n, m);
    for d in (0..=edits).rev() {
        let prev = &trace[d as usize];
        let get = |k: isize| prev[(k + d) as usize];
        let k = x - y;
        let (prev_x, prev_y) = if d == 0 {
            (0, 0)
        } else {
            let prev_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
                k + 1
            } else {
                k - 1
            };
            let px = get(prev_k);
            (px, px - prev_k)
        };
        while x > prev_x && y > prev_y {
            reversed.push(Line::Same(a[x as usize - 1]));
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            if x == prev_x {
                reversed.push(Line::Added(b[prev_y as usize]));
            } else {
                reversed.push(Line::Removed(a[prev_x as usize]));
            }
        }
        x = prev_x;
        y = prev_y;
    }
    reversed.reverse();
    Some(reversed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old and new texts a diff's lines spell out.
    fn sides(diff: &Diff<'_>) -> (Vec<String>, Vec<String>) {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for line in diff.lines() {
            match line {
                Line::Same(t) => {
                    old.push(t.to_string());
                    new.push(t.to_string());
                }
                Line::Removed(t) => old.push(t.to_string()),
                Line::Added(t) => new.push(t.to_string()),
            }
        }
        (old, new)
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    /// Every edit script reproduces both texts, and is minimal where the minimum is known.
    #[test]
    fn edit_scripts_spell_both_texts_with_the_fewest_edits() {
        let cases: &[(&str, &str, &str, usize)] = &[
            ("equal", "a\nb\nc\n", "a\nb\nc\n", 0),
            ("both empty", "", "", 0),
            ("from nothing", "", "a\nb\n", 2),
            ("to nothing", "a\nb\n", "", 2),
            ("one changed", "a\nb\nc\n", "a\nx\nc\n", 2),
            ("inserted in the middle", "a\nc\n", "a\nb\nc\n", 1),
            ("deleted at the end", "a\nb\nc\n", "a\nb\n", 1),
            (
                "Myers' example",
                "a\nb\nc\na\nb\nb\na\n",
                "c\nb\na\nb\na\nc\n",
                5,
            ),
            ("moved line", "a\nb\nc\nd\n", "b\nc\nd\na\n", 2),
            ("no final newline", "a\nb", "a\nb\n", 0),
        ];
        for (name, old, new, edits) in cases {
            let diff = Diff::new(old, new);
            let (o, n) = sides(&diff);
            assert_eq!(o, lines(old), "case {name}: old side");
            assert_eq!(n, lines(new), "case {name}: new side");
            assert_eq!(diff.added() + diff.removed(), *edits, "case {name}: edits");
            assert_eq!(diff.is_empty(), *edits == 0, "case {name}: is_empty");
        }
    }

    /// A pseudo-random sweep: the script always spells both texts, and never needs more
    /// edits than replacing every differing line.
    #[test]
    fn edit_scripts_hold_for_many_random_texts() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..300 {
            let old: String = (0..next(30)).map(|_| format!("{}\n", next(5))).collect();
            let new: String = (0..next(30)).map(|_| format!("{}\n", next(5))).collect();
            let diff = Diff::new(&old, &new);
            let (o, n) = sides(&diff);
            assert_eq!(o, lines(&old));
            assert_eq!(n, lines(&new));
            assert!(diff.added() + diff.removed() <= old.lines().count() + new.lines().count());
        }
    }

    #[test]
    fn hunks_carry_three_lines_of_context_and_diff_u_numbers() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 5\n", "line five\n")
            .replace("line 17\n", "");
        let text = Diff::new(&old, &new).unified("a/x.yaml", "b/x.yaml", CONTEXT);
        assert_eq!(
            text,
            "--- a/x.yaml
+++ b/x.yaml
@@ -2,7 +2,7 @@
 line 2
 line 3
 line 4
-line 5
+line five
 line 6
 line 7
 line 8
@@ -14,7 +14,6 @@
 line 14
 line 15
 line 16
-line 17
 line 18
 line 19
 line 20
"
        );
    }

    #[test]
    fn nearby_changes_share_a_hunk() {
        let old: String = (1..=12).map(|i| format!("{i}\n")).collect();
        // Six unchanged lines (4..=9) between the changes: within 2 × 3, one hunk.
        let new = old.replace("3\n", "three\n").replace("10\n", "ten\n");
        let text = Diff::new(&old, &new).unified("old", "new", CONTEXT);
        assert_eq!(text.matches("@@ -").count(), 1, "{text}");
        assert!(text.contains("@@ -1,12 +1,12 @@"), "{text}");
        // Seven between them: two hunks.
        let new = old.replace("2\n", "two\n").replace("10\n", "ten\n");
        let text = Diff::new(&old, &new).unified("old", "new", CONTEXT);
        assert_eq!(text.matches("@@ -").count(), 2, "{text}");
    }

    #[test]
    fn added_and_removed_files_number_like_diff_u() {
        let added = Diff::new("", "a: 1\nb: 2\n").unified("/dev/null", "new", CONTEXT);
        assert_eq!(
            added,
            "--- /dev/null\n+++ new\n@@ -0,0 +1,2 @@\n+a: 1\n+b: 2\n"
        );
        let removed = Diff::new("a: 1\n", "").unified("old", "/dev/null", CONTEXT);
        assert_eq!(removed, "--- old\n+++ /dev/null\n@@ -1 +0,0 @@\n-a: 1\n");
        let insert_at_end = Diff::new("a\n", "a\nb\n").unified("o", "n", 0);
        assert_eq!(insert_at_end, "--- o\n+++ n\n@@ -1,0 +2 @@\n+b\n");
        assert_eq!(Diff::new("same\n", "same\n").unified("o", "n", CONTEXT), "");
    }

    #[test]
    fn huge_rewrites_fall_back_to_replacing_the_middle() {
        let old: String = (0..3000).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..3000).map(|i| format!("new {i}\n")).collect();
        let old = format!("head\n{old}tail\n");
        let new = format!("head\n{new}tail\n");
        let diff = Diff::new(&old, &new);
        assert_eq!((diff.removed(), diff.added()), (3000, 3000));
        let (o, n) = sides(&diff);
        assert_eq!((o, n), (lines(&old), lines(&new)));
    }
}
