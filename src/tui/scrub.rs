//! A scrub from the explorer: `S` plans one off the UI thread (for the marked collections, or
//! the whole dir when none is marked: its counts read whole tables), the confirm dialog shows
//! the plan as `scrub --dry-run` says it, and the job runs with the prune's progress and
//! result views. The state and its update; `views/scrub.rs` draws the dialog.

use crate::jobs::prune::Selection;
use crate::jobs::scrub::ScrubPlan;

use super::app::{Action, App, Effect, View};
use super::job::Job;

/// The scrub the confirm dialog asks about.
#[derive(Debug, Clone, PartialEq)]
pub enum ScrubAsk {
    /// Its plan is being counted; the number tells this ask's answer from an older one's.
    Planning(u64),
    Ready(Box<ScrubPlan>),
    Failed(String),
}

impl App {
    /// `S`: plan a scrub of the marked collections, or of the whole dir.
    pub(super) fn start_scrub(&mut self) -> Vec<Effect> {
        if let Some(b) = self.blocker() {
            self.message = Some(format!("scrub disabled: {b}"));
            return Vec::new();
        }
        let (Some(snap), Some(wal)) = (self.snap.clone(), self.wal().cloned()) else {
            self.message = Some("still counting the WAL…".into());
            return Vec::new();
        };
        let ids: Vec<String> = snap
            .collections
            .iter()
            .filter(|c| self.marked.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        let selection = if ids.is_empty() {
            Selection::All
        } else {
            Selection::Collections(ids)
        };
        self.scrub_asks += 1;
        self.scrub = Some(ScrubAsk::Planning(self.scrub_asks));
        self.view = View::Confirm;
        vec![Effect::PlanScrub(Box::new((
            super::app::SharedSnap(snap),
            wal,
            selection,
            self.scrub_asks,
        )))]
    }

    pub(super) fn on_scrub_planned(&mut self, ask: u64, r: Result<Box<ScrubPlan>, String>) {
        // Only the answer to the ask on screen: an older one (asked, cancelled, asked again
        // about other collections) is dropped.
        if self.scrub == Some(ScrubAsk::Planning(ask)) {
            self.scrub = Some(match r {
                Ok(p) => ScrubAsk::Ready(p),
                Err(e) => ScrubAsk::Failed(e),
            });
        }
    }

    /// The confirm dialog's keys while it asks about a scrub.
    pub(super) fn update_scrub_confirm(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Yes => match self.scrub.take() {
                Some(ScrubAsk::Ready(p)) => {
                    self.job = Some(Job::new(p.plan.clone()));
                    self.view = View::Running;
                    vec![Effect::RunJob(Box::new(p.plan))]
                }
                other => {
                    // Still planning, or failed: nothing to run yet.
                    self.scrub = other;
                    Vec::new()
                }
            },
            Action::Back | Action::No => {
                self.scrub = None;
                self.view = View::Main;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}
