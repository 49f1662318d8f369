//! The new file's verification before it replaces the original: the same header values and
//! schema, the kept WAL rows per topic read back (exactly as counted during the copy, none
//! below its bound), and SQLite's `quick_check` of every page.
//!
//! The order is the one that reads the file best when memory is smaller than it (a 10.5 GiB
//! new file with 6 GiB of page cache took 175 s to verify with the checks overlapped, 37 s
//! in this order; BENCHMARKS.md, "4. 20 GB"):
//! 1. the count-back, one forward scan the kernel reads ahead, while the flush runs;
//! 2. the flush's end;
//! 3. `quick_check`, with a reader a bounded distance ahead of it ([`read_ahead_of`]).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::swap::{attach_original, CopyCounts, Flush, Header, NewFile};
use crate::error::{Error, Result};

/// Verify `new` against the original, and wait for its `flush` to end (whatever the checks
/// found: no thread is left behind).
pub fn verify(
    new: &NewFile,
    original: &Path,
    header: &Header,
    counts: &CopyCounts,
    bounds: &HashMap<String, i64>,
    flush: Flush,
) -> Result<()> {
    let open = || {
        // Large reads, forward for the count-back and backward for quick_check ([`bigio`]).
        super::bigio::open(
            new.sqlite_path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::from)
    };
    let counted = open().and_then(|conn| count_back(&conn, original, header, counts, bounds));
    let flushed = flush.wait();
    counted?;
    flushed?;
    quick_check(new, &open()?)
}

/// `quick_check` on this thread, with [`read_ahead_of`] on another.
fn quick_check(new: &NewFile, conn: &Connection) -> Result<()> {
    // This thread's I/O counters: how far quick_check has read, for the reader's pace.
    let io = File::open("/proc/thread-self/io").ok();
    let ahead = new.file().try_clone().ok();
    let done = AtomicBool::new(false);
    let qc = std::thread::scope(|scope| {
        if let Some(f) = ahead {
            let done = &done;
            scope.spawn(move || read_ahead_of(f, io, done));
        }
        let qc = conn.query_row("PRAGMA main.quick_check", [], |r| r.get::<_, String>(0));
        done.store(true, Ordering::Relaxed);
        qc
    })?;
    if qc != "ok" {
        return Err(Error::failed(format!("quick_check of the new file: {qc}")));
    }
    Ok(())
}

/// How far the reader may be ahead of quick_check.
const LEAD: u64 = 256 << 20;
/// The reader's block.
const BLOCK: u64 = 4 << 20;

/// Read `f` from its end to its start in large blocks, until `done`, at most [`LEAD`] ahead
/// of quick_check (`io`: its thread's `/proc/thread-self/io`, whose `rchar` counts the bytes
/// it has read).
///
/// quick_check walks each b-tree from its last cell to its first, so in a file written in
/// key order it reads the pages backward, one at a time, and the kernel's readahead (forward
/// only) does not follow: a cold 1.1 GB file took it 25 s alone, 1.9 s with this reader. The
/// bound matters when memory is smaller than the file: a reader that runs ahead (through
/// the cached tail, where quick_check is slower than it) has its pages evicted before
/// quick_check reaches them, and every page is read twice (10.5 GiB with 6 GiB: 120 s
/// unbounded, 23 s bounded). Without the counters (no /proc) it reads unbounded.
fn read_ahead_of(f: File, io: Option<File>, done: &AtomicBool) {
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return;
    };
    let base = io.as_ref().and_then(rchar);
    let mut end = len;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > 0 && !done.load(Ordering::Relaxed) {
        if let (Some(io), Some(base)) = (&io, base) {
            let Some(now) = rchar(io) else {
                return;
            };
            // Where quick_check is, as bytes read back from the end.
            if (len - end).saturating_sub(now.saturating_sub(base)) > LEAD {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
        }
        let start = end.saturating_sub(BLOCK);
        if f.read_exact_at(&mut buf[..(end - start) as usize], start)
            .is_err()
        {
            return;
        }
        end = start;
    }
}

