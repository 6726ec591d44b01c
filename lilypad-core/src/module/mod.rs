//! Modules: references, `lilypad_module.json.tmpl` rendering and the typed `ModuleSpec`.

pub mod template;
