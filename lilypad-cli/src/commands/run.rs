//! `lilypad-cli run MODULE -i KEY=VALUE ...`: run one job and fetch its verified results.

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use clap::Args;
use indicatif::ProgressBar;
use lilypad_sdk::{
    chain::DealStatus,
    core::{
        Address, B256, U256,
        amount::AmountStyle,
        settlement::{Settlement, settle},
    },
    job::{JobCreator, JobError, JobEvent, JobOptions, JobOutcome, JobRequest},
    module::ModuleCache,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    deals::{self, explain},
    network::{Network, NetworkArgs, Role},
};
use crate::{amounts, inputs::collect_inputs, summary, when};

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
    /// Run only on a provider whose reputation score (0 to 1, a new provider 0.5;
    /// see `lilypad-cli leaderboard`) is at least this.
    #[arg(long, value_name = "SCORE", value_parser = parse_min_reputation)]
    min_reputation: Option<f64>,
    /// The most to pay, in tokens (`1.5`, `1.5 LP`) or base units (`1500wei`).
    #[arg(long, value_name = "P", default_value = "1", value_parser = amounts::parse)]
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
    /// Run a published (git) module whose image is a tag, not pinned by digest. A
    /// mediator may then re-run a different image than the provider did, so a
    /// challenge of honest results can be lost.
    #[arg(long)]
    allow_unpinned_image: bool,
}

fn parse_min_reputation(s: &str) -> Result<f64, String> {
    let min: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    lilypad_sdk::solver::api::check_min_reputation(min)
}

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(run_async(args))
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
        Err(e) if args.network.network.is_none() => {
            let net = super::throwaway::Throwaway::start(e, lilypad_cli_common::json()).await?;
            let file = NetworkArgs { network: Some(net.network_file().display().to_string()) };
            (Some(net), Some(file))
        }
        Err(e) => return Err(e),
    };
    let throwaway = network_args.is_some();
    let result =
        run_on(args, network_args.as_ref().unwrap_or(&args.network), values, files, throwaway)
            .await;
    if let Some(net) = localnet {
        net.stop().await;
    }
    result
}

async fn run_on(
    args: &RunArgs,
    network_args: &NetworkArgs,
    values: BTreeMap<String, String>,
    files: BTreeMap<String, PathBuf>,
    throwaway: bool,
) -> anyhow::Result<()> {
    let network = Network::open(network_args, Role::JobCreator).await?;
    // The contracts do not ask for the role (the registry is for discovery), so a
    // failure here (no ETH for gas, say) is the job flow's to report, with its checks.
    match lilypad_cli_common::network::ensure_registered(&network.chain, Role::JobCreator, "").await
    {
        Ok(Some(line)) => eprintln!("{line}"),
        Ok(None) => {}
        Err(e) => eprintln!("warning: {e:#}"),
    }
    let mut cache = ModuleCache::new(network.home.join("modules"));
    if let Some(base) = &args.module_base {
        cache = cache.with_base(base.clone());
    }
    let options = JobOptions {
        offer_ttl: Duration::from_secs(args.match_timeout),
        approve: !args.no_approve,
        require_pinned_image: !args.allow_unpinned_image,
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
        min_reputation: args.min_reputation,
    };

    // Ctrl-C before a deal withdraws the offer (the flow voids its nonce on chain);
    // once a deal exists nothing can take the money back early, so Ctrl-C stops
    // following the deal and says how to finish it by hand.
    let cancel = CancellationToken::new();
    let interrupt = CancellationToken::new();
    let deal_slot: Arc<OnceLock<B256>> = Arc::default();
    let (on_ctrl_c, on_interrupt, deal_seen) =
        (cancel.clone(), interrupt.clone(), deal_slot.clone());
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if on_ctrl_c.is_cancelled() || on_interrupt.is_cancelled() {
                std::process::exit(130);
            }
            if deal_seen.get().is_some() {
                on_interrupt.cancel();
            } else {
                eprintln!("\ncancelling: withdrawing the offer (Ctrl-C again to quit at once)");
                on_ctrl_c.cancel();
            }
        }
    });

    let mut progress = Progress::new(
        !lilypad_cli_common::json() && std::io::stderr().is_terminal(),
        lilypad_cli_common::json(),
    );
    progress.deal = deal_slot.clone();
    let result = tokio::select! {
        r = creator.run(&request, &cancel, |e| progress.event(&e)) => Some(r),
        () = interrupt.cancelled() => None,
    };
    progress.finish(matches!(result, Some(Ok(_))));
    let Some(result) = result else {
        let deal_id = deal_slot.get().copied().unwrap_or_default();
        return interrupted(&network, deal_id, args, throwaway).await;
    };
    match result {
        Ok(outcome) => {
            let settlement = final_settlement(&network, outcome.deal_id).await;
            if lilypad_cli_common::json() {
                let mut v = outcome_json(&outcome);
                if let Some(s) = &settlement {
                    v["settlement"] = summary::settlement_json(s);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_outcome(&outcome, settlement.as_ref());
            }
            Ok(())
        }
        Err(e) => {
            if lilypad_cli_common::json() {
                println!("{}", serde_json::to_string_pretty(&error_json(&e))?);
            }
            let hint = match &e {
                JobError::ImageNotPinned { .. } => Some(
                    "pin the image in the module, or pass --allow-unpinned-image to take the risk"
                        .to_owned(),
                ),
                JobError::InsufficientAllowance { .. } => {
                    Some("drop --no-approve to let `run` approve it".to_owned())
                }
                JobError::ProviderCouldNotRun { deal_id, accepted: false, .. } => Some(format!(
                    "accept it with `lilypad-cli deals accept-failure {deal_id}` or dispute it \
                     with `lilypad-cli deals challenge-failure {deal_id}`"
                )),
                _ => None,
            };
            match hint {
                Some(hint) => Err(anyhow::Error::from(e).context(hint)),
                None => Err(e.into()),
            }
        }
    }
}

