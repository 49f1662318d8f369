//! Writing an index folder in hnswlib's persisted format (chroma-core fork, persistence
//! version 1), every file fresh, from a [`Graph`](super::graph::Graph) and its elements.
//!
//! What hnswlib writes, and what this writes instead where hnswlib writes uninitialised heap
//! memory (which is how deleted vectors and ids survive in `length.bin`):
//! - `header.bin`: the 100 bytes of [`Header`](crate::chroma::hnsw::Header);
//! - `data_level0.bin`: one block per element, `[u16 link count][u8 flags][u8 0][maxM0 u32
//!   links][vector][u64 label]`; hnswlib zeroes a block when it adds the element, and so
//!   does this. Only the elements' blocks are written: the file hnswlib grows by writing at
//!   `id * size` once it has resized looks the same, and its load reads what is there;
//! - `length.bin`: one f32 per element, the vector's norm before normalising (space `cosine`
//!   only; hnswlib leaves the slot unwritten otherwise, and this writes zero);
//! - `link_lists.bin`: per element a `u32` byte count (`level * (maxM * 4 + 4)`), then its
//!   lists of levels 1 and up, each `[u32 count][maxM u32 links]`.
//!
//! Every file is fsynced; the caller fsyncs the folder and renames it into place.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::graph::Graph;
use crate::chroma::hnsw::{
    Header, DATA_LEVEL0, HEADER, HEADER_BYTES, LENGTH, LINK_LISTS, PERSISTENCE_VERSION,
};

/// What the new index keeps of each element, in its new order.
pub struct Elements<'a> {
    /// `n * dim` floats.
    pub vectors: &'a [f32],
    pub dim: usize,
    pub labels: &'a [u64],
    /// The `length.bin` value of each element (its norm, for cosine), as stored.
    pub lengths: &'a [[u8; 4]],
}

/// The header of the new index: the old one's parameters, the new graph's shape.
pub fn header_for(old: &Header, g: &Graph, n: u64) -> Header {
    let offset_data = old.max_m0 * 4 + 4;
    Header {
        version: PERSISTENCE_VERSION,
        offset_level0: 0,
        max_elements: old.max_elements.max(n),
        cur_element_count: n,
        size_data_per_element: old.size_data_per_element,
        label_offset: old.label_offset,
        offset_data,
        maxlevel: if n == 0 { -1 } else { g.max_level as i32 },
        enterpoint_node: if n == 0 { u32::MAX } else { g.entry },
        max_m: old.max_m,
        max_m0: old.max_m0,
        m: old.m,
        mult: old.mult,
        ef_construction: old.ef_construction,
    }
}

/// `header.bin`'s bytes.
pub fn header_bytes(h: &Header) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_BYTES);
    b.extend_from_slice(&h.version.to_le_bytes());
    for v in [
        h.offset_level0,
        h.max_elements,
        h.cur_element_count,
        h.size_data_per_element,
        h.label_offset,
        h.offset_data,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&h.maxlevel.to_le_bytes());
    b.extend_from_slice(&h.enterpoint_node.to_le_bytes());
    for v in [h.max_m, h.max_m0, h.m] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&h.mult.to_bits().to_le_bytes());
    b.extend_from_slice(&h.ef_construction.to_le_bytes());
    b
}

fn create(dir: &Path, name: &str) -> std::io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(
        1 << 20,
        File::create(dir.join(name))?,
    ))
}

fn finish(w: BufWriter<File>) -> std::io::Result<()> {
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// Write the four hnswlib files of the index into `dir` (which exists and is empty).
/// `progress` is told the elements written so far.
pub fn write(
    dir: &Path,
    h: &Header,
    g: &Graph,
    e: &Elements<'_>,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let n = h.cur_element_count as usize;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    if g.links.len() != n || e.labels.len() != n || e.lengths.len() != n {
        return Err(bad("the graph and its elements disagree in number"));
    }
    if e.dim as u64 != h.dimensionality() || e.vectors.len() != n * e.dim {
        return Err(bad("the vectors do not have the index's dimensionality"));
    }
    let mut w = create(dir, HEADER)?;
    w.write_all(&header_bytes(h))?;
    finish(w)?;

    let size = h.size_data_per_element as usize;
    let max_m0 = h.max_m0 as usize;
    let max_m = h.max_m as usize;
    let mut w = create(dir, DATA_LEVEL0)?;
    let mut block = vec![0u8; size];
    for i in 0..n {
        block.iter_mut().for_each(|b| *b = 0);
        let links = g.links[i].first().map(Vec::as_slice).unwrap_or(&[]);
        if links.len() > max_m0 {
            return Err(bad("a level-0 list is longer than maxM0"));
        }
        block[0..2].copy_from_slice(&(links.len() as u16).to_le_bytes());
        for (j, l) in links.iter().enumerate() {
            block[4 + 4 * j..8 + 4 * j].copy_from_slice(&l.to_le_bytes());
        }
        let at = h.offset_data as usize;
        for (j, x) in e.vectors[i * e.dim..(i + 1) * e.dim].iter().enumerate() {
            block[at + 4 * j..at + 4 * j + 4].copy_from_slice(&x.to_le_bytes());
        }
        let at = h.label_offset as usize;
        block[at..at + 8].copy_from_slice(&e.labels[i].to_le_bytes());
        w.write_all(&block)?;
        if i % 65_536 == 65_535 {
            progress(i as u64 + 1);
        }
    }
    finish(w)?;

    let mut w = create(dir, LENGTH)?;
    for l in e.lengths {
        w.write_all(l)?;
    }
    finish(w)?;

    let per_level = max_m * 4 + 4;
    let mut w = create(dir, LINK_LISTS)?;
    let mut level = vec![0u8; per_level];
    for lists in &g.links {
        let above = lists.len().saturating_sub(1);
        w.write_all(&((above * per_level) as u32).to_le_bytes())?;
        for list in lists.iter().skip(1) {
            if list.len() > max_m {
                return Err(bad("an upper-level list is longer than maxM"));
            }
            level.iter_mut().for_each(|b| *b = 0);
            level[0..4].copy_from_slice(&(list.len() as u32).to_le_bytes());
            for (j, l) in list.iter().enumerate() {
                level[4 + 4 * j..8 + 4 * j].copy_from_slice(&l.to_le_bytes());
            }
            w.write_all(&level)?;
        }
    }
    finish(w)?;
    progress(n as u64);
    Ok(())
}
