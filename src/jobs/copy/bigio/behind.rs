//! The new file's writes, made on a thread of their own.
//!
//! The copy's thread is the prune's bottleneck on a big WAL (BENCHMARKS.md, "4. 20 GB",
//! run 7): a fifth of its time went to writing the new file (the kernel copying each buffer
//! into the page cache, charging and reclaiming memory for it) and to hashing what it wrote
//! ([`Written`]). Here the copy's thread only hands full buffers over; another thread writes
//! them in order, hashes them, and hands the buffers back.
//!
//! The default VFS's file is never used by both threads at once: the writer calls it only
//! for a buffer it was handed, and the connection's thread calls it only after
//! [`Behind::drain`], which waits until every buffer handed over is written. Every call that
//! may look at the file from outside the buffers (a read, a sync, a lock or unlock, a size, a
//! truncate, a file control, a close) drains first, so what SQLite sees is what it wrote.
//! A write that fails is kept: every later hand-over and drain returns its code.

use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::ffi;

use super::{page_hash, Written};

/// The most bytes one call of the default VFS's write carries: it cuts a write over
/// 128 KiB short (and says the disk is full).
pub(super) const CALL: usize = 64 << 10;
/// The buffers handed over (and the front buffer's size): 4 calls each.
pub(super) const JOB: usize = 4 * CALL;
/// How many buffers may wait for the writer before a hand-over waits for it: 2 MiB.
const QUEUE: usize = 8;

/// The default VFS's file, as the writer thread holds it.
struct Real(*mut ffi::sqlite3_file);

// SAFETY: the file is SQLite's until it is closed, which happens only after the writer has
// been joined ([`Behind::finish`]); the two threads never call it at once (module doc).
unsafe impl Send for Real {}

/// One buffer to write: `data` at `at`, made of SQLite's writes of `pieces` bytes each.
struct Job {
    at: i64,
    data: Vec<u8>,
    pieces: Vec<u32>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// The writer holds a job it took.
    busy: bool,
    /// The code of a write that failed.
    failed: c_int,
    /// Buffers written, for the next hand-overs.
    spare: Vec<Vec<u8>>,
    written: Written,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled at every change: a job handed over, one written, the stop.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, Queue>, c_int> {
        self.queue.lock().map_err(|_| ffi::SQLITE_IOERR_WRITE)
    }

    fn wait<'a>(&self, q: MutexGuard<'a, Queue>) -> Result<MutexGuard<'a, Queue>, c_int> {
        self.changed.wait(q).map_err(|_| ffi::SQLITE_IOERR_WRITE)
    }
}

/// The writer of one file.
pub(super) struct Behind {
    real: *mut ffi::sqlite3_file,
    shared: Arc<Shared>,
    /// `None` when no thread could be started: each buffer is then written on hand-over.
    thread: Option<JoinHandle<()>>,
}

/// Write `data` at `at` through `real`, in calls of at most [`CALL`] bytes.
///
/// # Safety
/// `real` is an open file of the default VFS that no other thread is calling.
unsafe fn write_out(real: *mut ffi::sqlite3_file, data: &[u8], at: i64) -> c_int {
    for (i, chunk) in data.chunks(CALL).enumerate() {
        let rc = super::real_write(real, chunk, at + (i * CALL) as i64);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    ffi::SQLITE_OK
}

/// Write `job` (unless a write already failed) and hash its pieces; then, under the lock,
/// keep the hashes and the failure and hand the buffer back.
///
/// # Safety
/// As [`write_out`].
unsafe fn run(real: *mut ffi::sqlite3_file, shared: &Shared, mut job: Job, failed: c_int) {
    // In unit tests the writer lags well behind, so that a call that did not wait for it
    // reads or closes a file without the latest writes, and fails its test.
    #[cfg(test)]
    std::thread::sleep(std::time::Duration::from_micros(300));
    let rc = if failed == ffi::SQLITE_OK {
        write_out(real, &job.data, job.at)
    } else {
        failed
    };
    // What SQLite wrote is kept even when the write failed: a page that did not reach the
    // file then fails the check of the file too, not only the failed call.
    let mut hashes = Vec::with_capacity(job.pieces.len());
    let mut off = 0usize;
    for &n in &job.pieces {
        let n = n as usize;
        let Some(bytes) = job.data.get(off..off + n) else {
            break;
        };
        hashes.push((job.at + off as i64, n as u64, page_hash(bytes)));
        off += n;
    }
    let Ok(mut q) = shared.lock() else {
        return;
    };
    for (at, n, h) in hashes {
        q.written.record_hash(n, at, h);
    }
    if rc != ffi::SQLITE_OK && q.failed == ffi::SQLITE_OK {
        q.failed = rc;
    }
    q.busy = false;
    job.data.clear();
    if q.spare.len() <= QUEUE {
        q.spare.push(std::mem::take(&mut job.data));
    }
    shared.changed.notify_all();
}

/// Ends the writer's part if it panics: the job it held fails, so no one waits for it.
struct Unwinding<'a>(&'a Shared);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = match self.0.queue.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            q.failed = ffi::SQLITE_IOERR_WRITE;
            q.busy = false;
            q.jobs.clear();
            self.0.changed.notify_all();
        }
    }
}

