//! An index folder read back whole and judged as a graph: what the rebuild checks before it
//! swaps a new folder in, and how it measures the old and the new graph's recall the same way.
//!
//! [`OnDisk::open`] reads `header.bin` and every element's upper-level lists; level-0 blocks
//! are read on demand (`pread`), so a search touches only the elements it visits and memory
//! stays at the link lists' size.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::graph::{Search, Space};
use crate::chroma::hnsw::{Header, DATA_LEVEL0, HEADER, LENGTH, LINK_LISTS};

/// An index on disk, ready to be searched or checked.
pub struct OnDisk {
    pub header: Header,
    data: File,
    /// Each element's upper-level lists as stored (empty for a level-0 element).
    upper: Vec<Vec<u8>>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl OnDisk {
    /// Open the index in `dir`, checking that its files are whole for its header.
    pub fn open(dir: &Path) -> Result<OnDisk, String> {
        let hb = std::fs::read(dir.join(HEADER)).map_err(|e| format!("{HEADER}: {e}"))?;
        let header = Header::parse(&hb)?;
        if let Some(why) = header.implausible() {
            return Err(why);
        }
        let n = header.cur_element_count;
        let data = File::open(dir.join(DATA_LEVEL0)).map_err(|e| format!("{DATA_LEVEL0}: {e}"))?;
        let have = data
            .metadata()
            .map_err(|e| format!("{DATA_LEVEL0}: {e}"))?
            .len();
        if have < header.level0_bytes() {
            return Err(format!(
                "{DATA_LEVEL0} has {have} bytes, fewer than its {n} elements need"
            ));
        }
        let len = std::fs::metadata(dir.join(LENGTH))
            .map_err(|e| format!("{LENGTH}: {e}"))?
            .len();
        if len < 4 * n {
            return Err(format!(
                "{LENGTH} has {len} bytes, fewer than 4 per element"
            ));
        }
        // Read element by element, only as far as the elements' lists go: a torn
        // link_lists.bin can be terabytes past them (chroma issue 7510).
        let file = File::open(dir.join(LINK_LISTS)).map_err(|e| format!("{LINK_LISTS}: {e}"))?;
        let mut links = std::io::BufReader::with_capacity(1 << 20, file);
        let per_level = (header.max_m * 4 + 4) as usize;
        let mut upper = Vec::with_capacity(n.min(1 << 26) as usize);
        let mut size_bytes = [0u8; 4];
        for i in 0..n {
            links
                .read_exact(&mut size_bytes)
                .map_err(|_| format!("{LINK_LISTS} ends before element {i}'s lists"))?;
            let size = u32::from_le_bytes(size_bytes) as usize;
            if size % per_level != 0 || size > per_level * 64 {
                return Err(format!(
                    "{LINK_LISTS}: element {i}'s lists ({size} bytes) are not whole levels"
                ));
            }
            let mut lists = vec![0u8; size];
            links.read_exact(&mut lists).map_err(|_| {
                format!("{LINK_LISTS}: element {i}'s lists ({size} bytes) are not whole levels")
            })?;
            upper.push(lists);
        }
        Ok(OnDisk {
            header,
            data,
            upper,
        })
    }

    pub fn len(&self) -> usize {
        self.upper.len()
    }

    pub fn is_empty(&self) -> bool {
        self.upper.is_empty()
    }

    pub fn level(&self, i: u32) -> usize {
        self.upper[i as usize].len() / (self.header.max_m * 4 + 4) as usize
    }

    /// Element `i`'s level-0 block.
    pub fn block(&self, i: u32) -> std::io::Result<Vec<u8>> {
        let size = self.header.size_data_per_element as usize;
        let mut b = vec![0u8; size];
        self.data
            .read_exact_at(&mut b, i as u64 * size as u64 + self.header.offset_level0)?;
        Ok(b)
    }

    /// Links of element `i` on `level`, as stored (count, then the ids).
    pub fn links(&self, i: u32, level: usize) -> Vec<u32> {
        if level == 0 {
            let Ok(b) = self.block(i) else {
                return Vec::new();
            };
            let count = u16::from_le_bytes([b[0], b[1]]) as usize;
            return (0..count.min(self.header.max_m0 as usize))
                .map(|j| u32_at(&b, 4 + 4 * j))
                .collect();
        }
        let per_level = (self.header.max_m * 4 + 4) as usize;
        let u = &self.upper[i as usize];
        let from = (level - 1) * per_level;
        if u.len() < from + per_level {
            return Vec::new();
        }
        let count = u16::from_le_bytes([u[from], u[from + 1]]) as usize;
        (0..count.min(self.header.max_m as usize))
            .map(|j| u32_at(u, from + 4 + 4 * j))
            .collect()
    }

    fn vector_of(&self, b: &[u8]) -> Vec<f32> {
        b[self.header.offset_data as usize..self.header.label_offset as usize]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    pub fn vector(&self, i: u32) -> Vec<f32> {
        self.block(i)
            .map(|b| self.vector_of(&b))
            .unwrap_or_default()
    }

    pub fn label_of(&self, b: &[u8]) -> u64 {
        let at = self.header.label_offset as usize;
        let mut l = [0u8; 8];
        l.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(l)
    }

    /// Check the graph whole: every link in range and to an element that reaches its level,
    /// no list longer than its level allows, the entry point on the top level, no element above
    /// it, no element marked deleted, and the labels exactly `labels` (so each once).
    /// `vector_ok(i, bytes)` checks element `i`'s vector against its source.
    pub fn check(
        &self,
        labels: &[u64],
        vector_ok: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> Result<(), String> {
        let h = &self.header;
        let n = self.len();
        if labels.len() != n {
            return Err(format!(
                "the new index holds {n} elements, not the {} planned",
                labels.len()
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let top = h.maxlevel.max(0) as usize;
        if self.level(h.enterpoint_node) != top {
            return Err("the entry point is not on the top level".into());
        }
        let size = h.size_data_per_element as usize;
        let per_read = (1usize << 20) / size + 1;
        let mut buf = vec![0u8; per_read * size];
        let mut i = 0usize;
        while i < n {
            let count = (n - i).min(per_read);
            self.data
                .read_exact_at(&mut buf[..count * size], (i * size) as u64)
                .map_err(|e| format!("{DATA_LEVEL0}: {e}"))?;
            for (k, b) in buf[..count * size].chunks_exact(size).enumerate() {
                let e = i + k;
                if b[2] & 0x01 != 0 {
                    return Err(format!("element {e} is marked deleted"));
                }
                if self.label_of(b) != labels[e] {
                    return Err(format!(
                        "element {e} has label {}, not {}",
                        self.label_of(b),
                        labels[e]
                    ));
                }
                let count0 = u16::from_le_bytes([b[0], b[1]]) as usize;
                if count0 > h.max_m0 as usize {
                    return Err(format!("element {e} has {count0} links on level 0"));
                }
                for j in 0..count0 {
                    let l = u32_at(b, 4 + 4 * j) as usize;
                    if l >= n || l == e {
                        return Err(format!("element {e} links to {l} on level 0"));
                    }
                }
                if !vector_ok(e, &b[h.offset_data as usize..h.label_offset as usize]) {
                    return Err(format!("element {e}'s vector differs from its source"));
                }
            }
            i += count;
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        for (e, &l) in labels.iter().enumerate() {
            if !seen.insert(l) {
                return Err(format!(
                    "label {l} is held by more than one element (element {e})"
                ));
            }
        }
        for e in 0..n as u32 {
            let level = self.level(e);
            if level > top {
                return Err(format!("element {e} is above the top level {top}"));
            }
            for l in 1..=level {
                let per_level = (h.max_m * 4 + 4) as usize;
                let u = &self.upper[e as usize];
                let count =
                    u16::from_le_bytes([u[(l - 1) * per_level], u[(l - 1) * per_level + 1]]);
                if count as u64 > h.max_m {
                    return Err(format!("element {e} has {count} links on level {l}"));
                }
                for t in self.links(e, l) {
                    if t as usize >= n || t == e || self.level(t) < l {
                        return Err(format!("element {e} links to {t} on level {l}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The labels of the `k` nearest to `q` that `skip` does not leave out, searched as
    /// hnswlib searches with `ef`.
    pub fn knn_labels(
        &self,
        space: Space,
        q: &[f32],
        k: usize,
        ef: usize,
        skip: &dyn Fn(u32, u64) -> bool,
    ) -> Vec<u64> {
        let label = |i: u32| self.block(i).map(|b| self.label_of(&b)).unwrap_or(u64::MAX);
        let s = Search {
            space,
            entry: self.header.enterpoint_node,
            max_level: self.header.maxlevel.max(0) as usize,
            n: self.len(),
            neighbours: &|i, l| self.links(i, l),
            vector: &|i| self.vector(i),
            skip: &|i| match self.block(i) {
                Ok(b) => b[2] & 0x01 != 0 || skip(i, self.label_of(&b)),
                Err(_) => true,
            },
        };
        s.knn(q, k, ef).into_iter().map(label).collect()
    }
}

/// Recall@k of the index in `dir` for `queries` whose true neighbours' labels are `truth`.
pub fn recall(
    index: &OnDisk,
    space: Space,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
    k: usize,
    ef: usize,
    skip: &(dyn Fn(u32, u64) -> bool + Sync),
) -> f64 {
    let mut hit = 0usize;
    let mut want = 0usize;
    for (q, t) in queries.iter().zip(truth) {
        let got = index.knn_labels(space, q, k, ef, skip);
        hit += got.iter().filter(|g| t.contains(g)).count();
        want += t.len().min(k);
    }
    if want == 0 {
        1.0
    } else {
        hit as f64 / want as f64
    }
}
