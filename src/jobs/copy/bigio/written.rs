//! What SQLite wrote through the VFS to a file it opened for writing: a hash of each page as
//! last written, kept once the file is closed until the verification takes it.

/// What SQLite wrote to a file through this VFS: a hash of each page as it was last written,
/// to check the file against once it is closed ([`take_written`]). The check sees what no
/// read through SQLite's own cache can: a page whose last write did not reach the file.
#[derive(Default)]
pub struct Written {
    path: Option<std::path::PathBuf>,
    /// The page size (the first write's size); 0 before it.
    page: u64,
    hashes: Vec<u32>,
    set: Vec<bool>,
    /// A write of other than one whole page: the hashes say nothing.
    irregular: bool,
}

pub(super) fn page_hash(bytes: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(bytes) as u32
}

impl Written {
    /// Nothing written yet to the file at `path` (`None`: a file with no name).
    pub(super) fn for_path(path: Option<std::path::PathBuf>) -> Written {
        Written {
            path,
            ..Written::default()
        }
    }

    /// Keep `hash`, of a write of `n` bytes at `at`.
    pub(super) fn record_hash(&mut self, n: u64, at: i64, hash: u32) {
        if self.page == 0 && n.is_power_of_two() && n >= 512 {
            self.page = n;
        }
        if n != self.page || at < 0 || at as u64 % n != 0 {
            self.irregular = true;
            return;
        }
        let i = (at as u64 / n) as usize;
        if self.hashes.len() <= i {
            self.hashes.resize(i + 1, 0);
            self.set.resize(i + 1, false);
        }
        self.hashes[i] = hash;
        self.set[i] = true;
    }

    /// The hashes say nothing of the file (what was written is not all known).
    pub(super) fn set_irregular(&mut self) {
        self.irregular = true;
    }

    /// Add `later`, what a later connection wrote to the same file.
    pub(super) fn merge(&mut self, later: Written) {
        if later.page == 0 && !later.irregular {
            return;
        }
        if self.page == 0 {
            self.page = later.page;
        }
        if later.irregular || later.page != self.page {
            self.irregular = true;
            return;
        }
        if self.hashes.len() < later.hashes.len() {
            self.hashes.resize(later.hashes.len(), 0);
            self.set.resize(later.hashes.len(), false);
        }
        for (i, h) in later.hashes.iter().enumerate() {
            if later.set[i] {
                self.hashes[i] = *h;
                self.set[i] = true;
            }
        }
    }

    pub(super) fn truncate(&mut self, size: i64) {
        if self.page > 0 {
            let keep = (size.max(0) as u64).div_ceil(self.page) as usize;
            self.hashes.truncate(keep);
            self.set.truncate(keep);
        }
    }

    /// The page size, if every write was one whole page.
    pub fn page_size(&self) -> Option<u64> {
        (!self.irregular && self.page > 0).then_some(self.page)
    }

    /// The bytes the written pages span.
    pub fn extent(&self) -> u64 {
        self.hashes.len() as u64 * self.page
    }

    /// Whether `bytes`, page `i` (from 0) of the file as read, is what was last written
    /// there; a page never written has nothing to be compared with.
    pub fn matches(&self, i: usize, bytes: &[u8]) -> bool {
        !self.set.get(i).copied().unwrap_or(false) || self.hashes[i] == page_hash(bytes)
    }
}

/// Files written through this VFS and closed, with what was written to them, until
/// [`take_written`] takes them.
static CLOSED: std::sync::Mutex<Vec<Written>> = std::sync::Mutex::new(Vec::new());

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || canon(a) == canon(b)
}

/// What was written to `path` through this VFS, once the connection that wrote it has closed
/// it (`None` if no connection of this VFS wrote it).
pub fn take_written(path: &std::path::Path) -> Option<Written> {
    let mut closed = CLOSED.lock().ok()?;
    let i = closed
        .iter()
        .position(|w| w.path.as_deref().is_some_and(|p| same_file(p, path)))?;
    Some(closed.swap_remove(i))
}

/// Keep what was written to a closed file for [`take_written`], after what earlier
/// connections wrote to it (a later write of a page is its last); forget the files that are
/// gone (a copy that failed removes its file).
pub(super) fn keep_written(w: Written) {
    let Some(path) = w.path.clone() else {
        return;
    };
    if let Ok(mut closed) = CLOSED.lock() {
        closed.retain(|c| c.path.as_deref().is_some_and(|p| p.exists()));
        match closed
            .iter_mut()
            .find(|c| c.path.as_deref().is_some_and(|p| same_file(p, &path)))
        {
            Some(c) => c.merge(w),
            None => closed.push(w),
        }
    }
}
