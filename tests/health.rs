//! Segment health on damage made from real fixtures: the damaged collection keeps every WAL
//! row (it is how Chroma rebuilds the index), and a healthy collection in the same dir still
//! prunes exactly. Index facts are checked against the generator's own reading.

mod common;

use std::path::Path;

use common::damage::{big_vector, check, check_held, cut};
use common::*;
use serde_json::Value;

fn info(dir: &Path, deep: bool) -> Value {
    if deep {
        json_of(&["info", "--json", "--deep"], dir)
    } else {
        json_of(&["info", "--json"], dir)
    }
}

#[test]
fn a_cut_pickle_keeps_the_whole_wal() {
    let p = fixture_path("v0_4_22");
    let v = info(&p, false);
    let len = std::fs::metadata(p.join(big_vector(&v)).join("index_metadata.pickle"))
        .unwrap()
        .len();
    for at in [1, len / 3, len / 2, len - 1] {
        check(
            "v0_4_22",
            &format!("pickle cut at {at}"),
            "cut short",
            &|d, s| cut(&d.join(s).join("index_metadata.pickle"), at),
        );
    }
}

#[test]
fn trailing_garbage_after_the_pickle() {
    check("v0_5_5", "trailing garbage", "trailing garbage", &|d, s| {
        let p = d.join(s).join("index_metadata.pickle");
        let mut b = std::fs::read(&p).unwrap();
        b.extend_from_slice(b"\x00\x00junk");
        std::fs::write(&p, b).unwrap();
    });
}

#[test]
fn index_files_cut_short() {
    for (fixture, file) in [
        ("v0_4_22", "data_level0.bin"),
        ("v0_6_3", "length.bin"),
        ("v1_5_9", "link_lists.bin"),
        ("v1_5_9", "data_level0.bin"),
    ] {
        check(fixture, file, file, &|d, s| {
            let p = d.join(s).join(file);
            // Below what the header's element count needs, whatever the file's capacity.
            cut(&p, 600);
        });
    }
}

#[test]
fn header_missing_garbage_or_of_another_version() {
    check(
        "v0_4_22",
        "header missing",
        "header.bin is missing",
        &|d, s| {
            std::fs::remove_file(d.join(s).join("header.bin")).unwrap();
        },
    );
    check("v0_6_3", "header garbage", "header.bin", &|d, s| {
        std::fs::write(d.join(s).join("header.bin"), [0xa5u8; 100]).unwrap();
    });
    check("v1_5_9", "header too short", "header.bin", &|d, s| {
        cut(&d.join(s).join("header.bin"), 40);
    });
    check("v1_5_9", "header version 2", "version 2", &|d, s| {
        let p = d.join(s).join("header.bin");
        let mut b = std::fs::read(&p).unwrap();
        b[..4].copy_from_slice(&2i32.to_le_bytes());
        std::fs::write(&p, b).unwrap();
    });
}

#[test]
fn the_folder_gone_with_the_row_kept() {
    let gone = |d: &std::path::Path, s: &str| std::fs::remove_dir_all(d.join(s)).unwrap();
    // 0.6.3 replays only above the row: the index lacks every record below it.
    check("v0_6_3", "folder gone", "folder is missing", &gone);
    // 1.x loads it as uninitialized and replays the whole WAL from 0: it reads correctly
    // while every row stays.
    check_held(
        "upgraded_0_5_5_to_1_5_9",
        "folder gone",
        "replaying every row of the collection still in the WAL from seq_id 0",
        &gone,
    );
}

#[test]
fn both_rows_raised_above_the_wal_top() {
    // Chroma still loads the index: not damaged, and the whole WAL stays.
    check_held(
        "v1_5_9",
        "positions above the top",
        "above the WAL's highest seq_id",
        &|d, s| {
            let c = rusqlite::Connection::open(d.join("chroma.sqlite3")).unwrap();
            let coll: String = c
                .query_row("SELECT collection FROM segments WHERE id = ?1", [s], |r| {
                    r.get(0)
                })
                .unwrap();
            c.execute(
                "UPDATE max_seq_id SET seq_id = (SELECT MAX(seq_id) FROM embeddings_queue) + 1000 \
             WHERE segment_id IN (SELECT id FROM segments WHERE collection = ?1)",
                [coll],
            )
            .unwrap();
        },
    );
}

#[test]
fn the_guard_under_the_lock_keeps_the_top_even_when_the_plan_did_not() {
    use chroma_wal::chroma::{wal, Snapshot};
    use chroma_wal::jobs::prune::{self, BackupTarget, Canceller, JobOptions, Plan, Selection};
    let (_t, dir) = fixture_copy("v1_5_9");
    let (orphan, _, _, highest) = lost_rows_and_an_orphan_on_top(&dir);
    let snap = Snapshot::open(&dir).unwrap();
    let stats = wal::scan(&snap, &mut |_, _| true).unwrap();
    let mut plan = Plan::build(&snap, &stats, &Selection::All).unwrap();
    // Undo the plan's own guard: what a plan made before the rows were lost would say.
    let t = plan.topics.iter_mut().find(|t| t.topic == orphan).unwrap();
    assert_eq!(t.rows, 0, "the plan's guard did not hold the orphan back");
    t.rows = 5;
    t.bound = Some(highest + 6);
    t.note = None;
    let opts = JobOptions {
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
        compact: false,
    };
    let r = prune::run(&dir, &plan, &opts, &Canceller::new(), &mut |_| {}).unwrap();
    assert_eq!(topic_counts(&dir).get(&orphan).map(|c| c.0), Some(5));
    assert!(
        r.notes.iter().any(|n| n.contains("kept whole")),
        "{:?}",
        r.notes
    );
}

