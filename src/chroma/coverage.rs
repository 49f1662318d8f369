//! Records no index Chroma can load holds: the check behind a crash that left every file of
//! the index folder consistent with the others.
//!
//! Chroma's Python releases notify the segments inside the transaction that writes the WAL
//! rows, and hnswlib writes the index files and the pickle at once, outside SQLite. A writer
//! killed after a persist and before the commit leaves an index that applied the batch while
//! SQLite rolls the batch back: a delete persisted in the index (its id gone from the pickle)
//! whose record the metadata segment still holds, and no WAL row left to say so. `get()` then
//! raises (0.6.3: `IndexError`) and queries never return the record.
//!
//! The check is a count, so it never accuses a healthy index: every record the metadata
//! segment holds is either in the pickle's `id_to_label` or added by a WAL row above the
//! vector segment's position (Chroma replays those on load). More records than both together
//! is a record in no index. Reads grow with the records and the WAL above each position, so
//! it runs with `--deep` and, for the collections a prune would touch, before a prune.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::catalog::{Collection, Segment, Snapshot};
use super::health::{Health, Load, Reason, Wal};
use super::hnsw::elements::{self, ReadError};
use super::hnsw::Header;
use super::idhash::{IdHash, LabelMap};
use super::{pickle, ranged, truth, INDEX_METADATA};
use crate::error::Result;

/// What the checks found for one collection whose index Chroma loads but cannot read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncovered {
    /// More records than the index and the WAL above its position can hold.
    Count {
        /// Records in the metadata segment (what `count()` counts).
        records: u64,
        /// Entries of the pickle's `id_to_label`.
        labels: u64,
        /// WAL rows above the vector segment's position that add or upsert a record.
        pending_adds: u64,
        /// The vector segment's position.
        position: i64,
    },
    /// Ids of the pickle's `id_to_label` whose label reaches no element, or one marked
    /// deleted: what `get()` checks ("Label not found", "Error finding id").
    Dangling {
        /// How many ids.
        ids: u64,
        /// Up to ten of them, by name (those the metadata segment still holds).
        sample: Vec<String>,
    },
}

impl Uncovered {
    pub fn reason(&self) -> String {
        match self {
            Uncovered::Count {
                records,
                labels,
                pending_adds,
                position,
            } => format!(
                "the metadata segment holds {records} records, but the index holds {labels} \
                 and the WAL above its position {position} adds at most {pending_adds}: at \
                 least {} records are in no index Chroma can load (get() with embeddings \
                 fails, and no query returns them)",
                records - labels - pending_adds
            ),
            Uncovered::Dangling { ids, sample } => {
                let named = if sample.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({}{})",
                        sample.join(", "),
                        if *ids > sample.len() as u64 {
                            ", …"
                        } else {
                            ""
                        }
                    )
                };
                format!(
                    "{ids} ids of index_metadata.pickle{named} map to elements of \
                     data_level0.bin that are marked deleted or absent (a delete reached the \
                     index files while SQLite rolled it back): get() fails for them, no query \
                     returns them, and Chroma's next write to the index may fail"
                )
            }
        }
    }
}

/// The ids (hashed) of the pickle at `folder`'s `id_to_label` whose label reaches no live
/// element of the index with header `h`. Reads every element's label and
/// deleted mark (one pass over `data_level0.bin`) and the pickle's map.
pub fn dangling(folder: &Path, h: &Header) -> std::result::Result<Vec<IdHash>, String> {
    let mut live: LabelMap<bool> = LabelMap::default();
    // Each label's last element decides, as hnswlib's lookup keeps it.
    elements::each(folder, h, &mut |e| {
        live.insert(e.label, !e.deleted);
        true
    })
    .map_err(|e| match e {
        ReadError::Unreadable(why) => why,
        ReadError::Stopped => "stopped".into(),
    })?;
    let (_, map) = pickle::read_labels(&folder.join(INDEX_METADATA))?;
    Ok(map
        .pairs
        .iter()
        .filter(|p| !live.get(&p.label).copied().unwrap_or(false))
        .map(|p| p.id)
        .collect())
}

/// The vector and metadata segments of a collection whose index Chroma loads (judged
/// loadable, with a readable pickle), and how many labels the pickle names. A 1.x index whose
/// pickle names none is replayed from seq_id 0 instead ([`Wal::WholeToReplay`]): not counted here.
fn loaded(c: &Collection) -> Option<(&Segment, &Segment, u64)> {
    let v = c.segments.iter().find(|s| s.scope == "VECTOR")?;
    let m = c.segments.iter().find(|s| s.scope == "METADATA")?;
    let Some(Ok(p)) = &v.pickle else {
        return None;
    };
    let labels = p.labels?;
    match (v.health.load(), v.health.wal()) {
        (Load::Ok, Wal::Bounded) => Some((v, m, labels)),
        (Load::Ok, Wal::WholeToReplay(_)) if labels > 0 => Some((v, m, labels)),
        _ => None,
    }
}

