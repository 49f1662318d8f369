//! The records view's state: a window of one collection's records, in `get()` order, paged
//! by `embeddings.id`, with search by id or by text in the document, and one record shown
//! whole. Every read runs on the view's own worker thread (it keeps the collection's label
//! maps between pages); this holds the answers.
//!
//! The first page comes without the vectors' sources, at once; the worker then reads where
//! each vector is (one pass over the index's labels) and the window is read again with them.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use crate::chroma::records::{Filter, Reader, Record};
use crate::chroma::Snapshot;

use super::app::{Action, App, Effect, Msg, RowRef, View};

/// Records per page.
pub const PAGE: usize = 200;
/// Records held at most (three pages).
pub const WINDOW: usize = 3 * PAGE;

/// What a page read after a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The next page, appended to the window.
    Next,
    /// A new window from the start (g, a search): the cursor goes to its top.
    Restart,
    /// The same window read again (the vectors are now known): the cursor stays.
    Refresh,
}

/// What the worker is asked to read.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordsAsk {
    /// Up to `limit` records after `after`.
    After {
        after: i64,
        limit: usize,
        filter: Filter,
        mode: Mode,
    },
    /// The page before `before`.
    Before { before: i64, filter: Filter },
    /// One record whole, its embedding included.
    One { rowid: i64 },
}

/// The worker's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordsAnswer {
    /// The collection's record count, once opened.
    Opened {
        count: u64,
    },
    /// Where the vectors are is now known (`problem`: why there are none at all).
    VectorsReady {
        problem: Option<String>,
    },
    After {
        records: Vec<Record>,
        after: i64,
        limit: usize,
        mode: Mode,
    },
    Before(Vec<Record>),
    One(Box<Record>),
    /// The record asked for whole is not there any more (a live dir changed).
    Gone(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordsReply {
    pub generation: u64,
    pub answer: Result<RecordsAnswer, String>,
}

/// Which search is being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Id,
    Text,
}

/// The records view.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsView {
    pub generation: u64,
    pub title: String,
    pub count: Option<u64>,
    pub records: VecDeque<Record>,
    /// The `embeddings.id` the window starts after.
    pub window_after: i64,
    pub cursor: usize,
    pub offset: usize,
    pub at_end: bool,
    pub loading: Option<&'static str>,
    pub error: Option<String>,
    pub vectors_ready: bool,
    pub problem: Option<String>,
    pub filter: Filter,
    pub search_editing: Option<SearchKind>,
    pub search: String,
    /// Enter: the selected record whole (with its embedding), once read.
    pub detail: Option<Box<Record>>,
    pub detail_open: bool,
    pub message: Option<String>,
    /// The latest ask made while another read was under way: sent when it ends.
    queued: Option<(RecordsAsk, &'static str)>,
}

impl RecordsView {
    pub fn new(generation: u64, title: String) -> RecordsView {
        RecordsView {
            generation,
            title,
            count: None,
            records: VecDeque::new(),
            window_after: i64::MIN,
            cursor: 0,
            offset: 0,
            at_end: false,
            loading: Some("reading the first records"),
            error: None,
            vectors_ready: false,
            problem: None,
            filter: Filter::All,
            search_editing: None,
            search: String::new(),
            detail: None,
            detail_open: false,
            message: None,
            queued: None,
        }
    }

    /// Send `ask` now, or (a read is under way: one at a time, so no answer is ever stale)
    /// as soon as it ends; a later ask replaces a queued one.
    fn ask(&mut self, ask: RecordsAsk, what: &'static str) -> Option<RecordsAsk> {
        if self.loading.is_some() {
            self.queued = Some((ask, what));
            return None;
        }
        self.loading = Some(what);
        Some(ask)
    }

    /// The queued ask, once the read under way has ended.
    fn next_queued(&mut self) -> Option<RecordsAsk> {
        let (ask, what) = self.queued.take()?;
        self.ask(ask, what)
    }

    pub fn selected(&self) -> Option<&Record> {
        self.records.get(self.cursor)
    }

