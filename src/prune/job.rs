//! Running a plan: preflight → backup → delete → compact → verify, each step timed and
//! reporting progress through a callback. Cancellable at any point; a cancelled or failed run
//! leaves the dir untouched or exactly pruned, and says which.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::backup::Backup;
use rusqlite::{Connection, InterruptHandle, OpenFlags};

use super::plan::Plan;
use super::preflight;
use crate::chroma::{db, wal, Sizes, Snapshot, TopicOwner};
use crate::error::{Error, Result};

/// The steps of a prune, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Preflight,
    Backup,
    Delete,
    Compact,
    Verify,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Preflight,
        Step::Backup,
        Step::Delete,
        Step::Compact,
        Step::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Backup => "backup",
            Step::Delete => "delete",
            Step::Compact => "compact",
            Step::Verify => "verify",
        }
    }
}

/// What a step's numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Checks,
    Bytes,
    Rows,
}

/// Progress of a job, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        step: Step,
        total: Option<u64>,
        unit: Unit,
    },
    Progress {
        step: Step,
        done: u64,
        total: Option<u64>,
    },
    Finished {
        step: Step,
        seconds: f64,
        detail: Option<String>,
    },
    Skipped {
        step: Step,
        reason: String,
    },
    Failed {
        step: Step,
        message: String,
    },
}

/// Where the backup goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupTarget {
    /// `<parent of persist dir>/chroma-wal-backups/`.
    Default,
    /// A folder the user chose.
    Dir(PathBuf),
    /// `--no-backup`.
    Off,
}

impl BackupTarget {
    /// The folder a backup of `persist_dir` goes to, `None` when off.
    pub fn folder(&self, persist_dir: &Path) -> Option<PathBuf> {
        match self {
            BackupTarget::Off => None,
            BackupTarget::Dir(d) => Some(d.clone()),
            BackupTarget::Default => {
                let abs = std::fs::canonicalize(persist_dir)
                    .unwrap_or_else(|_| persist_dir.to_path_buf());
                let parent = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
                Some(parent.join("chroma-wal-backups"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOptions {
    pub backup: BackupTarget,
    pub vacuum: bool,
}

/// How the dir was left when a job stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Nothing was changed.
    Untouched,
    /// The delete committed; the file was not compacted (space is free inside the file).
    PrunedNotCompacted,
    /// Everything done.
    Done,
}

impl DirState {
    pub fn sentence(self) -> &'static str {
        match self {
            DirState::Untouched => "the persist dir is untouched",
            DirState::PrunedNotCompacted => {
                "the WAL is exactly pruned but the file was not compacted; run again to compact"
            }
            DirState::Done => "the prune completed",
        }
    }
}

/// Seconds spent per step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub step: Step,
    pub seconds: f64,
    pub skipped: bool,
}

/// Rows deleted from one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    pub topic: String,
    pub collection: Option<(String, String)>,
    pub bound: Option<i64>,
    pub rows_deleted: u64,
}

/// What a finished prune did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub persist_dir: PathBuf,
    pub rows_deleted: u64,
    pub topics: Vec<TopicResult>,
    pub sqlite_bytes_before: u64,
    pub sqlite_bytes_after: u64,
    pub dir_bytes_before: u64,
    pub dir_bytes_after: u64,
    pub backup: Option<PathBuf>,
    pub steps: Vec<StepTime>,
    pub notes: Vec<String>,
}

impl Report {
    /// `preflight 0.01 s, backup skipped, ...`: the seconds per step, for both front ends.
    pub fn steps_summary(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                if s.skipped {
                    format!("{} skipped", s.step.name())
                } else {
                    format!("{} {}", s.step.name(), crate::units::seconds(s.seconds))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A job that stopped early: the error, and the state the dir is in.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub error: Error,
    pub state: DirState,
    pub backup: Option<PathBuf>,
    pub steps: Vec<StepTime>,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.state.sentence())
    }
}

/// Cancels a running job from another thread (a key press, Ctrl-C).
#[derive(Clone, Default)]
pub struct Canceller {
    flag: Arc<AtomicBool>,
    handle: Arc<Mutex<Option<InterruptHandle>>>,
}

impl Canceller {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(h) = self.handle.lock() {
            if let Some(h) = h.as_ref() {
                h.interrupt();
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn attach(&self, conn: &Connection) {
        if let Ok(mut h) = self.handle.lock() {
            *h = Some(conn.get_interrupt_handle());
        }
    }

    fn detach(&self) {
        if let Ok(mut h) = self.handle.lock() {
            *h = None;
        }
    }
}

/// Progress messages are throttled to about ten a second.
struct Throttle {
    last: Instant,
}

impl Throttle {
    fn new() -> Self {
        Throttle {
            last: Instant::now() - Duration::from_secs(1),
        }
    }
    fn ready(&mut self) -> bool {
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }
}

struct Ctx<'a> {
    events: &'a mut dyn FnMut(Event),
    cancel: &'a Canceller,
    steps: Vec<StepTime>,
    state: DirState,
    backup: Option<PathBuf>,
}

impl Ctx<'_> {
    fn fail(&mut self, step: Step, error: Error) -> JobError {
        (self.events)(Event::Failed {
            step,
            message: error.to_string(),
        });
        let error = match error {
            Error::Interrupted(m) => Error::Interrupted(format!("{m}; {}", self.state.sentence())),
            Error::Refused(m) => Error::Refused(m),
            other => other
                .context(format!("{} failed", step.name()))
                .append(self.state.sentence()),
        };
        JobError {
            error,
            state: self.state,
            backup: self.backup.clone(),
            steps: self.steps.clone(),
        }
    }

