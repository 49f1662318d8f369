//! Reading the catalog of a persist dir: schema, tenants, collections, segments and their
//! max_seq_id, sizes, processes holding it open, in one read transaction on a read-only
//! connection; the segment folders through [`super::folders`]. The values it fills in are
//! [`super::catalog`]'s (re-exported here for the code that names them by this path).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

pub use super::catalog::*;
use super::folders;
use super::procs::{self, Holders};
use super::schema::{self, Schema};
use super::seqid::{self, Decoded};
use super::SQLITE_FILE;
use crate::error::{Error, Result};

/// How much of each pickle the catalog reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pickles {
    /// Every pickle validated whole before the catalog is returned.
    Whole,
    /// Only up to `max_seq_id`; the rest is left pending.
    Deferred,
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

    /// Read every segment folder (on every core) and judge each segment; then the orphan
    /// folders, the dir's size and the processes holding it. Nothing happens twice.
    pub fn read_folders(&mut self) {
        if self.unread.as_ref().is_some_and(|w| w.catalog_rest) {
            if let Err(e) = self.read_rest() {
                self.warnings
                    .push(format!("the catalog could not be read again: {e}"));
            }
        }
        folders::read_into(self);
    }

    /// The rest of a preview's catalog: every column of the collections (they replace the
    /// preview's: the catalog is read whole again, in one read transaction), the segments and
    /// the positions.
    fn read_rest(&mut self) -> Result<()> {
        let conn = super::db::open_read_only(&self.sqlite_path)?;
        conn.execute_batch("BEGIN")
            .map_err(|e| super::db::explain(e, &self.sqlite_path))?;
        let read = read_catalog_rest(&conn, &self.schema);
        let _ = conn.execute_batch("COMMIT");
        let (collections, seq_rows, segments) = read?;
        self.collections = collections;
        if let Some(w) = self.unread.as_mut() {
            w.segments = segments;
            w.seq_rows = seq_rows;
            w.catalog_rest = false;
        }
        Ok(())
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
        // The preview reads what the first screen shows from the covering indexes (a 1.5.9
        // dir of 20,000 collections has 26 MB of collection rows, each with its config JSON:
        // 0.8 s cold, against 0.1 s for the indexes); the rest comes with the folders.
        let (mut collections, seq_rows, segments) = if preview {
            (
                read_collection_names(conn, &schema)?,
                HashMap::new(),
                Vec::new(),
            )
        } else {
            read_catalog_rest(conn, &schema)?
        };
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
                catalog_rest: preview,
            })),
        })
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

/// Collections, positions and segments, as the catalog reads them whole.
type CatalogRest = (
    Vec<Collection>,
    HashMap<String, Decoded>,
    Vec<super::catalog::CatalogSegment>,
);

fn read_catalog_rest(conn: &Connection, schema: &Schema) -> Result<CatalogRest> {
    let collections = read_collections(conn, schema)?;
    let seq_rows = if schema.max_seq_id_table {
        read_max_seq_rows(conn)?
    } else {
        HashMap::new()
    };
    Ok((collections, seq_rows, read_segments(conn)?))
}

/// The collections' ids, names and databases from the table's two covering indexes (the
/// primary key's, and UNIQUE (name, database_id)), matched by rowid: no collection row is
/// read. Dimensions and 0.4's topics come with the rest of the catalog.
fn read_collection_names(conn: &Connection, schema: &Schema) -> Result<Vec<Collection>> {
    let mut ids: HashMap<i64, String> = HashMap::new();
    {
        let mut st = conn.prepare("SELECT rowid, id FROM collections")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let (Some(rowid), Some(id)) = (int(r, 0), text(r, 1)) {
                ids.insert(rowid, id);
            }
        }
    }
    let databases: HashMap<String, (Option<String>, Option<String>)> = if schema.databases {
        let mut st = conn.prepare("SELECT id, name, tenant_id FROM databases")?;
        let mut rows = st.query([])?;
        let mut out = HashMap::new();
        while let Some(r) = rows.next()? {
            if let Some(id) = text(r, 0) {
                out.insert(id, (text(r, 1), text(r, 2)));
            }
        }
        out
    } else {
        HashMap::new()
    };
    let sql = if schema.databases {
        "SELECT rowid, name, database_id FROM collections"
    } else {
        "SELECT rowid, name, NULL FROM collections"
    };
    let mut st = conn.prepare(sql)?;
    let mut rows = st.query([])?;
    let mut out = Vec::with_capacity(ids.len());
    while let Some(r) = rows.next()? {
        let Some(id) = int(r, 0).and_then(|rowid| ids.remove(&rowid)) else {
            continue;
        };
        let (database, tenant) = text(r, 2)
            .and_then(|d| databases.get(&d).cloned())
            .unwrap_or((None, None));
        out.push(catalog_collection(
            id,
            text(r, 1).unwrap_or_default(),
            None,
            None,
            database,
            tenant,
        ));
    }
    sort_by_name(&mut out);
    Ok(out)
}

/// A collection as the catalog lists it: its segments and bound come with the folders.
fn catalog_collection(
    id: String,
    name: String,
    dimension: Option<i64>,
    stored_topic: Option<String>,
    database: Option<String>,
    tenant: Option<String>,
) -> Collection {
    Collection {
        id,
        name,
        tenant,
        database,
        dimension,
        stored_topic,
        segments: Vec::new(),
        bound: Bound::Unknown("collection has no segments".into()),
        truth: None,
        repair: None,
    }
}

/// Sorted here rather than by an ORDER BY: SQLite would sort 20,000 rows through a temporary
/// b-tree, several times slower. Byte order, as SQLite's BINARY collation.
fn sort_by_name(collections: &mut [Collection]) {
    collections.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
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
    // Sized first: grown by doubling, 20,000 collections of 440 bytes held 14 MB and copied
    // it at every step.
    let count: i64 = conn.query_row("SELECT count(*) FROM collections", [], |r| r.get(0))?;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24));
    while let Some(r) = rows.next()? {
        let Some(id) = text(r, 0) else { continue };
        out.push(catalog_collection(
            id,
            text(r, 1).unwrap_or_default(),
            int(r, 2),
            text(r, 3),
            text(r, 4),
            text(r, 5),
        ));
    }
    sort_by_name(&mut out);
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

fn read_segments(conn: &Connection) -> Result<Vec<CatalogSegment>> {
    // In table order, sorted here: ORDER BY id walks the id index and looks up every row
    // from it, four times slower on 40,000 segments.
    let mut st = conn.prepare("SELECT id, type, scope, collection FROM segments")?;
    let mut rows = st.query([])?;
    // Sized first, as the collections are: 40,000 segments grown by doubling were copied at
    // every step.
    let count: i64 = conn.query_row("SELECT count(*) FROM segments", [], |r| r.get(0))?;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24));
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

pub use super::folders::orphan_keep_reason;
