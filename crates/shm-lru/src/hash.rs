//! The hash functions fixed by the format: byte keys are hashed with FNV-1a (64-bit), and every
//! key's 64-bit value is then spread by [`spread64`], a folded multiply, before it picks a shard
//! (low bits), a bucket (high 32 bits) and a tag (the bits from 10 up). [`mix64`], MurmurHash3's
//! finaliser, is a bijection offered for spreading ids and seeds; the format does not use it.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit, over `bytes`: the stored `key` word of a byte-keyed slot.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The spread hash of a key's 64-bit word: the 128-bit product of `k` and an odd constant,
/// its two halves XORed. Every output bit depends on every input bit (the high half carries
/// the carries of all of them), at the cost of one multiply, where MurmurHash3's finaliser
/// takes two in sequence: the hash is the start of every lookup's chain of dependent steps.
#[inline(always)]
pub fn spread64(k: u64) -> u64 {
    let p = (k as u128).wrapping_mul(SPREAD_MUL as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The multiplier of [`spread64`] (MurmurHash3's first finaliser constant).
const SPREAD_MUL: u64 = 0xff51_afd7_ed55_8ccd;

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output.
#[inline]
pub fn mix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn spread_known_values_and_avalanche() {
        assert_eq!(spread64(0), 0);
        assert_eq!(spread64(1), SPREAD_MUL);
        // 2^64 * C, folded: the high half is C, the low half 0.
        assert_eq!(spread64(1 << 63), (SPREAD_MUL << 63) ^ (SPREAD_MUL >> 1));
        // Neighbouring keys differ in many bits, low (shard), middle (tag) and high (bucket).
        for k in [1u64, 134, 1 << 32, u64::MAX / 3] {
            let d = spread64(k) ^ spread64(k + 1);
            assert!(d.count_ones() > 12, "{k}: {d:#x}");
            assert_ne!(d & 0xffff, 0);
            assert_ne!(d >> 48, 0);
        }
    }

    #[test]
    fn mix_is_not_identity_and_spreads() {
        assert_eq!(mix64(0), 0);
        assert_ne!(mix64(1), 1);
        let a = mix64(134);
        let b = mix64(135);
        assert!((a ^ b).count_ones() > 16);
    }
}
