//! What every write job shares: its steps and their events, the options, the report, the
//! error that says what a failure left, the canceller, and the context a step runs in (which
//! times it, reports its progress, and turns a failure or a cancel into what it means for the
//! dir). The steps themselves live in the job that strings them together.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

use crate::chroma::{Sizes, Snapshot};
use crate::error::{Error, Result};

/// The steps of a prune, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Preflight,
    Backup,
    Delete,
    Compact,
    Verify,
    Swap,
    /// Orphan segment folders moved into the backup (or deleted with --no-backup).
    Folders,
    /// A vector index written anew without its ghosts (`compact`; not a prune step).
    Rebuild,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Preflight,
        Step::Backup,
        Step::Delete,
        Step::Compact,
        Step::Verify,
        Step::Swap,
        Step::Folders,
        Step::Rebuild,
    ];

    /// The steps that write chroma.sqlite3, after the preflight: what a prune with no row
    /// to delete skips.
    pub(in crate::jobs) const FILE: [Step; 5] = [
        Step::Backup,
        Step::Delete,
        Step::Compact,
        Step::Verify,
        Step::Swap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Backup => "backup",
            Step::Delete => "delete",
            Step::Compact => "compact",
            Step::Verify => "verify",
            Step::Swap => "swap",
            Step::Folders => "folders",
            Step::Rebuild => "rebuild",
        }
    }
}

/// What a step's numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Checks,
    Bytes,
    Rows,
    Tables,
    /// Index elements.
    Elements,
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
    /// Prune inside the file (DELETE + VACUUM) even where a compacted copy could replace it.
    pub in_place: bool,
    /// Compact the file even when no row is deleted (asked for by name: `--compact`).
    pub compact: bool,
}

impl JobOptions {
    /// Whether a compacted copy is the planned method (it may still fall back to in place
    /// for a file it cannot reproduce; see [`super::swap::in_place_reason`]).
    pub fn by_copy(&self) -> bool {
        self.vacuum && !self.in_place
    }
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
    /// Some vector indexes were rebuilt and are in place; the others are untouched.
    Rebuilt,
}

impl DirState {
    pub fn sentence(self) -> &'static str {
        match self {
            DirState::Untouched => "the persist dir is untouched",
            DirState::PrunedNotCompacted => {
                "the WAL is exactly pruned but the file was not compacted; run chroma-wal prune again with --compact to compact it"
            }
            DirState::Done => "the prune completed",
            DirState::Rebuilt => {
                "each index rebuilt so far is in place (its old folder in the backup, or beside \
                 the segment's as .<segment>.chroma-wal-old); the others are untouched"
            }
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
    /// How the file was pruned: `copy` (a compacted copy renamed over the original),
    /// `in_place` (DELETE + VACUUM), `delete_only` (--no-vacuum), `none` (only folders), or
    /// `nothing` (the WAL was counted under the lock and nothing was to go: nothing written).
    pub method: &'static str,
    /// Orphan segment folders reclaimed.
    pub dirs_removed: Vec<RemovedDir>,
    /// Free space of the persist dir's filesystem before and after (statvfs).
    pub fs_free_before: Option<u64>,
    pub fs_free_after: Option<u64>,
    /// This prune's backup folder, and the bytes it keeps allocated on disk.
    pub backup_dir: Option<PathBuf>,
    pub backup_bytes: Option<u64>,
    /// Vector indexes rebuilt (plan item kind three).
    pub indexes: Vec<crate::jobs::compact::rebuilt::IndexResult>,
    /// A scrub's rows that nothing pointed to, removed.
    pub leftovers_removed: Option<crate::jobs::steps::orphans::Leftovers>,
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

    pub(super) fn attach(&self, conn: &Connection) {
        self.attach_handle(conn.get_interrupt_handle());
    }

    pub(super) fn attach_handle(&self, h: InterruptHandle) {
        if let Ok(mut slot) = self.handle.lock() {
            *slot = Some(h);
        }
    }

    pub(super) fn detach(&self) {
        if let Ok(mut h) = self.handle.lock() {
            *h = None;
        }
    }
}

/// Progress messages are throttled to about ten a second.
pub(super) struct Throttle {
    last: Instant,
}

impl Throttle {
    pub(super) fn new() -> Self {
        Throttle {
            last: Instant::now() - Duration::from_secs(1),
        }
    }
    pub(super) fn ready(&mut self) -> bool {
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }
}

pub(super) struct Ctx<'a> {
    pub(super) events: &'a mut dyn FnMut(Event),
    pub(super) cancel: &'a Canceller,
    pub(super) steps: Vec<StepTime>,
    pub(super) state: DirState,
    pub(super) backup: Option<PathBuf>,
    /// chroma.sqlite3 is in WAL journal mode (see `walmode` for the order of operations).
    pub(super) wal_mode: bool,
    /// Descriptors of chroma.sqlite3 that may only close after our connection has.
    pub(super) keep_open: Vec<File>,
}

