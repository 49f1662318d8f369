//! Pruning by a compacted copy (the default): the new file must be the original with the
//! pruned WAL rows left out, and nothing else different; files it cannot reproduce are
//! pruned in place instead.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use rusqlite::Connection;

/// Every row of every table (rowid included where there is one) except embeddings_queue,
/// plus the header values a copy must keep.
fn everything_but_the_wal(dir: &Path) -> Vec<String> {
    let c = ro(dir);
    let mut out = Vec::new();
    for p in [
        "page_size",
        "auto_vacuum",
        "encoding",
        "user_version",
        "application_id",
    ] {
        let v = rows_as_text(&c, &format!("SELECT * FROM pragma_{p}")).concat();
        out.push(format!("{p}={v}"));
    }
    let tables: Vec<(String, bool)> = {
        let mut st = c
            .prepare(
                "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_master \
                 WHERE type = 'table' AND rootpage > 0 AND name <> 'embeddings_queue' ORDER BY name",
            )
            .unwrap();
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    for (t, without_rowid) in tables {
        let sql = if without_rowid {
            format!("SELECT * FROM \"{t}\"")
        } else {
            format!("SELECT rowid, * FROM \"{t}\" ORDER BY rowid")
        };
        let mut rows: Vec<String> = rows_as_text(&c, &sql)
            .into_iter()
            .map(|r| format!("{t}|{r}"))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    out
}

fn wal_rows(dir: &Path) -> Vec<String> {
    rows_as_text(&ro(dir), "SELECT * FROM embeddings_queue ORDER BY seq_id")
}

#[test]
fn a_prune_by_copy_changes_nothing_but_the_pruned_wal_rows() {
    for name in FIXTURES {
        let (_a, by_copy) = fixture_copy(name);
        let (_b, in_place) = fixture_copy(name);
        // A compaction is asked for by name: give it something to give back.
        leave_free_pages(&by_copy);
        leave_free_pages(&in_place);
        let before = everything_but_the_wal(&by_copy);
        // --compact: a fixture with nothing to prune (v0_6_3 purges itself) is still copied,
        // which is what this test is about.
        let r = prune_json(&by_copy, &["--compact"]);
        assert_eq!(r["method"], "copy", "{name}: {r}");
        let r2 = prune_json(&in_place, &["--in-place", "--compact"]);
        assert_eq!(r2["method"], "in_place", "{name}");
        assert_eq!(r["rows_deleted"], r2["rows_deleted"], "{name}");
        assert_eq!(
            everything_but_the_wal(&by_copy),
            before,
            "{name}: a table other than the WAL changed"
        );
        // The WAL rows kept are the same, byte for byte, as those DELETE + VACUUM keeps.
        assert_eq!(wal_rows(&by_copy), wal_rows(&in_place), "{name}");
        // The full-text index answers the same queries (its shadow tables were copied).
        let q = |d: &Path| -> Vec<i64> {
            let c = ro(d);
            let mut st = c
                .prepare(
                    "SELECT rowid FROM embedding_fulltext_search WHERE string_value MATCH 'doc' \
                     ORDER BY rowid",
                )
                .unwrap();
            let v = st
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            v
        };
        assert_eq!(q(&by_copy), q(&in_place), "{name}");
        let integrity: String = ro(&by_copy)
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{name}");
    }
}

#[test]
fn header_values_of_an_unusual_file_are_reproduced() {
    let (_t, dir) = fixture_copy("v0_5_5");
    {
        let c = Connection::open(dir.join("chroma.sqlite3")).unwrap();
        c.execute_batch(
            "PRAGMA page_size = 8192; PRAGMA auto_vacuum = 2; VACUUM; \
             PRAGMA user_version = 7; PRAGMA application_id = 424242;",
        )
        .unwrap();
    }
    let before = everything_but_the_wal(&dir);
    assert!(before.contains(&"page_size=Integer(8192)".to_string()));
    assert!(before.contains(&"auto_vacuum=Integer(2)".to_string()));
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "copy");
    assert_eq!(everything_but_the_wal(&dir), before);
}

#[test]
fn owner_and_mode_of_chroma_sqlite3_are_kept() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let f = dir.join("chroma.sqlite3");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    // As root (CI), a different owner too.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&f, Some(1234), Some(2345)).unwrap();
    }
    let m0 = std::fs::metadata(&f).unwrap();
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "copy");
    assert!(r["rows_deleted"].as_u64().unwrap() > 0);
    let m1 = std::fs::metadata(&f).unwrap();
    assert_ne!(m0.ino(), m1.ino(), "a new file was expected");
    assert_eq!(m1.permissions().mode() & 0o7777, 0o640);
    assert_eq!((m1.uid(), m1.gid()), (m0.uid(), m0.gid()));
}

