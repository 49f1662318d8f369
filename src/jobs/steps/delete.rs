//! The delete step of a prune in place (one transaction), and the integrity check the
//! verify step runs.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::jobs::runner::{interrupted_or, Ctx, Event, Step, Throttle, TopicBound};

pub(in crate::jobs) fn integrity(conn: &Connection) -> Result<()> {
    let mut st = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "integrity_check failed: {}",
            lines.into_iter().take(3).collect::<Vec<_>>().join("; ")
        )))
    }
}

/// Delete every planned row in one pass over the seq_id range, in chunks for progress and
/// cancellation, all inside the caller's transaction.
pub(in crate::jobs) fn delete(
    c: &mut Ctx<'_>,
    conn: &Connection,
    bounds: &[TopicBound],
) -> Result<HashMap<String, u64>> {
    let mut deleted: HashMap<String, u64> = HashMap::new();
    let live: Vec<&TopicBound> = bounds
        .iter()
        .filter(|b| b.bound.is_some() && b.expected > 0)
        .collect();
    if live.is_empty() {
        return Ok(deleted);
    }
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS cw_bounds(topic TEXT PRIMARY KEY, bound INTEGER NOT NULL); DELETE FROM temp.cw_bounds;",
    )?;
    {
        let mut ins = conn.prepare("INSERT INTO temp.cw_bounds(topic, bound) VALUES (?1, ?2)")?;
        for b in &live {
            ins.execute(rusqlite::params![b.topic, b.bound])?;
        }
    }
    let hi: i64 = live.iter().filter_map(|b| b.bound).max().unwrap_or(0);
    let lo: Option<i64> =
        conn.query_row("SELECT MIN(seq_id) FROM embeddings_queue", [], |r| r.get(0))?;
    let Some(lo) = lo else { return Ok(deleted) };
    let total: u64 = live.iter().map(|b| b.expected).sum();
    let span = (hi.saturating_sub(lo)).max(1);
    let chunk = (span / 200).clamp(10_000, 1_000_000);
    let mut st = conn.prepare(
        "DELETE FROM embeddings_queue WHERE seq_id >= ?1 AND seq_id < ?2 \
         AND seq_id < (SELECT b.bound FROM temp.cw_bounds b WHERE b.topic = embeddings_queue.topic) \
         RETURNING topic",
    )?;
    let mut next = conn.prepare("SELECT MIN(seq_id) FROM embeddings_queue WHERE seq_id >= ?1")?;
    let mut done = 0u64;
    let mut throttle = Throttle::new();
    let mut start = lo;
    while start < hi {
        c.check_cancel(Step::Delete)?;
        let end = start.saturating_add(chunk).min(hi);
        let mut rows = st.query(rusqlite::params![start, end])?;
        while let Some(r) = rows
            .next()
            .map_err(|e| interrupted_or(e, "cancelled during delete"))?
        {
            let t: String = r.get(0)?;
            *deleted.entry(t).or_insert(0) += 1;
            done += 1;
        }
        if throttle.ready() {
            (c.events)(Event::Progress {
                step: Step::Delete,
                done,
                total: Some(total),
            });
        }
        // The next row at or after `end`: sparse seq_ids are skipped, not walked.
        match next.query_row([end], |r| r.get::<_, Option<i64>>(0))? {
            Some(n) => start = n,
            None => break,
        }
    }
    drop(next);
    (c.events)(Event::Progress {
        step: Step::Delete,
        done,
        total: Some(total),
    });
    drop(st);
    conn.execute_batch("DROP TABLE temp.cw_bounds")?;
    Ok(deleted)
}
