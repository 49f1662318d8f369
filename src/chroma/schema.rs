//! Which Chroma era wrote this file: decided from the migrations and the columns actually
//! present, never from a version guess.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The newest migration chroma-wal knows per migrations dir (chromadb 1.5.9).
pub const KNOWN_MIGRATIONS: &[(&str, i64)] =
    &[("sysdb", 10), ("metadb", 6), ("embeddings_queue", 2)];

/// The file name of every migration a release applied, by dir and version: the same in every
/// release from 0.4.0 to 1.5.9. A migrations table with another name at a known version was
/// written by a build no release matches (a development build of Chroma).
const KNOWN_FILES: &[(&str, i64, &str)] = &[
    ("embeddings_queue", 1, "00001-embeddings.sqlite.sql"),
    (
        "embeddings_queue",
        2,
        "00002-embeddings-queue-config.sqlite.sql",
    ),
    ("metadb", 1, "00001-embedding-metadata.sqlite.sql"),
    ("metadb", 2, "00002-embedding-metadata.sqlite.sql"),
    ("metadb", 3, "00003-full-text-tokenize.sqlite.sql"),
    ("metadb", 4, "00004-metadata-indices.sqlite.sql"),
    ("metadb", 5, "00005-max-seq-id-int.sqlite.sql"),
    ("metadb", 6, "00006-metadata-array-support.sqlite.sql"),
    ("sysdb", 1, "00001-collections.sqlite.sql"),
    ("sysdb", 2, "00002-segments.sqlite.sql"),
    ("sysdb", 3, "00003-collection-dimension.sqlite.sql"),
    ("sysdb", 4, "00004-tenants-databases.sqlite.sql"),
    ("sysdb", 5, "00005-remove-topic.sqlite.sql"),
    ("sysdb", 6, "00006-collection-segment-metadata.sqlite.sql"),
    ("sysdb", 7, "00007-collection-config.sqlite.sql"),
    ("sysdb", 8, "00008-maintenance-log.sqlite.sql"),
    ("sysdb", 9, "00009-segment-collection-not-null.sqlite.sql"),
    ("sysdb", 10, "00010-collection-schema.sqlite.sql"),
];

/// The on-disk era, as far as the WAL is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 0.4.x: collections and segments carry a `topic` column.
    V04,
    /// 0.5.0–0.5.5: topic computed, vector max_seq_id only in the pickle, no purge setting.
    V050,
    /// 0.5.6–0.6.x: `embeddings_queue_config` exists, max_seq_id as BLOB.
    V056,
    /// 1.x: max_seq_id as INTEGER (metadb 5).
    V1,
    /// Migrations newer than chroma-wal knows: browse only.
    Newer,
}

impl Era {
    pub fn label(self) -> &'static str {
        match self {
            Era::V04 => "0.4.x",
            Era::V050 => "0.5.0–0.5.5",
            Era::V056 => "0.5.6–0.6.x",
            Era::V1 => "1.x",
            Era::Newer => "newer than 1.5 (unknown)",
        }
    }

    /// A stable machine name for JSON.
    pub fn key(self) -> &'static str {
        match self {
            Era::V04 => "0.4",
            Era::V050 => "0.5.0-0.5.5",
            Era::V056 => "0.5.6-0.6",
            Era::V1 => "1.x",
            Era::Newer => "unknown",
        }
    }
}

/// What the reader needs to know about the file's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub era: Era,
    /// Highest applied migration per migrations dir.
    pub migrations: BTreeMap<String, i64>,
    /// Why pruning is not allowed on this schema, if it is not.
    pub prune_blocker: Option<String>,
    /// `collections.topic` exists (0.4.x).
    pub collection_topic: bool,
    /// `collections.database_id` and the `databases` table exist (0.4.15+).
    pub databases: bool,
    /// `embeddings_queue_config` exists (0.5.6+).
    pub queue_config: bool,
    /// `max_seq_id` table exists.
    pub max_seq_id_table: bool,
    /// `PRAGMA journal_mode` as reported.
    pub journal_mode: String,
    pub page_size: i64,
    /// Pages on the freelist: space inside the file that only a compaction gives back.
    pub freelist_pages: i64,
    /// Migrations at a version a release knows under a file name no release has, as
    /// `dir/version is name` (a development build wrote them).
    pub foreign_migrations: Vec<String>,
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Column names of a table (empty when the table does not exist).
pub fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let cols = st
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cols)
}

