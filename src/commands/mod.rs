//! The batch front end, one file per command (with its clap arguments beside it): progress
//! on stderr, results on stdout. What they share is here.

pub mod compact;
pub mod completions;
pub mod info;
pub mod man;
pub mod prune;
pub mod records;
pub mod restore;
pub mod rows;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use chroma_wal::chroma::{wal, Snapshot, WalStats};
use chroma_wal::prune::{Canceller, JobError, Unit};
use chroma_wal::Error;

/// What a command produced: its exit code, after printing.
pub type Outcome = Result<(), (Error, Option<JobError>)>;

pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub fn bar(prefix: &str, total: Option<u64>, unit: Unit) -> ProgressBar {
    let target = if stderr_is_tty() {
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), target),
        None => ProgressBar::with_draw_target(None, target),
    };
    let counts = match unit {
        Unit::Bytes => "{bytes}/{total_bytes}",
        _ => "{human_pos}/{human_len}",
    };
    let tmpl = if total.is_some() {
        format!("{{prefix:>9}} [{{bar:30}}] {counts} {{elapsed}}")
    } else {
        "{prefix:>9} {spinner} {elapsed}".to_string()
    };
    if let Ok(style) = ProgressStyle::with_template(&tmpl) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix.to_string());
    if total.is_none() {
        pb.enable_steady_tick(Duration::from_millis(120));
    }
    pb
}

pub fn open_and_count(path: &Path, cancel: &Canceller) -> Result<(Snapshot, WalStats), Error> {
    let pb = bar("counting", None, Unit::Rows);
    let mut cb = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
        !cancel.is_cancelled()
    };
    let r = wal::open_and_scan(path, &mut cb);
    pb.finish_and_clear();
    r
}

pub fn print_json(v: &serde_json::Value) {
    let s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    println!("{s}");
}
