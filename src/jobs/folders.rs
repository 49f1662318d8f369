//! Reclaiming orphan segment folders: index folders no segment uses any more (Chroma 0.6.3
//! and 1.x leave a deleted collection's folder behind).
//!
//! A folder is an orphan only while all of these hold, checked again under a write lock on
//! chroma.sqlite3 (no one can create a segment meanwhile) just before each move:
//! - its name is a UUID;
//! - it matches no segment id anywhere: `segments.id`, in every tenant and database (folders
//!   are named by segment id, never by collection id). A stale `max_seq_id` row may still
//!   name it: Chroma 0.5.6–0.6.x delete a collection's segments but leave the vector
//!   segment's row, and no collection can load a folder whose segment is gone;
//! - it holds only the files an index folder holds;
//! - no process has any of its files open.
//!
//! It is moved, by rename, into the prune's backup folder (`dirs/<name>/`): no time and no
//! space on the same filesystem. On another filesystem it is copied, verified and removed;
//! with `--no-backup` it is deleted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::prune::plan::PlanDir;
pub use super::runner::RemovedDir;
use super::runner::{Ctx, Event, JobError, Step, Unit};
use crate::backup::files::move_dir;
use crate::chroma::{db, procs, snapshot, Snapshot};
use crate::error::{Error, Result};

/// A prune that only reclaims folders: the preflight, and a backup folder with its manifest.
pub(super) fn prepare(
    ctx: &mut Ctx<'_>,
    persist_dir: &Path,
    backup_folder: Option<&Path>,
) -> std::result::Result<(Snapshot, Option<PathBuf>), JobError> {
    let snap = ctx.timed(Step::Preflight, Some(1), Unit::Checks, |c| {
        let snap = Snapshot::open(persist_dir)?;
        if let Some(b) = snap.prune_blockers().into_iter().next() {
            return Err(Error::refused(b));
        }
        if let Some(b) = backup_folder {
            crate::backup::check_backup_folder(persist_dir, b)?;
        }
        (c.events)(Event::Progress {
            step: Step::Preflight,
            done: 1,
            total: Some(1),
        });
        Ok((snap, None))
    })?;
    let prune_folder = match backup_folder {
        Some(b) => Some(
            crate::backup::folder_only(persist_dir, b).map_err(|e| ctx.fail(Step::Backup, e))?,
        ),
        None => None,
    };
    ctx.skip_each(&Step::FILE, "no WAL rows selected");
    Ok((snap, prune_folder))
}

/// Every segment id the database knows (`segments`, every tenant and database), on `conn`.
fn segment_ids(conn: &rusqlite::Connection) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let mut st = conn.prepare("SELECT id FROM segments")?;
    for r in st.query_map([], |r| r.get::<_, String>(0))? {
        ids.insert(r?);
    }
    Ok(ids)
}

/// Why `dir` may not be reclaimed now, if it may not.
fn still_orphan(persist_dir: &Path, name: &str, live: &HashSet<String>) -> Option<String> {
    if !snapshot::looks_like_uuid(name) {
        return Some("its name is not a segment id".into());
    }
    if live.iter().any(|id| id.eq_ignore_ascii_case(name)) {
        return Some("a segment uses it now".into());
    }
    let path = persist_dir.join(name);
    if !path.is_dir() {
        return Some("it is gone".into());
    }
    if let Some(k) = snapshot::orphan_keep_reason(&path) {
        return Some(k);
    }
    let holders = procs::find(&path);
    if !holders.list.is_empty() {
        return Some(format!("it is open in {}", holders.describe()));
    }
    None
}

/// Move (or delete) the planned folders, each checked again under the lock first.
pub(super) fn reclaim(
    ctx: &mut Ctx<'_>,
    persist_dir: &Path,
    dirs: &[PlanDir],
    prune_folder: Option<&Path>,
) -> std::result::Result<(Vec<RemovedDir>, Vec<String>), JobError> {
    let sqlite = persist_dir.join(crate::chroma::SQLITE_FILE);
    ctx.timed(Step::Folders, Some(dirs.len() as u64), Unit::Checks, |c| {
        let conn = db::open_read_write(&sqlite)?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|_| {
            Error::refused("another process is writing to chroma.sqlite3; stop Chroma first")
        })?;
        let result = (|| -> Result<(Vec<RemovedDir>, Vec<String>)> {
            let live = segment_ids(&conn)?;
            let (mut removed, mut notes) = (Vec::new(), Vec::new());
            for (i, d) in dirs.iter().enumerate() {
                c.check_cancel(Step::Folders)?;
                if let Some(why) = still_orphan(persist_dir, &d.name, &live) {
                    notes.push(format!("folder {} left alone: {why}", d.name));
                    continue;
                }
                let src = persist_dir.join(&d.name);
                let moved_to = match prune_folder {
                    Some(f) => {
                        let to = f.join(crate::backup::DIRS).join(&d.name);
                        // Recorded before the move: a kill in between leaves a manifest
                        // entry whose folder is still in place, which restore skips; never
                        // a moved folder the manifest does not name.
                        crate::backup::Manifest::note_dir(f, &d.name, d.bytes)?;
                        move_dir(&src, &to)?;
                        Some(to)
                    }
                    None => {
                        std::fs::remove_dir_all(&src)?;
                        None
                    }
                };
                crate::backup::files::sync_dir(persist_dir)?;
                removed.push(RemovedDir {
                    name: d.name.clone(),
                    bytes: d.bytes,
                    moved_to,
                });
                (c.events)(Event::Progress {
                    step: Step::Folders,
                    done: i as u64 + 1,
                    total: Some(dirs.len() as u64),
                });
            }
            Ok((removed, notes))
        })();
        let _ = conn.execute_batch("ROLLBACK");
        let r = result?;
        let d = format!("{} folder(s)", r.0.len());
        Ok((r, Some(d)))
    })
}
