//! `lilypad-cli run MODULE -i KEY=VALUE ...`: run one job and fetch its verified results.

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lilypad_sdk::{
    chain::roles,
    core::{Address, U256},
    job::{JobCreator, JobError, JobEvent, JobOptions, JobOutcome, JobRequest},
    localnet::LocalNetwork,
    module::ModuleCache,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::network::{Network, NetworkArgs, parse_amount};
use crate::inputs::collect_inputs;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The module: `name:version` (e.g. cowsay:v0.0.4), `host/owner/repo:ref`, or a local
    /// directory holding lilypad_module.json.tmpl (e.g. ./examples/modules/cowsay).
    module: String,
    /// A template input, KEY=VALUE (repeatable).
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// An input file, KEY=PATH (repeatable): uploaded to storage, mounted read-only in the job.
    #[arg(long = "input-file", value_name = "KEY=PATH")]
    input_files: Vec<String>,
    #[command(flatten)]
    network: NetworkArgs,
    /// Run only on this provider.
    #[arg(long, value_name = "ADDR")]
    target: Option<Address>,
    /// The most to pay, in tokens (e.g. 1.5) or base units with a `wei` suffix.
    #[arg(long, value_name = "P", default_value = "1", value_parser = parse_amount)]
    max_price: U256,
    /// Where the results go: DIR/<deal id>/.
    #[arg(long, value_name = "D", default_value = "lilypad-results")]
    output_dir: PathBuf,
    /// How long to wait for a provider to take the job (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    match_timeout: u64,
    /// Fail instead of approving the controller when the allowance is short.
    #[arg(long)]
    no_approve: bool,
    /// Where `name:version` modules are fetched from.
    #[arg(long, env = "LILYPAD_MODULE_BASE", value_name = "URL")]
    module_base: Option<String>,
    /// Print one JSON object instead of progress and text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &RunArgs) -> anyhow::Result<()> {
    let values = collect_inputs(&args.inputs)?;
    let mut files = BTreeMap::new();
    for raw in &args.input_files {
        let (k, v) = crate::inputs::parse_input(raw).map_err(|e| {
            anyhow::anyhow!("{}", e.to_string().replace("-i KEY=VALUE", "--input-file KEY=PATH"))
        })?;
        if files.insert(k.clone(), PathBuf::from(v)).is_some() {
            anyhow::bail!("input file {k:?} is given twice");
        }
    }
    // No network configured and no devnet running: a throwaway one, in this process.
    let (localnet, network_args) = match super::network::network_file(&args.network) {
        Ok(_) => (None, None),
        Err(_) if args.network.network.is_none() => {
            let (net, file) = start_localnet(args.json).await?;
            (Some(net), Some(NetworkArgs { network: Some(file.display().to_string()) }))
        }
        Err(e) => return Err(e),
    };
    let result = run_on(args, network_args.as_ref().unwrap_or(&args.network), values, files).await;
    if let Some((net, dir)) = localnet {
        net.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Starts a throwaway network in this process; returns it with its state directory
/// and network file.
async fn start_localnet(quiet: bool) -> anyhow::Result<((LocalNetwork, PathBuf), PathBuf)> {
    let dir = std::env::temp_dir().join(format!("lilypad-localnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if !quiet {
        eprintln!(
            "no network configured (no --network, no LILYPAD_NETWORK, no `lilypad-cli devnet up`): \
             starting a throwaway local network"
        );
    }
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let started = Instant::now();
    let progress = |msg: &str| {
        if let Some(b) = &bar {
            b.set_message(msg.to_owned());
        }
    };
    let net = LocalNetwork::start(&dir, &progress).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let net =
        net.context("starting the local network (see `lilypad-rp doctor` for Docker problems)")?;
    if !quiet {
        eprintln!(
            "✔ local network up: anvil, contracts, solver, content store, Docker provider ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    let file = net.network_file();
    Ok(((net, dir), file))
}

async fn run_on(
    args: &RunArgs,
    network_args: &NetworkArgs,
    values: BTreeMap<String, String>,
    files: BTreeMap<String, PathBuf>,
) -> anyhow::Result<()> {
    let network = Network::open(network_args, roles::JOB_CREATOR).await?;
    let mut cache = ModuleCache::new(network.home.join("modules"));
    if let Some(base) = &args.module_base {
        cache = cache.with_base(base.clone());
    }
    let options = JobOptions {
        offer_ttl: Duration::from_secs(args.match_timeout),
        approve: !args.no_approve,
        ..JobOptions::default()
    };
    let creator = JobCreator::new(
        network.chain.clone(),
        network.solver()?,
        network.storage()?,
        cache,
        options,
        network.solver_address,
    );
    let request = JobRequest {
        module: args.module.clone(),
        values,
        files,
        target: args.target,
        max_price: Some(args.max_price),
        output_dir: args.output_dir.clone(),
    };

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling: withdrawing the offer (Ctrl-C again to quit at once)");
            on_ctrl_c.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let mut progress = Progress::new(!args.json && std::io::stderr().is_terminal(), args.json);
    let result = creator.run(&request, &cancel, |e| progress.event(&e)).await;
    progress.finish(result.is_ok());
    match result {
        Ok(outcome) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome_json(&outcome))?);
            } else {
                print_outcome(&outcome);
            }
            Ok(())
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&error_json(&e))?);
            }
            Err(e.into())
        }
    }
}

