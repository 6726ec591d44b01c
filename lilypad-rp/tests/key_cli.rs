//! A malformed key is refused without ever being echoed, by any subcommand.

use std::process::Command;

#[test]
fn a_bad_key_is_refused_and_never_echoed() {
    let secret = "0xdeadbeefSECRETSECRET";
    // A real network file, so that the key is what fails (no chain is contacted first).
    let dir = tempfile::tempdir().expect("temp dir");
    let network = dir.path().join("network.toml");
    lilypad_sdk::chain::NetworkConfig::local().save(&network).expect("write the network file");
    let out = Command::new(env!("CARGO_BIN_EXE_lilypad-rp"))
        .args(["mine", "--rounds", "1", "--network"])
        .arg(&network)
        .env("WEB3_PRIVATE_KEY", secret)
        .output()
        .expect("run lilypad-rp mine");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("not a private key"), "{stderr}");
    assert!(!stdout.contains("SECRET") && !stderr.contains("SECRET"), "echoed: {stdout}{stderr}");
}
