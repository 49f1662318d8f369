//! The WAL's pages read ahead of the copy, by a thread that knows where they are.
//!
//! The copy reads `embeddings_queue` in seq_id order on one thread that alternates reading a
//! page of the original and writing one of the new file; cold, it would wait on every read.
//! Before this, a second SQLite connection ran the same query a few ranges ahead. It kept the
//! copy fed, but it decoded every page a second time, and both connections took SQLite's
//! page-cache mutex (one for the whole process in this build) on every page: 8 % of the
//! copy's time went to waiting on that lock (BENCHMARKS.md, "4. 20 GB", run 5).
//!
//! Here the table's interior pages alone are parsed (one in a few hundred), the leaf pages
//! are listed from them in key order, and runs of contiguous leaf pages are read with plain
//! `pread`s, at most a given number of seq_ids ahead of the copy, which then finds them in
//! the page cache. It is a hint and nothing else: the copy reads every row through SQLite,
//! so a page named wrongly (a file this walk cannot parse, a page a `-wal` file supersedes)
//! costs a read, never a row. Anything unexpected ends the walk.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A table b-tree's interior page, and the leaf page, as SQLite's file format tags them.
const INTERIOR: u8 = 0x05;
const LEAF: u8 = 0x0d;
/// Deeper than any real table b-tree (a 4 KiB page holds hundreds of children): a loop.
const MAX_DEPTH: usize = 32;
/// The most pages one read takes (1 MiB of 4 KiB pages).
const MAX_RUN: u64 = 256;

/// A leaf page of the table, and the key every one of its rows is above (`None`: the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leaf {
    pub page: u32,
    pub after: Option<i64>,
}

/// An interior page being walked: its children in key order (each with the largest key it
/// may hold; the right-most one inherits the page's own), and the next one to visit.
struct Interior {
    cells: Vec<(u32, i64)>,
    right: u32,
    upper: Option<i64>,
    next: usize,
}

impl Interior {
    fn child(&self, i: usize) -> Option<(u32, Option<i64>)> {
        match self.cells.get(i) {
            Some(&(page, key)) => Some((page, Some(key))),
            None if i == self.cells.len() => Some((self.right, self.upper)),
            None => None,
        }
    }
}

/// The leaf pages of the table b-tree rooted at `root`, in key order, read from `file` by
/// its interior pages alone.
pub(super) struct Leaves<'a> {
    file: &'a File,
    page_size: usize,
    pages: u64,
    /// Interior levels above the leaves (0: the root is the only leaf).
    depth: usize,
    stack: Vec<Interior>,
    /// The largest key of the leaf given last.
    prev: Option<i64>,
    /// The root, while a tree of one page has not given it.
    single: Option<u32>,
    /// Pages read so far: no more than the file holds, whatever its pointers say.
    reads: u64,
    buf: Vec<u8>,
}

impl<'a> Leaves<'a> {
    /// `None` when the root is neither an interior nor a leaf page of a table, or the
    /// leftmost path does not end in a leaf.
    pub fn open(file: &'a File, root: u32, page_size: u32) -> Option<Leaves<'a>> {
        let page_size = page_size as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return None;
        }
        let pages = file.metadata().ok()?.len() / page_size as u64;
        let mut w = Leaves {
            file,
            page_size,
            pages,
            depth: 0,
            stack: Vec::new(),
            prev: None,
            single: None,
            reads: 0,
            buf: vec![0; page_size],
        };
        // The depth, down the leftmost path (every leaf of a b-tree is at the same depth);
        // the root, when it is an interior page, is where the walk starts.
        let mut page = root;
        let mut top = None;
        while w.read(page)? != LEAF {
            let node = w.interior(page, None)?;
            w.depth += 1;
            if w.depth > MAX_DEPTH {
                return None;
            }
            page = node.child(0)?.0;
            top.get_or_insert(node);
        }
        match top {
            Some(node) => w.stack.push(node),
            None => w.single = Some(root),
        }
        Some(w)
    }

