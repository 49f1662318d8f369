//! Issue 38's half-written persists, made from a real 1.5.9 fixture (purging off, so the WAL
//! holds every vector): `data_level0.bin` cut short under a header that counts more elements
//! (a crash mid-persist, or a header of a later persist than its files; chroma issue 7238),
//! and a cosine index's `length.bin` cut short (7069). Each is damaged and keeps its WAL;
//! `compact --repair` brings every record back with the embedding the release's own `get()`
//! returned before the damage; `check` then passes.

mod common;

use common::*;
use serde_json::Value;

/// Every record of collection `name` as the release's own get() returned it before the damage.
fn release_records(fixture: &str, id: &str) -> Vec<(String, Vec<f64>)> {
    let recs =
        std::fs::read_to_string(root().join(format!("tests/fixtures/{fixture}.records.json")))
            .unwrap();
    let v: Value = serde_json::from_str(&recs).unwrap();
    let mut out: Vec<(String, Vec<f64>)> = v["collections"][id]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let e = r["embedding"].as_array().unwrap();
            (
                r["id"].as_str().unwrap().to_string(),
                e.iter().map(|x| x.as_f64().unwrap()).collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn ours(dir: &std::path::Path, id: &str) -> Vec<(String, Option<Vec<f64>>)> {
    let mut out: Vec<_> = jsonl_of(&["records", "--jsonl", "--collection", id], dir)
        .into_iter()
        .map(|r| {
            let e = r["embedding"]
                .as_array()
                .map(|e| e.iter().map(|x| x.as_f64().unwrap()).collect());
            (r["id"].as_str().unwrap().to_string(), e)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-6 * (1.0 + y.abs()))
}

fn cut(path: &std::path::Path, keep: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

fn check_code(dir: &std::path::Path) -> (i32, Value) {
    let out = bin().args(["check", "--json"]).arg(dir).output().unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

/// Damage `name`'s index in a copy of v1_5_9 with `damage(folder, header)`, then repair it and
/// compare every record with the release's own get() of the untouched dir.
fn damaged_then_repaired(name: &str, damage: &dyn Fn(&std::path::Path, u64, u64)) -> Value {
    damaged_then_repaired_as(name, true, damage)
}

/// As above; `from_wal`: some records must come back from the WAL (a graph-only damage keeps
/// every vector in the index files).
fn damaged_then_repaired_as(
    name: &str,
    from_wal: bool,
    damage: &dyn Fn(&std::path::Path, u64, u64),
) -> Value {
    let fixture = "v1_5_9";
    let (t, dir) = fixture_copy(fixture);
    let v = json_of(&["info", "--json"], &dir);
    let c = collection(&v, name, "default_tenant");
    let id = c["id"].as_str().unwrap().to_string();
    let seg = vector_dir(&v, name);
    let elements = c["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == "VECTOR")
        .unwrap()["index"]["elements"]
        .as_u64()
        .unwrap();
    let h = std::fs::read(dir.join(&seg).join("header.bin")).unwrap();
    let size = u64::from_le_bytes(h[28..36].try_into().unwrap());
    damage(&dir.join(&seg), elements, size);
    let before = prune_json(&dir, &["--dry-run"]);
    // What the repair brings back is the first thing info says about the damaged index.
    let info = json_of(&["info", "--json"], &dir);
    let rep = &collection(&info, name, "default_tenant")["repair"];
    assert_eq!(rep["rebuilds"], true, "{name}: {rep}");
    assert_eq!(
        rep["restored"].as_u64().unwrap() > 0,
        from_wal,
        "{name}: {rep}"
    );
    assert_eq!(rep["unrecoverable"], 0, "{name}: {rep}");
    let text = String::from_utf8(bin().arg("info").arg(&dir).output().unwrap().stdout).unwrap();
    let said = text.find("--repair rebuilds it").unwrap_or(usize::MAX);
    let manual = text.find("To recover:").unwrap_or(0);
    assert!(
        said < manual,
        "{name}: the repair is not said first:\n{text}"
    );
    let (code, chk) = check_code(&dir);
    assert_eq!(code, 4, "{name}: {chk}");
    let d = &chk["damaged"][0];
    assert_eq!(d["collection"], name, "{chk}");
    // The WAL stays whole: nothing of the damaged collection is planned to go.
    for tp in before["topics"].as_array().unwrap() {
        assert!(tp["collection"] != name, "{name}: {tp}");
    }
    let backups = t.path().join("b");
    let r = json_of(
        &[
            "compact",
            "--collection",
            &id,
            "--repair",
            "--yes",
            "--json",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
        &dir,
    );
    let (code, chk) = check_code(&dir);
    assert_eq!(code, 0, "{name} after the repair: {chk}\n{r}");
    let want = release_records(fixture, &id);
    let got = ours(&dir, &id);
    assert_eq!(got.len(), want.len(), "{name}");
    for ((gi, ge), (wi, we)) in got.iter().zip(&want) {
        assert_eq!(gi, wi);
        let ge = ge
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {gi} has no embedding"));
        assert!(close(ge, we), "{name}: {gi}: {ge:?} against {we:?}");
    }
    // restore puts the damaged folder back.
    bin()
        .args(["restore", "--yes", "--force", "--from"])
        .arg(&backups)
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(
        check_code(&dir).0,
        4,
        "{name}: restore did not put the damage back"
    );
    r
}

#[test]
fn a_persist_cut_short_comes_back_whole_from_its_elements_and_the_wal() {
    for name in ["big", "cosine-docs", "inner-product"] {
        let r = damaged_then_repaired(name, &|folder, n, size| {
            cut(&folder.join("data_level0.bin"), (n / 2) * size + size / 3);
        });
        let notes = r["notes"].to_string();
        assert!(notes.contains("were not whole"), "{name}: {r}");
        assert!(
            r["unrecoverable"].as_array().unwrap().is_empty(),
            "{name}: {r}"
        );
    }
}

#[test]
fn a_cut_cosine_length_file_takes_the_norms_from_the_wal() {
    let r = damaged_then_repaired("cosine-docs", &|folder, n, _| {
        cut(&folder.join("length.bin"), (n / 3) * 4);
    });
    assert!(r["unrecoverable"].as_array().unwrap().is_empty(), "{r}");
}

#[test]
fn a_lost_norm_no_wal_row_holds_keeps_its_direction_and_is_named() {
    let fixture = "v1_5_9";
    let (_t, dir) = fixture_copy(fixture);
    // The rows below every index's position go first, as Chroma's own purge would take them.
    prune_json(&dir, &[]);
    let v = json_of(&["info", "--json"], &dir);
    let c = collection(&v, "cosine-docs", "default_tenant");
    let id = c["id"].as_str().unwrap().to_string();
    let seg = vector_dir(&v, "cosine-docs");
    cut(&dir.join(&seg).join("length.bin"), 40 * 4);
    assert_eq!(check_code(&dir).0, 4);
    let plan = json_of(
        &[
            "compact",
            "--collection",
            &id,
            "--repair",
            "--dry-run",
            "--json",
        ],
        &dir,
    );
    assert!(plan["notes"].to_string().contains("unit vectors"), "{plan}");
    let r = json_of(
        &[
            "compact",
            "--collection",
            &id,
            "--repair",
            "--yes",
            "--no-backup",
            "--json",
        ],
        &dir,
    );
    let said = r["notes"].to_string();
    assert!(said.contains("kept their direction only"), "{r}");
    assert_eq!(check_code(&dir).0, 0);
    let want = release_records(fixture, &id);
    let got = ours(&dir, &id);
    assert_eq!(got.len(), want.len());
    let (mut exact, mut direction) = (0, 0);
    let unit = |v: &[f64]| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| x / n).collect::<Vec<_>>()
    };
    for ((gi, ge), (wi, we)) in got.iter().zip(&want) {
        assert_eq!(gi, wi);
        let ge = ge.as_ref().unwrap();
        if close(ge, we) {
            exact += 1;
        } else {
            let n = ge.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((n - 1.0).abs() < 1e-5, "{gi}: {ge:?}");
            let (a, b) = (unit(ge), unit(we));
            assert!(
                close(&a, &b) || a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
                "{gi}"
            );
            direction += 1;
        }
    }
    assert!(
        direction > 0 && exact > 0,
        "{exact} exact, {direction} direction only"
    );
}

/// The first element with upper levels, and where its list size is in `link_lists.bin`.
fn first_upper_list(folder: &std::path::Path, n: u64) -> Option<u64> {
    let b = std::fs::read(folder.join("link_lists.bin")).unwrap();
    let mut at = 0usize;
    for _ in 0..n {
        let size = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if size > 0 {
            return Some(at as u64);
        }
        at += 4 + size;
    }
    None
}

#[test]
fn a_torn_list_size_and_zeroed_upper_lists_are_repaired_whole() {
    // A list size torn mid-write (chroma issue 7510: every persist then seeks past the end),
    // and the upper-level lists zeroed (6979): the vectors are whole, the graph is not.
    for name in ["big", "cosine-docs"] {
        damaged_then_repaired_as(name, false, &|folder, n, _| {
            let at = first_upper_list(folder, n).expect("an element with upper levels");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(folder.join("link_lists.bin"))
                .unwrap();
            use std::os::unix::fs::FileExt;
            f.write_all_at(&0xFFFF_FF00u32.to_le_bytes(), at).unwrap();
        });
        damaged_then_repaired_as(name, false, &|folder, _, _| {
            let p = folder.join("link_lists.bin");
            let len = std::fs::metadata(&p).unwrap().len();
            std::fs::write(&p, vec![0u8; len as usize]).unwrap();
        });
    }
}
