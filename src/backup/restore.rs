//! `restore`: put a persist dir back as it was before a prune, from that prune's backup
//! folder and its manifest (never guessing).
//!
//! Crash safety, step by step:
//! - chroma.sqlite3 changes once, by an atomic rename of a complete, fsynced, verified copy
//!   of the backup (`chroma.sqlite3.chroma-wal-restore` beside it until then). A kill before
//!   the rename leaves the pruned dir (and at most that temporary file, which the next
//!   restore or prune removes); after it, the restored file.
//! - The folders put back were orphans before the prune too: no segment names them, in the
//!   pruned file or in the restored one. So whichever of them are back when a kill lands,
//!   Chroma reads exactly the same data; a second restore moves the rest.
//! - Before the rename, the current file's side files are dealt with: a hot journal is
//!   refused (SQLite would roll it back into the restored file), a `-wal` is folded into the
//!   current file and removed, so no frame of it can be replayed onto the restored one.

use std::path::{Path, PathBuf};

use super::files::same_bytes;
use super::{self as backups, BackupInfo};
use crate::chroma::{db, procs, Sizes, SQLITE_FILE};
use crate::error::{Error, Result};

/// The temporary name of the restored file until its rename.
pub use crate::chroma::RESTORE_FILE;
/// A forced restore keeps the file it replaced in the backup folder under this name.
pub const REPLACED_FILE: &str = "replaced-chroma.sqlite3";

/// `name` in `folder`, or `name.1`, `name.2`, … if it is taken.
fn free_name(folder: &Path, name: &str) -> PathBuf {
    let mut p = folder.join(name);
    let mut i = 1;
    while std::fs::symlink_metadata(&p).is_ok() {
        p = folder.join(format!("{name}.{i}"));
        i += 1;
    }
    p
}

/// What a restore would put back.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub persist_dir: PathBuf,
    pub backup: BackupInfo,
    /// The backup's chroma.sqlite3, when the prune changed the file.
    pub sqlite: Option<PathBuf>,
    pub sqlite_bytes: u64,
    /// Folders to move back: (name, where it is in the backup, bytes).
    pub dirs: Vec<(String, PathBuf, u64)>,
    /// Folders the manifest names that are not in the backup (already back, say).
    pub missing: Vec<String>,
    /// Index folders `compact` replaced: (name, where the old one is, bytes). Each is
    /// exchanged with the rebuilt one, which stays in the backup folder. The old one is in the
    /// backup, or (a compact or a restore interrupted) beside the segment's folder.
    pub indexes: Vec<(String, PathBuf, u64)>,
    /// Why an index folder is not the one compact left (Chroma wrote to it since): restoring
    /// would throw those writes away, so `run` refuses unless forced.
    pub index_changed: Option<String>,
    /// Why the live file is not the one the prune left (Chroma wrote since): restoring
    /// would throw those writes away, so `run` refuses unless forced.
    pub changed: Option<String>,
}

