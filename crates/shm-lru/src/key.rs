//! Keys: a `u64` (the original package's "hash"), or bytes (strings and buffers).

use crate::hash::{fnv1a64, spread64};

/// Salt mixed into byte keys' hashes so that a byte key and the u64 equal to its FNV hash land in
/// different buckets (they are told apart by a flag in any case).
const BYTES_SALT: u64 = 0x5bd1_e995_2f3c_8a17;

/// A key to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRef<'a> {
    /// A 64-bit key, stored as it is.
    Hash(u64),
    /// A byte key (at most 65,535 bytes), stored in the record and compared byte for byte.
    Bytes(&'a [u8]),
}

/// An owned key, as returned by iteration and eviction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A 64-bit key.
    Hash(u64),
    /// A byte key.
    Bytes(Vec<u8>),
}

impl Key {
    /// Borrows this key for a lookup.
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Hash(h) => KeyRef::Hash(*h),
            Key::Bytes(b) => KeyRef::Bytes(b),
        }
    }
}

impl<'a> From<&'a str> for KeyRef<'a> {
    fn from(s: &'a str) -> KeyRef<'a> {
        KeyRef::Bytes(s.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for KeyRef<'a> {
    fn from(s: &'a [u8]) -> KeyRef<'a> {
        KeyRef::Bytes(s)
    }
}

impl From<u64> for KeyRef<'_> {
    fn from(h: u64) -> Self {
        KeyRef::Hash(h)
    }
}

impl KeyRef<'_> {
    /// The word stored in the slot's key field.
    #[inline]
    pub(crate) fn word(&self) -> u64 {
        match self {
            KeyRef::Hash(h) => *h,
            KeyRef::Bytes(b) => fnv1a64(b),
        }
    }

    /// The spread hash that picks shard and bucket.
    #[inline]
    pub(crate) fn spread(&self, word: u64) -> u64 {
        match self {
            KeyRef::Hash(_) => spread64(word),
            KeyRef::Bytes(_) => spread64(word ^ BYTES_SALT),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            KeyRef::Hash(_) => &[],
            KeyRef::Bytes(b) => b,
        }
    }

    pub(crate) fn is_bytes(&self) -> bool {
        matches!(self, KeyRef::Bytes(_))
    }

    /// Owns a copy.
    pub fn to_owned(&self) -> Key {
        match self {
            KeyRef::Hash(h) => Key::Hash(*h),
            KeyRef::Bytes(b) => Key::Bytes(b.to_vec()),
        }
    }
}

/// The spread hash of a stored slot's key (for rebuilding and checking the index).
pub(crate) fn spread_stored(word: u64, bytes_key: bool) -> u64 {
    if bytes_key {
        spread64(word ^ BYTES_SALT)
    } else {
        spread64(word)
    }
}
