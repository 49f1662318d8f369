//! One index rebuilt without its ghosts: the elements Chroma can reach (a label the pickle
//! names, not marked deleted, the element hnswlib's lookup keeps) read from the old folder,
//! a fresh graph over them ([`super::graph`]), every file written new into another folder
//! ([`super::write`]), then read back and judged ([`super::check`]) before anyone swaps it in.
//!
//! Labels, vectors (bit for bit), `M`, `ef_construction`, the level multiplier, the capacity
//! and, for cosine, each element's stored norm are kept; the pickle is Chroma's and is written
//! back byte for byte (its ids, labels and `total_elements_added` do not change, so the next
//! label Chroma hands out is the one it would have). The elements keep their order in the old
//! file. A repair appends the records it puts back, with the labels the release would hand out
//! next, and writes the pickle as that release writes it ([`crate::index::pickle`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::check::{recall, OnDisk};
use super::graph::{self, exact_knn, Params, Space};
use super::write;
use crate::chroma::hnsw::elements::{self, ReadError};
use crate::chroma::hnsw::{Header, HEADER, LENGTH};
use crate::chroma::{pickle, INDEX_METADATA};
use crate::index::putback::PutBack;

/// What a rebuild is doing, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Reading,
    Building,
    Writing,
    Checking,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Building => "building",
            Phase::Writing => "writing",
            Phase::Checking => "checking",
        }
    }
}

/// What a rebuild made.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    pub elements_before: u64,
    pub elements_after: u64,
    pub ghosts_removed: u64,
    /// Records put back from the WAL (`--repair`), with labels of their own.
    pub restored: u64,
    /// Recall@10 of the old and the new graph, on the same queries, against exact search
    /// (`None` for an old graph hnswlib could not load whole, which a repair rebuilds).
    pub recall_before: Option<f64>,
    pub recall_after: f64,
    pub queries: usize,
    /// A repair of a persist cut short: elements the header counts that `data_level0.bin`
    /// does not hold whole (their records come back from the WAL where it holds them).
    pub elements_cut: u64,
    /// A repair of a cut cosine `length.bin`: kept elements whose stored norm is gone. They
    /// keep their direction (queries find them) with norm 1, so `get()` returns them as unit
    /// vectors; up to ten of their ids.
    pub norms_lost: u64,
    pub norms_lost_sample: Vec<String>,
}

/// How many of the index's own vectors are used as queries for recall.
pub const QUERIES: usize = 200;
/// Recall is measured at k = 10 with hnswlib's default search ef (10).
pub const K: usize = 10;
pub const EF: usize = 10;
/// How far below the old graph's the new graph's recall may measure before the rebuild is
/// refused: two standard errors of a recall measured on 200 × 10 neighbours.
pub const RECALL_SLACK: f64 = 0.02;

/// Why a rebuild did not produce a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildError {
    Cancelled,
    Failed(String),
}

impl From<String> for RebuildError {
    fn from(s: String) -> Self {
        RebuildError::Failed(s)
    }
}

fn read_err(e: ReadError) -> RebuildError {
    match e {
        ReadError::Stopped => RebuildError::Cancelled,
        ReadError::Unreadable(w) => RebuildError::Failed(w),
    }
}

/// Which of the old elements Chroma can reach: by label, the last element not marked deleted
/// among those of a label the pickle names (hnswlib's lookup keeps the last).
pub fn reachable(elements: &[(u64, bool)], named: &dyn Fn(u64) -> bool) -> Vec<bool> {
    let mut last: HashMap<u64, usize> = HashMap::new();
    for (i, &(label, deleted)) in elements.iter().enumerate() {
        if !deleted && named(label) {
            last.insert(label, i);
        }
    }
    let mut keep = vec![false; elements.len()];
    for (_, i) in last {
        keep[i] = true;
    }
    keep
}

/// What to rebuild besides the reachable elements.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub space: Space,
    /// Records to put back, appended after the kept elements with the next labels.
    pub put_back: &'a [PutBack],
    /// Elements of a cosine index whose norm `length.bin` lost, with their current vector from
    /// a WAL row: written in the element's place (same label), normalised, with its length.
    pub renorm: &'a [PutBack],
    /// The old graph may be unreadable (a repair of a cut `link_lists.bin`): its recall is
    /// then not measured.
    pub repair: bool,
    /// The records of the collection (its metadata segment's ids): an id the pickle names that
    /// is none of them (deleted since the index was persisted; the WAL deletes it on the next
    /// load) leaves the index and the pickle. `None`: every id the pickle names stays.
    pub records: Option<&'a std::collections::HashSet<crate::chroma::idhash::IdHash>>,
}

use crate::chroma::hnsw::space::normalized;

