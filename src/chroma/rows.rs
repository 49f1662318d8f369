//! The WAL's rows themselves: one topic at a time, paged by seq_id (keyset), never a whole
//! topic in memory. `embeddings_queue` has no index on `topic`, so a page is a walk of the
//! rowid b-tree from a seq_id, filtering by topic, that stops as soon as the page is full.

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};

use super::catalog::{Snapshot, TopicOwner};
use super::ranged;
use crate::error::Result;

/// Rows per page when paging a topic.
pub const PAGE: usize = 200;
/// How many leading vector values a row keeps.
pub const VECTOR_HEAD: usize = 8;

pub use super::operation::Operation;

/// Where a row stands with respect to a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Below the bound: a prune deletes it.
    Prunable,
    /// At or above the bound (or the bound is unknown): still needed.
    Held,
    /// Its collection was deleted: a prune deletes it.
    Orphan,
}

impl RowState {
    pub fn key(self) -> &'static str {
        match self {
            RowState::Prunable => "prunable",
            RowState::Held => "held",
            RowState::Orphan => "orphan",
        }
    }

    /// Whether a prune of this topic deletes the row.
    pub fn goes(self) -> bool {
        !matches!(self, RowState::Held)
    }
}

/// One WAL row, decoded as data.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRow {
    pub seq_id: i64,
    pub topic: String,
    /// As stored.
    pub created_at: Option<String>,
    pub operation: Operation,
    pub id: String,
    /// The `chroma:document` value.
    pub document: Option<String>,
    /// The rest of the metadata; `None` when there is none.
    pub metadata: Option<Map<String, Value>>,
    /// Length of the vector BLOB in bytes (`None`: no vector).
    pub vector_bytes: Option<usize>,
    /// Its first values as float32.
    pub vector_head: Vec<f32>,
    pub encoding: Option<String>,
    pub state: RowState,
    /// What is wrong with the row as stored, in words (empty when nothing is).
    pub malformed: Vec<String>,
}

impl WalRow {
    /// bytes / 4 for a FLOAT32 vector; `None` without a vector or when it is malformed.
    pub fn vector_dim(&self) -> Option<usize> {
        self.vector_bytes.filter(|b| b % 4 == 0).map(|b| b / 4)
    }

    /// The JSON Lines object of `chroma-wal rows --jsonl`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "seq_id": self.seq_id,
            "topic": self.topic,
            "created_at": self.created_at,
            "operation": self.operation.name(),
            "id": self.id,
            "document": self.document,
            "metadata": self.metadata,
            "vector_dim": self.vector_dim(),
            "state": self.state.key(),
        });
        if !self.malformed.is_empty() {
            v["malformed"] = serde_json::json!(self.malformed);
        }
        v
    }
}

/// Which rows to read (the topics of one collection, or one orphan topic), and how to judge
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    pub topics: Vec<String>,
    /// Rows with `seq_id < bound` go; `None`: none go.
    pub bound: Option<i64>,
    pub orphan: bool,
}

impl TopicView {
    /// The view of `topics` (one collection's, or one orphan topic) as `prune --topic` would
    /// plan them: the collection's bound, every row of an orphan topic, and nothing when the
    /// seq_id guard would keep them whole.
    pub fn of(snap: &Snapshot, conn: &Connection, topics: &[String]) -> Result<TopicView> {
        let first = topics.first().map(String::as_str).unwrap_or_default();
        let (mut bound, orphan) = match snap.owner_of(first) {
            TopicOwner::Collection(i) => (snap.collections[i].bound.value(), false),
            TopicOwner::Orphan => (Some(i64::MAX), true),
        };
        // The seq_id guard (prune::guard) for these topics alone: a row at or above the
        // highest recorded position must survive the prune, or the topics are kept whole.
        // Only the rows at the top of the table are read.
        if let (Some(p), Some(b)) = (snap.highest_position(), bound) {
            let sql = format!(
                "SELECT topic IN ({}) AND seq_id < ?2 FROM embeddings_queue WHERE seq_id >= ?1",
                placeholders(3, topics.len())
            );
            let mut st = conn.prepare(&sql)?;
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&p, &b];
            params.extend(topics.iter().map(|t| t as &dyn rusqlite::ToSql));
            let mut rows = st.query(params.as_slice())?;
            let (mut any, mut survives) = (false, false);
            while let Some(r) = rows.next()? {
                any = true;
                if r.get::<_, i64>(0)? == 0 {
                    survives = true;
                    break;
                }
            }
            if any && !survives {
                bound = None;
            }
        }
        Ok(TopicView {
            topics: topics.to_vec(),
            bound,
            orphan,
        })
    }

    pub fn state(&self, seq_id: i64) -> RowState {
        match self.bound {
            Some(b) if seq_id < b => {
                if self.orphan {
                    RowState::Orphan
                } else {
                    RowState::Prunable
                }
            }
            _ => RowState::Held,
        }
    }
}

