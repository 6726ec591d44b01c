//! Which inputs a template refers to, found statically.
//!
//! An input is referred to by `.Name` (or `.Name.More`) where dot is the
//! input map, `$.Name`, and `index . "Name"` / `index $ "Name"` with a
//! constant key. Dot is the input map at the top level and in `if` bodies,
//! but not inside `with` or `range` bodies (there it is the value being
//! visited). Templates called with `{{template "t" .}}` are followed.
//! References through variables holding the map (`{{$m := .}}{{$m.X}}`) are
//! not tracked.

use std::collections::BTreeSet;

use super::ast::{Arg, List, Node, Pipe};
use super::parser::TreeSet;

#[derive(Clone, Copy)]
struct Scope {
    /// Dot is the input map.
    dot: bool,
    /// `$` is the input map.
    dollar: bool,
}

struct Refs<'t> {
    trees: &'t TreeSet,
    found: BTreeSet<String>,
    visited: BTreeSet<(Vec<u8>, bool)>,
}

/// Input names `root` (and the templates it calls) refer to.
pub(super) fn referenced_inputs(trees: &TreeSet, root: &List) -> BTreeSet<String> {
    let mut r = Refs { trees, found: BTreeSet::new(), visited: BTreeSet::new() };
    r.list(root, Scope { dot: true, dollar: true });
    r.found
}

/// Whether a pipeline evaluates to dot itself (`.`) or to `$`.
fn is_dot_or_dollar(pipe: &Pipe, scope: Scope) -> bool {
    match pipe.cmds.as_slice() {
        [cmd] => match cmd.args.as_slice() {
            [Arg::Dot(_)] => scope.dot,
            [Arg::Variable { idents, .. }] => idents.len() == 1 && idents[0] == "$" && scope.dollar,
            _ => false,
        },
        _ => false,
    }
}

impl Refs<'_> {
    fn list(&mut self, list: &List, scope: Scope) {
        for node in list {
            match node {
                Node::Text(_) | Node::Break | Node::Continue => {}
                Node::Action(p) => self.pipe(p, scope),
                Node::If(b) => {
                    self.pipe(&b.pipe, scope);
                    self.list(&b.list, scope);
                    if let Some(e) = &b.else_list {
                        self.list(e, scope);
                    }
                }
                Node::With(b) | Node::Range(b) => {
                    self.pipe(&b.pipe, scope);
                    let keeps_dot =
                        matches!(node, Node::With(_)) && is_dot_or_dollar(&b.pipe, scope);
                    self.list(&b.list, Scope { dot: keeps_dot, dollar: scope.dollar });
                    if let Some(e) = &b.else_list {
                        self.list(e, scope);
                    }
                }
                Node::Template { name, pipe, .. } => {
                    let root = pipe.as_ref().is_some_and(|p| is_dot_or_dollar(p, scope));
                    if let Some(p) = pipe {
                        self.pipe(p, scope);
                    }
                    if let Some(tree) = self.trees.get(name)
                        && self.visited.insert((name.clone(), root))
                    {
                        self.list(tree, Scope { dot: root, dollar: root });
                    }
                }
            }
        }
    }

    fn pipe(&mut self, pipe: &Pipe, scope: Scope) {
        for cmd in &pipe.cmds {
            if let [Arg::Identifier { name, .. }, item, Arg::Str { text, .. }, ..] =
                cmd.args.as_slice()
                && name == "index"
            {
                let item_is_map = match item {
                    Arg::Dot(_) => scope.dot,
                    Arg::Variable { idents, .. } => {
                        idents.len() == 1 && idents[0] == "$" && scope.dollar
                    }
                    _ => false,
                };
                if item_is_map {
                    self.found.insert(String::from_utf8_lossy(text).into_owned());
                }
            }
            for arg in &cmd.args {
                self.arg(arg, scope);
            }
        }
    }

    fn arg(&mut self, arg: &Arg, scope: Scope) {
        match arg {
            Arg::Field { idents, .. } => {
                if scope.dot
                    && let Some(first) = idents.first()
                {
                    self.found.insert(first.clone());
                }
            }
            Arg::Variable { idents, .. }
                if scope.dollar && idents.len() > 1 && idents[0] == "$" =>
            {
                self.found.insert(idents[1].clone());
            }
            Arg::Chain { node, .. } => self.arg(node, scope),
            Arg::Pipe(p) => self.pipe(p, scope),
            _ => {}
        }
    }
}
