//! The states a writer killed mid-persist leaves, made from real fixtures of every era.
//!
//! hnswlib persists an index in a fixed order: `header.bin` (with the new element count),
//! the new elements' blocks in `data_level0.bin`, their `length.bin` entries, then their
//! lists in `link_lists.bin`; Chroma writes `index_metadata.pickle` after all of them. A kill
//! between two of these leaves files that each look whole. `tests/crash/crash.py` makes these
//! states with real releases; here each is made by hand from a fixture, so it runs everywhere.

mod common;

use std::path::Path;

use common::damage::{big_vector, check};
use common::*;

const RELEASES: &[&str] = &["v0_4_22", "v0_5_5", "v0_6_3", "v1_5_9"];

/// Byte offsets of `header.bin`'s fields (hnswlib writes them back to back).
const CUR_ELEMENT_COUNT: usize = 20;
const SIZE_PER_ELEMENT: usize = 28;
const MAXLEVEL: usize = 52;
const ENTERPOINT: usize = 56;
const MAX_M: usize = 60;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn header(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("header.bin")).unwrap()
}

fn set_u64(dir: &Path, at: usize, v: u64) {
    let mut b = header(dir);
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    std::fs::write(dir.join("header.bin"), b).unwrap();
}

/// Make `data_level0.bin` and `length.bin` long enough for `n` elements, as the first steps
/// of a persist do (zeros where the blocks would be: what is in them does not matter here).
fn room_for(dir: &Path, n: u64) {
    let size = u64_at(&header(dir), SIZE_PER_ELEMENT);
    for (file, need) in [("data_level0.bin", n * size), ("length.bin", n * 4)] {
        let p = dir.join(file);
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        if f.metadata().unwrap().len() < need {
            f.set_len(need).unwrap();
        }
    }
}

/// Each element's level, from its link-list size, as hnswlib reads them.
fn levels(dir: &Path) -> Vec<u64> {
    let h = header(dir);
    let n = u64_at(&h, CUR_ELEMENT_COUNT);
    let per_level = u64_at(&h, MAX_M) * 4 + 4;
    let b = std::fs::read(dir.join("link_lists.bin")).unwrap();
    let mut at = 0usize;
    (0..n)
        .map(|_| {
            let size = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64;
            at += 4 + size as usize;
            size / per_level
        })
        .collect()
}

#[test]
fn the_header_counts_elements_whose_lists_were_never_written() {
    // The five states chroma-wal used to call "ok" and prune: the header has the new count,
    // link_lists.bin still holds the old elements' lists and is longer than 4 bytes an element.
    for fixture in RELEASES {
        let v = json_of(&["info", "--json"], &fixture_path(fixture));
        let seg = big_vector(&v);
        let dir = fixture_path(fixture).join(&seg);
        let n = u64_at(&header(&dir), CUR_ELEMENT_COUNT);
        let lists = std::fs::metadata(dir.join("link_lists.bin")).unwrap().len();
        let more = (lists / 4 - n).min(20);
        assert!(
            more > 0,
            "{fixture}: link_lists.bin has no slack to test with"
        );
        let says = format!("holds the lists of only {n} of the {} elements", n + more);
        check(fixture, "header ahead of its lists", &says, &|d, s| {
            let dir = d.join(s);
            room_for(&dir, n + more);
            set_u64(&dir, CUR_ELEMENT_COUNT, n + more);
        });
    }
}

#[test]
fn the_index_persisted_and_its_pickle_did_not() {
    // Every file of the index has the new element (its lists too), the pickle is the old one.
    for fixture in RELEASES {
        let v = json_of(&["info", "--json"], &fixture_path(fixture));
        let dir = fixture_path(fixture).join(big_vector(&v));
        let n = u64_at(&header(&dir), CUR_ELEMENT_COUNT);
        let says = format!(
            "header.bin counts {} elements but index_metadata.pickle says only {n}",
            n + 1
        );
        check(fixture, "pickle behind its index", &says, &|d, s| {
            let dir = d.join(s);
            room_for(&dir, n + 1);
            let mut lists = std::fs::read(dir.join("link_lists.bin")).unwrap();
            lists.extend_from_slice(&0u32.to_le_bytes());
            std::fs::write(dir.join("link_lists.bin"), lists).unwrap();
            set_u64(&dir, CUR_ELEMENT_COUNT, n + 1);
        });
    }
}

