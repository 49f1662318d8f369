//! `chroma-wal scrub`: on dirs real releases wrote with canary records (deleted, updated, and
//! in a deleted collection; `tests/fixtures/gen/generate.py`'s `canaries` profile), no file
//! under the dir holds a canary string afterwards, `--dry-run` changes nothing, the backup
//! holds what went, and `restore` puts it back. The vectors, and the release reading and
//! writing the scrubbed dir, are checked by `tests/scrub/run.sh` (it needs the releases).

mod common;

use common::*;
use serde_json::Value;

const CANARIES: [&str; 4] = [
    "canaries_v0_4_22",
    "canaries_v0_5_5",
    "canaries_v0_6_3",
    "canaries_v1_5_9",
];

/// Files below `dir` holding a canary string (each starts `cnry-`), with how many times.
fn canaries_in(dir: &std::path::Path) -> Vec<(String, usize)> {
    let needle = b"cnry-";
    files_below(dir)
        .into_iter()
        .filter_map(|p| {
            let b = std::fs::read(&p).unwrap();
            let n = b.windows(needle.len()).filter(|w| w == needle).count();
            (n > 0).then(|| (p.display().to_string(), n))
        })
        .collect()
}

fn all_bytes(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = files_below(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p.display().to_string(), fnv(&b))
        })
        .collect();
    v.sort();
    v
}

