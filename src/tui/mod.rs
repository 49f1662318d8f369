//! The full-screen explorer. `app` holds the shared state and routes each action to the view
//! that owns it (`table`, `job` for confirm, running and result, `rows`, `space`, and
//! `views/help`); `ui` and `views/` draw; `keymap` is the one table of keys; this module runs
//! the loop: input on the UI thread, the scan and the prune job on worker threads that report
//! over a channel. No SQL is written here: the workers call the engine, which reads.

pub mod app;
pub mod indexes;
pub mod job;
pub mod keymap;
pub mod records;
pub mod rows;
pub mod scrub;
pub mod space;
pub mod table;
pub mod truth;
pub mod ui;
pub mod views;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, MouseEventKind};
use ratatui::Terminal;

use crate::chroma::{coverage, deep, snapshot, wal, Snapshot};
use crate::error::{Error, Result};
use crate::jobs::prune::{self, Canceller, JobOptions};
pub use app::{Action, App, Effect, Msg, Options, View};

/// Where input comes from: the terminal, or a script in tests. A script may look at the app
/// to wait for a state (counts arrived, job finished) before its next key.
pub trait Events {
    fn next(&mut self, app: &App, timeout: Duration) -> std::io::Result<Option<TermEvent>>;
}

/// Input from the real terminal.
pub struct TerminalEvents;

impl Events for TerminalEvents {
    fn next(&mut self, _app: &App, timeout: Duration) -> std::io::Result<Option<TermEvent>> {
        if event::poll(timeout)? {
            Ok(Some(event::read()?))
        } else {
            Ok(None)
        }
    }
}

/// Runs the engine on worker threads and turns its results into [`Msg`]s.
pub struct Workers {
    tx: Sender<Msg>,
    path: PathBuf,
    generation: Arc<AtomicU64>,
    canceller: Option<Canceller>,
    opts: JobOptions,
    /// The records view's worker: its generation, where its asks go, and its flag to stop
    /// mapping the labels once the view is gone.
    records: Option<(u64, Sender<records::RecordsAsk>, Arc<AtomicBool>)>,
}

