//! Compaction by a filtered copy: the kept rows of `chroma.sqlite3` are written into a new
//! file in the same folder, the new file is verified and fsynced, and it replaces the
//! original with one atomic rename.
//!
//! This is VACUUM's own method (create the schema in a fresh file, copy every table, copy
//! the virtual-table and view rows of the schema verbatim, copy the header values) with the
//! pruned WAL rows left out. The original file is never written: until the rename the dir is
//! untouched, after it the dir is exactly pruned. Each kept byte is written once, instead of
//! the rollback journal, VACUUM's temporary copy and the copy back of DELETE + VACUUM.
//!
//! The new file is named [`NEW_FILE`] while it is written. A failed or cancelled prune
//! removes it; after a SIGKILL the next prune (holding the lock) removes it, and `info`
//! reports it meanwhile.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use super::{bigio, prefetch};
use crate::chroma::{db, NEW_FILE};
use crate::error::{Error, Result};

/// Header values a copy must reproduce exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub page_size: i64,
    pub auto_vacuum: i64,
    pub encoding: String,
    pub user_version: i64,
    pub application_id: i64,
}

impl Header {
    /// Read from a connection on the original (the locked one: no new descriptor is opened).
    pub fn read(conn: &Connection, schema: &str) -> Result<Header> {
        let int = |p: &str| -> Result<i64> {
            Ok(conn.query_row(&format!("PRAGMA {schema}.{p}"), [], |r| r.get(0))?)
        };
        Ok(Header {
            page_size: int("page_size")?,
            auto_vacuum: int("auto_vacuum")?,
            encoding: conn.query_row("PRAGMA encoding", [], |r| r.get(0))?,
            user_version: int("user_version")?,
            application_id: int("application_id")?,
        })
    }
}

/// Why this file must be pruned in place (DELETE + VACUUM) rather than by a copy, if so.
/// `conn` is the locked connection on the original.
pub fn in_place_reason(conn: &Connection, sqlite_path: &Path) -> Result<Option<String>> {
    if std::fs::symlink_metadata(sqlite_path)?
        .file_type()
        .is_symlink()
    {
        return Ok(Some(
            "chroma.sqlite3 is a symbolic link, which a rename would replace".into(),
        ));
    }
    let meta = std::fs::metadata(sqlite_path)?;
    if !can_give_owner(&meta) {
        return Ok(Some(format!(
            "chroma.sqlite3 belongs to {}:{}, which a new file written by this user could not",
            meta.uid(),
            meta.gid()
        )));
    }
    if meta.nlink() > 1 {
        return Ok(Some(
            "chroma.sqlite3 has other hard links, which a new file would not keep".into(),
        ));
    }
    let parent = sqlite_path.parent().unwrap_or(Path::new("."));
    if std::fs::metadata(parent)?.dev() != meta.dev() {
        return Ok(Some(
            "chroma.sqlite3 is mounted on its own, so it cannot be replaced by a rename".into(),
        ));
    }
    let triggers: i64 = conn.query_row(
        "SELECT count(*) FROM main.sqlite_schema WHERE type = 'trigger'",
        [],
        |r| r.get(0),
    )?;
    if triggers > 0 {
        return Ok(Some(
            "the database has triggers, which only a real DELETE fires".into(),
        ));
    }
    let internal: Option<String> = conn
        .query_row(
            "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
             AND name LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'sqlite_sequence' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok();
    if let Some(name) = internal {
        return Ok(Some(format!(
            "the database has SQLite's internal table {name}, which a copy cannot recreate"
        )));
    }
    let has_queue: i64 = conn.query_row(
        "SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name = 'embeddings_queue' AND rootpage > 0",
        [],
        |r| r.get(0),
    )?;
    if has_queue != 1 {
        return Ok(Some("embeddings_queue is not an ordinary table".into()));
    }
    Ok(None)
}

/// Whether this process can give a new file the owner and group of `meta`: root can; others
/// only their own uid, and a group they are in.
fn can_give_owner(meta: &std::fs::Metadata) -> bool {
    // SAFETY: plain getters without arguments.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == 0 {
        return true;
    }
    if meta.uid() != euid {
        return false;
    }
    if meta.gid() == egid {
        return true;
    }
    let mut groups = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds `groups.len()` entries.
    let n = unsafe { libc::getgroups(groups.len() as i32, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&meta.gid())
}

/// Remove what an interrupted copy may have left. Call only while holding the lock on the
/// original: any other chroma-wal copying into this dir would hold it too.
pub fn remove_leftovers(persist_dir: &Path) {
    // With the new file go its own side files (WAL mode: a kill before they were tidied).
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = persist_dir.join(format!("{NEW_FILE}{suffix}"));
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&p);
        }
    }
    // A restore killed before its rename.
    let p = persist_dir.join(crate::chroma::RESTORE_FILE);
    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(&p);
    }
}

