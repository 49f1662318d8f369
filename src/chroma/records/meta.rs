//! Documents and metadata of records, as `get()` builds them from the metadata segment: the
//! key `chroma:document` is the document (never the full-text-search tables, which can hold
//! stale rows); every other key keeps its stored type, the first non-null of string, int,
//! float and bool; 1.5's arrays are one `embedding_metadata_array` row per element, in row
//! order. A record with no key but its document has metadata null, never `{}`.

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Number, Value};

use crate::error::Result;

/// The document key, in every era.
pub const DOCUMENT_KEY: &str = "chroma:document";

/// One record's document and metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub document: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// Which columns and tables this dir has.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    has_bool: bool,
    has_arrays: bool,
}

impl Shape {
    pub fn of(conn: &Connection) -> Result<Shape> {
        let has_bool = conn
            .prepare(
                "SELECT 1 FROM pragma_table_info('embedding_metadata') WHERE name = 'bool_value'",
            )?
            .exists([])?;
        let has_arrays = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embedding_metadata_array'")?
            .exists([])?;
        Ok(Shape {
            has_bool,
            has_arrays,
        })
    }
}

fn value(r: &rusqlite::Row<'_>, from: usize, has_bool: bool) -> rusqlite::Result<Option<Value>> {
    if let ValueRef::Text(t) = r.get_ref(from)? {
        return Ok(Some(Value::String(String::from_utf8_lossy(t).into_owned())));
    }
    if let ValueRef::Integer(n) = r.get_ref(from + 1)? {
        return Ok(Some(Value::Number(n.into())));
    }
    match r.get_ref(from + 2)? {
        ValueRef::Real(x) => {
            return Ok(Some(Number::from_f64(x).map_or(Value::Null, Value::Number)))
        }
        ValueRef::Integer(n) => {
            return Ok(Some(Value::Number(
                Number::from_f64(n as f64).map_or(0.into(), |n| n),
            )))
        }
        _ => {}
    }
    if has_bool {
        if let ValueRef::Integer(n) = r.get_ref(from + 3)? {
            return Ok(Some(Value::Bool(n != 0)));
        }
    }
    Ok(None)
}

/// Records whose metadata one statement reads: cold, a page of 1,000 records' metadata was
/// 2,949 page reads under one read lock (230 ms of a live writer's wait); 128 are about 400.
const CHUNK: usize = 128;

/// The documents and metadata of the records whose `embeddings.id` is in `rowids` (sorted).
pub fn read(conn: &Connection, shape: Shape, rowids: &[i64]) -> Result<HashMap<i64, Meta>> {
    let mut out: HashMap<i64, Meta> = HashMap::with_capacity(rowids.len());
    for chunk in rowids.chunks(CHUNK) {
        crate::chroma::ranged::gated(|| read_chunk(conn, shape, chunk, &mut out))?;
    }
    Ok(out)
}

fn read_chunk(
    conn: &Connection,
    shape: Shape,
    rowids: &[i64],
    out: &mut HashMap<i64, Meta>,
) -> Result<()> {
    if rowids.is_empty() {
        return Ok(());
    }
    // The page's rowids exactly (json_each), never a range: a sparse page (a search's
    // matches) would make one statement read most of the table.
    let list = serde_json::to_string(rowids).unwrap_or_else(|_| "[]".into());
    let wanted: std::collections::HashSet<i64> = rowids.iter().copied().collect();
    let bool_col = if shape.has_bool { "bool_value" } else { "NULL" };
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, key, string_value, int_value, float_value, {bool_col} FROM embedding_metadata \
         WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id, key"
    ))?;
    let mut rows = st.query([&list])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if !wanted.contains(&id) {
            continue;
        }
        let key = match r.get_ref(1)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => continue,
        };
        let Some(v) = value(r, 2, shape.has_bool)? else {
            continue;
        };
        let m = out.entry(id).or_default();
        if key == DOCUMENT_KEY {
            if let Value::String(s) = v {
                m.document = Some(s);
            }
        } else {
            m.metadata.get_or_insert_with(Map::new).insert(key, v);
        }
    }
    drop(rows);
    if shape.has_arrays {
        let mut st = conn.prepare_cached(&format!(
            "SELECT id, key, string_value, int_value, float_value, {bool_col} \
             FROM embedding_metadata_array WHERE id IN (SELECT value FROM json_each(?1)) \
             ORDER BY id, rowid"
        ))?;
        let mut rows = st.query([&list])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if !wanted.contains(&id) {
                continue;
            }
            let key: String = r.get(1)?;
            let Some(v) = value(r, 2, shape.has_bool)? else {
                continue;
            };
            let m = out
                .entry(id)
                .or_default()
                .metadata
                .get_or_insert_with(Map::new);
            match m.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(v),
                other => *other = Value::Array(vec![v]),
            }
        }
    }
    Ok(())
}
