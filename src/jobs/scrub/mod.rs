//! `scrub`: every byte of deleted data out of a persist dir, as far as Chroma's own rules let
//! it go. One plan, run by the prune's job with three more kinds of work:
//! - the WAL rows the purge rule lets go (the prune's topics), with orphan topics under `--all`;
//! - the rows nothing points to ([`crate::jobs::steps::orphans`]: a deleted collection's
//!   records, the full-text rows of deleted records), in the delete's transaction, with the
//!   full-text index written anew;
//! - the file compacted in place whatever else goes (VACUUM writes every page fresh: no free
//!   page and no unused space inside a page keeps old bytes), after the backup;
//! - every selected vector index rebuilt, ghosts or not (deleted vectors, a label's stale
//!   copies, the leftover memory hnswlib writes into `length.bin` and unused capacity), and,
//!   under `--all`, the orphan index folders.
//!
//! What it cannot remove without changing what Chroma returns is counted and named
//! ([`Kept`]): the WAL rows of deleted records at or above an index's position, which the next
//! load replays.

use rusqlite::Connection;

use crate::chroma::{Snapshot, TopicOwner, WalStats};
use crate::error::Result;
use crate::jobs::prune::{BackupTarget, JobOptions, Plan, Selection};
use crate::jobs::steps::orphans;

/// Deleted data a scrub leaves, per collection, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub collection: String,
    /// WAL rows of ids that are no live record (deleted, or never added), which the purge rule
    /// keeps.
    pub wal_rows: u64,
    pub why: String,
}

/// What a scrub would do: the prune's plan (with its `scrub` counts, the indexes to rebuild
/// and the orphan folders), and what stays.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrubPlan {
    pub plan: Plan,
    pub kept: Vec<Kept>,
}

/// The plan for `selection` (`All`, or collections), from a snapshot and its WAL count.
pub fn plan(snap: &Snapshot, wal: &WalStats, selection: &Selection) -> Result<ScrubPlan> {
    let mut plan = Plan::build(snap, wal, selection)?;
    let all = matches!(selection, Selection::All);
    if all {
        plan = plan.with_dirs(snap, None);
    }
    let conn = crate::chroma::db::open_read_only(&snap.sqlite_path)?;
    plan.scrub = Some(if all {
        Some(orphans::count(&conn)?)
    } else {
        None
    });
    let chosen: Vec<usize> = match selection {
        Selection::Collections(names) => names
            .iter()
            .map(|n| snap.find_collection(n))
            .collect::<Result<_>>()?,
        _ => (0..snap.collections.len()).collect(),
    };
    plan.indexes = chosen
        .iter()
        .map(|&i| &snap.collections[i])
        .filter(|c| c.segments.iter().any(|s| s.scope == "VECTOR"))
        .map(|c| c.id.clone())
        .collect();
    let kept = kept_rows(&conn, snap, wal, &plan, &chosen)?;
    Ok(ScrubPlan { plan, kept })
}

/// The job's options: a backup where asked, and the file compacted in place (the compacted
/// copy copies the full-text index's tables as they are, old entries and all).
pub fn options(backup: BackupTarget) -> JobOptions {
    JobOptions {
        backup,
        vacuum: true,
        in_place: true,
        compact: true,
    }
}

/// Per chosen collection, the WAL rows of ids no live record has that the plan keeps.
fn kept_rows(
    conn: &Connection,
    snap: &Snapshot,
    wal: &WalStats,
    plan: &Plan,
    chosen: &[usize],
) -> Result<Vec<Kept>> {
    let mut out = Vec::new();
    for &i in chosen {
        let c = &snap.collections[i];
        let Some(meta) = c.segments.iter().find(|s| s.scope == "METADATA") else {
            continue;
        };
        let topics = wal
            .topics
            .iter()
            .filter(|t| snap.owner_of(&t.topic) == TopicOwner::Collection(i));
        let (mut n, mut planned) = (0i64, None);
        for t in topics {
            let p = plan.topics.iter().find(|p| p.topic == t.topic);
            planned = planned.or(p);
            let from = p.and_then(|p| p.bound).unwrap_or(i64::MIN);
            n += conn.query_row(
                "SELECT count(*) FROM embeddings_queue q WHERE q.topic = ?1 AND q.seq_id >= ?2 \
                 AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.segment_id = ?3 \
                 AND e.embedding_id = q.id)",
                rusqlite::params![t.topic, from, meta.id],
                |r| r.get::<_, i64>(0),
            )?;
        }
        if n <= 0 {
            continue;
        }
        let why = match planned.and_then(|t| t.bound) {
            Some(_) => "at or above the index's position: Chroma replays them on its next load; \
                        they go once it persists the index past them (more writes) and a scrub \
                        runs again"
                .to_string(),
            None => planned
                .and_then(|t| t.note.clone())
                .unwrap_or_else(|| "the purge rule keeps this collection's WAL whole".into()),
        };
        out.push(Kept {
            collection: c.name.clone(),
            wal_rows: n as u64,
            why,
        });
    }
    Ok(out)
}
