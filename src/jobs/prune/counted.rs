//! A prune whose copy counts the WAL ([`super::plan::Plan::deferred`], `prune --yes`): the
//! rule the copy follows before any count exists, the count the plan is then built from, and
//! the check that the copy left out exactly what that plan leaves out.
//!
//! The rule is Chroma's purge rule as the plan applies it, from the catalog read under the
//! lock: a topic's rows below its collection's bound are prunable (none when the bound is
//! unknown or the collection damaged), an orphan topic's rows all are; the selection says
//! which topics lose them. What the rule cannot know before the count (the seq_id guard, a
//! collection whose records the WAL alone holds) the plan built from the copy's counts does:
//! when it keeps rows the copy left out, the job copies again with the plan's bounds.

use std::collections::{HashMap, HashSet};

use super::plan::Selection;
use crate::jobs::copy::swap::{CopyCounts, Rule, TopicRule};
use crate::jobs::runner::TopicBound;
use rusqlite::Connection;

use crate::chroma::{coverage, Snapshot, TopicOwner, TopicStats, WalStats};
use crate::error::Result;

/// The copy's rule for `selection`, from the catalog read under the lock (`conn`, `fresh`).
/// First the records only the WAL holds: every collection the selection may cut is checked
/// ([`coverage`]) and one found is marked damaged in `fresh`, so the copy keeps its WAL and
/// the plan names it, as a prune that counted first does.
pub(in crate::jobs) fn rule(
    conn: &Connection,
    fresh: &mut Snapshot,
    selection: &Selection,
) -> Result<Rule> {
    let chosen = chosen(fresh, selection)?;
    let found = coverage::check(conn, fresh, &|i| {
        chosen.as_ref().map_or(true, |c| c.contains(&i))
    })?;
    coverage::mark(fresh, &found);
    let per: Vec<TopicRule> = (0..fresh.collections.len())
        .map(|i| TopicRule {
            bound: fresh.collections[i].bound.value(),
            drop: chosen.as_ref().map_or(true, |c| c.contains(&i)),
        })
        .collect();
    let orphan = TopicRule {
        bound: Some(i64::MAX),
        drop: matches!(selection, Selection::All),
    };
    let owners = fresh.owners();
    Ok(Box::new(move |topic| match owners.owner_of(topic) {
        TopicOwner::Collection(i) => per.get(i).copied().unwrap_or(TopicRule {
            bound: None,
            drop: false,
        }),
        TopicOwner::Orphan => orphan,
    }))
}

/// The collections `selection` names (`None`: every one).
fn chosen(fresh: &Snapshot, selection: &Selection) -> Result<Option<HashSet<usize>>> {
    Ok(match selection {
        Selection::All => None,
        Selection::Collections(names) => Some(
            names
                .iter()
                .map(|n| fresh.find_collection(n))
                .collect::<Result<_>>()?,
        ),
        // A topic selection is planned from a count (`Plan::deferred` refuses it): here it
        // would drop nothing, and the plan built after the copy would say why.
        Selection::Topics(_) => Some(HashSet::new()),
    })
}

