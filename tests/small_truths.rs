//! Places where chroma-wal said or did something not quite true (issue 26), each held here.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

fn rw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap()
}

#[test]
fn a_prune_with_nothing_to_delete_writes_nothing_unless_asked_to_compact() {
    let (_t, dir) = fixture_copy("v1_5_9");
    // Nothing left to prune, then some free pages inside the file.
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    rw(&dir)
        .execute_batch("CREATE TABLE scratch(x); INSERT INTO scratch SELECT zeroblob(40000); DROP TABLE scratch;")
        .unwrap();
    let file = dir.join("chroma.sqlite3");
    let before = std::fs::metadata(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let out = bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("nothing was written"), "{text}");
    assert!(text.contains("--compact"), "{text}");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(before.ino(), after.ino(), "the file was replaced");
    assert_eq!(before.mtime_nsec(), after.mtime_nsec());
    assert_eq!(bytes, std::fs::read(&file).unwrap());
    assert!(
        !std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .any(|e| e.unwrap().file_name() == "chroma-wal-backups"),
        "a backup was made of nothing"
    );
    // Asked for by name, the compaction runs and gives the pages back.
    bin()
        .args(["prune", "--all", "--yes", "--no-backup", "--compact"])
        .arg(&dir)
        .assert()
        .success();
    assert!(std::fs::metadata(&file).unwrap().len() < before.len());
}

#[test]
fn a_folder_that_is_not_an_index_is_not_counted_as_reclaimable_orphan_bytes() {
    let (_t, dir) = fixture_copy("orphans_v0_6_3");
    let plain = json_of(&["info", "--json", "--deep"], &dir);
    let decoy = "0badc0de-0000-4000-8000-00000000feed";
    std::fs::create_dir(dir.join(decoy)).unwrap();
    std::fs::write(dir.join(decoy).join("notes.txt"), vec![b'x'; 50_000]).unwrap();
    let v = json_of(&["info", "--json", "--deep"], &dir);
    let listed = v["orphan_segment_dirs"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|o| o["name"] == decoy && o["reclaimable"] == false),
        "the folder is not listed as a kept orphan: {listed:?}"
    );
    let (s0, s1) = (&plain["space"], &v["space"]);
    assert_eq!(s1["orphan_dirs_bytes"], s0["orphan_dirs_bytes"], "{s1}");
    assert!(
        s1["other_bytes"].as_u64().unwrap() >= s0["other_bytes"].as_u64().unwrap() + 50_000,
        "{s1}"
    );
}

#[test]
fn the_size_after_a_compaction_is_an_upper_bound_and_says_so() {
    for (dir, name) in [("assets/demo", "demo"), ("tests/fixtures/v1_5_9", "v1_5_9")] {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join(name);
        copy_tree(&root().join(dir), &d);
        let out = bin()
            .args(["prune", "--all", "--dry-run"])
            .arg(&d)
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains("at most"), "{name}: {text}");
        let plan = json_of(&["prune", "--all", "--dry-run", "--json"], &d);
        let estimate = plan["sqlite_bytes_after"].as_u64().unwrap();
        bin()
            .args(["prune", "--all", "--yes", "--no-backup"])
            .arg(&d)
            .assert()
            .success();
        let actual = std::fs::metadata(d.join("chroma.sqlite3")).unwrap().len();
        assert!(actual <= estimate, "{name}: {actual} > {estimate}");
    }
}

#[test]
fn compact_by_name_with_orphan_folders_does_both() {
    // v0_6_3 purges itself (nothing to delete) and has an orphan folder; the free pages its
    // purges leave are made here (its last writes reused them).
    let (_t, dir) = fixture_copy("v0_6_3");
    leave_free_pages(&dir);
    let v = json_of(&["info", "--json"], &dir);
    let orphans: Vec<String> = v["orphan_segment_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["reclaimable"] == true)
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!orphans.is_empty() && v["prunable_rows"] == 0, "{v}");
    let before = std::fs::metadata(dir.join("chroma.sqlite3")).unwrap().len();
    bin()
        .args([
            "prune",
            "--all",
            "--orphan-dirs",
            "--compact",
            "--yes",
            "--no-backup",
        ])
        .arg(&dir)
        .assert()
        .success();
    assert!(std::fs::metadata(dir.join("chroma.sqlite3")).unwrap().len() < before);
    for o in &orphans {
        assert!(!dir.join(o).exists(), "{o} was not reclaimed");
    }
}
