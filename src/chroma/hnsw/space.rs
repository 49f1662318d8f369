//! Which distance a collection's index was built for, read where each era keeps it:
//! - 0.4 – 0.6: `hnsw:space` in `segment_metadata` (copied there from the collection's
//!   metadata at creation; the local segment reads only this copy). 0.5/0.6's
//!   `config_json_str` can say `l2` for a cosine collection and is not what the segment uses.
//! - 1.x: the segment's legacy `hnsw:*` metadata where there is some (migrated collections),
//!   else `collections.schema_str`: `keys."#embedding".float_list.vector_index.config.space`,
//!   else its `defaults`; a collection created with `hnsw:space` metadata has it folded in.
//! - Nowhere: `l2`, every release's default.

use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension};

use super::distance::Space;

/// The first column of `sql`'s one row for `id`, when it is there and not NULL.
fn value<T: FromSql>(conn: &Connection, sql: &str, id: &str) -> Option<T> {
    conn.query_row(sql, [id], |r| r.get::<_, Option<T>>(0))
        .optional()
        .ok()
        .flatten()
        .flatten()
}

fn text(conn: &Connection, sql: &str, id: &str) -> Option<String> {
    value(conn, sql, id)
}

/// The space of the index of vector segment `segment_id` of collection `collection_id`.
pub fn read(conn: &Connection, collection_id: &str, segment_id: &str) -> Space {
    let legacy = [
        ("SELECT str_value FROM segment_metadata WHERE segment_id = ?1 AND key = 'hnsw:space'", segment_id),
        ("SELECT str_value FROM collection_metadata WHERE collection_id = ?1 AND key = 'hnsw:space'", collection_id),
    ];
    if let Some(s) = text(conn, legacy[0].0, legacy[0].1).and_then(|s| Space::parse(&s)) {
        return s;
    }
    if let Some(schema) = text(
        conn,
        "SELECT schema_str FROM collections WHERE id = ?1",
        collection_id,
    ) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&schema) {
            for path in [
                "/keys/#embedding/float_list/vector_index/config/space",
                "/defaults/float_list/vector_index/config/space",
            ] {
                if let Some(s) = v
                    .pointer(path)
                    .and_then(|s| s.as_str())
                    .and_then(Space::parse)
                {
                    return s;
                }
            }
        }
    }
    if let Some(s) = text(conn, legacy[1].0, legacy[1].1).and_then(|s| Space::parse(&s)) {
        return s;
    }
    if let Some(cfg) = text(
        conn,
        "SELECT config_json_str FROM collections WHERE id = ?1",
        collection_id,
    ) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&cfg) {
            if let Some(s) = v
                .pointer("/vector_index/hnsw/space")
                .and_then(|s| s.as_str())
                .and_then(Space::parse)
            {
                return s;
            }
        }
    }
    Space::L2
}

/// `hnsw:batch_size` of the segment (0.4 – 0.6 keep it in `segment_metadata`, copied from the
/// collection's metadata), else the collection's, else Chroma's default of 100: how many WAL
/// rows a Python release gathers in its brute-force buffer before it adds them to hnswlib.
pub fn batch_size(conn: &Connection, collection_id: &str, segment_id: &str) -> u64 {
    let int = |sql: &str, id: &str| value::<i64>(conn, sql, id);
    int(
        "SELECT int_value FROM segment_metadata WHERE segment_id = ?1 AND key = 'hnsw:batch_size'",
        segment_id,
    )
    .or_else(|| {
        int(
            "SELECT int_value FROM collection_metadata WHERE collection_id = ?1 \
             AND key = 'hnsw:batch_size'",
            collection_id,
        )
    })
    .and_then(|b| u64::try_from(b).ok())
    .filter(|&b| b > 0)
    .unwrap_or(100)
}

/// hnswlib's `normalize_vector` (space `cosine`): the stored unit vector and the length
/// `length.bin` keeps, in float32 as hnswlib computes them.
pub fn normalized(v: &[f32]) -> (Vec<f32>, f32) {
    let mut sum = 0.0f32;
    for x in v {
        sum += x * x;
    }
    let length = sum.sqrt();
    let inv = 1.0f32 / (length + 1e-30f32);
    (v.iter().map(|x| x * inv).collect(), length)
}

/// What the cosine index's `get_items` returns for a stored unit vector and its length: each
/// component times the length, in float32 (checked against 0.4.22, 0.6.3 and 1.5.9's get()).
pub fn denormalized(unit: &[f32], length: f32) -> Vec<f32> {
    unit.iter().map(|x| x * length).collect()
}
