//! A small layer over raw Node-API, knowing nothing of the cache: the error a callback throws
//! ([`error`]), the environment and the JS values it makes ([`env`]), the arguments a callback
//! reads ([`args`]), externals that own Rust objects ([`external`]) and the trampoline every
//! exported function runs through, with the macro that builds the export table ([`export`]).
//!
//! Everything here runs on the JS thread that called into the addon. A [`Cx`] exists only for the
//! duration of one callback, and the `napi_value` handles it hands out are valid only inside it;
//! that is what makes the safe methods of these modules sound.

mod args;
mod env;
mod error;
mod export;
mod external;

pub use args::{Cx, Text};
pub use env::{Env, Value};
pub use error::{ErrorKind, JsResult, Throw};
pub(crate) use export::exports;
pub use export::{export, trampoline, Callback};
pub use external::Handle;

/// `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE: u64 = (1 << 53) - 1;
