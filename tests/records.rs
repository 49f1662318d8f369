//! `records` against what each release's own `get()` returned for every record of its
//! fixtures (tests/fixtures/NAME.records.json, written by the generator on a copy, one id at
//! a time so a record without a vector cannot shift the others).

mod common;

use std::collections::BTreeMap;

use common::{bin, fixture_copy, owned_state};
use serde_json::Value;

fn release_records(name: &str) -> Value {
    let p = common::root()
        .join("tests/fixtures")
        .join(format!("{name}.records.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn ours(dir: &std::path::Path, collection: &str) -> Vec<Value> {
    common::jsonl_of(&["records", "--jsonl", "--collection", collection], dir)
}

#[test]
fn every_record_reads_as_its_release_returns_it() {
    let mut compared = 0;
    for name in common::all_fixtures() {
        let (_t, dir) = fixture_copy(name);
        let before = owned_state(&dir);
        let theirs = release_records(name);
        for (cid, recs) in theirs["collections"].as_object().unwrap() {
            let mine = ours(&dir, cid);
            let want: BTreeMap<&str, &Value> = recs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].as_str().unwrap(), r))
                .collect();
            assert_eq!(mine.len(), want.len(), "{name}/{cid}");
            for m in &mine {
                let id = m["id"].as_str().unwrap();
                let w = want
                    .get(id)
                    .unwrap_or_else(|| panic!("{name}/{cid}: {id} not in get()"));
                assert_eq!(m["document"], w["document"], "{name}/{cid}/{id}");
                // Value equality keeps int and float apart: the types must be Chroma's.
                assert_eq!(m["metadata"], w["metadata"], "{name}/{cid}/{id}");
                match (&m["embedding"], &w["embedding"]) {
                    (Value::Null, Value::Null) => assert!(m["source"].is_null(), "{m}"),
                    (Value::Array(a), Value::Array(b)) => {
                        assert_eq!(a.len(), b.len(), "{name}/{cid}/{id}");
                        for (x, y) in a.iter().zip(b) {
                            // Exactly as stored: the same float32, widened the same way.
                            assert_eq!(
                                x.as_f64().unwrap(),
                                y.as_f64().unwrap(),
                                "{name}/{cid}/{id}"
                            );
                        }
                        assert!(m["source"] == "index" || m["source"] == "wal", "{m}");
                    }
                    (a, b) => panic!("{name}/{cid}/{id}: ours {a}, the release's {b}"),
                }
                compared += 1;
            }
        }
        assert_eq!(owned_state(&dir), before, "{name}: records changed the dir");
    }
    assert!(compared > 2000, "{compared}");
}

/// Records whose vector no index holds come out with embedding and source null, in the same
/// count the index truth gives as missing; the rest of the record is still there.
#[test]
fn unreachable_records_have_no_vector_and_match_the_truth() {
    let (_t, dir) = fixture_copy("rebuilt_v1_5_9");
    let info = common::json_of(&["info", "--deep", "--json"], &dir);
    let c = common::collection(&info, "rebuilt", "default_tenant");
    let recs = ours(&dir, c["id"].as_str().unwrap());
    let none = recs.iter().filter(|r| r["source"].is_null()).count() as u64;
    assert_eq!(none, c["index_truth"]["missing"].as_u64().unwrap());
    assert!(recs
        .iter()
        .filter(|r| r["source"].is_null())
        .all(|r| r["embedding"].is_null() && r["document"].is_string()));
    let sources: std::collections::BTreeSet<&str> =
        recs.iter().filter_map(|r| r["source"].as_str()).collect();
    assert!(sources.contains("index"), "{sources:?}");
}

#[test]
fn text_limit_no_embeddings_and_an_unknown_collection() {
    let (_t, dir) = fixture_copy("v0_6_3");
    let out = bin()
        .args(["records", "--collection", "papers", "--limit", "3"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().next().unwrap().starts_with("id"), "{text}");
    assert!(text.contains("8 dims ["), "{text}");
    let out = bin()
        .args([
            "records",
            "--jsonl",
            "--no-embeddings",
            "--collection",
            "papers",
        ])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let first: Value = serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(first.get("embedding").is_none(), "{first}");
    assert_eq!(first["source"], "index");
    bin()
        .args(["records", "--collection", "no-such"])
        .arg(&dir)
        .assert()
        .code(2);
}
