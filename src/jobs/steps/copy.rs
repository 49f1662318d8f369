//! The steps of a prune by copy: the kept rows and every other table go into a new file,
//! which is verified, made durable and renamed over the original.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::backup::files;
use crate::chroma::{procs, Sizes, Snapshot};
use crate::error::{Error, Result};
use crate::jobs::copy::{swap, verify, walmode};
use crate::jobs::prune::counted;
use crate::jobs::runner::{
    cut_bounds, expected_rows, or_cancelled, report, Ctx, DirState, Event, JobError, Report, Step,
    Throttle, TopicBound, Unit,
};
use crate::jobs::steps::backup::{backup, discard_backup, link_backup, write_manifest};

/// Builds the plan's bounds, and its notes, from what a copy counted.
pub(in crate::jobs) type Settle<'a> =
    &'a mut dyn FnMut(&swap::CopyCounts) -> Result<(Vec<TopicBound>, Vec<String>)>;

/// Which rows the copy leaves out.
pub(in crate::jobs) enum Keep<'a> {
    /// Those below the plan's bounds (the WAL was counted before the prune).
    Planned(Vec<TopicBound>),
    /// Those of `rule`, the WAL counted by the copy itself ([`counted`]): `settle` builds the
    /// plan's bounds and notes from the copy's counts; with `compact` the copy is kept even
    /// when nothing is to go.
    Counted {
        rule: swap::Rule,
        settle: Settle<'a>,
        compact: bool,
    },
}

/// How the copy ended.
pub(in crate::jobs) enum Copied {
    /// Swapped in: the rows deleted per topic, and the bounds they were deleted below.
    Swapped(HashMap<String, u64>, Vec<TopicBound>),
    /// The copy's count found nothing to delete: discarded, the dir untouched.
    Nothing(Vec<TopicBound>),
}

/// Progress of the copy, as job events; also where a cancel is noticed between chunks.
pub(in crate::jobs) struct CopyEvents<'a, 'b> {
    c: &'a mut Ctx<'b>,
    throttle: Throttle,
    /// Rows the plan said go; `None` when the copy counts them: then rows read are shown
    /// against the table's seq_id span.
    expected: Option<u64>,
}

