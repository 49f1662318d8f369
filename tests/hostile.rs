//! Broken and hostile input, each made by applying one fault to a copy of a real fixture.
//! Every case: a clear message, the documented exit code, no panic, nothing lost.

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn info_json(dir: &Path) -> Value {
    let out = bin()
        .args(["info", "--json"])
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap()
}

/// Prune everything; the named collection must keep every row, the others lose theirs.
fn prune_keeps(dir: &Path, name: &str) {
    let v = info_json(dir);
    let c = collection(&v, name, "default_tenant");
    let topic = c["topic"].as_str().unwrap().to_string();
    let before = topic_counts(dir);
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(dir)
        .assert()
        .success();
    let after = topic_counts(dir);
    assert_eq!(after.get(&topic), before.get(&topic), "{name} lost rows");
}

#[test]
fn broken_pickles_make_the_collection_unprunable_with_a_warning() {
    // Python pickle protocol 4 payload for os.system("touch <marker>"): it must never run.
    let marker = std::env::temp_dir().join(format!("cw-pwned-{}", std::process::id()));
    let cmd = format!("touch {}", marker.display());
    let mut evil =
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93".to_vec();
    evil.push(0x8c);
    evil.push(cmd.len() as u8);
    evil.extend_from_slice(cmd.as_bytes());
    evil.extend_from_slice(b"\x85R.");
    type Fault = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: Vec<(&str, Fault)> = vec![
        ("truncated", Box::new(|p: &[u8]| p[..60].to_vec())),
        (
            "garbage",
            Box::new(|_: &[u8]| b"\x00\x01garbage, not a pickle at all".to_vec()),
        ),
        (
            "unknown protocol",
            Box::new(|p: &[u8]| {
                let mut q = p.to_vec();
                q[1] = 9;
                q[2] = b'Z';
                q
            }),
        ),
        ("empty", Box::new(|_: &[u8]| Vec::new())),
        ("code execution", Box::new(move |_: &[u8]| evil.clone())),
    ];
    for (what, fault) in cases {
        let (_t, dir) = fixture_copy("v0_4_22");
        let v = info_json(&dir);
        let seg = vector_dir(&v, "big");
        let p = dir.join(&seg).join("index_metadata.pickle");
        let orig = std::fs::read(&p).unwrap();
        std::fs::write(&p, fault(&orig)).unwrap();
        let v = info_json(&dir);
        let c = collection(&v, "big", "default_tenant");
        assert_eq!(c["prune_bound"], Value::Null, "{what}");
        assert_eq!(c["prunable_rows"], 0, "{what}");
        assert!(
            c["status"].as_str().unwrap().contains("DAMAGED")
                && c["status"]
                    .as_str()
                    .unwrap()
                    .contains("index_metadata.pickle"),
            "{what}: {c}"
        );
        assert_eq!(c["health"], "damaged", "{what}");
        assert!(
            v["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains(&seg)),
            "{what}: no warning"
        );
        prune_keeps(&dir, "big");
        assert!(!marker.exists(), "{what}: the pickle ran code");
    }
}

#[test]
fn a_missing_pickle_means_not_yet_persisted() {
    let (_t, dir) = fixture_copy("v0_5_5");
    let v = info_json(&dir);
    let seg = vector_dir(&v, "big");
    std::fs::remove_file(dir.join(&seg).join("index_metadata.pickle")).unwrap();
    let v = info_json(&dir);
    let c = collection(&v, "big", "default_tenant");
    assert_eq!(c["status"], "vector index not yet persisted");
    prune_keeps(&dir, "big");
}

#[test]
fn bad_max_seq_id_values_block_only_their_collection() {
    // 1.x stores INTEGER; 0.6.x stores 8-byte big-endian BLOBs.
    let cases: &[(&str, &str, &str)] = &[
        ("v1_5_9", "NULL", "NULL"),
        ("v1_5_9", "-5", "negative"),
        ("v0_6_3", "x'0102030405060708ff'", "9 bytes"),
        ("v0_6_3", "x'8000000000000000'", "2^63"),
        ("v0_6_3", "'text'", "TEXT"),
    ];
    for (fixture, value, words) in cases {
        let (_t, dir) = fixture_copy(fixture);
        let v = info_json(&dir);
        let seg = vector_dir(&v, "big");
        let c = rw(&dir);
        let n = c
            .execute(
                &format!("UPDATE max_seq_id SET seq_id = {value} WHERE segment_id = ?1"),
                [&seg],
            )
            .unwrap();
        assert_eq!(n, 1, "{fixture}: the vector segment has a max_seq_id row");
        drop(c);
        let v = info_json(&dir);
        let big = collection(&v, "big", "default_tenant");
        assert_eq!(big["prune_bound"], Value::Null, "{value}");
        let s = big["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == seg.as_str())
            .unwrap();
        assert_eq!(s["max_seq_id"], Value::Null);
        assert_eq!(s["max_seq_id_source"], "unknown");
        assert!(
            s["problem"].as_str().unwrap().contains(words),
            "{value}: {s}"
        );
        // The other collection with a known bound is unaffected.
        assert!(
            collection(&v, "papers", "acme")["prune_bound"].is_i64(),
            "{value}"
        );
        prune_keeps(&dir, "big");
    }
}

#[test]
fn an_unknown_future_schema_is_browsed_but_never_pruned() {
    let (_t, dir) = fixture_copy("v1_5_9");
    rw(&dir)
        .execute(
            "INSERT INTO migrations (dir, version, filename, sql, hash) VALUES ('sysdb', 99, '00099-future.sqlite.sql', '', 'x')",
            [],
        )
        .unwrap();
    let before = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    let v = info_json(&dir);
    assert_eq!(v["schema"]["prune_allowed"], false);
    assert!(v["schema"]["prune_blocker"]
        .as_str()
        .unwrap()
        .contains("sysdb/99"));
    assert!(
        v["collections"].as_array().unwrap().len() >= 5,
        "still browsable"
    );
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("unknown schema"))
        .stderr(predicate::str::contains("sysdb/99"));
    assert_eq!(before, std::fs::read(dir.join("chroma.sqlite3")).unwrap());
}

#[test]
fn a_development_build_migration_set_is_browsed_but_never_pruned() {
    // A dev build of Chroma applied metadb 4 as `00004-segment_id.sqlite.sql`; every release
    // names metadb 4 `00004-metadata-indices.sqlite.sql`. And a set of known versions that no
    // release has together (sysdb 8 without 9).
    for (what, sql) in [
        (
            "foreign name",
            "UPDATE migrations SET filename = '00004-segment_id.sqlite.sql' \
             WHERE dir = 'metadb' AND version = 4",
        ),
        (
            "no release's set",
            "DELETE FROM migrations WHERE dir = 'sysdb' AND version = 10; \
             DELETE FROM migrations WHERE dir = 'sysdb' AND version = 9",
        ),
    ] {
        let (_t, dir) = fixture_copy("v1_5_9");
        rw(&dir).execute_batch(sql).unwrap();
        let before = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
        let v = info_json(&dir);
        assert_eq!(v["schema"]["prune_allowed"], false, "{what}");
        let blocker = v["schema"]["prune_blocker"].as_str().unwrap();
        assert!(
            blocker.contains("no known chromadb release has exactly these migrations"),
            "{what}: {blocker}"
        );
        bin()
            .args(["prune", "--all", "--yes", "--no-backup"])
            .arg(&dir)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("no known chromadb release"));
        assert_eq!(
            before,
            std::fs::read(dir.join("chroma.sqlite3")).unwrap(),
            "{what}"
        );
    }
    let (_t, dir) = fixture_copy("v1_5_9");
    rw(&dir)
        .execute(
            "UPDATE migrations SET filename = '00004-segment_id.sqlite.sql' WHERE dir = 'metadb' AND version = 4",
            [],
        )
        .unwrap();
    assert!(info_json(&dir)["schema"]["prune_blocker"]
        .as_str()
        .unwrap()
        .contains("metadb/4 is 00004-segment_id.sqlite.sql"));
}

