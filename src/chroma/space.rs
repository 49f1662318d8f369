//! Where the bytes of a persist dir go: chroma.sqlite3 by b-tree (as SQLite's `dbstat`
//! counts them), its free pages, journals and leftovers, each collection's index folder,
//! orphan folders, and everything else. `dbstat` reads every page of a b-tree, so this is
//! `--deep` work, run after the WAL counts (and off the UI thread in the explorer). The WAL's
//! b-tree, most of the file, is not read: it is what the others and the free pages leave.

use std::collections::HashSet;

use rusqlite::Connection;

use super::catalog::Snapshot;
use super::hnsw::Space;
use super::leftovers::{self, IndexLeftovers, Leftovers};
use super::{db, fsinfo, pagewalk};
use crate::error::{Error, Result};

/// One b-tree of chroma.sqlite3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Exactly as `dbstat` names it.
    pub name: String,
    pub bytes: u64,
}

/// The space map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpaceMap {
    /// Largest first.
    pub tables: Vec<Table>,
    pub free_bytes: u64,
    /// `-journal`, `-wal`, `-shm`, and files an interrupted chroma-wal left.
    pub side_bytes: u64,
    /// Index folders of live segments.
    pub index_dirs_bytes: u64,
    /// Orphan index folders a reclaim can give back; a segment-named folder that holds
    /// anything else (someone's files) is left alone, and counts under `other_bytes`.
    pub orphan_dirs_bytes: u64,
    /// Everything else under the persist dir.
    pub other_bytes: u64,
    /// The whole dir.
    pub dir_bytes: u64,
    /// B-trees whose bytes were not read page by page but derived (a live dir: the WAL's
    /// b-tree is the file less every other b-tree and the free pages), so no read of ours
    /// holds Chroma's writes back for the time a walk of the whole WAL takes.
    pub estimated: Vec<String>,
    /// Deleted data no record owns (see `leftovers.rs`).
    pub deleted: DeletedData,
}

/// Deleted data still on disk that no record owns: what `scrub` removes besides the WAL rows,
/// the deleted vectors (in the index truth) and the free pages (above).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedData {
    /// Rows nothing points to; `None` on a live dir (each count reads a table whole).
    pub rows: Option<Leftovers>,
    /// Per live vector segment with leftover bytes: its id, its collection's name, the bytes.
    pub index: Vec<(String, String, IndexLeftovers)>,
}

impl DeletedData {
    pub fn index_bytes(&self) -> u64 {
        self.index.iter().map(|i| i.2.bytes).sum()
    }

    pub fn text_runs(&self) -> u64 {
        self.index.iter().map(|i| i.2.text_runs).sum()
    }
}

impl SpaceMap {
    /// The part of chroma.sqlite3 a prune of every prunable row gives back: the free pages
    /// (a compaction) — the WAL's own share is in the WAL counts.
    pub fn reclaimable_inside(&self) -> u64 {
        self.free_bytes
    }
}

/// Progress: `(b-trees done, b-trees)`. Return `false` to cancel.
pub type SpaceProgress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// The b-tree whose bytes are derived rather than read: the WAL, most of the file.
const DERIVED: &str = "embeddings_queue";