impl Workers {
    pub fn new(tx: Sender<Msg>, opts: &Options) -> Workers {
        Workers {
            tx,
            path: opts.path.clone(),
            generation: Arc::new(AtomicU64::new(0)),
            canceller: None,
            opts: opts.job_options(),
            records: None,
        }
    }

    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Scan => self.scan(),
            Effect::RunJob(plan) => self.job(*plan),
            Effect::PlanScrub(ask) => {
                let tx = self.tx.clone();
                std::thread::spawn(move || {
                    let (snap, wal, selection, n) = *ask;
                    let r = crate::jobs::scrub::plan(&snap.0, &wal, &selection)
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Msg::ScrubPlanned(n, r));
                });
            }
            Effect::OpenRecords {
                generation,
                snap,
                collection,
            } => {
                let (asks_tx, asks) = mpsc::channel();
                let closed = Arc::new(AtomicBool::new(false));
                if let Some((_, _, old)) =
                    self.records.replace((generation, asks_tx, closed.clone()))
                {
                    old.store(true, Ordering::Relaxed);
                }
                let tx = self.tx.clone();
                std::thread::spawn(move || {
                    records::worker(generation, snap.0, collection, asks, tx, closed)
                });
            }
            Effect::Records { generation, ask } => {
                if let Some((g, to, _)) = &self.records {
                    if *g == generation {
                        let _ = to.send(*ask);
                    }
                }
            }
            Effect::CloseRecords => {
                if let Some((_, _, closed)) = self.records.take() {
                    closed.store(true, Ordering::Relaxed);
                }
            }
            Effect::MapSpace => {
                let (tx, path) = (self.tx.clone(), self.path.clone());
                std::thread::spawn(move || {
                    let r = Snapshot::open(&path).and_then(|snap| {
                        let mut last = Instant::now();
                        crate::chroma::space::map(&snap, &mut |done, total| {
                            if last.elapsed() >= Duration::from_millis(100) {
                                last = Instant::now();
                                let _ = tx.send(Msg::SpaceProgress { done, total });
                            }
                            true
                        })
                    });
                    let _ = tx.send(Msg::Space(r.map_err(|e| e.to_string())));
                });
            }
            Effect::Rows(req) => {
                let (tx, path) = (self.tx.clone(), self.path.clone());
                std::thread::spawn(move || {
                    let answer = rows::answer(&path, req.ask);
                    let _ = tx.send(Msg::Rows(rows::RowsReply {
                        generation: req.generation,
                        answer,
                    }));
                });
            }
            Effect::CancelJob => {
                if let Some(c) = &self.canceller {
                    c.cancel();
                }
            }
        }
    }

    /// Read the catalog, then count the WAL; a newer scan makes an older one stop.
    fn scan(&mut self) {
        let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, path, current) = (self.tx.clone(), self.path.clone(), self.generation.clone());
        std::thread::spawn(move || {
            let live = || current.load(Ordering::SeqCst) == gen;
            // The catalog as SQLite has it comes at once; then the segment folders (20,000
            // collections have as many), each pickle read up to its max_seq_id; the pickles
            // are validated whole while the WAL is counted.
            // Only the first time: a rescan (a live dir's every 10 s) keeps the catalog on
            // screen until the new one is whole, instead of every status saying "checking".
            let catalog = match Snapshot::open_catalog(&path) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    let _ = tx.send(Msg::Scanned(Err(e.to_string())));
                    return;
                }
            };
            if gen == 1 && (!live() || tx.send(Msg::Scanned(Ok(catalog.clone()))).is_err()) {
                return;
            }
            // Its own copy to fill in (the UI shows the shared one meanwhile).
            let mut own = Arc::unwrap_or_clone(catalog);
            own.read_folders();
            let mut snap = Arc::new(own);
            // Shared, not copied: the worker keeps reading it while the UI shows it.
            if !live() || tx.send(Msg::Scanned(Ok(snap.clone()))).is_err() {
                return;
            }
            let work = snap.pending.clone();
            let provisional = !work.is_empty();
            let validator =
                std::thread::spawn(move || work.iter().map(|p| p.resolve()).collect::<Vec<_>>());
            let mut last = Instant::now();
            let mut progress = |done: u64, total: u64| {
                if last.elapsed() >= Duration::from_millis(100) {
                    last = Instant::now();
                    let _ = tx.send(Msg::Counting { done, total });
                }
                live()
            };
            let mut counted = wal::scan(&snap, &mut progress).map_err(|e| e.to_string());
            let Ok(resolved) = validator.join() else {
                let _ = tx.send(Msg::Scanned(Err("validating a pickle failed".into())));
                return;
            };
            // Only pending pickles change it: copied then, on this thread.
            let changed = if provisional {
                Arc::make_mut(&mut snap).apply(resolved)
            } else {
                Vec::new()
            };
            if provisional {
                if let Ok(w) = &mut counted {
                    if !w.rebound(&snap, &changed) {
                        counted = wal::scan(&snap, &mut progress).map_err(|e| e.to_string());
                    }
                }
                // The settled catalog replaces the provisional one before its counts.
                if !live() || tx.send(Msg::Scanned(Ok(snap.clone()))).is_err() {
                    return;
                }
            }
            // As the prune does before it deletes: a collection with prunable rows whose
            // records are not all in a loadable index (or the WAL above it) keeps its WAL.
            if let Ok(w) = &mut counted {
                let touched = coverage::with_prunable_rows(w);
                let found = coverage::find(&snap, &|i| touched.contains(&i));
                // A check that could not run leaves the verdicts as they were; the prune runs
                // it again before it deletes anything.
                if let Some(found) = found.ok().filter(|f| !f.is_empty()) {
                    let changed = coverage::mark(Arc::make_mut(&mut snap), &found);
                    if !w.rebound(&snap, &changed) {
                        counted = wal::scan(&snap, &mut progress).map_err(|e| e.to_string());
                    }
                    if !live() || tx.send(Msg::Scanned(Ok(snap.clone()))).is_err() {
                        return;
                    }
                }
            }
            if !live() || tx.send(Msg::Counted(counted)).is_err() {
                return;
            }
            // Its own copy (the UI holds the shared one), made here and not on the UI thread.
            let mut snap = Arc::unwrap_or_clone(snap);
            // Then each index against its records and the WAL: which records a query cannot
            // return, the deleted vectors on disk, what a rebuild from the WAL brings back;
            // its pass over each index counts the deleted marks too. Not on a live dir's
            // refresh (every 10 s): a read of every index that takes longer would start over
            // forever. The first scan's truth is kept (app.rs).
            if gen == 1 || snap.holders.list.is_empty() {
                let mut last = Instant::now();
                let mut progress = |done: u64, total: u64| {
                    if last.elapsed() >= Duration::from_millis(100) {
                        last = Instant::now();
                        let _ = tx.send(Msg::TruthProgress { done, total });
                    }
                    live()
                };
                let found = crate::chroma::truth::read(&snap, &|_| true, true, &mut progress);
                if !live() {
                    return;
                }
                if let Ok(f) = &found {
                    crate::chroma::truth::apply(&mut snap, f.clone());
                }
                let _ = tx.send(Msg::Truth(found.map_err(|e| e.to_string())));
                // A damaged index: what compact --repair would do now (its dry run).
                if let Ok(r) = crate::jobs::compact::preview::previews(&snap) {
                    if !r.is_empty() && live() {
                        let _ = tx.send(Msg::Repairs(r));
                    }
                }
            }
            // Then the deleted marks of the indexes the truth did not read: one byte per
            // element, off the UI thread.
            if deep::count_deleted(&mut snap, &mut |_, _| live()).is_ok() && live() {
                let found = snap
                    .collections
                    .iter()
                    .flat_map(|c| c.segments.iter())
                    .filter_map(|s| Some((s.id.clone(), s.index.as_ref()?.deleted?)))
                    .collect();
                let _ = tx.send(Msg::Deleted(found));
            }
        });
    }

    fn job(&mut self, plan: prune::Plan) {
        let c = Canceller::new();
        self.canceller = Some(c.clone());
        let (tx, path) = (self.tx.clone(), self.path.clone());
        // A scrub's plan says so: it runs in place, compacting whatever else goes.
        let opts = match plan.scrub {
            Some(_) => crate::jobs::scrub::options(self.opts.backup.clone()),
            None => self.opts.clone(),
        };
        std::thread::spawn(move || {
            let tx2 = tx.clone();
            let mut on_event = move |ev| {
                let _ = tx2.send(Msg::Job(ev));
            };
            let r = prune::run(&path, &plan, &opts, &c, &mut on_event);
            let _ = tx.send(Msg::JobDone(Box::new(r)));
        });
    }
}

