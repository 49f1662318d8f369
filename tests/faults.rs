//! Faults during a prune: SIGKILL and Ctrl-C (SIGINT) at many moments of a prune that takes
//! a few seconds. After each, the database is intact and every topic holds either all its
//! rows or exactly the kept rows; a second run then completes exactly.
//!
//! The data: a copy of the real 1.5.9 fixture whose "big" collection gets 150k more WAL rows
//! (1 KiB vectors, inserted with SQL) and a max_seq_id above them, as a long-running,
//! well-flushed collection would have.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const EXTRA_ROWS: i64 = 150_000;

struct Big {
    _tmp: tempfile::TempDir,
    template: PathBuf,
    topic: String,
    bound: i64,
}

fn build() -> Big {
    let (tmp, dir) = fixture_copy("v1_5_9");
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let (cid, topic): (String, String) = c
        .query_row(
            "SELECT c.id, q.topic FROM collections c JOIN databases d ON d.id = c.database_id \
             JOIN embeddings_queue q ON q.topic LIKE '%' || c.id \
             WHERE c.name = 'big' AND d.name = 'default_database' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let top: i64 = c
        .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    let bound = top + EXTRA_ROWS - 1000; // the last 1000 new rows are held back
    c.execute_batch("BEGIN").unwrap();
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) \
         SELECT ?2 + i, 0, ?3, 'bulk' || i, randomblob(1024), 'FLOAT32', '{\"chroma:document\": \"bulk row\"}' FROM n",
        rusqlite::params![EXTRA_ROWS, top, topic],
    )
    .unwrap();
    c.execute(
        "UPDATE max_seq_id SET seq_id = ?1 WHERE segment_id IN (SELECT id FROM segments WHERE collection = ?2)",
        rusqlite::params![bound, cid],
    )
    .unwrap();
    c.execute_batch("COMMIT").unwrap();
    drop(c);
    Big {
        _tmp: tmp,
        template: dir,
        topic,
        bound,
    }
}

fn copy_of(b: &Big, to: &Path) -> PathBuf {
    let d = to.join("chroma");
    copy_tree(&b.template, &d);
    d
}

/// Rows kept per topic after an exact prune of `--all`.
fn kept(dir: &Path, b: &Big) -> BTreeMap<String, i64> {
    let c = ro(dir);
    let mut out: BTreeMap<String, i64> = topic_counts(dir)
        .into_iter()
        .map(|(t, v)| (t, v.0))
        .collect();
    let k: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM embeddings_queue WHERE topic = ?1 AND seq_id >= ?2",
            rusqlite::params![b.topic, b.bound],
            |r| r.get(0),
        )
        .unwrap();
    out.insert(b.topic.clone(), k);
    // papers (acme) is prunable too in this fixture.
    let exp = expected("v1_5_9");
    for ec in exp["collections"].as_array().unwrap() {
        if ec["name"] == "papers" {
            let t = ec["wal_topics"][0].as_str().unwrap().to_string();
            let n = out[&t] - ec["expected_prunable_rows"].as_i64().unwrap();
            out.insert(t, n);
        }
    }
    out
}

fn counts(dir: &Path) -> BTreeMap<String, i64> {
    topic_counts(dir)
        .into_iter()
        .map(|(t, v)| (t, v.0))
        .collect()
}

fn integrity_ok(dir: &Path) {
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let r: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

/// Files in the persist dir that are neither Chroma's nor SQLite's own journal.
fn strays(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "chroma.sqlite3" && n != "chroma.sqlite3-journal" && n.len() != 36)
        .collect()
}

