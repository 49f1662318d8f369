//! What a prune would delete: pure data computed from a snapshot, its WAL counts and a
//! selection. The confirmation, `--dry-run` and `--json` all show this same value.

pub use super::topic::PlanTopic;
use crate::chroma::{Snapshot, TopicOwner, WalStats};
use crate::error::{Error, Result};
use crate::jobs::steps::orphans::Leftovers;

/// What the user asked to prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every topic with prunable rows, orphan topics included.
    All,
    /// Collections by name or id (every topic each one owns).
    Collections(Vec<String>),
    /// WAL topics, exactly as stored.
    Topics(Vec<String>),
}

/// An orphan segment folder the prune reclaims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDir {
    pub name: String,
    pub bytes: u64,
}

/// A prune, before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub topics: Vec<PlanTopic>,
    /// Orphan segment folders to reclaim (`--orphan-dirs`, or marked in the explorer).
    pub dirs: Vec<PlanDir>,
    /// Collections (by id) whose vector index is rebuilt without its ghosts, with the records
    /// the WAL can put back (marked in the explorer; `compact --repair` in the batch front
    /// end). The job reads each index again and plans it off the UI thread.
    pub indexes: Vec<String>,
    /// What the plan leaves out and why (damaged collections, the seq_id guard).
    pub notes: Vec<String>,
    /// Size of `chroma.sqlite3` when the plan was made.
    pub sqlite_bytes: u64,
    /// Free pages inside it, which a compaction gives back too.
    pub free_bytes: u64,
    pub dir_bytes: u64,
    /// Not counted yet: the prune's own copy counts the WAL under its lock and settles the
    /// topics of this selection from it ([`Plan::deferred`]).
    pub deferred: Option<Selection>,
    /// A scrub's plan: the file is compacted whatever else goes, and the marked indexes are
    /// rebuilt without putting anything back. With `Some(counts)`, the rows no segment,
    /// collection or record points to (a scrub of the whole dir) also go, in the delete's
    /// transaction; with `Some(None)` (a scrub of some collections) they stay.
    pub scrub: Option<Option<Leftovers>>,
}

impl Plan {
    /// Build the plan for `selection`.
    pub fn build(snap: &Snapshot, wal: &WalStats, selection: &Selection) -> Result<Plan> {
        let mut topics = Self::topics(snap, wal, selection)?;
        let mut notes = Vec::new();
        for (i, c) in snap.collections.iter().enumerate() {
            if !c.keeps_whole_wal() {
                continue;
            }
            let asked = match selection {
                Selection::All => true,
                _ => topics
                    .iter()
                    .any(|t| t.collection.as_ref().is_some_and(|(id, _)| id == &c.id)),
            };
            let rows: u64 = wal.of_collection(i).map(|t| t.rows).sum();
            if asked && rows > 0 {
                notes.push(format!(
                    "skipped {} ({}): {}; its {} WAL rows are kept",
                    c.name,
                    c.id,
                    c.status(),
                    crate::units::count(rows)
                ));
            }
        }
        super::guard::plan(snap, wal, &mut topics);
        Ok(Plan {
            topics,
            dirs: Vec::new(),
            indexes: Vec::new(),
            notes,
            sqlite_bytes: snap.sizes.sqlite,
            free_bytes: snap.free_bytes(),
            dir_bytes: snap.sizes.dir,
            deferred: None,
            scrub: None,
        })
    }

