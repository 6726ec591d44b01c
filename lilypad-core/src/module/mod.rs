//! Modules: references, `lilypad_module.json.tmpl` rendering and the typed `ModuleSpec`.

pub mod reference;
pub mod spec;
/// The Go `text/template` engine templates render with (crate `lilypad-gotmpl`).
pub use lilypad_gotmpl as template;

pub use reference::{ModuleRef, ReferenceError, module_id};
pub use spec::{ImageRef, ModuleError, ModuleSpec};
