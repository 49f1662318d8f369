//! Rows no release reads again: the records of a segment that no longer exists (0.6.3's
//! `delete_collection` leaves them), the metadata and full-text rows of records that no longer
//! exist (0.4.22 never removes a deleted record's full-text row), and the metadata of a
//! collection or segment that is gone. Chroma reaches each of these tables only through a live
//! segment, collection or record, so removing them changes nothing it returns.
//!
//! The full-text index is an FTS5 table: a delete there only adds a marker beside the old
//! entries, so after the deletes the index is merged (`optimize`), which writes it anew without
//! them. What the old pages held is then in free pages, which the VACUUM after this step drops.

use rusqlite::Connection;

pub use crate::chroma::leftovers::Leftovers;
use crate::chroma::leftovers::{kinds, FULLTEXT as FTS};
use crate::error::Result;

/// How many rows [`remove`] would delete.
pub fn count(conn: &Connection) -> Result<Leftovers> {
    crate::chroma::leftovers::count(conn)
}

/// Delete them, inside the caller's transaction, and write the full-text index anew.
pub fn remove(conn: &Connection) -> Result<Leftovers> {
    let mut l = Leftovers::default();
    for (kind, table, cond) in kinds(conn)? {
        let n = conn.execute(&format!("DELETE FROM \"{table}\" WHERE {cond}"), [])?;
        l.add(kind, n as u64);
    }
    if kinds(conn)?.iter().any(|k| k.1 == FTS) {
        conn.execute(&format!("INSERT INTO {FTS}({FTS}) VALUES ('optimize')"), [])?;
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE segments (id TEXT PRIMARY KEY);
             CREATE TABLE collections (id TEXT PRIMARY KEY);
             CREATE TABLE collection_metadata (collection_id TEXT, key TEXT, str_value TEXT);
             CREATE TABLE embeddings (id INTEGER PRIMARY KEY, segment_id TEXT, embedding_id TEXT);
             CREATE TABLE embedding_metadata (id INTEGER REFERENCES embeddings(id), key TEXT, string_value TEXT);
             CREATE VIRTUAL TABLE embedding_fulltext_search USING fts5(string_value, tokenize='trigram');
             INSERT INTO segments VALUES ('live');
             INSERT INTO collections VALUES ('c');
             INSERT INTO collection_metadata VALUES ('c', 'k', 'kept'), ('gone', 'k', 'secret');
             INSERT INTO embeddings VALUES (1, 'live', 'a'), (2, 'dead', 'b');
             INSERT INTO embedding_metadata VALUES (1, 'chroma:document', 'kept doc'),
               (2, 'chroma:document', 'secret doc'), (3, 'chroma:document', 'deleted doc');
             INSERT INTO embedding_fulltext_search(rowid, string_value) VALUES
               (1, 'kept doc'), (2, 'secret doc'), (3, 'deleted doc');
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        c
    }

    #[test]
    fn counts_then_removes_only_what_nothing_points_to() {
        let c = db();
        let want = Leftovers {
            records: 1,
            metadata: 2,
            fulltext: 2,
            catalog: 1,
        };
        assert_eq!(count(&c).unwrap(), want);
        assert_eq!(remove(&c).unwrap(), want);
        assert_eq!(count(&c).unwrap(), Leftovers::default());
        let docs: Vec<String> = c
            .prepare(
                "SELECT string_value FROM embedding_fulltext_search WHERE string_value MATCH 'doc'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(docs, vec!["kept doc".to_string()]);
        let kept: i64 = c
            .query_row("SELECT count(*) FROM collection_metadata", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1);
    }
}