    /// Read `page` into the buffer; its type.
    fn read(&mut self, page: u32) -> Option<u8> {
        if page == 0 || u64::from(page) > self.pages || self.reads >= self.pages {
            return None;
        }
        self.reads += 1;
        let at = (u64::from(page) - 1) * self.page_size as u64;
        self.file.read_exact_at(&mut self.buf, at).ok()?;
        let kind = self.buf[header_at(page)];
        matches!(kind, INTERIOR | LEAF).then_some(kind)
    }

    /// The interior page in the buffer (just read from `page`), whose keys are at most
    /// `upper`.
    fn interior(&self, page: u32, upper: Option<i64>) -> Option<Interior> {
        let b = &self.buf;
        let h = header_at(page);
        if b.get(h) != Some(&INTERIOR) {
            return None;
        }
        let n = u16::from_be_bytes([*b.get(h + 3)?, *b.get(h + 4)?]) as usize;
        let right = u32::from_be_bytes(b.get(h + 8..h + 12)?.try_into().ok()?);
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            let p = h + 12 + 2 * i;
            let off = u16::from_be_bytes([*b.get(p)?, *b.get(p + 1)?]) as usize;
            let child = u32::from_be_bytes(b.get(off..off + 4)?.try_into().ok()?);
            let (key, _) = varint(b.get(off + 4..)?)?;
            if child == 0 || u64::from(child) > self.pages {
                return None;
            }
            cells.push((child, key));
        }
        if right == 0 || u64::from(right) > self.pages {
            return None;
        }
        Some(Interior {
            cells,
            right,
            upper,
            next: 0,
        })
    }
}

/// Where a page's b-tree header starts: after the 100-byte file header on page 1.
fn header_at(page: u32) -> usize {
    if page == 1 {
        100
    } else {
        0
    }
}

impl Iterator for Leaves<'_> {
    type Item = Leaf;

    fn next(&mut self) -> Option<Leaf> {
        if let Some(page) = self.single.take() {
            return Some(Leaf { page, after: None });
        }
        loop {
            let top = self.stack.last_mut()?;
            let Some((child, upper)) = top.child(top.next) else {
                self.stack.pop();
                continue;
            };
            top.next += 1;
            // Keys rise strictly from child to child: one that does not is a page seen
            // again (a loop in a damaged file) or no b-tree at all.
            if let (Some(p), Some(u)) = (self.prev, upper) {
                if u <= p {
                    self.stack.clear();
                    return None;
                }
            }
            if self.stack.len() == self.depth {
                let after = self.prev;
                self.prev = upper;
                return Some(Leaf { page: child, after });
            }
            // An interior page below: a page of another kind ends the walk.
            let node = match self.read(child) {
                Some(INTERIOR) => self.interior(child, upper),
                _ => None,
            };
            match node {
                Some(n) => self.stack.push(n),
                None => {
                    self.stack.clear();
                    return None;
                }
            }
        }
    }
}

/// A SQLite varint (1–9 bytes, big-endian, 7 bits a byte, all 8 of the ninth), and its length.
fn varint(b: &[u8]) -> Option<(i64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some((((v << 8) | u64::from(byte)) as i64, 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v as i64, i + 1));
        }
    }
    None
}

