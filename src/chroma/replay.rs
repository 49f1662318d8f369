//! What Chroma replays from the WAL when a vector index is rebuilt (its folder removed, or
//! an index it cannot load), by era. One place says it; the advice for a damaged index is
//! built from it, and so is every later use (index truth, the rebuild, the records).
//!
//! Read at tags 0.4.24, 0.6.3 and 1.5.9 (`../shared/chroma-persist-format.md`, "What a
//! rebuild replays"), and tried on dirs killed mid-persist (`tests/crash/crash.py`).

use super::schema::Era;

/// What the dir says about replay, beside the segment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirFacts {
    pub era: Era,
    /// `embeddings_queue_config`'s `automatically_purge` (0.5.6+); `None`: no such setting.
    pub automatically_purge: Option<bool>,
}

/// Where a rebuild of a vector index starts, once its folder is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildStart {
    /// Every row of the collection still in the WAL (0.4.x – 0.5.5, and 1.x).
    EveryRow,
    /// Only rows above the vector segment's `max_seq_id` row, which removing the folder leaves
    /// in place (0.5.6 – 0.6.3: the row is read before the pickle).
    AfterRow(i64),
    /// Not known for this schema.
    Unknown,
}

/// Where Chroma of `dir`'s era starts replaying into a rebuilt vector index whose segment has
/// `row` in the `max_seq_id` table (`None`: no row; a pickle's value does not count here).
pub fn rebuild_start(dir: &DirFacts, row: Option<i64>) -> RebuildStart {
    match (dir.era, row) {
        (Era::V04 | Era::V050 | Era::V1, _) => RebuildStart::EveryRow,
        // A row holding 0 replays nothing at all (`start or next_seq_id()`).
        (Era::V056, Some(row)) => RebuildStart::AfterRow(row),
        (Era::V056, None) => RebuildStart::EveryRow,
        (Era::Newer, _) => RebuildStart::Unknown,
    }
}

/// Whether the WAL may already have lost rows a rebuild needs: Chroma's own purge deletes a
/// collection's rows once both its segments have them, so with purging on, the rows below
/// the recorded positions are gone for good.
pub fn purged(dir: &DirFacts) -> bool {
    dir.automatically_purge == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(era: Era, purge: Option<bool>) -> DirFacts {
        DirFacts {
            era,
            automatically_purge: purge,
        }
    }

    #[test]
    fn each_era_starts_where_its_release_does() {
        for era in [Era::V04, Era::V050, Era::V1] {
            assert_eq!(
                rebuild_start(&dir(era, None), Some(40)),
                RebuildStart::EveryRow
            );
        }
        let v056 = dir(Era::V056, Some(false));
        assert_eq!(rebuild_start(&v056, Some(40)), RebuildStart::AfterRow(40));
        assert_eq!(rebuild_start(&v056, Some(0)), RebuildStart::AfterRow(0));
        assert_eq!(rebuild_start(&v056, None), RebuildStart::EveryRow);
        assert_eq!(
            rebuild_start(&dir(Era::Newer, None), None),
            RebuildStart::Unknown
        );
        assert!(purged(&dir(Era::V1, Some(true))));
        assert!(!purged(&dir(Era::V1, Some(false))));
        assert!(!purged(&dir(Era::V04, None)));
    }
}
