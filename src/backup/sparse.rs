//! Copying a file that may be sparse without filling its holes: hnswlib grows a torn
//! `link_lists.bin` by seeking past its end (chroma issue 7510), to hundreds of gigabytes or
//! terabytes of which only megabytes are on disk. A copy into a backup on another filesystem
//! copies the data extents (`SEEK_DATA` / `SEEK_HOLE`) and sets the length, so the copy reads
//! byte for byte as the original and takes about the same blocks; the comparison reads the
//! same extents. Where the filesystem reports no holes, the whole file is one extent.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::Result;

/// The data extents of `f` (offset, length), in order; the whole file when holes cannot be
/// asked for.
pub fn extents(f: &File) -> std::io::Result<Vec<(u64, u64)>> {
    let len = f.metadata()?.len();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < len {
        // SAFETY: lseek on a descriptor we own; no memory is passed.
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                // No data after `pos`: the rest is a hole.
                Some(libc::ENXIO) => Ok(out),
                // Holes cannot be asked for here: one extent from `pos`.
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) if out.is_empty() => Ok(vec![(0, len)]),
                _ => Err(e),
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 {
            len
        } else {
            (hole as u64).min(len)
        };
        let start = data as u64;
        if end > start {
            out.push((start, end - start));
        }
        pos = end.max(start + 1);
    }
    Ok(out)
}

/// The bytes of `path` on disk (its blocks), which for a sparse file are fewer than its length.
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .map(|m| m.blocks().saturating_mul(512))
        .unwrap_or(0)
}

/// Copy `from` to the new file `to`: its data extents, then its length.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let src = File::open(from)?;
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let mut buf = vec![0u8; 1 << 20];
    for (start, len) in extents(&src)? {
        let mut at = start;
        let end = start + len;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], at)?;
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
    }
    dst.set_len(src.metadata()?.len())?;
    dst.set_permissions(src.metadata()?.permissions())?;
    dst.sync_all()?;
    Ok(())
}

/// Whether `b` reads as `a`: the same length, and the same bytes in `a`'s data extents and in
/// `b`'s (a hole of either reads as zeros, and is compared where the other has data).
pub fn same(a: &Path, b: &Path) -> Result<bool> {
    let (fa, fb) = (File::open(a)?, File::open(b)?);
    let len = fa.metadata()?.len();
    if len != fb.metadata()?.len() {
        return Ok(false);
    }
    // A file with as many blocks as bytes has no hole to trust a report of: compared whole
    // (a filesystem that reports dirty data as a hole would otherwise agree with itself).
    let mut ranges = if allocated(a) >= len {
        vec![(0, len)]
    } else {
        extents(&fa)?
    };
    ranges.extend(extents(&fb)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for (start, n) in ranges {
        let mut at = start;
        let end = (start + n).min(len);
        while at < end {
            let k = ((end - at) as usize).min(ba.len());
            fa.read_exact_at(&mut ba[..k], at)?;
            fb.read_exact_at(&mut bb[..k], at)?;
            if ba[..k] != bb[..k] {
                return Ok(false);
            }
            at += k as u64;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_file_is_copied_as_its_extents_and_reads_the_same() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        let f = File::create(&a).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(b"tail", 1 << 30).unwrap();
        drop(f);
        copy(&a, &b).unwrap();
        assert_eq!(std::fs::metadata(&b).unwrap().len(), (1 << 30) + 4);
        assert!(same(&a, &b).unwrap());
        // Far fewer blocks than its length, where the filesystem keeps holes.
        if allocated(&a) < 1 << 20 {
            assert!(allocated(&b) < 1 << 20, "{}", allocated(&b));
        }
        // A byte changed in a hole of one is seen.
        File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .write_all_at(b"x", 1 << 20)
            .unwrap();
        assert!(!same(&a, &b).unwrap());
    }
}
