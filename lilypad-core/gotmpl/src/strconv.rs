//! The parts of Go's `strconv` the engine needs: quoting (`%q`), unquoting of
//! template string and character literals, number literals as the template
//! parser reads them, and float formatting (`%e %f %g %b %x`).
//!
//! Decimal digits come from Rust's float formatting, which is exact and rounds
//! half to even like Go; the layout around them (`fmtEFG`, `fmtB`, `fmtX`)
//! follows Go's `strconv/ftoa.go` line by line.

use super::unicode::{RUNE_ERROR, decode_rune, is_print, push_rune, valid_rune};

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

// ---------------------------------------------------------------- quoting

fn push_escaped_rune(buf: &mut Vec<u8>, r: u32, quote: u8, ascii_only: bool) {
    if r == u32::from(quote) || r == u32::from(b'\\') {
        buf.push(b'\\');
        buf.push(r as u8);
        return;
    }
    if ascii_only {
        if r < 0x80 && is_print(r) {
            buf.push(r as u8);
            return;
        }
    } else if is_print(r) {
        push_rune(buf, r);
        return;
    }
    match r {
        0x07 => buf.extend_from_slice(b"\\a"),
        0x08 => buf.extend_from_slice(b"\\b"),
        0x0C => buf.extend_from_slice(b"\\f"),
        0x0A => buf.extend_from_slice(b"\\n"),
        0x0D => buf.extend_from_slice(b"\\r"),
        0x09 => buf.extend_from_slice(b"\\t"),
        0x0B => buf.extend_from_slice(b"\\v"),
        _ => {
            if r < u32::from(b' ') || r == 0x7F {
                buf.extend_from_slice(b"\\x");
                buf.push(LOWER_HEX[(r >> 4) as usize & 0xF]);
                buf.push(LOWER_HEX[r as usize & 0xF]);
            } else {
                let r = if valid_rune(r) { r } else { RUNE_ERROR };
                if r < 0x10000 {
                    buf.extend_from_slice(b"\\u");
                    for s in (0..=12).rev().step_by(4) {
                        buf.push(LOWER_HEX[(r >> s) as usize & 0xF]);
                    }
                } else {
                    buf.extend_from_slice(b"\\U");
                    for s in (0..=28).rev().step_by(4) {
                        buf.push(LOWER_HEX[(r >> s) as usize & 0xF]);
                    }
                }
            }
        }
    }
}

/// Go's `strconv.Quote` (or `QuoteToASCII` when `ascii_only`).
pub(super) fn quote(s: &[u8], ascii_only: bool) -> Vec<u8> {
    let mut buf = Vec::with_capacity(s.len() + 2);
    buf.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let (r, w) = decode_rune(&s[i..]);
        if w == 1 && r == RUNE_ERROR {
            buf.extend_from_slice(b"\\x");
            buf.push(LOWER_HEX[usize::from(s[i] >> 4)]);
            buf.push(LOWER_HEX[usize::from(s[i] & 0xF)]);
            i += 1;
            continue;
        }
        push_escaped_rune(&mut buf, r, b'"', ascii_only);
        i += w;
    }
    buf.push(b'"');
    buf
}

/// Go's `strconv.QuoteRune` (or `QuoteRuneToASCII`).
pub(super) fn quote_rune(r: u32, ascii_only: bool) -> Vec<u8> {
    let r = if valid_rune(r) { r } else { RUNE_ERROR };
    let mut buf = vec![b'\''];
    push_escaped_rune(&mut buf, r, b'\'', ascii_only);
    buf.push(b'\'');
    buf
}

/// Go's `strconv.CanBackquote`.
pub(super) fn can_backquote(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let (r, w) = decode_rune(&s[i..]);
        i += w;
        if w > 1 {
            if r == 0xFEFF {
                return false;
            }
            continue;
        }
        if r == RUNE_ERROR {
            return false;
        }
        if (r < u32::from(b' ') && r != u32::from(b'\t')) || r == u32::from(b'`') || r == 0x7F {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------- unquoting

fn unhex(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(c - b'A' + 10)),
        _ => None,
    }
}

