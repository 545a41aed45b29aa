//! Integration tests: one binary, a module per capability. Each drives the real `promote`
//! binary or the library's public face; none reaches a network beyond 127.0.0.1.

mod util;

/// The binary as the Actions runner starts it: INPUT_* variables, file commands, masking.
mod action_runtime;
/// Invalid promotion files, each with the exact errors and locations it must produce.
mod config_corpus;
/// action.yml, the README tables and the input table in code say the same thing.
mod docs_sync;
/// `plan`'s rendered objects, pinned down as YAML snapshots.
mod render_snapshots;
