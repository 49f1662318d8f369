//! Time the rows view's first page on the biggest WAL topic of a dir: the catalog, the
//! topic's judgement (bound, seq_id guard) and one page of rows newest first, as `w` in the
//! explorer does. Usage: cargo run --release --example rows_first_page -- DIR [ROUNDS]

use std::time::Instant;

use chroma_wal::chroma::rows::{page_before, TopicView, PAGE};
use chroma_wal::chroma::{db, Snapshot};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: rows_first_page DIR [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let dir = std::path::PathBuf::from(dir);
    let snap = match Snapshot::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let conn = match db::open_read_only(&snap.sqlite_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // The biggest topic, by a GROUP BY outside the timed part.
    let (topic, n): (String, i64) = conn
        .query_row(
            "SELECT topic, COUNT(*) c FROM embeddings_queue GROUP BY topic ORDER BY c DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_default();
    let mut ms = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let conn = db::open_read_only(&snap.sqlite_path).expect("open");
        let view = TopicView::of(&snap, &conn, std::slice::from_ref(&topic)).expect("view");
        let rows = page_before(&conn, &view, i64::MAX, PAGE).expect("page");
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(rows.len(), PAGE.min(n as usize));
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "topic of {n} rows: first page of {PAGE} rows in {:.2} ms (median of {rounds})",
        ms[rounds / 2]
    );
}
