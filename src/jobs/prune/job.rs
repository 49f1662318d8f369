//! Running a plan: preflight → backup → delete → compact → verify, each step timed and
//! reporting progress through a callback. Cancellable at any point; a cancelled or failed run
//! leaves the dir untouched or exactly pruned, and says which.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::plan::Plan;
use crate::backup::check_backup_folder;
use crate::chroma::{db, procs, wal, Sizes, Snapshot, TopicOwner};
use crate::error::{Error, Result};
use crate::jobs::copy::swap;
use crate::jobs::copy::walmode;
use crate::jobs::preflight;

use super::counted;
use crate::jobs::runner::{interrupted_or, report, Ctx, TopicBound};
pub use crate::jobs::runner::{
    BackupTarget, Canceller, DirState, Event, JobError, JobOptions, Report, Step, StepTime,
    TopicResult, Unit,
};
use crate::jobs::steps::backup::{backup, discard_backup, remove_live_links, write_manifest};
use crate::jobs::steps::copy::{run_copy, Keep};
use crate::jobs::steps::delete::{delete, integrity};
use crate::jobs::steps::orphans;

/// Run `plan` on its persist dir.
pub fn run(
    persist_dir: &Path,
    plan: &Plan,
    opts: &JobOptions,
    cancel: &Canceller,
    events: &mut dyn FnMut(Event),
) -> std::result::Result<Report, JobError> {
    let mut ctx = Ctx::new(events, cancel);
    let before = Sizes::read(persist_dir);
    let fs_free_before = crate::chroma::fsinfo::free_space(persist_dir).map(|f| f.0);
    let backup_folder = opts.backup.folder(persist_dir);
    let db_work = plan.effective().next().is_some()
        || (plan.dirs.is_empty() && plan.indexes.is_empty())
        || opts.compact
        || plan.deferred.is_some()
        || plan.scrub.is_some();
    let mut prune_folder: Option<PathBuf> = None;
    let mut result = if db_work {
        let r = run_db(
            &mut ctx,
            persist_dir,
            plan,
            opts,
            cancel,
            backup_folder.as_deref(),
            &before,
        );
        prune_folder = ctx
            .backup
            .as_ref()
            .and_then(|b| b.parent())
            .map(Path::to_path_buf);
        let more = !plan.dirs.is_empty() || !plan.indexes.is_empty();
        match (r, backup_folder.as_deref()) {
            // The copy's own count found no row to delete, and its backup went with it: the
            // folders still go into one.
            (Ok(rep), Some(b)) if prune_folder.is_none() && more => {
                match crate::backup::folder_only(persist_dir, b) {
                    Ok(f) => {
                        prune_folder = Some(f);
                        Ok(rep)
                    }
                    Err(e) => Err(ctx.fail(Step::Backup, e)),
                }
            }
            (r, _) => r,
        }
    } else {
        crate::jobs::folders::prepare(&mut ctx, persist_dir, backup_folder.as_deref()).map(
            |(snap, folder)| {
                prune_folder = folder;
                report(
                    &ctx,
                    &snap,
                    &[],
                    &HashMap::new(),
                    plan.notes.clone(),
                    &before,
                    "none",
                )
            },
        )
    };
    if let Ok(r) = &mut result {
        if !plan.dirs.is_empty() {
            match crate::jobs::folders::reclaim(
                &mut ctx,
                persist_dir,
                &plan.dirs,
                prune_folder.as_deref(),
            ) {
                Ok((removed, notes)) => {
                    r.dirs_removed = removed;
                    r.notes.extend(notes);
                }
                Err(e) => r.notes.push(format!("orphan folders: {e}")),
            }
            r.steps = ctx.steps.clone();
        } else {
            ctx.skip(Step::Folders, "none selected");
            r.steps = ctx.steps.clone();
        }
        if plan.indexes.is_empty() {
            ctx.skip(Step::Rebuild, "no index selected");
        } else {
            match crate::jobs::compact::run_requested(
                &mut ctx,
                persist_dir,
                &plan.indexes,
                prune_folder.as_deref(),
                plan.scrub.is_none(),
            ) {
                Ok((done, notes)) => {
                    r.indexes = done;
                    r.notes.extend(notes);
                }
                Err(e) => r.notes.push(format!("index rebuild: {}", e.error)),
            }
        }
        r.steps = ctx.steps.clone();
        r.fs_free_before = fs_free_before;
        r.fs_free_after = crate::chroma::fsinfo::free_space(persist_dir).map(|f| f.0);
        r.dir_bytes_after = Sizes::read(persist_dir).dir;
        if let Some(folder) = prune_folder.as_deref() {
            if let Ok(mut m) = crate::backup::Manifest::read(folder) {
                m.dirs = r
                    .dirs_removed
                    .iter()
                    .filter(|d| d.moved_to.is_some())
                    .map(|d| crate::backup::MovedDir {
                        name: d.name.clone(),
                        bytes: d.bytes,
                    })
                    .collect();
                if m.sqlite.is_some() {
                    m.pruned =
                        crate::backup::FileStamp::of(&persist_dir.join(crate::chroma::SQLITE_FILE));
                }
                if let Err(e) = m.write(folder) {
                    r.notes
                        .push(format!("the backup's manifest could not be updated: {e}"));
                }
            }
            r.backup_dir = Some(folder.to_path_buf());
            r.backup_bytes = Some(crate::backup::usage(folder).1);
        }
    }
    result
}

