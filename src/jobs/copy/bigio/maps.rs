//! Pages of a file opened read-only, handed to SQLite where they lie in the page cache
//! (`xFetch`), through small mappings of the file that come and go as the reads move on.
//!
//! Read with `pread`, every page of the 20 GB original is copied twice on the copy's thread
//! (out of the page cache, then into SQLite's cache) (BENCHMARKS.md, "4. 20 GB", run 7). The
//! verification does not map: `quick_check` walks a cold file backward, and faulting its
//! pages in one at a time was slower than its reads in blocks. A connection that sets
//! `PRAGMA mmap_size` asks the VFS for pages instead (`xFetch`); the default VFS then maps
//! the file from its start up to that size (at most 2 GiB in this build), and every mapped
//! page counts as the process's memory. Here a page is served from a window of
//! [`WINDOW`] bytes around it; at most [`KEEP`] windows no page is taken from stay mapped.
//!
//! What a mapping costs: a read of it that the disk cannot serve, or a file cut short under
//! it, is a `SIGBUS`, not an error code. When the fault is in one of these windows, the
//! process puts the terminal back (the explorer may have it), says so in one line and exits
//! with code 1 ([`on_sigbus`]); mappings exist only while the copy reads, before the swap,
//! so a prune stopped that way has changed nothing. Any other `SIGBUS` goes to the handler
//! that was there before.

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::ffi;

/// The bytes one mapping serves pages from.
const WINDOW: usize = 4 << 20;
/// Mapped past the window: SQLite may read a little past a page of a corrupt database, and
/// asks for 256 bytes to be there.
const TAIL: usize = 4096;
/// The windows kept mapped while no page of them is out.
const KEEP: usize = 2;

/// Where the live windows are, for the `SIGBUS` handler (which may not take a lock): start
/// and end addresses, 0 for a free slot. A window that finds no free slot is not mapped.
static LIVE: [(AtomicUsize, AtomicUsize); 64] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 64];

fn register(start: usize, len: usize) -> bool {
    for (s, e) in &LIVE {
        if s.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            e.store(start + len, Ordering::SeqCst);
            return true;
        }
    }
    false
}

fn unregister(start: usize) {
    for (s, e) in &LIVE {
        if s.load(Ordering::SeqCst) == start {
            e.store(0, Ordering::SeqCst);
            s.store(0, Ordering::SeqCst);
            return;
        }
    }
}

fn is_live(addr: usize) -> bool {
    LIVE.iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::SeqCst), e.load(Ordering::SeqCst));
        s != 0 && (s..e).contains(&addr)
    })
}

