//! Which Chroma era wrote this file: decided from the migrations and the columns actually
//! present, never from a version guess.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The newest migration chroma-wal knows per migrations dir (chromadb 1.5.9).
pub const KNOWN_MIGRATIONS: &[(&str, i64)] =
    &[("sysdb", 10), ("metadb", 6), ("embeddings_queue", 2)];

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
    if table_exists(conn, "migrations")? {
        let mut st = conn.prepare("SELECT dir, MAX(version) FROM migrations GROUP BY dir")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (d, v) = row?;
            migrations.insert(d, v);
        }
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
    })
}
