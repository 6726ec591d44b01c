//! Keys like Foundry's: encrypted JSON keystores (Web3 Secret Storage, as geth and
//! `cast wallet` write them), chosen on any command that signs with `--keystore FILE` or
//! `--account NAME` (a keystore of the wallet directory, `$LILYPAD_HOME/keystores`).
//!
//! The password comes from `--password-file`, else `LILYPAD_KEYSTORE_PASSWORD`, else a
//! prompt when stdin is a terminal. A raw key is read only from `WEB3_PRIVATE_KEY` (a
//! flag would show in `ps`), and no message ever shows a key or a password.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{chain::PrivateKeySigner, core::Address};

/// How a command that signs picks its key, beside `WEB3_PRIVATE_KEY`.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// Sign with this encrypted JSON keystore instead of WEB3_PRIVATE_KEY.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "account")]
    pub keystore: Option<PathBuf>,
    /// Sign with the keystore NAME of the wallet directory ($LILYPAD_HOME/keystores, see
    /// `lilypad-cli wallet list`) instead of WEB3_PRIVATE_KEY.
    #[arg(long, global = true, value_name = "NAME")]
    pub account: Option<String>,
    /// A file whose first line is the keystore's password [default:
    /// $LILYPAD_KEYSTORE_PASSWORD, else a prompt when stdin is a terminal].
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

static KEY_ARGS: OnceLock<KeyArgs> = OnceLock::new();

impl KeyArgs {
    /// Makes these the process's key flags (the first call wins), read by [`flag_key`].
    pub fn apply(&self) {
        let _ = KEY_ARGS.set(self.clone());
    }

    /// The process's key flags.
    pub fn get() -> &'static Self {
        static NONE: KeyArgs = KeyArgs { keystore: None, account: None, password_file: None };
        KEY_ARGS.get().unwrap_or(&NONE)
    }

    /// The keystore file the flags name, if any.
    pub fn keystore_path(&self) -> anyhow::Result<Option<PathBuf>> {
        match (&self.keystore, &self.account) {
            (Some(file), _) => Ok(Some(file.clone())),
            (None, Some(name)) => {
                check_name(name)?;
                let path = dir()?.join(name);
                if !path.is_file() {
                    anyhow::bail!(
                        "no account {name:?} in {}: see `lilypad-cli wallet list`, or create it \
                         with `lilypad-cli wallet new {name}` or `wallet import {name}`",
                        dir()?.display()
                    );
                }
                Ok(Some(path))
            }
            (None, None) => Ok(None),
        }
    }
}

/// The wallet directory: `$LILYPAD_HOME/keystores` (default `~/.lilypad/keystores`).
pub fn dir() -> anyhow::Result<PathBuf> {
    Ok(crate::network::home()?.join("keystores"))
}

/// Checks an account name: letters, digits, `.`, `_` and `-`, not starting with `.`,
/// at most 64 characters (it names a file in the wallet directory).
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        anyhow::bail!(
            "{name:?} is not an account name: use letters, digits, `.`, `_` and `-` (at most \
             64, not starting with `.`)"
        );
    }
    Ok(())
}

/// The key the flags choose (`--keystore`, `--account`), decrypted; `None` without them.
pub fn flag_key() -> anyhow::Result<Option<PrivateKeySigner>> {
    let args = KeyArgs::get();
    match args.keystore_path()? {
        Some(path) => decrypt(&path, args.password_file.as_deref()).map(Some),
        None => Ok(None),
    }
}

/// The key the user gave: the flags' keystore, else `WEB3_PRIVATE_KEY`; `None` without
/// either (then only a local chain has a default, [`crate::network::key`]).
pub fn explicit_key() -> anyhow::Result<Option<PrivateKeySigner>> {
    match flag_key()? {
        Some(key) => Ok(Some(key)),
        None => env_key(),
    }
}

/// The key in `WEB3_PRIVATE_KEY`, if set.
pub fn env_key() -> anyhow::Result<Option<PrivateKeySigner>> {
    match std::env::var("WEB3_PRIVATE_KEY") {
        Ok(text) => parse_key(&text, "WEB3_PRIVATE_KEY").map(Some),
        Err(_) => Ok(None),
    }
}

