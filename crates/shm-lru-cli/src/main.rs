//! `shm-lru`: the operator's view of shm-lru caches in shared memory.
//!
//! This file owns the command line: clap parses raw flags into the `*Args` structs, which are
//! then checked and turned into each command's validated `Config` before anything touches a
//! segment. Each command lives in its own module under `cmd/`. Exit status: 0 when the command
//! did what was asked, 1 when it ran but the answer is "no" (a `check` that found problems, a
//! `get` or `del` of an absent key), 2 for any error (bad arguments, a missing or foreign
//! segment, a failed system call).

mod cmd;
mod interrupt;
mod inventory;
mod render;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use shm_lru::SegmentId;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

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
    Ls(LsArgs),
    /// Show a cache's counters: hit rate, fill, evictions; with --watch, per interval.
    Stats(StatsArgs),
    /// Print a cache's entries, most recently used first.
    ///
    /// Keys and values are shown as text when they are printable UTF-8 (quoted), otherwise as
    /// 0x-prefixed hex; u64 keys are shown as bare numbers. Reading does not mark entries used.
    Dump(DumpArgs),
    /// Print the value stored under a key (without marking it used or counting a hit).
    Get(GetArgs),
    /// Store a string value under a key.
    Set(SetArgs),
    /// Remove a key.
    Del(DelArgs),
    /// Verify every structural invariant of a cache; exit status 1 if any is violated.
    Check(CheckArgs),
    /// Destroy a segment that holds a shm-lru cache.
    ///
    /// Refused while other processes are attached (for POSIX objects, as far as /proc/*/maps
    /// shows) unless --force, and always refused for segments not in the shm-lru format.
    Rm(RmArgs),
    /// Measure get/set throughput on a temporary cache, removed afterwards.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
    /// Print one line per interval of this many seconds (fractions allowed) until Ctrl-C.
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
    /// With --watch: stop after this many intervals.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print JSON (with --watch, one object per line).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
    /// Least recently used first.
    #[arg(long)]
    lru_first: bool,
    /// Print at most this many entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only entries with this share key.
    #[arg(long, value_name = "K")]
    share_key: Option<String>,
    /// Do not shorten long keys and values in the table.
    #[arg(long)]
    full: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct KeyArgs {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
    /// The entry's key: a string, or with --hash a u64.
    key: String,
    /// Treat the key as a u64 (decimal or 0x-hex), like the original package's hashes.
    #[arg(long)]
    hash: bool,
}

#[derive(Debug, Args)]
struct GetArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Write the value's bytes exactly as stored, with no newline.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SetArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The value, stored as a string.
    value: String,
    /// Time to live in milliseconds (0: forever; default: the cache's default).
    #[arg(long, value_name = "MS")]
    ttl: Option<u64>,
}

#[derive(Debug, Args)]
struct DelArgs {
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
    /// Remove even while processes are attached (their mappings stay valid until they detach),
    /// or while the cache's initialisation never finished.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Entries the temporary cache holds.
    #[arg(long, default_value_t = 100_000)]
    capacity: u64,
    /// Data bytes per record.
    #[arg(long, default_value_t = 64)]
    record_size: u32,
    /// Bytes of each value written (at most the record size).
    #[arg(long, default_value_t = 32)]
    value_size: u32,
    /// Distinct keys used (default: the capacity, so that gets hit).
    #[arg(long)]
    keys: Option<u64>,
    /// Operations in each phase (set, then get), over all threads.
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Threads running operations at once.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

/// A fully checked command, ready to run.
#[derive(Debug)]
enum Config {
    Ls(cmd::ls::Config),
    Stats(cmd::stats::Config),
    Dump(cmd::dump::Config),
    Get(cmd::get::Config),
    Set(cmd::set::Config),
    Del(cmd::del::Config),
    Check(cmd::check::Config),
    Rm(cmd::rm::Config),
    Bench(cmd::bench::Config),
}

fn segment_id(raw: &str) -> anyhow::Result<SegmentId> {
    raw.parse::<SegmentId>()
        .with_context(|| format!("bad segment {raw:?}"))
}

fn key(args: KeyArgs) -> anyhow::Result<(SegmentId, cmd::OwnedKey)> {
    let id = segment_id(&args.segment)?;
    let key = if args.hash {
        cmd::OwnedKey::Hash(parse_u64(&args.key).with_context(|| format!("bad --hash key {:?}", args.key))?)
    } else {
        cmd::OwnedKey::Str(args.key)
    };
    Ok((id, key))
}

fn parse_u64(s: &str) -> anyhow::Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    r.map_err(|_| anyhow::anyhow!("expected an unsigned 64-bit integer, decimal or 0x-hex"))
}

