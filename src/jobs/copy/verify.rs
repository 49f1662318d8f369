//! The new file's verification before it replaces the original: the same header values and
//! schema, the kept WAL rows per topic as read back from it (exactly as counted during the
//! copy, none below its bound), and SQLite's `quick_check` of every page.
//!
//! The WAL rows were read back during the copy, each range right after it was written, from
//! pages still in memory ([`Copier::copy_queue`](super::swap::Copier::copy_queue)): read
//! back here, after the copy, a file larger than the page cache came from the disk twice (a
//! forward pass for the rows, a backward one for `quick_check`; BENCHMARKS.md, "4. 20 GB",
//! run 6).
//!
//! The file is read once, by `quick_check`, with a reader a bounded distance ahead of it
//! ([`read_ahead_of`]), while the flush runs. That reader also checks every page against a
//! hash of what SQLite last wrote to it ([`Written`]): the rows read back during the copy
//! came partly from SQLite's own cache, so this is what shows that the file holds them.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::bigio::Written;
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
        // Large reads, backward for quick_check ([`bigio`]).
        super::bigio::open(
            new.sqlite_path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::from)
    };
    // What SQLite wrote, page by page, as the copy's connection closed the file.
    let written = super::bigio::take_written(new.sqlite_path());
    let checked = open()
        .and_then(|conn| {
            compare(&conn, original, header, counts, bounds)?;
            Ok(conn)
        })
        .and_then(|conn| quick_check(new, &conn, written.as_ref()));
    let flushed = flush.wait();
    checked?;
    flushed
}

/// `quick_check` on this thread, with [`read_ahead_of`] on another.
fn quick_check(new: &NewFile, conn: &Connection, written: Option<&Written>) -> Result<()> {
    // This thread's I/O counters: how far quick_check has read, for the reader's pace.
    let io = File::open("/proc/thread-self/io").ok();
    let ahead = new.file().try_clone().ok();
    if ahead.is_none() && written.is_some() {
        return Err(Error::failed(
            "could not open the new file to check its pages",
        ));
    }
    let done = AtomicBool::new(false);
    let (qc, differs) = std::thread::scope(|scope| {
        let reader = ahead.map(|f| {
            let done = &done;
            scope.spawn(move || read_ahead_of(f, io, done, written))
        });
        let qc = conn.query_row("PRAGMA main.quick_check", [], |r| r.get::<_, String>(0));
        done.store(true, Ordering::Relaxed);
        let differs = match reader.map(|r| r.join()) {
            Some(Ok(d)) => d,
            Some(Err(_)) => written.map(|_| "the check of its pages stopped".to_string()),
            None => None,
        };
        (qc, differs)
    });
    if let Some(d) = differs {
        return Err(Error::failed(format!(
            "the new file is not what SQLite wrote to it: {d}"
        )));
    }
    let qc = qc?;
    if qc != "ok" {
        return Err(Error::failed(format!("quick_check of the new file: {qc}")));
    }
    Ok(())
}

/// How far the reader may be ahead of quick_check.
const LEAD: u64 = 256 << 20;
/// The reader's block.
const BLOCK: u64 = 4 << 20;
/// The blocks below the one it reads that the reader asks the kernel for (64 MiB).
const IN_FLIGHT: u64 = 16;

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
///
/// One `pread` has one block in flight at a time. The reader also asks the kernel for the
/// [`IN_FLIGHT`] blocks below it (`posix_fadvise(WILLNEED)`, which does not wait), so the
/// disk has several reads at once: the verification of a 20 GB prune's 11 GB file in a
/// 6 GiB memory group took 16.1 and 17.0 s with 16 and 4 such blocks, 19.7 s with none
/// (BENCHMARKS.md, "4. 20 GB", run 6).
///
/// With `written` (every write a whole page), it checks each page it reads against what
/// SQLite last wrote there, reads to the start even once quick_check has ended, and returns
/// the first difference (the file's size, a page, or a read that failed).
fn read_ahead_of(
    f: File,
    io: Option<File>,
    done: &AtomicBool,
    written: Option<&Written>,
) -> Option<String> {
    let len = match f.metadata() {
        Ok(m) => m.len(),
        Err(e) => return written.map(|_| format!("reading its size: {e}")),
    };
    // Check every page read against what was written, when every write was one page.
    let check = written.and_then(|w| Some((w, w.page_size()?)));
    if let Some((w, page)) = check {
        if len % page != 0 || w.extent() > len {
            return Some(format!(
                "{len} bytes, where {} were written in pages of {page}",
                w.extent()
            ));
        }
    }
    let base = io.as_ref().and_then(rchar);
    let mut paced = base.is_some();
    let mut end = len;
    let mut buf = vec![0u8; BLOCK as usize];
    // The lowest offset asked for so far.
    let mut asked = len;
    while end > 0 {
        let finished = done.load(Ordering::Relaxed);
        if finished && check.is_none() {
            return None;
        }
        if let (Some(io), Some(base), true, false) = (&io, base, paced, finished) {
            match rchar(io) {
                // Where quick_check is, as bytes read back from the end.
                Some(now) if (len - end).saturating_sub(now.saturating_sub(base)) > LEAD => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                Some(_) => {}
                None => paced = false,
            }
        }
        let start = end.saturating_sub(BLOCK);
        let ask = start.saturating_sub(IN_FLIGHT * BLOCK);
        if ask < asked {
            will_need(&f, ask, asked.min(start) - ask);
            asked = ask;
        }
        let block = &mut buf[..(end - start) as usize];
        if let Err(e) = f.read_exact_at(block, start) {
            return check.map(|_| format!("reading {} bytes at {start}: {e}", block.len()));
        }
        if let Some((w, page)) = check {
            let first = start / page;
            for (k, p) in block.chunks(page as usize).enumerate() {
                let i = first as usize + k;
                if !w.matches(i, p) {
                    return Some(format!("page {} differs from its last write", i + 1));
                }
            }
        }
        end = start;
    }
    None
}