/// Rebuild the index in `old` into the empty folder `out`. `progress(phase, done, total)`;
/// `stop` cancels.
pub fn rebuild(
    old: &Path,
    out: &Path,
    job: Job<'_>,
    progress: &mut dyn FnMut(Phase, u64, u64),
    stop: &AtomicBool,
) -> Result<Rebuilt, RebuildError> {
    let space = job.space;
    let hb = std::fs::read(old.join(HEADER)).map_err(|e| format!("{HEADER}: {e}"))?;
    let h = Header::parse(&hb)?;
    if let Some(why) = h.implausible() {
        return Err(why.into());
    }
    let n_old = h.cur_element_count;
    // A repair reads the elements `data_level0.bin` holds whole; a rebuild reads them all
    // (and a short file is an error there).
    let h = if job.repair {
        let len = std::fs::metadata(old.join(crate::chroma::hnsw::DATA_LEVEL0))
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", crate::chroma::hnsw::DATA_LEVEL0))?;
        h.whole_in(len)
    } else {
        h
    };
    let elements_cut = n_old - h.cur_element_count;
    let (_, map) = pickle::read_labels(&old.join(INDEX_METADATA))
        .map_err(|e| format!("{INDEX_METADATA}: {e}"))?;
    if map.unread > 0 {
        return Err(RebuildError::Failed(format!(
            "{} entries of the pickle's id_to_label cannot be read",
            map.unread
        )));
    }
    // Ids that are no record any more: their elements are ghosts too.
    let gone = |id: &crate::chroma::idhash::IdHash| job.records.is_some_and(|r| !r.contains(id));
    let named: std::collections::HashSet<u64> = map
        .pairs
        .iter()
        .filter(|p| !gone(&p.id))
        .map(|p| p.label)
        .collect();
    let label_of: HashMap<crate::chroma::idhash::IdHash, u64> =
        map.pairs.iter().map(|p| (p.id, p.label)).collect();
    drop(map);

    // Pass 1: labels and marks.
    let mut marks: Vec<(u64, bool)> = Vec::with_capacity(n_old.min(1 << 26) as usize);
    elements::each(old, &h, &mut |e| {
        marks.push((e.label, e.deleted));
        if marks.len() % 65_536 == 0 {
            progress(Phase::Reading, marks.len() as u64, 2 * n_old);
            return !stop.load(Ordering::Relaxed);
        }
        true
    })
    .map_err(read_err)?;
    let keep = reachable(&marks, &|l| named.contains(&l));
    let kept_labels: std::collections::HashSet<u64> = marks
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|((l, _), _)| *l)
        .collect();
    drop(marks);
    let kept = keep.iter().filter(|k| **k).count();
    // A record put back must still be missing now (the plan was made before the lock): one
    // the pickle maps to an element that stays was added again since, and is left alone.
    let put_back: Vec<&PutBack> = job
        .put_back
        .iter()
        .filter(|p| {
            label_of
                .get(&crate::chroma::idhash::IdHash::of(p.id.as_bytes()))
                .map_or(true, |l| !kept_labels.contains(l))
        })
        .collect();
    let n = kept + put_back.len();

    // Pass 2: the kept vectors, and for cosine their stored norms.
    let dim = h.dimensionality() as usize;
    let mut vectors: Vec<f32> = Vec::with_capacity(n * dim);
    let mut labels: Vec<u64> = Vec::with_capacity(n);
    let mut from: Vec<u64> = Vec::with_capacity(n);
    elements::each(old, &h, &mut |e| {
        if keep[e.internal as usize] {
            vectors.extend(e.floats());
            labels.push(e.label);
            from.push(e.internal);
        }
        if e.internal % 65_536 == 0 {
            progress(Phase::Reading, n_old + e.internal, 2 * n_old);
            return !stop.load(Ordering::Relaxed);
        }
        true
    })
    .map_err(read_err)?;
    let (mut norms_lost, mut norms_lost_sample) = (0u64, Vec::new());
    let mut lengths: Vec<[u8; 4]> = if space == Space::Cosine {
        let all = std::fs::read(old.join(LENGTH)).map_err(|e| format!("{LENGTH}: {e}"))?;
        let mut lost_labels = std::collections::HashSet::new();
        let renorm: HashMap<u64, &PutBack> = job
            .renorm
            .iter()
            .filter_map(|p| {
                let l = label_of.get(&crate::chroma::idhash::IdHash::of(p.id.as_bytes()))?;
                Some((*l, p))
            })
            .collect();
        let mut out = Vec::with_capacity(from.len());
        for (k, &i) in from.iter().enumerate() {
            let at = i as usize * 4;
            match all.get(at..at + 4) {
                Some(s) => out.push([s[0], s[1], s[2], s[3]]),
                // The WAL's vector for it, when it points where the stored element does (a
                // row the release ignored, such as a second ADD, could hold another).
                None if job.repair
                    && renorm.get(&labels[k]).is_some_and(|p| {
                        p.vector.len() == dim
                            && same_direction(
                                &normalized(&p.vector).0,
                                &vectors[k * dim..(k + 1) * dim],
                            )
                    }) =>
                {
                    let (v, length) = normalized(&renorm[&labels[k]].vector);
                    vectors[k * dim..(k + 1) * dim].copy_from_slice(&v);
                    out.push(length.to_le_bytes());
                }
                // The norm is gone; the direction is whole: norm 1 keeps it findable.
                None if job.repair => {
                    norms_lost += 1;
                    if lost_labels.len() < 10 {
                        lost_labels.insert(labels[k]);
                    }
                    out.push(1.0f32.to_le_bytes());
                }
                None => {
                    return Err(format!(
                        "{LENGTH} is shorter than its elements: the cosine lengths get() \
                         multiplies by are gone"
                    )
                    .into())
                }
            }
        }
        if !lost_labels.is_empty() {
            let bytes = std::fs::read(old.join(INDEX_METADATA))
                .map_err(|e| format!("{INDEX_METADATA}: {e}"))?;
            if let Ok(state) = crate::index::pickle::decode(&bytes) {
                norms_lost_sample = crate::index::pickle::ids_of_labels(&state, &lost_labels);
                norms_lost_sample.sort();
            }
        }
        out
    } else {
        vec![[0u8; 4]; kept]
    };
    drop(from);
    // Records put back: stored as hnswlib stores them (normalised for cosine, with the length).
    let mut pickle_bytes =
        std::fs::read(old.join(INDEX_METADATA)).map_err(|e| format!("{INDEX_METADATA}: {e}"))?;
    // Ids the pickle names whose element does not stay (deleted ids left behind, ids that are no
    // record any more) leave Chroma's maps with their elements.
    let leaving: std::collections::HashSet<crate::chroma::idhash::IdHash> = label_of
        .iter()
        .filter(|(_, l)| !kept_labels.contains(l))
        .map(|(id, _)| *id)
        .collect();
    if !put_back.is_empty() || !leaving.is_empty() {
        let mut state = crate::index::pickle::decode(&pickle_bytes)
            .map_err(|e| format!("{INDEX_METADATA} cannot be rewritten: {e}"))?;
        crate::index::pickle::remove_ids(&mut state, &|id| {
            leaving.contains(&crate::chroma::idhash::IdHash::of(id.as_bytes()))
        });
        let ids: Vec<(String, i64)> = put_back.iter().map(|p| (p.id.clone(), p.seq)).collect();
        let new_labels = if ids.is_empty() {
            Vec::new()
        } else {
            crate::index::pickle::add_labels(&mut state, &ids)?
        };
        pickle_bytes = crate::index::pickle::encode(&state)?;
        for (p, label) in put_back.iter().zip(new_labels) {
            if p.vector.len() != dim {
                return Err(
                    format!("{}'s vector has {} floats, not {dim}", p.id, p.vector.len()).into(),
                );
            }
            if space == Space::Cosine {
                let (v, length) = normalized(&p.vector);
                vectors.extend(v);
                lengths.push(length.to_le_bytes());
            } else {
                vectors.extend(&p.vector);
                lengths.push([0u8; 4]);
            }
            labels.push(label);
        }
    }

    // The graph.
    let params = Params {
        m: h.m as usize,
        ef_construction: h.ef_construction as usize,
        space,
        seed: 100,
    };
    let done = AtomicU64::new(0);
    let g = std::thread::scope(|s| {
        let worker = s.spawn(|| graph::build(&vectors, dim, params, &done, stop));
        while !worker.is_finished() {
            progress(Phase::Building, done.load(Ordering::Relaxed), n as u64);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        worker.join()
    })
    .map_err(|_| RebuildError::Failed("the graph build failed".into()))?
    .map_err(|_| RebuildError::Cancelled)?;
    progress(Phase::Building, n as u64, n as u64);

    // The files.
    let new_h = write::header_for(&h, &g, n as u64);
    let e = write::Elements {
        vectors: &vectors,
        dim,
        labels: &labels,
        lengths: &lengths,
    };
    write::write(out, &new_h, &g, &e, &mut |d| {
        progress(Phase::Writing, d, n as u64)
    })
    .map_err(|e| format!("writing the new index: {e}"))?;
    drop(g);
    write_synced(&out.join(INDEX_METADATA), &pickle_bytes)
        .map_err(|e| format!("writing {INDEX_METADATA}: {e}"))?;
    if stop.load(Ordering::Relaxed) {
        return Err(RebuildError::Cancelled);
    }

    // Read back and judged.
    progress(Phase::Checking, 0, 3);
    let new_index = OnDisk::open(out).map_err(|e| format!("the new index: {e}"))?;
    new_index
        .check(&labels, &mut |i, bytes| {
            let want = &vectors[i * dim..(i + 1) * dim];
            bytes
                .chunks_exact(4)
                .zip(want)
                .all(|(b, w)| b == w.to_le_bytes())
        })
        .map_err(|e| format!("the new index: {e}"))?;
    let new_pickle = std::fs::read(out.join(INDEX_METADATA)).map_err(|e| e.to_string())?;
    if new_pickle != pickle_bytes {
        return Err("the pickle read back differs from what was written"
            .to_string()
            .into());
    }
    // Read back as the release's loader would: whole, every label of the index named.
    let (_, new_map) = pickle::read_labels(&out.join(INDEX_METADATA))
        .map_err(|e| format!("the new {INDEX_METADATA}: {e}"))?;
    let named_now: std::collections::HashSet<u64> = new_map.pairs.iter().map(|p| p.label).collect();
    if new_map.unread > 0 || labels.iter().any(|l| !named_now.contains(l)) {
        return Err(format!("the new {INDEX_METADATA} does not name every element's label").into());
    }
    drop(new_map);
    progress(Phase::Checking, 1, 3);
    let step = (n / QUERIES.min(n.max(1))).max(1);
    let queries: Vec<Vec<f32>> = (0..n)
        .step_by(step)
        .take(QUERIES)
        .map(|i| vectors[i * dim..(i + 1) * dim].to_vec())
        .collect();
    let truth: Vec<Vec<u64>> = exact_knn(&vectors, dim, space, &queries, K)
        .into_iter()
        .map(|ids| ids.into_iter().map(|i| labels[i as usize]).collect())
        .collect();
    progress(Phase::Checking, 2, 3);
    let recall_after = recall(&new_index, space, &queries, &truth, K, EF, &|_, _| false);
    // The old graph, searched the same way for the same (kept) records; records put back
    // were in no old graph and are not asked for there.
    let old_queries: Vec<usize> = (0..queries.len()).filter(|&q| (q * step) < kept).collect();
    let recall_before = match OnDisk::open(old) {
        Ok(old_index) if !old_queries.is_empty() => {
            let qs: Vec<Vec<f32>> = old_queries.iter().map(|&q| queries[q].clone()).collect();
            // Against the kept vectors alone: the records put back were in no old graph.
            let ts: Vec<Vec<u64>> = if put_back.is_empty() {
                old_queries.iter().map(|&q| truth[q].clone()).collect()
            } else {
                exact_knn(&vectors[..kept * dim], dim, space, &qs, K)
                    .into_iter()
                    .map(|ids| ids.into_iter().map(|i| labels[i as usize]).collect())
                    .collect()
            };
            let skip = |i: u32, _| !keep.get(i as usize).copied().unwrap_or(false);
            Some(recall(&old_index, space, &qs, &ts, K, EF, &skip))
        }
        Ok(_) => None,
        Err(_) if job.repair => None,
        Err(e) => return Err(format!("the old index: {e}").into()),
    };
    progress(Phase::Checking, 3, 3);
    if let Some(recall_before) = recall_before.filter(|r| recall_after + RECALL_SLACK < *r) {
        return Err(RebuildError::Failed(format!(
            "the new graph finds fewer true neighbours than the old one (recall@{K} {recall_after:.3} against {recall_before:.3})"
        )));
    }
    Ok(Rebuilt {
        elements_before: n_old,
        elements_after: n as u64,
        ghosts_removed: h.cur_element_count - kept as u64,
        restored: put_back.len() as u64,
        recall_before,
        recall_after,
        queries: queries.len(),
        elements_cut,
        norms_lost,
        norms_lost_sample,
    })
}

/// Whether two unit vectors point the same way (to float32 rounding).
fn same_direction(a: &[f32], b: &[f32]) -> bool {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    dot > 0.9999
}

/// Write a file and fsync it.
fn write_synced(to: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(to)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_live_element_of_a_named_label_is_kept() {
        let e = [
            (1, false),
            (2, true),
            (1, false), // a second element of label 1: the lookup keeps this one
            (3, false), // named by no id
            (4, false),
            (4, true), // the last of label 4 is deleted: the live one before it stays
        ];
        let keep = reachable(&e, &|l| l != 3);
        assert_eq!(keep, vec![false, false, true, false, true, false]);
    }
}
