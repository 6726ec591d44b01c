//! Runs a job from outside the repository: a throwaway local network from the
//! packaged SDK (its contract artifacts travel inside the crate), then a cowsay job
//! through the `Lilypad` front door, as a dApp backend would.
//!
//! Usage: outside-app MODULE_DIR STATE_DIR

use lilypad_sdk::{
    Lilypad,
    devnet::{self, anvil_signer},
    localnet::LocalNetwork,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(module), Some(state)) = (args.next(), args.next()) else {
        return Err("usage: outside-app MODULE_DIR STATE_DIR".into());
    };
    let net = LocalNetwork::start(std::path::Path::new(&state), &|step| eprintln!("{step}")).await?;
    let lilypad = Lilypad::connect(net.network_file(), anvil_signer(devnet::JOB_CREATOR)).await?;
    let outcome = lilypad.run(&module, [("Message", "hello from outside the workspace")]).await;
    net.shutdown().await;
    let outcome = outcome?;
    let stdout = std::fs::read_to_string(outcome.results_dir.join("stdout"))?;
    println!("deal {} results {}\n{stdout}", outcome.deal_id, outcome.results_cid);
    Ok(())
}
