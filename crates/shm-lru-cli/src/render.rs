//! How bytes, keys, sizes and times are shown: as text where they are printable UTF-8, else as
//! hex; and plain aligned tables for the human-readable outputs.

use serde::Serialize;
use shm_lru::Key;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Bytes as text if they are UTF-8 without control characters.
pub fn printable(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.chars().any(char::is_control))
}

/// Lower-case hex digits, no prefix.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes shown in JSON: the text, or hex with the encoding saying which.
#[derive(Debug, Serialize)]
pub struct JsonBytes {
    /// The bytes as text (`utf8`) or hex digits (`hex`).
    pub value: String,
    /// `utf8` or `hex`.
    pub encoding: &'static str,
}

/// The JSON form of some bytes.
pub fn json_bytes(bytes: &[u8]) -> JsonBytes {
    match printable(bytes) {
        Some(s) => JsonBytes {
            value: s.to_string(),
            encoding: "utf8",
        },
        None => JsonBytes {
            value: hex(bytes),
            encoding: "hex",
        },
    }
}

/// Bytes for a table cell: `"text"` quoted, or `0x…` hex; cut to about `max` characters
/// (`None`: never cut).
pub fn cell_bytes(bytes: &[u8], max: Option<usize>) -> String {
    let full = match printable(bytes) {
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        None => format!("0x{}", hex(bytes)),
    };
    match max {
        Some(m) if full.chars().count() > m => {
            let cut: String = full.chars().take(m.saturating_sub(1)).collect();
            format!("{cut}… ({} bytes)", bytes.len())
        }
        _ => full,
    }
}

/// A key for a table cell: u64 keys as bare numbers, byte keys as [`cell_bytes`].
pub fn cell_key(key: &Key, max: Option<usize>) -> String {
    match key {
        Key::Hash(h) => h.to_string(),
        Key::Bytes(b) => cell_bytes(b, max),
    }
}

/// A key in JSON: `key` is the text, hex digits, or the u64 in decimal, as `key_encoding`
/// (`utf8`, `hex` or `hash`) says.
pub fn json_key(key: &Key) -> JsonBytes {
    match key {
        Key::Hash(h) => JsonBytes {
            value: h.to_string(),
            encoding: "hash",
        },
        Key::Bytes(b) => json_bytes(b),
    }
}

/// A byte count with a binary unit, e.g. `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration in ms as a short human text: `850ms`, `12s`, `3m20s`, `5h02m`, `2d03h`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A ratio as a percentage with one decimal, or `-` when undefined.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 == widths.len() {
                s.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for r in rows {
        line(out, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_or_hex() {
        assert_eq!(cell_bytes(b"hello", None), "\"hello\"");
        assert_eq!(cell_bytes(b"a\"b", None), "\"a\\\"b\"");
        assert_eq!(cell_bytes(&[0, 1, 0xff], None), "0x0001ff");
        assert_eq!(cell_bytes(b"line\n", None), "0x6c696e650a");
        assert_eq!(cell_bytes(b"", None), "\"\"");
        assert_eq!(cell_bytes(b"abcdefghij", Some(6)), "\"abcd… (10 bytes)");
        assert_eq!(json_bytes(&[0xc3, 0x28]).encoding, "hex");
        assert_eq!(json_bytes("grüß".as_bytes()).value, "grüß");
    }

    #[test]
    fn human_numbers() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(200_000), "3m20s");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "-");
    }
}