impl swap::CopyProgress for CopyEvents<'_, '_> {
    fn rows(&mut self, seen: u64, left_out: u64, span: u64) -> Result<()> {
        self.c.check_cancel(Step::Delete)?;
        if self.throttle.ready() {
            let (done, total) = match self.expected {
                Some(e) => (left_out.min(e), e),
                None => (seen, span.max(seen)),
            };
            (self.c.events)(Event::Progress {
                step: Step::Delete,
                done,
                total: Some(total),
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

/// By copy: backup (a hard link of the original, which is never written) → delete (the kept
/// WAL rows into a new file) → compact (every other table, fsync) → verify (the new file
/// against the original) → swap (rename over the original). Untouched until the rename.
pub(in crate::jobs) fn run_copy(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    snap: &Snapshot,
    keep: Keep<'_>,
    backup_folder: Option<&Path>,
    before: &Sizes,
    mut notes: Vec<String>,
) -> std::result::Result<Report, JobError> {
    let mut linked: Option<(PathBuf, PathBuf)> = None;
    match copy_steps(
        ctx,
        conn,
        snap,
        keep,
        backup_folder,
        &mut linked,
        &mut notes,
    ) {
        Ok(Copied::Swapped(deleted, bounds)) => {
            Ok(report(ctx, snap, &bounds, &deleted, notes, before, "copy"))
        }
        Ok(Copied::Nothing(bounds)) => {
            notes.push(crate::jobs::prune::plan::nothing_to_prune(
                snap, false, true,
            ));
            Ok(report(
                ctx,
                snap,
                &bounds,
                &HashMap::new(),
                notes,
                before,
                "nothing",
            ))
        }
        Err(mut e) => {
            // Not swapped: a hard link would follow the live file from now on, so it is no
            // backup. Remove it (the original is untouched).
            if let (Some((partial, _)), DirState::Untouched) = (&linked, e.state) {
                discard_backup(partial);
                e.backup = None;
            }
            Err(e)
        }
    }
}

/// Write the new file and copy the WAL into it, leaving out what `rule` says.
fn copy_wal(
    c: &mut Ctx<'_>,
    snap: &Snapshot,
    header: &swap::Header,
    like: &std::fs::Metadata,
    rule: swap::Rule,
    expected: Option<u64>,
) -> Result<(swap::NewFile, swap::Copier)> {
    let cancel = c.cancel.clone();
    let new = swap::NewFile::create(&snap.persist_dir, like)?;
    let copier = swap::Copier::open(&new, &snap.sqlite_path, header)?;
    cancel.attach_handle(copier.interrupt_handle());
    // Read ahead of the copy; kept open until the job's connections to the original have
    // closed (closing it would drop their POSIX locks).
    let original = std::fs::File::open(&snap.sqlite_path).ok();
    let mut ev = CopyEvents {
        c,
        throttle: Throttle::new(),
        expected,
    };
    let copied = copier
        .create_schema()
        .and_then(|_| copier.copy_queue(rule, &mut ev, original.as_ref()));
    c.keep_open.extend(original);
    copied.map_err(|e| or_cancelled(&cancel, Step::Delete, e))?;
    Ok((new, copier))
}

pub(in crate::jobs) fn copy_steps(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    snap: &Snapshot,
    keep: Keep<'_>,
    backup_folder: Option<&Path>,
    linked: &mut Option<(PathBuf, PathBuf)>,
    notes: &mut Vec<String>,
) -> std::result::Result<Copied, JobError> {
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
    // A copy that counts the WAL itself makes its backup once it knows there is something
    // to delete (a prune that deletes nothing writes nothing, not even a backup).
    let mut backup_step = |ctx: &mut Ctx<'_>| -> std::result::Result<(), JobError> {
        let Some(folder) = backup_folder else {
            ctx.skip(Step::Backup, "--no-backup");
            return Ok(());
        };
        let bytes = pages * page_size;
        let path = ctx.timed(
            Step::Backup,
            Some(bytes),
            Unit::Bytes,
            |c| match link_backup(&snap.sqlite_path, folder, bytes) {
                Ok((partial, dest)) => {
                    *linked = Some((partial, dest.clone()));
                    write_manifest(&snap.persist_dir, &dest, "copy", bytes)?;
                    let d = format!("{} (hard link of the untouched original)", dest.display());
                    Ok((dest, Some(d)))
                }
                Err(why) => {
                    let p = backup(c, &snap.sqlite_path, folder, pages, page_size)?;
                    if let Err(e) = write_manifest(&snap.persist_dir, &p, "copy", bytes) {
                        // A backup without its manifest is none: the original is untouched.
                        discard_backup(&p);
                        return Err(e);
                    }
                    let d = format!("{} (copied: {why})", p.display());
                    Ok((p, Some(d)))
                }
            },
        )?;
        ctx.backup = Some(path);
        Ok(())
    };
    if matches!(keep, Keep::Planned(_)) {
        backup_step(ctx)?;
    }

    // 3. Delete: the kept WAL rows into a new file.
    let cancel = ctx.cancel.clone();
    let counted_compact = match &keep {
        Keep::Counted { compact, .. } => Some(*compact),
        Keep::Planned(_) => None,
    };
    let total = match &keep {
        Keep::Planned(bounds) => Some(expected_rows(bounds)),
        // Rows read, against the table's seq_id span.
        Keep::Counted { .. } => crate::chroma::ranged::extent(conn)
            .ok()
            .flatten()
            .map(|(lo, hi)| (hi.saturating_sub(lo) as u64).saturating_add(1)),
    };
    let (mut new, copier, bounds) = ctx.timed(Step::Delete, total, Unit::Rows, |c| {
        let (rule, settle) = match keep {
            Keep::Planned(bounds) => {
                let rule = swap::rule_of_bounds(cut_bounds(&bounds));
                let expected = Some(expected_rows(&bounds));
                let (new, copier) = copy_wal(c, snap, &header, &meta, rule, expected)?;
                return Ok(((new, copier, bounds), None));
            }
            Keep::Counted { rule, settle, .. } => (rule, settle),
        };
        let (new, copier) = copy_wal(c, snap, &header, &meta, rule, None)?;
        let counts = copier.counts();
        // Ctrl-C now stops the guard's and the coverage check's reads on the locked
        // connection; then the copier's again, for the steps after this one.
        cancel.attach(conn);
        let settled = settle(&counts);
        cancel.attach_handle(copier.interrupt_handle());
        let (bounds, plan_notes) = settled?;
        notes.extend(plan_notes);
        c.check_cancel(Step::Delete)?;
        if counted::copied_as_planned(&bounds, &counts) {
            let d = format!(
                "{} rows read and counted in the copy",
                crate::units::count(counts.seen_total())
            );
            return Ok(((new, copier, bounds), Some(d)));
        }
        // The plan keeps rows this copy left out (the seq_id guard, or records only the
        // WAL holds): copy again, with the plan's bounds.
        drop(copier);
        drop(new);
        let rule = swap::rule_of_bounds(cut_bounds(&bounds));
        let expected = Some(expected_rows(&bounds));
        let (new, copier) = copy_wal(c, snap, &header, &meta, rule, expected)?;
        if !counted::copied_as_planned(&bounds, &copier.counts()) {
            return Err(Error::failed(
                "the second copy left out other rows than the plan built from the first one's \
                 count",
            ));
        }
        let d = "copied twice: the plan built from the first copy's count keeps rows it left out";
        Ok(((new, copier, bounds), Some(d.into())))
    })?;
    if counted_compact == Some(false) && expected_rows(&bounds) == 0 {
        cancel.detach();
        drop(copier);
        drop(new);
        let rest = [Step::Backup, Step::Compact, Step::Verify, Step::Swap];
        ctx.skip_each(&rest, "nothing to prune");
        return Ok(Copied::Nothing(bounds));
    }
    if counted_compact.is_some() {
        backup_step(ctx)?;
    }
    let keep_bounds = cut_bounds(&bounds);
    let expected = expected_rows(&bounds);

    // 4. Compact: every other table, the header values, one commit; the fsync starts.
    let (counts, flush) = ctx.timed(Step::Compact, Some(tables), Unit::Tables, |c| {
        let mut ev = CopyEvents {
            c,
            throttle: Throttle::new(),
            expected: Some(expected),
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
        verify::verify(
            &new,
            &snap.sqlite_path,
            &header,
            &counts,
            &keep_bounds,
            flush,
        )
        .map_err(|e| e.context("the new file"))?;
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
    Ok(Copied::Swapped(counts.deleted(), bounds))
}
