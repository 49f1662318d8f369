//! Checks made before anything is written: who holds the dir, journals, schema, permissions,
//! free disk. Each failed check is a refusal with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::chroma::{fsinfo, Snapshot};
use crate::error::{Error, Result};
use crate::units;

/// Headroom kept free on every filesystem: 1% of the need plus 16 MiB.
fn margin(need: u64) -> u64 {
    need / 100 + 16 * 1024 * 1024
}

/// Where SQLite puts the temporary database of a VACUUM (its own search order on unix).
pub fn sqlite_temp_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("SQLITE_TMPDIR").map(PathBuf::from),
        std::env::var_os("TMPDIR").map(PathBuf::from),
        Some(PathBuf::from("/var/tmp")),
        Some(PathBuf::from("/usr/tmp")),
        Some(PathBuf::from("/tmp")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_dir() && writable(p))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `access(W_OK)`: can this process write there.
pub fn writable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The disk a prune needs, per place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceNeed {
    pub place: PathBuf,
    pub what: String,
    pub bytes: u64,
}

/// The outcome of the free-space check, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceCheck {
    pub needs: Vec<SpaceNeed>,
    /// Per filesystem: (a path on it, bytes needed, bytes free).
    pub filesystems: Vec<(PathBuf, u64, u64)>,
    pub ok: bool,
}

impl SpaceCheck {
    pub fn summary(&self) -> String {
        self.filesystems
            .iter()
            .map(|(p, need, free)| {
                format!(
                    "{}: needs {}, {} free",
                    p.display(),
                    units::bytes(*need),
                    units::bytes(*free)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The nearest existing ancestor of `p` (a backup dir may not exist yet).
fn probe(p: &Path) -> PathBuf {
    p.ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// Whether two paths are on the same filesystem.
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(probe(a)), std::fs::metadata(probe(b))) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

/// Estimate the disk a prune needs and compare with what is free.
/// - backup: nothing when it is a hard link of the original (by copy, same filesystem),
///   otherwise a page copy of `chroma.sqlite3` on the backup filesystem;
/// - by copy: the compacted new file, in the persist dir;
/// - in place: the rollback journal holds the original of every page the delete touches,
///   then VACUUM writes a temporary copy of the result in SQLite's temp dir and a rollback
///   journal of up to the whole original file while it copies back.
pub fn space(
    persist_dir: &Path,
    sqlite_bytes: u64,
    freed_estimate: u64,
    backup_dir: Option<&Path>,
    vacuum: bool,
    by_copy: bool,
) -> SpaceCheck {
    let after = sqlite_bytes.saturating_sub(freed_estimate);
    let mut needs = Vec::new();
    if let Some(b) = backup_dir {
        let linked = by_copy && same_filesystem(b, persist_dir);
        needs.push(SpaceNeed {
            place: b.to_path_buf(),
            what: if linked {
                "backup (a hard link of the original file)".into()
            } else {
                "backup copy".into()
            },
            bytes: if linked { 0 } else { sqlite_bytes },
        });
    }
    if by_copy {
        needs.push(SpaceNeed {
            place: persist_dir.to_path_buf(),
            what: "compacted copy".into(),
            bytes: after,
        });
    } else {
        needs.push(SpaceNeed {
            place: persist_dir.to_path_buf(),
            what: "rollback journal".into(),
            bytes: if vacuum {
                sqlite_bytes
            } else {
                freed_estimate.min(sqlite_bytes)
            },
        });
        if vacuum {
            needs.push(SpaceNeed {
                place: sqlite_temp_dir(),
                what: "VACUUM temporary copy".into(),
                bytes: after,
            });
        }
    }
    let mut by_dev: BTreeMap<u64, (PathBuf, u64, u64)> = BTreeMap::new();
    let mut ok = true;
    for n in &needs {
        // The backup dir may not exist yet: measure its nearest existing ancestor.
        let probe = probe(&n.place);
        match fsinfo::free_space(&probe) {
            Some((free, dev)) => {
                let e = by_dev.entry(dev).or_insert((probe, 0, free));
                e.1 += n.bytes;
            }
            None => ok = false,
        }
    }
    let filesystems: Vec<_> = by_dev.into_values().collect();
    for (_, need, free) in &filesystems {
        if need + margin(*need) > *free {
            ok = false;
        }
    }
    SpaceCheck {
        needs,
        filesystems,
        ok,
    }
}

/// Everything that must hold before a prune writes anything.
pub fn check(snap: &Snapshot, space: &SpaceCheck) -> Result<()> {
    let blockers = snap.prune_blockers();
    if let Some(b) = blockers.first() {
        return Err(Error::refused(b.clone()));
    }
    if !writable(&snap.persist_dir) {
        return Err(Error::refused(format!(
            "{} is not writable: chroma-wal needs to write its rollback journal there",
            snap.persist_dir.display()
        )));
    }
    if !writable(&snap.sqlite_path) {
        return Err(Error::refused(format!(
            "{} is read-only",
            snap.sqlite_path.display()
        )));
    }
    if !space.ok {
        return Err(Error::refused(format!(
            "not enough free disk for the prune ({})",
            space.summary()
        )));
    }
    Ok(())
}
