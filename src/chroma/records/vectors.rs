//! Where each record's vector comes from, as `get()` in the dir's release would find it: the
//! index files (the pickle's id → label, the element with that label), then the WAL rows the
//! release replays on its next load, folded by [`crate::chroma::replay::fold`].

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::chroma::catalog::{Segment, Snapshot};
use crate::chroma::hnsw::elements::{self, ReadError};
use crate::chroma::hnsw::Space;
use crate::chroma::hnsw::{space, Header, DATA_LEVEL0, LENGTH};
use crate::chroma::idhash::{IdHash, IdMap, LabelMap};
use crate::chroma::replay::{self, Content, Holder, Replay};
use crate::chroma::schema::Era;
use crate::chroma::truth::walrows;
use crate::chroma::{pickle, INDEX_METADATA};
use crate::error::{Error, Result};

/// Where a record's vector was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Index,
    Wal,
}

impl Source {
    pub fn key(self) -> &'static str {
        match self {
            Source::Index => "index",
            Source::Wal => "wal",
        }
    }
}

/// The index side, once read: labels by id and elements by label.
struct Index {
    file: File,
    /// `length.bin`, for a cosine index: `get()` gives each stored unit vector times its
    /// length from there.
    lengths: Option<File>,
    header: Header,
    /// The label of each id.
    labels: IdMap<u64>,
    /// The internal id of each label's element not marked deleted; of several elements of
    /// one label, the last in the file (as hnswlib's lookup keeps it).
    elements: LabelMap<u64>,
}

/// Every vector a collection's records can have, ready to be looked up by id.
pub struct Vectors {
    index: Option<Index>,
    /// `(id, seq_id, content)` of the rows replayed on the next load, by id then seq_id.
    rows: Vec<(IdHash, i64, Content)>,
    /// Why no vector can be given at all (a damaged index), when so.
    pub problem: Option<String>,
    /// For a cosine index: the replayed rows hnswlib holds once loaded (the others sit in a
    /// Python release's brute-force buffer, whose get() gives the row's vector as written).
    /// hnswlib gives back its normalised copy times its length, not the row's floats.
    through_hnswlib: Option<Through>,
}

/// Which replayed rows of a cosine collection reach hnswlib on the next load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Through {
    /// Every one (1.x applies each log straight to the index).
    Every,
    /// Those below this seq_id: Python releases add replayed rows to hnswlib a whole
    /// `hnsw:batch_size` at a time, counting every row, and keep the rest in a brute-force
    /// buffer.
    Below(i64),
}

