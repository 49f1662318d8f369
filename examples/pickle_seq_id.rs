//! Time reading max_seq_id from an index_metadata.pickle, and say which decoder answered.
//! Usage: cargo run --release --example pickle_seq_id -- PATH [ROUNDS] [--whole]
//! `--whole` times the serde-pickle fallback on the whole file instead of the fast path.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: pickle_seq_id PATH [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let whole = args.next().as_deref() == Some("--whole");
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let (v, how) = if whole {
            let data = std::fs::read(&path).unwrap_or_default();
            (
                chroma_wal::chroma::pickle::decode_whole(&data),
                chroma_wal::chroma::pickle::Decoder::Fallback,
            )
        } else {
            chroma_wal::chroma::pickle::read_max_seq_id_traced(std::path::Path::new(&path))
        };
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        println!("{v:?} via {how:?}");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("median {:.3} ms over {rounds} rounds", times[rounds / 2]);
}
