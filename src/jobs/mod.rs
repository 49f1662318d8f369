//! The jobs that write a persist dir, each a room of its own: the [`prune`] (WAL rows and
//! orphan folders), [`compact`] (vector indexes rebuilt without their ghosts, or repaired) and
//! [`scrub`] (every byte of deleted data). What they share sits here: the [`runner`] (steps,
//! timing, progress, what a failure or a cancel leaves), the [`steps`] (backup, delete,
//! compacted copy), the [`preflight`] refusals, the orphan [`folders`], and the [`copy`]
//! machinery of a big SQLite file (mapped reads, the write-behind thread, prefetch, the
//! verification). Backups and `restore` are [`crate::backup`], beside this room. Nothing here
//! knows the terminal.

pub mod compact;
pub mod copy;
pub mod folders;
pub mod preflight;
pub mod prune;
pub mod runner;
pub mod scrub;
pub mod steps;