#[test]
fn a_wal_mode_database_is_read_without_side_files_then_pruned_in_wal_mode() {
    let (_t, dir) = fixture_copy("v0_4_22");
    {
        let c = rw(&dir);
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    assert!(!dir.join("chroma.sqlite3-wal").exists());
    let v = info_json(&dir);
    assert_eq!(v["schema"]["journal_mode"], "wal");
    assert!(
        !dir.join("chroma.sqlite3-wal").exists(),
        "info created a -wal file"
    );
    assert!(
        !dir.join("chroma.sqlite3-shm").exists(),
        "info created a -shm file"
    );
    // Pruning it is allowed now (tests/walmode.rs covers it whole): it stays in WAL mode.
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    assert!(chroma_wal::chroma::db::is_wal_mode(
        &dir.join("chroma.sqlite3")
    ));
    assert!(!dir.join("chroma.sqlite3-wal").exists());
}

#[test]
fn segments_without_folders_and_folders_without_segments() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let v = info_json(&dir);
    let seg = vector_dir(&v, "big");
    std::fs::remove_dir_all(dir.join(&seg)).unwrap();
    let stray = "0badc0de-0000-4000-8000-000000000000";
    std::fs::create_dir(dir.join(stray)).unwrap();
    std::fs::write(dir.join(stray).join("header.bin"), b"1234").unwrap();
    let v = info_json(&dir);
    let big = collection(&v, "big", "default_tenant");
    let s = big["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == seg.as_str())
        .unwrap();
    assert_eq!(s["dir_bytes"], Value::Null);
    // The row still records a position, but the index it describes is gone: 1.x loads the
    // segment as uninitialized and replays the WAL from 0, so the whole WAL stays.
    assert_eq!(s["health"], "keeps_wal");
    assert_eq!(big["prune_bound"], Value::Null);
    assert_eq!(big["prunable_rows"], 0);
    // (1.5.9 itself leaves the folder of the collection it deleted; ours is one more.)
    let orphans = v["orphan_segment_dirs"].as_array().unwrap();
    let ours = orphans
        .iter()
        .find(|o| o["name"] == stray)
        .expect("stray folder listed");
    assert_eq!(ours["bytes"], 4);
    // Pruning leaves the stray folder alone.
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .success();
    assert!(dir.join(stray).join("header.bin").exists());
}

#[test]
fn paths_with_spaces_and_non_utf8_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"my chroma \xff\xfe dir");
    let dir = tmp.path().join(name);
    copy_tree(&fixture_path("v0_4_22"), &dir);
    let v = info_json(&dir);
    assert!(v["persist_dir"].as_str().unwrap().contains("my chroma"));
    bin().args(["info"]).arg(&dir).assert().success();
    let backups = tmp
        .path()
        .join(std::ffi::OsStr::from_bytes(b"back ups \xff"));
    bin()
        .args(["prune", "--all", "--yes", "--backup-dir"])
        .arg(&backups)
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 1);
}

