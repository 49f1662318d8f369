//! Reading `embeddings_queue` beside a live Chroma: in seq_id ranges, one short statement
//! each.
//!
//! Outside a transaction each statement lets its read lock go when it ends, so a writer
//! waits for one range at most, never for the whole read. Ranges adapt to take about
//! [`TARGET`], and a range that takes longer is cut where it got to: on a cold cache the
//! first range of a table of 1.5 KB vectors is thousands of page reads, and a range sized for
//! a warm cache held a writer off for 400 ms. seq_id is the table's rowid, so a range comes in
//! its order at no cost and a cut range resumes after the last row it gave.
//!
//! Short statements are not enough when a process reads on several connections at once (the
//! WAL count's two halves, `--deep`'s readers, the explorer's workers): SQLite keeps one
//! POSIX read lock per file per process and lets it go only when the last statement of any
//! of its connections ends, and a connection that joins a lock its process already holds does
//! not look for a writer waiting to commit (SQLite's PENDING lock). Statements that overlap
//! each other held a live writer off for a whole read. So every statement of a reader runs
//! inside `statement` ([`gated`], [`each_row`]), and `between` statements, once per
//! [`TARGET`], waits until none of this process runs: the lock is let go, the next statement
//! sees the waiting writer and waits for its commit.

use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::Instant;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use crate::error::Result;

/// How long one statement should hold the read lock.
pub const TARGET: std::time::Duration = std::time::Duration::from_millis(20);

static GATE: RwLock<()> = RwLock::new(());
static LAST_GAP: Mutex<Option<Instant>> = Mutex::new(None);

