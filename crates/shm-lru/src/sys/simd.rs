//! The bucket scan, four 16-byte loads and compares, and the 16-byte copies of a value out of
//! and into shared memory.
//!
//! A lock-free reader scans a bucket that a writer in another process may be changing. The
//! scan's result is only a list of candidates, which the reader then checks against the slot
//! and validates with the bucket's sequence number, so a torn read costs a retry, never a wrong
//! answer. The loads are made in inline assembly: an `asm!` block is opaque to the compiler, so
//! a concurrent write is not a data race in the language's sense (as it would be for a plain
//! SIMD load), and the hardware guarantees each 16-byte load reads bytes that were there.

use std::arch::asm;
use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_cmpeq_epi32, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32,
    _mm_set1_epi32, _mm_storeu_si128,
};

/// Loads 16 bytes at `p`.
///
/// # Safety
/// `p` must be valid for reading 16 bytes (no alignment needed).
#[inline(always)]
unsafe fn load16(p: *const u8) -> __m128i {
    let v: __m128i;
    // SAFETY: the caller guarantees 16 readable bytes at `p`; `movdqu` has no alignment
    // requirement, writes only the output register and touches no stack or flags.
    unsafe {
        asm!("movdqu {v}, [{p}]", v = out(xmm_reg) v, p = in(reg) p, options(nostack, preserves_flags, readonly));
    }
    v
}

/// Bit `i` set for each of the 14 entries after the 8-byte bucket header at `bucket` (a
/// 64-byte bucket) whose bits under `mask` equal `tag`.
///
/// # Safety
/// `bucket` must be valid for reading 64 bytes (no alignment needed), which other processes may
/// be writing.
#[inline(always)]
pub(crate) unsafe fn bucket_matches(bucket: *const u8, mask: u32, tag: u32) -> u32 {
    let (a, b, c, d): (__m128i, __m128i, __m128i, __m128i);
    // SAFETY: the caller guarantees 64 readable bytes at `bucket`, so the four loads stay in
    // them; `movdqu` has no alignment requirement, and the block writes only its four output
    // registers.
    unsafe {
        asm!(
            "movdqu {a}, [{p}]",
            "movdqu {b}, [{p} + 16]",
            "movdqu {c}, [{p} + 32]",
            "movdqu {d}, [{p} + 48]",
            p = in(reg) bucket,
            a = out(xmm_reg) a,
            b = out(xmm_reg) b,
            c = out(xmm_reg) c,
            d = out(xmm_reg) d,
            options(nostack, preserves_flags, readonly),
        );
    }
    // SAFETY: SSE2 is part of the x86_64 baseline; these operate on registers only.
    unsafe {
        let m = _mm_set1_epi32(mask as i32);
        let t = _mm_set1_epi32(tag as i32);
        let eq = |v: __m128i| _mm_cmpeq_epi32(_mm_and_si128(v, m), t);
        // Sixteen 0/-1 lanes narrowed to sixteen bytes, in order, then one bit each.
        let lanes = _mm_packs_epi16(_mm_packs_epi32(eq(a), eq(b)), _mm_packs_epi32(eq(c), eq(d)));
        let bits = _mm_movemask_epi8(lanes) as u32;
        // Lanes 0 and 1 are the sequence number and the spill word.
        bits >> 2
    }
}

/// Copies 16 bytes from shared memory at `src` (which a writer may be changing: the caller
/// validates the copy afterwards) to private memory at `dst`.
///
/// # Safety
/// `src` must be valid for reading 16 bytes and `dst` for writing 16 bytes (no alignment
/// needed), and `dst` must not be shared memory.
#[inline(always)]
pub(crate) unsafe fn copy16(src: *const u8, dst: *mut u8) {
    // SAFETY: the caller guarantees both ranges; the load is the opaque `load16`, the store an
    // unaligned SSE2 store into memory only this thread writes.
    unsafe { _mm_storeu_si128(dst.cast(), load16(src)) }
}

/// Copies `len` (at least 16) bytes from shared memory at `src` (which a writer may be
/// changing: the caller validates the copy afterwards) to private memory at `dst`, in 16-byte
/// pieces: up to 32 bytes the first and the last 16 (overlapping), longer ones 64 bytes a turn
/// (so that the loads of a long value overlap) and then the rest's first 32 bytes if more than
/// 32 are left and the last 32 of all (overlapping what was copied).
///
/// # Safety
/// `len >= 16`, `src` must be valid for reading `len` bytes and `dst` for writing `len` bytes
/// (no alignment needed), and `dst` must not be shared memory.
#[inline(always)]
pub(crate) unsafe fn copy_out(src: *const u8, dst: *mut u8, len: usize) {
    debug_assert!(len >= 16);
    let copy = |at: usize| {
        // SAFETY: every call below passes at + 16 <= len: the 16 bytes lie in both ranges (the
        // function's contract).
        unsafe { copy16(src.wrapping_add(at), dst.add(at)) }
    };
    if len <= 32 {
        copy(0);
        copy(len - 16);
        return;
    }
    let mut i = 0;
    while i + 64 < len {
        copy(i);
        copy(i + 16);
        copy(i + 32);
        copy(i + 48);
        i += 64;
    }
    // 0 < len - i <= 64 bytes are left, and len > 32.
    if len - i > 32 {
        copy(i);
        copy(i + 16);
    }
    copy(len - 32);
    copy(len - 16);
}

/// Copies 16 bytes from private memory at `src` to shared memory at `dst`, which lock-free
/// readers may be reading (they validate what they read afterwards), as one store in inline
/// assembly.
///
/// # Safety
/// `src` must be valid for reading 16 bytes and `dst` for writing 16 bytes (no alignment
/// needed).
#[inline(always)]
pub(crate) unsafe fn store16(dst: *mut u8, src: *const u8) {
    // SAFETY: the caller guarantees both ranges; the unaligned load reads private memory, and
    // the store is an opaque `movdqu`, so the compiler neither splits nor elides it.
    unsafe {
        let v = std::arch::x86_64::_mm_loadu_si128(src.cast());
        asm!("movdqu [{p}], {v}", p = in(reg) dst, v = in(xmm_reg) v, options(nostack, preserves_flags));
    }
}
