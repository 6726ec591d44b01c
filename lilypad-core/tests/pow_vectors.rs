//! Checks `lilypad_core::pow` against vectors from an independent Python
//! implementation (`tests/vectors/gen_pow_vectors.py`, pycryptodome keccak).

use alloy_primitives::{Address, B256, U256, keccak256};
use lilypad_core::pow::{challenge, meets_target, proof_hash};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    keccak256_empty: B256,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    seed: B256,
    miner: Address,
    node_id: B256,
    nonce: U256,
    target: U256,
    challenge: B256,
    proof_hash: B256,
    meets_target: bool,
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/pow.json");
    let text = std::fs::read_to_string(path).expect("read pow.json");
    serde_json::from_str(&text).expect("parse pow.json")
}

#[test]
fn keccak_is_the_ethereum_one() {
    assert_eq!(keccak256(b""), vectors().keccak256_empty);
}

#[test]
fn every_vector_matches() {
    let v = vectors();
    assert!(v.cases.len() >= 50, "expected at least 50 cases, got {}", v.cases.len());
    let mut meets = 0;
    for (i, c) in v.cases.iter().enumerate() {
        let ch = challenge(c.seed, c.miner, c.node_id);
        assert_eq!(ch, c.challenge, "case {i}: challenge");
        assert_eq!(proof_hash(ch, c.nonce), c.proof_hash, "case {i}: proof hash");
        assert_eq!(meets_target(ch, c.nonce, c.target), c.meets_target, "case {i}: meets_target");
        meets += usize::from(c.meets_target);
    }
    // The file exercises both answers.
    assert!(meets > 0 && meets < v.cases.len());
}
