//! The values of an index rebuild that the compact's plan, the runner's report and the front
//! ends share: one index the plan rebuilds, and what rebuilding it did.

use std::path::PathBuf;

use crate::chroma::hnsw::Space;
use crate::index::putback::PutBack;
use crate::index::rebuild::Rebuilt;

/// One index the plan rebuilds.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanIndex {
    pub collection: String,
    pub collection_id: String,
    pub segment: String,
    pub space: Space,
    pub elements: u64,
    /// Elements no id reaches (`None`: not known before the rebuild, for a damaged index).
    pub ghosts: Option<u64>,
    /// Records a query cannot return after the next load.
    pub missing: u64,
    /// `--repair`: the records put back from the WAL, and those whose vector is nowhere.
    pub put_back: Vec<PutBack>,
    pub unrecoverable: u64,
    pub unrecoverable_sample: Vec<String>,
    /// `--repair` of a cut cosine `length.bin`: elements whose norm is gone, given their
    /// current vector from a WAL row (same label), and how many keep their direction only.
    pub renorm: Vec<PutBack>,
    pub direction_only: u64,
    /// Why Chroma cannot load the index now (a repair rebuilds it from its readable parts).
    pub damaged: Option<String>,
    /// The metadata segment whose records are the ids the index may keep, when it has applied
    /// every row the index has (its position at or above the index's): an id the pickle names
    /// that is no record there was deleted, and leaves. `None`: every named id stays.
    pub records_segment: Option<String>,
    /// The folder's bytes now, and about what the new one takes.
    pub bytes_before: u64,
    pub bytes_after_estimate: u64,
}

impl PlanIndex {
    pub fn elements_after(&self) -> u64 {
        self.elements.saturating_sub(self.ghosts.unwrap_or(0)) + self.put_back.len() as u64
    }
}

/// One index rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexResult {
    pub plan: PlanIndex,
    pub rebuilt: Rebuilt,
    pub bytes_after: u64,
    pub seconds: f64,
    /// Where the old folder went (`None`: deleted, `--no-backup`).
    pub moved_to: Option<PathBuf>,
}
