//! Building vector index files, apart from reading them (`crate::chroma` reads and judges the
//! dir; this room uses its readers, never the other way round): a fresh HNSW [`graph`] over a
//! set of vectors, hnswlib's files written from it ([`write`]), read back and judged
//! ([`check`]), one index [`rebuild`] without its ghosts, the [`pickle`] as each release writes
//! it, and which records a repair can [`putback`].

pub mod check;
pub mod graph;
pub mod pickle;
pub mod putback;
pub mod rebuild;
pub mod write;
