//! The functions a template can call: Go's builtins (`funcs.go`) and
//! Lilypad's `subst`.
//!
//! Each function declares its Go parameter types, because Go checks and
//! converts arguments differently for `string`, `any` and `reflect.Value`
//! parameters (a missing input is an error for a `string` parameter, `nil` for
//! an `any` one, and an invalid value for a `reflect.Value` one).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fmt::{sprint, sprintf, sprintln};
use super::json::{DecodeError, decode_string};
use super::unicode::{decode_rune, is_print};
use super::value::{Bytes, Value};

/// A value with the input it came from, so errors can name the input.
#[derive(Debug, Clone)]
pub(super) struct Val {
    pub(super) v: Value,
    pub(super) input: Option<Arc<str>>,
}

impl Val {
    /// A value that comes from no input.
    pub(super) fn new(v: Value) -> Self {
        Self { v, input: None }
    }

    /// A value that keeps the input of `self`.
    fn derive(&self, v: Value) -> Self {
        Self { v, input: self.input.clone() }
    }
}

/// Go parameter types, as far as argument evaluation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    /// `any`: nil allowed, missing input becomes nil.
    Any,
    /// `reflect.Value`: anything, a missing input stays an invalid value.
    RValue,
    /// `string`: only a string.
    Str,
}

/// How an error of a function call is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FuncErrorKind {
    /// Argument of the wrong type for the function.
    WrongType,
    /// Index or slice bounds outside the value.
    IndexOutOfRange,
    /// The function itself failed (e.g. `subst` of a non-JSON input).
    Failed,
}

/// A function's error, pointing at the argument responsible when there is one.
#[derive(Debug, Clone)]
pub(super) struct FuncError {
    pub(super) kind: FuncErrorKind,
    pub(super) message: String,
    pub(super) arg: Option<usize>,
}

impl FuncError {
    fn new(kind: FuncErrorKind, message: impl Into<String>, arg: Option<usize>) -> Self {
        Self { kind, message: message.into(), arg }
    }
}

/// Input names looked up in the data but absent.
pub(super) type Missing = BTreeSet<String>;

type Native = fn(&[Val], &mut Missing) -> Result<Val, FuncError>;

/// How a function is run.
#[derive(Debug, Clone, Copy)]
pub(super) enum Imp {
    /// `and`: short-circuit, evaluated by the executor.
    And,
    /// `or`: short-circuit, evaluated by the executor.
    Or,
    /// `call`: needs the callee's source text, handled by the executor.
    Call,
    /// An ordinary function of its evaluated arguments.
    Native(Native),
}

/// A callable function with its Go signature.
#[derive(Debug)]
pub(super) struct Func {
    pub(super) name: &'static str,
    pub(super) fixed: &'static [Param],
    pub(super) variadic: Option<Param>,
    pub(super) imp: Imp,
}

use Param::{Any, RValue, Str};

