//! One topic of a plan: what the plan and the seq_id guard both work on (the guard below
//! the plan, so neither imports the other).

/// One topic of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTopic {
    pub topic: String,
    /// `(id, name)` of the collection that reads this topic; `None` for an orphan topic.
    pub collection: Option<(String, String)>,
    /// Rows with `seq_id < bound` go. `None`: nothing of this topic may go (see `note`).
    pub bound: Option<i64>,
    /// Rows that will be deleted.
    pub rows: u64,
    /// All rows of the topic.
    pub wal_rows: u64,
    /// Estimated payload bytes freed.
    pub bytes: u64,
    /// Why nothing is deleted, when `rows` is 0.
    pub note: Option<String>,
}

impl PlanTopic {
    pub fn is_orphan(&self) -> bool {
        self.collection.is_none()
    }

    pub fn label(&self) -> String {
        match &self.collection {
            Some((_, name)) => name.clone(),
            None => "(orphan)".into(),
        }
    }
}
