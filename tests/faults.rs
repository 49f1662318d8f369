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
    build_in(false)
}

/// As [`build`], with the file switched to WAL journal mode first and the extra rows left
/// committed in `-wal` (no checkpoint), as a process that wrote in WAL mode and died leaves it.
fn build_in(wal_mode: bool) -> Big {
    let (tmp, dir) = fixture_copy("v1_5_9");
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    if wal_mode {
        c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
    }
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
    if wal_mode {
        // Never closed: closing the last connection would checkpoint the -wal away.
        std::mem::forget(c);
        assert!(
            std::fs::metadata(dir.join("chroma.sqlite3-wal"))
                .unwrap()
                .len()
                > 100 << 20
        );
    } else {
        drop(c);
    }
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
    // papers (acme), cosine-docs and inner-product are prunable too in this fixture.
    let exp = expected("v1_5_9");
    for ec in exp["collections"].as_array().unwrap() {
        let Some(t) = ec["wal_topics"][0].as_str() else {
            continue;
        };
        let gone = ec["expected_prunable_rows"].as_i64().unwrap_or(0);
        if t != b.topic && gone > 0 {
            let n = out[t] - gone;
            out.insert(t.to_string(), n);
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
        .filter(|n| {
            ![
                "chroma.sqlite3",
                "chroma.sqlite3-journal",
                "chroma.sqlite3-wal",
                "chroma.sqlite3-shm",
            ]
            .contains(&n.as_str())
                && n.len() != 36
        })
        .collect()
}

/// The new file of a prune by copy, which only a SIGKILL can leave behind.
const NEW_FILE: &str = "chroma.sqlite3.chroma-wal-new";

thread_local! {
    /// Extra prune arguments for the tests that run both methods (`--in-place`).
    static EXTRA: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_method<T>(extra: &[&'static str], f: impl FnOnce() -> T) -> T {
    EXTRA.with(|e| *e.borrow_mut() = extra.to_vec());
    let r = f();
    EXTRA.with(|e| e.borrow_mut().clear());
    r
}

/// `prune --all --yes`, with a backup into `backups`, or `--no-backup` when it is empty.
fn spawn_prune(dir: &Path, backups: &Path) -> std::process::Child {
    spawn_prune_with(dir, backups, &[])
}

fn spawn_prune_with(dir: &Path, backups: &Path, more: &[&str]) -> std::process::Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chroma-wal"));
    c.args(["prune", "--all", "--yes"]);
    c.args(more);
    EXTRA.with(|e| {
        c.args(e.borrow().iter());
    });
    if backups.as_os_str().is_empty() {
        c.arg("--no-backup");
    } else {
        c.arg("--backup-dir").arg(backups);
    }
    c.arg(dir)
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

/// A running prune whose stderr is being collected.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let st = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        (st, self.seen.join("\n"))
    }
}

/// Start a prune and return once stderr says `step: started` (plus `delay`), or it ended.
fn prune_running(dir: &Path, backups: &Path, step: &str, delay: Duration) -> Running {
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
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) if l.contains(&want) => {
                seen.push(l);
                std::thread::sleep(delay);
                return Running {
                    child,
                    lines: rx,
                    seen,
                };
            }
            Ok(l) => seen.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => {
                return Running {
                    child,
                    lines: rx,
                    seen,
                }
            } // it ended
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
    // By copy the original is never written: every kill before the rename leaves it
    // untouched (a named new file may stay until the next run). In place, kills before the
    // commit leave it untouched and kills after it exactly pruned.
    for (extra, steps) in [
        (
            &[][..],
            &["backup", "delete", "compact", "verify", "swap"][..],
        ),
        (
            &["--in-place"][..],
            &["backup", "delete", "compact", "verify"][..],
        ),
    ] {
        let outcomes = with_method(extra, || sigkill_round(&b, &before, &exact, steps));
        eprintln!("SIGKILL outcomes {extra:?}: {outcomes:?}");
        assert!(outcomes.keys().any(|k| k.ends_with("untouched")));
        assert!(outcomes.keys().any(|k| k.ends_with("exactly pruned")));
    }
}

#[test]
fn sigkill_in_wal_mode_leaves_the_old_state_or_the_pruned_one() {
    // 150k rows committed in -wal only: the checkpoint at the start of the prune has work.
    let b = build_in(true);
    let base = tempfile::tempdir().unwrap();
    let probe = copy_of(&b, &base.path().join("probe"));
    let before = counts(&probe);
    let exact = kept(&probe, &b);
    for (extra, steps) in [
        (
            &[][..],
            &["preflight", "backup", "delete", "compact", "verify", "swap"][..],
        ),
        (
            &["--in-place"][..],
            &["preflight", "delete", "compact", "verify"][..],
        ),
    ] {
        let outcomes = with_method(extra, || sigkill_round(&b, &before, &exact, steps));
        eprintln!("SIGKILL outcomes in WAL mode {extra:?}: {outcomes:?}");
        assert!(outcomes.keys().any(|k| k.ends_with("untouched")));
        assert!(outcomes.keys().any(|k| k.ends_with("exactly pruned")));
    }
}

fn sigkill_round(
    b: &Big,
    before: &BTreeMap<String, i64>,
    exact: &BTreeMap<String, i64>,
    steps: &[&str],
) -> BTreeMap<String, u32> {
    let mut outcomes = BTreeMap::new();
    // Kill inside every step, early and later in it; inside the last step also well after it
    // began, so a loaded machine (whose fsyncs can hold the swap past 200 ms: a CI run here
    // saw only "untouched") still has a kill land after the prune's end.
    for step in steps {
        let late: &[u64] = if Some(step) == steps.last() {
            &[5, 60, 200, 1500]
        } else {
            &[5, 60, 200]
        };
        for &delay_ms in late {
            let tmp = tempfile::tempdir().unwrap();
            let dir = copy_of(b, tmp.path());
            let backups = tmp.path().join("backups");
            let run = prune_running(&dir, &backups, step, Duration::from_millis(delay_ms));
            signal(&run.child, libc::SIGKILL);
            let (status, err) = run.finish();
            let at = format!("{step}+{delay_ms}ms");
            // Where the kill landed: by copy the original changes only at the swap.
            let swapping = err.contains("swap: started") || status.success();
            let left: Vec<String> = strays(&dir)
                .into_iter()
                .filter(|n| !n.starts_with(NEW_FILE))
                .collect();
            assert!(left.is_empty(), "kill at {at}: stray files {left:?}");
            // What Chroma's next start does: open read-write, which rolls a hot journal
            // back. A retired journal (zeroed header) is ignored until the next write.
            integrity_ok(&dir);
            let now = counts(&dir);
            let state = if &now == before {
                "untouched"
            } else if &now == exact {
                "exactly pruned"
            } else {
                panic!("kill at {at}: neither untouched nor exactly pruned: {now:?}")
            };
            if !swapping && steps.contains(&"swap") {
                assert_eq!(state, "untouched", "kill at {at}, before the swap: {err}");
            }
            *outcomes.entry(format!("{step}: {state}")).or_insert(0) += 1;
            // A second run completes, is exact, and leaves nothing of the first behind. After
            // an exact prune that was not compacted, it asks for the compaction by name, as
            // the first run's message says (a prune that deletes nothing writes nothing).
            let again = if state == "exactly pruned" {
                &["--compact"][..]
            } else {
                &[][..]
            };
            let out = spawn_prune_with(&dir, &backups, again)
                .wait_with_output()
                .unwrap();
            assert!(
                out.status.success(),
                "kill at {at}: second run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(&counts(&dir), exact, "kill at {at}: second run not exact");
            assert!(
                !dir.join("chroma.sqlite3-journal").exists(),
                "kill at {at}: journal left"
            );
            assert!(strays(&dir).is_empty(), "kill at {at}: {:?}", strays(&dir));
            integrity_ok(&dir);
            // WAL mode stays WAL mode, and nothing is left for SQLite to replay.
            let mode: String = ro(&dir)
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                mode == "wal",
                chroma_wal::chroma::db::is_wal_mode(&dir.join("chroma.sqlite3")),
                "kill at {at}"
            );
            // No backup may share its file with the live database.
            backups_are_not_the_live_file(&dir, &backups, &at);
        }
    }
    outcomes
}

/// A backup that is a hard link of the live chroma.sqlite3 would change with it.
fn backups_are_not_the_live_file(dir: &Path, backups: &Path, at: &str) {
    use std::os::unix::fs::MetadataExt;
    let live = std::fs::metadata(dir.join("chroma.sqlite3")).unwrap();
    for f in listing(backups) {
        let m = std::fs::metadata(backups.join(&f)).unwrap();
        assert!(
            m.ino() != live.ino() || m.dev() != live.dev(),
            "{at}: backup {f} is the live file"
        );
    }
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
        // Within the first 60 % of the probe's time: the other tests of this binary load the
        // machine unevenly, and a run timed under load can end before a later fraction.
        std::thread::sleep(full * k / 10);
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

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_disk_too_small_is_refused_in_advance() {
    let fixture = fixture_path("v0_4_22");
    let sqlite = std::fs::metadata(fixture.join("chroma.sqlite3"))
        .unwrap()
        .len();
    let dir_bytes: u64 = files_below(&fixture)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    // Persist dir on a tmpfs that holds the dir but not the journal of a compaction.
    let Some(fs) = Tmpfs::new(dir_bytes + sqlite / 2 + 64 * 1024) else {
        return;
    };
    let dir = fs.path.join("chroma");
    copy_tree(&fixture, &dir);
    let before = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("not enough free disk"));
    assert_eq!(before, std::fs::read(dir.join("chroma.sqlite3")).unwrap());
    assert_eq!(listing(&dir), listing(&fixture));

    // Backup dir on a tmpfs smaller than the file.
    let Some(small) = Tmpfs::new(sqlite / 2) else {
        return;
    };
    let (_t, dir) = fixture_copy("v0_4_22");
    bin()
        .args(["prune", "--all", "--yes", "--backup-dir"])
        .arg(small.path.join("b"))
        .arg(&dir)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("not enough free disk"));
    assert_eq!(before, std::fs::read(dir.join("chroma.sqlite3")).unwrap());
    assert!(listing(&small.path.join("b")).is_empty());
}