/// `scrub --all --yes --json EXTRA... DIR`, which must succeed: its report.
fn scrubbed(dir: &std::path::Path, extra: &[&str], name: &str) -> Value {
    let out = bin()
        .args(["scrub", "--all", "--yes", "--json"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn scrub_all_leaves_no_canary_string_and_the_backup_holds_them() {
    for name in CANARIES {
        let (t, dir) = fixture_copy(name);
        assert!(!canaries_in(&dir).is_empty(), "{name}: no canary to find");
        let before = all_bytes(&dir);
        let deep = json_of(&["info", "--deep", "--json"], &dir);
        let left = &deep["space"]["deleted_data"];
        assert!(
            left["index_leftover_bytes"].as_u64().unwrap() > 0,
            "{name}: {left}"
        );
        let plan = json_of(&["scrub", "--all", "--dry-run", "--json"], &dir);
        assert_eq!(all_bytes(&dir), before, "{name}: the dry run wrote");
        assert!(
            plan["indexes"].as_array().unwrap().len() >= 5,
            "{name}: {plan}"
        );
        let backups = t.path().join("backups");
        let r = scrubbed(&dir, &["--backup-dir", backups.to_str().unwrap()], name);
        assert_eq!(canaries_in(&dir), vec![], "{name}: {r}");
        let deep = json_of(&["info", "--deep", "--json"], &dir);
        let left = &deep["space"]["deleted_data"];
        assert_eq!(left["index_leftover_bytes"], 0, "{name}: {left}");
        assert_eq!(left["free_bytes"], 0, "{name}: {left}");
        assert_eq!(left["orphan_dirs_bytes"], 0, "{name}: {left}");
        let rows = &left["orphan_rows"];
        for k in ["records", "metadata", "fulltext", "catalog"] {
            assert_eq!(rows[k], 0, "{name}: {k}: {left}");
        }
        assert!(
            !canaries_in(&backups).is_empty(),
            "{name}: the backup lost them"
        );
        assert!(
            r["delete_backup"].as_str().unwrap().starts_with("rm -rf"),
            "{name}: {r}"
        );
        // Every index was rebuilt, ghosts or not, and its deleted vectors are gone.
        for c in ["canary-l2", "canary-cosine", "canary-ip"] {
            let i = r["indexes_rebuilt"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["collection"] == c)
                .unwrap_or_else(|| panic!("{name}: {c} not rebuilt: {r}"));
            assert_eq!(i["ghosts_removed"], 6, "{name}: {c}: {i}");
        }
        // The untouched dir comes back whole.
        bin()
            .args(["restore", "--yes", "--from"])
            .arg(&backups)
            .arg(&dir)
            .assert()
            .success();
        assert_eq!(
            all_bytes(&dir),
            before,
            "{name}: restore did not put it back"
        );
    }
}

#[test]
fn what_nothing_points_to_goes_only_with_all() {
    // 0.4.22 never removes a deleted record's full-text row; 0.6.3's delete_collection
    // leaves the records themselves.
    for (name, kind) in [
        ("canaries_v0_4_22", "fulltext"),
        ("canaries_v0_6_3", "records"),
    ] {
        let (_t, dir) = fixture_copy(name);
        let one = json_of(
            &["scrub", "--collection", "canary-l2", "--dry-run", "--json"],
            &dir,
        );
        assert_eq!(one["leftovers"][kind], 0, "{name}: {one}");
        assert_eq!(one["indexes"].as_array().unwrap().len(), 1, "{name}: {one}");
        let all = json_of(&["scrub", "--all", "--dry-run", "--json"], &dir);
        let n = all["leftovers"][kind].as_u64().unwrap();
        assert!(n > 0, "{name}: {all}");
        // A scrub of one collection leaves them: they belong to none.
        let out = bin()
            .args([
                "scrub",
                "--collection",
                "canary-l2",
                "--yes",
                "--no-backup",
                "--json",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            r["leftovers_removed"].get(kind).map_or(true, |v| v == 0),
            "{name}: {r}"
        );
        let still = json_of(&["scrub", "--all", "--dry-run", "--json"], &dir);
        assert_eq!(still["leftovers"][kind], n, "{name}: {still}");
        let r = scrubbed(&dir, &["--no-backup"], name);
        assert_eq!(r["leftovers_removed"][kind], n, "{name}: {r}");
        let again = json_of(&["scrub", "--all", "--dry-run", "--json"], &dir);
        assert_eq!(again["leftovers"][kind], 0, "{name}: {again}");
        assert_eq!(again["wal_rows"], 0, "{name}: {again}");
    }
}

#[test]
fn an_index_a_crash_cut_short_keeps_its_whole_wal_and_its_folder_through_a_scrub() {
    // A writer killed mid-persist: data_level0.bin cut short. The WAL is how Chroma rebuilds
    // that index, so a scrub (which rebuilds every other index and removes the WAL rows the
    // purge rule lets go) must leave this collection's rows and folder exactly as they are.
    for name in ["canaries_v0_4_22", "canaries_v1_5_9"] {
        let (_t, dir) = fixture_copy(name);
        let v = json_of(&["info", "--json"], &dir);
        let c = collection(&v, "canary-l2", "default_tenant");
        let vector = c["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == "VECTOR")
            .unwrap();
        let seg = vector["id"].as_str().unwrap().to_string();
        // hnswlib writes the file at the index's capacity: cut inside its elements.
        let index = &vector["index"];
        let per = index["files"]["data_level0.bin"].as_u64().unwrap()
            / index["max_elements"].as_u64().unwrap();
        let level0 = dir.join(&seg).join("data_level0.bin");
        common::damage::cut(&level0, per * index["elements"].as_u64().unwrap() / 2);
        let folder = all_bytes(&dir.join(&seg));
        let v = json_of(&["info", "--json"], &dir);
        let c = collection(&v, "canary-l2", "default_tenant");
        assert_eq!(c["health"], "damaged", "{name}: {c}");
        let wal = c["wal_rows"].as_u64().unwrap();
        assert!(wal > 0, "{name}: {c}");
        let others: u64 = v["collections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["name"] != "canary-l2")
            .map(|o| o["prunable_rows"].as_u64().unwrap())
            .sum();
        assert!(others > 0, "{name}: nothing else to scrub");
        let r = scrubbed(&dir, &["--no-backup"], name);
        let after = json_of(&["info", "--json"], &dir);
        let c = collection(&after, "canary-l2", "default_tenant");
        assert_eq!(c["wal_rows"].as_u64(), Some(wal), "{name}: {r}");
        assert_eq!(c["health"], "damaged", "{name}: {c}");
        assert_eq!(all_bytes(&dir.join(&seg)), folder, "{name}: {r}");
        let rebuilt = r["indexes_rebuilt"].as_array().unwrap();
        assert!(
            rebuilt.iter().all(|i| i["collection"] != "canary-l2"),
            "{name}: {r}"
        );
        // The rest was scrubbed.
        assert!(
            rebuilt.iter().any(|i| i["collection"] == "canary-cosine"),
            "{name}: {r}"
        );
        assert!(r["rows_deleted"].as_u64().unwrap() > 0, "{name}: {r}");
    }
}

#[test]
fn without_yes_and_no_terminal_it_refuses_and_writes_nothing() {
    let (_t, dir) = fixture_copy("canaries_v1_5_9");
    let before = all_bytes(&dir);
    let out = bin().args(["scrub", "--all"]).arg(&dir).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(all_bytes(&dir), before);
}
