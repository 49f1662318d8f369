//! The catalog of a persist dir: schema, tenants, collections, segments and their max_seq_id,
//! sizes, processes holding it open. Read in one read transaction on a read-only connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use super::folders::{self, FolderWork, SegmentRow};
use super::health::{self, Health};
use super::hnsw::IndexFolder;
use super::pickle::PickleFacts;
use super::procs::{self, Holders};
use super::replay::DirFacts;
use super::schema::{self, Schema};
use super::seqid::{self, Decoded};
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

    /// `ok`, `not_persisted` or `damaged`: the worst verdict over its segments.
    pub fn health(&self) -> &'static str {
        if self.segments.iter().any(|s| s.health.is_damaged()) {
            "damaged"
        } else if self
            .segments
            .iter()
            .any(|s| s.health == Health::NotPersisted)
        {
            "not_persisted"
        } else {
            "ok"
        }
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

/// See [`Snapshot::index`].
#[derive(Debug, Clone, Default)]
pub struct CollectionIndex {
    by_topic: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
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
}

/// How much of each pickle the catalog reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pickles {
    /// Every pickle validated whole before the catalog is returned.
    Whole,
    /// Only up to `max_seq_id`; the rest is left pending.
    Deferred,
}

impl PendingPickle {
    /// Validate the pickle whole and judge the segment again. Touches no snapshot, so it can
    /// run on another thread while the WAL is counted.
    pub fn resolve(&self) -> (usize, Segment, Vec<String>) {
        let mut rows = HashMap::new();
        if let Some(r) = &self.row {
            rows.insert(self.id.clone(), r.clone());
        }
        let mut warnings = Vec::new();
        let row = SegmentRow {
            id: &self.id,
            kind: &self.kind,
            scope: &self.scope,
        };
        let is_dir = self.dir.join(&self.id).is_dir();
        let seg = folders::resolve_segment(
            &self.dir,
            &row,
            is_dir,
            &rows,
            self.wal_max,
            &mut warnings,
            false,
        );
        (self.collection, seg, warnings)
    }
}

/// Check that `dir` is a persist dir and return the path of its `chroma.sqlite3`.
pub fn check_persist_dir(dir: &Path) -> Result<PathBuf> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::failed(format!("no such directory: {shown}")),
        _ => Error::failed(format!("cannot read {shown}: {e}")),
    })?;
    if !meta.is_dir() {
        let hint = if dir.file_name().is_some_and(|n| n == SQLITE_FILE) {
            " (pass the folder that contains chroma.sqlite3)"
        } else {
            ""
        };
        return Err(Error::failed(format!(
            "{shown} is a file, not a Chroma persist dir{hint}"
        )));
    }
    let f = dir.join(SQLITE_FILE);
    match std::fs::metadata(&f) {
        Ok(m) if m.is_file() => Ok(f),
        Ok(_) => Err(Error::failed(format!(
            "{} is not a regular file",
            f.display()
        ))),
        Err(_) => Err(Error::failed(format!(
            "{shown} has no chroma.sqlite3: not a Chroma persist dir"
        ))),
    }
}

