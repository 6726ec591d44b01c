//! UTF-8 and Unicode classes exactly as Go's `unicode/utf8` and `unicode`
//! packages see them.
//!
//! Go strings are byte strings that may hold invalid UTF-8 (a template can
//! build one with `"\xff"` or `slice`), and Go decodes every invalid byte as
//! U+FFFD of width 1. The character classes come from tables generated from Go
//! itself (`unicode_tables.rs`), so `js`, `%q` and identifier lexing agree with
//! Go on every code point.

use super::unicode_tables::{DIGIT, LETTER, PRINT, SPACE};

/// Go's `utf8.RuneError`.
pub(super) const RUNE_ERROR: u32 = 0xFFFD;
/// Go's `unicode.MaxRune`.
pub(super) const MAX_RUNE: u32 = 0x10FFFF;

/// Decodes the first rune of `b` like Go's `utf8.DecodeRune`: `(RUNE_ERROR, 1)`
/// for an invalid encoding, `(RUNE_ERROR, 0)` for empty input.
pub(super) fn decode_rune(b: &[u8]) -> (u32, usize) {
    let Some(&b0) = b.first() else {
        return (RUNE_ERROR, 0);
    };
    if b0 < 0x80 {
        return (u32::from(b0), 1);
    }
    let (len, min, init) = match b0 {
        0xC2..=0xDF => (2, 0x80, u32::from(b0 & 0x1F)),
        0xE0..=0xEF => (3, 0x800, u32::from(b0 & 0x0F)),
        0xF0..=0xF4 => (4, 0x10000, u32::from(b0 & 0x07)),
        _ => return (RUNE_ERROR, 1),
    };
    if b.len() < len {
        return (RUNE_ERROR, 1);
    }
    let mut r = init;
    for &c in &b[1..len] {
        if c & 0xC0 != 0x80 {
            return (RUNE_ERROR, 1);
        }
        r = (r << 6) | u32::from(c & 0x3F);
    }
    if r < min || r > MAX_RUNE || (0xD800..=0xDFFF).contains(&r) {
        return (RUNE_ERROR, 1);
    }
    (r, len)
}

/// Go's `utf8.ValidRune`.
pub(super) fn valid_rune(r: u32) -> bool {
    r <= MAX_RUNE && !(0xD800..=0xDFFF).contains(&r)
}

/// Appends `r` UTF-8 encoded, as Go's `utf8.AppendRune` (invalid runes become U+FFFD).
pub(super) fn push_rune(out: &mut Vec<u8>, r: u32) {
    let c = char::from_u32(r).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Number of runes in `b`, counting each invalid byte as one (Go's `utf8.RuneCount`).
pub(super) fn rune_count(b: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        let (_, w) = decode_rune(&b[i..]);
        i += w.max(1);
        n += 1;
    }
    n
}

fn in_table(table: &[(u32, u32)], r: u32) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                std::cmp::Ordering::Less
            } else if lo > r {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Go's `unicode.IsPrint` (identical to `strconv.IsPrint`).
pub(super) fn is_print(r: u32) -> bool {
    in_table(PRINT, r)
}

/// Go's `unicode.IsLetter`.
pub(super) fn is_letter(r: u32) -> bool {
    in_table(LETTER, r)
}

/// Go's `unicode.IsDigit`.
pub(super) fn is_digit(r: u32) -> bool {
    in_table(DIGIT, r)
}

/// Go's `unicode.IsSpace`.
pub(super) fn is_space(r: u32) -> bool {
    in_table(SPACE, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        assert_eq!(decode_rune(b"a"), (u32::from(b'a'), 1));
        assert_eq!(decode_rune("é".as_bytes()), (0xE9, 2));
        assert_eq!(decode_rune(b"\xff"), (RUNE_ERROR, 1));
        // Overlong encoding and encoded surrogate are invalid in Go too.
        assert_eq!(decode_rune(b"\xc0\x80"), (RUNE_ERROR, 1));
        assert_eq!(decode_rune(b"\xed\xa0\x80"), (RUNE_ERROR, 1));
        assert_eq!(decode_rune(b"\xe2\x82"), (RUNE_ERROR, 1));
        assert_eq!(decode_rune(b""), (RUNE_ERROR, 0));
        assert_eq!(rune_count(b"a\xffb\xe2\x82"), 5);
    }

    #[test]
    fn classes_match_go_for_known_points() {
        assert!(is_print(u32::from(b' ')));
        assert!(!is_print(0x7F));
        assert!(!is_print(0xA0)); // NBSP is a space, not printable in Go
        assert!(!is_print(0x200D)); // zero width joiner
        assert!(is_print(0x1F600));
        assert!(is_letter(u32::from('é')));
        assert!(!is_letter(u32::from('1')));
        assert!(is_digit(0x0663)); // ARABIC-INDIC DIGIT THREE
        assert!(!is_digit(0xB2)); // superscript two is No, not Nd
        assert!(is_space(0x85));
    }
}
