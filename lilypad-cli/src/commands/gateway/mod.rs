//! `lilypad-cli gateway`: an OpenAI-compatible HTTP API in front of the network.
//!
//! Each inference request runs as one job (one deal) paid by the gateway's account,
//! through the SDK's [`Lilypad`] front door; clients authenticate with API keys the
//! operator makes with `gateway keys create` (stored hashed in SQLite). See
//! docs/inference.md.

mod api;
mod keys;
mod network;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::core::U256;

use super::network::{NetworkArgs, Role};
use crate::amounts;

/// Arguments of `gateway`: serve, or manage keys.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct GatewayArgs {
    #[command(subcommand)]
    command: Option<GatewayCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// `gateway keys ...`.
#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// API keys: create (printed once), list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Where the key database is.
#[derive(Debug, Clone, Args)]
struct DbArgs {
    /// The API key database (SQLite) [default: $LILYPAD_HOME/gateway/keys.db].
    #[arg(long, env = "LILYPAD_GATEWAY_DB", value_name = "PATH")]
    db: Option<PathBuf>,
}

impl DbArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => Ok(lilypad_cli_common::network::home()?.join("gateway").join("keys.db")),
        }
    }

    fn open(&self) -> anyhow::Result<keys::KeyStore> {
        keys::KeyStore::open(&self.path()?)
    }
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once and only its hash is stored.
    ///
    /// Example: lilypad-cli gateway keys create --name alice --spend-limit 100000 --rate-limit 60
    Create {
        /// The key's name (unique; `keys revoke NAME` uses it).
        #[arg(long)]
        name: String,
        /// Most tokens (the sum of usage.total_tokens of its requests) it may spend
        /// [default: no limit].
        #[arg(long, value_name = "TOKENS")]
        spend_limit: Option<u64>,
        /// Most requests per minute [default: no limit].
        #[arg(long, value_name = "PER_MIN")]
        rate_limit: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the keys: name, prefix, limits, tokens spent, revoked or not.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key: it is refused (401) from the next request on.
    Revoke {
        /// The key's name.
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Arguments of the server.
#[derive(Debug, Args)]
struct ServeArgs {
    /// The address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(
        long,
        env = "LILYPAD_GATEWAY_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    #[command(flatten)]
    network: NetworkArgs,
    /// A model to serve: NAME=MODULE[,kind=embeddings|chat] (repeatable; kind defaults
    /// to embeddings), e.g. all-MiniLM-L6-v2=./examples/modules/embeddings. In the
    /// environment: several separated by `;`.
    #[arg(
        long = "model",
        env = "LILYPAD_GATEWAY_MODELS",
        value_name = "NAME=MODULE",
        value_delimiter = ';',
        value_parser = api::parse_model
    )]
    models: Vec<api::Model>,
    #[command(flatten)]
    db: DbArgs,
    /// The most to pay for one request's job, in tokens (`0.5`, `0.5 LP`) or base units
    /// (`500wei`).
    #[arg(long, env = "LILYPAD_GATEWAY_MAX_PRICE", value_name = "P", default_value = "1", value_parser = amounts::parse)]
    max_price: U256,
    /// How long a request waits for its job (seconds) before answering 504; the job
    /// goes on and GET /v1/jobs/{id} follows it.
    #[arg(long, env = "LILYPAD_GATEWAY_TIMEOUT", value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// How long a job offer waits for a provider (seconds).
    #[arg(long, env = "LILYPAD_GATEWAY_MATCH_TIMEOUT", value_name = "SECS", default_value_t = 120)]
    match_timeout: u64,
    /// Largest request body in bytes.
    #[arg(long, env = "LILYPAD_GATEWAY_MAX_BODY", value_name = "BYTES", default_value_t = api::Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most texts in one embeddings request.
    #[arg(long, env = "LILYPAD_GATEWAY_MAX_INPUTS", value_name = "N", default_value_t = api::Limits::default().max_inputs)]
    max_inputs: usize,
    /// Allowance the gateway keeps approved for the controller (tokens), so that
    /// concurrent jobs do not each approve only their own collateral.
    #[arg(long, env = "LILYPAD_GATEWAY_ALLOWANCE", value_name = "P", default_value = "1000", value_parser = amounts::parse)]
    allowance: U256,
    /// Where `name:version` modules are fetched from.
    #[arg(long, env = "LILYPAD_MODULE_BASE", value_name = "URL")]
    module_base: Option<String>,
    /// Run published (git) modules whose image is a tag, not pinned by digest.
    #[arg(long, env = "LILYPAD_GATEWAY_ALLOW_UNPINNED_IMAGE")]
    allow_unpinned_image: bool,
}