fn spawn_prune(dir: &Path, backups: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_chroma-wal"))
        .args(["prune", "--all", "--yes", "--backup-dir"])
        .arg(backups)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Start a prune and return once stderr says `step: started` (plus `delay`), or it ended.
fn prune_until(dir: &Path, backups: &Path, step: &str, delay: Duration) -> std::process::Child {
    use std::io::BufRead;
    let mut child = spawn_prune(dir, backups);
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let want = format!("{step}: started");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) if l.contains(&want) => {
                std::thread::sleep(delay);
                return child;
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => return child, // it ended
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{step} never started");
}

#[test]
fn sigkill_at_any_moment_loses_nothing() {
    let b = build();
    let base = tempfile::tempdir().unwrap();
    let probe = copy_of(&b, &base.path().join("probe"));
    let before = counts(&probe);
    let exact = kept(&probe, &b);
    assert!(before[&b.topic] - exact[&b.topic] > 100_000);
    let mut outcomes = BTreeMap::new();
    // Kill inside every step, early and later in it.
    for step in ["backup", "delete", "compact", "verify"] {
        for delay_ms in [5u64, 60, 200] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = copy_of(&b, tmp.path());
            let backups = tmp.path().join("backups");
            let mut child = prune_until(&dir, &backups, step, Duration::from_millis(delay_ms));
            signal(&child, libc::SIGKILL);
            child.wait().unwrap();
            let at = format!("{step}+{delay_ms}ms");
            let left = strays(&dir);
            assert!(left.is_empty(), "kill at {at}: stray files {left:?}");
            // What Chroma's next start does: open read-write, which rolls a hot journal
            // back. A retired journal (zeroed header) is ignored until the next write.
            integrity_ok(&dir);
            let now = counts(&dir);
            let state = if now == before {
                "untouched"
            } else if now == exact {
                "exactly pruned"
            } else {
                panic!("kill at {at}: neither untouched nor exactly pruned: {now:?}")
            };
            *outcomes.entry(format!("{step}: {state}")).or_insert(0) += 1;
            // A second run completes and is exact.
            let out = spawn_prune(&dir, &backups).wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "kill at {at}: second run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(counts(&dir), exact, "kill at {at}: second run not exact");
            assert!(
                !dir.join("chroma.sqlite3-journal").exists(),
                "kill at {at}: journal left"
            );
            integrity_ok(&dir);
        }
    }
    eprintln!("SIGKILL outcomes: {outcomes:?}");
    // Kills before the commit leave it untouched, kills after it exactly pruned.
    assert!(outcomes.keys().any(|k| k.ends_with("untouched")));
    assert!(outcomes.keys().any(|k| k.ends_with("exactly pruned")));
}

#[test]
fn ctrl_c_during_each_step_exits_130_untouched_or_exactly_pruned() {
    let b = build();
    let base = tempfile::tempdir().unwrap();
    let probe = copy_of(&b, &base.path().join("probe"));
    let before = counts(&probe);
    let exact = kept(&probe, &b);
    let t0 = Instant::now();
    assert!(spawn_prune(&probe, &base.path().join("pb"))
        .wait()
        .unwrap()
        .success());
    let full = t0.elapsed();
    let mut interrupted = 0;
    for k in 1..=6u32 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_of(&b, tmp.path());
        let child = spawn_prune(&dir, &tmp.path().join("backups"));
        std::thread::sleep(full * k / 7);
        signal(&child, libc::SIGINT);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code().unwrap_or(-1);
        assert!(!err.contains("panicked"), "{err}");
        // A graceful stop leaves no journal behind.
        assert!(
            !dir.join("chroma.sqlite3-journal").exists(),
            "Ctrl-C left a journal"
        );
        assert!(strays(&dir).is_empty());
        let now = counts(&dir);
        match code {
            130 => {
                interrupted += 1;
                if now == before {
                    assert!(err.contains("untouched"), "{err}");
                } else {
                    assert_eq!(now, exact, "interrupted run is neither untouched nor exact");
                    assert!(err.contains("exactly pruned"), "{err}");
                }
            }
            0 => assert_eq!(now, exact),
            other => panic!("exit {other}: {err}"),
        }
        integrity_ok(&dir);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of 6 Ctrl-C landed during the run"
    );
    let _ = Duration::ZERO;
}