/// The `rchar` line of a `/proc/<pid>/task/<tid>/io` file.
fn rchar(io: &File) -> Option<u64> {
    let mut buf = [0u8; 512];
    let n = io.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Header, schema and the per-topic count-back of the new file.
fn count_back(
    conn: &Connection,
    original: &Path,
    header: &Header,
    counts: &CopyCounts,
    bounds: &HashMap<String, i64>,
) -> Result<()> {
    let got = Header::read(conn, "main")?;
    if &got != header {
        return Err(Error::failed(format!(
            "the new file's header differs: {got:?}, expected {header:?}"
        )));
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    attach_original(conn, original)?;
    let diff: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM (SELECT type, name, tbl_name, sql FROM main.sqlite_schema \
           EXCEPT SELECT type, name, tbl_name, sql FROM src.sqlite_schema)) + \
         (SELECT count(*) FROM (SELECT type, name, tbl_name, sql FROM src.sqlite_schema \
           EXCEPT SELECT type, name, tbl_name, sql FROM main.sqlite_schema)) + \
         (SELECT count(*) FROM main.sqlite_schema) - (SELECT count(*) FROM src.sqlite_schema)",
        [],
        |r| r.get(0),
    )?;
    if diff != 0 {
        return Err(Error::failed(
            "the new file's schema differs from the original's",
        ));
    }
    // Every other table was copied whole by SQLite's transfer optimization (VACUUM's own
    // method) and is covered by quick_check; the WAL, the one table copied row by row, is
    // counted back per topic, in one streaming pass (no sort).
    let mut st = conn.prepare("SELECT topic, seq_id FROM main.embeddings_queue")?;
    let mut rows = st.query([])?;
    let mut per: HashMap<Vec<u8>, (u64, i64)> = HashMap::new();
    while let Some(r) = rows.next()? {
        let topic: &[u8] = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => t,
            _ => b"",
        };
        let seq: i64 = r.get(1)?;
        match per.get_mut(topic) {
            Some(e) => {
                e.0 += 1;
                e.1 = e.1.min(seq);
            }
            None => {
                per.insert(topic.to_vec(), (1, seq));
            }
        }
    }
    let mut seen = 0u64;
    for (topic, (n, min)) in per {
        let topic = String::from_utf8_lossy(&topic).into_owned();
        if n != counts.kept(&topic) {
            return Err(Error::failed(format!(
                "topic {topic}: {n} rows in the new file, {} expected",
                counts.kept(&topic)
            )));
        }
        if bounds.get(&topic).is_some_and(|&b| min < b) {
            return Err(Error::failed(format!(
                "topic {topic} still has rows below its bound in the new file"
            )));
        }
        seen += n;
    }
    if seen != counts.kept_total() {
        return Err(Error::failed(format!(
            "{seen} WAL rows in the new file, {} expected",
            counts.kept_total()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rchar_is_read_from_this_threads_counters_and_grows_with_its_reads() {
        let io = File::open("/proc/thread-self/io").unwrap();
        let before = rchar(&io).unwrap();
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().write_all_at(&[7u8; 65536], 0).unwrap();
        let mut buf = vec![0u8; 65536];
        f.as_file().read_exact_at(&mut buf, 0).unwrap();
        assert!(rchar(&io).unwrap() >= before + 65536);
    }

    #[test]
    fn the_reader_keeps_its_lead_and_follows_quick_check() {
        // A quick_check whose counter stands still: the reader reads its lead and waits;
        // once the counter says everything was read, it reads to the start on its own.
        let f = tempfile::NamedTempFile::new().unwrap();
        let len = LEAD + 8 * BLOCK;
        f.as_file().set_len(len).unwrap();
        let counter = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(counter.path(), "rchar: 100\nwchar: 0\n").unwrap();
        let done = AtomicBool::new(false);
        let reader = f.as_file().try_clone().unwrap();
        let io = File::open(counter.path()).unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| read_ahead_of(reader, Some(io), &done));
            std::thread::sleep(std::time::Duration::from_millis(500));
            assert!(!h.is_finished(), "the reader did not wait for quick_check");
            std::fs::write(counter.path(), format!("rchar: {}\nwchar: 0\n", 100 + len)).unwrap();
            let t0 = std::time::Instant::now();
            while !h.is_finished() && t0.elapsed() < std::time::Duration::from_secs(20) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let finished = h.is_finished();
            done.store(true, Ordering::Relaxed);
            assert!(
                finished,
                "the reader did not follow quick_check to the start"
            );
        });
    }
}
