//! `lilypad-cli storage ...`: the embedded content store and its client.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::storage::{self, ContentStore, StorageClient, parse_cid};

/// Storage subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Serve a content store over HTTP (a subset of the Kubo RPC API) until Ctrl-C.
    ///
    /// Example: lilypad-cli storage serve --dir ~/.lilypad/store --listen 127.0.0.1:5001
    Serve(ServeArgs),
    /// Print the CID a file or directory gets (kubo's defaults), without uploading.
    ///
    /// Example: lilypad-cli storage cid ./results
    Cid {
        /// The file or directory.
        path: PathBuf,
    },
    /// Upload a file or directory and print its CID.
    ///
    /// Example: lilypad-cli storage add ./data --url http://127.0.0.1:5001
    Add {
        /// The file or directory.
        path: PathBuf,
        #[command(flatten)]
        url: UrlArgs,
    },
    /// Download a CID into a new directory, verifying every block.
    ///
    /// Example: lilypad-cli storage get QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o ./out
    Get {
        /// The CID.
        cid: String,
        /// Where to write it (must not exist).
        dest: PathBuf,
        #[command(flatten)]
        url: UrlArgs,
    },
}

/// Arguments of `storage serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The store's directory (created if missing).
    #[arg(long, env = "LILYPAD_STORE_DIR", value_name = "DIR")]
    dir: PathBuf,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, env = "LILYPAD_STORE_LISTEN", default_value = "127.0.0.1:5001")]
    listen: SocketAddr,
}

/// `--url` of a store or kubo daemon.
#[derive(Debug, Args)]
pub(crate) struct UrlArgs {
    /// The store's (or a kubo daemon's RPC) URL.
    #[arg(long, env = "LILYPAD_STORAGE_URL", default_value = "http://127.0.0.1:5001")]
    url: String,
}

pub(crate) fn run(cmd: StorageCommand) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async move {
        match cmd {
            StorageCommand::Serve(args) => serve(&args).await,
            StorageCommand::Cid { path } => {
                println!("{}", storage::unixfs::cid_of_path(&path)?);
                Ok(())
            }
            StorageCommand::Add { path, url } => {
                let cid = StorageClient::new(&url.url)?.publish_path(&path).await?;
                println!("{cid}");
                Ok(())
            }
            StorageCommand::Get { cid, dest, url } => {
                let cid = parse_cid(&cid)?;
                let s = StorageClient::new(&url.url)?.fetch(&cid, &dest).await?;
                println!(
                    "{cid}: {} bytes in {} entries, verified, written to {}",
                    s.bytes,
                    s.entries,
                    dest.display()
                );
                Ok(())
            }
        }
    })
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let store = ContentStore::open(&args.dir)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let handle = storage::serve(store, listener).await?;
    // The first line names the address (a test or script reads it when port 0 was asked).
    println!("storage listening on {}", handle.url());
    shutdown_signal().await;
    handle.shutdown().await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
