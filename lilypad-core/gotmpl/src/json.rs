//! JSON strings the way Go's `encoding/json` writes and reads them.
//!
//! Lilypad JSON-encodes every input with `json.Marshal` before it reaches the
//! template (so `<`, `>`, `&`, U+2028 and U+2029 are escaped), and `subst`
//! decodes its arguments with `json.Unmarshal` into a Go string.

use super::unicode::{RUNE_ERROR, decode_rune, push_rune};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `json.Marshal` of a Go string, with Go's default HTML escaping.
pub(super) fn encode_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) as usize]));
                out.push(char::from(HEX[(b & 0xF) as usize]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a value is not a JSON-encoded string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DecodeError {
    /// Not valid JSON at all.
    Syntax(String),
    /// Valid JSON, but not a string (nor `null`).
    NotAString(&'static str),
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn getu4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 || s[0] != b'\\' || s[1] != b'u' {
        return None;
    }
    let mut r = 0;
    for &c in &s[2..6] {
        r = r * 16 + char::from(c).to_digit(16)?;
    }
    Some(r)
}

/// `json.Unmarshal(input, &s)` for a Go string `s` that starts empty: a JSON
/// string decodes (invalid UTF-8 and lone surrogates become U+FFFD), `null`
/// leaves it empty, anything else is an error.
pub(super) fn decode_string(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let start = input.iter().position(|&c| !is_ws(c)).unwrap_or(input.len());
    let end = input.iter().rposition(|&c| !is_ws(c)).map_or(start, |p| p + 1);
    let v = &input[start..end];
    let Some(&first) = v.first() else {
        return Err(DecodeError::Syntax("unexpected end of JSON input".into()));
    };
    if first != b'"' {
        return match first {
            b'n' if v == b"null" => Ok(Vec::new()),
            b't' if v == b"true" => Err(DecodeError::NotAString("bool")),
            b'f' if v == b"false" => Err(DecodeError::NotAString("bool")),
            b'{' => check_valid(v).and(Err(DecodeError::NotAString("object"))),
            b'[' => check_valid(v).and(Err(DecodeError::NotAString("array"))),
            b'-' | b'0'..=b'9' => check_valid(v).and(Err(DecodeError::NotAString("number"))),
            c => Err(DecodeError::Syntax(format!(
                "invalid character {:?} looking for beginning of value",
                char::from(c)
            ))),
        };
    }
    // Validate like Go's scanner: the string must end exactly at `v`'s end.
    let mut i = 1;
    let mut closed = false;
    while i < v.len() {
        match v[i] {
            b'"' => {
                closed = true;
                i += 1;
                break;
            }
            b'\\' => match v.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let ok =
                        v.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                    if !ok {
                        return Err(DecodeError::Syntax(
                            "invalid character in \\u hexadecimal character escape".into(),
                        ));
                    }
                    i += 6;
                }
                _ => {
                    return Err(DecodeError::Syntax(
                        "invalid character in string escape code".into(),
                    ));
                }
            },
            c if c < 0x20 => {
                return Err(DecodeError::Syntax("invalid character in string literal".into()));
            }
            _ => i += 1,
        }
    }
    if !closed {
        return Err(DecodeError::Syntax("unexpected end of JSON input".into()));
    }
    if i != v.len() {
        return Err(DecodeError::Syntax("invalid character after top-level value".into()));
    }
    // Unquote like Go's unquoteBytes.
    let s = &v[1..v.len() - 1];
    let mut out = Vec::with_capacity(s.len());
    let mut r = 0;
    while r < s.len() {
        let c = s[r];
        if c == b'\\' {
            match s[r + 1] {
                b'b' => out.push(0x08),
                b'f' => out.push(0x0C),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let rr = getu4(&s[r..]).unwrap_or(RUNE_ERROR);
                    r += 6;
                    if (0xD800..0xE000).contains(&rr) {
                        if let Some(rr1) = getu4(&s[r..])
                            && (0xD800..0xDC00).contains(&rr)
                            && (0xDC00..0xE000).contains(&rr1)
                        {
                            push_rune(&mut out, 0x10000 + ((rr - 0xD800) << 10) + (rr1 - 0xDC00));
                            r += 6;
                            continue;
                        }
                        push_rune(&mut out, RUNE_ERROR);
                        continue;
                    }
                    push_rune(&mut out, rr);
                    continue;
                }
                other => out.push(other), // '"', '\\', '/'
            }
            r += 2;
        } else if c < 0x80 {
            out.push(c);
            r += 1;
        } else {
            let (rr, w) = decode_rune(&s[r..]);
            push_rune(&mut out, rr);
            r += w;
        }
    }
    Ok(out)
}