/// The WAL part of a prune: everything but the folders.
#[allow(clippy::too_many_arguments)]
fn run_db(
    ctx: &mut Ctx<'_>,
    persist_dir: &Path,
    plan: &Plan,
    opts: &JobOptions,
    cancel: &Canceller,
    backup_folder: Option<&Path>,
    before: &Sizes,
) -> std::result::Result<Report, JobError> {
    let before = before.clone();
    let backup_folder = backup_folder.map(Path::to_path_buf);

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
            opts.by_copy(),
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

    // Take the lock. By copy, or with a backup: RESERVED, so our second connection can read
    // the file (the copy, or SQLite's backup API, which gets SQLITE_BUSY from a connection
    // holding EXCLUSIVE) while no one else can write; in place, the commit then takes
    // EXCLUSIVE, and VACUUM holds EXCLUSIVE while it writes. In place without a backup:
    // EXCLUSIVE, no other connection reads or writes until the end.
    // WAL mode: every committed frame into the main file first, with no lock of ours held.
    ctx.wal_mode =
        walmode::checkpoint(&snap.sqlite_path).map_err(|e| ctx.fail(Step::Preflight, e))?;
    let exclusive = backup_folder.is_none() && !opts.by_copy();
    let conn =
        open_locked(&snap.sqlite_path, exclusive).map_err(|e| ctx.fail(Step::Preflight, e))?;
    if ctx.wal_mode {
        // After the swap this connection's file is no longer the one the path names: closing
        // it must not checkpoint into, or remove, the -wal that is now the new file's.
        if let Err(e) = conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        ) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(ctx.fail(Step::Preflight, e.into()));
        }
        if let Err(e) = walmode::still_folded(&snap.sqlite_path) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(ctx.fail(Step::Preflight, e));
        }
    }
    cancel.attach(&conn);
    let result = run_locked(
        ctx,
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
    // Our connection has closed, so its locks are gone: the descriptors kept open for them
    // may close now (and the old file's blocks go back to the disk, when nothing else holds
    // them, before the free space is measured).
    ctx.keep_open.clear();
    if ctx.wal_mode && result.is_ok() && procs::find(persist_dir).list.is_empty() {
        // Our connection to the old file could not remove the (empty) -wal and -shm it left
        // under the new file's name while another of ours was open; a last one does.
        if let Err(e) = walmode::tidy(&snap.sqlite_path) {
            return result.map(|mut r| {
                r.notes.push(format!("WAL mode: {e}"));
                r
            });
        }
    }
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
    let mut fresh =
        Snapshot::read_locked(&snap.persist_dir, conn).map_err(|e| ctx.fail(Step::Preflight, e))?;
    if let (Some(folder), Ok(live)) = (backup_folder, std::fs::metadata(&snap.sqlite_path)) {
        remove_live_links(folder, &live);
    }
    let in_place_why = if opts.by_copy() {
        swap::in_place_reason(conn, &snap.sqlite_path).map_err(|e| ctx.fail(Step::Preflight, e))?
    } else {
        None
    };
    // A compaction alone is asked for by name, and only where there are free pages to give
    // back (as the command decides for a plan that counted first).
    let compact = opts.compact && fresh.free_bytes() > 0;
    let counted_plan;
    let plan = match &plan.deferred {
        // The copy counts the WAL; the plan is settled from its counts (see `counted`).
        Some(selection) if opts.by_copy() && in_place_why.is_none() => {
            let rule = counted::rule(conn, &mut fresh, selection)
                .map_err(|e| ctx.fail(Step::Preflight, e))?;
            let mut settle = |counts: &swap::CopyCounts| -> Result<_> {
                let wal = counted::wal_of(&fresh, counts);
                let p = Plan::build(&fresh, &wal, selection)?;
                Ok((bounds_under_lock(conn, &fresh, &p)?, p.notes))
            };
            let keep = Keep::Counted {
                rule,
                settle: &mut settle,
                compact,
            };
            let notes = plan.notes.clone();
            return run_copy(ctx, conn, snap, keep, backup_folder, before, notes);
        }
        // In place: counted first, on this connection, under the lock.
        Some(selection) => {
            let cancel = ctx.cancel.clone();
            let mut p = wal::scan_with(conn, &fresh, &mut |_, _| !cancel.is_cancelled())
                .and_then(|wal| Plan::build(&fresh, &wal, selection))
                .map_err(|e| ctx.fail(Step::Preflight, e))?;
            p.notes.splice(0..0, plan.notes.iter().cloned());
            counted_plan = p;
            if counted_plan.rows() == 0 && !compact {
                ctx.skip_each(&Step::FILE, "nothing to prune");
                let mut notes = counted_plan.notes.clone();
                notes.push(super::plan::nothing_to_prune(&fresh, opts.compact, false));
                return Ok(report(
                    ctx,
                    snap,
                    &[],
                    &HashMap::new(),
                    notes,
                    before,
                    "nothing",
                ));
            }
            &counted_plan
        }
        None => plan,
    };
    let bounds = bounds_under_lock(conn, &fresh, plan).map_err(|e| ctx.fail(Step::Preflight, e))?;

    let mut notes = plan.notes.clone();
    if opts.by_copy() {
        match in_place_why {
            None => {
                let keep = Keep::Planned(bounds);
                return run_copy(ctx, conn, snap, keep, backup_folder, before, notes);
            }
            Some(why) => {
                // In place needs more disk than the copy the preflight measured for.
                let space = preflight::space(
                    &snap.persist_dir,
                    before.sqlite,
                    plan.bytes(),
                    backup_folder,
                    true,
                    false,
                );
                if !space.ok {
                    return Err(ctx.fail(
                        Step::Preflight,
                        Error::refused(format!(
                            "{why}, and pruning in place needs more disk ({})",
                            space.summary()
                        )),
                    ));
                }
                notes.push(format!("pruned in place: {why}"));
            }
        }
    }

    // 2. Backup.
    match backup_folder {
        Some(folder) => {
            let pages: u64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .unwrap_or(0);
            let page_size = snap.schema.page_size.max(512) as u64;
            let method = if opts.vacuum {
                "in_place"
            } else {
                "delete_only"
            };
            let path = ctx.timed(Step::Backup, Some(pages * page_size), Unit::Bytes, |c| {
                let p = backup(c, &snap.sqlite_path, folder, pages, page_size)?;
                if let Err(e) = write_manifest(&snap.persist_dir, &p, method, pages * page_size) {
                    // A backup without its manifest is none: the file is untouched yet.
                    discard_backup(&p);
                    return Err(e);
                }
                Ok((p.clone(), Some(p.display().to_string())))
            })?;
            ctx.backup = Some(path);
        }
        None => ctx.skip(Step::Backup, "--no-backup"),
    }

    // 3. Delete, in the transaction opened by the lock.
    let expected = crate::jobs::runner::expected_rows(&bounds);
    let mut leftovers = None;
    let deleted = ctx.timed(Step::Delete, Some(expected), Unit::Rows, |c| {
        let d = delete(c, conn, &bounds)?;
        // Only a scrub of the whole dir: the rows nothing points to belong to no collection.
        if let Some(Some(_)) = plan.scrub {
            leftovers = Some(orphans::remove(conn)?);
        }
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
            if c.wal_mode {
                walmode::fold(conn)?;
            }
            Ok(((), None))
        })?;
    } else {
        ctx.skip(Step::Compact, "--no-vacuum");
        if ctx.wal_mode {
            walmode::fold(conn).map_err(|e| ctx.fail(Step::Compact, e))?;
        }
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
    ctx.skip(Step::Swap, "pruned in place");
    let method = if opts.vacuum {
        "in_place"
    } else {
        "delete_only"
    };
    let mut r = report(ctx, snap, &bounds, &deleted, notes, before, method);
    r.leftovers_removed = leftovers;
    Ok(r)
}

