//! The explorer without a real terminal: state updates, TestBackend render snapshots of every
//! view, and a journey of scripted keys through the real event loop on a fixture copy.

mod common;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chroma_wal::chroma::{wal, Snapshot};
use chroma_wal::jobs::preflight::SpaceCheck;
use chroma_wal::jobs::prune::job::{Report, Step, StepTime, TopicResult};
use chroma_wal::jobs::prune::BackupTarget;
use chroma_wal::tui::app::{Counts, Msg};
use chroma_wal::tui::{self, Action, App, Effect, Events, Options, View};
use common::explorer::*;
use common::*;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;

/// An app on `path` with nothing read yet and no backup.
fn bare_app(path: &std::path::Path) -> App {
    App::new(Options {
        path: path.to_path_buf(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    })
}

fn fixed_space() -> SpaceCheck {
    SpaceCheck {
        needs: Vec::new(),
        filesystems: vec![(PathBuf::from("/data"), 4_000_000, 90_000_000_000)],
        ok: true,
    }
}

fn names(app: &App) -> Vec<String> {
    app.rows().iter().map(|r| app.name_of(r)).collect()
}

#[test]
fn sort_filter_and_cursor() {
    let mut app = app_on("v0_4_22");
    assert_eq!(
        names(&app),
        [
            "big",
            "cosine-docs",
            "inner-product",
            "papers",
            "small",
            "big",
            "empty"
        ]
    );
    app.update(Action::Sort);
    assert_eq!(
        names(&app),
        [
            "big",
            "cosine-docs",
            "inner-product",
            "papers",
            "big",
            "empty",
            "small"
        ]
    );
    app.update(Action::Sort);
    assert_eq!(
        names(&app),
        [
            "big",
            "big",
            "cosine-docs",
            "empty",
            "inner-product",
            "papers",
            "small"
        ]
    );
    app.update(Action::Bottom);
    assert_eq!(app.cursor, 6);
    app.update(Action::Down);
    assert_eq!(app.cursor, 6, "cursor stays on the last row");
    app.update(Action::FilterStart);
    for c in "pap".chars() {
        app.filter_input(Some(c), false, false);
    }
    app.filter_input(None, true, false);
    assert!(!app.filter_editing);
    assert_eq!(names(&app), ["papers"]);
    assert_eq!(app.cursor, 0);
    app.update(Action::Back);
    assert_eq!(app.rows().len(), 7, "Esc clears the filter");
}

#[test]
fn marking_only_takes_prunable_rows() {
    let mut app = app_on("v0_4_22");
    app.update(Action::Sort);
    // By name: big, big, cosine-docs, empty, inner-product, papers, small.
    app.update(Action::Sort);
    app.update(Action::Select(3)); // empty
    app.update(Action::Mark);
    assert!(app.marked.is_empty());
    assert!(app.message.as_deref().unwrap().contains("nothing prunable"));
    app.update(Action::MarkAll);
    let (rows, bytes) = app.marked_totals();
    let exp = expected("v0_4_22");
    let want: u64 = exp["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["expected_prunable_rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, want);
    assert!(bytes > 0);
    // big, cosine-docs, inner-product and papers (0.4.22 never purges).
    assert_eq!(app.marked.len(), 4);
    // Space on a marked row unmarks it.
    app.update(Action::Select(5)); // papers
    app.update(Action::Mark);
    assert_eq!(app.marked.len(), 3);
}

#[test]
fn marking_waits_for_the_counts() {
    let path = PathBuf::from("tests/fixtures/v0_4_22");
    let mut app = bare_app(&path);
    app.on_msg(Msg::Scanned(Ok(std::sync::Arc::new(open_quiet(&path)))));
    assert!(matches!(app.counts, Counts::Counting { .. }));
    app.update(Action::Mark);
    assert!(app.marked.is_empty());
    assert!(app.message.as_deref().unwrap().contains("counting"));
}

#[test]
fn confirm_then_run_then_back_rescans() {
    let mut app = app_on("v1_5_9");
    app.update(Action::Prune);
    assert_eq!(app.view, View::Main, "nothing marked: no dialog");
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    assert_eq!(app.view, View::Confirm, "{:?}", app.message);
    assert_eq!(app.update(Action::Back), Vec::<Effect>::new());
    assert_eq!(app.view, View::Main);
    app.update(Action::Prune);
    let eff = app.update(Action::Yes);
    assert_eq!(app.view, View::Running);
    assert!(matches!(&eff[..], [Effect::RunJob(p)] if p.rows() > 0));
    // Esc asks first; n keeps going; Esc then y cancels.
    assert!(app.update(Action::Back).is_empty());
    assert!(app.job.as_ref().unwrap().confirm_cancel);
    app.update(Action::No);
    assert!(!app.job.as_ref().unwrap().confirm_cancel);
    app.update(Action::Back);
    assert_eq!(app.update(Action::Yes), vec![Effect::CancelJob]);
}

#[test]
fn a_holder_disables_pruning_with_the_reason() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let f = std::fs::File::open(dir.join("chroma.sqlite3")).unwrap();
    let guard = fork_guard();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .stdin(f)
        .spawn()
        .unwrap();
    drop(guard);
    let mut app = App::new(Options {
        path: dir.clone(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    });
    let snap = Snapshot::open(&dir).unwrap();
    let w = wal::scan(&snap, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Scanned(Ok(std::sync::Arc::new(snap))));
    app.on_msg(Msg::Counted(Ok(w)));
    child.kill().ok();
    child.wait().ok();
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    assert_eq!(app.view, View::Main);
    assert!(app.message.as_deref().unwrap().contains("pruning disabled"));
    let screen = render(&app, 120, 30, Instant::now());
    assert!(screen.contains("PRUNING DISABLED"), "{screen}");
    assert!(screen.contains(&child.id().to_string()), "{screen}");
}

fn snap(name: &str, screen: String) {
    insta::assert_snapshot!(name, screen);
}

#[test]
fn render_main_detail_filter_help_and_tiny() {
    let mut app = app_on("v0_4_22");
    let now = Instant::now();
    snap("main_100x24", render(&app, 100, 24, now));
    snap("main_160x40", render(&app, 160, 40, now));
    snap("tiny_40x10", render(&app, 40, 10, now));
    app.update(Action::MarkAll);
    app.update(Action::ToggleDetail);
    snap("detail_marked_120x32", render(&app, 120, 32, now));
    app.update(Action::FilterStart);
    app.filter_input(Some('s'), false, false);
    app.filter_input(Some('m'), false, false);
    snap("filter_typing_100x20", render(&app, 100, 20, now));
    app.filter_input(None, true, false);
    app.update(Action::Help);
    snap("help_120x36", render(&app, 120, 36, now));
    // While counting, the table comes at once with a counting state.
    let path = PathBuf::from("tests/fixtures/v0_4_22");
    let mut counting = bare_app(&path);
    counting.shown_path = "tests/fixtures/v0_4_22".into();
    counting.on_msg(Msg::Scanned(Ok(std::sync::Arc::new(open_quiet(&path)))));
    counting.on_msg(Msg::Counting {
        done: 250,
        total: 1000,
    });
    let s = render(&counting, 100, 20, now);
    assert!(s.contains("counting… 25%"), "{s}");
    snap("counting_100x20", s);
}

#[test]
fn render_health_damage_and_deleted_marks() {
    let now = Instant::now();
    // A cut pickle: the collection is damaged, red, and says how to recover.
    let (_t, dir) = fixture_copy("v0_4_22");
    let snap0 = Snapshot::open(&dir).unwrap();
    let big = snap0.collections.iter().find(|c| c.name == "big").unwrap();
    let seg = big.segments.iter().find(|s| s.scope == "VECTOR").unwrap();
    let pickle = dir.join(&seg.id).join("index_metadata.pickle");
    let len = std::fs::metadata(&pickle).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pickle)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let mut app = app_at(&dir, "v0_4_22");
    app.update(Action::ToggleDetail);
    let screen = render(&app, 120, 32, now);
    assert!(screen.contains("DAMAGED"), "{screen}");
    assert!(screen.contains("Or by hand"), "{screen}");
    assert!(
        screen.contains("Repair: what chroma-wal compact --repair"),
        "{screen}"
    );
    snap("damaged_detail_120x32", screen);
    // Once the indexes are read, what the repair does now is said first.
    let previews =
        chroma_wal::jobs::compact::preview::previews(&Snapshot::open(&dir).unwrap()).unwrap();
    assert_eq!(previews.len(), 1);
    app.on_msg(chroma_wal::tui::app::Msg::Repairs(previews));
    let screen = render(&app, 120, 32, now);
    assert!(
        screen.contains("Repair: compact --repair cannot rebuild it"),
        "{screen}"
    );
    // Deleted marks arrive after the counts and show in the segments pane.
    let mut app = app_on("deletions_v1_5_9");
    app.update(Action::ToggleDetail);
    assert!(!render(&app, 120, 32, now).contains("deleted"));
    let mut snap1 = open_quiet(&PathBuf::from("tests/fixtures/deletions_v1_5_9"));
    chroma_wal::chroma::deep::count_deleted(&mut snap1, &mut |_, _| true).unwrap();
    let found = snap1
        .collections
        .iter()
        .flat_map(|c| c.segments.iter())
        .filter_map(|s| Some((s.id.clone(), s.index.as_ref()?.deleted?)))
        .collect();
    app.on_msg(Msg::Deleted(found));
    let screen = render(&app, 120, 32, now);
    assert!(screen.contains("300 / 512 · 60 deleted"), "{screen}");
    snap("deleted_marks_120x32", screen);
}

