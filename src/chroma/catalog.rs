//! The catalog of a persist dir as data: its collections, segments and their positions,
//! verdicts and bounds, orphan folders, sizes, the snapshot that holds them, and the rules
//! computed from them alone (Chroma's purge bound, which collection reads a topic). Nothing
//! here reads a file: `snapshot.rs` reads SQLite, `folders.rs` the folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::health::{self, Health, Load};
use super::hnsw::IndexFolder;
use super::pickle::PickleFacts;
use super::procs::Holders;
use super::replay::DirFacts;
use super::schema::Schema;
use super::seqid::Decoded;
use super::{fsinfo, SQLITE_FILE};
use crate::error::{Error, Result};

/// The status of a collection whose folders are still being read.
pub const CHECKING: &str = "checking its folders…";

/// Where a segment's max_seq_id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqIdSource {
    /// `max_seq_id` table, 8-byte big-endian BLOB (up to 0.6.x).
    SqliteBlob,
    /// `max_seq_id` table, INTEGER (1.x).
    SqliteInteger,
    /// `<segment>/index_metadata.pickle`.
    Pickle,
    /// Nowhere usable.
    Unknown,
}

impl SeqIdSource {
    pub fn key(self) -> &'static str {
        match self {
            SeqIdSource::SqliteBlob => "sqlite_blob",
            SeqIdSource::SqliteInteger => "sqlite_integer",
            SeqIdSource::Pickle => "pickle",
            SeqIdSource::Unknown => "unknown",
        }
    }
}

/// One segment of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: String,
    /// `VECTOR` or `METADATA`.
    pub scope: String,
    /// The segment type URN.
    pub kind: String,
    pub max_seq_id: Option<i64>,
    pub source: SeqIdSource,
    /// Why max_seq_id is unknown, in words a user understands.
    pub problem: Option<String>,
    /// Size of `<persist_dir>/<segment id>/`, `None` when there is no such folder.
    pub dir_bytes: Option<u64>,
    /// The verdict on this segment (see [`health::judge`]).
    pub health: Health,
    /// The index folder (VECTOR segments with a folder): files, header, deleted marks.
    pub index: Option<IndexFolder>,
    /// `index_metadata.pickle`, validated whole: absent, unreadable (why), or its facts.
    pub pickle: Option<std::result::Result<PickleFacts, String>>,
}

impl Segment {
    /// The segment's row in the `max_seq_id` table, when it has one (not a pickle's value).
    pub fn sqlite_row(&self) -> Option<i64> {
        match self.source {
            SeqIdSource::SqliteBlob | SeqIdSource::SqliteInteger => self.max_seq_id,
            SeqIdSource::Pickle | SeqIdSource::Unknown => None,
        }
    }

    /// What the replay model ([`super::replay`]) reads of it.
    pub fn replay_facts(&self) -> super::replay::SegmentFacts {
        super::replay::SegmentFacts {
            row: self.sqlite_row(),
            position: self.max_seq_id,
            labels: match &self.pickle {
                Some(Ok(f)) => f.labels,
                _ => None,
            },
        }
    }

    /// The short id shown where space is tight.
    pub fn short_id(&self) -> &str {
        self.id.get(..8).unwrap_or(&self.id)
    }
}

/// M, the bound below which a collection's WAL rows may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// Rows with `seq_id < M` are in every segment already.
    Known(i64),
    /// Nothing may be pruned; the reason in words.
    Unknown(String),
    /// A segment is damaged: the whole WAL stays, it is how Chroma rebuilds the index.
    Damaged {
        segment: String,
        reason: String,
        /// What the user can do, in words.
        recovery: String,
    },
}

impl Bound {
    pub fn value(&self) -> Option<i64> {
        match self {
            Bound::Known(m) => Some(*m),
            Bound::Unknown(_) | Bound::Damaged { .. } => None,
        }
    }

    /// The warning a damaged collection `name` gets (its whole WAL kept, how to recover).
    pub fn warning(&self, name: &str) -> Option<String> {
        match self {
            Bound::Damaged {
                segment,
                reason,
                recovery,
            } => Some(damaged_warning(name, segment, reason, recovery)),
            Bound::Known(_) | Bound::Unknown(_) => None,
        }
    }
}