    /// Move by `delta`; past the window's ends, ask for the next or previous page.
    pub fn step(&mut self, delta: isize) -> Option<RecordsAsk> {
        let n = self.records.len();
        let target = self.cursor as isize + delta;
        if target < 0 {
            self.cursor = 0;
            if self.window_after != i64::MIN {
                let before = self.records.front()?.rowid;
                let filter = self.filter.clone();
                return self.ask(
                    RecordsAsk::Before { before, filter },
                    "reading earlier records",
                );
            }
            return None;
        }
        if target as usize >= n {
            self.cursor = n.saturating_sub(1);
            if !self.at_end {
                let after = self.records.back()?.rowid;
                let filter = self.filter.clone();
                return self.ask(
                    RecordsAsk::After {
                        after,
                        limit: PAGE,
                        filter,
                        mode: Mode::Next,
                    },
                    "reading more records",
                );
            }
            return None;
        }
        self.cursor = target as usize;
        None
    }

    /// The first records again (g), or a new filter's.
    pub fn restart(&mut self, what: &'static str) -> Option<RecordsAsk> {
        let filter = self.filter.clone();
        self.ask(
            RecordsAsk::After {
                after: i64::MIN,
                limit: PAGE,
                filter,
                mode: Mode::Restart,
            },
            what,
        )
    }

    /// Search input: a character, accept (Enter), cancel (Esc), or backspace (all None).
    pub fn search_input(
        &mut self,
        c: Option<char>,
        accept: bool,
        cancel: bool,
    ) -> Option<RecordsAsk> {
        let kind = self.search_editing?;
        if cancel {
            self.search_editing = None;
            return None;
        }
        if accept {
            self.search_editing = None;
            self.filter = match (kind, self.search.is_empty()) {
                (_, true) => Filter::All,
                (SearchKind::Id, false) => Filter::Id(self.search.clone()),
                (SearchKind::Text, false) => Filter::Document(self.search.clone()),
            };
            return self.restart("searching");
        }
        match c {
            Some(c) => self.search.push(c),
            None => {
                self.search.pop();
            }
        }
        None
    }

    /// Take a worker's answer in; the next ask to send, if any.
    pub fn on_reply(&mut self, reply: RecordsReply) -> Option<RecordsAsk> {
        if reply.generation != self.generation {
            return None;
        }
        let answer = match reply.answer {
            Ok(a) => a,
            Err(e) => {
                self.loading = None;
                self.error = Some(e);
                return self.next_queued();
            }
        };
        self.error = None;
        match answer {
            // Sent unasked, while the first page is on its way: no read ends here.
            RecordsAnswer::Opened { count } => {
                self.count = Some(count);
                return None;
            }
            RecordsAnswer::VectorsReady { problem } => {
                self.vectors_ready = true;
                self.problem = problem;
                // The window again, now with where each vector is.
                let filter = self.filter.clone();
                let limit = self.records.len().max(PAGE);
                let after = self.window_after;
                return self.ask(
                    RecordsAsk::After {
                        after,
                        limit,
                        filter,
                        mode: Mode::Refresh,
                    },
                    "reading where the vectors are",
                );
            }
            RecordsAnswer::After {
                records,
                after,
                limit,
                mode,
            } => {
                self.loading = None;
                let got = records.len();
                self.at_end = got < limit;
                match mode {
                    Mode::Restart | Mode::Refresh => {
                        let keep = if mode == Mode::Refresh {
                            self.cursor
                        } else {
                            0
                        };
                        self.records = records.into();
                        self.window_after = after;
                        self.cursor = keep.min(self.records.len().saturating_sub(1));
                    }
                    Mode::Next => {
                        self.records.extend(records);
                        if got > 0 {
                            self.cursor = (self.cursor + 1).min(self.records.len() - 1);
                        }
                        while self.records.len() > WINDOW {
                            if let Some(r) = self.records.pop_front() {
                                self.window_after = r.rowid;
                            }
                            self.cursor = self.cursor.saturating_sub(1);
                        }
                    }
                }
            }
            RecordsAnswer::Before(records) => {
                self.loading = None;
                let got = records.len();
                if got < PAGE {
                    self.window_after = i64::MIN;
                } else if let Some(r) = records.first() {
                    // Rowids are integers: the window starts after the one below its first.
                    self.window_after = r.rowid.saturating_sub(1);
                }
                for r in records.into_iter().rev() {
                    self.records.push_front(r);
                }
                self.cursor = got.saturating_sub(1);
                while self.records.len() > WINDOW {
                    self.records.pop_back();
                    self.at_end = false;
                }
            }
            RecordsAnswer::One(r) => {
                self.loading = None;
                if self.detail_open {
                    self.detail = Some(r);
                }
            }
            RecordsAnswer::Gone(why) => {
                self.loading = None;
                self.detail_open = false;
                self.message = Some(why);
            }
        }
        self.next_queued()
    }
}

