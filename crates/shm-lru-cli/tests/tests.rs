//! Integration tests of the `shm-lru` command: every test runs the built executable as an
//! operator would, against segments made here, by a child process, or by hand in a foreign
//! format. Each test uses its own segment names and a guard that removes them.

mod util;

mod bench;
mod budget;
mod check;
mod display;
mod foreign;
mod inspect;
mod ops;
mod shrink;

/// The child side of the multi-process tests: does nothing in a normal run; when the test
/// binary is re-run with the role variable set, it plays that role instead.
#[test]
fn child_role() {
    if let Ok(role) = std::env::var(util::ROLE_VAR) {
        util::child_main(&role);
    }
}
