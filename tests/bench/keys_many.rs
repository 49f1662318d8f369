//! Time the explorer's keys on a dir of many collections: each action and the frame drawn
//! after it (ratatui's TestBackend, 120 × 40), as the event loop does, median of ROUNDS.
//! Marks need prunable rows: on a dir whose collections have none, mark-all marks nothing
//! (and says so), but still walks the rows.
//! Usage: cargo run --release --example keys_many -- DIR [ROUNDS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chroma_wal::chroma::{wal, Snapshot};
use chroma_wal::jobs::prune::BackupTarget;
use chroma_wal::tui::app::Msg;
use chroma_wal::tui::{self, Action, App, Options};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: keys_many DIR [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let dir = std::path::PathBuf::from(dir);
    let (snap, counts) = match Snapshot::open(&dir).and_then(|s| {
        let w = wal::scan(&s, &mut |_, _| true)?;
        Ok((s, w))
    }) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let n = snap.collections.len();
    let mut app = App::new(Options {
        path: dir.clone(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    });
    let mut term = match Terminal::new(TestBackend::new(120, 40)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut frame = |app: &mut App| {
        tui::fit(app, 40);
        let _ = term.draw(|f| tui::ui::draw(f, app, Instant::now()));
    };
    let t0 = Instant::now();
    app.on_msg(Msg::Scanned(Ok(Arc::new(snap))));
    frame(&mut app);
    let catalog = t0.elapsed();
    let t0 = Instant::now();
    app.on_msg(Msg::Counted(Ok(counts)));
    frame(&mut app);
    let counted = t0.elapsed();
    println!(
        "{n} collections: catalog in {catalog:.2?}, counts in {counted:.2?} (message and frame)"
    );
    type Step = (&'static str, fn(&mut App));
    let steps: &[Step] = &[
        ("down", |a| drop(a.update(Action::Down))),
        ("page down", |a| drop(a.update(Action::PageDown))),
        ("bottom", |a| drop(a.update(Action::Bottom))),
        ("top", |a| drop(a.update(Action::Top))),
        ("mark", |a| drop(a.update(Action::Mark))),
        ("mark all", |a| drop(a.update(Action::MarkAll))),
        ("sort", |a| drop(a.update(Action::Sort))),
        ("detail", |a| drop(a.update(Action::ToggleDetail))),
        ("filter: type a key", |a| {
            a.update(Action::FilterStart);
            a.filter_input(Some('9'), false, false);
        }),
        ("filter: clear", |a| a.filter_input(None, false, true)),
        ("frame alone", |_| {}),
    ];
    for (name, act) in steps {
        let mut times: Vec<Duration> = (0..rounds)
            .map(|_| {
                let t0 = Instant::now();
                act(&mut app);
                frame(&mut app);
                t0.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{name:20} median {:8.3} ms  (max {:.3} ms)",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
}