/// Ask the kernel to read `len` bytes of `f` at `at` into the page cache, without waiting
/// (a hint: a failure changes nothing but the speed).
fn will_need(f: &File, at: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(at), Ok(len)) = (libc::off_t::try_from(at), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor `f` owns; it reads no memory of ours.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), at, len, libc::POSIX_FADV_WILLNEED);
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

/// Header and schema of the new file, and its WAL rows per topic as the copy read them back.
fn compare(
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
    // method) and is covered by quick_check; the WAL, the one table copied row by row, was
    // read back per topic as it was written.
    let mut seen = 0u64;
    for (topic, &(n, min)) in &counts.read_back {
        if n != counts.kept(topic) {
            return Err(Error::failed(format!(
                "topic {topic}: {n} rows in the new file, {} expected",
                counts.kept(topic)
            )));
        }
        if bounds.get(topic).is_some_and(|&b| min < b) {
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
    use crate::jobs::copy::swap::{TopicCount, TopicRule};

    #[test]
    fn a_read_back_other_than_what_the_copy_kept_fails_the_comparison() {
        let d = tempfile::tempdir().unwrap();
        let (original, new) = (
            d.path().join("chroma.sqlite3"),
            d.path().join("new.sqlite3"),
        );
        for p in [&original, &new] {
            Connection::open(p)
                .unwrap()
                .execute_batch(
                    "CREATE TABLE embeddings_queue(seq_id INTEGER PRIMARY KEY, topic TEXT);",
                )
                .unwrap();
        }
        let conn = Connection::open(&new).unwrap();
        let header = Header::read(&conn, "main").unwrap();
        // Topic a: rows 1..=10, the four below 5 left out, so six kept, the lowest 5.
        let a = TopicCount {
            rule: TopicRule {
                bound: Some(5),
                drop: true,
            },
            seen: 10,
            below: 4,
            left_out: 4,
            min_seq_id: 1,
            max_seq_id: 10,
        };
        let bounds = HashMap::from([("a".to_string(), 5)]);
        let with = |read_back: &[(&str, u64, i64)]| CopyCounts {
            topics: HashMap::from([("a".to_string(), a.clone())]),
            read_back: read_back
                .iter()
                .map(|&(t, n, m)| (t.to_string(), (n, m)))
                .collect(),
            ..CopyCounts::default()
        };
        let check = |c: &CopyCounts| compare(&conn, &original, &header, c, &bounds);
        assert!(check(&with(&[("a", 6, 5)])).is_ok());
        for (case, read_back) in [
            ("a row fewer", vec![("a", 5, 5)]),
            ("a row below the bound", vec![("a", 6, 4)]),
            ("no rows read back", vec![]),
            ("another topic's rows", vec![("a", 6, 5), ("b", 1, 9)]),
        ] {
            assert!(check(&with(&read_back)).is_err(), "{case} passed");
        }
    }

    #[test]
    fn the_reader_finds_a_page_that_differs_from_what_sqlite_wrote() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.sqlite3");
        let conn = crate::jobs::copy::bigio::open(
            &p,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)\
             INSERT INTO t SELECT i, zeroblob(1500) FROM n;",
        )
        .unwrap();
        conn.close().unwrap();
        let w = crate::jobs::copy::bigio::take_written(&p).unwrap();
        let read = || {
            let done = AtomicBool::new(true);
            read_ahead_of(File::open(&p).unwrap(), None, &done, Some(&w))
        };
        assert_eq!(read(), None, "the file as written");
        // Page 700 as it was before its last write: here, any other bytes.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[0x55; 16], 699 * 4096 + 2000).unwrap();
        let found = read().expect("a changed page passed");
        assert!(found.contains("page 700"), "{found}");
        // A file shorter than what was written.
        let len = f.metadata().unwrap().len();
        f.set_len(len - 4096).unwrap();
        assert!(read().is_some(), "a short file passed");
    }

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
            let h = s.spawn(|| read_ahead_of(reader, Some(io), &done, None));
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
