//! The lexer: a port of Go's `text/template/parse/lex.go`.
//!
//! It turns the source into tokens: text between actions, and inside
//! `{{ }}` identifiers, fields, variables, literals, `|`, `(`, `)`, `:=`, `=`
//! and runs of spaces. Trim markers (`{{- ` and ` -}}`) and comments are
//! handled here, as in Go, so the parser never sees them. Lexing stops at the
//! first error, which becomes the last token: the parser reports it only if
//! it gets that far, exactly as Go's lazily lexing parser does.

use super::strconv::scan_number;
use super::unicode::{decode_rune, is_digit, is_letter};

/// Kinds of tokens (Go's `itemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A lexing error; the token's value is the message.
    Error,
    Bool,
    /// A printable ASCII character not otherwise handled, e.g. `,`.
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

/// A token: its kind, its text (or error message) and its byte offset.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) val: String,
    pub(super) pos: usize,
}

impl Token {
    /// How Go's parser names the token in "unexpected ..." messages.
    pub(super) fn describe(&self) -> String {
        match self.kind {
            Kind::Eof => "EOF".to_owned(),
            Kind::Error => self.val.clone(),
            Kind::Block
            | Kind::Break
            | Kind::Continue
            | Kind::Dot
            | Kind::Define
            | Kind::Else
            | Kind::End
            | Kind::If
            | Kind::Nil
            | Kind::Range
            | Kind::Template
            | Kind::With => format!("<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                format!("{head:?}...")
            }
            _ => format!("{:?}", self.val),
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

fn is_space(c: u32) -> bool {
    c == u32::from(b' ') || c == u32::from(b'\t') || c == u32::from(b'\r') || c == u32::from(b'\n')
}

/// Go's `isAlphaNumeric`: letter, digit or underscore (Unicode classes).
pub(super) fn is_alphanumeric(r: u32) -> bool {
    r == u32::from(b'_') || is_letter(r) || is_digit(r)
}

fn has_left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space(u32::from(s[1]))
}

fn has_right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && is_space(u32::from(s[0])) && s[1] == b'-'
}

fn keyword(word: &str) -> Option<Kind> {
    Some(match word {
        "." => Kind::Dot,
        "block" => Kind::Block,
        "break" => Kind::Break,
        "continue" => Kind::Continue,
        "define" => Kind::Define,
        "else" => Kind::Else,
        "end" => Kind::End,
        "if" => Kind::If,
        "range" => Kind::Range,
        "nil" => Kind::Nil,
        "template" => Kind::Template,
        "with" => Kind::With,
        _ => return None,
    })
}

struct Lexer<'a> {
    src: &'a str,
    input: &'a [u8],
    pos: usize,
    start: usize,
    paren_depth: i64,
    /// Start of the current action, for "unclosed action" errors.
    action_start: usize,
    tokens: Vec<Token>,
}

enum Step {
    Continue,
    Done,
}

/// Lexes the whole source; the last token is `Eof` or `Error`.
pub(super) fn lex(src: &str) -> Vec<Token> {
    let mut l = Lexer {
        src,
        input: src.as_bytes(),
        pos: 0,
        start: 0,
        paren_depth: 0,
        action_start: 0,
        tokens: Vec::new(),
    };
    let mut inside = false;
    loop {
        let step = if inside { l.inside_action(&mut inside) } else { l.text(&mut inside) };
        if let Step::Done = step {
            return l.tokens;
        }
    }
}

