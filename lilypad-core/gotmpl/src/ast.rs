//! The parse tree, shaped like Go's `text/template/parse` nodes.
//!
//! Every node keeps the byte offset of its source so execution errors can name
//! a line and column.

use std::fmt;

use super::strconv::Number;
use super::value::Bytes;

/// A sequence of nodes (Go's `ListNode`).
pub(super) type List = Vec<Node>;

/// A top-level or nested element of a template.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// Plain text, copied to the output.
    Text(Vec<u8>),
    /// `{{pipeline}}`: printed unless it declares variables.
    Action(Pipe),
    /// `{{if}}`.
    If(Box<Branch>),
    /// `{{range}}`.
    Range(Box<Branch>),
    /// `{{with}}`.
    With(Box<Branch>),
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
    Template { pos: usize, name: Vec<u8>, pipe: Option<Pipe> },
    /// `{{break}}` inside a range.
    Break,
    /// `{{continue}}` inside a range.
    Continue,
}

/// The common shape of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub(super) pipe: Pipe,
    pub(super) list: List,
    pub(super) else_list: Option<List>,
}

/// A pipeline, with the variables it declares or assigns.
#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) pos: usize,
    pub(super) is_assign: bool,
    pub(super) decl: Vec<String>,
    pub(super) cmds: Vec<Command>,
}

/// One command of a pipeline: a function, field or method with its arguments,
/// or a single operand.
#[derive(Debug, Clone)]
pub(super) struct Command {
    pub(super) pos: usize,
    pub(super) args: Vec<Arg>,
}

/// An operand (Go's argument node types).
#[derive(Debug, Clone)]
pub(super) enum Arg {
    /// `true` / `false`.
    Bool(usize, bool),
    /// `.`
    Dot(usize),
    /// `nil`
    Nil(usize),
    /// A number or character constant.
    Number(usize, Box<Number>),
    /// A quoted or raw string.
    Str { pos: usize, quoted: String, text: Bytes },
    /// `.A.B`
    Field { pos: usize, idents: Vec<String> },
    /// `$x.A` (`idents[0]` is the variable).
    Variable { pos: usize, idents: Vec<String> },
    /// A function name.
    Identifier { pos: usize, name: String },
    /// `(pipeline).A.B`
    Chain { pos: usize, node: Box<Self>, fields: Vec<String> },
    /// `(pipeline)`
    Pipe(Box<Pipe>),
}

impl Arg {
    /// Byte offset of the operand.
    pub(super) fn pos(&self) -> usize {
        match self {
            Self::Bool(p, _) | Self::Dot(p) | Self::Nil(p) | Self::Number(p, _) => *p,
            Self::Str { pos, .. }
            | Self::Field { pos, .. }
            | Self::Variable { pos, .. }
            | Self::Identifier { pos, .. }
            | Self::Chain { pos, .. } => *pos,
            Self::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(_, b) => write!(f, "{b}"),
            Self::Dot(_) => f.write_str("."),
            Self::Nil(_) => f.write_str("nil"),
            Self::Number(_, n) => f.write_str(&n.text),
            Self::Str { quoted, .. } => f.write_str(quoted),
            Self::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Self::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Self::Identifier { name, .. } => f.write_str(name),
            Self::Chain { node, fields, .. } => {
                if matches!(**node, Self::Pipe(_)) {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Self::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if matches!(a, Arg::Pipe(_)) {
                write!(f, "({a})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}
