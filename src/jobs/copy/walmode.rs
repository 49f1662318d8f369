//! Pruning a `chroma.sqlite3` that someone switched to WAL journal mode.
//!
//! Chroma never sets a journal mode, but `PRAGMA journal_mode=WAL` is a workaround users
//! share, and it sticks in the file. Committed pages may then still sit in `-wal`: they are
//! part of the database, and every one of them must survive. The order of operations:
//!
//! 1. **No one else is connected.** The preflight refused if any process holds a file of the
//!    dir open (`chroma.sqlite3`, `-wal`, `-shm`): a WAL database shares state through `-shm`.
//! 2. **Fold the `-wal` into the main file** ([`checkpoint`]): `wal_checkpoint(TRUNCATE)` on a
//!    connection of our own, before we hold any lock. Busy means someone else is connected:
//!    refuse. Closing that (last) connection checkpoints once more and removes `-wal` and
//!    `-shm`. A kill here leaves the old state: SQLite truncates the `-wal` only after the
//!    main file has every page and is synced, and replays it otherwise.
//! 3. **Take the write lock**, then check that `-wal` is still empty ([`still_folded`]): no one
//!    wrote between the checkpoint and the lock. From here on nothing can append to it. The
//!    main file alone is now the committed state: a hard-link backup of it is complete.
//! 4. **Prune.** By copy, the new file is switched to WAL mode before it is verified
//!    ([`make_wal`]); its own `-wal` is gone when its connection closes. In place, the delete
//!    and VACUUM go through the `-wal`, which is folded in again afterwards ([`fold`]).
//! 5. **The rename** (by copy) is the dangerous moment: `chroma.sqlite3-wal` belongs to
//!    whatever file has that name, and frames of the old file replayed onto the new one would
//!    corrupt it. At the rename the old file's `-wal` is empty (checked in step 3, and under
//!    our write lock nothing can add to it) and the new file has none, so there is nothing to
//!    replay. Our connection to the old file then closes as the last one and removes the
//!    empty `-wal` and its `-shm`. [`no_frames_left`] checks the result.

use std::path::Path;

use rusqlite::Connection;

use crate::chroma::db;
use crate::error::{Error, Result};

fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(db::side_file(path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Step 2: with no connection of ours open, fold every committed frame into the main file.
/// Returns whether the file is in WAL mode at all (nothing is done otherwise).
pub fn checkpoint(path: &Path) -> Result<bool> {
    if !db::is_wal_mode(path) {
        return Ok(false);
    }
    let conn = db::open_read_write(path)?;
    fold(&conn)?;
    drop(conn);
    Ok(true)
}

/// `wal_checkpoint(TRUNCATE)`: every frame into the main file, the `-wal` emptied. Refuses
/// when another connection keeps it from completing.
pub fn fold(conn: &Connection) -> Result<()> {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| Error::refused(format!("could not checkpoint chroma.sqlite3-wal: {e}")))?;
    if busy != 0 || log != done {
        return Err(Error::refused(format!(
            "another connection kept chroma.sqlite3-wal from being checkpointed ({done} of {log} \
             frames); stop Chroma first"
        )));
    }
    Ok(())
}

/// Step 3, under our write lock: nothing was written since the checkpoint.
pub fn still_folded(path: &Path) -> Result<()> {
    match wal_len(path) {
        0 => Ok(()),
        n => Err(Error::refused(format!(
            "a process wrote {n} bytes to chroma.sqlite3-wal after the checkpoint; stop Chroma \
             first"
        ))),
    }
}

/// Step 4, by copy: put the new file in WAL mode, as the original was. Its connection is
/// the only one, so closing it removes the new file's own `-wal` and `-shm`.
pub fn make_wal(new_file: &Path) -> Result<()> {
    // Through the copy's VFS, which adds this write of the header to what the copy wrote,
    // for the verification's check of every page ([`super::bigio::Written`]).
    let conn = super::bigio::open(
        new_file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        Error::failed(format!(
            "cannot open {} for writing: {e}",
            new_file.display()
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::failed(format!(
            "the new file could not be put in WAL mode (SQLite answered {mode})"
        )));
    }
    drop(conn);
    no_frames_left(new_file)
}

/// Remove the side files a read-only connection left beside `path` (it cannot remove them
/// itself): one read-write connection, the only one, opened and closed. A first connection
/// also discards a stale `-shm` (SQLite rebuilds the wal-index when it holds the only lock).
/// Then neither `-wal` nor `-shm` may remain.
pub fn tidy(path: &Path) -> Result<()> {
    let conn = db::open_read_write(path)?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    drop(conn);
    for side in ["-wal", "-shm"] {
        let p = db::side_file(path, side);
        if p.exists() {
            return Err(Error::failed(format!(
                "{} is still there after the last connection closed",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Neither a `-wal` with frames nor a `-shm` is left beside `path`.
pub fn no_frames_left(path: &Path) -> Result<()> {
    let n = wal_len(path);
    if n > 0 {
        return Err(Error::failed(format!(
            "{} still has {n} bytes of frames",
            db::side_file(path, "-wal").display()
        )));
    }
    Ok(())
}
