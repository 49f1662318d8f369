//! The explorer's app on a fixture, and a render of it, for the tests that drive the TUI
//! without a terminal.

use std::path::PathBuf;
use std::time::Instant;

use chroma_wal::chroma::{wal, Snapshot};
use chroma_wal::jobs::prune::BackupTarget;
use std::time::Duration;

use chroma_wal::tui::app::Msg;
use chroma_wal::tui::{self, App, Effect, Options};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A child process briefly holds every descriptor of this (multi-threaded) test process
/// between fork and exec; a snapshot taken then would list it as a holder of the dir. Tests
/// that spawn and tests that read holders take turns.
pub static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn fork_guard() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A committed fixture's snapshot without the other test processes reading the same fixture
/// at that moment (nextest runs each test in a process of its own): they are holders of the
/// dir, and a render would show their pids.
pub fn open_quiet(path: &std::path::Path) -> Snapshot {
    let mut snap = Snapshot::open(path).unwrap();
    quiet(&mut snap);
    snap
}

pub fn quiet(snap: &mut Snapshot) {
    let ours = |c: &str| c.contains("/target/") && c.contains("/deps/");
    snap.holders.list.retain(|h| !ours(&h.command));
}

/// An app on a committed fixture, with its counts, shown under a fixed path.
pub fn app_on(name: &str) -> App {
    app_at(&PathBuf::from("tests/fixtures").join(name), name)
}

/// An app on any persist dir, shown as `tests/fixtures/<shown>`.
pub fn app_at(path: &std::path::Path, name: &str) -> App {
    let path = path.to_path_buf();
    let mut app = App::new(Options {
        path: path.clone(),
        backup: BackupTarget::Dir(PathBuf::from("/backups")),
        vacuum: true,
        in_place: false,
    });
    app.shown_path = format!("tests/fixtures/{name}");
    let guard = fork_guard();
    let snap = open_quiet(&path);
    drop(guard);
    let w = wal::scan(&snap, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Scanned(Ok(std::sync::Arc::new(snap))));
    app.on_msg(Msg::Counted(Ok(w)));
    app
}

pub fn render(app: &App, w: u16, h: u16, now: Instant) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| tui::ui::draw(f, app, now)).unwrap();
    t.backend().to_string()
}

/// Feed the rows view's requests to the real worker code until none is left.
pub fn serve_rows(app: &mut App, dir: &std::path::Path, mut effects: Vec<Effect>) {
    while let Some(e) = effects.pop() {
        if let Effect::Rows(req) = e {
            let answer = tui::rows::answer(dir, req.ask);
            effects.extend(app.on_msg(Msg::Rows(tui::rows::RowsReply {
                generation: req.generation,
                answer,
            })));
        }
    }
}

/// Drive the records view through its real worker: start it, answer every ask the view
/// makes, until the view is idle with its vectors found.
pub struct RecordsHarness {
    asks: Option<std::sync::mpsc::Sender<chroma_wal::tui::records::RecordsAsk>>,
    tx: std::sync::mpsc::Sender<Msg>,
    rx: std::sync::mpsc::Receiver<Msg>,
}

impl RecordsHarness {
    pub fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        RecordsHarness { asks: None, tx, rx }
    }

    pub fn settle(&mut self, app: &mut App, mut pending: Vec<Effect>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for e in pending.drain(..) {
                match e {
                    Effect::OpenRecords {
                        generation,
                        snap,
                        collection,
                    } => {
                        let (a_tx, a_rx) = std::sync::mpsc::channel();
                        self.asks = Some(a_tx);
                        let tx = self.tx.clone();
                        std::thread::spawn(move || {
                            chroma_wal::tui::records::worker(
                                generation,
                                snap.0,
                                collection,
                                a_rx,
                                tx,
                                Default::default(),
                            )
                        });
                    }
                    Effect::Records { ask, .. } => {
                        self.asks.as_ref().unwrap().send(*ask).unwrap();
                    }
                    _ => {}
                }
            }
            let v = app.records.as_ref().unwrap();
            if v.vectors_ready && v.loading.is_none() {
                return;
            }
            assert!(Instant::now() < deadline, "records view never settled");
            if let Ok(m) = self.rx.recv_timeout(Duration::from_millis(200)) {
                pending = app.on_msg(m);
            }
        }
    }
}

/// The sizes every view's text checks run at: a narrow terminal and a roomy one.
pub const SIZES: [(u16, u16); 2] = [(120, 36), (80, 24)];

/// The screen's words in reading order: borders dropped, lines joined, spaces folded.
pub fn words(screen: &str) -> String {
    let text: String = screen
        .lines()
        .map(|l| {
            l.trim_matches('"')
                .chars()
                .map(|c| {
                    if "│┌┐└┘─├┤".contains(c) {
                        ' '
                    } else {
                        c
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every phrase is on the screen at each of [`SIZES`].
pub fn check(app: &App, what: &str, phrases: &[&str]) {
    for (w, h) in SIZES {
        let screen = render(app, w, h, Instant::now());
        let said = words(&screen);
        for p in phrases {
            assert!(said.contains(p), "{what} at {w}x{h}: no {p:?} in\n{screen}");
        }
    }
}