impl Lexer<'_> {
    fn peek_rune(&self) -> Option<(u32, usize)> {
        if self.pos >= self.input.len() {
            return None;
        }
        Some(decode_rune(&self.input[self.pos..]))
    }

    fn emit(&mut self, kind: Kind) {
        self.tokens.push(Token {
            kind,
            val: self.src_slice(self.start, self.pos),
            pos: self.start,
        });
        self.start = self.pos;
    }

    fn src_slice(&self, from: usize, to: usize) -> String {
        String::from_utf8_lossy(&self.input[from..to]).into_owned()
    }

    fn error(&mut self, msg: String, pos: usize) -> Step {
        self.tokens.push(Token { kind: Kind::Error, val: msg, pos });
        Step::Done
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && rest[2..].starts_with(RIGHT_DELIM.as_bytes()) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM.as_bytes()) {
            return (true, false);
        }
        (false, false)
    }

    fn text(&mut self, inside: &mut bool) -> Step {
        let rest = &self.src[self.pos..];
        if let Some(x) = rest.find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let mut trim = 0;
                if has_left_trim_marker(&self.input[delim_end..]) {
                    let text = &self.input[self.start..self.pos];
                    let kept =
                        text.iter().rposition(|&c| !is_space(u32::from(c))).map_or(0, |p| p + 1);
                    trim = text.len() - kept;
                }
                let text_end = self.pos - trim;
                if text_end > self.start {
                    self.tokens.push(Token {
                        kind: Kind::Text,
                        val: self.src_slice(self.start, text_end),
                        pos: self.start,
                    });
                }
                self.start = self.pos;
            }
            return self.left_delim(inside);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.emit(Kind::Text);
        }
        self.emit(Kind::Eof);
        Step::Done
    }

    fn left_delim(&mut self, inside: &mut bool) -> Step {
        self.action_start = self.pos;
        self.pos += LEFT_DELIM.len();
        let trim_space = has_left_trim_marker(&self.input[self.pos..]);
        let after_marker = if trim_space { 2 } else { 0 };
        if self.input[self.pos + after_marker..].starts_with(LEFT_COMMENT.as_bytes()) {
            self.pos += after_marker;
            self.start = self.pos;
            return self.comment();
        }
        self.emit(Kind::LeftDelim);
        *inside = true;
        self.pos += after_marker;
        self.start = self.pos;
        self.paren_depth = 0;
        Step::Continue
    }

    fn comment(&mut self) -> Step {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.src[self.pos..].find(RIGHT_COMMENT) else {
            return self.error("unclosed comment".into(), self.action_start);
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim_space) = self.at_right_delim();
        if !delim {
            return self.error("comment ends before closing delimiter".into(), self.action_start);
        }
        if trim_space {
            self.pos += 2;
        }
        self.pos += RIGHT_DELIM.len();
        if trim_space {
            self.skip_leading_space();
        }
        self.start = self.pos;
        Step::Continue
    }

    fn skip_leading_space(&mut self) {
        while self.pos < self.input.len() && is_space(u32::from(self.input[self.pos])) {
            self.pos += 1;
        }
    }

    fn right_delim(&mut self, inside: &mut bool) -> Step {
        let (_, trim_space) = self.at_right_delim();
        if trim_space {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(Kind::RightDelim);
        if trim_space {
            self.skip_leading_space();
            self.start = self.pos;
        }
        *inside = false;
        Step::Continue
    }

    fn inside_action(&mut self, inside: &mut bool) -> Step {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return self.right_delim(inside);
            }
            return self.error("unclosed left paren".into(), self.start);
        }
        let Some((r, w)) = self.peek_rune() else {
            return self.error("unclosed action".into(), self.action_start);
        };
        if is_space(r) {
            return self.space(inside);
        }
        self.pos += w;
        let c = if r < 0x80 { r as u8 } else { 0 };
        match c {
            b'=' => self.emit(Kind::Assign),
            b':' => {
                if self.input.get(self.pos) != Some(&b'=') {
                    if self.pos < self.input.len() {
                        self.pos += decode_rune(&self.input[self.pos..]).1;
                    }
                    return self.error("expected :=".into(), self.start);
                }
                self.pos += 1;
                self.emit(Kind::Declare);
            }
            b'|' => self.emit(Kind::Pipe),
            b'"' => return self.quote(),
            b'`' => return self.raw_quote(),
            b'$' => return self.variable(),
            b'\'' => return self.char_constant(),
            b'.' if self.input.get(self.pos).is_some_and(|c| !c.is_ascii_digit()) => {
                return self.field_or_variable(Kind::Field);
            }
            b'.' | b'+' | b'-' | b'0'..=b'9' => {
                self.pos -= 1;
                return self.number();
            }
            b'(' => {
                self.paren_depth += 1;
                self.emit(Kind::LeftParen);
            }
            b')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.error("unexpected right paren".into(), self.start);
                }
                self.emit(Kind::RightParen);
            }
            _ if is_alphanumeric(r) => {
                self.pos -= w;
                return self.identifier();
            }
            _ if r < 0x80 && (0x20..0x7F).contains(&r) => self.emit(Kind::Char),
            _ => {
                return self
                    .error(format!("unrecognized character in action: U+{r:04X}"), self.start);
            }
        }
        Step::Continue
    }

    fn space(&mut self, inside: &mut bool) -> Step {
        let mut num_spaces = 0;
        while self.pos < self.input.len() && is_space(u32::from(self.input[self.pos])) {
            self.pos += 1;
            num_spaces += 1;
        }
        // A trim-marked right delimiter starts with a space: leave it to right_delim.
        let back = &self.input[self.pos - 1..];
        if has_right_trim_marker(back) && back[2..].starts_with(RIGHT_DELIM.as_bytes()) {
            self.pos -= 1;
            if num_spaces == 1 {
                return self.right_delim(inside);
            }
        }
        self.emit(Kind::Space);
        Step::Continue
    }

    fn at_terminator(&self) -> bool {
        let Some((r, _)) = self.peek_rune() else {
            return true;
        };
        if is_space(r) {
            return true;
        }
        if matches!(r, 0x2E | 0x2C | 0x7C | 0x3A | 0x29 | 0x28) {
            // . , | : ) (
            return true;
        }
        self.input[self.pos..].starts_with(RIGHT_DELIM.as_bytes())
    }

    fn consume_alphanumerics(&mut self) {
        while let Some((r, w)) = self.peek_rune() {
            if !is_alphanumeric(r) {
                break;
            }
            self.pos += w;
        }
    }

    fn bad_character(&mut self) -> Step {
        let r = self.peek_rune().map_or(0xFFFD, |(r, _)| r);
        self.error(format!("bad character U+{r:04X}"), self.start)
    }

    fn identifier(&mut self) -> Step {
        self.consume_alphanumerics();
        if !self.at_terminator() {
            return self.bad_character();
        }
        let word = &self.src[self.start..self.pos];
        let kind = match keyword(word) {
            Some(k) => k,
            None if word == "true" || word == "false" => Kind::Bool,
            None => Kind::Identifier,
        };
        self.emit(kind);
        Step::Continue
    }

    fn variable(&mut self) -> Step {
        if self.at_terminator() {
            self.emit(Kind::Variable);
            return Step::Continue;
        }
        self.field_or_variable(Kind::Variable)
    }

    fn field_or_variable(&mut self, kind: Kind) -> Step {
        if self.at_terminator() {
            self.emit(if kind == Kind::Variable { Kind::Variable } else { Kind::Dot });
            return Step::Continue;
        }
        self.consume_alphanumerics();
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(kind);
        Step::Continue
    }

    fn char_constant(&mut self) -> Step {
        loop {
            let Some((r, w)) = self.peek_rune() else {
                return self.error("unterminated character constant".into(), self.start);
            };
            self.pos += w;
            match r {
                0x5C => {
                    // backslash: the next rune is escaped unless it ends the line
                    match self.peek_rune() {
                        Some((r2, w2)) if r2 != u32::from(b'\n') => self.pos += w2,
                        _ => {
                            return self
                                .error("unterminated character constant".into(), self.start);
                        }
                    }
                }
                0x0A => return self.error("unterminated character constant".into(), self.start),
                0x27 => break,
                _ => {}
            }
        }
        self.emit(Kind::CharConstant);
        Step::Continue
    }

    fn number(&mut self) -> Step {
        let (end, ok) = scan_number(self.input, self.pos);
        self.pos = end;
        if !ok {
            let text = self.src_slice(self.start, self.pos);
            return self.error(format!("bad number syntax: {text:?}"), self.start);
        }
        if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
            let (end, ok) = scan_number(self.input, self.pos);
            self.pos = end;
            if !ok || self.input[self.pos - 1] != b'i' {
                let text = self.src_slice(self.start, self.pos);
                return self.error(format!("bad number syntax: {text:?}"), self.start);
            }
            self.emit(Kind::Complex);
            return Step::Continue;
        }
        self.emit(Kind::Number);
        Step::Continue
    }

    fn quote(&mut self) -> Step {
        loop {
            let Some((r, w)) = self.peek_rune() else {
                return self.error("unterminated quoted string".into(), self.start);
            };
            self.pos += w;
            match r {
                0x5C => match self.peek_rune() {
                    Some((r2, w2)) if r2 != u32::from(b'\n') => self.pos += w2,
                    _ => return self.error("unterminated quoted string".into(), self.start),
                },
                0x0A => return self.error("unterminated quoted string".into(), self.start),
                0x22 => break,
                _ => {}
            }
        }
        self.emit(Kind::String);
        Step::Continue
    }

    fn raw_quote(&mut self) -> Step {
        match self.src[self.pos..].find('`') {
            Some(x) => {
                self.pos += x + 1;
                self.emit(Kind::RawString);
                Step::Continue
            }
            None => self.error("unterminated raw quoted string".into(), self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, String)> {
        lex(src).into_iter().map(|t| (t.kind, t.val)).collect()
    }

    #[test]
    fn lexes_actions_and_trim_markers() {
        let toks = kinds("a  {{- .X | printf \"%s\" -}}  b");
        let k: Vec<Kind> = toks.iter().map(|t| t.0).collect();
        assert_eq!(
            k,
            vec![
                Kind::Text,
                Kind::LeftDelim,
                Kind::Field,
                Kind::Space,
                Kind::Pipe,
                Kind::Space,
                Kind::Identifier,
                Kind::Space,
                Kind::String,
                Kind::RightDelim,
                Kind::Text,
                Kind::Eof
            ]
        );
        assert_eq!(toks[0].1, "a");
        assert_eq!(toks[10].1, "b");
    }

    #[test]
    fn comments_vanish_and_numbers_keep_their_text() {
        let toks = kinds("x {{- /* c */ -}} y{{-3}}{{ 1+2i }}");
        assert_eq!(toks[0], (Kind::Text, "x".into()));
        assert_eq!(toks[1], (Kind::Text, "y".into()));
        assert_eq!(toks[3], (Kind::Number, "-3".into()));
        assert!(toks.contains(&(Kind::Complex, "1+2i".into())));
    }

    #[test]
    fn errors_end_the_stream() {
        for (src, msg) in [
            ("{{ .X ", "unclosed action"),
            ("{{ \"abc }}", "unterminated quoted string"),
            ("{{/* x }}", "unclosed comment"),
            ("{{ ( .X }}", "unclosed left paren"),
            ("{{ .X) }}", "unexpected right paren"),
            ("{{ 3x }}", "bad number syntax: \"3x\""),
            ("{{ a:b }}", "expected :="),
        ] {
            let toks = lex(src);
            let last = toks.last().map(|t| (t.kind, t.val.clone()));
            assert_eq!(last, Some((Kind::Error, msg.to_owned())), "{src}");
        }
    }
}