/// Lenient readers: a hostile file may put anything in any column.
fn text(row: &Row<'_>, i: usize) -> Option<String> {
    match row.get_ref(i).ok()? {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn int(row: &Row<'_>, i: usize) -> Option<i64> {
    match row.get_ref(i).ok()? {
        ValueRef::Integer(n) => Some(n),
        _ => None,
    }
}

/// The last `/`-separated part of a topic: the collection uuid from 0.5 on.
pub fn topic_uuid(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

impl Snapshot {
    /// Read the catalog of the persist dir at `dir`. Read-only; fast whatever the WAL size.
    pub fn open(dir: &Path) -> Result<Snapshot> {
        let mut snap = Self::open_with(dir, Pickles::Whole, false)?;
        snap.read_folders();
        Ok(snap)
    }

    /// As [`Snapshot::open`], but each pickle is read only up to its `max_seq_id`, so that
    /// counting the WAL can start at once. The bounds are provisional until the pending
    /// pickles are resolved and applied: a pickle found damaged then takes its collection's
    /// bound away, never moves it.
    pub fn open_deferred(dir: &Path) -> Result<Snapshot> {
        let mut snap = Self::open_with(dir, Pickles::Deferred, false)?;
        snap.read_folders();
        Ok(snap)
    }

    /// Put whole-validated segments in place of provisional ones. Returns the collections
    /// whose bound changed (their WAL counts must be corrected).
    pub fn apply(&mut self, resolved: Vec<(usize, Segment, Vec<String>)>) -> Vec<usize> {
        let mut changed = Vec::new();
        let dir_facts = self.dir_facts();
        for (ci, seg, warnings) in resolved {
            self.pending.retain(|p| p.id != seg.id);
            let Some(c) = self.collections.get_mut(ci) else {
                continue;
            };
            if let Some(slot) = c.segments.iter_mut().find(|s| s.id == seg.id) {
                *slot = seg;
            }
            self.warnings.extend(warnings);
            let bound = compute_bound(&c.segments, &dir_facts);
            if bound != c.bound {
                if let Bound::Damaged {
                    segment,
                    reason,
                    recovery,
                } = &bound
                {
                    self.warnings
                        .push(damaged_warning(&c.name, segment, reason, recovery));
                }
                c.bound = bound;
                if !changed.contains(&ci) {
                    changed.push(ci);
                }
            }
        }
        changed
    }

    /// Validate every pending pickle now, on this thread.
    pub fn settle(&mut self) -> Vec<usize> {
        let resolved = self.pending.iter().map(|p| p.resolve()).collect();
        self.apply(resolved)
    }

    /// `preview`: the snapshot is shown before its folders are read; each collection's bound
    /// says they are being checked.
    fn open_with(dir: &Path, pickles: Pickles, preview: bool) -> Result<Snapshot> {
        let sqlite_path = check_persist_dir(dir)?;
        // Before any connection of ours exists (it opens and closes the file).
        let writing = procs::open_for_writing(&sqlite_path);
        // Sniff the header before our connection exists: opening and closing the file while
        // it is open would drop the connection's POSIX locks.
        let wal_header = super::db::is_wal_mode(&sqlite_path);
        let conn = super::db::open_read_only(&sqlite_path)?;
        let snap = Self::read(dir, &sqlite_path, &conn, Some(wal_header), pickles, preview);
        drop(conn);
        let mut snap = snap?;
        if let Some(w) = snap.unread.as_mut() {
            w.writing = writing;
        }
        Ok(snap)
    }

    /// The collections as SQLite has them, at once. Their segments (whose verdicts need their
    /// folders: a dir of 20,000 collections has as many) come with [`Snapshot::read_folders`];
    /// until then no bound is known. Pickles are then read as by [`Snapshot::open_deferred`].
    pub fn open_catalog(dir: &Path) -> Result<Snapshot> {
        Self::open_with(dir, Pickles::Deferred, true)
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

    /// Read every segment folder (on every core) and judge each segment; then the orphan
    /// folders, the dir's size and the processes holding it. Nothing happens twice.
    pub fn read_folders(&mut self) {
        folders::read_into(self);
    }

    /// Read the catalog through a connection that already holds a lock on chroma.sqlite3
    /// (the prune job, inside its write transaction). Nothing opens the file outside SQLite:
    /// POSIX drops all of a process's locks on a file when any descriptor of it is closed.
    pub fn read_locked(dir: &Path, conn: &Connection) -> Result<Snapshot> {
        let sqlite_path = check_persist_dir(dir)?;
        let mut snap = Self::read(dir, &sqlite_path, conn, None, Pickles::Whole, false)?;
        snap.read_folders();
        Ok(snap)
    }

    fn read(
        dir: &Path,
        sqlite_path: &Path,
        conn: &Connection,
        wal_header: Option<bool>,
        pickles: Pickles,
        preview: bool,
    ) -> Result<Snapshot> {
        // One read transaction: the catalog is read from a single consistent state (inside
        // the caller's transaction when it already has one).
        let own_tx = conn.is_autocommit();
        if own_tx {
            conn.execute_batch("BEGIN")
                .map_err(|e| super::db::explain(e, sqlite_path))?;
        }
        // The first read of the file: explain file-level problems (not a database, damaged,
        // hot journal, locked) in words.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| super::db::explain(e, sqlite_path))?;
        let mut schema = schema::detect(conn)?;
        if wal_header == Some(true) {
            // An immutable open reports "delete"; the file header is the truth.
            schema.journal_mode = "wal".into();
        }
        let mut warnings = Vec::new();
        let automatically_purge = if schema.queue_config {
            read_purge_setting(conn, &mut warnings)?
        } else {
            None
        };
        let mut collections = read_collections(conn, &schema)?;
        let seq_rows = if schema.max_seq_id_table {
            read_max_seq_rows(conn)?
        } else {
            HashMap::new()
        };
        let segments = read_segments(conn)?;
        // One b-tree descent: the guard against seq_id reuse and impossible positions.
        let wal_max_seq_id: Option<i64> = conn
            .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
            .ok()
            .flatten();
        if own_tx {
            conn.execute_batch("COMMIT")?;
        }

        // The catalog as SQLite has it: the segments come with their folders.
        if preview {
            for c in &mut collections {
                c.bound = Bound::Unknown(CHECKING.into());
            }
        }
        Ok(Snapshot {
            persist_dir: dir.to_path_buf(),
            sqlite_path: sqlite_path.to_path_buf(),
            schema,
            sizes: Sizes::with_dir_bytes(dir, 0),
            automatically_purge,
            holders: Holders::default(),
            collections,
            orphan_segment_dirs: Vec::new(),
            wal_max_seq_id,
            warnings,
            pending: Vec::new(),
            index: Default::default(),
            unread: Some(Box::new(FolderWork {
                segments,
                seq_rows,
                deferred: pickles == Pickles::Deferred,
                writing: None,
            })),
        })
    }

    /// Which collection reads `topic`: the stored topic (0.4.x), else the collection whose
    /// id is the topic's trailing uuid (0.5+, where tenant/namespace are settings).
    pub fn owner_of(&self, topic: &str) -> TopicOwner {
        let ix = self.index();
        if let Some(&i) = ix.by_topic.get(topic) {
            return TopicOwner::Collection(i);
        }
        match ix.by_id.get(&topic_uuid(topic).to_ascii_lowercase()) {
            Some(&i) => TopicOwner::Collection(i),
            None => TopicOwner::Orphan,
        }
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

fn read_purge_setting(conn: &Connection, warnings: &mut Vec<String>) -> Result<Option<bool>> {
    let mut st = conn.prepare("SELECT config_json_str FROM embeddings_queue_config")?;
    let mut rows = st.query([])?;
    let Some(row) = rows.next()? else {
        warnings.push("embeddings_queue_config is empty; Chroma then purges automatically".into());
        return Ok(Some(true));
    };
    let raw = text(row, 0).unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(v) => match v.get("automatically_purge").and_then(|b| b.as_bool()) {
            Some(b) => Ok(Some(b)),
            None => {
                warnings.push("embeddings_queue_config has no automatically_purge".into());
                Ok(None)
            }
        },
        Err(_) => {
            warnings.push("embeddings_queue_config is not valid JSON".into());
            Ok(None)
        }
    }
}

fn read_collections(conn: &Connection, schema: &Schema) -> Result<Vec<Collection>> {
    let topic = if schema.collection_topic {
        "c.topic"
    } else {
        "NULL"
    };
    let (db, tenant, join) = if schema.databases {
        (
            "d.name",
            "d.tenant_id",
            "LEFT JOIN databases d ON d.id = c.database_id",
        )
    } else {
        ("NULL", "NULL", "")
    };
    let dim = if schema::columns(conn, "collections")?
        .iter()
        .any(|c| c == "dimension")
    {
        "c.dimension"
    } else {
        "NULL"
    };
    let sql =
        format!("SELECT c.id, c.name, {dim}, {topic}, {db}, {tenant} FROM collections c {join}");
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(id) = text(r, 0) else { continue };
        out.push(Collection {
            name: text(r, 1).unwrap_or_default(),
            dimension: int(r, 2),
            stored_topic: text(r, 3),
            database: text(r, 4),
            tenant: text(r, 5),
            segments: Vec::new(),
            bound: Bound::Unknown("collection has no segments".into()),
            id,
        });
    }
    // Sorted here rather than by an ORDER BY: SQLite would sort 20,000 rows through a
    // temporary b-tree, several times slower. Byte order, as SQLite's BINARY collation.
    out.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

fn read_max_seq_rows(conn: &Connection) -> Result<HashMap<String, Decoded>> {
    let mut st = conn.prepare("SELECT segment_id, seq_id FROM max_seq_id")?;
    let mut rows = st.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        if let Some(id) = text(r, 0) {
            out.insert(id, seqid::decode(r.get_ref(1)?));
        }
    }
    Ok(out)
}

pub(crate) type CatalogSegment = (String, String, String, Option<String>);

fn read_segments(conn: &Connection) -> Result<Vec<CatalogSegment>> {
    // In table order, sorted here: ORDER BY id walks the id index and looks up every row
    // from it, four times slower on 40,000 segments.
    let mut st = conn.prepare("SELECT id, type, scope, collection FROM segments")?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(id) = text(r, 0) else { continue };
        out.push((
            id,
            text(r, 1).unwrap_or_default(),
            text(r, 2).unwrap_or_default(),
            text(r, 3),
        ));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub(crate) fn damaged_warning(name: &str, segment: &str, reason: &str, recovery: &str) -> String {
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
        let reason = s.health.reason().unwrap_or_default().to_string();
        return Bound::Damaged {
            recovery: health::recovery(&s.id, &reason, s.sqlite_row(), dir),
            segment: s.id.clone(),
            reason,
        };
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

pub use super::folders::orphan_keep_reason;

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
                Health::Ok
            } else {
                Health::NotPersisted
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