static FUNCS: &[Func] = &[
    // Lilypad's helper, looked up first like Go's template FuncMap.
    Func { name: "subst", fixed: &[Str], variadic: Some(Str), imp: Imp::Native(subst) },
    Func { name: "and", fixed: &[RValue], variadic: Some(RValue), imp: Imp::And },
    Func { name: "call", fixed: &[RValue], variadic: Some(RValue), imp: Imp::Call },
    Func { name: "html", fixed: &[], variadic: Some(Any), imp: Imp::Native(html) },
    Func { name: "index", fixed: &[RValue], variadic: Some(RValue), imp: Imp::Native(index) },
    Func { name: "slice", fixed: &[RValue], variadic: Some(RValue), imp: Imp::Native(slice) },
    Func { name: "js", fixed: &[], variadic: Some(Any), imp: Imp::Native(js) },
    Func { name: "len", fixed: &[RValue], variadic: None, imp: Imp::Native(len) },
    Func { name: "not", fixed: &[RValue], variadic: None, imp: Imp::Native(not) },
    Func { name: "or", fixed: &[RValue], variadic: Some(RValue), imp: Imp::Or },
    Func { name: "print", fixed: &[], variadic: Some(Any), imp: Imp::Native(print) },
    Func { name: "printf", fixed: &[Str], variadic: Some(Any), imp: Imp::Native(printf) },
    Func { name: "println", fixed: &[], variadic: Some(Any), imp: Imp::Native(println) },
    Func { name: "urlquery", fixed: &[], variadic: Some(Any), imp: Imp::Native(urlquery) },
    Func { name: "eq", fixed: &[RValue], variadic: Some(RValue), imp: Imp::Native(eq) },
    Func { name: "ge", fixed: &[RValue, RValue], variadic: None, imp: Imp::Native(ge) },
    Func { name: "gt", fixed: &[RValue, RValue], variadic: None, imp: Imp::Native(gt) },
    Func { name: "le", fixed: &[RValue, RValue], variadic: None, imp: Imp::Native(le) },
    Func { name: "lt", fixed: &[RValue, RValue], variadic: None, imp: Imp::Native(lt) },
    Func { name: "ne", fixed: &[RValue, RValue], variadic: None, imp: Imp::Native(ne) },
];

/// Finds a function by name.
pub(super) fn lookup(name: &str) -> Option<&'static Func> {
    FUNCS.iter().find(|f| f.name == name)
}

fn bytes(v: &[u8]) -> Value {
    Value::str(v)
}

fn wrong_type(message: impl Into<String>, arg: usize) -> FuncError {
    FuncError::new(FuncErrorKind::WrongType, message, Some(arg))
}

// ------------------------------------------------------------------ subst

/// Lilypad's `subst(format string, jsonEncodedInputs ...string) string`: each
/// argument is JSON-decoded as a string, then `fmt.Sprintf(format, ...)`.
fn subst(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let format = str_of(&args[0]);
    let mut decoded = Vec::with_capacity(args.len() - 1);
    for (i, a) in args.iter().enumerate().skip(1) {
        match decode_string(&str_of(a)) {
            Ok(s) => decoded.push(Value::Str(Arc::from(s))),
            Err(e) => {
                let why = match e {
                    DecodeError::Syntax(m) => format!("not a JSON string ({m})"),
                    DecodeError::NotAString(kind) => format!("not a JSON string (a JSON {kind})"),
                };
                return Err(FuncError::new(FuncErrorKind::Failed, why, Some(i)));
            }
        }
    }
    Ok(Val::new(bytes(&sprintf(&format, &decoded))))
}

fn str_of(v: &Val) -> Bytes {
    match &v.v {
        Value::Str(s) => s.clone(),
        _ => Arc::from(&b""[..]),
    }
}

// ----------------------------------------------------------------- printing

fn print(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let vals: Vec<Value> = args.iter().map(|a| a.v.clone()).collect();
    Ok(Val::new(bytes(&sprint(&vals))))
}

fn println(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let vals: Vec<Value> = args.iter().map(|a| a.v.clone()).collect();
    Ok(Val::new(bytes(&sprintln(&vals))))
}

fn printf(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let format = str_of(&args[0]);
    let vals: Vec<Value> = args[1..].iter().map(|a| a.v.clone()).collect();
    Ok(Val::new(bytes(&sprintf(&format, &vals))))
}

/// Go's `evalArgs`: `fmt.Sprint` of the arguments, a nil printed as `<no value>`.
fn eval_args(args: &[Val]) -> Vec<u8> {
    if let [Val { v: Value::Str(s), .. }] = args {
        return s.to_vec();
    }
    let vals: Vec<Value> = args
        .iter()
        .map(|a| match &a.v {
            Value::Invalid => bytes(b"<no value>"),
            v => v.clone(),
        })
        .collect();
    sprint(&vals)
}

fn html(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let s = eval_args(args);
    let mut out = Vec::with_capacity(s.len());
    for &c in &s {
        match c {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            _ => out.push(c),
        }
    }
    Ok(Val::new(bytes(&out)))
}

