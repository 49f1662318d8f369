//! Why a segment got its verdict, as data: the facts (positions, counts, lengths) that decided
//! it, so that a front end or a test can ask which rule fired without reading words. The
//! words every front end prints are its `Display`.

use std::fmt;

use crate::chroma::coverage::Uncovered;
use crate::chroma::hnsw::ShortFile;

/// A part of a persisted index that Chroma needs once a position is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The segment's folder.
    Folder,
    /// `index_metadata.pickle`.
    Pickle,
    /// A pickle that names a vector (its `id_to_label` is empty).
    Labels,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Folder => "its index folder is missing while a position is recorded",
            Part::Pickle => "index_metadata.pickle is missing while a position is recorded",
            Part::Labels => "index_metadata.pickle names no vector",
        })
    }
}

/// Why an index cannot be read correctly, or why its collection keeps the whole WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A Python release cannot load the index without this part.
    Missing(Part),
    /// 1.x loads the index without this part by replaying every row of the collection still
    /// in the WAL from seq_id 0.
    ReplayedFromZero(Part),
    /// The recorded position is above the WAL's highest seq_id (`None`: the WAL is empty).
    PositionAboveWal { position: i64, wal_max: Option<i64> },
    /// The folder could not be listed (the error).
    FolderUnreadable(String),
    /// The pickle could not be decoded (what is wrong with it).
    PickleUnreadable(String),
    /// `header.bin` is missing while the index is persisted.
    HeaderMissing,
    /// `header.bin` is unreadable or implausible, in its reader's words.
    Header(String),
    /// An index file is shorter than its elements need.
    Short(ShortFile),
    /// `link_lists.bin` cannot be walked as hnswlib loads it, or disagrees with the header,
    /// in its reader's words.
    Links(String),
    /// The pickle names more vectors than the index holds elements.
    LabelsAboveElements { labels: u64, elements: u64 },
    /// The pickle's dimensionality is None while the index has elements.
    DimensionalityNone,
    /// The pickle's dimensionality is not the one the index is laid out for.
    DimensionalityDiffers { pickle: i64, index: u64 },
    /// More elements than the pickle says were ever added: persisted without its pickle.
    PersistedWithoutPickle { elements: u64, added: u64 },
    /// Records in no index Chroma can load (counted, or ids that reach no element).
    Uncovered(Uncovered),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing(part) => write!(f, "{part}"),
            Reason::ReplayedFromZero(part) => write!(
                f,
                "{part}: Chroma 1.x loads it by replaying every row of the collection still in \
                 the WAL from seq_id 0"
            ),
            Reason::PositionAboveWal { position, wal_max } => write!(
                f,
                "its recorded position {position} is above the WAL's highest seq_id ({}): \
                 Chroma loads the index, but would hand out seq_ids it believes it has applied",
                wal_max
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "none, the WAL is empty".into())
            ),
            Reason::FolderUnreadable(e) => write!(f, "its index folder cannot be read: {e}"),
            Reason::PickleUnreadable(why) => write!(f, "index_metadata.pickle {why}"),
            Reason::HeaderMissing => f.write_str("header.bin is missing"),
            Reason::Header(why) | Reason::Links(why) => f.write_str(why),
            Reason::Short(s) => write!(f, "{s}"),
            Reason::LabelsAboveElements { labels, elements } => write!(
                f,
                "index_metadata.pickle names {labels} vectors but the index holds {elements} elements"
            ),
            Reason::DimensionalityNone => f.write_str(
                "index_metadata.pickle has dimensionality None while the index has elements",
            ),
            Reason::DimensionalityDiffers { pickle, index } => write!(
                f,
                "index_metadata.pickle says dimensionality {pickle}, the index is laid out for {index}"
            ),
            Reason::PersistedWithoutPickle { elements, added } => write!(
                f,
                "header.bin counts {elements} elements but index_metadata.pickle says only \
                 {added} were ever added: the index was persisted and its pickle was not (a \
                 crash mid-persist)"
            ),
            Reason::Uncovered(u) => f.write_str(&u.reason()),
        }
    }
}
