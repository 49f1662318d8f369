//! Large reads and writes for the connections the prune opens to copy and verify: a SQLite
//! VFS that sits on the default one (`unix`) and changes only how many system calls carry
//! the bytes.
//!
//! SQLite moves one page per call: on a 20 GB WAL, 5 M `pread`s of the original and 2.8 M
//! `pwrite`s of the new file, each a few microseconds of kernel time on the copy's thread,
//! which is what that copy waits on (BENCHMARKS.md, "4. 20 GB", runs 5 and 6). Here:
//! - **A database file opened for writing** (the new file) gathers the pages written one
//!   after another into a buffer of up to [`WRITE_BUF`] and hands it to a thread that writes
//!   it in calls of 64 KiB ([`behind`]). Anything that may look at the file from outside the
//!   buffers (a read no block holds, a sync, a lock or unlock, a size, a truncate, a file
//!   control such as the one every commit sends, a close) waits until all is written first.
//!   A write that fails makes every later call on the file fail with its code, so nothing
//!   goes on past a lost page.
//! - **A database file opened read-only** (the original, attached to the copy; the new file,
//!   as verified) reads blocks of [`BLOCK`] once its reads run forward or backward through
//!   the file (the copy's scan; `quick_check`, which walks each b-tree from its end), and
//!   serves the pages inside from them. A connection that sets `mmap_size` (the copy, on the
//!   original) gets its pages from small mappings of the file instead ([`maps`]). Reads that
//!   jump about stay one page per call, so a scattered index costs no more than before. The
//!   blocks are dropped at every lock and unlock, every lock of the shared memory (where a
//!   WAL-mode read transaction begins), every write or truncate and every file control:
//!   nothing read in one transaction is served in another (SQLite's own cache keeps pages at
//!   least that long).
//! - **What SQLite wrote** to the new file is kept, as a hash of each page's last write
//!   ([`Written`]), for the verification to check the closed file against, page by page:
//!   a write that did not reach the file is found there, where a read through SQLite's own
//!   cache would not see it.
//! - Every other file (journals, `-wal`, `-shm`, temporary files) and every other call go to
//!   the default VFS unchanged. Its locks are the same locks, on the same files, as those of
//!   every other connection in the process.

use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::OnceLock;

use rusqlite::ffi;

mod behind;
mod maps;
mod passthrough;
mod written;
use behind::Behind;
use maps::Maps;
use passthrough::{
    parent, x_access, x_current_time, x_current_time_int64, x_delete, x_dl_close, x_dl_error,
    x_dl_open, x_dl_sym, x_full_pathname, x_get_last_error, x_randomness, x_sleep,
};
use written::{keep_written, page_hash};
pub use written::{take_written, Written};

/// The name connections open it by.
pub const NAME: &CStr = c"chroma-wal-bigio";
/// The most a write buffer holds before it goes to the writer ([`behind`]), which writes it
/// in calls of 64 KiB: the default VFS moves at most 128 KiB less a byte in one call (it cuts
/// a longer write short, and says the disk is full).
const WRITE_BUF: usize = behind::JOB;
/// A read block: 16 pages of 4 KiB (the bound of one call of the default VFS, as for
/// writes). Against one call a page, reading a cached file in calls of 64 KiB takes about a
/// third of the kernel's time, and writing one about a third as well; calls of 1 MiB would
/// save little more.
const BLOCK: usize = 64 << 10;
/// The blocks a read-only file keeps (the one being read and the one before it).
const BLOCKS: usize = 2;
/// How many pages a read may skip and still continue a run (the interior pages of a b-tree
/// sit among its leaves).
const NEAR_PAGES: i64 = 4;

/// The VFS's name, once it is registered; `None` if SQLite would not take it (the
/// connections then open on the default VFS, as before).
pub fn name() -> Option<&'static CStr> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: registration hands SQLite a VFS that lives as long as the process
            // (leaked), whose every function forwards to the default VFS it was built on.
            unsafe { register() }
        })
        .then_some(NAME)
}

