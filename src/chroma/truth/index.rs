//! The index side of the truth: which ids the index files give a live vector, and the
//! elements that belong to no id, read as Chroma would load them.

use std::path::Path;

use crate::chroma::catalog::Segment;
use crate::chroma::hnsw::elements::{self, ReadError};
use crate::chroma::idhash::IdSet;
use crate::chroma::pickle;
use crate::chroma::{replay, INDEX_METADATA};

/// What a load of the index starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexSide {
    /// Chroma cannot load the index (today's damaged verdict), or chroma-wal cannot read what
    /// it needs of it: the reason. Nothing is guessed.
    Unknown(String),
    Read(Loaded),
}

/// The index as its files hold it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loaded {
    /// Ids whose label has an element not marked deleted.
    pub live: IdSet,
    /// Elements marked deleted (what `--deep` counts; read in the same pass).
    pub deleted: u64,
    /// Elements no id can reach: marked deleted, a label no id names, a second element of a
    /// label. `None`: the vectors could not be read.
    pub ghosts: Option<u64>,
    /// Ids the pickle still names whose label has no live element (deleted ids left behind).
    pub stale_ids: u64,
    /// Floats per vector (for the bytes ghosts keep).
    pub dim: u64,
    /// Elements in `data_level0.bin`.
    pub elements: u64,
}

/// Read the index of vector segment `v` (in `seg_dir`) as a load by `era` would start from.
/// `progress` is told the bytes of `data_level0.bin` read so far; `false` stops.
pub fn read(
    v: &Segment,
    seg_dir: &Path,
    progress: &mut dyn FnMut(u64) -> bool,
    ahead: Option<&mut dyn FnMut() -> Labels>,
) -> Result<IndexSide, ReadError> {
    if let Some(why) = v.health.unloadable() {
        return Ok(IndexSide::Unknown(format!(
            "Chroma cannot load this index ({why})"
        )));
    }
    read_whole(v, seg_dir, progress, ahead)
}

/// The pickle's `id_to_label`, as [`read_labels`] reads it (maybe ahead, on another thread).
pub type Labels = Result<pickle::LabelMap, String>;

/// Read the pickle's `id_to_label` of the index in `seg_dir` (what [`read`] needs of it).
pub fn read_labels(seg_dir: &Path) -> Labels {
    pickle::read_labels(&seg_dir.join(INDEX_METADATA)).map(|(_, m)| m)
}

fn read_whole(
    v: &Segment,
    seg_dir: &Path,
    progress: &mut dyn FnMut(u64) -> bool,
    ahead: Option<&mut dyn FnMut() -> Labels>,
) -> Result<IndexSide, ReadError> {
    let Some(folder) = v.index.as_ref() else {
        // Nothing persisted: the load starts from an empty index.
        return Ok(IndexSide::Read(Loaded {
            ghosts: Some(0),
            ..Loaded::default()
        }));
    };
    let header = folder.parsed().copied();
    // No pickle, or one without labels: no release loads the files (Python loads them only
    // when the pickle names a label; 1.x calls the segment uninitialized). The load starts
    // from an empty index; whatever vectors the files hold belong to no record. The maps are
    // read after the elements, so the two never take memory at once.
    let uninitialized = !replay::loads_files(&v.replay_facts());
    let Some(h) = header else {
        // No header: no vector on disk. A 1.x folder in that state loads as uninitialized.
        return Ok(if uninitialized {
            IndexSide::Read(Loaded {
                ghosts: Some(0),
                ..Loaded::default()
            })
        } else {
            IndexSide::Unknown("the index folder has no readable header.bin".into())
        });
    };
    // Every element: its label, sorted, with its deleted mark.
    let mut deleted = 0u64;
    let mut labels: Vec<(u64, bool)> =
        Vec::with_capacity(h.cur_element_count.min(1 << 24) as usize);
    let size = h.size_data_per_element;
    let mut read_bytes = 0u64;
    let mut tick = 0u32;
    let r = elements::each(seg_dir, &h, &mut |e| {
        labels.push((e.label, e.deleted));
        deleted += e.deleted as u64;
        read_bytes += size;
        tick += 1;
        if tick >= 4096 {
            tick = 0;
            return progress(read_bytes);
        }
        true
    });
    match r {
        Ok(()) => {}
        Err(ReadError::Stopped) => return Err(ReadError::Stopped),
        Err(ReadError::Unreadable(why)) => {
            return Ok(IndexSide::Unknown(format!(
                "the vectors cannot be read: {why}"
            )))
        }
    }
    let elements = labels.len() as u64;
    if uninitialized {
        return Ok(IndexSide::Read(Loaded {
            ghosts: Some(elements),
            dim: h.dimensionality(),
            elements,
            deleted,
            ..Loaded::default()
        }));
    }
    labels.sort_unstable();
    // Per distinct label: live (some element not deleted), and named by an id.
    let mut ghosts = 0u64;
    let mut live_labels: Vec<u64> = Vec::with_capacity(labels.len());
    let mut i = 0;
    while i < labels.len() {
        let label = labels[i].0;
        let mut live = 0u64;
        let mut j = i;
        while j < labels.len() && labels[j].0 == label {
            if labels[j].1 {
                ghosts += 1;
            } else {
                live += 1;
            }
            j += 1;
        }
        if live > 0 {
            live_labels.push(label);
            // A second live element of one label: hnswlib reaches one of them by label.
            ghosts += live - 1;
        }
        i = j;
    }
    drop(labels);
    // Asked for only now, after the elements: read ahead on another thread, or here.
    let map = match ahead.map_or_else(|| read_labels(seg_dir), |f| f()) {
        Ok(map) => map,
        Err(why) => {
            return Ok(IndexSide::Unknown(format!(
                "{INDEX_METADATA} could not be read again: {why}"
            )))
        }
    };
    if map.unread > 0 {
        return Ok(IndexSide::Unknown(format!(
            "{} entries of the pickle's id_to_label are not an id and a label chroma-wal can read",
            map.unread
        )));
    }
    let mut named = vec![false; live_labels.len()];
    let mut live = IdSet::with_capacity_and_hasher(map.pairs.len(), Default::default());
    let mut stale_ids = 0u64;
    for p in &map.pairs {
        match live_labels.binary_search(&p.label) {
            Ok(at) => {
                named[at] = true;
                live.insert(p.id);
            }
            Err(_) => stale_ids += 1,
        }
    }
    drop(map);
    ghosts += named.iter().filter(|n| !**n).count() as u64;
    Ok(IndexSide::Read(Loaded {
        live,
        deleted,
        ghosts: Some(ghosts),
        stale_ids,
        dim: h.dimensionality(),
        elements,
    }))
}
