//! The guard against seq_id reuse.
//!
//! `seq_id` is `INTEGER PRIMARY KEY` without AUTOINCREMENT: Chroma's next row gets the WAL's
//! highest seq_id + 1. If a prune removed the top rows while a live segment has recorded a
//! position at or above them, Chroma would hand out seq_ids it believes it has applied, and
//! replay (`seq_id > position`) would skip those writes for good. Chroma's own rule (the row
//! at M stays) prevents this on healthy dirs; rows deleted earlier by something else can
//! break it. So the plan is checked, and checked again under the lock.

use rusqlite::Connection;

use super::topic::PlanTopic;
use crate::chroma::{Snapshot, WalStats};
use crate::error::Result;

/// Never let Chroma hand out a seq_id again: after the prune, the WAL's highest seq_id must
/// stay at or above every position a live segment recorded (Chroma's next seq_id is the
/// highest + 1). Chroma's rule guarantees it on healthy dirs; where rows were deleted by
/// something else before, a topic whose rows would take the top with them is dropped.
pub fn plan(snap: &Snapshot, wal: &WalStats, plan: &mut [PlanTopic]) {
    let Some(p) = snap.highest_position() else {
        return;
    };
    let cut = |t: &crate::chroma::TopicStats| {
        plan.iter()
            .find(|x| x.topic == t.topic && x.rows > 0)
            .and_then(|x| x.bound)
    };
    let kept_top = wal
        .topics
        .iter()
        .filter(|t| cut(t).map_or(true, |b| t.max_seq_id >= b))
        .map(|t| t.max_seq_id)
        .max();
    if kept_top.is_some_and(|top| top >= p) || wal.topics.is_empty() {
        return;
    }
    for x in plan.iter_mut() {
        let Some(t) = wal.topic(&x.topic) else {
            continue;
        };
        if x.rows > 0 && t.max_seq_id >= p {
            x.rows = 0;
            x.bytes = 0;
            x.bound = None;
            let why = format!(
                "kept whole: its rows hold the WAL's highest seq_id, and a segment recorded \
                 position {p}; without them Chroma would hand out seq_ids it believes applied"
            );
            x.note = Some(why);
        }
    }
}

/// The same guard under the prune's lock, on the live file: which of `bounds` (topic, bound)
/// must be left whole so that a row at or above the highest recorded position survives.
/// Reads only the rows at or above that position (a rowid range: the top of the table).
pub fn under_lock(
    conn: &Connection,
    fresh: &Snapshot,
    bounds: &[(String, Option<i64>)],
) -> Result<Vec<String>> {
    let Some(p) = fresh.highest_position() else {
        return Ok(Vec::new());
    };
    let mut st = conn.prepare("SELECT topic, seq_id FROM embeddings_queue WHERE seq_id >= ?1")?;
    let mut rows = st.query([p])?;
    let mut holders: Vec<String> = Vec::new();
    while let Some(r) = rows.next()? {
        let topic: String = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => continue,
        };
        let seq: i64 = r.get(1)?;
        let bound = bounds
            .iter()
            .find(|(t, _)| *t == topic)
            .and_then(|(_, b)| *b);
        if bound.map_or(true, |b| seq >= b) {
            // This row survives the prune: the guard holds.
            return Ok(Vec::new());
        }
        if !holders.contains(&topic) {
            holders.push(topic);
        }
    }
    Ok(holders)
}
