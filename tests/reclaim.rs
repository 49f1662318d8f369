//! Reclaiming the rest of the dir: orphan segment folders, the backup folder of each prune
//! with its manifest, `restore`, the space map and the free-space figures.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Every file under `dir` (relative path → FNV hash of its bytes).
fn files(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, fnv(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The one prune's backup folder in `backups`.
fn the_backup(backups: &Path) -> PathBuf {
    std::fs::read_dir(backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// `chroma-wal restore FLAGS --from FROM DIR`, ready to run.
fn restore_cmd(flags: &[&str], from: &Path, dir: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("restore")
        .args(flags)
        .arg("--from")
        .arg(from)
        .arg(dir);
    c
}

fn prune(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["prune", "--yes", "--json"];
    args.extend_from_slice(extra);
    json_of(&args, dir)
}

fn info(dir: &Path) -> Value {
    json_of(&["info", "--json"], dir)
}

fn orphan_names(v: &Value) -> Vec<String> {
    v["orphan_segment_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_folders_real_releases_leave_behind_are_moved_into_the_backup() {
    let mut seen = 0;
    for name in FIXTURES.iter().chain(["orphans_v0_6_3"].iter()) {
        let (t, dir) = fixture_copy(name);
        let orphans = orphan_names(&info(&dir));
        if orphans.is_empty() {
            continue;
        }
        seen += 1;
        let live_before: Vec<String> = files(&dir)
            .keys()
            .filter(|k| !orphans.iter().any(|o| k.starts_with(o.as_str())))
            .cloned()
            .collect();
        let backups = t.path().join("backups");
        let r = prune(
            &dir,
            &["--orphan-dirs", "--backup-dir", backups.to_str().unwrap()],
        );
        assert_eq!(
            r["rows_deleted"], 0,
            "{name}: --orphan-dirs alone touches no row"
        );
        let removed = r["orphan_dirs_removed"].as_array().unwrap();
        assert_eq!(removed.len(), orphans.len(), "{name}: {r}");
        for o in &orphans {
            assert!(!dir.join(o).exists(), "{name}: {o} still there");
            let moved = PathBuf::from(
                removed.iter().find(|x| x["name"] == o.as_str()).unwrap()["moved_to"]
                    .as_str()
                    .unwrap(),
            );
            assert!(
                moved.join("header.bin").exists(),
                "{name}: {}",
                moved.display()
            );
        }
        // Every live file is untouched.
        let after = files(&dir);
        for k in &live_before {
            assert!(
                after.contains_key(k) || k == "chroma.sqlite3",
                "{name}: {k} gone"
            );
        }
        // The manifest says what was moved; info lists the backup.
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(
                PathBuf::from(r["backup_dir"].as_str().unwrap()).join("manifest.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["dirs"].as_array().unwrap().len(), orphans.len());
        assert_eq!(manifest["method"], "none");
    }
    assert!(
        seen >= 2,
        "the 0.6.3-era and 1.5.9 fixtures each leave a folder behind"
    );
}

#[test]
fn a_live_folder_is_never_moved_even_when_a_collection_id_equals_its_name() {
    let (_t, dir) = fixture_copy("v1_5_9");
    // The collection `empty` takes the id of a live vector segment of `big`: a cleanup that
    // compared folder names with collection ids would now see that folder as `empty`'s.
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    // Chroma's segments table names a `collection` table that does not exist.
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let seg: String = c
        .query_row(
            "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection \
             WHERE c.name = 'big' AND s.scope = 'VECTOR' ORDER BY s.id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let empty: String = c
        .query_row("SELECT id FROM collections WHERE name = 'empty'", [], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute(
        "UPDATE segments SET collection = ?1 WHERE collection = ?2",
        [&seg, &empty],
    )
    .unwrap();
    c.execute(
        "UPDATE collections SET id = ?1 WHERE id = ?2",
        [&seg, &empty],
    )
    .unwrap();
    drop(c);
    assert!(dir.join(&seg).is_dir());
    let r = prune(&dir, &["--orphan-dirs", "--no-backup"]);
    assert!(dir.join(&seg).join("header.bin").exists(), "{r}");
    assert!(r["orphan_dirs_removed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != seg.as_str()));
}

#[test]
fn a_decoy_folder_with_other_files_is_left_alone_and_reported() {
    let (_t, dir) = fixture_copy("v0_6_3");
    let decoy = "0badc0de-0000-4000-8000-00000000feed";
    std::fs::create_dir(dir.join(decoy)).unwrap();
    std::fs::write(dir.join(decoy).join("header.bin"), [0u8; 100]).unwrap();
    std::fs::write(dir.join(decoy).join("notes.txt"), b"my notes").unwrap();
    let v = info(&dir);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(decoy)
                && w.as_str().unwrap().contains("notes.txt")),
        "{v}"
    );
    let r = prune(&dir, &["--orphan-dirs", "--no-backup"]);
    assert!(dir.join(decoy).join("notes.txt").exists());
    assert!(r["orphan_dirs_removed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != decoy));
}

#[test]
fn restore_after_each_kind_of_prune_is_byte_identical() {
    for (fixture, extra) in [
        ("v1_5_9", &["--all"][..]),
        ("v1_5_9", &["--all", "--in-place"][..]),
        ("v1_5_9", &["--all", "--orphan-dirs"][..]),
        ("v0_4_22", &["--all", "--no-vacuum"][..]),
        (
            "upgraded_0_4_22_to_0_6_3",
            &["--all", "--orphan-dirs", "--in-place"][..],
        ),
    ] {
        let (t, dir) = fixture_copy(fixture);
        let before = files(&dir);
        let backups = t.path().join("backups");
        let mut args = extra.to_vec();
        args.extend(["--backup-dir", backups.to_str().unwrap()]);
        let r = prune(&dir, &args);
        assert_ne!(
            files(&dir),
            before,
            "{fixture} {extra:?}: the prune changed nothing"
        );
        // The backup folder holds the file, and info lists it with its size on disk.
        let out = restore_cmd(&["--yes", "--json"], &backups, &dir)
            .assert()
            .success();
        let done: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(done["sqlite_restored"], true, "{fixture} {extra:?}");
        assert_eq!(
            files(&dir),
            before,
            "{fixture} {extra:?}: the restored dir differs ({r})"
        );
    }
}

#[test]
fn restore_refuses_a_holder_and_another_dirs_backup() {
    let (t, dir) = fixture_copy("v0_5_5");
    let backups = t.path().join("backups");
    prune(&dir, &["--all", "--backup-dir", backups.to_str().unwrap()]);
    let f = std::fs::File::open(dir.join("chroma.sqlite3")).unwrap();
    let mut child = Command::new("sleep").arg("30").stdin(f).spawn().unwrap();
    let pruned = files(&dir);
    restore_cmd(&["--yes"], &backups, &dir)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("stop Chroma first"));
    child.kill().ok();
    child.wait().ok();
    assert_eq!(files(&dir), pruned, "a refused restore changed something");
    let (_t2, other) = fixture_copy("v0_5_5");
    let folder = the_backup(&backups);
    restore_cmd(&["--yes"], &folder, &other)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is a backup of"));
    // Without --yes and without a terminal it asks no one and refuses.
    restore_cmd(&[], &backups, &dir)
        .write_stdin("")
        .assert()
        .code(3);
}

#[test]
fn kills_during_a_restore_leave_the_pruned_or_the_restored_dir() {
    // A file large enough for the copy to take a while: the 1.5.9 fixture with 100k rows.
    let (t, dir) = fixture_copy("v1_5_9");
    {
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        c.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector) \
             SELECT 100000 + i, 0, 'persistent://default/default/00000000-0000-4000-8000-000000000001', 'x', randomblob(1024) FROM n",
        )
        .unwrap();
    }
    let original = files(&dir);
    let backups = t.path().join("backups");
    prune(
        &dir,
        &[
            "--all",
            "--orphan-dirs",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    let pruned = files(&dir);
    let pruned_db = t.path().join("pruned.sqlite3");
    std::fs::copy(dir.join("chroma.sqlite3"), &pruned_db).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    // The test puts the pruned file back by copying it, which a restore cannot tell from a
    // write by Chroma: hence --force (the replaced copies are kept in the backup folder).
    for delay_ms in [0u64, 5, 20, 60, 150, 400] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chroma-wal"))
            .args(["restore", "--yes", "--force", "--from"])
            .arg(&backups)
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        let _ = std::fs::remove_file(dir.join("chroma.sqlite3.chroma-wal-restore"));
        // What Chroma reads: the file, and the live segments' folders.
        let now = files(&dir);
        let db = now.get("chroma.sqlite3");
        let state = if db == original.get("chroma.sqlite3") {
            "restored"
        } else if db == pruned.get("chroma.sqlite3") {
            "pruned"
        } else {
            panic!("kill after {delay_ms} ms: chroma.sqlite3 is neither pruned nor restored")
        };
        for (k, v) in &now {
            if k != "chroma.sqlite3" {
                assert_eq!(
                    original.get(k),
                    Some(v),
                    "kill after {delay_ms} ms: {k} is neither"
                );
            }
        }
        seen.insert(state);
        // Back to the pruned state for the next round.
        if state == "restored" {
            std::fs::copy(&pruned_db, dir.join("chroma.sqlite3")).unwrap();
        }
    }
    // Whatever the kills left, a full restore ends byte-identical.
    restore_cmd(&["--yes", "--force"], &backups, &dir)
        .assert()
        .success();
    assert_eq!(files(&dir), original);
    eprintln!("restore kill outcomes: {seen:?}");
    assert!(seen.contains("pruned"), "{seen:?}");
}

#[test]
fn the_space_map_matches_dbstat() {
    for name in ["v0_4_22", "v1_5_9"] {
        let dir = fixture_path(name);
        let out = bin()
            .args(["info", "--json", "--deep"])
            .arg(&dir)
            .assert()
            .success();
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let ours: BTreeMap<String, u64> = v["space"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        let c = ro(&dir);
        let mut st = c
            .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            .unwrap();
        let theirs: BTreeMap<String, u64> = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(ours, theirs, "{name}");
        let s = &v["space"];
        let total = s["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["bytes"].as_u64().unwrap())
            .sum::<u64>()
            + s["free_bytes"].as_u64().unwrap();
        assert_eq!(
            total,
            v["sqlite_bytes"].as_u64().unwrap(),
            "{name}: pages + free = file"
        );
        assert_eq!(
            s["orphan_dirs_bytes"].as_u64().unwrap(),
            v["orphan_segment_dirs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["reclaimable"] == true)
                .map(|o| o["bytes"].as_u64().unwrap())
                .sum::<u64>()
        );
    }
    // Without --deep there is no map.
    assert_eq!(info(&fixture_path("v0_5_5"))["space"], Value::Null);
}

fn statvfs_free(p: &Path) -> u64 {
    chroma_wal::chroma::fsinfo::free_space(p).unwrap().0
}

#[test]
fn free_space_before_and_after_match_statvfs() {
    // On a tmpfs of its own, nothing else changes the free space between our statvfs calls
    // and the prune's own.
    let Some(fs) = Tmpfs::new(64 << 20) else {
        return;
    };
    for backup in [true, false] {
        let dir = fs.path.join(if backup { "with" } else { "without" });
        copy_tree(&fixture_path("v1_5_9"), &dir);
        let backups = fs.path.join("backups");
        let before = statvfs_free(&dir);
        let mut args = vec!["--all", "--orphan-dirs"];
        if backup {
            args.extend(["--backup-dir", backups.to_str().unwrap()]);
        } else {
            args.push("--no-backup");
        }
        let r = prune(&dir, &args);
        let after = statvfs_free(&dir);
        assert_eq!(r["fs_free_before"].as_u64().unwrap(), before, "{r}");
        assert_eq!(r["fs_free_after"].as_u64().unwrap(), after, "{r}");
        if backup {
            // The hard link keeps the old file's blocks: the disk has less free, not more.
            assert!(after < before, "{r}");
            let held = r["backup_bytes"].as_u64().unwrap();
            assert!(held >= r["sqlite_bytes_before"].as_u64().unwrap(), "{r}");
            // Deleting the backup gives back what it holds.
            std::fs::remove_dir_all(r["backup_dir"].as_str().unwrap()).unwrap();
            assert!(
                statvfs_free(&dir) > before,
                "deleting the backup frees the space"
            );
        } else {
            assert!(after > before, "{r}");
            assert_eq!(r["backup_bytes"], Value::Null);
        }
    }
}

#[test]
fn info_lists_the_backups_of_the_dir() {
    let (t, dir) = fixture_copy("v1_5_9");
    // The default backup folder is beside the persist dir.
    prune(&dir, &["--all"]);
    prune(&dir, &["--orphan-dirs"]);
    let v = info(&dir);
    let list = v["backups"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert!(list[0]["created"].as_str().unwrap() >= list[1]["created"].as_str().unwrap());
    assert!(list.iter().all(|b| b["allocated_bytes"].as_u64().is_some()));
    assert!(t.path().join("chroma-wal-backups").is_dir());
    let out = bin().arg("info").arg(&dir).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("Backups (newest first"), "{text}");
}

#[test]
fn restore_keeps_writes_made_since_the_prune_unless_forced() {
    let (t, dir) = fixture_copy("v1_5_9");
    let original = files(&dir);
    let backups = t.path().join("backups");
    prune(&dir, &["--all", "--backup-dir", backups.to_str().unwrap()]);
    // Chroma writes after the prune.
    let conn = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    conn.execute_batch("CREATE TABLE written_after(x)").unwrap();
    drop(conn);
    let written = files(&dir);
    restore_cmd(&["--yes"], &backups, &dir)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("written since the prune"));
    assert_eq!(files(&dir), written, "a refused restore changed something");
    restore_cmd(&["--yes", "--force"], &backups, &dir)
        .assert()
        .success();
    assert_eq!(
        files(&dir),
        original,
        "the forced restore is not the original"
    );
    // The file it replaced is kept, writes and all.
    let folder = the_backup(&backups);
    let kept = folder.join("replaced-chroma.sqlite3");
    let conn = rusqlite::Connection::open(&kept).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'written_after'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "the replaced file was not kept");
}

#[test]
fn restore_uses_an_original_left_under_its_partial_name_after_the_swap() {
    let (t, dir) = fixture_copy("v0_5_5");
    let original = files(&dir);
    let backups = t.path().join("backups");
    prune(&dir, &["--all", "--backup-dir", backups.to_str().unwrap()]);
    let folder = the_backup(&backups);
    // As a kill between the swap and the backup's rename leaves it.
    std::fs::rename(
        folder.join("chroma.sqlite3"),
        folder.join("chroma.sqlite3.partial"),
    )
    .unwrap();
    restore_cmd(&["--yes"], &folder, &dir).assert().success();
    assert_eq!(files(&dir), original);
}

#[test]
fn restore_refuses_a_manifest_that_names_other_paths() {
    let (t, dir) = fixture_copy("v0_5_5");
    let backups = t.path().join("backups");
    prune(&dir, &["--all", "--backup-dir", backups.to_str().unwrap()]);
    let folder = the_backup(&backups);
    let m = folder.join("manifest.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    for (key, val) in [
        ("sqlite", serde_json::json!("../../etc/passwd")),
        ("dirs", serde_json::json!([{"name": "..", "bytes": 1}])),
    ] {
        let mut bad = v.clone();
        bad[key] = val;
        std::fs::write(&m, bad.to_string()).unwrap();
        let pruned = files(&dir);
        restore_cmd(&["--yes"], &folder, &dir)
            .assert()
            .code(3)
            .stderr(predicates::str::contains("no prune writes"));
        assert_eq!(files(&dir), pruned);
    }
}
