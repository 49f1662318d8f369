//! Opening `chroma.sqlite3`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Open read-only. Never creates the file, never writes, never rolls a journal back.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::failed(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
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
