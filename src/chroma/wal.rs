//! One streaming pass over `embeddings_queue`: rows, seq_id range, prunable rows and bytes per
//! topic. Rows are never collected; memory is one small record per topic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::catalog::{Snapshot, TopicOwner};
use super::ranged::{self, Gate};
use crate::error::{Error, Result};

/// Per-row overhead of a table b-tree cell beyond its payload (header, rowid, pointer).
const ROW_OVERHEAD: u64 = 16;

/// Statistics of one WAL topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStats {
    pub topic: String,
    pub owner: TopicOwner,
    pub rows: u64,
    pub min_seq_id: i64,
    pub max_seq_id: i64,
    /// The bound used: rows with `seq_id < bound` are prunable. `None` means none are.
    pub bound: Option<i64>,
    pub prunable: u64,
    /// Approximate payload bytes of all rows, and of the prunable ones.
    pub bytes: u64,
    pub prunable_bytes: u64,
}

impl TopicStats {
    pub fn held(&self) -> u64 {
        self.rows - self.prunable
    }
}

/// The WAL as counted by [`scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Sorted by topic.
    pub topics: Vec<TopicStats>,
    /// Another connection committed while the WAL was counted: the counts are as of a range
    /// of moments, not one (rows added after the count began are not in them).
    pub changed_during_scan: bool,
    /// Topics (indexes into `topics`) per collection index, built by [`WalStats::indexed`].
    pub by_collection: HashMap<usize, Vec<usize>>,
}

impl WalStats {
    pub fn rows(&self) -> u64 {
        self.topics.iter().map(|t| t.rows).sum()
    }

    pub fn prunable(&self) -> u64 {
        self.topics.iter().map(|t| t.prunable).sum()
    }

    pub fn prunable_bytes(&self) -> u64 {
        self.topics.iter().map(|t| t.prunable_bytes).sum()
    }

    pub fn topic(&self, topic: &str) -> Option<&TopicStats> {
        self.topics.iter().find(|t| t.topic == topic)
    }

    /// Index the topics by collection (a dir of 20,000 collections asks 20,000 times).
    pub fn indexed(mut self) -> WalStats {
        self.by_collection.clear();
        for (i, t) in self.topics.iter().enumerate() {
            if let TopicOwner::Collection(c) = t.owner {
                self.by_collection.entry(c).or_default().push(i);
            }
        }
        self
    }

    /// The topics a collection owns.
    pub fn of_collection(&self, idx: usize) -> impl Iterator<Item = &TopicStats> {
        let found: Vec<usize> = if self.by_collection.is_empty() {
            // Not indexed (built by hand): search.
            (0..self.topics.len())
                .filter(|&i| self.topics[i].owner == TopicOwner::Collection(idx))
                .collect()
        } else {
            self.by_collection.get(&idx).cloned().unwrap_or_default()
        };
        found.into_iter().map(move |i| &self.topics[i])
    }

    pub fn orphans(&self) -> impl Iterator<Item = &TopicStats> {
        self.topics.iter().filter(|t| t.owner == TopicOwner::Orphan)
    }

    /// Correct the counts of the `changed` collections' topics after their bound was taken
    /// away (a pending pickle found damaged): nothing of them is prunable. Returns false when
    /// a bound moved to another value instead, which only a recount can answer.
    pub fn rebound(&mut self, snap: &Snapshot, changed: &[usize]) -> bool {
        for t in &mut self.topics {
            let TopicOwner::Collection(i) = t.owner else {
                continue;
            };
            if !changed.contains(&i) {
                continue;
            }
            match snap.collections[i].bound.value() {
                None => {
                    t.bound = None;
                    t.prunable = 0;
                    t.prunable_bytes = 0;
                }
                b if b == t.bound => {}
                _ => return false,
            }
        }
        true
    }
}

/// Read the catalog and count the WAL, validating the pickles whole on a second thread while
/// the WAL is counted: the count starts at once, with the `max_seq_id` at the front of each
/// pickle, and a pickle then found damaged takes its collection's rows out of the prunable
/// ones. Same result as [`Snapshot::open`] then [`scan`].
pub fn open_and_scan(
    dir: &std::path::Path,
    progress: ScanProgress<'_>,
) -> Result<(Snapshot, WalStats)> {
    let mut snap = Snapshot::open_deferred(dir)?;
    // Moved, not copied: the validation resolves every one of them.
    let work = std::mem::take(&mut snap.pending);
    let validator = std::thread::spawn(move || work.iter().map(|p| p.resolve()).collect());
    let scanned = scan(&snap, progress);
    let resolved = validator
        .join()
        .map_err(|_| Error::failed("validating index_metadata.pickle failed"))?;
    let changed = snap.apply(resolved);
    let mut wal = scanned?;
    if !wal.rebound(&snap, &changed) {
        wal = scan(&snap, progress)?;
    }
    Ok((snap, wal))
}

