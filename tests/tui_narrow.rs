//! Every view says at 80 × 24 what it says at 120 × 36: the same text checks pass at both
//! sizes (lines may wrap, a status may be shortened in the table; the words checked are there).

mod common;

use chroma_wal::jobs::preflight::SpaceCheck;
use chroma_wal::tui::{Action, App};
use common::explorer::*;

fn select(app: &mut App, name: &str) {
    let at = (0..app.rows().len())
        .find(|&i| app.name_of(&app.rows()[i]) == name)
        .unwrap();
    app.update(Action::Select(at));
}

#[test]
fn the_table_header_and_footer() {
    let app = app_on("v0_4_22");
    let s = app.snap.as_ref().unwrap();
    let release = s.schema.releases_sentence();
    check(
        &app,
        "main",
        &[
            "chroma-wal tests/fixtures/v0_4_22",
            "auto purge n/a (kept forever)",
            &release,
            "collections (7)",
            "cosine-docs",
            "inner-product",
            // The status: whole at 120, shortened at 80; these words are in both.
            "persisted",
            "marked: 0 collection(s)",
            "q quit",
            "? help",
            "r rescan",
        ],
    );
}

#[test]
fn the_segments_pane() {
    let mut app = app_on("v0_4_22");
    select(&mut app, "inner-product");
    app.update(Action::ToggleDetail);
    let s = app.snap.as_ref().unwrap().clone();
    let c = s
        .collections
        .iter()
        .find(|c| c.name == "inner-product")
        .unwrap();
    // At 80 columns "held" and "bound M" leave the table for the pane.
    let mut phrases: Vec<String> = vec![
        c.id.clone(),
        "sqlite_blob".into(),
        "held".into(),
        "bound M".into(),
    ];
    if let Some(m) = c.bound.value() {
        phrases.push(m.to_string());
    }
    for seg in &c.segments {
        phrases.push(seg.short_id().to_string());
        if let Some(v) = seg.max_seq_id {
            phrases.push(v.to_string());
        }
        if let Some(b) = seg.dir_bytes {
            phrases.push(chroma_wal::units::bytes(b));
        }
        if let Some(h) = seg.index.as_ref().and_then(|f| f.parsed()) {
            phrases.push(chroma_wal::units::count(h.cur_element_count));
        }
    }
    let refs: Vec<&str> = phrases.iter().map(String::as_str).collect();
    check(&app, "segments pane", &refs);
}

#[test]
fn the_confirm_dialog() {
    let mut app = app_on("v0_4_22");
    app.update(Action::MarkAll);
    app.update(Action::Prune);
    app.confirm_space = Some(SpaceCheck {
        needs: Vec::new(),
        filesystems: vec![("/data".into(), 4_000_000, 90_000_000_000)],
        ok: true,
    });
    check(
        &app,
        "confirm",
        &[
            "Delete these WAL rows?",
            "inner-product",
            "papers",
            "total",
            "backup into /backups",
            "free space ok",
            "chroma.sqlite3",
            "after compaction",
            "frees ~",
            "y / Enter: prune n / Esc: cancel",
        ],
    );
}

#[test]
fn the_help_says_every_key_whole_at_80_columns() {
    use chroma_wal::tui::app::View;
    use chroma_wal::tui::views::help::lines;
    let text = |w: u16| -> String {
        let all: Vec<String> = lines(View::Main, w)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        all.join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (narrow, wide) = (text(78), text(118));
    assert!(!narrow.contains('…'), "{narrow}");
    assert_eq!(narrow, wide);
    assert!(wide.contains("scrub: remove every byte of deleted data"));
}
