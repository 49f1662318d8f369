//! Rewriting `index_metadata.pickle` the way the release that wrote it does, for the one
//! change a repair needs: records put back get labels of their own (`id_to_label`,
//! `label_to_id`, `id_to_seq_id` in Python releases) and `total_elements_added` counts them.
//!
//! [`decode`] reads the subset of the pickle language Chroma's writers use into values that
//! keep the file's order (the state dict's keys, each map's entries) and which strings are one
//! object (a pickle refers to an id string once and then by memo); anything else is refused.
//! [`encode_python`] writes what CPython's `pickle.dump(obj, f, HIGHEST_PROTOCOL)` writes for
//! such a `PersistentData` (protocol 5, 64 KiB frames, MEMOIZE after every string and dict,
//! BINGET for a string seen before, SETITEMS in batches of 1000); the round trip test checks
//! it byte for byte against Python's own dump. 1.x writes a plain dict with serde-pickle
//! (protocol 3); [`encode_dict`] writes it with the same crate and options.
//!
//! Nothing is executed: the one GLOBAL a Python pickle may name is Chroma's class.

use std::collections::HashMap;
use std::rc::Rc;

use crate::chroma::pickle::{Shape, PD_CLASS, PD_MODULE};

/// A value of the pickle, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// One string object (shared where the pickle shares it).
    Str(Rc<str>),
    Dict(Vec<(Obj, Obj)>),
}

/// The pickle's state: its top-level dict, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub shape: Shape,
    /// The pickle protocol the file was written with (Python writes it back the same).
    pub protocol: u8,
    pub entries: Vec<(Rc<str>, Obj)>,
}