/// The new file while it is being written: an open descriptor, and the path SQLite opens.
pub struct NewFile {
    file: File,
    sqlite_path: PathBuf,
    /// Its name until it is renamed over the original.
    named: Option<PathBuf>,
    dir: PathBuf,
}

impl NewFile {
    /// Create an empty file in `dir` with the owner and mode of `like` (the original).
    ///
    /// It is named ([`NEW_FILE`]) from the start: SQLite resolves the links in a path it
    /// opens, so an unnamed `O_TMPFILE` file cannot be handed to it through /proc.
    pub fn create(dir: &Path, like: &std::fs::Metadata) -> Result<NewFile> {
        let mode = like.permissions().mode() & 0o7777;
        let p = dir.join(NEW_FILE);
        remove_leftovers(dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::failed(format!("cannot create {}: {e}", p.display())))?;
        let new = NewFile {
            sqlite_path: p.clone(),
            file,
            named: Some(p),
            dir: dir.to_path_buf(),
        };
        // Owner first (changing it may clear set-id bits), then the exact mode.
        if let Err(e) = std::os::unix::fs::fchown(&new.file, Some(like.uid()), Some(like.gid())) {
            let m = new.file.metadata()?;
            if m.uid() != like.uid() || m.gid() != like.gid() {
                return Err(Error::failed(format!(
                    "cannot give the new file the owner of chroma.sqlite3 ({}:{}): {e}",
                    like.uid(),
                    like.gid()
                )));
            }
        }
        new.file
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(new)
    }

    /// The path to open it with SQLite.
    pub fn sqlite_path(&self) -> &Path {
        &self.sqlite_path
    }

    /// The open file, for readers beside SQLite (the verification's read-ahead).
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    pub fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start flushing the new file to disk on a thread of its own, so the verification reads
    /// it meanwhile; [`Flush::wait`] before the swap.
    pub fn start_sync(&self) -> Result<Flush> {
        let f = self.file.try_clone()?;
        Ok(Flush(std::thread::spawn(move || f.sync_all())))
    }

    /// Give the new file the name `target`, atomically replacing what was there.
    pub fn rename_over(&mut self, target: &Path) -> Result<()> {
        let from = match self.named.take() {
            Some(p) => p,
            None => return Err(Error::failed("the new file was already renamed")),
        };
        if let Err(e) = std::fs::rename(&from, target) {
            let _ = std::fs::remove_file(&from);
            return Err(Error::failed(format!(
                "cannot rename the new file over {}: {e}",
                target.display()
            )));
        }
        Ok(())
    }

    /// Make the rename durable.
    pub fn sync_dir(&self) -> Result<()> {
        crate::backup::files::sync_dir(&self.dir)
            .map_err(|e| Error::failed(format!("fsync of {} failed: {e}", self.dir.display())))
    }
}

/// A flush of the new file under way ([`NewFile::start_sync`]).
pub struct Flush(std::thread::JoinHandle<std::io::Result<()>>);

impl Flush {
    /// Wait until the new file is on disk.
    pub fn wait(self) -> Result<()> {
        match self.0.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::failed(format!("fsync of the new file failed: {e}"))),
            Err(_) => Err(Error::failed("fsync of the new file failed")),
        }
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        // Not renamed over the original: it goes.
        if let Some(p) = self.named.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What the copy does with one topic's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRule {
    /// Rows with `seq_id` below it are prunable; `None`: none are.
    pub bound: Option<i64>,
    /// The prunable rows are left out (the topic is in the prune), or only counted.
    pub drop: bool,
}

/// How the copy decides each topic, asked once per topic, the first time one of its rows is
/// read: a plan's bounds, or a rule from the catalog when the copy itself counts the WAL.
pub type Rule = Box<dyn Fn(&str) -> TopicRule + Send>;

/// A rule that leaves out the rows below each listed topic's bound and keeps every other.
pub fn rule_of_bounds(bounds: HashMap<String, i64>) -> Rule {
    Box::new(move |topic| TopicRule {
        bound: bounds.get(topic).copied(),
        drop: true,
    })
}

