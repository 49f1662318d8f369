//! A fresh HNSW graph over a set of vectors, built the way hnswlib builds one, so that the
//! files written from it (by `write.rs`) are an index hnswlib and every Chroma release load
//! and go on using as their own.
//!
//! The algorithm is hnswlib's (Malkov & Yashunin, as `hnswalg.h` implements it): each element
//! draws a level `floor(-ln(u) * mult)`; it is found greedily from the entry point down to its
//! level, then on each of its levels the `ef_construction` nearest are searched
//! ([`Builder::search_layer`]), `M` of them kept by the neighbour heuristic
//! ([`Builder::select`]), and linked both ways; a neighbour whose list is full keeps the
//! heuristic's choice among its old links and the new element. Level 0 holds up to `2 M` links,
//! the levels above `M`. Inserts run on every core, each element's lists behind its own lock
//! (as hnswlib's `link_list_locks_`), the entry point behind one more.
//!
//! Pure computation: no files. Vectors are used as stored (Chroma stores cosine vectors
//! normalised, so cosine is the inner-product distance over them, as in hnswlib).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use rayon::prelude::*;

pub use crate::chroma::hnsw::distance::{dot, l2, Space};

/// The build's parameters, as the index's header records them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub m: usize,
    pub ef_construction: usize,
    pub space: Space,
    /// Levels are drawn from this seed (hnswlib's default is 100), per element, so the graph
    /// does not depend on the order threads insert in.
    pub seed: u64,
}

impl Params {
    /// hnswlib's level multiplier, `1 / ln(M)`.
    pub fn mult(&self) -> f64 {
        1.0 / (self.m.max(2) as f64).ln()
    }
    pub fn max_m0(&self) -> usize {
        self.m * 2
    }
}

/// A built graph: each element's level and its links on each of its levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// `links[i][l]`: element `i`'s neighbours on level `l` (level 0 first).
    pub links: Vec<Vec<Vec<u32>>>,
    pub entry: u32,
    pub max_level: usize,
}

impl Graph {
    pub fn level(&self, i: usize) -> usize {
        self.links[i].len().saturating_sub(1)
    }
}

/// Why a build stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    Cancelled,
}

#[derive(Clone, Copy, PartialEq)]
struct Near {
    d: f32,
    id: u32,
}

impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        self.d.total_cmp(&o.d).then(self.id.cmp(&o.id))
    }
}

/// Nearest first: a max-heap of reversed order.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Far(Near);
impl PartialOrd for Far {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Far {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        o.0.cmp(&self.0)
    }
}

/// Which elements a search has seen: a stamp per element, reset by bumping the stamp.
struct Visited {
    marks: Vec<u32>,
    stamp: u32,
}

impl Visited {
    fn new(n: usize) -> Self {
        Visited {
            marks: vec![0; n],
            stamp: 0,
        }
    }
    fn reset(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
    }
    /// Mark `i`; true when it was not marked yet.
    fn first(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        if *m == self.stamp {
            false
        } else {
            *m = self.stamp;
            true
        }
    }
}

/// The level an element draws: `floor(-ln(u) * mult)` with `u` uniform in (0, 1], from a
/// hash of the seed and the element's place.
pub fn level_of(seed: u64, i: u64, mult: f64) -> usize {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let l = (-u.ln() * mult).floor();
    // Beyond any graph hnswlib could hold in memory: levels are tiny in practice.
    l.clamp(0.0, 60.0) as usize
}

struct Builder<'a> {
    vectors: &'a [f32],
    dim: usize,
    p: Params,
    links: Vec<RwLock<Vec<Vec<u32>>>>,
    top: Mutex<(u32, usize)>,
}

