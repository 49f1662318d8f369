//! What a repair says beyond its counts: the parts of cut files it keeps and the norms it
//! cannot (before it runs, and after), and the blocks an old folder takes in a backup.

use std::path::Path;

use super::IndexResult;
use crate::chroma::hnsw;

/// The blocks a folder's files take on disk.
pub(super) fn allocated_tree(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| crate::backup::sparse::allocated(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// What a repair of a persist cut short will do, said before it runs (the norms a cut
/// length.bin loses are counted by the put-back, which knows which the WAL holds).
pub(super) fn cut_parts(
    persist_dir: &std::path::Path,
    name: &str,
    v: &crate::chroma::Segment,
    h: &hnsw::Header,
) -> Vec<String> {
    let dir = persist_dir.join(&v.id);
    let len = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    let whole = h.whole_in(len(hnsw::DATA_LEVEL0)).cur_element_count;
    let mut out = Vec::new();
    if whole < h.cur_element_count {
        out.push(format!(
            "{name}: {} holds {} of its header's {} elements whole (a persist cut short): the \
             repair keeps those and puts the others' records back from the WAL where it holds \
             them; the rest are named",
            hnsw::DATA_LEVEL0,
            crate::units::count(whole),
            crate::units::count(h.cur_element_count)
        ));
    }
    out
}

/// What a repair did beyond putting records back: the norms it could not keep.
pub(super) fn repaired_notes(r: &IndexResult) -> Vec<String> {
    let mut out = Vec::new();
    if r.rebuilt.norms_lost > 0 {
        out.push(format!(
            "{}: {} record(s) kept their direction only (their norm in {} was gone, e.g. {}): \
             queries find them, and get() returns them as unit vectors; re-add them from your \
             own source for their exact embeddings",
            r.plan.collection,
            crate::units::count(r.rebuilt.norms_lost),
            hnsw::LENGTH,
            r.rebuilt.norms_lost_sample.join(", ")
        ));
    }
    if r.rebuilt.elements_cut > 0 {
        out.push(format!(
            "{}: {} element(s) the header counted were not whole in {}; their records came back \
             from the WAL where it held them",
            r.plan.collection,
            crate::units::count(r.rebuilt.elements_cut),
            hnsw::DATA_LEVEL0
        ));
    }
    out
}
