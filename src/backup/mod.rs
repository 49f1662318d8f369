//! The backups a prune leaves: one folder per prune, `<backup dir>/<persist dir name>-<UTC
//! time>/`, holding `chroma.sqlite3` as it was, the segment folders the prune moved away
//! (`dirs/<name>/`), and `manifest.json`, which says what was done. `restore` reads the
//! manifest and never guesses.
//!
//! A room beside the prune, below it: the prune writes its backups with what is here, and
//! `restore` ([`restore`]) puts one back. [`files`] holds the file operations both share
//! (fsync a folder, move a folder across filesystems by a verified copy, compare two files).

pub mod files;
pub mod restore;
pub mod sparse;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MANIFEST: &str = "manifest.json";
/// The copy of chroma.sqlite3 inside a prune's backup folder.
pub const SQLITE_COPY: &str = "chroma.sqlite3";
/// Where moved segment folders go inside a prune's backup folder.
pub const DIRS: &str = "dirs";

/// What a prune did, as its backup folder records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format of this file.
    pub version: u32,
    pub tool: String,
    /// The persist dir, canonical, as text (non-UTF-8 bytes replaced) …
    pub persist_dir: String,
    /// … and exactly, as the hex of its bytes (paths may be any bytes on Linux).
    pub persist_dir_hex: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// `copy`, `in_place`, `delete_only`, or `none` (only folders were reclaimed).
    pub method: String,
    /// `chroma.sqlite3` as it was, inside this folder; `None` when the file was not pruned.
    pub sqlite: Option<String>,
    /// Its length.
    pub sqlite_bytes: u64,
    /// Segment folders moved into `dirs/` (or deleted, with `--no-backup`: then not listed).
    pub dirs: Vec<MovedDir>,
    /// The pruned chroma.sqlite3 as the prune left it: a restore that finds it otherwise
    /// (Chroma wrote since) would throw those writes away, and refuses unless forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<FileStamp>,
    /// Vector index folders `compact` replaced with rebuilt ones: the old folder is in
    /// `dirs/`, and `restore` exchanges it with the rebuilt one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<ReplacedIndex>,
}

/// An index folder `compact` replaced: the old one is in `dirs/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedIndex {
    pub name: String,
    /// The old folder's bytes.
    pub bytes: u64,
    /// The rebuilt folder as `compact` left it ([`folder_stamp`]): a restore that finds it
    /// otherwise (Chroma wrote to the index since) would throw those writes away, and refuses
    /// unless forced. `None`: the job stopped before it could record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    /// The old folder's [`folder_stamp`], recorded before the exchange: a folder an
    /// interrupted compact left is known to be this old index by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
}

/// Every file of a folder with its length and modification time, as one string: equal
/// stamps mean no file was written, added or removed.
pub fn folder_stamp(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut parts = Vec::new();
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        let m = e.metadata().ok()?;
        parts.push(format!(
            "{}:{}:{}.{}",
            e.file_name().to_string_lossy(),
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        ));
    }
    parts.sort();
    Some(parts.join(";"))
}

/// Enough of a file's identity to tell that it was written or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub inode: u64,
    pub bytes: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl FileStamp {
    pub fn of(p: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).ok()?;
        Some(FileStamp {
            inode: m.ino(),
            bytes: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedDir {
    pub name: String,
    pub bytes: u64,
}

/// The files of a [`folder_stamp`] with their lengths, without the times (a copy across
/// filesystems keeps names and lengths, not modification times).
pub fn stamp_shape(stamp: &str) -> Vec<(&str, &str)> {
    stamp
        .split(';')
        .filter_map(|part| {
            let mut it = part.rsplitn(3, ':');
            let _time = it.next()?;
            let len = it.next()?;
            let name = it.next()?;
            Some((name, len))
        })
        .collect()
}

/// A new backup folder of `persist_dir` in `folder` for a job that moves folders but leaves
/// chroma.sqlite3 alone, with its manifest (method `none`).
pub fn folder_only(persist_dir: &Path, folder: &Path) -> Result<PathBuf> {
    let file = backup_path(persist_dir, folder)?;
    let made = file.parent().unwrap_or(folder).to_path_buf();
    Manifest::new(persist_dir, "none").write(&made)?;
    Ok(made)
}

/// The canonical form of a persist dir, and the hex of its bytes.
fn identity(persist_dir: &Path) -> (PathBuf, String) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::fs::canonicalize(persist_dir).unwrap_or_else(|_| persist_dir.to_path_buf());
    let hex = p
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (p, hex)
}

impl Manifest {
    pub fn new(persist_dir: &Path, method: &str) -> Manifest {
        let (p, hex) = identity(persist_dir);
        Manifest {
            version: 1,
            tool: format!("chroma-wal {}", env!("CARGO_PKG_VERSION")),
            persist_dir: p.display().to_string(),
            persist_dir_hex: hex,
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            method: method.to_string(),
            sqlite: None,
            sqlite_bytes: 0,
            dirs: Vec::new(),
            pruned: None,
            indexes: Vec::new(),
        }
    }

    /// Write it into `folder`, durably (a temporary name, fsync, rename, fsync the folder).
    pub fn write(&self, folder: &Path) -> Result<()> {
        let tmp = folder.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::failed(format!("cannot write the manifest: {e}")))?;
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, folder.join(MANIFEST))?;
        files::sync_dir(folder)?;
        Ok(())
    }

    /// Add one folder to the manifest in `folder`, durably.
    pub fn note_dir(folder: &Path, name: &str, bytes: u64) -> Result<()> {
        let mut m = Manifest::read(folder)?;
        if !m.dirs.iter().any(|d| d.name == name) {
            m.dirs.push(MovedDir {
                name: name.to_string(),
                bytes,
            });
        }
        m.write(folder)
    }

    /// Record one index folder about to be replaced in the manifest in `folder`, with the
    /// stamps of the old and the rebuilt folder, durably.
    pub fn note_index(
        folder: &Path,
        name: &str,
        bytes: u64,
        old: Option<String>,
        rebuilt: Option<String>,
    ) -> Result<()> {
        let mut m = Manifest::read(folder)?;
        m.indexes.retain(|d| d.name != name);
        m.indexes.push(ReplacedIndex {
            name: name.to_string(),
            bytes,
            rebuilt,
            old,
        });
        m.write(folder)
    }

    pub fn read(folder: &Path) -> Result<Manifest> {
        let p = folder.join(MANIFEST);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            Error::failed(format!(
                "{} has no readable manifest ({e})",
                folder.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::failed(format!("{} is not a chroma-wal manifest: {e}", p.display()))
        })
    }
}

