//! `chroma-wal check PATH`: whether every vector index loads as the dir's release would load
//! it, for an app to run before it opens the dir (a loader crash takes the app's process with
//! it). As fast as plain `info`; only a damaged collection's index is read further, for what
//! `compact --repair` would bring back.

use std::path::PathBuf;

use clap::Args;

use chroma_wal::chroma::{coverage, Snapshot};
use chroma_wal::jobs::compact::preview;
use chroma_wal::jobs::prune::Canceller;
use chroma_wal::units::count;
use chroma_wal::Error;

use super::{open_and_count, print_json, Outcome};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The persist dir (the folder that holds chroma.sqlite3).
    #[arg(value_name = "PATH", default_value = "./chroma")]
    pub path: PathBuf,

    /// Print one JSON object on stdout: `ok`, and `damaged[{collection, id, segment, reason,
    /// repair{rebuilds, restored, unrecoverable, note}}]`.
    #[arg(long)]
    pub json: bool,
}

/// One damaged collection and what a repair would do.
struct Damaged {
    name: String,
    id: String,
    segment: String,
    reason: String,
    /// `compact --repair` would rebuild its index.
    rebuilds: bool,
    restored: u64,
    unrecoverable: u64,
    direction_only: u64,
    /// Why a repair would not rebuild it, when it would not.
    note: Option<String>,
}

pub fn run(args: &CheckArgs, cancel: &Canceller) -> Outcome {
    let (mut snap, mut wal) = open_and_count(&args.path, cancel).map_err(|e| (e, None))?;
    // What plain `info` checks: records no index holds, where the counts cannot explain them.
    let suspects = coverage::suspects(&snap, &wal).map_err(|e| (e, None))?;
    if !suspects.is_empty() {
        let found = coverage::find_with(&snap, &|i| suspects.contains(&i), &|_| false)
            .map_err(|e| (e, None))?;
        coverage::mark_and_rebound(&mut snap, &mut wal, &found).map_err(|e| (e, None))?;
    }
    let damaged = damaged(&mut snap).map_err(|e| (e, None))?;
    if args.json {
        print_json(&serde_json::json!({
            "persist_dir": snap.persist_dir,
            "ok": damaged.is_empty(),
            "collections": snap.collections.len(),
            "damaged": damaged.iter().map(|d| serde_json::json!({
                "collection": d.name,
                "id": d.id,
                "segment": d.segment,
                "reason": d.reason,
                "repair": {
                    "rebuilds": d.rebuilds,
                    "restored": d.restored,
                    "unrecoverable": d.unrecoverable,
                    "direction_only": d.direction_only,
                    "note": d.note,
                },
            })).collect::<Vec<_>>(),
        }));
    } else if damaged.is_empty() {
        println!(
            "ok: every vector index of the {} collection(s) loads as the dir's release loads it",
            count(snap.collections.len() as u64)
        );
    } else {
        for d in &damaged {
            println!(
                "DAMAGED {} ({}), segment {}: {}",
                d.name, d.id, d.segment, d.reason
            );
            if let Some(p) = snap
                .collections
                .iter()
                .find(|c| c.id == d.id)
                .and_then(|c| c.repair.as_deref())
            {
                println!("  {}", p.sentence(&snap.persist_dir, &d.id));
            }
        }
    }
    if damaged.is_empty() {
        Ok(())
    } else {
        Err((
            Error::Damaged(format!(
                "{} of {} collection(s) damaged; do not open the dir with Chroma before a repair",
                damaged.len(),
                snap.collections.len()
            )),
            None,
        ))
    }
}

/// The damaged collections, with what `compact --repair` would do for each (its dry run:
/// the truth of those indexes only is read).
fn damaged(snap: &mut Snapshot) -> Result<Vec<Damaged>, Error> {
    preview::fill(snap)?;
    Ok(snap
        .collections
        .iter()
        .filter(|c| c.is_damaged())
        .map(|c| {
            let v = c.segments.iter().find(|s| s.health.is_damaged());
            let p = c.repair.as_deref().cloned().unwrap_or_default();
            Damaged {
                name: c.name.clone(),
                id: c.id.clone(),
                segment: v.map(|s| s.id.clone()).unwrap_or_default(),
                reason: v
                    .and_then(|s| s.health.reason())
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                rebuilds: p.rebuilds,
                restored: p.restored,
                unrecoverable: p.unrecoverable,
                direction_only: p.direction_only,
                note: p.note,
            }
        })
        .collect())
}
