//! The one notation in which the command writes keys and values as text and reads keys back,
//! so that whatever `dump` or `get` shows can be typed again and reaches the same entry.
//!
//! Bytes are *text* when they are valid UTF-8 without a NUL byte; anything else is binary. Text
//! is written quoted, `"like this"`, with `\\`, `\"`, `\t`, `\n`, `\r` and `\u{…}` (for any
//! other control character) escaped, so that no byte of it can move the terminal's cursor.
//! Binary is written as `0x` and two lower-case hex digits a byte. Where nothing else could be
//! meant (text with no control character, not starting with `"` or `0x`), the quotes may be
//! left out: a key argument `user:1` is the text `user:1`, and `get` prints such a value bare.

use anyhow::{anyhow, bail};
use std::fmt::Write as _;

/// The bytes as text, if they are text (valid UTF-8 without NUL).
pub fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| !s.contains('\0'))
}

/// Lower-case hex digits, no prefix.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Appends character `c` as it is written inside quotes.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '"' => out.push_str("\\\""),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Text in quotes, escaped.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// Whether text reads back as itself without quotes.
fn bare_is_unambiguous(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('"') && !starts_hex(s) && !s.chars().any(char::is_control)
}

fn starts_hex(s: &str) -> bool {
    s.starts_with("0x") || s.starts_with("0X")
}

/// Bytes in the shortest form that reads back as the same bytes: bare text where that is
/// unambiguous, else quoted text, else `0x` hex.
pub fn shown(bytes: &[u8]) -> String {
    match text(bytes) {
        Some(s) if bare_is_unambiguous(s) => s.to_string(),
        Some(s) => quoted(s),
        None => format!("0x{}", hex(bytes)),
    }
}

/// Reads a key argument: `0x…` is hex bytes, `"…"` is escaped text, anything else is the text
/// as typed.
pub fn parse_key(arg: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(digits) = arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
        return parse_hex(digits).map_err(|why| {
            anyhow!(
                "bad key {arg:?}: {why}; a key starting with 0x is hex bytes (e.g. 0xfffe); for \
                 text that starts with 0x, quote it ('\"{arg}\"') or pass --text"
            )
        });
    }
    if arg.starts_with('"') {
        return unquote(arg)
            .map(String::into_bytes)
            .map_err(|why| anyhow!("bad key {arg:?}: {why}; for text as typed, pass --text"));
    }
    Ok(arg.as_bytes().to_vec())
}

fn parse_hex(digits: &str) -> Result<Vec<u8>, &'static str> {
    if digits.is_empty() {
        return Err("no hex digits after 0x");
    }
    if digits.len() % 2 != 0 {
        return Err("an odd number of hex digits");
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or("not a hex digit")
        })
        .collect()
}

/// The text inside `"…"`, escapes undone.
fn unquote(arg: &str) -> anyhow::Result<String> {
    let inner = arg
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| anyhow!("no closing quote"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => bail!("a quote inside the text must be written \\\""),
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('u') => out.push(unicode_escape(&mut chars)?),
                Some(other) => bail!("unknown escape \\{other}"),
                None => bail!("a lone backslash at the end"),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The character of a `\u{…}` escape, after the `u`.
fn unicode_escape(chars: &mut std::str::Chars<'_>) -> anyhow::Result<char> {
    if chars.next() != Some('{') {
        bail!("\\u must be followed by {{hex digits}}");
    }
    let mut digits = String::new();
    loop {
        match chars.next() {
            Some('}') => break,
            Some(c) => digits.push(c),
            None => bail!("\\u{{{digits} has no closing brace"),
        }
    }
    u32::from_str_radix(&digits, 16)
        .ok()
        .filter(|_| !digits.is_empty() && digits.len() <= 6)
        .and_then(char::from_u32)
        .ok_or_else(|| anyhow!("\\u{{{digits}}} is not a character"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_without_nul() {
        assert_eq!(text(b"a\tb"), Some("a\tb"));
        assert_eq!(text(&[0, 1, 2]), None);
        assert_eq!(text(&[0xc3, 0x28]), None);
    }

    #[test]
    fn shown_forms_read_back_as_the_same_bytes() {
        let cases: [&[u8]; 11] = [
            b"user:1",
            b"a\tb\nc\r",
            b"\x1b[31m",
            "\u{85}".as_bytes(),
            b"0x10",
            b"0Xab",
            b"\"quoted\"",
            b"back\\slash",
            b"",
            &[0xff, 0xfe],
            &[0, 1, 2],
        ];
        for bytes in cases {
            let s = shown(bytes);
            assert!(!s.chars().any(char::is_control), "{s:?}");
            assert_eq!(parse_key(&s).unwrap(), bytes, "{s}");
        }
        assert_eq!(shown(b"a\tb"), "\"a\\tb\"");
        assert_eq!(shown(b"\x1b"), "\"\\u{1b}\"");
        assert_eq!(shown(b"0x10"), "\"0x10\"");
        assert_eq!(shown(&[0xff, 0xfe]), "0xfffe");
        assert_eq!(shown("東京".as_bytes()), "東京");
    }

    #[test]
    fn bad_keys_say_how_to_write_them() {
        for bad in [
            "0x",
            "0xabc",
            "0xzz",
            "\"open",
            "\"a\\qb\"",
            "\"a\"b\"",
            "\"\\u{110000}\"",
            "\"\\u{41\"",
        ] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
        let e = parse_key("0xzz").unwrap_err().to_string();
        assert!(e.contains("--text") && e.contains("'\"0xzz\"'"), "{e}");
        assert_eq!(parse_key("\"\\u{1F600}\"").unwrap(), "😀".as_bytes());
        assert_eq!(parse_key("plain \"inner\"").unwrap(), b"plain \"inner\"");
    }
}
