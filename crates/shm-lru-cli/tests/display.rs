//! How keys and values are shown, and that what is shown can be typed back: tables aligned by
//! display width, control characters escaped in text, binary keys as `0x…` that `get`, `set`
//! and `del` take as they are shown.

use crate::util::{create_cache, exits_with, json_of, stdout_of, succeeds, Kind};
use predicates::prelude::*;
use unicode_width::UnicodeWidthStr;

/// The display column at which each data row's VALUE cell starts.
fn value_columns(table: &str, values: &[&str]) -> Vec<usize> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| values.iter().find_map(|v| l.find(v).map(|at| l[..at].width())))
        .collect()
}

#[test]
fn wide_keys_keep_the_columns_aligned() {
    let (cache, g) = create_cache(Kind::Posix, 16, 1);
    let id = g.0.to_string();
    cache.put("東京", b"tokyo").unwrap();
    cache.put("ab", b"short").unwrap();
    cache.put("😀x", b"emoji").unwrap();
    cache.put("Grüße", b"umlaut").unwrap();
    let text = stdout_of(&["dump", &id]);
    let values = ["\"tokyo\"", "\"short\"", "\"emoji\"", "\"umlaut\""];
    let cols = value_columns(&text, &values);
    assert_eq!(cols.len(), 4, "{text}");
    assert!(cols.iter().all(|&c| c == cols[0]), "{cols:?}\n{text}");
    // The header's VALUE sits over the values.
    let header = text.lines().next().unwrap();
    assert_eq!(header[..header.find("VALUE").unwrap()].width(), cols[0], "{text}");
}

#[test]
fn control_characters_in_text_are_escaped_not_hex() {
    let (cache, g) = create_cache(Kind::SysV, 16, 1);
    let id = g.0.to_string();
    cache.put("a\tb", b"line one\nline two").unwrap();
    cache.put("esc", b"\x1b[31mred").unwrap();
    let text = stdout_of(&["dump", &id]);
    assert!(text.contains(r#""a\tb""#), "{text}");
    assert!(text.contains(r#""line one\nline two""#), "{text}");
    assert!(text.contains(r#""\u{1b}[31mred""#), "{text}");
    assert!(!text.contains("0x"), "{text}");
    assert!(!text.contains('\t') && !text.contains('\x1b'), "{text:?}");
    // One line per entry, plus the header and the summary.
    assert_eq!(text.lines().count(), 4, "{text}");

    succeeds(&["get", &id, r#""a\tb""#]).stdout("\"line one\\nline two\"\n");
    succeeds(&["get", &id, "a\tb", "--raw"]).stdout("line one\nline two");
    // JSON has its own escapes: the text itself, marked as text.
    let v = json_of(&["get", &id, "--text", "a\tb", "--json"]);
    assert_eq!(v["key"], "a\tb");
    assert_eq!(v["key_encoding"], "utf8");
    assert_eq!(v["value"], "line one\nline two");
    assert_eq!(v["value_encoding"], "utf8");
}

#[test]
fn every_key_as_dump_shows_it_reaches_its_entry() {
    let (cache, g) = create_cache(Kind::Posix, 32, 1);
    let id = g.0.to_string();
    let keys: [&[u8]; 9] = [
        b"plain",
        b"a\tb",
        b"0x10",
        b"\"q\"",
        b"back\\slash",
        "東京".as_bytes(),
        &[0xff, 0xfe],
        &[0, 1, 2],
        b"\x1b[1m",
    ];
    for (i, key) in keys.iter().enumerate() {
        cache.put(*key, format!("v{i}").as_bytes()).unwrap();
        // The entry just written is the most recent: the first row.
        let text = stdout_of(&["dump", &id, "--limit", "1"]);
        let row = text.lines().nth(1).unwrap();
        let shown = row.split_whitespace().nth(1).unwrap();
        succeeds(&["get", &id, shown]).stdout(format!("v{i}\n"));
    }
    // The binary key is shown as 0x…, and set and del take it so.
    let text = stdout_of(&["dump", &id, "--full"]);
    assert!(text.contains("0xfffe ") && text.contains("0x000102 "), "{text}");
    succeeds(&["set", &id, "0xfffe", "changed"])
        .stdout(predicate::str::starts_with("updated 0xfffe in slot"));
    assert_eq!(
        cache.get(&[0xffu8, 0xfe][..]).unwrap().as_deref(),
        Some(&b"changed"[..])
    );
    succeeds(&["del", &id, "0x000102"]).stdout("removed 0x000102\n");
    assert!(cache.get(&[0u8, 1, 2][..]).unwrap().is_none());
}

#[test]
fn a_text_key_starting_with_0x_is_quoted_or_given_with_text() {
    let (cache, g) = create_cache(Kind::SysV, 16, 1);
    let id = g.0.to_string();
    succeeds(&["set", &id, r#""0x10""#, "text"]).stdout(predicate::str::starts_with("inserted \"0x10\""));
    succeeds(&["set", &id, "0x10", "byte"]);
    assert_eq!(cache.get("0x10").unwrap().as_deref(), Some(&b"text"[..]));
    assert_eq!(cache.get(&[0x10u8][..]).unwrap().as_deref(), Some(&b"byte"[..]));
    succeeds(&["get", &id, "--text", "0x10"]).stdout("text\n");
    succeeds(&["get", &id, "0x10"]).stdout("byte\n");
    // A 0x form that is not hex bytes is refused, with the way to write it as text.
    exits_with(&["get", &id, "0xnope"], 2)
        .stderr(predicate::str::contains("bad key \"0xnope\"").and(predicate::str::contains("--text")));
    exits_with(&["get", &id, r#""unclosed"#], 2).stderr(predicate::str::contains("no closing quote"));
    exits_with(&["get", &id, "--text", "--hash", "1"], 2);
}
