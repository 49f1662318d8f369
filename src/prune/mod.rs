//! Planning and running a prune. A [`plan::Plan`] is a plain value (what would go, with the
//! seq_id [`guard`]); the [`job`] strings the [`steps`] together over the context of
//! [`runner`] (timing, progress, and what a failure or a cancel leaves), reporting through a
//! callback. Below the steps: [`swap`] (the compacted copy) and its [`verify`], with [`bigio`]
//! (large reads and writes for their connections), [`walmode`],
//! [`folders`] (orphan folders), [`preflight`], and [`crate::backup`] beside this room. It
//! imports nothing of the terminal.

mod bigio;
mod counted;
pub mod folders;
pub mod guard;
pub mod indexes;
pub mod job;
pub mod lossy;
pub mod plan;
mod prefetch;
pub mod preflight;
pub mod rebuilt;
pub mod runner;
pub mod steps;
pub mod swap;
pub mod topic;
pub mod verify;
pub mod walmode;

pub use job::{
    run, BackupTarget, Canceller, DirState, Event, JobError, JobOptions, Report, Step, Unit,
};
pub use plan::{Plan, PlanTopic, Selection};
