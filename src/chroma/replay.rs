//! What Chroma replays from the WAL when a vector index is rebuilt (its folder removed, or
//! an index it cannot load), by era. One place says it; the advice for a damaged index is
//! built from it, and so is every later use (index truth, the rebuild, the records).
//!
//! Read at tags 0.4.24, 0.6.3 and 1.5.9 (`../shared/chroma-persist-format.md`, "What a
//! rebuild replays"), and tried on dirs killed mid-persist (`tests/crash/crash.py`).

use super::operation::Operation;
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

/// What one WAL row does to whether its id has a vector in the index, once Chroma applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The id has a vector afterwards.
    Put,
    /// The id has none afterwards.
    Remove,
    /// Whatever was there stays (an update without a vector; an operation not known here).
    Keep,
}

/// What applying a row does to its id's vector in the index (the records read this; the
/// truth reads [`effect`], which follows from it).
///
/// Read at 0.4.24, 0.5.5, 0.6.3 (`local_persistent_hnsw.py`, `local_hnsw.py`) and 1.5.9
/// (`rust/segment/src/local_hnsw.rs`): an ADD of an id already there is skipped; an UPSERT
/// sets the vector either way; an UPDATE changes the vector of an id already there and is
/// skipped for any other (it never brings an id in); a DELETE takes it out; an ADD or UPSERT
/// without a vector, and an UPDATE without one, change no vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The row's vector, whether or not the id was there.
    Set,
    /// The row's vector only when the id is not there yet.
    SetIfAbsent,
    /// The row's vector only when the id is there.
    SetIfPresent,
    /// The id is gone.
    Remove,
    /// Nothing changes.
    Keep,
}

/// [`Content`] of a row with `operation` (the WAL's code, as [`Operation`] reads it), with a
/// vector or not.
pub fn content(operation: i64, has_vector: bool) -> Content {
    match Operation::from_code(operation) {
        Operation::Add if has_vector => Content::SetIfAbsent,
        Operation::Upsert if has_vector => Content::Set,
        Operation::Update if has_vector => Content::SetIfPresent,
        Operation::Delete => Content::Remove,
        _ => Content::Keep,
    }
}

/// What applying a row with `operation` (and a vector or not) does to whether its id is in
/// the index (see [`content`]).
pub fn effect(operation: i64, has_vector: bool) -> Effect {
    content(operation, has_vector).effect()
}

impl Content {
    /// What it does to whether the id is in the index.
    pub fn effect(self) -> Effect {
        match self {
            Content::Set | Content::SetIfAbsent => Effect::Put,
            Content::Remove => Effect::Remove,
            Content::SetIfPresent | Content::Keep => Effect::Keep,
        }
    }
}

/// Where an id's vector is after rows of [`Content`] are applied in seq_id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// None: the id has no vector.
    Nothing,
    /// The index files' element.
    Index,
    /// The WAL row with this seq_id.
    Row(i64),
}

/// Fold `rows` (seq_id, content) in seq_id order over what the index holds to begin with.
pub fn fold(start: Holder, rows: impl IntoIterator<Item = (i64, Content)>) -> Holder {
    rows.into_iter().fold(start, |h, (seq, c)| match (c, h) {
        (Content::Set, _) => Holder::Row(seq),
        (Content::SetIfAbsent, Holder::Nothing) => Holder::Row(seq),
        (Content::SetIfPresent, Holder::Index | Holder::Row(_)) => Holder::Row(seq),
        (Content::Remove, _) => Holder::Nothing,
        _ => h,
    })
}

/// Which WAL rows a load or a rebuild replays into an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Rows with `seq_id` above this value, in seq_id order.
    Above(i64),
    /// None at all.
    Nothing,
    /// Not known for this schema.
    Unknown,
}

/// What the replay model reads of a vector segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFacts {
    /// Its `max_seq_id` row, when the table has one.
    pub row: Option<i64>,
    /// Its recorded position (the row, else the pickle's value).
    pub position: Option<i64>,
    /// Entries of its pickle's `id_to_label`, when the pickle is readable and says.
    pub labels: Option<u64>,
}