/// Run both checks on each collection `only` accepts whose vector index is persisted and
/// loads: its records against what its index and the WAL above its position can hold, and
/// every id of its pickle against the elements.
pub fn check(
    conn: &Connection,
    snap: &Snapshot,
    only: &dyn Fn(usize) -> bool,
) -> Result<Vec<(usize, Uncovered)>> {
    check_with(conn, snap, only, only)
}

/// [`check`], reading the elements and the pickle's map (the dangling ids) only of the
/// collections `elements` accepts: `info --deep` reads them in its index truth already, and
/// asks here only where that found ids on no live element.
pub fn check_with(
    conn: &Connection,
    snap: &Snapshot,
    only: &dyn Fn(usize) -> bool,
    elements: &dyn Fn(usize) -> bool,
) -> Result<Vec<(usize, Uncovered)>> {
    // Every statement is short and passes the reader's gate (`ranged`): a collection's
    // records or the WAL above a position can be millions of rows, and a live writer waits
    // for a statement as long as it holds the read lock.
    let top = ranged::extent(conn)?.map(|(_, hi)| hi);
    let mut out = Vec::new();
    for (i, c) in snap.collections.iter().enumerate() {
        if !only(i) {
            continue;
        }
        let Some((v, m, labels)) = loaded(c) else {
            continue;
        };
        let Some(position) = v.max_seq_id else {
            continue;
        };
        if let Some(h) = v
            .index
            .as_ref()
            .and_then(|f| f.parsed())
            .filter(|_| labels > 0 && elements(i))
        {
            let lost = dangling(&snap.persist_dir.join(&v.id), h).unwrap_or_default();
            if !lost.is_empty() {
                let lost_set: crate::chroma::idhash::IdSet = lost.iter().copied().collect();
                let mut sample = Vec::new();
                truth::records::each_id(conn, &m.id, &mut |id| {
                    if lost_set.contains(&IdHash::of(id)) {
                        sample.push(String::from_utf8_lossy(id).into_owned());
                    }
                    sample.len() < 10
                })?;
                sample.sort();
                out.push((
                    i,
                    Uncovered::Dangling {
                        ids: lost.len() as u64,
                        sample,
                    },
                ));
                continue;
            }
        }
        if c.bound.value().is_none() {
            continue;
        }
        let mut n = 0u64;
        truth::records::each_id(conn, &m.id, &mut |_| {
            n += 1;
            true
        })?;
        if n <= labels {
            continue;
        }
        let a = match top {
            Some(top) if top > position => pending_adds(conn, &c.id, (position + 1, top))?,
            _ => 0,
        };
        if n > labels.saturating_add(a) {
            out.push((
                i,
                Uncovered::Count {
                    records: n,
                    labels,
                    pending_adds: a,
                    position,
                },
            ));
        }
    }
    Ok(out)
}

/// WAL rows in `range` that add or upsert a record of collection `id`, in short statements.
/// The topic is matched by its trailing uuid, as Chroma names it from settings that need not
/// be the defaults.
fn pending_adds(conn: &Connection, id: &str, range: (i64, i64)) -> Result<u64> {
    let uuid = id.to_ascii_lowercase();
    let mut n = 0u64;
    ranged::each_row(
        conn,
        "SELECT operation, seq_id, topic FROM embeddings_queue WHERE seq_id BETWEEN ?1 AND ?2 \
         ORDER BY seq_id",
        range,
        ranged::Gate::Pass,
        &mut |r, _| {
            let adds = matches!(r.get_ref(0)?, ValueRef::Integer(0 | 2));
            let topic = match r.get_ref(2)? {
                ValueRef::Text(t) | ValueRef::Blob(t) => t,
                _ => b"",
            };
            let tail = &topic[topic.len().saturating_sub(36)..];
            if adds && tail.eq_ignore_ascii_case(uuid.as_bytes()) {
                n += 1;
            }
            Ok(())
        },
        &mut || Ok(()),
    )?;
    Ok(n)
}