    fn check_cancel(&self, step: Step) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Interrupted(format!(
                "cancelled during {}",
                step.name()
            )))
        } else {
            Ok(())
        }
    }

    fn timed<T>(
        &mut self,
        step: Step,
        total: Option<u64>,
        unit: Unit,
        f: impl FnOnce(&mut Self) -> Result<(T, Option<String>)>,
    ) -> std::result::Result<T, JobError> {
        (self.events)(Event::Started { step, total, unit });
        let t0 = Instant::now();
        let r = self.check_cancel(step).and_then(|_| f(self));
        let seconds = t0.elapsed().as_secs_f64();
        match r {
            Ok((v, detail)) => {
                self.steps.push(StepTime {
                    step,
                    seconds,
                    skipped: false,
                });
                (self.events)(Event::Finished {
                    step,
                    seconds,
                    detail,
                });
                Ok(v)
            }
            Err(e) => {
                self.steps.push(StepTime {
                    step,
                    seconds,
                    skipped: false,
                });
                Err(self.fail(step, e))
            }
        }
    }

    fn skip(&mut self, step: Step, reason: &str) {
        self.steps.push(StepTime {
            step,
            seconds: 0.0,
            skipped: true,
        });
        (self.events)(Event::Skipped {
            step,
            reason: reason.into(),
        });
    }
}

trait Append {
    fn append(self, s: &str) -> Self;
}

impl Append for Error {
    fn append(self, s: &str) -> Self {
        match self {
            Error::Failed(m) => Error::Failed(format!("{m}; {s}")),
            other => other,
        }
    }
}

