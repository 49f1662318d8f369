//! A vector segment's index folder, as data: `header.bin`, the sizes of the files beside it,
//! and (on request) how many elements are marked deleted. Nothing here judges; see
//! `health.rs`.
//!
//! Layout (hnswlib, chroma-core fork, persistence version 1): `header.bin` holds the index's
//! fields back to back, little-endian, unpadded, 100 bytes. Element `i`'s level-0 block starts
//! at `i * size_data_per_element + offset_level0` in `data_level0.bin`; bit 0x01 of its third
//! byte marks it deleted.

pub mod distance;
pub mod elements;
pub mod links;
pub mod space;

pub use distance::Space;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub const HEADER: &str = "header.bin";
pub const DATA_LEVEL0: &str = "data_level0.bin";
pub const LENGTH: &str = "length.bin";
pub const LINK_LISTS: &str = "link_lists.bin";

/// The files an index folder holds (with `index_metadata.pickle`), and nothing else.
pub const INDEX_FILES: &[&str] = &[
    HEADER,
    DATA_LEVEL0,
    LENGTH,
    LINK_LISTS,
    super::INDEX_METADATA,
];

/// Size of `header.bin` as hnswlib writes it.
pub const HEADER_BYTES: usize = 100;
/// The only persistence version Chroma's fork of hnswlib writes and reads.
pub const PERSISTENCE_VERSION: i32 = 1;

/// `header.bin`, field by field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub version: i32,
    pub offset_level0: u64,
    pub max_elements: u64,
    pub cur_element_count: u64,
    pub size_data_per_element: u64,
    pub label_offset: u64,
    pub offset_data: u64,
    pub maxlevel: i32,
    pub enterpoint_node: u32,
    pub max_m: u64,
    pub max_m0: u64,
    pub m: u64,
    pub mult: f64,
    pub ef_construction: u64,
}

impl Header {
    /// Parse the first 100 bytes; shorter input is an error. The fields are not judged here.
    pub fn parse(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_BYTES {
            return Err(format!(
                "header.bin has {} bytes, fewer than the {HEADER_BYTES} of an index header",
                b.len()
            ));
        }
        let mut at = 0usize;
        let mut next = |n: usize| {
            let s = &b[at..at + n];
            at += n;
            s
        };
        let i32_ = |s: &[u8]| i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let u64_ = |s: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        };
        let version = i32_(next(4));
        let offset_level0 = u64_(next(8));
        let max_elements = u64_(next(8));
        let cur_element_count = u64_(next(8));
        let size_data_per_element = u64_(next(8));
        let label_offset = u64_(next(8));
        let offset_data = u64_(next(8));
        let maxlevel = i32_(next(4));
        let enterpoint_node = i32_(next(4)) as u32;
        let max_m = u64_(next(8));
        let max_m0 = u64_(next(8));
        let m = u64_(next(8));
        let mult = f64::from_bits(u64_(next(8)));
        let ef_construction = u64_(next(8));
        Ok(Header {
            version,
            offset_level0,
            max_elements,
            cur_element_count,
            size_data_per_element,
            label_offset,
            offset_data,
            maxlevel,
            enterpoint_node,
            max_m,
            max_m0,
            m,
            mult,
            ef_construction,
        })
    }

    /// Why these fields cannot describe an index hnswlib wrote, if they cannot.
    pub fn implausible(&self) -> Option<String> {
        if self.version != PERSISTENCE_VERSION {
            return Some(format!(
                "header.bin has persistence version {}, not {PERSISTENCE_VERSION}",
                self.version
            ));
        }
        let links0 = self.max_m0.checked_mul(4).and_then(|x| x.checked_add(4));
        let why = if self.cur_element_count > self.max_elements {
            format!(
                "{} elements in an index of capacity {}",
                self.cur_element_count, self.max_elements
            )
        } else if self.offset_level0 != 0 {
            format!("level-0 offset {} (hnswlib writes 0)", self.offset_level0)
        } else if links0 != Some(self.offset_data) {
            format!(
                "data offset {} does not follow from maxM0 {}",
                self.offset_data, self.max_m0
            )
        } else if self.label_offset <= self.offset_data
            || (self.label_offset - self.offset_data) % 4 != 0
        {
            format!(
                "label offset {} does not leave room for a float vector after offset {}",
                self.label_offset, self.offset_data
            )
        } else if self.label_offset.checked_add(8) != Some(self.size_data_per_element) {
            format!(
                "element size {} is not label offset {} + 8",
                self.size_data_per_element, self.label_offset
            )
        } else if self.m == 0 || self.max_m != self.m {
            format!("M {} and maxM {} disagree", self.m, self.max_m)
        } else if !(self.mult.is_finite() && self.mult > 0.0) {
            format!("level multiplier {} is not a positive number", self.mult)
        } else if self.cur_element_count > 0
            && (self.enterpoint_node as u64 >= self.cur_element_count || self.maxlevel < 0)
        {
            format!(
                "entry point {} at level {} is not among its {} elements",
                self.enterpoint_node, self.maxlevel, self.cur_element_count
            )
        } else {
            return None;
        };
        Some(format!("header.bin is impossible: {why}"))
    }

    /// The header of the elements a `data_level0.bin` of `level0_len` bytes holds whole: the
    /// same fields with fewer elements (a persist cut short, or a header of a later persist
    /// than its files), for reading what is there. Never more elements than this header's.
    pub fn whole_in(&self, level0_len: u64) -> Header {
        let whole = level0_len
            .checked_div(self.size_data_per_element)
            .unwrap_or(0)
            .min(self.cur_element_count);
        let mut h = *self;
        h.cur_element_count = whole;
        if u64::from(h.enterpoint_node) >= whole {
            h.enterpoint_node = 0;
        }
        h
    }

    /// The bytes of `data_level0.bin` its elements take (what a pass over them reads).
    pub fn level0_bytes(&self) -> u64 {
        self.cur_element_count
            .saturating_mul(self.size_data_per_element)
    }

    /// The vector dimension the element layout implies (float32 vectors).
    pub fn dimensionality(&self) -> u64 {
        self.label_offset.saturating_sub(self.offset_data) / 4
    }
}