/// One topic as the copy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCount {
    pub rule: TopicRule,
    pub seen: u64,
    /// Rows below the rule's bound, and those of them left out.
    pub below: u64,
    pub left_out: u64,
    pub min_seq_id: i64,
    pub max_seq_id: i64,
}

/// What the copy left out and kept, per topic.
#[derive(Debug, Default, Clone)]
pub struct CopyCounts {
    pub topics: HashMap<String, TopicCount>,
    /// The seq_ids the copy walked (`min`, `max` of the table), if it had rows.
    pub extent: Option<(i64, i64)>,
    /// The new file's WAL rows per topic and the lowest seq_id of each, read back from it
    /// range by range, each right after it was written (the verification, `verify.rs`, compares
    /// them with what the copy kept).
    pub read_back: HashMap<String, (u64, i64)>,
}

impl CopyCounts {
    pub fn deleted(&self) -> HashMap<String, u64> {
        self.topics
            .iter()
            .filter(|(_, v)| v.left_out > 0)
            .map(|(k, v)| (k.clone(), v.left_out))
            .collect()
    }
    pub fn kept(&self, topic: &str) -> u64 {
        self.topics
            .get(topic)
            .map(|v| v.seen - v.left_out)
            .unwrap_or(0)
    }
    pub fn kept_total(&self) -> u64 {
        self.topics.values().map(|v| v.seen - v.left_out).sum()
    }
    pub fn seen_total(&self) -> u64 {
        self.topics.values().map(|v| v.seen).sum()
    }
    pub fn left_out_total(&self) -> u64 {
        self.topics.values().map(|v| v.left_out).sum()
    }
}

/// Progress callbacks of [`Copier`].
pub trait CopyProgress {
    /// Rows read and rows left out so far, and the table's seq_id span (an estimate of its
    /// rows).
    fn rows(&mut self, seen: u64, left_out: u64, span: u64) -> Result<()>;
    /// Tables copied so far, of `total`.
    fn tables(&mut self, done: u64, total: u64) -> Result<()>;
}