/// One collection, in any tenant and database.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub tenant: Option<String>,
    pub database: Option<String>,
    pub dimension: Option<i64>,
    /// The `topic` column (0.4.x only).
    pub stored_topic: Option<String>,
    pub segments: Vec<Segment>,
    pub bound: Bound,
    /// What its vector index holds against its records (`--deep`; see `truth/`); boxed,
    /// as most reads never fill it (300 bytes a collection otherwise).
    pub truth: Option<Box<super::truth::facts::IndexTruth>>,
    /// A damaged collection: what `compact --repair` would do now (filled in by its dry run).
    pub repair: Option<Box<super::preview::RepairPreview>>,
}

impl Collection {
    /// The WAL topic Chroma would compute with default settings (0.5+), or the stored one.
    pub fn default_topic(&self) -> String {
        self.stored_topic
            .clone()
            .unwrap_or_else(|| format!("persistent://default/default/{}", self.id))
    }

    /// A short status for humans: why nothing is prunable, or "ok".
    pub fn status(&self) -> String {
        match &self.bound {
            Bound::Known(_) => "ok".into(),
            Bound::Unknown(why) => why.clone(),
            Bound::Damaged {
                segment, reason, ..
            } => format!(
                "DAMAGED: segment {}: {reason}; whole WAL kept",
                segment.get(..8).unwrap_or(segment)
            ),
        }
    }

    /// `ok`, `not_persisted`, `keeps_wal` or `damaged`: the worst verdict over its segments.
    pub fn health(&self) -> &'static str {
        if self.segments.iter().any(|s| s.health.is_damaged()) {
            "damaged"
        } else if self.segments.iter().any(|s| s.health.replayed().is_some()) {
            "keeps_wal"
        } else if self
            .segments
            .iter()
            .any(|s| s.health.load() == &Load::NotPersisted)
        {
            "not_persisted"
        } else {
            "ok"
        }
    }

    /// Its whole WAL stays: an index Chroma cannot read correctly, or one it loads from the
    /// WAL beyond its recorded position.
    pub fn keeps_whole_wal(&self) -> bool {
        self.is_damaged() || self.segments.iter().any(|s| s.health.keeps_whole_wal())
    }

    pub fn is_damaged(&self) -> bool {
        matches!(self.bound, Bound::Damaged { .. })
    }
}

/// A folder in the persist dir that looks like a segment folder but belongs to no segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanDir {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Why it may not be reclaimed (it holds files an index folder never holds), or `None`.
    pub keep: Option<String>,
    /// A `max_seq_id` row still names it (left by the release that deleted its segment).
    pub stale_row: bool,
}

impl OrphanDir {
    pub fn reclaimable(&self) -> bool {
        self.keep.is_none()
    }
}

/// File sizes of the persist dir.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sizes {
    pub sqlite: u64,
    /// `chroma.sqlite3-journal`, when present.
    pub journal: Option<u64>,
    /// That journal is hot: non-empty with a live header, so SQLite would roll it back.
    /// (A journal whose header was zeroed is ignored by SQLite and reused by its next write.)
    pub journal_hot: bool,
    /// `chroma.sqlite3-wal`, when present.
    pub wal: Option<u64>,
    /// `chroma.sqlite3-shm`, when present.
    pub shm: Option<u64>,
    /// Everything under the persist dir.
    pub dir: u64,
}

impl Sizes {
    pub fn read(persist_dir: &Path) -> Sizes {
        Self::with_dir_bytes(persist_dir, fsinfo::tree_bytes(persist_dir))
    }

    /// The files' sizes, with the dir's total already counted (by the catalog's listings).
    pub fn with_dir_bytes(persist_dir: &Path, dir: u64) -> Sizes {
        let f = persist_dir.join(SQLITE_FILE);
        let side = |s: &str| fsinfo::file_bytes(&super::db::side_file(&f, s));
        Sizes {
            sqlite: fsinfo::file_bytes(&f).unwrap_or(0),
            journal: side("-journal"),
            journal_hot: journal_is_hot(&super::db::side_file(&f, "-journal")),
            wal: side("-wal"),
            shm: side("-shm"),
            dir,
        }
    }
}

/// SQLite treats a rollback journal as possibly hot when it is non-empty and its first byte
/// is not zero (it zeroes the header to retire a journal without deleting it).
pub fn journal_is_hot(path: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .map(|_| b[0] != 0)
        .unwrap_or(false)
}

