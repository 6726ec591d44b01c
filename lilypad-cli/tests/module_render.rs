//! `lilypad-cli module render`, run as a user would: the real binary on real files.

use std::{fs, path::Path, process::Command};

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run lilypad-cli");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn module(dir: &Path, template: &str) -> String {
    fs::write(dir.join("lilypad_module.json.tmpl"), template).expect("write template");
    dir.to_str().expect("utf-8 temp path").to_owned()
}

#[test]
fn renders_the_cowsay_example_readably() {
    let (ok, out, err) = cli(&["module", "render", "examples/modules/cowsay", "-i", "Message=moo"]);
    assert!(ok, "{err}");
    assert!(out.contains("image:        lilypad-example/cowsay:0.1.0"), "{out}");
    assert!(out.contains("entrypoint:   /bin/cowsay moo"), "{out}");
    assert!(out.contains("network:      none"), "{out}");
    // Cow is optional in the template, so its absence is reported but harmless.
    assert!(err.contains("input \"Cow\""), "{err}");
}

#[test]
fn json_output_carries_the_spec() {
    let (ok, out, err) = cli(&[
        "module",
        "render",
        "examples/modules/cowsay",
        "-i",
        "Message=a=b, \"q\" ! ünï 🐄",
        "-i",
        "Cow=tux",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "no warning when every input is given: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entrypoint"][1], "a=b, \"q\" ! ünï 🐄");
    assert_eq!(v["env"][0], serde_json::json!(["COW", "tux"]));
    assert_eq!(v["resources"]["cpu_millicores"], 500);
    assert_eq!(v["timeout_secs"], 60);
}

#[test]
fn raw_output_is_the_rendered_text_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // Not JSON at all: --raw must still print it, untouched, trailing space and all.
    let m = module(dir.path(), "say {{.Word}} \u{2028}<&> \n");
    let (ok, out, err) = cli(&["module", "render", &m, "-i", "Word=<hi>", "--raw"]);
    assert!(ok, "{err}");
    // Go's encoding/json escapes <, > and &.
    assert_eq!(out, "say \"\\u003chi\\u003e\" \u{2028}<&> \n");
}

#[test]
fn missing_input_renders_as_go_does_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(dir.path(), "{{.Missing}}");
    let (ok, out, err) = cli(&["module", "render", &m, "--raw"]);
    assert!(ok, "{err}");
    assert_eq!(out, "<no value>");
    assert!(err.contains("warning: the template uses input \"Missing\""), "{err}");
}

#[test]
fn template_errors_exit_non_zero_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(dir.path(), "{\n  \"a\": {{ nosuch .X }}\n}");
    let (ok, out, err) = cli(&["module", "render", &m]);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(err.contains("lilypad_module.json.tmpl:2:"), "{err}");
    assert!(err.contains("nosuch"), "{err}");

    let m = module(dir.path(), "{{ if .X }}unclosed");
    let (ok, _, err) = cli(&["module", "render", &m]);
    assert!(!ok);
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn invalid_json_points_at_the_rendered_position() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(dir.path(), "{\n  \"job\": {\"Spec\": \"{{.X}}\"}\n}");
    let (ok, _, err) = cli(&["module", "render", &m, "-i", "X=y"]);
    assert!(!ok);
    assert!(err.contains("not valid JSON at line 2, column"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn bad_inputs_and_paths_are_clear_errors() {
    let (ok, _, err) = cli(&["module", "render", "examples/modules/cowsay", "-i", "Message"]);
    assert!(!ok);
    assert!(err.contains("has no '='"), "{err}");
    let (ok, _, err) =
        cli(&["module", "render", "examples/modules/cowsay", "-i", "A=1", "-i", "A=2"]);
    assert!(!ok);
    assert!(err.contains("given twice"), "{err}");
    let (ok, _, err) = cli(&["module", "render", "examples"]);
    assert!(!ok);
    assert!(err.contains("not a module"), "{err}");
    let (ok, _, err) = cli(&["module", "render", "no/such/dir"]);
    assert!(!ok);
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn oversized_and_binary_templates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.tmpl");
    fs::write(&big, vec![b' '; 2 << 20]).unwrap();
    let (ok, _, err) = cli(&["module", "render", big.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("limit"), "{err}");
    let bin = dir.path().join("bin.tmpl");
    fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
    let (ok, _, err) = cli(&["module", "render", bin.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not UTF-8"), "{err}");
}

#[test]
fn every_example_module_renders_and_has_its_image_build() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/modules"));
    let mut seen = Vec::new();
    for entry in fs::read_dir(root).expect("examples/modules") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().expect("name").to_str().expect("utf-8").to_owned();
        for file in ["lilypad_module.json.tmpl", "README.md"] {
            assert!(dir.join(file).is_file(), "examples/modules/{name} has no {file}");
        }
        // A Dockerfile, or a build script of its own (the model modules).
        let build = ["Dockerfile", "build-image.sh"].into_iter().find(|f| dir.join(f).is_file());
        assert!(
            build.is_some(),
            "examples/modules/{name} has neither a Dockerfile nor a build-image.sh"
        );
        let path = format!("examples/modules/{name}");
        let (ok, out, err) = cli(&["module", "render", &path, "--json"]);
        assert!(ok, "{name}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON spec");
        // scripts/build-example-images.sh builds the image the template names.
        assert_eq!(v["image"]["repository"], format!("lilypad-example/{name}"), "{name}");
        assert_eq!(v["image"]["tag"], "0.1.0", "{name}");
        // The model modules' images are reproducible, and their templates pin the id.
        if build == Some("build-image.sh") {
            let digest = v["image"]["digest"].as_str().unwrap_or_default();
            assert!(digest.starts_with("sha256:") && digest.len() == 71, "{name}: {v}");
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, ["chat", "cowsay", "embeddings", "gpu-hello", "wordcount"]);
}

#[test]
fn wordcount_declares_its_input_file_and_gpu_hello_a_gpu() {
    let (ok, out, err) = cli(&["module", "render", "examples/modules/wordcount"]);
    assert!(ok, "{err}");
    assert!(out.contains("input file:   Text -> /inputs/text.txt"), "{out}");
    assert!(err.is_empty(), "wordcount takes no template input: {err}");

    let (ok, out, err) = cli(&["module", "render", "examples/modules/gpu-hello", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON spec");
    assert_eq!(v["resources"]["gpu_count"], 1);
    assert_eq!(v["resources"]["gpu_vram_mib"], 1024);
}