fn writer(real: Real, shared: Arc<Shared>) {
    let _unwinding = Unwinding(&shared);
    loop {
        let (job, failed) = {
            let Ok(mut q) = shared.lock() else {
                return;
            };
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    q.busy = true;
                    break (j, q.failed);
                }
                if q.stop {
                    return;
                }
                q = match shared.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        // SAFETY: the connection's thread does not call the file while a job is out (it
        // waits in `drain`), and the file stays open until this thread is joined.
        unsafe { run(real.0, &shared, job, failed) };
    }
}

impl Behind {
    /// Start the writer of `real`, which keeps what is written in `written`.
    pub(super) fn start(real: *mut ffi::sqlite3_file, written: Written) -> Behind {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                written,
                ..Queue::default()
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let (r, s) = (Real(real), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("cw-write-behind".into())
                .spawn(move || writer(r, s))
                .ok()
        };
        Behind {
            real,
            shared,
            thread,
        }
    }

    /// Hand `data` (SQLite's writes of `pieces` bytes each, from `at`) to the writer; both
    /// are left empty. Waits while [`QUEUE`] buffers are waiting.
    pub(super) fn put(&mut self, data: &mut Vec<u8>, at: i64, pieces: &mut Vec<u32>) -> c_int {
        let job = |data: &mut Vec<u8>, pieces: &mut Vec<u32>, spare: Option<Vec<u8>>| Job {
            at,
            data: std::mem::replace(data, spare.unwrap_or_else(|| Vec::with_capacity(JOB))),
            pieces: std::mem::take(pieces),
        };
        let mut q = match self.shared.lock() {
            Ok(q) => q,
            Err(rc) => return rc,
        };
        if self.thread.is_none() {
            let failed = q.failed;
            let spare = q.spare.pop();
            drop(q);
            // SAFETY: no writer thread: this is the only caller of the file.
            unsafe { run(self.real, &self.shared, job(data, pieces, spare), failed) };
            return self.failed();
        }
        while q.jobs.len() >= QUEUE && q.failed == ffi::SQLITE_OK {
            q = match self.shared.wait(q) {
                Ok(q) => q,
                Err(rc) => return rc,
            };
        }
        if q.failed != ffi::SQLITE_OK {
            data.clear();
            pieces.clear();
            return q.failed;
        }
        let spare = q.spare.pop();
        q.jobs.push_back(job(data, pieces, spare));
        self.shared.changed.notify_all();
        ffi::SQLITE_OK
    }

    /// The code of a write that failed, without waiting.
    pub(super) fn failed(&self) -> c_int {
        self.shared.lock().map_or_else(|rc| rc, |q| q.failed)
    }

    /// Wait until every buffer handed over is written; the code of a write that failed.
    /// After it, and until the next [`Behind::put`], the file is the caller's alone.
    pub(super) fn drain(&self) -> c_int {
        let mut q = match self.shared.lock() {
            Ok(q) => q,
            Err(rc) => return rc,
        };
        while !q.jobs.is_empty() || q.busy {
            q = match self.shared.wait(q) {
                Ok(q) => q,
                Err(rc) => return rc,
            };
        }
        q.failed
    }

    /// What was written, to change after a [`Behind::drain`] (a truncate).
    pub(super) fn written<R>(&self, f: impl FnOnce(&mut Written) -> R) -> Option<R> {
        self.shared.lock().ok().map(|mut q| f(&mut q.written))
    }

    /// Write what is waiting, stop the writer, and hand back what was written (its hashes
    /// say nothing if the writer could not be joined).
    pub(super) fn finish(mut self) -> (c_int, Written) {
        let rc = self.drain();
        if let Ok(mut q) = self.shared.lock() {
            q.stop = true;
            self.shared.changed.notify_all();
        }
        let joined = self.thread.take().map_or(true, |t| t.join().is_ok());
        let taken = self
            .shared
            .lock()
            .map(|mut q| std::mem::take(&mut q.written));
        match (joined, taken) {
            (true, Ok(written)) => (rc, written),
            // What was written is not all known: the close fails, and so does the copy.
            (_, Ok(mut written)) => {
                written.set_irregular();
                (ffi::SQLITE_IOERR_WRITE, written)
            }
            (_, Err(code)) => (code, Written::default()),
        }
    }
}

