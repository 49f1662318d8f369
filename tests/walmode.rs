//! Pruning a chroma.sqlite3 in WAL journal mode, on a fixture that a real chromadb 0.4.22
//! wrote in WAL mode and then died without closing: its last 300 adds are committed pages in
//! chroma.sqlite3-wal only (see tests/fixtures/gen/generate.sh). Every committed row must
//! survive, the file stays in WAL mode, and nothing is left that SQLite could replay.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const FIXTURE: &str = "wal_mode_v0_4_22";

fn wal_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("chroma.sqlite3-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Rows of the tables Chroma reads besides the WAL, as text.
fn chroma_view(dir: &Path) -> Vec<String> {
    let c = ro(dir);
    let mut v = rows_as_text(&c, "SELECT * FROM embeddings ORDER BY id");
    v.extend(rows_as_text(
        &c,
        "SELECT * FROM embedding_metadata ORDER BY id, key",
    ));
    v.extend(rows_as_text(
        &c,
        "SELECT * FROM max_seq_id ORDER BY segment_id",
    ));
    v
}

/// What must be left of the WAL: the rows at or above each collection's bound, from the
/// facts the generator read through the -wal with Python's sqlite3.
fn expected_kept(dir: &Path) -> i64 {
    let exp = expected(FIXTURE);
    let counts = topic_counts(dir);
    let mut kept = 0;
    for ec in exp["collections"].as_array().unwrap() {
        for t in ec["wal_topics"].as_array().unwrap() {
            let n = counts[t.as_str().unwrap()].0;
            kept += n - ec["expected_prunable_rows"].as_i64().unwrap();
        }
    }
    kept
}

fn queue_rows(dir: &Path) -> i64 {
    ro(dir)
        .query_row("SELECT COUNT(*) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn the_fixture_holds_committed_rows_in_its_wal() {
    let (_t, dir) = fixture_copy(FIXTURE);
    assert!(chroma_wal::chroma::db::is_wal_mode(
        &dir.join("chroma.sqlite3")
    ));
    assert!(wal_len(&dir) > 100_000, "no committed frames in -wal");
    // The main file alone lacks the last adds: they are only in the -wal.
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("chroma.sqlite3"),
        alone.path().join("chroma.sqlite3"),
    )
    .unwrap();
    assert!(queue_rows(alone.path()) < queue_rows(&dir));
    // info reads through the -wal and changes nothing.
    let listing = |d: &Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&dir);
    let mtime = std::fs::metadata(dir.join("chroma.sqlite3"))
        .unwrap()
        .modified()
        .unwrap();
    let out = bin().args(["info", "--json"]).arg(&dir).assert().success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["wal_rows"].as_i64().unwrap(), queue_rows(&dir));
    assert_eq!(v["schema"]["journal_mode"], "wal");
    assert_eq!(listing(&dir), before);
    assert_eq!(
        std::fs::metadata(dir.join("chroma.sqlite3"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn prune_by_copy_and_in_place_keep_every_committed_row_in_wal_mode() {
    for method in [&[][..], &["--in-place"][..]] {
        let (t, dir) = fixture_copy(FIXTURE);
        let view = chroma_view(&dir);
        let rows_before = queue_rows(&dir);
        let kept = expected_kept(&dir);
        let backups = t.path().join("backups");
        let out = bin()
            .args(["prune", "--all", "--yes", "--json", "--backup-dir"])
            .arg(&backups)
            .args(method)
            .arg(&dir)
            .assert()
            .success();
        let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(
            r["method"],
            if method.is_empty() {
                "copy"
            } else {
                "in_place"
            }
        );
        assert_eq!(
            r["rows_deleted"].as_i64().unwrap(),
            rows_before - kept,
            "{method:?}"
        );
        // Nothing left beside the file for SQLite to replay, and WAL mode kept.
        assert!(
            !dir.join("chroma.sqlite3-wal").exists(),
            "{method:?}: -wal left"
        );
        assert!(
            !dir.join("chroma.sqlite3-shm").exists(),
            "{method:?}: -shm left"
        );
        for e in std::fs::read_dir(&dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                n == "chroma.sqlite3" || n.len() == 36,
                "{method:?}: stray {n}"
            );
        }
        assert!(chroma_wal::chroma::db::is_wal_mode(
            &dir.join("chroma.sqlite3")
        ));
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        drop(c);
        // Every committed row Chroma reads is there; the WAL holds exactly the kept rows.
        assert_eq!(chroma_view(&dir), view, "{method:?}");
        assert_eq!(queue_rows(&dir), kept, "{method:?}");
        // The backup is the committed state: opened alone, it holds every row the -wal held.
        let b = std::path::PathBuf::from(r["backup"].as_str().unwrap());
        let alone = tempfile::tempdir().unwrap();
        std::fs::copy(&b, alone.path().join("chroma.sqlite3")).unwrap();
        assert_eq!(queue_rows(alone.path()), rows_before, "{method:?}: backup");
        assert_eq!(chroma_view(alone.path()), view, "{method:?}: backup");
    }
}

#[test]
fn a_live_wal_mode_dir_is_refused() {
    let (_t, dir) = fixture_copy(FIXTURE);
    // A process holding the -wal open, as a live Chroma does.
    let mut holder = Command::new("sleep")
        .arg("30")
        .stdin(std::fs::File::open(dir.join("chroma.sqlite3-wal")).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let before = std::fs::read(dir.join("chroma.sqlite3-wal")).unwrap();
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        std::fs::read(dir.join("chroma.sqlite3-wal")).unwrap(),
        before
    );
}

#[test]
fn a_wal_with_frames_at_the_swap_is_refused() {
    use chroma_wal::jobs::copy::walmode;
    let (_t, dir) = fixture_copy(FIXTURE);
    let p = dir.join("chroma.sqlite3");
    assert!(
        walmode::still_folded(&p).is_err(),
        "frames in -wal must refuse the swap"
    );
    assert!(walmode::checkpoint(&p).unwrap());
    // The last connection's close folded and removed it.
    assert!(!dir.join("chroma.sqlite3-wal").exists());
    walmode::still_folded(&p).unwrap();
}
