//! The batch front end, one file per command (with its clap arguments beside it): progress
//! on stderr, results on stdout. What they share is here.

pub mod check;
pub mod compact;
pub mod completions;
pub mod info;
pub mod man;
pub mod prune;
pub mod records;
pub mod restore;
pub mod rows;
pub mod scrub;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use chroma_wal::chroma::{wal, Snapshot, WalStats};
use chroma_wal::jobs::prune::{Canceller, Event, JobError, Unit};
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

/// What a write job's events look like on stderr: a bar per step on a terminal, one line per
/// step start otherwise, and each step's end, skip or failure in words.
pub fn step_printer() -> impl FnMut(Event) {
    let tty = stderr_is_tty();
    let mut current: Option<ProgressBar> = None;
    move |ev: Event| match ev {
        Event::Started { step, total, unit } => {
            if let Some(pb) = current.take() {
                pb.finish_and_clear();
            }
            current = Some(bar(step.name(), total, unit));
            if !tty {
                eprintln!("{}: started", step.name());
            }
        }
        Event::Progress { done, total, .. } => {
            if let Some(pb) = &current {
                if let Some(t) = total {
                    pb.set_length(t);
                }
                pb.set_position(done);
            }
        }
        Event::Finished {
            step,
            seconds,
            detail,
        } => {
            if let Some(pb) = current.take() {
                pb.finish_and_clear();
            }
            let extra = detail.map(|d| format!(" ({d})")).unwrap_or_default();
            eprintln!(
                "{}: done in {}{extra}",
                step.name(),
                chroma_wal::units::seconds(seconds)
            );
        }
        Event::Skipped { step, reason } => eprintln!("{}: skipped ({reason})", step.name()),
        Event::Failed { step, message } => {
            if let Some(pb) = current.take() {
                pb.finish_and_clear();
            }
            eprintln!("{}: failed: {message}", step.name());
        }
    }
}

/// After a question on stderr: a yes on stdin, or the refusal that leaves everything as it was.
pub fn yes_or_refuse() -> Result<(), Error> {
    use std::io::Write;
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::failed(format!("cannot read the answer: {e}")))?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::refused("not confirmed; nothing was changed"))
    }
}
