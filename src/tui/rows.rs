//! The rows view's state: a window of one topic's WAL rows, newest first, paged by seq_id.
//!
//! At most [`WINDOW`] rows are held: scrolling past either end asks the worker for the next
//! page and drops a page at the other end, so memory stays bounded however far one scrolls.
//! Every read runs on the worker; this holds the answers.

use std::collections::VecDeque;

use crate::chroma::rows::{TopicView, WalRow, PAGE};
use crate::chroma::Snapshot;

/// Rows held at most (three pages).
pub const WINDOW: usize = 3 * PAGE;
/// Matches of a search kept at most.
pub const MATCHES: usize = 10_000;

/// What the worker is asked to read.
#[derive(Debug, Clone)]
pub enum RowsAsk {
    /// Judge the topics (bound, seq_id guard) and read the newest page.
    Open {
        topics: Vec<String>,
        snap: std::sync::Arc<Snapshot>,
    },
    /// The page of rows older than `before`.
    Older { view: TopicView, before: i64 },
    /// The page of rows newer than `after`.
    Newer { view: TopicView, after: i64 },
    /// The page that starts (newest first) at `seq_id`.
    At { view: TopicView, seq_id: i64 },
    /// The oldest page.
    Oldest { view: TopicView },
    /// The seq_ids of the rows with this id.
    Find { view: TopicView, id: String },
}

/// Two asks are the same read (an `Open` is compared by its topics: the snapshot it carries
/// only judges them).
impl PartialEq for RowsAsk {
    fn eq(&self, other: &Self) -> bool {
        use RowsAsk::*;
        match (self, other) {
            (Open { topics: a, .. }, Open { topics: b, .. }) => a == b,
            (Older { view: a, before: x }, Older { view: b, before: y }) => a == b && x == y,
            (Newer { view: a, after: x }, Newer { view: b, after: y }) => a == b && x == y,
            (At { view: a, seq_id: x }, At { view: b, seq_id: y }) => a == b && x == y,
            (Oldest { view: a }, Oldest { view: b }) => a == b,
            (Find { view: a, id: x }, Find { view: b, id: y }) => a == b && x == y,
            _ => false,
        }
    }
}

/// A request, tagged so that answers for a view that was closed are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsRequest {
    pub generation: u64,
    pub ask: RowsAsk,
}

/// The worker's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RowsAnswer {
    Opened {
        view: TopicView,
        rows: Vec<WalRow>,
    },
    /// Newest first, as shown.
    Older(Vec<WalRow>),
    /// Oldest first, as read.
    Newer(Vec<WalRow>),
    /// A fresh window, newest first (`At`, `Oldest`), and whether it reaches either end.
    Window {
        rows: Vec<WalRow>,
        newest: bool,
        oldest: bool,
        /// Put the cursor on the last (oldest) row rather than the first.
        cursor_last: bool,
    },
    Found {
        id: String,
        seq_ids: Vec<i64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowsReply {
    pub generation: u64,
    pub answer: Result<RowsAnswer, String>,
}

/// The rows view.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsView {
    pub generation: u64,
    /// Collection name, or the orphan topic.
    pub title: String,
    pub topics: Vec<String>,
    pub view: Option<TopicView>,
    /// Newest first.
    pub rows: VecDeque<WalRow>,
    pub cursor: usize,
    pub offset: usize,
    /// No newer / older rows exist beyond the window.
    pub at_newest: bool,
    pub at_oldest: bool,
    /// A read is under way (what it is, in words).
    pub loading: Option<&'static str>,
    pub error: Option<String>,
    /// Enter: the selected row shown whole.
    pub detail: bool,
    pub search_editing: bool,
    pub search: String,
    /// seq_ids matching the last search, newest first, and which one is selected.
    pub matches: Vec<i64>,
    pub match_at: Option<usize>,
    pub message: Option<String>,
}

