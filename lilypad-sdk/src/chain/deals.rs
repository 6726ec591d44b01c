//! Deals on the controller: creation, results, judgement, mediation, timeouts, getters.

use alloy::primitives::{Address, B256, Bytes, U256};
use lilypad_core::{
    deal::{Deal, DealId, DealMembers, DealTerms, NetworkParams},
    settlement::Outcome,
    state::{DealStatus, JobFailure},
};

use super::{
    bindings::controller::LilypadController as C,
    client::ChainClient,
    error::{ChainError, Result, Target},
    sign::{self, Permit, SignedJobOffer, SignedResourceOffer},
};

/// A deal the controller created, as its `DealCreated` event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedDeal {
    /// The deal (its `created_at` is `deadline - submit window`).
    pub deal: Deal,
    /// The mutually trusted mediators in the contract's (ascending) order: pass them to
    /// [`ChainClient::challenge_results`].
    pub mediators: Vec<Address>,
    /// The results deadline (last second to submit).
    pub deadline: u64,
    /// The transaction.
    pub tx: B256,
}

/// The provider's results are in (`ResultsSubmitted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedResults {
    /// The deal.
    pub deal_id: DealId,
    /// keccak256 of the binary CID, as the deal stores it.
    pub results: B256,
    /// The results CID in binary form.
    pub results_cid: Bytes,
    /// The results collateral the provider now has in escrow.
    pub results_collateral: U256,
    /// The judgement deadline.
    pub deadline: u64,
    /// The transaction.
    pub tx: B256,
}

/// The job creator challenged results (`ResultsChallenged`) or a failure report
/// (`FailureChallenged`). The mediator is drawn from the hash of the challenge's
/// block, which nothing in that block could know: see [`ChainClient::draw_mediator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The deal.
    pub deal_id: DealId,
    /// The block whose hash draws the mediator (readable from the next block on).
    pub draw_block: u64,
    /// The fee the job creator escrowed.
    pub mediation_fee: U256,
    /// The mediation deadline.
    pub deadline: u64,
    /// The transaction.
    pub tx: B256,
}

/// What a [`ChainClient::draw_mediator`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// The mediator is fixed: only it may call [`ChainClient::mediate`].
    Drawn {
        /// The mediator.
        mediator: Address,
        /// The round (0 for the first draw, one more per redraw).
        round: u8,
    },
    /// The draw block's hash had expired (older than 256 blocks): the draw was
    /// re-armed on this block's hash.
    Rearmed {
        /// The new draw block.
        draw_block: u64,
    },
}

/// What a [`ChainClient::redraw_mediator`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redraw {
    /// A new round started; the next mediator is drawn from `draw_block`'s hash.
    Next {
        /// The new draw block.
        draw_block: u64,
        /// The new mediation deadline.
        deadline: u64,
    },
    /// Every mediator had been tried: the deal ended with no mediation.
    Finished(FinishedDeal),
}

/// A deal ended (`DealFinished`); the amounts are what this transaction paid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDeal {
    /// The deal.
    pub deal_id: DealId,
    /// How it ended.
    pub outcome: Outcome,
    /// Who sent the finishing transaction.
    pub by: Address,
    /// Paid to the job creator.
    pub to_job_creator: U256,
    /// Paid to the provider.
    pub to_provider: U256,
    /// Paid to the mediator.
    pub to_mediator: U256,
    /// The transaction.
    pub tx: B256,
}

/// A deal as `getDeal` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChainDeal {
    /// The deal id.
    pub id: DealId,
    /// Where it is.
    pub status: DealStatus,
    /// The job creator.
    pub job_creator: Address,
    /// The provider.
    pub provider: Address,
    /// The drawn mediator, once challenged.
    pub mediator: Option<Address>,
    /// Hash of the mutually trusted mediators, until a challenge.
    pub mediators_hash: Option<B256>,
    /// Last second to act in the current state.
    pub deadline: u64,
    /// The price.
    pub price: U256,
    /// The job creator's payment collateral.
    pub payment_collateral: U256,
    /// The provider's collateral in escrow now (timeout collateral, then results collateral).
    pub provider_collateral: U256,
    /// The results collateral (multiple x price).
    pub results_collateral: U256,
    /// The mediation fee.
    pub mediation_fee: U256,
    /// Judge window, seconds.
    pub judge_window_secs: u32,
    /// Mediation window, seconds.
    pub mediate_window_secs: u32,
    /// keccak256 of the results CID, once submitted.
    pub results: Option<B256>,
}

