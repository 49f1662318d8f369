//! The records of a collection as `get(include=["documents", "metadatas", "embeddings"])` in
//! the release that wrote the dir returns them, read without Chroma and without changing a
//! byte: ids in `embeddings.id` order from the metadata segment, documents and metadata with
//! their stored types ([`meta`]), and each embedding from the index files or from the WAL rows
//! the release has yet to apply ([`vectors`], by the replay model the index truth uses).
//!
//! Pages are read in short statements (the live-read rule), and memory grows with the index's
//! elements (its label maps, about 40 bytes each) and one page, never with the vectors.

pub mod meta;
pub mod vectors;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::chroma::catalog::Snapshot;
use crate::chroma::idhash::IdHash;
use crate::error::{Error, Result};

pub use vectors::Source;

/// One record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its `embeddings.id` (the order `get()` returns records in; pages continue after it).
    pub rowid: i64,
    pub id: String,
    pub document: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// The vector exactly as stored (`None`: not asked for, or there is none).
    pub embedding: Option<Vec<f32>>,
    /// Where it is (`None`: no vector exists, so no query returns the record).
    pub source: Option<Source>,
}

impl Record {
    /// One line of `records --jsonl`: `id, document, metadata, embedding, source` (the
    /// embedding omitted without `with_embedding`). Floats are the stored float32 values,
    /// written as the float64 numbers Chroma's own `get()` widens them to.
    pub fn json_line(&self, with_embedding: bool, out: &mut Vec<u8>) {
        // Written by hand, in the contract's order: a million 384-float vectors are most of
        // the output, and the floats are formatted here without an intermediate value.
        let json = |v: &dyn erased::Json, out: &mut Vec<u8>| v.write(out);
        out.extend_from_slice(b"{\"id\":");
        json(&self.id, out);
        out.extend_from_slice(b",\"document\":");
        json(&self.document, out);
        out.extend_from_slice(b",\"metadata\":");
        json(&self.metadata, out);
        if with_embedding {
            out.extend_from_slice(b",\"embedding\":");
            match &self.embedding {
                None => out.extend_from_slice(b"null"),
                Some(v) => {
                    out.push(b'[');
                    let mut buf = ryu::Buffer::new();
                    for (i, x) in v.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        let x = *x as f64;
                        if x.is_finite() {
                            out.extend_from_slice(buf.format_finite(x).as_bytes());
                        } else {
                            out.extend_from_slice(b"null");
                        }
                    }
                    out.push(b']');
                }
            }
        }
        out.extend_from_slice(b",\"source\":");
        json(&self.source.map(|s| s.key()), out);
        out.extend_from_slice(b"}\n");
    }
}

mod erased {
    /// A value serde_json writes into a byte buffer.
    pub trait Json {
        fn write(&self, out: &mut Vec<u8>);
    }

    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut Vec<u8>) {
            if serde_json::to_writer(&mut *out, self).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// What to list: every record, or those whose id or document contains a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Id(String),
    Document(String),
}

/// A collection's records, ready to be read page by page.
pub struct Reader {
    conn: Connection,
    segment: String,
    shape: meta::Shape,
    vectors: Option<vectors::Vectors>,
    pub collection: String,
}

impl Reader {
    /// Open collection `ci` of `snap`: its metadata segment, without the vectors yet.
    pub fn open(snap: &Snapshot, ci: usize) -> Result<Reader> {
        let c = snap
            .collections
            .get(ci)
            .ok_or_else(|| Error::Usage("no such collection".into()))?;
        let Some(m) = c.segments.iter().find(|s| s.scope == "METADATA") else {
            return Err(Error::failed(format!(
                "collection {} has no metadata segment: it has no records to read",
                c.name
            )));
        };
        let conn = crate::chroma::db::open_read_only(&snap.sqlite_path)?;
        let shape = meta::Shape::of(&conn)?;
        Ok(Reader {
            conn,
            segment: m.id.clone(),
            shape,
            vectors: None,
            collection: c.name.clone(),
        })
    }

    /// Read where the vectors are (one pass over the index's labels, the pickle's map and the
    /// WAL rows to replay). Until then, pages have no embedding and no source.
    pub fn load_vectors(&mut self, snap: &Snapshot, ci: usize) -> Result<()> {
        self.load_vectors_until(snap, ci, &|| false)
    }

    /// [`Reader::load_vectors`], giving up (with an error) once `stop` says so.
    pub fn load_vectors_until(
        &mut self,
        snap: &Snapshot,
        ci: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        let c = &snap.collections[ci];
        let Some(v) = c.segments.iter().find(|s| s.scope == "VECTOR") else {
            self.vectors = None;
            return Ok(());
        };
        self.vectors = Some(vectors::Vectors::open(&self.conn, snap, ci, v, stop)?);
        Ok(())
    }

    pub fn vectors_loaded(&self) -> bool {
        self.vectors.is_some()
    }

    /// Why no embedding can be given, when so (a damaged index).
    pub fn problem(&self) -> Option<&str> {
        self.vectors.as_ref().and_then(|v| v.problem.as_deref())
    }

