//! The pickle reader on arbitrary bytes: the fast opcode walk and the serde-pickle fallback
//! must return a value, "not recorded" or "unreadable", never panic or run anything; and
//! when the fast path is sure of a value, the whole decoder must not contradict it.
#![no_main]

use chroma_wal::chroma::pickle::{decode_whole, fast_max_seq_id, Fast, PickleSeqId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fast = fast_max_seq_id(data);
    let whole = decode_whole(data);
    if let (Fast::Found(PickleSeqId::Value(a)), PickleSeqId::Value(b)) = (&fast, &whole) {
        assert_eq!(a, b, "fast path and full decode disagree");
    }
});
