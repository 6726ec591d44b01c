//! The evaluator: a port of Go's `text/template/exec.go`.
//!
//! It walks the tree with a dot value and a stack of variables, evaluating
//! pipelines command by command (the previous command's value becomes the
//! last argument of the next), with Go's rules for fields on maps, missing
//! keys, argument conversion, `and`/`or` short-circuit, `range` over maps (by
//! sorted key) and integers, `break`/`continue` and template calls.
//!
//! Unlike Go it bounds the work a template may do (steps, output size,
//! nesting), so that an untrusted template cannot hang or exhaust a provider.

use std::sync::Arc;

use super::ast::{Arg, Branch, Command, List, Node, Pipe};
use super::fmt::sprint;
use super::funcs::{Func, FuncErrorKind, Imp, Missing, Param, Val, lookup};
use super::parser::TreeSet;
use super::strconv::Number;
use super::value::{Inputs, Value};

/// Maximum number of evaluation steps (nodes walked and commands run).
pub(super) const MAX_STEPS: u64 = 1_000_000;
/// Maximum rendered size in bytes.
pub(super) const MAX_OUTPUT: usize = 16 << 20;
/// Maximum total size of the strings functions may produce (e.g. `printf`
/// with a huge width in a loop), so that work stays bounded even when
/// little of it reaches the output.
pub(super) const MAX_PRODUCED: usize = 64 << 20;
/// Maximum depth of nested control structures, pipelines and template calls
/// at run time (Go allows 100000 nested template calls).
pub(super) const MAX_DEPTH: usize = 100;

/// What went wrong during execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrorKind {
    /// A value of the wrong type, or a missing value where one is required.
    WrongType,
    /// Too many or too few arguments.
    ArgCount,
    /// A function failed.
    Function,
    /// An index or slice bound outside the value.
    IndexOutOfRange,
    /// A resource limit of this engine.
    Limit,
    /// Anything else (bad range, bad command, undefined template ...).
    Other,
}

/// An execution error at a byte offset.
#[derive(Debug, Clone)]
pub(super) struct ExecError {
    pub(super) pos: usize,
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    pub(super) input: Option<Arc<str>>,
    pub(super) function: Option<&'static str>,
}

type Result<T> = std::result::Result<T, ExecError>;

fn err<T>(pos: usize, kind: ErrorKind, message: impl Into<String>) -> Result<T> {
    Err(ExecError { pos, kind, message: message.into(), input: None, function: None })
}

fn err_input<T>(
    pos: usize,
    kind: ErrorKind,
    message: impl Into<String>,
    input: Option<Arc<str>>,
) -> Result<T> {
    Err(ExecError { pos, kind, message: message.into(), input, function: None })
}

/// Control flow out of a list: normal, or a `break`/`continue` on its way to
/// the enclosing `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Execution state.
pub(super) struct State<'t> {
    trees: &'t TreeSet,
    vars: Vec<(String, Val)>,
    pub(super) out: Vec<u8>,
    pub(super) missing: Missing,
    depth: usize,
    steps: u64,
    produced: usize,
}

/// Runs the template `root` on `data`.
pub(super) fn execute<'t>(
    trees: &'t TreeSet,
    root: &List,
    data: Inputs,
) -> std::result::Result<State<'t>, ExecError> {
    let dot = Val::new(Value::Map(data));
    let mut s = State {
        trees,
        vars: vec![("$".to_owned(), dot.clone())],
        out: Vec::new(),
        missing: Missing::new(),
        depth: 0,
        steps: 0,
        produced: 0,
    };
    s.walk(&dot, root)?;
    Ok(s)
}