impl Config {
    fn from_cli(cli: Cli) -> anyhow::Result<Config> {
        Ok(match cli.command {
            Command::Ls(a) => Config::Ls(cmd::ls::Config { json: a.json }),
            Command::Stats(a) => {
                let id = segment_id(&a.segment)?;
                let watch = match a.watch {
                    None => None,
                    Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
                    Some(s) => {
                        bail!("--watch {s}: the interval must be more than 0 and at most 86400 seconds")
                    }
                };
                if a.count.is_some() && watch.is_none() {
                    bail!("--count needs --watch");
                }
                if a.count == Some(0) {
                    bail!("--count must be at least 1");
                }
                Config::Stats(cmd::stats::Config {
                    id,
                    watch,
                    count: a.count,
                    json: a.json,
                })
            }
            Command::Dump(a) => {
                let share_key = match a.share_key {
                    None => None,
                    Some(s) => Some(
                        u32::try_from(parse_u64(&s)?)
                            .map_err(|_| anyhow::anyhow!("--share-key {s}: share keys are 32-bit"))?,
                    ),
                };
                Config::Dump(cmd::dump::Config {
                    id: segment_id(&a.segment)?,
                    lru_first: a.lru_first,
                    limit: a.limit,
                    share_key,
                    full: a.full,
                    json: a.json,
                })
            }
            Command::Get(a) => {
                let (id, key) = key(a.key)?;
                Config::Get(cmd::get::Config {
                    id,
                    key,
                    raw: a.raw,
                    json: a.json,
                })
            }
            Command::Set(a) => {
                let (id, key) = key(a.key)?;
                Config::Set(cmd::set::Config {
                    id,
                    key,
                    value: a.value,
                    ttl_ms: a.ttl,
                })
            }
            Command::Del(a) => {
                let (id, key) = key(a.key)?;
                Config::Del(cmd::del::Config { id, key })
            }
            Command::Check(a) => Config::Check(cmd::check::Config {
                id: segment_id(&a.segment)?,
                json: a.json,
            }),
            Command::Rm(a) => Config::Rm(cmd::rm::Config {
                id: segment_id(&a.segment)?,
                force: a.force,
            }),
            Command::Bench(a) => {
                if a.capacity == 0 {
                    bail!("--capacity must be at least 1");
                }
                if a.value_size > a.record_size {
                    bail!(
                        "--value-size {} exceeds --record-size {}",
                        a.value_size,
                        a.record_size
                    );
                }
                if a.ops == 0 {
                    bail!("--ops must be at least 1");
                }
                if a.threads == 0 || a.threads > 256 {
                    bail!("--threads must be between 1 and 256");
                }
                let keys = a.keys.unwrap_or(a.capacity);
                if keys == 0 {
                    bail!("--keys must be at least 1");
                }
                Config::Bench(cmd::bench::Config {
                    capacity: a.capacity,
                    record_size: a.record_size,
                    value_size: a.value_size,
                    keys,
                    ops: a.ops,
                    threads: a.threads,
                    json: a.json,
                })
            }
        })
    }

    fn run(self, out: &mut dyn Write) -> anyhow::Result<Outcome> {
        match self {
            Config::Ls(c) => cmd::ls::run(&c, out),
            Config::Stats(c) => cmd::stats::run(&c, out),
            Config::Dump(c) => cmd::dump::run(&c, out),
            Config::Get(c) => cmd::get::run(&c, out),
            Config::Set(c) => cmd::set::run(&c, out),
            Config::Del(c) => cmd::del::run(&c, out),
            Config::Check(c) => cmd::check::run(&c, out),
            Config::Rm(c) => cmd::rm::run(&c, out),
            Config::Bench(c) => cmd::bench::run(&c, out),
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
    let result = Config::from_cli(cli).and_then(|c| {
        let r = c.run(&mut out);
        out.flush().map_err(anyhow::Error::from).and(r)
    });
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
