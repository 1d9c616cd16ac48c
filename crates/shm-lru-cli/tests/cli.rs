//! Integration tests of the `shm-lru` command: every test runs the built executable as an
//! operator would, against segments made here, by a child process, or by hand in a foreign
//! format. Each test uses its own segment names and a guard that removes them.

#[path = "cli/util.rs"]
mod util;

#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/check.rs"]
mod check;
#[path = "cli/display.rs"]
mod display;
#[path = "cli/foreign.rs"]
mod foreign;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/ops.rs"]
mod ops;
#[path = "cli/shrink.rs"]
mod shrink;

/// The child side of the multi-process tests: does nothing in a normal run; when the test
/// binary is re-run with the role variable set, it plays that role instead.
#[test]
fn child_role() {
    if let Ok(role) = std::env::var(util::ROLE_VAR) {
        util::child_main(&role);
    }
}
