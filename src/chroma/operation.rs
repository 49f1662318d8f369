//! The WAL's operation codes (`embeddings_queue.operation`), the same in every era.

/// What a WAL row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Add,
    Update,
    Upsert,
    Delete,
    Unknown(i64),
}

impl Operation {
    pub fn from_code(n: i64) -> Operation {
        match n {
            0 => Operation::Add,
            1 => Operation::Update,
            2 => Operation::Upsert,
            3 => Operation::Delete,
            n => Operation::Unknown(n),
        }
    }

    pub fn name(self) -> String {
        match self {
            Operation::Add => "add".into(),
            Operation::Update => "update".into(),
            Operation::Upsert => "upsert".into(),
            Operation::Delete => "delete".into(),
            Operation::Unknown(n) => format!("unknown({n})"),
        }
    }
}
