//! The walker's input: a read buffer with its three operations inlined (a byte, an exact
//! fill, a skip), and why a walk stops.

use std::io::Read;

/// Why the walk stopped without a readable file.
pub(super) enum Bad {
    /// The file ended inside the opcode that starts at this offset.
    Cut(u64),
    Invalid(String),
}

impl From<std::io::Error> for Bad {
    fn from(e: std::io::Error) -> Self {
        Bad::Invalid(format!("read error: {e}"))
    }
}

/// A read buffer with the walker's three operations inlined: a byte, an exact fill, a skip.
pub(super) struct Src<R: Read> {
    pub(super) r: R,
    pub(super) buf: Box<[u8]>,
    pub(super) at: usize,
    pub(super) end: usize,
}

impl<R: Read> Src<R> {
    /// A buffer for an input of `len` bytes: at most 1 MiB, and no more than the input (a
    /// dir of 16,000 small pickles zeroed 1 MiB for each).
    pub(super) fn new(r: R, len: u64) -> Self {
        let cap = len.clamp(64, 1 << 20) as usize;
        Src {
            r,
            buf: vec![0u8; cap].into_boxed_slice(),
            at: 0,
            end: 0,
        }
    }

    /// Refill when empty; false at the end of the input.
    pub(super) fn refill(&mut self) -> std::io::Result<bool> {
        if self.at < self.end {
            return Ok(true);
        }
        loop {
            match self.r.read(&mut self.buf) {
                Ok(n) => {
                    self.at = 0;
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    #[inline]
    pub(super) fn byte(&mut self) -> std::io::Result<Option<u8>> {
        if self.at < self.end {
            let b = self.buf[self.at];
            self.at += 1;
            return Ok(Some(b));
        }
        if !self.refill()? {
            return Ok(None);
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(Some(b))
    }

    /// Fill `out` exactly; false when the input ends first.
    #[inline]
    pub(super) fn fill(&mut self, out: &mut [u8]) -> std::io::Result<bool> {
        if self.end - self.at >= out.len() {
            out.copy_from_slice(&self.buf[self.at..self.at + out.len()]);
            self.at += out.len();
            return Ok(true);
        }
        let mut got = 0;
        while got < out.len() {
            if !self.refill()? {
                return Ok(false);
            }
            let k = (self.end - self.at).min(out.len() - got);
            out[got..got + k].copy_from_slice(&self.buf[self.at..self.at + k]);
            self.at += k;
            got += k;
        }
        Ok(true)
    }

    /// Skip `n` bytes; how many were there.
    pub(super) fn skip(&mut self, mut n: u64) -> std::io::Result<u64> {
        let want = n;
        while n > 0 {
            if !self.refill()? {
                break;
            }
            let k = ((self.end - self.at) as u64).min(n);
            self.at += k as usize;
            n -= k;
        }
        Ok(want - n)
    }
}