/// A manifest names only what a prune writes: `chroma.sqlite3`, and segment folders by
/// their UUIDs. Anything else (a path, `..`) is not ours to move or copy.
fn check_manifest(b: &BackupInfo) -> Result<()> {
    let m = &b.manifest;
    let bad = |what: &str| {
        Err(Error::refused(format!(
            "{} names {what}, which no prune writes; refusing to use it",
            b.folder.join(backups::MANIFEST).display()
        )))
    };
    if let Some(s) = &m.sqlite {
        if s != backups::SQLITE_COPY {
            return bad(&format!("the file {s:?}"));
        }
    }
    for name in m
        .dirs
        .iter()
        .map(|d| &d.name)
        .chain(m.indexes.iter().map(|d| &d.name))
    {
        if !crate::chroma::snapshot::looks_like_uuid(name) {
            return bad(&format!("the folder {name:?}"));
        }
    }
    Ok(())
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Find the backup (`from`, or the newest in `default_folder`) and what it would restore.
pub fn plan(persist_dir: &Path, from: Option<&Path>, default_folder: &Path) -> Result<RestorePlan> {
    crate::chroma::snapshot::check_persist_dir(persist_dir)?;
    let backup = match from {
        Some(f) => backups::resolve(f, persist_dir)?,
        None => backups::list(default_folder, persist_dir)
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no backup of {} in {} (give one with --from)",
                    persist_dir.display(),
                    default_folder.display()
                ))
            })?,
    };
    check_manifest(&backup)?;
    let live = persist_dir.join(SQLITE_FILE);
    let sqlite = match &backup.manifest.sqlite {
        Some(name) => {
            let p = backup.folder.join(name);
            let partial = db::side_file(&p, ".partial");
            if p.is_file() {
                Some(p)
            } else if partial.is_file() && !same_inode(&partial, &live) {
                // The hard-linked original keeps `.partial` until after the swap: a prune
                // killed between the swap and that rename left the complete original here.
                Some(partial)
            } else {
                return Err(Error::refused(if partial.exists() {
                    format!(
                        "{} was never swapped in (the prune stopped before it): the dir was left \
                         as it was, there is nothing to restore",
                        partial.display()
                    )
                } else {
                    format!("{} is missing from the backup", p.display())
                }));
            }
        }
        None => None,
    };
    let changed = match (&sqlite, backup.manifest.pruned) {
        (Some(src), Some(stamp)) => match backups::FileStamp::of(&live) {
            Some(now) if now == stamp => None,
            // Already restored (a restore killed after its rename): nothing would be lost.
            Some(_) if same_bytes(src, &live).unwrap_or(false) => None,
            Some(now) if now.inode != stamp.inode => {
                Some("chroma.sqlite3 was replaced since the prune".to_string())
            }
            Some(_) => Some("chroma.sqlite3 was written since the prune".to_string()),
            None => None,
        },
        _ => None,
    };
    let sqlite_bytes = sqlite
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    let (mut dirs, mut missing) = (Vec::new(), Vec::new());
    for d in &backup.manifest.dirs {
        let at = backup.folder.join(backups::DIRS).join(&d.name);
        if at.is_dir() && !persist_dir.join(&d.name).exists() {
            dirs.push((d.name.clone(), at.clone(), d.bytes));
        } else {
            missing.push(d.name.clone());
        }
    }
    let mut indexes = Vec::new();
    let mut index_changed = None;
    for d in &backup.manifest.indexes {
        let live = persist_dir.join(&d.name);
        // The old folder: in the backup, or where an interrupted job left it, known by its
        // files and their lengths as recorded before the exchange.
        let candidates = [
            backup.folder.join(backups::DIRS).join(&d.name),
            persist_dir.join(format!(".{}.chroma-wal-restore", d.name)),
            persist_dir.join(format!(".{}.chroma-wal-old", d.name)),
            persist_dir.join(format!(".{}.chroma-wal-new", d.name)),
        ];
        let whole = |p: &PathBuf| {
            p.is_dir()
                && match (&d.old, backups::folder_stamp(p)) {
                    (Some(old), Some(now)) => {
                        backups::stamp_shape(old) == backups::stamp_shape(&now)
                    }
                    // A manifest from before the stamps: the backup's folder as it is.
                    (None, _) => true,
                    _ => false,
                }
        };
        let Some(at) = candidates.iter().find(|p| whole(p)).cloned() else {
            missing.push(d.name.clone());
            continue;
        };
        if !live.is_dir() {
            missing.push(d.name.clone());
            continue;
        }
        let now = backups::folder_stamp(&live);
        if d.rebuilt.is_none() || now != d.rebuilt {
            index_changed.get_or_insert_with(|| {
                format!(
                    "the index folder {} is not as compact left it (Chroma wrote to it since, or \
                     the compaction stopped before recording it)",
                    d.name
                )
            });
        }
        indexes.push((d.name.clone(), at, d.bytes));
    }
    Ok(RestorePlan {
        persist_dir: persist_dir.to_path_buf(),
        backup,
        sqlite,
        sqlite_bytes,
        dirs,
        missing,
        indexes,
        index_changed,
        changed,
    })
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub sqlite_restored: bool,
    pub dirs_restored: Vec<String>,
    pub sizes_before: Sizes,
    pub sizes_after: Sizes,
}

fn refuse_if_held(persist_dir: &Path) -> Result<()> {
    let holders = procs::find(persist_dir);
    if !holders.list.is_empty() {
        return Err(Error::refused(format!(
            "the persist dir is open in {}: stop Chroma first",
            holders.describe()
        )));
    }
    if procs::open_for_writing(&persist_dir.join(SQLITE_FILE)) == Some(true) {
        return Err(Error::refused(
            "chroma.sqlite3 is open for writing in a process this one cannot see: stop Chroma first",
        ));
    }
    Ok(())
}

/// Refuse while the live file has a hot journal: SQLite would roll it into the restored file.
fn refuse_hot_journal(live: &Path) -> Result<()> {
    if crate::chroma::snapshot::journal_is_hot(&db::side_file(live, "-journal")) {
        return Err(Error::refused(
            "chroma.sqlite3-journal is hot (an interrupted write): start and stop Chroma once \
             so SQLite rolls it back, then restore",
        ));
    }
    Ok(())
}

/// Refuse while the live file has a hot journal or a `-wal` (a write in flight).
fn refuse_side_files(live: &Path) -> Result<()> {
    refuse_hot_journal(live)?;
    if db::side_file(live, "-wal").exists() {
        return Err(Error::refused(
            "chroma.sqlite3-wal could not be folded in and removed; stop every process using the dir",
        ));
    }
    Ok(())
}

