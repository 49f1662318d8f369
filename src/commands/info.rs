//! `chroma-wal info`: describe a persist dir.

use std::path::PathBuf;

use clap::Args;

use chroma_wal::backup as backups;
use chroma_wal::jobs::prune::{BackupTarget, Canceller, Unit};
use std::io::Write;

use chroma_wal::chroma::{coverage, truth};
use chroma_wal::report::info::{self as report_info, InfoExtras};
use chroma_wal::report::{self, disk as report_disk};
use chroma_wal::Error;

use super::{bar, open_and_count, Outcome};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH", default_value = "./chroma")]
    pub path: PathBuf,

    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Also read what takes longer: every element of every vector index (its label and
    /// deleted mark) against the collection's records and WAL, which says which records a
    /// query cannot return, the deleted vectors still on disk, and whether removing the index
    /// folder and letting Chroma rebuild it would lose anything; and where the space goes
    /// (SQLite's dbstat reads every page of chroma.sqlite3).
    #[arg(long)]
    pub deep: bool,
}

pub fn info(args: &InfoArgs, cancel: &Canceller) -> Outcome {
    let (mut snap, mut wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    let mut space = None;
    if !args.deep {
        // Records no index can hold (two writers on one dir): checked exactly only where the
        // counts already made cannot explain them (`--deep` checks every collection).
        let suspects = coverage::suspects(&snap, &wal).map_err(|e| (e, None))?;
        if !suspects.is_empty() {
            let found = coverage::find_with(&snap, &|i| suspects.contains(&i), &|_| false)
                .map_err(|e| (e, None))?;
            coverage::mark_and_rebound(&mut snap, &mut wal, &found).map_err(|e| (e, None))?;
        }
    }
    if args.deep {
        // Three reads at once, each on its own connection: what each index holds against its
        // records and what a rebuild from the WAL would bring back (its pass over each index
        // counts the deleted marks too); the records no loadable index holds (a crash between
        // an index persist and its commit); and where the space of chroma.sqlite3 goes
        // (dbstat reads every page).
        let pb = bar(
            "indexes",
            Some(truth::work(&snap, &|_| true, true)),
            Unit::Checks,
        );
        let mut cb = |done: u64, total: u64| {
            pb.set_length(total);
            pb.set_position(done);
            !cancel.is_cancelled()
        };
        let shared = &snap;
        let (found, uncovered, mapped) = std::thread::scope(|sc| {
            let map = sc.spawn(move || {
                chroma_wal::chroma::space::map(shared, &mut |_, _| !cancel.is_cancelled())
            });
            // The truth reads every element and the pickle's map: the dangling ids are asked
            // for below, only where it found some.
            let cover = sc.spawn(move || coverage::find_with(shared, &|_| true, &|_| false));
            let found = truth::read(shared, &|_| true, true, &mut cb);
            let uncovered = cover
                .join()
                .unwrap_or_else(|_| Err(Error::failed("counting the records failed")));
            let mapped = map
                .join()
                .unwrap_or_else(|_| Err(Error::failed("mapping the space failed")));
            (found, uncovered, mapped)
        });
        pb.finish_and_clear();
        let found = found.map_err(|e| (e, None))?;
        let mut uncovered = uncovered.map_err(|e| (e, None))?;
        let stale: std::collections::HashSet<usize> = found
            .iter()
            .filter(|(_, t)| t.stale_ids.unwrap_or(0) > 0)
            .map(|(i, _)| *i)
            .collect();
        if !stale.is_empty() {
            let named =
                coverage::find_with(&snap, &|i| stale.contains(&i), &|i| stale.contains(&i))
                    .map_err(|e| (e, None))?;
            uncovered.extend(
                named
                    .into_iter()
                    .filter(|(_, u)| matches!(u, coverage::Uncovered::Dangling { .. })),
            );
        }
        coverage::mark_and_rebound(&mut snap, &mut wal, &uncovered).map_err(|e| (e, None))?;
        truth::apply(&mut snap, found);
        space = Some(mapped.map_err(|e| (e, None))?);
        // The deleted marks of the indexes the truth did not read (no pickle, damaged).
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
    // A damaged index: what `compact --repair` would do now, before the manual procedure.
    chroma_wal::jobs::compact::preview::fill(&mut snap).map_err(|e| (e, None))?;
    let backups = BackupTarget::Default
        .folder(&snap.persist_dir)
        .map(|f| backups::list(&f, &snap.persist_dir))
        .unwrap_or_default();
    let live = live_note(&snap, &wal);
    if args.json {
        let extras = InfoExtras {
            counts_may_lag: live.is_some(),
            live_note: live.clone(),
            backups: report_disk::backups_json(&backups),
            space: space
                .as_ref()
                .map(report_disk::space_json)
                .unwrap_or(serde_json::Value::Null),
        };
        // Written as it is made: 20,000 collections are 40 MB of JSON.
        report_info::write_info_json(std::io::stdout().lock(), &snap, &wal, &extras)
            .map_err(|e| (Error::failed(format!("cannot write to stdout: {e}")), None))?;
    } else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        report::write_info_text(&mut out, &snap, &wal)
            .and_then(|_| out.flush())
            .map_err(|e| (Error::failed(format!("cannot write to stdout: {e}")), None))?;
        drop(out);
        if let Some(n) = &live {
            println!("\nLive dir        {n}");
        }
        if let Some(m) = &space {
            print!("{}", report_disk::space_text(m, wal.prunable_bytes()));
            print!("{}", report_disk::deleted_text(m));
        }
        print!("{}", report_disk::backups_text(&backups));
    }
    Ok(())
}

/// What a reader must know about counts taken from a dir that may be live.
pub fn live_note(
    snap: &chroma_wal::chroma::Snapshot,
    wal: &chroma_wal::chroma::WalStats,
) -> Option<String> {
    if !snap.holders.list.is_empty() || snap.holders.unseen_writer {
        Some(
            "live dir: counts may lag. They were taken in short reads between Chroma's writes, \
             so they are as of a range of moments; run again for fresher ones"
                .into(),
        )
    } else if wal.changed_during_scan {
        Some("the WAL changed while it was counted: counts are as of a range of moments".into())
    } else {
        None
    }
}
