//! Which processes hold the persist dir open. SQLite locks exist only during transactions, so
//! a running Chroma is found by its open file handles (on Linux, /proc/<pid>/fd).

use std::path::{Path, PathBuf};

/// A process that has a file of the persist dir open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    /// One of the files it holds (for the message).
    pub file: PathBuf,
}

/// The outcome of looking for holders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holders {
    pub list: Vec<Holder>,
    /// False when the check could not be made (not Linux, no /proc).
    pub checked: bool,
    /// Processes whose open files could not be read (other users' processes without root).
    pub unreadable: usize,
    /// A sentence for the user when the check was incomplete.
    pub note: Option<String>,
    /// The kernel says some process has chroma.sqlite3 open for writing, yet none of those
    /// listed from /proc does: one in another container or PID namespace.
    pub unseen_writer: bool,
}

impl Holders {
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|h| format!("pid {} ({})", h.pid, h.command))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Find processes other than this one holding any file under `dir` open.
pub fn find(dir: &Path) -> Holders {
    find_in(Path::new("/proc"), dir)
}

/// As [`find`], with the proc root as a parameter for tests.
pub fn find_in(proc_root: &Path, dir: &Path) -> Holders {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Some((mut list, unreadable)) = walk(proc_root, |fd| {
        std::fs::read_link(fd).ok().filter(|t| t.starts_with(&dir))
    }) else {
        return Holders {
            checked: false,
            note: Some("open files could not be checked on this system (no /proc)".into()),
            ..Default::default()
        };
    };
    list.sort_by_key(|h| h.pid);
    Holders {
        checked: true,
        list,
        unreadable,
        note: (unreadable > 0).then(|| {
            format!(
                "{unreadable} processes of other users could not be checked (run as their owner or root to be sure)"
            )
        }),
        ..Default::default()
    }
}

/// Whether any process, in any PID namespace or container on this kernel, has `file` open
/// for writing: the kernel grants a read lease only when none has. `None` when it cannot
/// tell (this user does not own the file, or the filesystem has no leases).
///
/// Opens and closes `file`: POSIX drops every lock a process holds on a file when any
/// descriptor of it is closed, so never call this while a connection of this process holds
/// an SQLite lock on it.
pub fn open_for_writing(file: &Path) -> Option<bool> {
    use std::os::fd::AsRawFd;
    // A writer opening the file while we hold the lease would send us SIGIO, whose default
    // action ends the process; the lease is held for microseconds, but never die of it.
    // SAFETY: setting a signal's disposition to "ignore".
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    }
    let f = std::fs::File::open(file).ok()?;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(false);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Some(true),
        _ => None,
    }
}

/// Processes other than this one with the file (dev, inode) open, whatever its name now is
/// (it may have been renamed over or unlinked).
pub fn holders_of_inode(dev: u64, ino: u64) -> Vec<Holder> {
    use std::os::unix::fs::MetadataExt;
    walk(Path::new("/proc"), |fd| {
        // stat() follows the /proc link to the open file itself, named or not.
        let m = std::fs::metadata(fd).ok()?;
        (m.dev() == dev && m.ino() == ino).then(|| std::fs::read_link(fd).unwrap_or_default())
    })
    .map(|(list, _)| list)
    .unwrap_or_default()
}

/// Every process under `proc_root` but this one whose open descriptors include one for which
/// `hit` (given the descriptor's /proc path) names a file: that process, with the first such
/// file. Also how many processes' descriptors could not be read. `None` without `proc_root`.
fn walk(proc_root: &Path, hit: impl Fn(&Path) -> Option<PathBuf>) -> Option<(Vec<Holder>, usize)> {
    let entries = std::fs::read_dir(proc_root).ok()?;
    let me = std::process::id();
    let mut list = Vec::new();
    let mut unreadable = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || own_fork(&entry.path(), me) {
            continue;
        }
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                unreadable += 1;
                continue;
            }
            Err(_) => continue, // the process ended meanwhile
        };
        if let Some(file) = fds.flatten().find_map(|fd| hit(&fd.path())) {
            list.push(Holder {
                pid,
                command: command_line(&entry.path()),
                file,
            });
        }
    }
    Some((list, unreadable))
}