const COLUMNS: &str = "seq_id, created_at, operation, id, vector, encoding, metadata, topic";

/// `?from, ?from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (0..n.max(1))
        .map(|i| format!("?{}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// seq_ids one statement walks at most: a topic that is sparse in a big WAL is read in
/// several short statements (each releases its read lock), never one long one.
const SPAN: i64 = 50_000;

/// Up to `limit` rows with `seq_id < before`, newest first.
pub fn page_before(
    conn: &Connection,
    view: &TopicView,
    before: i64,
    limit: usize,
) -> Result<Vec<WalRow>> {
    let Some((lo, hi)) = ranged::extent(conn)? else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM embeddings_queue WHERE seq_id < ?1 AND seq_id >= ?3 AND topic IN ({}) ORDER BY seq_id DESC LIMIT ?2",
        placeholders(4, view.topics.len())
    );
    let mut out = Vec::new();
    let mut cursor = before.min(hi.saturating_add(1));
    let mut span = ranged::Span::new(SPAN);
    while out.len() < limit && cursor > lo {
        let floor = cursor.saturating_sub(span.len).max(lo);
        let t0 = std::time::Instant::now();
        out.extend(query(conn, view, &sql, cursor, limit - out.len(), floor)?);
        span.after(t0.elapsed());
        // Below the range: the next row down (any topic), so sparse seq_ids are skipped.
        cursor = match conn
            .prepare_cached("SELECT MAX(seq_id) FROM embeddings_queue WHERE seq_id < ?1")?
            .query_row([floor], |r| r.get::<_, Option<i64>>(0))?
        {
            Some(n) => n.saturating_add(1),
            None => break,
        };
    }
    Ok(out)
}

/// Up to `limit` rows with `seq_id > after`, oldest first.
pub fn page_after(
    conn: &Connection,
    view: &TopicView,
    after: i64,
    limit: usize,
) -> Result<Vec<WalRow>> {
    let Some(first) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM embeddings_queue WHERE seq_id >= ?1 AND seq_id <= ?3 AND topic IN ({}) ORDER BY seq_id ASC LIMIT ?2",
        placeholders(4, view.topics.len())
    );
    let mut out = Vec::new();
    walk_up(conn, first, |from, to| {
        out.extend(query(conn, view, &sql, from, limit - out.len(), to)?);
        Ok(out.len() >= limit)
    })?;
    Ok(out)
}

/// Walk the table upwards from seq_id `first` in ranges of at most [`SPAN`] seq_ids ([`ranged::Span`]), one
/// short statement each (a live Chroma's writes wait for one range at most, not the walk),
/// calling `range(from, to)` for the rows in `from..=to` until it says it is done.
fn walk_up(
    conn: &Connection,
    first: i64,
    mut range: impl FnMut(i64, i64) -> Result<bool>,
) -> Result<()> {
    let Some((lo, hi)) = ranged::extent(conn)? else {
        return Ok(());
    };
    let mut from = first.max(lo);
    let mut span = ranged::Span::new(SPAN);
    while from <= hi {
        let to = from.saturating_add(span.len - 1).min(hi);
        let t0 = std::time::Instant::now();
        if range(from, to)? || to >= hi {
            break;
        }
        span.after(t0.elapsed());
        // Above the range: the next row up (any topic), so sparse seq_ids are skipped.
        from = match conn
            .prepare_cached("SELECT MIN(seq_id) FROM embeddings_queue WHERE seq_id > ?1")?
            .query_row([to], |r| r.get::<_, Option<i64>>(0))?
        {
            Some(n) => n,
            None => break,
        };
    }
    Ok(())
}

