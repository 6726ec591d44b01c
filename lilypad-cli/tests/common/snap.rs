//! Snapshot assertions for whole command outputs (snapbox, as foundry's CLI tests do):
//! what varies between runs is redacted to a placeholder, everything else must match
//! the committed file byte for byte. `SNAPSHOTS=overwrite cargo test ...` rewrites
//! the files from the actual output (review the diff before committing it).

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use snapbox::{Assert, Redactions};

/// An assertion that redacts hashes, addresses, CIDs, local URLs and `dir`.
pub fn assert_in(dir: Option<&Path>) -> Assert {
    let mut r = Redactions::new();
    let mut add = |placeholder: &'static str, pattern: &str| {
        let re = regex::Regex::new(pattern).expect("a valid redaction pattern");
        r.insert(placeholder, re).expect("a valid placeholder");
    };
    add("[HASH]", r"\b0x[0-9a-fA-F]{64}\b");
    add("[ADDRESS]", r"\b0x[0-9a-fA-F]{40}\b");
    add("[CID]", r"\b(baf[a-z2-7]{50,}|Qm[1-9A-HJ-NP-Za-km-z]{44})\b");
    add("[URL]", r"https?://127\.0\.0\.1:[0-9]+");
    if let Some(dir) = dir {
        r.insert("[DIR]", dir.display().to_string()).expect("a valid placeholder");
    }
    // Linux only: backslashes are content (cowsay draws with them), not path separators.
    Assert::new().action_env("SNAPSHOTS").normalize_paths(false).redact_with(r)
}

/// [`assert_in`] with no directory to redact.
pub fn assert() -> Assert {
    assert_in(None)
}

/// `cmd` without the settings a developer's or CI's environment may hold (every
/// `LILYPAD_*` variable, the key, the log filter): help texts show `[env: X=value]`.
pub fn clean_env(mut cmd: snapbox::cmd::Command) -> snapbox::cmd::Command {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("LILYPAD_") || text == "WEB3_PRIVATE_KEY" || text == "RUST_LOG" {
            cmd = cmd.env_remove(&name);
        }
    }
    cmd
}
