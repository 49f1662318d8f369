//! The whole-pickle validator on arbitrary bytes: it must return facts or a reason, never
//! panic or run anything; and when it accepts a file and serde-pickle (an independent
//! decoder) reads a max_seq_id from it too, the two must agree.
#![no_main]

use chroma_wal::chroma::pickle::{decode_whole, validate_bytes, PickleSeqId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ours = validate_bytes(data);
    let whole = decode_whole(data);
    if let (Ok(f), PickleSeqId::Value(b)) = (&ours, &whole) {
        if let PickleSeqId::Value(a) = f.max_seq_id {
            assert_eq!(a, *b, "the validator and serde-pickle disagree");
        }
    }
    // A file cut anywhere before its end is never accepted.
    if ours.is_ok() && data.len() > 1 {
        assert!(validate_bytes(&data[..data.len() - 1]).is_err());
    }
});
