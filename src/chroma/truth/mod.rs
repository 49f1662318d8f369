//! The truth about each vector index: which records a query can return, which vectors on disk
//! belong to no record, and whether removing the folder and letting Chroma rebuild it would
//! bring every record back.
//!
//! Four things are compared, each read once and streamed:
//! - the records: the ids of the collection's METADATA segment (what `count()` counts),
//!   read in id order in short statements ([`records`]);
//! - the index: every element of `data_level0.bin` (label, deleted mark) and the pickle's
//!   `id_to_label` ([`index`]);
//! - the WAL rows of the collection, reduced to id, seq_id and effect ([`walrows`]);
//! - the era's replay rules ([`crate::chroma::replay`]): where a load starts, where a rebuild
//!   starts, what each operation does. The rebuild and the records export use the same ones.
//!
//! Ids are compared as 128-bit hashes ([`crate::chroma::idhash`]): memory grows with the
//! records and the WAL rows (24 to 32 bytes each), never with the vectors.

pub mod facts;
pub mod index;
pub mod records;
pub mod walrows;

use std::path::Path;

use crate::chroma::catalog::{Bound, Collection, Snapshot};
use crate::chroma::hnsw::elements::ReadError;
use crate::chroma::idhash::{IdHash, IdMap, IdSet};
use crate::chroma::replay::{self, Effect, Replay};
use crate::chroma::schema::Era;
use crate::error::{Error, Result};

use index::IndexSide;
use walrows::Row;

pub use facts::{IndexTruth, Rebuild, SAMPLE};

/// Index files from this size up are read while another thread reads the records.
const PARALLEL_FROM: u64 = 64 << 20;

/// Which rows a variant of replay takes, as bits of [`Folded::bits`].
const LOAD: usize = 0;
const REBUILD: usize = 1;
const PRUNED: usize = 2;
const EVERY: usize = 3;

/// Per distinct id of the WAL rows: for each variant, the last effect (2 bits: 0 none,
/// 1 put, 2 remove). Sorted by id.
struct Folded {
    bits: IdMap<u8>,
}

impl Folded {
    fn new(mut rows: Vec<Row>, takes: [&dyn Fn(i64) -> bool; 4]) -> Folded {
        // Stable: each id's rows stay in seq_id order.
        rows.sort_by_key(|r| r.id);
        let mut bits = IdMap::default();
        let mut i = 0;
        while i < rows.len() {
            let id = rows[i].id;
            let mut b = 0u8;
            while i < rows.len() && rows[i].id == id {
                let r = rows[i];
                let code = match r.effect() {
                    Effect::Put => 1u8,
                    Effect::Remove => 2u8,
                    Effect::Keep => 0u8,
                };
                if code != 0 {
                    for (v, take) in takes.iter().enumerate() {
                        if take(r.seq) {
                            b = (b & !(3 << (2 * v))) | (code << (2 * v));
                        }
                    }
                }
                i += 1;
            }
            if b != 0 {
                bits.insert(id, b);
            }
        }
        Folded { bits }
    }

    /// The last effect of `variant` on `id` (`None`: no row of that variant touches it).
    fn get(&self, id: &IdHash, variant: usize) -> Option<bool> {
        match (self.bits.get(id)? >> (2 * variant)) & 3 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }
}

fn takes(r: Replay) -> Option<i64> {
    match r {
        Replay::Above(s) => Some(s),
        Replay::Nothing | Replay::Unknown => None,
    }
}