/// Minimal JSON validity check for the non-string values (objects, arrays,
/// numbers): Go reports a syntax error for invalid JSON and a type error for
/// valid JSON of the wrong type; both fail `subst`, only the message differs.
fn check_valid(v: &[u8]) -> Result<(), DecodeError> {
    fn value(v: &[u8], i: &mut usize, depth: usize) -> bool {
        while *i < v.len() && is_ws(v[*i]) {
            *i += 1;
        }
        if depth > 200 {
            return false;
        }
        match v.get(*i) {
            Some(b'{') | Some(b'[') => {
                let close = if v[*i] == b'{' { b'}' } else { b']' };
                let object = close == b'}';
                *i += 1;
                let mut first = true;
                loop {
                    while *i < v.len() && is_ws(v[*i]) {
                        *i += 1;
                    }
                    if v.get(*i) == Some(&close) && first {
                        *i += 1;
                        return true;
                    }
                    if object {
                        if v.get(*i) != Some(&b'"') || !value(v, i, depth + 1) {
                            return false;
                        }
                        while *i < v.len() && is_ws(v[*i]) {
                            *i += 1;
                        }
                        if v.get(*i) != Some(&b':') {
                            return false;
                        }
                        *i += 1;
                    }
                    if !value(v, i, depth + 1) {
                        return false;
                    }
                    while *i < v.len() && is_ws(v[*i]) {
                        *i += 1;
                    }
                    match v.get(*i) {
                        Some(b',') => *i += 1,
                        Some(c) if *c == close => {
                            *i += 1;
                            return true;
                        }
                        _ => return false,
                    }
                    first = false;
                }
            }
            Some(b'"') => {
                *i += 1;
                while let Some(&c) = v.get(*i) {
                    match c {
                        b'"' => {
                            *i += 1;
                            return true;
                        }
                        b'\\' => match v.get(*i + 1) {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => *i += 2,
                            Some(b'u')
                                if v.get(*i + 2..*i + 6)
                                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                            {
                                *i += 6
                            }
                            _ => return false,
                        },
                        c if c < 0x20 => return false,
                        _ => *i += 1,
                    }
                }
                false
            }
            Some(b't') => lit(v, i, b"true"),
            Some(b'f') => lit(v, i, b"false"),
            Some(b'n') => lit(v, i, b"null"),
            Some(b'-' | b'0'..=b'9') => number(v, i),
            _ => false,
        }
    }
    fn lit(v: &[u8], i: &mut usize, word: &[u8]) -> bool {
        if v[*i..].starts_with(word) {
            *i += word.len();
            true
        } else {
            false
        }
    }
    fn number(v: &[u8], i: &mut usize) -> bool {
        if v.get(*i) == Some(&b'-') {
            *i += 1;
        }
        match v.get(*i) {
            Some(b'0') => *i += 1,
            Some(b'1'..=b'9') => {
                while v.get(*i).is_some_and(u8::is_ascii_digit) {
                    *i += 1;
                }
            }
            _ => return false,
        }
        if v.get(*i) == Some(&b'.') {
            *i += 1;
            if !v.get(*i).is_some_and(u8::is_ascii_digit) {
                return false;
            }
            while v.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        }
        if matches!(v.get(*i), Some(b'e' | b'E')) {
            *i += 1;
            if matches!(v.get(*i), Some(b'+' | b'-')) {
                *i += 1;
            }
            if !v.get(*i).is_some_and(u8::is_ascii_digit) {
                return false;
            }
            while v.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        }
        true
    }
    let mut i = 0;
    if value(v, &mut i, 0) && i == v.len() {
        Ok(())
    } else {
        Err(DecodeError::Syntax("invalid JSON".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_go_marshal() {
        assert_eq!(encode_string("moo"), r#""moo""#);
        assert_eq!(
            encode_string("a<b>&\"\\\n\u{1}\u{2028}é"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#
        );
        assert_eq!(encode_string("\u{8}\u{c}\u{7f}"), "\"\\b\\f\u{7f}\"");
    }

    #[test]
    fn decodes_like_go_unmarshal() {
        assert_eq!(decode_string(br#""moo""#), Ok(b"moo".to_vec()));
        assert_eq!(decode_string(b" \"a\\u00e9\\/\" \n"), Ok("aé/".as_bytes().to_vec()));
        assert_eq!(decode_string(b"null"), Ok(Vec::new()));
        assert_eq!(decode_string(br#""\ud83d\ude00""#), Ok("😀".as_bytes().to_vec()));
        assert_eq!(decode_string(br#""\ud83d""#), Ok("\u{FFFD}".as_bytes().to_vec()));
        assert_eq!(decode_string(b"\"\xff\""), Ok("\u{FFFD}".as_bytes().to_vec()));
        assert!(matches!(decode_string(b"12"), Err(DecodeError::NotAString("number"))));
        assert!(matches!(decode_string(b"moo"), Err(DecodeError::Syntax(_))));
        assert!(matches!(decode_string(br#""a" "b""#), Err(DecodeError::Syntax(_))));
        assert!(matches!(decode_string(br#""\'""#), Err(DecodeError::Syntax(_))));
        assert!(matches!(decode_string(b"\"a\tb\""), Err(DecodeError::Syntax(_))));
        assert!(matches!(decode_string(b""), Err(DecodeError::Syntax(_))));
    }
}