/// Go's `strconv.UnquoteChar`: decodes one (possibly escaped) character of a
/// literal quoted with `quote`; returns the value, whether it must be encoded
/// as UTF-8 (versus a raw byte) and the number of bytes consumed.
pub(super) fn unquote_char(s: &[u8], quote: u8) -> Option<(u32, bool, usize)> {
    let &c = s.first()?;
    if c == quote && (quote == b'\'' || quote == b'"') {
        return None;
    }
    if c >= 0x80 {
        let (r, w) = decode_rune(s);
        return Some((r, true, w));
    }
    if c != b'\\' {
        return Some((u32::from(c), false, 1));
    }
    let &c = s.get(1)?;
    let simple = |v: u8| Some((u32::from(v), false, 2));
    match c {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0C),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0B),
        b'\\' => simple(b'\\'),
        b'\'' | b'"' => {
            if c == quote {
                simple(c)
            } else {
                None
            }
        }
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = s.get(2..2 + n)?;
            let mut v: u32 = 0;
            for &d in digits {
                v = (v << 4) | unhex(d)?;
            }
            if c == b'x' {
                return Some((v, false, 2 + n));
            }
            if !valid_rune(v) {
                return None;
            }
            Some((v, true, 2 + n))
        }
        b'0'..=b'7' => {
            let digits = s.get(2..4)?;
            let mut v = u32::from(c - b'0');
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = (v << 3) | u32::from(d - b'0');
            }
            if v > 255 {
                return None;
            }
            Some((v, false, 4))
        }
        _ => None,
    }
}