#[test]
fn render_confirm_running_and_result() {
    let mut app = app_on("v0_4_22");
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    app.confirm_space = Some(fixed_space());
    let now = Instant::now();
    snap("confirm_120x32", render(&app, 120, 32, now));

    app.update(Action::Yes);
    let job = app.job.as_mut().unwrap();
    job.started = now - Duration::from_secs(7);
    use chroma_wal::jobs::prune::{Event, Unit};
    for ev in [
        Event::Started {
            step: Step::Preflight,
            total: Some(4),
            unit: Unit::Checks,
        },
        Event::Finished {
            step: Step::Preflight,
            seconds: 0.02,
            detail: None,
        },
        Event::Started {
            step: Step::Backup,
            total: Some(1_400_000),
            unit: Unit::Bytes,
        },
        Event::Finished {
            step: Step::Backup,
            seconds: 1.5,
            detail: None,
        },
        Event::Started {
            step: Step::Delete,
            total: Some(498),
            unit: Unit::Rows,
        },
        Event::Progress {
            step: Step::Delete,
            done: 249,
            total: Some(498),
        },
    ] {
        app.on_msg(Msg::Job(ev));
    }
    let job = app.job.as_mut().unwrap();
    job.steps[2].started = Some(now - Duration::from_millis(2500));
    snap("running_120x30", render(&app, 120, 30, now));
    app.update(Action::Back);
    snap("running_cancel_ask_120x30", render(&app, 120, 30, now));

    let report = Report {
        persist_dir: PathBuf::from("tests/fixtures/v0_4_22"),
        rows_deleted: 498,
        topics: vec![TopicResult {
            topic: "persistent://default/default/x".into(),
            collection: Some(("x".into(), "big".into())),
            bound: Some(300),
            rows_deleted: 299,
        }],
        sqlite_bytes_before: 1_400_000,
        sqlite_bytes_after: 900_000,
        dir_bytes_before: 1_500_000,
        dir_bytes_after: 1_000_000,
        backup: Some(PathBuf::from(
            "/backups/v0_4_22-2026-11-24T000000Z/chroma.sqlite3",
        )),
        steps: Step::ALL
            .iter()
            .map(|&step| StepTime {
                step,
                seconds: 0.5,
                skipped: false,
            })
            .collect(),
        indexes: Vec::new(),
        leftovers_removed: None,
        notes: vec![
            "the backup is the original file itself (a hard link), so it took no copy".into(),
        ],
        method: "copy",
        dirs_removed: vec![chroma_wal::jobs::folders::RemovedDir {
            name: "8f0c7e36-2d5c-4b8e-9d8e-0c7c1a2b3c4d".into(),
            bytes: 2_086_912,
            moved_to: Some(PathBuf::from(
                "/backups/v0_4_22-2026-11-24T000000Z/dirs/8f0c7e36-2d5c-4b8e-9d8e-0c7c1a2b3c4d",
            )),
        }],
        fs_free_before: Some(10_000_000_000),
        fs_free_after: Some(9_999_100_000),
        backup_dir: Some(PathBuf::from("/backups/v0_4_22-2026-11-24T000000Z")),
        backup_bytes: Some(3_486_912),
    };
    app.on_msg(Msg::JobDone(Box::new(Ok(report))));
    assert_eq!(app.view, View::Result);
    snap("result_120x30", render(&app, 120, 30, now));
}

