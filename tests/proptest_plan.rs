//! Property tests over random WAL layouts written into a copy of the real 1.5.9 fixture:
//! the plan never takes a row at or above its collection's bound, never crosses topics,
//! prunes nothing of a collection whose bound is unknown, takes orphan topics whole, and a
//! second prune changes nothing.

mod common;

use std::collections::BTreeMap;

use chroma_wal::chroma::{wal, Snapshot};
use chroma_wal::jobs::prune::{self, BackupTarget, Canceller, JobOptions, Plan, Selection};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Layout {
    /// topic index per row (0: big, 1: papers, 2.. orphans), and the gap before its seq_id.
    rows: Vec<(usize, i64)>,
    /// max_seq_id per segment of big and papers (None: no row).
    big: [Option<i64>; 2],
    papers: [Option<i64>; 2],
    orphans: usize,
}

fn layout() -> impl Strategy<Value = Layout> {
    let seq = prop_oneof![Just(None), (0i64..700).prop_map(Some)];
    (
        0usize..3,
        proptest::collection::vec((0usize..4, 1i64..4), 0..300),
        [seq.clone(), seq.clone()],
        [seq.clone(), seq],
    )
        .prop_map(|(orphans, rows, big, papers)| Layout {
            rows: rows
                .into_iter()
                .map(|(t, g)| (t % (2 + orphans), g))
                .collect(),
            big,
            papers,
            orphans,
        })
}

struct World {
    topics: Vec<String>,
    bounds: Vec<Option<i64>>,
    rows: Vec<(String, i64)>,
    /// The highest position the WAL can hold that any collection recorded: the WAL must keep
    /// a row there.
    highest: Option<i64>,
    /// Orphan topics the seq_id guard keeps whole.
    orphan_kept: Vec<usize>,
}

impl World {
    fn bound_of(&self, topic: &str) -> Option<i64> {
        let i = self.topics.iter().position(|t| t == topic).unwrap();
        if i < 2 {
            self.bounds[i]
        } else if self.orphan_kept.contains(&i) {
            None
        } else {
            Some(i64::MAX)
        }
    }
}

/// The highest of `positions` at or below the WAL's top (none when the WAL is empty).
fn plausible(positions: impl Iterator<Item = i64>, wal_max: Option<i64>) -> Option<i64> {
    let top = wal_max?;
    positions.filter(|&p| p <= top).max()
}