#[cfg(test)]
thread_local! {
    /// Pages served from a mapping on this thread (tests read it).
    pub(super) static FETCHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

struct Window {
    at: i64,
    /// Bytes pages may be served from (the mapping is up to [`TAIL`] longer).
    serve: usize,
    map_len: usize,
    ptr: *mut u8,
    refs: u32,
}

/// The mappings of one file.
pub(super) struct Maps {
    fd: c_int,
    windows: Vec<Window>,
}

/// The descriptor the default (`unix`) VFS holds for `real`: its file structure begins with
/// the methods, the VFS, the inode and then the descriptor. Taken only if it is the file at
/// `path` (the same device and inode), so another layout finds nothing and maps nothing.
unsafe fn descriptor_of(real: *mut ffi::sqlite3_file, size: c_int, path: &CStr) -> Option<c_int> {
    let methods = (*real).pMethods.as_ref()?;
    let at = 3 * std::mem::size_of::<*const c_void>();
    if methods.iVersion < 3 || usize::try_from(size).ok()? < at + std::mem::size_of::<c_int>() {
        return None;
    }
    let fd = *real
        .cast::<u8>()
        .add(3 * std::mem::size_of::<*const c_void>())
        .cast::<c_int>();
    if fd < 0 {
        return None;
    }
    let mut a: libc::stat = std::mem::zeroed();
    let mut b: libc::stat = std::mem::zeroed();
    let same = libc::fstat(fd, &mut a) == 0
        && libc::stat(path.as_ptr(), &mut b) == 0
        && (a.st_mode & libc::S_IFMT) == libc::S_IFREG
        && a.st_dev == b.st_dev
        && a.st_ino == b.st_ino;
    same.then_some(fd)
}

impl Maps {
    /// Mappings of `real`, a file of `size` bytes the `unix` VFS opened from `path`; `None`
    /// if its descriptor cannot be told for certain (pages are then read as before).
    pub(super) unsafe fn of(
        real: *mut ffi::sqlite3_file,
        size: c_int,
        path: &CStr,
    ) -> Option<Maps> {
        descriptor_of(real, size, path).map(|fd| Maps {
            fd,
            windows: Vec::new(),
        })
    }

    /// A pointer to the `amt` bytes at `at`, if a window can serve them with at least 256
    /// bytes of the file after them; null otherwise (SQLite then reads the page). `size`
    /// gives the file's size when a window is mapped.
    pub(super) fn fetch(
        &mut self,
        at: i64,
        amt: usize,
        size: impl FnOnce() -> Option<i64>,
    ) -> *mut c_void {
        if at < 0 || amt == 0 || amt > WINDOW {
            return std::ptr::null_mut();
        }
        let start = at - at % WINDOW as i64;
        let i = match self.windows.iter().position(|w| w.at == start) {
            Some(i) => i,
            None => match self.map(start, size()) {
                Some(i) => i,
                None => return std::ptr::null_mut(),
            },
        };
        let w = &mut self.windows[i];
        let off = (at - w.at) as usize;
        if off + amt > w.serve || off + amt + 256 > w.map_len {
            return std::ptr::null_mut();
        }
        w.refs += 1;
        #[cfg(test)]
        FETCHED.with(|f| f.set(f.get() + 1));
        // SAFETY: `off + amt` is inside the mapping.
        unsafe { w.ptr.add(off).cast() }
    }

    /// Map the window at `start` of a file of `size` bytes; its index.
    fn map(&mut self, start: i64, size: Option<i64>) -> Option<usize> {
        let size = size?;
        let left = usize::try_from(size.checked_sub(start)?).ok()?;
        let map_len = left.min(WINDOW + TAIL);
        if map_len == 0 {
            return None;
        }
        self.unmap_idle(KEEP.saturating_sub(1));
        // SAFETY: a read-only shared mapping of a descriptor SQLite keeps open while the
        // file is (`Maps` is dropped before the file is closed); nothing is written to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                self.fd,
                start as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        install_sigbus_handler();
        if !register(ptr as usize, map_len) {
            // SAFETY: just mapped, nothing served from it.
            unsafe { libc::munmap(ptr, map_len) };
            return None;
        }
        self.windows.push(Window {
            at: start,
            serve: map_len.min(WINDOW),
            map_len,
            ptr: ptr.cast(),
            refs: 0,
        });
        Some(self.windows.len() - 1)
    }

    /// Give back a page [`Maps::fetch`] handed out; with a null `p`, unmap every window no
    /// page is out of (SQLite says the file may have changed size).
    pub(super) fn unfetch(&mut self, p: *mut c_void) {
        if p.is_null() {
            self.unmap_idle(0);
            return;
        }
        let p = p as usize;
        if let Some(w) = self
            .windows
            .iter_mut()
            .find(|w| (w.ptr as usize..w.ptr as usize + w.serve).contains(&p))
        {
            w.refs = w.refs.saturating_sub(1);
        }
    }

    /// Unmap the oldest windows no page is out of, until at most `keep` of them are left.
    fn unmap_idle(&mut self, keep: usize) {
        let mut idle = self.windows.iter().filter(|w| w.refs == 0).count();
        self.windows.retain(|w| {
            if idle > keep && w.refs == 0 {
                idle -= 1;
                unregister(w.ptr as usize);
                // SAFETY: a mapping this struct made, no page of which is out.
                unsafe { libc::munmap(w.ptr.cast(), w.map_len) };
                false
            } else {
                true
            }
        });
    }

    #[cfg(test)]
    fn mapped(&self) -> usize {
        self.windows.len()
    }
}

impl Drop for Maps {
    fn drop(&mut self) {
        for w in self.windows.drain(..) {
            unregister(w.ptr as usize);
            // SAFETY: SQLite gives back every page before it closes the file.
            unsafe { libc::munmap(w.ptr.cast(), w.map_len) };
        }
    }
}

/// The `SIGBUS` handler there was before [`install_sigbus_handler`].
static mut BEFORE: Option<libc::sigaction> = None;

/// A read of a mapping that failed: the terminal back, one line, and exit code 1 (the
/// module doc). A fault anywhere else goes to the handler there was before: it is put back,
/// and the faulting read, tried again, meets it.
extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: only async-signal-safe calls (isatty, tcgetattr, tcsetattr, write, _exit,
    // sigaction), on data this process owns.
    unsafe {
        let addr = if info.is_null() {
            0
        } else {
            (*info).si_addr() as usize
        };
        if !is_live(addr) {
            let before = std::ptr::addr_of!(BEFORE).read();
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, before.as_ref().unwrap_or(&dfl), std::ptr::null_mut());
            return;
        }
        if libc::isatty(2) == 1 {
            // Out of the explorer's screen, mouse reports and raw mode.
            const RESET: &[u8] =
                b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1049l\x1b[?25h";
            libc::write(2, RESET.as_ptr().cast(), RESET.len());
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(2, &mut t) == 0 {
                t.c_lflag |= libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN;
                t.c_iflag |= libc::ICRNL;
                t.c_oflag |= libc::OPOST;
                libc::tcsetattr(2, libc::TCSANOW, &t);
            }
        }
        const MSG: &[u8] = b"\nchroma-wal: a file being read could not be read from the disk, or was cut short (SIGBUS); stopped. A prune stopped here changed nothing: run it again.\n";
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(1);
    }
}

fn install_sigbus_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: BEFORE is written once, here, before the handler that reads it is set.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void)
                as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) == 0 {
                std::ptr::addr_of_mut!(BEFORE).write(Some(old));
            }
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn pages_come_from_windows_that_are_unmapped_once_idle_and_never_past_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let n = 3 * WINDOW + 5 * 4096 + 100;
        let bytes: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let mut m = Maps {
            fd: f.as_raw_fd(),
            windows: Vec::new(),
        };
        let size = || Some(n as i64);
        let mut out = Vec::new();
        for page in 0..n / 4096 {
            let at = (page * 4096) as i64;
            let q = m.fetch(at, 4096, size);
            if page + 1 < n / 4096 {
                assert!(!q.is_null(), "page {page}");
                let got = unsafe { std::slice::from_raw_parts(q.cast::<u8>(), 4096) };
                assert!(got == &bytes[page * 4096..(page + 1) * 4096], "page {page}");
                out.push((q, page));
            } else {
                // The last whole page has only 100 bytes of the file after it.
                assert!(q.is_null(), "the last page, with too little after it");
            }
            if out.len() > 3 {
                // A page still out reads as it did: its window was not unmapped under it.
                let (q, was) = out.remove(0);
                let again = unsafe { std::slice::from_raw_parts(q.cast::<u8>(), 4096) };
                assert!(
                    again == &bytes[was * 4096..(was + 1) * 4096],
                    "page {was} again"
                );
                m.unfetch(q);
            }
            assert!(
                m.mapped() <= KEEP + 1,
                "{} windows at page {page}",
                m.mapped()
            );
        }
        for (q, _) in out.drain(..) {
            m.unfetch(q);
        }
        m.unfetch(std::ptr::null_mut());
        assert_eq!(m.mapped(), 0);
        // A page across two windows is not served; nor one past the end.
        assert!(m.fetch(WINDOW as i64 - 10, 4096, size).is_null());
        assert!(m.fetch(n as i64, 4096, size).is_null());
    }

    #[test]
    fn a_read_of_a_window_cut_short_is_one_line_and_exit_code_1() {
        const NAME: &str =
            "jobs::copy::bigio::maps::tests::a_read_of_a_window_cut_short_is_one_line_and_exit_code_1";
        if std::env::var_os("CW_SIGBUS_CHILD").is_some() {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("f");
            std::fs::write(&p, vec![7u8; 5 * 4096]).unwrap();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .unwrap();
            let mut m = Maps {
                fd: f.as_raw_fd(),
                windows: Vec::new(),
            };
            let q = m.fetch(0, 4096, || Some(5 * 4096));
            assert!(!q.is_null());
            f.set_len(0).unwrap();
            // SAFETY: the point of the test: a read of a page the file no longer has.
            let b = unsafe { std::ptr::read_volatile(q.cast::<u8>()) };
            println!("read {b} from a cut file");
            std::process::exit(3);
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
            .env("CW_SIGBUS_CHILD", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("chroma-wal:"))
            .collect();
        assert_eq!(lines.len(), 1, "stderr: {err}");
        assert!(lines[0].contains("SIGBUS") && lines[0].contains("changed nothing"));
    }

    #[test]
    fn a_descriptor_is_taken_only_when_it_is_the_named_file() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let fa = std::fs::File::open(&a).unwrap();
        // A file structure of the default VFS's shape: methods, VFS, inode, descriptor.
        #[repr(C)]
        struct Shape {
            methods: *const ffi::sqlite3_io_methods,
            vfs: *const c_void,
            inode: *const c_void,
            h: c_int,
        }
        static M: ffi::sqlite3_io_methods = {
            // SAFETY: all zero is a valid table of optional functions.
            let mut m: ffi::sqlite3_io_methods = unsafe { std::mem::zeroed() };
            m.iVersion = 3;
            m
        };
        let mut s = Shape {
            methods: &M,
            vfs: std::ptr::null(),
            inode: std::ptr::null(),
            h: fa.as_raw_fd(),
        };
        let real = (&mut s as *mut Shape).cast::<ffi::sqlite3_file>();
        let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        unsafe {
            let size = std::mem::size_of::<Shape>() as c_int;
            assert_eq!(descriptor_of(real, size, &c(&a)), Some(fa.as_raw_fd()));
            assert_eq!(descriptor_of(real, size, &c(&b)), None, "another file");
            assert_eq!(descriptor_of(real, 16, &c(&a)), None, "a smaller structure");
            (*real.cast::<Shape>()).h = -1;
            assert_eq!(descriptor_of(real, size, &c(&a)), None, "no descriptor");
        }
    }
}