impl State<'_> {
    fn step(&mut self, pos: usize) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err(
                pos,
                ErrorKind::Limit,
                format!("template execution exceeded {MAX_STEPS} steps"),
            );
        }
        Ok(())
    }

    fn enter(&mut self, pos: usize) -> Result<()> {
        self.depth += 1;

        if self.depth > MAX_DEPTH {
            return err(
                pos,
                ErrorKind::Limit,
                format!("template execution nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn write(&mut self, pos: usize, b: &[u8]) -> Result<()> {
        if self.out.len() + b.len() > MAX_OUTPUT {
            return err(
                pos,
                ErrorKind::Limit,
                format!("template output exceeds {MAX_OUTPUT} bytes"),
            );
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    // --------------------------------------------------------- variables

    fn set_var(&mut self, pos: usize, name: &str, value: Val) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => err(pos, ErrorKind::Other, format!("undefined variable: {name}")),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Val) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = value;
        }
    }

    fn var_value(&self, pos: usize, name: &str) -> Result<Val> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(pos, ErrorKind::Other, format!("undefined variable: {name}")),
        }
    }

    // ------------------------------------------------------------- walking

    fn walk(&mut self, dot: &Val, list: &List) -> Result<Flow> {
        for node in list {
            let flow = match node {
                Node::Text(t) => {
                    self.step(0)?;
                    self.write(0, t)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    self.step(pipe.pos)?;
                    let val = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print_value(pipe.pos, &val)?;
                    }
                    Flow::Normal
                }
                Node::If(b) => self.walk_if_or_with(dot, b, false)?,
                Node::With(b) => self.walk_if_or_with(dot, b, true)?,
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, pos: usize, val: &Val) -> Result<()> {
        match &val.v {
            Value::Invalid => self.write(pos, b"<no value>"),
            Value::Str(s) => {
                let s = s.clone();
                self.write(pos, &s)
            }
            v => {
                let b = sprint(std::slice::from_ref(v));
                self.write(pos, &b)
            }
        }
    }

    fn walk_if_or_with(&mut self, dot: &Val, b: &Branch, with: bool) -> Result<Flow> {
        self.step(b.pipe.pos)?;
        self.enter(b.pipe.pos)?;
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.v.truth() {
            if with { self.walk(&val, &b.list)? } else { self.walk(dot, &b.list)? }
        } else if let Some(else_list) = &b.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    /// One iteration of a range body; `Ok(false)` after a `break`.
    fn range_iteration(&mut self, b: &Branch, mark: usize, index: Val, elem: &Val) -> Result<bool> {
        let pos = b.pipe.pos;
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(pos, &decl[0], index.clone())?;
                } else {
                    self.set_var(pos, &decl[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(pos, &decl[1], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let flow = self.walk(elem, &b.list)?;
        self.vars.truncate(mark);
        Ok(flow != Flow::Break)
    }

    fn walk_range(&mut self, dot: &Val, b: &Branch) -> Result<Flow> {
        let pos = b.pipe.pos;
        self.step(pos)?;
        self.enter(pos)?;
        let mark0 = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        match &val.v {
            Value::Int(_) | Value::Uint8(_) => {
                if b.pipe.decl.len() > 1 {
                    let shown =
                        String::from_utf8_lossy(&sprint(std::slice::from_ref(&val.v))).into_owned();
                    return err(
                        pos,
                        ErrorKind::Other,
                        format!("can't use {shown} to iterate over more than one variable"),
                    );
                }
                let n = match &val.v {
                    Value::Int(i) => *i,
                    Value::Uint8(u) => i64::from(*u),
                    _ => 0,
                };
                for i in 0..n.max(0) {
                    ran = true;
                    self.step(pos)?;
                    let elem = match &val.v {
                        Value::Uint8(_) => Value::Uint8(i as u8),
                        _ => Value::Int(i),
                    };
                    if !self.range_iteration(
                        b,
                        mark,
                        Val::new(Value::Invalid),
                        &val_like(&val, elem),
                    )? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                let m = m.clone();
                for (k, v) in m.iter() {
                    ran = true;
                    self.step(pos)?;
                    let name: Arc<str> = Arc::from(String::from_utf8_lossy(k).as_ref());
                    let index = Val { v: Value::str(k), input: Some(name.clone()) };
                    let elem = Val { v: Value::Str(v.clone()), input: Some(name) };
                    if !self.range_iteration(b, mark, index, &elem)? {
                        break;
                    }
                }
            }
            Value::Invalid => {}
            v => {
                let shown = String::from_utf8_lossy(&sprint(std::slice::from_ref(v))).into_owned();
                return err_input(
                    pos,
                    ErrorKind::WrongType,
                    format!("range can't iterate over {shown}"),
                    val.input.clone(),
                );
            }
        }
        if !ran && let Some(else_list) = &b.else_list {
            // As in Go, a `break` in the else list only ends this range (Go's
            // walkRange recovers it), while a `continue` reaches the
            // enclosing range's iteration.
            let flow = self.walk(dot, else_list)?;
            self.vars.truncate(mark0);
            self.depth -= 1;
            return Ok(if flow == Flow::Continue { Flow::Continue } else { Flow::Normal });
        }
        self.vars.truncate(mark0);
        self.depth -= 1;
        Ok(Flow::Normal)
    }

    fn walk_template(
        &mut self,
        dot: &Val,
        pos: usize,
        name: &[u8],
        pipe: Option<&Pipe>,
    ) -> Result<()> {
        self.step(pos)?;
        let Some(tree) = self.trees.get(name).cloned() else {
            return err(
                pos,
                ErrorKind::Other,
                format!("template {:?} not defined", String::from_utf8_lossy(name)),
            );
        };
        self.enter(pos)?;
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Val::new(Value::Invalid),
        };
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
        self.walk(&new_dot, &tree)?;
        self.vars = saved;
        self.depth -= 1;
        Ok(())
    }

    // ---------------------------------------------------------- evaluation

    fn eval_pipeline(&mut self, dot: &Val, pipe: &Pipe) -> Result<Val> {
        self.enter(pipe.pos)?;
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            self.step(cmd.pos)?;
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_else(|| Val::new(Value::Invalid));
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe.pos, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        self.depth -= 1;
        Ok(value)
    }

    fn not_a_function(args: &[Arg], has_final: bool) -> Result<()> {
        if args.len() > 1 || has_final {
            let pos = args.first().map_or(0, Arg::pos);
            let shown = args.first().map(ToString::to_string).unwrap_or_default();
            return err(
                pos,
                ErrorKind::ArgCount,
                format!("can't give argument to non-function {shown}"),
            );
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val, cmd: &Command, final_: Option<Val>) -> Result<Val> {
        let Some(first) = cmd.args.first() else {
            return err(cmd.pos, ErrorKind::Other, "empty command");
        };
        match first {
            Arg::Field { pos, idents } => {
                return self.eval_field_chain(
                    dot.clone(),
                    *pos,
                    idents,
                    &cmd.args,
                    final_.is_some(),
                );
            }
            Arg::Chain { pos, node, fields } => {
                return self.eval_chain(dot, *pos, node, fields, &cmd.args, final_.is_some());
            }
            Arg::Identifier { pos, name } => {
                return self.eval_function(dot, *pos, name, &cmd.args[1..], final_);
            }
            Arg::Pipe(p) => {
                Self::not_a_function(&cmd.args, final_.is_some())?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { pos, idents } => {
                return self.eval_variable(*pos, idents, &cmd.args, final_.is_some());
            }
            _ => {}
        }
        Self::not_a_function(&cmd.args, final_.is_some())?;
        match first {
            Arg::Bool(_, b) => Ok(Val::new(Value::Bool(*b))),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(pos) => err(*pos, ErrorKind::Other, "nil is not a command"),
            Arg::Number(pos, n) => Ok(Val::new(ideal_constant(*pos, n)?)),
            Arg::Str { text, .. } => Ok(Val::new(Value::Str(text.clone()))),
            other => err(other.pos(), ErrorKind::Other, format!("can't evaluate command {other}")),
        }
    }

    /// Go's `evalFieldChain`; `has_final` says a pipeline value is passed in.
    fn eval_field_chain(
        &mut self,
        mut receiver: Val,
        pos: usize,
        idents: &[String],
        args: &[Arg],
        has_final: bool,
    ) -> Result<Val> {
        let n = idents.len();
        for ident in &idents[..n.saturating_sub(1)] {
            receiver = self.eval_field(pos, ident, false, &receiver)?;
        }
        match idents.last() {
            Some(last) => self.eval_field(pos, last, args.len() > 1 || has_final, &receiver),
            None => Ok(receiver),
        }
    }

    fn eval_field(
        &mut self,
        pos: usize,
        name: &str,
        has_args: bool,
        receiver: &Val,
    ) -> Result<Val> {
        match &receiver.v {
            Value::Invalid => Ok(Val::new(Value::Invalid)),
            Value::Map(m) => {
                let input: Arc<str> = Arc::from(name);
                if has_args {
                    return err_input(
                        pos,
                        ErrorKind::ArgCount,
                        format!("{name} is not a method but has arguments"),
                        Some(input),
                    );
                }
                match m.get(name.as_bytes()) {
                    Some(v) => Ok(Val { v: Value::Str(v.clone()), input: Some(input) }),
                    None => {
                        self.missing.insert(name.to_owned());
                        Ok(Val { v: Value::Invalid, input: Some(input) })
                    }
                }
            }
            v => err_input(
                pos,
                ErrorKind::WrongType,
                format!("can't evaluate field {name} in type {}", v.type_name()),
                receiver.input.clone(),
            ),
        }
    }

    fn eval_chain(
        &mut self,
        dot: &Val,
        pos: usize,
        node: &Arg,
        fields: &[String],
        args: &[Arg],
        has_final: bool,
    ) -> Result<Val> {
        if let Arg::Nil(_) = node {
            return err(pos, ErrorKind::Other, "indirection through explicit nil");
        }
        let receiver = match node {
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Identifier { pos, name } => self.eval_function(dot, *pos, name, &[], None)?,
            other => self.eval_arg(dot, Param::RValue, other)?,
        };
        self.eval_field_chain(receiver, pos, fields, args, has_final)
    }

    fn eval_variable(
        &mut self,
        pos: usize,
        idents: &[String],
        args: &[Arg],
        has_final: bool,
    ) -> Result<Val> {
        let value = self.var_value(pos, &idents[0])?;
        if idents.len() == 1 {
            Self::not_a_function(args, has_final)?;
            return Ok(value);
        }
        self.eval_field_chain(value, pos, &idents[1..], args, has_final)
    }

    fn eval_function(
        &mut self,
        dot: &Val,
        pos: usize,
        name: &str,
        args: &[Arg],
        final_: Option<Val>,
    ) -> Result<Val> {
        let Some(f) = lookup(name) else {
            return err(pos, ErrorKind::Other, format!("{name:?} is not a defined function"));
        };
        self.eval_call(dot, f, pos, args, final_)
    }

    fn eval_call(
        &mut self,
        dot: &Val,
        f: &'static Func,
        pos: usize,
        args: &[Arg],
        final_: Option<Val>,
    ) -> Result<Val> {
        let name = f.name;
        let num_in = args.len() + usize::from(final_.is_some());
        let num_fixed = if f.variadic.is_some() { f.fixed.len() } else { args.len() };
        let arg_count_err = |message: String| {
            Err(ExecError {
                pos,
                kind: ErrorKind::ArgCount,
                message,
                input: None,
                function: Some(name),
            })
        };
        if f.variadic.is_some() {
            if num_in < f.fixed.len() {
                return arg_count_err(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    f.fixed.len(),
                    args.len()
                ));
            }
        } else if num_in != f.fixed.len() {
            return arg_count_err(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                f.fixed.len()
            ));
        }

        if let Imp::And | Imp::Or = f.imp {
            let is_or = matches!(f.imp, Imp::Or);
            let mut v = Val::new(Value::Invalid);
            for a in args {
                v = self.eval_arg(dot, Param::RValue, a)?;
                if v.v.truth() == is_or {
                    return Ok(v);
                }
            }
            if let Some(fin) = final_ {
                v = fin;
            }
            return Ok(v);
        }

        let mut argv: Vec<Val> = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, f.fixed[i], &args[i])?);
            i += 1;
        }
        if let Some(kind) = f.variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, kind, &args[i])?);
                i += 1;
            }
        }
        if let Some(fin) = final_ {
            let kind = match f.variadic {
                Some(variadic) => {
                    if num_in - 1 < f.fixed.len() {
                        f.fixed[num_in - 1]
                    } else {
                        variadic
                    }
                }
                None => f.fixed[f.fixed.len() - 1],
            };
            argv.push(validate(pos, fin, kind)?);
        }

        let Imp::Native(imp) = f.imp else {
            // `call` (and/or returned above): there are no function values in
            // a template's data, so Go's call always fails; say how.
            {
                let callee = &argv[0];
                let message = match &callee.v {
                    Value::Invalid => "call of nil".to_owned(),
                    v => {
                        let shown = args.first().map_or_else(
                            || {
                                String::from_utf8_lossy(&sprint(std::slice::from_ref(v)))
                                    .into_owned()
                            },
                            ToString::to_string,
                        );
                        format!("non-function {shown} of type {}", v.type_name())
                    }
                };
                return Err(ExecError {
                    pos,
                    kind: ErrorKind::Function,
                    message,
                    input: callee.input.clone(),
                    function: Some(name),
                });
            }
        };
        let result = imp(&argv, &mut self.missing);
        if let Ok(Val { v: Value::Str(s), .. }) = &result {
            self.produced += s.len();
            if self.produced > MAX_PRODUCED {
                return err(
                    pos,
                    ErrorKind::Limit,
                    format!("template functions produced more than {MAX_PRODUCED} bytes"),
                );
            }
        }
        result.map_err(|e| {
            let input = e
                .arg
                .and_then(|a| argv.get(a))
                .and_then(|v| v.input.clone())
                .or_else(|| argv.iter().find_map(|v| v.input.clone()));
            let kind = match e.kind {
                FuncErrorKind::WrongType => ErrorKind::WrongType,
                FuncErrorKind::IndexOutOfRange => ErrorKind::IndexOutOfRange,
                FuncErrorKind::Failed => ErrorKind::Function,
            };
            ExecError { pos, kind, message: e.message, input, function: Some(name) }
        })
    }

    fn eval_arg(&mut self, dot: &Val, kind: Param, arg: &Arg) -> Result<Val> {
        let pos = arg.pos();
        match arg {
            Arg::Dot(_) => return validate(pos, dot.clone(), kind),
            Arg::Nil(_) => {
                return match kind {
                    Param::Any | Param::RValue => Ok(Val::new(Value::Invalid)),
                    Param::Str => err(pos, ErrorKind::WrongType, "cannot assign nil to string"),
                };
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_chain(dot.clone(), pos, idents, &[], false)?;
                return validate(pos, v, kind);
            }
            Arg::Variable { idents, .. } => {
                let v = self.eval_variable(pos, idents, &[], false)?;
                return validate(pos, v, kind);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return validate(pos, v, kind);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, pos, name, &[], None)?;
                return validate(pos, v, kind);
            }
            Arg::Chain { node, fields, .. } => {
                let v = self.eval_chain(dot, pos, node, fields, &[], false)?;
                return validate(pos, v, kind);
            }
            _ => {}
        }
        match kind {
            Param::Str => match arg {
                Arg::Str { text, .. } => Ok(Val::new(Value::Str(text.clone()))),
                other => err(pos, ErrorKind::WrongType, format!("expected string; found {other}")),
            },
            Param::Any | Param::RValue => match arg {
                Arg::Bool(_, b) => Ok(Val::new(Value::Bool(*b))),
                Arg::Number(_, n) => Ok(Val::new(ideal_constant(pos, n)?)),
                Arg::Str { text, .. } => Ok(Val::new(Value::Str(text.clone()))),
                other => {
                    err(pos, ErrorKind::Other, format!("can't handle {other} for arg of type any"))
                }
            },
        }
    }
}

