//! Copying a big SQLite file into a compacted one the jobs can swap in: [`swap`] (the copy,
//! and the one atomic rename), its [`verify`], [`walmode`], with `bigio` (large reads and
//! writes for their connections: mapped windows of the original, a write-behind thread for the
//! new file) and `prefetch`.

mod bigio;
mod prefetch;
pub mod swap;
pub mod verify;
pub mod walmode;