#[test]
fn the_entry_point_is_not_on_the_top_level() {
    for fixture in RELEASES {
        let v = json_of(&["info", "--json"], &fixture_path(fixture));
        let dir = fixture_path(fixture).join(big_vector(&v));
        let h = header(&dir);
        let top = i32::from_le_bytes(h[MAXLEVEL..MAXLEVEL + 4].try_into().unwrap());
        assert!(top > 0, "{fixture}: the index has one level only");
        let low = levels(&dir).iter().position(|&l| l == 0).unwrap() as u32;
        check(
            fixture,
            "entry point below the top",
            "entry point",
            &|d, s| {
                let p = d.join(s).join("header.bin");
                let mut b = std::fs::read(&p).unwrap();
                b[ENTERPOINT..ENTERPOINT + 4].copy_from_slice(&low.to_le_bytes());
                std::fs::write(p, b).unwrap();
            },
        );
    }
}

#[test]
fn every_fixture_index_walks_whole() {
    // The new checks find nothing in any index a release wrote and reads back.
    let more = ["deletions_v1_5_9", "orphans_v0_6_3", "wal_mode_v0_4_22"];
    for fixture in FIXTURES.iter().chain(more.iter()) {
        let v = json_of(&["info", "--json"], &fixture_path(fixture));
        for c in v["collections"].as_array().unwrap() {
            assert_ne!(c["health"], "damaged", "{fixture}: {c}");
        }
    }
}

/// The advice given for a damaged `big` in `fixture`.
fn advice(fixture: &str) -> String {
    let (_t, dir) = fixture_copy(fixture);
    let v = json_of(&["info", "--json"], &dir);
    let seg = big_vector(&v);
    let p = dir.join(&seg).join("link_lists.bin");
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    let v = json_of(&["info", "--json"], &dir);
    let big = collection(&v, "big", "default_tenant");
    assert_eq!(big["health"], "damaged", "{fixture}: {big}");
    big["recovery"].as_str().unwrap().to_string()
}

#[test]
fn the_advice_is_what_the_release_that_wrote_the_dir_needs() {
    // 0.4 and 0.5.5 replay every row of a removed folder, and never purge.
    for fixture in ["v0_4_22", "v0_5_5"] {
        let a = advice(fixture);
        assert!(
            a.contains("remove the folder") && a.contains("every row"),
            "{fixture}: {a}"
        );
        assert!(!a.contains("max_seq_id"), "{fixture}: {a}");
    }
    // 0.5.6 - 0.6.3 start after the vector segment's max_seq_id row: the folder alone
    // repaired none of the crashed 0.6.3 dirs. The fixture also purges automatically.
    let a = advice("v0_6_3");
    assert!(a.contains("DELETE FROM max_seq_id WHERE segment_id"), "{a}");
    assert!(a.contains("replays nothing at or below seq_id"), "{a}");
    assert!(a.contains("Automatic purging is on"), "{a}");
    // 1.x replays what is left in the WAL; this fixture does not purge.
    let a = advice("v1_5_9");
    assert!(a.contains("every row") && !a.contains("DELETE FROM"), "{a}");
    assert!(!a.contains("Automatic purging is on"), "{a}");
}

/// 1,000 records in the metadata segment `meta` that no index and no WAL row holds: what a
/// delete the index persisted looks like once SQLite rolled the delete back, many times over.
fn records_in_no_index(dir: &Path, meta: &str) {
    rusqlite::Connection::open(dir.join("chroma.sqlite3"))
        .unwrap()
        .execute(
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000)
             INSERT INTO embeddings (segment_id, embedding_id, seq_id)
             SELECT ?1, 'dropped-' || k, 1 FROM n",
            [meta],
        )
        .unwrap();
}