    /// How many records the collection has (what `count()` says). Counted along the
    /// (segment, id) index in short statements, as the index truth reads the ids: one
    /// COUNT(*) of 51,000 records read 743 pages under one read lock, cold, and held a live
    /// writer off for that long.
    pub fn count(&self) -> Result<u64> {
        let mut n = 0u64;
        crate::chroma::truth::records::each_id(&self.conn, &self.segment, &mut |_| {
            n += 1;
            true
        })?;
        Ok(n)
    }

    /// Up to `limit` records after `after` (an `embeddings.id`; `i64::MIN` for the first),
    /// that `filter` accepts, with their vectors when `embeddings` and once loaded.
    pub fn page(
        &self,
        after: i64,
        limit: usize,
        filter: &Filter,
        embeddings: bool,
    ) -> Result<Vec<Record>> {
        self.read(after, limit, filter, embeddings, true)
    }

    /// Up to `limit` records before `before`, in `embeddings.id` order (scrolling back).
    pub fn page_before(&self, before: i64, limit: usize, filter: &Filter) -> Result<Vec<Record>> {
        self.read(before, limit, filter, false, false)
    }

    fn read(
        &self,
        from: i64,
        limit: usize,
        filter: &Filter,
        embeddings: bool,
        forward: bool,
    ) -> Result<Vec<Record>> {
        let after = from;
        let (cond, arg) = match filter {
            Filter::All => ("", None),
            Filter::Id(s) => ("AND instr(e.embedding_id, ?3) > 0", Some(s.as_str())),
            Filter::Document(s) => (
                "AND EXISTS (SELECT 1 FROM embedding_metadata m WHERE m.id = e.id \
                 AND m.key = 'chroma:document' AND instr(m.string_value, ?3) > 0)",
                Some(s.as_str()),
            ),
        };
        let order = if forward { "" } else { "DESC" };
        // `+e.segment_id`: walk the rowids from `from` on, never the (segment, id) index then
        // a sort of the whole collection, which made every page cost the collection. The walk
        // goes in rowid spans, one short statement each: the rows of other collections before
        // this one's (153,000 of them, 2,948 pages cold) held a live writer off for 230 ms
        // in one statement.
        let sql = format!(
            "SELECT e.id, e.embedding_id FROM embeddings e WHERE +e.segment_id = ?1 \
             AND e.id BETWEEN ?4 AND ?5 {cond} ORDER BY e.id {order} LIMIT ?2"
        );
        let extent = crate::chroma::ranged::extent_of(&self.conn, "embeddings", "id")?;
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut ids: Vec<(i64, String)> = Vec::with_capacity(limit);
        let mut span = crate::chroma::ranged::Span::new(1 << 20);
        // The rowids still to walk, `first ..= last`, shrinking from the walk's side.
        let (mut first, mut last) = match extent {
            Some((lo, hi)) if forward => (lo.max(after.saturating_add(1)), hi),
            Some((lo, hi)) => (lo, hi.min(after.saturating_sub(1))),
            None => (1, 0),
        };
        while ids.len() < limit && first <= last {
            let (a, b) = if forward {
                (first, first.saturating_add(span.len - 1).min(last))
            } else {
                (last.saturating_sub(span.len - 1).max(first), last)
            };
            let left = (limit - ids.len()) as i64;
            let mut returned = 0i64;
            let mut last_rowid = None;
            let took = crate::chroma::ranged::gated(|| {
                let t0 = std::time::Instant::now();
                let mut rows = match arg {
                    Some(x) => st.query(rusqlite::params![self.segment, left, x, a, b])?,
                    None => st.query(rusqlite::params![self.segment, left, None::<&str>, a, b])?,
                };
                while let Some(r) = rows.next()? {
                    let rowid: i64 = r.get(0)?;
                    returned += 1;
                    last_rowid = Some(rowid);
                    let id = match r.get_ref(1)? {
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        _ => continue,
                    };
                    ids.push((rowid, id));
                }
                Ok(t0.elapsed())
            })?;
            span.after(took);
            // Where SQL's LIMIT ended the statement (rows without a text id were returned and
            // skipped), the span goes on after the last row it returned.
            let (a, b) = match last_rowid {
                Some(r) if returned == left && forward => (a, r),
                Some(r) if returned == left => (r, b),
                _ => (a, b),
            };
            if forward {
                first = b.saturating_add(1);
                if b == i64::MAX {
                    break;
                }
            } else {
                last = a.saturating_sub(1);
                if a == i64::MIN {
                    break;
                }
            }
        }
        if !forward {
            ids.reverse();
        }
        let rowids: Vec<i64> = ids.iter().map(|(r, _)| *r).collect();
        let mut metas = meta::read(&self.conn, self.shape, &rowids)?;
        let mut out = Vec::with_capacity(ids.len());
        for (rowid, id) in ids {
            let m = metas.remove(&rowid).unwrap_or_default();
            let (embedding, source) = match &self.vectors {
                Some(v) => {
                    let h = IdHash::of(id.as_bytes());
                    if embeddings {
                        match v.vector(&self.conn, &h)? {
                            Some((e, s)) => (Some(e), Some(s)),
                            None => (None, None),
                        }
                    } else {
                        (None, v.source(&h))
                    }
                }
                None => (None, None),
            };
            out.push(Record {
                rowid,
                id,
                document: m.document,
                metadata: m.metadata,
                embedding,
                source,
            });
        }
        Ok(out)
    }
}
