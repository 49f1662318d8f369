//! The pages of each b-tree of chroma.sqlite3, counted by reading the file itself (SQLite's
//! file format, section 1.6), without SQLite and without its lock: for a dir Chroma is
//! writing to. `dbstat` reads a b-tree in one statement, and on a cold cache one b-tree of
//! records (16 MB) took 500 ms, which a live writer waits for. This walk holds no lock, so a
//! writer waits for nothing; what it gets is an estimate, as a commit may move pages while it
//! reads (a page that no longer parses is counted and not followed).
//!
//! Overflow pages are counted from each cell's payload size, as SQLite lays them out, not
//! read. Each level of a b-tree is asked of the kernel at once (`WILLNEED`), then read in page
//! order, so the disk has many reads in flight.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::Result;

/// What the walk needs of the file.
struct Pages {
    file: File,
    page_size: u64,
    /// The usable bytes of a page (the page size less the reserved bytes at its end).
    usable: u64,
    /// Pages in the file.
    count: u64,
}

/// The bytes of each named b-tree (its pages, the page size each), by root page (`roots`:
/// name and root page number, as `sqlite_schema` lists them; page 1 is `sqlite_schema`
/// itself). `progress(done, total)` after each b-tree; `false` stops the walk (`None`).
pub fn count(
    path: &Path,
    roots: &[(String, u32)],
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Option<Vec<(String, u64)>>> {
    let file = File::open(path)?;
    let mut header = [0u8; 100];
    file.read_exact_at(&mut header, 0)?;
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let pages = Pages {
        usable: page_size.saturating_sub(u64::from(header[20])),
        count: file.metadata()?.len() / page_size.max(1),
        page_size,
        file,
    };
    let mut out = Vec::with_capacity(roots.len());
    for (i, (name, root)) in roots.iter().enumerate() {
        let bytes = pages.tree(*root).saturating_mul(pages.page_size);
        out.push((name.clone(), bytes));
        if !progress(i as u64 + 1, roots.len() as u64) {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

impl Pages {
    /// Pages of the b-tree rooted at `root`: its own and their overflow pages.
    fn tree(&self, root: u32) -> u64 {
        let mut seen: HashSet<u32> = HashSet::new();
        let mut level = vec![root];
        let mut total = 0u64;
        let mut buf = vec![0u8; self.page_size as usize];
        while !level.is_empty() {
            level.retain(|&p| p >= 1 && u64::from(p) <= self.count && seen.insert(p));
            level.sort_unstable();
            self.will_need(&level);
            let mut next = Vec::new();
            for &p in &level {
                total += 1;
                if self
                    .file
                    .read_exact_at(&mut buf, (u64::from(p) - 1) * self.page_size)
                    .is_err()
                {
                    continue;
                }
                total = total.saturating_add(self.page(&buf, p == 1, &mut next));
            }
            level = next;
        }
        total
    }

    /// Parse one b-tree page: push its children onto `next`, return its cells' overflow
    /// pages. A page that does not parse (a commit rewrote it meanwhile) gives nothing.
    fn page(&self, buf: &[u8], first: bool, next: &mut Vec<u32>) -> u64 {
        let h = if first { 100 } else { 0 };
        let Some(&kind) = buf.get(h) else {
            return 0;
        };
        let interior = matches!(kind, 2 | 5);
        if !matches!(kind, 2 | 5 | 10 | 13) {
            return 0;
        }
        let cells = usize::from(be16(buf, h + 3).unwrap_or(0));
        let header = if interior { 12 } else { 8 };
        if interior {
            if let Some(right) = be32(buf, h + 8) {
                next.push(right);
            }
        }
        let mut overflow = 0u64;
        for k in 0..cells {
            let Some(at) = be16(buf, h + header + 2 * k).map(usize::from) else {
                break;
            };
            let Some(cell) = buf.get(at..) else {
                continue;
            };
            let payload = match kind {
                5 => {
                    // Table interior: a child and a rowid, no payload.
                    if let Some(child) = be32(cell, 0) {
                        next.push(child);
                    }
                    continue;
                }
                2 => {
                    if let Some(child) = be32(cell, 0) {
                        next.push(child);
                    }
                    varint(cell.get(4..).unwrap_or_default()).map(|(v, _)| v)
                }
                _ => varint(cell).map(|(v, _)| v),
            };
            // A torn page's payload size can be anything: no cell spills past the file.
            let spill = payload.map_or(0, |p| self.overflow_pages(p, kind == 13));
            overflow = overflow.saturating_add(spill.min(self.count));
        }
        overflow
    }

    /// The overflow pages of a cell with `payload` bytes (SQLite's file format, 1.6: the
    /// local part and the rest in pages of `usable - 4` bytes).
    fn overflow_pages(&self, payload: u64, table_leaf: bool) -> u64 {
        let u = self.usable;
        let max_local = if table_leaf {
            u.saturating_sub(35)
        } else {
            ((u.saturating_sub(12)) * 64 / 255).saturating_sub(23)
        };
        if payload <= max_local || u <= 4 {
            return 0;
        }
        let min_local = ((u.saturating_sub(12)) * 32 / 255).saturating_sub(23);
        let k = min_local + (payload - min_local) % (u - 4);
        let local = if k <= max_local { k } else { min_local };
        (payload - local).div_ceil(u - 4)
    }

    /// Ask the kernel for these pages without waiting (a hint: a failure costs only speed).
    fn will_need(&self, pages: &[u32]) {
        use std::os::fd::AsRawFd;
        for &p in pages {
            let at = (u64::from(p) - 1) * self.page_size;
            let (Ok(at), Ok(len)) = (
                libc::off_t::try_from(at),
                libc::off_t::try_from(self.page_size),
            ) else {
                continue;
            };
            // SAFETY: a plain system call on a descriptor `self.file` owns; it reads no
            // memory of ours.
            unsafe {
                libc::posix_fadvise(self.file.as_raw_fd(), at, len, libc::POSIX_FADV_WILLNEED);
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// SQLite's varint: up to nine bytes, big-endian, seven bits each but the ninth's eight.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn dbstat(conn: &Connection) -> Vec<(String, u64)> {
        let mut st = conn
            .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY name")
            .unwrap();
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        v
    }

    fn roots(conn: &Connection) -> Vec<(String, u32)> {
        let mut st = conn
            .prepare(
                "SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0 \
                 UNION SELECT 'sqlite_schema', 1",
            )
            .unwrap();
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        v
    }

    fn walked(path: &Path, conn: &Connection) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = count(path, &roots(conn), &mut |_, _| true)
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|(_, b)| *b > 0)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_walk_counts_what_dbstat_counts_on_every_fixture() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for e in std::fs::read_dir(&fixtures).unwrap() {
            let db = e.unwrap().path().join("chroma.sqlite3");
            // In WAL mode the file lags the -wal file, and readers block no writer: the
            // walk is for rollback-journal files.
            if !db.exists() || crate::chroma::db::is_wal_mode(&db) {
                continue;
            }
            let conn = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
            assert_eq!(walked(&db, &conn), dbstat(&conn), "{}", db.display());
            checked += 1;
        }
        assert!(checked >= 10, "{checked} fixtures");
    }

    #[test]
    fn overflow_pages_are_counted_as_sqlite_lays_them_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.sqlite3");
        let conn = Connection::open(&p).unwrap();
        // Small pages, so rows of every size spill into overflow chains, in the table and
        // in the index.
        conn.execute_batch(
            "PRAGMA page_size = 1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT);\
             CREATE INDEX t_s ON t(s);\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)\
             INSERT INTO t SELECT i, zeroblob(i * 37), printf('%.*c', i * 3, 'x') FROM n;",
        )
        .unwrap();
        drop(conn);
        let conn = Connection::open(&p).unwrap();
        assert_eq!(walked(&p, &conn), dbstat(&conn));
    }

    #[test]
    fn pages_a_commit_tore_are_counted_not_followed_and_nothing_panics() {
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_5_9/chroma.sqlite3");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("chroma.sqlite3");
        std::fs::copy(&src, &p).unwrap();
        let conn =
            Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let whole = walked(&p, &conn);
        let roots = roots(&conn);
        drop(conn);
        // Every page but the first overwritten with noise, as a writer mid-commit could leave
        // them to a reader that holds no lock.
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let mut x: u32 = 12345;
        let noise: Vec<u8> = (0..len - 4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        f.write_all_at(&noise, 4096).unwrap();
        let torn = count(&p, &roots, &mut |_, _| true).unwrap().unwrap();
        let pages = len / 4096;
        assert_eq!(torn.len(), roots.len());
        // Each root is counted (in bytes now), the noise followed no further than the file.
        assert!(
            torn.iter()
                .all(|(_, b)| (4096..=pages * pages * 4096).contains(b)),
            "{torn:?}"
        );
        assert!(!whole.is_empty());
    }

    #[test]
    fn varints_of_every_length() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }
}