/// The first column of every row of `sql`, as text.
fn strings(conn: &Connection, sql: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare(sql)?;
    let v = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// The ordinary tables of `conn`'s main database that are copied whole: all but
/// embeddings_queue and the virtual tables (no b-tree of their own).
pub fn other_tables(conn: &Connection) -> Result<Vec<String>> {
    strings(
        conn,
        "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
         AND coalesce(rootpage, 1) > 0 AND name <> 'embeddings_queue' ORDER BY rowid",
    )
}

/// Attach the original read-only, as `src`.
pub(super) fn attach_original(conn: &Connection, original: &Path) -> Result<()> {
    conn.execute(
        "ATTACH DATABASE ?1 AS src",
        [format!("{}?mode=ro", db::uri(original))],
    )?;
    Ok(())
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The connection writing the new file, with the original attached read-only as `src`.
pub struct Copier {
    conn: Connection,
    counts: Arc<Mutex<CopyCounts>>,
    page_size: u32,
}

impl Copier {
    /// Open the new file, give it the original's header values and attach the original.
    pub fn open(new: &NewFile, original: &Path, header: &Header) -> Result<Copier> {
        // Large reads of the original and large writes of the new file ([`bigio`]), which
        // keeps what is written for the verification; nothing an earlier copy wrote under
        // this name counts.
        drop(bigio::take_written(new.sqlite_path()));
        let conn = bigio::open(
            new.sqlite_path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Before anything is written: the values only an empty database accepts.
        conn.execute_batch(&format!(
            "PRAGMA main.page_size = {}; PRAGMA main.auto_vacuum = {}; PRAGMA encoding = '{}';\
             PRAGMA main.journal_mode = OFF; PRAGMA main.synchronous = OFF;\
             PRAGMA foreign_keys = OFF;\
             PRAGMA main.cache_size = -16384;",
            header.page_size,
            header.auto_vacuum,
            header.encoding.replace('\'', "")
        ))?;
        attach_original(&conn, original)?;
        // The original's pages straight from the page cache, through small mappings
        // ([`bigio`]): no copy into this thread, none into SQLite's cache.
        conn.execute_batch(&format!("PRAGMA src.mmap_size = {MMAP_SIZE};"))?;
        Ok(Copier {
            conn,
            counts: Arc::new(Mutex::new(CopyCounts::default())),
            page_size: u32::try_from(header.page_size).unwrap_or(0),
        })
    }

    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    /// Create the tables and indexes (the ordinary ones; virtual tables and views come last,
    /// verbatim), all in one transaction that [`Copier::finish`] commits.
    pub fn create_schema(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN")?;
        let sqls = |q: &str| strings(&self.conn, q);
        for s in sqls(
            "SELECT sql FROM src.sqlite_schema WHERE type = 'table' AND name <> 'sqlite_sequence' \
             AND coalesce(rootpage, 1) > 0 AND sql IS NOT NULL ORDER BY rowid",
        )? {
            self.conn.execute_batch(&s)?;
        }
        for s in sqls(
            "SELECT sql FROM src.sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid",
        )? {
            self.conn.execute_batch(&s)?;
        }
        Ok(())
    }

    /// Copy embeddings_queue, leaving out what `rule` says of each topic, in seq_id chunks;
    /// every topic's rows are counted on the way (what [`Copier::close`] hands back).
    /// `original`, a descriptor of the original file, is read ahead of the copy
    /// ([`prefetch`]); the caller keeps it open until its own connections to the file have
    /// closed (POSIX drops every lock a process holds on a file when any descriptor of it is
    /// closed).
    pub fn copy_queue(
        &self,
        rule: Rule,
        progress: &mut dyn CopyProgress,
        original: Option<&File>,
    ) -> Result<()> {
        let counts = Arc::clone(&self.counts);
        // Called once per row of the original. Anything unexpected (a non-text topic, a
        // seq_id that is not an integer) is kept.
        self.conn
            .create_scalar_function("cw_keep", 2, FunctionFlags::SQLITE_UTF8, move |ctx| {
                let Ok(topic) = ctx.get_raw(0).as_str() else {
                    return Ok(true);
                };
                let Ok(seq) = ctx.get_raw(1).as_i64() else {
                    return Ok(true);
                };
                let mut c = counts
                    .lock()
                    .map_err(|_| rusqlite::Error::UserFunctionError("poisoned".into()))?;
                if !c.topics.contains_key(topic) {
                    let first = TopicCount {
                        rule: rule(topic),
                        seen: 0,
                        below: 0,
                        left_out: 0,
                        min_seq_id: seq,
                        max_seq_id: seq,
                    };
                    c.topics.insert(topic.to_string(), first);
                }
                let Some(t) = c.topics.get_mut(topic) else {
                    return Ok(true);
                };
                t.seen += 1;
                t.min_seq_id = t.min_seq_id.min(seq);
                t.max_seq_id = t.max_seq_id.max(seq);
                let below = t.rule.bound.is_some_and(|b| seq < b);
                t.below += below as u64;
                let drop = below && t.rule.drop;
                t.left_out += drop as u64;
                Ok(!drop)
            })?;
        let extent =
            crate::chroma::ranged::extent_of(&self.conn, "src.embeddings_queue", "seq_id")?;
        if let Ok(mut c) = self.counts.lock() {
            c.extent = extent;
        }
        if let Some((lo, hi)) = extent {
            let span = (hi as i128 - lo as i128).max(1);
            let estimate = (span as u64).saturating_add(1);
            let chunk = (span / 200).clamp(10_000, 1_000_000) as i64;
            let mut st = self.conn.prepare(
                "INSERT INTO main.embeddings_queue SELECT * FROM src.embeddings_queue \
                 WHERE seq_id >= ?1 AND seq_id <= ?2 AND cw_keep(topic, seq_id)",
            )?;
            let mut next = self
                .conn
                .prepare("SELECT min(seq_id) FROM src.embeddings_queue WHERE seq_id > ?1")?;
            let mut back = self.conn.prepare(
                "SELECT topic, seq_id FROM main.embeddings_queue WHERE seq_id >= ?1 AND seq_id <= ?2",
            )?;
            let mut read: HashMap<Vec<u8>, (u64, i64)> = HashMap::new();
            // Another thread reads the table's pages a few ranges ahead ([`prefetch`]).
            let at = AtomicI64::new(lo);
            let done = AtomicBool::new(false);
            let root: Option<u32> = self
                .conn
                .query_row(
                    "SELECT rootpage FROM src.sqlite_schema \
                     WHERE type = 'table' AND name = 'embeddings_queue'",
                    [],
                    |r| r.get(0),
                )
                .ok();
            let lead = chunk.saturating_mul(READ_AHEAD_RANGES);
            std::thread::scope(|scope| {
                if let (Some(root), Some(f)) = (root, original) {
                    let (at, done, ps) = (&at, &done, self.page_size);
                    scope.spawn(move || prefetch::fetch_ahead(f, root, ps, at, lead, done));
                }
                // Tells the read-ahead to stop however the copy ends, a panic included: the
                // scope waits for it.
                let _stop = prefetch::StopOnDrop(&done);
                each_range(&mut next, (lo, hi), chunk, &mut |start, end| {
                    at.store(start, Ordering::Relaxed);
                    st.execute([start, end])?;
                    // Read back while its pages are still in memory: a second pass over
                    // the whole file, once written, read it from the disk again.
                    read_back(&mut back, (start, end), &mut read)?;
                    let (seen, left_out) = self.so_far();
                    progress.rows(seen, left_out, estimate)?;
                    Ok(true)
                })
            })?;
            if let Ok(mut c) = self.counts.lock() {
                c.read_back = read
                    .into_iter()
                    .map(|(t, v)| (String::from_utf8_lossy(&t).into_owned(), v))
                    .collect();
            }
        }
        Ok(())
    }

    fn so_far(&self) -> (u64, u64) {
        self.counts
            .lock()
            .map(|c| (c.seen_total(), c.left_out_total()))
            .unwrap_or((0, 0))
    }

    /// Copy every other table whole, then the schema rows of virtual tables and views and
    /// the header values, and commit.
    pub fn copy_rest(&self, header: &Header, progress: &mut dyn CopyProgress) -> Result<()> {
        let names = other_tables(&self.conn)?;
        let total = names.len() as u64;
        for (i, n) in names.iter().enumerate() {
            // `INSERT INTO t SELECT * FROM src.t` into an empty table of the same definition
            // is SQLite's transfer optimization: b-tree records copied as they are.
            self.conn.execute(
                &format!("INSERT INTO main.{0} SELECT * FROM src.{0}", ident(n)),
                [],
            )?;
            progress.tables(i as u64 + 1, total)?;
        }
        self.conn.execute_batch(
            "PRAGMA writable_schema = ON;\
             INSERT INTO main.sqlite_schema SELECT * FROM src.sqlite_schema \
               WHERE type = 'view' OR (type = 'table' AND rootpage = 0);\
             PRAGMA writable_schema = OFF;",
        )?;
        self.conn.execute_batch(&format!(
            "PRAGMA main.user_version = {}; PRAGMA main.application_id = {};",
            header.user_version, header.application_id
        ))?;
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// What the copy has counted so far.
    pub fn counts(&self) -> CopyCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Close the writing connection and hand back what was counted.
    pub fn close(self) -> Result<CopyCounts> {
        let counts = self.counts.lock().map(|c| c.clone()).unwrap_or_default();
        self.conn
            .close()
            .map_err(|(_, e)| Error::failed(format!("closing the new file: {e}")))?;
        Ok(counts)
    }
}

/// Count the new file's WAL rows with seq_ids in `start..=end`, per topic, with the lowest
/// seq_id of each (a topic that is not text counts as the empty one).
fn read_back(
    st: &mut rusqlite::Statement<'_>,
    (start, end): (i64, i64),
    per: &mut HashMap<Vec<u8>, (u64, i64)>,
) -> Result<()> {
    let mut rows = st.query([start, end])?;
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
    Ok(())
}

/// Walk `lo..=hi` in ranges of `chunk` seq_ids, calling `f(start, end)` on each until it
/// says stop; `next` (a `SELECT min(seq_id) ... WHERE seq_id > ?1`) finds the first row
/// after a range, so sparse seq_ids are skipped, not walked.
fn each_range(
    next: &mut rusqlite::Statement<'_>,
    (lo, hi): (i64, i64),
    chunk: i64,
    f: &mut dyn FnMut(i64, i64) -> Result<bool>,
) -> Result<()> {
    let mut start = lo;
    loop {
        let end = start.saturating_add(chunk - 1).min(hi);
        if !f(start, end)? || end >= hi {
            return Ok(());
        }
        match next.query_row([end], |r| r.get::<_, Option<i64>>(0))? {
            Some(n) => start = n,
            None => return Ok(()),
        }
    }
}

/// What the copy's connection sets the original's `mmap_size` to: any size turns on the
/// fetching of pages, which [`bigio`] serves from small mappings of its own, whatever the
/// size.
const MMAP_SIZE: i64 = 1 << 30;

/// How many ranges the pages are read ahead of the copy: at 20 GB, about 300 MB.
const READ_AHEAD_RANGES: i64 = 3;
