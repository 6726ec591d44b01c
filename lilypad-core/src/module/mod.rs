//! Modules: references, `lilypad_module.json.tmpl` rendering and the typed `ModuleSpec`.

pub mod reference;
pub mod spec;
pub mod template;

pub use reference::{ModuleRef, ReferenceError, module_id};
pub use spec::{ImageRef, ModuleError, ModuleSpec};
