//! The index truth in the explorer: read by the worker after the WAL counts and the deleted
//! marks (every element of every index, off the UI thread), then stored in the snapshot the
//! views draw. See [`crate::chroma::truth`].

use std::sync::Arc;

use crate::chroma::truth::{self, IndexTruth};
use crate::chroma::Snapshot;

use super::app::App;

/// Where the reading of the indexes is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TruthState {
    /// Waiting for the counts.
    #[default]
    Waiting,
    Reading {
        done: u64,
        total: u64,
    },
    Ready,
    Failed(String),
}

impl App {
    /// A new scan of the dir: on a live dir (its refreshes do not read the indexes again),
    /// the truth already read is carried over, by collection id; otherwise it is read anew.
    pub(crate) fn keep_truth(&mut self, mut new: Arc<Snapshot>) -> Arc<Snapshot> {
        let live = !new.holders.list.is_empty();
        let old = self
            .snap
            .as_ref()
            .filter(|_| live && self.truth == TruthState::Ready);
        let Some(old) = old else {
            self.truth = TruthState::Waiting;
            return new;
        };
        let found: Vec<(usize, IndexTruth)> = {
            let by_id: std::collections::HashMap<&str, &IndexTruth> = old
                .collections
                .iter()
                .filter_map(|c| Some((c.id.as_str(), c.truth.as_deref()?)))
                .collect();
            new.collections
                .iter()
                .enumerate()
                .filter(|(_, c)| c.truth.is_none())
                .filter_map(|(i, c)| Some((i, (*by_id.get(c.id.as_str())?).clone())))
                .collect()
        };
        if !found.is_empty() {
            truth::apply(Arc::make_mut(&mut new), found);
        }
        new
    }

    pub(crate) fn on_truth_progress(&mut self, done: u64, total: u64) {
        if !matches!(self.truth, TruthState::Ready | TruthState::Failed(_)) {
            self.truth = TruthState::Reading { done, total };
        }
    }

    pub(crate) fn on_truth(&mut self, found: Result<Vec<(usize, IndexTruth)>, String>) {
        match found {
            Ok(found) => {
                if let Some(s) = self.snap.as_mut() {
                    truth::apply(Arc::make_mut(s), found);
                }
                self.truth = TruthState::Ready;
            }
            Err(e) => self.truth = TruthState::Failed(e),
        }
    }

    /// The header's words about the indexes: reading, or what was found.
    pub fn truth_summary(&self) -> Option<(String, bool)> {
        match &self.truth {
            TruthState::Waiting => None,
            TruthState::Reading { done, total } => Some((
                format!(
                    "indexes: reading…{}",
                    if *total > 0 {
                        format!(" {}%", done.saturating_mul(100) / total)
                    } else {
                        String::new()
                    }
                ),
                false,
            )),
            TruthState::Failed(e) => Some((format!("indexes: not read ({e})"), true)),
            TruthState::Ready => {
                let s = self.snap.as_ref()?;
                let truths = || s.collections.iter().filter_map(|c| c.truth.as_ref());
                let unreachable: u64 = truths().filter_map(|t| t.missing()).sum();
                let in_colls = truths().filter(|t| t.missing().unwrap_or(0) > 0).count();
                let lossy = truths()
                    .filter(|t| t.rebuild.loses().unwrap_or(0) > 0)
                    .count();
                let ghosts: u64 = truths().filter_map(|t| t.ghost_bytes).sum();
                let mut parts = Vec::new();
                if unreachable > 0 {
                    parts.push(format!(
                        "{} records unreachable by search in {in_colls} collection{}",
                        crate::units::count(unreachable),
                        if in_colls == 1 { "" } else { "s" }
                    ));
                }
                if lossy > 0 {
                    parts.push(format!(
                        "a rebuild from the WAL loses records in {lossy} collection{}",
                        if lossy == 1 { "" } else { "s" }
                    ));
                }
                if ghosts > 0 {
                    parts.push(format!(
                        "{} of deleted vectors on disk",
                        crate::units::bytes(ghosts)
                    ));
                }
                let alarm = unreachable > 0 || lossy > 0;
                if parts.is_empty() {
                    parts.push("every record reachable, rebuilds lossless".into());
                }
                Some((format!("indexes: {}", parts.join(" · ")), alarm))
            }
        }
    }
}