/// A key to send once the app satisfies a condition.
type ScriptStep = (fn(&App) -> bool, Event);

/// Keys to send, each once the app satisfies a condition.
struct Script {
    steps: VecDeque<ScriptStep>,
    deadline: Instant,
}

fn key(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new_with_kind(
        c,
        KeyModifiers::NONE,
        KeyEventKind::Press,
    ))
}

impl Events for Script {
    fn next(&mut self, app: &App, timeout: Duration) -> std::io::Result<Option<Event>> {
        assert!(
            Instant::now() < self.deadline,
            "journey timed out in view {:?}",
            app.view
        );
        match self.steps.front() {
            Some((ready, _)) if ready(app) => Ok(self.steps.pop_front().map(|(_, e)| e)),
            _ => {
                std::thread::sleep(timeout.min(Duration::from_millis(10)));
                Ok(None)
            }
        }
    }
}

#[test]
fn journey_filter_mark_prune_then_check_the_database() {
    let (_t, dir) = fixture_copy("v0_5_5");
    let papers = expected_collection("v0_5_5", "papers");
    let topic = papers["wal_topics"][0].as_str().unwrap().to_string();
    let before = topic_counts(&dir);
    let mut app = App::new(Options {
        path: dir.clone(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    });
    let counted: fn(&App) -> bool = |a| a.wal().is_some();
    let always: fn(&App) -> bool = |_| true;
    let confirm: fn(&App) -> bool = |a| a.view == View::Confirm;
    let result: fn(&App) -> bool = |a| a.view == View::Result;
    let rescanned: fn(&App) -> bool = |a| a.view == View::Main && a.wal().is_some();
    let mut steps: VecDeque<ScriptStep> = VecDeque::new();
    steps.push_back((counted, key(KeyCode::Char('/'))));
    for c in "papers".chars() {
        steps.push_back((always, key(KeyCode::Char(c))));
    }
    steps.push_back((always, key(KeyCode::Enter)));
    steps.push_back((always, key(KeyCode::Char(' '))));
    steps.push_back((always, key(KeyCode::Char('p'))));
    steps.push_back((confirm, key(KeyCode::Char('y'))));
    steps.push_back((result, key(KeyCode::Enter)));
    steps.push_back((rescanned, key(KeyCode::Char('q'))));
    let mut script = Script {
        steps,
        deadline: Instant::now() + Duration::from_secs(60),
    };
    let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
    tui::run_loop(&mut term, &mut app, &mut script).unwrap();
    assert!(script.steps.is_empty());
    let after = topic_counts(&dir);
    let pruned = papers["expected_prunable_rows"].as_i64().unwrap();
    assert!(pruned > 0);
    for (t, v) in &before {
        if *t == topic {
            assert_eq!(
                after[t].0,
                v.0 - pruned,
                "papers lost exactly its prunable rows"
            );
            assert!(after[t].1 >= papers["expected_prune_bound"].as_i64().unwrap());
        } else {
            assert_eq!(after[t], *v, "{t} must be untouched");
        }
    }
    // After Enter on the result, the table was rescanned: papers has nothing prunable left.
    let i = app
        .rows()
        .iter()
        .position(|r| app.name_of(r) == "papers")
        .unwrap();
    assert_eq!(app.numbers(&app.rows()[i]).unwrap().1, 0);
}

#[test]
fn render_rows_view_and_one_row() {
    let mut app = app_on("v0_4_22");
    let dir = PathBuf::from("tests/fixtures/v0_4_22");
    let now = Instant::now();
    // The first row is big (420 rows, bound 300): newest first, held above the border.
    let eff = app.update(Action::OpenRows);
    assert_eq!(app.view, View::Rows);
    snap("rows_loading_120x30", render(&app, 120, 30, now));
    serve_rows(&mut app, &dir, eff);
    let v = app.wal_rows.as_ref().unwrap();
    assert_eq!(v.rows.front().unwrap().seq_id, 420);
    assert_eq!(v.view.as_ref().unwrap().bound, Some(300));
    let screen = render(&app, 120, 30, now);
    assert!(screen.contains("held"), "{screen}");
    snap("rows_newest_120x30", screen);
    // Down to the border between held and prunable.
    for _ in 0..118 {
        let e = app.update(Action::Down);
        serve_rows(&mut app, &dir, e);
    }
    let screen = render(&app, 120, 30, now);
    assert!(screen.contains("below: seq_id < 300"), "{screen}");
    snap("rows_border_120x30", screen);
    let e = app.update(Action::ToggleDetail);
    serve_rows(&mut app, &dir, e);
    let screen = render(&app, 120, 30, now);
    assert!(screen.contains("dimensions"), "{screen}");
    snap("rows_one_row_120x30", screen);
    // Esc closes the row, Esc again returns to the table with its selection.
    let cursor = app.cursor;
    app.update(Action::Back);
    assert_eq!(app.view, View::Rows);
    app.update(Action::Back);
    assert_eq!(app.view, View::Main);
    assert_eq!(app.cursor, cursor);
}

#[test]
fn rows_view_memory_stays_bounded_to_the_oldest_row() {
    // A topic of 20,000 rows: scrolling to the oldest holds at most the window.
    let (_t, dir) = fixture_copy("v1_5_9");
    let topic;
    let oldest: i64;
    {
        let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
        let (id, t): (String, String) = c
            .query_row(
                "SELECT c.id, q.topic FROM collections c JOIN embeddings_queue q ON q.topic LIKE '%' || c.id \
                 WHERE c.name = 'papers' LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let _ = id;
        oldest = c
            .query_row(
                "SELECT MIN(seq_id) FROM embeddings_queue WHERE topic = ?1",
                [&t],
                |r| r.get(0),
            )
            .unwrap();
        topic = t;
        let top: i64 = c
            .query_row("SELECT MAX(seq_id) FROM embeddings_queue", [], |r| r.get(0))
            .unwrap();
        c.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO embeddings_queue (seq_id, operation, topic, id) SELECT ?1 + i, 0, ?2, 'bulk' || i FROM n",
            rusqlite::params![top, topic],
        )
        .unwrap();
    }
    let mut app = app_at(&dir, "v1_5_9");
    let i = app
        .rows()
        .iter()
        .position(|r| app.name_of(r) == "papers")
        .unwrap();
    app.update(Action::Select(i));
    let e = app.update(Action::OpenRows);
    serve_rows(&mut app, &dir, e);
    let mut max_held = 0;
    let mut steps = 0;
    while !app.wal_rows.as_ref().unwrap().at_oldest
        || app.wal_rows.as_ref().unwrap().cursor + 1 < app.wal_rows.as_ref().unwrap().rows.len()
    {
        let e = app.update(Action::PageDown);
        serve_rows(&mut app, &dir, e);
        max_held = max_held.max(app.wal_rows.as_ref().unwrap().rows.len());
        steps += 1;
        assert!(steps < 10_000, "never reached the oldest row");
    }
    let v = app.wal_rows.as_ref().unwrap();
    assert_eq!(
        v.selected().unwrap().seq_id,
        oldest,
        "the oldest row of the topic"
    );
    assert!(max_held <= tui::rows::WINDOW, "held {max_held} rows");
    // And back up to the newest, paging in the other direction.
    let e = app.update(Action::Top);
    serve_rows(&mut app, &dir, e);
    let v = app.wal_rows.as_ref().unwrap();
    assert!(v.at_newest);
    assert_eq!(v.selected().unwrap().id, "bulk20000");
}

#[test]
fn journey_rows_scroll_search_enter_esc() {
    let (_t, dir) = fixture_copy("v0_4_22");
    let mut app = App::new(Options {
        path: dir.clone(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    });
    let counted: fn(&App) -> bool = |a| a.wal().is_some();
    let always: fn(&App) -> bool = |_| true;
    let idle: fn(&App) -> bool = |a| {
        a.wal_rows
            .as_ref()
            .is_some_and(|v| v.loading.is_none() && v.error.is_none())
    };
    let found: fn(&App) -> bool = |a| {
        a.wal_rows
            .as_ref()
            .is_some_and(|v| v.loading.is_none() && !v.matches.is_empty())
    };
    let main: fn(&App) -> bool = |a| a.view == View::Main;
    let mut steps: VecDeque<ScriptStep> = VecDeque::new();
    steps.push_back((counted, key(KeyCode::Char('w'))));
    for _ in 0..5 {
        steps.push_back((idle, key(KeyCode::PageDown)));
    }
    steps.push_back((idle, key(KeyCode::Char('/'))));
    for c in "id7".chars() {
        steps.push_back((always, key(KeyCode::Char(c))));
    }
    steps.push_back((always, key(KeyCode::Enter)));
    steps.push_back((found, key(KeyCode::Char('n'))));
    steps.push_back((idle, key(KeyCode::Enter)));
    steps.push_back((always, key(KeyCode::Esc)));
    steps.push_back((always, key(KeyCode::Esc)));
    steps.push_back((main, key(KeyCode::Char('q'))));
    let mut script = Script {
        steps,
        deadline: Instant::now() + Duration::from_secs(60),
    };
    let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
    tui::run_loop(&mut term, &mut app, &mut script).unwrap();
    assert!(script.steps.is_empty());
    assert!(app.wal_rows.is_none());
    assert_eq!(app.view, View::Main);
}

#[test]
fn rows_search_by_id_lands_on_each_match() {
    let mut app = app_on("v0_4_22");
    let dir = PathBuf::from("tests/fixtures/v0_4_22");
    let e = app.update(Action::OpenRows);
    serve_rows(&mut app, &dir, e);
    app.update(Action::FilterStart);
    for c in "id7".chars() {
        app.rows_search_input(Some(c), false, false);
    }
    let e = app.rows_search_input(None, true, false);
    serve_rows(&mut app, &dir, e);
    // "id7" was added (seq 8) and updated (seq 308): newest match first.
    let v = app.wal_rows.as_ref().unwrap();
    assert_eq!(v.matches, vec![308, 8]);
    assert_eq!(
        v.selected().map(|r| (r.seq_id, r.id.as_str())),
        Some((308, "id7"))
    );
    let e = app.update(Action::NextMatch);
    serve_rows(&mut app, &dir, e);
    let v = app.wal_rows.as_ref().unwrap();
    assert_eq!(
        v.selected().map(|r| (r.seq_id, r.id.as_str())),
        Some((8, "id7"))
    );
    assert_eq!(v.message.as_deref(), Some("match 2 of 2"));
    let e = app.update(Action::PrevMatch);
    serve_rows(&mut app, &dir, e);
    assert_eq!(
        app.wal_rows.as_ref().unwrap().selected().unwrap().seq_id,
        308
    );
}

#[test]
fn orphan_folders_are_rows_that_can_be_marked_and_the_space_view_maps_the_dir() {
    let mut app = app_on("v1_5_9");
    let now = Instant::now();
    let i = app
        .rows()
        .iter()
        .position(|r| matches!(r, tui::app::RowRef::Folder(_)))
        .expect("the 1.5.9 fixture's orphan folder is a row");
    app.update(Action::Select(i));
    app.update(Action::Mark);
    let plan = app.plan().expect("a plan with the folder");
    assert_eq!(plan.dirs.len(), 1);
    assert_eq!(plan.rows(), 0);
    let screen = render(&app, 140, 30, now);
    assert!(
        screen.contains("(orphan folder)") && screen.contains("[x]"),
        "{screen}"
    );
    // The confirm dialog lists it and says what the disk gains.
    app.update(Action::Prune);
    assert_eq!(app.view, View::Confirm, "{:?}", app.message);
    let screen = render(&app, 140, 34, now);
    assert!(
        screen.contains("orphan folder") && screen.contains("disk"),
        "{screen}"
    );
    app.update(Action::Back);
    // m: the space map, filled in by the worker.
    let e = app.update(Action::OpenSpace);
    assert_eq!(e, vec![Effect::MapSpace]);
    assert!(render(&app, 120, 36, now).contains("mapping chroma.sqlite3"));
    let snap = open_quiet(&PathBuf::from("tests/fixtures/v1_5_9"));
    let map = chroma_wal::chroma::space::map(&snap, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Space(Ok(map)));
    let screen = render(&app, 120, 36, now);
    assert!(
        screen.contains("embeddings_queue") && screen.contains("orphan folders"),
        "{screen}"
    );
    snap_space(render(&app, 120, 36, now));
    app.update(Action::Back);
    assert_eq!(app.view, View::Main);
}

fn snap_space(screen: String) {
    snap("space_120x36", screen);
}

#[test]
fn the_catalog_shows_before_its_folders_and_rows_wait_for_them() {
    let path = PathBuf::from("tests/fixtures/v0_4_22");
    let mut app = bare_app(&path);
    app.shown_path = "tests/fixtures/v0_4_22".into();
    let guard = fork_guard();
    let mut catalog = Snapshot::open_catalog(&path).unwrap();
    drop(guard);
    quiet(&mut catalog);
    app.on_msg(Msg::Scanned(Ok(std::sync::Arc::new(catalog))));
    app.update(Action::ToggleDetail);
    let now = Instant::now();
    let s = render(&app, 120, 32, now);
    assert!(s.contains("checking its folders"), "{s}");
    assert!(!s.contains("DISABLED"), "{s}");
    assert!(s.contains("reading the segment folders"), "{s}");
    assert!(s.contains("dir …"), "{s}");
    snap("catalog_before_folders_120x32", s);
    // Rows asked for now are judged with the folders read: big's bound is 300, not unknown.
    let eff = app.update(Action::OpenRows);
    serve_rows(&mut app, &path, eff);
    let v = app.wal_rows.as_ref().unwrap();
    assert_eq!(v.view.as_ref().unwrap().bound, Some(300));
}

#[test]
fn the_status_is_not_cut_to_repeat_the_default_tenant() {
    // The demo has one tenant and database: no column repeats them, and at 120 columns
    // every status is whole.
    let app = app_at(&PathBuf::from("assets/demo"), "demo");
    let screen = render(&app, 120, 32, Instant::now());
    assert!(!screen.contains("default_tenant"), "{screen}");
    assert!(
        screen.contains("vector index not yet persisted"),
        "{screen}"
    );
    // Where there are several, the defaults read as one word and the others in full.
    let app = app_on("v0_4_22");
    let screen = render(&app, 120, 32, Instant::now());
    assert!(
        screen.contains("(default)") && screen.contains("acme/research"),
        "{screen}"
    );
    assert!(
        screen.contains("vector index not yet persisted"),
        "{screen}"
    );
}

#[test]
fn the_help_shows_this_views_keys_first_and_scrolls_to_its_end() {
    let now = Instant::now();
    let mut app = app_on("v0_4_22");
    app.update(Action::Help);
    // At 80 x 24 the main view's own keys come first, "this help" and "quit" among them.
    let first = render(&app, 80, 24, now);
    assert!(first.contains("Keys in the collections table"), "{first}");
    assert!(
        first.contains("this help") && first.contains("quit"),
        "{first}"
    );
    // No description runs over the box: every line of it ends at its right border.
    for l in first.lines() {
        let l = l.trim_matches('"');
        assert!(l.ends_with(['│', '┐', '┘']), "{l}");
    }
    // Scrolling reaches the last line; then any key but q closes the overlay.
    app.update(Action::Bottom);
    let end = render(&app, 80, 24, now);
    assert!(end.contains("any other key closes it"), "{end}");
    assert!(end.contains("In the result"), "{end}");
    app.update(Action::Top);
    assert!(render(&app, 80, 24, now).contains("Keys in the collections table"));
    app.update(Action::Down);
    assert!(app.help.open, "scrolling closed the help");
    app.update(Action::MarkAll);
    assert!(!app.help.open);
    assert!(
        app.marked.is_empty(),
        "the key that closed the help also acted"
    );
    app.update(Action::Help);
    app.update(Action::Quit);
    assert!(app.quit);
}

/// The index truth arrives after the counts: the header says what was found, the collection's
/// row says how many records no search returns, the segments pane names them, and the
/// confirm dialog says which collections the prune leaves without a lossless rebuild.
#[test]
fn index_truth_in_the_row_the_pane_the_header_and_the_confirm() {
    let mut app = app_on("rebuilt_v0_6_3");
    let before = render(&app, 160, 40, Instant::now());
    assert!(!before.contains("unreachable"), "{before}");
    app.on_msg(Msg::TruthProgress { done: 5, total: 10 });
    let reading = render(&app, 160, 40, Instant::now());
    assert!(reading.contains("indexes: reading… 50%"), "{reading}");
    let snap = app.snap.as_ref().unwrap().clone();
    let found = chroma_wal::chroma::truth::read(&snap, &|_| true, true, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Truth(Ok(found)));
    let screen = render(&app, 160, 40, Instant::now());
    assert!(
        screen.contains("289 records unreachable by search in 1 collection"),
        "{screen}"
    );
    assert!(
        screen.contains("289 records unreachable by search ·"),
        "{screen}"
    );
    assert!(
        screen.contains("a rebuild from the WAL loses 100"),
        "{screen}"
    );
    let at = names(&app).iter().position(|n| n == "rebuilt").unwrap();
    app.update(Action::Select(at));
    app.update(Action::ToggleDetail);
    let pane = render(&app, 160, 50, Instant::now());
    assert!(pane.contains("289 unreachable (r010, r011"), "{pane}");
    assert!(pane.contains("rebuild"), "{pane}");
    // Pruning control (its rebuild loses 100 today) is not "lossless made lossy"; v1_5_9's is.
    let mut app = app_on("v1_5_9");
    let snap = app.snap.as_ref().unwrap().clone();
    let found = chroma_wal::chroma::truth::read(&snap, &|_| true, true, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Truth(Ok(found)));
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    app.confirm_space = Some(fixed_space());
    let confirm = render(&app, 150, 40, Instant::now());
    // Said once, plainly: what every WAL prune does; BEWARE is kept for the unusual.
    assert!(!confirm.contains("BEWARE"), "{confirm}");
    assert_eq!(confirm.matches("after the prune").count(), 1, "{confirm}");
    assert!(confirm.contains("loses nothing today"), "{confirm}");
    // A wrapped line stays under its text, not at the dialog's edge.
    assert!(
        confirm.contains("│                   letting Chroma rebuild it"),
        "{confirm}"
    );
    assert!(!confirm.contains("still reading the indexes"), "{confirm}");
}

/// The records view: the first page at once, then where each vector is; a record no query
/// returns is marked; Enter shows one whole with its vector; search by id and by text.
#[test]
fn records_view_marks_unreachable_shows_one_whole_and_searches() {
    let mut app = app_on("rebuilt_v1_5_9");
    let at = names(&app).iter().position(|n| n == "rebuilt").unwrap();
    app.update(Action::Select(at));
    let first = app.update(Action::OpenRecords);
    assert_eq!(app.view, View::Records);
    let mut h = RecordsHarness::new();
    h.settle(&mut app, first);
    let v = app.records.as_ref().unwrap();
    assert_eq!(v.count, Some(351));
    let screen = render(&app, 150, 30, Instant::now());
    assert!(
        screen.contains("records of rebuilt · 351 records"),
        "{screen}"
    );
    assert!(screen.contains("unreachable"), "{screen}");
    // Enter on the first record (r010: its vector is nowhere).
    let e = app.update(Action::ToggleDetail);
    h.settle(&mut app, e);
    let whole = render(&app, 150, 30, Instant::now());
    assert!(
        whole.contains("none: no index holds this record's vector"),
        "{whole}"
    );
    app.update(Action::Back);
    // Search by id: only the matching records.
    app.update(Action::FilterStart);
    let mut e = Vec::new();
    for c in "r35".chars() {
        e.extend(app.records_search_input(Some(c), false, false));
    }
    e.extend(app.records_search_input(None, true, false));
    h.settle(&mut app, e);
    let v = app.records.as_ref().unwrap();
    assert!(!v.records.is_empty());
    assert!(
        v.records.iter().all(|r| r.id.contains("r35")),
        "{:?}",
        v.records
    );
    // A record of the WAL tail: Enter shows its vector and where it comes from.
    let i = v.records.iter().position(|r| r.source.is_some()).unwrap();
    app.records.as_mut().unwrap().cursor = i;
    let e = app.update(Action::ToggleDetail);
    h.settle(&mut app, e);
    let whole = render(&app, 150, 30, Instant::now());
    assert!(whole.contains("8 dimensions, first values"), "{whole}");
    // Esc closes the record, then clears the search, then goes back to the table.
    app.update(Action::Back);
    let e = app.update(Action::Back);
    assert!(matches!(e.as_slice(), [Effect::Records { .. }]));
    app.records.as_mut().unwrap().loading = None;
    let e = app.update(Action::Back);
    assert_eq!(e, vec![Effect::CloseRecords]);
    assert_eq!(app.view, View::Main);
}

/// An index is the third kind of thing to mark: `i` on a collection whose index holds ghosts
/// marks it (only once the indexes are read), the confirm dialog says what its rebuild does,
/// the real job rebuilds it, and the dir's truth has no ghost left.
#[test]
fn journey_mark_an_index_rebuild_it_then_check_the_dir() {
    let (_t, dir) = fixture_copy("deletions_v1_5_9");
    // Before the indexes are read, `i` says to wait; collections with nothing to rebuild say so.
    let mut early = app_at(&dir, "deletions_v1_5_9");
    let at = names(&early).iter().position(|n| n == "churn").unwrap();
    early.update(Action::Select(at));
    early.update(Action::MarkIndex);
    assert!(early.marked.is_empty());
    assert!(early
        .message
        .as_deref()
        .unwrap_or("")
        .contains("still reading"));
    let snap = early.snap.as_ref().unwrap().clone();
    let found = chroma_wal::chroma::truth::read(&snap, &|_| true, true, &mut |_, _| true).unwrap();
    early.on_msg(Msg::Truth(Ok(found)));
    let steady = names(&early).iter().position(|n| n == "steady").unwrap();
    early.update(Action::Select(steady));
    early.update(Action::MarkIndex);
    assert!(early.marked.is_empty(), "steady has nothing to rebuild");
    early.update(Action::Select(at));
    early.update(Action::MarkIndex);
    assert_eq!(early.marked_indexes().len(), 1);
    early.update(Action::Prune);
    early.confirm_space = Some(fixed_space());
    let confirm = render(&early, 150, 40, Instant::now());
    assert!(
        confirm.contains("Rebuild these vector indexes?"),
        "{confirm}"
    );
    assert!(
        confirm.contains("rebuild index    churn: 60 ghost(s) removed"),
        "{confirm}"
    );
    let table = {
        early.update(Action::No);
        render(&early, 150, 40, Instant::now())
    };
    assert!(table.contains("[i] churn"), "{table}");

    // The real loop: wait for the indexes, filter to churn, mark its index, run, back.
    let mut app = App::new(Options {
        path: dir.clone(),
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
    });
    let read: fn(&App) -> bool = |a| a.truth == chroma_wal::tui::truth::TruthState::Ready;
    let always: fn(&App) -> bool = |_| true;
    let confirm: fn(&App) -> bool = |a| a.view == View::Confirm;
    let result: fn(&App) -> bool = |a| a.view == View::Result;
    let rescanned: fn(&App) -> bool = |a| a.view == View::Main && a.wal().is_some();
    let mut steps: VecDeque<ScriptStep> = VecDeque::new();
    steps.push_back((read, key(KeyCode::Char('/'))));
    for c in "churn".chars() {
        steps.push_back((always, key(KeyCode::Char(c))));
    }
    steps.push_back((always, key(KeyCode::Enter)));
    steps.push_back((always, key(KeyCode::Char('i'))));
    steps.push_back((always, key(KeyCode::Char('p'))));
    steps.push_back((confirm, key(KeyCode::Char('y'))));
    steps.push_back((result, key(KeyCode::Enter)));
    steps.push_back((rescanned, key(KeyCode::Char('q'))));
    let mut script = Script {
        steps,
        deadline: Instant::now() + Duration::from_secs(60),
    };
    let mut term = Terminal::new(TestBackend::new(150, 40)).unwrap();
    tui::run_loop(&mut term, &mut app, &mut script).unwrap();
    assert!(script.steps.is_empty());
    let v = json_of(&["info", "--deep", "--json"], &dir);
    let churn = collection(&v, "churn", "default_tenant");
    assert_eq!(churn["index_truth"]["ghosts_on_disk"], 0, "{churn}");
    assert_eq!(churn["index_truth"]["missing"], 0, "{churn}");
}
