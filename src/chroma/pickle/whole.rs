//! The independent decoder (serde-pickle, the whole file in memory), kept for the fuzz
//! target and tests to compare the walker against.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_pickle::{DeOptions, HashableValue, Value};

use super::walker::int_seq_id;
use super::PickleSeqId;

// --- the independent decoder ---------------------------------------------------------------

/// Decode a whole pickle with serde-pickle and look up `max_seq_id` (an independent second
/// opinion for tests and fuzzing; memory grows with the file).
pub fn decode_whole(data: &[u8]) -> PickleSeqId {
    let decoded = guarded(|| serde_pickle::value_from_slice(data, DeOptions::new()));
    let value = match decoded {
        Some(Ok(v)) => v,
        Some(Err(e)) => return PickleSeqId::Unreadable(format!("not a readable pickle: {e}")),
        None => return PickleSeqId::Unreadable("pickle decoder failed on this file".into()),
    };
    match value {
        Value::Dict(d) => from_state(&d),
        _ => PickleSeqId::Unreadable("pickle holds something other than a dict".into()),
    }
}

fn from_state(d: &BTreeMap<HashableValue, Value>) -> PickleSeqId {
    match d.get(&HashableValue::String("max_seq_id".into())) {
        None => PickleSeqId::NotRecorded("pickle has no max_seq_id key".into()),
        Some(Value::None) => PickleSeqId::NotRecorded("pickle max_seq_id is None".into()),
        Some(Value::I64(i)) => int_seq_id(*i as i128),
        Some(_) => PickleSeqId::Unreadable("pickle max_seq_id is not a small integer".into()),
    }
}

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// True while a decoder runs under [`guarded`]; the binary's panic hook stays quiet then.
pub fn in_guard() -> bool {
    GUARDED.with(|g| g.get())
}

/// Run a third-party decoder on untrusted bytes; a panic in it becomes `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    GUARDED.with(|g| g.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    GUARDED.with(|g| g.set(false));
    r
}