/// Whether the process at `proc_dir` is this one forked and not yet replaced by `exec`
/// (its parent is `me`, its program ours): it holds copies of our descriptors only until the
/// exec closes them (SQLite opens its files close-on-exec). Another thread of a process that
/// prunes in-process (the tests) spawning a command makes one for an instant.
fn own_fork(proc_dir: &Path, me: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    if ppid != Some(me) {
        return false;
    }
    match (
        std::fs::read_link(proc_dir.join("exe")),
        std::fs::read_link(Path::new("/proc/self/exe")),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        _ => false,
    }
}

fn command_line(proc_dir: &Path) -> String {
    match std::fs::read(proc_dir.join("cmdline")) {
        Ok(raw) if !raw.is_empty() => {
            let s: Vec<String> = raw
                .split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let mut c = s.join(" ");
            if c.chars().count() > 200 {
                c = c.chars().take(199).collect::<String>() + "…";
            }
            c
        }
        _ => std::fs::read_to_string(proc_dir.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_process_holding_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chroma.sqlite3");
        std::fs::write(&f, b"x").unwrap();
        // A child process that holds the file open on its stdin.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(&f).unwrap())
            .spawn()
            .unwrap();
        let h = find(dir.path());
        child.kill().ok();
        child.wait().ok();
        assert!(h.checked);
        assert!(
            h.list
                .iter()
                .any(|x| x.pid == child.id() && x.command.contains("sleep")),
            "{h:?}"
        );
    }

    #[test]
    fn this_process_forked_before_its_exec_is_not_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chroma.sqlite3");
        std::fs::write(&f, b"x").unwrap();
        let me = std::process::id();
        let ours = std::fs::read_link("/proc/self/exe").unwrap();
        let fake = tempfile::tempdir().unwrap();
        // Two processes holding the file: our fork, and another child of ours running
        // another program.
        for (pid, exe) in [(4_000_001u32, ours.clone()), (4_000_002, "/bin/sh".into())] {
            let p = fake.path().join(pid.to_string());
            std::fs::create_dir_all(p.join("fd")).unwrap();
            std::fs::write(p.join("stat"), format!("{pid} (a (b) c) S {me} 1 1")).unwrap();
            std::os::unix::fs::symlink(&exe, p.join("exe")).unwrap();
            std::os::unix::fs::symlink(&f, p.join("fd").join("3")).unwrap();
        }
        let h = find_in(fake.path(), dir.path());
        let pids: Vec<u32> = h.list.iter().map(|x| x.pid).collect();
        assert_eq!(pids, [4_000_002], "{h:?}");
    }

    #[test]
    fn ignores_this_process_and_unrelated_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chroma.sqlite3");
        std::fs::write(&f, b"x").unwrap();
        let _held = std::fs::File::open(&f).unwrap();
        let h = find(dir.path());
        assert!(h.list.iter().all(|x| x.pid != std::process::id()));
    }

    #[test]
    fn finds_the_holder_of_an_unlinked_file_by_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chroma.sqlite3");
        std::fs::write(&f, b"x").unwrap();
        let m = std::fs::metadata(&f).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(&f).unwrap())
            .spawn()
            .unwrap();
        std::fs::remove_file(&f).unwrap();
        let h = holders_of_inode(m.dev(), m.ino());
        let other = holders_of_inode(m.dev(), m.ino() + 1_000_000);
        child.kill().ok();
        child.wait().ok();
        assert!(h.iter().any(|x| x.pid == child.id()), "{h:?}");
        assert!(other.iter().all(|x| x.pid != child.id()));
    }

    #[test]
    fn a_writer_is_seen_by_the_lease_check_and_a_reader_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chroma.sqlite3");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(open_for_writing(&f), Some(false));
        let spawn = |w: bool| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(w)
                .open(&f)
                .unwrap();
            std::process::Command::new("sleep")
                .arg("30")
                .stdin(file)
                .spawn()
                .unwrap()
        };
        let mut reader = spawn(false);
        let with_reader = open_for_writing(&f);
        reader.kill().ok();
        reader.wait().ok();
        let mut writer = spawn(true);
        let with_writer = open_for_writing(&f);
        writer.kill().ok();
        writer.wait().ok();
        assert_eq!(with_reader, Some(false));
        assert_eq!(with_writer, Some(true));
    }

    #[test]
    fn missing_proc_is_reported_not_fatal() {
        let h = find_in(Path::new("/nonexistent-proc"), Path::new("/tmp"));
        assert!(!h.checked);
        assert!(h.note.is_some());
    }
}
