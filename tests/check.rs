//! `chroma-wal check`: exit 0 where every index loads as its release loads it, 4 with which
//! collection is damaged, why, and what `compact --repair` would bring back.

mod common;

use common::*;
use serde_json::Value;

fn check_json(dir: &std::path::Path) -> (i32, Value) {
    let out = bin().args(["check", "--json"]).arg(dir).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), v)
}

#[test]
fn every_fixture_is_ok_and_nothing_changes() {
    for name in all_fixtures() {
        let (_t, dir) = fixture_copy(name);
        let before = owned_state(&dir);
        let (code, v) = check_json(&dir);
        if name.starts_with("rebuilt_") {
            // The release rebuilt the index from what it replayed: its files load, and its
            // own get() fails for the records it lost ("Error finding id", IndexError). A
            // repair puts back what the WAL holds and names the rest.
            assert_eq!(code, 4, "{name}: {v}");
            let d = &v["damaged"][0];
            assert_eq!(d["collection"], "rebuilt", "{name}: {v}");
            let lost = expected(name)["unreachable"]["rebuilt"]
                .as_array()
                .unwrap()
                .len() as u64;
            let r = &d["repair"];
            assert_eq!(
                r["restored"].as_u64().unwrap() + r["unrecoverable"].as_u64().unwrap(),
                lost,
                "{name}: {d}"
            );
        } else {
            assert_eq!(code, 0, "{name}: {v}");
            assert_eq!(v["ok"], true, "{name}");
            assert_eq!(v["damaged"], serde_json::json!([]), "{name}");
        }
        assert_eq!(owned_state(&dir), before, "{name}: check changed the dir");
    }
}

#[test]
fn a_cut_link_list_is_4_with_the_repair() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let seg = vector_dir(&v, "churn");
    let ll = dir.join(&seg).join("link_lists.bin");
    let len = std::fs::metadata(&ll).unwrap().len();
    damage::cut(&ll, len / 2);
    let (code, v) = check_json(&dir);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["ok"], false);
    let d = &v["damaged"][0];
    assert_eq!(d["collection"], "churn");
    assert_eq!(d["segment"], seg.as_str());
    assert!(
        d["reason"].as_str().unwrap().contains("link_lists.bin"),
        "{d}"
    );
    assert_eq!(d["repair"]["rebuilds"], true, "{d}");
    assert_eq!(v["damaged"].as_array().unwrap().len(), 1, "{v}");
    // The text says the command to run, and the exit code is the same.
    let out = bin().arg("check").arg(&dir).assert().code(4);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("--repair rebuilds it"), "{text}");
}

#[test]
fn records_no_index_holds_are_4_and_counted_unrecoverable() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let meta = segment_id(&v, "steady", "METADATA");
    {
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        for k in 0..40 {
            c.execute(
                "INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?1, ?2, 1)",
                rusqlite::params![meta, format!("elsewhere-{k}")],
            )
            .unwrap();
        }
    }
    let (code, v) = check_json(&dir);
    assert_eq!(code, 4, "{v}");
    let d = &v["damaged"][0];
    assert_eq!(d["collection"], "steady", "{v}");
    assert_eq!(d["repair"]["unrecoverable"], 40, "{d}");
}

#[test]
fn not_a_persist_dir_is_an_error_not_a_verdict() {
    let t = tempfile::tempdir().unwrap();
    bin().arg("check").arg(t.path()).assert().code(1);
}