#[test]
fn a_disk_that_fills_up_during_the_backup_fails_cleanly() {
    let b = build();
    let sqlite = std::fs::metadata(b.template.join("chroma.sqlite3"))
        .unwrap()
        .len();
    // Just enough for the preflight (file + 1% + 16 MiB margin + 1 MiB); a filler then takes
    // the margin away as soon as the backup starts, which the preflight cannot foresee.
    let size = sqlite + sqlite / 100 + 17 * 1024 * 1024;
    let mut clean_failures = 0;
    for attempt in 0..3 {
        let Some(fs) = Tmpfs::new(size) else { return };
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_of(&b, tmp.path());
        let before = counts(&dir);
        let exact = kept(&dir, &b);
        let backups = fs.path.join("backups");
        let run = prune_running(&dir, &backups, "backup", Duration::ZERO);
        let filled = std::fs::write(fs.path.join("filler"), vec![0u8; 24 * 1024 * 1024]);
        let (status, err) = run.finish();
        eprintln!("attempt {attempt}: filler {filled:?}, exit {status:?}: {err}");
        integrity_ok(&dir);
        match status.code() {
            Some(1) => {
                clean_failures += 1;
                assert_eq!(counts(&dir), before, "attempt {attempt}: not untouched");
                let left: Vec<String> = listing(&backups);
                assert!(
                    left.is_empty(),
                    "attempt {attempt}: leftovers {:?}",
                    files_below(&backups)
                );
                assert!(strays(&dir).is_empty());
            }
            Some(0) => assert_eq!(counts(&dir), exact, "attempt {attempt}"),
            other => panic!("attempt {attempt}: exit {other:?}: {err}"),
        }
        if clean_failures > 0 {
            break;
        }
    }
    assert!(clean_failures > 0, "the filler never beat the backup");
}