/// Who a WAL topic belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOwner {
    /// Index into [`Snapshot::collections`].
    Collection(usize),
    /// No collection reads this topic any more: every row may go.
    Orphan,
}

/// Everything chroma-wal knows about a persist dir except the WAL counts.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub persist_dir: PathBuf,
    pub sqlite_path: PathBuf,
    pub schema: Schema,
    pub sizes: Sizes,
    /// `embeddings_queue_config.automatically_purge`; `None` before 0.5.6 (WAL kept forever).
    pub automatically_purge: Option<bool>,
    pub holders: Holders,
    pub collections: Vec<Collection>,
    pub orphan_segment_dirs: Vec<OrphanDir>,
    /// The highest seq_id in the WAL when the catalog was read (`None`: empty WAL).
    pub wal_max_seq_id: Option<i64>,
    pub warnings: Vec<String>,
    /// Pickles read only up to their `max_seq_id` ([`Snapshot::open_deferred`]): their whole
    /// validation is still to come ([`PendingPickle::resolve`], then [`Snapshot::apply`]).
    pub pending: Vec<PendingPickle>,
    /// Collections by stored topic and by lowercase id, built on first use: a dir of 20,000
    /// collections has as many topics, and a linear search per topic would be quadratic.
    pub index: std::sync::OnceLock<CollectionIndex>,
    /// The segment folders not read yet ([`Snapshot::open_catalog`]): until
    /// [`Snapshot::read_folders`], collections have no segments and no bound, and the dir's
    /// size, orphan folders and holders are not in.
    pub unread: Option<Box<FolderWork>>,
}

