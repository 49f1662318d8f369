//! Time the records view's first page on the collection with the most records: what `e` in
//! the explorer does before anything is drawn (open the collection, count, read one page
//! without the vectors' sources), then how long finding where the vectors are takes (the
//! second step, off the UI thread). Usage:
//! cargo run --release --example records_first_page -- DIR [ROUNDS]

use std::time::Instant;

use chroma_wal::chroma::records::{Filter, Reader};
use chroma_wal::chroma::{db, Snapshot};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: records_first_page DIR [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let snap = match Snapshot::open(std::path::Path::new(&dir)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // The collection with the most records, outside the timed part.
    let conn = db::open_read_only(&snap.sqlite_path).expect("open");
    let seg: String = conn
        .query_row(
            "SELECT segment_id FROM embeddings GROUP BY segment_id ORDER BY COUNT(*) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("a collection with records");
    let ci = snap
        .collections
        .iter()
        .position(|c| c.segments.iter().any(|s| s.id == seg))
        .expect("its collection");
    let (mut first, mut vectors) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let mut r = Reader::open(&snap, ci).expect("open");
        n = r.count().expect("count");
        let page = r.page(i64::MIN, 200, &Filter::All, false).expect("page");
        first.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(!page.is_empty());
        let t1 = Instant::now();
        r.load_vectors(&snap, ci).expect("vectors");
        let _ = r.page(i64::MIN, 200, &Filter::All, false).expect("page");
        vectors.push(t1.elapsed().as_secs_f64() * 1000.0);
    }
    first.sort_by(|a, b| a.total_cmp(b));
    vectors.sort_by(|a, b| a.total_cmp(b));
    println!(
        "collection of {n} records: first page in {:.1} ms, vectors found in {:.0} ms (medians of {rounds})",
        first[rounds / 2],
        vectors[rounds / 2]
    );
}