impl State {
    pub fn get(&self, key: &str) -> Option<&Obj> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Obj> {
        self.entries
            .iter_mut()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
enum Item {
    Obj(Obj),
    Mark,
    Global,
    Tuple,
    Instance(Option<Obj>),
}

/// Decode a pickle Chroma wrote. `Err` says what is not one.
pub fn decode(data: &[u8]) -> Result<State, String> {
    let mut at = 0usize;
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u32, Item> = HashMap::new();
    let mut protocol = 0u8;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = data
            .get(*at..*at + n)
            .ok_or_else(|| "the pickle ends early".to_string())?;
        *at += n;
        Ok(s)
    };
    loop {
        let op = *take(&mut at, 1)?.first().unwrap_or(&0);
        match op {
            0x80 => {
                protocol = take(&mut at, 1)?[0];
            }
            0x95 => {
                take(&mut at, 8)?;
            }
            0x8c | b'X' => {
                let n = if op == 0x8c {
                    take(&mut at, 1)?[0] as usize
                } else {
                    let b = take(&mut at, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                };
                let s = std::str::from_utf8(take(&mut at, n)?)
                    .map_err(|_| "a string is not UTF-8".to_string())?;
                let rc: Rc<str> = Rc::from(s);
                stack.push(Item::Obj(Obj::Str(rc)));
            }
            0x94 => {
                let top = stack.last().cloned().ok_or("MEMOIZE on an empty stack")?;
                let n = memo.len() as u32;
                memo.insert(n, top);
            }
            b'h' | b'j' => {
                let k = if op == b'h' {
                    take(&mut at, 1)?[0] as u32
                } else {
                    let b = take(&mut at, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                };
                let v = memo.get(&k).cloned().ok_or("a memo reference to nothing")?;
                if !matches!(v, Item::Obj(Obj::Str(_))) {
                    return Err("a memo reference to something other than a string".into());
                }
                stack.push(v);
            }
            0x93 => {
                let name = stack.pop();
                let module = stack.pop();
                match (module, name) {
                    (Some(Item::Obj(Obj::Str(m))), Some(Item::Obj(Obj::Str(n))))
                        if m.as_bytes() == PD_MODULE && n.as_bytes() == PD_CLASS =>
                    {
                        stack.push(Item::Global)
                    }
                    _ => return Err("the pickle names a class that is not Chroma's".into()),
                }
            }
            b')' => stack.push(Item::Tuple),
            0x81 => {
                let args = stack.pop();
                let cls = stack.pop();
                match (cls, args) {
                    (Some(Item::Global), Some(Item::Tuple)) => stack.push(Item::Instance(None)),
                    _ => return Err("NEWOBJ of something other than PersistentData()".into()),
                }
            }
            b'}' => stack.push(Item::Obj(Obj::Dict(Vec::new()))),
            b'(' => stack.push(Item::Mark),
            b'u' | b's' => {
                let mut items = Vec::new();
                if op == b'u' {
                    loop {
                        match stack.pop() {
                            Some(Item::Mark) => break,
                            Some(Item::Obj(o)) => items.push(o),
                            _ => return Err("SETITEMS without its MARK".into()),
                        }
                    }
                    items.reverse();
                } else {
                    let v = stack.pop();
                    let k = stack.pop();
                    match (k, v) {
                        (Some(Item::Obj(k)), Some(Item::Obj(v))) => items = vec![k, v],
                        _ => return Err("SETITEM of something other than a key and a value".into()),
                    }
                }
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".into());
                }
                let Some(Item::Obj(Obj::Dict(d))) = stack.last_mut() else {
                    return Err("SETITEMS on something other than a dict".into());
                };
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            b'b' => {
                let state = stack.pop();
                match (stack.pop(), state) {
                    (Some(Item::Instance(None)), Some(Item::Obj(s @ Obj::Dict(_)))) => {
                        stack.push(Item::Instance(Some(s)))
                    }
                    _ => return Err("BUILD of something other than PersistentData".into()),
                }
            }
            b'N' => stack.push(Item::Obj(Obj::None)),
            0x88 => stack.push(Item::Obj(Obj::Bool(true))),
            0x89 => stack.push(Item::Obj(Obj::Bool(false))),
            b'K' => stack.push(Item::Obj(Obj::Int(take(&mut at, 1)?[0] as i64))),
            b'M' => {
                let b = take(&mut at, 2)?;
                stack.push(Item::Obj(Obj::Int(u16::from_le_bytes([b[0], b[1]]) as i64)))
            }
            b'J' => {
                let b = take(&mut at, 4)?;
                stack.push(Item::Obj(Obj::Int(
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                )))
            }
            0x8a => {
                let n = take(&mut at, 1)?[0] as usize;
                let b = take(&mut at, n)?;
                if n > 8 {
                    return Err("an integer too large for a label or a seq_id".into());
                }
                let mut v: i64 = if b.last().is_some_and(|x| x & 0x80 != 0) {
                    -1
                } else {
                    0
                };
                for (i, x) in b.iter().enumerate() {
                    v &= !(0xff << (8 * i));
                    v |= (*x as i64) << (8 * i);
                }
                stack.push(Item::Obj(Obj::Int(v)))
            }
            b'G' => {
                let b = take(&mut at, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                stack.push(Item::Obj(Obj::Float(f64::from_be_bytes(a))))
            }
            b'.' => break,
            other => {
                return Err(format!(
                    "opcode 0x{other:02x} is not one Chroma's writers use"
                ))
            }
        }
    }
    if at != data.len() {
        return Err("bytes after the pickle's end".into());
    }
    let (shape, state) = match stack.pop() {
        Some(Item::Instance(Some(s))) => (Shape::PersistentData, s),
        Some(Item::Obj(d @ Obj::Dict(_))) => (Shape::Dict, d),
        _ => return Err("the pickle holds neither PersistentData nor a dict".into()),
    };
    let Obj::Dict(entries) = state else {
        return Err("the state is not a dict".into());
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let Obj::Str(k) = k else {
            return Err("a state key is not a string".into());
        };
        out.push((k, v));
    }
    Ok(State {
        shape,
        protocol,
        entries: out,
    })
}

const FRAME_TARGET: usize = 64 * 1024;

/// CPython's pickler, for the values a `PersistentData` holds.
struct Py {
    out: Vec<u8>,
    /// Where the open frame's bytes start in `out` (after its 9-byte header).
    frame_at: usize,
    memo: HashMap<*const u8, u32>,
    next: u32,
}

impl Py {
    fn new(protocol: u8) -> Py {
        let mut p = Py {
            out: vec![0x80, protocol],
            frame_at: 0,
            memo: HashMap::new(),
            next: 0,
        };
        p.open_frame();
        p
    }

    fn open_frame(&mut self) {
        self.out.push(0x95);
        self.out.extend_from_slice(&[0u8; 8]);
        self.frame_at = self.out.len();
    }

    /// End the open frame: write its length, or drop its header when under 4 bytes.
    fn close_frame(&mut self) {
        let len = self.out.len() - self.frame_at;
        let head = self.frame_at - 9;
        if len < 4 {
            self.out.drain(head..self.frame_at);
        } else {
            self.out[head + 1..head + 9].copy_from_slice(&(len as u64).to_le_bytes());
        }
    }

    /// After each object: a frame that reached the target is ended and another begun.
    fn boundary(&mut self) {
        if self.out.len() - self.frame_at >= FRAME_TARGET {
            self.close_frame();
            self.open_frame();
        }
    }

    fn memoize(&mut self) {
        self.out.push(0x94);
        self.next += 1;
    }

    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            let b = v.to_le_bytes();
            // The fewest bytes that keep the sign.
            let mut n = 8;
            while n > 1 {
                let (last, prev) = (b[n - 1], b[n - 2]);
                if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[0x8a, n as u8]);
            self.out.extend_from_slice(&b[..n]);
        }
    }

    fn str(&mut self, s: &Rc<str>) {
        let key = s.as_ptr();
        if let Some(&k) = self.memo.get(&key) {
            if k < 256 {
                self.out.extend_from_slice(&[b'h', k as u8]);
            } else {
                self.out.push(b'j');
                self.out.extend_from_slice(&k.to_le_bytes());
            }
            return;
        }
        let b = s.as_bytes();
        if b.len() <= 0xff {
            self.out.extend_from_slice(&[0x8c, b.len() as u8]);
        } else {
            self.out.push(b'X');
            self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
        self.memo.insert(key, self.next);
        self.memoize();
    }

    fn obj(&mut self, o: &Obj) {
        match o {
            Obj::None => self.out.push(b'N'),
            Obj::Bool(true) => self.out.push(0x88),
            Obj::Bool(false) => self.out.push(0x89),
            Obj::Int(v) => self.int(*v),
            Obj::Float(f) => {
                self.out.push(b'G');
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Obj::Str(s) => self.str(s),
            Obj::Dict(items) => {
                self.out.push(b'}');
                self.memoize();
                self.items(items.iter().map(|(k, v)| (k, v)));
            }
        }
        self.boundary();
    }

    /// A dict's items as CPython's `batch_dict_exact` writes them: one item as SETITEM;
    /// otherwise MARK … SETITEMS per 1000, and one more (empty) batch after a full one.
    fn items<'a>(&mut self, items: impl ExactSizeIterator<Item = (&'a Obj, &'a Obj)>) {
        let all: Vec<_> = items.collect();
        if all.len() == 1 {
            self.obj(all[0].0);
            self.obj(all[0].1);
            self.out.push(b's');
            return;
        }
        if all.is_empty() {
            return;
        }
        let mut at = 0;
        loop {
            self.out.push(b'(');
            let batch = &all[at..(at + 1000).min(all.len())];
            for (k, v) in batch {
                self.obj(k);
                self.obj(v);
            }
            self.out.push(b'u');
            at += batch.len();
            if batch.len() < 1000 {
                break;
            }
        }
    }
}

/// The bytes CPython writes for a `PersistentData` whose `__dict__` is `state`.
pub fn encode_python(state: &State) -> Vec<u8> {
    // Protocols 4 and 5 write this object alike but for the PROTO byte; Chroma's Python
    // releases write HIGHEST_PROTOCOL, 4 or 5 with the Python they ran on.
    let mut p = Py::new(state.protocol.clamp(4, 5));
    let module: Rc<str> = Rc::from(std::str::from_utf8(PD_MODULE).unwrap_or_default());
    let class: Rc<str> = Rc::from(std::str::from_utf8(PD_CLASS).unwrap_or_default());
    p.str(&module);
    p.str(&class);
    p.out.push(0x93);
    p.memoize();
    p.boundary();
    p.out.push(b')');
    p.boundary();
    p.out.push(0x81);
    p.memoize();
    p.out.push(b'}');
    p.memoize();
    let keys: Vec<Obj> = state
        .entries
        .iter()
        .map(|(k, _)| Obj::Str(k.clone()))
        .collect();
    p.items(keys.iter().zip(state.entries.iter().map(|(_, v)| v)));
    p.boundary();
    p.out.push(b'b');
    p.boundary();
    p.out.push(b'.');
    p.close_frame();
    p.out
}

/// 1.x's `IdMap`, field for field, as its writer serializes it.
#[derive(serde::Serialize)]
struct IdMap {
    dimensionality: Option<i64>,
    total_elements_added: i64,
    max_seq_id: Option<i64>,
    id_to_label: std::collections::HashMap<String, i64>,
    label_to_id: std::collections::HashMap<i64, String>,
    id_to_seq_id: std::collections::HashMap<String, i64>,
}

/// The bytes 1.x writes (serde-pickle, default options) for the state.
pub fn encode_dict(state: &State) -> Result<Vec<u8>, String> {
    let int = |k: &str| match state.get(k) {
        Some(Obj::Int(v)) => Ok(Some(*v)),
        Some(Obj::None) | None => Ok(None),
        _ => Err(format!("{k} is not an integer")),
    };
    let map_si = |k: &str| -> Result<std::collections::HashMap<String, i64>, String> {
        match state.get(k) {
            Some(Obj::Dict(d)) => d
                .iter()
                .map(|(a, b)| match (a, b) {
                    (Obj::Str(s), Obj::Int(v)) => Ok((s.to_string(), *v)),
                    _ => Err(format!("{k} is not a map of ids to integers")),
                })
                .collect(),
            None => Ok(Default::default()),
            _ => Err(format!("{k} is not a dict")),
        }
    };
    let l2i = match state.get("label_to_id") {
        Some(Obj::Dict(d)) => d
            .iter()
            .map(|(a, b)| match (a, b) {
                (Obj::Int(v), Obj::Str(s)) => Ok((*v, s.to_string())),
                _ => Err("label_to_id is not a map of labels to ids".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => Default::default(),
    };
    let m = IdMap {
        dimensionality: int("dimensionality")?,
        total_elements_added: int("total_elements_added")?.unwrap_or(0),
        max_seq_id: int("max_seq_id")?,
        id_to_label: map_si("id_to_label")?,
        label_to_id: l2i,
        id_to_seq_id: map_si("id_to_seq_id")?,
    };
    serde_pickle::to_vec(&m, serde_pickle::SerOptions::new()).map_err(|e| e.to_string())
}

/// Write the state in the shape the file had.
pub fn encode(state: &State) -> Result<Vec<u8>, String> {
    match state.shape {
        Shape::PersistentData => Ok(encode_python(state)),
        Shape::Dict => encode_dict(state),
    }
}

/// Take the ids `leaves` accepts out of `id_to_label`, `label_to_id` and `id_to_seq_id`, as a
/// release deleting them does.
pub fn remove_ids(state: &mut State, leaves: &dyn Fn(&str) -> bool) {
    let mut labels = std::collections::HashSet::new();
    for key in ["id_to_label", "id_to_seq_id"] {
        if let Some(Obj::Dict(d)) = state.get_mut(key) {
            d.retain(|(k, v)| {
                let go = matches!(k, Obj::Str(s) if leaves(s));
                if go && key == "id_to_label" {
                    if let Obj::Int(l) = v {
                        labels.insert(*l);
                    }
                }
                !go
            });
        }
    }
    if let Some(Obj::Dict(d)) = state.get_mut("label_to_id") {
        d.retain(|(k, v)| {
            !(matches!(k, Obj::Int(l) if labels.contains(l))
                || matches!(v, Obj::Str(s) if leaves(s)))
        });
    }
}

/// The ids `id_to_label` gives `labels`, in the pickle's order.
pub fn ids_of_labels(state: &State, labels: &std::collections::HashSet<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Obj::Dict(d)) = state.get("id_to_label") {
        for (k, v) in d {
            if let (Obj::Str(s), Obj::Int(l)) = (k, v) {
                if *l >= 0 && labels.contains(&(*l as u64)) {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

/// Give `ids` (with the seq_id of the row their vector comes from) the next labels, as the
/// release hands them out (`total_elements_added + 1`, …), and count them. Returns the labels.
pub fn add_labels(state: &mut State, ids: &[(String, i64)]) -> Result<Vec<u64>, String> {
    let Some(Obj::Int(total)) = state.get("total_elements_added").cloned() else {
        return Err("the pickle has no total_elements_added".into());
    };
    let python = state.shape == Shape::PersistentData;
    let mut labels = Vec::with_capacity(ids.len());
    let mut new_i2l = Vec::new();
    let mut new_l2i = Vec::new();
    let mut new_i2s = Vec::new();
    for (k, (id, seq)) in ids.iter().enumerate() {
        let label = total + 1 + k as i64;
        let s: Rc<str> = Rc::from(id.as_str());
        new_i2l.push((Obj::Str(s.clone()), Obj::Int(label)));
        new_l2i.push((Obj::Int(label), Obj::Str(s.clone())));
        new_i2s.push((Obj::Str(s), Obj::Int(*seq)));
        labels.push(label as u64);
    }
    let push = |state: &mut State, key: &str, items: Vec<(Obj, Obj)>| -> Result<(), String> {
        match state.get_mut(key) {
            Some(Obj::Dict(d)) => {
                d.extend(items);
                Ok(())
            }
            _ => Err(format!("the pickle's {key} is not a dict")),
        }
    };
    // An id the pickle still names (its element deleted) gets its new label in place of the
    // old one, as a release re-adding it would: one entry per id, no label left behind.
    let putting: std::collections::HashSet<&str> = ids.iter().map(|(i, _)| i.as_str()).collect();
    let mut dropped_labels = std::collections::HashSet::new();
    for key in ["id_to_label", "id_to_seq_id"] {
        if let Some(Obj::Dict(d)) = state.get_mut(key) {
            d.retain(|(k, v)| {
                let gone = matches!(k, Obj::Str(s) if putting.contains(&**s));
                if gone && key == "id_to_label" {
                    if let Obj::Int(l) = v {
                        dropped_labels.insert(*l);
                    }
                }
                !gone
            });
        }
    }
    if let Some(Obj::Dict(d)) = state.get_mut("label_to_id") {
        d.retain(|(k, _)| !matches!(k, Obj::Int(l) if dropped_labels.contains(l)));
    }
    push(state, "id_to_label", new_i2l)?;
    push(state, "label_to_id", new_l2i)?;
    // 1.x never writes id_to_seq_id (it carries the loaded map through); Python does.
    if python {
        push(state, "id_to_seq_id", new_i2s)?;
    }
    if let Some(t) = state.get_mut("total_elements_added") {
        *t = Obj::Int(total + ids.len() as i64);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPython 3.11's `pickle.dumps(PersistentData(3, 2, {'a': 1, 'b': 2}, {1: 'a', 2: 'b'},
    /// {'a': 5, 'b': 6}), 5)` with chromadb 0.6.3's class.
    const PY: &[u8] = b"\x80\x05\x95\xd0\x00\x00\x00\x00\x00\x00\x00\x8c2chromadb.segment.impl.vector.local_persistent_hnsw\x94\x8c\x0ePersistentData\x94\x93\x94)\x81\x94}\x94(\x8c\x0edimensionality\x94K\x03\x8c\x14total_elements_added\x94K\x02\x8c\x0bid_to_label\x94}\x94(\x8c\x01a\x94K\x01\x8c\x01b\x94K\x02u\x8c\x0blabel_to_id\x94}\x94(K\x01h\tK\x02h\nu\x8c\x0cid_to_seq_id\x94}\x94(h\tK\x05h\nK\x06uub.";

    #[test]
    fn decodes_and_writes_back_what_python_wrote_byte_for_byte() {
        let s = decode(PY).unwrap();
        assert_eq!(s.shape, Shape::PersistentData);
        assert_eq!(s.get("dimensionality"), Some(&Obj::Int(3)));
        assert_eq!(encode_python(&s), PY);
        // The walker that judges pickles accepts what is written.
        assert!(crate::chroma::pickle::validate_bytes(&encode_python(&s)).is_ok());
    }

    #[test]
    fn new_labels_follow_total_elements_added_and_are_counted() {
        let mut s = decode(PY).unwrap();
        let labels = add_labels(&mut s, &[("c".into(), 9), ("d".into(), 10)]).unwrap();
        assert_eq!(labels, vec![3, 4]);
        assert_eq!(s.get("total_elements_added"), Some(&Obj::Int(4)));
        let b = encode_python(&s);
        let facts = crate::chroma::pickle::validate_bytes(&b).unwrap();
        assert_eq!(facts.labels, Some(4));
        assert_eq!(facts.total_elements_added, Some(4));
        // The same pickle as a 1.x dict: serde-pickle reads it back with the new maps.
        let mut d = decode(PY).unwrap();
        d.shape = Shape::Dict;
        add_labels(&mut d, &[("c".into(), 9)]).unwrap();
        let b = encode(&d).unwrap();
        let v: serde_pickle::Value =
            serde_pickle::value_from_slice(&b, serde_pickle::DeOptions::new()).unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("\"c\""), "{text}");
        assert_eq!(
            crate::chroma::pickle::validate_bytes(&b).unwrap().labels,
            Some(3)
        );
    }

    #[test]
    fn large_integers_and_batches() {
        let mut p = Py::new(5);
        for v in [255i64, 256, 65535, 65536, -1, 1 << 40, -(1 << 40)] {
            p.int(v);
        }
        let b = &p.out[11..];
        assert_eq!(&b[..2], &[b'K', 255]);
        assert_eq!(&b[2..5], &[b'M', 0, 1]);
        assert_eq!(&b[8..13], &[b'J', 0, 0, 1, 0]);
        assert_eq!(&b[13..18], &[b'J', 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&b[18..26], &[0x8a, 6, 0, 0, 0, 0, 0, 1]);
        // A foreign class is refused.
        let bad = PY
            .windows(14)
            .position(|w| w == b"PersistentData")
            .map(|i| {
                let mut v = PY.to_vec();
                v[i] = b'Q';
                v
            })
            .unwrap();
        assert!(decode(&bad).is_err());
    }
}