#[test]
fn files_a_copy_cannot_reproduce_are_pruned_in_place() {
    // A trigger: only a real DELETE fires it.
    let (_t, dir) = fixture_copy("v1_5_9");
    Connection::open(dir.join("chroma.sqlite3"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE audit(n INTEGER); \
             CREATE TRIGGER wal_gone AFTER DELETE ON embeddings_queue BEGIN INSERT INTO audit VALUES (1); END;",
        )
        .unwrap();
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "in_place", "{r}");
    assert!(r["notes"].to_string().contains("triggers"), "{r}");
    let fired: i64 = ro(&dir)
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fired as u64, r["rows_deleted"].as_u64().unwrap());

    // A symbolic link: a rename would replace the link, not the file it points to.
    let (t4, dir) = fixture_copy("v1_5_9");
    let real = t4.path().join("elsewhere.sqlite3");
    std::fs::rename(dir.join("chroma.sqlite3"), &real).unwrap();
    std::os::unix::fs::symlink(&real, dir.join("chroma.sqlite3")).unwrap();
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "in_place", "{r}");
    assert!(r["notes"].to_string().contains("symbolic link"), "{r}");
    assert!(std::fs::symlink_metadata(dir.join("chroma.sqlite3"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(r["rows_deleted"].as_u64().unwrap() > 0);

    // SQLite's statistics tables cannot be created by a plain CREATE TABLE.
    let (_t3, dir) = fixture_copy("v0_4_22");
    Connection::open(dir.join("chroma.sqlite3"))
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "in_place", "{r}");
    assert!(r["notes"].to_string().contains("sqlite_stat1"), "{r}");

    // A second hard link: a new file would leave it behind.
    let (t2, dir) = fixture_copy("v1_5_9");
    let other = t2.path().join("other-name.sqlite3");
    std::fs::hard_link(dir.join("chroma.sqlite3"), &other).unwrap();
    let ino = std::fs::metadata(&other).unwrap().ino();
    let r = prune_json(&dir, &[]);
    assert_eq!(r["method"], "in_place", "{r}");
    assert!(r["notes"].to_string().contains("hard links"), "{r}");
    assert_eq!(
        std::fs::metadata(dir.join("chroma.sqlite3")).unwrap().ino(),
        ino
    );
}

#[test]
fn the_backup_is_the_untouched_original_and_is_not_the_live_file() {
    let (t, dir) = fixture_copy("v0_6_3");
    leave_free_pages(&dir);
    let original = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    let backups = t.path().join("backups");
    let out = bin()
        // v0_6_3 has nothing to prune: the compaction is asked for by name.
        .args([
            "prune",
            "--all",
            "--yes",
            "--compact",
            "--json",
            "--backup-dir",
        ])
        .arg(&backups)
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let b = std::path::PathBuf::from(r["backup"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&b).unwrap(),
        original,
        "backup differs from the original"
    );
    let (lb, ll) = (
        std::fs::metadata(&b).unwrap(),
        std::fs::metadata(dir.join("chroma.sqlite3")).unwrap(),
    );
    assert_ne!(lb.ino(), ll.ino());
    // One folder for this prune, holding the backup itself (no `.partial`) and its manifest.
    let folders: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders, vec![b.parent().unwrap().to_path_buf()]);
    let mut names: Vec<_> = std::fs::read_dir(b.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["chroma.sqlite3", "manifest.json"]);
}

#[test]
fn a_leftover_new_file_is_reported_and_removed_by_the_next_prune() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let left = dir.join("chroma.sqlite3.chroma-wal-new");
    std::fs::write(&left, vec![0u8; 4096]).unwrap();
    let info = bin()
        .args(["info", "--json"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert!(
        info["warnings"].to_string().contains("chroma-wal-new"),
        "info does not mention the leftover: {}",
        info["warnings"]
    );
    prune_json(&dir, &[]);
    assert!(!left.exists());
}

#[test]
fn a_file_owned_by_someone_else_is_pruned_in_place() {
    // Needs root to run the prune as another user (CI runs as root).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root");
        return;
    }
    use std::os::unix::process::CommandExt;
    let (t, dir) = fixture_copy("v1_5_9");
    // Everyone may traverse and write the dir and the file; the file stays root's.
    for p in [t.path().to_path_buf(), dir.clone()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(
        dir.join("chroma.sqlite3"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let ino = std::fs::metadata(dir.join("chroma.sqlite3")).unwrap().ino();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chroma-wal"))
        .args(["prune", "--all", "--yes", "--no-backup", "--json"])
        .arg(&dir)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["method"], "in_place", "{r}");
    assert!(r["notes"].to_string().contains("belongs to 0:0"), "{r}");
    let m = std::fs::metadata(dir.join("chroma.sqlite3")).unwrap();
    assert_eq!((m.ino(), m.uid()), (ino, 0));
    assert!(r["rows_deleted"].as_u64().unwrap() > 0);
}
