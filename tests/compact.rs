//! `compact`: indexes rebuilt without their ghosts, records put back with `--repair`, on
//! copies of the fixtures the releases wrote. (The releases reopening the results is the
//! round trip's part: tests/roundtrip/compact.sh.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chroma_wal::index::pickle as rewrite;
use common::*;
use serde_json::Value;

/// Every file of the dir but the backups (relative path → FNV hash of its bytes).
fn files(dir: &Path) -> BTreeMap<String, u64> {
    files_below(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                fnv(&std::fs::read(&p).unwrap()),
            )
        })
        .collect()
}

fn compact(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["compact", "--yes", "--json"];
    args.extend_from_slice(extra);
    json_of(&args, dir)
}

fn truth_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    &v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["index_truth"]
}

#[test]
fn every_pickle_a_python_release_wrote_is_written_back_byte_for_byte() {
    let mut checked = 0;
    for f in all_fixtures() {
        for p in files_below(&fixture_path(f)) {
            if p.file_name().is_some_and(|n| n == "index_metadata.pickle") {
                let b = std::fs::read(&p).unwrap();
                let s = rewrite::decode(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                if s.shape == chroma_wal::chroma::pickle::Shape::PersistentData {
                    assert_eq!(rewrite::encode(&s).unwrap(), b, "{}", p.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} Python pickles among the fixtures"
    );
}

#[test]
fn ghosts_go_labels_and_vectors_stay_and_restore_puts_the_folder_back() {
    let (t, dir) = fixture_copy("deletions_v1_5_9");
    let before_files = files(&dir);
    let before = json_of(&["info", "--deep", "--json"], &dir);
    let ghosts = truth_of(&before, "churn")["ghosts_on_disk"]
        .as_u64()
        .unwrap();
    assert!(ghosts > 0);
    let records_before: Vec<Value> =
        jsonl_of(&["records", "--collection", "churn", "--jsonl"], &dir);
    let backups = t.path().join("backups");
    let r = compact(
        &dir,
        &[
            "--collection",
            "churn",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    assert_eq!(r["dry_run"], false);
    let ix = &r["indexes"].as_array().unwrap()[0];
    assert_eq!(ix["collection"], "churn");
    assert_eq!(ix["ghosts_removed"].as_u64(), Some(ghosts));
    assert_eq!(
        ix["elements_after"].as_u64().unwrap() + ghosts,
        ix["elements_before"].as_u64().unwrap()
    );
    assert!(ix["bytes_after"].as_u64() < ix["bytes_before"].as_u64());
    // The truth after: no ghost, no record missing, and get()'s records unchanged (ids,
    // documents, metadata, vectors bit for bit).
    let after = json_of(&["info", "--deep", "--json"], &dir);
    assert_eq!(truth_of(&after, "churn")["ghosts_on_disk"], 0);
    assert_eq!(truth_of(&after, "churn")["missing"], 0);
    let records_after: Vec<Value> =
        jsonl_of(&["records", "--collection", "churn", "--jsonl"], &dir);
    assert_eq!(records_before, records_after);
    // Everything but the rebuilt index files is as it was, the pickle included.
    let seg = ix["segment"].as_str().unwrap();
    let now = files(&dir);
    for (k, v) in &before_files {
        if !k.starts_with(seg) || k.ends_with("index_metadata.pickle") {
            assert_eq!(now.get(k), Some(v), "{k} changed");
        }
    }
    // Restore: the old folder back byte for byte.
    bin()
        .args(["restore", "--yes", "--from"])
        .arg(r["backup_dir"].as_str().unwrap())
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(files(&dir), before_files);
}

#[test]
fn a_dry_run_writes_nothing_and_says_what_the_run_would() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let before = files(&dir);
    let mtimes: Vec<_> = files_below(&dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let plan = json_of(&["compact", "--all", "--dry-run", "--json"], &dir);
    assert_eq!(plan["dry_run"], true);
    for k in [
        "persist_dir",
        "indexes",
        "unrecoverable",
        "backup_dir",
        "notes",
        "fs_free_before",
        "fs_free_after",
    ] {
        assert!(plan.get(k).is_some(), "{k} missing: {plan}");
    }
    let ix = &plan["indexes"][0];
    for k in [
        "collection",
        "collection_id",
        "segment",
        "elements_before",
        "elements_after",
        "ghosts_removed",
        "restored",
        "bytes_before",
        "bytes_after",
        "seconds",
    ] {
        assert!(ix.get(k).is_some(), "{k} missing: {ix}");
    }
    assert_eq!(files(&dir), before);
    let after: Vec<_> = files_below(&dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(mtimes, after);
    let run = compact(&dir, &["--all", "--no-backup"]);
    assert_eq!(run["indexes"][0]["ghosts_removed"], ix["ghosts_removed"]);
    assert_eq!(run["indexes"][0]["elements_after"], ix["elements_after"]);
}

#[test]
fn repair_puts_back_what_the_wal_holds_and_names_what_it_does_not() {
    // 0.6.3 rebuilt its index from the rows above its max_seq_id row: the WAL holds the rest.
    let (_t, dir) = fixture_copy("rebuilt_v0_6_3");
    let missing = truth_of(&json_of(&["info", "--deep", "--json"], &dir), "rebuilt")["missing"]
        .as_u64()
        .unwrap();
    assert!(missing > 0);
    // Without --repair nothing is put back, and the plan says so.
    let plan = json_of(
        &["compact", "--collection", "rebuilt", "--dry-run", "--json"],
        &dir,
    );
    assert_eq!(plan["indexes"][0]["restored"], 0);
    assert!(plan["notes"].to_string().contains("--repair"), "{plan}");
    let r = compact(
        &dir,
        &["--collection", "rebuilt", "--repair", "--no-backup"],
    );
    assert_eq!(r["indexes"][0]["restored"].as_u64(), Some(missing));
    assert_eq!(r["unrecoverable"], serde_json::json!([]));
    let after = json_of(&["info", "--deep", "--json"], &dir);
    assert_eq!(truth_of(&after, "rebuilt")["missing"], 0);
    // Every record now comes with its vector from the index.
    let recs = jsonl_of(&["records", "--collection", "rebuilt", "--jsonl"], &dir);
    assert!(
        recs.iter().all(|r| !r["embedding"].is_null()),
        "a record has no vector"
    );

    // 1.5.9 rebuilt from a purged WAL: the vectors are nowhere; named, counted, not invented.
    let (_t2, dir2) = fixture_copy("rebuilt_v1_5_9");
    let missing2 = truth_of(&json_of(&["info", "--deep", "--json"], &dir2), "rebuilt")["missing"]
        .as_u64()
        .unwrap();
    let before = files(&dir2);
    let r2 = compact(
        &dir2,
        &["--collection", "rebuilt", "--repair", "--no-backup"],
    );
    let u = &r2["unrecoverable"][0];
    assert_eq!(u["collection"], "rebuilt");
    assert_eq!(u["count"].as_u64(), Some(missing2));
    assert!(!u["ids_sample"].as_array().unwrap().is_empty());
    // Nothing is invented: whatever the run rebuilt (ghosts the release left since), it put
    // back no record.
    for ix in r2["indexes"].as_array().unwrap() {
        assert_eq!(ix["restored"], 0, "{ix}");
    }
    let _ = before;
}

#[test]
fn a_damaged_index_is_left_alone_without_repair_and_rebuilt_with_it() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let seg = vector_dir(&v, "churn");
    let records_before = jsonl_of(&["records", "--collection", "churn", "--jsonl"], &dir);
    let ll = dir.join(&seg).join("link_lists.bin");
    let len = std::fs::metadata(&ll).unwrap().len();
    damage::cut(&ll, len / 2);
    let info = json_of(&["info", "--json"], &dir);
    let churn = info["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "churn")
        .unwrap();
    assert_eq!(churn["health"], "damaged");
    let plain = compact(&dir, &["--collection", "churn", "--no-backup"]);
    assert!(plain["indexes"].as_array().unwrap().is_empty(), "{plain}");
    assert!(plain["notes"].to_string().contains("--repair"), "{plain}");
    let r = compact(&dir, &["--collection", "churn", "--repair", "--no-backup"]);
    let ix = &r["indexes"][0];
    assert_eq!(ix["collection"], "churn");
    assert!(
        ix["recall_before"].is_null(),
        "the cut graph cannot be searched: {ix}"
    );
    let info = json_of(&["info", "--deep", "--json"], &dir);
    let churn = info["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "churn")
        .unwrap();
    assert_eq!(churn["health"], "ok");
    assert_eq!(churn["index_truth"]["ghosts_on_disk"], 0);
    let records_after = jsonl_of(&["records", "--collection", "churn", "--jsonl"], &dir);
    assert_eq!(records_before, records_after);
}

#[test]
fn refusals_and_usage_errors_have_their_exit_codes() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    let before = files(&dir);
    // An unknown collection: usage (2).
    bin()
        .args(["compact", "--collection", "nope", "--yes"])
        .arg(&dir)
        .assert()
        .code(2);
    // No terminal and no --yes: refused (3).
    bin().args(["compact", "--all"]).arg(&dir).assert().code(3);
    // A process holding the dir: refused (3), and it is named.
    let f = std::fs::File::open(dir.join("chroma.sqlite3")).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .stdin(f)
        .spawn()
        .unwrap();
    let a = bin()
        .args(["compact", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3);
    child.kill().ok();
    child.wait().ok();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("sleep"), "{err}");
    // Neither option and a selection: clap's usage error.
    bin().args(["compact"]).arg(&dir).assert().code(2);
    assert_eq!(files(&dir), before);
}

#[test]
fn ids_deleted_since_the_last_persist_leave_with_the_ghosts() {
    // 0.6.3 wrote this dir with deletes its index has not persisted: the pickle still names
    // those ids, and the WAL deletes them on the next load.
    let (_t, dir) = fixture_copy("v0_6_3");
    let before = json_of(&["info", "--deep", "--json"], &dir);
    let t0 = truth_of(&before, "papers");
    let (ghosts, on_disk) = (
        t0["ghosts"].as_u64().unwrap(),
        t0["ghosts_on_disk"].as_u64().unwrap(),
    );
    assert!(ghosts > on_disk, "the fixture has no pending delete: {t0}");
    let records = jsonl_of(&["records", "--collection", "papers", "--jsonl"], &dir);
    let r = compact(&dir, &["--collection", "papers", "--no-backup"]);
    assert_eq!(r["indexes"][0]["ghosts_removed"].as_u64(), Some(ghosts));
    let after = json_of(&["info", "--deep", "--json"], &dir);
    let t1 = truth_of(&after, "papers");
    assert_eq!(t1["ghosts"], 0, "{t1}");
    assert_eq!(t1["missing"], 0, "{t1}");
    assert_eq!(t1["stale_ids"], 0, "{t1}");
    assert_eq!(
        records,
        jsonl_of(&["records", "--collection", "papers", "--jsonl"], &dir)
    );
    // The pickle names one id fewer per pending delete, and is still what Python writes.
    let seg = r["indexes"][0]["segment"].as_str().unwrap();
    let p = std::fs::read(dir.join(seg).join("index_metadata.pickle")).unwrap();
    let facts = chroma_wal::chroma::pickle::validate_bytes(&p).unwrap();
    assert_eq!(
        facts.labels,
        Some(r["indexes"][0]["elements_after"].as_u64().unwrap())
    );
    let s = rewrite::decode(&p).unwrap();
    assert_eq!(rewrite::encode(&s).unwrap(), p);
}
