//! Time validating an index_metadata.pickle whole (every opcode to the final STOP) and
//! reading its max_seq_id. Usage: cargo run --release --example pickle_seq_id -- PATH [ROUNDS] [--whole]
//! `--whole` times serde-pickle decoding the whole file instead (the independent decoder).

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: pickle_seq_id PATH [ROUNDS] [--whole]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let whole = args.next().as_deref() == Some("--whole");
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        if whole {
            let data = std::fs::read(&path).unwrap_or_default();
            let v = chroma_wal::chroma::pickle::decode_whole(&data);
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            println!("{v:?} via serde-pickle");
        } else {
            let v = chroma_wal::chroma::pickle::read(std::path::Path::new(&path));
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            match v {
                Ok(f) => println!(
                    "{:?}, {} labels, {} bytes, validated whole",
                    f.max_seq_id,
                    f.labels
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "?".into()),
                    f.bytes
                ),
                Err(why) => println!("unreadable: {why}"),
            }
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("median {:.3} ms over {rounds} rounds", times[rounds / 2]);
}
