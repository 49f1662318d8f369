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