impl Builder<'_> {
    fn v(&self, i: u32) -> &[f32] {
        let at = i as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn dist(&self, q: &[f32], i: u32) -> f32 {
        self.p.space.distance(q, self.v(i))
    }

    /// The `ef` nearest to `q` found from `ep` on `level` (hnswlib's `searchBaseLayer`):
    /// a max-heap, farthest on top.
    fn search_layer(
        &self,
        q: &[f32],
        ep: u32,
        level: usize,
        ef: usize,
        seen: &mut Visited,
    ) -> BinaryHeap<Near> {
        seen.reset();
        let mut top = BinaryHeap::with_capacity(ef + 1);
        let mut cand: BinaryHeap<Far> = BinaryHeap::with_capacity(ef * 2);
        let d = self.dist(q, ep);
        seen.first(ep);
        top.push(Near { d, id: ep });
        cand.push(Far(Near { d, id: ep }));
        let mut bound = d;
        while let Some(Far(c)) = cand.pop() {
            if c.d > bound && top.len() >= ef {
                break;
            }
            let lists = match self.links[c.id as usize].read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let Some(list) = lists.get(level) else {
                continue;
            };
            for &n in list {
                if !seen.first(n) {
                    continue;
                }
                let d = self.dist(q, n);
                if top.len() < ef || d < bound {
                    cand.push(Far(Near { d, id: n }));
                    top.push(Near { d, id: n });
                    if top.len() > ef {
                        top.pop();
                    }
                    if let Some(t) = top.peek() {
                        bound = t.d;
                    }
                }
            }
        }
        top
    }

    /// hnswlib's `getNeighborsByHeuristic2`: nearest first, keep a candidate only when it is
    /// nearer the query than to every one kept so far; at most `m`. `cands` are (distance to
    /// the query, id); the kept come back nearest first.
    fn select(&self, mut cands: Vec<Near>, m: usize) -> Vec<Near> {
        cands.sort_unstable();
        if cands.len() < m {
            return cands;
        }
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for c in cands {
            if kept.len() >= m {
                break;
            }
            let vc = self.v(c.id);
            if kept.iter().all(|k| self.dist(vc, k.id) >= c.d) {
                kept.push(c);
            }
        }
        kept
    }

    fn write_lists(&self, i: u32) -> std::sync::RwLockWriteGuard<'_, Vec<Vec<u32>>> {
        match self.links[i as usize].write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Link `cur` on `level` to the selection among `found`, and each selected back to it.
    /// Returns the nearest selected (the next level's entry point).
    fn connect(
        &self,
        cur: u32,
        mine: &mut [Vec<u32>],
        found: BinaryHeap<Near>,
        level: usize,
    ) -> u32 {
        let cap = if level == 0 {
            self.p.max_m0()
        } else {
            self.p.m
        };
        let chosen = self.select(found.into_vec(), self.p.m);
        let next = chosen.first().map(|n| n.id).unwrap_or(cur);
        mine[level] = chosen.iter().map(|n| n.id).collect();
        let vcur = self.v(cur);
        for n in &chosen {
            let mut theirs = self.write_lists(n.id);
            let Some(list) = theirs.get_mut(level) else {
                continue;
            };
            if list.contains(&cur) {
                continue;
            }
            if list.len() < cap {
                list.push(cur);
                continue;
            }
            let vn = self.v(n.id);
            let mut cands: Vec<Near> = list
                .iter()
                .map(|&o| Near {
                    d: self.dist(vn, o),
                    id: o,
                })
                .collect();
            cands.push(Near {
                d: self.p.space.distance(vcur, vn),
                id: cur,
            });
            *list = self.select(cands, cap).iter().map(|k| k.id).collect();
        }
        next
    }

    fn insert(&self, cur: u32, level: usize, seen: &mut Visited) {
        let q = self.v(cur);
        // The element's own lists stay locked until it is linked on every level, as hnswlib
        // holds `link_list_locks_[cur]`: a search that reaches it on an upper level waits
        // instead of starting level 0 from an element with no links yet (which left elements
        // no one links to). Levels are linked top down, so no two inserts wait on each other.
        let mut own = self.write_lists(cur);
        let guard = match self.top.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (ep0, max_level) = *guard;
        // An element above the top level holds the entry point's lock for its whole insert,
        // as hnswlib does, so no other insert starts from a half-linked entry point.
        let mut held = if level > max_level {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let mut ep = ep0;
        if level < max_level {
            let mut d = self.dist(q, ep);
            for l in (level + 1..=max_level).rev() {
                let mut changed = true;
                while changed {
                    changed = false;
                    let lists = match self.links[ep as usize].read() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    let Some(list) = lists.get(l) else { break };
                    for &n in list {
                        let dn = self.dist(q, n);
                        if dn < d {
                            d = dn;
                            ep = n;
                            changed = true;
                        }
                    }
                }
            }
        }
        for l in (0..=level.min(max_level)).rev() {
            let found = self.search_layer(q, ep, l, self.p.ef_construction, seen);
            ep = self.connect(cur, &mut own, found, l);
        }
        drop(own);
        if let Some(g) = held.as_mut() {
            **g = (cur, level);
        }
    }
}

/// Build a graph over `vectors` (`n * dim` floats, element `i` at `i * dim`). `done` counts
/// inserted elements as they finish; `stop` cancels.
pub fn build(
    vectors: &[f32],
    dim: usize,
    p: Params,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Graph, BuildError> {
    let n = vectors.len().checked_div(dim).unwrap_or(0);
    if n == 0 {
        return Ok(Graph {
            links: Vec::new(),
            entry: 0,
            max_level: 0,
        });
    }
    let mult = p.mult();
    let levels: Vec<usize> = (0..n as u64).map(|i| level_of(p.seed, i, mult)).collect();
    let b = Builder {
        vectors,
        dim,
        p,
        links: levels
            .iter()
            .map(|&l| RwLock::new(vec![Vec::new(); l + 1]))
            .collect(),
        top: Mutex::new((0, levels[0])),
    };
    done.fetch_add(1, Ordering::Relaxed);
    // Elements are handed out in order from one counter, as hnswlib's ParallelFor does: the
    // threads insert neighbouring elements at once, never two far-apart halves of the set.
    let next = std::sync::atomic::AtomicUsize::new(1);
    let threads = rayon::current_num_threads().max(1);
    rayon::scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| {
                let mut seen = Visited::new(n);
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    b.insert(i as u32, levels[i], &mut seen);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    if stop.load(Ordering::Relaxed) {
        return Err(BuildError::Cancelled);
    }
    let (entry, max_level) = match b.top.into_inner() {
        Ok(t) => t,
        Err(p) => p.into_inner(),
    };
    let links = b
        .links
        .into_iter()
        .map(|l| match l.into_inner() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        })
        .collect();
    Ok(Graph {
        links,
        entry,
        max_level,
    })
}

/// The `k` nearest to `q` in a graph, searched as hnswlib's `searchKnn` does (greedy down to
/// level 1, then `max(ef, k)` on level 0). `neighbours(i, l)` gives element `i`'s links on
/// level `l`; `vector(i)` its vector; `skip(i)` leaves an element out of the answer (a deleted
/// one) while still walking through it.
pub struct Search<'a> {
    pub space: Space,
    pub entry: u32,
    pub max_level: usize,
    pub n: usize,
    pub neighbours: &'a dyn Fn(u32, usize) -> Vec<u32>,
    pub vector: &'a dyn Fn(u32) -> Vec<f32>,
    pub skip: &'a dyn Fn(u32) -> bool,
}

impl Search<'_> {
    pub fn knn(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32> {
        if self.n == 0 {
            return Vec::new();
        }
        let dist = |i: u32| self.space.distance(q, &(self.vector)(i));
        let mut ep = self.entry;
        let mut d = dist(ep);
        for l in (1..=self.max_level).rev() {
            let mut changed = true;
            while changed {
                changed = false;
                for n in (self.neighbours)(ep, l) {
                    if n as usize >= self.n {
                        continue;
                    }
                    let dn = dist(n);
                    if dn < d {
                        d = dn;
                        ep = n;
                        changed = true;
                    }
                }
            }
        }
        let ef = ef.max(k);
        let mut seen = std::collections::HashSet::new();
        let mut top: BinaryHeap<Near> = BinaryHeap::new();
        let mut cand: BinaryHeap<Far> = BinaryHeap::new();
        seen.insert(ep);
        cand.push(Far(Near { d, id: ep }));
        if !(self.skip)(ep) {
            top.push(Near { d, id: ep });
        }
        let mut bound = if top.is_empty() { f32::INFINITY } else { d };
        while let Some(Far(c)) = cand.pop() {
            if c.d > bound && top.len() >= ef {
                break;
            }
            for n in (self.neighbours)(c.id, 0) {
                if n as usize >= self.n || !seen.insert(n) {
                    continue;
                }
                let dn = dist(n);
                if top.len() < ef || dn < bound {
                    cand.push(Far(Near { d: dn, id: n }));
                    if !(self.skip)(n) {
                        top.push(Near { d: dn, id: n });
                        if top.len() > ef {
                            top.pop();
                        }
                    }
                    if let Some(t) = top.peek() {
                        bound = t.d;
                    }
                }
            }
        }
        let mut v = top.into_sorted_vec();
        v.truncate(k);
        v.into_iter().map(|n| n.id).collect()
    }
}

/// The exact `k` nearest of each query among the vectors (ties by place): the reference
/// recall is measured against. The vectors are read once, in blocks shared by every query
/// (a block stays in cache while all queries pass over it), blocks on every core.
pub fn exact_knn(
    vectors: &[f32],
    dim: usize,
    space: Space,
    queries: &[Vec<f32>],
    k: usize,
) -> Vec<Vec<u32>> {
    if dim == 0 || queries.is_empty() {
        return vec![Vec::new(); queries.len()];
    }
    const BLOCK: usize = 2048;
    let keep = |top: &mut BinaryHeap<Near>, c: Near| {
        if top.len() < k {
            top.push(c);
        } else if top.peek().is_some_and(|t| c < *t) {
            top.pop();
            top.push(c);
        }
    };
    let partial: Vec<Vec<BinaryHeap<Near>>> = vectors
        .par_chunks(BLOCK * dim)
        .enumerate()
        .map(|(b, block)| {
            let base = b * BLOCK;
            queries
                .iter()
                .map(|q| {
                    let mut top = BinaryHeap::with_capacity(k + 1);
                    for (j, v) in block.chunks_exact(dim).enumerate() {
                        let c = Near {
                            d: space.distance(q, v),
                            id: (base + j) as u32,
                        };
                        keep(&mut top, c);
                    }
                    top
                })
                .collect()
        })
        .collect();
    (0..queries.len())
        .map(|qi| {
            let mut top = BinaryHeap::with_capacity(k + 1);
            for p in &partial {
                for &c in p[qi].iter() {
                    keep(&mut top, c);
                }
            }
            top.into_sorted_vec().into_iter().map(|n| n.id).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    fn graph(v: &[f32], dim: usize, space: Space) -> Graph {
        let p = Params {
            m: 8,
            ef_construction: 64,
            space,
            seed: 100,
        };
        build(v, dim, p, &AtomicU64::new(0), &AtomicBool::new(false)).unwrap()
    }

    fn recall(v: &[f32], dim: usize, g: &Graph, space: Space) -> f64 {
        let n = v.len() / dim;
        let queries: Vec<Vec<f32>> = (0..50)
            .map(|i| v[i * 7 * dim..(i * 7 + 1) * dim].to_vec())
            .collect();
        let exact = exact_knn(v, dim, space, &queries, 10);
        let s = Search {
            space,
            entry: g.entry,
            max_level: g.max_level,
            n,
            neighbours: &|i, l| g.links[i as usize].get(l).cloned().unwrap_or_default(),
            vector: &|i| v[i as usize * dim..(i as usize + 1) * dim].to_vec(),
            skip: &|_| false,
        };
        let mut hit = 0;
        for (q, want) in queries.iter().zip(&exact) {
            let got = s.knn(q, 10, 32);
            hit += got.iter().filter(|g| want.contains(g)).count();
        }
        hit as f64 / (10 * queries.len()) as f64
    }

    #[test]
    fn the_graph_respects_hnswlib_limits() {
        let dim = 16;
        let v = random_vectors(2000, dim, 1);
        let g = graph(&v, dim, Space::L2);
        assert_eq!(g.links.len(), 2000);
        for (i, lists) in g.links.iter().enumerate() {
            for (l, list) in lists.iter().enumerate() {
                let cap = if l == 0 { 16 } else { 8 };
                assert!(list.len() <= cap, "element {i} level {l}: {}", list.len());
                assert!(!list.contains(&(i as u32)));
                for &n in list {
                    assert!(g.level(n as usize) >= l, "link to a lower element");
                }
            }
            assert!(g.level(i) <= g.max_level);
        }
        assert_eq!(g.level(g.entry as usize), g.max_level);
        // Every element but a lone first one has links on level 0.
        assert!(g.links.iter().all(|l| !l[0].is_empty()));
    }

    #[test]
    fn search_finds_the_true_neighbours_in_every_space() {
        let dim = 24;
        let mut v = random_vectors(3000, dim, 7);
        for space in [Space::L2, Space::Ip] {
            let g = graph(&v, dim, space);
            let r = recall(&v, dim, &g, space);
            assert!(r > 0.9, "{space:?}: recall {r}");
        }
        for c in v.chunks_exact_mut(dim) {
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            c.iter_mut().for_each(|x| *x /= norm);
        }
        let g = graph(&v, dim, Space::Cosine);
        let r = recall(&v, dim, &g, Space::Cosine);
        assert!(r > 0.9, "cosine: recall {r}");
    }

    #[test]
    fn a_graph_without_links_finds_little() {
        // The recall measure can fail: a graph whose links are cut finds almost nothing.
        let dim = 16;
        let v = random_vectors(2000, dim, 3);
        let mut g = graph(&v, dim, Space::L2);
        for l in g.links.iter_mut() {
            for list in l.iter_mut() {
                list.truncate(1);
            }
        }
        assert!(recall(&v, dim, &g, Space::L2) < 0.5);
    }

    #[test]
    fn levels_follow_the_multiplier_and_do_not_depend_on_threads() {
        let mult = 1.0 / 16f64.ln();
        let above: usize = (0..100_000).filter(|&i| level_of(100, i, mult) > 0).count();
        // P(level > 0) = 1/M.
        assert!((5_500..7_000).contains(&above), "{above}");
        assert_eq!(level_of(100, 5, mult), level_of(100, 5, mult));
    }

    #[test]
    fn a_cancelled_build_stops() {
        let v = random_vectors(500, 8, 1);
        let p = Params {
            m: 8,
            ef_construction: 32,
            space: Space::L2,
            seed: 1,
        };
        let r = build(&v, 8, p, &AtomicU64::new(0), &AtomicBool::new(true));
        assert_eq!(r, Err(BuildError::Cancelled));
    }
}
