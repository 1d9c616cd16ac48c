//! `shm-lru dump`: a cache's live entries in recency order, as a table or JSON. Entries are
//! copied out one shard at a time and not marked used.

use super::{open_cache, parse_u64, segment_error, Outcome, SegmentArg};
use crate::render;
use serde::Serialize;
use shm_lru::{Cache, Entry, Order, SegmentId};
use std::io::Write;

/// `dump`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    segment: SegmentArg,
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

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        let share_key = match self.share_key {
            None => None,
            Some(s) => Some(
                u32::try_from(parse_u64(&s)?)
                    .map_err(|_| anyhow::anyhow!("--share-key {s}: share keys are 32-bit"))?,
            ),
        };
        Ok(Config {
            id: self.segment.id()?,
            lru_first: self.lru_first,
            limit: self.limit,
            share_key,
            full: self.full,
            json: self.json,
        })
    }
}

/// Validated `dump` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// Least recently used first.
    pub lru_first: bool,
    /// At most this many entries.
    pub limit: Option<usize>,
    /// Only entries with this share key.
    pub share_key: Option<u32>,
    /// Never shorten cells.
    pub full: bool,
    /// Print JSON.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct JsonEntry {
    slot: u32,
    key: String,
    key_encoding: &'static str,
    value: String,
    value_encoding: &'static str,
    /// `str` or `bytes`: how the value was stored.
    kind: &'static str,
    size: usize,
    used_ms: u64,
    expires_ms: Option<u64>,
    share_key: u32,
}

const CELL_MAX: usize = 48;

/// Caches holding more entries than this are dumped lazily, a batch at a time.
const LAZY_OVER: u64 = 65_536;
/// Entries per batch of a lazy dump.
const BATCH: usize = 4096;

fn json_row(e: &Entry) -> JsonEntry {
    let k = render::json_key(&e.key);
    let v = render::json_bytes(&e.value);
    JsonEntry {
        slot: e.slot,
        key: k.value,
        key_encoding: k.encoding,
        value: v.value,
        value_encoding: v.encoding,
        kind: render::kind(e.kind),
        size: e.value.len(),
        used_ms: e.used_ms,
        expires_ms: e.expires_ms,
        share_key: e.share_key,
    }
}

fn cells(e: &Entry, max: Option<usize>, now: u64) -> Vec<String> {
    vec![
        e.slot.to_string(),
        render::cell_key(&e.key, max),
        render::cell_bytes(&e.value, max),
        format!("{} ago", render::duration_ms(now.saturating_sub(e.used_ms))),
        match e.expires_ms {
            None => "never".into(),
            Some(t) if t <= now => "expired".into(),
            Some(t) => format!("in {}", render::duration_ms(t - now)),
        },
        e.share_key.to_string(),
    ]
}

const HEADER: [&str; 6] = ["SLOT", "KEY", "VALUE", "USED", "EXPIRES", "SHARE"];

/// Runs `dump`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    let order = if cfg.lru_first {
        Order::LruFirst
    } else {
        Order::MruFirst
    };
    let held = cache.len().map_err(|e| segment_error(&cfg.id, e))?;
    if held > LAZY_OVER && cfg.limit.is_none_or(|l| l as u64 > LAZY_OVER) {
        return run_lazy(cfg, &cache, order, held, out);
    }
    let entries = cache
        .entries(order, cfg.share_key, cfg.limit)
        .map_err(|e| segment_error(&cfg.id, e))?;
    if cfg.json {
        let rows: Vec<JsonEntry> = entries.iter().map(json_row).collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(Outcome::Done);
    }
    let max = (!cfg.full).then_some(CELL_MAX);
    let now = cache.now_ms();
    let rows: Vec<Vec<String>> = entries.iter().map(|e| cells(e, max, now)).collect();
    render::table(out, &HEADER, &rows)?;
    let what = format!(
        "{} entr{} ({})",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        order_words(cfg)
    );
    footer(cfg, &cache, &what, out)
}

fn order_words(cfg: &Config) -> &'static str {
    if cfg.lru_first {
        "least recently used first"
    } else {
        "most recently used first"
    }
}

/// The last line of a table: what was shown, and how full the cache is (with a byte budget,
/// in bytes too).
fn footer(cfg: &Config, cache: &Cache, what: &str, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let st = cache.stats().map_err(|e| segment_error(&cfg.id, e))?;
    write!(out, "{what}, {} of {} slots in use", st.len, cache.capacity())?;
    if st.max_bytes > 0 {
        write!(
            out,
            "; {} of the value store used ({} live), {} free, within a budget of {}",
            render::size(st.bytes_used),
            render::size(st.bytes_live),
            render::size(st.bytes_free),
            render::size(st.max_bytes)
        )?;
    }
    writeln!(out)?;
    Ok(Outcome::Done)
}

/// `dump` of a large cache in constant memory: the engine's walk, shard after shard (each in
/// recency order), printed a batch at a time (a table per batch; one JSON array throughout).
fn run_lazy(
    cfg: &Config,
    cache: &Cache,
    order: Order,
    held: u64,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let limit = cfg.limit.unwrap_or(usize::MAX);
    let max = (!cfg.full).then_some(CELL_MAX);
    let mut from = None;
    let mut shown = 0usize;
    if cfg.json {
        write!(out, "[")?;
    }
    loop {
        let (batch, next) = cache
            .scan(order, from, BATCH)
            .map_err(|e| segment_error(&cfg.id, e))?;
        let batch: Vec<&Entry> = batch
            .iter()
            .filter(|e| cfg.share_key.is_none_or(|k| e.share_key == k))
            .take(limit - shown)
            .collect();
        if cfg.json {
            for e in &batch {
                if shown > 0 {
                    write!(out, ",")?;
                }
                writeln!(out)?;
                serde_json::to_writer_pretty(&mut *out, &json_row(e))?;
                shown += 1;
            }
        } else if !batch.is_empty() {
            let now = cache.now_ms();
            let rows: Vec<Vec<String>> = batch.iter().map(|e| cells(e, max, now)).collect();
            render::table(out, &HEADER, &rows)?;
            shown += batch.len();
        }
        match next {
            Some(n) if shown < limit => from = Some(n),
            _ => break,
        }
    }
    if cfg.json {
        writeln!(out, "\n]")?;
        return Ok(Outcome::Done);
    }
    let what = format!(
        "{shown} entries (shard after shard, each {}; {held} held, so walked in batches)",
        order_words(cfg)
    );
    footer(cfg, cache, &what, out)
}