/// The payout table of the finished deal: its terms from the solver, its outcome from
/// the chain; `None` (and the summary left out) if either cannot be read.
async fn final_settlement(network: &Network, deal_id: B256) -> Option<Settlement> {
    let record = network.solver().ok()?.deal(deal_id).await.ok()?;
    match network.chain.deal(deal_id).await.ok()??.status {
        DealStatus::Finished(outcome) => settle(&record.deal.terms, outcome).ok(),
        _ => None,
    }
}

/// Ctrl-C after the deal: where it stands, what happens next and the commands that
/// finish it; fails so that scripts see the job did not complete.
async fn interrupted(
    network: &Network,
    deal_id: B256,
    args: &RunArgs,
    throwaway: bool,
) -> anyhow::Result<()> {
    let me = network.chain.address().unwrap_or_default();
    let net = args.network.network.as_deref();
    // Bounded: the user wants to leave, not wait on a slow node.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let d = network.chain.deal(deal_id).await.ok()??;
        let now = deals::chain_now(network).await.ok()?;
        Some((d, now))
    })
    .await
    .ok()
    .flatten();
    let (situation, steps) = match &read {
        Some((d, now)) => (explain::situation(d, *now), explain::next_steps(d, me, *now, net)),
        None => (
            "the chain did not answer; the deal goes on there".to_owned(),
            vec![("follow it".to_owned(), explain::command("show", deal_id, net))],
        ),
    };
    let gone = throwaway.then_some(
        "this run started a throwaway local network, which stops now: the deal ends with it",
    );
    if lilypad_cli_common::json() {
        let steps: Vec<_> =
            steps.iter().map(|(why, cmd)| json!({ "why": why, "command": cmd })).collect();
        let v = json!({
            "status": "interrupted",
            "deal_id": deal_id,
            "situation": situation,
            "next_steps": if throwaway { json!([]) } else { json!(steps) },
            "note": gone,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        eprintln!();
        eprintln!("interrupted: deal {deal_id} goes on on chain without this command.");
        eprintln!("  {situation}.");
        if let Some(note) = gone {
            eprintln!("  {note}.");
        } else {
            eprintln!("to finish it:");
            for (why, cmd) in &steps {
                eprintln!("  {why}:");
                eprintln!("    {cmd}");
            }
        }
    }
    anyhow::bail!("interrupted after deal {deal_id} was made; it continues on chain")
}

/// "accepted: provider paid 1 LP (the price), ..." for the progress line.
fn accepted_line(paid: U256, returned_collateral: U256, refunded: U256) -> String {
    format!(
        "accepted: provider paid {} (the price), {} collateral returned to it, {} refunded to you",
        amounts::show(paid),
        amounts::show(returned_collateral),
        amounts::show(refunded)
    )
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
        | JobError::ImageNotPinned { .. }
        | JobError::InvalidMinReputation(_) => "invalid_job",
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

fn print_outcome(o: &JobOutcome, settlement: Option<&Settlement>) {
    print!("{}", outcome_text(o, settlement, amounts::style()));
}

/// The summary `run` prints on success (the job's stdout first, if any).
fn outcome_text(o: &JobOutcome, settlement: Option<&Settlement>, style: AmountStyle) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let stdout = std::fs::read_to_string(o.results_dir.join("stdout")).unwrap_or_default();
    if !stdout.is_empty() {
        let _ = writeln!(out, "{}\n", stdout.trim_end_matches('\n'));
    }
    let _ = writeln!(out, "results CID: {}", o.results_cid);
    let _ = writeln!(
        out,
        "deal:        {} (provider {}, price {})",
        o.deal_id,
        o.provider,
        style.format(o.price)
    );
    if let Some(code) = o.exit_code {
        let _ = writeln!(out, "exit code:   {code}");
    }
    let _ = writeln!(out, "stdout:      {}", o.results_dir.join("stdout").display());
    let _ = writeln!(out, "stderr:      {}", o.results_dir.join("stderr").display());
    let _ = writeln!(out, "outputs:     {}", o.results_dir.join("outputs").display());
    if let Some(s) = settlement {
        let _ = writeln!(out);
        for line in summary::settlement_lines(s, style) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// One spinner per state; each finished state stays as a line with its time.
struct Progress {
    bar: Option<ProgressBar>,
    /// The deal, once agreed (the Ctrl-C handler reads it).
    deal: Arc<OnceLock<B256>>,
    quiet: bool,
    started: Instant,
    step: Instant,
}

impl Progress {
    fn new(live: bool, quiet: bool) -> Self {
        let bar = live.then(|| {
            let bar = crate::spinner::spinner();
            bar.set_message("resolving the module");
            bar
        });
        Self { bar, deal: Arc::default(), quiet, started: Instant::now(), step: Instant::now() }
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
                self.done(&format!("controller approved for {}", amounts::show(*amount)), None);
            }
            JobEvent::OfferPosted { offer_id, .. } => {
                self.done(&format!("offer posted: {offer_id}"), Some("waiting for a provider"));
            }
            JobEvent::DealAgreed { deal_id, provider, price, deadline } => {
                let _ = self.deal.set(*deal_id);
                self.done(
                    &format!(
                        "deal agreed: {deal_id} with {provider} at {}; results due by {}",
                        amounts::show(*price),
                        when::utc(*deadline)
                    ),
                    Some("provider running the job"),
                );
            }
            JobEvent::ResultsSubmitted { cid } => {
                self.done(&format!("results submitted: {cid}"), Some("downloading and verifying"));
            }
            JobEvent::ResultsVerified { path } => self.done(
                &format!("results verified into {}", path.display()),
                Some("accepting on chain"),
            ),
            JobEvent::Accepted { paid, returned_collateral, refunded } => {
                self.done(&accepted_line(*paid, *returned_collateral, *refunded), None);
            }
            JobEvent::Challenged { draw_block, .. } => {
                self.done(
                    &format!(
                        "results challenged; a mediator is drawn from the hash of block {draw_block}"
                    ),
                    None,
                );
            }
            JobEvent::FailureReported { reason, detail } => {
                self.done(&format!("the provider cannot run the job: {reason}: {detail}"), None);
            }
            JobEvent::FailureAccepted { refunded } => {
                let refunded = amounts::show(*refunded);
                self.done(&format!("failure report accepted; {refunded} refunded to you"), None);
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
                let refunded = amounts::show(*refunded);
                self.done(&format!("provider timed out; refunded {refunded}"), None);
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

#[cfg(test)]
mod tests {
    use lilypad_sdk::core::{deal::DealTerms, settlement::Outcome};

    use super::*;

    fn lp(milli: u64) -> U256 {
        U256::from(milli) * U256::from(10u64).pow(U256::from(15u8))
    }

    #[test]
    fn the_accepted_line_tells_the_price_from_the_returned_collateral() {
        assert_eq!(
            accepted_line(lp(1001), lp(2002), lp(0)),
            "accepted: provider paid 1.001 LP (the price), 2.002 LP collateral returned to it, \
             0 LP refunded to you"
        );
    }

    #[test]
    fn the_run_summary_reads_in_tokens_or_base_units() {
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("0xd1");
        std::fs::create_dir_all(&results).expect("results dir");
        std::fs::write(results.join("stdout"), " _____\n< moo >\n -----\n").expect("stdout");
        let outcome = JobOutcome {
            offer_id: B256::repeat_byte(0x0f),
            deal_id: B256::repeat_byte(0xd1),
            module_id: B256::repeat_byte(0x3d),
            provider: Address::repeat_byte(0x9a),
            price: lp(1001),
            results_cid: "bafyresults".into(),
            results_dir: results.clone(),
            exit_code: Some(0),
        };
        let terms = DealTerms {
            price: lp(1001),
            payment_collateral: lp(1500),
            timeout_collateral: lp(10),
            results_collateral: lp(2002),
            mediation_fee: lp(1),
            submit_window_secs: 720,
            judge_window_secs: 3600,
            mediate_window_secs: 3600,
        };
        let settlement = settle(&terms, Outcome::Accepted).expect("settles");
        let dir_text = results.display().to_string();
        let text = outcome_text(&outcome, Some(&settlement), AmountStyle::Tokens)
            .replace(&dir_text, "[RESULTS]");
        assert_eq!(
            text,
            format!(
                " _____
< moo >
 -----

results CID: bafyresults
deal:        {} (provider {}, price 1.001 LP)
exit code:   0
stdout:      [RESULTS]/stdout
stderr:      [RESULTS]/stderr
outputs:     [RESULTS]/outputs

outcome              accepted
provider paid        1.001 LP (the price of the job)
returned collateral  2.012 LP (to the provider)
refunded             0.499 LP (to the job creator)
",
                outcome.deal_id, outcome.provider
            )
        );
        let wei = outcome_text(&outcome, Some(&settlement), AmountStyle::BaseUnits);
        assert!(wei.contains("price 1001000000000000000 wei)"), "{wei}");
        assert!(wei.contains("provider paid        1001000000000000000 wei (the price"), "{wei}");
        // Without the terms (solver unreachable) the summary is left out, nothing else.
        let bare = outcome_text(&outcome, None, AmountStyle::Tokens);
        assert!(bare.ends_with("/outputs\n") && !bare.contains("provider paid"), "{bare}");
    }
}