#[test]
fn records_the_index_dropped_while_sqlite_kept_them() {
    // A delete persisted in the index and its pickle, then the kill rolled back the
    // transaction that held the delete: the metadata segment keeps the records, the index
    // does not, and no WAL row says so. Every file of the folder agrees with the others; the
    // count of records against the index and the WAL above its position does not.
    for fixture in RELEASES {
        let (_t, dir) = fixture_copy(fixture);
        let v = json_of(&["info", "--json"], &dir);
        let big = collection(&v, "big", "default_tenant");
        let topic = big["topic"].as_str().unwrap().to_string();
        let had_prunable = big["prunable_rows"].as_u64().unwrap() > 0;
        let meta = big["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == "METADATA")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        records_in_no_index(&dir, &meta);
        let deep = json_of(&["info", "--json", "--deep"], &dir);
        let big = collection(&deep, "big", "default_tenant");
        assert_eq!(big["health"], "damaged", "{fixture}: {big}");
        let status = big["status"].as_str().unwrap();
        assert!(
            status.contains("in no index Chroma can load"),
            "{fixture}: {status}"
        );
        assert_eq!(big["prunable_rows"], 0, "{fixture}");
        // The prune counts the same before it deletes anything, and keeps the whole WAL.
        let before = topic_counts(&dir);
        let out = bin()
            .args(["prune", "--all", "--yes", "--no-backup"])
            .arg(&dir)
            .assert()
            .success();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        // Named wherever it had rows to lose. (Where purging already left nothing to prune,
        // a prune that counts first has nothing to skip; one that counts in its copy checks
        // every collection it may cut first, and names it too.)
        if had_prunable {
            assert!(stderr.contains("skipped big"), "{fixture}: {stderr}");
        }
        // Counted first (a dry run), as before the copy counted: the same verdict.
        let dry = bin()
            .args(["prune", "--all", "--dry-run"])
            .arg(&dir)
            .assert()
            .success();
        let dry = String::from_utf8_lossy(&dry.get_output().stderr).to_string();
        assert_eq!(
            dry.contains("skipped big"),
            had_prunable,
            "{fixture}: {dry}"
        );
        assert_eq!(
            topic_counts(&dir).get(&topic),
            before.get(&topic),
            "{fixture}: the collection lost WAL rows"
        );
    }
}

/// Raise `total_elements_added` in a pickle by `more`, in place (same opcode, same width).
fn raise_added(pickle: &Path, more: u32) {
    let mut b = std::fs::read(pickle).unwrap();
    let key = b"total_elements_added";
    let mut at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    if b[at] == 0x94 {
        at += 1; // MEMOIZE
    }
    match b[at] {
        b'M' => {
            let v = u16::from_le_bytes([b[at + 1], b[at + 2]]) + more as u16;
            b[at + 1..at + 3].copy_from_slice(&v.to_le_bytes());
        }
        b'J' => {
            let v = i32::from_le_bytes(b[at + 1..at + 5].try_into().unwrap()) + more as i32;
            b[at + 1..at + 5].copy_from_slice(&v.to_le_bytes());
        }
        op => panic!("total_elements_added is encoded with opcode {op:#x}"),
    }
    std::fs::write(pickle, b).unwrap();
}

#[test]
fn a_pickle_that_counts_more_adds_than_elements_is_not_damage() {
    // Python releases count a delete and re-add of one id in a batch as an add while the
    // label is reused (no new element), and `chops hnsw rebuild` sets the count to the
    // capacity: more added than elements is a healthy index Chroma reads.
    for fixture in RELEASES {
        let (_t, dir) = fixture_copy(fixture);
        let v = json_of(&["info", "--json"], &dir);
        let seg = big_vector(&v);
        raise_added(&dir.join(&seg).join("index_metadata.pickle"), 5);
        let v = json_of(&["info", "--json"], &dir);
        let big = collection(&v, "big", "default_tenant");
        assert_ne!(big["health"], "damaged", "{fixture}: {big}");
    }
}

#[test]
fn the_job_counts_the_records_again_under_its_lock() {
    // A plan made before the records went missing from the index: the job's own count,
    // under the lock, keeps the collection's WAL whole.
    use chroma_wal::chroma::{wal, Snapshot};
    use chroma_wal::jobs::prune::{self, BackupTarget, Canceller, JobOptions, Plan, Selection};
    let (_t, dir) = fixture_copy("v1_5_9");
    let snap = Snapshot::open(&dir).unwrap();
    let stats = wal::scan(&snap, &mut |_, _| true).unwrap();
    let plan = Plan::build(&snap, &stats, &Selection::All).unwrap();
    let big = snap
        .collections
        .iter()
        .find(|c| c.name == "big" && c.tenant.as_deref() == Some("default_tenant"))
        .unwrap();
    let topic = big.default_topic();
    assert!(plan.topics.iter().any(|t| t.topic == topic && t.rows > 0));
    let meta = big.segments.iter().find(|s| s.scope == "METADATA").unwrap();
    records_in_no_index(&dir, &meta.id);
    let before = topic_counts(&dir);
    let opts = JobOptions {
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
        compact: false,
    };
    let r = prune::run(&dir, &plan, &opts, &Canceller::new(), &mut |_| {}).unwrap();
    assert_eq!(topic_counts(&dir).get(&topic), before.get(&topic));
    let t = r.topics.iter().find(|t| t.topic == topic).unwrap();
    assert_eq!(t.rows_deleted, 0, "{t:?}");
}