/// The WAL as a count would have found it, from the copy's counts: every topic with its rows,
/// seq_id range and bound; its prunable rows are those the copy found below that bound. A
/// topic whose bound is not the one the copy used (none can be: both come from `fresh`) is
/// given none, so the plan keeps it whole.
pub(in crate::jobs) fn wal_of(fresh: &Snapshot, counts: &CopyCounts) -> WalStats {
    let mut topics: Vec<TopicStats> = counts
        .topics
        .iter()
        .map(|(topic, t)| {
            let owner = fresh.owner_of(topic);
            let (bound, prunable) = match owner {
                // One past its last row, as the count bounds an orphan: every row.
                TopicOwner::Orphan => (Some(t.max_seq_id.saturating_add(1)), t.below),
                TopicOwner::Collection(i) => {
                    let b = fresh.collections[i].bound.value();
                    if b == t.rule.bound {
                        (b, t.below)
                    } else {
                        (None, 0)
                    }
                }
            };
            TopicStats {
                topic: topic.clone(),
                owner,
                rows: t.seen,
                min_seq_id: t.min_seq_id,
                max_seq_id: t.max_seq_id,
                bound,
                prunable,
                bytes: 0,
                prunable_bytes: 0,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    WalStats {
        topics,
        changed_during_scan: false,
        by_collection: HashMap::new(),
    }
    .indexed()
}

/// Whether the copy left out exactly the rows `bounds` (the plan settled from its counts)
/// leaves out: per topic the same number, below the same bound (an orphan's bound differs in
/// value, one past its last row against no limit, but not in the rows: all of them).
pub(in crate::jobs) fn copied_as_planned(bounds: &[TopicBound], counts: &CopyCounts) -> bool {
    let planned: HashMap<&str, (i64, u64)> = bounds
        .iter()
        .filter(|b| b.expected > 0)
        .filter_map(|b| Some((b.topic.as_str(), (b.bound?, b.expected))))
        .collect();
    if planned.keys().any(|t| !counts.topics.contains_key(*t)) {
        return false;
    }
    counts
        .topics
        .iter()
        .all(|(topic, t)| match planned.get(topic.as_str()) {
            None => t.left_out == 0,
            Some(&(bound, expected)) => {
                t.left_out == expected
                    && (t.rule.bound == Some(bound)
                        || (t.left_out == t.seen && t.max_seq_id < bound))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::copy::swap::TopicCount;

    fn count(bound: Option<i64>, drop: bool, seqs: &[i64]) -> TopicCount {
        let below = seqs
            .iter()
            .filter(|&&s| bound.is_some_and(|b| s < b))
            .count() as u64;
        TopicCount {
            rule: TopicRule { bound, drop },
            seen: seqs.len() as u64,
            below,
            left_out: if drop { below } else { 0 },
            min_seq_id: seqs.iter().copied().min().unwrap_or(0),
            max_seq_id: seqs.iter().copied().max().unwrap_or(0),
        }
    }

    fn bound(topic: &str, b: Option<i64>, expected: u64) -> TopicBound {
        TopicBound {
            topic: topic.into(),
            collection: None,
            bound: b,
            expected,
            wal_rows: 0,
            note: None,
        }
    }

    fn counts(v: Vec<(&str, TopicCount)>) -> CopyCounts {
        CopyCounts {
            topics: v.into_iter().map(|(k, c)| (k.to_string(), c)).collect(),
            ..CopyCounts::default()
        }
    }

    #[test]
    fn the_same_bounds_and_counts_are_a_match() {
        let c = counts(vec![
            ("a", count(Some(3), true, &[1, 2, 3, 4])),
            ("kept", count(Some(9), false, &[5, 6])),
        ]);
        assert!(copied_as_planned(&[bound("a", Some(3), 2)], &c));
        // Listed without rows to lose: nothing may have been left out of it.
        assert!(copied_as_planned(
            &[bound("a", Some(3), 2), bound("kept", None, 0)],
            &c
        ));
    }

    #[test]
    fn a_topic_the_plan_keeps_whole_but_the_copy_cut_is_no_match() {
        // The guard (or the coverage check) kept "a" whole after the copy left rows out.
        let c = counts(vec![("a", count(Some(3), true, &[1, 2, 3, 4]))]);
        assert!(!copied_as_planned(&[bound("a", None, 0)], &c));
        assert!(!copied_as_planned(&[], &c));
    }

    #[test]
    fn another_bound_or_count_is_no_match() {
        let c = counts(vec![("a", count(Some(3), true, &[1, 2, 3, 4]))]);
        assert!(!copied_as_planned(&[bound("a", Some(4), 2)], &c));
        assert!(!copied_as_planned(&[bound("a", Some(3), 3)], &c));
        // A topic the plan cuts that the copy never saw.
        assert!(!copied_as_planned(
            &[bound("a", Some(3), 2), bound("b", Some(3), 1)],
            &c
        ));
    }

    #[test]
    fn an_orphan_is_every_row_under_either_bound() {
        let c = counts(vec![("gone", count(Some(i64::MAX), true, &[7, 8, 9]))]);
        assert!(copied_as_planned(&[bound("gone", Some(10), 3)], &c));
        // A bound that leaves its top row would be another set of rows.
        assert!(!copied_as_planned(&[bound("gone", Some(9), 3)], &c));
    }
}
