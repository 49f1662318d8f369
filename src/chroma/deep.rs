//! The slow facts behind `info --deep` and the explorer's second pass: reads that grow with
//! the index files rather than with the catalog. They run after the WAL counts, never before
//! the first frame.

use super::catalog::Snapshot;
use super::hnsw;
use crate::error::{Error, Result};

/// Progress: `(bytes read, bytes to read)`. Return `false` to cancel.
pub type DeepProgress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// Count the elements marked deleted in every vector index with a readable header, and store
/// them in each segment's `index.deleted`. Reads one byte per element, in large blocks.
pub fn count_deleted(snap: &mut Snapshot, progress: DeepProgress<'_>) -> Result<()> {
    let total: u64 = work(snap).map(|(_, bytes)| bytes).sum();
    let mut done = 0u64;
    let dir = snap.persist_dir.clone();
    for c in &mut snap.collections {
        for s in &mut c.segments {
            let seg_dir = dir.join(&s.id);
            let Some(folder) = s.index.as_mut() else {
                continue;
            };
            let Some(h) = folder.parsed().copied() else {
                continue;
            };
            // Already counted (the index truth reads every element in the same pass).
            if h.implausible().is_some() || folder.deleted.is_some() {
                continue;
            }
            let bytes = h.level0_bytes();
            // A cut data_level0.bin is already a verdict; a count of part of it would read
            // as the whole index's.
            folder.deleted = match folder.short_file(&h) {
                Some(_) => None,
                None => hnsw::count_deleted(&seg_dir, &h).ok(),
            };
            done += bytes;
            if !progress(done, total) {
                return Err(Error::Interrupted(
                    "cancelled while counting deleted elements; nothing was changed".into(),
                ));
            }
        }
    }
    Ok(())
}

fn work(snap: &Snapshot) -> impl Iterator<Item = (&str, u64)> {
    snap.collections
        .iter()
        .flat_map(|c| c.segments.iter())
        .filter_map(|s| {
            let f = s.index.as_ref().filter(|f| f.deleted.is_none())?;
            let h = f.parsed()?;
            Some((s.id.as_str(), h.level0_bytes()))
        })
}
