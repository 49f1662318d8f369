//! Pruning copies of real fixtures through the CLI: exactly Chroma's rule, nothing else.

mod common;

use common::*;

#[test]
fn prune_all_deletes_exactly_the_expected_rows_and_nothing_chroma_owns() {
    for name in FIXTURES {
        let (_t, dir) = fixture_copy(name);
        let exp = expected(name);
        let owned_before = owned_state(&dir);
        let before = topic_counts(&dir);
        let report = prune_json(&dir, &[]);
        let after = topic_counts(&dir);
        let mut expected_total = 0;
        for ec in exp["collections"].as_array().unwrap() {
            let bound = ec["expected_prune_bound"].as_i64();
            for t in ec["wal_topics"].as_array().unwrap() {
                let t = t.as_str().unwrap();
                let (n0, _, _) = before[t];
                let kept = n0 - ec["expected_prunable_rows"].as_i64().unwrap();
                expected_total += ec["expected_prunable_rows"].as_i64().unwrap();
                match after.get(t) {
                    Some(&(n1, lo, _)) => {
                        assert_eq!(n1, kept, "{name} {t}");
                        if let Some(m) = bound {
                            assert!(lo >= m, "{name} {t}: row {lo} below bound {m} survived");
                        }
                    }
                    None => assert_eq!(kept, 0, "{name} {t}: all rows gone"),
                }
            }
        }
        assert_eq!(
            report["rows_deleted"].as_i64().unwrap(),
            expected_total,
            "{name}"
        );
        assert_eq!(
            owned_state(&dir),
            owned_before,
            "{name}: something Chroma owns changed"
        );
        // Nothing of ours is left in the persist dir.
        for e in std::fs::read_dir(&dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                n == "chroma.sqlite3" || n.len() == 36,
                "{name}: stray file {n} in the persist dir"
            );
        }
        // A second prune finds nothing more.
        let again = prune_json(&dir, &[]);
        assert_eq!(again["rows_deleted"], 0, "{name}");
        assert_eq!(topic_counts(&dir), after, "{name}");
    }
}

#[test]
fn pruning_one_collection_leaves_the_others_alone() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let papers = expected_collection("v1_5_9", "papers");
    let before = topic_counts(&dir);
    bin()
        .args(["prune", "--collection", "papers", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    let after = topic_counts(&dir);
    let pt = papers["wal_topics"][0].as_str().unwrap();
    for (t, v) in &before {
        if t == pt {
            assert_eq!(
                after[t].0,
                v.0 - papers["expected_prunable_rows"].as_i64().unwrap()
            );
        } else {
            assert_eq!(after[t], *v, "{t} changed");
        }
    }
}

#[test]
fn a_name_used_in_two_databases_must_be_given_by_id() {
    let (_t, dir) = fixture_copy("v0_4_22");
    bin()
        .args(["prune", "--collection", "big", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("give its id"));
}
