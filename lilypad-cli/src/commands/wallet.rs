//! `lilypad-cli wallet ...`: encrypted JSON keystores in the wallet directory
//! (`$LILYPAD_HOME/keystores`), which `--account NAME` picks on any command that signs.

use clap::Subcommand;
use lilypad_cli_common::{
    print_json,
    wallet::{self, KeyArgs},
};
use lilypad_sdk::chain::PrivateKeySigner;
use serde_json::json;

/// `lilypad-cli wallet ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create an account: a new random key, encrypted into the wallet directory.
    /// Password: --password-file, LILYPAD_KEYSTORE_PASSWORD, or asked twice.
    ///
    /// Example: lilypad-cli wallet new provider-gpu0
    New {
        /// The account's name (letters, digits, `.`, `_`, `-`).
        name: String,
    },
    /// Import a key into the wallet directory, encrypted. The key is read from
    /// WEB3_PRIVATE_KEY, else asked for without echo; never from a flag.
    ///
    /// Example: WEB3_PRIVATE_KEY=0x... lilypad-cli wallet import payer --password-file pw
    Import {
        /// The account's name (letters, digits, `.`, `_`, `-`).
        name: String,
    },
    /// List the accounts of the wallet directory with their addresses.
    ///
    /// Example: lilypad-cli wallet list
    List,
    /// Decrypt a keystore (--account NAME or --keystore FILE) and print its address:
    /// checks the password.
    ///
    /// Example: lilypad-cli wallet address --account payer
    Address,
}

pub(crate) fn run(cmd: WalletCommand) -> anyhow::Result<()> {
    match cmd {
        WalletCommand::New { name } => {
            wallet::check_name(&name)?;
            let key = PrivateKeySigner::random();
            create(&name, &key, "created")
        }
        WalletCommand::Import { name } => {
            wallet::check_name(&name)?;
            let key = match wallet::env_key()? {
                Some(key) => key,
                None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    wallet::parse_key(&wallet::read_hidden("private key (hex): ")?, "the key")?
                }
                None => anyhow::bail!(
                    "no key to import: set WEB3_PRIVATE_KEY (stdin is not a terminal to ask on)"
                ),
            };
            create(&name, &key, "imported")
        }
        WalletCommand::List => list(),
        WalletCommand::Address => {
            let Some(path) = KeyArgs::get().keystore_path()? else {
                anyhow::bail!("which account? pass --account NAME or --keystore FILE");
            };
            let key = wallet::decrypt(&path, KeyArgs::get().password_file.as_deref())?;
            if lilypad_cli_common::json() {
                print_json(&json!({ "address": key.address(), "keystore": path }))
            } else {
                println!("{}", key.address());
                Ok(())
            }
        }
    }
}

fn create(name: &str, key: &PrivateKeySigner, verb: &str) -> anyhow::Result<()> {
    let password = wallet::password(
        &format!("password for the new account {name}"),
        KeyArgs::get().password_file.as_deref(),
        true,
    )?;
    if password.is_empty() {
        anyhow::bail!("the password is empty: a keystore needs one");
    }
    let path = wallet::store(name, key, &password)?;
    if lilypad_cli_common::json() {
        print_json(&json!({ "name": name, "address": key.address(), "keystore": path }))
    } else {
        println!("{verb} account {name}: {}", key.address());
        println!("keystore: {}", path.display());
        println!("sign with it: --account {name}");
        Ok(())
    }
}

fn list() -> anyhow::Result<()> {
    let accounts = wallet::list()?;
    if lilypad_cli_common::json() {
        let rows: Vec<_> = accounts
            .iter()
            .map(|(name, path, address)| json!({ "name": name, "address": address, "keystore": path }))
            .collect();
        return print_json(&rows);
    }
    if accounts.is_empty() {
        println!(
            "no accounts in {}: create one with `lilypad-cli wallet new NAME`",
            wallet::dir()?.display()
        );
    }
    for (name, _, address) in accounts {
        let address = address.map_or_else(|| "(address not stated)".to_owned(), |a| a.to_string());
        println!("{name:<24} {address}");
    }
    Ok(())
}