/// Progress of a scan: `(rows seen, estimated total rows)`. Return `false` to cancel.
pub type ScanProgress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// The bound a topic is pruned with: M for a collection topic (None when unknown), and for an
/// orphan topic one past its largest seq_id, filled in after the scan.
fn bound_of(snap: &Snapshot, owner: TopicOwner) -> Option<i64> {
    match owner {
        TopicOwner::Collection(i) => snap.collections[i].bound.value(),
        TopicOwner::Orphan => Some(i64::MAX),
    }
}

/// Count the WAL of `snap` on fresh read-only connections: a big table is counted in two
/// halves at once, one per core, each half in short statements as [`scan_with`] does.
pub fn scan(snap: &Snapshot, progress: ScanProgress<'_>) -> Result<WalStats> {
    let conn = super::db::open_read_only(&snap.sqlite_path)?;
    // Both connections are opened here, before either reads: opening one sniffs the file's
    // header with a descriptor of its own, and closing that while the other holds a read
    // lock would drop the lock (POSIX drops all of a process's locks on a file then).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let second = if cores >= 2 {
        Some(super::db::open_read_only(&snap.sqlite_path)?)
    } else {
        None
    };
    let Some((lo, hi)) = ranged::extent(&conn)? else {
        return Ok(WalStats::default());
    };
    let Some(second) = second.filter(|_| hi.saturating_sub(lo) >= PARALLEL_FROM) else {
        return count_all(&conn, snap, Gate::Pass, progress);
    };
    let estimate = (hi.saturating_sub(lo) as u64).saturating_add(1);
    let mid = lo + hi.saturating_sub(lo) / 2;
    let theirs_seen = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let before = data_version(&conn);
    std::thread::scope(|scope| {
        let upper = scope.spawn(|| -> Result<(Tally, bool)> {
            let c = second;
            let v = data_version(&c);
            let t = count_range(&c, snap, mid.saturating_add(1), hi, Gate::Pass, &mut |n| {
                theirs_seen.store(n, Ordering::Relaxed);
                !stop.load(Ordering::Relaxed)
            })?;
            Ok((t, v.is_some() && data_version(&c) != v))
        });
        let mut report = |mine: u64| {
            let go = progress(mine + theirs_seen.load(Ordering::Relaxed), estimate);
            if !go {
                stop.store(true, Ordering::Relaxed);
            }
            go
        };
        let lower = count_range(&conn, snap, lo, mid, Gate::Pass, &mut report);
        if lower.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Keep saying how far the other half is while it finishes.
        let mine = lower.as_ref().map_or(0, |t| t.seen);
        while !upper.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if !report(mine) {
                break;
            }
        }
        let upper = upper
            .join()
            .unwrap_or_else(|_| Err(Error::failed("counting the WAL failed")));
        let (mut tally, (theirs, changed)) = (lower?, upper?);
        tally.merge(theirs);
        let changed = changed || (before.is_some() && data_version(&conn) != before);
        Ok(finish(tally, changed, progress))
    })
}

/// Below this many seq_ids the table is counted on one connection.
const PARALLEL_FROM: i64 = 200_000;

fn data_version(c: &Connection) -> Option<i64> {
    c.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
}

/// Count the WAL on the given connection: the prune job's own, under its lock. No writer
/// can wait for that lock's holder, so the count does not stop at the gate of [`ranged`]
/// (where it would wait for the explorer's readers, themselves waiting for this lock).
pub fn scan_with(
    conn: &Connection,
    snap: &Snapshot,
    progress: ScanProgress<'_>,
) -> Result<WalStats> {
    count_all(conn, snap, Gate::Skip, progress)
}

fn count_all(
    conn: &Connection,
    snap: &Snapshot,
    gate: Gate,
    progress: ScanProgress<'_>,
) -> Result<WalStats> {
    let Some((lo, hi)) = ranged::extent(conn)? else {
        return Ok(WalStats::default());
    };
    let estimate = (hi.saturating_sub(lo) as u64).saturating_add(1);
    let before = data_version(conn);
    let tally = count_range(conn, snap, lo, hi, gate, &mut |n| {
        progress(n, estimate.max(n))
    })?;
    let changed = before.is_some() && data_version(conn) != before;
    Ok(finish(tally, changed, progress))
}