/// How often [`ChainClient::draw_mediator`] waits for a block past the draw block (and
/// how many half seconds each wait lasts).
const DRAW_WAIT_POLLS: u32 = 60;

/// The core's [`JobFailure`] of the contracts' `JobFailure` value.
pub fn job_failure_from(call: &'static str, r: u8) -> Result<JobFailure> {
    JobFailure::ALL
        .get(usize::from(r))
        .copied()
        .ok_or(ChainError::Decode { call, message: format!("unknown job failure {r}") })
}

fn job_failure_index(r: JobFailure) -> u8 {
    JobFailure::ALL.iter().position(|x| *x == r).map_or(0, |i| i as u8)
}

pub(crate) fn outcome_from(call: &'static str, o: u8) -> Result<Outcome> {
    Outcome::ALL
        .get(usize::from(o))
        .copied()
        .ok_or(ChainError::Decode { call, message: format!("unknown outcome {o}") })
}

fn to_u32(what: &'static str, v: u64) -> Result<u32> {
    u32::try_from(v).map_err(|_| ChainError::Decode {
        call: "setParams",
        message: format!("{what} {v} does not fit the contract's 32 bits"),
    })
}

fn to_u128(what: &'static str, v: U256) -> Result<u128> {
    u128::try_from(v).map_err(|_| ChainError::Decode {
        call: "setParams",
        message: format!("{what} {v} does not fit the contract's 128 bits"),
    })
}

/// The deal a `DealCreated` event describes; `submit_window` is the job offer's
/// `timeout_secs` (the event has the deadline, not the window).
pub(crate) fn deal_from_event(e: &C::DealCreated, submit_window: u64) -> Deal {
    let t = &e.terms;
    Deal {
        id: e.dealId,
        job_offer_id: t.jobOfferHash,
        resource_offer_id: t.resourceOfferHash,
        module_id: t.moduleId,
        inputs_hash: t.inputsHash,
        members: DealMembers {
            job_creator: e.jobCreator,
            resource_provider: e.provider,
            solver: e.solver,
            mediators: e.mediators.iter().copied().collect(),
        },
        terms: DealTerms {
            price: t.price,
            payment_collateral: t.paymentCollateral,
            timeout_collateral: t.timeoutCollateral,
            results_collateral: t.resultsCollateral,
            mediation_fee: t.mediationFee,
            submit_window_secs: submit_window,
            judge_window_secs: u64::from(t.judgeWindowSecs),
            mediate_window_secs: u64::from(t.mediateWindowSecs),
        },
        created_at: t.deadline.saturating_sub(submit_window),
    }
}

impl ChainClient {
    /// Creates the deal of two signed offers (the caller must be the solver both name);
    /// both parties must have approved the controller for their collateral.
    pub async fn create_deal(
        &self,
        job: &SignedJobOffer,
        resource: &SignedResourceOffer,
    ) -> Result<CreatedDeal> {
        let c = self.controller();
        let call = c.createDeal(
            sign::job_offer_abi(&job.offer),
            job.signature.clone(),
            sign::resource_offer_abi(&resource.offer),
            resource.signature.clone(),
        );
        let receipt = self.send("createDeal", Target::Controller, call).await?;
        self.created("createDeal", job, resource, &receipt)
    }

