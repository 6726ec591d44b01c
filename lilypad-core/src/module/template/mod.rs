//! Go `text/template` semantics for `lilypad_module.json.tmpl`.
