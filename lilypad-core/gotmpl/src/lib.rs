//! Go `text/template` semantics for `lilypad_module.json.tmpl`.
//!
//! Lilypad (the Go reference) renders a module template with
//! `template.New(name).Funcs({"subst": subst}).Parse(src)` and executes it on
//! a `map[string]string` whose values are the inputs JSON-encoded with
//! `encoding/json` (so `{{.Message}}` yields `"moo"`, quotes included). Modules
//! already published must render byte for byte as they do in Go, so this is a
//! faithful reimplementation of the parts of Go that take part:
//! `text/template` (lexer, parser, evaluator, builtins), `fmt`'s printing
//! verbs, `strconv` quoting and float formatting, and `encoding/json` strings.
//!
//! # Why not the `gtmpl` crate
//!
//! `gtmpl` 0.7.1 (the maintained Rust port) does not implement `html` and
//! `js` (used by published modules, e.g. `{{ .prompt | js }}`), its `printf`
//! is its own approximation of Go's `fmt`, it has no notion of Go's invalid
//! value (a missing key printing `<no value>`, `printf "%s"` of it printing
//! `%!s(<nil>)`, `len` of it failing), and its errors carry no structured
//! position. Filling those gaps would mean rewriting most of it, so the engine
//! is written here, module by module after Go's own sources:
//!
//! - `lexer`: tokens, trim markers, comments (`parse/lex.go`);
//! - `parser` and `ast`: the tree set (`parse/parse.go`, `parse/node.go`);
//! - `exec`: evaluation (`exec.go`);
//! - `funcs`: builtins and `subst` (`funcs.go`);
//! - `fmt`: `Sprintf`/`Sprint`/`Sprintln` (`fmt/print.go`, `fmt/format.go`);
//! - `strconv`, `json`, `unicode`: the Go library behaviour they rely on;
//! - `refs`: the inputs a template refers to.
//!
//! This crate has no dependency beyond `thiserror`; `lilypad-core` re-exports it as
//! `lilypad_core::module::template`.
//!
//! `lilypad-core/tests/template_vs_go.rs` checks the engine against Go itself
//! on a corpus of real and generated templates; `docs/templates.md` lists what
//! is supported and the few deliberate differences (resource limits).

mod ast;
mod exec;
mod fmt;
mod funcs;
mod json;
mod lexer;
mod parser;
mod refs;
mod strconv;
#[cfg(test)]
mod tests;
mod unicode;
#[rustfmt::skip]
mod unicode_tables;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use self::ast::List;
use self::exec::{ErrorKind, ExecError};
use self::parser::{ParseError, TreeSet};

/// A parsed template, ready to render.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    trees: TreeSet,
}

/// The result of rendering a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered text.
    pub text: String,
    /// Inputs used by the template but not given, sorted.
    pub missing_inputs: Vec<String>,
}

