//! A `link_lists.bin` grown far past what its elements explain (chroma issue 7510: a torn list
//! size makes every persist seek past the end and write, to terabytes): `info` says how big it
//! is, how much of it is on disk, that it is garbage, that every write while Chroma runs grows
//! it, and what rebuilds it.

mod common;

use common::*;

#[test]
fn a_runaway_link_list_is_said_with_its_size_on_disk() {
    let (_t, dir) = fixture_copy("v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let seg = vector_dir(&v, "big");
    let ll = dir.join(&seg).join("link_lists.bin");
    // Grown by seeking past the end, as hnswlib's persist does: a sparse 2 GiB file.
    let f = std::fs::OpenOptions::new().write(true).open(&ll).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let v = json_of(&["info", "--json"], &dir);
    let warning = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .find(|w| w.contains("link_lists.bin is 2 GiB"))
        .unwrap_or_else(|| panic!("{}", v["warnings"]))
        .to_string();
    assert!(warning.contains("of it on disk: sparse"), "{warning}");
    assert!(
        warning.contains("every write while Chroma runs grows it"),
        "{warning}"
    );
    assert!(warning.contains("compact --repair"), "{warning}");
    let s = collection(&v, "big", "default_tenant")["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == "VECTOR")
        .unwrap()
        .clone();
    let apparent = s["index"]["files"]["link_lists.bin"].as_u64().unwrap();
    let on_disk = s["index"]["link_lists_allocated"].as_u64().unwrap();
    assert_eq!(apparent, 2 << 30);
    assert!(on_disk < apparent / 100, "{on_disk} of {apparent}");
}

/// The rebuild's backup on another filesystem needs room for the runaway file's blocks, not
/// its length: the old folder is copied as its data extents (a 16 GiB file onto a 256 MiB
/// disk), reads back byte for byte, and `restore` puts it back sparse.
#[test]
fn a_runaway_link_list_is_backed_up_on_another_disk_without_its_holes() {
    let Some(fs) = Tmpfs::new(256 << 20) else {
        return;
    };
    let (_t, dir) = fixture_copy("v1_5_9");
    let v = json_of(&["info", "--json"], &dir);
    let id = collection(&v, "big", "default_tenant")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let seg = vector_dir(&v, "big");
    let ll = dir.join(&seg).join("link_lists.bin");
    let grown: u64 = 16 << 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ll)
        .unwrap()
        .set_len(grown)
        .unwrap();
    let backups = fs.path.join("b");
    let r = json_of(
        &[
            "compact",
            "--collection",
            &id,
            "--yes",
            "--json",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(r["indexes"].as_array().unwrap().len(), 1, "{r}");
    let now = std::fs::metadata(&ll).unwrap().len();
    assert!(now < 1 << 20, "the rebuilt link_lists.bin is {now} bytes");
    let kept: Vec<_> = files_below(&backups)
        .into_iter()
        .filter(|p| p.ends_with("link_lists.bin"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::metadata(&kept[0]).unwrap().len(), grown);
    bin()
        .args(["restore", "--yes", "--from"])
        .arg(&backups)
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(std::fs::metadata(&ll).unwrap().len(), grown);
}
