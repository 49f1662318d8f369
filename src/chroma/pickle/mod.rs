//! `index_metadata.pickle` as data: validated whole, never executed.
//!
//! Chroma loads this file with Python's `pickle.load` (0.4–0.6) or its Rust port (1.x). A file
//! that loader cannot read makes the index unloadable, and then the WAL is the only way to
//! rebuild it. So a `max_seq_id` counts only when the file is structurally whole: every opcode
//! and frame present up to a final STOP, nothing after it, and the shape Chroma writes.
//!
//! [`read`] walks every opcode of the file once, streaming (memory does not grow with the
//! file), with a skeleton stack machine: it keeps the *kind* of each value and the few scalars
//! it needs (the state dict's `max_seq_id`, `dimensionality` and the size of `id_to_label`),
//! and skips string and bytes payloads. It imports nothing and calls nothing: a GLOBAL that
//! names anything but Chroma's own `PersistentData` class makes the file unreadable.
//!
//! [`decode_whole`] (serde-pickle, whole file in memory) stays as an independent decoder for
//! the fuzz target and tests to compare against.
//!
//! Rooms: this file holds the shapes (what a whole pickle says, [`PickleFacts`]) and the entry
//! points; `walker.rs` the streaming walker and the fast read that stops at `max_seq_id`
//! ([`read_prefix`]); `source.rs` the walker's read buffer; `whole.rs` the second decoder.

use std::fs::File;
use std::path::Path;

/// The class Chroma's Python releases pickle (`PersistentData`), module and name.
pub(crate) const PD_MODULE: &[u8] = b"chromadb.segment.impl.vector.local_persistent_hnsw";
pub(crate) const PD_CLASS: &[u8] = b"PersistentData";
/// The newest pickle protocol (Python 3.8+).
const HIGHEST_PROTOCOL: u8 = 5;
/// A protocol-0 text line longer than this is not something Chroma wrote.
const MAX_LINE: usize = 4096;

/// What a pickle says about `max_seq_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickleSeqId {
    /// The key holds an integer that is a valid seq_id.
    Value(i64),
    /// The key is present but None (Chroma 1.x writes this before the first flush), or absent.
    NotRecorded(String),
    /// The file is missing, unreadable, cut, hostile or of a shape we do not know.
    Unreadable(String),
}

/// Which of Chroma's two writers produced the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Python (0.4–0.6): a `PersistentData` object whose state is the dict.
    PersistentData,
    /// Rust (1.x): a plain dict with the same keys.
    Dict,
}

impl Shape {
    pub fn key(self) -> &'static str {
        match self {
            Shape::PersistentData => "PersistentData",
            Shape::Dict => "dict",
        }
    }
}

/// What a whole, readable pickle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleFacts {
    pub shape: Shape,
    /// `Value`, or `NotRecorded` (None or absent); never `Unreadable`.
    pub max_seq_id: PickleSeqId,
    /// `Some(Some(d))` an integer, `Some(None)` the value None, `None` no such key.
    pub dimensionality: Option<Option<i64>>,
    /// Entries of `id_to_label` (one per live vector), when it is a dict.
    pub labels: Option<u64>,
    /// `total_elements_added`, when it is an integer: every label Chroma has handed out, so
    /// the element count of the index this pickle was written with.
    pub total_elements_added: Option<i64>,
    /// The file's length.
    pub bytes: u64,
}

/// Read and validate a pickle file. `Err` says, in words, why Chroma could not load it.
pub fn read(path: &Path) -> Result<PickleFacts, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    validate(file, len)
}

/// Validate a pickle held in memory (tests and fuzzing).
pub fn validate_bytes(data: &[u8]) -> Result<PickleFacts, String> {
    validate(data, data.len() as u64)
}

/// Only `max_seq_id` of [`read`], as one value.
pub fn read_max_seq_id(path: &Path) -> PickleSeqId {
    match read(path) {
        Ok(f) => f.max_seq_id,
        Err(why) => PickleSeqId::Unreadable(why),
    }
}

mod source;
mod stack;
mod walker;
mod whole;

/// One entry of a pickle's `id_to_label`: the id (hashed) and its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdLabel {
    pub id: crate::chroma::idhash::IdHash,
    pub label: u64,
}