#[test]
fn a_writer_arriving_mid_prune_waits_and_loses_nothing() {
    let b = build();
    // In place, with a backup the job holds RESERVED through the delete, without one
    // EXCLUSIVE: the writer waits and then writes into the pruned file. By copy the job
    // holds RESERVED on the original until the swap, sees the writer holding it there and
    // refuses to swap: nothing changed, and the writer's row lands in the original.
    for (step, backup, in_place) in [
        ("delete", true, true),
        ("compact", true, true),
        ("delete", false, true),
        ("compact", false, true),
        ("delete", true, false),
        ("compact", false, false),
        ("verify", true, false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_of(&b, tmp.path());
        let before = counts(&dir);
        let exact = kept(&dir, &b);
        let backups = if backup {
            tmp.path().join("backups")
        } else {
            PathBuf::new()
        };
        let extra: &[&'static str] = if in_place { &["--in-place"] } else { &[] };
        let run = with_method(extra, || {
            prune_running(&dir, &backups, step, Duration::from_millis(20))
        });
        // Another writer, as Chroma would be if it started now: it must wait for our lock.
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        c.busy_timeout(Duration::from_secs(60)).unwrap();
        let t0 = Instant::now();
        let inserted = c.execute(
            "INSERT INTO embeddings_queue (operation, topic, id, vector, encoding, metadata) \
             VALUES (0, 'persistent://default/default/late-writer', 'late', NULL, NULL, NULL)",
            [],
        );
        let waited = t0.elapsed();
        drop(c);
        let (status, err) = run.finish();
        let what = format!("{step} (backup {backup}, in place {in_place})");
        // By copy, a writer that opens the file in the instant between the swap's check for
        // holders and the rename (the test's open is timed only by stderr, so a loaded
        // machine can land it there) holds the old file: SQLite refuses its write
        // (SQLITE_READONLY_DBMOVED), so the writer is told, and nothing is lost silently.
        let moved = matches!(
            &inserted,
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.extended_code == 1032
        );
        if moved && !in_place && status.code() == Some(0) {
            integrity_ok(&dir);
            assert_eq!(counts(&dir), exact, "{what}: the write was refused");
            eprintln!("writer arriving during {what} opened the old file at the swap: refused");
            continue;
        }
        inserted.unwrap_or_else(|e| panic!("{what}: writer failed: {e}"));
        integrity_ok(&dir);
        assert!(strays(&dir).is_empty(), "{what}: {:?}", strays(&dir));
        let now = counts(&dir);
        assert_eq!(
            now.get("persistent://default/default/late-writer"),
            Some(&1),
            "{what}: the late row is lost"
        );
        let want = match status.code() {
            Some(0) => &exact,
            // By copy, when the writer opened the file before the swap.
            Some(3) if !in_place => {
                assert!(err.contains("nothing was changed"), "{what}: {err}");
                &before
            }
            other => panic!("{what}: exit {other:?}: {err}"),
        };
        for (t, n) in want {
            assert_eq!(now.get(t), Some(n), "{what}: {t}");
        }
        if !in_place && backup {
            backups_are_not_the_live_file(&dir, &backups, &what);
        }
        eprintln!(
            "writer arriving during {what} waited {waited:?}: exit {:?}",
            status.code()
        );
    }
}

#[test]
fn a_disk_that_fills_up_during_the_copy_fails_cleanly() {
    let b = build();
    let sqlite = std::fs::metadata(b.template.join("chroma.sqlite3"))
        .unwrap()
        .len();
    let folders: u64 = files_below(&b.template)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let mut clean_failures = 0;
    for attempt in 0..3 {
        // The persist dir itself on a small disk: room for the dir plus what the preflight
        // asks for the compacted copy (most of the WAL goes, so it is small), and a filler
        // takes that room as soon as the copy starts.
        let probe = tempfile::tempdir().unwrap();
        let pd = copy_of(&b, probe.path());
        let plan: serde_json::Value = serde_json::from_slice(
            &bin()
                .args(["prune", "--all", "--dry-run", "--json", "--no-backup"])
                .arg(&pd)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let after = sqlite.saturating_sub(plan["bytes_estimate"].as_u64().unwrap_or(0));
        let size = folders + after + after / 100 + 18 * 1024 * 1024;
        let Some(fs) = Tmpfs::new(size) else { return };
        let dir = fs.path.join("chroma");
        copy_tree(&b.template, &dir);
        let before = counts(&dir);
        let exact = kept(&dir, &b);
        let run = prune_running(&dir, Path::new(""), "delete", Duration::ZERO);
        let free = tmpfs_free(&fs.path);
        let filled = std::fs::write(fs.path.join("filler"), vec![0u8; free as usize]);
        let (status, err) = run.finish();
        eprintln!("attempt {attempt}: filler {filled:?}, exit {status:?}: {err}");
        let _ = std::fs::remove_file(fs.path.join("filler"));
        integrity_ok(&dir);
        match status.code() {
            Some(1) => {
                clean_failures += 1;
                assert!(err.contains("untouched"), "{err}");
                assert_eq!(counts(&dir), before, "attempt {attempt}: not untouched");
                assert!(strays(&dir).is_empty(), "{:?}", strays(&dir));
            }
            Some(0) => assert_eq!(counts(&dir), exact, "attempt {attempt}"),
            other => panic!("attempt {attempt}: exit {other:?}: {err}"),
        }
        if clean_failures > 0 {
            break;
        }
    }
    assert!(clean_failures > 0, "the filler never beat the copy");
}

fn tmpfs_free(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-parameter.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}