/// Progress of [`read`]: `(units done, units in all)`, where a unit is a byte of an index
/// file or a row (WAL or record). Return `false` to cancel.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// Work out the truth for each collection `only` accepts that has a vector and a metadata
/// segment. With `with_index`, the index files are read too (the slow part); without, only
/// the rebuild verdicts (SQLite only), as a prune's confirm needs them.
pub fn read(
    snap: &Snapshot,
    only: &dyn Fn(usize) -> bool,
    with_index: bool,
    progress: Progress<'_>,
) -> Result<Vec<(usize, IndexTruth)>> {
    let conn = crate::chroma::db::open_read_only(&snap.sqlite_path)?;
    let wanted = |i: usize| wanted(snap, only, i);
    let total = work(snap, only, with_index);
    let wal_rows = wal_estimate(snap);
    let mut rows = walrows::read(&conn, snap, &wanted, i64::MIN, &mut |n| {
        progress(n.min(wal_rows), total)
    })?;
    let mut done = wal_rows;
    let facts = snap.dir_facts();
    let mut out = Vec::new();
    for (ci, c) in snap.collections.iter().enumerate() {
        if !wanted(ci) {
            continue;
        }
        let Some((v, m)) = vector_and_metadata(c) else {
            continue;
        };
        let seg_dir = snap.persist_dir.join(&v.id);
        let index_bytes = v
            .index
            .as_ref()
            .and_then(|f| f.parsed())
            .map_or(0, |h| h.level0_bytes());
        let base = done;
        let read_index =
            |progress: Progress<'_>, labels: Option<&mut dyn FnMut() -> index::Labels>| {
                if !with_index {
                    return Ok(None);
                }
                match index::read(v, &seg_dir, &mut |b| progress(base + b, total), labels) {
                    Ok(side) => Ok(Some(side)),
                    Err(ReadError::Stopped) => Err(cancelled()),
                    Err(ReadError::Unreadable(why)) => Ok(Some(IndexSide::Unknown(why))),
                }
            };
        // A big index is read on this thread while another reads the pickle's labels and
        // the records' ids: the disk and both cores are kept busy at once.
        let (side, hashes) = if with_index && index_bytes >= PARALLEL_FROM {
            let (path, segment, dir) = (snap.sqlite_path.clone(), m.id.clone(), seg_dir.clone());
            std::thread::scope(|sc| {
                let (tx, rx) = std::sync::mpsc::channel::<index::Labels>();
                let other = sc.spawn(move || -> Result<Vec<IdHash>> {
                    let _ = tx.send(index::read_labels(&dir));
                    let c = crate::chroma::db::open_read_only(&path)?;
                    records::hashes(&c, &segment)
                });
                let mut labels = || {
                    rx.recv()
                        .unwrap_or_else(|_| Err("reading the pickle's labels failed".into()))
                };
                let side = read_index(&mut *progress, Some(&mut labels));
                let hashes = other
                    .join()
                    .map_err(|_| Error::failed("reading the records failed"))?;
                Ok::<_, Error>((side?, Some(hashes?)))
            })?
        } else {
            (read_index(&mut *progress, None)?, None)
        };
        done = done.saturating_add(index_bytes);
        let load = replay::load_start(&facts, &v.replay_facts());
        let rebuild = replay::rebuild_replay(replay::rebuild_start(&facts, v.sqlite_row()));
        let bound = c.bound.value();
        let (l, rb) = (takes(load), takes(rebuild));
        let load_take = |s: i64| l.is_some_and(|l| s > l);
        let rebuild_take = |s: i64| rb.is_some_and(|r| s > r);
        let pruned_take = |s: i64| rb.is_some_and(|r| s > r) && bound.map_or(true, |m| s >= m);
        let every_take = |_: i64| true;
        let my_rows = rows.remove(&ci).unwrap_or_default();
        let prunable = bound.is_some_and(|m| my_rows.iter().any(|r| r.seq < m));
        let wal_lo = my_rows.first().map(|r| r.seq);
        let wal_n = my_rows.len() as u64;
        let folded = Folded::new(
            my_rows,
            [&load_take, &rebuild_take, &pruned_take, &every_take],
        );
        let empty = IdSet::default();
        let live: &IdSet = match &side {
            Some(IndexSide::Read(l)) => &l.live,
            _ => &empty,
        };
        let mut judge = |h: &IdHash| {
            let in_live = live.contains(h);
            records::Seen {
                in_index: folded.get(h, LOAD).unwrap_or(in_live),
                in_live,
                rebuilt: folded.get(h, REBUILD) == Some(true),
                rebuilt_pruned: folded.get(h, PRUNED) == Some(true),
                rebuilt_every: folded.get(h, EVERY) == Some(true),
            }
        };
        let tally = match &hashes {
            Some(hs) => records::tally_hashes(&conn, &m.id, hs, &mut judge)?,
            None => records::tally(&conn, &m.id, &mut judge)?,
        };
        drop(hashes);
        let verdict = |n: u64| match rebuild {
            Replay::Unknown => Rebuild::Unknown,
            _ if n >= tally.records => Rebuild::Lossless,
            _ => Rebuild::Loses(tally.records - n),
        };
        let rebuild_v = verdict(tally.rebuilt);
        let truth = build(
            &facts,
            v.sqlite_row(),
            side.as_ref(),
            load,
            &tally,
            rebuild_v,
            prunable.then(|| verdict(tally.rebuilt_pruned)),
            verdict(tally.rebuilt_every),
            (wal_n, wal_lo),
        );
        out.push((ci, truth));
    }
    Ok(out)
}

