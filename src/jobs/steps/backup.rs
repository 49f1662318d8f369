//! The backup step: a page-for-page copy of chroma.sqlite3 (or a hard link of the untouched
//! original when the prune writes a copy), its manifest, and the links a later run removes.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::backup::backup_path;
use crate::backup::files;
use crate::chroma::db;
use crate::error::{Error, Result};
use crate::jobs::runner::{Ctx, Event, Step, Throttle};
use crate::jobs::steps::delete::integrity;

/// A page-for-page copy with SQLite's online backup API, fsynced and integrity-checked.
pub(in crate::jobs) fn backup(
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

/// The backup as a hard link of the original: the same inode, so the same bytes. Never
/// opens the original (closing a descriptor of it would drop our SQLite lock). Returns the
/// `.partial` link and the name it gets once the swap has made it a backup.
pub(in crate::jobs) fn link_backup(
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
pub(in crate::jobs) fn remove_live_links(folder: &Path, live: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            let partial = p.join(format!("{}.partial", crate::backup::SQLITE_COPY));
            if let Ok(m) = std::fs::symlink_metadata(&partial) {
                if m.is_file() && m.dev() == live.dev() && m.ino() == live.ino() {
                    let _ = std::fs::remove_file(&partial);
                    let _ = std::fs::remove_file(p.join(crate::backup::MANIFEST));
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

/// Take back a backup of a file the prune did not change (the `.partial` link of the live
/// file, or a copy of it): the file, its manifest, and its prune folder once empty.
pub(in crate::jobs) fn discard_backup(file: &Path) {
    let _ = std::fs::remove_file(file);
    if let Some(folder) = file.parent() {
        let m = crate::backup::MANIFEST;
        let _ = std::fs::remove_file(folder.join(m));
        let _ = std::fs::remove_file(folder.join(format!("{m}.tmp")));
        let _ = std::fs::remove_dir(folder);
    }
}

/// Record the backup in its prune folder (before anything of the dir changes).
pub(in crate::jobs) fn write_manifest(
    persist_dir: &Path,
    backup_file: &Path,
    method: &str,
    bytes: u64,
) -> Result<()> {
    let folder = backup_file.parent().unwrap_or(Path::new("."));
    let mut m = crate::backup::Manifest::new(persist_dir, method);
    m.sqlite = Some(crate::backup::SQLITE_COPY.into());
    m.sqlite_bytes = bytes;
    m.write(folder)
}