    /// A plan whose WAL the prune's copy counts, under the prune's lock, for `prune --yes`
    /// where no one reads the plan before it runs: a 20 GB WAL is read once, not once to
    /// plan and again to copy. It lists no topic; the job settles them from the copy's counts
    /// exactly as [`Plan::build`] would from a count, with the guards and the coverage check,
    /// and copies again if they leave out other rows than the copy did. Names are checked
    /// here; a topic selection needs the count first (a topic with no rows is an error).
    pub fn deferred(snap: &Snapshot, selection: &Selection) -> Result<Plan> {
        match selection {
            Selection::All => {}
            Selection::Collections(names) => {
                for n in names {
                    snap.find_collection(n)?;
                }
            }
            Selection::Topics(_) => {
                return Err(Error::Usage(
                    "a topic selection is planned from a count of the WAL".into(),
                ))
            }
        }
        Ok(Plan {
            topics: Vec::new(),
            dirs: Vec::new(),
            indexes: Vec::new(),
            notes: Vec::new(),
            sqlite_bytes: snap.sizes.sqlite,
            free_bytes: snap.free_bytes(),
            dir_bytes: snap.sizes.dir,
            deferred: Some(selection.clone()),
            scrub: None,
        })
    }

    /// The topics of the plan, before the guards.
    fn topics(snap: &Snapshot, wal: &WalStats, selection: &Selection) -> Result<Vec<PlanTopic>> {
        let mut topics = Vec::new();
        match selection {
            Selection::All => {
                for t in wal.topics.iter().filter(|t| t.prunable > 0) {
                    topics.push(plan_topic(snap, t));
                }
            }
            Selection::Collections(names) => {
                let mut seen = Vec::new();
                for n in names {
                    let i = snap.find_collection(n)?;
                    if seen.contains(&i) {
                        continue;
                    }
                    seen.push(i);
                    let c = &snap.collections[i];
                    let mut any = false;
                    for t in wal.of_collection(i) {
                        any = true;
                        topics.push(plan_topic(snap, t));
                    }
                    if !any {
                        topics.push(PlanTopic {
                            topic: c.default_topic(),
                            collection: Some((c.id.clone(), c.name.clone())),
                            bound: c.bound.value(),
                            rows: 0,
                            wal_rows: 0,
                            bytes: 0,
                            note: Some("no WAL rows".into()),
                        });
                    }
                }
            }
            Selection::Topics(list) => {
                for name in list {
                    if topics.iter().any(|t: &PlanTopic| &t.topic == name) {
                        continue;
                    }
                    let t = wal
                        .topic(name)
                        .ok_or_else(|| Error::Usage(format!("no WAL rows have topic `{name}`")))?;
                    topics.push(plan_topic(snap, t));
                }
            }
        }
        Ok(topics)
    }

    /// Add index rebuilds, by collection id.
    pub fn with_indexes(mut self, ids: Vec<String>) -> Plan {
        self.indexes = ids;
        self
    }

    /// Add orphan segment folders: every reclaimable one, or those named.
    pub fn with_dirs(mut self, snap: &Snapshot, only: Option<&[String]>) -> Plan {
        for o in &snap.orphan_segment_dirs {
            let wanted = only.map_or(true, |names| names.iter().any(|n| n == &o.name));
            if !wanted {
                continue;
            }
            match &o.keep {
                None => self.dirs.push(PlanDir {
                    name: o.name.clone(),
                    bytes: o.bytes,
                }),
                Some(why) => self.notes.push(format!("folder {}: {why}", o.name)),
            }
        }
        self
    }

    /// What the prune does to the filesystem's free space: `(until the backup is deleted,
    /// once it is)`. With a backup the old file (a hard link, or a copy of it) keeps its
    /// blocks, so the disk first has about the new file's size less free; deleting the backup
    /// then gives back the old file and the folders. Without one, the difference is free at
    /// once. Estimates, from the plan's sizes.
    pub fn disk_effect(&self, backup: bool) -> (i64, u64) {
        let old = self.sqlite_bytes;
        let new = self.estimated_sqlite_after();
        let freed = old.saturating_sub(new) + self.dir_bytes_total();
        if !self.has_rows() {
            return (if backup { 0 } else { freed as i64 }, freed);
        }
        if backup {
            (-(new as i64), freed)
        } else {
            (freed as i64, freed)
        }
    }

    fn has_rows(&self) -> bool {
        self.effective().next().is_some()
    }

    /// Bytes of the folders to reclaim.
    pub fn dir_bytes_total(&self) -> u64 {
        self.dirs.iter().map(|d| d.bytes).sum()
    }