/// Bytes per b-tree but [`DERIVED`]. By `dbstat`, one b-tree per statement (a short read
/// transaction each); on a `live` dir in rollback-journal mode, by reading the file without
/// SQLite's lock ([`pagewalk`]), as one statement of `dbstat` over a cold b-tree of records
/// held a live writer off for 500 ms.
pub fn tables(
    conn: &Connection,
    path: &std::path::Path,
    live: bool,
    progress: SpaceProgress<'_>,
) -> Result<Vec<Table>> {
    let roots: Vec<(String, u32)> = {
        let mut st = conn.prepare(
            "SELECT name, rootpage FROM sqlite_master WHERE rootpage > 0 AND name <> ?1 \
             UNION SELECT 'sqlite_schema', 1",
        )?;
        let v = st
            .query_map([DERIVED], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        v
    };
    let cancelled =
        || Error::Interrupted("cancelled while mapping chroma.sqlite3; nothing was changed".into());
    let bytes: Vec<(String, u64)> = if live && !db::is_wal_mode(path) {
        pagewalk::count(path, &roots, progress)?.ok_or_else(cancelled)?
    } else {
        let mut st = conn.prepare("SELECT coalesce(SUM(pgsize), 0) FROM dbstat WHERE name = ?1")?;
        let mut out = Vec::with_capacity(roots.len());
        for (i, (name, _)) in roots.iter().enumerate() {
            // Outside the gate of `ranged`: one b-tree is one statement, which no gap can
            // shorten, and holding the gate through it would stop every other reader.
            let b: i64 = st.query_row([name], |r| r.get(0))?;
            out.push((name.clone(), b.max(0) as u64));
            if !progress(i as u64 + 1, roots.len() as u64) {
                return Err(cancelled());
            }
        }
        out
    };
    let mut out: Vec<Table> = bytes
        .into_iter()
        .filter(|(_, b)| *b > 0)
        .map(|(name, bytes)| Table { name, bytes })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The bytes of [`DERIVED`]: every page of the file that is in no other b-tree, not free,
/// and not SQLite's lock-byte page (the page at 1 GiB, which no b-tree uses). Exact on a
/// dir nothing writes to (`tests`: equal to `dbstat` on every fixture); with auto-vacuum's
/// pointer-map pages (which Chroma never turns on) it would count those too.
fn derived(conn: &Connection, tables: &[Table], free_bytes: u64) -> Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let (pages, page) = (pages.max(0) as u64, page.max(0) as u64);
    let file = pages.saturating_mul(page);
    let lock_byte = if file > 1 << 30 { page } else { 0 };
    let known: u64 = tables.iter().map(|t| t.bytes).sum::<u64>() + free_bytes + lock_byte;
    Ok(file.saturating_sub(known))
}

/// The whole map of `snap`'s persist dir.
pub fn map(snap: &Snapshot, progress: SpaceProgress<'_>) -> Result<SpaceMap> {
    let conn = db::open_read_only(&snap.sqlite_path)?;
    let live = !snap.holders.list.is_empty() || snap.holders.unseen_writer;
    let mut tables = tables(&conn, &snap.sqlite_path, live, progress)?;
    let queue = derived(&conn, &tables, snap.free_bytes())?;
    if queue > 0 {
        tables.push(Table {
            name: DERIVED.into(),
            bytes: queue,
        });
        tables.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    }
    // On a live dir the parts were read at different moments: the derived one is an estimate.
    let estimated = if live {
        vec![DERIVED.to_string()]
    } else {
        Vec::new()
    };
    let deleted = deleted_data(snap, &conn, live)?;
    drop(conn);
    let dir = &snap.persist_dir;
    let sizes = super::Sizes::read(dir);
    let side = [sizes.journal, sizes.wal, sizes.shm]
        .iter()
        .flatten()
        .sum::<u64>()
        + [super::NEW_FILE, super::RESTORE_FILE]
            .iter()
            .filter_map(|f| fsinfo::file_bytes(&dir.join(f)))
            .sum::<u64>();
    let live: HashSet<&str> = snap
        .collections
        .iter()
        .flat_map(|c| c.segments.iter().map(|s| s.id.as_str()))
        .collect();
    let index_dirs_bytes = live
        .iter()
        .map(|id| fsinfo::tree_bytes(&dir.join(id)))
        .sum::<u64>();
    let orphan_dirs_bytes = snap
        .orphan_segment_dirs
        .iter()
        .filter(|o| o.reclaimable())
        .map(|o| o.bytes)
        .sum::<u64>();
    let free_bytes = snap.free_bytes();
    let known = sizes.sqlite + side + index_dirs_bytes + orphan_dirs_bytes;
    Ok(SpaceMap {
        tables,
        free_bytes,
        side_bytes: side,
        index_dirs_bytes,
        orphan_dirs_bytes,
        other_bytes: sizes.dir.saturating_sub(known),
        dir_bytes: sizes.dir,
        estimated,
        deleted,
    })
}

fn deleted_data(snap: &Snapshot, conn: &Connection, live: bool) -> Result<DeletedData> {
    let rows = if live {
        None
    } else {
        Some(leftovers::count(conn)?)
    };
    let mut index = Vec::new();
    for c in &snap.collections {
        for s in c.segments.iter().filter(|s| s.scope == "VECTOR") {
            let Some(f) = s.index.as_ref() else {
                continue;
            };
            let Some(h) = f.parsed().copied() else {
                continue;
            };
            if h.implausible().is_some() || f.short_file(&h).is_some() {
                continue;
            }
            let cosine = super::hnsw::space::read(conn, &c.id, &s.id) == Space::Cosine;
            let l = leftovers::index_files(&snap.persist_dir.join(&s.id), &h, cosine);
            if l.bytes > 0 {
                index.push((s.id.clone(), c.name.clone(), l));
            }
        }
    }
    Ok(DeletedData { rows, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_wal_b_tree_is_what_dbstat_counts_and_the_walk_agrees_on_every_fixture() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for e in std::fs::read_dir(&fixtures).unwrap() {
            let db = e.unwrap().path().join("chroma.sqlite3");
            if !db.exists() {
                continue;
            }
            let conn = db::open_read_only(&db).unwrap();
            let dbstat: i64 = conn
                .query_row(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name = 'embeddings_queue'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let free: i64 = conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
                .unwrap();
            let page: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap();
            let free = (free * page) as u64;
            let read = tables(&conn, &db, false, &mut |_, _| true).unwrap();
            assert!(read.iter().all(|t| t.name != DERIVED));
            assert_eq!(
                derived(&conn, &read, free).unwrap(),
                dbstat as u64,
                "{}",
                db.display()
            );
            if !db::is_wal_mode(&db) {
                // As on a live dir: read without SQLite.
                assert_eq!(
                    tables(&conn, &db, true, &mut |_, _| true).unwrap(),
                    read,
                    "{}",
                    db.display()
                );
            }
            checked += 1;
        }
        assert!(checked >= 10, "{checked} fixtures");
    }
}