/// Go's `strconv.Unquote` for the literals the template lexer produces:
/// double-quoted strings (with escapes) and raw backquoted strings (minus any `\r`).
pub(super) fn unquote(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let quote = b[0];
    match quote {
        b'`' => {
            let inner = &b[1..b.len() - 1];
            if b[b.len() - 1] != b'`' || inner.contains(&b'`') {
                return None;
            }
            Some(inner.iter().copied().filter(|&c| c != b'\r').collect())
        }
        b'"' | b'\'' => {
            let mut out = Vec::with_capacity(b.len());
            let mut i = 1;
            while i < b.len() && b[i] != quote {
                if b[i] == b'\n' {
                    return None;
                }
                let (r, multibyte, w) = unquote_char(&b[i..], quote)?;
                i += w;
                if r < 0x80 || !multibyte {
                    out.push(r as u8);
                } else {
                    push_rune(&mut out, r);
                }
                if quote == b'\'' {
                    break;
                }
            }
            if i + 1 != b.len() || b[i] != quote {
                return None;
            }
            Some(out)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- numbers

fn lower(c: u8) -> u8 {
    c | 0x20
}

/// Go's `underscoreOK`: underscores only between digits or after a base prefix.
fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut i = 0;
    let s = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`; `Err(true)` means out of range.
pub(super) fn parse_uint(s: &[u8]) -> Result<u64, bool> {
    if s.is_empty() {
        return Err(false);
    }
    let s0 = s;
    let mut base: u64 = 10;
    let mut digits = s;
    if s[0] == b'0' {
        if s.len() >= 3 && lower(s[1]) == b'b' {
            base = 2;
            digits = &s[2..];
        } else if s.len() >= 3 && lower(s[1]) == b'o' {
            base = 8;
            digits = &s[2..];
        } else if s.len() >= 3 && lower(s[1]) == b'x' {
            base = 16;
            digits = &s[2..];
        } else {
            base = 8;
            digits = &s[1..];
        }
    }
    let mut underscores = false;
    let mut n: u64 = 0;
    let mut range = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            _ if lower(c).is_ascii_lowercase() => u64::from(lower(c) - b'a' + 10),
            _ => return Err(false),
        };
        if d >= base {
            return Err(false);
        }
        if range {
            continue;
        }
        match n.checked_mul(base).and_then(|m| m.checked_add(d)) {
            Some(m) => n = m,
            None => range = true,
        }
    }
    if underscores && !underscore_ok(s0) {
        return Err(false);
    }
    if range { Err(true) } else { Ok(n) }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(super) fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, rest) = match s.first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let Ok(un) = parse_uint(rest) else {
        return None;
    };
    let cutoff: u64 = 1 << 63;
    if !neg && un >= cutoff {
        return None;
    }
    if neg && un > cutoff {
        return None;
    }
    if neg { Some((un as i64).wrapping_neg()) } else { Some(un as i64) }
}

/// Go's `strconv.ParseFloat(s, 64)` for the syntax the template lexer can
/// produce (decimal and hexadecimal floats, underscores); `None` on syntax or
/// range errors, as Go's error makes the number invalid.
pub(super) fn parse_float(s: &[u8]) -> Option<f64> {
    let mut i = 0;
    let mut neg = false;
    match s.first() {
        Some(b'+') => i += 1,
        Some(b'-') => {
            i += 1;
            neg = true;
        }
        _ => {}
    }
    let special = &s[i..];
    if special.eq_ignore_ascii_case(b"inf")
        || special.eq_ignore_ascii_case(b"infinity")
        || (i == 0 && special.eq_ignore_ascii_case(b"nan"))
    {
        // Syntactically valid in Go, but the lexer never produces these.
        return None;
    }
    let hex = i + 2 < s.len() && s[i] == b'0' && lower(s[i + 1]) == b'x';
    let mut underscores = false;
    let mut sawdot = false;
    let mut sawdigits = false;
    // Hex mantissa state (Go's readFloat for base 16).
    let mut mant: u64 = 0;
    let mut nd = 0i64;
    let mut nd_mant = 0i64;
    let mut dp = 0i64;
    let mut trunc = false;
    if hex {
        i += 2;
    }
    while i < s.len() {
        let c = s[i];
        match c {
            b'_' => underscores = true,
            b'.' => {
                if sawdot {
                    break;
                }
                sawdot = true;
                dp = nd;
            }
            b'0'..=b'9' => {
                sawdigits = true;
                if c == b'0' && nd == 0 {
                    dp -= 1;
                } else {
                    nd += 1;
                    if hex {
                        if nd_mant < 16 {
                            mant = mant * 16 + u64::from(c - b'0');
                            nd_mant += 1;
                        } else if c != b'0' {
                            trunc = true;
                        }
                    }
                }
            }
            _ if hex && (b'a'..=b'f').contains(&lower(c)) => {
                sawdigits = true;
                nd += 1;
                if nd_mant < 16 {
                    mant = mant * 16 + u64::from(lower(c) - b'a' + 10);
                    nd_mant += 1;
                } else {
                    trunc = true;
                }
            }
            _ => break,
        }
        i += 1;
    }
    if !sawdigits {
        return None;
    }
    if !sawdot {
        dp = nd;
    }
    if hex {
        dp *= 4;
        nd_mant *= 4;
    }
    let exp_char = if hex { b'p' } else { b'e' };
    if i < s.len() && lower(s[i]) == exp_char {
        i += 1;
        let mut esign = 1i64;
        match s.get(i) {
            Some(b'+') => i += 1,
            Some(b'-') => {
                i += 1;
                esign = -1;
            }
            _ => {}
        }
        if !s.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut e = 0i64;
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                underscores = true;
            } else if e < 10000 {
                e = e * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        dp += e * esign;
    } else if hex {
        return None;
    }
    if i != s.len() {
        return None;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    let f = if hex {
        let exp = if mant != 0 { dp - nd_mant } else { 0 };
        atof_hex(mant, exp, neg, trunc)?
    } else {
        let clean: String = s.iter().filter(|&&c| c != b'_').map(|&c| char::from(c)).collect();
        clean.parse::<f64>().ok()?
    };
    if f.is_infinite() { None } else { Some(f) }
}

/// Go's `atofHex` for float64: rounds a hexadecimal mantissa to nearest even.
fn atof_hex(mut mantissa: u64, mut exp: i64, neg: bool, trunc: bool) -> Option<f64> {
    const MANTBITS: u32 = 52;
    const BIAS: i64 = -1023;
    let max_exp: i64 = (1 << 11) + BIAS - 2;
    let min_exp: i64 = BIAS + 1;
    exp += i64::from(MANTBITS);
    while mantissa != 0 && mantissa >> (MANTBITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANTBITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    while mantissa > 1 && exp < min_exp - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANTBITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANTBITS == 0 {
        exp = BIAS;
    }
    if exp > max_exp {
        return None;
    }
    let mut bits = mantissa & ((1 << MANTBITS) - 1);
    bits |= (((exp - BIAS) & ((1 << 11) - 1)) as u64) << MANTBITS;
    if neg {
        bits |= 1 << 63;
    }
    Some(f64::from_bits(bits))
}

/// Scans a number the way Go's template lexer does (`scanNumber`), from
/// `start`; returns the end and whether the syntax was acceptable.
pub(super) fn scan_number(s: &[u8], start: usize) -> (usize, bool) {
    let mut i = start;
    let accept = |i: &mut usize, valid: &[u8]| -> bool {
        if let Some(&c) = s.get(*i)
            && valid.contains(&c)
        {
            *i += 1;
            return true;
        }
        false
    };
    let accept_run = |i: &mut usize, valid: &[u8]| {
        while let Some(&c) = s.get(*i) {
            if !valid.contains(&c) {
                break;
            }
            *i += 1;
        }
    };
    accept(&mut i, b"+-");
    let mut digits: &[u8] = b"0123456789_";
    if accept(&mut i, b"0") {
        if accept(&mut i, b"xX") {
            digits = b"0123456789abcdefABCDEF_";
        } else if accept(&mut i, b"oO") {
            digits = b"01234567_";
        } else if accept(&mut i, b"bB") {
            digits = b"01_";
        }
    }
    accept_run(&mut i, digits);
    if accept(&mut i, b".") {
        accept_run(&mut i, digits);
    }
    if digits.len() == 11 && accept(&mut i, b"eE") {
        accept(&mut i, b"+-");
        accept_run(&mut i, b"0123456789_");
    }
    if digits.len() == 23 && accept(&mut i, b"pP") {
        accept(&mut i, b"+-");
        accept_run(&mut i, b"0123456789_");
    }
    accept(&mut i, b"i");
    let (r, w) = decode_rune(&s[i.min(s.len())..]);
    if w > 0 && super::lexer::is_alphanumeric(r) {
        return (i + w, false);
    }
    (i, true)
}

/// A number literal with every type that can represent it, like Go's
/// `parse.NumberNode` (which simulates Go's untyped constants).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Number {
    pub(super) is_int: bool,
    pub(super) is_uint: bool,
    pub(super) is_float: bool,
    pub(super) is_complex: bool,
    pub(super) int: i64,
    pub(super) uint: u64,
    pub(super) float: f64,
    pub(super) complex: (f64, f64),
    pub(super) text: String,
}

impl Number {
    fn new(text: &str) -> Self {
        Self {
            is_int: false,
            is_uint: false,
            is_float: false,
            is_complex: false,
            int: 0,
            uint: 0,
            float: 0.0,
            complex: (0.0, 0.0),
            text: text.to_owned(),
        }
    }

    fn simplify_complex(&mut self) {
        self.is_float = self.complex.1 == 0.0;
        if self.is_float {
            self.float = self.complex.0;
            let f = self.float;
            self.is_int = f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f);
            if self.is_int {
                self.int = f as i64;
            }
            self.is_uint = f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f);
            if self.is_uint {
                self.uint = f as u64;
            }
        }
    }

    /// Go's `newNumber` for a character constant (`'a'`).
    pub(super) fn from_char(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let (r, _, w) = unquote_char(&b[1..], b'\'').ok_or_else(|| "invalid syntax".to_owned())?;
        if &b[1 + w..] != b"'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let mut n = Self::new(text);
        n.int = i64::from(r);
        n.uint = u64::from(r);
        n.float = f64::from(r);
        n.is_int = true;
        n.is_uint = true;
        n.is_float = true;
        Ok(n)
    }

    /// Go's `newNumber` for a complex constant (`1+2i`).
    pub(super) fn from_complex(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let (split, _) = scan_number(b, 0);
        let re = parse_float(&b[..split]);
        let im = b
            .get(split..b.len().saturating_sub(1))
            .and_then(parse_float)
            .filter(|_| b.ends_with(b"i"));
        let (Some(re), Some(im)) = (re, im) else {
            return Err(format!("illegal number syntax: {text:?}"));
        };
        let mut n = Self::new(text);
        n.is_complex = true;
        n.complex = (re, im);
        n.simplify_complex();
        Ok(n)
    }

    /// Go's `newNumber` for a plain number (integer, float or imaginary).
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let mut n = Self::new(text);
        if let Some(body) = text.strip_suffix('i')
            && let Some(f) = parse_float(body.as_bytes())
        {
            n.is_complex = true;
            n.complex = (0.0, f);
            n.simplify_complex();
            return Ok(n);
        }
        let u = parse_uint(b);
        if let Ok(u) = u {
            n.is_uint = true;
            n.uint = u;
        }
        if let Some(i) = parse_int(b) {
            n.is_int = true;
            n.int = i;
            if i == 0 {
                n.is_uint = true; // -0
                n.uint = u.unwrap_or(0);
            }
        }
        if n.is_int {
            n.is_float = true;
            n.float = n.int as f64;
        } else if n.is_uint {
            n.is_float = true;
            n.float = n.uint as f64;
        } else if let Some(f) = parse_float(b) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {text:?}"));
            }
            n.is_float = true;
            n.float = f;
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                n.is_int = true;
                n.int = f as i64;
            }
            if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                n.is_uint = true;
                n.uint = f as u64;
            }
        }
        if !n.is_int && !n.is_uint && !n.is_float {
            return Err(format!("illegal number syntax: {text:?}"));
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------- floats

/// Decimal digits of a float: `digits` (no trailing zeros) with the decimal
/// point `dp` places from their start, like Go's `decimalSlice`.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

/// Splits Rust's `{:e}` output (`"1.2345e-7"`) into digits and decimal point.
fn digits_from_exp(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// Shortest digits that round-trip.
fn shortest(v: f64) -> Digits {
    digits_from_exp(&format!("{v:e}"))
}

/// More digits than any float64 has: its exact decimal expansion has at most
/// 767 significant digits and 1074 digits after the point, so asking for more
/// only adds zeros, which `Digits` drops anyway. Go accepts precisions up to
/// 10^6 while Rust's formatter panics above 65535, hence the cap.
const EXACT_DIGITS: usize = 1100;

/// `n` significant digits, correctly rounded (half to even).
fn significant(v: f64, n: usize) -> Digits {
    let n = n.clamp(1, EXACT_DIGITS);
    digits_from_exp(&format!("{:.*e}", n - 1, v))
}

/// Digits rounded to `prec` places after the decimal point.
fn fixed(v: f64, prec: usize) -> Digits {
    let prec = prec.min(EXACT_DIGITS);
    let s = format!("{v:.prec$}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut d: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut dp = int.len() as i64;
    let lead = d.iter().take_while(|&&c| c == b'0').count();
    d.drain(..lead);
    dp -= lead as i64;
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        dp = 0;
    }
    Digits { d, dp }
}

/// Go's `strconv.AppendFloat(dst, v, fmt, prec, 64)`.
pub(super) fn format_float(v: f64, fmt: u8, prec: i64) -> Vec<u8> {
    let mut dst = Vec::new();
    if v.is_nan() {
        dst.extend_from_slice(b"NaN");
        return dst;
    }
    if v.is_infinite() {
        dst.extend_from_slice(if v < 0.0 { b"-Inf" } else { b"+Inf" });
        return dst;
    }
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7FF) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1 << 52;
    }
    exp += -1023;
    if fmt == b'b' {
        if neg {
            dst.push(b'-');
        }
        dst.extend_from_slice(mant.to_string().as_bytes());
        dst.push(b'p');
        let e = exp - 52;
        if e >= 0 {
            dst.push(b'+');
        }
        dst.extend_from_slice(e.to_string().as_bytes());
        return dst;
    }
    if fmt == b'x' || fmt == b'X' {
        return fmt_x(prec, fmt, neg, mant, exp);
    }
    let abs = v.abs();
    if mant == 0 {
        return fmt_efg(neg, &Digits { d: Vec::new(), dp: 0 }, prec, fmt, prec < 0);
    }
    if prec < 0 {
        let digs = shortest(abs);
        let nd = digs.d.len() as i64;
        let prec = match fmt {
            b'e' | b'E' => (nd - 1).max(0),
            b'f' => (nd - digs.dp).max(0),
            _ => nd,
        };
        return fmt_efg(neg, &digs, prec, fmt, true);
    }
    let mut prec = prec;
    let digs = match fmt {
        b'e' | b'E' => significant(abs, prec as usize + 1),
        b'f' => fixed(abs, prec as usize),
        _ => {
            if prec == 0 {
                prec = 1;
            }
            significant(abs, prec as usize)
        }
    };
    fmt_efg(neg, &digs, prec, fmt, false)
}

/// Go's `fmtEFG`.
fn fmt_efg(neg: bool, digs: &Digits, mut prec: i64, mut fmt: u8, shortest: bool) -> Vec<u8> {
    let s = &digs.d;
    let nd = s.len() as i64;
    let dp = digs.dp;
    let mut dst = Vec::new();
    if fmt == b'g' || fmt == b'G' {
        let mut eprec = prec;
        if eprec > nd && nd >= dp {
            eprec = nd;
        }
        if shortest {
            eprec = 6;
        }
        let exp = dp - 1;
        if exp < -4 || exp >= eprec {
            if prec > nd {
                prec = nd;
            }
            prec -= 1;
            fmt = fmt + b'e' - b'g';
        } else {
            if prec > dp {
                prec = nd;
            }
            prec = (prec - dp).max(0);
            fmt = b'f';
        }
    }
    match fmt {
        b'e' | b'E' => {
            if neg {
                dst.push(b'-');
            }
            dst.push(if nd != 0 { s[0] } else { b'0' });
            if prec > 0 {
                dst.push(b'.');
                let m = nd.min(prec + 1);
                let mut i = 1;
                if i < m {
                    dst.extend_from_slice(&s[1..m as usize]);
                    i = m;
                }
                dst.extend(std::iter::repeat_n(b'0', (prec + 1 - i).max(0) as usize));
            }
            dst.push(fmt);
            let mut exp = dp - 1;
            if nd == 0 {
                exp = 0;
            }
            if exp < 0 {
                dst.push(b'-');
                exp = -exp;
            } else {
                dst.push(b'+');
            }
            if exp < 10 {
                dst.push(b'0');
            }
            dst.extend_from_slice(exp.to_string().as_bytes());
        }
        b'f' => {
            if neg {
                dst.push(b'-');
            }
            if dp > 0 {
                let m = nd.min(dp);
                dst.extend_from_slice(&s[..m as usize]);
                dst.extend(std::iter::repeat_n(b'0', (dp - m).max(0) as usize));
            } else {
                dst.push(b'0');
            }
            if prec > 0 {
                dst.push(b'.');
                let lz = prec.min((-dp).max(0));
                let off = dp + lz;
                let m = (prec - lz).min((nd - off).max(0));
                let tz = (prec - lz - m).max(0);
                dst.extend(std::iter::repeat_n(b'0', lz as usize));
                for i in 0..m {
                    dst.push(s[(off + i) as usize]);
                }
                dst.extend(std::iter::repeat_n(b'0', tz as usize));
            }
        }
        _ => {
            dst.push(b'%');
            dst.push(fmt);
        }
    }
    dst
}

/// Go's `fmtX`: hexadecimal mantissa and binary exponent.
fn fmt_x(prec: i64, fmt: u8, neg: bool, mut mant: u64, mut exp: i64) -> Vec<u8> {
    let mut dst = Vec::new();
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = if fmt == b'X' { UPPER_HEX } else { LOWER_HEX };
    if neg {
        dst.push(b'-');
    }
    dst.push(b'0');
    dst.push(fmt);
    dst.push(b'0' + ((mant >> 60) & 1) as u8);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        dst.push(b'.');
        while mant != 0 {
            dst.push(hex[((mant >> 60) & 15) as usize]);
            mant <<= 4;
        }
    } else if prec > 0 {
        dst.push(b'.');
        for _ in 0..prec {
            dst.push(hex[((mant >> 60) & 15) as usize]);
            mant <<= 4;
        }
    }
    dst.push(if fmt == b'X' { b'P' } else { b'p' });
    if exp < 0 {
        dst.push(b'-');
        exp = -exp;
    } else {
        dst.push(b'+');
    }
    if exp < 10 {
        dst.push(b'0');
    }
    dst.extend_from_slice(exp.to_string().as_bytes());
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ff(v: f64, fmt: u8, prec: i64) -> String {
        String::from_utf8_lossy(&format_float(v, fmt, prec)).into_owned()
    }

    #[test]
    fn floats_format_like_go() {
        assert_eq!(ff(1.0, b'g', -1), "1");
        assert_eq!(ff(1e6, b'g', -1), "1e+06");
        assert_eq!(ff(123456.0, b'g', -1), "123456");
        assert_eq!(ff(1e-5, b'g', -1), "1e-05");
        assert_eq!(ff(0.0001, b'g', -1), "0.0001");
        assert_eq!(ff(1e100, b'g', -1), "1e+100");
        assert_eq!(ff(3.5, b'e', 6), "3.500000e+00");
        assert_eq!(ff(0.0, b'e', 6), "0.000000e+00");
        assert_eq!(ff(0.125, b'f', 2), "0.12");
        assert_eq!(ff(-2.5, b'f', 0), "-2");
        assert_eq!(ff(1.0, b'g', 3), "1");
        assert_eq!(ff(1234.5678, b'g', 3), "1.23e+03");
        assert_eq!(ff(1.0, b'b', -1), "4503599627370496p-52");
        assert_eq!(ff(1.0, b'x', -1), "0x1p+00");
        assert_eq!(ff(3.0, b'x', 3), "0x1.800p+01");
        assert_eq!(ff(-0.0, b'g', -1), "-0");
        // Precisions beyond what Rust's formatter accepts (Go allows 10^6).
        let huge = ff(0.1, b'f', 100_000);
        assert_eq!(huge.len(), 100_002);
        assert!(huge.starts_with("0.1000000000000000055511151231257827"));
        assert!(huge.ends_with("000"));
        assert_eq!(ff(1.0, b'e', 70_000).len(), 70_006);
        assert_eq!(ff(1.0, b'g', 70_000), "1");
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote(b"a\"b\n\xff\x01\xe2\x80\x8d", false), b"\"a\\\"b\\n\\xff\\x01\\u200d\"");
        assert_eq!(quote("é".as_bytes(), true), b"\"\\u00e9\"");
        assert_eq!(quote_rune(0x1F600, true), b"'\\U0001f600'");
        assert!(can_backquote(b"a\tb"));
        assert!(!can_backquote(b"a`b"));
    }

    #[test]
    fn unquotes_like_go() {
        assert_eq!(unquote(r#""a\tb\x41\101\u00e9""#), Some(b"a\tbAA\xc3\xa9".to_vec()));
        assert_eq!(unquote(r#""\xff""#), Some(vec![0xFF]));
        assert_eq!(unquote(r#""\'""#), None);
        assert_eq!(unquote(r#""\uD800""#), None);
        assert_eq!(unquote("`a\r\nb`"), Some(b"a\nb".to_vec()));
    }

    #[test]
    fn numbers_parse_like_go() {
        let n = Number::parse("0x1F").unwrap_or_else(|e| panic!("{e}"));
        assert!(n.is_int && n.int == 31);
        assert!(Number::parse("08").is_err());
        assert!(Number::parse("1_000").is_ok_and(|n| n.int == 1000));
        assert!(Number::parse("1__0").is_err());
        assert!(Number::parse("1e3").is_ok_and(|n| n.is_int && n.float == 1000.0));
        assert!(Number::parse("0x1p-2").is_ok_and(|n| n.float == 0.25 && !n.is_int));
        assert!(Number::parse("18446744073709551615").is_ok_and(|n| n.is_uint && !n.is_int));
        assert!(Number::parse("1e400").is_err());
        assert!(Number::parse("2i").is_ok_and(|n| n.is_complex && n.complex == (0.0, 2.0)));
        assert!(Number::from_complex("1+2i").is_ok_and(|n| n.complex == (1.0, 2.0)));
        assert!(Number::from_char("'a'").is_ok_and(|n| n.int == 97));
        assert!(Number::from_char("'ab'").is_err());
    }
}
