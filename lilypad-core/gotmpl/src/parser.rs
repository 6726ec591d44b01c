//! The parser: a port of Go's `text/template/parse/parse.go`, building the
//! tree set (the main template plus every `{{define}}` and `{{block}}`).
//!
//! It keeps Go's grammar decisions, including the ones that only show in
//! error cases: variables are checked at parse time, function names must be
//! known, `else if` / `else with` chains, `break`/`continue` only inside
//! `range`, non-executable commands after a `|`, and `{{define}}` only at the
//! top level.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ast::{Arg, Branch, Command, List, Node, Pipe};
use super::lexer::{Kind, Token};
use super::strconv::{Number, unquote};
use super::unicode::{decode_rune, is_space};

/// Nesting limit for parentheses and control structures. Go allows 10000
/// nested parentheses and unbounded control nesting; a limit keeps the
/// recursive parser and evaluator far from the stack's end on any input.
pub(super) const MAX_NESTING: usize = 50;

/// A parse error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParseError {
    /// Any syntax error.
    Syntax { pos: usize, message: String },
    /// A call of a function that does not exist.
    UnknownFunction { pos: usize, name: String },
}

type Result<T> = std::result::Result<T, ParseError>;

/// What `textOrAction` found: a node, or the `{{end}}`/`{{else}}` closing a list.
enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}

impl Item {
    fn describe(&self) -> &'static str {
        match self {
            Self::End(_) => "{{end}}",
            Self::Else(_) => "{{else}}",
            Self::Node(_) => "node",
        }
    }
}

/// The parsed templates by name.
pub(super) type TreeSet = BTreeMap<Vec<u8>, Arc<List>>;

struct Parser<'f> {
    tokens: Vec<Token>,
    idx: usize,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    trees: TreeSet,
    has_function: &'f dyn Fn(&str) -> bool,
}

/// Parses `tokens` into the tree set; the main template is stored under `name`.
pub(super) fn parse(
    name: &[u8],
    tokens: Vec<Token>,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<TreeSet> {
    let mut p = Parser {
        tokens,
        idx: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        nesting: 0,
        trees: TreeSet::new(),
        has_function,
    };
    let root = p.parse_top()?;
    p.add(name, root, 0)?;
    Ok(p.trees)
}

/// Go's `parse.IsEmptyTree`: only whitespace text.
fn is_empty_tree(list: &List) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => {
            let mut i = 0;
            while i < t.len() {
                let (r, w) = decode_rune(&t[i..]);
                if !is_space(r) {
                    return false;
                }
                i += w;
            }
            true
        }
        _ => false,
    })
}

