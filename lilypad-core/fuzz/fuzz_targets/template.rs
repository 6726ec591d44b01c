//! The Go `text/template` engine on arbitrary templates and inputs.
//!
//! Input: the template text, then optionally a NUL byte and the inputs as
//! `KEY=VALUE` lines (the seeds are real module templates in this shape).
//! Properties: parsing and rendering never panic; every error points at a
//! line and column inside the template; rendering is deterministic; the
//! missing inputs are sorted, unique and really missing; the rendered text
//! goes through `ModuleSpec::from_rendered` (the provider's next step)
//! without panicking.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use lilypad_core::module::{
    ModuleSpec,
    template::{Template, TemplateError},
};

const NAME: &str = "lilypad_module.json.tmpl";

fn split(data: &[u8]) -> (String, BTreeMap<String, String>) {
    let (src, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let inputs = String::from_utf8_lossy(rest)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("\\n", "\n")))
        .collect();
    (String::from_utf8_lossy(src).into_owned(), inputs)
}

fn check_position(src: &str, e: &TemplateError) {
    let lines = 1 + src.matches('\n').count();
    assert_eq!(e.name(), NAME, "{e}");
    assert!((1..=lines).contains(&e.line()), "line {} outside 1..={lines}: {e}", e.line());
    let line_len = src.split('\n').nth(e.line() - 1).map_or(0, |l| l.chars().count());
    assert!(
        (1..=line_len + 1).contains(&e.col()),
        "col {} outside 1..={}: {e}",
        e.col(),
        line_len + 1
    );
    // The message is what users read: formatting it must not panic either.
    let _ = e.to_string();
}

fuzz_target!(|data: &[u8]| {
    let (src, inputs) = split(data);
    let template = match Template::parse(NAME, &src) {
        Ok(t) => t,
        Err(e) => return check_position(&src, &e),
    };
    let _ = template.referenced_inputs();
    let first = template.render(&inputs);
    assert_eq!(first, template.render(&inputs), "rendering is not deterministic");
    match first {
        Ok(r) => {
            assert!(r.missing_inputs.windows(2).all(|w| w[0] < w[1]), "{:?}", r.missing_inputs);
            for m in &r.missing_inputs {
                assert!(!inputs.contains_key(m), "{m:?} is given but reported missing");
            }
            if let Err(e) = ModuleSpec::from_rendered(&r.text) {
                let _ = e.to_string();
            }
        }
        Err(e) => check_position(&src, &e),
    }
});
