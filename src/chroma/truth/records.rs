//! The records of a metadata segment, read in id order in short statements and tallied
//! against the index and the WAL (see [`super`]).

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::chroma::idhash::IdHash;
use crate::error::Result;

/// What the index and the WAL say of one record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// A query can return it after the next load.
    pub in_index: bool,
    /// The index files give its id a live element.
    pub in_live: bool,
    /// A rebuild from the WAL gives it a vector.
    pub rebuilt: bool,
    /// The same after a prune of the collection's prunable rows.
    pub rebuilt_pruned: bool,
    /// A rebuild that replays every row left.
    pub rebuilt_every: bool,
}

/// The counts over all records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub in_index: u64,
    pub in_live: u64,
    pub rebuilt: u64,
    pub rebuilt_pruned: u64,
    pub rebuilt_every: u64,
    /// The first ids (in id order) a query cannot return.
    pub missing_sample: Vec<String>,
}

/// Records per statement: each holds the read lock about as long as a WAL count's range,
/// cold (20,000 held a live writer off for 40 ms and more).
const CHUNK: i64 = 4096;

/// Call `f` with every record id of metadata segment `segment`, in id order, a chunk per
/// statement; `f` returns `false` to stop.
pub(crate) fn each_id(
    conn: &Connection,
    segment: &str,
    f: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<()> {
    let mut first_st = conn.prepare_cached(
        "SELECT embedding_id FROM embeddings WHERE segment_id = ?1 AND embedding_id >= ?2 \
         ORDER BY embedding_id LIMIT ?3",
    )?;
    // The last id is bound as bytes and cast to text: a blob compares above every text, and
    // a lossy conversion would not be the same key.
    let mut st = conn.prepare_cached(
        "SELECT embedding_id FROM embeddings WHERE segment_id = ?1 \
         AND embedding_id > CAST(?2 AS TEXT) ORDER BY embedding_id LIMIT ?3",
    )?;
    let mut after: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let mut n = 0i64;
        let mut last: Option<Vec<u8>> = None;
        let stopped = crate::chroma::ranged::gated(|| {
            let mut rows = if first {
                // `>= ''`: every text, an empty id included.
                first_st.query(rusqlite::params![segment, "", CHUNK])?
            } else {
                st.query(rusqlite::params![segment, after.as_slice(), CHUNK])?
            };
            while let Some(r) = rows.next()? {
                n += 1;
                let id: &[u8] = match r.get_ref(0)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b,
                    _ => continue,
                };
                if !f(id) {
                    return Ok(true);
                }
                last = Some(id.to_vec());
            }
            Ok(false)
        })?;
        if stopped {
            return Ok(());
        }
        first = false;
        match last {
            Some(l) if n == CHUNK => after = l,
            _ => return Ok(()),
        }
    }
}

/// The hashes of every record id of `segment`, in id order (read while the index is read on
/// another thread; about 16 bytes a record).
pub fn hashes(conn: &Connection, segment: &str) -> Result<Vec<IdHash>> {
    let mut out = Vec::new();
    each_id(conn, segment, &mut |id| {
        out.push(IdHash::of(id));
        true
    })?;
    Ok(out)
}

fn count(t: &mut Tally, s: Seen) {
    t.records += 1;
    t.in_index += s.in_index as u64;
    t.in_live += s.in_live as u64;
    t.rebuilt += s.rebuilt as u64;
    t.rebuilt_pruned += s.rebuilt_pruned as u64;
    t.rebuilt_every += s.rebuilt_every as u64;
}

/// Tally every record of metadata segment `segment`, asking `judge` about each.
pub fn tally(
    conn: &Connection,
    segment: &str,
    judge: &mut dyn FnMut(&IdHash) -> Seen,
) -> Result<Tally> {
    let mut t = Tally::default();
    each_id(conn, segment, &mut |id| {
        let s = judge(&IdHash::of(id));
        count(&mut t, s);
        if !s.in_index && t.missing_sample.len() < super::SAMPLE {
            t.missing_sample
                .push(String::from_utf8_lossy(id).into_owned());
        }
        true
    })?;
    Ok(t)
}

/// [`tally`] of hashes already read; the sample of missing ids is read again (in id order,
/// only as far as it takes) when any is missing.
pub fn tally_hashes(
    conn: &Connection,
    segment: &str,
    hashes: &[IdHash],
    judge: &mut dyn FnMut(&IdHash) -> Seen,
) -> Result<Tally> {
    let mut t = Tally::default();
    for h in hashes {
        count(&mut t, judge(h));
    }
    if t.in_index < t.records {
        each_id(conn, segment, &mut |id| {
            if !judge(&IdHash::of(id)).in_index {
                t.missing_sample
                    .push(String::from_utf8_lossy(id).into_owned());
            }
            t.missing_sample.len() < super::SAMPLE
        })?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More records than one statement reads: every one is tallied, in id order.
    #[test]
    fn every_chunk_is_read() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE embeddings (id INTEGER PRIMARY KEY, segment_id TEXT, embedding_id TEXT, \
             UNIQUE (segment_id, embedding_id));",
        )
        .unwrap();
        let n = CHUNK as usize * 2 + 17;
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..n {
            tx.execute(
                "INSERT INTO embeddings (segment_id, embedding_id) VALUES ('s', ?1)",
                [format!("id{i:06}")],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO embeddings (segment_id, embedding_id) VALUES ('other', 'x')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        let mut seen = 0u64;
        let t = tally(&c, "s", &mut |_| {
            seen += 1;
            Seen::default()
        })
        .unwrap();
        assert_eq!(t.records, n as u64);
        assert_eq!(seen, n as u64);
        assert_eq!(t.missing_sample[0], "id000000");
        assert_eq!(t.missing_sample.len(), crate::chroma::truth::SAMPLE);
        // The same from hashes read first, the sample read again.
        let h = hashes(&c, "s").unwrap();
        assert_eq!(h.len(), n);
        let t2 = tally_hashes(&c, "s", &h, &mut |_| Seen::default()).unwrap();
        assert_eq!(t2, t);
    }
}
