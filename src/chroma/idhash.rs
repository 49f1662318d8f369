//! A record id as a 128-bit hash: how the index truth, the rebuild and the records compare ids
//! from the pickle, the WAL and the metadata segment without holding a million strings.
//!
//! The same UTF-8 bytes give the same hash wherever they come from (SQLite text, a pickle's
//! string). Two different ids of one collection share a hash with probability about
//! n² / 2¹²⁹: for a billion ids, below 10⁻²⁰.

use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// The hash of one id: 16 bytes, ordered, aligned to 8 (not 16) so pairs pack tightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IdHash(pub u64, pub u64);

impl IdHash {
    pub fn of(id: &[u8]) -> IdHash {
        IdHash::from_u128(xxh3_128(id))
    }

    fn from_u128(h: u128) -> IdHash {
        IdHash((h >> 64) as u64, h as u64)
    }
}

/// A set and maps keyed by id hashes or labels. The keys already are good hashes (or small
/// integers): the table spreads them with one multiply instead of SipHash, and a lookup is one
/// probe, not a binary search's twenty cache misses over a million ids.
pub type IdSet = std::collections::HashSet<IdHash, BuildKeyHasher>;
pub type IdMap<V> = std::collections::HashMap<IdHash, V, BuildKeyHasher>;
pub type LabelMap<V> = std::collections::HashMap<u64, V, BuildKeyHasher>;

/// See [`IdSet`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildKeyHasher;

impl std::hash::BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// Fibonacci hashing of the words written (an [`IdHash`]'s two, a label's one).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Hash an id that arrives in pieces (a long string streamed from a pickle).
#[derive(Default)]
pub struct Hasher(Xxh3);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(&self) -> IdHash {
        IdHash::from_u128(self.0.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_as_the_whole() {
        let id = "a-long-record-id-".repeat(20);
        let mut h = Hasher::default();
        for c in id.as_bytes().chunks(7) {
            h.update(c);
        }
        assert_eq!(h.finish(), IdHash::of(id.as_bytes()));
        assert_ne!(IdHash::of(b"id1"), IdHash::of(b"id2"));
        assert_eq!(std::mem::size_of::<(IdHash, u64)>(), 24);
    }
}
