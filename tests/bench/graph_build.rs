//! Time a graph build over raw float32 vectors (`graph_build FILE DIM [M EF]`), for the
//! comparison with chroma-hnswlib in BENCHMARKS.md; prints seconds and recall@10.
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use chroma_wal::index::graph::{build, exact_knn, Params, Search, Space};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(dim)) = (args.get(1), args.get(2).and_then(|d| d.parse().ok())) else {
        eprintln!("usage: graph_build FILE DIM [M EF]");
        std::process::exit(2);
    };
    let m = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(16);
    let ef = args.get(4).and_then(|x| x.parse().ok()).unwrap_or(100);
    let bytes = std::fs::read(file).expect("read");
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let dim: usize = dim;
    let p = Params {
        m,
        ef_construction: ef,
        space: if std::env::var("IP").is_ok() {
            Space::Ip
        } else {
            Space::L2
        },
        seed: 100,
    };
    let t = Instant::now();
    let g = build(&v, dim, p, &AtomicU64::new(0), &AtomicBool::new(false)).expect("build");
    println!("build {:.2} s", t.elapsed().as_secs_f64());
    let mut indeg = vec![0u32; g.links.len()];
    for l in &g.links {
        for &t in &l[0] {
            indeg[t as usize] += 1;
        }
    }
    println!(
        "zero in-degree on level 0: {}",
        indeg.iter().filter(|d| **d == 0).count()
    );
    let n = v.len() / dim;
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|i| {
            let j = (i * 7919) % n;
            v[j * dim..(j + 1) * dim].to_vec()
        })
        .collect();
    let t = Instant::now();
    let exact = exact_knn(&v, dim, Space::L2, &queries, 10);
    println!("exact {:.2} s", t.elapsed().as_secs_f64());
    let s = Search {
        space: Space::L2,
        entry: g.entry,
        max_level: g.max_level,
        n,
        neighbours: &|i, l| g.links[i as usize].get(l).cloned().unwrap_or_default(),
        vector: &|i| v[i as usize * dim..(i as usize + 1) * dim].to_vec(),
        skip: &|_| false,
    };
    let hit: usize = queries
        .iter()
        .zip(&exact)
        .map(|(q, w)| s.knn(q, 10, 10).iter().filter(|g| w.contains(g)).count())
        .sum();
    println!("recall@10 (ef 10) {:.4}", hit as f64 / 2000.0);
}
