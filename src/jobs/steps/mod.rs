//! The steps of a write job, one file each; [`super::job`] strings them together over the
//! context of [`super::runner`]. A step imports what lies below it, never the job.

pub mod backup;
pub mod copy;
pub mod delete;
pub mod orphans;