    /// [`Self::create_deal`] with EIP-2612 permits from the job creator and the provider
    /// ([`Permit::NONE`] to rely on an existing allowance).
    pub async fn create_deal_with_permits(
        &self,
        job: &SignedJobOffer,
        resource: &SignedResourceOffer,
        job_permit: &Permit,
        resource_permit: &Permit,
    ) -> Result<CreatedDeal> {
        let c = self.controller();
        let call = c.createDealWithPermits(
            sign::job_offer_abi(&job.offer),
            job.signature.clone(),
            sign::resource_offer_abi(&resource.offer),
            resource.signature.clone(),
            sign::permit_abi(job_permit),
            sign::permit_abi(resource_permit),
        );
        let receipt = self.send("createDealWithPermits", Target::Controller, call).await?;
        self.created("createDealWithPermits", job, resource, &receipt)
    }

    fn created(
        &self,
        call: &'static str,
        job: &SignedJobOffer,
        resource: &SignedResourceOffer,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<CreatedDeal> {
        let e: C::DealCreated = Self::event(call, receipt, self.config().contracts.controller)?;
        let deal = deal_from_event(&e, job.offer.timeout_secs);
        debug_assert_eq!(deal.job_offer_id, job.id);
        debug_assert_eq!(deal.resource_offer_id, resource.id);
        Ok(CreatedDeal {
            deal,
            mediators: e.mediators,
            deadline: e.terms.deadline,
            tx: receipt.transaction_hash,
        })
    }

    /// The provider submits the results CID, posting its results collateral.
    pub async fn submit_results(
        &self,
        deal_id: DealId,
        results_cid: &cid::Cid,
    ) -> Result<SubmittedResults> {
        self.submit_results_raw(deal_id, Bytes::from(results_cid.to_bytes())).await
    }

    /// [`Self::submit_results`] with the CID already in binary form.
    pub async fn submit_results_raw(
        &self,
        deal_id: DealId,
        results_cid: Bytes,
    ) -> Result<SubmittedResults> {
        let c = self.controller();
        let receipt = self
            .send("submitResults", Target::Controller, c.submitResults(deal_id, results_cid))
            .await?;
        let e: C::ResultsSubmitted =
            Self::event("submitResults", &receipt, self.config().contracts.controller)?;
        Ok(SubmittedResults {
            deal_id,
            results: e.results,
            results_cid: e.resultsCid,
            results_collateral: e.resultsCollateral,
            deadline: e.deadline,
            tx: receipt.transaction_hash,
        })
    }

    /// The job creator accepts the results: the provider is paid.
    pub async fn accept_results(&self, deal_id: DealId) -> Result<FinishedDeal> {
        let c = self.controller();
        let receipt =
            self.send("acceptResults", Target::Controller, c.acceptResults(deal_id)).await?;
        self.finished("acceptResults", &receipt)
    }

    /// The job creator challenges the results, paying the mediation fee; `mediators` is the
    /// deal's set as in [`CreatedDeal::mediators`].
    pub async fn challenge_results(
        &self,
        deal_id: DealId,
        mediators: &[Address],
    ) -> Result<Challenge> {
        let c = self.controller();
        let call = c.challengeResults(deal_id, mediators.to_vec());
        let receipt = self.send("challengeResults", Target::Controller, call).await?;
        let e: C::ResultsChallenged =
            Self::event("challengeResults", &receipt, self.config().contracts.controller)?;
        Ok(Challenge {
            deal_id,
            draw_block: e.drawBlock,
            mediation_fee: e.mediationFee,
            deadline: e.deadline,
            tx: receipt.transaction_hash,
        })
    }

    /// The provider ends a deal the job creator made impossible (a missing image, an
    /// unresolvable module, inputs that break the module's rules), with `detail` for the
    /// job creator to read; returns the transaction.
    pub async fn report_failure(
        &self,
        deal_id: DealId,
        reason: JobFailure,
        detail: &str,
    ) -> Result<B256> {
        let c = self.controller();
        let call = c.reportFailure(deal_id, job_failure_index(reason), detail.to_owned());
        let receipt = self.send("reportFailure", Target::Controller, call).await?;
        Ok(receipt.transaction_hash)
    }

    /// The job creator accepts a failure report: it gets its payment back, the provider
    /// its timeout collateral.
    pub async fn accept_failure(&self, deal_id: DealId) -> Result<FinishedDeal> {
        let c = self.controller();
        let receipt =
            self.send("acceptFailure", Target::Controller, c.acceptFailure(deal_id)).await?;
        self.finished("acceptFailure", &receipt)
    }

    /// The job creator challenges a failure report, paying the mediation fee: a mediator
    /// re-runs the job; a report it refutes costs the provider its timeout collateral.
    pub async fn challenge_failure(
        &self,
        deal_id: DealId,
        mediators: &[Address],
    ) -> Result<Challenge> {
        let c = self.controller();
        let call = c.challengeFailure(deal_id, mediators.to_vec());
        let receipt = self.send("challengeFailure", Target::Controller, call).await?;
        let e: C::FailureChallenged =
            Self::event("challengeFailure", &receipt, self.config().contracts.controller)?;
        Ok(Challenge {
            deal_id,
            draw_block: e.drawBlock,
            mediation_fee: e.mediationFee,
            deadline: e.deadline,
            tx: receipt.transaction_hash,
        })
    }

    /// The mediator the pending draw gives (fixed or computable now); `None` before
    /// the draw block's hash exists or after it expired.
    pub async fn pending_mediator(
        &self,
        deal_id: DealId,
        mediators: &[Address],
    ) -> Result<Option<Address>> {
        let c = self.controller();
        let m = self
            .read(
                "pendingMediator",
                Target::Controller,
                c.pendingMediator(deal_id, mediators.to_vec()).call(),
            )
            .await?;
        Ok((m != Address::ZERO).then_some(m))
    }

    /// Fixes a challenge's mediator from its draw block's hash (anyone may call it,
    /// from the block after the draw block on).
    ///
    /// Called in the draw block itself (the chain's head is the challenge's block), it
    /// waits for the next block; on a local anvil, which mines only on transactions, it
    /// mines an empty one.
    pub async fn draw_mediator(&self, deal_id: DealId, mediators: &[Address]) -> Result<Draw> {
        let c = self.controller();
        let mut waited = 0;
        let receipt = loop {
            let call = c.drawMediator(deal_id, mediators.to_vec());
            match self.send("drawMediator", Target::Controller, call).await {
                Err(ChainError::Reverted {
                    revert: super::Revert::Controller(C::LilypadControllerErrors::DrawNotReady(e)),
                    ..
                }) if waited < DRAW_WAIT_POLLS => {
                    waited += 1;
                    self.next_block_after(e.drawBlock).await?;
                }
                r => break r?,
            }
        };
        let at = self.config().contracts.controller;
        if let Ok(e) = Self::event::<C::MediatorDrawn>("drawMediator", &receipt, at) {
            return Ok(Draw::Drawn { mediator: e.mediator, round: e.round });
        }
        let e: C::MediatorDrawPending = Self::event("drawMediator", &receipt, at)?;
        Ok(Draw::Rearmed { draw_block: e.drawBlock })
    }

    /// Returns once the chain's head is past `block` (mining an empty block on a local
    /// anvil), or after about half a minute if it is not.
    pub async fn next_block_after(&self, block: u64) -> Result<()> {
        use alloy::providers::Provider;
        if self.config().chain_id == super::config::LOCAL_CHAIN_ID {
            // anvil mines only on transactions: an empty block moves the head on.
            let _ =
                self.provider().raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await;
        }
        for _ in 0..DRAW_WAIT_POLLS {
            if self.block_number().await? > block {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Replaces a drawn mediator that gave no verdict by its deadline (anyone may call
    /// it); ends the deal with no mediation once every mediator was tried.
    pub async fn redraw_mediator(&self, deal_id: DealId, mediators: &[Address]) -> Result<Redraw> {
        let c = self.controller();
        let call = c.redrawMediator(deal_id, mediators.to_vec());
        let receipt = self.send("redrawMediator", Target::Controller, call).await?;
        let at = self.config().contracts.controller;
        if let Ok(e) = Self::event::<C::MediatorRedraw>("redrawMediator", &receipt, at) {
            return Ok(Redraw::Next { draw_block: e.drawBlock, deadline: e.deadline });
        }
        Ok(Redraw::Finished(self.finished("redrawMediator", &receipt)?))
    }

    /// The drawn mediator's verdict: `accept` means the results are right.
    pub async fn mediate(&self, deal_id: DealId, accept: bool) -> Result<FinishedDeal> {
        let c = self.controller();
        let receipt = self.send("mediate", Target::Controller, c.mediate(deal_id, accept)).await?;
        self.finished("mediate", &receipt)
    }

    /// Ends a deal whose current deadline has passed (anyone may call it).
    pub async fn claim_timeout(&self, deal_id: DealId) -> Result<FinishedDeal> {
        let c = self.controller();
        let receipt =
            self.send("claimTimeout", Target::Controller, c.claimTimeout(deal_id)).await?;
        self.finished("claimTimeout", &receipt)
    }

    fn finished(
        &self,
        call: &'static str,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<FinishedDeal> {
        let e: C::DealFinished = Self::event(call, receipt, self.config().contracts.controller)?;
        Ok(FinishedDeal {
            deal_id: e.dealId,
            outcome: outcome_from(call, e.outcome)?,
            by: e.by,
            to_job_creator: e.toJobCreator,
            to_provider: e.toProvider,
            to_mediator: e.toMediator,
            tx: receipt.transaction_hash,
        })
    }

    /// A deal, or `None` if no deal has this id.
    pub async fn deal(&self, deal_id: DealId) -> Result<Option<OnChainDeal>> {
        let v = self
            .read("getDeal", Target::Controller, self.controller().getDeal(deal_id).call())
            .await?;
        let status = match v.state {
            0 => return Ok(None),
            1 => DealStatus::Agreed,
            2 => DealStatus::ResultsSubmitted,
            3 => DealStatus::ResultsChallenged,
            4 => DealStatus::Finished(outcome_from("getDeal", v.outcome)?),
            5 => DealStatus::FailureReported,
            6 => DealStatus::FailureChallenged,
            s => {
                return Err(ChainError::Decode {
                    call: "getDeal",
                    message: format!("unknown state {s}"),
                });
            }
        };
        Ok(Some(OnChainDeal {
            id: deal_id,
            status,
            job_creator: v.jobCreator,
            provider: v.provider,
            mediator: (v.mediator != Address::ZERO).then_some(v.mediator),
            mediators_hash: (v.mediatorsHash != B256::ZERO).then_some(v.mediatorsHash),
            deadline: v.deadline,
            price: v.price,
            payment_collateral: v.paymentCollateral,
            provider_collateral: v.providerCollateral,
            results_collateral: v.resultsCollateral,
            mediation_fee: v.mediationFee,
            judge_window_secs: v.judgeWindowSecs,
            mediate_window_secs: v.mediateWindowSecs,
            results: (v.results != B256::ZERO).then_some(v.results),
        }))
    }

    /// A deal's mutually trusted mediators, ascending, from its `DealCreated` event
    /// (what [`Self::challenge_results`] and the draw functions take).
    pub async fn deal_mediators(&self, deal_id: DealId) -> Result<Vec<Address>> {
        let mut poller = self.poll_controller_events(self.config().deployed_at_block);
        loop {
            let batch = poller.next_batch().await?;
            if batch.is_empty() {
                return Err(ChainError::Decode {
                    call: "DealCreated",
                    message: format!("no DealCreated event for deal {deal_id}"),
                });
            }
            for (event, _) in batch {
                if let super::ControllerEvent::DealCreated(e) = event
                    && e.dealId == deal_id
                {
                    return Ok(e.mediators);
                }
            }
        }
    }

    /// The results CID a deal's provider submitted, from its `ResultsSubmitted` event
    /// (the chain keeps only its hash in the deal); `None` before results.
    pub async fn submitted_results_cid(&self, deal_id: DealId) -> Result<Option<Bytes>> {
        let mut poller = self.poll_controller_events(self.config().deployed_at_block);
        loop {
            let batch = poller.next_batch().await?;
            if batch.is_empty() {
                return Ok(None);
            }
            for (event, _) in batch {
                if let super::ControllerEvent::ResultsSubmitted(e) = event
                    && e.dealId == deal_id
                {
                    return Ok(Some(e.resultsCid));
                }
            }
        }
    }

    /// What the controller holds for a deal now (zero once finished).
    pub async fn escrow_of(&self, deal_id: DealId) -> Result<U256> {
        self.read("escrowOf", Target::Controller, self.controller().escrowOf(deal_id).call()).await
    }

    /// Where a deal pays its provider: the payout address its resource offer named,
    /// else the provider.
    pub async fn payout_of(&self, deal_id: DealId) -> Result<Address> {
        self.read("payoutOf", Target::Controller, self.controller().payoutOf(deal_id).call()).await
    }

    /// The deal id of two offer ids, as the controller computes it.
    pub async fn deal_id_of(&self, job_offer_id: B256, resource_offer_id: B256) -> Result<DealId> {
        let c = self.controller();
        self.read(
            "dealIdOf",
            Target::Controller,
            c.dealIdOf(job_offer_id, resource_offer_id).call(),
        )
        .await
    }

    /// Whether `signer` used or invalidated offer nonce `nonce`.
    pub async fn is_nonce_used(&self, signer: Address, nonce: U256) -> Result<bool> {
        let c = self.controller();
        self.read("isNonceUsed", Target::Controller, c.isNonceUsed(signer, nonce).call()).await
    }

    /// Voids the signer's offer with nonce `nonce` (a job or resource offer), so that no
    /// solver can turn it into a deal; a no-op for a nonce already used or voided.
    pub async fn invalidate_nonce(&self, nonce: U256) -> Result<()> {
        // The controller keeps nonces as a bitmap: word `nonce / 256`, bit `nonce % 256`.
        let bit = (nonce & U256::from(0xffu64)).to::<usize>();
        self.invalidate_nonces(nonce >> 8, U256::from(1u8) << bit).await
    }

    /// Voids the signer's offers with nonces `word * 256 + i` for each bit `i` of `mask`.
    pub async fn invalidate_nonces(&self, word: U256, mask: U256) -> Result<()> {
        let c = self.controller();
        self.send("invalidateNonces", Target::Controller, c.invalidateNonces(word, mask)).await?;
        Ok(())
    }

    /// The network parameters new deals capture.
    pub async fn network_params(&self) -> Result<NetworkParams> {
        let p = self.read("params", Target::Controller, self.controller().params().call()).await?;
        Ok(NetworkParams {
            results_collateral_multiple: p.resultsCollateralMultiple,
            mediation_fee: U256::from(p.mediationFee),
            judge_window_secs: u64::from(p.judgeWindowSecs),
            mediate_window_secs: u64::from(p.mediateWindowSecs),
            min_job_timeout_secs: p.minJobTimeoutSecs,
        })
    }

    /// Sets the network parameters for new deals (controller owner only).
    pub async fn set_network_params(&self, params: &NetworkParams) -> Result<()> {
        let p = C::NetworkParams {
            resultsCollateralMultiple: params.results_collateral_multiple,
            judgeWindowSecs: to_u32("judge_window_secs", params.judge_window_secs)?,
            mediateWindowSecs: to_u32("mediate_window_secs", params.mediate_window_secs)?,
            mediationFee: to_u128("mediation_fee", params.mediation_fee)?,
            minJobTimeoutSecs: params.min_job_timeout_secs,
        };
        let c = self.controller();
        self.send("setParams", Target::Controller, c.setParams(p)).await?;
        Ok(())
    }

    /// The controller's owner.
    pub async fn controller_owner(&self) -> Result<Address> {
        self.read("owner", Target::Controller, self.controller().owner().call()).await
    }
}
