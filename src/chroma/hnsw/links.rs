//! `link_lists.bin`, walked the way hnswlib loads it: for each of `header.bin`'s elements in
//! turn, a `u32` size, then that many bytes of upper-level links (none for an element that
//! lives on level 0 only). hnswlib reads it with plain stream reads, so a file cut short is
//! not an error there: the elements past the cut get garbage levels and lists in memory, and
//! Chroma fails later (`KeyError`, "Label not found"). A crash after `header.bin` was
//! rewritten and before the lists were extended leaves exactly that.
//!
//! The walk reads one size per element and skips the links themselves, so it costs a small
//! fraction of the index: `link_lists.bin` is about 4 bytes an element plus the few elements
//! above level 0.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use super::{Header, LINK_LISTS};

/// What the walk found in a `link_lists.bin` that holds every element's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links {
    /// Where the last element's lists end; bytes past it are never read.
    pub end: u64,
    /// The highest level any element reaches.
    pub top_level: u32,
    /// The level of the header's entry point (`None`: an empty index).
    pub entry_level: Option<u32>,
}

/// Walk `link_lists.bin` in `dir` for the elements `h` counts. `Err` says, in words that name
/// the file and the count, why hnswlib would read something other than what was written.
pub fn walk(dir: &Path, h: &Header) -> Result<Links, String> {
    let f = File::open(dir.join(LINK_LISTS))
        .map_err(|e| format!("{LINK_LISTS} cannot be read: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| format!("{LINK_LISTS} cannot be read: {e}"))?
        .len();
    walk_reader(f, len, h)
}

/// [`walk`] over any reader of `len` bytes. The file is read in large blocks and parsed in
/// memory (a 1M-element index is a million sizes); links are skipped within a block or by
/// seeking past it.
pub fn walk_reader<R: Read + Seek>(mut r: R, len: u64, h: &Header) -> Result<Links, String> {
    const BLOCK: usize = 1 << 20;
    let n = h.cur_element_count;
    // The bytes of one level of links above level 0: maxM neighbours and their count.
    let per_level = h.max_m.saturating_mul(4).saturating_add(4);
    let top = h.maxlevel.max(0) as u64;
    let cut = |i: u64| {
        format!(
            "{LINK_LISTS} holds the lists of only {i} of the {n} elements header.bin counts \
             (cut short: the index was persisted part way)"
        )
    };
    let io = |at: u64, e: std::io::Error| format!("{LINK_LISTS} cannot be read at byte {at}: {e}");
    let mut buf = vec![0u8; BLOCK.min(len as usize).max(4)];
    // `buf[pos..filled]` holds the file from byte `at` on.
    let (mut pos, mut filled) = (0usize, 0usize);
    let mut at = 0u64;
    let mut top_level = 0u32;
    let mut entry_level = None;
    for i in 0..n {
        if len.saturating_sub(at) < 4 {
            return Err(cut(i));
        }
        if filled - pos < 4 {
            buf.copy_within(pos..filled, 0);
            filled -= pos;
            pos = 0;
            // Fill the block with what the file has left (the bytes from `at` on).
            let want = (buf.len() as u64).min(len - at) as usize;
            while filled < want {
                match r.read(&mut buf[filled..want]) {
                    Ok(0) => break,
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io(at, e)),
                }
            }
            if filled < 4 {
                // The file is shorter than its length said (it shrank while read).
                return Err(cut(i));
            }
        }
        let bytes = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as u64;
        pos += 4;
        at += 4;
        if bytes % per_level != 0 {
            return Err(format!(
                "{LINK_LISTS} gives element {i} {bytes} bytes of links, not a whole number of \
                 levels of {per_level} bytes"
            ));
        }
        let level = bytes / per_level;
        if level > top {
            return Err(format!(
                "{LINK_LISTS} puts element {i} on level {level}, above the index's top level {} \
                 in header.bin",
                h.maxlevel
            ));
        }
        if len - at < bytes {
            return Err(cut(i));
        }
        let in_buf = (filled - pos) as u64;
        if bytes <= in_buf {
            pos += bytes as usize;
        } else {
            r.seek_relative((bytes - in_buf) as i64)
                .map_err(|e| io(at, e))?;
            pos = 0;
            filled = 0;
        }
        at += bytes;
        let level = level as u32;
        top_level = top_level.max(level);
        if i == h.enterpoint_node as u64 {
            entry_level = Some(level);
        }
    }
    Ok(Links {
        end: at,
        top_level,
        entry_level,
    })
}

impl Links {
    /// Why these lists disagree with the header that counts them, if they do. hnswlib starts
    /// every search at the entry point on the top level: an entry point whose lists stop
    /// below it walks garbage.
    pub fn disagreement(&self, h: &Header) -> Option<String> {
        let entry = self.entry_level?;
        (entry as i64 != h.maxlevel as i64).then(|| {
            format!(
                "header.bin's entry point (element {}) is on level {entry} in {LINK_LISTS}, but \
                 header.bin says the top level is {}",
                h.enterpoint_node, h.maxlevel
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn header(n: u64, maxlevel: i32, entry: u32) -> Header {
        Header {
            version: 1,
            offset_level0: 0,
            max_elements: 1000,
            cur_element_count: n,
            size_data_per_element: 172,
            label_offset: 164,
            offset_data: 132,
            maxlevel,
            enterpoint_node: entry,
            max_m: 16,
            max_m0: 32,
            m: 16,
            mult: 0.36,
            ef_construction: 100,
        }
    }

    /// Lists for elements on the given levels, as hnswlib writes them.
    fn lists(levels: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        for &l in levels {
            let bytes = l * 68;
            v.extend_from_slice(&bytes.to_le_bytes());
            v.extend(std::iter::repeat_n(7u8, bytes as usize));
        }
        v
    }

    fn run(b: &[u8], h: &Header) -> Result<Links, String> {
        walk_reader(Cursor::new(b), b.len() as u64, h)
    }

    #[test]
    fn whole_lists_walk_to_their_end() {
        let b = lists(&[0, 2, 0, 1, 0]);
        let h = header(5, 2, 1);
        let l = run(&b, &h).unwrap();
        assert_eq!(l.end, b.len() as u64);
        assert_eq!(l.top_level, 2);
        assert_eq!(l.entry_level, Some(2));
        assert_eq!(l.disagreement(&h), None);
        // Bytes past the last list are never read by hnswlib: not a problem.
        let mut longer = b.clone();
        longer.extend_from_slice(&[0; 40]);
        assert_eq!(run(&longer, &h).unwrap().end, b.len() as u64);
    }

    #[test]
    fn a_cut_file_names_how_many_elements_it_holds() {
        // Four bytes an element are there (the old check passed), the links are not.
        let b = lists(&[0, 2, 0, 1, 0]);
        let h = header(8, 2, 1);
        let err = run(&b, &h).unwrap_err();
        assert!(err.contains("only 5 of the 8"), "{err}");
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 4 * 3]);
        assert!(padded.len() as u64 >= 4 * 8);
        // Sizes of zero read as level-0 elements: whole, as hnswlib reads them.
        assert!(run(&padded, &h).is_ok());
        // Cut inside an element's links.
        let err = run(&b[..b.len() - 75], &header(5, 2, 1)).unwrap_err();
        assert!(err.contains("only 3 of the 5"), "{err}");
    }

    #[test]
    fn sizes_and_levels_must_be_possible() {
        let mut b = lists(&[0, 1]);
        b[4..8].copy_from_slice(&70u32.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        assert!(run(&b, &header(2, 1, 1))
            .unwrap_err()
            .contains("whole number"));
        let b = lists(&[0, 3]);
        assert!(run(&b, &header(2, 2, 0)).unwrap_err().contains("level 3"));
        let h = header(2, 2, 0);
        let l = run(&lists(&[0, 2]), &h).unwrap();
        assert!(l.disagreement(&h).unwrap().contains("entry point"));
    }

    #[test]
    fn lists_across_many_blocks_walk_the_same() {
        // Over 1 MiB of lists: sizes straddle block ends and long links are sought past.
        let levels: Vec<u32> = (0..300_000u32)
            .map(|i| match i % 97 {
                0 => 2,
                13 | 50 => 1,
                _ => 0,
            })
            .collect();
        let mut b = lists(&levels);
        // One element with links longer than a block, as a top level of maxM = 16 cannot be:
        // a header with a huge maxM gives a per-level size that makes it one level.
        let h = header(levels.len() as u64, 2, 0);
        let l = run(&b, &h).unwrap();
        assert_eq!(l.end, b.len() as u64);
        assert_eq!((l.top_level, l.entry_level), (2, Some(2)));
        let last = b.len();
        b.truncate(last - 3);
        assert!(run(&b, &h)
            .unwrap_err()
            .contains("only 299999 of the 300000"));
        let mut wide = header(2, 1, 1);
        wide.max_m = 400_000;
        let per_level = (wide.max_m * 4 + 4) as u32;
        let mut big = 0u32.to_le_bytes().to_vec();
        big.extend_from_slice(&per_level.to_le_bytes());
        big.extend(std::iter::repeat_n(1u8, per_level as usize));
        let l = run(&big, &wide).unwrap();
        assert_eq!(l.end, big.len() as u64);
        assert_eq!(l.entry_level, Some(1));
        big.pop();
        assert!(run(&big, &wide).unwrap_err().contains("only 1 of the 2"));
    }

    #[test]
    fn an_empty_index_has_nothing_to_walk() {
        let h = header(0, -1, 0);
        let l = run(&[], &h).unwrap();
        assert_eq!(l.entry_level, None);
        assert_eq!(l.disagreement(&h), None);
    }
}
