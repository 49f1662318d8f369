//! Reading `max_seq_id` out of an HNSW segment's `index_metadata.pickle`, as data.
//!
//! Pickles are never executed: there is no Python here, only two decoders.
//! - A fast path walks the opcodes of the state dict from the start of the file and stops at
//!   the `max_seq_id` key (the third key in every shape Chroma writes), so a 60 MB pickle costs
//!   a few hundred bytes of reading. It understands only the handful of opcodes Chroma's two
//!   writers emit before that key, and says "unsure" at anything else.
//! - When unsure, serde-pickle decodes the whole file into a value (the Python shape's `BUILD`
//!   turns the object into its state dict) and the key is looked up there.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_pickle::{DeOptions, HashableValue, Value};

/// How many bytes the fast path reads at most.
const FAST_PREFIX: u64 = 64 * 1024;
/// Above this size a pickle the fast path could not read is not decoded whole: memory would
/// grow to many times the file size. The segment's max_seq_id is then unknown.
pub const FALLBACK_LIMIT: u64 = 256 * 1024 * 1024;

/// What a pickle says about `max_seq_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickleSeqId {
    /// The key holds an integer that is a valid seq_id.
    Value(i64),
    /// The key is present but None (Chroma 1.x writes this before the first flush), or absent.
    NotRecorded(String),
    /// The file is missing, unreadable, truncated, hostile or of a shape we do not know.
    Unreadable(String),
}

/// Which decoder produced a [`PickleSeqId`] (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Fast,
    Fallback,
}

/// Read `max_seq_id` from a pickle file.
pub fn read_max_seq_id(path: &Path) -> PickleSeqId {
    read_max_seq_id_traced(path).0
}

/// As [`read_max_seq_id`], also telling which decoder answered.
pub fn read_max_seq_id_traced(path: &Path) -> (PickleSeqId, Decoder) {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return (
                PickleSeqId::Unreadable(format!("cannot open {}: {e}", path.display())),
                Decoder::Fast,
            )
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut prefix = Vec::with_capacity(FAST_PREFIX.min(len) as usize);
    if let Err(e) = (&mut file).take(FAST_PREFIX).read_to_end(&mut prefix) {
        return (
            PickleSeqId::Unreadable(format!("cannot read {}: {e}", path.display())),
            Decoder::Fast,
        );
    }
    if let Fast::Found(v) = fast_max_seq_id(&prefix) {
        return (v, Decoder::Fast);
    }
    if len > FALLBACK_LIMIT {
        return (
            PickleSeqId::Unreadable(format!(
                "pickle of {} has an unexpected layout and is too large to decode whole",
                crate::units::bytes(len)
            )),
            Decoder::Fallback,
        );
    }
    let mut all = prefix;
    if let Err(e) = file.read_to_end(&mut all) {
        return (
            PickleSeqId::Unreadable(format!("cannot read {}: {e}", path.display())),
            Decoder::Fallback,
        );
    }
    (decode_whole(&all), Decoder::Fallback)
}

/// Decode a whole pickle with serde-pickle and look up `max_seq_id`.
pub fn decode_whole(data: &[u8]) -> PickleSeqId {
    let decoded = guarded(|| serde_pickle::value_from_slice(data, DeOptions::new()));
    let value = match decoded {
        Some(Ok(v)) => v,
        Some(Err(e)) => return PickleSeqId::Unreadable(format!("not a readable pickle: {e}")),
        None => return PickleSeqId::Unreadable("pickle decoder failed on this file".into()),
    };
    match value {
        Value::Dict(d) => from_state(&d),
        other => PickleSeqId::Unreadable(format!(
            "pickle holds {}, not Chroma's index metadata",
            kind(&other)
        )),
    }
}

fn from_state(d: &BTreeMap<HashableValue, Value>) -> PickleSeqId {
    match d.get(&HashableValue::String("max_seq_id".into())) {
        None => PickleSeqId::NotRecorded("pickle has no max_seq_id key".into()),
        Some(Value::None) => PickleSeqId::NotRecorded("pickle max_seq_id is None".into()),
        Some(Value::I64(i)) => int_seq_id(*i as i128),
        Some(Value::Int(big)) => {
            PickleSeqId::Unreadable(format!("pickle max_seq_id {big} does not fit a seq_id"))
        }
        Some(other) => PickleSeqId::Unreadable(format!(
            "pickle max_seq_id is {}, not an integer",
            kind(other)
        )),
    }
}

fn int_seq_id(v: i128) -> PickleSeqId {
    if v < 0 {
        PickleSeqId::Unreadable(format!("pickle max_seq_id {v} is negative"))
    } else if v > i64::MAX as i128 {
        PickleSeqId::Unreadable(format!("pickle max_seq_id {v} is above 2^63-1"))
    } else {
        PickleSeqId::Value(v as i64)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an integer",
        Value::F64(_) => "a float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dict",
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

/// Result of the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fast {
    Found(PickleSeqId),
    Unsure,
}

/// A scalar the fast path can hold on its tiny stack.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Str(String),
    Int(i128),
    None,
    Other,
    Mark,
}

