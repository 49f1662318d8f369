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
    apply(snap, found);
    Ok(n)
}

/// Give each collection of `snap` its preview, found by id.
pub fn apply(snap: &mut Snapshot, found: Vec<(String, RepairPreview)>) {
    for (id, p) in found {
        if let Some(c) = snap.collections.iter_mut().find(|c| c.id == id) {
            c.repair = Some(Box::new(p));
        }
    }
}

/// The previews, by collection id (a front end may have rescanned meanwhile), without
/// keeping the truth they needed. A collection whose repair cannot be planned (its WAL or its
/// index unreadable) gets a preview saying so: the diagnostics go on for the others.
pub fn previews(snap: &Snapshot) -> Result<Vec<(String, RepairPreview)>> {
    let which: Vec<usize> = (0..snap.collections.len())
        .filter(|&i| snap.collections[i].is_damaged())
        .collect();
    if which.is_empty() {
        return Ok(Vec::new());
    }
    let cannot = |e: &dyn std::fmt::Display| RepairPreview {
        note: Some(format!("its repair cannot be planned: {e}")),
        ..RepairPreview::default()
    };
    let mut snap = snap.clone();
    match truth::read(&snap, &|i| which.contains(&i), true, &mut |_, _| true) {
        Ok(found) => truth::apply(&mut snap, found),
        Err(e) => {
            let id = |i: usize| snap.collections[i].id.clone();
            return Ok(which.iter().map(|&i| (id(i), cannot(&e))).collect());
        }
    }
    Ok(which
        .iter()
        .map(|&i| {
            let c = &snap.collections[i];
            let plan = match IndexPlan::build(&snap, Some(std::slice::from_ref(&c.id)), true) {
                Ok(p) => p,
                Err(e) => return (c.id.clone(), cannot(&e)),
            };
            let planned = plan.indexes.first();
            let p = RepairPreview {
                rebuilds: planned.is_some(),
                restored: planned.map_or(0, |p| (p.put_back.len() + p.renorm.len()) as u64),
                unrecoverable: planned.map_or_else(
                    || plan.unrecoverable.first().map_or(0, |u| u.1),
                    |p| p.unrecoverable,
                ),
                direction_only: planned.map_or(0, |p| p.direction_only),
                note: planned.is_none().then(|| {
                    plan.notes
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "its index cannot be read whole".into())
                }),
            };
            (c.id.clone(), p)
        })
        .collect())
}
