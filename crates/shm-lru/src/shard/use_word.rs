//! The slot's use word: the time of last use, whether the entry was used since it was linked,
//! and the time it was linked, packed into 64 bits.

/// A slot's use word, unpacked: when it was last used, whether it was used since it was linked
/// at its place in the recency list, and when it was so linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Use {
    pub used: u64,
    pub referenced: bool,
    pub linked: u64,
}

const USED_MASK: u64 = (1 << 44) - 1;
const REF_BIT: u64 = 1 << 44;
const DELTA_SHIFT: u32 = 45;
const DELTA_MAX: i64 = (1 << 18) - 1;

impl Use {
    /// An entry linked at its place by a use at `now`.
    pub(crate) fn linked_now(now: u64) -> Use {
        Use {
            used: now,
            referenced: false,
            linked: now,
        }
    }

    /// The use word after a use at `now` that does not move the entry.
    pub(crate) fn used_at(self, now: u64) -> Use {
        Use {
            used: now.max(self.used),
            referenced: true,
            linked: self.linked,
        }
    }

    pub(crate) fn pack(self) -> u64 {
        let delta = (self.used as i64 - self.linked as i64).clamp(-DELTA_MAX - 1, DELTA_MAX);
        (self.used & USED_MASK)
            | if self.referenced { REF_BIT } else { 0 }
            | (((delta as u64) & ((1 << 19) - 1)) << DELTA_SHIFT)
    }

    /// Whether use word `w` records a use at or after `now` since the entry was linked: a
    /// use at `now` has nothing to add. (Tested on the packed word, before unpacking.)
    #[inline(always)]
    pub(crate) fn recorded(w: u64, now: u64) -> bool {
        w & REF_BIT != 0 && now <= w & USED_MASK
    }

    pub(crate) fn unpack(w: u64) -> Use {
        let used = w & USED_MASK;
        // Sign-extend the 19-bit delta.
        let raw = (w >> DELTA_SHIFT) & ((1 << 19) - 1);
        let delta = ((raw as i64) << 45) >> 45;
        Use {
            used,
            referenced: w & REF_BIT != 0,
            linked: (used as i64 - delta).max(0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Use;

    #[test]
    fn use_word_round_trips() {
        for (used, linked, r) in [
            (1_700_000_000_000u64, 1_700_000_000_000u64, false),
            (1_700_000_000_500, 1_700_000_000_000, true),
            (1_700_000_000_000, 1_700_000_000_900, false),
            (5, 5, true),
        ] {
            let u = Use {
                used,
                referenced: r,
                linked,
            };
            assert_eq!(Use::unpack(u.pack()), u);
        }
        // A link time too far from the use saturates, keeping the sign.
        let far = Use {
            used: 10_000_000,
            referenced: false,
            linked: 1,
        };
        let back = Use::unpack(far.pack());
        assert_eq!(back.used, 10_000_000);
        assert!(back.linked < back.used && back.linked > 1);
    }
}