fn val_like(template: &Val, v: Value) -> Val {
    Val { v, input: template.input.clone() }
}

/// Go's `validateType` for the parameter kinds of our functions.
fn validate(pos: usize, val: Val, kind: Param) -> Result<Val> {
    match kind {
        Param::Any | Param::RValue => Ok(val),
        Param::Str => match &val.v {
            Value::Str(_) => Ok(val),
            Value::Invalid => {
                let message = match &val.input {
                    Some(_) => "the input is missing; a string is needed here".to_owned(),
                    None => "invalid value; expected string".to_owned(),
                };
                err_input(pos, ErrorKind::WrongType, message, val.input)
            }
            v => err_input(
                pos,
                ErrorKind::WrongType,
                format!("wrong type for value; expected string; got {}", v.type_name()),
                val.input.clone(),
            ),
        },
    }
}

/// Go's `idealConstant`: the type a number literal takes with no context.
fn ideal_constant(pos: usize, n: &Number) -> Result<Value> {
    let t = n.text.as_bytes();
    let is_hex_int = t.len() > 2
        && t[0] == b'0'
        && (t[1] == b'x' || t[1] == b'X')
        && !n.text.contains(['p', 'P']);
    let is_rune_int = t.first() == Some(&b'\'');
    if n.is_complex {
        return Ok(Value::Complex(n.complex.0, n.complex.1));
    }
    if n.is_float && !is_hex_int && !is_rune_int && n.text.contains(['.', 'e', 'E', 'p', 'P']) {
        return Ok(Value::Float(n.float));
    }
    if n.is_int {
        return Ok(Value::Int(n.int));
    }
    if n.is_uint {
        return err(pos, ErrorKind::WrongType, format!("{} overflows int", n.text));
    }
    Ok(Value::Invalid)
}