fn js(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let s = eval_args(args);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let special = matches!(c, b'\\' | b'\'' | b'"' | b'<' | b'>' | b'&' | b'=')
            || !(b' '..0x80).contains(&c);
        if !special {
            out.push(c);
            i += 1;
            continue;
        }
        if c < 0x80 {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                _ => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 0xF)]);
                }
            }
            i += 1;
        } else {
            let (r, size) = decode_rune(&s[i..]);
            if is_print(r) {
                out.extend_from_slice(&s[i..i + size]);
            } else {
                out.extend_from_slice(format!("\\u{r:04X}").as_bytes());
            }
            i += size;
        }
    }
    Ok(Val::new(bytes(&out)))
}

fn urlquery(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let s = eval_args(args);
    let mut out = Vec::with_capacity(s.len());
    for &c in &s {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c);
        } else if c == b' ' {
            out.push(b'+');
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xF)]);
        }
    }
    Ok(Val::new(bytes(&out)))
}

// ------------------------------------------------------- index, slice, len

/// Go's `indexArg`: an integer index in `0..=cap`.
fn index_arg(index: &Val, cap: usize, arg: usize) -> Result<usize, FuncError> {
    let x: i64 = match &index.v {
        Value::Int(i) => *i,
        Value::Uint8(u) => i64::from(*u),
        Value::Invalid => return Err(wrong_type("cannot index slice/array with nil", arg)),
        v => {
            return Err(wrong_type(
                format!("cannot index slice/array with type {}", v.type_name()),
                arg,
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(FuncError::new(
            FuncErrorKind::IndexOutOfRange,
            format!("index out of range: {x}"),
            Some(arg),
        ));
    }
    Ok(x as usize)
}

fn index(args: &[Val], missing: &mut Missing) -> Result<Val, FuncError> {
    let mut item = args[0].clone();
    if matches!(item.v, Value::Invalid) {
        return Err(wrong_type("index of untyped nil", 0));
    }
    for (n, idx) in args.iter().enumerate().skip(1) {
        item = match &item.v {
            Value::Str(s) => {
                let x = index_arg(idx, s.len(), n)?;
                let Some(&b) = s.get(x) else {
                    return Err(FuncError::new(
                        FuncErrorKind::IndexOutOfRange,
                        format!("index out of range: {x}"),
                        Some(n),
                    ));
                };
                item.derive(Value::Uint8(b))
            }
            Value::Map(m) => {
                let key = match &idx.v {
                    Value::Str(k) => k.clone(),
                    Value::Invalid => {
                        return Err(wrong_type("value is nil; should be of type string", n));
                    }
                    v => {
                        return Err(wrong_type(
                            format!("value has type {}; should be string", v.type_name()),
                            n,
                        ));
                    }
                };
                let name: Arc<str> = Arc::from(String::from_utf8_lossy(&key).as_ref());
                match m.get(key.as_ref()) {
                    Some(v) => Val { v: Value::Str(v.clone()), input: Some(name) },
                    None => {
                        missing.insert(name.to_string());
                        Val { v: bytes(b""), input: Some(name) }
                    }
                }
            }
            v => {
                return Err(wrong_type(format!("can't index item of type {}", v.type_name()), 0));
            }
        };
    }
    Ok(item)
}

fn slice(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let item = &args[0];
    let indexes = &args[1..];
    let s = match &item.v {
        Value::Invalid => return Err(wrong_type("slice of untyped nil", 0)),
        _ if indexes.len() > 3 => {
            return Err(wrong_type(format!("too many slice indexes: {}", indexes.len()), 0));
        }
        Value::Str(s) => s,
        v => {
            return Err(wrong_type(format!("can't slice item of type {}", v.type_name()), 0));
        }
    };
    if indexes.len() == 3 {
        return Err(wrong_type("cannot 3-index slice a string", 0));
    }
    let mut idx = [0, s.len()];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, s.len(), i + 1)?;
    }
    if idx[0] > idx[1] {
        return Err(FuncError::new(
            FuncErrorKind::IndexOutOfRange,
            format!("invalid slice index: {} > {}", idx[0], idx[1]),
            Some(1),
        ));
    }
    Ok(item.derive(bytes(&s[idx[0]..idx[1]])))
}

fn len(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    match &args[0].v {
        Value::Str(s) => Ok(Val::new(Value::Int(s.len() as i64))),
        Value::Map(m) => Ok(Val::new(Value::Int(m.len() as i64))),
        Value::Invalid => Err(wrong_type("len of a missing value", 0)),
        v => Err(wrong_type(format!("len of type {}", v.type_name()), 0)),
    }
}

// -------------------------------------------------------- logic, comparison

fn not(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    Ok(Val::new(Value::Bool(!args[0].v.truth())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Complex,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value) -> Option<Kind> {
    Some(match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Uint8(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Complex(..) => Kind::Complex,
        Value::Str(_) => Kind::String,
        Value::Invalid | Value::Map(_) => return None,
    })
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint8(u) => i64::from(*u),
        _ => 0,
    }
}

fn incompatible(a: &Value, b: &Value, arg: usize) -> FuncError {
    wrong_type(
        format!("incompatible types for comparison: {} and {}", a.type_name(), b.type_name()),
        arg,
    )
}

fn eq_values(arg1: &Val, rest: &[Val]) -> Result<bool, FuncError> {
    if rest.is_empty() {
        return Err(FuncError::new(
            FuncErrorKind::WrongType,
            "missing argument for comparison",
            None,
        ));
    }
    let a = &arg1.v;
    let k1 = basic_kind(a);
    for (i, arg) in rest.iter().enumerate() {
        let b = &arg.v;
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Some(Kind::Int), Some(Kind::Uint)) | (Some(Kind::Uint), Some(Kind::Int)) => {
                    int_of(a) == int_of(b)
                }
                _ => {
                    if !matches!(a, Value::Invalid) && !matches!(b, Value::Invalid) {
                        return Err(incompatible(a, b, i + 1));
                    }
                    false
                }
            }
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Complex(r1, i1), Value::Complex(r2, i2)) => r1 == r2 && i1 == i2,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Uint8(x), Value::Uint8(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Map(_), Value::Map(_)) => {
                    return Err(wrong_type("non-comparable type map[string]string", i + 1));
                }
                // At least one is an invalid value (nil): equal when both are.
                _ => matches!(a, Value::Invalid) == matches!(b, Value::Invalid),
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt_values(a: &Val, b: &Val) -> Result<bool, FuncError> {
    let bad = |arg| wrong_type("invalid type for comparison", arg);
    let k1 = basic_kind(&a.v).ok_or_else(|| bad(0))?;
    let k2 = basic_kind(&b.v).ok_or_else(|| bad(1))?;
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(int_of(&a.v) < int_of(&b.v)),
            _ => Err(incompatible(&a.v, &b.v, 1)),
        };
    }
    Ok(match (&a.v, &b.v) {
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Uint8(x), Value::Uint8(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return Err(bad(0)),
    })
}

fn bool_val(b: bool) -> Result<Val, FuncError> {
    Ok(Val::new(Value::Bool(b)))
}

fn eq(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    bool_val(eq_values(&args[0], &args[1..])?)
}

fn ne(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    bool_val(!eq_values(&args[0], &args[1..])?)
}

fn lt(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    bool_val(lt_values(&args[0], &args[1])?)
}

fn le(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    let less = lt_values(&args[0], &args[1])?;
    bool_val(less || eq_values(&args[0], &args[1..])?)
}

fn gt(args: &[Val], m: &mut Missing) -> Result<Val, FuncError> {
    let le = le(args, m)?;
    bool_val(!le.v.truth())
}

fn ge(args: &[Val], _: &mut Missing) -> Result<Val, FuncError> {
    bool_val(!lt_values(&args[0], &args[1])?)
}
