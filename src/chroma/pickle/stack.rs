//! The values on the pickle walker's stack (`walker.rs`): what kind each is, and only
//! what the checks need of it (a recognised name, a small scalar, a dict's state, an id's hash).

use crate::chroma::idhash::IdHash;

use super::source::Bad;
use super::{PD_CLASS, PD_MODULE};

/// Strings the walker recognises; every other string is only a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Other,
    Module,
    Class,
    Dimensionality,
    MaxSeqId,
    IdToLabel,
    TotalElementsAdded,
}

pub(super) fn tag_of(s: &[u8]) -> Tag {
    match s {
        b"dimensionality" => Tag::Dimensionality,
        b"max_seq_id" => Tag::MaxSeqId,
        b"id_to_label" => Tag::IdToLabel,
        b"total_elements_added" => Tag::TotalElementsAdded,
        PD_MODULE => Tag::Module,
        PD_CLASS => Tag::Class,
        _ => Tag::Other,
    }
}

/// The bytes of a recognised name.
pub(super) fn tag_name(t: Tag) -> Option<&'static [u8]> {
    Some(match t {
        Tag::Other => return None,
        Tag::Module => PD_MODULE,
        Tag::Class => PD_CLASS,
        Tag::Dimensionality => b"dimensionality",
        Tag::MaxSeqId => b"max_seq_id",
        Tag::IdToLabel => b"id_to_label",
        Tag::TotalElementsAdded => b"total_elements_added",
    })
}

/// The keys of Chroma's state dict that matter here, as set on one dict.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct State {
    pub(super) max_seq_id: Option<Scalar>,
    pub(super) dimensionality: Option<Scalar>,
    pub(super) total_elements_added: Option<Scalar>,
    pub(super) labels: Option<Option<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar {
    Int(i128),
    /// An integer too large for i128.
    Huge,
    None,
    Other,
}

/// A value on the walker's stack: its kind, and only what the checks need of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum V {
    Str(Tag),
    Scalar(Scalar),
    Dict {
        len: u64,
        /// 1 + index into the walker's states, 0 for none.
        state: u32,
    },
    /// A string the label collector hashed (only while collecting `id_to_label`).
    Id(IdHash),
    /// Chroma's `PersistentData` class itself (a GLOBAL).
    Class,
    /// An instance of it, with the state a BUILD gave it.
    Object(u32),
    Other,
}

impl V {
    pub(super) fn scalar(&self) -> Scalar {
        match self {
            V::Scalar(s) => *s,
            _ => Scalar::Other,
        }
    }

    /// What the memo keeps of a value: enough for what BINGET may be asked to push.
    pub(super) fn memo(&self) -> Memo {
        match self {
            V::Str(t) => Memo::Str(*t),
            // The hash is not kept: a key fetched from the memo is counted as unread.
            V::Id(_) => Memo::Str(Tag::Other),
            V::Class => Memo::Class,
            V::Scalar(Scalar::None) => Memo::None,
            V::Dict { .. } => Memo::Dict,
            _ => Memo::Other,
        }
    }
}

/// One byte per memo entry: a 1M-vector pickle memoizes a million strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Memo {
    Str(Tag),
    Class,
    None,
    Dict,
    Other,
}

impl Memo {
    pub(super) fn value(self) -> V {
        match self {
            Memo::Str(t) => V::Str(t),
            Memo::Class => V::Class,
            Memo::None => V::Scalar(Scalar::None),
            // A dict fetched from the memo: its size is not tracked.
            Memo::Dict => V::Dict { len: 0, state: 0 },
            Memo::Other => V::Other,
        }
    }
}

impl Scalar {
    /// An INT or LONG opcode's text line (protocol 0 – 1), as Python reads it.
    pub(super) fn of_line(l: &[u8]) -> Result<Scalar, Bad> {
        let s = String::from_utf8_lossy(l);
        let s = s.trim_end_matches('L');
        match s {
            "00" => return Ok(Scalar::Other),
            "01" => return Ok(Scalar::Other),
            _ => {}
        }
        match s.parse::<i128>() {
            Ok(n) => Ok(Scalar::Int(n)),
            Err(_)
                if !s.is_empty()
                    && s.trim_start_matches('-')
                        .bytes()
                        .all(|c| c.is_ascii_digit()) =>
            {
                Ok(Scalar::Huge)
            }
            Err(_) => Err(Bad::Invalid("an INT or LONG line is not a number".into())),
        }
    }
}

/// A memo index written as text (GET, PUT).
pub(super) fn parse_index(l: &[u8]) -> Result<u64, Bad> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(Bad::Invalid("a memo index is not a number".into()))
}

/// A little-endian two's-complement integer (LONG1, LONG4) of at most 16 bytes.
pub(super) fn le_twos(b: &[u8]) -> i128 {
    if b.is_empty() {
        return 0;
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    let mut buf = if neg { [0xffu8; 16] } else { [0u8; 16] };
    buf[..b.len()].copy_from_slice(b);
    i128::from_le_bytes(buf)
}
