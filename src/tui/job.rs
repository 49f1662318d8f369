//! The prune while it runs and after: each step's progress as the job reports it, the confirm
//! dialog that starts it, the cancel question, and the result. The state and the update of
//! those three views; `ui.rs` draws them.

use std::time::{Duration, Instant};

use crate::jobs::prune::job::{DirState, JobError, Report, Step, Unit};
use crate::jobs::prune::{Event, Plan};

use super::app::{Action, App, Counts, Effect, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub step: Step,
    pub status: StepStatus,
    pub done: u64,
    pub total: Option<u64>,
    pub unit: Unit,
    pub started: Option<Instant>,
    pub seconds: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub plan: Plan,
    pub steps: Vec<StepView>,
    pub started: Instant,
    pub confirm_cancel: bool,
    pub cancel_sent: bool,
    pub outcome: Option<Result<Report, JobError>>,
}

impl Job {
    /// A job about to run `plan`: every step pending.
    pub fn new(plan: Plan) -> Job {
        Job {
            steps: Step::ALL
                .iter()
                .map(|&step| StepView {
                    step,
                    status: StepStatus::Pending,
                    done: 0,
                    total: None,
                    unit: Unit::Checks,
                    started: None,
                    seconds: None,
                    note: None,
                })
                .collect(),
            plan,
            started: Instant::now(),
            confirm_cancel: false,
            cancel_sent: false,
            outcome: None,
        }
    }
}

impl App {
    pub(super) fn update_confirm(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Yes => match self.plan() {
                Some(plan) => {
                    self.job = Some(Job::new(plan.clone()));
                    self.view = View::Running;
                    vec![Effect::RunJob(Box::new(plan))]
                }
                None => {
                    self.view = View::Main;
                    Vec::new()
                }
            },
            Action::Back | Action::No => {
                self.view = View::Main;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn update_running(&mut self, action: Action) -> Vec<Effect> {
        let Some(job) = &mut self.job else {
            return Vec::new();
        };
        match action {
            Action::Back if !job.confirm_cancel => {
                job.confirm_cancel = true;
                Vec::new()
            }
            Action::Yes if job.confirm_cancel => {
                job.confirm_cancel = false;
                job.cancel_sent = true;
                vec![Effect::CancelJob]
            }
            Action::No | Action::Back => {
                job.confirm_cancel = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn update_result(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Back => {
                self.rows_changed();
                self.view = View::Main;
                self.job = None;
                self.marked.clear();
                self.snap = None;
                self.counts = Counts::Counting { done: 0, total: 0 };
                vec![Effect::Scan]
            }
            Action::Help => {
                self.help.open();
                Vec::new()
            }
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

pub(super) fn apply_event(job: &mut Job, ev: Event) {
    match ev {
        Event::Started { step, total, unit } => {
            if let Some(s) = job.steps.iter_mut().find(|s| s.step == step) {
                s.status = StepStatus::Running;
                s.total = total;
                s.unit = unit;
                s.started = Some(Instant::now());
            }
        }
        Event::Progress { step, done, total } => {
            if let Some(s) = job.steps.iter_mut().find(|s| s.step == step) {
                s.done = done;
                if total.is_some() {
                    s.total = total;
                }
            }
        }
        Event::Finished {
            step,
            seconds,
            detail,
        } => {
            if let Some(s) = job.steps.iter_mut().find(|s| s.step == step) {
                s.status = StepStatus::Done;
                s.seconds = Some(seconds);
                if let Some(t) = s.total {
                    s.done = t;
                }
                s.note = detail;
            }
        }
        Event::Skipped { step, reason } => {
            if let Some(s) = job.steps.iter_mut().find(|s| s.step == step) {
                s.status = StepStatus::Skipped;
                s.note = Some(reason);
            }
        }
        Event::Failed { step, message } => {
            if let Some(s) = job.steps.iter_mut().find(|s| s.step == step) {
                s.status = StepStatus::Failed;
                s.note = Some(message);
                s.seconds = s.started.map(|t| t.elapsed().as_secs_f64());
            }
        }
    }
}

/// Elapsed time of a step as shown: final seconds, or time since it started.
pub fn step_elapsed(s: &StepView, now: Instant) -> Option<Duration> {
    match (s.seconds, s.started) {
        (Some(secs), _) => Some(Duration::from_secs_f64(secs)),
        (None, Some(t)) => Some(now.saturating_duration_since(t)),
        _ => None,
    }
}

/// The sentence for a job that stopped early.
pub fn state_sentence(e: &JobError) -> &'static str {
    match e.state {
        DirState::Untouched => "Nothing was changed: the persist dir is untouched.",
        DirState::PrunedNotCompacted => {
            "The WAL is exactly pruned, but the file was not compacted (chroma-wal prune --all --compact compacts it)."
        }
        DirState::Done => "The prune completed.",
        DirState::Rebuilt => {
            "The indexes rebuilt so far are in place (their old folders in the backup); the others are untouched."
        }
    }
}
