//! Values a template computes with: the subset of Go's reflect values that can
//! arise from a `map[string]string`, literals and the builtin functions.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A Go string: bytes, not necessarily UTF-8.
pub(super) type Bytes = Arc<[u8]>;

/// The data a template runs on: Go's `map[string]string` of JSON-encoded
/// inputs, ordered by key bytes as Go's `fmtsort` orders string keys.
pub(super) type Inputs = Arc<BTreeMap<Vec<u8>, Bytes>>;

/// One value. `Invalid` is Go's zero `reflect.Value`: what a missing map key
/// yields (printed as `<no value>`), and the untyped `nil` a function with an
/// `any` parameter receives for it.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// Go's invalid `reflect.Value` (missing key, untyped nil).
    Invalid,
    /// `bool`.
    Bool(bool),
    /// `int` (64-bit, as on the platforms Lilypad runs on).
    Int(i64),
    /// `uint8`, what indexing a string yields.
    Uint8(u8),
    /// `float64`.
    Float(f64),
    /// `complex128`.
    Complex(f64, f64),
    /// `string`.
    Str(Bytes),
    /// `map[string]string`, the template data.
    Map(Inputs),
}

impl Value {
    /// A string value from bytes.
    pub(super) fn str(b: &[u8]) -> Self {
        Self::Str(Arc::from(b))
    }

    /// Go's type name, as `%T` and error messages print it.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Self::Invalid => "<nil>",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Uint8(_) => "uint8",
            Self::Float(_) => "float64",
            Self::Complex(..) => "complex128",
            Self::Str(_) => "string",
            Self::Map(_) => "map[string]string",
        }
    }

    /// Go's `isTrue`: the zero value of each type is false.
    pub(super) fn truth(&self) -> bool {
        match self {
            Self::Invalid => false,
            Self::Bool(b) => *b,
            Self::Int(i) => *i != 0,
            Self::Uint8(u) => *u != 0,
            Self::Float(f) => *f != 0.0,
            Self::Complex(re, im) => *re != 0.0 || *im != 0.0,
            Self::Str(s) => !s.is_empty(),
            Self::Map(m) => !m.is_empty(),
        }
    }
}