/// Run `plan` on its persist dir.
pub fn run(
    persist_dir: &Path,
    plan: &Plan,
    opts: &JobOptions,
    cancel: &Canceller,
    events: &mut dyn FnMut(Event),
) -> std::result::Result<Report, JobError> {
    let mut ctx = Ctx {
        events,
        cancel,
        steps: Vec::new(),
        state: DirState::Untouched,
        backup: None,
    };
    let before = Sizes::read(persist_dir);
    let backup_folder = opts.backup.folder(persist_dir);

    // 1. Preflight.
    let snap = ctx.timed(Step::Preflight, Some(4), Unit::Checks, |c| {
        let snap = Snapshot::open(persist_dir)?;
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 1,
            total: Some(4),
        });
        if let Some(b) = &backup_folder {
            check_backup_folder(persist_dir, b)?;
        }
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 2,
            total: Some(4),
        });
        let space = preflight::space(
            persist_dir,
            snap.sizes.sqlite,
            plan.bytes(),
            backup_folder.as_deref(),
            opts.vacuum,
        );
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 3,
            total: Some(4),
        });
        preflight::check(&snap, &space)?;
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 4,
            total: Some(4),
        });
        Ok((snap, Some(space.summary())))
    })?;

    // Take the lock. Without a backup: EXCLUSIVE, no other connection reads or writes until
    // the end. With a backup: RESERVED, so SQLite's backup API can read the file (it gets
    // SQLITE_BUSY from a connection holding EXCLUSIVE) while no one else can write; the
    // commit then takes EXCLUSIVE, and VACUUM holds EXCLUSIVE while it writes.
    let exclusive = backup_folder.is_none();
    let conn =
        open_locked(&snap.sqlite_path, exclusive).map_err(|e| ctx.fail(Step::Preflight, e))?;
    cancel.attach(&conn);
    let result = run_locked(
        &mut ctx,
        &conn,
        &snap,
        plan,
        opts,
        backup_folder.as_deref(),
        &before,
    );
    cancel.detach();
    let _ = conn.execute_batch("ROLLBACK");
    drop(conn);
    result
}

fn run_locked(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    snap: &Snapshot,
    plan: &Plan,
    opts: &JobOptions,
    backup_folder: Option<&Path>,
    before: &Sizes,
) -> std::result::Result<Report, JobError> {
    // Re-read the catalog under the lock: bounds can only have grown since the plan was made,
    // so each topic is pruned with the smaller of the planned and the current bound.
    let fresh =
        Snapshot::read_locked(&snap.persist_dir, conn).map_err(|e| ctx.fail(Step::Preflight, e))?;
    let bounds = effective_bounds(plan, &fresh);

    // 2. Backup.
    match backup_folder {
        Some(folder) => {
            let pages: u64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .unwrap_or(0);
            let page_size = snap.schema.page_size.max(512) as u64;
            let path = ctx.timed(Step::Backup, Some(pages * page_size), Unit::Bytes, |c| {
                let p = backup(c, &snap.sqlite_path, folder, pages, page_size)?;
                Ok((p.clone(), Some(p.display().to_string())))
            })?;
            ctx.backup = Some(path);
        }
        None => ctx.skip(Step::Backup, "--no-backup"),
    }

    // 3. Delete, in the transaction opened by the lock.
    let expected: u64 = bounds.iter().map(|b| b.expected).sum();
    let deleted = ctx.timed(Step::Delete, Some(expected), Unit::Rows, |c| {
        let d = delete(c, conn, &bounds)?;
        c.check_cancel(Step::Delete)?;
        conn.execute_batch("COMMIT")?;
        c.state = DirState::PrunedNotCompacted;
        Ok((d, None))
    })?;

    // 4. Compact.
    if opts.vacuum {
        ctx.timed(Step::Compact, None, Unit::Bytes, |c| {
            c.check_cancel(Step::Compact)?;
            conn.execute_batch("VACUUM")
                .map_err(|e| interrupted_or(e, "compaction cancelled"))?;
            Ok(((), None))
        })?;
    } else {
        ctx.skip(Step::Compact, "--no-vacuum");
    }
    let compacted = opts.vacuum;
    ctx.state = if compacted {
        DirState::Done
    } else {
        DirState::PrunedNotCompacted
    };

    // 5. Verify.
    ctx.timed(Step::Verify, Some(2), Unit::Checks, |c| {
        integrity(conn).map_err(|e| e.context("after the prune"))?;
        (c.events)(Event::Progress {
            step: Step::Verify,
            done: 1,
            total: Some(2),
        });
        let after = wal::scan_with(conn, &fresh, &mut |_, _| true)?;
        for b in &bounds {
            let Some(t) = after.topic(&b.topic) else {
                continue;
            };
            if b.bound.is_some_and(|m| t.min_seq_id < m) {
                return Err(Error::failed(format!(
                    "topic {} still has rows below its bound after the delete",
                    b.topic
                )));
            }
            let removed = deleted.get(&b.topic).copied().unwrap_or(0);
            if t.rows + removed < b.wal_rows {
                return Err(Error::failed(format!(
                    "topic {} has {} rows, fewer than the {} kept rows expected",
                    b.topic,
                    t.rows,
                    b.wal_rows - removed
                )));
            }
        }
        (c.events)(Event::Progress {
            step: Step::Verify,
            done: 2,
            total: Some(2),
        });
        Ok(((), None))
    })?;

    let after = Sizes::read(&snap.persist_dir);
    let topics: Vec<TopicResult> = bounds
        .iter()
        .map(|b| TopicResult {
            topic: b.topic.clone(),
            collection: b.collection.clone(),
            bound: b.bound,
            rows_deleted: deleted.get(&b.topic).copied().unwrap_or(0),
        })
        .collect();
    let mut notes = Vec::new();
    for b in &bounds {
        if let Some(n) = &b.note {
            notes.push(format!("{}: {n}", b.topic));
        }
    }
    Ok(Report {
        persist_dir: snap.persist_dir.clone(),
        rows_deleted: topics.iter().map(|t| t.rows_deleted).sum(),
        topics,
        sqlite_bytes_before: before.sqlite,
        sqlite_bytes_after: after.sqlite,
        dir_bytes_before: before.dir,
        dir_bytes_after: after.dir,
        backup: ctx.backup.clone(),
        steps: ctx.steps.clone(),
        notes,
    })
}

