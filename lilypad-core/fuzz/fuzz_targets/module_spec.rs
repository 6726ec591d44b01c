//! Module spec parsing: the text a module template rendered to, as a provider
//! reads it (both published shapes: `job.Spec.Docker` and `job.Spec.EngineSpec`),
//! plus image and module references.
//!
//! Input: the rendered text. Properties: nothing panics; an accepted spec has
//! an image that prints and re-parses to itself, absolute output and input
//! paths without `..`, at least one output, a timeout of one second to one
//! year and well-formed environment names; the spec round-trips through its
//! own JSON. The same bytes as an image reference round-trip through
//! `Display`, and as a module reference, a git reference re-parses from its
//! URL and ref to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lilypad_core::module::{ImageRef, ModuleRef, ModuleSpec};

fn inside(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|s| s == "..")
}

fn image(s: &str) {
    if let Ok(i) = ImageRef::parse(s) {
        let text = i.to_string();
        assert_eq!(ImageRef::parse(&text).as_ref(), Ok(&i), "{s:?} printed as {text:?}");
    }
}

fn module_ref(s: &str) {
    match ModuleRef::parse(s) {
        Ok(ModuleRef::Git { url, git_ref }) => {
            assert!(url.starts_with("https://") || url.starts_with("http://"), "{url}");
            let again = ModuleRef::parse(&format!("{url}:{git_ref}"));
            assert_eq!(again, Ok(ModuleRef::Git { url, git_ref }), "from {s:?}");
        }
        Ok(ModuleRef::Local { path }) => assert!(!path.is_empty()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    image(&text);
    module_ref(&text);
    let spec = match ModuleSpec::from_rendered(&text) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    image(&spec.image.to_string());
    assert!(!spec.outputs.is_empty(), "no outputs");
    for o in &spec.outputs {
        assert!(inside(&o.path) && !o.name.is_empty(), "output {o:?}");
    }
    for f in &spec.input_files {
        assert!(inside(&f.path), "input file {f:?}");
    }
    assert!((1..=31_536_000).contains(&spec.timeout_secs), "timeout {}", spec.timeout_secs);
    for (k, _) in &spec.env {
        assert!(!k.is_empty() && !k.contains(char::is_whitespace) && !k.contains('='), "env {k:?}");
    }
    let json = serde_json::to_string(&spec).expect("a spec serialises");
    let back: ModuleSpec = serde_json::from_str(&json).expect("a spec's JSON parses");
    assert_eq!(back, spec, "JSON round trip: {json}");
});