    pub fn rows(&self) -> u64 {
        self.topics.iter().map(|t| t.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.topics.iter().map(|t| t.bytes).sum()
    }

    /// Topics that will actually lose rows.
    pub fn effective(&self) -> impl Iterator<Item = &PlanTopic> {
        self.topics
            .iter()
            .filter(|t| t.rows > 0 && t.bound.is_some())
    }

    /// The most `chroma.sqlite3` can hold after a compaction: the file less the free pages
    /// and the payload of the rows that go. The rows' pages also held headers and slack,
    /// so the file comes out smaller (the demo: at most 2.26 MiB, 2.47 MiB before the free
    /// pages counted, and 1.93 MiB in fact): it is said as an upper bound.
    pub fn estimated_sqlite_after(&self) -> u64 {
        self.sqlite_bytes
            .saturating_sub(self.free_bytes)
            .saturating_sub(self.bytes())
    }
}

/// What a prune that finds nothing to delete says: nothing was written, what a compaction
/// alone would give back (unless one was asked for with `--compact`: `compact_asked`), and a
/// retired journal beside the file. `counted`: the copy counted the WAL and was discarded.
pub fn nothing_to_prune(snap: &Snapshot, compact_asked: bool, counted: bool) -> String {
    let free_bytes = if compact_asked { 0 } else { snap.free_bytes() };
    let how = if counted {
        " (counted as the WAL was copied; the copy was discarded)"
    } else {
        ""
    };
    let mut s = format!(
        "nothing to prune: no selected topic has rows below its bound{how}, and nothing was \
         written"
    );
    if free_bytes > 0 {
        s.push_str(&format!(
            ". A compaction alone would give back {} of free pages: ask for it with --compact",
            crate::units::bytes(free_bytes)
        ));
    }
    // A journal beside the file here is a retired one (a hot journal is refused before
    // this point): SQLite ignores it and removes it at its next write.
    if crate::chroma::db::side_file(&snap.sqlite_path, "-journal").exists() {
        s.push_str(
            ". A retired chroma.sqlite3-journal (of an interrupted transaction) is beside it; \
             SQLite removes it at its next write",
        );
    }
    s
}

fn plan_topic(snap: &Snapshot, t: &crate::chroma::TopicStats) -> PlanTopic {
    let (collection, note) = match t.owner {
        TopicOwner::Collection(i) => {
            let c = &snap.collections[i];
            let note = match (&c.bound, t.prunable) {
                (crate::chroma::Bound::Unknown(why), _) => Some(why.clone()),
                (crate::chroma::Bound::Damaged { .. }, _) => Some(c.status()),
                (_, 0) => Some("every row is still needed (at or above the bound)".into()),
                _ => None,
            };
            (Some((c.id.clone(), c.name.clone())), note)
        }
        TopicOwner::Orphan => (None, None),
    };
    PlanTopic {
        topic: t.topic.clone(),
        collection,
        bound: t.bound,
        rows: t.prunable,
        wal_rows: t.rows,
        bytes: t.prunable_bytes,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::procs::Holders;
    use crate::chroma::schema::{Era, Schema};
    use crate::chroma::{Bound, Collection, Sizes, TopicStats};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn coll(id: &str, name: &str, db: &str, bound: Bound) -> Collection {
        Collection {
            id: id.into(),
            name: name.into(),
            tenant: Some("default_tenant".into()),
            database: Some(db.into()),
            dimension: Some(4),
            stored_topic: None,
            segments: Vec::new(),
            bound,
            truth: None,
            repair: None,
        }
    }

    fn snap(collections: Vec<Collection>) -> Snapshot {
        Snapshot {
            persist_dir: PathBuf::from("/p"),
            sqlite_path: PathBuf::from("/p/chroma.sqlite3"),
            schema: Schema {
                era: Era::V1,
                migrations: BTreeMap::new(),
                prune_blocker: None,
                collection_topic: false,
                databases: true,
                queue_config: true,
                max_seq_id_table: true,
                journal_mode: "delete".into(),
                page_size: 4096,
                freelist_pages: 0,
                foreign_migrations: Vec::new(),
            },
            sizes: Sizes {
                sqlite: 1000,
                dir: 2000,
                ..Default::default()
            },
            automatically_purge: Some(false),
            holders: Holders::default(),
            collections,
            orphan_segment_dirs: Vec::new(),
            wal_max_seq_id: Some(100),
            warnings: Vec::new(),
            pending: Vec::new(),
            index: Default::default(),
            unread: None,
        }
    }

    fn topic(
        t: &str,
        owner: TopicOwner,
        rows: u64,
        prunable: u64,
        bound: Option<i64>,
    ) -> TopicStats {
        TopicStats {
            topic: t.into(),
            owner,
            rows,
            min_seq_id: 1,
            max_seq_id: rows as i64,
            bound,
            prunable,
            bytes: rows * 10,
            prunable_bytes: prunable * 10,
        }
    }

    fn world() -> (Snapshot, WalStats) {
        let s = snap(vec![
            coll("a", "docs", "db1", Bound::Known(50)),
            coll("b", "docs", "db2", Bound::Known(10)),
            coll(
                "c",
                "small",
                "db1",
                Bound::Unknown("vector index not yet persisted".into()),
            ),
        ]);
        let w = WalStats {
            changed_during_scan: false,
            by_collection: Default::default(),
            topics: vec![
                topic(
                    "persistent://default/default/a",
                    TopicOwner::Collection(0),
                    100,
                    49,
                    Some(50),
                ),
                topic(
                    "persistent://default/default/b",
                    TopicOwner::Collection(1),
                    20,
                    9,
                    Some(10),
                ),
                topic(
                    "persistent://default/default/c",
                    TopicOwner::Collection(2),
                    5,
                    0,
                    None,
                ),
                topic(
                    "persistent://default/default/gone",
                    TopicOwner::Orphan,
                    7,
                    7,
                    Some(8),
                ),
            ],
        };
        (s, w)
    }

    #[test]
    fn all_takes_every_prunable_topic_and_orphans() {
        let (s, w) = world();
        let p = Plan::build(&s, &w, &Selection::All).unwrap();
        let topics: Vec<&str> = p.topics.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "persistent://default/default/a",
                "persistent://default/default/b",
                "persistent://default/default/gone"
            ]
        );
        assert_eq!(p.rows(), 49 + 9 + 7);
        assert!(p.topics[2].is_orphan());
    }