unsafe fn register() -> bool {
    if !ffi::sqlite3_vfs_find(NAME.as_ptr()).is_null() {
        return true;
    }
    let parent = ffi::sqlite3_vfs_find(std::ptr::null());
    if parent.is_null() {
        return false;
    }
    let vfs = Box::new(ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: (REAL_AT as c_int).saturating_add((*parent).szOsFile),
        mxPathname: (*parent).mxPathname,
        pNext: null_mut(),
        zName: NAME.as_ptr(),
        pAppData: parent.cast(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: Some(x_dl_open),
        xDlError: Some(x_dl_error),
        xDlSym: Some(x_dl_sym),
        xDlClose: Some(x_dl_close),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    });
    let raw = Box::into_raw(vfs);
    if ffi::sqlite3_vfs_register(raw, 0) != ffi::SQLITE_OK {
        drop(Box::from_raw(raw));
        return false;
    }
    true
}

/// A file as SQLite holds it: the default VFS's own file follows at [`REAL_AT`].
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    state: *mut State,
}

const REAL_AT: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

enum State {
    /// The buffer, blocks of what was written and read back (dropped as they are written
    /// over), and what SQLite wrote.
    Write(WriteBuf, ReadBlocks, Behind),
    /// Blocks of what was read, and the mappings pages are fetched from, if the file's
    /// descriptor could be told ([`maps`]).
    Read(ReadBlocks, Option<Maps>),
}

#[derive(Default)]
struct WriteBuf {
    at: i64,
    data: Vec<u8>,
    /// The sizes of the writes `data` is made of, in order.
    pieces: Vec<u32>,
    /// The code of a write that failed; every later call returns it.
    failed: c_int,
}

/// Where a [`WriteBuf`] goes: the writer of the file ([`Behind`]), or, in tests, a function
/// that writes it at once.
trait Sink {
    /// Write `data` (writes of `pieces` bytes each) at `at`, leaving both empty.
    fn put(&mut self, data: &mut Vec<u8>, at: i64, pieces: &mut Vec<u32>) -> c_int;
}

impl Sink for Behind {
    fn put(&mut self, data: &mut Vec<u8>, at: i64, pieces: &mut Vec<u32>) -> c_int {
        Behind::put(self, data, at, pieces)
    }
}

#[cfg(test)]
impl<F: FnMut(&[u8], i64) -> c_int> Sink for F {
    fn put(&mut self, data: &mut Vec<u8>, at: i64, pieces: &mut Vec<u32>) -> c_int {
        let rc = self(data, at);
        data.clear();
        pieces.clear();
        rc
    }
}

#[derive(Default)]
struct ReadBlocks {
    /// Oldest first.
    blocks: Vec<Block>,
    /// The last read that no block held.
    last: Option<(i64, i64)>,
}

struct Block {
    at: i64,
    data: Vec<u8>,
}

impl Block {
    fn end(&self) -> i64 {
        self.at + self.data.len() as i64
    }
}

unsafe fn methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let parent = parent(vfs);
    let f = file.cast::<ShimFile>();
    let real = file.cast::<u8>().add(REAL_AT).cast::<ffi::sqlite3_file>();
    (*f).base.pMethods = std::ptr::null();
    (*f).real = real;
    (*f).state = null_mut();
    (*real).pMethods = std::ptr::null();
    let Some(open) = (*parent).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    let mut got = flags;
    let rc = open(parent, name, real, flags, &mut got);
    if !out_flags.is_null() {
        *out_flags = got;
    }
    if rc != ffi::SQLITE_OK {
        if !(*real).pMethods.is_null() {
            if let Some(close) = methods(real).xClose {
                close(real);
            }
        }
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        let state = if got & ffi::SQLITE_OPEN_READONLY != 0 {
            // Mappings only of the `unix` VFS's files, whose descriptor [`maps`] can find.
            let unix = !(*parent).zName.is_null()
                && CStr::from_ptr((*parent).zName)
                    .to_bytes()
                    .starts_with(b"unix");
            let maps = (unix && !name.is_null())
                .then(|| Maps::of(real, (*parent).szOsFile, CStr::from_ptr(name)))
                .flatten();
            State::Read(ReadBlocks::default(), maps)
        } else {
            let path = (!name.is_null()).then(|| {
                use std::os::unix::ffi::OsStrExt;
                let bytes = CStr::from_ptr(name).to_bytes();
                std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
            });
            let written = Written::for_path(path);
            State::Write(
                WriteBuf::default(),
                ReadBlocks::default(),
                Behind::start(real, written),
            )
        };
        (*f).state = Box::into_raw(Box::new(state));
    }
    (*f).base.pMethods = &METHODS;
    ffi::SQLITE_OK
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(f_close),
    xRead: Some(f_read),
    xWrite: Some(f_write),
    xTruncate: Some(f_truncate),
    xSync: Some(f_sync),
    xFileSize: Some(f_file_size),
    xLock: Some(f_lock),
    xUnlock: Some(f_unlock),
    xCheckReservedLock: Some(f_check_reserved_lock),
    xFileControl: Some(f_file_control),
    xSectorSize: Some(f_sector_size),
    xDeviceCharacteristics: Some(f_device_characteristics),
    xShmMap: Some(f_shm_map),
    xShmLock: Some(f_shm_lock),
    xShmBarrier: Some(f_shm_barrier),
    xShmUnmap: Some(f_shm_unmap),
    xFetch: Some(f_fetch),
    xUnfetch: Some(f_unfetch),
};

unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, Option<&'a mut State>) {
    let f = file.cast::<ShimFile>();
    ((*f).real, (*f).state.as_mut())
}

/// The default VFS's write of `real`.
unsafe fn real_write(real: *mut ffi::sqlite3_file, bytes: &[u8], at: i64) -> c_int {
    match methods(real).xWrite {
        Some(write) => write(real, bytes.as_ptr().cast(), bytes.len() as c_int, at),
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

/// Hand the buffer to the writer and wait until all is written: after it, the default VFS's
/// file is the caller's alone.
fn write_all(w: &mut WriteBuf, behind: &mut Behind) -> c_int {
    let rc = w.flush(behind);
    let drained = behind.drain();
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        drained
    }
}

impl WriteBuf {
    /// Hand the buffer to `out` (a no-op when it is empty); on failure the code sticks.
    fn flush(&mut self, out: &mut dyn Sink) -> c_int {
        if self.failed != ffi::SQLITE_OK {
            return self.failed;
        }
        if self.data.is_empty() {
            return ffi::SQLITE_OK;
        }
        let rc = out.put(&mut self.data, self.at, &mut self.pieces);
        self.data.clear();
        self.pieces.clear();
        if rc != ffi::SQLITE_OK {
            self.failed = rc;
        }
        rc
    }

    /// Take `bytes` at `at`: onto the buffer when they follow it and fit, else after
    /// handing the buffer over (and at once when they alone fill it).
    fn write(&mut self, bytes: &[u8], at: i64, out: &mut dyn Sink) -> c_int {
        if self.failed != ffi::SQLITE_OK {
            return self.failed;
        }
        let end = self.at + self.data.len() as i64;
        let follows = !self.data.is_empty() && at == end;
        if !(follows && self.data.len() + bytes.len() <= WRITE_BUF) {
            let rc = self.flush(out);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            self.at = at;
        }
        self.data.extend_from_slice(bytes);
        self.pieces.push(bytes.len() as u32);
        if self.data.len() >= WRITE_BUF {
            return self.flush(out);
        }
        ffi::SQLITE_OK
    }
}

/// Before any call that may look past the buffer: write it out, or drop the read blocks.
fn settle(state: Option<&mut State>) -> c_int {
    match state {
        Some(State::Write(w, r, behind)) => {
            r.clear();
            write_all(w, behind)
        }
        Some(State::Read(r, _)) => {
            r.clear();
            ffi::SQLITE_OK
        }
        None => ffi::SQLITE_OK,
    }
}

/// For the calls that need no settling but must not meet a write of the writer: wait for it.
unsafe fn quiet(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    let (real, state) = parts(file);
    if let Some(State::Write(w, _, behind)) = state {
        // A failure is returned by the next call that settles the file.
        let _ = write_all(w, behind);
    }
    real
}

/// [`settle`] the file, then the default VFS's file to pass the call to, or the code that
/// ends it.
unsafe fn settled(file: *mut ffi::sqlite3_file) -> Result<*mut ffi::sqlite3_file, c_int> {
    let (real, state) = parts(file);
    match settle(state) {
        ffi::SQLITE_OK => Ok(real),
        rc => Err(rc),
    }
}

unsafe extern "C" fn f_close(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, state) = parts(file);
    let mut settled = settle(state);
    let f = file.cast::<ShimFile>();
    if !(*f).state.is_null() {
        // The writer is stopped and joined before the file it writes is closed.
        if let State::Write(_, _, behind) = *Box::from_raw((*f).state) {
            let (rc, written) = behind.finish();
            if settled == ffi::SQLITE_OK {
                settled = rc;
            }
            keep_written(written);
        }
        (*f).state = null_mut();
    }
    let rc = match methods(real).xClose {
        Some(close) => close(real),
        None => ffi::SQLITE_OK,
    };
    if settled != ffi::SQLITE_OK {
        settled
    } else {
        rc
    }
}

