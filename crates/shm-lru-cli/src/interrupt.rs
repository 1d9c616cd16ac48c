//! Ctrl-C: commands that loop (`stats --watch`, `bench`) ask to be told of it instead of being
//! killed, so that they can stop cleanly (and `bench` can remove its segment). A second Ctrl-C
//! exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Routes SIGINT to a flag from now on. Failing to install is not fatal: the
/// default action (exit) then applies.
pub fn install() {
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
}

/// Whether Ctrl-C was pressed since [`install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps for `d`, waking early on Ctrl-C. Returns `false` if interrupted.
pub fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if interrupted() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
