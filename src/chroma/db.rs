//! Opening `chroma.sqlite3`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Open read-only. Never creates the file, never writes, never rolls a journal back.
///
/// A database in WAL journal mode would get `-wal` and `-shm` files created by a plain
/// read-only open. When it has no `-wal` file there is nothing beyond the main file to read,
/// so it is opened `immutable` and the dir stays exactly as it was.
///
/// This sniffs the file header with a plain open() and close(). POSIX drops every lock a
/// process holds on a file when any descriptor of it is closed, so never call this while a
/// connection of this process holds a lock on the file: use [`open_read_only_locked`].
pub fn open_read_only(path: &Path) -> Result<Connection> {
    open_ro(path, true)
}

/// Read-only open for use while this process holds a RESERVED lock on the file (the backup
/// source): no header sniffing, no descriptor of our own opened or closed outside SQLite.
pub fn open_read_only_locked(path: &Path) -> Result<Connection> {
    open_ro(path, false)
}

fn open_ro(path: &Path, sniff: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if sniff && is_wal_mode(path) && !side_file(path, "-wal").exists() {
        Connection::open_with_flags(
            format!("file:{}?immutable=1", uri_path(path)),
            flags | OpenFlags::SQLITE_OPEN_URI,
        )
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(|e| Error::failed(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// `chroma.sqlite3` + suffix (`-wal`, `-shm`, `-journal`).
pub fn side_file(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// The header says WAL mode (file format read/write versions 2).
pub fn is_wal_mode(path: &Path) -> bool {
    use std::io::Read;
    let mut h = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut h))
        .map(|_| &h[..16] == b"SQLite format 3\0" && h[18] == 2 && h[19] == 2)
        .unwrap_or(false)
}

/// An SQLite `file:` URI for `path` (to add `?mode=ro` and such).
pub fn uri(path: &Path) -> String {
    format!("file:{}", uri_path(path))
}

/// Percent-encode a path for an SQLite `file:` URI (any bytes, spaces, `?`, `#`, `%`).
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Open read-write for a prune. Never creates the file.
pub fn open_read_write(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::failed(format!("cannot open {} for writing: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Turn the first-read error of a bad file into a sentence a user can act on.
pub fn explain(e: rusqlite::Error, path: &Path) -> Error {
    use rusqlite::ffi::ErrorCode;
    let p = path.display();
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        let ext = f.extended_code;
        match f.code {
            ErrorCode::NotADatabase => {
                return Error::failed(format!("{p} is not an SQLite database"));
            }
            ErrorCode::DatabaseCorrupt => {
                return Error::failed(format!("{p} is damaged (SQLite reports corruption)"));
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return Error::refused(format!(
                    "{p} is locked by another process; stop Chroma and try again"
                ));
            }
            ErrorCode::ReadOnly if ext == rusqlite::ffi::SQLITE_READONLY_ROLLBACK => {
                return Error::refused(format!(
                    "{p} has a hot rollback journal from an interrupted write; start Chroma (or \
                     any SQLite client) once so SQLite rolls it back, then run chroma-wal again"
                ));
            }
            ErrorCode::CannotOpen => {
                return Error::failed(format!("cannot open {p}: {e}"));
            }
            _ => {}
        }
    }
    Error::failed(format!("{p}: {e}"))
}