/// How often the counts of a live dir are taken again.
pub const LIVE_REFRESH: Duration = Duration::from_secs(10);

/// Turn one terminal event into app changes; returns effects to start.
pub fn handle(app: &mut App, ev: TermEvent) -> Vec<Effect> {
    match ev {
        TermEvent::Key(k) if k.kind == KeyEventKind::Press => {
            if app.records_searching() {
                return match k.code {
                    KeyCode::Enter => app.records_search_input(None, true, false),
                    KeyCode::Esc => app.records_search_input(None, false, true),
                    KeyCode::Backspace => app.records_search_input(None, false, false),
                    KeyCode::Char(c) => app.records_search_input(Some(c), false, false),
                    _ => Vec::new(),
                };
            }
            if app.rows_searching() {
                return match k.code {
                    KeyCode::Enter => app.rows_search_input(None, true, false),
                    KeyCode::Esc => app.rows_search_input(None, false, true),
                    KeyCode::Backspace => app.rows_search_input(None, false, false),
                    KeyCode::Char(c) => app.rows_search_input(Some(c), false, false),
                    _ => Vec::new(),
                };
            }
            if app.filter_editing {
                match k.code {
                    KeyCode::Enter => app.filter_input(None, true, false),
                    KeyCode::Esc => app.filter_input(None, false, true),
                    KeyCode::Backspace => app.filter_input(None, false, false),
                    KeyCode::Char(c) => app.filter_input(Some(c), false, false),
                    _ => {}
                }
                return Vec::new();
            }
            // The help overlay scrolls with the table's moving keys, whatever view is under it.
            let keys_of = if app.help.open { View::Main } else { app.view };
            match keymap::action_for(keys_of, k) {
                Some(a) => app.update(a),
                None if app.help.open => app.update(Action::Back),
                None => Vec::new(),
            }
        }
        TermEvent::Mouse(m) if app.view == View::Main => match m.kind {
            MouseEventKind::ScrollDown => app.update(Action::Down),
            MouseEventKind::ScrollUp => app.update(Action::Up),
            MouseEventKind::Down(_) => {
                // Rows start below the header (4 lines), any banner, the border and the
                // column titles.
                let banner = if app.blocker().is_some() { 2 } else { 0 };
                let first = 4 + banner + 2;
                if m.row >= first {
                    let i = app.offset + (m.row - first) as usize;
                    app.update(Action::Select(i))
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Keep the cursor on screen for a terminal of `height` lines.
pub fn fit(app: &mut App, height: u16) {
    let banner = if app.blocker().is_some() { 2 } else { 0 };
    let table = height.saturating_sub(4 + 2 + banner) as usize;
    let body = if app.detail { table * 55 / 100 } else { table };
    app.page = body.saturating_sub(3).max(1);
    if app.cursor < app.offset {
        app.offset = app.cursor;
    } else if app.cursor >= app.offset + app.page {
        app.offset = app.cursor + 1 - app.page;
    }
}

/// The loop: draw, wait for input (50 ms at most), drain worker messages, repeat.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events: &mut dyn Events,
) -> Result<()>
where
    B::Error: std::fmt::Display,
{
    let (tx, rx): (Sender<Msg>, Receiver<Msg>) = mpsc::channel();
    let mut workers = Workers::new(tx, &app.opts);
    workers.run(Effect::Scan);
    let mut frames = FrameLog::from_env();
    // While a process holds the dir, the counts are recounted now and then: each count is
    // short reads between Chroma's writes, so it lags behind a live WAL.
    let mut last_count = Instant::now();
    loop {
        if app.view == View::Main
            && app.wal().is_some()
            && app
                .snap
                .as_ref()
                .is_some_and(|s| !s.holders.list.is_empty())
            && last_count.elapsed() >= LIVE_REFRESH
        {
            last_count = Instant::now();
            workers.run(Effect::Scan);
        }
        let size = terminal
            .size()
            .map_err(|e| Error::failed(format!("terminal: {e}")))?;
        fit(app, size.height);
        terminal
            .draw(|f| ui::draw(f, app, Instant::now()))
            .map_err(|e| Error::failed(format!("terminal: {e}")))?;
        frames.drawn(app);
        if app.quit {
            return Ok(());
        }
        if let Some(ev) = events
            .next(app, Duration::from_millis(50))
            .map_err(|e| Error::failed(format!("terminal input: {e}")))?
        {
            for eff in handle(app, ev) {
                workers.run(eff);
            }
        }
        while let Ok(msg) = rx.try_recv() {
            for eff in app.on_msg(msg) {
                workers.run(eff);
            }
        }
    }
}

/// When `CHROMA_WAL_FRAME_LOG` names a file, the milliseconds from the start of the process
/// to the first frame, the first frame with the catalog and the first with the WAL counts
/// are appended to it (for the benchmark of the explorer's first frame).
struct FrameLog {
    file: Option<std::fs::File>,
    first: bool,
    catalog: bool,
    counts: bool,
}

/// When the process started, as early as `main` can note it.
pub static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl FrameLog {
    fn from_env() -> FrameLog {
        let file = std::env::var_os("CHROMA_WAL_FRAME_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        FrameLog {
            file,
            first: false,
            catalog: false,
            counts: false,
        }
    }

    fn drawn(&mut self, app: &App) {
        use std::io::Write;
        let Some(f) = self.file.as_mut() else { return };
        let ms = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0;
        let mut mark = |done: &mut bool, what: &str| {
            if !*done {
                *done = true;
                let _ = writeln!(f, "{what} {ms:.1}");
            }
        };
        mark(&mut self.first, "first_frame_ms");
        if app.snap.is_some() {
            mark(&mut self.catalog, "catalog_frame_ms");
        }
        if matches!(app.counts, app::Counts::Ready(_)) {
            mark(&mut self.counts, "counts_frame_ms");
        }
    }
}

/// Restores the terminal however the explorer ends.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), event::DisableMouseCapture);
        ratatui::restore();
    }
}

/// Open the explorer on a persist dir.
pub fn run(opts: Options) -> Result<()> {
    snapshot::check_persist_dir(&opts.path)?;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Error::failed(format!(
            "the explorer needs a terminal; run `chroma-wal info {}` instead",
            opts.path.display()
        )));
    }
    let mut terminal = ratatui::try_init()
        .map_err(|e| Error::failed(format!("cannot start the terminal UI: {e}")))?;
    let _guard = Guard;
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::EnableMouseCapture);
    let mut app = App::new(opts);
    run_loop(&mut terminal, &mut app, &mut TerminalEvents)
}

/// The bundled demo persist dir (written by chromadb 0.4.22), wherever it can be found.
pub fn demo_source() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("CHROMA_WAL_DEMO") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo"));
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("assets/demo"));
        }
    }
    candidates.push(PathBuf::from("assets/demo"));
    candidates
        .into_iter()
        .find(|p| p.join("chroma.sqlite3").is_file())
}

/// Copy the demo into a fresh temporary dir; the copy is removed when the guard drops.
pub fn demo_copy() -> Result<(tempfile::TempDir, PathBuf)> {
    let src = demo_source().ok_or_else(|| {
        Error::failed(
            "the demo persist dir (assets/demo) was not found; set CHROMA_WAL_DEMO to its path",
        )
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("chroma-wal-demo-")
        .tempdir()?;
    let dest = tmp.path().join("chroma");
    copy_tree(&src, &dest)?;
    Ok((tmp, dest))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}
