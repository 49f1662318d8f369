//! The WAL rows of the collections being judged, read once for all of them, in seq_id order,
//! each reduced to what replay needs: the id (hashed), its seq_id and what it does to the
//! id's vector. The index truth reads every row; the records read those above a load's start.
//!
//! Read as the WAL counts are: seq_id ranges, one short statement each, outside any
//! transaction, so a live Chroma's writes wait at most one range.

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::chroma::catalog::{Snapshot, TopicOwner};
use crate::chroma::idhash::IdHash;
use crate::chroma::ranged;
use crate::chroma::replay::{content, Content, Effect};
use crate::error::{Error, Result};

/// One row as replay sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub id: IdHash,
    pub seq: i64,
    pub content: Content,
}

impl Row {
    /// What it does to whether the id is in the index.
    pub fn effect(&self) -> Effect {
        self.content.effect()
    }
}

/// Rows per collection (index into `snap.collections`), each list in seq_id order.
pub type Rows = HashMap<usize, Vec<Row>>;

/// Read the rows with a seq_id above `above` of every collection `wanted` accepts.
/// `progress(rows read)`; `false` stops.
pub fn read(
    conn: &Connection,
    snap: &Snapshot,
    wanted: &dyn Fn(usize) -> bool,
    above: i64,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Rows> {
    let mut out: Rows = HashMap::new();
    let Some((lo, hi)) = ranged::extent(conn)? else {
        return Ok(out);
    };
    // Raw topic bytes to the collection they belong to, when it is wanted.
    let mut owners: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
    let seen = std::cell::Cell::new(0u64);
    let mut row = |r: &rusqlite::Row<'_>, seq: i64| -> Result<()> {
        seen.set(seen.get() + 1);
        let topic: &[u8] = match r.get_ref(0)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => t,
            _ => b"",
        };
        let owner = match owners.get(topic) {
            Some(o) => *o,
            None => {
                let o = match snap.owner_of(&String::from_utf8_lossy(topic)) {
                    TopicOwner::Collection(i) if wanted(i) => Some(i),
                    _ => None,
                };
                owners.insert(topic.to_vec(), o);
                o
            }
        };
        let Some(i) = owner else { return Ok(()) };
        let operation = match r.get_ref(2)? {
            ValueRef::Integer(n) => n,
            _ => -1,
        };
        let id = match r.get_ref(3)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => IdHash::of(t),
            _ => return Ok(()),
        };
        let has_vector = matches!(r.get_ref(4)?, ValueRef::Integer(1));
        out.entry(i).or_default().push(Row {
            id,
            seq,
            content: content(operation, has_vector),
        });
        Ok(())
    };
    let mut after_range = || -> Result<()> {
        if progress(seen.get()) {
            Ok(())
        } else {
            Err(Error::Interrupted(
                "cancelled while reading the WAL; nothing was changed".into(),
            ))
        }
    };
    ranged::each_row(
        conn,
        "SELECT topic, seq_id, operation, id, vector IS NOT NULL FROM embeddings_queue \
         WHERE seq_id BETWEEN ?1 AND ?2 ORDER BY seq_id",
        (lo.max(above.saturating_add(1)), hi),
        ranged::Gate::Pass,
        &mut row,
        &mut after_range,
    )?;
    Ok(out)
}