unsafe fn real_read(real: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, at: i64) -> c_int {
    match methods(real).xRead {
        Some(read) => read(real, buf, amt, at),
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe fn real_reader(real: *mut ffi::sqlite3_file) -> impl FnMut(&mut [u8], i64) -> c_int {
    move |b: &mut [u8], at: i64| real_read(real, b.as_mut_ptr().cast(), b.len() as c_int, at)
}

/// The size of `real` as the default VFS gives it.
unsafe fn real_size(real: *mut ffi::sqlite3_file) -> Option<i64> {
    let mut size = 0i64;
    let f = methods(real).xFileSize?;
    (f(real, &mut size) == ffi::SQLITE_OK).then_some(size)
}

unsafe extern "C" fn f_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    at: i64,
) -> c_int {
    let (real, state) = parts(file);
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize);
    match state {
        // What a block does not hold is read once everything written is in the file (the
        // blocks a write covers were dropped at the write).
        Some(State::Write(w, r, behind)) => {
            let mut read = real_reader(real);
            let after_writes = |b: &mut [u8], at: i64| match write_all(w, behind) {
                ffi::SQLITE_OK => read(b, at),
                rc => rc,
            };
            r.read(out, at, after_writes, || real_size(real))
        }
        Some(State::Read(r, _)) => r.read(out, at, real_reader(real), || real_size(real)),
        None => real_read(real, buf, amt, at),
    }
}

impl ReadBlocks {
    fn clear(&mut self) {
        self.blocks.clear();
        self.last = None;
    }

    /// Drop the blocks that hold any of the `n` bytes at `at` (about to be written).
    fn forget(&mut self, at: i64, n: i64) {
        self.blocks.retain(|b| b.end() <= at || at + n <= b.at);
    }

    /// Fill `out` with the file's bytes at `at`, from a block or with `read` (the default
    /// VFS's read: `SQLITE_IOERR_SHORT_READ` past the end, with the rest zeroed); `size`
    /// gives the file's size when a block runs past its end.
    fn read(
        &mut self,
        out: &mut [u8],
        at: i64,
        mut read: impl FnMut(&mut [u8], i64) -> c_int,
        size: impl FnOnce() -> Option<i64>,
    ) -> c_int {
        let n = out.len() as i64;
        if let Some(i) = self
            .blocks
            .iter()
            .rposition(|b| b.at <= at && at + n <= b.end())
        {
            let b = &self.blocks[i];
            let from = (at - b.at) as usize;
            out.copy_from_slice(&b.data[from..from + out.len()]);
            return ffi::SQLITE_OK;
        }
        let near = NEAR_PAGES * n.max(1);
        let (lo, hi) = match self.blocks.last() {
            Some(b) => (b.at, b.end()),
            None => (i64::MIN, i64::MIN),
        };
        let after = |(lo, hi): (i64, i64)| lo != i64::MIN && at >= hi && at - hi <= near;
        let before = |(lo, _): (i64, i64)| lo != i64::MIN && at + n <= lo && lo - (at + n) <= near;
        // A run goes on from the newest block, or starts from the last read (a new b-tree).
        let last = self.last.unwrap_or((i64::MIN, i64::MIN));
        let forward = after((lo, hi)) || after(last);
        let backward = !forward && (before((lo, hi)) || before(last));
        self.last = Some((at, at + n));
        if n > (BLOCK / 4) as i64 || !(forward || backward) {
            return read(out, at);
        }
        let start = if forward {
            at
        } else {
            (at + n - BLOCK as i64).max(0)
        };
        let len = if forward {
            BLOCK
        } else {
            (at + n - start) as usize
        };
        let mut data = if self.blocks.len() >= BLOCKS {
            self.blocks.remove(0).data
        } else {
            Vec::with_capacity(BLOCK)
        };
        data.resize(len, 0);
        match read(&mut data, start) {
            ffi::SQLITE_OK => {}
            // The block runs past the end of the file: keep what the file holds, or read
            // just the page if it is not all there.
            ffi::SQLITE_IOERR_SHORT_READ => match size() {
                Some(end) if end >= at + n => data.truncate((end - start) as usize),
                _ => return read(out, at),
            },
            rc => return rc,
        }
        let from = (at - start) as usize;
        out.copy_from_slice(&data[from..from + out.len()]);
        self.blocks.push(Block { at: start, data });
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn f_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    at: i64,
) -> c_int {
    let (real, state) = parts(file);
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    match state {
        Some(State::Write(w, r, behind)) => {
            r.forget(at, bytes.len() as i64);
            w.write(bytes, at, behind)
        }
        state => {
            settle(state);
            real_write(real, bytes, at)
        }
    }
}

unsafe extern "C" fn f_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let real = match settled(file) {
        Ok(real) => real,
        Err(rc) => return rc,
    };
    if let (_, Some(State::Write(_, _, behind))) = parts(file) {
        behind.written(|w| w.truncate(size));
    }
    match methods(real).xTruncate {
        Some(t) => t(real, size),
        None => ffi::SQLITE_IOERR_TRUNCATE,
    }
}