/// The seq_ids of the rows whose id is `id`, oldest first (at most `cap`). The whole topic
/// may be searched, so it is walked in ranges like a page: a live writer never waits for it.
pub fn find_id(conn: &Connection, view: &TopicView, id: &str, cap: usize) -> Result<Vec<i64>> {
    let sql = format!(
        "SELECT seq_id FROM embeddings_queue WHERE seq_id >= ?1 AND seq_id <= ?2 AND id = ?3 \
         AND topic IN ({}) ORDER BY seq_id LIMIT ?4",
        placeholders(5, view.topics.len())
    );
    let mut st = conn.prepare(&sql)?;
    let mut out: Vec<i64> = Vec::new();
    walk_up(conn, i64::MIN, |from, to| {
        let left = cap.saturating_sub(out.len()) as i64;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&from, &to, &id, &left];
        params.extend(view.topics.iter().map(|t| t as &dyn rusqlite::ToSql));
        let found = ranged::gated(|| {
            Ok(st
                .query_map(params.as_slice(), |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?)
        })?;
        out.extend(found);
        Ok(out.len() >= cap)
    })?;
    Ok(out)
}

fn query(
    conn: &Connection,
    view: &TopicView,
    sql: &str,
    from: i64,
    limit: usize,
    other_end: i64,
) -> Result<Vec<WalRow>> {
    let mut st = conn.prepare_cached(sql)?;
    let limit_p = limit as i64;
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&from, &limit_p, &other_end];
    params.extend(view.topics.iter().map(|t| t as &dyn rusqlite::ToSql));
    let mut out = Vec::with_capacity(limit.min(PAGE));
    ranged::gated(|| {
        let mut rows = st.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            out.push(decode(r, view)?);
        }
        Ok(())
    })?;
    Ok(out)
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

fn decode(r: &rusqlite::Row<'_>, view: &TopicView) -> Result<WalRow> {
    let seq_id: i64 = r.get(0)?;
    let topic = text(r.get_ref(7)?).unwrap_or_default();
    let mut malformed = Vec::new();
    let operation = match r.get_ref(2)? {
        ValueRef::Integer(n) => Operation::from_code(n),
        other => {
            malformed.push(format!("operation is {}, not an integer", kind(other)));
            Operation::Unknown(-1)
        }
    };
    let (vector_bytes, vector_head) = match r.get_ref(4)? {
        ValueRef::Blob(b) => {
            if b.len() % 4 != 0 {
                malformed.push(format!(
                    "vector of {} bytes is not a whole number of float32 values",
                    b.len()
                ));
            }
            let head = b
                .chunks_exact(4)
                .take(VECTOR_HEAD)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (Some(b.len()), head)
        }
        ValueRef::Null => (None, Vec::new()),
        other => {
            malformed.push(format!("vector is {}, not a BLOB", kind(other)));
            (None, Vec::new())
        }
    };
    let (document, metadata) = match text(r.get_ref(6)?) {
        None => (None, None),
        Some(raw) => match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(mut m)) => {
                let doc = match m.remove("chroma:document") {
                    Some(Value::String(s)) => Some(s),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                (doc, (!m.is_empty()).then_some(m))
            }
            Ok(other) => {
                malformed.push(format!(
                    "metadata is JSON {}, not an object",
                    json_kind(&other)
                ));
                (None, None)
            }
            Err(e) => {
                malformed.push(format!("metadata is not JSON ({e})"));
                (None, None)
            }
        },
    };
    Ok(WalRow {
        seq_id,
        topic,
        created_at: text(r.get_ref(1)?),
        operation,
        id: text(r.get_ref(3)?).unwrap_or_default(),
        document,
        metadata,
        vector_bytes,
        vector_head,
        encoding: text(r.get_ref(5)?),
        state: view.state(seq_id),
        malformed,
    })
}

fn kind(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a BLOB",
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
