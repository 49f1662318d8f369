//! Decoding of the `max_seq_id.seq_id` column: an 8-byte big-endian BLOB up to 0.6.x, an
//! INTEGER from 1.0. Anything else is "unknown", and unknown means "prune nothing".

use rusqlite::types::ValueRef;

/// The outcome of decoding one stored seq_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A valid seq_id, and whether it was stored as a BLOB (true) or an INTEGER (false).
    Value { seq_id: i64, blob: bool },
    /// Not usable; the reason is phrased for the user.
    Invalid(String),
}

/// Decode a big-endian 8-byte blob as Chroma's `_decode_seq_id` does for 8-byte ids.
pub fn decode_blob(bytes: &[u8]) -> Decoded {
    let Ok(arr) = <[u8; 8]>::try_from(bytes) else {
        return Decoded::Invalid(format!(
            "max_seq_id blob has {} bytes, expected 8",
            bytes.len()
        ));
    };
    let v = u64::from_be_bytes(arr);
    match i64::try_from(v) {
        Ok(seq_id) => Decoded::Value { seq_id, blob: true },
        Err(_) => Decoded::Invalid(format!("max_seq_id blob {v} is above 2^63-1")),
    }
}

/// Decode whatever SQLite handed back for `max_seq_id.seq_id`.
pub fn decode(value: ValueRef<'_>) -> Decoded {
    match value {
        ValueRef::Blob(b) => decode_blob(b),
        ValueRef::Integer(i) if i >= 0 => Decoded::Value {
            seq_id: i,
            blob: false,
        },
        ValueRef::Integer(i) => Decoded::Invalid(format!("max_seq_id {i} is negative")),
        ValueRef::Null => Decoded::Invalid("max_seq_id is NULL".into()),
        ValueRef::Real(r) => Decoded::Invalid(format!("max_seq_id is a REAL ({r})")),
        ValueRef::Text(_) => Decoded::Invalid("max_seq_id is TEXT".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_is_big_endian() {
        assert_eq!(
            decode_blob(&[0, 0, 0, 0, 0, 0, 0x01, 0x02]),
            Decoded::Value {
                seq_id: 258,
                blob: true
            }
        );
    }

    #[test]
    fn wrong_length_blob_is_invalid() {
        assert!(matches!(decode_blob(&[1, 2, 3]), Decoded::Invalid(m) if m.contains("3 bytes")));
        assert!(matches!(decode_blob(&[0; 24]), Decoded::Invalid(_)));
        assert!(matches!(decode_blob(&[]), Decoded::Invalid(_)));
    }

    #[test]
    fn blob_above_i64_is_invalid() {
        assert!(
            matches!(decode_blob(&[0x80, 0, 0, 0, 0, 0, 0, 0]), Decoded::Invalid(m) if m.contains("2^63"))
        );
        assert!(matches!(decode_blob(&[0xff; 8]), Decoded::Invalid(_)));
    }

    #[test]
    fn integers_and_others() {
        assert_eq!(
            decode(ValueRef::Integer(7)),
            Decoded::Value {
                seq_id: 7,
                blob: false
            }
        );
        assert!(
            matches!(decode(ValueRef::Integer(-1)), Decoded::Invalid(m) if m.contains("negative"))
        );
        assert!(matches!(decode(ValueRef::Null), Decoded::Invalid(_)));
        assert!(matches!(decode(ValueRef::Real(1.5)), Decoded::Invalid(_)));
        assert!(matches!(decode(ValueRef::Text(b"12")), Decoded::Invalid(_)));
    }
}