/// Why a template could not be parsed or rendered.
///
/// Every variant carries the template `name` and the 1-based `line` and `col`
/// (in characters) of the offending element; variants raised while rendering
/// name the `input` involved when there is one.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// Not valid template syntax: unclosed action, unexpected token,
    /// unterminated string or comment, unmatched `{{end}}` or `{{else}}` ...
    #[error("{name}:{line}:{col}: {message}")]
    Syntax {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// A call of a function that does not exist.
    #[error("{name}:{line}:{col}: unknown function {function:?}")]
    UnknownFunction {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The unknown function.
        function: String,
    },
    /// Too many or too few arguments for a function, or arguments given to
    /// something that is not a function.
    #[error("{name}:{line}:{col}: {}{message}", input_prefix(.input))]
    ArgumentCount {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The input involved, if any.
        input: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value of the wrong type where it is used, including a missing input
    /// where a string is required.
    #[error("{name}:{line}:{col}: {}{message}", input_prefix(.input))]
    WrongType {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The input involved, if any.
        input: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A function failed, e.g. `subst` of an input that is not a JSON string.
    #[error("{name}:{line}:{col}: {}{function}: {message}", input_prefix(.input))]
    Function {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The function that failed.
        function: String,
        /// The input involved, if any.
        input: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An index or slice bound outside the value.
    #[error("{name}:{line}:{col}: {}{message}", input_prefix(.input))]
    IndexOutOfRange {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The input involved, if any.
        input: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Any other rendering error: range over a string, `nil` as a command,
    /// undefined template or variable ...
    #[error("{name}:{line}:{col}: {}{message}", input_prefix(.input))]
    Exec {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// The input involved, if any.
        input: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The template exceeded a resource limit of this engine (steps, output
    /// size or nesting depth); Go has no such limits.
    #[error("{name}:{line}:{col}: {message}")]
    Limit {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// Which limit.
        message: String,
    },
}

fn input_prefix(input: &Option<String>) -> String {
    match input {
        Some(i) => format!("input {i:?}: "),
        None => String::new(),
    }
}

impl TemplateError {
    /// The template name.
    pub fn name(&self) -> &str {
        match self {
            Self::Syntax { name, .. }
            | Self::UnknownFunction { name, .. }
            | Self::ArgumentCount { name, .. }
            | Self::WrongType { name, .. }
            | Self::Function { name, .. }
            | Self::IndexOutOfRange { name, .. }
            | Self::Exec { name, .. }
            | Self::Limit { name, .. } => name,
        }
    }

    /// The 1-based line of the offending element.
    pub fn line(&self) -> usize {
        self.position().0
    }

    /// The 1-based column (in characters) of the offending element.
    pub fn col(&self) -> usize {
        self.position().1
    }

    fn position(&self) -> (usize, usize) {
        match self {
            Self::Syntax { line, col, .. }
            | Self::UnknownFunction { line, col, .. }
            | Self::ArgumentCount { line, col, .. }
            | Self::WrongType { line, col, .. }
            | Self::Function { line, col, .. }
            | Self::IndexOutOfRange { line, col, .. }
            | Self::Exec { line, col, .. }
            | Self::Limit { line, col, .. } => (*line, *col),
        }
    }

    /// The input involved, when the error is about one.
    pub fn input(&self) -> Option<&str> {
        match self {
            Self::ArgumentCount { input, .. }
            | Self::WrongType { input, .. }
            | Self::Function { input, .. }
            | Self::IndexOutOfRange { input, .. }
            | Self::Exec { input, .. } => input.as_deref(),
            Self::Syntax { .. } | Self::UnknownFunction { .. } | Self::Limit { .. } => None,
        }
    }
}

/// 1-based line and character column of byte offset `pos` in `src`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line = 1 + before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, 1 + before[line_start..].chars().count())
}

impl Template {
    /// Parses `src`; `name` is used in error messages (e.g. "lilypad_module.json.tmpl").
    pub fn parse(name: &str, src: &str) -> Result<Self, TemplateError> {
        let tokens = lexer::lex(src);
        let has_function = |f: &str| funcs::lookup(f).is_some();
        match parser::parse(name.as_bytes(), tokens, &has_function) {
            Ok(trees) => Ok(Self { name: name.to_owned(), src: src.to_owned(), trees }),
            Err(e) => Err(match e {
                ParseError::Syntax { pos, message } => {
                    let (line, col) = line_col(src, pos);
                    TemplateError::Syntax { name: name.to_owned(), line, col, message }
                }
                ParseError::UnknownFunction { pos, name: function } => {
                    let (line, col) = line_col(src, pos);
                    TemplateError::UnknownFunction { name: name.to_owned(), line, col, function }
                }
            }),
        }
    }

    fn root(&self) -> Arc<List> {
        self.trees.get(self.name.as_bytes()).cloned().unwrap_or_default()
    }

    /// Renders with raw (not yet JSON-encoded) input values; the engine JSON-encodes them as Lilypad does.
    pub fn render(&self, inputs: &BTreeMap<String, String>) -> Result<Rendered, TemplateError> {
        let data: BTreeMap<Vec<u8>, value::Bytes> = inputs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Arc::from(json::encode_string(v).into_bytes())))
            .collect();
        let root = self.root();
        match exec::execute(&self.trees, &root, Arc::new(data)) {
            Ok(state) => {
                // Go writes the bytes as they are; the module JSON is decoded
                // from them, and Go's decoder also turns invalid UTF-8 into U+FFFD.
                let text = match String::from_utf8(state.out) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                Ok(Rendered { text, missing_inputs: state.missing.into_iter().collect() })
            }
            Err(e) => Err(self.exec_error(e)),
        }
    }

    fn exec_error(&self, e: ExecError) -> TemplateError {
        let (line, col) = line_col(&self.src, e.pos);
        let name = self.name.clone();
        let input = e.input.map(|i| i.to_string());
        let message = match (e.function, e.kind) {
            (Some(f), ErrorKind::WrongType | ErrorKind::IndexOutOfRange) => {
                format!("error calling {f}: {}", e.message)
            }
            _ => e.message,
        };
        match e.kind {
            ErrorKind::WrongType => TemplateError::WrongType { name, line, col, input, message },
            ErrorKind::ArgCount => TemplateError::ArgumentCount { name, line, col, input, message },
            ErrorKind::Function => TemplateError::Function {
                name,
                line,
                col,
                function: e.function.unwrap_or("call").to_owned(),
                input,
                message,
            },
            ErrorKind::IndexOutOfRange => {
                TemplateError::IndexOutOfRange { name, line, col, input, message }
            }
            ErrorKind::Limit => TemplateError::Limit { name, line, col, message },
            ErrorKind::Other => TemplateError::Exec { name, line, col, input, message },
        }
    }

    /// Names of top-level inputs the template refers to (`.Foo`, `index . "Foo"` with a constant key, `$.Foo`).
    pub fn referenced_inputs(&self) -> BTreeSet<String> {
        refs::referenced_inputs(&self.trees, &self.root())
    }
}