impl<'a> Ctx<'a> {
    /// A job that has changed nothing yet.
    pub(super) fn new(events: &'a mut dyn FnMut(Event), cancel: &'a Canceller) -> Ctx<'a> {
        Ctx {
            events,
            cancel,
            steps: Vec::new(),
            state: DirState::Untouched,
            backup: None,
            wal_mode: false,
            keep_open: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, step: Step, error: Error) -> JobError {
        // Ctrl-C interrupts whatever SQLite statement runs, and it fails with "interrupted"
        // wherever that is (the catalog read under the lock, the guard, ...): a cancel.
        let error = match error {
            e @ (Error::Interrupted(_) | Error::Refused(_)) => e,
            _ if self.cancel.is_cancelled() => {
                Error::Interrupted(format!("cancelled during {}", step.name()))
            }
            e => e,
        };
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

    pub(super) fn check_cancel(&self, step: Step) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Interrupted(format!(
                "cancelled during {}",
                step.name()
            )))
        } else {
            Ok(())
        }
    }

    pub(super) fn timed<T>(
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

    /// [`Ctx::skip`] each of `steps`, for one reason.
    pub(super) fn skip_each(&mut self, steps: &[Step], reason: &str) {
        for &step in steps {
            self.skip(step, reason);
        }
    }

    pub(super) fn skip(&mut self, step: Step, reason: &str) {
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

pub(super) trait Append {
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

/// A failure while cancelled is the cancel (SQLite reports the interrupt as an error).
pub(in crate::jobs) fn or_cancelled(cancel: &Canceller, step: Step, e: Error) -> Error {
    if cancel.is_cancelled() {
        Error::Interrupted(format!("cancelled during {}", step.name()))
    } else {
        e
    }
}

pub(in crate::jobs) fn interrupted_or(e: rusqlite::Error, msg: &str) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ffi::ErrorCode::OperationInterrupted =>
        {
            Error::Interrupted(msg.into())
        }
        _ => Error::from(e),
    }
}

pub(in crate::jobs) fn report(
    ctx: &Ctx<'_>,
    snap: &Snapshot,
    bounds: &[TopicBound],
    deleted: &HashMap<String, u64>,
    mut notes: Vec<String>,
    before: &Sizes,
    method: &'static str,
) -> Report {
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
    for b in bounds {
        if let Some(n) = &b.note {
            notes.push(format!("{}: {n}", b.topic));
        }
    }
    Report {
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
        method,
        dirs_removed: Vec::new(),
        indexes: Vec::new(),
        fs_free_before: None,
        fs_free_after: None,
        backup_dir: None,
        backup_bytes: None,
        leftovers_removed: None,
    }
}

/// A topic's bound as used at delete time.
#[derive(Debug, Clone)]
pub(in crate::jobs) struct TopicBound {
    pub(in crate::jobs) topic: String,
    pub(in crate::jobs) collection: Option<(String, String)>,
    pub(in crate::jobs) bound: Option<i64>,
    pub(in crate::jobs) expected: u64,
    pub(in crate::jobs) wal_rows: u64,
    pub(in crate::jobs) note: Option<String>,
}

/// Rows `bounds` delete.
pub(in crate::jobs) fn expected_rows(bounds: &[TopicBound]) -> u64 {
    bounds.iter().map(|b| b.expected).sum()
}

/// The bounds a copy leaves out rows below: the topics of `bounds` that lose rows.
pub(in crate::jobs) fn cut_bounds(bounds: &[TopicBound]) -> HashMap<String, i64> {
    bounds
        .iter()
        .filter(|b| b.expected > 0)
        .filter_map(|b| b.bound.map(|m| (b.topic.clone(), m)))
        .collect()
}

/// A folder the prune reclaimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedDir {
    pub name: String,
    pub bytes: u64,
    /// Where it went; `None`: deleted (`--no-backup`).
    pub moved_to: Option<PathBuf>,
}
