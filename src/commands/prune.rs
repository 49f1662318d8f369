//! `chroma-wal prune`: plan, confirm and run a prune.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use chroma_wal::chroma::{coverage, truth, Snapshot};
use chroma_wal::jobs::preflight;
use chroma_wal::jobs::prune::{self, lossy, Canceller, JobOptions, Plan, Selection};
use chroma_wal::{report, units, Error};

use super::{open_and_count, print_json, Outcome};
use crate::cli::BackupArgs;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["all", "collection", "topic", "orphan_dirs"])))]
pub struct PruneArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Prune every topic with prunable rows, orphan topics included.
    #[arg(long, conflicts_with_all = ["collection", "topic"])]
    pub all: bool,

    /// Prune one collection, by name or id (repeatable).
    #[arg(long, value_name = "NAME_OR_ID", conflicts_with = "topic")]
    pub collection: Vec<String>,

    /// Prune one WAL topic, exactly as stored (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Vec<String>,

    /// Also reclaim orphan segment folders (index folders no segment uses any more): moved
    /// into the backup, or deleted with --no-backup. Alone, it touches no WAL row.
    #[arg(long)]
    pub orphan_dirs: bool,

    /// Show the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (needed when stdin is not a terminal). By copy, with --all
    /// or --collection, the copy then counts the WAL itself: the file is read once.
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub backup: BackupArgs,

    /// Do not compact chroma.sqlite3 after deleting.
    #[arg(long)]
    pub no_vacuum: bool,

    /// Compact chroma.sqlite3 even when no row is deleted, to give back its free pages (an
    /// earlier prune stopped before its compaction, or Chroma's own deletes). Without it, a
    /// prune that deletes nothing writes nothing.
    #[arg(long, conflicts_with = "no_vacuum")]
    pub compact: bool,

    /// Prune inside chroma.sqlite3 (DELETE, then VACUUM) instead of writing a compacted copy
    /// and renaming it over the original. Slower and needs more disk; keeps the file's inode.
    #[arg(long, conflicts_with = "no_vacuum")]
    pub in_place: bool,

    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
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
    let folders = if plan.dirs.is_empty() {
        String::new()
    } else {
        format!(
            " and reclaim {} orphan folder(s) ({})",
            plan.dirs.len(),
            units::bytes(plan.dir_bytes_total())
        )
    };
    eprint!(
        "Delete {} WAL rows from {} topic(s){folders}? [y/N] ",
        units::count(plan.rows()),
        plan.effective().count()
    );
    super::yes_or_refuse()
}