#[test]
fn the_top_of_the_wal_survives_when_other_rows_were_lost_before() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let (orphan, papers_topic, m, highest) = lost_rows_and_an_orphan_on_top(&dir);
    let orphan = orphan.as_str();
    let r = prune_json(&dir, &[]);
    let counts = topic_counts(&dir);
    assert_eq!(
        counts.get(orphan).map(|c| c.0),
        Some(5),
        "the orphan topic holding the WAL's top was pruned: {r}"
    );
    let top = counts.values().map(|c| c.2).max().unwrap();
    assert!(
        top > highest,
        "the WAL's top {top} fell below position {highest}"
    );
    assert!(
        r["topics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["topic"] != orphan || t["rows_deleted"] == 0),
        "{r}"
    );
    // Losing papers' rows at and above its bound lost the records its index had not
    // persisted yet: they are in no index and in no WAL row now, so papers keeps the rows it
    // has (a rebuild needs them) and says why; the other collections still prune by the rule.
    assert!(counts[&papers_topic].1 < m, "papers was pruned: {r}");
    assert!(
        r["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("skipped papers")),
        "{r}"
    );
    assert!(r["rows_deleted"].as_i64().unwrap() > 0);
}

#[test]
fn index_facts_match_the_generators_reading() {
    for name in FIXTURES.iter().chain(["deletions_v1_5_9"].iter()) {
        let p = fixture_path(name);
        let shallow = info(&p, false);
        let deep = info(&p, true);
        let exp = expected(name);
        let mut deleted_total = 0;
        for ec in exp["collections"].as_array().unwrap() {
            for es in ec["segments"].as_array().unwrap() {
                let Some(ix) = es["index"].as_object() else {
                    continue;
                };
                let find = |v: &Value| -> Value {
                    v["collections"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|c| c["segments"].as_array().unwrap())
                        .find(|s| s["id"] == es["id"])
                        .unwrap()["index"]
                        .clone()
                };
                let (s, d) = (find(&shallow), find(&deep));
                assert_eq!(s["elements"], ix["elements"], "{name} {}", es["id"]);
                assert_eq!(s["max_elements"], ix["max_elements"], "{name}");
                assert_eq!(s["files"], ix["files"], "{name}");
                assert_eq!(s["deleted"], Value::Null, "{name}: deleted without --deep");
                assert_eq!(d["deleted"], ix["deleted"], "{name} {}", es["id"]);
                deleted_total += ix["deleted"].as_i64().unwrap();
            }
        }
        if *name == "deletions_v1_5_9" {
            assert!(
                deleted_total >= 50,
                "the deletions fixture has {deleted_total}"
            );
        }
        // Healthy fixtures stay healthy.
        for c in deep["collections"].as_array().unwrap() {
            assert_ne!(c["health"], "damaged", "{name}: {}", c["status"]);
        }
    }
}

#[test]
fn the_deletions_fixture_prunes_exactly() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let exp = expected("deletions_v1_5_9");
    let before = topic_counts(&dir);
    let r = prune_json(&dir, &[]);
    let after = topic_counts(&dir);
    let mut total = 0;
    for ec in exp["collections"].as_array().unwrap() {
        let gone = ec["expected_prunable_rows"].as_i64().unwrap();
        total += gone;
        for t in ec["wal_topics"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            assert_eq!(after[t].0, before[t].0 - gone, "{t}");
        }
    }
    assert_eq!(r["rows_deleted"].as_i64().unwrap(), total);
}

#[test]
fn releases_that_open_each_fixture() {
    for (name, first, last) in [
        ("v0_4_22", "0.4.15", "0.4.24"),
        ("v0_5_5", "0.5.4", "0.5.5"),
        ("v0_6_3", "0.5.6", "0.6.3"),
        ("v1_5_9", "1.5.0", "1.5.9"),
        ("upgraded_0_4_22_to_0_6_3", "0.5.6", "0.6.3"),
    ] {
        let v = info(&fixture_path(name), false);
        assert_eq!(
            v["schema"]["releases"],
            serde_json::json!({"first": first, "last": last}),
            "{name}"
        );
    }
    let out = bin()
        .args(["info"])
        .arg(fixture_path("v0_4_22"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("opens in chromadb 0.4.15 – 0.4.24 as is; newer releases migrate it"),
        "{text}"
    );
}
