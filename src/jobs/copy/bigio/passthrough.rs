//! The rest of the VFS: the default one's functions, each called with the default VFS's own
//! pointer (kept in `pAppData`). Only files differ from the default VFS.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

use rusqlite::ffi;

/// The default VFS this one was built on.
pub(super) unsafe fn parent(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

pub(super) unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let p = parent(vfs);
    match (*p).xDelete {
        Some(f) => f(p, name, sync_dir),
        None => ffi::SQLITE_IOERR_DELETE,
    }
}

pub(super) unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let p = parent(vfs);
    match (*p).xAccess {
        Some(f) => f(p, name, flags, out),
        None => ffi::SQLITE_IOERR_ACCESS,
    }
}

pub(super) unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let p = parent(vfs);
    match (*p).xFullPathname {
        Some(f) => f(p, name, n, out),
        None => ffi::SQLITE_CANTOPEN,
    }
}

pub(super) unsafe extern "C" fn x_dl_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
) -> *mut c_void {
    let p = parent(vfs);
    match (*p).xDlOpen {
        Some(f) => f(p, name),
        None => null_mut(),
    }
}

pub(super) unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let p = parent(vfs);
    if let Some(f) = (*p).xDlError {
        f(p, n, out)
    }
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

pub(super) unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    h: *mut c_void,
    sym: *const c_char,
) -> Option<DlSym> {
    let p = parent(vfs);
    match (*p).xDlSym {
        Some(f) => f(p, h, sym),
        None => None,
    }
}

pub(super) unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, h: *mut c_void) {
    let p = parent(vfs);
    if let Some(f) = (*p).xDlClose {
        f(p, h)
    }
}

pub(super) unsafe extern "C" fn x_randomness(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let p = parent(vfs);
    match (*p).xRandomness {
        Some(f) => f(p, n, out),
        None => 0,
    }
}

pub(super) unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    let p = parent(vfs);
    match (*p).xSleep {
        Some(f) => f(p, us),
        None => 0,
    }
}

pub(super) unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let p = parent(vfs);
    match (*p).xCurrentTime {
        Some(f) => f(p, out),
        None => ffi::SQLITE_ERROR,
    }
}

pub(super) unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let p = parent(vfs);
    match (*p).xGetLastError {
        Some(f) => f(p, n, out),
        None => 0,
    }
}

pub(super) unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut i64,
) -> c_int {
    let p = parent(vfs);
    match ((*p).xCurrentTimeInt64, (*p).xCurrentTime) {
        (Some(f), _) if (*p).iVersion >= 2 => f(p, out),
        (_, Some(f)) => {
            let mut days = 0f64;
            let rc = f(p, &mut days);
            *out = (days * 86_400_000.0) as i64;
            rc
        }
        _ => ffi::SQLITE_ERROR,
    }
}