pub fn prune(args: &PruneArgs, cancel: &Canceller) -> Outcome {
    if let Some(done) = prune_counting_in_copy(args, cancel) {
        return done;
    }
    let (mut snap, mut wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    // Before any of a collection's rows may go, its records must all be in an index Chroma
    // can load or in the WAL above the index's position; otherwise the WAL is how they come
    // back, and it is kept whole.
    let touched = coverage::with_prunable_rows(&wal);
    coverage::apply(&mut snap, &mut wal, &|i| touched.contains(&i)).map_err(|e| (e, None))?;
    let mut plan = Plan::build(&snap, &wal, &selection(args)).map_err(|e| (e, None))?;
    if args.orphan_dirs {
        plan = plan.with_dirs(&snap, None);
    }
    // Before the question (and in a dry run): which collections this prune leaves without a
    // lossless rebuild from the WAL. Reads the WAL and the records of the collections it
    // touches (not their index files); skipped with --yes, where no one is asked.
    if !args.yes || args.dry_run {
        let planned: std::collections::HashSet<usize> = plan
            .effective()
            .filter_map(|t| snap.find_collection(&t.collection.as_ref()?.0).ok())
            .collect();
        if !planned.is_empty() {
            let found = truth::read(&snap, &|i| planned.contains(&i), false, &mut |_, _| {
                !cancel.is_cancelled()
            })
            .map_err(|e| (e, None))?;
            truth::apply(&mut snap, found);
            if let Some(s) = lossy::summary(&lossy::made_lossy(&plan, &snap)) {
                plan.notes.push(format!("after this prune, {s}"));
            }
        }
    }
    let (opts, folder) = job_options(args, &snap.persist_dir);
    let vacuum = opts.vacuum;
    if let Some(f) = &folder {
        chroma_wal::backup::check_backup_folder(&snap.persist_dir, f).map_err(|e| (e, None))?;
    }
    let space = disk_space(&snap, &plan, folder.as_deref(), &opts);
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
    // Nothing to delete: the file is rewritten only when a compaction is asked for by name
    // (at 20 GB it is minutes of I/O to give back a few free pages).
    let compact_only = plan.rows() == 0 && args.compact && snap.free_bytes() > 0;
    if plan.rows() == 0 && !compact_only && plan.dirs.is_empty() {
        let why = chroma_wal::jobs::prune::plan::nothing_to_prune(&snap, args.compact, false);
        if args.json {
            let mut v = report::plan_json(&snap, &plan, None, &space, vacuum);
            v["dry_run"] = serde_json::Value::Bool(false);
            v["message"] = serde_json::Value::String(why.clone());
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
    run_and_report(args, &snap.persist_dir, &plan, &opts, cancel)
}

/// The job's options from the flags, and the backup folder they name for `dir`.
fn job_options(args: &PruneArgs, dir: &std::path::Path) -> (JobOptions, Option<PathBuf>) {
    let backup = args.backup.target();
    let folder = backup.folder(dir);
    let opts = JobOptions {
        backup,
        vacuum: !args.no_vacuum,
        in_place: args.in_place,
        compact: args.compact,
    };
    (opts, folder)
}

/// Free disk for `plan` run with `opts`.
fn disk_space(
    snap: &Snapshot,
    plan: &Plan,
    folder: Option<&std::path::Path>,
    opts: &JobOptions,
) -> preflight::SpaceCheck {
    preflight::space(
        &snap.persist_dir,
        snap.sizes.sqlite,
        plan.bytes(),
        folder,
        opts.vacuum,
        opts.by_copy(),
    )
}

fn run_and_report(
    args: &PruneArgs,
    dir: &std::path::Path,
    plan: &Plan,
    opts: &JobOptions,
    cancel: &Canceller,
) -> Outcome {
    let mut on_event = super::step_printer();
    match prune::run(dir, plan, opts, cancel, &mut on_event) {
        Ok(r) => {
            if plan.deferred.is_some() {
                // The plan's notes came with the copy's count: loudly, as a plan's are.
                for n in &r.notes {
                    eprintln!("note: {n}");
                }
            }
            if args.json {
                let mut v = report::report_json(&r);
                if r.method == "nothing" {
                    // As a plan that counted first says it.
                    if let Some(n) = r.notes.iter().find(|n| n.starts_with("nothing to prune")) {
                        v["message"] = serde_json::Value::String(n.clone());
                    }
                }
                print_json(&v);
            } else {
                print!("{}", report::report_text(&r));
            }
            Ok(())
        }
        Err(j) => Err((j.error.clone(), Some(j))),
    }
}

/// With `--yes` no one reads the plan before the prune runs, so where the prune writes a
/// compacted copy the copy counts the WAL itself, under the prune's lock (a 20 GB WAL is
/// read once, not once to plan and again to copy; see `Plan::deferred`). `None`: plan by a
/// count first, as without `--yes`: a dry run, a topic selection, in place, `--no-vacuum`,
/// a refusal to say before anything runs, or a disk that could not hold a copy of the whole
/// file (the copy's size is known only once it is written).
fn prune_counting_in_copy(args: &PruneArgs, cancel: &Canceller) -> Option<Outcome> {
    let selection = selection(args);
    if !args.yes
        || args.dry_run
        || args.in_place
        || args.no_vacuum
        || matches!(selection, Selection::Topics(_))
    {
        return None;
    }
    let snap = Snapshot::open(&args.path).ok()?;
    if !snap.prune_blockers().is_empty() {
        return None;
    }
    let mut plan = Plan::deferred(&snap, &selection).ok()?;
    if args.orphan_dirs {
        plan = plan.with_dirs(&snap, None);
    }
    let (opts, folder) = job_options(args, &snap.persist_dir);
    if let Some(f) = &folder {
        chroma_wal::backup::check_backup_folder(&snap.persist_dir, f).ok()?;
    }
    // No row counted (the plan's bytes are 0): the copy is bounded by the whole file.
    let space = disk_space(&snap, &plan, folder.as_deref(), &opts);
    if !space.ok {
        return None;
    }
    let out = run_and_report(args, &snap.persist_dir, &plan, &opts, cancel);
    Some(out)
}