impl App {
    /// `e` on the table: the selected collection's records.
    pub(crate) fn open_records(&mut self) -> Vec<Effect> {
        let (Some(RowRef::Collection(i)), Some(snap)) = (self.selected(), self.snap.as_ref())
        else {
            self.message = Some("select a collection to read its records".into());
            return Vec::new();
        };
        if snap.folders_pending() {
            self.message = Some("still reading the segment folders; try again in a moment".into());
            return Vec::new();
        }
        self.rows_generation += 1;
        let name = snap.collections[i].name.clone();
        self.records = Some(RecordsView::new(self.rows_generation, name));
        self.view = View::Records;
        vec![Effect::OpenRecords {
            generation: self.rows_generation,
            snap: super::app::SharedSnap(snap.clone()),
            collection: i,
        }]
    }

    fn records_effect(&self, ask: Option<RecordsAsk>) -> Vec<Effect> {
        match (ask, &self.records) {
            (Some(a), Some(v)) => vec![Effect::Records {
                generation: v.generation,
                ask: Box::new(a),
            }],
            _ => Vec::new(),
        }
    }

    pub(crate) fn update_records(&mut self, action: Action) -> Vec<Effect> {
        let page = self.page.max(1) as isize;
        let Some(v) = self.records.as_mut() else {
            self.view = View::Main;
            return Vec::new();
        };
        v.message = None;
        let ask = match action {
            Action::Up => v.step(-1),
            Action::Down => v.step(1),
            Action::PageUp => v.step(-page),
            Action::PageDown => v.step(page),
            Action::Top => v.restart("reading the first records"),
            Action::Bottom => {
                v.message =
                    Some("records are read page by page from the first; PgDn goes on".into());
                v.step(page)
            }
            Action::ToggleDetail => {
                v.detail_open = !v.detail_open && v.selected().is_some();
                v.detail = None;
                match (v.detail_open, v.selected().map(|r| r.rowid)) {
                    (true, Some(rowid)) => v.ask(RecordsAsk::One { rowid }, "reading the record"),
                    _ => None,
                }
            }
            Action::FilterStart => {
                v.search_editing = Some(SearchKind::Id);
                v.search.clear();
                None
            }
            Action::TextSearch => {
                v.search_editing = Some(SearchKind::Text);
                v.search.clear();
                None
            }
            Action::Back if v.detail_open => {
                v.detail_open = false;
                v.detail = None;
                None
            }
            Action::Back if v.filter != Filter::All => {
                v.filter = Filter::All;
                v.restart("reading the first records")
            }
            Action::Back => {
                self.records = None;
                self.view = View::Main;
                return vec![Effect::CloseRecords];
            }
            Action::Help => {
                self.help.open();
                None
            }
            Action::Quit => {
                self.quit = true;
                None
            }
            _ => None,
        };
        self.records_effect(ask)
    }

    pub fn records_search_input(
        &mut self,
        c: Option<char>,
        accept: bool,
        cancel: bool,
    ) -> Vec<Effect> {
        let ask = self
            .records
            .as_mut()
            .and_then(|v| v.search_input(c, accept, cancel));
        self.records_effect(ask)
    }

    pub fn records_searching(&self) -> bool {
        self.records
            .as_ref()
            .is_some_and(|v| v.search_editing.is_some())
    }

    pub(crate) fn on_records_reply(&mut self, reply: RecordsReply) -> Vec<Effect> {
        let ask = self.records.as_mut().and_then(|v| v.on_reply(reply));
        self.records_effect(ask)
    }
}