/// Store each truth in its collection, add its warning, and make a damaged collection's
/// recovery advice say what the rebuild it recommends would really bring back.
pub fn apply(snap: &mut Snapshot, found: Vec<(usize, IndexTruth)>) {
    for (i, t) in found {
        let Some(c) = snap.collections.get_mut(i) else {
            continue;
        };
        let mut t = t;
        // Found damaged since it was read (the records count ran at the same time): no prune
        // takes its rows, so none makes its rebuild lossy.
        if matches!(c.bound, Bound::Damaged { .. }) {
            t.rebuild_after_prune = None;
        }
        let old_warning = c.bound.warning(&c.name);
        if let Bound::Damaged { recovery, .. } = &mut c.bound {
            *recovery = follow_verdict(recovery, &t);
        }
        let new_warning = c.bound.warning(&c.name);
        if let (Some(old), Some(new)) = (old_warning, new_warning) {
            if let Some(w) = snap.warnings.iter_mut().find(|w| **w == old) {
                *w = new;
            }
        }
        if let Some(w) = t.warning(&c.name) {
            snap.warnings.push(w);
        }
        // The deleted marks were counted in the same pass: `--deep` need not read again.
        if let Some(n) = t.deleted_marks {
            let v = c.segments.iter_mut().find(|s| s.scope == "VECTOR");
            if let Some(f) = v.and_then(|v| v.index.as_mut()) {
                f.deleted.get_or_insert(n);
            }
        }
        c.truth = Some(Box::new(t));
    }
}

/// The advice for a damaged index, checked against the records: what the rebuild it
/// recommends brings back.
fn follow_verdict(recovery: &str, t: &IndexTruth) -> String {
    match t.rebuild {
        Rebuild::Lossless => format!(
            "{recovery}. chroma-wal checked the WAL against the {} records: that rebuild brings \
             back every one",
            t.records
        ),
        Rebuild::Loses(n) => format!(
            "BEWARE: removing the folder and letting Chroma rebuild it would lose the vectors \
             of {n} of {} records ({}). Keep the folder and a backup until those records can be \
             re-added from your own source. The era's procedure: {recovery}",
            t.records,
            t.rebuild_why
                .as_deref()
                .unwrap_or("the WAL does not hold them")
        ),
        Rebuild::Unknown => recovery.to_string(),
    }
}

/// The units [`read`] reports progress in: bytes of the index files it reads, plus the WAL's
/// rows (estimated from its highest seq_id).
pub fn work(snap: &Snapshot, only: &dyn Fn(usize) -> bool, with_index: bool) -> u64 {
    let index_bytes: u64 = if with_index {
        (0..snap.collections.len())
            .filter(|&i| wanted(snap, only, i))
            .filter_map(|i| vector_and_metadata(&snap.collections[i]))
            .filter_map(|(v, _)| {
                let h = v.index.as_ref()?.parsed()?;
                Some(h.level0_bytes())
            })
            .fold(0u64, u64::saturating_add)
    } else {
        0
    };
    index_bytes.saturating_add(wal_estimate(snap))
}