unsafe extern "C" fn f_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let real = match settled(file) {
        Ok(real) => real,
        Err(rc) => return rc,
    };
    match methods(real).xSync {
        Some(s) => s(real, flags),
        None => ffi::SQLITE_IOERR_FSYNC,
    }
}

unsafe extern "C" fn f_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let real = match settled(file) {
        Ok(real) => real,
        Err(rc) => return rc,
    };
    match methods(real).xFileSize {
        Some(s) => s(real, size),
        None => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn f_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let real = match settled(file) {
        Ok(real) => real,
        Err(rc) => return rc,
    };
    match methods(real).xLock {
        Some(l) => l(real, level),
        None => ffi::SQLITE_IOERR_LOCK,
    }
}

unsafe extern "C" fn f_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (real, state) = parts(file);
    let rc = settle(state);
    let unlocked = match methods(real).xUnlock {
        Some(u) => u(real, level),
        None => ffi::SQLITE_IOERR_UNLOCK,
    };
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        unlocked
    }
}

unsafe extern "C" fn f_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let real = quiet(file);
    match methods(real).xCheckReservedLock {
        Some(c) => c(real, out),
        None => ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
    }
}

unsafe extern "C" fn f_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // The pager's hint of the size to come, sent every few thousand pages while the file
    // grows: only a hint (its code is not looked at), and the default VFS could act on it only
    // with a chunk size or a mapping, which this file has not. Not passed on, so it neither
    // waits for the writer nor touches the file beside it.
    if op == ffi::SQLITE_FCNTL_SIZE_HINT && matches!(parts(file).1, Some(State::Write(..))) {
        return ffi::SQLITE_OK;
    }
    let real = match settled(file) {
        Ok(real) => real,
        Err(rc) => return rc,
    };
    match methods(real).xFileControl {
        Some(c) => c(real, op, arg),
        None => ffi::SQLITE_NOTFOUND,
    }
}

unsafe extern "C" fn f_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = parts(file);
    match methods(real).xSectorSize {
        Some(s) => s(real),
        None => 4096,
    }
}

unsafe extern "C" fn f_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = parts(file);
    match methods(real).xDeviceCharacteristics {
        Some(d) => d(real),
        None => 0,
    }
}

unsafe extern "C" fn f_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let real = quiet(file);
    match methods(real).xShmMap {
        Some(m) if methods(real).iVersion >= 2 => m(real, page, size, extend, out),
        _ => ffi::SQLITE_IOERR_SHMMAP,
    }
}

unsafe extern "C" fn f_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let real = quiet(file);
    // In WAL mode a read transaction begins here, not at a lock of the file: what another
    // connection checkpointed into the file since the last one must be read again.
    if let (_, Some(State::Read(r, _))) = parts(file) {
        r.clear();
    }
    match methods(real).xShmLock {
        Some(l) if methods(real).iVersion >= 2 => l(real, offset, n, flags),
        _ => ffi::SQLITE_IOERR_SHMLOCK,
    }
}

unsafe extern "C" fn f_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (real, _) = parts(file);
    if let Some(b) = methods(real)
        .xShmBarrier
        .filter(|_| methods(real).iVersion >= 2)
    {
        b(real)
    }
}

