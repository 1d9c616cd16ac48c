//! What the engine's timing benches share: the figures they gather for their summaries, and the
//! keys their fills store.

use std::sync::Mutex;

/// Figures gathered for the summary: (name, ns per operation or a ratio).
static RESULTS: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Keeps a figure for the summary.
pub fn record(name: impl Into<String>, v: f64) {
    RESULTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name.into(), v));
}

/// Every figure kept, in the order kept.
#[allow(dead_code)]
pub fn all() -> Vec<(String, f64)> {
    RESULTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A figure kept by [`record`].
pub fn result(name: &str) -> Option<f64> {
    RESULTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(n, _)| n == name)
        .map(|&(_, v)| v)
}

/// SplitMix64's output function: a well-mixed 64-bit value of `x`.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The i-th key stored by a fill (top bit clear).
pub fn present_key(i: u64) -> u64 {
    splitmix(i) & !(1 << 63)
}
