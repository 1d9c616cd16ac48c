//! How keys, values, sizes and times are shown, in the notation of [`notation`], and plain
//! tables aligned by display width (a CJK character or an emoji takes two columns) for the
//! human-readable outputs.

use crate::notation;
use serde::Serialize;
use shm_lru::{Key, ValueKind};
use std::io::{self, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Bytes shown in JSON: the text, or hex with the encoding saying which.
#[derive(Debug, Serialize)]
pub struct JsonBytes {
    /// The bytes as text (`utf8`) or hex digits (`hex`).
    pub value: String,
    /// `utf8` or `hex`.
    pub encoding: &'static str,
}

/// The JSON form of some bytes: text (JSON escapes its control characters) or hex.
pub fn json_bytes(bytes: &[u8]) -> JsonBytes {
    match notation::text(bytes) {
        Some(s) => JsonBytes {
            value: s.to_string(),
            encoding: "utf8",
        },
        None => JsonBytes {
            value: notation::hex(bytes),
            encoding: "hex",
        },
    }
}

/// Bytes for a table cell: `"text"` quoted and escaped, or `0x…` hex; cut to about `max`
/// columns (`None`: never cut), never inside an escape, a character or a hex byte.
pub fn cell_bytes(bytes: &[u8], max: Option<usize>) -> String {
    // The cell as pieces that are never split, and the width of each.
    let mut pieces: Vec<(String, usize)> = Vec::new();
    match notation::text(bytes) {
        Some(s) => {
            pieces.push(("\"".into(), 1));
            for c in s.chars() {
                let mut p = String::new();
                notation::push_escaped(&mut p, c);
                let w = if p.len() == c.len_utf8() {
                    c.width().unwrap_or(0)
                } else {
                    p.len()
                };
                pieces.push((p, w));
            }
            pieces.push(("\"".into(), 1));
        }
        None => {
            pieces.push(("0x".into(), 2));
            pieces.extend(bytes.iter().map(|b| (format!("{b:02x}"), 2)));
        }
    }
    let total: usize = pieces.iter().map(|p| p.1).sum();
    let mut out = String::new();
    match max {
        Some(m) if total > m => {
            let mut used = 0;
            for (p, w) in &pieces {
                if used + w > m.saturating_sub(1) {
                    break;
                }
                used += w;
                out.push_str(p);
            }
            out.push_str(&format!("… ({} bytes)", bytes.len()));
        }
        _ => pieces.iter().for_each(|(p, _)| out.push_str(p)),
    }
    out
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

/// How a value was stored, in JSON: `str` or `bytes`.
pub fn kind(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Str => "str",
        ValueKind::Bytes => "bytes",
    }
}

/// A byte count with a binary unit, e.g. `512 B`, `1.5 MiB`: as the engine's messages show
/// sizes.
pub fn size(bytes: u64) -> String {
    const LARGER: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = LARGER[0];
    for next in &LARGER[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    format!("{v:.1} {unit}")
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
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.width());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 == widths.len() {
                s.push_str(c);
            } else {
                let pad = widths[i] - c.width();
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
    fn text_or_hex() {
        assert_eq!(cell_bytes(b"hello", None), "\"hello\"");
        assert_eq!(cell_bytes(b"a\"b", None), "\"a\\\"b\"");
        assert_eq!(cell_bytes(&[0, 1, 0xff], None), "0x0001ff");
        // Text with control characters is text, escaped: not hex.
        assert_eq!(cell_bytes(b"line\n", None), "\"line\\n\"");
        assert_eq!(cell_bytes(b"a\tb\x1b", None), "\"a\\tb\\u{1b}\"");
        assert_eq!(cell_bytes(b"", None), "\"\"");
        assert_eq!(cell_bytes(b"abcdefghij", Some(6)), "\"abcd… (10 bytes)");
        assert_eq!(json_bytes(&[0xc3, 0x28]).encoding, "hex");
        assert_eq!(json_bytes(b"a\tb").encoding, "utf8");
        assert_eq!(json_bytes("grüß".as_bytes()).value, "grüß");
    }

    #[test]
    fn cells_are_cut_by_width_and_never_inside_an_escape_or_a_character() {
        // Quote, four 2-column characters = 9 columns; the cut keeps 5 columns before the "…".
        assert_eq!(cell_bytes("東京都庁舎".as_bytes(), Some(6)), "\"東京… (15 bytes)");
        assert_eq!(cell_bytes(b"\t\t\t\t", Some(6)), "\"\\t\\t… (4 bytes)");
        assert_eq!(cell_bytes(&[0xab; 8], Some(7)), "0xabab… (8 bytes)");
    }

    #[test]
    fn tables_align_by_display_width() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["\"東京\"".to_string(), "1".to_string()],
            vec!["\"ab\"".to_string(), "2".to_string()],
        ];
        table(&mut out, &["KEY", "N"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "KEY     N\n\"東京\"  1\n\"ab\"    2\n"
        );
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

    #[test]
    fn sizes_take_the_largest_unit_under_1024_up_to_tib() {
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(3 << 19), "1.5 MiB");
        assert_eq!(size(1 << 40), "1.0 TiB");
        assert_eq!(size(1 << 50), "1024.0 TiB");
        assert_eq!(size(u64::MAX), "16777216.0 TiB");
    }
}