    #[test]
    fn a_name_in_two_databases_needs_an_id() {
        let (s, w) = world();
        let e = Plan::build(&s, &w, &Selection::Collections(vec!["docs".into()])).unwrap_err();
        assert!(matches!(e, Error::Usage(m) if m.contains("2 databases") && m.contains("a, b")));
        let p = Plan::build(&s, &w, &Selection::Collections(vec!["b".into()])).unwrap();
        assert_eq!(p.rows(), 9);
        assert_eq!(p.topics[0].bound, Some(10));
    }

    #[test]
    fn an_unknown_bound_is_planned_with_its_reason_and_nothing_to_delete() {
        let (s, w) = world();
        let p = Plan::build(&s, &w, &Selection::Collections(vec!["small".into()])).unwrap();
        assert_eq!(p.rows(), 0);
        assert_eq!(p.topics[0].bound, None);
        assert_eq!(
            p.topics[0].note.as_deref(),
            Some("vector index not yet persisted")
        );
        assert_eq!(p.effective().count(), 0);
    }

    #[test]
    fn topics_must_exist_and_are_not_repeated() {
        let (s, w) = world();
        let p = Plan::build(
            &s,
            &w,
            &Selection::Topics(vec![
                "persistent://default/default/gone".into(),
                "persistent://default/default/gone".into(),
            ]),
        )
        .unwrap();
        assert_eq!(p.topics.len(), 1);
        assert!(Plan::build(&s, &w, &Selection::Topics(vec!["nope".into()])).is_err());
    }
}