/// Read the schema. Fails when the file is not a Chroma system database at all.
pub fn detect(conn: &Connection) -> Result<Schema> {
    for t in ["embeddings_queue", "collections", "segments"] {
        if !table_exists(conn, t)? {
            return Err(Error::failed(format!(
                "not a Chroma database: table `{t}` is missing"
            )));
        }
    }
    let queue_cols = columns(conn, "embeddings_queue")?;
    for c in ["seq_id", "topic"] {
        if !queue_cols.iter().any(|x| x == c) {
            return Err(Error::failed(format!(
                "not a Chroma database: embeddings_queue has no `{c}` column"
            )));
        }
    }
    let mut migrations = BTreeMap::new();
    let mut foreign_migrations = Vec::new();
    if table_exists(conn, "migrations")? {
        let mut st = conn.prepare("SELECT dir, version, filename FROM migrations")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        for row in rows {
            let (d, v, file) = row?;
            let top = migrations.entry(d.clone()).or_insert(v);
            *top = (*top).max(v);
            let known = KNOWN_FILES.iter().find(|(kd, kv, _)| *kd == d && *kv == v);
            if let Some((_, _, name)) = known {
                if file.as_deref() != Some(*name) {
                    foreign_migrations.push(format!(
                        "{d}/{v} is {}, not {name}",
                        file.as_deref().unwrap_or("unnamed")
                    ));
                }
            }
        }
        foreign_migrations.sort();
    }
    let coll_cols = columns(conn, "collections")?;
    let collection_topic = coll_cols.iter().any(|c| c == "topic");
    let databases =
        coll_cols.iter().any(|c| c == "database_id") && table_exists(conn, "databases")?;
    let queue_config = table_exists(conn, "embeddings_queue_config")?;
    let max_seq_id_table = table_exists(conn, "max_seq_id")?;
    let seq_int = if max_seq_id_table {
        let t: Option<String> = conn
            .query_row(
                "SELECT type FROM pragma_table_info('max_seq_id') WHERE name = 'seq_id'",
                [],
                |r| r.get(0),
            )
            .ok();
        t.map(|t| t.eq_ignore_ascii_case("INTEGER"))
            .unwrap_or(false)
    } else {
        false
    };

    let mut blockers = Vec::new();
    if migrations.is_empty() {
        blockers.push(
            "no migrations table: this file was not written by a Chroma release chroma-wal knows"
                .to_string(),
        );
    }
    for (dir, v) in &migrations {
        match KNOWN_MIGRATIONS.iter().find(|(d, _)| d == dir) {
            Some((_, known)) if v > known => blockers.push(format!(
                "migration {dir}/{v} is newer than chroma-wal knows (up to {dir}/{known})"
            )),
            Some(_) => {}
            None => blockers.push(format!("unknown migrations dir `{dir}` (version {v})")),
        }
    }
    let era = if !blockers.is_empty() && !migrations.is_empty() {
        Era::Newer
    } else if collection_topic {
        Era::V04
    } else if seq_int {
        Era::V1
    } else if queue_config {
        Era::V056
    } else {
        Era::V050
    };
    if blockers.is_empty() && !foreign_migrations.is_empty() {
        blockers.push(format!(
            "no known chromadb release has exactly these migrations ({}): a development \
             build wrote this dir, so it is browsed read-only",
            foreign_migrations.join("; ")
        ));
    }
    let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let freelist_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(Schema {
        era,
        migrations,
        prune_blocker: if blockers.is_empty() {
            None
        } else {
            Some(blockers.join("; "))
        },
        collection_topic,
        databases,
        queue_config,
        max_seq_id_table,
        journal_mode,
        page_size,
        freelist_pages,
        foreign_migrations,
    })
    .map(|mut schema| {
        // Versions no release has together (each known alone) are refused the same way.
        if schema.prune_blocker.is_none()
            && !schema.migrations.is_empty()
            && schema.releases().is_none()
        {
            schema.prune_blocker = Some(
                "no known chromadb release has exactly these migrations, so it is browsed \
                 read-only"
                    .into(),
            );
        }
        schema
    })
}

/// The window of chromadb releases whose migrations match a dir's exactly: they open it as
/// it is. Any newer release migrates it for good; older ones refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Releases {
    pub first: &'static str,
    /// The newest release known for that migration set.
    pub last: &'static str,
}