/// The plan's bounds as they hold under the lock: the catalog re-read (`fresh`), the seq_id
/// guard on the live file, and the records no index Chroma can load.
fn bounds_under_lock(conn: &Connection, fresh: &Snapshot, plan: &Plan) -> Result<Vec<TopicBound>> {
    let mut bounds = effective_bounds(plan, fresh);
    let planned: Vec<(String, Option<i64>)> =
        bounds.iter().map(|b| (b.topic.clone(), b.bound)).collect();
    let keep = super::guard::under_lock(conn, fresh, &planned)?;
    for b in bounds.iter_mut().filter(|b| keep.contains(&b.topic)) {
        b.bound = None;
        b.expected = 0;
        b.note = Some(
            "kept whole: its rows hold the WAL's highest seq_id, above a recorded position".into(),
        );
    }
    // Records in no index Chroma can load (a delete the index persisted while SQLite rolled
    // it back): counted again under the lock, for the collections about to lose rows. Their
    // WAL is how those records come back.
    let owner = |topic: &str| match fresh.owner_of(topic) {
        TopicOwner::Collection(i) => Some(i),
        TopicOwner::Orphan => None,
    };
    let touched: std::collections::HashSet<usize> = bounds
        .iter()
        .filter(|b| b.bound.is_some() && b.expected > 0)
        .filter_map(|b| owner(&b.topic))
        .collect();
    let uncovered = crate::chroma::coverage::check(conn, fresh, &|i| touched.contains(&i))?;
    for (i, u) in &uncovered {
        for b in bounds.iter_mut().filter(|b| owner(&b.topic) == Some(*i)) {
            b.bound = None;
            b.expected = 0;
            b.note = Some(format!("kept whole: {}", u.reason()));
        }
    }
    Ok(bounds)
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
            if let TopicOwner::Collection(i) = fresh.owner_of(&t.topic) {
                if fresh.collections[i].is_damaged() && note.is_none() {
                    note = Some(fresh.collections[i].status());
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_after_ctrl_c_is_a_cancel_and_says_the_dir_is_untouched() {
        let cancel = Canceller::new();
        let mut events = |_: Event| {};
        let mut ctx = Ctx {
            events: &mut events,
            cancel: &cancel,
            steps: Vec::new(),
            state: DirState::Untouched,
            backup: None,
            wal_mode: false,
            keep_open: Vec::new(),
        };
        // Not cancelled: a failure stays a failure.
        let e = ctx
            .fail(Step::Preflight, Error::failed("x: interrupted"))
            .error;
        assert!(!matches!(e, Error::Interrupted(_)), "{e}");
        // Cancelled: the statement SQLite interrupted fails, and that is the cancel (exit 130).
        cancel.cancel();
        let e = ctx
            .fail(Step::Preflight, Error::failed("x: interrupted"))
            .error;
        assert!(matches!(e, Error::Interrupted(_)), "{e}");
        assert!(e.to_string().contains("untouched"), "{e}");
        // A refusal stays a refusal.
        let e = ctx
            .fail(Step::Preflight, Error::refused("Chroma runs"))
            .error;
        assert!(matches!(e, Error::Refused(_)), "{e}");
    }
}
