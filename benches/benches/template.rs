//! Module template rendering: lilypad-core's engine against `gtmpl` (the
//! existing Rust port of Go templates) on the same real-module template.
//!
//! The template is the shape of the published sdxl pipeline module: `if/else`
//! on inputs and plain substitution, the subset both engines render. Inputs
//! are JSON-encoded first, as Lilypad does, for both engines.
//!
//! After criterion, prints `template_render_us=<median>` and
//! `template_speedup_vs_gtmpl=<ratio>` from timings taken in this run.

use std::{collections::BTreeMap, collections::HashMap, hint::black_box, time::Instant};

use criterion::Criterion;
use lilypad_core::module::template::Template;

const SDXL: &str = r#"{
    "machine": { "gpu": 1, "cpu": 1000, "ram": 8000 },
    "job": {
        "APIVersion": "V1beta1",
        "Metadata": { "CreatedAt": "0001-01-01T00:00:00Z", "Requester": {} },
        "Spec": {
            "Deal": { "Concurrency": 1 },
            "Docker": {},
            "EngineSpec": {
                "Params": {
                "Entrypoint": null,
                "EnvironmentVariables": [
                    {{if .PromptEnv}}{{.PromptEnv}}{{else}}"PROMPT=question mark floating in space"{{end}},
                    {{if .SeedEnv}}{{.SeedEnv}}{{else}}"RANDOM_SEED=42"{{end}},
                    {{if .Steps}}{{.Steps}}{{else}}"STEPS=50"{{end}},
                    "OUTPUT_DIR=/outputs/",
                    "HF_HUB_OFFLINE=1"
                ],
                "Image": "docker.io/zorlin/sdxl-sv3du:v0.9-sv3d-lilypad1",
                "Parameters": [],
                "WorkingDirectory": ""
                },
                "Type": "docker"
            },
            "Network": { "Type": "None" },
            "Outputs": [ { "Name": "outputs", "Path": "/outputs" } ],
            "PublisherSpec": { "Type": "ipfs" },
            "Resources": { "GPU": "1" },
            "Timeout": 1800,
            "Wasm": { "EntryModule": {} }
        }
    }
}"#;

fn inputs() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PromptEnv".to_owned(), "PROMPT=an astronaut riding a horse, \"photoreal\"".to_owned()),
        ("SeedEnv".to_owned(), "RANDOM_SEED=7".to_owned()),
    ])
}

fn json_encoded(inputs: &BTreeMap<String, String>) -> HashMap<String, String> {
    inputs.iter().map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default())).collect()
}

fn ours(inputs: &BTreeMap<String, String>) -> String {
    let t = Template::parse("lilypad_module.json.tmpl", SDXL).expect("benchmark template parses");
    t.render(inputs).expect("benchmark template renders").text
}

fn baseline(inputs: &BTreeMap<String, String>) -> String {
    let mut t = gtmpl::Template::default();
    t.parse(SDXL).expect("gtmpl parses the benchmark template");
    t.render(&gtmpl::Context::from(json_encoded(inputs))).expect("gtmpl renders")
}

fn median_us(mut f: impl FnMut(), iters: u32) -> f64 {
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let inputs = inputs();
    // Same text from both engines, or the comparison means nothing.
    assert_eq!(ours(&inputs), baseline(&inputs), "engines disagree on the benchmark template");

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("template_parse_and_render_sdxl");
    g.bench_function("lilypad_core", |b| b.iter(|| ours(black_box(&inputs))));
    g.bench_function("gtmpl_baseline", |b| b.iter(|| baseline(black_box(&inputs))));
    g.finish();
    c.final_summary();

    let ours_us = median_us(|| drop(black_box(ours(black_box(&inputs)))), 200);
    let base_us = median_us(|| drop(black_box(baseline(black_box(&inputs)))), 200);
    println!("template_render_us={ours_us:.2}");
    println!("template_gtmpl_us={base_us:.2}");
    println!("template_speedup_vs_gtmpl={:.2}", base_us / ours_us);
}
