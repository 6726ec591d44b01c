//! Go's `fmt` printing (`Sprintf`, `Sprint`, `Sprintln`) for the values a
//! template can hold, behind `printf`, `print`, `println`, `subst` and the
//! printing of action results.
//!
//! This is a port of `fmt/print.go` and `fmt/format.go` restricted to strings,
//! integers, bytes, floats, complex numbers, booleans, nil and the input map,
//! including Go's error forms (`%!d(string=foo)`, `%!s(MISSING)`,
//! `%!(EXTRA string=...)`, `%!(BADWIDTH)`, `%!(NOVERB)` ...).

use super::strconv::{can_backquote, format_float, quote, quote_rune};
use super::unicode::{MAX_RUNE, RUNE_ERROR, decode_rune, is_print, push_rune, rune_count};
use super::value::Value;

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

/// A Go `pp` printer: a buffer plus the flags of the verb being formatted.
#[derive(Debug, Default)]
struct Printer {
    buf: Vec<u8>,
    f: Flags,
    wid: i64,
    prec: i64,
    reordered: bool,
    good_arg_num: bool,
}

/// `fmt.Sprintf(format, args...)`; `Value::Invalid` stands for a nil argument.
pub(super) fn sprintf(format: &[u8], args: &[Value]) -> Vec<u8> {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

/// `fmt.Sprint(args...)`.
pub(super) fn sprint(args: &[Value]) -> Vec<u8> {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(b' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln(args...)`.
pub(super) fn sprintln(args: &[Value]) -> Vec<u8> {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(b' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push(b'\n');
    p.buf
}

fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

/// Go's `parsenum`: (number, is a number, new index).
fn parsenum(s: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0i64;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + i64::from(s[i] - b'0');
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

/// Go's `parseArgNumber`: (zero-based index, bytes consumed, ok).
fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, newi) = parsenum(format, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

fn int_from_arg(a: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let mut new_arg_num = arg_num;
    let mut num = 0;
    let mut is_int = false;
    if let Some(arg) = a.get(arg_num) {
        match arg {
            Value::Int(i) => {
                num = *i;
                is_int = true;
            }
            Value::Uint8(u) => {
                num = i64::from(*u);
                is_int = true;
            }
            _ => {}
        }
        new_arg_num = arg_num + 1;
        if too_large(num) {
            num = 0;
            is_int = false;
        }
    }
    (num, is_int, new_arg_num)
}

impl Printer {
    fn clear_flags(&mut self) {
        self.f = Flags::default();
        self.wid = 0;
        self.prec = 0;
    }

    // ------------------------------------------------------------ format.go

    fn write_padding(&mut self, n: i64) {
        if n <= 0 {
            return;
        }
        let pad = if self.f.zero && !self.f.minus { b'0' } else { b' ' };
        self.buf.extend(std::iter::repeat_n(pad, n as usize));
    }

    fn pad(&mut self, b: &[u8]) {
        if !self.f.wid_present || self.wid == 0 {
            self.buf.extend_from_slice(b);
            return;
        }
        let width = self.wid - rune_count(b) as i64;
        if !self.f.minus {
            self.write_padding(width);
            self.buf.extend_from_slice(b);
        } else {
            self.buf.extend_from_slice(b);
            self.write_padding(width);
        }
    }

    fn fmt_boolean(&mut self, v: bool) {
        self.pad(if v { b"true" } else { b"false" });
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if self.f.prec_present && self.prec > 4 {
            prec = self.prec;
        }
        let mut digits = Vec::new();
        let mut v = u;
        loop {
            digits.push(UDIGITS[(v & 0xF) as usize]);
            prec -= 1;
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        while prec > 0 {
            digits.push(b'0');
            prec -= 1;
        }
        let mut out = b"U+".to_vec();
        out.extend(digits.iter().rev());
        if self.f.sharp && u <= u64::from(MAX_RUNE) && is_print(u as u32) {
            out.extend_from_slice(b" '");
            push_rune(&mut out, u as u32);
            out.push(b'\'');
        }
        let old_zero = self.f.zero;
        self.f.zero = false;
        self.pad(&out);
        self.f.zero = old_zero;
    }

    fn fmt_integer_raw(
        &mut self,
        mut u: u64,
        base: u64,
        is_signed: bool,
        verb: char,
        digits: &[u8; 17],
    ) {
        let negative = is_signed && (u as i64) < 0;
        if negative {
            u = u.wrapping_neg();
        }
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.prec;
            if prec == 0 && u == 0 {
                let old_zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.wid);
                self.f.zero = old_zero;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        // Built right to left, reversed at the end.
        let mut rev: Vec<u8> = Vec::new();
        loop {
            rev.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while (rev.len() as i64) < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let old_zero = self.f.zero;
        self.f.zero = false;
        self.pad(&rev);
        self.f.zero = old_zero;
    }

    fn truncate<'a>(&self, s: &'a [u8]) -> &'a [u8] {
        if self.f.prec_present {
            let mut n = self.prec;
            let mut i = 0;
            while i < s.len() {
                n -= 1;
                if n < 0 {
                    return &s[..i];
                }
                let (_, w) = decode_rune(&s[i..]);
                i += w;
            }
        }
        s
    }

    fn fmt_s(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 17]) {
        let mut length = s.len() as i64;
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.wid);
            }
            return;
        }
        if self.f.wid_present && self.wid > width && !self.f.minus {
            self.write_padding(self.wid - width);
        }
        if self.f.sharp {
            self.buf.push(b'0');
            self.buf.push(digits[16]);
        }
        for (i, &c) in s.iter().take(length as usize).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(b' ');
                if self.f.sharp {
                    self.buf.push(b'0');
                    self.buf.push(digits[16]);
                }
            }
            self.buf.push(digits[usize::from(c >> 4)]);
            self.buf.push(digits[usize::from(c & 0xF)]);
        }
        if self.f.wid_present && self.wid > width && self.f.minus {
            self.write_padding(self.wid - width);
        }
    }

    fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let mut q = vec![b'`'];
            q.extend_from_slice(s);
            q.push(b'`');
            self.pad(&q);
            return;
        }
        let q = quote(s, self.f.plus);
        self.pad(&q);
    }

    fn fmt_c(&mut self, c: u64) {
        let r = if c > u64::from(MAX_RUNE) { RUNE_ERROR } else { c as u32 };
        let mut b = Vec::new();
        push_rune(&mut b, r);
        self.pad(&b);
    }

    fn fmt_qc(&mut self, c: u64) {
        let r = if c > u64::from(MAX_RUNE) { RUNE_ERROR } else { c as u32 };
        let q = quote_rune(r, self.f.plus);
        self.pad(&q);
    }

    fn fmt_float_raw(&mut self, v: f64, verb: u8, prec: i64) {
        let prec = if self.f.prec_present { self.prec } else { prec };
        let mut num = vec![b'+'];
        let formatted = format_float(v, verb, prec);
        if formatted.first().is_some_and(|&c| c == b'-' || c == b'+') {
            num = formatted;
        } else {
            num.extend_from_slice(&formatted);
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1).is_some_and(|&c| c == b'I' || c == b'N') {
            let old_zero = self.f.zero;
            self.f.zero = false;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = old_zero;
            return;
        }
        if self.f.sharp && verb != b'b' {
            let mut digits: i64 = 0;
            if matches!(verb, b'v' | b'g' | b'G' | b'x') {
                digits = prec;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_decimal_point = false;
            let mut saw_nonzero_digit = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_decimal_point = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                    }
                    b'e' | b'E' if verb != b'x' && verb != b'X' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero_digit = true;
                        }
                        if saw_nonzero_digit {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_decimal_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.wid > num.len() as i64 {
                self.buf.push(num[0]);
                self.write_padding(self.wid - num.len() as i64);
                self.buf.extend_from_slice(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    // ------------------------------------------------------------- print.go

    fn bad_verb(&mut self, arg: &Value, verb: char) {
        self.buf.extend_from_slice(b"%!");
        push_char(&mut self.buf, verb);
        self.buf.push(b'(');
        if matches!(arg, Value::Invalid) {
            self.buf.extend_from_slice(b"<nil>");
        } else {
            self.buf.extend_from_slice(arg.type_name().as_bytes());
            self.buf.push(b'=');
            self.print_arg(arg, 'v');
        }
        self.buf.push(b')');
    }

    fn fmt_integer(&mut self, arg: &Value, v: u64, is_signed: bool, verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v && !is_signed {
                    let sharp = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer_raw(v, 16, false, 'v', LDIGITS);
                    self.f.sharp = sharp;
                } else {
                    self.fmt_integer_raw(v, 10, is_signed, verb, LDIGITS);
                }
            }
            'd' => self.fmt_integer_raw(v, 10, is_signed, verb, LDIGITS),
            'b' => self.fmt_integer_raw(v, 2, is_signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer_raw(v, 8, is_signed, verb, LDIGITS),
            'x' => self.fmt_integer_raw(v, 16, is_signed, verb, LDIGITS),
            'X' => self.fmt_integer_raw(v, 16, is_signed, verb, UDIGITS),
            'c' => self.fmt_c(v),
            'q' => self.fmt_qc(v),
            'U' => self.fmt_unicode(v),
            _ => self.bad_verb(arg, verb),
        }
    }

    fn fmt_float(&mut self, arg: &Value, v: f64, verb: char) {
        match verb {
            'v' => self.fmt_float_raw(v, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float_raw(v, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float_raw(v, verb as u8, 6),
            'F' => self.fmt_float_raw(v, b'f', 6),
            _ => self.bad_verb(arg, verb),
        }
    }

    fn fmt_complex(&mut self, arg: &Value, re: f64, im: f64, verb: char) {
        match verb {
            'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' => {
                let old_plus = self.f.plus;
                self.buf.push(b'(');
                self.fmt_float(arg, re, verb);
                self.f.plus = true;
                self.fmt_float(arg, im, verb);
                self.buf.extend_from_slice(b"i)");
                self.f.plus = old_plus;
            }
            _ => self.bad_verb(arg, verb),
        }
    }

    fn fmt_string(&mut self, arg: &Value, v: &[u8], verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(v);
                } else {
                    self.fmt_s(v);
                }
            }
            's' => self.fmt_s(v),
            'x' => self.fmt_sx(v, LDIGITS),
            'X' => self.fmt_sx(v, UDIGITS),
            'q' => self.fmt_q(v),
            _ => self.bad_verb(arg, verb),
        }
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        if matches!(arg, Value::Invalid) {
            match verb {
                'T' | 'v' => self.pad(b"<nil>"),
                _ => self.bad_verb(arg, verb),
            }
            return;
        }
        match verb {
            'T' => {
                self.fmt_s(arg.type_name().as_bytes());
                return;
            }
            // Go prints a map's address for %p; there is no address here, and
            // every other kind this engine has is a bad verb for %p in Go too.
            'p' => {
                self.bad_verb(arg, verb);
                return;
            }
            // Go's handleMethods rejects %w for any non-error argument as a
            // whole; the simple kinds reject it in their own formatter.
            'w' if matches!(arg, Value::Map(_)) => {
                self.bad_verb(arg, verb);
                return;
            }
            _ => {}
        }
        self.print_value(arg, verb, 0);
    }

    fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
        match value {
            Value::Invalid => {
                if depth == 0 {
                    self.buf.extend_from_slice(b"<invalid reflect.Value>");
                } else if verb == 'v' {
                    self.buf.extend_from_slice(b"<nil>");
                } else {
                    self.bad_verb(value, verb);
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.fmt_boolean(*b),
                _ => self.bad_verb(value, verb),
            },
            Value::Int(i) => self.fmt_integer(value, *i as u64, true, verb),
            Value::Uint8(u) => self.fmt_integer(value, u64::from(*u), false, verb),
            Value::Float(f) => self.fmt_float(value, *f, verb),
            Value::Complex(re, im) => self.fmt_complex(value, *re, *im, verb),
            Value::Str(s) => self.fmt_string(value, s, verb),
            Value::Map(m) => {
                if self.f.sharp_v {
                    self.buf.extend_from_slice(b"map[string]string{");
                } else {
                    self.buf.extend_from_slice(b"map[");
                }
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        if self.f.sharp_v {
                            self.buf.extend_from_slice(b", ");
                        } else {
                            self.buf.push(b' ');
                        }
                    }
                    self.print_value(&Value::str(k), verb, depth + 1);
                    self.buf.push(b':');
                    self.print_value(&Value::Str(v.clone()), verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { b'}' } else { b']' });
            }
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let (index, wid, ok) = parse_arg_number(&format[i..]);
        if ok && 0 <= index && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    fn do_printf(&mut self, format: &[u8], a: &[Value]) {
        let end = format.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'format: while i < end {
            self.good_arg_num = true;
            let lasti = i;
            while i < end && format[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.extend_from_slice(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            'simple: while i < end {
                let c = format[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < a.len() {
                            if c == b'v' || c == b'w' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&a[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break 'simple;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) = self.arg_number(arg_num, format, i, a.len());

            if i < end && format[i] == b'*' {
                i += 1;
                let (w, present, n) = int_from_arg(a, arg_num);
                self.wid = w;
                self.f.wid_present = present;
                arg_num = n;
                if !present {
                    self.buf.extend_from_slice(b"%!(BADWIDTH)");
                }
                if self.wid < 0 {
                    self.wid = -self.wid;
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (w, present, ni) = parsenum(format, i, end);
                self.wid = w;
                self.f.wid_present = present;
                i = ni;
                if after_index && self.f.wid_present {
                    self.good_arg_num = false;
                }
            }

            if i + 1 < end && format[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, format, i, a.len());
                if i < end && format[i] == b'*' {
                    i += 1;
                    let (p, present, n) = int_from_arg(a, arg_num);
                    self.prec = p;
                    self.f.prec_present = present;
                    arg_num = n;
                    if self.prec < 0 {
                        self.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.buf.extend_from_slice(b"%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, present, ni) = parsenum(format, i, end);
                    self.prec = p;
                    self.f.prec_present = present;
                    i = ni;
                    if !self.f.prec_present {
                        self.prec = 0;
                        self.f.prec_present = true;
                    }
                }
            }

            if !after_index {
                (arg_num, i, after_index) = self.arg_number(arg_num, format, i, a.len());
            }
            let _ = after_index;

            if i >= end {
                self.buf.extend_from_slice(b"%!(NOVERB)");
                break;
            }

            let (r, size) = decode_rune(&format[i..]);
            let verb = char::from_u32(r).unwrap_or('\u{FFFD}');
            i += size;

            if verb == '%' {
                self.buf.push(b'%');
            } else if !self.good_arg_num {
                self.buf.extend_from_slice(b"%!");
                push_char(&mut self.buf, verb);
                self.buf.extend_from_slice(b"(BADINDEX)");
            } else if arg_num >= a.len() {
                self.buf.extend_from_slice(b"%!");
                push_char(&mut self.buf, verb);
                self.buf.extend_from_slice(b"(MISSING)");
            } else {
                if verb == 'v' || verb == 'w' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&a[arg_num], verb);
                arg_num += 1;
            }
        }

        if !self.reordered && arg_num < a.len() {
            self.clear_flags();
            self.buf.extend_from_slice(b"%!(EXTRA ");
            for (i, arg) in a[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.extend_from_slice(b", ");
                }
                if matches!(arg, Value::Invalid) {
                    self.buf.extend_from_slice(b"<nil>");
                } else {
                    self.buf.extend_from_slice(arg.type_name().as_bytes());
                    self.buf.push(b'=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(b')');
        }
    }
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut b = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::str(v.as_bytes())
    }

    fn pf(format: &str, args: &[Value]) -> String {
        String::from_utf8_lossy(&sprintf(format.as_bytes(), args)).into_owned()
    }

    #[test]
    fn verbs_and_flags() {
        assert_eq!(
            pf(
                "%s|%5s|%-5s|%.2s|%q|%x|% X",
                &[s("ab"), s("ab"), s("ab"), s("abc"), s("a\"b"), s("hi"), s("hi")]
            ),
            "ab|   ab|ab   |ab|\"a\\\"b\"|6869|68 69"
        );
        assert_eq!(
            pf(
                "%d|%5d|%-5d|%05d|%+d|%x|%#x|%o|%#o|%b|%c|%q|%U|%#U",
                &[
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(-42),
                    Value::Int(42),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(8),
                    Value::Int(5),
                    Value::Int(0x263A),
                    Value::Int(0x263A),
                    Value::Int(0x263A),
                    Value::Int(0x263A),
                ]
            ),
            "42|   42|42   |-0042|+42|ff|0xff|10|010|101|☺|'☺'|U+263A|U+263A '☺'"
        );
        assert_eq!(
            pf(
                "%v|%.2f|%e|%g|%8.3f|%-8.2e|%+.1f",
                &[
                    Value::Float(1.5),
                    Value::Float(3.14659),
                    Value::Float(1234.5678),
                    Value::Float(1e21),
                    Value::Float(2.0),
                    Value::Float(0.000123),
                    Value::Float(2.25),
                ]
            ),
            "1.5|3.15|1.234568e+03|1e+21|   2.000|1.23e-04|+2.2"
        );
        assert_eq!(
            pf("%t|%v|%5t", &[Value::Bool(true), Value::Bool(false), Value::Bool(true)]),
            "true|false| true"
        );
        assert_eq!(pf("%v", &[Value::Complex(1.0, -2.5)]), "(1-2.5i)");
        assert_eq!(
            pf("%#v|%T|%T", &[s("a"), Value::Uint8(1), Value::Invalid]),
            "\"a\"|uint8|<nil>"
        );
        assert_eq!(pf("%%|%5%", &[]), "%|%");
    }

    #[test]
    fn error_forms() {
        assert_eq!(pf("%d", &[s("foo")]), "%!d(string=foo)");
        assert_eq!(pf("%s", &[Value::Invalid]), "%!s(<nil>)");
        assert_eq!(pf("%v", &[Value::Invalid]), "<nil>");
        assert_eq!(pf("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(pf("%s", &[s("a"), Value::Int(1), Value::Invalid]), "a%!(EXTRA int=1, <nil>)");
        assert_eq!(pf("%z", &[Value::Int(1)]), "%!z(int=1)");
        assert_eq!(pf("%", &[]), "%!(NOVERB)");
        assert_eq!(pf("%[2]s %[1]s", &[s("a"), s("b")]), "b a");
        assert_eq!(pf("%[3]s", &[s("a")]), "%!s(BADINDEX)");
        assert_eq!(pf("%*d", &[s("x"), Value::Int(1)]), "%!(BADWIDTH)1");
        assert_eq!(
            pf("%*d|%-*d", &[Value::Int(4), Value::Int(1), Value::Int(3), Value::Int(2)]),
            "   1|2  "
        );
    }

    #[test]
    fn print_and_println() {
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("a"), Value::Int(3), s("b"), s("c")]),
            b"1 2a3bc"
        );
        assert_eq!(sprint(&[Value::Invalid, Value::Bool(true)]), b"<nil> true");
        assert_eq!(sprintln(&[s("a"), s("b")]), b"a b\n");
    }
}