fn outcome_json(o: &JobOutcome) -> serde_json::Value {
    json!({
        "status": "accepted",
        "results_cid": o.results_cid,
        "results_dir": o.results_dir,
        "stdout": o.results_dir.join("stdout"),
        "stderr": o.results_dir.join("stderr"),
        "outputs": o.results_dir.join("outputs"),
        "exit_code": o.exit_code,
        "deal_id": o.deal_id,
        "offer_id": o.offer_id,
        "module_id": o.module_id,
        "provider": o.provider,
        "price": o.price.to_string(),
    })
}

fn error_json(e: &JobError) -> serde_json::Value {
    let kind = match e {
        JobError::NoMatch { .. } => "no_match",
        JobError::InsufficientFunds { .. } => "insufficient_funds",
        JobError::InsufficientAllowance { .. } => "insufficient_allowance",
        JobError::ResultsRejected { .. } => "results_rejected",
        JobError::ProviderTimedOut { .. } => "provider_timed_out",
        JobError::ProviderCouldNotRun { .. } => "provider_could_not_run",
        JobError::UndeclaredInputFile { .. }
        | JobError::InputsTooLarge { .. }
        | JobError::ImageNotPinned { .. } => "invalid_job",
        JobError::TermsRefused(_) => "terms_refused",
        JobError::Cancelled(_) => "cancelled",
        _ => "error",
    };
    let mut v = json!({ "status": kind, "error": e.to_string() });
    if let JobError::NoMatch { reasons, offer_id } = e {
        v["reasons"] = json!(reasons);
        v["offer_id"] = json!(offer_id);
    }
    if let JobError::ProviderCouldNotRun { deal_id, provider, reason, detail, accepted } = e {
        v["deal_id"] = json!(deal_id);
        v["provider"] = json!(provider);
        v["reason"] = json!(reason);
        v["detail"] = json!(detail);
        v["accepted"] = json!(accepted);
    }
    v
}

fn print_outcome(o: &JobOutcome) {
    let stdout = std::fs::read_to_string(o.results_dir.join("stdout")).unwrap_or_default();
    if !stdout.is_empty() {
        println!("{}", stdout.trim_end_matches('\n'));
        println!();
    }
    println!("results CID: {}", o.results_cid);
    println!("deal:        {} (provider {}, price {} base units)", o.deal_id, o.provider, o.price);
    if let Some(code) = o.exit_code {
        println!("exit code:   {code}");
    }
    println!("stdout:      {}", o.results_dir.join("stdout").display());
    println!("stderr:      {}", o.results_dir.join("stderr").display());
    println!("outputs:     {}", o.results_dir.join("outputs").display());
}

