//! The persist dir as data. Everything here opens `chroma.sqlite3` read-only and changes
//! nothing on disk (not even an mtime).
//!
//! Reading is split in two phases so a front end can show something at once:
//! [`Snapshot::open`] reads the catalog (schema, collections, segments, max_seq_id, sizes,
//! processes) and is fast whatever the file size; [`wal::scan`] then streams the WAL once to
//! count rows per topic, which takes time proportional to the file.
//!
//! Rooms, each reading in one direction: [`catalog`] is the catalog as data and reads no
//! file; [`snapshot`] reads SQLite into it and [`folders`] the segment folders; [`hnsw`] the
//! index files (and `hnsw/links.rs` the link lists as hnswlib loads them); [`pickle`] the
//! index metadata; [`health`] judges a segment from facts already read; [`replay`] says what
//! Chroma replays in each era; [`coverage`] counts records against the index; [`wal`] counts
//! the WAL, [`rows`] reads it row by row; [`deep`] and [`space`] are the slow reads of
//! `--deep`. Nothing here writes, and nothing here knows the terminal.

pub mod catalog;
pub mod coverage;
pub mod db;
pub mod deep;
pub mod folders;
pub mod fsinfo;
pub mod health;
pub mod hnsw;
pub mod idhash;
pub mod leftovers;
pub mod operation;
pub mod pagewalk;
pub mod pickle;
pub mod preview;
pub mod procs;
pub mod ranged;
pub mod records;
pub mod replay;
pub mod rows;
pub mod schema;
pub mod seqid;
pub mod snapshot;
pub mod space;
pub mod truth;
pub mod wal;

pub use catalog::{
    Bound, Collection, OrphanDir, Segment, SeqIdSource, Sizes, Snapshot, TopicOwner,
};
pub use health::Health;
pub use schema::{Era, Schema};
pub use wal::{TopicStats, WalStats};

/// The file name of Chroma's system database inside a persist dir.
pub const SQLITE_FILE: &str = "chroma.sqlite3";

/// Segment type of the persisted HNSW vector index.
pub const HNSW_PERSISTED: &str = "urn:chroma:segment/vector/hnsw-local-persisted";

/// Name of the pickle a persisted HNSW segment keeps its bookkeeping in.
pub const INDEX_METADATA: &str = "index_metadata.pickle";

/// The compacted copy a prune writes beside `chroma.sqlite3` before renaming it over it.
/// Only a prune killed mid-way leaves it behind; the next prune removes it.
pub const NEW_FILE: &str = "chroma.sqlite3.chroma-wal-new";

/// The copy of a backup `restore` writes beside `chroma.sqlite3` before renaming it over it.
/// Named here, below both the restore and the space map that counts it.
pub const RESTORE_FILE: &str = "chroma.sqlite3.chroma-wal-restore";
