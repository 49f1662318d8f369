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

impl MadeLossy {
    pub fn sentence(&self) -> String {
        format!(
            "collection {}: removing its index folder and letting Chroma rebuild it from the \
             WAL loses nothing today; after this prune it would lose the vectors of {} of {} \
             records (the prune's backup keeps the rows)",
            self.name, self.loses, self.records
        )
    }
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
