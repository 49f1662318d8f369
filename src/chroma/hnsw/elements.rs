//! `data_level0.bin` element by element: each element's label, its deleted mark and its vector,
//! streamed in large sequential blocks (memory does not grow with the file).
//!
//! hnswlib keeps element `i`'s level-0 block at `i * size_data_per_element + offset_level0`:
//! the link count (u16, then a byte whose bit 0x01 is the deleted mark, then a spare byte),
//! `maxM0` links (u32 each), the vector (`dimensionality` float32s, from `offset_data`) and the
//! label (u64, at `label_offset`). The index truth, the rebuild and the records all read it
//! through here.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{Header, DATA_LEVEL0};

/// One element of the index, borrowed from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// Its internal id: its place in the file.
    pub internal: u64,
    /// Its external label (what the pickle's maps name).
    pub label: u64,
    /// Marked deleted (a delete only marks: the vector stays).
    pub deleted: bool,
    /// The vector's bytes, float32 little-endian, exactly as stored.
    pub vector: &'a [u8],
}

impl Element<'_> {
    /// The vector as floats.
    pub fn floats(&self) -> impl Iterator<Item = f32> + '_ {
        self.vector
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Why the elements could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The file (or a read of it) failed, or its layout is not one hnswlib writes.
    Unreadable(String),
    /// The visitor asked to stop.
    Stopped,
}

/// Block size for sequential reads. 1 MiB reads keep the kernel's readahead ahead of us;
/// 8 MiB ones read a cold file 1.5 – 3 × slower than `cat` here (BENCHMARKS.md).
const BLOCK: u64 = 1 << 20;

/// Visit every element of the index in `dir` in file order. `visit` returns `false` to stop.
/// A file shorter than the header's elements need is an error before any element is visited,
/// never a partial answer.
pub fn each(
    dir: &Path,
    h: &Header,
    visit: &mut dyn FnMut(Element<'_>) -> bool,
) -> Result<(), ReadError> {
    let size = h.size_data_per_element;
    if let Some(why) = h.implausible() {
        return Err(ReadError::Unreadable(why));
    }
    if size == 0 || size > 64 << 20 {
        return Err(ReadError::Unreadable(format!(
            "element size {size} is not plausible"
        )));
    }
    let n = h.cur_element_count;
    let path = dir.join(DATA_LEVEL0);
    let mut f = File::open(&path)
        .map_err(|e| ReadError::Unreadable(format!("{DATA_LEVEL0} cannot be opened: {e}")))?;
    let have = f
        .metadata()
        .map_err(|e| ReadError::Unreadable(format!("{DATA_LEVEL0} cannot be read: {e}")))?
        .len();
    let need = n.saturating_mul(size);
    if have < need {
        return Err(ReadError::Unreadable(format!(
            "{DATA_LEVEL0} has {have} bytes, fewer than the {need} its {n} elements need (cut short)"
        )));
    }
    let per_block = (BLOCK / size).max(1);
    let mut buf = vec![0u8; (per_block * size) as usize];
    let flag_at = 2usize;
    let (vec_from, vec_to) = (h.offset_data as usize, h.label_offset as usize);
    let label_at = h.label_offset as usize;
    let mut internal = 0u64;
    while internal < n {
        let count = (n - internal).min(per_block);
        let want = (count * size) as usize;
        f.read_exact(&mut buf[..want]).map_err(|e| {
            ReadError::Unreadable(format!("{DATA_LEVEL0} cannot be read whole: {e}"))
        })?;
        for block in buf[..want].chunks_exact(size as usize) {
            let mut l = [0u8; 8];
            l.copy_from_slice(&block[label_at..label_at + 8]);
            let e = Element {
                internal,
                label: u64::from_le_bytes(l),
                deleted: block[flag_at] & 0x01 != 0,
                vector: &block[vec_from..vec_to],
            };
            internal += 1;
            if !visit(e) {
                return Err(ReadError::Stopped);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::header_bytes;
    use super::*;

    fn header(n: u64, dim: u64) -> Header {
        let max_m0 = 4u64;
        let offset_data = 4 + 4 * max_m0;
        Header {
            version: 1,
            offset_level0: 0,
            max_elements: 16,
            cur_element_count: n,
            size_data_per_element: offset_data + 4 * dim + 8,
            label_offset: offset_data + 4 * dim,
            offset_data,
            maxlevel: 0,
            enterpoint_node: 0,
            max_m: 2,
            max_m0,
            m: 2,
            mult: 1.0,
            ef_construction: 10,
        }
    }

    fn write(dir: &Path, h: &Header, elements: &[(u64, bool, [f32; 2])]) {
        std::fs::write(dir.join(super::super::HEADER), header_bytes(h)).unwrap();
        let mut data = Vec::new();
        for (label, deleted, v) in elements {
            let mut block = vec![0u8; h.size_data_per_element as usize];
            block[2] = *deleted as u8;
            for (i, x) in v.iter().enumerate() {
                let at = h.offset_data as usize + 4 * i;
                block[at..at + 4].copy_from_slice(&x.to_le_bytes());
            }
            let at = h.label_offset as usize;
            block[at..at + 8].copy_from_slice(&label.to_le_bytes());
            data.extend_from_slice(&block);
        }
        std::fs::write(dir.join(DATA_LEVEL0), data).unwrap();
    }

    #[test]
    fn reads_labels_marks_and_vectors_in_order() {
        let t = tempfile::tempdir().unwrap();
        let h = header(3, 2);
        write(
            t.path(),
            &h,
            &[
                (7, false, [1.0, -2.5]),
                (9, true, [0.5, 0.25]),
                (1, false, [3.0, 4.0]),
            ],
        );
        let mut seen = Vec::new();
        each(t.path(), &h, &mut |e| {
            seen.push((
                e.internal,
                e.label,
                e.deleted,
                e.floats().collect::<Vec<_>>(),
            ));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, 7, false, vec![1.0, -2.5]),
                (1, 9, true, vec![0.5, 0.25]),
                (2, 1, false, vec![3.0, 4.0]),
            ]
        );
    }

    #[test]
    fn a_short_file_is_refused_before_any_element() {
        let t = tempfile::tempdir().unwrap();
        let h = header(3, 2);
        write(
            t.path(),
            &h,
            &[(7, false, [1.0, 2.0]), (8, false, [1.0, 2.0])],
        );
        let mut visited = 0;
        let e = each(t.path(), &h, &mut |_| {
            visited += 1;
            true
        })
        .unwrap_err();
        assert!(
            matches!(e, ReadError::Unreadable(ref w) if w.contains("cut short")),
            "{e:?}"
        );
        assert_eq!(visited, 0);
        assert_eq!(
            each(t.path(), &header(2, 2), &mut |_| false).unwrap_err(),
            ReadError::Stopped
        );
    }
}
