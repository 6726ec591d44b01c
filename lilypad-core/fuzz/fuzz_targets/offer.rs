//! Signed offers and job inputs as the solver and the provider receive them:
//! JSON deserialisation, validation and EIP-712 hashing.
//!
//! Input: a JSON document, tried as a `JobOffer`, a `ResourceOffer` and
//! `JobInputs`, or a JSON array of two offers of one kind.
//! Properties: nothing panics; JSON round-trips (value and text) and keeps the
//! id; an offer valid at `t` is valid at every earlier time and never at its
//! expiry; two different valid offers never share an id (the signed EIP-712
//! struct commits to every field); accepted job inputs are canonical and
//! verify against their own hash and module.
#![no_main]

use alloy_primitives::{Address, B256};
use libfuzzer_sys::fuzz_target;
use lilypad_core::{
    eip712::domain,
    inputs::JobInputs,
    offer::{JobOffer, OfferError, ResourceOffer},
};
use serde::{Serialize, de::DeserializeOwned};

trait Offer: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug {
    fn validate(&self, now: u64) -> Result<(), OfferError>;
    fn expiry(&self) -> u64;
    fn id(&self) -> B256;
}

fn dom() -> alloy_sol_types::Eip712Domain {
    domain(31337, Address::repeat_byte(0x11))
}

impl Offer for JobOffer {
    fn validate(&self, now: u64) -> Result<(), OfferError> {
        JobOffer::validate(self, now)
    }
    fn expiry(&self) -> u64 {
        self.expiry
    }
    fn id(&self) -> B256 {
        JobOffer::id(self, &dom())
    }
}

impl Offer for ResourceOffer {
    fn validate(&self, now: u64) -> Result<(), OfferError> {
        ResourceOffer::validate(self, now)
    }
    fn expiry(&self) -> u64 {
        self.expiry
    }
    fn id(&self) -> B256 {
        ResourceOffer::id(self, &dom())
    }
}

fn check<O: Offer>(offer: &O) -> B256 {
    let text = serde_json::to_string(offer).expect("an offer always serialises");
    let back: O = serde_json::from_str(&text).expect("an offer's own JSON parses");
    assert_eq!(&back, offer, "JSON round trip changed the offer: {text}");
    assert_eq!(serde_json::to_string(&back).unwrap(), text, "JSON text is not stable");
    let id = offer.id();
    assert_eq!(back.id(), id, "the id changed through JSON");

    for now in [0, 1, offer.expiry().saturating_sub(1), offer.expiry(), u64::MAX] {
        if let Err(e) = offer.validate(now) {
            let _ = e.to_string();
        }
    }
    if offer.validate(0).is_ok() {
        let t = offer.expiry() - 1; // expiry > 0, or validate(0) would fail
        assert!(offer.validate(t).is_ok(), "valid at 0 but not at {t}");
        assert!(
            matches!(offer.validate(offer.expiry()), Err(OfferError::Expired { .. })),
            "valid at its own expiry"
        );
    }
    id
}

fn pair<O: Offer>(a: &O, b: &O) {
    let (ia, ib) = (check(a), check(b));
    if a != b && a.validate(0).is_ok() && b.validate(0).is_ok() {
        assert_ne!(ia, ib, "two different valid offers share an id:\n{a:?}\n{b:?}");
    }
}

fn inputs(data: &[u8]) {
    match JobInputs::parse(data) {
        Ok(i) => {
            assert_eq!(i.canonical_bytes(), data, "accepted inputs are not canonical");
            let module = i.module.module_id();
            let back = JobInputs::verify(data, i.hash(), module).expect("own hash and module");
            assert_eq!(back, i);
            assert!(JobInputs::verify(data, i.hash(), B256::ZERO).is_err() || module == B256::ZERO);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    inputs(data);
    if let Ok(o) = serde_json::from_slice::<JobOffer>(data) {
        check(&o);
    }
    if let Ok(o) = serde_json::from_slice::<ResourceOffer>(data) {
        check(&o);
    }
    if let Ok((a, b)) = serde_json::from_slice::<(JobOffer, JobOffer)>(data) {
        pair(&a, &b);
    }
    if let Ok((a, b)) = serde_json::from_slice::<(ResourceOffer, ResourceOffer)>(data) {
        pair(&a, &b);
    }
});
