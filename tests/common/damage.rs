//! Damage made from a real fixture, and what must hold of it: the damaged collection keeps
//! every WAL row through `prune --all`, and a healthy collection in the same dir still prunes
//! exactly.

use std::path::Path;

use serde_json::Value;

use super::*;

fn info(dir: &Path) -> Value {
    json_of(&["info", "--json"], dir)
}

/// The persisted vector segment of `big` in the default tenant.
pub fn big_vector(v: &Value) -> String {
    vector_dir(v, "big")
}

pub fn topic_of(v: &Value, name: &str, tenant: &str) -> String {
    collection(v, name, tenant)["topic"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Damage `big` with `damage(dir, segment)`, then: big is damaged with a reason containing
/// `says`, keeps every row through `prune --all`, and papers prunes exactly.
pub fn check(fixture: &str, what: &str, says: &str, damage: &dyn Fn(&Path, &str)) {
    check_as(fixture, what, says, "damaged", damage)
}

/// [`check`] for a state Chroma still loads whose index lives in the WAL (`keeps_wal`): not
/// damaged, and every row kept all the same.
#[allow(dead_code)]
pub fn check_held(fixture: &str, what: &str, says: &str, damage: &dyn Fn(&Path, &str)) {
    check_as(fixture, what, says, "keeps_wal", damage)
}

fn check_as(fixture: &str, what: &str, says: &str, health: &str, damage: &dyn Fn(&Path, &str)) {
    let (_t, dir) = fixture_copy(fixture);
    let v = info(&dir);
    let seg = big_vector(&v);
    let big_topic = topic_of(&v, "big", "default_tenant");
    let papers_topic = topic_of(&v, "papers", "acme");
    damage(&dir, &seg);
    let v = info(&dir);
    let big = collection(&v, "big", "default_tenant");
    assert_eq!(big["health"], health, "{fixture} {what}: {big}");
    assert_eq!(big["prunable_rows"], 0, "{fixture} {what}");
    assert_eq!(big["prune_bound"], Value::Null, "{fixture} {what}");
    let status = big["status"].as_str().unwrap();
    assert!(status.contains(says), "{fixture} {what}: {status}");
    assert!(
        big["recovery"].as_str().is_some_and(|r| !r.is_empty()) || health != "damaged",
        "{fixture} {what}: no recovery advice"
    );
    let before = topic_counts(&dir);
    let out = bin()
        .args(["prune", "--all", "--yes", "--no-backup", "--json"])
        .arg(&dir)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("note: skipped big"),
        "{fixture} {what}: {stderr}"
    );
    let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(
        r["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("skipped big")),
        "{fixture} {what}: {r}"
    );
    let after = topic_counts(&dir);
    assert_eq!(
        after.get(&big_topic),
        before.get(&big_topic),
        "{fixture} {what}: the damaged collection lost WAL rows"
    );
    let exp = expected_collection(fixture, "papers");
    let m = exp["expected_prune_bound"].as_i64().unwrap();
    let gone = exp["expected_prunable_rows"].as_i64().unwrap();
    let (n0, _, _) = before[&papers_topic];
    let (n1, lo, _) = after[&papers_topic];
    assert_eq!(
        n1,
        n0 - gone,
        "{fixture} {what}: papers did not prune exactly"
    );
    assert!(lo >= m, "{fixture} {what}");
}

/// Cut a file to `len` bytes.
pub fn cut(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}
