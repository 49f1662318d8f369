//! What a prune would delete: pure data computed from a snapshot, its WAL counts and a
//! selection. The confirmation, `--dry-run` and `--json` all show this same value.

use crate::chroma::{Snapshot, TopicOwner, WalStats};
use crate::error::{Error, Result};

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

/// One topic of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTopic {
    pub topic: String,
    /// `(id, name)` of the collection that reads this topic; `None` for an orphan topic.
    pub collection: Option<(String, String)>,
    /// Rows with `seq_id < bound` go. `None`: nothing of this topic may go (see `note`).
    pub bound: Option<i64>,
    /// Rows that will be deleted.
    pub rows: u64,
    /// All rows of the topic.
    pub wal_rows: u64,
    /// Estimated payload bytes freed.
    pub bytes: u64,
    /// Why nothing is deleted, when `rows` is 0.
    pub note: Option<String>,
}

impl PlanTopic {
    pub fn is_orphan(&self) -> bool {
        self.collection.is_none()
    }

    pub fn label(&self) -> String {
        match &self.collection {
            Some((_, name)) => name.clone(),
            None => "(orphan)".into(),
        }
    }
}

/// A prune, before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub topics: Vec<PlanTopic>,
    /// Size of `chroma.sqlite3` when the plan was made.
    pub sqlite_bytes: u64,
    pub dir_bytes: u64,
}

impl Plan {
    /// Build the plan for `selection`.
    pub fn build(snap: &Snapshot, wal: &WalStats, selection: &Selection) -> Result<Plan> {
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
        Ok(Plan {
            topics,
            sqlite_bytes: snap.sizes.sqlite,
            dir_bytes: snap.sizes.dir,
        })
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

    /// Estimated size of `chroma.sqlite3` after a compaction.
    pub fn estimated_sqlite_after(&self) -> u64 {
        self.sqlite_bytes.saturating_sub(self.bytes())
    }
}

fn plan_topic(snap: &Snapshot, t: &crate::chroma::TopicStats) -> PlanTopic {
    let (collection, note) = match t.owner {
        TopicOwner::Collection(i) => {
            let c = &snap.collections[i];
            let note = match (&c.bound, t.prunable) {
                (crate::chroma::Bound::Unknown(why), _) => Some(why.clone()),
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
