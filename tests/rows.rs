//! `chroma-wal rows` against an independent reading of each fixture with SQLite: the same
//! rows, in ascending seq_id, decoded the same way, prunable and held apart exactly as the
//! generator's facts say.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn rows_jsonl(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["rows", "--jsonl"];
    args.extend_from_slice(extra);
    jsonl_of(&args, dir)
}

/// What the test itself reads: (seq_id, operation, id, metadata text, vector bytes).
type Raw = (i64, i64, String, Option<String>, Option<i64>);

fn raw_rows(dir: &Path, topic: &str) -> Vec<Raw> {
    let c = ro(dir);
    let mut st = c
        .prepare(
            "SELECT seq_id, operation, id, metadata, length(vector) FROM embeddings_queue \
             WHERE topic = ?1 ORDER BY seq_id",
        )
        .unwrap();
    st.query_map([topic], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn check_row(got: &Value, want: &Raw, bound: Option<i64>, ctx: &str) {
    let (seq, op, id, meta, vbytes) = want;
    assert_eq!(got["seq_id"], *seq, "{ctx}");
    let op_name = ["add", "update", "upsert", "delete"][*op as usize];
    assert_eq!(got["operation"], op_name, "{ctx} {seq}");
    assert_eq!(got["id"], id.as_str(), "{ctx} {seq}");
    assert_eq!(
        got["vector_dim"],
        vbytes.map(|b| b / 4).map_or(Value::Null, |d| d.into())
    );
    let (doc, rest) = match meta {
        None => (Value::Null, Value::Null),
        Some(m) => {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(m).unwrap();
            let doc = v.remove("chroma:document").unwrap_or(Value::Null);
            (
                doc,
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::Object(v)
                },
            )
        }
    };
    assert_eq!(got["document"], doc, "{ctx} {seq}");
    assert_eq!(got["metadata"], rest, "{ctx} {seq}");
    let state = match bound {
        Some(b) if *seq < b => "prunable",
        _ => "held",
    };
    assert_eq!(got["state"], state, "{ctx} {seq}");
}

#[test]
fn every_eras_rows_match_sqlite_held_and_prunable_apart() {
    let mut ops_seen = std::collections::BTreeSet::new();
    let mut deletes_without_vector = 0;
    for name in FIXTURES {
        let dir = fixture_path(name);
        let exp = expected(name);
        for ec in exp["collections"].as_array().unwrap() {
            if ec["tenant"] != "default_tenant" {
                continue;
            }
            let id = ec["id"].as_str().unwrap();
            let bound = ec["expected_prune_bound"].as_i64();
            let topics = ec["wal_topics"].as_array().unwrap();
            let Some(topic) = topics.first().and_then(|t| t.as_str()) else {
                continue;
            };
            let want = raw_rows(&dir, topic);
            let all = rows_jsonl(&dir, &["--collection", id]);
            let ctx = format!("{name} {}", ec["name"]);
            assert_eq!(all.len(), want.len(), "{ctx}");
            for (g, w) in all.iter().zip(&want) {
                check_row(g, w, bound, &ctx);
                ops_seen.insert(w.1);
                if w.1 == 3 && w.4.is_none() {
                    deletes_without_vector += 1;
                }
            }
            let prunable = rows_jsonl(&dir, &["--collection", id, "--prunable"]);
            let held = rows_jsonl(&dir, &["--collection", id, "--held"]);
            assert_eq!(
                prunable.len() as i64,
                ec["expected_prunable_rows"].as_i64().unwrap(),
                "{ctx}"
            );
            assert_eq!(prunable.len() + held.len(), want.len(), "{ctx}");
            assert!(prunable.iter().all(|r| r["state"] == "prunable"));
            assert!(held.iter().all(|r| r["state"] == "held"));
            let limited = rows_jsonl(&dir, &["--collection", id, "--limit", "3"]);
            assert_eq!(limited.len(), want.len().min(3), "{ctx}");
        }
    }
    assert_eq!(
        ops_seen.len(),
        4,
        "all four operations covered: {ops_seen:?}"
    );
    assert!(deletes_without_vector > 0);
}

#[test]
fn an_orphan_topic_is_all_prunable_and_malformed_rows_are_shown_then_exit_1() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let orphan = "persistent://default/default/00000000-0000-4000-8000-0000000000ff";
    {
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        let top: i64 = c
            .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
            .unwrap();
        // Live collections keep their rows at their bounds, so the seq_id guard keeps
        // nothing of the orphan topic above them.
        type Orphan<'a> = (i64, Option<&'a [u8]>, &'a str);
        let rows: [Orphan; 3] = [
            (
                1,
                Some(&[0u8; 16][..]),
                r#"{"chroma:document": "fine", "k": 1}"#,
            ),
            (
                2,
                Some(&[0u8; 7][..]),
                r#"{"chroma:document": "odd vector"}"#,
            ),
            (3, None, "not json at all"),
        ];
        for (seq, v, m) in rows {
            c.execute(
                "INSERT OR REPLACE INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) \
                 VALUES (?1, 0, ?2, 'o', ?3, 'FLOAT32', ?4)",
                rusqlite::params![top + 100_000 + seq, orphan, v, m],
            )
            .unwrap();
        }
    }
    let out = bin()
        .args(["rows", "--jsonl", "--topic", orphan])
        .arg(&dir)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows.iter().all(|r| r["state"] == "orphan"));
    assert_eq!(rows[0]["vector_dim"], 4);
    assert!(rows[0].get("malformed").is_none());
    assert!(rows[1]["malformed"][0]
        .as_str()
        .unwrap()
        .contains("not a whole number of float32"));
    assert!(rows[2]["malformed"][0]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    assert!(
        stderr.contains("2 of the rows shown are malformed"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The table shows them as such too.
    let out = bin()
        .args(["rows", "--topic", orphan])
        .arg(&dir)
        .assert()
        .code(1);
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(table.contains("MALFORMED"), "{table}");
}

#[test]
fn bad_selections_are_usage_errors() {
    let dir = fixture_path("v0_5_5");
    bin()
        .args(["rows", "--collection", "no-such"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no collection named"));
    bin()
        .args(["rows", "--topic", "nope"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no WAL rows have topic"));
    bin().args(["rows"]).arg(&dir).assert().code(2);
    bin()
        .args(["rows", "--collection", "x", "--held", "--prunable"])
        .arg(&dir)
        .assert()
        .code(2);
}

#[test]
fn searching_by_id_walks_a_sparse_topic_in_ranges_and_finds_every_match() {
    use chroma_wal::chroma::rows::{find_id, TopicView};
    use chroma_wal::chroma::{db, Snapshot};
    // One id written again far above the rest (gaps of a million seq_ids, more than one
    // statement's range): every match comes back, oldest first, up to the cap.
    let (_t, dir) = fixture_copy("v0_4_22");
    let snap = Snapshot::open(&dir).unwrap();
    let papers = &snap.collections[snap.find_collection("papers").unwrap()];
    let topic = papers.default_topic();
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let top: i64 = c
        .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    let id: String = c
        .query_row(
            "SELECT id FROM embeddings_queue WHERE topic = ?1 ORDER BY seq_id LIMIT 1",
            [&topic],
            |r| r.get(0),
        )
        .unwrap();
    // ... and once at the lowest seq_id there is (a hostile file's), which no range is above.
    let mut far: Vec<i64> = (1..=3).map(|k| top + k * 1_000_000).collect();
    far.push(i64::MIN);
    for s in &far {
        c.execute(
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) \
             SELECT ?1, operation, topic, id, vector, encoding, metadata FROM embeddings_queue \
             WHERE topic = ?2 AND id = ?3 ORDER BY seq_id LIMIT 1",
            rusqlite::params![s, topic, id],
        )
        .unwrap();
    }
    drop(c);
    let mut want: Vec<i64> = {
        let c = ro(&dir);
        let mut st = c
            .prepare(
                "SELECT seq_id FROM embeddings_queue WHERE topic = ?1 AND id = ?2 ORDER BY seq_id",
            )
            .unwrap();
        st.query_map([&topic, &id], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert!(want.len() >= 5 && want[0] == i64::MIN, "{want:?}");
    let snap = Snapshot::open(&dir).unwrap();
    let conn = db::open_read_only(&snap.sqlite_path).unwrap();
    let view = TopicView::of(&snap, &conn, std::slice::from_ref(&topic)).unwrap();
    assert_eq!(find_id(&conn, &view, &id, 100).unwrap(), want);
    want.truncate(2);
    assert_eq!(find_id(&conn, &view, &id, 2).unwrap(), want);
    assert!(find_id(&conn, &view, "no such id", 100).unwrap().is_empty());
}