/// The collections plain `info` must check ([`check_with`], without the elements): those
/// whose metadata segment holds more records than their pickle's labels and every WAL row of
/// theirs at or above the bound together (the counts `info` has made already: no read of the
/// WAL). Two processes writing one dir leave such a collection: one persisted its stale view
/// of the index over the other's adds. One pass over the records' index counts them all.
pub fn suspects(snap: &Snapshot, wal: &super::WalStats) -> Result<Vec<usize>> {
    let conn = super::db::open_read_only(&snap.sqlite_path)?;
    let records = records_per_segment(&conn)?;
    let mut out = Vec::new();
    for (i, c) in snap.collections.iter().enumerate() {
        let Some((_, m, labels)) = loaded(c) else {
            continue;
        };
        let held: u64 = wal.of_collection(i).map(|t| t.held()).sum();
        if records.get(&m.id).copied().unwrap_or(0) > labels.saturating_add(held) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Records per metadata segment, counted in rowid spans, one short statement each
/// ([`ranged::Span`]): one `GROUP BY` over the whole table held a live writer off for as long
/// as it took to read every record.
fn records_per_segment(conn: &Connection) -> Result<std::collections::HashMap<String, u64>> {
    let mut out: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let Some((lo, hi)) = ranged::extent_of(conn, "embeddings", "id")? else {
        return Ok(out);
    };
    let mut st = conn.prepare_cached(
        "SELECT segment_id, COUNT(*) FROM embeddings WHERE id BETWEEN ?1 AND ?2 \
         GROUP BY segment_id",
    )?;
    let mut span = ranged::Span::new(1 << 20);
    let mut from = lo;
    while from <= hi {
        let to = from.saturating_add(span.len - 1).min(hi);
        let took = ranged::gated(|| {
            let t0 = std::time::Instant::now();
            let mut rows = st.query([from, to])?;
            while let Some(r) = rows.next()? {
                let n = r.get::<_, i64>(1)?.max(0) as u64;
                *out.entry(r.get::<_, String>(0)?).or_default() += n;
            }
            Ok(t0.elapsed())
        })?;
        span.after(took);
        if to == hi {
            break;
        }
        from = to + 1;
    }
    Ok(out)
}

/// Make each found collection's vector segment damaged, with the reason, as a pickle found
/// damaged is applied ([`Snapshot::apply`]): its bound follows (its whole WAL is kept) and its
/// era's advice goes into the warnings. Returns the collections changed.
pub fn mark(snap: &mut Snapshot, found: &[(usize, Uncovered)]) -> Vec<usize> {
    let damaged = found
        .iter()
        .filter_map(|(i, u)| {
            let c = snap.collections.get(*i)?;
            let mut v = c.segments.iter().find(|s| s.scope == "VECTOR")?.clone();
            let why = Reason::Uncovered(u.clone());
            v.problem = Some(why.to_string());
            v.health = Health::incomplete(why);
            Some(crate::chroma::catalog::Resolved {
                collection: *i,
                segment: v,
                warnings: Vec::new(),
                same_listing: false,
            })
        })
        .collect();
    snap.apply(damaged)
}

/// [`check`] on a read-only connection of its own (for the explorer's worker).
pub fn find(snap: &Snapshot, only: &dyn Fn(usize) -> bool) -> Result<Vec<(usize, Uncovered)>> {
    find_with(snap, only, only)
}

/// [`check_with`] on a read-only connection of its own.
pub fn find_with(
    snap: &Snapshot,
    only: &dyn Fn(usize) -> bool,
    elements: &dyn Fn(usize) -> bool,
) -> Result<Vec<(usize, Uncovered)>> {
    let conn = super::db::open_read_only(&snap.sqlite_path)?;
    check_with(&conn, snap, only, elements)
}

/// Run the check on `only` collections over a fresh read-only connection, mark what it finds
/// damaged, and take their rows out of the prunable ones. Returns how many it found.
pub fn apply(
    snap: &mut Snapshot,
    wal: &mut super::WalStats,
    only: &dyn Fn(usize) -> bool,
) -> Result<usize> {
    let found = find(snap, only)?;
    mark_and_rebound(snap, wal, &found)?;
    Ok(found.len())
}

/// Mark what [`find`] found damaged and take their rows out of the prunable ones.
pub fn mark_and_rebound(
    snap: &mut Snapshot,
    wal: &mut super::WalStats,
    found: &[(usize, Uncovered)],
) -> Result<()> {
    let changed = mark(snap, found);
    if !wal.rebound(snap, &changed) {
        // A damaged collection has no bound: rebound always takes it out. Should that ever
        // change, the counts are read again rather than left wrong.
        *wal = super::wal::scan(snap, &mut |_, _| true)?;
    }
    Ok(())
}

/// The collections with rows a prune of everything would delete.
pub fn with_prunable_rows(wal: &super::WalStats) -> std::collections::HashSet<usize> {
    wal.topics
        .iter()
        .filter(|t| t.prunable > 0)
        .filter_map(|t| match t.owner {
            super::TopicOwner::Collection(i) => Some(i),
            super::TopicOwner::Orphan => None,
        })
        .collect()
}
