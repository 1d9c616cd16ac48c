//! The hash functions fixed by the format: byte keys are hashed with FNV-1a (64-bit), and every
//! key's 64-bit value is then spread by the `fmix64` finaliser of MurmurHash3 before it picks a
//! shard (low bits) and a bucket (high 32 bits).

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
    fn mix_is_not_identity_and_spreads() {
        assert_eq!(mix64(0), 0);
        assert_ne!(mix64(1), 1);
        let a = mix64(134);
        let b = mix64(135);
        assert!((a ^ b).count_ones() > 16);
    }
}
