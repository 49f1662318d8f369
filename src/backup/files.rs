//! Small file operations every write job shares, below the steps that use them: fsyncing a
//! folder, moving a folder (across filesystems by a verified copy), comparing two files.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// fsync a folder, so the names created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Exchange two paths in one atomic rename (`renameat2(RENAME_EXCHANGE)`): at every moment
/// each name holds one of the two, whole.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

/// Rename `from` to `to`; across filesystems, copy, verify, fsync, then remove `from`.
pub fn move_dir(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => {
            if let Some(parent) = to.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            // Copied under another name and renamed whole: a kill mid-copy never leaves a
            // partial folder under the name a manifest points to.
            let mut partial = to.as_os_str().to_owned();
            partial.push(".partial");
            let partial = std::path::PathBuf::from(partial);
            if partial.exists() {
                std::fs::remove_dir_all(&partial)?;
            }
            copy_verified(from, &partial)?;
            std::fs::rename(&partial, to)?;
            if let Some(parent) = to.parent() {
                sync_dir(parent)?;
            }
            std::fs::remove_dir_all(from)?;
            Ok(())
        }
        Err(e) => Err(Error::failed(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))),
    }
}

fn copy_verified(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_verified(&src, &dst)?;
            continue;
        }
        // Its data extents only: a torn link_lists.bin can be terabytes long and megabytes on
        // disk. Compared the same way, a block at a time.
        super::sparse::copy(&src, &dst)?;
        if !super::sparse::same(&src, &dst)? {
            return Err(Error::failed(format!(
                "the copy of {} differs from the original",
                src.display()
            )));
        }
    }
    sync_dir(to)?;
    if let Some(parent) = to.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Whether two files hold the same bytes, compared a block at a time.
pub fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
