//! The explorer's state and its one `update` function. No terminal, no threads, no SQL:
//! workers feed results in as messages, and `update` returns the effects to start.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::chroma::{Snapshot, TopicOwner, WalStats};
use crate::jobs::preflight::SpaceCheck;
use crate::jobs::prune::job::{JobError, Report};
use crate::jobs::prune::{BackupTarget, Event, JobOptions, Plan, Selection};

use super::job::apply_event;
pub use super::job::{state_sentence, step_elapsed, Job, StepStatus, StepView};
use super::rows::{RowsReply, RowsRequest, RowsView};
use super::views::help::{Help, Outcome as HelpOutcome};

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Main,
    Confirm,
    Running,
    Result,
    /// One collection's (or orphan topic's) WAL rows.
    Rows,
    /// Where the space of the dir goes, and its backups.
    Space,
    /// One collection's records, as get() returns them.
    Records,
}

/// What a key (or the mouse) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Select(usize),
    ToggleDetail,
    Mark,
    MarkAll,
    /// Mark the selected collection's vector index for a rebuild.
    MarkIndex,
    Prune,
    Scrub,
    FilterStart,
    Sort,
    Rescan,
    Help,
    Quit,
    Yes,
    No,
    Back,
    /// Open the selected row's WAL rows.
    OpenRows,
    /// Open the selected collection's records.
    OpenRecords,
    /// Search the records' documents.
    TextSearch,
    NextMatch,
    PrevMatch,
    /// Open the space map.
    OpenSpace,
    /// Delete the selected backup (asks first).
    DeleteBackup,
}

/// Messages from the worker threads.
#[derive(Debug)]
pub enum Msg {
    Scanned(Result<Arc<Snapshot>, String>),
    Counting {
        done: u64,
        total: u64,
    },
    Counted(Result<WalStats, String>),
    /// The deleted marks of each vector index (segment id, count), after the counts.
    Deleted(Vec<(String, u64)>),
    /// Reading the indexes against their records, after the deleted marks.
    TruthProgress {
        done: u64,
        total: u64,
    },
    Truth(Result<Vec<(usize, crate::chroma::truth::IndexTruth)>, String>),
    Rows(RowsReply),
    Records(super::records::RecordsReply),
    SpaceProgress {
        done: u64,
        total: u64,
    },
    Space(Result<crate::chroma::space::SpaceMap, String>),
    Job(Event),
    JobDone(Box<Result<Report, JobError>>),
    ScrubPlanned(u64, Result<Box<crate::jobs::scrub::ScrubPlan>, String>),
    /// What `compact --repair` would do now, by collection id (a rescan may have moved rows
    /// meanwhile).
    Repairs(Vec<(String, crate::chroma::preview::RepairPreview)>),
}

/// A snapshot handed to a worker, compared by identity (effects are compared in tests).
#[derive(Debug, Clone)]
pub struct SharedSnap(pub Arc<Snapshot>);

impl PartialEq for SharedSnap {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Work the runner must start.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Scan,
    RunJob(Box<Plan>),
    /// Plan a scrub off the UI thread (its counts read whole tables).
    PlanScrub(Box<(SharedSnap, WalStats, crate::jobs::prune::Selection, u64)>),
    CancelJob,
    Rows(Box<RowsRequest>),
    MapSpace,
    /// Start the records view's worker on collection `collection`.
    OpenRecords {
        generation: u64,
        snap: SharedSnap,
        collection: usize,
    },
    Records {
        generation: u64,
        ask: Box<super::records::RecordsAsk>,
    },
    /// The records view closed: its worker ends.
    CloseRecords,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    WalRows,
    Prunable,
    Name,
}

