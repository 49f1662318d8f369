//! `chroma-wal compact`: rebuild vector indexes without their ghosts (deleted vectors still on
//! disk, elements no record reaches), after a plan, a question and a backup.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use chroma_wal::chroma::{truth, Snapshot};
use chroma_wal::jobs::compact::{self, IndexPlan};
use chroma_wal::jobs::prune::{Canceller, Unit};
use chroma_wal::{report, units, Error};

use super::{bar, print_json, Outcome};
use crate::cli::BackupArgs;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["all", "collection"])))]
pub struct CompactArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Rebuild every index that holds ghosts (with --repair: also every one missing records,
    /// or damaged).
    #[arg(long, conflicts_with = "collection")]
    pub all: bool,

    /// Rebuild one collection's index, by name or id (repeatable), ghosts or not.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub collection: Vec<String>,

    /// Also put back records the index is missing whose current vector the WAL still holds
    /// (with the labels the release hands out next), and rebuild a damaged index whose
    /// vectors are whole (a cut link_lists.bin or length.bin). Records whose vector is nowhere
    /// on disk are named and counted, never invented.
    #[arg(long)]
    pub repair: bool,

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

fn confirm(plan: &IndexPlan) -> Result<(), Error> {
    eprint!(
        "Rebuild {} index(es) without their {} ghost(s){}? [y/N] ",
        plan.indexes.len(),
        units::count(plan.ghosts()),
        if plan.restored() > 0 {
            format!(", putting back {} record(s)", units::count(plan.restored()))
        } else {
            String::new()
        }
    );
    super::yes_or_refuse()
}

pub fn run(args: &CompactArgs, cancel: &Canceller) -> Outcome {
    let mut snap = Snapshot::open(&args.path).map_err(|e| (e, None))?;
    let names = (!args.all).then_some(args.collection.as_slice());
    let chosen: Option<Vec<usize>> = match names {
        Some(list) => Some(
            list.iter()
                .map(|n| snap.find_collection(n))
                .collect::<Result<_, _>>()
                .map_err(|e| (e, None))?,
        ),
        None => None,
    };
    let only = |i: usize| chosen.as_ref().map_or(true, |c| c.contains(&i));
    let pb = bar("reading", None, Unit::Bytes);
    let found = truth::read(&snap, &only, true, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
        !cancel.is_cancelled()
    })
    .map_err(|e| (e, None))?;
    pb.finish_and_clear();
    truth::apply(&mut snap, found);
    let plan = IndexPlan::build(&snap, names, args.repair).map_err(|e| (e, None))?;
    let folder = args.backup.target().folder(&snap.persist_dir);
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    if args.dry_run {
        if args.json {
            print_json(&report::compact::plan_json(
                &snap.persist_dir,
                &plan,
                folder.as_deref(),
            ));
        } else {
            print!("{}", report::compact::plan_text(&plan, folder.as_deref()));
            println!("Dry run: nothing was written.");
        }
        return Ok(());
    }
    if let Some(b) = snap.prune_blockers().first() {
        return Err((Error::refused(b.clone()), None));
    }
    if plan.indexes.is_empty() {
        if args.json {
            let mut v = report::compact::plan_json(&snap.persist_dir, &plan, None);
            v["dry_run"] = serde_json::Value::Bool(false);
            print_json(&v);
        } else {
            println!(
                "Nothing to compact: no selected index holds ghosts{}; nothing was written.",
                if args.repair {
                    " or lacks a record the WAL can put back"
                } else {
                    ""
                }
            );
        }
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err((
                Error::refused(
                    "refusing to compact without confirmation: stdin is not a terminal (pass --yes)",
                ),
                None,
            ));
        }
        eprint!("{}", report::compact::plan_text(&plan, folder.as_deref()));
        confirm(&plan).map_err(|e| (e, None))?;
    }
    let mut on_event = super::step_printer();
    match compact::run(
        &snap.persist_dir,
        &plan,
        folder.as_deref(),
        cancel,
        &mut on_event,
    ) {
        Ok(r) => {
            if args.json {
                print_json(&report::compact::report_json(&r, &plan));
            } else {
                print!("{}", report::compact::report_text(&r));
            }
            Ok(())
        }
        Err(j) => Err((j.error.clone(), Some(j))),
    }
}