impl RowsView {
    pub fn new(generation: u64, title: String, topics: Vec<String>) -> RowsView {
        RowsView {
            generation,
            title,
            topics,
            view: None,
            rows: VecDeque::new(),
            cursor: 0,
            offset: 0,
            at_newest: true,
            at_oldest: false,
            loading: Some("reading the newest rows"),
            error: None,
            detail: false,
            search_editing: false,
            search: String::new(),
            matches: Vec::new(),
            match_at: None,
            message: None,
        }
    }

    fn ask(&mut self, ask: RowsAsk, what: &'static str) -> Option<RowsRequest> {
        if self.loading.is_some() {
            return None;
        }
        self.loading = Some(what);
        Some(RowsRequest {
            generation: self.generation,
            ask,
        })
    }

    pub fn selected(&self) -> Option<&WalRow> {
        self.rows.get(self.cursor)
    }

    /// Move the cursor by `delta` rows; past the window's end, ask for the next page.
    pub fn step(&mut self, delta: isize) -> Option<RowsRequest> {
        let n = self.rows.len();
        let target = self.cursor as isize + delta;
        if target < 0 {
            self.cursor = 0;
            if !self.at_newest {
                let (view, after) = (self.view.clone()?, self.rows.front()?.seq_id);
                return self.ask(RowsAsk::Newer { view, after }, "reading newer rows");
            }
            return None;
        }
        if target as usize >= n {
            self.cursor = n.saturating_sub(1);
            if !self.at_oldest {
                let (view, before) = (self.view.clone()?, self.rows.back()?.seq_id);
                return self.ask(RowsAsk::Older { view, before }, "reading older rows");
            }
            return None;
        }
        self.cursor = target as usize;
        None
    }

    pub fn newest(&mut self) -> Option<RowsRequest> {
        if self.at_newest {
            self.cursor = 0;
            return None;
        }
        let view = self.view.clone()?;
        self.ask(
            RowsAsk::At {
                view,
                seq_id: i64::MAX,
            },
            "reading the newest rows",
        )
    }

    pub fn oldest(&mut self) -> Option<RowsRequest> {
        if self.at_oldest {
            self.cursor = self.rows.len().saturating_sub(1);
            return None;
        }
        let view = self.view.clone()?;
        self.ask(RowsAsk::Oldest { view }, "reading the oldest rows")
    }

    /// Search input: a character, accept (Enter), cancel (Esc), or backspace (all None).
    pub fn search_input(
        &mut self,
        c: Option<char>,
        accept: bool,
        cancel: bool,
    ) -> Option<RowsRequest> {
        if cancel {
            self.search_editing = false;
            return None;
        }
        if accept {
            self.search_editing = false;
            let (view, id) = (self.view.clone()?, self.search.clone());
            if id.is_empty() {
                return None;
            }
            return self.ask(RowsAsk::Find { view, id }, "searching the topic");
        }
        match c {
            Some(c) => self.search.push(c),
            None => {
                self.search.pop();
            }
        }
        None
    }