impl Vectors {
    /// Read what the vector segment `v` of collection `ci` gives. Reads every element's label
    /// (one pass over `data_level0.bin`) and the pickle's map; memory grows with the elements
    /// (about 40 bytes each), never with the vectors.
    pub fn open(
        conn: &Connection,
        snap: &Snapshot,
        ci: usize,
        v: &Segment,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vectors> {
        Self::open_as(conn, snap, ci, v, stop, false)
    }

    /// [`Vectors::open`] for a repair: an index Chroma cannot load (a cut `link_lists.bin`)
    /// is still read for its labels and vectors, which the repair writes into a new graph.
    pub fn open_for_repair(
        conn: &Connection,
        snap: &Snapshot,
        ci: usize,
        v: &Segment,
    ) -> Result<Vectors> {
        Self::open_as(conn, snap, ci, v, &|| false, true)
    }

    fn open_as(
        conn: &Connection,
        snap: &Snapshot,
        ci: usize,
        v: &Segment,
        stop: &dyn Fn() -> bool,
        damaged_ok: bool,
    ) -> Result<Vectors> {
        let facts = snap.dir_facts();
        let none = |problem: String| Vectors {
            index: None,
            rows: Vec::new(),
            problem: Some(problem),
            through_hnswlib: None,
        };
        if let Some(why) = v.health.unloadable().filter(|_| !damaged_ok) {
            return Ok(none(format!(
                "the vector index cannot be loaded ({why}): no embedding is given"
            )));
        }
        let cid = snap
            .collections
            .get(ci)
            .map(|c| c.id.as_str())
            .unwrap_or("");
        let cosine = space::read(conn, cid, &v.id) == Space::Cosine;
        let mut index = match read_index(v, &snap.persist_dir.join(&v.id), stop, damaged_ok) {
            Ok(ix) => ix,
            Err(why) => {
                return Ok(none(format!(
                    "the vector index cannot be read ({why}): no embedding is given"
                )))
            }
        };
        if let (true, Some(ix)) = (cosine, index.as_mut()) {
            ix.lengths = Some(
                File::open(snap.persist_dir.join(&v.id).join(LENGTH))
                    .map_err(|e| Error::failed(format!("cannot open {LENGTH}: {e}")))?,
            );
        }
        let rows =
            match replay::load_start(&facts, &v.replay_facts()) {
                Replay::Above(start) => replayed_rows(conn, snap, ci, start)?,
                Replay::Nothing => Vec::new(),
                Replay::Unknown => return Ok(Vectors {
                    index,
                    rows: Vec::new(),
                    problem: Some(
                        "what this schema's release replays is not known: embeddings come from \
                         the index files alone"
                            .into(),
                    ),
                    through_hnswlib: None,
                }),
            };
        let through_hnswlib = cosine.then(|| match facts.era {
            Era::V1 | Era::Newer => Through::Every,
            Era::V04 | Era::V050 | Era::V056 => {
                let mut seqs: Vec<i64> = rows.iter().map(|(_, seq, _)| *seq).collect();
                seqs.sort_unstable();
                let batch = space::batch_size(conn, cid, &v.id) as usize;
                let applied = seqs.len() - seqs.len() % batch;
                Through::Below(seqs.get(applied).copied().unwrap_or(i64::MAX))
            }
        });
        Ok(Vectors {
            index,
            rows,
            problem: None,
            through_hnswlib,
        })
    }

    /// Where `id`'s vector is after the next load.
    pub fn holder(&self, id: &IdHash) -> Holder {
        let start = match self.label_element(id) {
            Some(_) => Holder::Index,
            None => Holder::Nothing,
        };
        let from = self.rows.partition_point(|(h, _, _)| h < id);
        let rows = self.rows[from..]
            .iter()
            .take_while(|(h, _, _)| h == id)
            .map(|(_, seq, c)| (*seq, *c));
        replay::fold(start, rows)
    }

    /// Where `id`'s vector is, without reading it.
    pub fn source(&self, id: &IdHash) -> Option<Source> {
        if self.problem.is_some() && self.index.is_none() {
            return None;
        }
        match self.holder(id) {
            Holder::Nothing => None,
            Holder::Index => Some(Source::Index),
            Holder::Row(_) => Some(Source::Wal),
        }
    }

    /// Whether `id`'s element in a cosine index has no norm in `length.bin` (the file is cut
    /// short before it): its direction is whole, its length is gone.
    pub fn norm_lost(&self, id: &IdHash) -> bool {
        let Some(ix) = self.index.as_ref() else {
            return false;
        };
        let (Some(lengths), Some(internal)) = (&ix.lengths, self.label_element(id)) else {
            return false;
        };
        let len = lengths.metadata().map(|m| m.len()).unwrap_or(0);
        internal.saturating_mul(4).saturating_add(4) > len
    }

    /// The internal id of `id`'s live element in the index files.
    fn label_element(&self, id: &IdHash) -> Option<u64> {
        let ix = self.index.as_ref()?;
        ix.elements.get(ix.labels.get(id)?).copied()
    }

    /// `id`'s vector and where it came from (`None`: it has none).
    pub fn vector(&self, conn: &Connection, id: &IdHash) -> Result<Option<(Vec<f32>, Source)>> {
        if self.problem.is_some() && self.index.is_none() {
            return Ok(None);
        }
        match self.holder(id) {
            Holder::Nothing => Ok(None),
            Holder::Index => {
                let (Some(ix), Some(internal)) = (self.index.as_ref(), self.label_element(id))
                else {
                    return Ok(None);
                };
                let h = &ix.header;
                let at = internal * h.size_data_per_element + h.offset_data;
                let mut buf = vec![0u8; (h.label_offset - h.offset_data) as usize];
                ix.file.read_exact_at(&mut buf, at).map_err(|e| {
                    Error::failed(format!("cannot read a vector from {DATA_LEVEL0}: {e}"))
                })?;
                let stored = floats(&buf);
                let Some(lengths) = &ix.lengths else {
                    return Ok(Some((stored, Source::Index)));
                };
                // hnswlib reads length.bin whole into memory; a cut file leaves zeros.
                let mut len = [0u8; 4];
                let length = match lengths.read_exact_at(&mut len, internal * 4) {
                    Ok(()) => f32::from_le_bytes(len),
                    Err(_) => 0.0,
                };
                Ok(Some((space::denormalized(&stored, length), Source::Index)))
            }
            Holder::Row(seq) => {
                let through = match self.through_hnswlib {
                    Some(Through::Every) => true,
                    Some(Through::Below(cut)) => seq < cut,
                    None => false,
                };
                Ok(row_vector(conn, seq)?.map(|v| {
                    if through {
                        let (unit, length) = space::normalized(&v);
                        (space::denormalized(&unit, length), Source::Wal)
                    } else {
                        (v, Source::Wal)
                    }
                }))
            }
        }
    }
}

/// The vector of the WAL row `seq`, decoded (`None`: the row has none, or went since).
pub fn row_vector(conn: &Connection, seq: i64) -> Result<Option<Vec<f32>>> {
    let row = conn.query_row(
        "SELECT vector, encoding FROM embeddings_queue WHERE seq_id = ?1",
        [seq],
        |r| {
            let v = match r.get_ref(0)? {
                ValueRef::Blob(b) => Some(b.to_vec()),
                _ => None,
            };
            let enc: Option<String> = r.get(1).ok().flatten();
            Ok((v, enc))
        },
    );
    match row {
        Ok((Some(b), enc)) => Ok(Some(decode(&b, enc.as_deref()))),
        // The row went (a live Chroma purged it) since it was read.
        Ok((None, _)) | Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The WAL's vector as Chroma encodes it: FLOAT32 (or INT32) little-endian, packed.
fn decode(b: &[u8], encoding: Option<&str>) -> Vec<f32> {
    match encoding {
        Some(e) if e.eq_ignore_ascii_case("INT32") => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        _ => floats(b),
    }
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn read_index(
    v: &Segment,
    seg_dir: &Path,
    stop: &dyn Fn() -> bool,
    whole_only: bool,
) -> std::result::Result<Option<Index>, String> {
    let named = replay::loads_files(&v.replay_facts());
    let Some(mut header) = v.index.as_ref().and_then(|f| f.parsed()).copied() else {
        return Ok(None);
    };
    if whole_only {
        // A repair reads what a persist cut short left whole; the rest is not in the index.
        let len = std::fs::metadata(seg_dir.join(DATA_LEVEL0))
            .map(|m| m.len())
            .unwrap_or(0);
        header = header.whole_in(len);
    }
    if !named {
        return Ok(None);
    }
    // Each label's last element in the file decides, as hnswlib's lookup does: a later
    // element marked deleted takes the label out again.
    let mut live: LabelMap<u64> = LabelMap::default();
    match elements::each(seg_dir, &header, &mut |e| {
        if e.deleted {
            live.remove(&e.label);
        } else {
            live.insert(e.label, e.internal);
        }
        // Asked now and then whether the reader is still wanted (a view closed mid-way).
        e.internal % 65_536 != 0 || !stop()
    }) {
        Ok(()) => {}
        Err(ReadError::Unreadable(why)) => return Err(why),
        Err(ReadError::Stopped) => return Err("the read of the index stopped".into()),
    }
    let (_, map) = pickle::read_labels(&seg_dir.join(INDEX_METADATA))
        .map_err(|why| format!("{INDEX_METADATA} {why}"))?;
    if map.unread > 0 {
        return Err(format!(
            "{} entries of {INDEX_METADATA}'s id_to_label are not an id and a label",
            map.unread
        ));
    }
    let labels: IdMap<u64> = map.pairs.iter().map(|p| (p.id, p.label)).collect();
    drop(map);
    let file = File::open(seg_dir.join(DATA_LEVEL0))
        .map_err(|e| format!("cannot open {DATA_LEVEL0}: {e}"))?;
    Ok(Some(Index {
        file,
        lengths: None,
        header,
        labels,
        elements: live,
    }))
}

/// The rows of collection `ci` above `start` (read as the index truth reads them), sorted by
/// id, then seq_id.
fn replayed_rows(
    conn: &Connection,
    snap: &Snapshot,
    ci: usize,
    start: i64,
) -> Result<Vec<(IdHash, i64, Content)>> {
    let rows = walrows::read(conn, snap, &|i| i == ci, start, &mut |_| true)?;
    let mut out: Vec<(IdHash, i64, Content)> = rows
        .into_values()
        .flatten()
        .map(|r| (r.id, r.seq, r.content))
        .collect();
    out.sort_by_key(|(h, seq, _)| (*h, *seq));
    Ok(out)
}