/// Walk the opcodes until the top-level state dict's `max_seq_id` value, or give up.
///
/// Accepted layouts (both measured on real files):
/// - Python: `PROTO 4|5, FRAME, str, str, STACK_GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK,
///   key value key value key value ...` (the instance's state, later applied by BUILD);
/// - Chroma 1.x (Rust): `PROTO 3, EMPTY_DICT, MARK, key value ...`.
pub fn fast_max_seq_id(data: &[u8]) -> Fast {
    let mut r = Reader { data, pos: 0 };
    // Phase 1: the header, up to the state dict's EMPTY_DICT.
    let mut strings = 0usize;
    let mut saw_class = false;
    loop {
        let Some(op) = r.u8() else {
            return Fast::Unsure;
        };
        match op {
            0x80 => {
                // PROTO
                if r.take(1).is_none() {
                    return Fast::Unsure;
                }
            }
            0x95 => {
                // FRAME
                if r.take(8).is_none() {
                    return Fast::Unsure;
                }
            }
            0x94 => {} // MEMOIZE
            0x71 => {
                if r.take(1).is_none() {
                    return Fast::Unsure;
                }
            }
            0x72 => {
                if r.take(4).is_none() {
                    return Fast::Unsure;
                }
            }
            0x8c | 0x58 | 0x8d => {
                if r.string(op).is_none() {
                    return Fast::Unsure;
                }
                strings += 1;
            }
            0x93 => {
                // STACK_GLOBAL needs the two strings pushed before it.
                if strings < 2 {
                    return Fast::Unsure;
                }
                saw_class = true;
            }
            0x63 => {
                // GLOBAL "module\nname\n"
                if r.line().is_none() || r.line().is_none() {
                    return Fast::Unsure;
                }
                saw_class = true;
            }
            0x29 | 0x81 if saw_class => {} // EMPTY_TUPLE, NEWOBJ
            0x7d => break,                 // EMPTY_DICT: the state dict starts
            _ => return Fast::Unsure,
        }
    }
    // Phase 2: MARK then alternating key/value scalars, memo ops ignored.
    let mut stack: Vec<Item> = Vec::new();
    loop {
        let Some(op) = r.u8() else {
            return Fast::Unsure;
        };
        let item = match op {
            0x94 => continue,
            0x71 => {
                if r.take(1).is_none() {
                    return Fast::Unsure;
                }
                continue;
            }
            0x72 => {
                if r.take(4).is_none() {
                    return Fast::Unsure;
                }
                continue;
            }
            0x28 => Item::Mark,
            0x8c | 0x58 | 0x8d => match r.string(op) {
                Some(s) => Item::Str(s),
                None => return Fast::Unsure,
            },
            0x4b => match r.take(1) {
                Some(b) => Item::Int(b[0] as i128),
                None => return Fast::Unsure,
            },
            0x4d => match r.take(2) {
                Some(b) => Item::Int(u16::from_le_bytes([b[0], b[1]]) as i128),
                None => return Fast::Unsure,
            },
            0x4a => match r.take(4) {
                Some(b) => Item::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i128),
                None => return Fast::Unsure,
            },
            0x8a => {
                // LONG1: n bytes of little-endian two's complement.
                let Some(n) = r.u8() else { return Fast::Unsure };
                let Some(b) = r.take(n as usize) else {
                    return Fast::Unsure;
                };
                if n > 16 {
                    Item::Int(i128::MAX)
                } else {
                    Item::Int(le_twos(b))
                }
            }
            0x4e => Item::None,
            0x88 | 0x89 => Item::Other,
            0x47 => {
                if r.take(8).is_none() {
                    return Fast::Unsure;
                }
                Item::Other
            }
            _ => return Fast::Unsure,
        };
        // The first item must be the MARK that opens the items.
        if stack.is_empty() && item != Item::Mark {
            return Fast::Unsure;
        }
        stack.push(item);
        // After MARK, pairs: odd positions keys, even positions values.
        let n = stack.len() - 1;
        if n >= 2 && n % 2 == 0 {
            let key = &stack[n - 1];
            let val = &stack[n];
            match key {
                Item::Str(k) if k == "max_seq_id" => {
                    return Fast::Found(match val {
                        Item::Int(v) => int_seq_id(*v),
                        Item::None => PickleSeqId::NotRecorded("pickle max_seq_id is None".into()),
                        _ => return Fast::Unsure,
                    });
                }
                Item::Str(_) => {}
                _ => return Fast::Unsure,
            }
        }
        if n > 64 {
            return Fast::Unsure;
        }
    }
}