fn wal_estimate(snap: &Snapshot) -> u64 {
    snap.wal_max_seq_id.unwrap_or(0).max(0) as u64
}

fn wanted(snap: &Snapshot, only: &dyn Fn(usize) -> bool, i: usize) -> bool {
    only(i)
        && snap
            .collections
            .get(i)
            .is_some_and(|c| vector_and_metadata(c).is_some())
}

fn cancelled() -> Error {
    Error::Interrupted("cancelled while reading the indexes; nothing was changed".into())
}

fn vector_and_metadata(
    c: &Collection,
) -> Option<(&crate::chroma::Segment, &crate::chroma::Segment)> {
    let v = c.segments.iter().find(|s| s.scope == "VECTOR")?;
    let m = c.segments.iter().find(|s| s.scope == "METADATA")?;
    Some((v, m))
}

#[allow(clippy::too_many_arguments)]
fn build(
    facts: &replay::DirFacts,
    row: Option<i64>,
    side: Option<&IndexSide>,
    load: Replay,
    t: &records::Tally,
    rebuild: Rebuild,
    after_prune: Option<Rebuild>,
    every: Rebuild,
    (wal_n, wal_lo): (u64, Option<i64>),
) -> IndexTruth {
    let mut notes = Vec::new();
    let mut rebuild_why = None;
    let deleted_marks = match side {
        Some(IndexSide::Read(l)) if l.elements > 0 => Some(l.deleted),
        _ => None,
    };
    let on_disk = match side {
        Some(IndexSide::Read(l)) if load != Replay::Unknown => l.ghosts,
        _ => None,
    };
    let (in_index, ghosts, ghost_bytes, stale) = match side {
        Some(IndexSide::Read(l)) if load != Replay::Unknown => {
            let unreached = (l.live.len() as u64).saturating_sub(t.in_live);
            let ghosts = l.ghosts.map(|g| g + unreached);
            (
                Some(t.in_index),
                ghosts,
                ghosts.map(|g| g.saturating_mul(l.dim).saturating_mul(4)),
                Some(l.stale_ids),
            )
        }
        Some(IndexSide::Read(_)) => {
            notes.push("what this schema's release replays on load is not known".to_string());
            (None, None, None, None)
        }
        Some(IndexSide::Unknown(why)) => {
            notes.push(format!(
                "which records a query can return is unknown: {why}"
            ));
            (None, None, None, None)
        }
        None => (None, None, None, None),
    };
    if let Some(m) = in_index
        .map(|n| t.records.saturating_sub(n))
        .filter(|m| *m > 0)
    {
        notes.push(format!(
            "{m} of {} records are unreachable by search: no index Chroma loads holds their \
             vectors, and no WAL row it replays adds them",
            t.records
        ));
    }
    if let Rebuild::Loses(n) = rebuild {
        let rows = match (wal_n, wal_lo) {
            (0, _) | (_, None) => "no WAL row".to_string(),
            (n, Some(lo)) => format!("the {n} WAL rows left (from seq_id {lo})"),
        };
        let why = match (facts.era, row) {
            (Era::V056, Some(r)) => {
                let alt = match every {
                    Rebuild::Lossless => {
                        "; deleting that row as well makes the rebuild replay every row and lose nothing".to_string()
                    }
                    Rebuild::Loses(k) => format!(
                        "; deleting that row as well replays every row and still loses {k}"
                    ),
                    Rebuild::Unknown => String::new(),
                };
                format!(
                    "removing the index folder leaves the max_seq_id row at {r}, so the rebuild \
                     replays only the rows above it{alt}{}",
                    if replay::purged(facts) {
                        " (automatic purging deleted the older rows)"
                    } else {
                        ""
                    }
                )
            }
            _ if replay::purged(facts) => {
                format!("a rebuild replays {rows}; automatic purging deleted the older ones")
            }
            _ => format!("a rebuild replays {rows}, which set no vector for them"),
        };
        notes.push(format!(
            "removing the index folder and letting Chroma rebuild it would lose the vectors of \
             {n} of {} records: {why}",
            t.records
        ));
        rebuild_why = Some(why);
    }
    IndexTruth {
        records: t.records,
        in_index,
        missing_sample: if in_index.is_some() {
            t.missing_sample.clone()
        } else {
            Vec::new()
        },
        ghosts,
        ghost_bytes,
        ghosts_on_disk: on_disk,
        stale_ids: stale,
        rebuild,
        rebuild_after_prune: after_prune,
        note: (!notes.is_empty()).then(|| {
            notes
                .iter()
                .map(|n| sentence(n))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        rebuild_why,
        deleted_marks,
    }
}

/// `n` as a sentence: a capital first letter and a full stop.
fn sentence(n: &str) -> String {
    let mut c = n.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// The truth of one collection of the dir at `path` (tests and the records view).
pub fn of_collection(path: &Path, name_or_id: &str) -> Result<Option<IndexTruth>> {
    let mut snap = Snapshot::open(path)?;
    let i = snap.find_collection(name_or_id)?;
    let found = read(&snap, &|c| c == i, true, &mut |_, _| true)?;
    apply(&mut snap, found);
    Ok(snap.collections[i].truth.as_deref().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::replay::Content;

    fn row(id: &str, seq: i64, effect: Effect) -> Row {
        Row {
            id: IdHash::of(id.as_bytes()),
            seq,
            content: match effect {
                Effect::Put => Content::Set,
                Effect::Remove => Content::Remove,
                Effect::Keep => Content::Keep,
            },
        }
    }

    #[test]
    fn the_last_effect_in_each_variant_wins() {
        let rows = vec![
            row("a", 1, Effect::Put),
            row("b", 2, Effect::Put),
            row("a", 5, Effect::Remove),
            row("b", 6, Effect::Keep),
            row("a", 9, Effect::Put),
            row("c", 10, Effect::Remove),
        ];
        let above = |n: i64| move |s: i64| s > n;
        let (a0, a4, a5, none) = (above(0), above(4), above(5), |_: i64| false);
        let f = Folded::new(rows, [&a0, &a4, &a5, &none]);
        let id = |s: &str| IdHash::of(s.as_bytes());
        // Every row: a is back (added again at 9), b added, c removed.
        assert_eq!(f.get(&id("a"), 0), Some(true));
        assert_eq!(f.get(&id("b"), 0), Some(true));
        assert_eq!(f.get(&id("c"), 0), Some(false));
        // Above 4: a's delete then its add; b's keep says nothing.
        assert_eq!(f.get(&id("a"), 1), Some(true));
        assert_eq!(f.get(&id("b"), 1), None);
        // Above 5: only the add of a at 9.
        assert_eq!(f.get(&id("a"), 2), Some(true));
        assert_eq!(f.get(&id("c"), 3), None);
        assert_eq!(f.get(&id("zzz"), 0), None);
    }

    #[test]
    fn sentences_and_short_words() {
        assert_eq!(sentence("two records lost"), "Two records lost.");
        let t = IndexTruth {
            records: 10,
            in_index: Some(7),
            missing_sample: vec!["a".into()],
            ghosts: Some(0),
            ghost_bytes: Some(0),
            ghosts_on_disk: Some(0),
            stale_ids: Some(0),
            rebuild: Rebuild::Lossless,
            rebuild_after_prune: Some(Rebuild::Loses(4)),
            note: Some("x".into()),
            rebuild_why: None,
            deleted_marks: None,
        };
        assert_eq!(t.missing(), Some(3));
        assert_eq!(
            t.short().as_deref(),
            Some("3 records unreachable by search")
        );
        assert_eq!(t.prune_makes_lossy(), Some(4));
        assert!(!t.is_clean());
        let clean = IndexTruth {
            in_index: Some(10),
            ..t
        };
        assert!(clean.is_clean() && clean.warning("c").is_none());
    }
}
