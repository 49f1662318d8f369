//! Which records a repair can put back into their index, and with which vector: the records of
//! the metadata segment that no query returns after the next load (the index lacks them and
//! the WAL rows Chroma replays do not bring them), whose current vector a WAL row still holds.
//! The others are named and counted, never invented: their vector is nowhere on disk.
//!
//! A record's current vector is the fold ([`crate::chroma::replay::fold`]) of all its WAL rows
//! in seq_id order from "not in the index" (an ADD sets it, a second ADD does not, an UPDATE of
//! an id not there does nothing, an UPSERT sets it); when that leaves nothing but the record
//! exists (its ADD was purged), from "in the index" (its last UPDATE or UPSERT with a vector).

use std::collections::HashMap;

use rusqlite::Connection;

use crate::chroma::idhash::IdHash;
use crate::chroma::records::vectors::{row_vector, Vectors};
use crate::chroma::replay::{fold, Content, Holder};
use crate::chroma::truth::walrows;
use crate::chroma::Snapshot;
use crate::error::{Error, Result};

/// A record to put back: its id, the WAL row its vector comes from, and the vector.
#[derive(Debug, Clone, PartialEq)]
pub struct PutBack {
    pub id: String,
    pub seq: i64,
    pub vector: Vec<f32>,
}

/// What a repair of one collection's index can and cannot do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    pub put_back: Vec<PutBack>,
    /// Records missing from the index whose vector is nowhere on disk.
    pub unrecoverable: u64,
    /// Up to ten of them, in id order.
    pub sample: Vec<String>,
    /// All of them (`records --unreachable` lists them), in id order.
    pub unrecoverable_ids: Vec<String>,
    /// Records of a cosine index whose norm `length.bin` lost, with their current vector
    /// from a WAL row: the repair writes that vector (direction and length) in their element's
    /// place, under the same label.
    pub renorm: Vec<PutBack>,
    /// Those whose vector no WAL row holds: they keep their direction (norm 1); up to ten.
    pub direction_only: u64,
    pub direction_only_sample: Vec<String>,
}

/// Find what a repair of collection `ci` puts back. `dim` is the index's dimensionality: a
/// row whose vector has another length is not this index's (counted unrecoverable).
pub fn find(snap: &Snapshot, ci: usize, dim: usize) -> Result<Found> {
    let c = &snap.collections[ci];
    let (Some(v), Some(m)) = (
        c.segments.iter().find(|s| s.scope == "VECTOR"),
        c.segments.iter().find(|s| s.scope == "METADATA"),
    ) else {
        return Ok(Found::default());
    };
    let conn = crate::chroma::db::open_read_only(&snap.sqlite_path)?;
    let vectors = Vectors::open_for_repair(&conn, snap, ci, v)?;
    if let Some(p) = &vectors.problem {
        return Err(Error::failed(format!("{}: {p}", c.name)));
    }
    let rows = walrows::read(&conn, snap, &|i| i == ci, i64::MIN, &mut |_| true)?;
    let mut by_id: HashMap<IdHash, Vec<(i64, Content)>> = HashMap::new();
    for r in rows.into_values().flatten() {
        by_id.entry(r.id).or_default().push((r.seq, r.content));
    }
    let mut found = Found::default();
    each_record_id(&conn, &m.id, &mut |id| {
        let h = IdHash::of(id.as_bytes());
        let mut rows = by_id.get(&h).cloned().unwrap_or_default();
        rows.sort_by_key(|(s, _)| *s);
        if vectors.holder(&h) != Holder::Nothing {
            if vectors.holder(&h) == Holder::Index && vectors.norm_lost(&h) {
                // Its current vector from the rows: an ADD or UPSERT that set it, else its
                // last UPDATE or UPSERT with a vector (its ADD purged).
                let holder = match fold(Holder::Nothing, rows.iter().copied()) {
                    Holder::Nothing => fold(Holder::Index, rows.iter().copied()),
                    h => h,
                };
                let from_rows = match holder {
                    Holder::Row(seq) => row_vector(&conn, seq)?
                        .filter(|v| v.len() == dim)
                        .map(|v| (seq, v)),
                    _ => None,
                };
                match from_rows {
                    Some((seq, vector)) => found.renorm.push(PutBack {
                        id: id.to_string(),
                        seq,
                        vector,
                    }),
                    None => {
                        found.direction_only += 1;
                        if found.direction_only_sample.len() < 10 {
                            found.direction_only_sample.push(id.to_string());
                        }
                    }
                }
            }
            return Ok(());
        }
        let holder = match fold(Holder::Nothing, rows.iter().copied()) {
            Holder::Nothing => fold(Holder::Index, rows.iter().copied()),
            h => h,
        };
        let vector = match holder {
            Holder::Row(seq) => row_vector(&conn, seq)?
                .filter(|v| v.len() == dim)
                .map(|v| (seq, v)),
            Holder::Nothing | Holder::Index => None,
        };
        match vector {
            Some((seq, vector)) => found.put_back.push(PutBack {
                id: id.to_string(),
                seq,
                vector,
            }),
            None => {
                found.unrecoverable += 1;
                if found.sample.len() < 10 {
                    found.sample.push(id.to_string());
                }
                found.unrecoverable_ids.push(id.to_string());
            }
        }
        Ok(())
    })?;
    found.sample.sort();
    Ok(found)
}

/// Every record id of metadata segment `segment`, in id order.
fn each_record_id(
    conn: &Connection,
    segment: &str,
    visit: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut st = conn.prepare(
        "SELECT embedding_id FROM embeddings WHERE segment_id = ?1 ORDER BY embedding_id",
    )?;
    let mut rows = st.query([segment])?;
    while let Some(r) = rows.next()? {
        let id: String = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            rusqlite::types::ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
            _ => continue,
        };
        visit(&id)?;
    }
    Ok(())
}