/// What is on disk in a segment's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFolder {
    /// Every regular file in the folder with its length.
    pub files: BTreeMap<String, u64>,
    /// Entries that are not one of [`INDEX_FILES`] (or not regular files).
    pub strangers: Vec<String>,
    /// `header.bin`: absent, unreadable (the reason), or parsed.
    pub header: Option<Result<Header, String>>,
    /// Elements marked deleted; filled in by [`count_deleted`] (`--deep`).
    pub deleted: Option<u64>,
    /// The bytes `link_lists.bin` takes on disk (its blocks), beside its apparent length in
    /// `files`: a file hnswlib grew by seeking past its end is sparse, and the two differ.
    pub links_allocated: Option<u64>,
}

impl IndexFolder {
    /// A fingerprint of everything the listing holds (names, lengths, header fields), to
    /// tell whether a second listing of the folder says the same as the first.
    pub fn stamp(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{self:?}").hash(&mut h);
        h.finish()
    }

    /// Read the folder listing and `header.bin`. Cheap: one small file read. Every call is
    /// made relative to the open folder (no path is looked up twice): a dir of 20,000
    /// collections spends most of its catalog time in these calls.
    pub fn read(dir: &Path) -> std::io::Result<IndexFolder> {
        use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
        let fd = openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut listing = Dir::new(fd)?;
        let mut files = BTreeMap::new();
        let mut strangers = Vec::new();
        let mut links_allocated = None;
        while let Some(e) = listing.read() {
            let e = e?;
            let raw = e.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let name = String::from_utf8_lossy(raw).into_owned();
            // Not following symlinks, as `symlink_metadata` would.
            let st = statat(listing.fd()?, e.file_name(), AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                if !INDEX_FILES.contains(&name.as_str()) {
                    strangers.push(name.clone());
                }
                if name == LINK_LISTS {
                    links_allocated = Some((st.st_blocks as u64).saturating_mul(512));
                }
                files.insert(name, st.st_size as u64);
            } else {
                strangers.push(name);
            }
        }
        strangers.sort();
        let header = files.contains_key(HEADER).then(|| {
            let mut b = Vec::with_capacity(HEADER_BYTES);
            listing
                .fd()
                .and_then(|d| openat(d, HEADER, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()))
                .map(File::from)
                .map_err(std::io::Error::from)
                .and_then(|f| f.take(HEADER_BYTES as u64).read_to_end(&mut b))
                .map_err(|e| format!("header.bin cannot be read: {e}"))
                .and_then(|_| Header::parse(&b))
        });
        Ok(IndexFolder {
            files,
            strangers,
            header,
            deleted: None,
            links_allocated,
        })
    }

    pub fn file(&self, name: &str) -> Option<u64> {
        self.files.get(name).copied()
    }

    /// The parsed header, when there is one.
    pub fn parsed(&self) -> Option<&Header> {
        match &self.header {
            Some(Ok(h)) => Some(h),
            _ => None,
        }
    }

