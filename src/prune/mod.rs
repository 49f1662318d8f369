//! Planning and running a prune. A [`plan::Plan`] is a plain value (what would go); the
//! [`job`] executes one, step by step, reporting progress through a callback.

pub mod folders;
pub mod guard;
pub mod job;
pub mod plan;
pub mod preflight;
pub mod runner;
pub mod steps;
pub mod swap;
pub mod topic;
pub mod walmode;

pub use job::{
    run, BackupTarget, Canceller, DirState, Event, JobError, JobOptions, Report, Step, Unit,
};
pub use plan::{Plan, PlanTopic, Selection};
