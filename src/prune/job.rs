//! Running a plan: preflight → backup → delete → compact → verify, each step timed and
//! reporting progress through a callback. Cancellable at any point; a cancelled or failed run
//! leaves the dir untouched or exactly pruned, and says which.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::backups::{backup_path, check_backup_folder};
use super::files;
use super::plan::Plan;
use super::preflight;
use super::swap;
use super::walmode;
use crate::chroma::{db, procs, wal, Sizes, Snapshot, TopicOwner};
use crate::error::{Error, Result};

pub use super::runner::{
    BackupTarget, Canceller, DirState, Event, JobError, JobOptions, Report, Step, StepTime,
    TopicResult, Unit,
};
use super::runner::{Ctx, Throttle};

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
        wal_mode: false,
        keep_open: Vec::new(),
    };
    let before = Sizes::read(persist_dir);
    let fs_free_before = crate::chroma::fsinfo::free_space(persist_dir).map(|f| f.0);
    let backup_folder = opts.backup.folder(persist_dir);
    let db_work = plan.effective().next().is_some() || plan.dirs.is_empty();
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
        r
    } else {
        super::folders::prepare(&mut ctx, persist_dir, backup_folder.as_deref()).map(
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
            match super::folders::reclaim(
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
        r.fs_free_before = fs_free_before;
        r.fs_free_after = crate::chroma::fsinfo::free_space(persist_dir).map(|f| f.0);
        r.dir_bytes_after = Sizes::read(persist_dir).dir;
        if let Some(folder) = prune_folder.as_deref() {
            if let Ok(mut m) = super::backups::Manifest::read(folder) {
                m.dirs = r
                    .dirs_removed
                    .iter()
                    .filter(|d| d.moved_to.is_some())
                    .map(|d| super::backups::MovedDir {
                        name: d.name.clone(),
                        bytes: d.bytes,
                    })
                    .collect();
                if m.sqlite.is_some() {
                    m.pruned = super::backups::FileStamp::of(
                        &persist_dir.join(crate::chroma::SQLITE_FILE),
                    );
                }
                if let Err(e) = m.write(folder) {
                    r.notes
                        .push(format!("the backup's manifest could not be updated: {e}"));
                }
            }
            r.backup_dir = Some(folder.to_path_buf());
            r.backup_bytes = Some(super::backups::usage(folder).1);
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
    let fresh =
        Snapshot::read_locked(&snap.persist_dir, conn).map_err(|e| ctx.fail(Step::Preflight, e))?;
    let mut bounds = effective_bounds(plan, &fresh);
    let planned: Vec<(String, Option<i64>)> =
        bounds.iter().map(|b| (b.topic.clone(), b.bound)).collect();
    let keep = super::guard::under_lock(conn, &fresh, &planned)
        .map_err(|e| ctx.fail(Step::Preflight, e))?;
    for b in bounds.iter_mut().filter(|b| keep.contains(&b.topic)) {
        b.bound = None;
        b.expected = 0;
        b.note = Some(
            "kept whole: its rows hold the WAL's highest seq_id, above a recorded position".into(),
        );
    }
    if let (Some(folder), Ok(live)) = (backup_folder, std::fs::metadata(&snap.sqlite_path)) {
        remove_live_links(folder, &live);
    }

    let mut notes = plan.notes.clone();
    if opts.by_copy() {
        let reason = swap::in_place_reason(conn, &snap.sqlite_path)
            .map_err(|e| ctx.fail(Step::Preflight, e))?;
        match reason {
            None => {
                return run_copy(ctx, conn, snap, bounds, backup_folder, before, notes);
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
                write_manifest(&snap.persist_dir, &p, method, pages * page_size)?;
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
    Ok(report(ctx, snap, &bounds, &deleted, notes, before, method))
}

/// Progress of the copy, as job events; also where a cancel is noticed between chunks.
struct CopyEvents<'a, 'b> {
    c: &'a mut Ctx<'b>,
    throttle: Throttle,
    expected: u64,
}

impl swap::CopyProgress for CopyEvents<'_, '_> {
    fn rows(&mut self, left_out: u64) -> Result<()> {
        self.c.check_cancel(Step::Delete)?;
        if self.throttle.ready() {
            (self.c.events)(Event::Progress {
                step: Step::Delete,
                done: left_out.min(self.expected),
                total: Some(self.expected),
            });
        }
        Ok(())
    }
    fn tables(&mut self, done: u64, total: u64) -> Result<()> {
        self.c.check_cancel(Step::Compact)?;
        (self.c.events)(Event::Progress {
            step: Step::Compact,
            done,
            total: Some(total),
        });
        Ok(())
    }
}

/// A failure while cancelled is the cancel (SQLite reports the interrupt as an error).
fn or_cancelled(cancel: &Canceller, step: Step, e: Error) -> Error {
    if cancel.is_cancelled() {
        Error::Interrupted(format!("cancelled during {}", step.name()))
    } else {
        e
    }
}

/// By copy: backup (a hard link of the original, which is never written) → delete (the kept
/// WAL rows into a new file) → compact (every other table, fsync) → verify (the new file
/// against the original) → swap (rename over the original). Untouched until the rename.
fn run_copy(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    snap: &Snapshot,
    bounds: Vec<TopicBound>,
    backup_folder: Option<&Path>,
    before: &Sizes,
    mut notes: Vec<String>,
) -> std::result::Result<Report, JobError> {
    let mut linked: Option<(PathBuf, PathBuf)> = None;
    match copy_steps(
        ctx,
        conn,
        snap,
        &bounds,
        backup_folder,
        &mut linked,
        &mut notes,
    ) {
        Ok(deleted) => Ok(report(ctx, snap, &bounds, &deleted, notes, before, "copy")),
        Err(mut e) => {
            // Not swapped: a hard link would follow the live file from now on, so it is no
            // backup. Remove it (the original is untouched).
            if let (Some((partial, _)), DirState::Untouched) = (&linked, e.state) {
                let _ = std::fs::remove_file(partial);
                e.backup = None;
            }
            Err(e)
        }
    }
}

fn copy_steps(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    snap: &Snapshot,
    bounds: &[TopicBound],
    backup_folder: Option<&Path>,
    linked: &mut Option<(PathBuf, PathBuf)>,
    notes: &mut Vec<String>,
) -> std::result::Result<HashMap<String, u64>, JobError> {
    use std::os::unix::fs::MetadataExt;
    let prelude = (|| -> Result<_> {
        swap::remove_leftovers(&snap.persist_dir);
        let header = swap::Header::read(conn, "main")?;
        let pages: i64 = conn.query_row("PRAGMA main.page_count", [], |r| r.get(0))?;
        let tables = swap::other_tables(conn)?.len() as u64;
        let meta = std::fs::metadata(&snap.sqlite_path)?;
        Ok((header, pages.max(0) as u64, tables, meta))
    })();
    let (header, pages, tables, meta) = prelude.map_err(|e| ctx.fail(Step::Preflight, e))?;
    let page_size = header.page_size.max(512) as u64;

    // 2. Backup: the original file itself, hard-linked into the backup folder (it is never
    // written from here on), or a verified page copy where a link cannot be made. The link
    // keeps its `.partial` name until the swap: before it, it is the live file, not a backup.
    match backup_folder {
        Some(folder) => {
            let path =
                ctx.timed(
                    Step::Backup,
                    Some(pages * page_size),
                    Unit::Bytes,
                    |c| match link_backup(&snap.sqlite_path, folder, pages * page_size) {
                        Ok((partial, dest)) => {
                            *linked = Some((partial, dest.clone()));
                            write_manifest(&snap.persist_dir, &dest, "copy", pages * page_size)?;
                            let d =
                                format!("{} (hard link of the untouched original)", dest.display());
                            Ok((dest, Some(d)))
                        }
                        Err(why) => {
                            let p = backup(c, &snap.sqlite_path, folder, pages, page_size)?;
                            write_manifest(&snap.persist_dir, &p, "copy", pages * page_size)?;
                            let d = format!("{} (copied: {why})", p.display());
                            Ok((p, Some(d)))
                        }
                    },
                )?;
            ctx.backup = Some(path);
        }
        None => ctx.skip(Step::Backup, "--no-backup"),
    }

    // 3. Delete: the kept WAL rows into a new file.
    let keep_bounds: HashMap<String, i64> = bounds
        .iter()
        .filter(|b| b.expected > 0)
        .filter_map(|b| b.bound.map(|m| (b.topic.clone(), m)))
        .collect();
    let expected: u64 = bounds.iter().map(|b| b.expected).sum();
    let cancel = ctx.cancel.clone();
    let (mut new, copier) = ctx.timed(Step::Delete, Some(expected), Unit::Rows, |c| {
        let new = swap::NewFile::create(&snap.persist_dir, &meta)?;
        let copier = swap::Copier::open(&new, &snap.sqlite_path, &header)?;
        cancel.attach_handle(copier.interrupt_handle());
        let mut ev = CopyEvents {
            c,
            throttle: Throttle::new(),
            expected,
        };
        copier
            .create_schema()
            .and_then(|_| copier.copy_queue(&keep_bounds, &mut ev))
            .map_err(|e| or_cancelled(&cancel, Step::Delete, e))?;
        Ok(((new, copier), None))
    })?;

    // 4. Compact: every other table, the header values, one commit; the fsync starts.
    let (counts, flush) = ctx.timed(Step::Compact, Some(tables), Unit::Tables, |c| {
        let mut ev = CopyEvents {
            c,
            throttle: Throttle::new(),
            expected,
        };
        copier
            .copy_rest(&header, &mut ev)
            .map_err(|e| or_cancelled(&cancel, Step::Compact, e))?;
        cancel.detach();
        let counts = copier.close()?;
        c.check_cancel(Step::Compact)?;
        if c.wal_mode {
            // As the original was; before the verification, so it checks the final file.
            walmode::make_wal(new.sqlite_path())?;
        }
        // The flush to disk overlaps the verification, which reads the same pages from
        // the page cache; the swap waits for both.
        let flush = new.start_sync()?;
        let d = format!("new file {}", crate::units::bytes(new.len()));
        Ok(((counts, flush), Some(d)))
    })?;

    // 5. Verify the new file before it replaces anything, and finish its flush.
    ctx.timed(Step::Verify, Some(1), Unit::Checks, |c| {
        let checked = swap::verify(&new, &snap.sqlite_path, &header, &counts, &keep_bounds)
            .map_err(|e| e.context("the new file"));
        let flushed = flush.wait();
        checked?;
        flushed?;
        if c.wal_mode {
            // The verification's read-only connection left the new file's -wal and -shm.
            walmode::tidy(new.sqlite_path())?;
        }
        c.check_cancel(Step::Verify)?;
        Ok(((), Some("and flushed to disk".into())))
    })?;

    // 6. Swap: nobody else may have the old file open, then one atomic rename.
    let mut late = Vec::new();
    ctx.timed(Step::Swap, None, Unit::Checks, |c| {
        c.check_cancel(Step::Swap)?;
        let holders = procs::find(&snap.persist_dir);
        if !holders.list.is_empty() {
            return Err(Error::refused(format!(
                "{} opened the persist dir during the prune, so the new file was not swapped \
                 in and nothing was changed; stop it and run again",
                holders.describe()
            )));
        }
        let old = std::fs::metadata(&snap.sqlite_path)?;
        if c.wal_mode {
            // The old file's -wal is empty (checked under our write lock, which nothing can
            // append past) and the new file has none: no frame can be replayed onto the new
            // file under the name it is about to take. See `walmode`.
            walmode::still_folded(&snap.sqlite_path)?;
            walmode::no_frames_left(new.sqlite_path())?;
        }
        new.rename_over(&snap.sqlite_path)?;
        c.state = DirState::Done;
        new.sync_dir()?;
        // A process that opened the old file in the instant before the rename writes to it,
        // not to the new one: say so and where the old file is.
        late = procs::holders_of_inode(old.dev(), old.ino());
        Ok(((), None))
    })?;
    if let Some((partial, dest)) = linked.as_ref() {
        // The old file is no longer the live one: now it is the backup.
        let named = std::fs::rename(partial, dest)
            .and_then(|_| files::sync_dir(dest.parent().unwrap_or(Path::new("/"))));
        if let Err(e) = named {
            notes.push(format!(
                "the backup is complete but kept the name {} ({e})",
                partial.display()
            ));
            ctx.backup = Some(partial.clone());
        }
    }
    if !late.is_empty() {
        let pids: Vec<String> = late.iter().map(|h| format!("pid {}", h.pid)).collect();
        notes.push(format!(
            "{} opened chroma.sqlite3 during the swap and holds the old file: what it writes \
             goes there ({}), not to the pruned file; stop it",
            pids.join(", "),
            ctx.backup
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| format!("readable at /proc/{}/fd while it runs", late[0].pid))
        ));
    }
    if linked.is_some() {
        notes.push(
            "the backup is the original file itself (a hard link), so it took no copy".into(),
        );
    }
    Ok(counts.deleted())
}

/// The backup as a hard link of the original: the same inode, so the same bytes. Never
/// opens the original (closing a descriptor of it would drop our SQLite lock). Returns the
/// `.partial` link and the name it gets once the swap has made it a backup.
fn link_backup(
    src: &Path,
    folder: &Path,
    expected_len: u64,
) -> std::result::Result<(PathBuf, PathBuf), String> {
    use std::os::unix::fs::MetadataExt;
    let dest =
        backup_path(src.parent().unwrap_or(Path::new(".")), folder).map_err(|e| e.to_string())?;
    let prune_folder = dest.parent().unwrap_or(folder).to_path_buf();
    let partial = db::side_file(&dest, ".partial");
    if let Err(e) = std::fs::hard_link(src, &partial) {
        let _ = std::fs::remove_dir(&prune_folder);
        return Err(format!("no hard link: {e}"));
    }
    let ok = match (std::fs::metadata(src), std::fs::metadata(&partial)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino() && b.len() == expected_len,
        _ => false,
    };
    let synced = files::sync_dir(&prune_folder).and_then(|_| files::sync_dir(folder));
    if !ok || synced.is_err() {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_dir(&prune_folder);
        return Err("the hard link could not be verified".into());
    }
    Ok((partial, dest))
}

/// `.partial` files in the backup folder (or in a prune's folder inside it) that are hard
/// links of the live file were left by a prune killed before its swap: they are no backup
/// (they change with the live file). Their emptied prune folders go with them.
fn remove_live_links(folder: &Path, live: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            let partial = p.join(format!("{}.partial", super::backups::SQLITE_COPY));
            if let Ok(m) = std::fs::symlink_metadata(&partial) {
                if m.is_file() && m.dev() == live.dev() && m.ino() == live.ino() {
                    let _ = std::fs::remove_file(&partial);
                    let _ = std::fs::remove_file(p.join(super::backups::MANIFEST));
                    let _ = std::fs::remove_dir(&p);
                }
            }
            continue;
        }
        if !p.to_string_lossy().ends_with(".partial") {
            continue;
        }
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.is_file() && m.dev() == live.dev() && m.ino() == live.ino() {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// Record the backup in its prune folder (before anything of the dir changes).
fn write_manifest(persist_dir: &Path, backup_file: &Path, method: &str, bytes: u64) -> Result<()> {
    let folder = backup_file.parent().unwrap_or(Path::new("."));
    let mut m = super::backups::Manifest::new(persist_dir, method);
    m.sqlite = Some(super::backups::SQLITE_COPY.into());
    m.sqlite_bytes = bytes;
    m.write(folder)
}

pub(super) fn report(
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
        fs_free_before: None,
        fs_free_after: None,
        backup_dir: None,
        backup_bytes: None,
    }
}

/// A topic's bound as used at delete time.
#[derive(Debug, Clone)]
pub(super) struct TopicBound {
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

/// A page-for-page copy with SQLite's online backup API, fsynced and integrity-checked.
fn backup(
    c: &mut Ctx<'_>,
    src_path: &Path,
    folder: &Path,
    pages: u64,
    page_size: u64,
) -> Result<PathBuf> {
    let dest = backup_path(src_path.parent().unwrap_or(Path::new(".")), folder)?;
    let prune_folder = dest.parent().unwrap_or(folder).to_path_buf();
    // Written under a `.partial` name and renamed only once verified and on disk, so a
    // backup that was interrupted (even by SIGKILL) can never pass for a good one.
    let partial = db::side_file(&dest, ".partial");
    let result = (|| -> Result<()> {
        // The file's own bytes, read while our connection holds the write lock (no one
        // else can change them), so that a restore puts back exactly this file. The
        // descriptor stays open until our connection has closed: POSIX drops every lock a
        // process holds on a file when any descriptor of it is closed.
        let src_at = c.keep_open.len();
        c.keep_open.push(File::open(src_path)?);
        let mut dst = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        let total = pages * page_size;
        let mut buf = vec![0u8; 4 << 20];
        let (mut done, mut throttle) = (0u64, Throttle::new());
        loop {
            c.check_cancel(Step::Backup)?;
            let n = std::io::Read::read(&mut &c.keep_open[src_at], &mut buf)?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut dst, &buf[..n])?;
            done += n as u64;
            if throttle.ready() {
                (c.events)(Event::Progress {
                    step: Step::Backup,
                    done,
                    total: Some(total),
                });
            }
        }
        dst.sync_all()?;
        drop(dst);
        if done != total {
            return Err(Error::failed(format!(
                "backup verification: {done} bytes copied, {total} expected"
            )));
        }
        let check = db::open_read_only(&partial)?;
        integrity(&check).map_err(|e| e.context("backup verification"))?;
        drop(check);
        File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &dest)?;
        files::sync_dir(&prune_folder)?;
        files::sync_dir(folder)?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(dest),
        Err(e) => {
            // A half-written backup is worse than none: remove it.
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(db::side_file(&partial, "-journal"));
            let _ = std::fs::remove_dir(&prune_folder);
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
    let mut next = conn.prepare("SELECT MIN(seq_id) FROM embeddings_queue WHERE seq_id >= ?1")?;
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
        // The next row at or after `end`: sparse seq_ids are skipped, not walked.
        match next.query_row([end], |r| r.get::<_, Option<i64>>(0))? {
            Some(n) => start = n,
            None => break,
        }
    }
    drop(next);
    (c.events)(Event::Progress {
        step: Step::Delete,
        done,
        total: Some(total),
    });
    drop(st);
    conn.execute_batch("DROP TABLE temp.cw_bounds")?;
    Ok(deleted)
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