/// A prune's backup folder, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub folder: PathBuf,
    pub manifest: Manifest,
    /// Sum of the file lengths in the folder.
    pub bytes: u64,
    /// Bytes the folder keeps allocated on disk (blocks), which a hard link still shared
    /// with a live file does not add.
    pub allocated: u64,
}

/// Length and allocated bytes of everything under `p`.
pub fn usage(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return (0, 0);
    };
    if m.is_file() {
        return (m.len(), m.blocks() * 512);
    }
    if !m.is_dir() {
        return (0, 0);
    }
    let mut total = (0, 0);
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let (a, b) = usage(&e.path());
            total.0 += a;
            total.1 += b;
        }
    }
    total
}

/// Every backup of `persist_dir` in `folder`, newest first. Folders without a readable
/// manifest (a prune that was interrupted before writing it) are left out.
pub fn list(folder: &Path, persist_dir: &Path) -> Vec<BackupInfo> {
    let want = identity(persist_dir).1;
    let Ok(rd) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut out: Vec<BackupInfo> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| {
            let m = Manifest::read(&e.path()).ok()?;
            (m.persist_dir_hex == want).then(|| {
                let (bytes, allocated) = usage(&e.path());
                BackupInfo {
                    folder: e.path(),
                    manifest: m,
                    bytes,
                    allocated,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.manifest
            .created
            .cmp(&a.manifest.created)
            .then(b.folder.cmp(&a.folder))
    });
    out
}

/// What `--from` names: one prune's backup folder (it has a manifest), or a folder of them
/// (the newest backup of `persist_dir` in it).
pub fn resolve(from: &Path, persist_dir: &Path) -> Result<BackupInfo> {
    if from.join(MANIFEST).is_file() {
        let manifest = Manifest::read(from)?;
        let (want, hex) = identity(persist_dir);
        if manifest.persist_dir_hex != hex {
            return Err(Error::Usage(format!(
                "{} is a backup of {}, not of {}",
                from.display(),
                manifest.persist_dir,
                want.display()
            )));
        }
        let (bytes, allocated) = usage(from);
        return Ok(BackupInfo {
            folder: from.to_path_buf(),
            manifest,
            bytes,
            allocated,
        });
    }
    list(from, persist_dir).into_iter().next().ok_or_else(|| {
        Error::Usage(format!(
            "no backup of {} in {}",
            persist_dir.display(),
            from.display()
        ))
    })
}

/// The backup folder must be outside the persist dir and writable.
pub fn check_backup_folder(persist_dir: &Path, folder: &Path) -> Result<()> {
    let pd = std::fs::canonicalize(persist_dir)?;
    let probe = folder
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let existing = std::fs::canonicalize(probe).unwrap_or_else(|_| probe.to_path_buf());
    if existing.starts_with(&pd) {
        return Err(Error::Usage(format!(
            "the backup dir {} is inside the persist dir; choose a folder outside it",
            folder.display()
        )));
    }
    if !crate::jobs::preflight::writable(&existing) {
        return Err(Error::refused(format!(
            "cannot write backups to {}: choose another folder with --backup-dir or pass --no-backup",
            folder.display()
        )));
    }
    Ok(())
}

/// A folder no earlier prune uses, `<backup dir>/<persist dir name>-<UTC time>/`, created,
/// and the path of the copy of chroma.sqlite3 inside it.
pub fn backup_path(persist_dir: &Path, folder: &Path) -> Result<PathBuf> {
    let base = std::fs::canonicalize(persist_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "chroma".into());
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", folder.display())))?;
    let mut n = 0;
    loop {
        let name = if n == 0 {
            format!("{base}-{stamp}")
        } else {
            format!("{base}-{stamp}-{n}")
        };
        let p = folder.join(name);
        // create_dir (not _all) fails when the name is taken: never reuse a folder.
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p.join(SQLITE_COPY)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(Error::failed(format!("cannot create {}: {e}", p.display()))),
        }
    }
}
