//! chroma-wal: inspect and safely prune the write-ahead log of a local Chroma persist dir.
//!
//! The engine lives in [`chroma`] (reading a persist dir, read-only), [`index`] (building
//! index files from what `chroma` reads), [`jobs`] (the prune, compact and scrub, and what
//! they share) and [`backup`] (the backups the jobs leave, and `restore`). None knows anything
//! about terminals, and their files import each other in one direction only: the batch front
//! end ([`report`], `main.rs`, `commands/`) and the full-screen explorer ([`tui`]) sit on top.

pub mod backup;
pub mod chroma;
pub mod error;
pub mod index;
pub mod jobs;
pub mod report;
pub mod tui;
pub mod units;

pub use error::{Error, ExitCode};
