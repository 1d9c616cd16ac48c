//! The engine's integration tests: one binary, one module per topic, shared helpers in `util`.
//!
//! Tests that need other processes re-run this binary as the child (see [`child_main`]), so
//! every process is real and the crash tests can `SIGKILL` one at any instruction.

mod api;
mod budget;
mod crash;
mod format;
mod growth;
mod hardening;
mod lifecycle;
mod lockfree;
mod model;
mod multiprocess;
mod races;
mod util;

/// The entry point of child processes. In a normal test run it returns at once; a parent
/// starts this binary with `--exact child_main` and `SHM_LRU_TEST_ROLE` set to run one role.
#[test]
fn child_main() {
    let Some(role) = util::child_role() else {
        return;
    };
    match role.as_str() {
        "mp-worker" => multiprocess::mp_worker(),
        "budget-writer" => budget::budget_writer(),
        "budget-reader" => budget::budget_reader(),
        "budget-stable-reader" => budget::budget_stable_reader(),
        "growth-stable-reader" => growth::stable_reader(),
        "growth-inserter" => growth::inserter(),
        "kill-writer" => multiprocess::kill_writer(),
        "kill-survivor" => multiprocess::kill_survivor(),
        "kill-reader" => multiprocess::kill_reader(),
        "open-or-create" => lifecycle::open_or_create_child(),
        "keep-using" => lifecycle::keep_using_child(),
        "stable-reader" => lockfree::stable_reader(),
        "churn-writer" => lockfree::churn_writer(),
        "any-reader" => lockfree::any_reader(),
        "scribbler" => lockfree::scribbler(),
        "hold-shard-lock" => crash::hold_shard_lock(),
        "hold-app-lock" => crash::hold_app_lock(),
        "incr-loop" => crash::incr_loop(),
        "rewrite-loop" => crash::rewrite_loop(),
        "create-and-die" => crash::create_and_die(),
        "timed-locker" => crash::timed_locker(),
        "wait-app-lock" => crash::wait_app_lock(),
        r if r.starts_with("hardening-") => hardening::child(r),
        other => panic!("unknown child role {other:?}"),
    }
}