/// The topics of one range of the table, by their raw bytes.
#[derive(Default)]
struct Tally {
    index: HashMap<Vec<u8>, usize>,
    stats: Vec<TopicStats>,
    seen: u64,
}

impl Tally {
    /// Add another range's counts to these.
    fn merge(&mut self, other: Tally) {
        let Tally { index, stats, seen } = other;
        self.seen += seen;
        // Each topic's raw key, in the order its counts are kept.
        let mut keys = vec![Vec::new(); stats.len()];
        for (key, i) in index {
            if let Some(k) = keys.get_mut(i) {
                *k = key;
            }
        }
        for (key, t) in keys.into_iter().zip(stats) {
            match self.index.get(&key) {
                Some(&j) => {
                    let m = &mut self.stats[j];
                    m.rows += t.rows;
                    m.bytes += t.bytes;
                    m.prunable += t.prunable;
                    m.prunable_bytes += t.prunable_bytes;
                    m.min_seq_id = m.min_seq_id.min(t.min_seq_id);
                    m.max_seq_id = m.max_seq_id.max(t.max_seq_id);
                }
                None => {
                    self.index.insert(key, self.stats.len());
                    self.stats.push(t);
                }
            }
        }
    }
}

/// The counts as the front ends use them: orphan topics' bounds, sorted by topic, indexed.
fn finish(tally: Tally, changed: bool, progress: ScanProgress<'_>) -> WalStats {
    let Tally {
        mut stats, seen, ..
    } = tally;
    progress(seen, seen);
    for t in &mut stats {
        if t.owner == TopicOwner::Orphan {
            t.bound = Some(t.max_seq_id.saturating_add(1));
        }
    }
    stats.sort_by(|a, b| a.topic.cmp(&b.topic));
    WalStats {
        topics: stats,
        changed_during_scan: changed,
        by_collection: HashMap::new(),
    }
    .indexed()
}

/// Count the rows with `lo <= seq_id <= hi`. `report(rows seen)` is called now and then;
/// `false` cancels.
fn count_range(
    conn: &Connection,
    snap: &Snapshot,
    lo: i64,
    hi: i64,
    gate: Gate,
    report: &mut dyn FnMut(u64) -> bool,
) -> Result<Tally> {
    // octet_length() of a column is read from the record header: the payloads are not loaded.
    const SELECT: &str = "SELECT topic, seq_id, coalesce(octet_length(vector), 0) \
         + coalesce(octet_length(metadata), 0) + coalesce(octet_length(id), 0) \
         + coalesce(octet_length(topic), 0) FROM embeddings_queue \
         WHERE seq_id BETWEEN ?1 AND ?2 ORDER BY seq_id";
    let mut tally = Tally::default();
    let Tally { index, stats, seen } = &mut tally;
    let seen_now = std::cell::Cell::new(0u64);
    let mut next_report: u64 = 65_536;
    let mut row = |r: &rusqlite::Row<'_>, seq: i64| -> Result<()> {
        let bytes = match r.get_ref(2)? {
            ValueRef::Integer(n) => n.max(0) as u64,
            _ => 0,
        } + ROW_OVERHEAD;
        let key: &[u8] = match r.get_ref(0)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => t,
            _ => b"",
        };
        let i = match index.get(key) {
            Some(&i) => i,
            None => {
                let topic = String::from_utf8_lossy(key).into_owned();
                let owner = snap.owner_of(&topic);
                stats.push(TopicStats {
                    bound: bound_of(snap, owner),
                    topic,
                    owner,
                    rows: 0,
                    min_seq_id: seq,
                    max_seq_id: seq,
                    prunable: 0,
                    bytes: 0,
                    prunable_bytes: 0,
                });
                index.insert(key.to_vec(), stats.len() - 1);
                stats.len() - 1
            }
        };
        let t = &mut stats[i];
        t.rows += 1;
        t.bytes += bytes;
        t.min_seq_id = t.min_seq_id.min(seq);
        t.max_seq_id = t.max_seq_id.max(seq);
        if t.bound.is_some_and(|b| seq < b) {
            t.prunable += 1;
            t.prunable_bytes += bytes;
        }
        seen_now.set(seen_now.get() + 1);
        Ok(())
    };
    let mut after_range = || -> Result<()> {
        let n = seen_now.get();
        if n >= next_report {
            next_report = n + 65_536;
            if !report(n) {
                return Err(Error::Interrupted(
                    "cancelled while counting the WAL; nothing was changed (the persist dir is untouched)".into(),
                ));
            }
        }
        Ok(())
    };
    ranged::each_row(conn, SELECT, (lo, hi), gate, &mut row, &mut after_range)?;
    *seen = seen_now.get();
    Ok(tally)
}
