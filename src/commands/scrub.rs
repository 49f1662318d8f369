//! `chroma-wal scrub`: remove every byte of deleted data from a persist dir that Chroma's own
//! rules let go, after a plan, a question and a backup (see `jobs::scrub`).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use chroma_wal::chroma::{coverage, truth};
use chroma_wal::jobs::compact::IndexPlan;
use chroma_wal::jobs::prune::{self, Canceller, Selection, Unit};
use chroma_wal::jobs::scrub;
use chroma_wal::{report, Error};

use super::{bar, open_and_count, print_json, Outcome};
use crate::cli::BackupArgs;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["all", "collection"])))]
pub struct ScrubArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Every collection, and whatever belongs to none: orphan WAL topics, a deleted
    /// collection's records and full-text rows, orphan index folders.
    #[arg(long, conflicts_with = "collection")]
    pub all: bool,

    /// One collection, by name or id (repeatable): its WAL rows Chroma no longer needs, its
    /// vector index rebuilt, and the file compacted.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub collection: Vec<String>,

    /// Show the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub backup: BackupArgs,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ScrubArgs, cancel: &Canceller) -> Outcome {
    let (mut snap, mut wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    let touched = coverage::with_prunable_rows(&wal);
    coverage::apply(&mut snap, &mut wal, &|i| touched.contains(&i)).map_err(|e| (e, None))?;
    let selection = if args.all {
        Selection::All
    } else {
        Selection::Collections(args.collection.clone())
    };
    let plan = scrub::plan(&snap, &wal, &selection).map_err(|e| (e, None))?;
    // The indexes: read against their records, as the rebuild will read them.
    let chosen: Vec<usize> = plan
        .plan
        .indexes
        .iter()
        .filter_map(|id| snap.find_collection(id).ok())
        .collect();
    let pb = bar("reading", None, Unit::Bytes);
    let found = truth::read(&snap, &|i| chosen.contains(&i), true, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
        !cancel.is_cancelled()
    })
    .map_err(|e| (e, None))?;
    pb.finish_and_clear();
    truth::apply(&mut snap, found);
    let ids = plan.plan.indexes.clone();
    let indexes = IndexPlan::build(&snap, Some(&ids), false).map_err(|e| (e, None))?;
    let folder = args.backup.target().folder(&snap.persist_dir);
    for n in plan.plan.notes.iter().chain(&indexes.notes) {
        eprintln!("note: {n}");
    }
    if args.dry_run {
        if args.json {
            print_json(&report::scrub::plan_json(
                &snap,
                &plan,
                &indexes,
                folder.as_deref(),
            ));
        } else {
            print!(
                "{}",
                report::scrub::plan_text(&snap, &plan, &indexes, folder.as_deref())
            );
            println!("Dry run: nothing was written.");
        }
        return Ok(());
    }
    if let Some(b) = snap.prune_blockers().first() {
        return Err((Error::refused(b.clone()), None));
    }
    if let Some(f) = &folder {
        chroma_wal::backup::check_backup_folder(&snap.persist_dir, f).map_err(|e| (e, None))?;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err((
                Error::refused(
                    "refusing to scrub without confirmation: stdin is not a terminal (pass --yes)",
                ),
                None,
            ));
        }
        eprint!(
            "{}",
            report::scrub::plan_text(&snap, &plan, &indexes, folder.as_deref())
        );
        eprint!("Scrub this dir? [y/N] ");
        super::yes_or_refuse().map_err(|e| (e, None))?;
    }
    let opts = scrub::options(args.backup.target());
    let mut on_event = super::step_printer();
    match prune::run(&snap.persist_dir, &plan.plan, &opts, cancel, &mut on_event) {
        Ok(r) => {
            if args.json {
                print_json(&report::scrub::report_json(&r, &plan));
            } else {
                print!("{}", report::scrub::report_text(&r, &plan));
            }
            Ok(())
        }
        Err(j) => Err((j.error.clone(), Some(j))),
    }
}
