//! The batch front end: `info` and `prune`, progress on stderr, results on stdout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use chroma_wal::chroma::{wal, Snapshot, WalStats};
use chroma_wal::prune::{self, preflight, Canceller, Event, JobOptions, Plan, Selection, Unit};
use chroma_wal::{report, units, Error};

use crate::cli::{InfoArgs, PruneArgs};

/// What a command produced: its exit code, after printing.
pub type Outcome = Result<(), (Error, Option<prune::JobError>)>;

fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn bar(prefix: &str, total: Option<u64>, unit: Unit) -> ProgressBar {
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

fn open_and_count(path: &Path, cancel: &Canceller) -> Result<(Snapshot, WalStats), Error> {
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

fn print_json(v: &serde_json::Value) {
    let s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    println!("{s}");
}

pub fn info(args: &InfoArgs, cancel: &Canceller) -> Outcome {
    let (mut snap, wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    if args.deep {
        let pb = bar("deleted", None, Unit::Bytes);
        let mut cb = |done: u64, total: u64| {
            pb.set_length(total);
            pb.set_position(done);
            !cancel.is_cancelled()
        };
        let r = chroma_wal::chroma::deep::count_deleted(&mut snap, &mut cb);
        pb.finish_and_clear();
        r.map_err(|e| (e, None))?;
    }
    if args.json {
        print_json(&report::info_json(&snap, &wal));
    } else {
        print!("{}", report::info_text(&snap, &wal));
    }
    Ok(())
}

fn selection(args: &PruneArgs) -> Selection {
    if args.all {
        Selection::All
    } else if !args.collection.is_empty() {
        Selection::Collections(args.collection.clone())
    } else {
        Selection::Topics(args.topic.clone())
    }
}

fn confirm(plan: &Plan) -> Result<(), Error> {
    eprint!(
        "Delete {} WAL rows from {} topic(s)? [y/N] ",
        units::count(plan.rows()),
        plan.effective().count()
    );
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

pub fn prune(args: &PruneArgs, cancel: &Canceller) -> Outcome {
    let (snap, wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    let plan = Plan::build(&snap, &wal, &selection(args)).map_err(|e| (e, None))?;
    let target = args.backup.target();
    let folder: Option<PathBuf> = target.folder(&snap.persist_dir);
    let vacuum = !args.no_vacuum;
    let opts = JobOptions {
        backup: target,
        vacuum,
        in_place: args.in_place,
    };
    if let Some(f) = &folder {
        prune::job::check_backup_folder(&snap.persist_dir, f).map_err(|e| (e, None))?;
    }
    let space = preflight::space(
        &snap.persist_dir,
        snap.sizes.sqlite,
        plan.bytes(),
        folder.as_deref(),
        vacuum,
        opts.by_copy(),
    );
    // Damaged collections are skipped, loudly: on stderr whatever the output format.
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    if args.dry_run {
        if args.json {
            print_json(&report::plan_json(
                &snap,
                &plan,
                folder.as_deref(),
                &space,
                vacuum,
            ));
        } else {
            print!(
                "{}",
                report::plan_text(&snap, &plan, folder.as_deref(), &space, vacuum)
            );
            println!("Dry run: nothing was written.");
        }
        return Ok(());
    }
    // Refuse while Chroma runs (or the file is otherwise unsafe), even with nothing to
    // delete, and before asking: the answer could not be used anyway.
    if let Some(b) = snap.prune_blockers().first() {
        return Err((Error::refused(b.clone()), None));
    }
    // Nothing to delete, but free pages left by an earlier prune that was stopped before
    // its compaction: run the job anyway so "run again to compact" holds.
    let compact_only = plan.rows() == 0 && vacuum && snap.free_bytes() > 0;
    if plan.rows() == 0 && !compact_only {
        let why = "nothing to prune: no selected topic has rows below its bound";
        if args.json {
            let mut v = report::plan_json(&snap, &plan, None, &space, vacuum);
            v["dry_run"] = serde_json::Value::Bool(false);
            v["message"] = serde_json::Value::String(why.into());
            print_json(&v);
        } else {
            print!("{}", report::plan_text(&snap, &plan, None, &space, vacuum));
            println!("{why}.");
        }
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err((
                Error::refused(
                    "refusing to prune without confirmation: stdin is not a terminal (pass --yes)",
                ),
                None,
            ));
        }
        eprint!(
            "{}",
            report::plan_text(&snap, &plan, folder.as_deref(), &space, vacuum)
        );
        confirm(&plan).map_err(|e| (e, None))?;
    }
    let tty = stderr_is_tty();
    let mut current: Option<ProgressBar> = None;
    let mut on_event = |ev: Event| match ev {
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
                units::seconds(seconds)
            );
        }
        Event::Skipped { step, reason } => eprintln!("{}: skipped ({reason})", step.name()),
        Event::Failed { step, message } => {
            if let Some(pb) = current.take() {
                pb.finish_and_clear();
            }
            eprintln!("{}: failed: {message}", step.name());
        }
    };
    match prune::run(&snap.persist_dir, &plan, &opts, cancel, &mut on_event) {
        Ok(r) => {
            if args.json {
                print_json(&report::report_json(&r));
            } else {
                print!("{}", report::report_text(&r));
            }
            Ok(())
        }
        Err(j) => Err((j.error.clone(), Some(j))),
    }
}
