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
    let extent: (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT MIN(seq_id), MAX(seq_id) FROM embeddings_queue",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = extent else {
        return Ok(out);
    };
    let mut st = conn.prepare(
        "SELECT topic, seq_id, operation, id, vector IS NOT NULL FROM embeddings_queue \
         WHERE seq_id BETWEEN ?1 AND ?2 ORDER BY seq_id",
    )?;
    let mut next_row =
        conn.prepare("SELECT MIN(seq_id) FROM embeddings_queue WHERE seq_id > ?1")?;
    // Raw topic bytes to the collection they belong to, when it is wanted.
    let mut owners: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
    let mut seen = 0u64;
    let mut from = lo.max(above.saturating_add(1));
    let mut span: i64 = 20_000;
    let target = std::time::Duration::from_millis(20);
    while from <= hi {
        let to = from.saturating_add(span - 1).min(hi);
        let t0 = std::time::Instant::now();
        let before = seen;
        let mut rows = st.query([from, to])?;
        while let Some(r) = rows.next()? {
            seen += 1;
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
            let Some(i) = owner else { continue };
            let seq = match r.get_ref(1)? {
                ValueRef::Integer(n) => n,
                _ => continue,
            };
            let operation = match r.get_ref(2)? {
                ValueRef::Integer(n) => n,
                _ => -1,
            };
            let id = match r.get_ref(3)? {
                ValueRef::Text(t) | ValueRef::Blob(t) => IdHash::of(t),
                _ => continue,
            };
            let has_vector = matches!(r.get_ref(4)?, ValueRef::Integer(1));
            out.entry(i).or_default().push(Row {
                id,
                seq,
                content: content(operation, has_vector),
            });
        }
        drop(rows);
        if !progress(seen) {
            return Err(Error::Interrupted(
                "cancelled while reading the WAL; nothing was changed".into(),
            ));
        }
        if to >= hi {
            break;
        }
        if seen == before {
            match next_row.query_row([to], |r| r.get::<_, Option<i64>>(0))? {
                Some(n) => from = n,
                None => break,
            }
            continue;
        }
        from = to + 1;
        let took = t0.elapsed();
        if took < target / 2 {
            span = span.saturating_mul(2).min(1 << 24);
        } else if took > target * 2 {
            span = (span / 2).max(256);
        }
    }
    Ok(out)
}
