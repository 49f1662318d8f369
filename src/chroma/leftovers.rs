//! Deleted data still on disk that no record owns, as `info --deep` and the explorer's space
//! view say it: rows nothing points to in chroma.sqlite3 (a deleted collection's records, the
//! full-text rows of deleted records, the metadata of gone collections and segments), and the
//! bytes of index files no live element owns (hnswlib writes uninitialised memory into
//! `length.bin` and the unused capacity of `data_level0.bin`: process memory, sometimes text).
//! `scrub` removes all of it; the conditions here are the ones its delete uses.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::hnsw::{Header, DATA_LEVEL0, LENGTH};
use crate::error::Result;

/// Rows that no segment, collection or live record points to, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Leftovers {
    /// `embeddings` rows of a segment that no longer exists.
    pub records: u64,
    /// `embedding_metadata` (and 1.x's `embedding_metadata_array`) rows of no live record.
    pub metadata: u64,
    /// Full-text rows of no live record.
    pub fulltext: u64,
    /// `collection_metadata` and `segment_metadata` rows of a collection or segment that is gone.
    pub catalog: u64,
}

impl Leftovers {
    pub fn total(&self) -> u64 {
        self.records + self.metadata + self.fulltext + self.catalog
    }

    pub fn add(&mut self, kind: Kind, n: u64) {
        match kind {
            Kind::Records => self.records += n,
            Kind::Metadata => self.metadata += n,
            Kind::Fulltext => self.fulltext += n,
            Kind::Catalog => self.catalog += n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Records,
    Metadata,
    Fulltext,
    Catalog,
}

/// The full-text table (FTS5; its rowid is the record's `embeddings.id`).
pub const FULLTEXT: &str = "embedding_fulltext_search";

const LIVE_RECORDS: &str = "SELECT e.id FROM embeddings e JOIN segments s ON s.id = e.segment_id";

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Each kind present in this file: its table, and the condition its orphan rows meet, in an
/// order a delete can follow (rows pointing to a record before the records:
/// `embedding_metadata` references `embeddings`, and a connection may enforce it).
pub fn kinds(conn: &Connection) -> Result<Vec<(Kind, &'static str, String)>> {
    let all = [
        (
            Kind::Metadata,
            "embedding_metadata",
            format!("id NOT IN ({LIVE_RECORDS})"),
        ),
        (
            Kind::Metadata,
            "embedding_metadata_array",
            format!("id NOT IN ({LIVE_RECORDS})"),
        ),
        (
            Kind::Fulltext,
            FULLTEXT,
            format!("rowid NOT IN ({LIVE_RECORDS})"),
        ),
        (
            Kind::Records,
            "embeddings",
            "segment_id NOT IN (SELECT id FROM segments)".to_string(),
        ),
        (
            Kind::Catalog,
            "collection_metadata",
            "collection_id NOT IN (SELECT id FROM collections)".to_string(),
        ),
        (
            Kind::Catalog,
            "segment_metadata",
            "segment_id NOT IN (SELECT id FROM segments)".to_string(),
        ),
    ];
    let mut out = Vec::new();
    for k in all {
        if has_table(conn, k.1)? {
            out.push(k);
        }
    }
    Ok(out)
}

/// Count them: one statement per table (each reads its table whole).
pub fn count(conn: &Connection) -> Result<Leftovers> {
    let mut l = Leftovers::default();
    for (kind, table, cond) in kinds(conn)? {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{table}\" WHERE {cond}"),
            [],
            |r| r.get(0),
        )?;
        l.add(kind, n.max(0) as u64);
    }
    Ok(l)
}

/// Bytes of an index folder's files that no live element owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexLeftovers {
    /// Non-zero bytes: `length.bin` past the elements (every slot, outside cosine, where
    /// hnswlib never writes one), `data_level0.bin` past the elements.
    pub bytes: u64,
    /// Runs of at least [`TEXT_RUN`] printable ASCII characters among them: readable text.
    pub text_runs: u64,
}

/// The shortest run of printable bytes counted as text.
pub const TEXT_RUN: usize = 8;

#[derive(Default)]
struct Scan {
    nonzero: u64,
    run: usize,
    runs: u64,
}

impl Scan {
    fn feed(&mut self, b: &[u8]) {
        for &x in b {
            if x != 0 {
                self.nonzero += 1;
            }
            if (0x20..0x7f).contains(&x) {
                self.run += 1;
                if self.run == TEXT_RUN {
                    self.runs += 1;
                }
            } else {
                self.run = 0;
            }
        }
    }

    fn file_from(&mut self, path: &Path, from: u64) {
        let Ok(mut f) = File::open(path) else {
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len <= from {
            return;
        }
        if std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(from)).is_err() {
            return;
        }
        self.run = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.feed(&buf[..n]),
            }
        }
    }
}

/// Scan `folder`'s files past the elements `h` counts (`cosine`: `length.bin` holds their
/// norms; otherwise it holds nothing of theirs).
pub fn index_files(folder: &Path, h: &Header, cosine: bool) -> IndexLeftovers {
    let mut s = Scan::default();
    let owned = if cosine {
        h.cur_element_count.saturating_mul(4)
    } else {
        0
    };
    s.file_from(&folder.join(LENGTH), owned);
    s.file_from(&folder.join(DATA_LEVEL0), h.level0_bytes());
    IndexLeftovers {
        bytes: s.nonzero,
        text_runs: s.runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_runs_and_nonzero_bytes() {
        let mut s = Scan::default();
        s.feed(b"\x00\x00secret@example.com\x01\x02abc\x00short\x00");
        assert_eq!(s.runs, 1);
        assert_eq!(s.nonzero, 18 + 2 + 3 + 5);
    }
}
