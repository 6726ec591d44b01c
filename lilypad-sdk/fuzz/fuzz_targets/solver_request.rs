//! The solver's request parsing: the signature envelope (headers) and the
//! offer bodies, as `POST /api/v1/job_offers` and `/api/v1/resource_offers`
//! read them before anything is stored.
//!
//! Input: HTTP-like text, `name: value` header lines, a blank line, then the
//! body (the seeds are real requests signed with a test key). Properties:
//! nothing panics; the auth headers round-trip through `to_headers`;
//! signature recovery and verification with the recovered key agree (so a
//! signature the solver accepts once it accepts twice, and malleable ones
//! never); a request verifies exactly when its signature recovers to the
//! named signer within the time window; the offer bodies round-trip through
//! their JSON; job inputs decode identically from base64 and from hex.
#![no_main]

use alloy_primitives::{Address, B256, keccak256};
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use lilypad_core::eip712::domain;
use lilypad_sdk::solver::{
    api::{PostJobOffer, PostResourceOffer, decode_inputs},
    auth::{AuthError, RequestAuth, recover, request_digest, request_domain, verify_with_key},
};
use serde::{Serialize, de::DeserializeOwned};

/// The solver and controller the seeds are signed for.
const SOLVER: Address = Address::repeat_byte(0x33);
const CONTROLLER: Address = Address::repeat_byte(0x11);
const CHAIN: u64 = 31337;
const MAX_TTL: u64 = 600;

fn split(data: &[u8]) -> (HeaderMap, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&[][..], data),
    };
    let mut map = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    (map, body)
}

/// Recovery and key verification agree on every signature.
fn signature(digest: &B256, sig: &[u8]) -> Option<Address> {
    match recover(digest, sig) {
        Ok((key, addr)) => {
            assert_eq!(key.address(), addr);
            assert_eq!(verify_with_key(&key, digest, sig), Ok(()), "recovered key does not verify");
            Some(addr)
        }
        Err(e) => {
            assert!(!e.is_empty());
            None
        }
    }
}

fn envelope(map: &HeaderMap, path: &str, body: &[u8]) {
    let auth = match RequestAuth::from_headers(map) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut again = HeaderMap::new();
    for (k, v) in auth.to_headers() {
        again.insert(k, v.parse().expect("own headers are valid"));
    }
    assert_eq!(RequestAuth::from_headers(&again).as_ref(), Ok(&auth), "auth headers round trip");

    let d = request_domain(CHAIN, SOLVER);
    let digest = request_digest(&d, "POST", path, body, auth.nonce, auth.expiry);
    let recovered = signature(&digest, &auth.signature);
    if let Some(now) = auth.expiry.checked_sub(1) {
        match (auth.verify(&d, "POST", path, body, now, MAX_TTL), recovered) {
            (Ok(key), Some(addr)) => assert!(addr == auth.signer && key.address() == addr),
            (Err(AuthError::WrongSigner { recovered: r, .. }), Some(addr)) => {
                assert!(r == addr && addr != auth.signer)
            }
            (Err(AuthError::BadSignature(_)), None) => {}
            (r, rec) => panic!("verify {r:?} but recovery {rec:?}"),
        }
    }
    for now in [0, auth.expiry, u64::MAX] {
        let r = auth.verify(&d, "POST", path, body, now, MAX_TTL);
        if now >= auth.expiry {
            assert!(matches!(r, Err(AuthError::Expired { .. })), "{r:?}");
        }
    }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let text = serde_json::to_string(v).expect("serialises");
    let back: T = serde_json::from_str(&text).expect("own JSON parses");
    assert_eq!(&back, v, "JSON round trip: {text}");
}

/// What the handlers do with the body: `serde_path_to_error` over the bytes.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let _ = format!("body: {} (at {})", e.inner(), e.path());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (map, bytes) = split(data);
    let offers = domain(CHAIN, CONTROLLER);
    // The signature envelope is checked over whichever endpoint the body fits.
    envelope(&map, "/api/v1/job_offers", bytes);

    if let Some(req) = body::<PostJobOffer>(bytes) {
        round_trip(&req);
        let _ = req.offer.validate(req.offer.expiry.saturating_sub(1)).map_err(|e| e.to_string());
        let _ = keccak256(&req.inputs.0) == req.offer.inputs_hash;
        signature(&req.offer.id(&offers), &req.signature);
    }
    if let Some(req) = body::<PostResourceOffer>(bytes) {
        envelope(&map, "/api/v1/resource_offers", bytes);
        round_trip(&req);
        let _ = req.offer.validate(req.offer.expiry.saturating_sub(1)).map_err(|e| e.to_string());
        signature(&req.offer.id(&offers), &req.signature);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(inputs) = decode_inputs(text) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&inputs);
            assert_eq!(decode_inputs(&b64).as_ref(), Ok(&inputs), "base64 of {text:?}");
            let hex = format!("0x{}", alloy_primitives::hex::encode(&inputs));
            assert_eq!(decode_inputs(&hex).as_ref(), Ok(&inputs), "hex of {text:?}");
        }
    }
});
