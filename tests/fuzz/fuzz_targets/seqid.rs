//! The max_seq_id decoder on arbitrary blobs and integers: never panics, and a decoded value
//! is never negative and equals the big-endian reading of an 8-byte blob.
#![no_main]

use chroma_wal::chroma::seqid::{decode, decode_blob, Decoded};
use libfuzzer_sys::fuzz_target;
use rusqlite::types::ValueRef;

fuzz_target!(|data: &[u8]| {
    if let Decoded::Value { seq_id, blob } = decode_blob(data) {
        assert!(seq_id >= 0 && blob && data.len() == 8);
        assert_eq!(seq_id as u64, u64::from_be_bytes(data.try_into().unwrap()));
    }
    if data.len() >= 8 {
        let n = i64::from_le_bytes(data[..8].try_into().unwrap());
        match decode(ValueRef::Integer(n)) {
            Decoded::Value { seq_id, .. } => assert!(seq_id == n && n >= 0),
            Decoded::Invalid(_) => assert!(n < 0),
        }
    }
    let _ = decode(ValueRef::Blob(data));
    let _ = decode(ValueRef::Text(data));
});
