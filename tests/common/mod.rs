//! Shared helpers for the integration tests: fixture copies, expected facts, raw SQL checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};

use rusqlite::{Connection, OpenFlags};

#[allow(dead_code)]
pub mod damage;
#[allow(dead_code)]
pub mod explorer;

/// Every persist dir in tests/fixtures, written by real chromadb releases.
pub const FIXTURES: &[&str] = &[
    "v0_4_22",
    "v0_5_5",
    "v0_6_3",
    "v1_5_9",
    "upgraded_0_4_22_to_0_6_3",
    "upgraded_0_5_5_to_1_5_9",
];

/// The fixtures with a particular story (deletions persisted, an orphan folder, an index
/// folder removed and rebuilt by the release), beside [`FIXTURES`].
pub const MORE_FIXTURES: &[&str] = &[
    "deletions_v1_5_9",
    "orphans_v0_6_3",
    "rebuilt_v1_5_9",
    "rebuilt_v0_6_3",
    "unpersisted_v1_5_9",
];

/// Every fixture a release wrote through the API (not the WAL-mode one, which a read may
/// checkpoint).
pub fn all_fixtures() -> impl Iterator<Item = &'static str> {
    FIXTURES.iter().chain(MORE_FIXTURES).copied()
}

/// Every file below `d`, recursively.
pub fn files_below(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `chroma-wal ARGS... DIR`, which must succeed: its stdout as JSON Lines.
pub fn jsonl_of(args: &[&str], dir: &Path) -> Vec<serde_json::Value> {
    let out = bin()
        .args(args)
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_path(name: &str) -> PathBuf {
    let p = root().join("tests/fixtures").join(name);
    assert!(
        p.join("chroma.sqlite3").is_file(),
        "fixture {name} is missing: regenerate with tests/fixtures/gen/generate.sh"
    );
    p
}

/// The facts the generator recorded with Python, independently of this crate.
pub fn expected(name: &str) -> serde_json::Value {
    let p = root()
        .join("tests/fixtures")
        .join(format!("{name}.expected.json"));
    let raw = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One collection's expected facts, by name (the first one with that name).
pub fn expected_collection(fixture: &str, name: &str) -> serde_json::Value {
    expected(fixture)["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{fixture}: no collection {name}"))
        .clone()
}

/// Copy a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A private copy of a fixture: `(tempdir guard, persist dir path)`.
pub fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_tree(&fixture_path(name), &dir);
    (tmp, dir)
}

pub fn ro(dir: &Path) -> Connection {
    Connection::open_with_flags(dir.join("chroma.sqlite3"), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
}

/// rows per topic, straight from SQL.
pub fn topic_counts(dir: &Path) -> BTreeMap<String, (i64, i64, i64)> {
    let c = ro(dir);
    let mut st = c
        .prepare(
            "SELECT topic, COUNT(*), MIN(seq_id), MAX(seq_id) FROM embeddings_queue GROUP BY topic",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Every row `sql` returns, its values debug-printed and joined by `|`.
pub fn rows_as_text(c: &Connection, sql: &str) -> Vec<String> {
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    let v = st
        .query_map([], |r| {
            let mut s = Vec::new();
            for i in 0..n {
                s.push(format!("{:?}", r.get_ref(i)?));
            }
            Ok(s.join("|"))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    v
}

/// Everything Chroma owns besides the WAL rows, as comparable text: schema, migrations,
/// queue config, max_seq_id rows, and a hash of every segment file.
pub fn owned_state(dir: &Path) -> String {
    let c = ro(dir);
    let mut out = String::new();
    let q = |out: &mut String, sql: &str| {
        for r in rows_as_text(&c, sql) {
            out.push_str(&r);
            out.push('\n');
        }
    };
    q(
        &mut out,
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
    );
    q(&mut out, "SELECT * FROM migrations ORDER BY dir, version");
    q(&mut out, "SELECT * FROM max_seq_id ORDER BY segment_id");
    q(&mut out, "SELECT * FROM segments ORDER BY id");
    q(&mut out, "SELECT * FROM collections ORDER BY id");
    let has_cfg: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'embeddings_queue_config'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if has_cfg > 0 {
        let mut st = c.prepare("SELECT * FROM embeddings_queue_config").unwrap();
        let rows: Vec<String> = st
            .query_map([], |r| {
                Ok(format!("{:?}|{:?}", r.get_ref(0)?, r.get_ref(1)?))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        out.push_str(&rows.join("\n"));
    }
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let p: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    out.push_str(&format!("\nuser_version={v} page_size={p}\n"));
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            for f in std::fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                let bytes = std::fs::read(f.path()).unwrap();
                files.push(format!(
                    "{}/{} {} {:x}",
                    e.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy(),
                    bytes.len(),
                    fnv(&bytes)
                ));
            }
        }
    }
    files.sort();
    out.push_str(&files.join("\n"));
    out
}

/// FNV-1a, enough to tell whether a file changed.
pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The collection `name` of `tenant` in `info --json` output.
pub fn collection<'a>(v: &'a serde_json::Value, name: &str, tenant: &str) -> &'a serde_json::Value {
    v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no collection {name} in {tenant}"))
}

/// The id of the VECTOR segment of collection `name` in the default tenant.
pub fn vector_dir(v: &serde_json::Value, name: &str) -> String {
    segment_id(v, name, "VECTOR")
}

/// The id of the `scope` segment of collection `name` in the default tenant, from `info --json`.
pub fn segment_id(v: &serde_json::Value, name: &str, scope: &str) -> String {
    collection(v, name, "default_tenant")["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == scope)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `chroma-wal ARGS... DIR`, which must succeed: its stdout as one JSON value.
pub fn json_of(args: &[&str], dir: &Path) -> serde_json::Value {
    let out = bin()
        .args(args)
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

/// `chroma-wal prune --all --yes --no-backup --json EXTRA... DIR`, which must succeed: its
/// report.
pub fn prune_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["prune", "--all", "--yes", "--no-backup", "--json"];
    args.extend_from_slice(extra);
    json_of(&args, dir)
}

pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("chroma-wal").unwrap();
    c.env_remove("RUST_BACKTRACE");
    c
}

/// A tmpfs of `bytes` at a new dir, or None when mounting is impossible here (must be
/// possible in CI, which runs as root).
pub struct Tmpfs {
    pub path: PathBuf,
    _holder: tempfile::TempDir,
}

impl Tmpfs {
    pub fn new(bytes: u64) -> Option<Tmpfs> {
        let holder = tempfile::tempdir().unwrap();
        let path = holder.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to mount a tmpfs"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Tmpfs {
            path,
            _holder: holder,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// What Chroma 0.5.6–0.5.12 could leave: a collection's rows at and above its bound deleted
/// by someone else, and the WAL's top held by a deleted collection's topic. Returns the
/// orphan topic, papers' topic and bound, and the highest position recorded.
pub fn lost_rows_and_an_orphan_on_top(dir: &Path) -> (String, String, i64, i64) {
    let v = json_of(&["info", "--json"], dir);
    let papers = collection(&v, "papers", "acme");
    let papers_topic = papers["topic"].as_str().unwrap().to_string();
    let m = papers["prune_bound"].as_i64().unwrap();
    let highest = papers["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["max_seq_id"].as_i64())
        .max()
        .unwrap();
    let orphan = "persistent://default/default/00000000-0000-4000-8000-00000000abcd";
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    c.execute("DELETE FROM embeddings_queue WHERE seq_id >= ?1", [m])
        .unwrap();
    for i in 0..5 {
        c.execute(
            // created_at given: its default, the clock's second, would make two copies
            // damaged a second apart differ byte for byte.
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id, created_at) \
             VALUES (?1, 0, ?2, 'x', '2024-01-01 00:00:00')",
            rusqlite::params![highest + 1 + i, orphan],
        )
        .unwrap();
    }
    (orphan.to_string(), papers_topic, m, highest)
}

/// Give `dir`'s chroma.sqlite3 free pages, as a purge leaves them (a table of 256 KiB written,
/// then dropped: Chroma's tables and schema are as before). For tests of a compaction on a
/// fixture whose last writes reused every free page.
#[allow(dead_code)]
pub fn leave_free_pages(dir: &Path) {
    let c = Connection::open(dir.join("chroma.sqlite3")).unwrap();
    c.execute_batch(
        "CREATE TABLE cw_test_scratch(b BLOB); \
         INSERT INTO cw_test_scratch VALUES (zeroblob(65536)), (zeroblob(65536)), \
         (zeroblob(65536)), (zeroblob(65536)); \
         DROP TABLE cw_test_scratch;",
    )
    .unwrap();
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert!(free > 0);
}