/// Held while one statement of a reader runs (from its first step until it is reset).
fn statement() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Called between two statements, holding none: once per [`TARGET`], wait until no statement
/// of this process runs (new ones wait meanwhile: the lock is writer-preferring), so the
/// process's read lock on the file is let go.
fn between() {
    let due = {
        let mut last = LAST_GAP.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(t) if t.elapsed() < TARGET => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    };
    if due {
        drop(GATE.write().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Whether a reader's statements pass the gate: every reader does, but one that holds the
/// write lock itself (the prune job), which no live writer can be waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Pass,
    Skip,
}

/// The column of a ranged statement that holds seq_id.
const SEQ_COL: usize = 1;

/// Rows between two looks at the clock.
const LOOK_EVERY: u64 = 8;

/// Run `select` (a statement over `embeddings_queue` whose `?1` and `?2` bound `seq_id`
/// inclusively, in seq_id order, with `seq_id` in its second column) over `lo ..= hi`, giving
/// each row and its seq_id to `row`. `after_range()` runs after each statement, with no lock
/// held; an error from it (a cancel) ends the read.
pub fn each_row(
    conn: &Connection,
    select: &str,
    range: (i64, i64),
    gate: Gate,
    row: &mut dyn FnMut(&Row<'_>, i64) -> Result<()>,
    after_range: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    each_row_within(conn, select, range, gate, TARGET, row, after_range)
}

fn each_row_within(
    conn: &Connection,
    select: &str,
    (lo, hi): (i64, i64),
    gate: Gate,
    target: std::time::Duration,
    row: &mut dyn FnMut(&Row<'_>, i64) -> Result<()>,
    after_range: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let mut st = conn.prepare(select)?;
    // Sparse seq_ids (rows deleted by something else, or a stray huge one): after an empty
    // range, go straight to the next row instead of walking the gap.
    let mut next_row =
        conn.prepare("SELECT MIN(seq_id) FROM embeddings_queue WHERE seq_id > ?1")?;
    let mut from = lo;
    let mut span: i64 = 20_000;
    while from <= hi {
        // Inclusive ranges: the last one ends at `hi` itself, even at i64::MAX.
        let to = from.saturating_add(span - 1).min(hi);
        let mut given = 0u64;
        let mut cut_at = None;
        let t0;
        {
            let _held = (gate == Gate::Pass).then(statement);
            // After the gate: time spent waiting there is not this statement's.
            t0 = std::time::Instant::now();
            let mut rows = st.query([from, to])?;
            while let Some(r) = rows.next()? {
                let ValueRef::Integer(seq) = r.get_ref(SEQ_COL)? else {
                    continue;
                };
                row(r, seq)?;
                given += 1;
                if given % LOOK_EVERY == 0 && seq < to && t0.elapsed() >= target {
                    cut_at = Some(seq);
                    break;
                }
            }
        }
        if gate == Gate::Pass {
            between();
        }
        after_range()?;
        if let Some(last) = cut_at {
            // What this range covered in the target time is the next one's size.
            span = last
                .saturating_sub(from)
                .saturating_add(1)
                .clamp(64, 2_000_000);
            from = last.saturating_add(1);
            continue;
        }
        // Size the next range to take about the target time.
        let took = t0.elapsed().max(std::time::Duration::from_micros(50));
        let scale = target.as_secs_f64() / took.as_secs_f64();
        span = ((span as f64 * scale.clamp(0.5, 2.0)) as i64).clamp(1_000, 2_000_000);
        if to >= hi {
            break;
        }
        from = if given == 0 {
            let next = {
                let _held = (gate == Gate::Pass).then(statement);
                next_row.query_row([to], |r| r.get::<_, Option<i64>>(0))?
            };
            match next {
                Some(n) => n,
                None => break,
            }
        } else {
            to.saturating_add(1)
        };
    }
    Ok(())
}

/// How many rowids the next statement of a filtered walk covers, where a statement cannot be
/// cut where it got to (it returns only the rows it matches): it starts small and doubles
/// while a statement takes under half of [`TARGET`], halves when one takes longer. 50,000
/// seq_ids of 1.5 KB vectors walked cold were 25,000 page reads, a writer held off 400 ms.
pub struct Span {
    pub len: i64,
    most: i64,
}

impl Span {
    pub fn new(most: i64) -> Span {
        Span {
            len: 1_000.min(most),
            most,
        }
    }

    /// Size the next statement after one that took `took`.
    pub fn after(&mut self, took: std::time::Duration) {
        if took < TARGET / 2 {
            self.len = self.len.saturating_mul(2).min(self.most);
        } else if took > TARGET {
            self.len = (self.len / 2).max(64);
        }
    }
}

/// The lowest and highest seq_id, `None` for an empty WAL. Two b-tree descents.
pub fn extent(conn: &Connection) -> Result<Option<(i64, i64)>> {
    extent_of(conn, "embeddings_queue", "seq_id")
}

/// The lowest and highest `key` (a table's integer primary key) of `table` (which may name
/// its schema, `src.embeddings_queue`), `None` for an empty table. Two b-tree descents.
pub fn extent_of(conn: &Connection, table: &str, key: &str) -> Result<Option<(i64, i64)>> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
        // Two subqueries: min() and max() in one SELECT defeat SQLite's min/max optimization
        // and cost a full scan (a 27 s read lock under strace on 634 MB, cold); alone, each
        // is one b-tree descent.
        &format!("SELECT (SELECT MIN({key}) FROM {table}), (SELECT MAX({key}) FROM {table})"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(lo.zip(hi))
}

/// Run one statement of a reader (`f`, which steps it to its end or drops it) inside the
/// gate, then leave a gap when one is due: what every short statement outside
/// [`each_row`] does.
pub fn gated<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let done = {
        let _held = statement();
        f()
    };
    between();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(seqs: &[i64]) -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE embeddings_queue (seq_id INTEGER PRIMARY KEY, topic TEXT)")
            .unwrap();
        for s in seqs {
            c.execute("INSERT INTO embeddings_queue VALUES (?1, 't')", [s])
                .unwrap();
        }
        c
    }

    fn read(c: &Connection, target: std::time::Duration) -> (Vec<i64>, u32) {
        let (mut got, mut ranges) = (Vec::new(), 0);
        each_row_within(
            c,
            "SELECT topic, seq_id FROM embeddings_queue WHERE seq_id BETWEEN ?1 AND ?2 ORDER BY seq_id",
            extent(c).unwrap().unwrap(),
            Gate::Pass,
            target,
            &mut |_, seq| {
                got.push(seq);
                Ok(())
            },
            &mut || {
                ranges += 1;
                Ok(())
            },
        )
        .unwrap();
        (got, ranges)
    }

    #[test]
    fn ranges_cut_at_any_time_give_every_row_once_in_order() {
        // Dense rows, a gap of a million, a stray row near the top of i64.
        let mut seqs: Vec<i64> = (1..=5_000).collect();
        seqs.extend(1_005_000..1_006_000);
        seqs.push(i64::MAX - 1);
        let c = wal(&seqs);
        // A zero target cuts every statement after its first rows.
        let (cut, ranges) = read(&c, std::time::Duration::ZERO);
        assert_eq!(cut, seqs);
        assert!(ranges >= 6_000 / LOOK_EVERY as u32, "{ranges} statements");
        // A generous one reads the same rows in a few statements.
        let (whole, few) = read(&c, std::time::Duration::from_secs(60));
        assert_eq!(whole, seqs);
        assert!(few < 10, "{few} statements");
    }
}