/// Put the dir back. `progress(what)` says each step in words. With `force`, a live file
/// Chroma wrote since the prune is replaced too, and kept in the backup folder.
pub fn run(plan: &RestorePlan, force: bool, progress: &mut dyn FnMut(&str)) -> Result<Restored> {
    let dir = &plan.persist_dir;
    refuse_if_held(dir)?;
    let live = dir.join(SQLITE_FILE);
    let sizes_before = Sizes::read(dir);
    let mut sqlite_restored = false;
    if let Some(src) = &plan.sqlite {
        refuse_hot_journal(&live)?;
        // A -wal belongs to the file being replaced: fold it in, so that nothing of it can
        // be replayed onto the restored file.
        crate::jobs::copy::walmode::checkpoint(&live)?;
        refuse_side_files(&live)?;
        // Writes since the prune (folded in just now, if they were in a -wal) would be lost.
        let changed = match plan.backup.manifest.pruned {
            Some(stamp) => {
                backups::FileStamp::of(&live).is_some_and(|now| now != stamp)
                    && !same_bytes(src, &live).unwrap_or(false)
            }
            None => false,
        };
        let keep_replaced = if changed {
            if !force {
                return Err(Error::refused(format!(
                    "{}: restoring would throw those writes away (pass --force to restore \
                     anyway; the current file is then kept in the backup folder)",
                    plan.changed
                        .as_deref()
                        .unwrap_or("chroma.sqlite3 was written since the prune was planned")
                )));
            }
            Some(free_name(&plan.backup.folder, REPLACED_FILE))
        } else {
            None
        };
        progress("copying the backup of chroma.sqlite3");
        let tmp = dir.join(RESTORE_FILE);
        let _ = std::fs::remove_file(&tmp);
        std::fs::copy(src, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        progress("verifying the copy");
        if !same_bytes(src, &tmp)? {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::failed(
                "the copy of the backup differs from it; nothing was changed",
            ));
        }
        if let Ok(meta) = std::fs::metadata(&live) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
            let _ = std::fs::set_permissions(
                &tmp,
                std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
            );
        }
        // The last check before the rename: nobody opened the dir meanwhile.
        if let Err(e) = refuse_if_held(dir) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = refuse_side_files(&live) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Some(keep) = &keep_replaced {
            progress(&format!("keeping the current file as {}", keep.display()));
            let kept = std::fs::hard_link(&live, keep)
                .or_else(|_| std::fs::copy(&live, keep).map(|_| ()))
                .and_then(|_| std::fs::File::open(keep)?.sync_all())
                .and_then(|_| super::files::sync_dir(&plan.backup.folder));
            if let Err(e) = kept {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::failed(format!(
                    "cannot keep the current file as {} ({e}); nothing was changed",
                    keep.display()
                )));
            }
        }
        progress("swapping it in");
        if let Err(e) = std::fs::rename(&tmp, &live) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        super::files::sync_dir(dir)?;
        let _ = std::fs::remove_file(db::side_file(&live, "-shm"));
        sqlite_restored = true;
    }
    if let Some(why) = plan.index_changed.as_deref().filter(|_| !force) {
        return Err(Error::refused(format!(
            "{why}: restoring would throw those writes away (pass --force to restore anyway; \
             the current folder is then kept in the backup folder)"
        )));
    }
    let mut dirs_restored = Vec::new();
    for (name, from, _) in &plan.indexes {
        progress(&format!("putting index folder {name} back"));
        let side = dir.join(format!(".{name}.chroma-wal-restore"));
        if from != &side {
            if side.exists() {
                // Not the old index (the plan would have taken it): a copy cut short.
                std::fs::remove_dir_all(&side)?;
            }
            super::files::move_dir(from, &side)?;
            super::files::sync_dir(dir)?;
        }
        if let Err(e) = super::files::exchange(&side, &dir.join(name)) {
            let _ = super::files::move_dir(&side, from);
            return Err(Error::failed(format!(
                "cannot exchange index folder {name} with its backup ({e}); it was left as it was"
            )));
        }
        super::files::sync_dir(dir)?;
        // The rebuilt folder, now under the side name, stays in the backup folder.
        let keep = free_name(
            &plan.backup.folder.join(backups::DIRS),
            &format!("{name}.rebuilt"),
        );
        super::files::move_dir(&side, &keep)?;
        dirs_restored.push(name.clone());
    }
    for (name, from, _) in &plan.dirs {
        progress(&format!("moving folder {name} back"));
        super::files::move_dir(from, &dir.join(name))?;
        super::files::sync_dir(dir)?;
        dirs_restored.push(name.clone());
    }
    Ok(Restored {
        sqlite_restored,
        dirs_restored,
        sizes_before,
        sizes_after: Sizes::read(dir),
    })
}
