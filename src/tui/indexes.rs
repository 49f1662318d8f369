//! Vector indexes as the third kind of thing to mark (beside WAL topics and orphan folders):
//! `i` marks the selected collection's index for a rebuild without its ghosts, with the records
//! the WAL can put back. The plan carries the collection ids; the job reads and plans each
//! index again on its own thread (see [`crate::jobs::compact`]).

use super::app::{App, RowRef};
use super::truth::TruthState;

/// The key an index mark is stored under in `App::marked`.
pub fn key(collection_id: &str) -> String {
    format!("index:{collection_id}")
}

/// What a rebuild of collection `i`'s index would do, from the truth already read: `None`
/// when there is nothing to do.
pub fn work(app: &App, i: usize) -> Option<String> {
    let c = &app.snap.as_ref()?.collections[i];
    let v = c.segments.iter().find(|s| s.scope == "VECTOR")?;
    let damaged = v.health.unloadable().is_some();
    let t = c.truth.as_ref()?;
    let ghosts = t.ghosts_on_disk.unwrap_or(0);
    let missing = t.missing().unwrap_or(0);
    if ghosts == 0 && missing == 0 && !damaged {
        return None;
    }
    let mut parts = Vec::new();
    if damaged {
        parts.push("damaged: rebuilt from its whole parts".to_string());
    }
    if ghosts > 0 {
        parts.push(format!("{} ghost(s) removed", crate::units::count(ghosts)));
    }
    if missing > 0 {
        parts.push(format!(
            "{} missing record(s) put back where the WAL holds them",
            crate::units::count(missing)
        ));
    }
    Some(parts.join(", "))
}

impl App {
    /// Mark or unmark the selected collection's index.
    pub(super) fn mark_index(&mut self) {
        let Some(RowRef::Collection(i)) = self.selected() else {
            self.message = Some("select a collection to rebuild its index".into());
            return;
        };
        let Some(s) = self.snap.as_ref() else { return };
        let k = key(&s.collections[i].id);
        let name = s.collections[i].name.clone();
        if self.marked.remove(&k) {
            return;
        }
        if self.truth != TruthState::Ready {
            self.message = Some("still reading the indexes…".into());
            return;
        }
        match work(self, i) {
            Some(_) => {
                self.marked.insert(k);
            }
            None => {
                self.message = Some(format!(
                    "{name}: its index holds no ghost and misses no record; nothing to rebuild"
                ))
            }
        }
    }

    /// The collection ids whose index is marked, in catalog order.
    pub fn marked_indexes(&self) -> Vec<String> {
        let Some(s) = self.snap.as_ref() else {
            return Vec::new();
        };
        s.collections
            .iter()
            .filter(|c| self.marked.contains(&key(&c.id)))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Whether collection `i`'s index is marked.
    pub fn index_marked(&self, i: usize) -> bool {
        self.snap
            .as_ref()
            .is_some_and(|s| self.marked.contains(&key(&s.collections[i].id)))
    }
}
