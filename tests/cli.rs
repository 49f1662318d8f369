//! The CLI contract: every exit code and error message, on copies of real fixtures.

mod common;

use common::*;
use predicates::prelude::*;

fn json_of(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

#[test]
fn version_and_help_are_useful() {
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains("prune"));
    bin()
        .args(["prune", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--dry-run"))
        .stdout(predicate::str::contains("--backup-dir"));
}

#[test]
fn missing_path_is_a_one_line_error() {
    let a = bin()
        .args(["info", "/nonexistent/chroma-dir"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no such directory"), "{err}");
}

#[test]
fn a_file_is_not_a_persist_dir() {
    let dir = fixture_path("v0_4_22");
    bin()
        .args(["info"])
        .arg(dir.join("chroma.sqlite3"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a file"))
        .stderr(predicate::str::contains(
            "folder that contains chroma.sqlite3",
        ));
}

#[test]
fn a_dir_without_sqlite_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .args(["info"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no chroma.sqlite3"));
}

#[test]
fn a_non_sqlite_file_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("chroma.sqlite3"), b"this is not a database at all, just text padding padding padding padding padding padding padding padding").unwrap();
    bin()
        .args(["info"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not an SQLite database"));
}

#[test]
fn a_truncated_database_fails_cleanly() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let f = dir.join("chroma.sqlite3");
    let len = std::fs::metadata(&f).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(len / 3).unwrap();
    drop(file);
    let a = bin().args(["info"]).arg(&dir).assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_empty_sqlite_file_is_not_chroma() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("chroma.sqlite3"), b"").unwrap();
    bin()
        .args(["info"])
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a Chroma database"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = fixture_path("v0_4_22");
    // No selection.
    bin().args(["prune"]).arg(&dir).assert().code(2);
    // Both backup flags.
    bin()
        .args(["prune", "--all", "--no-backup", "--backup-dir", "/tmp"])
        .arg(&dir)
        .assert()
        .code(2);
    // Unknown flag.
    bin()
        .args(["info", "--frobnicate"])
        .arg(&dir)
        .assert()
        .code(2);
}

#[test]
fn unknown_collection_is_a_usage_error() {
    let (_t, dir) = fixture_copy("v0_4_22");
    bin()
        .args([
            "prune",
            "--collection",
            "no-such-collection",
            "--yes",
            "--no-backup",
        ])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no collection named or with id `no-such-collection`",
        ));
    bin()
        .args([
            "prune",
            "--topic",
            "persistent://x/y/z",
            "--yes",
            "--no-backup",
        ])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no WAL rows have topic"));
}

#[test]
fn no_confirmation_without_a_tty_is_refused_and_writes_nothing() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let before = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    bin()
        .args(["prune", "--all", "--no-backup"])
        .arg(&dir)
        .write_stdin("y\n")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("pass --yes"));
    assert_eq!(before, std::fs::read(dir.join("chroma.sqlite3")).unwrap());
}

#[test]
fn dry_run_changes_nothing_and_matches_the_real_run() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let f = dir.join("chroma.sqlite3");
    let before = std::fs::read(&f).unwrap();
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let out = bin()
        .args(["prune", "--all", "--dry-run", "--json"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan = json_of(&out);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(before, std::fs::read(&f).unwrap());
    assert_eq!(mtime, std::fs::metadata(&f).unwrap().modified().unwrap());
    let planned = plan["rows_deleted"].as_u64().unwrap();
    assert!(planned > 0, "fixture should have prunable rows: {plan}");

    let done = prune_json(&dir, &[]);
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["rows_deleted"].as_u64().unwrap(), planned);
    for key in [
        "sqlite_bytes_before",
        "sqlite_bytes_after",
        "dir_bytes_before",
        "dir_bytes_after",
        "backup",
        "topics",
        "steps",
    ] {
        assert!(done.get(key).is_some(), "missing {key}: {done}");
    }
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // With --yes the copy counts the WAL, and the backup waits until it has found
    // something to delete: the steps as they ran.
    assert_eq!(
        steps,
        [
            "preflight",
            "delete",
            "backup",
            "compact",
            "verify",
            "swap",
            "folders",
            "rebuild"
        ]
    );
}

#[test]
fn info_never_writes_not_even_mtime() {
    for name in FIXTURES {
        let (_t, dir) = fixture_copy(name);
        let f = dir.join("chroma.sqlite3");
        let before = std::fs::read(&f).unwrap();
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        let listing = |d: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let files = listing(&dir);
        bin().args(["info", "--json"]).arg(&dir).assert().success();
        bin().args(["info"]).arg(&dir).assert().success();
        assert_eq!(before, std::fs::read(&f).unwrap(), "{name}");
        assert_eq!(
            mtime,
            std::fs::metadata(&f).unwrap().modified().unwrap(),
            "{name}"
        );
        assert_eq!(files, listing(&dir), "{name}: info left files behind");
    }
}

#[test]
fn info_json_has_the_contract_keys() {
    for name in FIXTURES {
        let out = bin()
            .args(["info", "--json"])
            .arg(fixture_path(name))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v = json_of(&out);
        for key in [
            "persist_dir",
            "schema",
            "sqlite_bytes",
            "dir_bytes",
            "automatically_purge",
            "holders",
            "collections",
            "orphan_topics",
            "orphan_segment_dirs",
            "warnings",
        ] {
            assert!(v.get(key).is_some(), "{name}: missing {key}");
        }
        for c in v["collections"].as_array().unwrap() {
            for key in [
                "id",
                "name",
                "tenant",
                "database",
                "topic",
                "dimension",
                "wal_rows",
                "prunable_rows",
                "prune_bound",
                "segments",
            ] {
                assert!(c.get(key).is_some(), "{name}: collection missing {key}");
            }
            for s in c["segments"].as_array().unwrap() {
                for key in ["id", "scope", "type", "max_seq_id", "max_seq_id_source"] {
                    assert!(s.get(key).is_some(), "{name}: segment missing {key}");
                }
                let src = s["max_seq_id_source"].as_str().unwrap();
                assert!(
                    ["sqlite_blob", "sqlite_integer", "pickle", "unknown"].contains(&src),
                    "{src}"
                );
                assert_eq!(s["max_seq_id"].is_null(), src == "unknown");
            }
        }
    }
}

#[test]
fn a_process_holding_the_dir_is_named_and_prune_refused() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let f = std::fs::File::open(dir.join("chroma.sqlite3")).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .stdin(f)
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let a = bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let out = bin()
        .args(["info", "--json"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    child.kill().ok();
    child.wait().ok();
    assert!(err.contains(&pid) && err.contains("sleep"), "{err}");
    let v = json_of(&out);
    assert!(
        v["holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["pid"].as_u64() == Some(child.id() as u64)),
        "{v}"
    );
}

#[test]
fn json_errors_are_still_one_object_on_stdout() {
    let out = bin()
        .args(["info", "--json", "/nonexistent/dir"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    assert_eq!(v["exit_code"], 1);
    assert!(v["error"].as_str().unwrap().contains("no such directory"));
}

#[test]
fn backup_is_made_outside_the_dir_and_verified() {
    let (t, dir) = fixture_copy("v0_4_22");
    let backups = t.path().join("my backups");
    let original = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    let out = bin()
        .args(["prune", "--all", "--yes", "--json", "--backup-dir"])
        .arg(&backups)
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    let b = std::path::PathBuf::from(v["backup"].as_str().unwrap());
    assert!(b.starts_with(&backups), "{}", b.display());
    // The backup holds exactly the rows the original had.
    let bc = rusqlite::Connection::open(&b).unwrap();
    let n: i64 = bc
        .query_row("SELECT COUNT(*) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    let tmp2 = tempfile::tempdir().unwrap();
    std::fs::write(tmp2.path().join("chroma.sqlite3"), &original).unwrap();
    let orig: i64 = ro(tmp2.path())
        .query_row("SELECT COUNT(*) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, orig);
    // A backup dir inside the persist dir is refused.
    bin()
        .args(["prune", "--all", "--yes", "--backup-dir"])
        .arg(dir.join("inside"))
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("inside the persist dir"));
}

#[test]
fn a_hot_journal_is_refused_and_left_alone() {
    let (_t, dir) = fixture_copy("v0_4_22");
    // Make a genuinely hot journal: start a delete in another copy, then copy its journal
    // next to an unchanged database file, as a crash mid-transaction leaves it.
    let (_t2, scratch) = fixture_copy("v0_4_22");
    let c = rusqlite::Connection::open(scratch.join("chroma.sqlite3")).unwrap();
    c.execute_batch("PRAGMA cache_size = 1; BEGIN; DELETE FROM embeddings_queue;")
        .unwrap();
    let journal = std::fs::read(scratch.join("chroma.sqlite3-journal")).unwrap();
    assert!(!journal.is_empty());
    c.execute_batch("ROLLBACK").unwrap();
    std::fs::write(dir.join("chroma.sqlite3-journal"), &journal).unwrap();
    // The database file of `dir` is the original: restore it to be sure.
    std::fs::copy(
        fixture_path("v0_4_22").join("chroma.sqlite3"),
        dir.join("chroma.sqlite3"),
    )
    .unwrap();
    let a = bin()
        .args(["prune", "--all", "--yes", "--no-backup"])
        .arg(&dir)
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("journal"), "{err}");
    assert_eq!(
        journal,
        std::fs::read(dir.join("chroma.sqlite3-journal")).unwrap()
    );
}

#[test]
fn the_explorer_without_a_terminal_points_to_info() {
    bin()
        .arg(fixture_path("v0_4_22"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("needs a terminal"))
        .stderr(predicate::str::contains("chroma-wal info"));
    bin()
        .args(["/nonexistent/dir"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no such directory"));
}

/// Every subcommand, as `chroma-wal --help` lists them.
fn subcommands() -> Vec<String> {
    let out = bin().arg("--help").assert().success();
    let help = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            // "  name  about"; wrapped about lines are indented further.
            let name_line = line.starts_with("  ") && !line.starts_with("   ");
            match line.split_whitespace().next() {
                Some(n) if name_line && n != "help" => names.push(n.to_string()),
                Some(_) if line.starts_with("  ") => {}
                _ => break,
            }
        }
    }
    names
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    let subs = subcommands();
    for want in ["info", "prune", "completions", "man"] {
        assert!(
            subs.iter().any(|s| s == want),
            "--help lacks {want}: {subs:?}"
        );
    }
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = bin().args(["completions", shell]).assert().success();
        let script = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(script.len() > 500, "{shell}: {} bytes", script.len());
        for s in &subs {
            assert!(script.contains(s.as_str()), "{shell} completion lacks {s}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("chroma-wal.bash");
            std::fs::write(&f, &script).unwrap();
            let st = std::process::Command::new("bash")
                .arg("-n")
                .arg(&f)
                .status()
                .unwrap();
            assert!(st.success(), "bash -n rejected the completion script");
        }
    }
    bin()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value"));
}

#[test]
fn the_man_page_names_every_subcommand() {
    let out = bin().arg("man").assert().success();
    let page = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        page.starts_with(".ie") || page.contains(".TH chroma-wal 1"),
        "{page}"
    );
    assert!(page.contains(".TH chroma-wal 1"));
    for s in subcommands() {
        assert!(page.contains(&s), "the man page lacks {s}");
    }
}
