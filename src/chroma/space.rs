//! Where the bytes of a persist dir go: chroma.sqlite3 by b-tree (as SQLite's `dbstat`
//! counts them), its free pages, journals and leftovers, each collection's index folder,
//! orphan folders, and everything else. `dbstat` reads every page, so this is `--deep` work,
//! run after the WAL counts (and off the UI thread in the explorer).

use std::collections::HashSet;

use rusqlite::Connection;

use super::catalog::Snapshot;
use super::hnsw::Space;
use super::leftovers::{self, IndexLeftovers, Leftovers};
use super::{db, fsinfo};
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

/// Sum `dbstat` per b-tree, one b-tree per statement (a short read transaction each), all
/// but the names in `skip`.
pub fn tables(conn: &Connection, skip: &[&str], progress: SpaceProgress<'_>) -> Result<Vec<Table>> {
    let names: Vec<String> = {
        let mut st = conn.prepare(
            "SELECT name FROM sqlite_master WHERE rootpage > 0 UNION SELECT 'sqlite_schema'",
        )?;
        let v = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        v
    };
    let mut out = Vec::with_capacity(names.len());
    let total = names.len() as u64;
    let mut st = conn.prepare("SELECT coalesce(SUM(pgsize), 0) FROM dbstat WHERE name = ?1")?;
    for (i, name) in names.into_iter().enumerate() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        // Outside the gate of `ranged`: one b-tree is one statement, which no gap can shorten,
        // and holding the gate through it would stop every other reader of the process.
        let bytes: i64 = st.query_row([&name], |r| r.get(0))?;
        if bytes > 0 {
            out.push(Table {
                name,
                bytes: bytes as u64,
            });
        }
        if !progress(i as u64 + 1, total) {
            return Err(Error::Interrupted(
                "cancelled while mapping chroma.sqlite3; nothing was changed".into(),
            ));
        }
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The whole map of `snap`'s persist dir.
pub fn map(snap: &Snapshot, progress: SpaceProgress<'_>) -> Result<SpaceMap> {
    let conn = db::open_read_only(&snap.sqlite_path)?;
    let live = !snap.holders.list.is_empty() || snap.holders.unseen_writer;
    let skip: &[&str] = if live { &["embeddings_queue"] } else { &[] };
    let mut tables = tables(&conn, skip, progress)?;
    let mut estimated = Vec::new();
    if live {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let file = pages.max(0) as u64 * snap.schema.page_size.max(0) as u64;
        let known: u64 = tables.iter().map(|t| t.bytes).sum::<u64>() + snap.free_bytes();
        tables.push(Table {
            name: "embeddings_queue".into(),
            bytes: file.saturating_sub(known),
        });
        tables.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        estimated.push("embeddings_queue".into());
    }
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