/// Highest sysdb / metadb / embeddings_queue migration → releases (read from the migration
/// files of each release tag; `../shared/chroma-persist-format.md`). 0.4.0–0.4.14 are told
/// apart by metadb alone.
/// (sysdb range, metadb range, embeddings_queue, releases).
type Window = ((i64, i64), (i64, i64), i64, Releases);
const RELEASES: &[Window] = &[
    (
        (1, 3),
        (1, 1),
        1,
        Releases {
            first: "0.4.0",
            last: "0.4.3",
        },
    ),
    (
        (1, 3),
        (2, 2),
        1,
        Releases {
            first: "0.4.4",
            last: "0.4.5",
        },
    ),
    (
        (1, 3),
        (3, 3),
        1,
        Releases {
            first: "0.4.6",
            last: "0.4.14",
        },
    ),
    (
        (4, 4),
        (3, 3),
        1,
        Releases {
            first: "0.4.15",
            last: "0.4.24",
        },
    ),
    (
        (5, 5),
        (3, 3),
        1,
        Releases {
            first: "0.5.0",
            last: "0.5.0",
        },
    ),
    (
        (6, 6),
        (3, 3),
        1,
        Releases {
            first: "0.5.1",
            last: "0.5.3",
        },
    ),
    (
        (7, 7),
        (3, 3),
        1,
        Releases {
            first: "0.5.4",
            last: "0.5.5",
        },
    ),
    (
        (9, 9),
        (4, 4),
        2,
        Releases {
            first: "0.5.6",
            last: "0.6.3",
        },
    ),
    (
        (9, 9),
        (5, 5),
        2,
        Releases {
            first: "1.0.0",
            last: "1.2.2",
        },
    ),
    (
        (10, 10),
        (5, 5),
        2,
        Releases {
            first: "1.3.0",
            last: "1.4.1",
        },
    ),
    (
        (10, 10),
        (6, 6),
        2,
        Releases {
            first: "1.5.0",
            last: "1.5.9",
        },
    ),
];

impl Schema {
    /// Which releases open this dir without migrating it; `None` when no known release has
    /// exactly these migrations.
    pub fn releases(&self) -> Option<Releases> {
        if !self.foreign_migrations.is_empty() {
            return None;
        }
        let get = |d: &str| self.migrations.get(d).copied().unwrap_or(0);
        let (s, m, e) = (get("sysdb"), get("metadb"), get("embeddings_queue"));
        RELEASES
            .iter()
            .find(|(sr, mr, er, _)| {
                (sr.0..=sr.1).contains(&s) && (mr.0..=mr.1).contains(&m) && *er == e
            })
            .map(|(_, _, _, r)| *r)
    }

    /// The answer to "which Chroma can open this dir?", in one sentence.
    pub fn releases_sentence(&self) -> String {
        match self.releases() {
            Some(r) if r.first == r.last => format!(
                "opens in chromadb {} as is; newer releases migrate it for good, older ones refuse it",
                r.first
            ),
            Some(r) => format!(
                "opens in chromadb {} – {} as is; newer releases migrate it for good, older ones refuse it",
                r.first, r.last
            ),
            None => "no known chromadb release has exactly these migrations".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(s: i64, m: i64, e: i64) -> Schema {
        let mut migrations = BTreeMap::new();
        migrations.insert("sysdb".to_string(), s);
        migrations.insert("metadb".to_string(), m);
        migrations.insert("embeddings_queue".to_string(), e);
        Schema {
            era: Era::V1,
            migrations,
            prune_blocker: None,
            collection_topic: false,
            databases: true,
            queue_config: true,
            max_seq_id_table: true,
            journal_mode: "delete".into(),
            page_size: 4096,
            freelist_pages: 0,
            foreign_migrations: Vec::new(),
        }
    }

    #[test]
    fn release_windows() {
        let r = |s, m, e| schema(s, m, e).releases().map(|r| (r.first, r.last));
        assert_eq!(r(4, 3, 1), Some(("0.4.15", "0.4.24")));
        assert_eq!(r(7, 3, 1), Some(("0.5.4", "0.5.5")));
        assert_eq!(r(9, 4, 2), Some(("0.5.6", "0.6.3")));
        assert_eq!(r(10, 6, 2), Some(("1.5.0", "1.5.9")));
        assert_eq!(r(8, 4, 2), None);
        assert_eq!(r(11, 6, 2), None);
        assert!(schema(4, 3, 1)
            .releases_sentence()
            .contains("0.4.15 – 0.4.24"));
    }
}
