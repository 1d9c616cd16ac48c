//! `shm-lru`: the operator's view of shm-lru caches in shared memory.
//!
//! This file owns the list of commands and the dispatch: clap parses the raw flags into the
//! command's `Args` (declared with the command in `cmd/<name>.rs`), which checks them into its
//! validated `Config` before anything touches a segment, and the command then runs. Exit
//! status: 0 when the command did what was asked, 1 when it ran but the answer is "no" (a
//! `check` that found problems, a `get` or `del` of an absent key), 2 for any error (bad
//! arguments, a missing or foreign segment, a failed system call).

mod cmd;
mod interrupt;
mod inventory;
mod notation;
mod render;
mod sigbus;

use clap::{Parser, Subcommand};
use std::io::{self, Write};
use std::process::ExitCode;

use cmd::Outcome;

const AFTER_HELP: &str = "\
Segments are named like the engine names them: a System V key in decimal or 0x-hex (e.g. 1234
or 0x4d2), or a POSIX shared memory object as /name.

Exit status: 0 on success; 1 when the command ran but the answer is no (check found problems,
get or del found no such key); 2 on any error (bad arguments, a segment that does not exist or
does not hold a shm-lru cache, a failed system call).";

/// List, inspect, check and clean up shm-lru caches in shared memory.
#[derive(Debug, Parser)]
#[command(name = "shm-lru", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every shared memory segment on this machine that holds a shm-lru cache.
    ///
    /// System V segments are read from /proc/sysvipc/shm, POSIX objects from /dev/shm. Segments
    /// in any other format are skipped and never written. For POSIX objects the attached count
    /// is found by scanning /proc/*/maps for /dev/shm/<name>: best effort, since processes of
    /// other users are only visible to root, and a process that mapped the object and closed it
    /// again is not counted.
    Ls(cmd::ls::Args),
    /// Show a cache's counters: hit rate, fill, evictions; with --watch, per interval.
    Stats(cmd::stats::Args),
    /// Print a cache's entries, most recently used first.
    ///
    /// Keys and values are shown as text when they are UTF-8 without NUL bytes: quoted, with
    /// control characters escaped (\t, \n, \u{1b}); otherwise as 0x-prefixed hex. u64 keys are
    /// shown as bare numbers (give them back with --hash). A key shown here can be given to
    /// get, set and del as shown. Columns are aligned by display width. Reading does not mark
    /// entries used.
    Dump(cmd::dump::Args),
    /// Print the value stored under a key (without marking it used or counting a hit).
    Get(cmd::get::Args),
    /// Store a string value under a key.
    Set(cmd::set::Args),
    /// Remove a key.
    Del(cmd::del::Args),
    /// Verify every structural invariant of a cache; exit status 1 if any is violated.
    Check(cmd::check::Args),
    /// Destroy a segment that holds a shm-lru cache.
    ///
    /// Refused while other processes are attached (for POSIX objects, as far as /proc/*/maps
    /// shows) unless --force, and always refused for segments not in the shm-lru format.
    Rm(cmd::rm::Args),
    /// Measure get/set throughput on a temporary cache, removed afterwards.
    Bench(cmd::bench::Args),
}

impl Command {
    /// Checks the arguments, then runs the command.
    fn run(self, out: &mut dyn Write) -> anyhow::Result<Outcome> {
        match self {
            Command::Ls(a) => cmd::ls::run(&a.config()?, out),
            Command::Stats(a) => cmd::stats::run(&a.config()?, out),
            Command::Dump(a) => cmd::dump::run(&a.config()?, out),
            Command::Get(a) => cmd::get::run(&a.config()?, out),
            Command::Set(a) => cmd::set::run(&a.config()?, out),
            Command::Del(a) => cmd::del::run(&a.config()?, out),
            Command::Check(a) => cmd::check::run(&a.config()?, out),
            Command::Rm(a) => cmd::rm::run(&a.config()?, out),
            Command::Bench(a) => cmd::bench::run(&a.config()?, out),
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = cli.command.run(&mut out);
    let result = out.flush().map_err(anyhow::Error::from).and(r);
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(1),
        // A reader such as `head` went away: not an error of ours.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shm-lru: {e:#}");
            ExitCode::from(2)
        }
    }
}
