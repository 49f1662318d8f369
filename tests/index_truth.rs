//! The index truth (`info --deep`, `index_truth`) against what each release itself says:
//! the records its own API counts, the deleted marks the generator read with Python, and, for
//! the dirs whose index folder the release rebuilt, the records its own queries could not
//! return.

mod common;

use std::path::Path;

use common::{bin, expected, fixture_copy, json_of, owned_state};
use serde_json::Value;

fn deep(dir: &Path) -> Value {
    json_of(&["info", "--deep", "--json"], dir)
}

fn truth_of<'a>(info: &'a Value, id: &str) -> &'a Value {
    let c = info["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no collection {id}"));
    &c["index_truth"]
}

#[test]
fn every_fixture_agrees_with_its_release() {
    for name in common::all_fixtures() {
        let (_t, dir) = fixture_copy(name);
        let info = deep(&dir);
        let exp = expected(name);
        let unreachable = &exp["unreachable"];
        for api in exp["api"].as_array().unwrap() {
            let id = api["id"].as_str().unwrap();
            let cname = api["name"].as_str().unwrap();
            let t = truth_of(&info, id);
            assert!(t.is_object(), "{name}/{cname}: no index_truth: {t}");
            // What count() says.
            assert_eq!(t["records"], api["count"], "{name}/{cname}: {t}");
            // What the release's own queries could not return (the rebuilt dirs), else nothing.
            let lost: Vec<&str> = unreachable[cname]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            assert_eq!(t["missing"], lost.len(), "{name}/{cname}: {t}");
            let sample: Vec<&str> = lost.iter().take(10).copied().collect();
            assert_eq!(
                t["missing_sample"],
                serde_json::json!(sample),
                "{name}/{cname}"
            );
            assert_eq!(
                t["in_index"].as_u64().unwrap() + t["missing"].as_u64().unwrap(),
                t["records"].as_u64().unwrap()
            );
            // Ghosts, as the generator's own Python read counts them: elements marked deleted
            // or whose label names no record (`null` there: no pickle, nothing loaded).
            let c = exp["collections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap();
            let v = c["segments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["scope"] == "VECTOR")
                .unwrap();
            if let Some(ghosts) = v["index"]["ghosts"].as_u64() {
                assert_eq!(t["ghosts"], ghosts, "{name}/{cname}: {t}");
                assert_eq!(
                    t["ghost_bytes"].as_u64().unwrap(),
                    ghosts * 4 * c["dimension"].as_u64().unwrap(),
                    "{name}/{cname}"
                );
            }
            assert_eq!(t["stale_ids"], 0, "{name}/{cname}");
            assert!(
                ["lossless", "loses"].contains(&t["rebuild_from_wal"].as_str().unwrap()),
                "{name}/{cname}: {t}"
            );
        }
    }
}

#[test]
fn the_rebuild_verdict_follows_each_era() {
    // 1.5.9 with purging off keeps every row: a rebuild loses nothing.
    let (_t, dir) = fixture_copy("v1_5_9");
    let info = deep(&dir);
    for c in info["collections"].as_array().unwrap() {
        assert_eq!(c["index_truth"]["rebuild_from_wal"], "lossless", "{c}");
        assert_eq!(c["index_truth"]["rebuild_loses"], 0);
    }
    // 1.5.9 with purging on: the WAL's tail only.
    let (_t, dir) = fixture_copy("rebuilt_v1_5_9");
    let info = deep(&dir);
    let control = common::collection(&info, "control", "default_tenant");
    let t = &control["index_truth"];
    assert_eq!(t["rebuild_from_wal"], "loses", "{t}");
    assert!(t["rebuild_loses"].as_u64().unwrap() > 0);
    assert!(
        t["note"].as_str().unwrap().contains("automatic purging"),
        "{t}"
    );
    assert!(info["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with("collection control: ")));
    // 0.6.3 with a full WAL: the max_seq_id row the removal leaves skips the rows below it,
    // and removing the row as well would lose nothing.
    let (_t, dir) = fixture_copy("rebuilt_v0_6_3");
    let info = deep(&dir);
    let control = common::collection(&info, "control", "default_tenant");
    let t = &control["index_truth"];
    assert_eq!(t["rebuild_from_wal"], "loses", "{t}");
    let note = t["note"].as_str().unwrap();
    assert!(note.contains("max_seq_id row"), "{note}");
    assert!(note.contains("lose nothing"), "{note}");
}

#[test]
fn without_deep_there_is_no_truth_and_deep_changes_nothing() {
    for name in ["rebuilt_v0_6_3", "v0_4_22", "v1_5_9"] {
        let (_t, dir) = fixture_copy(name);
        let plain = json_of(&["info", "--json"], &dir);
        for c in plain["collections"].as_array().unwrap() {
            assert!(c["index_truth"].is_null(), "{c}");
        }
        let before = owned_state(&dir);
        let times = mtimes(&dir);
        deep(&dir);
        assert_eq!(owned_state(&dir), before, "{name}");
        assert_eq!(mtimes(&dir), times, "{name}");
    }
}

fn mtimes(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in common::files_below(dir) {
        let m = std::fs::metadata(&e).unwrap();
        out.push((e.display().to_string(), m.modified().unwrap()));
    }
    out.sort();
    out
}

/// The real user's state from the issue: `data_level0.bin` gone, automatic purging on, the
/// WAL only a tail. The advice must not send the user to a rebuild that loses records.
#[test]
fn a_damaged_index_is_unknown_and_its_advice_follows_the_verdict() {
    let (_t, dir) = fixture_copy("rebuilt_v1_5_9");
    let info = json_of(&["info", "--json"], &dir);
    let seg = common::vector_dir(&info, "control");
    std::fs::remove_file(dir.join(&seg).join("data_level0.bin")).unwrap();
    let info = deep(&dir);
    let c = common::collection(&info, "control", "default_tenant");
    assert_eq!(c["health"], "damaged", "{c}");
    let t = &c["index_truth"];
    assert!(t["in_index"].is_null(), "{t}");
    assert!(t["missing"].is_null() && t["ghosts"].is_null(), "{t}");
    assert_eq!(t["rebuild_from_wal"], "loses", "{t}");
    let recovery = c["recovery"].as_str().unwrap();
    assert!(
        recovery.starts_with("BEWARE: removing the folder"),
        "{recovery}"
    );
    assert!(recovery.contains(&format!(
        "lose the vectors of {} of 120 records",
        t["rebuild_loses"]
    )));
    // And the text output says it too.
    let out = bin().args(["info", "--deep"]).arg(&dir).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("BEWARE"), "{text}");
}

/// The sample is the first missing ids in id order, as the contract says.
#[test]
fn the_sample_names_the_first_missing_ids_in_order() {
    let (_t, dir) = fixture_copy("rebuilt_v0_6_3");
    let info = deep(&dir);
    let t = &common::collection(&info, "rebuilt", "default_tenant")["index_truth"];
    let sample: Vec<String> = t["missing_sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut sorted = sample.clone();
    sorted.sort();
    assert_eq!(sample, sorted);
    assert_eq!(sample.len(), 10);
}

/// A prune that takes away a lossless rebuild says so before it asks (and in a dry run);
/// with --yes no one is asked and the WAL is not read again for it.
#[test]
fn prune_says_which_rebuilds_it_makes_lossy() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let plan = json_of(&["prune", "--all", "--dry-run", "--json"], &dir);
    let notes: Vec<&str> = plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Said once for every collection it makes lossy, not once per collection.
    let said: Vec<&&str> = notes
        .iter()
        .filter(|n| n.starts_with("after this prune, the index folders become the only copy"))
        .collect();
    assert_eq!(said.len(), 1, "{notes:?}");
    assert!(
        said[0].contains("loses nothing today") && said[0].contains(" records in big"),
        "{notes:?}"
    );
    // The question on stderr carries it too (answered no: nothing changes).
    let before = owned_state(&dir);
    let out = bin()
        .args(["prune", "--all", "--no-backup"])
        .arg(&dir)
        .write_stdin("n\n")
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("and would then lose the vectors of"), "{err}");
    assert_eq!(owned_state(&dir), before);
}
