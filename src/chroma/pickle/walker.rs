//! The streaming walker: every opcode of the file once, a skeleton stack machine that keeps
//! the kind of each value and only the scalars the checks need. See [`super`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::chroma::idhash::{Hasher, IdHash};

use super::source::{Bad, Src};
use super::stack::{le_twos, parse_index, tag_name, tag_of, Memo, Scalar, State, Tag, V};
use super::{IdLabel, LabelMap};
use super::{PickleFacts, PickleSeqId, Shape, HIGHEST_PROTOCOL, MAX_LINE, PD_CLASS, PD_MODULE};

// --- the walker ----------------------------------------------------------------------------

struct Walker<R: Read> {
    r: Src<R>,
    pos: u64,
    len: u64,
    /// Offset of the opcode being decoded (for "cut short at byte N").
    op_pos: u64,
    stack: Vec<V>,
    /// Where each open MARK is on the stack.
    marks: Vec<usize>,
    memo: Vec<Option<Memo>>,
    /// Memo slots set out of order (`BINPUT` with a far index).
    memo_far: HashMap<u64, Memo>,
    /// End offset of the current protocol-4 frame.
    frame_end: Option<u64>,
    protocol: u8,
    /// The recognised keys set on each dict that has any (most have none).
    states: Vec<State>,
    /// Stop as soon as the top-level dict's `max_seq_id` value is on the stack.
    early: bool,
    /// Collect `id_to_label`'s entries as they are set (`--deep`); `None`: skip them.
    collect: Option<LabelMap>,
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, Bad> {
    Err(Bad::Invalid(msg.into()))
}

impl<R: Read> Walker<R> {
    #[inline]
    fn u8(&mut self) -> Result<u8, Bad> {
        match self.r.byte()? {
            Some(b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Bad::Cut(self.op_pos)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Bad> {
        let mut a = [0u8; N];
        if !self.r.fill(&mut a)? {
            return Err(Bad::Cut(self.op_pos));
        }
        self.pos += N as u64;
        Ok(a)
    }

    /// Read `n` payload bytes: kept when short (to recognise names), skipped otherwise.
    fn payload(&mut self, n: u64) -> Result<Tag, Bad> {
        Ok(self.payload_as(n, false)?.0)
    }

    /// A text payload as a stack value: hashed when collecting labels and not a known name.
    fn text(&mut self, n: u64) -> Result<V, Bad> {
        let (tag, hash) = self.payload_as(n, true)?;
        Ok(match (tag, hash) {
            (Tag::Other, Some(h)) => V::Id(h),
            _ => V::Str(tag),
        })
    }

    /// With `text`, Python decodes the payload as UTF-8 (surrogates allowed) and fails on
    /// anything else: checked when it is short enough to be read anyway.
    fn payload_as(&mut self, n: u64, text: bool) -> Result<(Tag, Option<IdHash>), Bad> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(Bad::Cut(self.op_pos));
        }
        let hash = text && self.collect.is_some();
        if n <= 64 {
            let mut b = [0u8; 64];
            let b = &mut b[..n as usize];
            if !self.r.fill(b)? {
                return Err(Bad::Cut(self.op_pos));
            }
            if text && !utf8_surrogatepass(b) {
                return invalid(format!(
                    "the string at byte {} is not UTF-8, which Python cannot decode",
                    self.op_pos
                ));
            }
            self.pos += n;
            // Only the few names the walker looks for are compared.
            let tag = if (10..=51).contains(&n) {
                tag_of(b)
            } else {
                Tag::Other
            };
            return Ok((tag, hash.then(|| IdHash::of(b))));
        }
        if hash {
            let mut h = Hasher::default();
            let mut chunk = [0u8; 4096];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len() as u64) as usize;
                if !self.r.fill(&mut chunk[..k])? {
                    return Err(Bad::Cut(self.op_pos));
                }
                h.update(&chunk[..k]);
                left -= k as u64;
            }
            self.pos += n;
            return Ok((Tag::Other, Some(h.finish())));
        }
        let skipped = self.r.skip(n)?;
        self.pos += skipped;
        if skipped < n {
            return Err(Bad::Cut(self.op_pos));
        }
        Ok((Tag::Other, None))
    }