unsafe extern "C" fn f_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let real = quiet(file);
    match methods(real).xShmUnmap {
        Some(u) if methods(real).iVersion >= 2 => u(real, delete),
        _ => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn f_fetch(
    file: *mut ffi::sqlite3_file,
    at: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (real, state) = parts(file);
    *out = null_mut();
    // A file read only: a page from a window of its own mappings, or none (never the default
    // VFS's mapping of the whole file).
    if let Some(State::Read(_, maps)) = state {
        if let Some(m) = maps {
            *out = m.fetch(at, amt.max(0) as usize, || real_size(real));
        }
        return ffi::SQLITE_OK;
    }
    let rc = settle(state);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match methods(real).xFetch {
        Some(f) if methods(real).iVersion >= 3 => f(real, at, amt, out),
        _ => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn f_unfetch(file: *mut ffi::sqlite3_file, at: i64, p: *mut c_void) -> c_int {
    if let (_, Some(State::Read(_, maps))) = parts(file) {
        if let Some(m) = maps {
            m.unfetch(p);
        }
        return ffi::SQLITE_OK;
    }
    let real = quiet(file);
    match methods(real).xUnfetch {
        Some(u) if methods(real).iVersion >= 3 => u(real, at, p),
        _ => ffi::SQLITE_OK,
    }
}

/// Open `path` on this VFS (on the default one if it could not be registered).
pub fn open(
    path: &std::path::Path,
    flags: rusqlite::OpenFlags,
) -> rusqlite::Result<rusqlite::Connection> {
    match name() {
        Some(vfs) => rusqlite::Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => rusqlite::Connection::open_with_flags(path, flags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    const PAGE: usize = 4096;

    /// A file in memory that counts the calls made on it, and fails the write numbered
    /// `fail_at` (from 1) with `SQLITE_FULL`.
    #[derive(Default)]
    struct Fake {
        bytes: Vec<u8>,
        calls: usize,
        fail_at: Option<usize>,
    }

    impl Fake {
        fn write(&mut self, b: &[u8], at: i64) -> c_int {
            self.calls += 1;
            if self.fail_at == Some(self.calls) {
                return ffi::SQLITE_FULL;
            }
            let at = at as usize;
            if self.bytes.len() < at + b.len() {
                self.bytes.resize(at + b.len(), 0);
            }
            self.bytes[at..at + b.len()].copy_from_slice(b);
            ffi::SQLITE_OK
        }
        fn read(&mut self, out: &mut [u8], at: i64) -> c_int {
            self.calls += 1;
            let at = at as usize;
            out.fill(0);
            let have = self.bytes.len().saturating_sub(at).min(out.len());
            out[..have].copy_from_slice(&self.bytes[at..at + have]);
            if have < out.len() {
                ffi::SQLITE_IOERR_SHORT_READ
            } else {
                ffi::SQLITE_OK
            }
        }
    }

    /// `fake`'s write, as a [`Sink`] takes it.
    fn sink(fake: &mut Fake) -> impl FnMut(&[u8], i64) -> c_int + '_ {
        move |b: &[u8], a: i64| fake.write(b, a)
    }

    /// Pages in a made-up but fixed order: mostly one after another, with jumps back (an
    /// interior page rewritten) and forward.
    fn pages(n: usize) -> Vec<usize> {
        let mut x: u64 = 7;
        let mut p = 1;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                p = match (x >> 33) % 10 {
                    0 => ((x >> 40) as usize) % (p + 1),
                    1 => p + 3,
                    _ => p + 1,
                };
                p
            })
            .collect()
    }

    #[test]
    fn the_write_buffer_leaves_the_file_as_writing_each_page_would_in_fewer_calls() {
        let mut direct = Fake::default();
        let mut fake = Fake::default();
        let mut w = WriteBuf::default();
        let order = pages(4000);
        for (i, &p) in order.iter().enumerate() {
            let page = vec![(i % 251) as u8; PAGE];
            let at = (p * PAGE) as i64;
            assert_eq!(direct.write(&page, at), ffi::SQLITE_OK);
            assert_eq!(w.write(&page, at, &mut sink(&mut fake)), ffi::SQLITE_OK);
            if i % 97 == 0 {
                // A read of a page just written sees it, once the buffer is out (as every
                // read the blocks do not hold waits for).
                let q = (order[i / 2] * PAGE) as i64;
                assert_eq!(w.flush(&mut sink(&mut fake)), ffi::SQLITE_OK);
                let (mut a, mut b) = (vec![0; PAGE], vec![0; PAGE]);
                fake.read(&mut a, q);
                direct.read(&mut b, q);
                assert_eq!(a, b, "page at {q} read through the buffer");
            }
        }
        assert_eq!(w.flush(&mut sink(&mut fake)), ffi::SQLITE_OK);
        assert!(fake.bytes == direct.bytes, "the files differ");
        assert!(
            fake.calls * 4 < direct.calls,
            "{} calls for {} pages",
            fake.calls,
            direct.calls
        );
    }

    #[test]
    fn a_write_that_fails_fails_every_call_after_it() {
        let mut fake = Fake {
            fail_at: Some(2),
            ..Fake::default()
        };
        let mut w = WriteBuf::default();
        let page = vec![1u8; PAGE];
        let mut first_error = None;
        for p in 0..4 * WRITE_BUF / PAGE {
            let rc = w.write(&page, (p * PAGE) as i64, &mut sink(&mut fake));
            if rc != ffi::SQLITE_OK {
                first_error = Some(p);
                break;
            }
        }
        assert!(first_error.is_some(), "no write reported the failure");
        let mut out = sink(&mut fake);
        assert_eq!(w.write(&page, 0, &mut out), ffi::SQLITE_FULL);
        assert_eq!(w.flush(&mut out), ffi::SQLITE_FULL);
        assert_eq!(w.write(&page, 1 << 30, &mut out), ffi::SQLITE_FULL);
    }

    fn file(len: usize) -> Fake {
        Fake {
            bytes: (0..len).map(|i| (i * 31 % 253) as u8).collect(),
            ..Fake::default()
        }
    }

    fn read_all(fake: &mut Fake, r: &mut ReadBlocks, order: impl Iterator<Item = usize>) {
        for p in order {
            let mut out = vec![0u8; PAGE];
            let at = (p * PAGE) as i64;
            let len = fake.bytes.len() as i64;
            let rc = r.read(&mut out, at, |b, a| fake.read(b, a), || Some(len));
            let want = &fake.bytes[p * PAGE..(p + 1) * PAGE];
            assert_eq!(rc, ffi::SQLITE_OK);
            assert!(out == want, "page {p}");
        }
    }

    #[test]
    fn runs_forward_and_backward_are_read_in_blocks_and_scattered_pages_one_by_one() {
        let n = 1000;
        let per_block = BLOCK / PAGE;
        let mut fake = file(n * PAGE);
        read_all(&mut fake, &mut ReadBlocks::default(), 0..n);
        assert!(
            fake.calls <= n / per_block + 4,
            "forward: {} calls",
            fake.calls
        );

        let mut fake = file(n * PAGE);
        read_all(&mut fake, &mut ReadBlocks::default(), (0..n).rev());
        assert!(
            fake.calls <= n / per_block + 4,
            "backward: {} calls",
            fake.calls
        );

        // Every third page (another table's pages between): still in blocks.
        let mut fake = file(n * PAGE);
        read_all(&mut fake, &mut ReadBlocks::default(), (0..n).step_by(3));
        assert!(
            fake.calls <= n / per_block + 4,
            "every third: {} calls",
            fake.calls
        );

        // Pages far apart: one call each, never a block.
        let mut fake = file(n * PAGE);
        let scattered: Vec<usize> = (0..200).map(|i| i * 397 % n).collect();
        read_all(
            &mut fake,
            &mut ReadBlocks::default(),
            scattered.iter().copied(),
        );
        assert_eq!(fake.calls, scattered.len(), "scattered");
    }

    #[test]
    fn a_block_past_the_end_of_the_file_gives_way_to_the_page_itself() {
        let n = 20;
        let mut fake = file(n * PAGE);
        // The last pages, forward: the block runs past the end, and keeps what is there.
        read_all(&mut fake, &mut ReadBlocks::default(), n - 6..n);
        assert!(fake.calls <= 3, "{} calls", fake.calls);
        // A page past the end reads short, as it would without blocks.
        let mut out = vec![9u8; PAGE];
        let mut r = ReadBlocks::default();
        let len = Some(fake.bytes.len() as i64);
        let _ = r.read(
            &mut out,
            ((n - 1) * PAGE) as i64,
            |b, a| fake.read(b, a),
            || len,
        );
        let rc = r.read(&mut out, (n * PAGE) as i64, |b, a| fake.read(b, a), || len);
        assert_eq!(rc, ffi::SQLITE_IOERR_SHORT_READ);
        assert!(out.iter().all(|&b| b == 0));
    }

    fn rw() -> OpenFlags {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }

    fn ro() -> OpenFlags {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }

    /// The same statements, as the copy runs them (no journal, no sync, a cache small enough
    /// to spill), with blobs that do not depend on the run.
    fn write_db(conn: &Connection) {
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = 20;\
             BEGIN;\
             CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);\
             CREATE INDEX t_k ON t(k);\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)\
             INSERT INTO t SELECT i, printf('%08d', (i * 7919) % 6007), zeroblob(700 + i % 300) FROM n;\
             UPDATE t SET v = zeroblob(50) WHERE id % 5 = 0;\
             DELETE FROM t WHERE id % 7 = 0;\
             COMMIT;",
        )
        .unwrap();
    }

    #[test]
    fn what_was_written_matches_every_page_of_the_closed_file_and_not_a_changed_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.db");
        let conn = open(&p, rw()).unwrap();
        write_db(&conn);
        conn.close().unwrap();
        let w = take_written(&p).expect("nothing kept for the closed file");
        assert!(take_written(&p).is_none(), "taken twice");
        assert_eq!(w.page_size(), Some(PAGE as u64));
        let mut bytes = std::fs::read(&p).unwrap();
        assert_eq!(w.extent(), bytes.len() as u64);
        for (i, page) in bytes.chunks(PAGE).enumerate() {
            assert!(w.matches(i, page), "page {} of the file as written", i + 1);
        }
        // A page whose last write did not reach the file: one byte in the middle of it.
        let i = bytes.len() / PAGE / 2;
        bytes[i * PAGE + 100] ^= 1;
        assert!(!w.matches(i, &bytes[i * PAGE..(i + 1) * PAGE]));
    }

    #[test]
    fn a_database_written_through_it_is_byte_for_byte_what_sqlite_writes_alone() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.db"), d.path().join("b.db"));
        let conn = open(&a, rw()).unwrap();
        write_db(&conn);
        conn.close().unwrap();
        let conn = Connection::open_with_flags(&b, rw()).unwrap();
        write_db(&conn);
        conn.close().unwrap();
        assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
        let conn = Connection::open_with_flags(&a, ro()).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    fn answers(conn: &Connection) -> Vec<String> {
        [
            "SELECT group_concat(id || ':' || length(v)) FROM (SELECT * FROM t ORDER BY id)",
            "SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id DESC)",
            "SELECT group_concat(k) FROM (SELECT k FROM t ORDER BY k)",
            "PRAGMA quick_check",
            "PRAGMA integrity_check",
        ]
        .iter()
        .map(|q| conn.query_row(q, [], |r| r.get(0)).unwrap())
        .collect()
    }

    #[test]
    fn reading_through_it_answers_as_reading_without_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.db");
        write_db(&Connection::open_with_flags(&p, rw()).unwrap());
        let plain = answers(&Connection::open_with_flags(&p, ro()).unwrap());
        let through = answers(&open(&p, ro()).unwrap());
        assert_eq!(plain, through);
        assert_eq!(plain[3], "ok");
        // With pages fetched from the VFS's mappings.
        let mapped = open(&p, ro()).unwrap();
        mapped
            .execute_batch("PRAGMA mmap_size = 1073741824")
            .unwrap();
        let before = maps::FETCHED.with(|f| f.get());
        assert_eq!(plain, answers(&mapped));
        let fetched = maps::FETCHED.with(|f| f.get()) - before;
        assert!(fetched > 1000, "{fetched} pages fetched");
    }

    #[test]
    fn a_reader_sees_what_another_connection_wrote_between_its_transactions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.db");
        let w = Connection::open_with_flags(&p, rw()).unwrap();
        w.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)\
             INSERT INTO t SELECT i, zeroblob(900) FROM n;",
        )
        .unwrap();
        let total = "SELECT sum(length(v)) FROM t";
        for (mapped, size) in [(false, 900), (true, 100), (true, 900)] {
            let r = open(&p, ro()).unwrap();
            if mapped {
                r.execute_batch("PRAGMA mmap_size = 1073741824").unwrap();
            }
            let before: i64 = r.query_row(total, [], |x| x.get(0)).unwrap();
            assert_eq!(before, 60 * size);
            let other = if size == 900 { 100 } else { 900 };
            w.execute(&format!("UPDATE t SET v = zeroblob({other})"), [])
                .unwrap();
            let after: i64 = r.query_row(total, [], |x| x.get(0)).unwrap();
            assert_eq!(after, 60 * other, "mapped: {mapped}");
        }
    }
}