impl Drop for Behind {
    fn drop(&mut self) {
        // Only reached without `finish` if the file's state is dropped some other way: the
        // thread must not outlive the file.
        if let Some(t) = self.thread.take() {
            if let Ok(mut q) = self.shared.lock() {
                q.stop = true;
                self.shared.changed.notify_all();
            }
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A file of the default VFS's shape whose writes go to memory, slowly, counting calls;
    /// the call numbered `fail_at` (from 1) fails with `SQLITE_FULL`.
    #[repr(C)]
    struct FakeFile {
        base: ffi::sqlite3_file,
        calls: AtomicUsize,
        fail_at: usize,
        bytes: Mutex<Vec<u8>>,
    }

    unsafe extern "C" fn fake_write(
        f: *mut ffi::sqlite3_file,
        buf: *const std::ffi::c_void,
        amt: c_int,
        at: i64,
    ) -> c_int {
        let f = &*f.cast::<FakeFile>();
        let n = f.calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(Duration::from_micros(200));
        if n == f.fail_at || amt as usize > CALL {
            return ffi::SQLITE_FULL;
        }
        let src = std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize);
        let mut b = f.bytes.lock().unwrap();
        let (at, end) = (at as usize, at as usize + src.len());
        if b.len() < end {
            b.resize(end, 0);
        }
        b[at..end].copy_from_slice(src);
        ffi::SQLITE_OK
    }

    static FAKE_METHODS: ffi::sqlite3_io_methods = {
        // SAFETY: a table of optional function pointers and an integer: all zero is valid.
        let mut m: ffi::sqlite3_io_methods = unsafe { std::mem::zeroed() };
        m.iVersion = 1;
        m.xWrite = Some(fake_write);
        m
    };

    fn fake(fail_at: usize) -> Box<FakeFile> {
        Box::new(FakeFile {
            base: ffi::sqlite3_file {
                pMethods: &FAKE_METHODS,
            },
            calls: AtomicUsize::new(0),
            fail_at,
            bytes: Mutex::new(Vec::new()),
        })
    }

    fn page(i: usize) -> Vec<u8> {
        vec![(i % 251) as u8; 4096]
    }

    #[test]
    fn buffers_handed_over_are_in_the_file_in_order_once_drained_and_their_pages_hashed() {
        let mut f = fake(0);
        let real: *mut ffi::sqlite3_file = (&mut f.base) as *mut _;
        let mut b = Behind::start(real, Written::default());
        assert!(b.thread.is_some());
        let mut want = Vec::new();
        // Pages 0..40 in buffers of 5, then pages 10..15 written again with other bytes.
        let put = |b: &mut Behind, first: usize, tag: usize| {
            let mut data: Vec<u8> = (first..first + 5).flat_map(|i| page(i + tag)).collect();
            let mut pieces = vec![4096; 5];
            assert_eq!(b.put(&mut data, (first * 4096) as i64, &mut pieces), 0);
            assert!(data.is_empty() && pieces.is_empty());
        };
        for first in (0..40).step_by(5) {
            put(&mut b, first, 0);
        }
        put(&mut b, 10, 7);
        for i in 0..40 {
            want.extend(page(if (10..15).contains(&i) { i + 7 } else { i }));
        }
        // Without the drain, the writer (200 µs a call) is still behind.
        assert_eq!(b.drain(), ffi::SQLITE_OK);
        assert!(*f.bytes.lock().unwrap() == want, "the file after the drain");
        let (rc, w) = b.finish();
        assert_eq!(rc, ffi::SQLITE_OK);
        for (i, p) in want.chunks(4096).enumerate() {
            assert!(w.matches(i, p), "page {i}");
        }
        assert!(
            !w.matches(12, &page(12)),
            "page 12's first write counts, not its last"
        );
    }

    #[test]
    fn a_write_the_writer_fails_fails_every_later_hand_over_and_drain() {
        let mut f = fake(3);
        let real: *mut ffi::sqlite3_file = (&mut f.base) as *mut _;
        let mut b = Behind::start(real, Written::default());
        let mut first = None;
        for i in 0..50usize {
            let mut data = page(i);
            if b.put(&mut data, (i * 4096) as i64, &mut vec![4096]) != ffi::SQLITE_OK {
                first = Some(i);
                break;
            }
        }
        // The failure may surface at a later hand-over or at the drain, never not at all.
        assert_eq!(b.drain(), ffi::SQLITE_FULL);
        assert!(first.map_or(true, |i| i >= 3));
        assert_eq!(b.put(&mut page(0), 0, &mut vec![4096]), ffi::SQLITE_FULL);
        assert_eq!(b.failed(), ffi::SQLITE_FULL);
        let calls = f.calls.load(Ordering::SeqCst);
        assert_eq!(calls, 3, "the writer went on after the failure");
        assert_eq!(b.finish().0, ffi::SQLITE_FULL);
    }

    #[test]
    fn a_buffer_over_one_call_goes_out_in_calls_the_default_vfs_takes() {
        let mut f = fake(0);
        let real: *mut ffi::sqlite3_file = (&mut f.base) as *mut _;
        let mut b = Behind::start(real, Written::default());
        let mut data: Vec<u8> = (0..64).flat_map(page).collect();
        let want = data.clone();
        assert_eq!(b.put(&mut data, 0, &mut vec![4096; 64]), ffi::SQLITE_OK);
        assert_eq!(b.drain(), ffi::SQLITE_OK);
        assert!(*f.bytes.lock().unwrap() == want);
        assert_eq!(f.calls.load(Ordering::SeqCst), 64 * 4096 / CALL);
        drop(b);
    }
}
