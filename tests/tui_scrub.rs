//! A scrub from the explorer: `S` plans it off the UI thread, the dialog says what goes and
//! what stays (the same words at 80 × 24 and 120 × 36), `y` runs it as a job whose plan is
//! the scrub's, and afterwards no canary string is left in the dir.

mod common;

use std::time::Instant;

use chroma_wal::jobs::prune::{self, Canceller};
use chroma_wal::jobs::scrub;
use chroma_wal::tui::app::{Effect, Msg};
use chroma_wal::tui::Action;
use common::explorer::*;
use common::*;

#[test]
fn s_plans_asks_and_runs_a_scrub_of_the_whole_dir() {
    let (_t, dir) = fixture_copy("canaries_v0_6_3");
    let mut app = app_at(&dir, "canaries_v0_6_3");
    let fx = app.update(Action::Scrub);
    let Some(Effect::PlanScrub(ask)) = fx.into_iter().next() else {
        panic!("S started no plan");
    };
    // Until the plan is there, y does nothing.
    assert!(app.update(Action::Yes).is_empty());
    let (snap, wal, selection, n) = *ask;
    assert_eq!(selection, prune::Selection::All);
    let plan = scrub::plan(&snap.0, &wal, &selection).unwrap();
    // An older ask's answer is dropped.
    app.on_msg(Msg::ScrubPlanned(n - 1, Ok(Box::new(plan.clone()))));
    assert!(app.update(Action::Yes).is_empty());
    app.on_msg(Msg::ScrubPlanned(n, Ok(Box::new(plan))));
    for (w, h) in [(120, 36), (80, 24)] {
        let screen = render(&app, w, h, Instant::now());
        let said: String = screen
            .lines()
            .map(|l| {
                l.trim_matches('"')
                    .replace(['│', '┌', '┐', '└', '┘', '─'], " ")
            })
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for p in [
            "Scrub deleted data from this dir?",
            "128 record(s)",
            "full-text",
            "written anew",
            "rebuilt",
            "orphan folders",
            "it will hold everything this removes",
            "y / Enter: scrub",
        ] {
            assert!(said.contains(p), "{w}x{h}: no {p:?} in\n{screen}");
        }
    }
    let fx = app.update(Action::Yes);
    let Some(Effect::RunJob(plan)) = fx.into_iter().next() else {
        panic!("y ran nothing");
    };
    assert!(plan.scrub.is_some());
    assert!(plan.indexes.len() >= 5, "{:?}", plan.indexes);
    let opts = scrub::options(prune::BackupTarget::Off);
    prune::run(&dir, &plan, &opts, &Canceller::new(), &mut |_| {}).unwrap();
    let left: Vec<_> = files_below(&dir)
        .into_iter()
        .filter(|p| {
            let b = std::fs::read(p).unwrap();
            b.windows(5).any(|w| w == b"cnry-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn marked_collections_are_the_selection_and_esc_cancels() {
    let mut app = app_on("canaries_v1_5_9");
    let at = (0..app.rows().len())
        .find(|&i| app.name_of(&app.rows()[i]) == "canary-ip")
        .unwrap();
    app.update(Action::Select(at));
    app.update(Action::Mark);
    let fx = app.update(Action::Scrub);
    let Some(Effect::PlanScrub(ask)) = fx.into_iter().next() else {
        panic!("S started no plan");
    };
    assert!(matches!(&ask.2, prune::Selection::Collections(ids) if ids.len() == 1));
    app.update(Action::Back);
    assert!(app.scrub.is_none());
    assert!(app.update(Action::Yes).is_empty() || app.scrub.is_none());
}