/// Runs `lilypad-cli gateway ...`.
pub(crate) fn run(args: GatewayArgs) -> anyhow::Result<()> {
    match args.command {
        Some(GatewayCommand::Keys(cmd)) => keys_command(cmd),
        None => {
            lilypad_cli_common::init_tracing();
            lilypad_cli_common::block_on(serve(args.serve))
        }
    }
}

fn keys_command(cmd: KeysCommand) -> anyhow::Result<()> {
    let json = lilypad_cli_common::json();
    match cmd {
        KeysCommand::Create { name, spend_limit, rate_limit, db } => {
            let store = db.open()?;
            let key = store.create(&name, spend_limit, rate_limit)?;
            if json {
                let info = store.get(&name)?.context("the new key is missing")?;
                let mut v = serde_json::to_value(&info)?;
                v["key"] = serde_json::Value::String(key);
                lilypad_cli_common::print_json(&v)?;
            } else {
                println!("{key}");
                eprintln!(
                    "key {name:?} created in {}; it is shown only now: store it safely",
                    db.path()?.display()
                );
            }
        }
        KeysCommand::List { db } => {
            let list = db.open()?.list()?;
            if json {
                lilypad_cli_common::print_json(&list)?;
            } else if list.is_empty() {
                println!("no keys; create one with `lilypad-cli gateway keys create --name NAME`");
            } else {
                println!(
                    "{:<20} {:<14} {:>12} {:>12} {:>10} {:>9}  status",
                    "NAME", "PREFIX", "SPENT", "LIMIT", "RATE/MIN", "REQUESTS"
                );
                let none = || "-".to_owned();
                for k in list {
                    println!(
                        "{:<20} {:<14} {:>12} {:>12} {:>10} {:>9}  {}",
                        k.name,
                        format!("{}…", k.prefix),
                        k.spent,
                        k.spend_limit.map_or_else(none, |v| v.to_string()),
                        k.rate_limit.map_or_else(none, |v| v.to_string()),
                        k.requests,
                        if k.revoked_at.is_some() { "revoked" } else { "active" }
                    );
                }
            }
        }
        KeysCommand::Revoke { name, db } => {
            if !db.open()?.revoke(&name)? {
                anyhow::bail!("no active key named {name:?} (see `lilypad-cli gateway keys list`)");
            }
            if json {
                lilypad_cli_common::print_json(&serde_json::json!({ "revoked": name }))?;
            } else {
                println!("key {name:?} revoked");
            }
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.models.is_empty() {
        anyhow::bail!(
            "no model to serve: pass --model NAME=MODULE[,kind=embeddings|chat], e.g. \
             --model all-MiniLM-L6-v2=./examples/modules/embeddings"
        );
    }
    for (i, m) in args.models.iter().enumerate() {
        if args.models[..i].iter().any(|o| o.name == m.name) {
            anyhow::bail!("model {:?} is given twice", m.name);
        }
    }
    let keys = Arc::new(args.db.open()?);
    let config = super::network::load(&args.network)?;
    let signer = super::network::key(&config, Role::JobCreator)?;
    let home = lilypad_cli_common::network::home()?;
    let backend = network::NetworkBackend::connect(
        config,
        signer,
        network::Settings {
            data_dir: home.join("gateway"),
            module_cache: home.join("modules"),
            module_base: args.module_base.clone(),
            max_price: args.max_price,
            allowance: args.allowance,
            match_timeout: Duration::from_secs(args.match_timeout),
            require_pinned_image: !args.allow_unpinned_image,
        },
    )
    .await?;
    let limits = api::Limits {
        max_body_bytes: args.max_body_bytes,
        max_inputs: args.max_inputs,
        job_timeout: Duration::from_secs(args.timeout),
        ..api::Limits::default()
    };
    let account = backend.address();
    let app = Arc::new(api::App::new(args.models.clone(), keys, Arc::new(backend), limits));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The first stdout line names the URL (scripts and tests read it).
    println!("gateway {account} listening on http://{addr}");
    for m in &args.models {
        tracing::info!(model = %m.name, module = %m.module, kind = ?m.kind, "serving");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("stopping");
        })
        .await?;
    Ok(())
}
