//! `lilypad-cli module ...`

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::{core::module::ModuleSpec, module::load_local};

use crate::inputs::collect_inputs;

/// Module subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ModuleCommand {
    /// Render a local module template and print the resulting module spec.
    ///
    /// Needs no network. Example:
    /// lilypad-cli module render examples/modules/cowsay -i Message=moo
    Render(RenderArgs),
}

/// Arguments of `module render`.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// A module directory (holding lilypad_module.json.tmpl) or a template file.
    path: PathBuf,
    /// An input, KEY=VALUE (split at the first '='; may be repeated).
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// Print the rendered template text byte for byte, before any parsing (not with
    /// `--json`).
    #[arg(long)]
    raw: bool,
}

pub(crate) fn run(cmd: ModuleCommand) -> anyhow::Result<()> {
    match cmd {
        ModuleCommand::Render(args) => render(&args),
    }
}

fn render(args: &RenderArgs) -> anyhow::Result<()> {
    if args.raw && lilypad_cli_common::json() {
        anyhow::bail!("--raw prints the template text as it is: it cannot be combined with --json");
    }
    let inputs = collect_inputs(&args.inputs)?;
    let module = load_local(&args.path)?;
    let rendered = module.render_raw(&inputs)?;
    for name in &rendered.missing_inputs {
        eprintln!(
            "warning: the template uses input {name:?} but it was not given (pass -i {name}=...)"
        );
    }
    let mut out = std::io::stdout().lock();
    if args.raw {
        out.write_all(rendered.text.as_bytes())?;
        return out.flush().context("writing to stdout");
    }
    let spec = ModuleSpec::from_rendered(&rendered.text)
        .with_context(|| module.path.display().to_string())?;
    if lilypad_cli_common::json() {
        serde_json::to_writer_pretty(&mut out, &spec)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", human(&spec))?;
    }
    out.flush().context("writing to stdout")
}

fn human(spec: &ModuleSpec) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let pin = if spec.image.is_pinned() { "" } else { "  (not pinned by digest)" };
    let _ = writeln!(s, "image:        {}{pin}", spec.image);
    let ep = if spec.entrypoint.is_empty() {
        "(image default)".to_owned()
    } else {
        shell_words(&spec.entrypoint)
    };
    let _ = writeln!(s, "entrypoint:   {ep}");
    if !spec.parameters.is_empty() {
        let _ = writeln!(s, "parameters:   {}", shell_words(&spec.parameters));
    }
    if let Some(w) = &spec.working_dir {
        let _ = writeln!(s, "working dir:  {w}");
    }
    if spec.env.is_empty() {
        let _ = writeln!(s, "env:          (none)");
    } else {
        let _ = writeln!(s, "env:");
        for (k, v) in &spec.env {
            let _ = writeln!(s, "  {k}={v}");
        }
    }
    let r = &spec.resources;
    let _ = write!(
        s,
        "resources:    cpu {} millicores, ram {} MiB, disk {} MiB",
        r.cpu_millicores, r.ram_mib, r.disk_mib
    );
    if r.gpu_count > 0 {
        let _ = write!(s, ", {} GPU(s)", r.gpu_count);
        if r.gpu_vram_mib > 0 {
            let _ = write!(s, " with >= {} MiB VRAM", r.gpu_vram_mib);
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "timeout:      {} s", spec.timeout_secs);
    let _ = writeln!(s, "network:      none");
    for o in &spec.outputs {
        let _ = writeln!(s, "output:       {} -> {}", o.name, o.path);
    }
    for f in &spec.input_files {
        let _ = writeln!(s, "input file:   {} -> {}", f.name, f.path);
    }
    s
}

/// Quotes words the way a POSIX shell would need them, for display only.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