    fn line(&mut self) -> Result<Vec<u8>, Bad> {
        let mut out = Vec::new();
        loop {
            let b = self.u8()?;
            if b == b'\n' {
                return Ok(out);
            }
            if out.len() >= MAX_LINE {
                return invalid("a text line of the pickle is implausibly long");
            }
            out.push(b);
        }
    }

    fn pop(&mut self) -> Result<V, Bad> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return invalid("stack underflow: an opcode takes a value that is not there");
        }
        self.stack
            .pop()
            .ok_or(Bad::Invalid("stack underflow".into()))
    }

    fn top(&mut self) -> Result<&mut V, Bad> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return invalid("stack underflow: an opcode takes a value that is not there");
        }
        self.stack
            .last_mut()
            .ok_or(Bad::Invalid("stack underflow".into()))
    }

    /// Pop everything above the innermost MARK, and the MARK.
    fn pop_mark(&mut self) -> Result<Vec<V>, Bad> {
        let Some(at) = self.marks.pop() else {
            return invalid("an opcode needs a MARK that was never set");
        };
        let items = self.stack.split_off(at);
        Ok(items)
    }

    fn push(&mut self, v: V) {
        self.stack.push(v);
    }

    /// Chroma's pickles are a few levels deep; a stack this tall is not one of them (and
    /// would cost memory without end).
    fn check_depth(&self) -> Result<(), Bad> {
        if self.stack.len() + self.marks.len() > MAX_DEPTH {
            return invalid(format!(
                "more than {MAX_DEPTH} values pile up on the stack at byte {}",
                self.op_pos
            ));
        }
        Ok(())
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), Bad> {
        let m = self.top()?.memo();
        let len = self.memo.len() as u64;
        if idx < len {
            self.memo[idx as usize] = Some(m);
        } else if idx == len {
            self.memo.push(Some(m));
        } else {
            self.memo_far.insert(idx, m);
        }
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), Bad> {
        let m = self
            .memo
            .get(idx as usize)
            .copied()
            .flatten()
            .or_else(|| self.memo_far.get(&idx).copied());
        match m {
            Some(m) => {
                self.push(m.value());
                Ok(())
            }
            None => invalid(format!(
                "refers to memo entry {idx}, which was never stored"
            )),
        }
    }

    /// Apply the key/value pairs at `self.stack[from..]` to the dict at `target`, then drop
    /// them from the stack (in place: a 1M-entry dict arrives in batches of 1,000 pairs).
    fn set_items(&mut self, target: usize, from: usize) -> Result<(), Bad> {
        if (self.stack.len() - from) % 2 != 0 {
            return invalid("SETITEMS with an odd number of items");
        }
        let Some(&V::Dict { len, mut state }) = self.stack.get(target) else {
            // Python would call __setitem__ on something else: not Chroma's shape.
            return invalid("sets items on something that is not a dict");
        };
        let pairs = (self.stack.len() - from) / 2;
        if target > 0 && self.stack[target - 1] == V::Str(Tag::IdToLabel) {
            if let Some(c) = self.collect.as_mut() {
                for pair in self.stack[from..].chunks_exact(2) {
                    // An id that spells one of the names the walker knows was tagged, not
                    // hashed: its name is hashed here.
                    let key = match pair[0] {
                        V::Str(t) => tag_name(t).map_or(pair[0], |n| V::Id(IdHash::of(n))),
                        k => k,
                    };
                    match (key, pair[1]) {
                        (V::Id(id), V::Scalar(Scalar::Int(l)))
                            if l >= 0 && l <= u64::MAX as i128 =>
                        {
                            c.pairs.push(IdLabel {
                                id,
                                label: l as u64,
                            })
                        }
                        _ => c.unread += 1,
                    }
                }
            }
        }
        for i in 0..pairs {
            let k = self.stack[from + 2 * i];
            let V::Str(tag) = k else { continue };
            if tag == Tag::Other || tag == Tag::Module || tag == Tag::Class {
                continue;
            }
            let v = self.stack[from + 2 * i + 1];
            if state == 0 {
                self.states.push(State::default());
                state = self.states.len() as u32;
            }
            let st = &mut self.states[state as usize - 1];
            match tag {
                Tag::MaxSeqId => st.max_seq_id = Some(v.scalar()),
                Tag::Dimensionality => st.dimensionality = Some(v.scalar()),
                Tag::TotalElementsAdded => st.total_elements_added = Some(v.scalar()),
                Tag::IdToLabel => {
                    st.labels = Some(match v {
                        V::Dict { len, .. } => Some(len),
                        _ => None,
                    })
                }
                _ => {}
            }
        }
        self.stack[target] = V::Dict {
            len: len + pairs as u64,
            state,
        };
        self.stack.truncate(from);
        Ok(())
    }

    fn global(&mut self, module: &[u8], name: &[u8]) -> Result<(), Bad> {
        if module == PD_MODULE && name == PD_CLASS {
            self.push(V::Class);
            Ok(())
        } else {
            invalid(format!(
                "names code ({}.{}), not Chroma's index metadata",
                String::from_utf8_lossy(module),
                String::from_utf8_lossy(name)
            ))
        }
    }

    fn int_line(&mut self) -> Result<Scalar, Bad> {
        let l = self.line()?;
        Scalar::of_line(&l)
    }

    /// In early mode: the top-level dict's items so far, once its `max_seq_id` value is read.
    fn early_hit(&self) -> Option<State> {
        let (&[first], n) = (self.marks.as_slice(), self.stack.len()) else {
            return None;
        };
        if n < first + 2 || (n - first) % 2 != 0 || self.stack[n - 2] != V::Str(Tag::MaxSeqId) {
            return None;
        }
        let mut st = State::default();
        for pair in self.stack[first..].chunks(2) {
            match pair {
                [V::Str(Tag::MaxSeqId), v] => st.max_seq_id = Some(v.scalar()),
                [V::Str(Tag::Dimensionality), v] => st.dimensionality = Some(v.scalar()),
                [V::Str(Tag::TotalElementsAdded), v] => st.total_elements_added = Some(v.scalar()),
                _ => {}
            }
        }
        Some(st)
    }

    fn walk(&mut self) -> Result<V, Bad> {
        loop {
            if self.early {
                if let Some(st) = self.early_hit() {
                    self.states.push(st);
                    let id = self.states.len() as u32;
                    return Ok(if matches!(self.stack.first(), Some(V::Object(_))) {
                        V::Object(id)
                    } else {
                        V::Dict { len: 0, state: id }
                    });
                }
            }
            if let Some(end) = self.frame_end {
                if self.pos > end {
                    return invalid("an opcode runs across the end of its frame");
                }
                if self.pos == end {
                    self.frame_end = None;
                }
            }
            self.op_pos = self.pos;
            self.check_depth()?;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if v > HIGHEST_PROTOCOL {
                        return invalid(format!("unsupported pickle protocol {v}"));
                    }
                    self.protocol = v;
                }
                0x95 => {
                    if self.frame_end.is_some() {
                        return invalid(format!(
                            "a new frame begins at byte {} before the current one ends",
                            self.op_pos
                        ));
                    }
                    let n = u64::from_le_bytes(self.array::<8>()?);
                    if n > self.len.saturating_sub(self.pos) {
                        return invalid(format!(
                            "is cut short at byte {} of {}: the file ends before the frame that \
                             starts at byte {} does",
                            self.len,
                            self.pos.saturating_add(n),
                            self.op_pos
                        ));
                    }
                    self.frame_end = Some(self.pos + n);
                }
                b'.' => return self.pop(),
                b'(' => {
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = *self.top()?;
                    self.push(v);
                }
                // Numbers.
                b'I' | b'L' => {
                    let s = self.int_line()?;
                    self.push(V::Scalar(s));
                }
                b'J' => {
                    let n = i32::from_le_bytes(self.array::<4>()?);
                    self.push(V::Scalar(Scalar::Int(n as i128)));
                }
                b'K' => {
                    let n = self.u8()?;
                    self.push(V::Scalar(Scalar::Int(n as i128)));
                }
                b'M' => {
                    let n = u16::from_le_bytes(self.array::<2>()?);
                    self.push(V::Scalar(Scalar::Int(n as i128)));
                }
                0x8a => {
                    let n = self.u8()? as u64;
                    let s = self.long(n)?;
                    self.push(V::Scalar(s));
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.array::<4>()?);
                    if n < 0 {
                        return invalid("LONG4 with a negative length");
                    }
                    let s = self.long(n as u64)?;
                    self.push(V::Scalar(s));
                }
                b'F' => {
                    self.line()?;
                    self.push(V::Scalar(Scalar::Other));
                }
                b'G' => {
                    self.array::<8>()?;
                    self.push(V::Scalar(Scalar::Other));
                }
                b'N' => self.push(V::Scalar(Scalar::None)),
                0x88 | 0x89 => self.push(V::Scalar(Scalar::Other)),
                // Strings and bytes.
                b'S' | b'V' => {
                    let l = self.line()?;
                    let t = if op == b'V' { tag_of(&l) } else { Tag::Other };
                    self.push(V::Str(t));
                }
                b'T' | b'X' | b'B' => {
                    let n = u32::from_le_bytes(self.array::<4>()?) as u64;
                    if op == b'T' && n > i32::MAX as u64 {
                        return invalid("BINSTRING with a negative length");
                    }
                    if op == b'X' {
                        let v = self.text(n)?;
                        self.push(v);
                    } else {
                        self.payload(n)?;
                        self.push(V::Other);
                    }
                }
                b'U' | 0x8c | b'C' => {
                    let n = self.u8()? as u64;
                    if op == 0x8c {
                        let v = self.text(n)?;
                        self.push(v);
                    } else {
                        self.payload(n)?;
                        self.push(V::Other);
                    }
                }
                0x8d | 0x8e | 0x96 => {
                    let n = u64::from_le_bytes(self.array::<8>()?);
                    if op == 0x8d {
                        let v = self.text(n)?;
                        self.push(v);
                    } else {
                        self.payload(n)?;
                        self.push(V::Other);
                    }
                }
                // Containers.
                b'}' => self.push(V::Dict { len: 0, state: 0 }),
                b'd' => {
                    let Some(at) = self.marks.pop() else {
                        return invalid("DICT needs a MARK that was never set");
                    };
                    // The new dict goes under its items, where the MARK was.
                    self.stack.insert(at, V::Dict { len: 0, state: 0 });
                    self.set_items(at, at + 1)?;
                }
                b's' => {
                    let at = self.stack.len();
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if at < floor + 3 {
                        return invalid("SETITEM with no dict under its key and value");
                    }
                    self.set_items(at - 3, at - 2)?;
                }
                b'u' => {
                    let Some(at) = self.marks.pop() else {
                        return invalid("SETITEMS needs a MARK that was never set");
                    };
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if at == 0 || at <= floor {
                        return invalid("SETITEMS with no dict under it");
                    }
                    self.set_items(at - 1, at)?;
                }
                b']' | b')' | 0x8f => self.push(V::Other),
                b'l' | b't' | 0x91 => {
                    self.pop_mark()?;
                    self.push(V::Other);
                }
                b'a' => {
                    self.pop()?;
                    self.top()?;
                }
                b'e' | 0x90 => {
                    self.pop_mark()?;
                    self.top()?;
                }
                0x85 => {
                    self.pop()?;
                    self.push(V::Other);
                }
                0x86 => {
                    self.pop()?;
                    self.pop()?;
                    self.push(V::Other);
                }
                0x87 => {
                    self.pop()?;
                    self.pop()?;
                    self.pop()?;
                    self.push(V::Other);
                }
                // Memo.
                0x94 => {
                    let idx = self.memo.len() as u64;
                    self.memo_put(idx)?;
                }
                b'q' => {
                    let i = self.u8()? as u64;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.array::<4>()?) as u64;
                    self.memo_put(i)?;
                }
                b'p' => {
                    let l = self.line()?;
                    let i = parse_index(&l)?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u64;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.array::<4>()?) as u64;
                    self.memo_get(i)?;
                }
                b'g' => {
                    let l = self.line()?;
                    let i = parse_index(&l)?;
                    self.memo_get(i)?;
                }
                // Classes and objects: only Chroma's own class, never called, only marked.
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    self.global(&m, &n)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    if (module, name) != (V::Str(Tag::Module), V::Str(Tag::Class)) {
                        return invalid(
                            "names code (STACK_GLOBAL of a class other than Chroma's \
                             PersistentData), not Chroma's index metadata",
                        );
                    }
                    self.push(V::Class);
                }
                0x81 => {
                    self.pop()?; // args
                    let cls = self.pop()?;
                    if cls != V::Class {
                        return invalid("NEWOBJ of something that is not Chroma's class");
                    }
                    self.push(V::Object(0));
                }
                b'b' => {
                    let state = self.pop()?;
                    if !matches!(self.top()?, V::Object(_)) {
                        return invalid("BUILD on something that is not Chroma's object");
                    }
                    if let V::Dict { state, .. } = state {
                        let id = if state == 0 {
                            self.states.push(State::default());
                            self.states.len() as u32
                        } else {
                            state
                        };
                        if let Some(top) = self.stack.last_mut() {
                            *top = V::Object(id);
                        }
                    }
                }
                b'R' | 0x92 | b'i' | b'o' | 0x82 | 0x83 | 0x84 => {
                    return invalid(format!(
                        "calls code (opcode 0x{op:02x}), which Chroma's index metadata never does"
                    ));
                }
                b'P' | b'Q' => return invalid("holds a persistent id, which Chroma never writes"),
                0x97 | 0x98 => {
                    return invalid("holds out-of-band buffers, which Chroma never writes")
                }
                other => {
                    return invalid(format!(
                        "unknown opcode 0x{other:02x} at byte {}",
                        self.op_pos
                    ))
                }
            }
        }
    }

    fn long(&mut self, n: u64) -> Result<Scalar, Bad> {
        if n > 16 {
            self.payload(n)?;
            return Ok(Scalar::Huge);
        }
        if self.pos + n > self.len {
            return Err(Bad::Cut(self.op_pos));
        }
        let mut b = [0u8; 16];
        if !self.r.fill(&mut b[..n as usize])? {
            return Err(Bad::Cut(self.op_pos));
        }
        self.pos += n;
        Ok(Scalar::Int(le_twos(&b[..n as usize])))
    }
}