    /// n (older match) and N (newer match).
    pub fn next_match(&mut self, older: bool) -> Option<RowsRequest> {
        let n = self.matches.len();
        if n == 0 {
            self.message = Some("no matches".into());
            return None;
        }
        let i = match (self.match_at, older) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(n - 1),
            (Some(i), false) => i.saturating_sub(1),
        };
        self.match_at = Some(i);
        self.message = Some(format!("match {} of {n}", i + 1));
        self.go_to(self.matches[i])
    }

    /// Put the cursor on `seq_id`: in the window already, or by reading the page there.
    fn go_to(&mut self, seq_id: i64) -> Option<RowsRequest> {
        if let Some(i) = self.rows.iter().position(|r| r.seq_id == seq_id) {
            self.cursor = i;
            return None;
        }
        let view = self.view.clone()?;
        self.ask(
            RowsAsk::At { view, seq_id },
            "reading the rows of the match",
        )
    }

    /// Take a worker's answer in.
    pub fn on_reply(&mut self, reply: RowsReply) -> Option<RowsRequest> {
        if reply.generation != self.generation {
            return None;
        }
        self.loading = None;
        let answer = match reply.answer {
            Ok(a) => a,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        match answer {
            RowsAnswer::Opened { view, rows } => {
                self.view = Some(view);
                self.at_oldest = rows.len() < PAGE;
                self.rows = rows.into();
                self.at_newest = true;
                self.cursor = 0;
            }
            RowsAnswer::Older(rows) => {
                self.at_oldest = rows.len() < PAGE;
                let got = rows.len();
                self.rows.extend(rows);
                if got > 0 {
                    self.cursor = (self.cursor + 1).min(self.rows.len() - 1);
                }
                while self.rows.len() > WINDOW {
                    self.rows.pop_front();
                    self.cursor = self.cursor.saturating_sub(1);
                    self.at_newest = false;
                }
            }
            RowsAnswer::Newer(rows) => {
                self.at_newest = rows.len() < PAGE;
                let got = rows.len();
                for r in rows {
                    self.rows.push_front(r);
                }
                self.cursor = got.saturating_sub(1);
                while self.rows.len() > WINDOW {
                    self.rows.pop_back();
                    self.at_oldest = false;
                }
            }
            RowsAnswer::Window {
                rows,
                newest,
                oldest,
                cursor_last,
            } => {
                self.at_oldest = oldest;
                self.at_newest = newest;
                self.rows = rows.into();
                self.cursor = if cursor_last {
                    self.rows.len().saturating_sub(1)
                } else {
                    0
                };
            }
            RowsAnswer::Found { id, seq_ids } => {
                let mut s = seq_ids;
                s.reverse();
                self.matches = s;
                self.match_at = None;
                if self.matches.is_empty() {
                    self.message = Some(format!("no row has id `{id}`"));
                    return None;
                }
                return self.next_match(true);
            }
        }
        None
    }

    /// Where the held rows end and the prunable ones begin (index of the first row below
    /// the bound), when that border is inside the window.
    pub fn border(&self) -> Option<usize> {
        let i = self.rows.iter().position(|r| r.state.goes())?;
        // Only where a held row is seen above it: a window that starts below the border
        // does not know where it is.
        (i > 0).then_some(i)
    }
}

use super::app::{Action, App, Effect, RowRef, View};

impl App {
    /// `w` on the table: the selected collection's (or orphan topic's) WAL rows.
    pub(crate) fn open_rows(&mut self) -> Vec<Effect> {
        let (Some(sel), Some(snap)) = (self.selected(), self.snap.as_ref()) else {
            return Vec::new();
        };
        let (title, topics) = match (sel, self.wal()) {
            (RowRef::Collection(i), w) => {
                let c = &snap.collections[i];
                let mut topics: Vec<String> = w
                    .map(|w| w.of_collection(i).map(|t| t.topic.clone()).collect())
                    .unwrap_or_default();
                if topics.is_empty() {
                    topics.push(c.default_topic());
                }
                (c.name.clone(), topics)
            }
            (RowRef::Orphan(t), Some(w)) => (
                "(orphan topic)".to_string(),
                vec![w.topics[t].topic.clone()],
            ),
            (RowRef::Orphan(_), None) => return Vec::new(),
            (RowRef::Folder(_), _) => {
                self.message = Some("a folder has no WAL rows".into());
                return Vec::new();
            }
        };
        self.rows_generation += 1;
        let v = RowsView::new(self.rows_generation, title, topics.clone());
        self.wal_rows = Some(v);
        self.view = View::Rows;
        vec![Effect::Rows(Box::new(RowsRequest {
            generation: self.rows_generation,
            ask: RowsAsk::Open {
                topics,
                snap: snap.clone(),
            },
        }))]
    }