fn write(dir: &std::path::Path, l: &Layout) -> World {
    let c = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
    let mut ids = Vec::new();
    for name in ["big", "papers"] {
        let (id, db): (String, String) = c
            .query_row(
                "SELECT c.id, d.name FROM collections c JOIN databases d ON d.id = c.database_id \
                 WHERE c.name = ?1 ORDER BY d.name = 'default_database' DESC LIMIT 1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(db == "default_database" || name == "papers");
        ids.push(id);
    }
    let mut topics: Vec<String> = ids
        .iter()
        .map(|id| format!("persistent://default/default/{id}"))
        .collect();
    for i in 0..l.orphans {
        topics.push(format!(
            "persistent://default/default/00000000-0000-4000-8000-00000000000{i}"
        ));
    }
    // The random WAL replaces the one whose adds put the fixture's records in place, so the
    // records go too: a record no index and no WAL row holds would (rightly) keep its
    // collection whole, which is the records count's test (tests/crash_states.rs), not this one.
    c.execute_batch(
        "BEGIN; DELETE FROM embeddings_queue; DELETE FROM embedding_metadata; DELETE FROM embeddings;",
    )
        .unwrap();
    let mut seq = 0;
    let mut rows = Vec::new();
    for (t, gap) in &l.rows {
        seq += gap;
        c.execute(
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id, vector, encoding, metadata) VALUES (?1, 0, ?2, 'x', NULL, NULL, NULL)",
            rusqlite::params![seq, topics[*t]],
        )
        .unwrap();
        rows.push((topics[*t].clone(), seq));
    }
    let mut bounds = Vec::new();
    let wal_max = rows.last().map(|r| r.1);
    let mut highest: Option<i64> = None;
    for (id, vals) in ids.iter().zip([l.big, l.papers]) {
        let segs: Vec<String> = c
            .prepare("SELECT id FROM segments WHERE collection = ?1 ORDER BY id")
            .unwrap()
            .query_map([id], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(segs.len(), 2);
        for (s, v) in segs.iter().zip(vals) {
            c.execute("DELETE FROM max_seq_id WHERE segment_id = ?1", [s])
                .unwrap();
            if let Some(v) = v {
                c.execute(
                    "INSERT INTO max_seq_id (segment_id, seq_id) VALUES (?1, ?2)",
                    rusqlite::params![s, v],
                )
                .unwrap();
            }
        }
        // A position above the WAL's top is impossible: the collection is damaged and keeps
        // its whole WAL. Otherwise Chroma's rule, computed here independently of the crate.
        let impossible = vals
            .iter()
            .flatten()
            .any(|&v| wal_max.map_or(v > 0, |top| v > top));
        // The guard counts every position the WAL can hold, a damaged collection's too.
        highest = highest.max(plausible(vals.iter().flatten().copied(), wal_max));
        bounds.push(match vals {
            _ if impossible => None,
            [Some(a), Some(b)] => Some(a.min(b)),
            _ => None,
        });
    }
    // The fixture's other collections keep their recorded positions: they count too.
    let mut others: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut st = c
        .prepare(
            "SELECT s.collection, m.seq_id FROM max_seq_id m JOIN segments s ON s.id = m.segment_id \
             WHERE s.collection NOT IN (?1, ?2)",
        )
        .unwrap();
    let found = st
        .query_map(rusqlite::params![ids[0], ids[1]], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .unwrap();
    for r in found {
        let (coll, v) = r.unwrap();
        others.entry(coll).or_default().push(v);
    }
    drop(st);
    for vals in others.values() {
        highest = highest.max(plausible(vals.iter().copied(), wal_max));
    }
    c.execute_batch("COMMIT").unwrap();
    // The seq_id guard: if the rule would leave no row at or above the highest position,
    // the topics holding such rows are kept whole.
    let mut w = World {
        topics,
        bounds,
        rows,
        highest,
        orphan_kept: Vec::new(),
    };
    if let Some(p) = highest {
        let kept_top = w
            .rows
            .iter()
            .filter(|(t, s)| w.bound_of(t).map_or(true, |b| *s >= b))
            .map(|r| r.1)
            .max();
        if kept_top.map_or(true, |k| k < p) {
            let holders: Vec<usize> = w
                .rows
                .iter()
                .filter(|r| r.1 >= p)
                .map(|r| w.topics.iter().position(|t| *t == r.0).unwrap())
                .collect();
            for i in holders {
                if i < 2 {
                    w.bounds[i] = None;
                } else {
                    w.orphan_kept.push(i);
                }
            }
        }
    }
    w
}

fn remaining(dir: &std::path::Path) -> Vec<(String, i64)> {
    let c = ro(dir);
    let mut st = c
        .prepare("SELECT topic, seq_id FROM embeddings_queue ORDER BY seq_id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn plan_and_prune_follow_chromas_rule(l in layout()) {
        let (_t, dir) = fixture_copy("v1_5_9");
        let w = write(&dir, &l);
        let snap = Snapshot::open(&dir).unwrap();
        let stats = wal::scan(&snap, &mut |_, _| true).unwrap();
        let plan = Plan::build(&snap, &stats, &Selection::All).unwrap();
        let bound_of = |topic: &str| w.bound_of(topic);
        // The plan: per topic, exactly the rows below the bound.
        for t in plan.topics.iter().filter(|t| t.rows > 0 || bound_of(&t.topic).is_some()) {
            let b = bound_of(&t.topic);
            prop_assert!(b.is_some(), "planned a topic with an unknown bound");
            let want = w.rows.iter().filter(|(tp, s)| tp == &t.topic && *s < b.unwrap()).count() as u64;
            prop_assert_eq!(t.rows, want);
        }
        // Run it (no backup, no compaction: the rows are what matters here).
        let opts = JobOptions { backup: BackupTarget::Off, vacuum: false, in_place: false, compact: false };
        let r = prune::run(&dir, &plan, &opts, &Canceller::new(), &mut |_| {});
        if plan.rows() > 0 {
            r.unwrap();
        }
        let left = remaining(&dir);
        let mut expect: Vec<(String, i64)> = w
            .rows
            .iter()
            .filter(|(t, s)| match bound_of(t) { Some(b) => *s >= b, None => true })
            .cloned()
            .collect();
        expect.sort_by_key(|r| r.1);
        prop_assert_eq!(&left, &expect);
        // Chroma's next seq_id stays above every position the WAL can hold that a segment recorded.
        if let Some(p) = w.highest {
            prop_assert!(left.last().is_some_and(|r| r.1 >= p), "the WAL's top fell below {}", p);
        }
        // Pruning again finds nothing and changes nothing.
        let snap = Snapshot::open(&dir).unwrap();
        let stats = wal::scan(&snap, &mut |_, _| true).unwrap();
        let again = Plan::build(&snap, &stats, &Selection::All).unwrap();
        prop_assert_eq!(again.rows(), 0);
        let per_topic: BTreeMap<&str, usize> = left.iter().fold(BTreeMap::new(), |mut m, (t, _)| {
            *m.entry(t.as_str()).or_default() += 1;
            m
        });
        for t in &stats.topics {
            prop_assert_eq!(t.rows as usize, per_topic[t.topic.as_str()]);
        }
    }
}
