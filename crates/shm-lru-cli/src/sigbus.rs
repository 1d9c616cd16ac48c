//! SIGBUS: what happens when a mapped POSIX object shrinks underneath the command.
//!
//! Any process that may write a POSIX object can also truncate it, and the kernel answers the
//! next read of a page past the new end with SIGBUS, whose default action kills the process
//! (exit status 135) without a word. A command that maps one cache asks [`guard`] to catch
//! that: a fault inside the cache's mapping then prints which segment shrank, removes the
//! segment if the command made it for itself (`bench`), and exits with status 2. A SIGBUS at
//! any other address is none of ours and keeps its default action.

use shm_lru::Cache;
use std::ffi::CString;
use std::sync::OnceLock;

/// What the handler needs, made before it is installed so that it only reads.
struct Guarded {
    /// The mapping's first byte and length.
    base: usize,
    len: usize,
    /// The whole line written to stderr.
    message: Vec<u8>,
    /// A file to unlink before exiting: the command's own temporary segment.
    remove: Option<CString>,
}

static GUARDED: OnceLock<Guarded> = OnceLock::new();

/// Exit status after a guarded fault, as for any other error.
const EXIT: libc::c_int = 2;

/// From now on, a SIGBUS inside `cache`'s mapping ends the process with a message naming the
/// segment, after unlinking `remove` if given. Only the first call in a process takes effect
/// (a command maps one cache). Failing to install is not fatal: the default action remains.
pub fn guard(cache: &Cache, remove: Option<&str>) {
    let seg = cache.segment();
    let id = seg.id();
    let mut message = format!(
        "shm-lru: segment {id} shrank underneath this process (another process truncated it); \
         its cache cannot be read any more"
    );
    if remove.is_some() {
        message.push_str("; the segment was removed");
    }
    message.push('\n');
    let guarded = Guarded {
        base: seg.as_ptr() as usize,
        len: usize::try_from(seg.len()).unwrap_or(usize::MAX),
        message: message.into_bytes(),
        remove: remove.and_then(|p| CString::new(p).ok()),
    };
    if GUARDED.set(guarded).is_err() {
        return;
    }
    // SAFETY: an all-zero `sigaction` is a valid value of the C struct (no handler, empty mask,
    // no flags); every field that matters is set below before it is used.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigbus;
    action.sa_sigaction = handler as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action.sa_mask` is a valid `sigset_t` owned by this frame; `sigemptyset` only
    // writes it. `sigaction` copies `action` and touches nothing else of ours; the handler it
    // installs only does what is async-signal-safe (see `on_sigbus`).
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// The SIGBUS handler. It calls only async-signal-safe functions (`write`, `unlink`, `signal`,
/// `_exit`) and reads only [`GUARDED`], which was set before the handler was installed and is
/// never changed.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to a handler installed with SA_SIGINFO,
    // and for SIGBUS `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let ours = GUARDED.get().filter(|g| addr >= g.base && addr - g.base < g.len);
    let Some(g) = ours else {
        // Not our mapping: put the default action back and return, so that the faulting
        // access runs again and ends the process as it would have without us.
        // SAFETY: `signal` with SIG_DFL is async-signal-safe and touches no memory of ours.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        return;
    };
    // SAFETY: `g.message` and `g.remove` are owned by the static, which lives for the whole
    // process and is no longer written; `write`, `unlink` and `_exit` are async-signal-safe.
    // A failed write or unlink changes nothing about exiting.
    unsafe {
        if let Some(path) = &g.remove {
            libc::unlink(path.as_ptr());
        }
        libc::write(2, g.message.as_ptr().cast(), g.message.len());
        libc::_exit(EXIT);
    }
}