fn le_twos(b: &[u8]) -> i128 {
    if b.is_empty() {
        return 0;
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    let mut buf = if neg { [0xffu8; 16] } else { [0u8; 16] };
    buf[..b.len()].copy_from_slice(b);
    i128::from_le_bytes(buf)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn string(&mut self, op: u8) -> Option<String> {
        let n = match op {
            0x8c => self.u8()? as usize,
            0x58 => {
                let b = self.take(4)?;
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
            }
            _ => {
                let b = self.take(8)?;
                usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()?
            }
        };
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).ok()
    }

    fn line(&mut self) -> Option<&'a [u8]> {
        let rest = self.data.get(self.pos..)?;
        let nl = rest.iter().position(|&c| c == b'\n')?;
        self.pos += nl + 1;
        Some(&rest[..nl])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python 3 `pickle.dumps(PersistentData(...), protocol=4)` header, as Chroma writes it.
    fn python_shape(max_seq: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, 4, 0x95];
        v.extend_from_slice(&0u64.to_le_bytes());
        let module = b"chromadb.segment.impl.vector.local_persistent_hnsw";
        v.push(0x8c);
        v.push(module.len() as u8);
        v.extend_from_slice(module);
        v.push(0x94);
        v.push(0x8c);
        v.push(14);
        v.extend_from_slice(b"PersistentData");
        v.extend_from_slice(&[0x94, 0x93, 0x94, 0x29, 0x81, 0x94, 0x7d, 0x94, 0x28]);
        for (k, val) in [
            (&b"dimensionality"[..], &[0x4b, 4][..]),
            (b"total_elements_added", &[0x4b, 120]),
            (b"max_seq_id", max_seq),
        ] {
            v.push(0x8c);
            v.push(k.len() as u8);
            v.extend_from_slice(k);
            v.push(0x94);
            v.extend_from_slice(val);
        }
        // id_to_label: {} and the rest; then SETITEMS, BUILD, STOP.
        v.extend_from_slice(&[0x8c, 11]);
        v.extend_from_slice(b"id_to_label");
        v.extend_from_slice(&[0x94, 0x7d, 0x94, 0x75, 0x62, 0x2e]);
        v
    }

    #[test]
    fn fast_path_reads_python_shape() {
        assert_eq!(
            fast_max_seq_id(&python_shape(&[0x4b, 120])),
            Fast::Found(PickleSeqId::Value(120))
        );
        assert_eq!(
            fast_max_seq_id(&python_shape(&[0x4a, 0x40, 0x42, 0x0f, 0x00])),
            Fast::Found(PickleSeqId::Value(1_000_000))
        );
        // LONG1 with 5 bytes: 2^32.
        assert_eq!(
            fast_max_seq_id(&python_shape(&[0x8a, 5, 0, 0, 0, 0, 1])),
            Fast::Found(PickleSeqId::Value(1 << 32))
        );
    }

    #[test]
    fn fast_path_flags_bad_values() {
        assert!(matches!(
            fast_max_seq_id(&python_shape(&[0x4a, 0xff, 0xff, 0xff, 0xff])),
            Fast::Found(PickleSeqId::Unreadable(m)) if m.contains("negative")
        ));
        assert!(matches!(
            fast_max_seq_id(&python_shape(&[0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0])),
            Fast::Found(PickleSeqId::Unreadable(m)) if m.contains("2^63")
        ));
        assert!(matches!(
            fast_max_seq_id(&python_shape(&[0x4e])),
            Fast::Found(PickleSeqId::NotRecorded(_))
        ));
    }

    #[test]
    fn fast_path_is_unsure_on_truncation_and_strangers() {
        let full = python_shape(&[0x4b, 120]);
        for cut in 0..full.len() - 20 {
            // Any cut before the value is read must not yield a value.
            if let Fast::Found(PickleSeqId::Value(_)) = fast_max_seq_id(&full[..cut]) {
                assert!(
                    cut > 200,
                    "value found in a truncated prefix of {cut} bytes"
                );
            }
        }
        assert_eq!(fast_max_seq_id(b""), Fast::Unsure);
        assert_eq!(
            fast_max_seq_id(b"garbage that is not a pickle"),
            Fast::Unsure
        );
        // A REDUCE-based pickle (what `os.system` payloads use) is not our shape.
        assert_eq!(
            fast_max_seq_id(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."),
            Fast::Unsure
        );
    }

    #[test]
    fn whole_decoder_reads_plain_dict_and_rejects_code() {
        // protocol 3 {"dimensionality": None, "max_seq_id": 42}
        let p = b"\x80\x03}q\x00(X\x0e\x00\x00\x00dimensionalityq\x01NX\n\x00\x00\x00max_seq_idq\x02K*u.";
        assert_eq!(decode_whole(p), PickleSeqId::Value(42));
        let evil = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.";
        assert!(matches!(decode_whole(evil), PickleSeqId::Unreadable(_)));
        assert!(matches!(
            decode_whole(b"\x80\x04"),
            PickleSeqId::Unreadable(_)
        ));
    }
}
