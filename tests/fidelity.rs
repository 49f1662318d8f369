//! The index answers on the configurations users have (issue 36), each made from a real
//! fixture: cosine and ip collections beside the l2 ones, a position above the WAL's top, an
//! index 1.x has not persisted since it rebuilt it, and live ids on elements marked deleted.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Every fixture family holds an l2, a cosine and an ip collection, and `records` gave each
/// record as the release's own get() did (tests/records.rs compares every value): here, that
/// the comparison reached all three spaces in every family.
#[test]
fn every_family_holds_the_three_spaces() {
    for name in all_fixtures() {
        let exp = expected(name);
        let names: Vec<&str> = exp["api"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for want in ["cosine-docs", "inner-product"] {
            assert!(names.contains(&want), "{name}: no {want} in {names:?}");
        }
        let recs =
            std::fs::read_to_string(root().join(format!("tests/fixtures/{name}.records.json")))
                .unwrap();
        let v: Value = serde_json::from_str(&recs).unwrap();
        let n = v["collections"].as_object().unwrap().len();
        assert!(n >= 3, "{name}: get() of {n} collections only");
    }
}

/// A cosine index gives each stored unit vector times its norm from `length.bin`: the stored
/// vector alone has length 1, what `records` gives does not (the fixture's vectors are 2.5 ×
/// a vector of eight components in [-1, 1]).
#[test]
fn cosine_records_are_not_unit_vectors() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let id = collection(&v, "cosine-docs", "default_tenant")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let recs = jsonl_of(&["records", "--jsonl", "--collection", &id], &dir);
    assert!(recs.len() > 200, "{}", recs.len());
    let mut from_index = 0;
    for r in &recs {
        let e: Vec<f64> = r["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() > 1e-3, "{r}");
        from_index += (r["source"] == "index") as usize;
    }
    assert!(from_index > 100, "{from_index}");
}

/// The `scope` segment of collection `name` in the default tenant, and the collection's id.
fn segment_of(dir: &Path, name: &str, scope: &str) -> (String, String) {
    let v = json_of(&["info", "--json"], dir);
    let c = collection(&v, name, "default_tenant");
    let seg = c["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == scope)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (seg, c["id"].as_str().unwrap().to_string())
}

fn records_by_id(dir: &Path, collection: &str) -> BTreeMap<String, Value> {
    jsonl_of(&["records", "--jsonl", "--collection", collection], dir)
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect()
}

/// Positions raised above the WAL's top (Chroma handed seq_ids out again after a purge):
/// Chroma still loads the index, so `records` gives every vector the index holds, as before,
/// and the index truth is there; the collection keeps its whole WAL.
#[test]
fn a_position_above_the_top_still_reads_the_index() {
    for fixture in ["orphans_v0_6_3", "deletions_v1_5_9"] {
        let (_t, dir) = fixture_copy(fixture);
        let (_, coll) = segment_of(&dir, "cosine-docs", "VECTOR");
        let before = records_by_id(&dir, &coll);
        {
            let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
            // Both eras' encodings: 1.x an INTEGER, 0.6 an 8-byte big-endian BLOB.
            let top: i64 = c
                .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
                .unwrap();
            let raised = top + 1000;
            let blob = raised.to_be_bytes().to_vec();
            let int: bool = c
                .query_row(
                    "SELECT typeof(seq_id) = 'integer' FROM max_seq_id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let sql = "UPDATE max_seq_id SET seq_id = ?1 WHERE segment_id IN \
                       (SELECT id FROM segments WHERE collection = ?2)";
            if int {
                c.execute(sql, rusqlite::params![raised, coll]).unwrap();
            } else {
                c.execute(sql, rusqlite::params![blob, coll]).unwrap();
            }
        }
        let after = records_by_id(&dir, &coll);
        let mut same = 0;
        for (id, r) in &before {
            if r["source"] == "index" {
                assert_eq!(after[id]["embedding"], r["embedding"], "{fixture}/{id}");
                assert_eq!(after[id]["source"], "index", "{fixture}/{id}");
                same += 1;
            }
        }
        assert!(same > 100, "{fixture}: {same}");
        let deep = json_of(&["info", "--deep", "--json"], &dir);
        let c = collection(&deep, "cosine-docs", "default_tenant");
        assert_eq!(c["health"], "keeps_wal", "{fixture}: {c}");
        assert!(c["index_truth"]["in_index"].as_u64().unwrap() > 100, "{c}");
        assert_eq!(c["prunable_rows"], 0, "{fixture}");
    }
}

/// 1.5.9 rebuilt a collection whose folder was removed, from a WAL automatic purging had cut
/// to a tail, and has not persisted since: the folder holds files and no pickle. 1.5.9 loads
/// it by replaying the WAL from 0, so it is not damaged; the truth counts what that replay
/// reaches, the WAL stays whole, and `records` gives the replayed vectors.
#[test]
fn an_unpersisted_1x_index_replays_from_zero() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let (seg, coll) = segment_of(&dir, "big", "VECTOR");
    let (meta, _) = segment_of(&dir, "big", "METADATA");
    std::fs::remove_file(dir.join(&seg).join("index_metadata.pickle")).unwrap();
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let topic_rows = "SELECT seq_id FROM embeddings_queue WHERE substr(topic, -36) = ?1";
    let cut: i64 = c
        .query_row(
            &format!("SELECT seq_id FROM ({topic_rows}) ORDER BY seq_id LIMIT 1 OFFSET 200"),
            [&coll],
            |r| r.get(0),
        )
        .unwrap();
    // What automatic purging leaves: the tail.
    c.execute(
        "DELETE FROM embeddings_queue WHERE substr(topic, -36) = ?1 AND seq_id < ?2",
        rusqlite::params![coll, cut],
    )
    .unwrap();
    // The records some remaining add or upsert puts back (this collection's rows have
    // vectors, and its deletes come before the cut).
    let reached: u64 = c
        .query_row(
            "SELECT COUNT(DISTINCT embedding_id) FROM embeddings WHERE segment_id = ?1 \
             AND embedding_id IN (SELECT id FROM embeddings_queue WHERE substr(topic, -36) = ?2 \
             AND operation IN (0, 2))",
            rusqlite::params![meta, coll],
            |r| r.get(0),
        )
        .unwrap();
    // The records no row of the WAL holds a vector for: what a repair names.
    let nowhere: u64 = c
        .query_row(
            "SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1 AND embedding_id NOT IN \
             (SELECT id FROM embeddings_queue WHERE substr(topic, -36) = ?2 \
             AND operation IN (0, 1, 2) AND vector IS NOT NULL)",
            rusqlite::params![meta, coll],
            |r| r.get(0),
        )
        .unwrap();
    let records: u64 = c
        .query_row(
            "SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1",
            [&meta],
            |r| r.get(0),
        )
        .unwrap();
    drop(c);
    assert!(reached > 0 && reached < records, "{reached} of {records}");
    let deep = json_of(&["info", "--deep", "--json"], &dir);
    let big = collection(&deep, "big", "default_tenant");
    assert_eq!(big["health"], "keeps_wal", "{big}");
    let t = &big["index_truth"];
    assert_eq!(t["records"], records, "{t}");
    assert_eq!(t["in_index"], reached, "{t}");
    assert_eq!(t["missing"], records - reached, "{t}");
    assert_eq!(big["prunable_rows"], 0);
    let recs = records_by_id(&dir, &coll);
    let with_vector = recs.values().filter(|r| r["source"] == "wal").count() as u64;
    assert_eq!(with_vector, reached);
    assert!(recs.values().all(|r| r["source"] != "index"));
    // A repair names the records whose vector is nowhere, and writes nothing.
    let before = owned_state(&dir);
    let plan = json_of(
        &[
            "compact",
            "--collection",
            &coll,
            "--repair",
            "--dry-run",
            "--json",
        ],
        &dir,
    );
    let u = &plan["unrecoverable"][0];
    assert_eq!(u["collection"], "big", "{plan}");
    assert_eq!(u["count"], nowhere, "{plan}");
    // The others missing have their vector in an update row the replay skips: said, not
    // yet put back.
    assert!(nowhere < records - reached, "{nowhere} {records} {reached}");
    let more = format!("{} more record(s)", records - reached - nowhere);
    assert!(plan["notes"].to_string().contains(&more), "{plan}");
    assert!(!u["ids_sample"].as_array().unwrap().is_empty(), "{plan}");
    assert!(plan["indexes"].as_array().unwrap().is_empty(), "{plan}");
    assert_eq!(owned_state(&dir), before);
}

/// Set the deleted mark of the first `n` live elements of the index in `folder`.
fn mark_deleted(folder: &Path, n: usize) {
    let h = std::fs::read(folder.join("header.bin")).unwrap();
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    let (offset0, cur, size) = (u64_at(4), u64_at(20), u64_at(28));
    let p = folder.join("data_level0.bin");
    let mut d = std::fs::read(&p).unwrap();
    let mut done = 0;
    for i in 0..cur {
        let at = (i * size + offset0 + 2) as usize;
        if d[at] & 1 == 0 {
            d[at] |= 1;
            done += 1;
            if done == n {
                break;
            }
        }
    }
    assert_eq!(done, n);
    std::fs::write(&p, d).unwrap();
}

/// A writer killed mid-persist left ids of the pickle on elements marked deleted (the delete
/// reached the index files while SQLite rolled it back): get() raises for them. The index is
/// damaged, with the ids, and no prune removes a row of the collection: the WAL is what
/// brings them back.
#[test]
fn live_ids_on_deleted_elements_keep_the_wal() {
    for fixture in ["orphans_v0_6_3", "deletions_v1_5_9"] {
        let (_t, dir) = fixture_copy(fixture);
        let (seg, coll) = segment_of(&dir, "cosine-docs", "VECTOR");
        mark_deleted(&dir.join(&seg), 5);
        let deep = json_of(&["info", "--deep", "--json"], &dir);
        let c = collection(&deep, "cosine-docs", "default_tenant");
        assert_eq!(c["health"], "damaged", "{fixture}: {c}");
        let status = c["status"].as_str().unwrap();
        assert!(
            status.contains("5 ids of index_metadata.pickle ("),
            "{status}"
        );
        let before = topic_counts(&dir);
        let topic = c["topic"].as_str().unwrap().to_string();
        let out = bin()
            .args(["prune", "--all", "--yes", "--no-backup"])
            .arg(&dir)
            .assert()
            .success();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains("skipped cosine-docs"),
            "{fixture}: {stderr}"
        );
        assert_eq!(
            topic_counts(&dir).get(&topic),
            before.get(&topic),
            "{fixture}: rows of {coll} went"
        );
    }
}

/// The same state written by 1.5.9 itself (`unpersisted_v1_5_9`: the folder removed, the WAL
/// purged to a tail, fewer writes than the sync threshold since): not damaged, the WAL kept,
/// the truth's missing records are exactly those 1.5.9's own queries could not return, and a
/// repair names that many and writes nothing.
#[test]
fn the_unpersisted_state_1_5_9_wrote() {
    let (_t, dir) = fixture_copy("unpersisted_v1_5_9");
    let exp = expected("unpersisted_v1_5_9");
    let lost = exp["unreachable"]["rebuilt"].as_array().unwrap().len() as u64;
    assert!(lost > 0);
    let deep = json_of(&["info", "--deep", "--json"], &dir);
    let c = collection(&deep, "rebuilt", "default_tenant");
    assert_eq!(c["health"], "keeps_wal", "{c}");
    assert_eq!(c["prunable_rows"], 0, "{c}");
    assert_eq!(c["index_truth"]["missing"], lost, "{c}");
    let before = owned_state(&dir);
    let plan = json_of(
        &[
            "compact",
            "--collection",
            "rebuilt",
            "--repair",
            "--dry-run",
            "--json",
        ],
        &dir,
    );
    assert_eq!(plan["unrecoverable"][0]["collection"], "rebuilt", "{plan}");
    assert_eq!(plan["unrecoverable"][0]["count"], lost, "{plan}");
    // The records to re-embed are exactly those the release's own queries could not return.
    let ids: Vec<String> = jsonl_of(
        &[
            "records",
            "--collection",
            "rebuilt",
            "--unreachable",
            "--jsonl",
        ],
        &dir,
    )
    .iter()
    .map(|r| {
        assert!(r["document"].is_string() && r["embedding"].is_null(), "{r}");
        r["id"].as_str().unwrap().to_string()
    })
    .collect();
    let mut want: Vec<String> = exp["unreachable"]["rebuilt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want);
    let two = jsonl_of(
        &[
            "records",
            "--collection",
            "rebuilt",
            "--unreachable",
            "--jsonl",
            "--limit",
            "2",
        ],
        &dir,
    );
    assert_eq!(two.len(), 2);
    assert_eq!(owned_state(&dir), before);
}

/// Two processes on one dir (MemPalace 1222): one added records, the other persisted its stale
/// view of the index over them, and purging took the adds' WAL rows. The metadata segment then
/// holds records no index holds and no WAL row brings. Plain `info` (no `--deep`) must not
/// call it ok, and no prune takes its rows.
#[test]
fn plain_info_sees_records_no_index_holds() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let (_, coll) = segment_of(&dir, "cosine-docs", "VECTOR");
    let (meta, _) = segment_of(&dir, "cosine-docs", "METADATA");
    let before = json_of(&["info", "--json"], &dir);
    assert_eq!(
        collection(&before, "cosine-docs", "default_tenant")["health"],
        "ok"
    );
    {
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        let top: i64 = c
            .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
            .unwrap();
        for k in 0..300 {
            c.execute(
                "INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?1, ?2, ?3)",
                rusqlite::params![meta, format!("other-writer-{k}"), top],
            )
            .unwrap();
        }
    }
    let v = json_of(&["info", "--json"], &dir);
    let c = collection(&v, "cosine-docs", "default_tenant");
    assert_eq!(c["health"], "damaged", "{c}");
    assert!(
        c["status"]
            .as_str()
            .unwrap()
            .contains("in no index Chroma can load"),
        "{c}"
    );
    assert_eq!(c["prunable_rows"], 0, "{c}");
    let counts = topic_counts(&dir);
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    let topic = c["topic"].as_str().unwrap();
    assert_eq!(topic_counts(&dir).get(topic), counts.get(topic), "{coll}");
}