/// The stack depth the walker accepts (values and MARKs). A 1M-entry dict arrives in
/// batches of 1,000 pairs, so a real pickle stays far below it.
pub(super) const MAX_DEPTH: usize = 100_000;

/// UTF-8 as Python's `surrogatepass` decodes it: encoded surrogates (ED A0..BF xx) allowed.
pub(super) fn utf8_surrogatepass(mut b: &[u8]) -> bool {
    loop {
        match std::str::from_utf8(b) {
            Ok(_) => return true,
            Err(e) => {
                let rest = &b[e.valid_up_to()..];
                match rest {
                    [0xED, 0xA0..=0xBF, 0x80..=0xBF, ..] => b = &rest[3..],
                    _ => return false,
                }
            }
        }
    }
}

/// Read only as far as the top-level `max_seq_id` (a few hundred bytes in every shape Chroma
/// writes): a provisional answer to start counting with, while [`super::read`] validates the whole
/// file. Never a final verdict: a file may be whole up to there and cut after.
pub fn read_prefix(path: &Path) -> Result<PickleFacts, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    walk_file(file, len, true)
}

pub(super) fn validate<R: Read>(r: R, len: u64) -> Result<PickleFacts, String> {
    walk_file(r, len, false)
}

/// [`validate`], collecting `id_to_label`'s entries on the way.
pub(super) fn validate_with_labels<R: Read>(
    r: R,
    len: u64,
) -> Result<(PickleFacts, LabelMap), String> {
    let mut labels = Some(LabelMap::default());
    let facts = walk(r, len, false, &mut labels)?;
    Ok((facts, labels.unwrap_or_default()))
}

