//! Benchmark hooks, built only with the `bench-hooks` feature (`node scripts/build.js --bench`,
//! which `bench/node.js` loads): the floors a call into the addon cannot go below, against which
//! the bench states what the cache's own calls cost. They touch no cache and ship in no package
//! build.

use crate::napi::{Cx, JsResult, Value};

/// The floor of a native call: converts two `u32`s and returns.
pub(crate) fn noop(cx: &Cx) -> JsResult<Value> {
    let mut a = 0u32;
    let mut b = 0u32;
    for (i, out) in [&mut a, &mut b].into_iter().enumerate() {
        *out = cx.u32(i, "n")?;
    }
    std::hint::black_box((a, b));
    cx.env.nothing()
}

/// The floor of a call that returns a string: 64 bytes already at hand.
pub(crate) fn string(cx: &Cx) -> JsResult<Value> {
    const S: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    cx.env.string(S)
}
