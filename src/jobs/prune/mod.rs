//! The prune, one of the jobs: a [`plan::Plan`] is a plain value (what would go, with the
//! seq_id [`guard`]), [`lossy`] says what a rebuild would lose by it, and the [`job`] strings
//! the shared steps together over the jobs' runner. [`counted`] is the prune's rule for the
//! rows the copy keeps. It imports nothing of the terminal.

pub(crate) mod counted;
pub mod guard;
pub mod job;
pub mod lossy;
pub mod plan;
pub mod topic;

pub use job::{
    run, BackupTarget, Canceller, DirState, Event, JobError, JobOptions, Report, Step, Unit,
};
pub use plan::{Plan, PlanTopic, Selection};