fn walk_file<R: Read>(r: R, len: u64, early: bool) -> Result<PickleFacts, String> {
    walk(r, len, early, &mut None)
}

fn walk<R: Read>(
    r: R,
    len: u64,
    early: bool,
    collect: &mut Option<LabelMap>,
) -> Result<PickleFacts, String> {
    let mut w = Walker {
        r: Src::new(r, len),
        pos: 0,
        len,
        op_pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
        memo_far: HashMap::new(),
        frame_end: None,
        protocol: 0,
        states: Vec::new(),
        early,
        collect: collect.take(),
    };
    let walked = w.walk();
    *collect = w.collect.take();
    let top = match walked {
        Ok(v) => v,
        Err(Bad::Cut(at)) => {
            return Err(if len == 0 {
                "is empty (0 bytes)".to_string()
            } else {
                format!(
                    "is cut short at byte {len}: the file ends inside the opcode at byte {at}, \
                     before the pickle's final STOP"
                )
            })
        }
        Err(Bad::Invalid(why)) => return Err(why),
    };
    if w.pos < len && !early {
        return Err(format!(
            "has {} bytes of trailing garbage after the pickle's STOP at byte {}",
            len - w.pos,
            w.pos - 1
        ));
    }
    let state_of = |i: u32| -> State {
        i.checked_sub(1)
            .and_then(|i| w.states.get(i as usize).cloned())
            .unwrap_or_default()
    };
    let (shape, state) = match top {
        V::Object(0) => {
            return Err("holds a PersistentData object with no state".into());
        }
        V::Object(s) => (Shape::PersistentData, state_of(s)),
        V::Dict { state, .. } => (Shape::Dict, state_of(state)),
        _ => return Err("holds something other than Chroma's index metadata".into()),
    };
    let max_seq_id = match state.max_seq_id {
        None => PickleSeqId::NotRecorded("pickle has no max_seq_id key".into()),
        Some(Scalar::None) => PickleSeqId::NotRecorded("pickle max_seq_id is None".into()),
        Some(Scalar::Int(v)) => match int_seq_id(v) {
            PickleSeqId::Unreadable(why) => return Err(why),
            ok => ok,
        },
        Some(Scalar::Huge) => return Err("its max_seq_id does not fit a seq_id".into()),
        Some(Scalar::Other) => return Err("its max_seq_id is not an integer".into()),
    };
    let dimensionality = match state.dimensionality {
        None => None,
        Some(Scalar::None) => Some(None),
        Some(Scalar::Int(d)) if (0..=i64::MAX as i128).contains(&d) => Some(Some(d as i64)),
        Some(_) => return Err("its dimensionality is not a plausible integer".into()),
    };
    Ok(PickleFacts {
        shape,
        max_seq_id,
        dimensionality,
        labels: state.labels.flatten(),
        total_elements_added: match state.total_elements_added {
            Some(Scalar::Int(n)) => i64::try_from(n).ok(),
            _ => None,
        },
        bytes: len,
    })
}

pub(super) fn int_seq_id(v: i128) -> PickleSeqId {
    if v < 0 {
        PickleSeqId::Unreadable(format!("its max_seq_id {v} is negative"))
    } else if v > i64::MAX as i128 {
        PickleSeqId::Unreadable(format!("its max_seq_id {v} is above 2^63-1"))
    } else {
        PickleSeqId::Value(v as i64)
    }
}