/// Where the next load of vector segment `seg` starts replaying the WAL into its index.
///
/// - Python releases (0.4 – 0.6) load the index files (only when the pickle names a label)
///   and replay the rows above the recorded position (0.4 – 0.5.5: the pickle's value; 0.6.3:
///   the `max_seq_id` row, else the pickle's value), or every row when neither exists. A
///   position of 0 replays nothing in 0.5.6 – 0.6.3 (`start or next`).
/// - 1.x replays above the sqlite row (a missing row reads as 0; the pickle's value is not
///   read on that path), unless the pickle is missing or holds no labels: then the segment is
///   uninitialized, and every row still in the WAL is replayed into an empty index.
pub fn load_start(dir: &DirFacts, seg: &SegmentFacts) -> Replay {
    match dir.era {
        Era::V1 if loads_files(seg) => Replay::Above(seg.row.unwrap_or(0)),
        Era::V1 => Replay::Above(i64::MIN),
        Era::V056 if seg.position == Some(0) => Replay::Nothing,
        Era::V04 | Era::V050 | Era::V056 => Replay::Above(seg.position.unwrap_or(i64::MIN)),
        Era::Newer => Replay::Unknown,
    }
}

/// Whether a load reads the index files at all: only when the pickle names a label (Python
/// loads them `if len(id_to_label) > 0`; 1.x calls the segment uninitialized otherwise, as
/// with no pickle). Otherwise the load starts from an empty index.
pub fn loads_files(seg: &SegmentFacts) -> bool {
    seg.labels.unwrap_or(0) > 0
}

/// [`rebuild_start`] as the rows it replays.
pub fn rebuild_replay(start: RebuildStart) -> Replay {
    match start {
        RebuildStart::EveryRow => Replay::Above(i64::MIN),
        RebuildStart::AfterRow(0) => Replay::Nothing,
        RebuildStart::AfterRow(row) => Replay::Above(row),
        RebuildStart::Unknown => Replay::Unknown,
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

    mod op {
        pub const ADD: i64 = 0;
        pub const UPDATE: i64 = 1;
        pub const UPSERT: i64 = 2;
        pub const DELETE: i64 = 3;
    }

    fn dir(era: Era, purge: Option<bool>) -> DirFacts {
        DirFacts {
            era,
            automatically_purge: purge,
        }
    }

    #[test]
    fn what_each_operation_does_to_its_id() {
        assert_eq!(effect(op::ADD, true), Effect::Put);
        assert_eq!(effect(op::UPSERT, true), Effect::Put);
        // An update is skipped for an id the index lacks: it never brings one in.
        assert_eq!(effect(op::UPDATE, true), Effect::Keep);
        assert_eq!(effect(op::UPDATE, false), Effect::Keep);
        assert_eq!(effect(op::ADD, false), Effect::Keep);
        assert_eq!(effect(op::DELETE, false), Effect::Remove);
        assert_eq!(effect(9, true), Effect::Keep);
        // The vector: an update changes only an id already there; a second add is skipped.
        let rows = [(3, content(op::ADD, true)), (4, content(op::ADD, true))];
        assert_eq!(fold(Holder::Nothing, rows), Holder::Row(3));
        assert_eq!(fold(Holder::Index, rows), Holder::Index);
        let upd = [(5, content(op::UPDATE, true))];
        assert_eq!(fold(Holder::Nothing, upd), Holder::Nothing);
        assert_eq!(fold(Holder::Index, upd), Holder::Row(5));
        let redo = [(6, content(op::DELETE, false)), (7, content(op::ADD, true))];
        assert_eq!(fold(Holder::Index, redo), Holder::Row(7));
        assert_eq!(
            fold(Holder::Index, [(8, content(op::UPSERT, true))]),
            Holder::Row(8)
        );
        assert_eq!(rebuild_replay(RebuildStart::AfterRow(0)), Replay::Nothing);
        assert_eq!(rebuild_replay(RebuildStart::AfterRow(7)), Replay::Above(7));
        assert_eq!(
            rebuild_replay(RebuildStart::EveryRow),
            Replay::Above(i64::MIN)
        );
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
