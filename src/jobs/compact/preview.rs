//! The dry run of `compact --repair` for every damaged collection of a snapshot: what `info`,
//! `check` and the explorer say first about a damaged index. Reads the truth of those
//! indexes only (and their WAL rows), so a dir with nothing damaged costs nothing more.

use crate::chroma::preview::RepairPreview;
use crate::chroma::{truth, Snapshot};
use crate::error::Result;

use super::IndexPlan;

/// Fill in `repair` for each damaged collection of `snap`; returns how many were.
pub fn fill(snap: &mut Snapshot) -> Result<usize> {
    let found = previews(snap)?;
    let n = found.len();
    for (i, p) in found {
        if let Some(c) = snap.collections.get_mut(i) {
            c.repair = Some(Box::new(p));
        }
    }
    Ok(n)
}

/// The previews, by collection index, without keeping the truth they needed.
pub fn previews(snap: &Snapshot) -> Result<Vec<(usize, RepairPreview)>> {
    let which: Vec<usize> = (0..snap.collections.len())
        .filter(|&i| snap.collections[i].is_damaged())
        .collect();
    if which.is_empty() {
        return Ok(Vec::new());
    }
    let mut snap = snap.clone();
    let found = truth::read(&snap, &|i| which.contains(&i), true, &mut |_, _| true)?;
    truth::apply(&mut snap, found);
    let ids: Vec<String> = which
        .iter()
        .map(|&i| snap.collections[i].id.clone())
        .collect();
    let plan = IndexPlan::build(&snap, Some(&ids), true)?;
    Ok(which
        .iter()
        .map(|&i| {
            let c = &snap.collections[i];
            let planned = plan.indexes.iter().find(|p| p.collection_id == c.id);
            let p = RepairPreview {
                rebuilds: planned.is_some(),
                restored: planned.map_or(0, |p| (p.put_back.len() + p.renorm.len()) as u64),
                unrecoverable: planned.map_or_else(
                    || {
                        plan.unrecoverable
                            .iter()
                            .find(|(n, _, _)| n == &c.name)
                            .map_or(0, |u| u.1)
                    },
                    |p| p.unrecoverable,
                ),
                direction_only: planned.map_or(0, |p| p.direction_only),
                note: planned.is_none().then(|| {
                    plan.notes
                        .iter()
                        .find(|n| n.contains(&c.name))
                        .cloned()
                        .unwrap_or_else(|| "its index cannot be read whole".into())
                }),
            };
            (i, p)
        })
        .collect())
}
