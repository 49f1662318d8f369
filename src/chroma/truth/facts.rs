//! The truth about one collection's vector index, as a value: what the catalog keeps of it
//! and the front ends show. How it is found is the rest of this room.

/// What a rebuild from the WAL would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Every record comes back with its current vector.
    Lossless,
    /// This many records would come back without a vector.
    Loses(u64),
    /// Not known (a schema whose replay rules chroma-wal does not know).
    Unknown,
}

impl Rebuild {
    pub fn key(self) -> &'static str {
        match self {
            Rebuild::Lossless => "lossless",
            Rebuild::Loses(_) => "loses",
            Rebuild::Unknown => "unknown",
        }
    }

    pub fn loses(self) -> Option<u64> {
        match self {
            Rebuild::Lossless => Some(0),
            Rebuild::Loses(n) => Some(n),
            Rebuild::Unknown => None,
        }
    }
}

/// The truth about one collection's vector index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTruth {
    /// Records of the metadata segment.
    pub records: u64,
    /// Records a query can return (`None`: the index cannot be read, or was not).
    pub in_index: Option<u64>,
    /// Up to [`SAMPLE`] ids of records a query cannot return, in id order.
    pub missing_sample: Vec<String>,
    /// Elements of `data_level0.bin` that belong to no record (`None`: not read).
    pub ghosts: Option<u64>,
    /// Bytes their vectors keep on disk.
    pub ghost_bytes: Option<u64>,
    /// Of the ghosts, the elements the files hold that no id reaches now (marked deleted, a
    /// label no id names, a label's second element): what `compact` removes. The others are
    /// ids the WAL deletes when Chroma next loads the index.
    pub ghosts_on_disk: Option<u64>,
    /// Ids the pickle still names whose element is deleted or gone.
    pub stale_ids: Option<u64>,
    /// Removing the folder and letting this dir's release rebuild it.
    pub rebuild: Rebuild,
    /// The same after a prune of every prunable row of the collection (rows below its bound
    /// gone). `None` when nothing of it is prunable.
    pub rebuild_after_prune: Option<Rebuild>,
    /// Why, in one or two sentences (`None` when all is clean).
    pub note: Option<String>,
    /// Why the rebuild loses records, in this era (one sentence; `None`: it does not).
    pub rebuild_why: Option<String>,
    /// Elements marked deleted, counted in the same pass (`None`: not read).
    pub deleted_marks: Option<u64>,
}

/// How many missing ids are named.
pub const SAMPLE: usize = 10;

impl IndexTruth {
    pub fn missing(&self) -> Option<u64> {
        self.in_index.map(|n| self.records.saturating_sub(n))
    }

    /// Whether it needs saying: records unreachable, or a rebuild that loses some.
    pub fn is_clean(&self) -> bool {
        self.missing().unwrap_or(0) == 0 && !matches!(self.rebuild, Rebuild::Loses(_))
    }

    /// The few words a collection's row shows ("412 records unreachable by search").
    pub fn short(&self) -> Option<String> {
        match (self.missing(), self.rebuild) {
            (Some(m), _) if m > 0 => Some(format!(
                "{m} record{} unreachable by search",
                if m == 1 { "" } else { "s" }
            )),
            (_, Rebuild::Loses(n)) => Some(format!("a rebuild from the WAL loses {n}")),
            _ => None,
        }
    }

    /// The warning `info` and the explorer give for collection `name`, when there is one.
    pub fn warning(&self, name: &str) -> Option<String> {
        if self.is_clean() {
            return None;
        }
        Some(format!(
            "collection {name}: {}",
            self.note.as_deref().unwrap_or("index truth is not clean")
        ))
    }

    /// Whether a prune of this collection's prunable rows turns a lossless rebuild lossy,
    /// and what it would lose then.
    pub fn prune_makes_lossy(&self) -> Option<u64> {
        match (self.rebuild, self.rebuild_after_prune) {
            (Rebuild::Lossless, Some(Rebuild::Loses(n))) => Some(n),
            _ => None,
        }
    }
}
