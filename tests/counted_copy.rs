//! A prune whose copy counts the WAL (`prune --yes` by copy: `Plan::deferred`) against one
//! that counts first (`Plan::build`, as the dry run, the question and the explorer plan):
//! the same rows go, the same file comes out, and where the plan keeps rows the copy left
//! out, the copy is made again.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chroma_wal::chroma::{coverage, wal, Snapshot};
use chroma_wal::jobs::prune::{
    self, BackupTarget, Canceller, Event, JobOptions, Plan, Report, Selection, Step,
};
use common::*;

fn opts(backup: BackupTarget) -> JobOptions {
    JobOptions {
        backup,
        vacuum: true,
        in_place: false,
        compact: false,
    }
}

/// What the prune command does without `--yes`: count, the coverage check of the
/// collections that would lose rows, the plan.
fn counted_first(dir: &Path, selection: &Selection) -> Plan {
    let mut snap = Snapshot::open(dir).unwrap();
    let mut stats = wal::scan(&snap, &mut |_, _| true).unwrap();
    let touched = coverage::with_prunable_rows(&stats);
    coverage::apply(&mut snap, &mut stats, &|i| touched.contains(&i)).unwrap();
    Plan::build(&snap, &stats, selection).unwrap()
}

/// Run `plan`; the report and the delete step's detail.
fn run(dir: &Path, plan: &Plan, backup: BackupTarget) -> (Report, String) {
    let mut detail = String::new();
    let r = prune::run(dir, plan, &opts(backup), &Canceller::new(), &mut |e| {
        if let Event::Finished {
            step: Step::Delete,
            detail: Some(d),
            ..
        } = e
        {
            detail = d;
        }
    })
    .unwrap();
    (r, detail)
}

/// `prune --all --yes` by copy (the copy counts the WAL), every event to `events`.
fn prune_all_counting(dir: &Path, backup: BackupTarget, events: &mut dyn FnMut(Event)) -> Report {
    let snap = Snapshot::open(dir).unwrap();
    let plan = Plan::deferred(&snap, &Selection::All).unwrap();
    prune::run(dir, &plan, &opts(backup), &Canceller::new(), events).unwrap()
}

fn deleted(r: &Report) -> BTreeMap<String, u64> {
    r.topics
        .iter()
        .filter(|t| t.rows_deleted > 0)
        .map(|t| (t.topic.clone(), t.rows_deleted))
        .collect()
}

/// Prune two copies of `fixture`, one each way, and compare. `how`: what the counting
/// copy's delete step says it did ("counted in the copy", or "copied twice").
fn both_ways(
    fixture: &str,
    selection: &dyn Fn(&Path) -> Selection,
    damage: &dyn Fn(&Path),
    how: &str,
) {
    let (_a, first) = fixture_copy(fixture);
    let (_b, second) = fixture_copy(fixture);
    damage(&first);
    damage(&second);
    let sel = selection(&first);
    let plan = counted_first(&first, &sel);
    let planned = plan.rows();
    let snap = Snapshot::open(&second).unwrap();
    let (rb, detail) = run(
        &second,
        &Plan::deferred(&snap, &sel).unwrap(),
        BackupTarget::Off,
    );
    let bytes = |d: &Path| std::fs::read(d.join("chroma.sqlite3")).unwrap();
    if planned == 0 {
        // The command stops at such a plan; the copy that counted found the same, and left
        // the file as the other copy still is, byte for byte.
        assert_eq!(rb.method, "nothing", "{fixture} {sel:?}");
        assert!(bytes(&first) == bytes(&second), "{fixture} {sel:?}");
        return;
    }
    let (ra, _) = run(&first, &plan, BackupTarget::Off);
    assert_eq!(deleted(&ra), deleted(&rb), "{fixture} {sel:?}: {detail}");
    assert_eq!(ra.rows_deleted, planned, "{fixture} {sel:?}");
    assert_eq!(topic_counts(&first), topic_counts(&second), "{fixture}");
    assert_eq!(owned_state(&first), owned_state(&second), "{fixture}");
    // The same rows and tables, written the same way: the same bytes.
    let (x, y) = (bytes(&first), bytes(&second));
    let at = x.iter().zip(&y).position(|(a, b)| a != b);
    assert!(
        x == y,
        "{fixture} {sel:?}: files differ ({} and {} bytes, first at {at:?})",
        x.len(),
        y.len()
    );
    assert!(detail.contains(how), "{fixture}: {detail}");
}