/// A private key in hex; the error names `what`, never the text.
pub fn parse_key(text: &str, what: &str) -> anyhow::Result<PrivateKeySigner> {
    text.trim().parse::<PrivateKeySigner>().map_err(|_| {
        anyhow::anyhow!(
            "{what} is not a private key: expected 32 bytes as 64 hex digits (0x optional); \
             the value is not shown"
        )
    })
}

/// Decrypts the keystore at `path` with the password of `password_file`, else
/// `LILYPAD_KEYSTORE_PASSWORD`, else a prompt.
pub fn decrypt(path: &Path, password_file: Option<&Path>) -> anyhow::Result<PrivateKeySigner> {
    if !path.is_file() {
        anyhow::bail!("the keystore {} does not exist", path.display());
    }
    let password = password(&format!("password of {}", path.display()), password_file, false)?;
    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
        // The error names what failed (a MAC mismatch is a wrong password), never the key.
        let why = e.to_string();
        if why.to_lowercase().contains("mac") {
            anyhow::anyhow!(
                "cannot decrypt the keystore {}: wrong password (the keystore's MAC does not \
                 match)",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot decrypt the keystore {}: {why}", path.display())
        }
    })
}

/// A password: the first line of `file`, else `LILYPAD_KEYSTORE_PASSWORD`, else asked
/// with `prompt` on the terminal (twice when `confirm`, for a new keystore).
pub fn password(prompt: &str, file: Option<&Path>, confirm: bool) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the password file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Ok(p) = std::env::var("LILYPAD_KEYSTORE_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "no keystore password: pass --password-file FILE or set LILYPAD_KEYSTORE_PASSWORD \
             (stdin is not a terminal to ask on)"
        );
    }
    let first = read_hidden(&format!("{prompt}: "))?;
    if confirm && read_hidden("again: ")? != first {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

/// Reads a line from the terminal without echoing it. No crate for this is at hand
/// offline, and `stty -echo` around one `read_line` is all it takes on Unix.
pub fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let stty = |arg: &str| {
        Command::new("stty").arg(arg).stdin(Stdio::inherit()).status().is_ok_and(|s| s.success())
    };
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let hidden = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Writes `key` as the keystore `name` of the wallet directory, encrypted with
/// `password`; refuses to overwrite one. Returns its path.
pub fn store(name: &str, key: &PrivateKeySigner, password: &str) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = dir()?;
    let path = dir.join(name);
    if path.exists() {
        anyhow::bail!(
            "the account {name:?} exists already ({}); pick another name",
            path.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    restrict(&dir, 0o700)?;
    let mut rng = rand08::thread_rng();
    PrivateKeySigner::encrypt_keystore(&dir, &mut rng, key.to_bytes(), password, Some(name))
        .map_err(|e| anyhow::anyhow!("writing the keystore {}: {e}", path.display()))?;
    // Geth's keystores carry the address in clear, so that a list needs no password.
    let text = std::fs::read_to_string(&path)?;
    let mut json: serde_json::Value = serde_json::from_str(&text)?;
    json["address"] = format!("{:x}", key.address()).trim_start_matches("0x").into();
    std::fs::write(&path, serde_json::to_vec(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    restrict(&path, 0o600)?;
    Ok(path)
}

/// The address a keystore file states in clear (geth's `address` field), if any.
pub fn stated_address(path: &Path) -> Option<Address> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json.get("address")?.as_str()?.parse().ok()
}

/// The accounts of the wallet directory, by name, with their stated addresses.
pub fn list() -> anyhow::Result<Vec<(String, PathBuf, Option<Address>)>> {
    let dir = dir()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if path.is_file() && check_name(&name).is_ok() {
            let address = stated_address(&path);
            out.push((name, path, address));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting the permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_plain_file_names() {
        for ok in ["spare", "gpu-0", "a.b_c", "A9"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "../x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_malformed_key_is_refused_without_showing_it() {
        let text = "0x12345678zz";
        let e = parse_key(text, "WEB3_PRIVATE_KEY").unwrap_err().to_string();
        assert!(!e.contains("12345678"), "{e}");
        assert!(e.contains("WEB3_PRIVATE_KEY"), "{e}");
    }
}