impl Parser<'_> {
    // ---------------------------------------------------------- token stream

    fn eof_token(&self) -> Token {
        Token { kind: Kind::Eof, val: String::new(), pos: self.tokens.last().map_or(0, |t| t.pos) }
    }

    fn next(&mut self) -> Token {
        let t = self.tokens.get(self.idx).cloned().unwrap_or_else(|| self.eof_token());
        if self.idx < self.tokens.len() {
            self.idx += 1;
        }
        t
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> Token {
        let t = self.next();
        self.backup();
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn expect(&mut self, kind: Kind, context: &str) -> Result<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn unexpected(&self, t: &Token, context: &str) -> ParseError {
        if t.kind == Kind::Error {
            return ParseError::Syntax { pos: t.pos, message: t.val.clone() };
        }
        ParseError::Syntax {
            pos: t.pos,
            message: format!("unexpected {} in {context}", t.describe()),
        }
    }

    fn syntax(pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::Syntax { pos, message: message.into() }
    }

    fn enter(&mut self, pos: usize) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(Self::syntax(
                pos,
                format!("template nests deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    // ------------------------------------------------------------- tree set

    fn add(&mut self, name: &[u8], root: List, pos: usize) -> Result<()> {
        match self.trees.get(name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return Err(Self::syntax(
                        pos,
                        format!(
                            "template: multiple definition of template {:?}",
                            String::from_utf8_lossy(name)
                        ),
                    ));
                }
            }
            _ => {
                self.trees.insert(name.to_vec(), Arc::new(root));
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------- grammar

    fn parse_top(&mut self) -> Result<List> {
        let mut root = List::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let delim_idx = self.idx;
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = delim_idx;
            }
            match self.text_or_action()? {
                Item::Node(n) => root.push(n),
                item @ (Item::End(pos) | Item::Else(pos)) => {
                    return Err(Self::syntax(pos, format!("unexpected {}", item.describe())));
                }
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> Result<()> {
        let context = "define clause";
        let name_tok = self.next_non_space();
        if !matches!(name_tok.kind, Kind::String | Kind::RawString) {
            return Err(self.unexpected(&name_tok, context));
        }
        let name =
            unquote(&name_tok.val).ok_or_else(|| Self::syntax(name_tok.pos, "invalid syntax"))?;
        self.expect(Kind::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter(name_tok.pos)?;
        let (root, end) = self.item_list()?;
        self.leave();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let Item::Else(pos) = end {
            return Err(Self::syntax(pos, format!("unexpected {} in {context}", end.describe())));
        }
        self.add(&name, root, name_tok.pos)
    }

    fn item_list(&mut self) -> Result<(List, Item)> {
        let mut list = List::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        let pos = self.peek().pos;
        Err(Self::syntax(pos, "unexpected EOF"))
    }

    fn text_or_action(&mut self) -> Result<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Text => Ok(Item::Node(Node::Text(t.val.into_bytes()))),
            Kind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> Result<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Block => return self.block_control(t.pos).map(Item::Node),
            Kind::Break | Kind::Continue => {
                let name = if t.kind == Kind::Break { "{{break}}" } else { "{{continue}}" };
                let end = self.next_non_space();
                if end.kind != Kind::RightDelim {
                    return Err(self.unexpected(&end, name));
                }
                if self.range_depth == 0 {
                    return Err(Self::syntax(t.pos, format!("{name} outside {{{{range}}}}")));
                }
                return Ok(Item::Node(if t.kind == Kind::Break {
                    Node::Break
                } else {
                    Node::Continue
                }));
            }
            Kind::Else => return self.else_control(),
            Kind::End => {
                let end = self.expect(Kind::RightDelim, "end")?;
                return Ok(Item::End(end.pos));
            }
            Kind::If => {
                return self.branch_control("if", t.pos).map(|b| Item::Node(Node::If(b)));
            }
            Kind::Range => {
                return self.branch_control("range", t.pos).map(|b| Item::Node(Node::Range(b)));
            }
            Kind::Template => return self.template_control().map(Item::Node),
            Kind::With => {
                return self.branch_control("with", t.pos).map(|b| Item::Node(Node::With(b)));
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn else_control(&mut self) -> Result<Item> {
        let peek = self.peek_non_space();
        if matches!(peek.kind, Kind::If | Kind::With) {
            return Ok(Item::Else(peek.pos));
        }
        let t = self.expect(Kind::RightDelim, "else")?;
        Ok(Item::Else(t.pos))
    }

    fn branch_control(&mut self, context: &str, pos: usize) -> Result<Box<Branch>> {
        self.enter(pos)?;
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Item::Else(_) = next {
            let peek = self.peek();
            if context == "if" && peek.kind == Kind::If {
                self.next();
                let b = self.branch_control("if", peek.pos)?;
                else_list = Some(vec![Node::If(b)]);
            } else if context == "with" && peek.kind == Kind::With {
                self.next();
                let b = self.branch_control("with", peek.pos)?;
                else_list = Some(vec![Node::With(b)]);
            } else {
                let (list, next) = self.item_list()?;
                if let Item::Else(p) = next {
                    return Err(Self::syntax(
                        p,
                        format!("expected end; found {}", next.describe()),
                    ));
                }
                else_list = Some(list);
            }
        }
        self.vars.truncate(vars_len);
        self.leave();
        Ok(Box::new(Branch { pipe, list, else_list }))
    }

    fn template_name(&self, t: &Token, context: &str) -> Result<Vec<u8>> {
        match t.kind {
            Kind::String | Kind::RawString => {
                unquote(&t.val).ok_or_else(|| Self::syntax(t.pos, "invalid syntax"))
            }
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn block_control(&mut self, pos: usize) -> Result<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter(pos)?;
        let (root, end) = self.item_list()?;
        self.leave();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let Item::Else(p) = end {
            return Err(Self::syntax(p, format!("unexpected {} in {context}", end.describe())));
        }
        self.add(&name, root, t.pos)?;
        Ok(Node::Template { pos: t.pos, name, pipe: Some(pipe) })
    }

    fn template_control(&mut self) -> Result<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, Kind::RightDelim)?);
        }
        Ok(Node::Template { pos: t.pos, name, pipe })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> Result<Pipe> {
        let start = self.peek_non_space();
        let mut pipe =
            Pipe { pos: start.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        'decls: loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break 'decls;
            }
            let v_idx = self.idx;
            self.next();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                }
                Kind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Kind::Variable | Kind::RightDelim | Kind::RightParen => continue 'decls,
                            _ => {
                                return Err(Self::syntax(
                                    next.pos,
                                    "range can only initialize variables",
                                ));
                            }
                        }
                    }
                    return Err(Self::syntax(
                        next.pos,
                        format!("too many declarations in {context}"),
                    ));
                }
                _ => self.idx = v_idx,
            }
            break 'decls;
        }
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                self.check_pipeline(&pipe, context, t.pos)?;
                return Ok(pipe);
            }
            match t.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> Result<()> {
        if pipe.cmds.is_empty() {
            return Err(Self::syntax(pos, format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. })
            ) {
                return Err(Self::syntax(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(Self::syntax(pos, "empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            let f = self.next();
            fields.push(f.val[1..].to_owned());
        }
        Ok(Some(match node {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { pos, mut idents } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(Self::syntax(
                    chain_pos,
                    format!("unexpected . after term {:?}", node.to_string()),
                ));
            }
            other => Arg::Chain { pos: other.pos(), node: Box::new(other), fields },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let t = self.next_non_space();
        let arg = match t.kind {
            Kind::Identifier => {
                if !(self.has_function)(&t.val) {
                    return Err(ParseError::UnknownFunction { pos: t.pos, name: t.val });
                }
                Arg::Identifier { pos: t.pos, name: t.val }
            }
            Kind::Dot => Arg::Dot(t.pos),
            Kind::Nil => Arg::Nil(t.pos),
            Kind::Variable => {
                if !self.vars.contains(&t.val) {
                    return Err(Self::syntax(t.pos, format!("undefined variable {:?}", t.val)));
                }
                Arg::Variable { pos: t.pos, idents: vec![t.val] }
            }
            Kind::Field => Arg::Field { pos: t.pos, idents: vec![t.val[1..].to_owned()] },
            Kind::Bool => Arg::Bool(t.pos, t.val == "true"),
            Kind::CharConstant | Kind::Complex | Kind::Number => {
                let n = match t.kind {
                    Kind::CharConstant => Number::from_char(&t.val),
                    Kind::Complex => Number::from_complex(&t.val),
                    _ => Number::parse(&t.val),
                };
                let n = n.map_err(|m| Self::syntax(t.pos, m))?;
                Arg::Number(t.pos, Box::new(n))
            }
            Kind::LeftParen => {
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.leave();
                Arg::Pipe(Box::new(pipe))
            }
            Kind::String | Kind::RawString => {
                let text = unquote(&t.val).ok_or_else(|| Self::syntax(t.pos, "invalid syntax"))?;
                Arg::Str { pos: t.pos, quoted: t.val, text: Arc::from(text) }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }
}