#[test]
fn counting_in_the_copy_prunes_exactly_what_counting_first_does() {
    for fixture in all_fixtures() {
        both_ways(fixture, &|_| Selection::All, &|_| {}, "counted in the copy");
        // One collection by id: the first with rows to lose, or the first at all.
        let one = |d: &Path| {
            let v = json_of(&["info", "--json"], d);
            let cs = v["collections"].as_array().unwrap();
            let c = cs
                .iter()
                .find(|c| c["prunable_rows"].as_u64().unwrap_or(0) > 0)
                .unwrap_or(&cs[0]);
            Selection::Collections(vec![c["id"].as_str().unwrap().to_string()])
        };
        both_ways(fixture, &one, &|_| {}, "counted in the copy");
    }
}

#[test]
fn a_plan_that_keeps_rows_the_copy_left_out_copies_again() {
    // The seq_id guard: rows at and above papers' bound lost before, and an orphan topic
    // holding the WAL's top. The copy's rule leaves the orphan out; the plan built from its
    // count keeps it whole, so the copy is made again with the plan's bounds.
    let (_t, dir) = fixture_copy("v1_5_9");
    let (orphan, _, _, _) = lost_rows_and_an_orphan_on_top(&dir);
    let snap = Snapshot::open(&dir).unwrap();
    let (r, detail) = run(
        &dir,
        &Plan::deferred(&snap, &Selection::All).unwrap(),
        BackupTarget::Off,
    );
    assert!(detail.contains("copied twice"), "{detail}");
    assert_eq!(topic_counts(&dir).get(&orphan).map(|c| c.0), Some(5));
    assert!(r.rows_deleted > 0);
    // And exactly as a plan that counted first.
    both_ways(
        "v1_5_9",
        &|_| Selection::All,
        &|d| {
            lost_rows_and_an_orphan_on_top(d);
        },
        "copied twice",
    );
}