#[test]
fn a_read_only_file_is_refused_before_anything_is_written() {
    // Root ignores permission bits, so make the filesystem itself read-only when we can
    // (a read-only bind mount); otherwise use permission bits as an unprivileged user.
    let (_t, dir) = fixture_copy("v0_4_22");
    let before = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    let is_root = unsafe_geteuid() == 0;
    let mounted = is_root
        && std::process::Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(&dir)
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !mounted {
        if is_root {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to bind-mount read-only"
            );
            eprintln!("SKIPPED: cannot bind-mount read-only here");
            return;
        }
        let mut p = std::fs::metadata(&dir).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o555);
        std::fs::set_permissions(&dir, p).unwrap();
    }
    // Some kernels need a remount for the ro flag to apply to a bind mount.
    if mounted {
        let _ = std::process::Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&dir)
            .status();
    }
    let r = bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&r.get_output().stderr).to_string();
    bin().args(["info"]).arg(&dir).assert().success();
    if mounted {
        let _ = std::process::Command::new("umount").arg(&dir).status();
    }
    assert!(
        err.contains("not writable") || err.contains("read-only"),
        "{err}"
    );
    assert_eq!(before, std::fs::read(dir.join("chroma.sqlite3")).unwrap());
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn a_writer_in_another_pid_namespace_is_refused() {
    // chroma-wal runs in its own PID namespace (as in a container of its own), so /proc shows
    // it nothing of the process that holds chroma.sqlite3 open for writing; the kernel's
    // lease check still sees that process. Needs root for unshare (CI runs as root).
    if unsafe_geteuid() != 0
        || !std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: no unshare here");
        return;
    }
    let (_t, dir) = fixture_copy("v1_5_9");
    let db = dir.join("chroma.sqlite3");
    let before = std::fs::read(&db).unwrap();
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&db)
        .unwrap();
    let mut chroma = std::process::Command::new("sleep")
        .arg("60")
        .stdin(holder)
        .spawn()
        .unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_chroma-wal"))
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .output()
        .unwrap();
    chroma.kill().ok();
    chroma.wait().ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot see"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn sparse_seq_ids_up_to_i64_max_are_counted_listed_and_pruned_without_walking_the_gap() {
    let (_t, dir) = fixture_copy("v0_5_5");
    let before = info_json(&dir);
    let rows_before = before["wal_rows"].as_u64().unwrap();
    let topic = "persistent://default/default/ffffffff-0000-4000-8000-00000000000f";
    rw(&dir)
        .execute_batch(&format!(
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id) VALUES \
             (4611686018427387904, 0, '{topic}', 'far'), \
             (9223372036854775807, 0, '{topic}', 'last')"
        ))
        .unwrap();
    let limit = std::time::Duration::from_secs(60);
    let v = info_json(&dir);
    assert_eq!(v["wal_rows"].as_u64().unwrap(), rows_before + 2);
    assert_eq!(v["wal_max_seq_id"].as_i64(), Some(i64::MAX));
    // Both rows listed, oldest first, and the row at i64::MAX is not lost at the end.
    let out = bin()
        .args(["rows", "--jsonl", "--topic", topic])
        .arg(&dir)
        .timeout(limit)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let ids: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["\"far\"", "\"last\""]);
    // The prune finishes, and the orphan topic's rows under the guard are handled.
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .timeout(limit)
        .assert()
        .success();
    let after = info_json(&dir);
    assert_eq!(after["prunable_rows"].as_u64(), Some(0), "{after}");
}
