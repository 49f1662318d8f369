//! The engine against persist dirs written by real chromadb releases. Every expected value
//! comes from `<fixture>.expected.json`, which the generator computed with Python's sqlite3
//! and a restricted unpickler, independently of this crate.

mod common;

use chroma_wal::chroma::{wal, Era, SeqIdSource, Snapshot, TopicOwner};
use common::*;
use serde_json::Value;

fn era_of(name: &str) -> Era {
    match name {
        "v0_4_22" => Era::V04,
        "v0_5_5" => Era::V050,
        "v0_6_3" | "upgraded_0_4_22_to_0_6_3" => Era::V056,
        "v1_5_9" | "upgraded_0_5_5_to_1_5_9" => Era::V1,
        other => panic!("no era expectation for {other}"),
    }
}

fn scan(name: &str) -> (Snapshot, chroma_wal::chroma::WalStats, Value) {
    let snap = Snapshot::open(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let w = wal::scan(&snap, &mut |_, _| true).unwrap();
    (snap, w, expected(name))
}

#[test]
fn era_migrations_and_purge_setting_match() {
    for name in FIXTURES {
        let (snap, _, exp) = scan(name);
        assert_eq!(snap.schema.era, era_of(name), "{name}");
        assert!(snap.schema.prune_blocker.is_none(), "{name}");
        for (dir, v) in exp["migrations"].as_object().unwrap() {
            assert_eq!(
                snap.schema.migrations.get(dir).copied(),
                v.as_i64(),
                "{name} {dir}"
            );
        }
        assert_eq!(
            snap.schema.migrations.len(),
            exp["migrations"].as_object().unwrap().len()
        );
        assert_eq!(
            snap.automatically_purge,
            exp["automatically_purge"].as_bool(),
            "{name}"
        );
    }
}

#[test]
fn every_collection_in_every_tenant_and_database() {
    for name in FIXTURES {
        let (snap, _, exp) = scan(name);
        let mut ours: Vec<(String, String, String, String)> = snap
            .collections
            .iter()
            .map(|c| {
                (
                    c.tenant.clone().unwrap_or_default(),
                    c.database.clone().unwrap_or_default(),
                    c.name.clone(),
                    c.id.clone(),
                )
            })
            .collect();
        ours.sort();
        // What the release itself listed through its API.
        let mut api: Vec<(String, String, String, String)> = exp["api"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["tenant"].as_str().unwrap().to_string(),
                    c["database"].as_str().unwrap().to_string(),
                    c["name"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        api.sort();
        assert_eq!(ours, api, "{name}");
        assert!(
            ours.iter().any(|c| c.0 == "acme" && c.1 == "research"),
            "{name}: the non-default tenant is missing"
        );
    }
}

#[test]
fn max_seq_id_sources_bounds_and_prunable_rows_match() {
    let mut sources_seen = std::collections::BTreeSet::new();
    for name in FIXTURES {
        let (snap, w, exp) = scan(name);
        for ec in exp["collections"].as_array().unwrap() {
            let id = ec["id"].as_str().unwrap();
            let i = snap
                .collections
                .iter()
                .position(|c| c.id == id)
                .unwrap_or_else(|| panic!("{name}: collection {id} missing"));
            let c = &snap.collections[i];
            assert_eq!(c.dimension, ec["dimension"].as_i64(), "{name} {}", c.name);
            assert_eq!(
                c.bound.value(),
                ec["expected_prune_bound"].as_i64(),
                "{name} {}: bound",
                c.name
            );
            let rows: u64 = w.of_collection(i).map(|t| t.rows).sum();
            let prunable: u64 = w.of_collection(i).map(|t| t.prunable).sum();
            assert_eq!(
                rows,
                ec["wal_rows"].as_u64().unwrap(),
                "{name} {}: rows",
                c.name
            );
            assert_eq!(
                prunable,
                ec["expected_prunable_rows"].as_u64().unwrap(),
                "{name} {}: prunable",
                c.name
            );
            for es in ec["segments"].as_array().unwrap() {
                let sid = es["id"].as_str().unwrap();
                let s = c.segments.iter().find(|s| s.id == sid).unwrap();
                assert_eq!(
                    s.max_seq_id,
                    es["effective_max_seq_id"].as_i64(),
                    "{name} {sid}"
                );
                let want = match (
                    es["table_typeof"].as_str(),
                    es["pickle_max_seq_id"].as_i64(),
                ) {
                    (Some("blob"), _) => SeqIdSource::SqliteBlob,
                    (Some("integer"), _) => SeqIdSource::SqliteInteger,
                    (None, Some(_)) if s.scope == "VECTOR" => SeqIdSource::Pickle,
                    _ => SeqIdSource::Unknown,
                };
                assert_eq!(s.source, want, "{name} {sid}");
                sources_seen.insert(s.source.key());
                if s.source == SeqIdSource::Unknown {
                    assert!(
                        s.problem.is_some(),
                        "{name} {sid}: unknown without a reason"
                    );
                }
            }
        }
    }
    // The fixtures cover every source of max_seq_id.
    assert_eq!(
        sources_seen.into_iter().collect::<Vec<_>>(),
        ["pickle", "sqlite_blob", "sqlite_integer", "unknown"]
    );
}

#[test]
fn small_and_empty_collections_are_held_back_with_a_reason() {
    for name in FIXTURES {
        let (snap, _, _) = scan(name);
        for n in ["small", "empty"] {
            let c = snap
                .collections
                .iter()
                .find(|c| c.name == n && c.tenant.as_deref() == Some("default_tenant"))
                .unwrap();
            assert_eq!(c.bound.value(), None, "{name} {n}");
            assert!(!c.status().is_empty() && c.status() != "ok", "{name} {n}");
        }
        let small = snap.collections.iter().find(|c| c.name == "small").unwrap();
        assert_eq!(small.status(), "vector index not yet persisted", "{name}");
    }
}

#[test]
fn wal_topics_match_and_none_is_orphaned() {
    for name in FIXTURES {
        let (snap, w, exp) = scan(name);
        let topics = exp["wal_topics"].as_object().unwrap();
        assert_eq!(w.topics.len(), topics.len(), "{name}");
        for t in &w.topics {
            let e = &topics[&t.topic];
            assert_eq!(t.rows, e["rows"].as_u64().unwrap(), "{name} {}", t.topic);
            assert_eq!(t.min_seq_id, e["min_seq_id"].as_i64().unwrap());
            assert_eq!(t.max_seq_id, e["max_seq_id"].as_i64().unwrap());
            assert!(matches!(snap.owner_of(&t.topic), TopicOwner::Collection(_)));
        }
        // Every release here deletes a dropped collection's WAL rows with it.
        assert_eq!(exp["orphan_topics"].as_array().unwrap().len(), 0, "{name}");
        assert_eq!(w.orphans().count(), 0, "{name}");
    }
}

#[test]
fn a_deleted_collection_leaves_an_orphan_topic_that_may_go_whole() {
    // No release used here leaves orphan rows behind, so make one the way an interrupted
    // delete_collection would: remove the collection's catalog rows, keep its WAL rows.
    let (_t, dir) = fixture_copy("v0_5_5");
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    // Chroma's segments table references a table named `collection` that does not exist.
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let id: String = c
        .query_row(
            "SELECT c.id FROM collections c JOIN databases d ON d.id = c.database_id WHERE c.name = 'papers' AND d.name = 'research'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute("DELETE FROM segments WHERE collection = ?1", [&id])
        .unwrap();
    c.execute("DELETE FROM collections WHERE id = ?1", [&id])
        .unwrap();
    drop(c);
    let snap = Snapshot::open(&dir).unwrap();
    let w = wal::scan(&snap, &mut |_, _| true).unwrap();
    let orphans: Vec<_> = w.orphans().collect();
    assert_eq!(orphans.len(), 1);
    let o = orphans[0];
    assert!(o.topic.ends_with(&id));
    assert_eq!(o.prunable, o.rows);
    assert_eq!(o.bound, Some(o.max_seq_id + 1));
    // The segment folder it left is reported as having no segment.
    assert!(!snap.orphan_segment_dirs.is_empty());
}

#[test]
fn reading_changes_nothing() {
    for name in FIXTURES {
        let (_t, dir) = fixture_copy(name);
        let f = dir.join("chroma.sqlite3");
        let bytes = std::fs::read(&f).unwrap();
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        let snap = Snapshot::open(&dir).unwrap();
        wal::scan(&snap, &mut |_, _| true).unwrap();
        assert_eq!(bytes, std::fs::read(&f).unwrap(), "{name}");
        assert_eq!(
            mtime,
            std::fs::metadata(&f).unwrap().modified().unwrap(),
            "{name}"
        );
        assert!(!dir.join("chroma.sqlite3-journal").exists());
    }
}

#[test]
fn the_catalog_first_then_its_folders_is_the_same_snapshot() {
    // The explorer shows the collections before their segment folders are read; once read,
    // the snapshot is the one `info` reads in one go, on every fixture (and on damage).
    let (_t, damaged) = fixture_copy("v0_4_22");
    let pickle = std::fs::read_dir(&damaged)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("index_metadata.pickle"))
        .find(|p| p.is_file())
        .unwrap();
    let len = std::fs::metadata(&pickle).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pickle)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let dirs = FIXTURES.iter().map(|n| fixture_path(n)).chain([damaged]);
    for dir in dirs {
        let whole = Snapshot::open_deferred(&dir).unwrap();
        let mut first = Snapshot::open_catalog(&dir).unwrap();
        assert!(first.folders_pending());
        assert_eq!(first.collections.len(), whole.collections.len());
        for c in &first.collections {
            assert!(c.segments.is_empty(), "{}", dir.display());
            assert_eq!(c.bound.value(), None);
            assert_eq!(c.status(), chroma_wal::chroma::snapshot::CHECKING);
        }
        // Nothing is prunable before the folders are read: no bound, no orphan folder.
        assert!(first.orphan_segment_dirs.is_empty());
        first.read_folders();
        assert!(!first.folders_pending());
        assert_eq!(first.collections, whole.collections, "{}", dir.display());
        // (Holders are left out: other tests read these fixtures at the same time.)
        let said = |s: &Snapshot| {
            s.warnings
                .iter()
                .filter(|w| !w.contains("open in"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(said(&first), said(&whole));
        assert_eq!(first.orphan_segment_dirs, whole.orphan_segment_dirs);
        assert_eq!(first.sizes, whole.sizes);
        let ids = |s: &Snapshot| s.pending.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), ids(&whole));
        // Reading them twice changes nothing.
        first.read_folders();
        assert_eq!(first.collections, whole.collections);
    }
}

#[test]
fn a_wide_wal_counted_in_two_halves_matches_one_connection() {
    // Rows far apart (a seq_id span of millions, gaps on both sides of the middle): the
    // two-halves count and the one-connection count agree topic by topic.
    let (_t, dir) = fixture_copy("v1_5_9");
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let top: i64 = c
        .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    for (k, s) in [1_000_000i64, 1_000_001, 2_500_000, 4_000_000]
        .iter()
        .enumerate()
    {
        c.execute(
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) \
             SELECT ?1, operation, topic, id, vector, encoding, metadata FROM embeddings_queue \
             ORDER BY seq_id LIMIT 1 OFFSET ?2",
            rusqlite::params![top + s, k as i64 * 7],
        )
        .unwrap();
    }
    drop(c);
    let snap = Snapshot::open(&dir).unwrap();
    let halves = wal::scan(&snap, &mut |_, _| true).unwrap();
    let conn = chroma_wal::chroma::db::open_read_only(&snap.sqlite_path).unwrap();
    let one = wal::scan_with(&conn, &snap, &mut |_, _| true).unwrap();
    assert_eq!(halves.topics, one.topics);
    assert_eq!(halves.rows(), one.rows());
    let raw: i64 = ro(&dir)
        .query_row("SELECT COUNT(*) FROM embeddings_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(halves.rows(), raw as u64);
}

#[test]
fn a_segment_folder_moved_away_and_linked_back_is_still_its_folder() {
    // Chroma follows the link; so must the verdict: same health, same position, no damage,
    // and the link is no orphan folder.
    for name in ["v0_4_22", "v1_5_9"] {
        let (_t, dir) = fixture_copy(name);
        let before = Snapshot::open(&dir).unwrap();
        let seg = before
            .collections
            .iter()
            .flat_map(|c| c.segments.iter())
            .find(|s| s.scope == "VECTOR" && s.index.is_some())
            .unwrap()
            .clone();
        let away = tempfile::tempdir().unwrap();
        let moved = away.path().join(&seg.id);
        std::fs::rename(dir.join(&seg.id), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, dir.join(&seg.id)).unwrap();
        let after = Snapshot::open(&dir).unwrap();
        let again = after
            .collections
            .iter()
            .flat_map(|c| c.segments.iter())
            .find(|s| s.id == seg.id)
            .unwrap();
        assert_eq!(again.health, seg.health, "{name}");
        assert_eq!(again.max_seq_id, seg.max_seq_id, "{name}");
        assert_eq!(again.index, seg.index, "{name}");
        assert_eq!(
            after.orphan_segment_dirs, before.orphan_segment_dirs,
            "{name}"
        );
        assert!(
            !after.warnings.iter().any(|w| w.contains("damaged")),
            "{name}: {:?}",
            after.warnings
        );
    }
}