/// A topic's bound as used at delete time.
#[derive(Debug, Clone)]
struct TopicBound {
    topic: String,
    collection: Option<(String, String)>,
    bound: Option<i64>,
    expected: u64,
    wal_rows: u64,
    note: Option<String>,
}

fn effective_bounds(plan: &Plan, fresh: &Snapshot) -> Vec<TopicBound> {
    plan.topics
        .iter()
        .map(|t| {
            let mut note = t.note.clone();
            let current = match fresh.owner_of(&t.topic) {
                TopicOwner::Collection(i) => fresh.collections[i].bound.value(),
                // Still an orphan: the planned bound (one past its last row) stands.
                TopicOwner::Orphan if t.is_orphan() => t.bound,
                TopicOwner::Orphan => None,
            };
            if t.is_orphan() && !matches!(fresh.owner_of(&t.topic), TopicOwner::Orphan) {
                note = Some("a collection now reads this topic; skipped".into());
            }
            let bound = match (t.bound, current) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
            if t.bound.is_some() && bound.is_none() && note.is_none() {
                note = Some("max_seq_id became unknown since the plan; skipped".into());
            }
            TopicBound {
                topic: t.topic.clone(),
                collection: t.collection.clone(),
                bound,
                expected: if bound.is_some() { t.rows } else { 0 },
                wal_rows: t.wal_rows,
                note,
            }
        })
        .collect()
}

fn interrupted_or(e: rusqlite::Error, msg: &str) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ffi::ErrorCode::OperationInterrupted =>
        {
            Error::Interrupted(msg.into())
        }
        _ => Error::from(e),
    }
}

/// Open read-write and take the EXCLUSIVE lock, or RESERVED (readers may go on, no one
/// else may write).
fn open_locked(path: &Path, exclusive: bool) -> Result<Connection> {
    let conn = db::open_read_write(path)?;
    conn.execute_batch(if exclusive {
        "BEGIN EXCLUSIVE"
    } else {
        "BEGIN IMMEDIATE"
    })
    .map_err(|e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ffi::ErrorCode::DatabaseBusy | rusqlite::ffi::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::refused("another process is writing to chroma.sqlite3; stop Chroma first")
        }
        _ => db::explain(e, path),
    })?;
    Ok(conn)
}

