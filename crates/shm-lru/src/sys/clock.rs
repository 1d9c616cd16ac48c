//! The clock the cache reads on every hit, at the cost of one load.
//!
//! Reading the clock through the vDSO costs 7 to 25 ns on the machines we measure on: as much
//! as the rest of a hit. The cache needs milliseconds only (for expiry and times of use), so a
//! ticker thread stores the wall clock into a process-wide word every millisecond, and
//! [`now_ms`] loads that word. The ticker runs for a quarter of a second after it is woken and
//! then parks, storing 0: the next reader that finds 0 reads the real clock itself and wakes the
//! ticker. So a busy process pays one real clock read and one wake-up per 250 ms, and an idle
//! one has a parked thread and no wake-ups. A forked child (which has no ticker thread) starts
//! with the word at 0, so it reads the real clock until it starts its own.
//!
//! The ticker reads `CLOCK_REALTIME`, not the coarse clock: the coarse clock moves only on the
//! kernel's tick (4 ms here), and on a tickless kernel a CPU that was idle can read it
//! unchanged 5 ms and more after its last reading, so two readings around a short sleep could
//! be equal. The word lags the real clock by the ticker's period and scheduling delay (several
//! milliseconds on a loaded machine). Cold paths that compare times of use with "now" (eviction
//! by age, purging) read the clock with [`fresh_now_ms`] instead, which also carries that reading
//! into the word.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

/// The last millisecond the ticker stored; 0 while it is parked or not started.
static TICK: AtomicU64 = AtomicU64::new(0);
/// 0: no ticker thread; 1: running; 2: parked.
static STATE: AtomicU8 = AtomicU8::new(0);
static TICKER: OnceLock<Mutex<Option<Thread>>> = OnceLock::new();

const RUN: Duration = Duration::from_millis(250);

/// The wall clock, epoch ms, read from the system (a vDSO call, no system call).
pub fn wall_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// The word [`now_ms`] loads: the ticker's last millisecond, or 0 when [`now_ms`] must be
/// called to read the clock (and wake the ticker).
pub fn ticked() -> &'static AtomicU64 {
    &TICK
}

/// Wall-clock time in milliseconds since the Unix epoch, within about a millisecond.
#[inline]
pub fn now_ms() -> u64 {
    let t = TICK.load(Relaxed);
    if t != 0 {
        return t;
    }
    wake()
}

/// The wall clock read now, for cold paths that must not see a stale tick. While the ticker
/// runs, the reading is also stored into the ticked word if it is ahead of it, so that hits
/// after this call record at least this time (times of use never lag a cutoff taken before).
pub fn fresh_now_ms() -> u64 {
    let now = wall_now_ms();
    carry(&TICK, now);
    now
}

/// Moves `word` forward to `now` if it holds an earlier tick. Only a running ticker's word
/// (non-zero) is moved: storing into a parked one's 0 would stop readers from waking it, and
/// the word would then stand still.
fn carry(word: &AtomicU64, now: u64) {
    let _ = word.fetch_update(Relaxed, Relaxed, |t| (t != 0 && t < now).then_some(now));
}

#[cold]
fn wake() -> u64 {
    let now = wall_now_ms();
    match STATE.load(Relaxed) {
        0 if STATE.compare_exchange(0, 1, Relaxed, Relaxed).is_ok() => start(),
        2 if STATE.compare_exchange(2, 1, Relaxed, Relaxed).is_ok() => {
            if let Some(t) = TICKER.get().and_then(|m| m.lock().ok()?.clone()) {
                t.unpark();
            }
        }
        _ => {}
    }
    now
}

fn start() {
    register_fork_handler();
    let spawned = std::thread::Builder::new()
        .name("shm-lru-clock".into())
        .spawn(|| loop {
            let until = wall_now_ms() + RUN.as_millis() as u64;
            loop {
                let now = wall_now_ms();
                TICK.store(now, Relaxed);
                if now >= until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            TICK.store(0, Relaxed);
            STATE.store(2, Relaxed);
            // A reader may have seen 0 and woken us between the two stores: it set STATE back
            // to 1 and unparked (the token makes this park return at once).
            std::thread::park();
            STATE.store(1, Relaxed);
        });
    match spawned {
        Ok(h) => {
            let slot = TICKER.get_or_init(|| Mutex::new(None));
            if let Ok(mut s) = slot.lock() {
                *s = Some(h.thread().clone());
            }
        }
        // No thread to be had: every read goes to the real clock.
        Err(_) => STATE.store(3, Relaxed),
    }
}

extern "C" fn in_forked_child() {
    TICK.store(0, Relaxed);
    STATE.store(0, Relaxed);
}

fn register_fork_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the child handler only stores to two atomics, which is async-signal-safe and
        // fine in a freshly forked child; pthread_atfork has no other preconditions.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_forked_child));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticked_clock_follows_the_real_one() {
        // Never ahead of the real clock; behind it by at most 20 ms once the ticker has run (a
        // loaded machine may hold the ticker back for a while: it is given up to a second to
        // catch up, each time).
        for _ in 0..50 {
            let mut tries = 0;
            loop {
                let real = wall_now_ms();
                let fast = now_ms();
                assert!(fast <= real + 20, "fast {fast} ahead of real {real}");
                if fast + 20 >= real {
                    break;
                }
                tries += 1;
                assert!(tries < 200, "the ticked clock stayed {} ms behind", real - fast);
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(7));
        }
    }

    #[test]
    fn a_fresh_reading_moves_a_stale_word_forward_and_leaves_a_parked_one_parked() {
        let word = AtomicU64::new(1_000);
        carry(&word, 1_250);
        assert_eq!(word.load(Relaxed), 1_250, "a stale tick is carried forward");
        carry(&word, 1_200);
        assert_eq!(word.load(Relaxed), 1_250, "never backwards");
        let parked = AtomicU64::new(0);
        carry(&parked, 1_250);
        assert_eq!(
            parked.load(Relaxed),
            0,
            "a parked ticker's 0 stays, so readers wake it"
        );
        let real = wall_now_ms();
        let fresh = fresh_now_ms();
        assert!(fresh >= real && fresh <= real + 20, "fresh {fresh} real {real}");
    }
}
