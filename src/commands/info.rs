//! `chroma-wal info`: describe a persist dir.

use std::path::PathBuf;

use clap::Args;

use chroma_wal::backup as backups;
use chroma_wal::prune::{BackupTarget, Canceller, Unit};
use std::io::Write;

use chroma_wal::chroma::truth;
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
        // Records no loadable index holds (a crash between an index persist and its commit).
        chroma_wal::chroma::coverage::apply(&mut snap, &mut wal, &|_| true)
            .map_err(|e| (e, None))?;
        // What each index holds against its records, and what a rebuild would bring back.
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
        let found = truth::read(&snap, &|_| true, true, &mut cb);
        pb.finish_and_clear();
        truth::apply(&mut snap, found.map_err(|e| (e, None))?);
    }
    let space = if args.deep {
        let pb = bar("mapping", None, Unit::Tables);
        let mut cb = |done: u64, total: u64| {
            pb.set_length(total);
            pb.set_position(done);
            !cancel.is_cancelled()
        };
        let m = chroma_wal::chroma::space::map(&snap, &mut cb);
        pb.finish_and_clear();
        Some(m.map_err(|e| (e, None))?)
    } else {
        None
    };
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