/// The entries of `id_to_label`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    pub pairs: Vec<IdLabel>,
    /// Entries whose key or value could not be read as an id and a label (a key fetched from
    /// the memo, a value that is not an integer): a map with any is not complete.
    pub unread: u64,
}

/// [`read`], and the entries of `id_to_label` (`--deep`: memory grows with the labels).
pub fn read_labels(path: &Path) -> Result<(PickleFacts, LabelMap), String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    walker::validate_with_labels(file, len)
}

pub use walker::read_prefix;
use walker::validate;
pub use whole::{decode_whole, in_guard};

#[cfg(test)]
mod tests {
    use super::walker::{utf8_surrogatepass, MAX_DEPTH};
    use super::*;

    /// Python 3 `pickle.dumps(PersistentData(...), protocol=4)`, as Chroma writes it, with
    /// `labels` entries in id_to_label.
    pub(crate) fn python_shape(max_seq: &[u8], dim: &[u8], labels: usize) -> Vec<u8> {
        let mut body = Vec::new();
        body.push(0x8c);
        body.push(PD_MODULE.len() as u8);
        body.extend_from_slice(PD_MODULE);
        body.push(0x94);
        body.push(0x8c);
        body.push(14);
        body.extend_from_slice(b"PersistentData");
        body.extend_from_slice(&[0x94, 0x93, 0x94, 0x29, 0x81, 0x94, 0x7d, 0x94, 0x28]);
        for (k, val) in [
            (&b"dimensionality"[..], dim),
            (b"total_elements_added", &[0x4b, 120][..]),
            (b"max_seq_id", max_seq),
        ] {
            body.push(0x8c);
            body.push(k.len() as u8);
            body.extend_from_slice(k);
            body.push(0x94);
            body.extend_from_slice(val);
        }
        body.extend_from_slice(&[0x8c, 11]);
        body.extend_from_slice(b"id_to_label");
        body.extend_from_slice(&[0x94, 0x7d, 0x94]);
        if labels > 0 {
            body.push(0x28);
            for i in 0..labels {
                let id = format!("id{i}");
                body.push(0x8c);
                body.push(id.len() as u8);
                body.extend_from_slice(id.as_bytes());
                body.push(0x94);
                body.extend_from_slice(&[0x4b, i as u8]);
            }
            body.push(0x75);
        }
        // SETITEMS (state), BUILD, STOP.
        body.extend_from_slice(&[0x75, 0x62, 0x2e]);
        let mut v = vec![0x80, 4, 0x95];
        v.extend_from_slice(&(body.len() as u64).to_le_bytes());
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn reads_python_shape_whole() {
        let f = validate_bytes(&python_shape(&[0x4b, 120], &[0x4b, 8], 3)).unwrap();
        assert_eq!(f.shape, Shape::PersistentData);
        assert_eq!(f.max_seq_id, PickleSeqId::Value(120));
        assert_eq!(f.dimensionality, Some(Some(8)));
        assert_eq!(f.labels, Some(3));
        let big = python_shape(&[0x8a, 5, 0, 0, 0, 0, 1], &[0x4e], 0);
        let f = validate_bytes(&big).unwrap();
        assert_eq!(f.max_seq_id, PickleSeqId::Value(1 << 32));
        assert_eq!(f.dimensionality, Some(None));
        assert_eq!(decode_whole(&big), PickleSeqId::Value(1 << 32));
    }

    #[test]
    fn every_cut_is_cut_short() {
        let full = python_shape(&[0x4b, 120], &[0x4b, 8], 5);
        for cut in 0..full.len() {
            let e = validate_bytes(&full[..cut]).unwrap_err();
            assert!(
                e.contains("cut short") || e.contains("empty"),
                "cut at {cut}: {e}"
            );
            assert!(e.contains(&format!("at byte {cut}")) || cut == 0, "{e}");
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut full = python_shape(&[0x4b, 120], &[0x4b, 8], 2);
        full.push(0);
        let e = validate_bytes(&full).unwrap_err();
        assert!(e.contains("1 bytes of trailing garbage"), "{e}");
    }

    #[test]
    fn bad_values_and_strangers() {
        let neg = python_shape(&[0x4a, 0xff, 0xff, 0xff, 0xff], &[0x4b, 8], 0);
        assert!(validate_bytes(&neg).unwrap_err().contains("negative"));
        let none = python_shape(&[0x4e], &[0x4b, 8], 0);
        assert!(matches!(
            validate_bytes(&none).unwrap().max_seq_id,
            PickleSeqId::NotRecorded(_)
        ));
        assert!(validate_bytes(b"garbage that is not a pickle").is_err());
        let mut future = python_shape(&[0x4b, 1], &[0x4b, 8], 0);
        future[1] = 6;
        assert!(validate_bytes(&future)
            .unwrap_err()
            .contains("unsupported pickle protocol 6"));
        // What an `os.system` payload looks like: a STACK_GLOBAL of another class, REDUCE.
        let evil = b"\x80\x04\x95\x16\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.";
        assert!(validate_bytes(evil).unwrap_err().contains("names code"));
        let evil0 = b"cos\nsystem\n(S'true'\ntR.";
        assert!(validate_bytes(evil0).unwrap_err().contains("os.system"));
    }

    #[test]
    fn collects_id_to_label_in_both_shapes() {
        use crate::chroma::idhash::IdHash;
        let p = python_shape(&[0x4b, 120], &[0x4b, 8], 3);
        let (f, m) = walker::validate_with_labels(&p[..], p.len() as u64).unwrap();
        assert_eq!(f.labels, Some(3));
        assert_eq!(m.unread, 0);
        let want: Vec<IdLabel> = (0..3)
            .map(|i| IdLabel {
                id: IdHash::of(format!("id{i}").as_bytes()),
                label: i,
            })
            .collect();
        assert_eq!(m.pairs, want);
        let rust = b"\x80\x03}(X\x0e\x00\x00\x00dimensionalityNX\n\x00\x00\x00max_seq_idK*X\x0b\x00\x00\x00id_to_label}(X\x01\x00\x00\x00aK\x01uu.";
        let (_, m) = walker::validate_with_labels(&rust[..], rust.len() as u64).unwrap();
        assert_eq!(
            m.pairs,
            vec![IdLabel {
                id: IdHash::of(b"a"),
                label: 1
            }]
        );
        // Without collecting, nothing is hashed and the facts are the same.
        assert_eq!(validate_bytes(&p).unwrap(), f);
    }

    #[test]
    fn reads_rust_shape() {
        // protocol 3 {"dimensionality": None, "max_seq_id": 42, "id_to_label": {"a": 1}}
        let p = b"\x80\x03}(X\x0e\x00\x00\x00dimensionalityNX\n\x00\x00\x00max_seq_idK*X\x0b\x00\x00\x00id_to_label}(X\x01\x00\x00\x00aK\x01uu.";
        let f = validate_bytes(p).unwrap();
        assert_eq!(f.shape, Shape::Dict);
        assert_eq!(f.max_seq_id, PickleSeqId::Value(42));
        assert_eq!(f.dimensionality, Some(None));
        assert_eq!(f.labels, Some(1));
        assert_eq!(decode_whole(p), PickleSeqId::Value(42));
    }

    #[test]
    fn what_python_refuses_to_decode_is_refused() {
        // An id that is not UTF-8 ("a" replaced by 0xff): Python's unpickler fails on it.
        let good = b"\x80\x03}(X\x0e\x00\x00\x00dimensionalityNX\n\x00\x00\x00max_seq_idK*X\x0b\x00\x00\x00id_to_label}(X\x01\x00\x00\x00aK\x01uu.";
        assert!(validate_bytes(good).is_ok());
        let mut bad = good.to_vec();
        let at = bad.len() - 6;
        assert_eq!(bad[at], b'a');
        bad[at] = 0xff;
        assert!(validate_bytes(&bad).unwrap_err().contains("not UTF-8"));
        // An encoded lone surrogate is what Python's surrogatepass accepts.
        assert!(utf8_surrogatepass(b"x\xed\xa0\x80y"));
        assert!(!utf8_surrogatepass(b"x\xc3"));
        // A frame that begins inside another one.
        let framed =
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N.";
        assert!(validate_bytes(framed).unwrap_err().contains("new frame"));
        // A stack that only grows.
        let mut deep = b"\x80\x03".to_vec();
        deep.extend(std::iter::repeat_n(b'N', MAX_DEPTH + 10));
        deep.push(b'.');
        assert!(validate_bytes(&deep).unwrap_err().contains("pile up"));
    }
}