/// One spinner per state; each finished state stays as a line with its time.
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    started: Instant,
    step: Instant,
}

impl Progress {
    fn new(live: bool, quiet: bool) -> Self {
        let bar = live.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message("resolving the module");
            bar
        });
        Self { bar, quiet, started: Instant::now(), step: Instant::now() }
    }

    /// Prints a finished step and names the next one.
    fn done(&mut self, line: &str, next: Option<&str>) {
        if self.quiet {
            return;
        }
        let secs = self.step.elapsed().as_secs_f64();
        self.step = Instant::now();
        let text = format!("✔ {line} ({secs:.1}s)");
        match &self.bar {
            Some(bar) => {
                bar.println(text);
                if let Some(n) = next {
                    bar.reset_elapsed();
                    bar.set_message(n.to_owned());
                }
            }
            None => eprintln!("{text}"),
        }
    }

    fn event(&mut self, e: &JobEvent) {
        match e {
            JobEvent::ModuleResolved { source, missing_inputs, .. } => {
                if !missing_inputs.is_empty() && !self.quiet {
                    let msg = format!(
                        "warning: the template uses inputs that were not given: {} (pass -i NAME=VALUE)",
                        missing_inputs.join(", ")
                    );
                    match &self.bar {
                        Some(bar) => bar.println(msg),
                        None => eprintln!("{msg}"),
                    }
                }
                self.done(&format!("module {source}"), Some("posting the offer"));
            }
            JobEvent::InputUploaded { key, cid } => {
                self.done(&format!("input file {key} uploaded: {cid}"), None);
            }
            JobEvent::Approved { amount } => {
                self.done(&format!("controller approved for {amount} base units"), None);
            }
            JobEvent::OfferPosted { offer_id, .. } => {
                self.done(&format!("offer posted: {offer_id}"), Some("waiting for a provider"));
            }
            JobEvent::DealAgreed { deal_id, provider, price, .. } => self.done(
                &format!("deal agreed: {deal_id} with {provider} at {price} base units"),
                Some("provider running the job"),
            ),
            JobEvent::ResultsSubmitted { cid } => {
                self.done(&format!("results submitted: {cid}"), Some("downloading and verifying"));
            }
            JobEvent::ResultsVerified { path } => self.done(
                &format!("results verified into {}", path.display()),
                Some("accepting on chain"),
            ),
            JobEvent::Accepted { paid, refunded } => self.done(
                &format!("accepted: provider paid {paid}, refunded {refunded} base units"),
                None,
            ),
            JobEvent::Challenged { draw_block, .. } => {
                self.done(
                    &format!("results challenged; a mediator is drawn from the hash of block {draw_block}"),
                    None,
                );
            }
            JobEvent::FailureReported { reason, detail } => {
                self.done(&format!("the provider cannot run the job: {reason}: {detail}"), None);
            }
            JobEvent::FailureAccepted { refunded } => {
                self.done(
                    &format!("failure report accepted; refunded {refunded} base units"),
                    None,
                );
            }
            JobEvent::Warning { message } => {
                let msg = format!("warning: {message}");
                match &self.bar {
                    Some(bar) => bar.println(msg),
                    None => eprintln!("{msg}"),
                }
            }
            JobEvent::OfferWithdrawn => self.done("offer withdrawn on chain", None),
            JobEvent::TimedOut { refunded } => {
                self.done(&format!("provider timed out; refunded {refunded} base units"), None);
            }
            _ => {}
        }
    }

    fn finish(&mut self, ok: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if ok && !self.quiet {
            eprintln!("done in {:.1}s", self.started.elapsed().as_secs_f64());
        }
    }
}