/// The view's worker: opens the collection, sends its count and first page (no sources
/// yet), reads where the vectors are, then answers asks until the view closes.
pub fn worker(
    generation: u64,
    snap: Arc<Snapshot>,
    ci: usize,
    asks: Receiver<RecordsAsk>,
    tx: Sender<Msg>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) {
    let send = |answer: Result<RecordsAnswer, String>| {
        tx.send(Msg::Records(RecordsReply { generation, answer }))
            .is_ok()
    };
    let mut reader = match Reader::open(&snap, ci) {
        Ok(r) => r,
        Err(e) => {
            send(Err(e.to_string()));
            return;
        }
    };
    let first = reader
        .count()
        .map(|count| RecordsAnswer::Opened { count })
        .map_err(|e| e.to_string());
    if !send(first) {
        return;
    }
    let page = reader
        .page(i64::MIN, PAGE, &Filter::All, false)
        .map(|records| RecordsAnswer::After {
            records,
            after: i64::MIN,
            limit: PAGE,
            mode: Mode::Restart,
        })
        .map_err(|e| e.to_string());
    if !send(page) {
        return;
    }
    let ready = reader
        .load_vectors_until(&snap, ci, &|| {
            closed.load(std::sync::atomic::Ordering::Relaxed)
        })
        .map(|_| RecordsAnswer::VectorsReady {
            problem: reader.problem().map(str::to_string),
        })
        .map_err(|e| e.to_string());
    if !send(ready) {
        return;
    }
    while let Ok(ask) = asks.recv() {
        let answer = match ask {
            RecordsAsk::After {
                after,
                limit,
                filter,
                mode,
            } => reader
                .page(after, limit, &filter, false)
                .map(|records| RecordsAnswer::After {
                    records,
                    after,
                    limit,
                    mode,
                }),
            RecordsAsk::Before { before, filter } => reader
                .page_before(before, PAGE, &filter)
                .map(RecordsAnswer::Before),
            RecordsAsk::One { rowid } => reader
                .page(rowid.saturating_sub(1), 1, &Filter::All, true)
                .map(|mut r| match r.pop() {
                    Some(r) if r.rowid == rowid => RecordsAnswer::One(Box::new(r)),
                    _ => RecordsAnswer::Gone(
                        "that record is gone: the dir changed since it was listed".into(),
                    ),
                }),
        };
        if !send(answer.map_err(|e| e.to_string())) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rowid: i64) -> Record {
        Record {
            rowid,
            id: format!("r{rowid}"),
            document: None,
            metadata: None,
            embedding: None,
            source: None,
        }
    }

    /// An answer of `n` records (rowids 1..=n after `from`, or from 1 at the start).
    fn after(
        v: &mut RecordsView,
        from: i64,
        n: i64,
        limit: usize,
        mode: Mode,
    ) -> Option<RecordsAsk> {
        let first = from.max(0) + 1;
        v.on_reply(RecordsReply {
            generation: v.generation,
            answer: Ok(RecordsAnswer::After {
                records: (first..first + n).map(rec).collect(),
                after: from,
                limit,
                mode,
            }),
        })
    }

    #[test]
    fn a_restart_from_a_long_window_can_still_page_on() {
        let mut v = RecordsView::new(1, "c".into());
        after(&mut v, i64::MIN, 0, PAGE, Mode::Restart);
        v.records = (1..=600).map(rec).collect();
        v.cursor = 450;
        let ask = v.restart("g");
        assert!(matches!(
            ask,
            Some(RecordsAsk::After {
                mode: Mode::Restart,
                ..
            })
        ));
        after(&mut v, i64::MIN, PAGE as i64, PAGE, Mode::Restart);
        assert!(!v.at_end, "a full page is not the end");
        assert_eq!(v.cursor, 0);
        assert_eq!(v.records.len(), PAGE);
        // The next page is asked for past the window's end.
        v.cursor = PAGE - 1;
        assert!(matches!(
            v.step(1),
            Some(RecordsAsk::After {
                after: 200,
                mode: Mode::Next,
                ..
            })
        ));
    }

    #[test]
    fn an_ask_made_while_reading_is_sent_after_and_the_latest_wins() {
        let mut v = RecordsView::new(1, "c".into());
        // The first page is on its way: a search typed meanwhile waits, then goes.
        v.search_editing = Some(SearchKind::Id);
        v.search = "x".into();
        assert_eq!(v.search_input(None, true, false), None);
        v.search_editing = Some(SearchKind::Text);
        v.search = "fox".into();
        assert_eq!(v.search_input(None, true, false), None);
        let next = after(&mut v, i64::MIN, 5, PAGE, Mode::Restart);
        match next {
            Some(RecordsAsk::After { filter, mode, .. }) => {
                assert_eq!(filter, Filter::Document("fox".into()));
                assert_eq!(mode, Mode::Restart);
            }
            other => panic!("{other:?}"),
        }
        assert!(v.loading.is_some());
        // An error is shown, and the next good answer clears it.
        v.on_reply(RecordsReply {
            generation: 1,
            answer: Err("busy".into()),
        });
        assert_eq!(v.error.as_deref(), Some("busy"));
        after(&mut v, i64::MIN, 2, PAGE, Mode::Restart);
        assert_eq!(v.error, None);
        assert!(v.at_end);
    }
}