/// The first rows of a collection's topic moved to the topic of a collection that is gone
/// (as 0.5.x leave a deleted collection's rows), below the WAL's top.
fn orphan_rows_below_the_top(dir: &Path) {
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let n = c
        .execute(
            "UPDATE embeddings_queue SET topic = \
             'persistent://default/default/00000000-0000-4000-8000-0000000000aa' \
             WHERE seq_id IN (SELECT seq_id FROM embeddings_queue ORDER BY seq_id LIMIT 3)",
            [],
        )
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn an_orphan_topic_goes_whole_with_all_and_stays_with_one_collection() {
    let orphan = "persistent://default/default/00000000-0000-4000-8000-0000000000aa";
    for fixture in ["v0_5_5", "v1_5_9"] {
        both_ways(
            fixture,
            &|_| Selection::All,
            &orphan_rows_below_the_top,
            "counted in the copy",
        );
        let (_t, dir) = fixture_copy(fixture);
        orphan_rows_below_the_top(&dir);
        let snap = Snapshot::open(&dir).unwrap();
        run(
            &dir,
            &Plan::deferred(&snap, &Selection::All).unwrap(),
            BackupTarget::Off,
        );
        assert_eq!(topic_counts(&dir).get(orphan), None, "{fixture}");
        // One collection named: the orphan topic is not its, and stays.
        let one = |d: &Path| {
            let v = json_of(&["info", "--json"], d);
            let c = &v["collections"][0];
            Selection::Collections(vec![c["id"].as_str().unwrap().to_string()])
        };
        both_ways(fixture, &one, &orphan_rows_below_the_top, "");
        let (_t, dir) = fixture_copy(fixture);
        orphan_rows_below_the_top(&dir);
        let snap = Snapshot::open(&dir).unwrap();
        run(
            &dir,
            &Plan::deferred(&snap, &one(&dir)).unwrap(),
            BackupTarget::Off,
        );
        assert_eq!(topic_counts(&dir)[orphan].0, 3, "{fixture}");
    }
}

#[test]
fn the_backup_comes_after_the_count_and_is_the_untouched_original() {
    let (t, dir) = fixture_copy("v1_5_9");
    let original = std::fs::read(dir.join("chroma.sqlite3")).unwrap();
    let mut order = Vec::new();
    let r = prune_all_counting(&dir, BackupTarget::Default, &mut |e| {
        if let Event::Finished { step, .. } = e {
            order.push(step.name());
        }
    });
    assert!(r.rows_deleted > 0);
    assert_eq!(&order[..3], ["preflight", "delete", "backup"]);
    let b = r.backup.expect("a backup");
    assert!(b.starts_with(t.path().join("chroma-wal-backups")));
    assert_eq!(std::fs::read(&b).unwrap(), original);
    let left: Vec<_> = files_below(b.parent().unwrap())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_ne!(std::fs::read(dir.join("chroma.sqlite3")).unwrap(), original);
}

#[test]
fn nothing_to_delete_writes_nothing_not_even_a_backup_but_folders_still_get_one() {
    // Chroma purged this dir's WAL itself: nothing to delete.
    let (t, dir) = fixture_copy("orphans_v0_6_3");
    let backups = t.path().join("chroma-wal-backups");
    let folders = |d: &Path| std::fs::read_dir(d).map_or(0, |r| r.count());
    let made = folders(&backups);
    // The copy is discarded, the file untouched, no backup made.
    let file = dir.join("chroma.sqlite3");
    let bytes = std::fs::read(&file).unwrap();
    let snap = Snapshot::open(&dir).unwrap();
    let (again, _) = run(
        &dir,
        &Plan::deferred(&snap, &Selection::All).unwrap(),
        BackupTarget::Default,
    );
    assert_eq!(again.rows_deleted, 0);
    assert_eq!(again.method, "nothing");
    assert!(
        again.notes.iter().any(|n| n.contains("nothing to prune")),
        "{:?}",
        again.notes
    );
    assert_eq!(bytes, std::fs::read(&file).unwrap());
    assert_eq!(folders(&backups), made, "a backup was made of nothing");
    assert!(!dir.join("chroma.sqlite3.chroma-wal-new").exists());
    // With the orphan folders asked for too: the WAL is still untouched, and the folders
    // go into a backup folder of their own, not deleted.
    let snap = Snapshot::open(&dir).unwrap();
    assert!(
        !snap.orphan_segment_dirs.is_empty(),
        "the fixture has orphans"
    );
    let plan = Plan::deferred(&snap, &Selection::All)
        .unwrap()
        .with_dirs(&snap, None);
    let (r, _) = run(&dir, &plan, BackupTarget::Default);
    assert_eq!(r.rows_deleted, 0);
    assert!(!r.dirs_removed.is_empty());
    for d in &r.dirs_removed {
        let to = d
            .moved_to
            .as_ref()
            .expect("moved into the backup, not deleted");
        assert!(to.starts_with(&backups), "{}", to.display());
        assert!(to.exists());
    }
    assert_eq!(bytes, std::fs::read(&file).unwrap());
}

/// Whether another process can take the write lock on `db` at once (Python's sqlite3).
fn another_process_can_write(db: &Path) -> bool {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n\
             try:\n    c.execute('BEGIN IMMEDIATE'); c.execute('ROLLBACK'); print('wrote')\n\
             except sqlite3.OperationalError as e:\n    print(e)\n",
        )
        .arg(db)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(said == "wrote" || said.contains("locked"), "{said}");
    said == "wrote"
}

#[test]
fn the_original_stays_locked_after_the_copy_read_it_ahead() {
    // The copy reads the original ahead of itself through a descriptor of its own. POSIX
    // drops every lock a process holds on a file when any descriptor of it closes, so one
    // closed too early would let a writer in between the copy and the swap.
    let (_t, dir) = fixture_copy("v1_5_9");
    let db = dir.join("chroma.sqlite3");
    assert!(another_process_can_write(&db));
    let mut checked = Vec::new();
    let r = prune_all_counting(&dir, BackupTarget::Off, &mut |e| {
        if let Event::Finished { step, .. } = e {
            if matches!(step, Step::Delete | Step::Compact | Step::Verify) {
                checked.push((step.name(), another_process_can_write(&db)));
            }
        }
    });
    assert!(r.rows_deleted > 0);
    assert_eq!(
        checked,
        [("delete", false), ("compact", false), ("verify", false)]
    );
    assert!(another_process_can_write(&db));
}