    /// Bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.values().sum()
    }

    /// Which of the index files is shorter than the header requires, if any.
    pub fn short_file(&self, h: &Header) -> Option<ShortFile> {
        let n = h.cur_element_count;
        let need = [
            (DATA_LEVEL0, n.saturating_mul(h.size_data_per_element)),
            (LENGTH, n.saturating_mul(4)),
            (LINK_LISTS, n.saturating_mul(4)),
        ];
        need.into_iter().find_map(|(file, need)| {
            let bytes = self.file(file);
            (!bytes.is_some_and(|have| have >= need)).then_some(ShortFile {
                file,
                bytes,
                need,
                elements: n,
            })
        })
    }

    /// A `link_lists.bin` far larger than its elements explain (a warning, not damage): more
    /// than every element holding links on eight upper levels.
    pub fn bloated_links(&self, h: &Header) -> Option<String> {
        let have = self.file(LINK_LISTS)?;
        let per_level = h.max_m.saturating_mul(4).saturating_add(4);
        let explained = h
            .cur_element_count
            .saturating_mul(4)
            .saturating_add(
                h.cur_element_count
                    .saturating_mul(per_level)
                    .saturating_mul(8),
            )
            .max(1 << 20);
        (have > explained).then(|| {
            let on_disk = match self.links_allocated {
                Some(a) if a < have => {
                    format!(" ({} of it on disk: sparse)", crate::units::bytes(a))
                }
                _ => String::new(),
            };
            format!(
                "link_lists.bin is {}{on_disk} for {} elements, {:.0}× what they explain: most of \
                 it is garbage (a torn list size makes every persist seek past the end and write, \
                 chroma issue 7510), and every write while Chroma runs grows it further. Stop \
                 Chroma; chroma-wal compact --repair rebuilds the index without it",
                crate::units::bytes(have),
                h.cur_element_count,
                have as f64 / explained as f64
            )
        })
    }
}

/// Count the elements marked deleted: one byte per element, read in large sequential blocks.
pub fn count_deleted(dir: &Path, h: &Header) -> std::io::Result<u64> {
    let size = h.size_data_per_element.max(1);
    if size > 64 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("element size {size} is not plausible"),
        ));
    }
    let n = h.cur_element_count;
    let mut f = File::open(dir.join(DATA_LEVEL0))?;
    let block = (4 << 20) / size * size;
    let block = block.max(size) as usize;
    let mut buf = vec![0u8; block];
    let mut deleted = 0u64;
    let mut element = 0u64;
    let flag_at = h.offset_level0.saturating_add(2) as usize;
    while element < n {
        let want = (n - element).saturating_mul(size).min(block as u64) as usize;
        let got = read_full(&mut f, &mut buf[..want])?;
        let whole = got / size as usize;
        for i in 0..whole {
            if let Some(b) = buf.get(i * size as usize + flag_at) {
                deleted += (b & 0x01) as u64;
            }
        }
        element += whole as u64;
        if got < want {
            break;
        }
    }
    Ok(deleted)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

/// An index file shorter than its header requires ([`IndexFolder::short_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortFile {
    pub file: &'static str,
    /// Its length (`None`: it is missing).
    pub bytes: Option<u64>,
    /// The bytes its elements need.
    pub need: u64,
    /// The header's element count.
    pub elements: u64,
}

impl std::fmt::Display for ShortFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, need, n) = (self.file, self.need, self.elements);
        match self.bytes {
            None => write!(f, "{file} is missing"),
            Some(have) => write!(
                f,
                "{file} has {have} bytes, fewer than the {need} its {n} elements need (cut short)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) use crate::index::write::header_bytes;

    fn good() -> Header {
        Header {
            version: 1,
            offset_level0: 0,
            max_elements: 1000,
            cur_element_count: 300,
            size_data_per_element: 172,
            label_offset: 164,
            offset_data: 132,
            maxlevel: 2,
            enterpoint_node: 17,
            max_m: 16,
            max_m0: 32,
            m: 16,
            mult: 1.0 / (16f64).ln(),
            ef_construction: 100,
        }
    }

    #[test]
    fn round_trips_and_judges() {
        let h = good();
        let b = header_bytes(&h);
        assert_eq!(b.len(), HEADER_BYTES);
        let p = Header::parse(&b).unwrap();
        assert_eq!(p, h);
        assert_eq!(p.implausible(), None);
        assert_eq!(p.dimensionality(), 8);
        assert!(Header::parse(&b[..99]).is_err());
        let mut v2 = h;
        v2.version = 2;
        assert!(v2.implausible().unwrap().contains("version 2"));
        let mut over = h;
        over.cur_element_count = 1001;
        assert!(over.implausible().unwrap().contains("capacity"));
        let mut ep = h;
        ep.enterpoint_node = 300;
        assert!(ep.implausible().unwrap().contains("entry point"));
    }
}
