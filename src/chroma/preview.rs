//! What `compact --repair` would do now for a damaged collection, as data: the first thing
//! `info`, `check` and the explorer say about a damaged index. Filled in by the compact job's
//! dry run (`jobs::compact::preview`); nothing here reads a file.

/// A dry run of `compact --repair` on one damaged collection.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RepairPreview {
    /// Whether the repair rebuilds the index (else `note` says why not).
    pub rebuilds: bool,
    /// Records it brings back from the WAL (vectors, or lost norms).
    pub restored: u64,
    /// Records whose vector is nowhere on disk: named, never invented.
    pub unrecoverable: u64,
    /// Records of a cosine index whose norm is gone and no WAL row holds: they keep their
    /// direction (queries find them) and `get()` returns them as unit vectors.
    pub direction_only: u64,
    pub note: Option<String>,
}

impl RepairPreview {
    /// One sentence: what the repair brings back and what stays lost.
    pub fn sentence(&self, persist_dir: &std::path::Path, collection_id: &str) -> String {
        if !self.rebuilds {
            return format!(
                "compact --repair cannot rebuild it: {}",
                self.note
                    .as_deref()
                    .unwrap_or("its index cannot be read whole")
            );
        }
        let mut s = format!(
            "chroma-wal compact {} --collection {collection_id} --repair rebuilds it: {} record(s) \
             brought back from the WAL, {} lost (no vector anywhere on disk)",
            persist_dir.display(),
            crate::units::count(self.restored),
            crate::units::count(self.unrecoverable)
        );
        if self.direction_only > 0 {
            s += &format!(
                ", {} keep their direction only (get() returns unit vectors)",
                crate::units::count(self.direction_only)
            );
        }
        s
    }
}