/// Read the leaf pages of the table at `root` in `file`, in key order and in runs of
/// contiguous pages, while their keys are at most `lead` above `at` (the copy's position:
/// every key below it is copied), until `done`.
///
/// The pages are read, not only named to the kernel (`posix_fadvise(WILLNEED)`): with a
/// 6 GiB memory cgroup and a 20 GB file the copy was slower by 13–28 % when the kernel alone
/// had fetched its pages (BENCHMARKS.md, "4. 20 GB", run 5), as it was when the pages it had
/// passed were dropped from the page cache.
pub(super) fn fetch_ahead(
    file: &File,
    root: u32,
    page_size: u32,
    at: &AtomicI64,
    lead: i64,
    done: &AtomicBool,
) {
    let Some(leaves) = Leaves::open(file, root, page_size) else {
        return;
    };
    let size = u64::from(page_size);
    let mut buf = vec![0u8; (MAX_RUN * size) as usize];
    // A run: its first page and its length in pages.
    let mut read = |(first, pages): (u32, u64)| {
        let n = (pages * size) as usize;
        file.read_exact_at(&mut buf[..n], (u64::from(first) - 1) * size)
            .is_ok()
    };
    let mut run: Option<(u32, u64)> = None;
    for leaf in leaves {
        if let Some(after) = leaf.after {
            while after.saturating_sub(at.load(Ordering::Relaxed)) > lead {
                if let Some(r) = run.take() {
                    if !read(r) {
                        return;
                    }
                }
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        if done.load(Ordering::Relaxed) {
            return;
        }
        run = match run {
            Some((first, n)) if u64::from(first) + n == u64::from(leaf.page) && n < MAX_RUN => {
                Some((first, n + 1))
            }
            other => {
                if let Some(r) = other {
                    if !read(r) {
                        return;
                    }
                }
                Some((leaf.page, 1))
            }
        };
    }
    if let Some(r) = run {
        read(r);
    }
}

/// Sets its flag when dropped: the read-ahead's stop, however the copy beside it ends.
pub(super) struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A table of `rows` rows of `bytes` each, some deleted and some written again out of
    /// order, so its leaves are not in file order: the file, its root and its page size.
    fn table(rows: i64, bytes: usize) -> (tempfile::TempDir, File, u32, u32) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096; CREATE TABLE t (seq_id INTEGER PRIMARY KEY, v BLOB);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 1..=rows {
            tx.execute(
                "INSERT INTO t VALUES (?1, zeroblob(?2))",
                rusqlite::params![i * 3, bytes as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // Rows between the others, written after them: new leaves at the end of the file.
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute_batch("DELETE FROM t WHERE seq_id % 7 = 0;")
            .unwrap();
        for i in (1..rows).step_by(5) {
            tx.execute(
                "INSERT INTO t VALUES (?1, zeroblob(?2))",
                rusqlite::params![i * 3 + 1, bytes as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let root: u32 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        let file = File::open(&path).unwrap();
        (dir, file, root, 4096)
    }

    /// The table's leaves in key order, as SQLite's own dbstat lists them.
    fn dbstat_leaves(dir: &tempfile::TempDir) -> Vec<u32> {
        let conn = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        let mut st = conn
            .prepare(
                "SELECT pageno FROM dbstat WHERE name = 't' AND pagetype = 'leaf' ORDER BY path",
            )
            .unwrap();
        let v = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<Vec<u32>, _>>()
            .unwrap();
        v
    }

    #[test]
    fn the_leaves_are_sqlites_own_in_key_order() {
        for (rows, bytes) in [(30_000, 600), (200, 100), (3, 10)] {
            let (dir, file, root, ps) = table(rows, bytes);
            let got: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
            let pages: Vec<u32> = got.iter().map(|l| l.page).collect();
            let want = dbstat_leaves(&dir);
            assert!(!want.is_empty());
            assert_eq!(pages, want, "{rows} rows");
            if rows == 30_000 {
                // Not in file order: the walk follows the keys, not the file.
                assert!(pages.windows(2).any(|w| w[1] < w[0]));
            }
            // The bounds rise, and the first leaf has none.
            assert_eq!(got[0].after, None);
            let afters: Vec<i64> = got.iter().filter_map(|l| l.after).collect();
            assert_eq!(afters.len(), got.len() - 1);
            assert!(afters.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn each_leafs_rows_are_above_its_bound() {
        let (dir, file, root, ps) = table(5_000, 900);
        let leaves: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
        // Read each leaf's keys from the page itself: a table leaf's cells are a payload
        // size varint, then the key.
        let mut last_max = None;
        for l in &leaves {
            let mut b = vec![0u8; 4096];
            file.read_exact_at(&mut b, (u64::from(l.page) - 1) * 4096)
                .unwrap();
            assert_eq!(b[0], LEAF);
            let n = u16::from_be_bytes([b[3], b[4]]) as usize;
            let keys: Vec<i64> = (0..n)
                .map(|i| {
                    let off = u16::from_be_bytes([b[8 + 2 * i], b[9 + 2 * i]]) as usize;
                    let (_, len) = varint(&b[off..]).unwrap();
                    varint(&b[off + len..]).unwrap().0
                })
                .collect();
            if let Some(after) = l.after {
                assert!(keys.iter().all(|&k| k > after), "page {}", l.page);
            }
            // Keys rise from leaf to leaf.
            if let (Some(m), Some(&first)) = (last_max, keys.first()) {
                assert!(first > m);
            }
            last_max = keys.last().copied().or(last_max);
        }
        drop(dir);
    }

    #[test]
    fn a_damaged_interior_page_ends_the_walk_without_a_panic() {
        let (dir, file, root, ps) = table(30_000, 600);
        let all: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
        // Overwrite an interior page below the root with garbage.
        let conn = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        let inner: u32 = conn
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 't' AND pagetype = 'internal' \
                 AND pageno <> ?1 ORDER BY path LIMIT 1 OFFSET 1",
                [root],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        let rw = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("t.sqlite3"))
            .unwrap();
        rw.write_all_at(&[0xff; 4096], (u64::from(inner) - 1) * 4096)
            .unwrap();
        let some: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
        assert!(!some.is_empty() && some.len() < all.len());
        assert_eq!(some[..], all[..some.len()]);
        // A root that is not a b-tree page, or out of the file: no walk at all.
        rw.write_all_at(&[0u8; 4096], (u64::from(root) - 1) * 4096)
            .unwrap();
        assert!(Leaves::open(&file, root, ps).is_none());
        assert!(Leaves::open(&file, 1 << 30, ps).is_none());
        assert!(Leaves::open(&file, root, 1000).is_none());
    }

    #[test]
    fn a_page_that_points_back_to_the_root_ends_the_walk() {
        let (dir, file, root, ps) = table(30_000, 600);
        let all: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
        // The root's second child pointer names the root itself: a loop.
        let off = (u64::from(root) - 1) * 4096;
        let mut page = vec![0u8; 4096];
        file.read_exact_at(&mut page, off).unwrap();
        assert_eq!(page[0], INTERIOR, "the table is deeper than one level");
        let cell = u16::from_be_bytes([page[14], page[15]]) as usize;
        let rw = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("t.sqlite3"))
            .unwrap();
        rw.write_all_at(&root.to_be_bytes(), off + cell as u64)
            .unwrap();
        let some: Vec<Leaf> = Leaves::open(&file, root, ps).unwrap().collect();
        assert!(!some.is_empty() && some.len() < all.len(), "{}", some.len());
        assert_eq!(some[..], all[..some.len()]);
    }

    #[test]
    fn the_fetch_waits_for_the_copy_and_stops_when_told() {
        let (_dir, file, root, ps) = table(30_000, 600);
        let at = AtomicI64::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let h = s.spawn(|| fetch_ahead(&file, root, ps, &at, 1_000, &done));
            std::thread::sleep(std::time::Duration::from_millis(300));
            // The copy is at 0: the fetch waits past key 1,000 of 90,000.
            assert!(!h.is_finished(), "the fetch did not wait for the copy");
            at.store(i64::MAX / 2, Ordering::Relaxed);
            let t0 = std::time::Instant::now();
            while !h.is_finished() && t0.elapsed() < std::time::Duration::from_secs(20) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(h.is_finished(), "the fetch did not run to the end");
            // And one waiting for a copy that never comes stops at `done`.
            at.store(0, Ordering::Relaxed);
            let h = s.spawn(|| fetch_ahead(&file, root, ps, &at, 1_000, &done));
            std::thread::sleep(std::time::Duration::from_millis(100));
            done.store(true, Ordering::Relaxed);
            let t0 = std::time::Instant::now();
            while !h.is_finished() && t0.elapsed() < std::time::Duration::from_secs(5) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(h.is_finished(), "the fetch did not stop when told");
        });
    }

    #[test]
    fn varints_read_as_sqlite_writes_them() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((-1, 9)));
        assert_eq!(varint(&[0x81]), None);
    }
}