/// The backup folder must be outside the persist dir and writable.
pub fn check_backup_folder(persist_dir: &Path, folder: &Path) -> Result<()> {
    let pd = std::fs::canonicalize(persist_dir)?;
    let probe = folder
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let existing = std::fs::canonicalize(probe).unwrap_or_else(|_| probe.to_path_buf());
    if existing.starts_with(&pd) {
        return Err(Error::Usage(format!(
            "the backup dir {} is inside the persist dir; choose a folder outside it",
            folder.display()
        )));
    }
    if !preflight::writable(&existing) {
        return Err(Error::refused(format!(
            "cannot write backups to {}: choose another folder with --backup-dir or pass --no-backup",
            folder.display()
        )));
    }
    Ok(())
}

/// A file name no earlier backup uses: `<persist dir name>-<UTC time>.sqlite3`.
fn backup_path(persist_dir: &Path, folder: &Path) -> PathBuf {
    let base = std::fs::canonicalize(persist_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "chroma".into());
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let mut p = folder.join(format!("{base}-{stamp}.sqlite3"));
    let mut n = 1;
    // Neither a finished backup nor the `.partial` of an interrupted one may be reused.
    while p.exists() || db::side_file(&p, ".partial").exists() {
        p = folder.join(format!("{base}-{stamp}-{n}.sqlite3"));
        n += 1;
    }
    p
}

/// A page-for-page copy with SQLite's online backup API, fsynced and integrity-checked.
fn backup(
    c: &mut Ctx<'_>,
    src_path: &Path,
    folder: &Path,
    pages: u64,
    page_size: u64,
) -> Result<PathBuf> {
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", folder.display())))?;
    let dest = backup_path(src_path.parent().unwrap_or(Path::new(".")), folder);
    // Written under a `.partial` name and renamed only once verified and on disk, so a
    // backup that was interrupted (even by SIGKILL) can never pass for a good one.
    let partial = db::side_file(&dest, ".partial");
    let result = (|| -> Result<()> {
        // A second connection reads while ours holds the write lock: the copy is the exact
        // state the delete will start from.
        let src = db::open_read_only_locked(src_path)?;
        let mut dst = Connection::open_with_flags(
            &partial,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // No journal and no syncs while copying into the new file: until the rename below
        // it is not a backup, and it is fsynced once, whole, before that.
        dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
        {
            let b = Backup::new(&src, &mut dst)?;
            let mut throttle = Throttle::new();
            loop {
                c.check_cancel(Step::Backup)?;
                let more = b.step(4096)?;
                let p = b.progress();
                let done = (p.pagecount - p.remaining).max(0) as u64 * page_size;
                if throttle.ready() {
                    (c.events)(Event::Progress {
                        step: Step::Backup,
                        done,
                        total: Some(pages * page_size),
                    });
                }
                match more {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => {}
                    rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {}
                }
            }
        }
        integrity(&dst).map_err(|e| e.context("backup verification"))?;
        let copied: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if copied as u64 != pages {
            return Err(Error::failed(format!(
                "backup verification: {copied} pages copied, {pages} expected"
            )));
        }
        drop(dst);
        File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &dest)?;
        File::open(folder)?.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(dest),
        Err(e) => {
            // A half-written backup is worse than none: remove it.
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(db::side_file(&partial, "-journal"));
            Err(e)
        }
    }
}

fn integrity(conn: &Connection) -> Result<()> {
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
fn delete(
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
        start = end;
    }
    (c.events)(Event::Progress {
        step: Step::Delete,
        done,
        total: Some(total),
    });
    drop(st);
    conn.execute_batch("DROP TABLE temp.cw_bounds")?;
    Ok(deleted)
}
