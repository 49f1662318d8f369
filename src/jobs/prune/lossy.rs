//! What a prune takes away from the only repair Chroma documents: a collection whose index
//! could be rebuilt from the WAL without losing a record today, and could not once the rows
//! below its bound are gone. The confirm (the CLI's question, the explorer's dialog) says so
//! before the user answers. The verdicts come from [`crate::chroma::truth`].

use crate::chroma::Snapshot;

use super::Plan;

/// One collection the plan makes lossy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeLossy {
    pub name: String,
    /// Records whose vector a rebuild from the WAL would no longer bring back.
    pub loses: u64,
    pub records: u64,
}

/// What every WAL prune does to the collections it makes lossy, said once for all of them:
/// afterwards their index folders are the only copy of the pruned rows' vectors, so Chroma's
/// documented repair (remove the folder, let it rebuild from the WAL) would lose those
/// vectors. `None` when the plan makes none lossy.
pub fn summary(made: &[MadeLossy]) -> Option<String> {
    if made.is_empty() {
        return None;
    }
    let each: Vec<String> = made
        .iter()
        .map(|m| {
            format!(
                "{} of {} records in {}",
                crate::units::count(m.loses),
                crate::units::count(m.records),
                m.name
            )
        })
        .collect();
    Some(format!(
        "the index folders become the only copy of the pruned rows' vectors: removing a folder \
         and letting Chroma rebuild it from the WAL loses nothing today, and would then lose the \
         vectors of {} (the prune's backup keeps the rows)",
        each.join(", ")
    ))
}

/// The collections of `plan` whose truth says a rebuild is lossless now and lossy after.
/// Collections without a truth (not read) are not named.
pub fn made_lossy(plan: &Plan, snap: &Snapshot) -> Vec<MadeLossy> {
    let mut out = Vec::new();
    for t in plan.effective() {
        let Some((id, _)) = &t.collection else {
            continue;
        };
        let Ok(i) = snap.find_collection(id) else {
            continue;
        };
        let c = &snap.collections[i];
        let Some(truth) = &c.truth else { continue };
        if let Some(loses) = truth.prune_makes_lossy() {
            if !out.iter().any(|m: &MadeLossy| m.name == c.name) {
                out.push(MadeLossy {
                    name: c.name.clone(),
                    loses,
                    records: truth.records,
                });
            }
        }
    }
    out
}