impl Sort {
    pub fn label(self) -> &'static str {
        match self {
            Sort::WalRows => "WAL rows",
            Sort::Prunable => "prunable",
            Sort::Name => "name",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRef {
    Collection(usize),
    /// Index into `WalStats::topics`.
    Orphan(usize),
    /// Index into `Snapshot::orphan_segment_dirs`: a folder no segment uses.
    Folder(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Counts {
    Counting { done: u64, total: u64 },
    Ready(WalStats),
    Failed(String),
}

/// Options from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub path: PathBuf,
    pub backup: BackupTarget,
    pub vacuum: bool,
    pub in_place: bool,
}

impl Options {
    /// What a prune from the explorer runs with.
    pub fn job_options(&self) -> JobOptions {
        JobOptions {
            backup: self.backup.clone(),
            vacuum: self.vacuum,
            in_place: self.in_place,
            compact: false,
        }
    }
}

pub struct App {
    pub opts: Options,
    /// How the path is shown (tests fix it).
    pub shown_path: String,
    /// Shared with the worker that read it: 20,000 collections cost 50 ms to copy.
    pub snap: Option<Arc<Snapshot>>,
    pub scan_error: Option<String>,
    pub counts: Counts,
    pub view: View,
    pub cursor: usize,
    pub offset: usize,
    pub page: usize,
    pub marked: BTreeSet<String>,
    pub sort: Sort,
    pub filter: String,
    pub filter_editing: bool,
    pub detail: bool,
    pub help: Help,
    pub job: Option<Job>,
    pub confirm_space: Option<SpaceCheck>,
    /// The scrub the confirm dialog asks about, when it asks about one.
    pub scrub: Option<super::scrub::ScrubAsk>,
    /// Scrubs asked about so far (each ask's number).
    pub scrub_asks: u64,
    pub message: Option<String>,
    pub quit: bool,
    /// The rows view, while it is open.
    pub wal_rows: Option<RowsView>,
    pub rows_generation: u64,
    /// The space view, while it is open.
    pub space: Option<super::space::SpaceView>,
    /// The records view, while it is open.
    pub records: Option<super::records::RecordsView>,
    /// The index truth's progress (the truths themselves are in the snapshot).
    pub truth: super::truth::TruthState,
    /// The table's rows after filter and sort, kept until the catalog, the counts, the
    /// filter or the sort change: a frame then costs the same at 20 collections or 20,000.
    rows_cache: std::cell::RefCell<Option<Vec<RowRef>>>,
}

impl App {
    pub fn new(opts: Options) -> App {
        App {
            shown_path: opts.path.display().to_string(),
            opts,
            snap: None,
            scan_error: None,
            counts: Counts::Counting { done: 0, total: 0 },
            view: View::Main,
            cursor: 0,
            offset: 0,
            page: 10,
            marked: BTreeSet::new(),
            sort: Sort::WalRows,
            filter: String::new(),
            filter_editing: false,
            detail: false,
            help: Help::default(),
            job: None,
            confirm_space: None,
            scrub: None,
            scrub_asks: 0,
            truth: Default::default(),
            records: None,
            message: None,
            quit: false,
            wal_rows: None,
            rows_generation: 0,
            space: None,
            rows_cache: std::cell::RefCell::new(None),
        }
    }

    pub fn wal(&self) -> Option<&WalStats> {
        match &self.counts {
            Counts::Ready(w) => Some(w),
            _ => None,
        }
    }

    /// (rows, prunable, held, prunable bytes) of a table row, once counted.
    pub fn numbers(&self, r: &RowRef) -> Option<(u64, u64, u64, u64)> {
        let w = self.wal()?;
        Some(match r {
            RowRef::Collection(i) => w.of_collection(*i).fold((0, 0, 0, 0), |a, t| {
                (
                    a.0 + t.rows,
                    a.1 + t.prunable,
                    a.2 + t.held(),
                    a.3 + t.prunable_bytes,
                )
            }),
            RowRef::Orphan(t) => {
                let t = &w.topics[*t];
                (t.rows, t.prunable, t.held(), t.prunable_bytes)
            }
            // No WAL rows; the bytes are the folder's.
            RowRef::Folder(i) => (
                0,
                0,
                0,
                self.snap
                    .as_ref()
                    .and_then(|s| s.orphan_segment_dirs.get(*i))
                    .map(|o| o.bytes)
                    .unwrap_or(0),
            ),
        })
    }

    /// The key under which a row is marked.
    pub fn key_of(&self, r: &RowRef) -> String {
        match (r, &self.snap, self.wal()) {
            (RowRef::Collection(i), Some(s), _) => s.collections[*i].id.clone(),
            (RowRef::Orphan(t), _, Some(w)) => w.topics[*t].topic.clone(),
            (RowRef::Folder(i), Some(s), _) => format!("dir:{}", s.orphan_segment_dirs[*i].name),
            _ => String::new(),
        }
    }

    pub fn name_of(&self, r: &RowRef) -> String {
        match (r, &self.snap, self.wal()) {
            (RowRef::Collection(i), Some(s), _) => s.collections[*i].name.clone(),
            (RowRef::Orphan(t), _, Some(w)) => w.topics[*t].topic.clone(),
            (RowRef::Folder(i), Some(s), _) => s.orphan_segment_dirs[*i].name.clone(),
            _ => String::new(),
        }
    }

    /// The table rows after filter and sort.
    pub fn rows(&self) -> Vec<RowRef> {
        if let Some(r) = self.rows_cache.borrow().as_ref() {
            return r.clone();
        }
        let r = self.compute_rows();
        *self.rows_cache.borrow_mut() = Some(r.clone());
        r
    }

    /// Forget the cached rows (the catalog, counts, filter or sort changed).
    pub(super) fn rows_changed(&self) {
        self.rows_cache.borrow_mut().take();
    }

    fn compute_rows(&self) -> Vec<RowRef> {
        let Some(s) = &self.snap else {
            return Vec::new();
        };
        let mut rows: Vec<RowRef> = (0..s.collections.len()).map(RowRef::Collection).collect();
        if let Some(w) = self.wal() {
            rows.extend(
                w.topics
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.owner == TopicOwner::Orphan)
                    .map(|(i, _)| RowRef::Orphan(i)),
            );
        }
        rows.extend((0..s.orphan_segment_dirs.len()).map(RowRef::Folder));
        if !self.filter.is_empty() {
            let f = self.filter.to_lowercase();
            rows.retain(|r| self.name_of(r).to_lowercase().contains(&f));
        }
        let num = |r: &RowRef| self.numbers(r).unwrap_or((0, 0, 0, 0));
        match self.sort {
            Sort::WalRows => rows.sort_by(|a, b| {
                num(b)
                    .0
                    .cmp(&num(a).0)
                    .then(self.name_of(a).cmp(&self.name_of(b)))
            }),
            Sort::Prunable => rows.sort_by(|a, b| {
                num(b)
                    .1
                    .cmp(&num(a).1)
                    .then(self.name_of(a).cmp(&self.name_of(b)))
            }),
            Sort::Name => rows.sort_by_key(|r| self.name_of(r).to_lowercase()),
        }
        rows
    }

    pub fn selected(&self) -> Option<RowRef> {
        self.rows().get(self.cursor).cloned()
    }

    /// Why pruning is disabled, if it is.
    pub fn blocker(&self) -> Option<String> {
        self.snap
            .as_ref()
            .and_then(|s| s.prune_blockers().into_iter().next())
    }

    pub(super) fn prunable(&self, r: &RowRef) -> bool {
        match r {
            RowRef::Folder(i) => self
                .snap
                .as_ref()
                .and_then(|s| s.orphan_segment_dirs.get(*i))
                .is_some_and(|o| o.reclaimable()),
            _ => self.numbers(r).is_some_and(|n| n.1 > 0),
        }
    }

    /// Marked rows and their estimated bytes.
    pub fn marked_totals(&self) -> (u64, u64) {
        let Some(s) = &self.snap else { return (0, 0) };
        let mut rows = 0;
        let mut bytes = 0;
        let all: Vec<RowRef> = (0..s.collections.len())
            .map(RowRef::Collection)
            .chain(self.wal().into_iter().flat_map(|w| {
                w.topics
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.owner == TopicOwner::Orphan)
                    .map(|(i, _)| RowRef::Orphan(i))
                    .collect::<Vec<_>>()
            }))
            .chain((0..s.orphan_segment_dirs.len()).map(RowRef::Folder))
            .collect();
        for r in all {
            if self.marked.contains(&self.key_of(&r)) {
                if let Some(n) = self.numbers(&r) {
                    rows += n.1;
                    bytes += n.3;
                }
            }
        }
        (rows, bytes)
    }

    /// The plan for the marked rows.
    pub fn plan(&self) -> Option<Plan> {
        let (s, w) = (self.snap.as_ref()?, self.wal()?);
        let mut topics = Vec::new();
        for t in &w.topics {
            let key = match t.owner {
                TopicOwner::Collection(i) => s.collections[i].id.clone(),
                TopicOwner::Orphan => t.topic.clone(),
            };
            if self.marked.contains(&key) && t.prunable > 0 {
                topics.push(t.topic.clone());
            }
        }
        let dirs: Vec<String> = s
            .orphan_segment_dirs
            .iter()
            .filter(|o| self.marked.contains(&format!("dir:{}", o.name)))
            .map(|o| o.name.clone())
            .collect();
        let indexes = self.marked_indexes();
        if topics.is_empty() && dirs.is_empty() && indexes.is_empty() {
            return None;
        }
        let plan = Plan::build(s, w, &Selection::Topics(topics)).ok()?;
        let plan = if dirs.is_empty() {
            plan
        } else {
            plan.with_dirs(s, Some(&dirs))
        };
        Some(plan.with_indexes(indexes))
    }

    pub(super) fn clamp(&mut self) {
        let n = self.rows().len();
        if n == 0 {
            self.cursor = 0;
        } else if self.cursor >= n {
            self.cursor = n - 1;
        }
    }

    /// Typing into the filter prompt.
    pub fn filter_input(&mut self, c: Option<char>, accept: bool, cancel: bool) {
        self.rows_changed();
        if cancel {
            self.filter.clear();
            self.filter_editing = false;
        } else if accept {
            self.filter_editing = false;
            self.cursor = 0;
        } else if let Some(c) = c {
            self.filter.push(c);
            self.cursor = 0;
        } else {
            self.filter.pop();
        }
        self.clamp();
    }

    /// Feed a worker message in.
    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        if matches!(
            msg,
            Msg::Scanned(_) | Msg::Counted(_) | Msg::Counting { .. }
        ) {
            self.rows_changed();
        }
        match msg {
            Msg::Scanned(Ok(s)) => {
                let s = self.keep_truth(s);
                self.snap = Some(s);
                self.scan_error = None;
                self.counts = Counts::Counting { done: 0, total: 0 };
                let valid: BTreeSet<String> = self
                    .snap
                    .iter()
                    .flat_map(|s| {
                        s.collections
                            .iter()
                            .flat_map(|c| [c.id.clone(), super::indexes::key(&c.id)])
                    })
                    .collect();
                self.marked.retain(|k| valid.contains(k));
            }
            Msg::Scanned(Err(e)) => {
                self.scan_error = Some(e);
                self.counts = Counts::Failed("no catalog".into());
            }
            Msg::Counting { done, total } => {
                if matches!(self.counts, Counts::Counting { .. }) {
                    self.counts = Counts::Counting { done, total };
                }
            }
            Msg::Counted(Ok(w)) => {
                self.counts = Counts::Ready(w);
                // Marks on rows that are no longer prunable are dropped.
                let keep: HashSet<String> = self
                    .rows()
                    .iter()
                    .filter(|r| self.prunable(r))
                    .map(|r| self.key_of(r))
                    .collect();
                self.marked
                    .retain(|k| keep.contains(k) || k.starts_with("index:"));
                self.clamp();
            }
            Msg::Counted(Err(e)) => self.counts = Counts::Failed(e),
            m @ (Msg::SpaceProgress { .. } | Msg::Space(_)) => self.on_space(m),
            Msg::ScrubPlanned(ask, r) => self.on_scrub_planned(ask, r),
            Msg::Repairs(found) => {
                if let Some(s) = self.snap.as_mut() {
                    crate::jobs::compact::preview::apply(Arc::make_mut(s), found);
                }
            }
            Msg::Rows(reply) => {
                let ask = self.wal_rows.as_mut().and_then(|v| v.on_reply(reply));
                return ask
                    .map(|r| vec![Effect::Rows(Box::new(r))])
                    .unwrap_or_default();
            }
            Msg::Deleted(found) => {
                // By id: 20,000 segments searched linearly for each other froze the UI.
                let found: HashMap<&str, u64> =
                    found.iter().map(|(id, n)| (id.as_str(), *n)).collect();
                // The worker has let go of its share by now: no copy is made.
                let segs = self.snap.iter_mut().flat_map(|s| {
                    Arc::make_mut(s)
                        .collections
                        .iter_mut()
                        .flat_map(|c| c.segments.iter_mut())
                });
                for seg in segs {
                    if let (Some(f), Some(n)) = (seg.index.as_mut(), found.get(seg.id.as_str())) {
                        f.deleted = Some(*n);
                    }
                }
            }
            Msg::TruthProgress { done, total } => self.on_truth_progress(done, total),
            Msg::Records(reply) => return self.on_records_reply(reply),
            Msg::Truth(found) => {
                self.on_truth(found);
                self.rows_changed();
            }
            Msg::Job(ev) => {
                if let Some(job) = &mut self.job {
                    apply_event(job, ev);
                }
            }
            Msg::JobDone(r) => {
                if let Some(job) = &mut self.job {
                    job.outcome = Some(*r);
                    job.confirm_cancel = false;
                }
                self.view = View::Result;
            }
        }
        Vec::new()
    }

    /// Apply a user action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if self.help.open {
            if self.help.update(action) == HelpOutcome::Quit {
                self.quit = true;
            }
            return Vec::new();
        }
        match self.view {
            View::Main => self.update_main(action),
            View::Rows => self.update_rows(action),
            View::Space => self.update_space(action),
            View::Records => self.update_records(action),
            View::Confirm if self.scrub.is_some() => self.update_scrub_confirm(action),
            View::Confirm => self.update_confirm(action),
            View::Running => self.update_running(action),
            View::Result => self.update_result(action),
        }
    }
}