/// Which collection reads a topic, by its stored topic or the collection id in it (see
/// [`Snapshot::owner_of`]); [`Snapshot::owners`] hands out a copy a thread may keep.
#[derive(Debug, Clone, Default)]
pub struct CollectionIndex {
    by_topic: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl CollectionIndex {
    /// The collection that reads `topic`, or none (an orphan topic).
    pub fn owner_of(&self, topic: &str) -> TopicOwner {
        if let Some(&i) = self.by_topic.get(topic) {
            return TopicOwner::Collection(i);
        }
        match self.by_id.get(&topic_uuid(topic).to_ascii_lowercase()) {
            Some(&i) => TopicOwner::Collection(i),
            None => TopicOwner::Orphan,
        }
    }
}

/// A segment whose pickle was read provisionally: enough to resolve it again, whole.
#[derive(Debug, Clone)]
pub struct PendingPickle {
    pub collection: usize,
    pub id: String,
    pub(crate) kind: String,
    pub(crate) scope: String,
    pub(crate) row: Option<Decoded>,
    pub(crate) dir: PathBuf,
    pub(crate) wal_max: Option<i64>,
    pub(crate) era: crate::chroma::Era,
    /// [`IndexFolder::stamp`] of the folder as the provisional read listed it.
    pub(crate) listing: Option<u64>,
}

/// A pending segment judged again with its pickle read whole.
pub struct Resolved {
    pub collection: usize,
    /// Without its folder listing when the listing is the provisional one's (`same_listing`):
    /// 16,000 resolved segments waiting for the count then hold no second copy of them.
    pub segment: Segment,
    pub warnings: Vec<String>,
    pub same_listing: bool,
}

/// The last `/`-separated part of a topic: the collection uuid from 0.5 on.
pub fn topic_uuid(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

impl Snapshot {
    /// Put whole-validated segments in place of provisional ones (one whose folder listed
    /// the same keeps the listing it replaces). Returns the collections whose bound changed
    /// (their WAL counts must be corrected).
    pub fn apply(&mut self, resolved: Vec<Resolved>) -> Vec<usize> {
        let mut changed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let dir_facts = self.dir_facts();
        // One pass over the pending list, not one per segment: 16,000 pickles made that
        // quadratic (most of `info`'s time at 20,000 collections).
        let done: std::collections::HashSet<&str> =
            resolved.iter().map(|r| r.segment.id.as_str()).collect();
        self.pending.retain(|p| !done.contains(p.id.as_str()));
        drop(done);
        for Resolved {
            collection: ci,
            segment: seg,
            warnings,
            same_listing,
        } in resolved
        {
            let Some(c) = self.collections.get_mut(ci) else {
                continue;
            };
            if let Some(slot) = c.segments.iter_mut().find(|s| s.id == seg.id) {
                let listed = slot.index.take();
                *slot = Segment {
                    index: if same_listing { listed } else { seg.index },
                    ..seg
                };
            }
            self.warnings.extend(warnings);
            let bound = compute_bound(&c.segments, &dir_facts);
            if bound != c.bound {
                self.warnings.extend(bound.warning(&c.name));
                c.bound = bound;
                if seen.insert(ci) {
                    changed.push(ci);
                }
            }
        }
        changed
    }

    /// What replay depends on besides a segment: the era and the purge setting.
    pub fn dir_facts(&self) -> DirFacts {
        DirFacts {
            era: self.schema.era,
            automatically_purge: self.automatically_purge,
        }
    }

    /// Whether the segment folders are still to be read.
    pub fn folders_pending(&self) -> bool {
        self.unread.is_some()
    }

    /// Which collection reads `topic`: the stored topic (0.4.x), else the collection whose
    /// id is the topic's trailing uuid (0.5+, where tenant/namespace are settings).
    pub fn owner_of(&self, topic: &str) -> TopicOwner {
        self.index().owner_of(topic)
    }

    /// The topic-to-collection index, owned: for a thread, or a SQL function, that outlives
    /// this borrow.
    pub fn owners(&self) -> CollectionIndex {
        self.index().clone()
    }

    fn index(&self) -> &CollectionIndex {
        self.index.get_or_init(|| {
            let mut ix = CollectionIndex::default();
            // The first collection wins, as a linear search would find it.
            for (i, c) in self.collections.iter().enumerate().rev() {
                if let Some(t) = &c.stored_topic {
                    ix.by_topic.insert(t.clone(), i);
                }
                ix.by_id.insert(c.id.to_ascii_lowercase(), i);
            }
            ix
        })
    }

    /// Find collections by name or id. A name shared by collections in several databases is
    /// ambiguous and must be given as an id.
    pub fn find_collection(&self, name_or_id: &str) -> Result<usize> {
        if let Some(&i) = self.index().by_id.get(&name_or_id.to_ascii_lowercase()) {
            return Ok(i);
        }
        let hits: Vec<usize> = self
            .collections
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name_or_id)
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => Err(Error::Usage(format!(
                "no collection named or with id `{name_or_id}` in {}",
                self.persist_dir.display()
            ))),
            many => Err(Error::Usage(format!(
                "collection name `{name_or_id}` is used in {} databases; give its id instead ({})",
                many.len(),
                many.iter()
                    .map(|&i| self.collections[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The highest position any segment recorded that the WAL can hold (at or below its
    /// highest seq_id): the WAL's top must stay at or above it (see `prune::guard`). A damaged
    /// collection's positions count too (Chroma still skips to them); an impossible one (above
    /// the WAL's top) does not: the top is below it already, and counting it would switch the
    /// guard off for every plausible position under it.
    pub fn highest_position(&self) -> Option<i64> {
        let top = self.wal_max_seq_id?;
        self.collections
            .iter()
            .flat_map(|c| c.segments.iter().filter_map(|s| s.max_seq_id))
            .filter(|&p| p <= top)
            .max()
    }

    /// Bytes on the freelist: free space inside chroma.sqlite3 that a compaction returns.
    pub fn free_bytes(&self) -> u64 {
        (self.schema.freelist_pages.max(0) as u64) * (self.schema.page_size.max(0) as u64)
    }

    /// Why pruning is impossible right now, if it is (schema, holders, journal).
    pub fn prune_blockers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.holders.list.is_empty() {
            out.push(format!(
                "the persist dir is open in {}: stop Chroma first",
                self.holders.describe()
            ));
        }
        if self.holders.unseen_writer {
            out.push(
                "chroma.sqlite3 is open for writing in a process this one cannot see (another \
                 container or PID namespace?): stop Chroma first"
                    .into(),
            );
        }
        if let Some(b) = &self.schema.prune_blocker {
            out.push(format!("unknown schema: {b}"));
        }
        if self.sizes.journal_hot {
            out.push(
                "chroma.sqlite3-journal exists (a write was interrupted or is under way); start \
                 and stop Chroma once so SQLite rolls it back"
                    .into(),
            );
        }
        out
    }
}

/// What `folders::read_into` still has to do for a snapshot read by [`Snapshot::open_catalog`].
#[derive(Debug, Clone)]
pub struct FolderWork {
    pub(crate) segments: Vec<CatalogSegment>,
    pub(crate) seq_rows: HashMap<String, Decoded>,
    /// Read pickles only up to their `max_seq_id`, leaving them pending.
    pub(crate) deferred: bool,
    /// Whether chroma.sqlite3 was open for writing when the catalog was read (a lease test).
    pub(crate) writing: Option<bool>,
    /// The preview's catalog came from the covering indexes only: the segments, positions and
    /// the collections' other columns are still to be read ([`Snapshot::read_folders`]).
    pub(crate) catalog_rest: bool,
}

pub(crate) type CatalogSegment = (String, String, String, Option<String>);

fn damaged_warning(name: &str, segment: &str, reason: &str, recovery: &str) -> String {
    format!(
        "collection {name} is damaged (segment {segment}: {reason}); its whole WAL is kept. \
         To recover: {recovery}"
    )
}

/// Chroma's purge rule: M = min over all segments; any unknown makes M unknown.
pub fn compute_bound(segments: &[Segment], dir: &DirFacts) -> Bound {
    if segments.is_empty() {
        return Bound::Unknown("collection has no segments".into());
    }
    // A damaged segment keeps the whole WAL, whatever the others say.
    if let Some(s) = segments.iter().find(|s| s.health.is_damaged()) {
        let reason = s.health.reason().map(|r| r.to_string()).unwrap_or_default();
        return Bound::Damaged {
            recovery: health::recovery(&s.id, s.sqlite_row(), dir),
            segment: s.id.clone(),
            reason,
        };
    }
    // An index Chroma loads from the WAL beyond its position keeps the whole WAL too.
    if let Some((s, why)) = segments
        .iter()
        .find_map(|s| Some((s, s.health.replayed()?)))
    {
        return Bound::Unknown(format!(
            "whole WAL kept: segment {} {why}",
            s.id.get(..8).unwrap_or(&s.id)
        ));
    }
    let mut m = i64::MAX;
    for s in segments {
        match s.max_seq_id {
            Some(v) => m = m.min(v),
            None => {
                return Bound::Unknown(
                    s.problem
                        .clone()
                        .unwrap_or_else(|| "a segment's max_seq_id is unknown".into()),
                )
            }
        }
    }
    Bound::Known(m)
}

pub fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::HNSW_PERSISTED;

    const DIR: DirFacts = DirFacts {
        era: crate::chroma::Era::V1,
        automatically_purge: Some(false),
    };

    fn seg(v: Option<i64>, problem: Option<&str>) -> Segment {
        Segment {
            id: "s".into(),
            scope: "VECTOR".into(),
            kind: HNSW_PERSISTED.into(),
            max_seq_id: v,
            source: if v.is_some() {
                SeqIdSource::Pickle
            } else {
                SeqIdSource::Unknown
            },
            problem: problem.map(String::from),
            dir_bytes: None,
            health: if v.is_some() {
                Health::OK
            } else {
                Health::NOT_PERSISTED
            },
            index: None,
            pickle: None,
        }
    }

    #[test]
    fn bound_is_min_over_all_segments() {
        assert_eq!(
            compute_bound(&[seg(Some(120), None), seg(Some(100), None)], &DIR),
            Bound::Known(100)
        );
    }

    #[test]
    fn any_unknown_segment_blocks_the_collection() {
        let b = compute_bound(
            &[
                seg(Some(120), None),
                seg(None, Some("vector index not yet persisted")),
            ],
            &DIR,
        );
        assert_eq!(b, Bound::Unknown("vector index not yet persisted".into()));
        assert!(matches!(compute_bound(&[], &DIR), Bound::Unknown(_)));
    }

    #[test]
    fn topic_uuid_is_the_last_part() {
        assert_eq!(topic_uuid("persistent://t/n/abc"), "abc");
        assert_eq!(topic_uuid("abc"), "abc");
    }

    #[test]
    fn uuid_shape() {
        assert!(looks_like_uuid("d3e94d7a-4ac7-4a9e-8f28-db57b96ab4c0"));
        assert!(!looks_like_uuid("backups"));
        assert!(!looks_like_uuid("d3e94d7a-4ac7-4a9e-8f28-db57b96ab4cz"));
    }
}