    pub(crate) fn update_rows(&mut self, action: Action) -> Vec<Effect> {
        let page = self.page.max(1) as isize;
        let Some(v) = self.wal_rows.as_mut() else {
            self.view = View::Main;
            return Vec::new();
        };
        v.message = None;
        let ask = match action {
            Action::Up => v.step(-1),
            Action::Down => v.step(1),
            Action::PageUp => v.step(-page),
            Action::PageDown => v.step(page),
            Action::Top => v.newest(),
            Action::Bottom => v.oldest(),
            Action::ToggleDetail => {
                v.detail = !v.detail && v.selected().is_some();
                None
            }
            Action::FilterStart => {
                v.search_editing = true;
                v.search.clear();
                None
            }
            Action::NextMatch => v.next_match(true),
            Action::PrevMatch => v.next_match(false),
            Action::Back if v.detail => {
                v.detail = false;
                None
            }
            Action::Back => {
                // Back to the table, its selection as it was.
                self.wal_rows = None;
                self.view = View::Main;
                None
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
        ask.map(|r| vec![Effect::Rows(Box::new(r))])
            .unwrap_or_default()
    }

    /// Typing into the rows view's search.
    pub fn rows_search_input(
        &mut self,
        c: Option<char>,
        accept: bool,
        cancel: bool,
    ) -> Vec<Effect> {
        self.wal_rows
            .as_mut()
            .and_then(|v| v.search_input(c, accept, cancel))
            .map(|r| vec![Effect::Rows(Box::new(r))])
            .unwrap_or_default()
    }

    pub fn rows_searching(&self) -> bool {
        self.wal_rows.as_ref().is_some_and(|v| v.search_editing)
    }
}

/// Answer one request (on a worker thread): every read of the rows view is here.
pub fn answer(path: &std::path::Path, ask: RowsAsk) -> Result<RowsAnswer, String> {
    use crate::chroma::{db, rows};
    let sqlite = path.join(crate::chroma::SQLITE_FILE);
    let conn = db::open_read_only(&sqlite).map_err(|e| e.to_string())?;
    let e = |e: crate::error::Error| e.to_string();
    Ok(match ask {
        RowsAsk::Open { topics, snap } => {
            // Bounds and the seq_id guard need the segments: read them if the catalog shown
            // is still without.
            let snap = if snap.folders_pending() {
                let mut own = (*snap).clone();
                own.read_folders();
                // Its pickles whole too: a bound from a pickle read only up to its
                // max_seq_id is not yet one to colour rows by.
                own.settle();
                std::sync::Arc::new(own)
            } else {
                snap
            };
            let view = TopicView::of(&snap, &conn, &topics).map_err(e)?;
            let rows = rows::page_before(&conn, &view, i64::MAX, PAGE).map_err(e)?;
            RowsAnswer::Opened { view, rows }
        }
        RowsAsk::Older { view, before } => {
            RowsAnswer::Older(rows::page_before(&conn, &view, before, PAGE).map_err(e)?)
        }
        RowsAsk::Newer { view, after } => {
            RowsAnswer::Newer(rows::page_after(&conn, &view, after, PAGE).map_err(e)?)
        }
        RowsAsk::At { view, seq_id } => {
            let rows =
                rows::page_before(&conn, &view, seq_id.saturating_add(1), PAGE).map_err(e)?;
            let newest = seq_id == i64::MAX
                || rows::page_after(&conn, &view, seq_id, 1)
                    .map_err(e)?
                    .is_empty();
            RowsAnswer::Window {
                oldest: rows.len() < PAGE,
                newest,
                rows,
                cursor_last: false,
            }
        }
        RowsAsk::Oldest { view } => {
            let mut rows = rows::page_after(&conn, &view, i64::MIN, PAGE).map_err(e)?;
            let newest = rows.len() < PAGE;
            rows.reverse();
            RowsAnswer::Window {
                rows,
                newest,
                oldest: true,
                cursor_last: true,
            }
        }
        RowsAsk::Find { view, id } => {
            let seq_ids = rows::find_id(&conn, &view, &id, MATCHES).map_err(e)?;
            RowsAnswer::Found { id, seq_ids }
        }
    })
}
