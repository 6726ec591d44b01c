//! Proof-of-work rounds and proofs.

use alloy::primitives::{Address, B256, U256};

use super::{
    bindings::pow::LilypadPow as P,
    client::ChainClient,
    error::{Result, Target},
};

/// A proof-of-work round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowRound {
    /// The round number (from 1).
    pub round: u64,
    /// The seed challenges derive from ([`lilypad_core::pow::challenge`]).
    pub seed: B256,
    /// A proof hash must be below this.
    pub target: U256,
    /// Unix second the round started.
    pub started_at: u64,
}

/// An accepted proof (`ProofSubmitted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedProof {
    /// The round.
    pub round: u64,
    /// The miner (the sender).
    pub miner: Address,
    /// The node the proof is for.
    pub node_id: B256,
    /// The nonce.
    pub nonce: U256,
    /// The round's target.
    pub target: U256,
    /// The transaction.
    pub tx: B256,
}

impl ChainClient {
    /// The current round, or `None` before the first.
    pub async fn pow_round(&self) -> Result<Option<PowRound>> {
        let round =
            self.read("currentRound", Target::Pow, self.pow().currentRound().call()).await?;
        if round == 0 {
            return Ok(None);
        }
        let r = self.read("roundOf", Target::Pow, self.pow().roundOf(round).call()).await?;
        Ok(Some(PowRound { round, seed: r.seed, target: r.target, started_at: r.startedAt }))
    }

    /// The current round's target, or `None` before the first round.
    pub async fn pow_target(&self) -> Result<Option<U256>> {
        Ok(self.pow_round().await?.map(|r| r.target))
    }

    /// Starts a round with `target` (owner only).
    pub async fn start_pow_round(&self, target: U256) -> Result<PowRound> {
        let p = self.pow();
        let receipt = self.send("startRound", Target::Pow, p.startRound(target)).await?;
        let e: P::RoundStarted = Self::event("startRound", &receipt, self.config().contracts.pow)?;
        let r = self.read("roundOf", Target::Pow, self.pow().roundOf(e.round).call()).await?;
        Ok(PowRound { round: e.round, seed: e.seed, target: e.target, started_at: r.startedAt })
    }

    /// Submits a proof for the current round as the signer (the miner) for `node_id`.
    pub async fn submit_work(&self, node_id: B256, nonce: U256) -> Result<AcceptedProof> {
        let p = self.pow();
        let receipt = self.send("submitProof", Target::Pow, p.submitProof(node_id, nonce)).await?;
        let e: P::ProofSubmitted =
            Self::event("submitProof", &receipt, self.config().contracts.pow)?;
        Ok(AcceptedProof {
            round: e.round,
            miner: e.miner,
            node_id: e.nodeId,
            nonce: e.nonce,
            target: e.target,
            tx: receipt.transaction_hash,
        })
    }

    /// Whether a proof hash was already accepted.
    pub async fn is_proof_used(&self, proof_hash: B256) -> Result<bool> {
        self.read("usedProof", Target::Pow, self.pow().usedProof(proof_hash).call()).await
    }
}
