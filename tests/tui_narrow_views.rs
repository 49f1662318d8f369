//! The rows, records and space views and a prune's result at 80 × 24 and at 120 × 36: the
//! same text checks pass at both sizes (a narrow table gives a column fewer characters, a
//! time is abbreviated "MM-DD HH:MM", and the row or record view, Enter, shows each whole).

mod common;

use std::path::PathBuf;

use chroma_wal::tui::app::Msg;
use chroma_wal::tui::Action;
use common::explorer::*;

#[test]
fn the_rows_view_and_one_row() {
    let mut app = app_on("v0_4_22");
    let dir = PathBuf::from("tests/fixtures/v0_4_22");
    let eff = app.update(Action::OpenRows);
    serve_rows(&mut app, &dir, eff);
    check(
        &app,
        "rows",
        &[
            "WAL rows of big",
            "bound M 300",
            "seq_id time op id state document",
            "420",
            "11-24 22:35",
            "delete id119 held",
        ],
    );
    let e = app.update(Action::ToggleDetail);
    serve_rows(&mut app, &dir, e);
    check(&app, "one row", &["seq_id 420", "delete", "id119"]);
}

#[test]
fn the_records_view() {
    let mut app = app_on("rebuilt_v1_5_9");
    let at = (0..app.rows().len())
        .find(|&i| app.name_of(&app.rows()[i]) == "rebuilt")
        .unwrap();
    app.update(Action::Select(at));
    let first = app.update(Action::OpenRecords);
    let mut h = RecordsHarness::new();
    h.settle(&mut app, first);
    check(
        &app,
        "records",
        &[
            "records of rebuilt",
            "351 records",
            "id vector document metadata",
            "r010",
        ],
    );
}

#[test]
fn the_space_view() {
    let mut app = app_on("canaries_v0_4_22");
    app.update(Action::OpenSpace);
    let snap = open_quiet(&PathBuf::from("tests/fixtures/canaries_v0_4_22"));
    let map = chroma_wal::chroma::space::map(&snap, &mut |_, _| true).unwrap();
    app.on_msg(Msg::Space(Ok(map)));
    check(
        &app,
        "space",
        &[
            "where the space goes",
            "embeddings_queue",
            "free pages",
            "index folders",
            "deleted data no record owns (chroma-wal scrub removes it):",
            "rows nothing points to: 0 record(s), 0 metadata, 166 full-text, 6 other",
            "leftover bytes in 5 index folder(s)",
        ],
    );
}

#[test]
fn a_prune_running_and_its_result() {
    use chroma_wal::jobs::prune::{self, BackupTarget, Canceller, JobOptions};
    use chroma_wal::tui::app::Effect;
    let (_t, dir) = common::fixture_copy("v0_4_22");
    let mut app = app_at(&dir, "v0_4_22");
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    let fx = app.update(Action::Yes);
    let Some(Effect::RunJob(plan)) = fx.into_iter().next() else {
        panic!("y ran nothing");
    };
    check(
        &app,
        "running",
        &["preflight", "backup", "delete", "verify"],
    );
    let opts = JobOptions {
        backup: BackupTarget::Off,
        vacuum: true,
        in_place: false,
        compact: false,
    };
    let mut events = Vec::new();
    let r = prune::run(&dir, &plan, &opts, &Canceller::new(), &mut |e| {
        events.push(e)
    });
    for e in events {
        app.on_msg(Msg::Job(e));
    }
    app.on_msg(Msg::JobDone(Box::new(r)));
    check(
        &app,
        "result",
        &[
            "Pruned 896 rows.",
            "chroma.sqlite3",
            "whole dir",
            "backup none",
            "big",
        ],
    );
}
